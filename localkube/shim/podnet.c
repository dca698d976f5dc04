/*
 * podnet: the LD_PRELOAD shim the localkube kubelet puts into every pod
 * process so that the pod's sockets carry the pod's own address
 * (LOCALKUBE_POD_IP), the stand-in for a network namespace per pod.
 *
 * - bind() to 0.0.0.0 or 127.0.0.1 binds the pod address instead, so every
 *   pod can listen on the same well-known ports; bind() to the IPv6 any
 *   or loopback address fails with EADDRNOTAVAIL (the pod has no IPv6), so
 *   "bind * -::*" style configs fall back to IPv4 only.
 * - connect() to 127.0.0.1 goes to the pod address (a pod's "localhost"
 *   is itself), and an unbound AF_INET TCP socket is bound to the pod
 *   address first so peers see the pod address as the source, not
 *   127.0.0.1 (the kernel's choice on loopback).
 * - getaddrinfo() of a Service's name (under .svc or .svc.cluster.local)
 *   answers the Service's ClusterIP from the hosts file the kubelet keeps
 *   in its state dir ($LOCALKUBE_KUBELET/hosts, kubelet/dns.rs), read at
 *   each lookup: the stand-in for cluster DNS. Every other name goes to
 *   the host's resolver.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                              struct addrinfo **);

static int pod_addr(struct in_addr *out) {
    const char *s = getenv("LOCALKUBE_POD_IP");
    return s != NULL && inet_pton(AF_INET, s, out) == 1;
}

static bind_fn real_bind(void) {
    static bind_fn f;
    if (f == NULL) f = (bind_fn)dlsym(RTLD_NEXT, "bind");
    return f;
}

static connect_fn real_connect(void) {
    static connect_fn f;
    if (f == NULL) f = (connect_fn)dlsym(RTLD_NEXT, "connect");
    return f;
}

static int is_local_v4(struct in_addr a) {
    return a.s_addr == htonl(INADDR_ANY) || a.s_addr == htonl(INADDR_LOOPBACK);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    struct in_addr pod;
    if (addr != NULL && pod_addr(&pod)) {
        if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
            struct sockaddr_in a;
            memcpy(&a, addr, sizeof a);
            if (is_local_v4(a.sin_addr)) {
                a.sin_addr = pod;
                return real_bind()(fd, (const struct sockaddr *)&a, sizeof a);
            }
        } else if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
            struct sockaddr_in6 a6;
            memcpy(&a6, addr, sizeof a6);
            if (IN6_IS_ADDR_UNSPECIFIED(&a6.sin6_addr) || IN6_IS_ADDR_LOOPBACK(&a6.sin6_addr)) {
                errno = EADDRNOTAVAIL;
                return -1;
            }
        }
    }
    return real_bind()(fd, addr, len);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    struct in_addr pod;
    if (addr != NULL && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) &&
        pod_addr(&pod)) {
        struct sockaddr_in dst;
        memcpy(&dst, addr, sizeof dst);
        if (dst.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) dst.sin_addr = pod;
        int type = 0;
        socklen_t tlen = sizeof type;
        struct sockaddr_in mine;
        socklen_t mlen = sizeof mine;
        memset(&mine, 0, sizeof mine);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_STREAM &&
            getsockname(fd, (struct sockaddr *)&mine, &mlen) == 0 && mine.sin_family == AF_INET &&
            mine.sin_port == 0 && mine.sin_addr.s_addr == htonl(INADDR_ANY)) {
            struct sockaddr_in src;
            memset(&src, 0, sizeof src);
            src.sin_family = AF_INET;
            src.sin_addr = pod;
            src.sin_port = 0;
            /* Best effort: a failure leaves the kernel's choice of source. */
            (void)real_bind()(fd, (const struct sockaddr *)&src, sizeof src);
        }
        return real_connect()(fd, (const struct sockaddr *)&dst, sizeof dst);
    }
    return real_connect()(fd, addr, len);
}

static getaddrinfo_fn real_getaddrinfo(void) {
    static getaddrinfo_fn f;
    if (f == NULL) f = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    return f;
}

/* Whether the first n bytes of name end with suffix (case-insensitive). */
static int ends_with(const char *name, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n > k && strncasecmp(name + n - k, suffix, k) == 0;
}

/* The address the kubelet's hosts file gives the Service name `name` (an
 * absolute name's trailing dot ignored), copied into ip; 0 when the name
 * is no Service's or the file is not there. */
static int service_addr(const char *name, char *ip, size_t len) {
    const char *dir = getenv("LOCALKUBE_KUBELET");
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.') n--;
    if (dir == NULL || !(ends_with(name, n, ".svc") || ends_with(name, n, ".svc.cluster.local")))
        return 0;
    char path[4096];
    int w = snprintf(path, sizeof path, "%s/hosts", dir);
    if (w < 0 || (size_t)w >= sizeof path) return 0;
    FILE *f = fopen(path, "re");
    if (f == NULL) return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        char *save = NULL;
        char *addr = strtok_r(line, " \t\n", &save);
        if (addr == NULL) continue;
        for (char *h = strtok_r(NULL, " \t\n", &save); h != NULL;
             h = strtok_r(NULL, " \t\n", &save)) {
            if (strlen(h) == n && strncasecmp(h, name, n) == 0) {
                if (strlen(addr) < len) {
                    memcpy(ip, addr, strlen(addr) + 1);
                    found = 1;
                }
                break;
            }
        }
    }
    fclose(f);
    return found;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    char ip[INET6_ADDRSTRLEN];
    if (node != NULL && service_addr(node, ip, sizeof ip))
        return real_getaddrinfo()(ip, service, hints, res);
    return real_getaddrinfo()(node, service, hints, res);
}
