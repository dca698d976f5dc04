#!/usr/bin/env bash
# A real Kubernetes node on this machine (docs/node.md): the kubelet and
# kube-proxy of k8s.io/kubernetes v1.36.3 (the `controlplane` binary's
# `kubelet` and `proxy`), containerd with its runc shim, runc, and the CNI
# plugins bridge, host-local, portmap and loopback, running Logbook's own
# images (`make images`) in real containers.
#
# It runs in network and mount namespaces of its own and changes nothing
# else on the host: no sysctl (the kubelet's kernel tunables are answered
# by files bound over /proc/sys in its mount namespace), no iptables rule
# (kube-proxy's and the bridge's rules are in its network namespace), no
# cgroup outside <this process's memory cgroup>/logbook-node-<n>. What the
# host gets is a veth and two routes, so that its own processes (the
# operator under `logbook local`, tests, kubectl) reach pods and Services
# as they would on a cluster's network; they go with the namespace.
#
#   scripts/node.sh build                  containerd, shim, ctr, CNI plugins
#                                          (node/), kubelet and kube-proxy
#                                          (controlplane/), into .tools/bin/node
#   scripts/node.sh net N                  the namespace and the veth of node N
#                                          (1..200); prints the API server's
#                                          address to give `controlplane up`
#   scripts/node.sh up N DIR PKI           the node, in the foreground, with
#                                          the control plane's certificates
#                                          in PKI; state and logs in DIR;
#                                          prints `ready` once the Node is
#                                          registered and its images loaded
#   scripts/node.sh down N                 whatever of node N is left
#   scripts/node.sh cgroup N               the node's cgroup root (for faults)
#
# Several nodes of one cluster (P, the first, is the one whose host end
# the API server listens on):
#   scripts/node.sh certs N PKI OUT        node N's own kubelet certificates
#                                          and kubeconfig, signed by PKI's CA,
#                                          into OUT (with the CA and
#                                          kube-proxy's kubeconfig)
#   scripts/node.sh fabric P N...          the link between the nodes: a
#                                          bridge in the namespace
#                                          logbook-fabric-P, node k (its
#                                          place) on it at 198.18.P.(128+k)/27,
#                                          and routes to each other's pods
#   scripts/node.sh fabric-down P          that bridge and its namespace
#                                          (and the outside clients on it)
#   scripts/node.sh outside P NAME [LB [N]]
#                                          a machine outside the cluster: the
#                                          network namespace
#                                          logbook-outside-P-NAME on the
#                                          fabric of P (made, of node P
#                                          alone, if there is none), at
#                                          198.18.P.(159-s) for its slot s
#                                          (1, 2, ... from the top of the
#                                          link), routed to the fabric's link
#                                          and to each node's InternalIP
#                                          through that node's place on it,
#                                          and to nothing else: no pod, no
#                                          Service, not the host; with LB (a
#                                          CIDR), that block through node N's
#                                          place (default P), as MetalLB's L2
#                                          mode delivers load-balancer
#                                          addresses. Prints `netns NAME`,
#                                          `address A`, then a line
#                                          `node NAME FABRIC INTERNAL` each
#   scripts/node.sh outside-down P NAME    that namespace (its link with it)
#   scripts/node.sh cut N / heal N         node N partitioned: every packet
#                                          in or out of its links dropped
#                                          (its pods keep running and reach
#                                          each other), and back
#   scripts/node.sh stop N                 node N dies: every process in its
#                                          cgroups killed (kubelet,
#                                          containerd, shims, containers);
#                                          its network and files stay
#
# `up` reads LOGBOOK_NODE_ZONE (the node's topology.kubernetes.io/zone
# label) and LOGBOOK_NODE_DNS (the cluster DNS; default the host's end).
#
# Addresses of node N: the host's end of the veth 198.18.N.253 (the API
# server listens there), the node's 198.18.N.254 (its InternalIP), pods in
# 198.18.N.0/25 on the bridge, Services in 198.19.N.0/24.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="$ROOT/.tools"
NODEBIN="$TOOLS/bin/node"
STAMP="$TOOLS/node.stamp"
K8S_VERSION=v1.36.3
PAUSE_IMAGE=registry.k8s.io/pause:3.10.2

say() { printf 'node: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

source_hash() {
	(cd "$ROOT" && cat node/go.mod node/go.sum node/*.go controlplane/go.mod controlplane/go.sum controlplane/*.go) | sha256sum | awk '{ print $1 }'
}

build() {
	command -v go >/dev/null 2>&1 || die "missing 'go': install Go 1.26 — the node is built from its Go modules"
	mkdir -p "$NODEBIN/cni"
	exec 9>"$TOOLS/node.lock"
	flock 9
	local want started=$SECONDS
	want=$(source_hash)
	if [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] && [ -x "$NODEBIN/containerd" ] && [ -x "$NODEBIN/cni/bridge" ] \
		&& [ -x "$NODEBIN/kube-network-policies" ]; then
		say "built"
		return
	fi
	# The kubelet and kube-proxy are parts of the control plane's binary.
	LOGBOOK_NODE_BUILD_FOLLOWS=1 bash "$ROOT/scripts/controlplane.sh" build
	say "building containerd, containerd-shim-runc-v2, ctr and the CNI plugins from their Go modules"
	(cd "$ROOT/node" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -gcflags=all=-dwarf=false -ldflags "-s -w" -o "$NODEBIN/" \
		github.com/containerd/containerd/v2/cmd/containerd \
		github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
		github.com/containerd/containerd/v2/cmd/ctr) || die "go build of containerd failed (above)"
	(cd "$ROOT/node" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -gcflags=all=-dwarf=false -ldflags "-s -w" -o "$NODEBIN/cni/" \
		github.com/containernetworking/plugins/plugins/main/bridge \
		github.com/containernetworking/plugins/plugins/main/loopback \
		github.com/containernetworking/plugins/plugins/ipam/host-local \
		github.com/containernetworking/plugins/plugins/meta/portmap) || die "go build of the CNI plugins failed (above)"
	# The NetworkPolicy engine: sigs.k8s.io/kube-network-policies' controller
	# (node/networkpolicies.go).
	(cd "$ROOT/node" && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -gcflags=all=-dwarf=false -ldflags "-s -w" \
		-o "$NODEBIN/kube-network-policies" .) || die "go build of kube-network-policies failed (above)"
	echo "$want" >"$STAMP"
	say "built in $((SECONDS - started)) s"
	# A one-off build (CI) has no use for the compiled packages after.
	if [ "${LOGBOOK_TRIM_GO_CACHE:-0}" = 1 ]; then
		go clean -cache && say "Go build cache removed (LOGBOOK_TRIM_GO_CACHE=1)"
	fi
}

# Node N's names and addresses.
names() {
	N="$1"
	[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 200 ] || die "node index '$N': a number from 1 to 200"
	NETNS="logbook-node-$N"
	HOST_IF="lbk$N"
	NODE_IF="eth0"
	HOST_IP="198.18.$N.253"
	NODE_IP="198.18.$N.254"
	POD_CIDR="198.18.$N.0/25"
	SERVICE_CIDR="198.19.$N.0/24"
	NODE_NAME="logbook-node-$N"
}

# The node's cgroup path, the same in every v1 hierarchy: under this
# process's memory cgroup, the one the machine gives it.
cgroup_root() {
	local mem
	mem=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
	mem="${mem%/}"
	echo "$mem/logbook-node-$N"
}

# Every v1 hierarchy mounted under /sys/fs/cgroup.
hierarchies() {
	awk '$3 == "cgroup" { print $2 }' /proc/mounts | grep '^/sys/fs/cgroup/' || true
}

net() {
	names "$1"
	command -v ip >/dev/null 2>&1 || die "missing 'ip' (apt-get install -y iproute2)"
	down_net
	ip netns add "$NETNS"
	ip link add "$HOST_IF" type veth peer name "$NODE_IF" netns "$NETNS"
	ip addr add "$HOST_IP/30" dev "$HOST_IF"
	ip link set "$HOST_IF" up
	ip -n "$NETNS" addr add "$NODE_IP/30" dev "$NODE_IF"
	ip -n "$NETNS" link set "$NODE_IF" up
	ip -n "$NETNS" link set lo up
	ip -n "$NETNS" route add default via "$HOST_IP"
	# The host reaches pods and Services through the node, as a cluster's
	# network routes them.
	ip route add "$POD_CIDR" via "$NODE_IP" dev "$HOST_IF"
	ip route add "$SERVICE_CIDR" via "$NODE_IP" dev "$HOST_IF"
	echo "$HOST_IP"
}

down_net() {
	ip link del "$HOST_IF" 2>/dev/null || true
	ip netns del "$NETNS" 2>/dev/null || true
}

# Kills every process in the node's cgroups (containers, shims, the
# node's daemons) and removes the cgroups, deepest first.
down_cgroups() {
	local cg h pass
	cg=$(cgroup_root)
	for pass in 1 2 3 4 5; do
		local left=0
		for h in $(hierarchies); do
			[ -d "$h$cg" ] || continue
			while read -r pid; do
				[ -n "$pid" ] || continue
				kill -9 "$pid" 2>/dev/null || true
				left=1
			done < <(find "$h$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
		done
		[ "$left" = 1 ] || break
		sleep 0.2
	done
	for h in $(hierarchies); do
		[ -d "$h$cg" ] || continue
		# A frozen cgroup's processes die only once thawed.
		find "$h$cg" -name freezer.state -exec sh -c 'echo THAWED >"$1"' _ {} \; 2>/dev/null || true
		find "$h$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	done
}

# Node N's own identity in a cluster whose certificates are in PKI: a
# kubelet serving certificate at its InternalIP and a client certificate
# as system:node:<name> (the Node authorizer and NodeRestriction let each
# kubelet write only its own Node and pods), signed by the CA with
# openssl; the CA and kube-proxy's kubeconfig copied beside them.
certs() {
	names "$1"
	local pki="$2" out="$3" server t which ext
	command -v openssl >/dev/null 2>&1 || die "missing 'openssl' (apt-get install -y openssl)"
	[ -f "$pki/ca.key" ] && [ -f "$pki/node.kubeconfig" ] || die "no CA or node kubeconfig in $pki"
	server=$(awk '$1 == "server:" { print $2; exit }' "$pki/node.kubeconfig")
	[ -n "$server" ] || die "no server in $pki/node.kubeconfig"
	mkdir -p "$out"
	chmod 700 "$out"
	out=$(cd "$out" && pwd)
	# kube-proxy's kubeconfig carries its certificate: the same on every node.
	cp "$pki/ca.crt" "$pki/proxy.kubeconfig" "$out/"
	t=$(mktemp -d)
	printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1,IP:%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' \
		"$NODE_NAME" "$NODE_IP" >"$t/serve.ext"
	printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >"$t/client.ext"
	for which in kubelet node; do
		ext=serve
		[ "$which" = node ] && ext=client
		openssl ecparam -name prime256v1 -genkey -noout -out "$out/$which.key" 2>/dev/null
		openssl req -new -key "$out/$which.key" -subj "/O=system:nodes/CN=system:node:$NODE_NAME" -out "$t/$which.csr" 2>/dev/null
		openssl x509 -req -in "$t/$which.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
			-CAserial "$t/ca.srl" -days 365 -extfile "$t/$ext.ext" -out "$out/$which.crt" 2>/dev/null \
			|| die "openssl could not sign the $which certificate of $NODE_NAME"
		chmod 600 "$out/$which.key"
	done
	rm -rf "$t"
	cat >"$out/node.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $server
    certificate-authority: $out/ca.crt
users:
- name: node
  user:
    client-certificate: $out/node.crt
    client-key: $out/node.key
contexts:
- name: local
  context: { cluster: local, user: node }
current-context: local
EOF
	chmod 600 "$out/node.kubeconfig"
}

# The link between the nodes of cluster P: a bridge in a namespace of its
# own (cutting any node, P included, leaves the others linked), each
# node's `fab0` on it, and in each node a route to every other node's
# pods. The host is not on it and forwards nothing: it reaches each node's
# pods over that node's own link, as before.
fabric() {
	local p="$1" ns n m k km
	shift
	[[ "$p" =~ ^[0-9]+$ ]] || die "fabric: cluster index '$p' is not a number"
	[ "$#" -le 30 ] || die "fabric: at most 30 nodes"
	ns="logbook-fabric-$p"
	fabric_down "$p"
	ip netns add "$ns"
	ip -n "$ns" link add br0 type bridge
	ip -n "$ns" link set br0 up
	k=0
	for n in "$@"; do
		k=$((k + 1))
		names "$n"
		ip netns list | grep -qw "$NETNS" || die "fabric: no network namespace $NETNS (scripts/node.sh net $n first)"
		ip -n "$NETNS" link del fab0 2>/dev/null || true
		ip -n "$ns" link add "fb$n" type veth peer name fab0 netns "$NETNS"
		ip -n "$ns" link set "fb$n" master br0 up
		# /27: the link's own prefix must not cover the host's end
		# (198.18.P.253), which each node reaches through the host.
		ip -n "$NETNS" addr add "198.18.$p.$((128 + k))/27" dev fab0
		ip -n "$NETNS" link set fab0 up
	done
	k=0
	for n in "$@"; do
		k=$((k + 1))
		km=0
		for m in "$@"; do
			km=$((km + 1))
			[ "$m" = "$n" ] && continue
			ip -n "logbook-node-$n" route replace "198.18.$m.0/25" via "198.18.$p.$((128 + km))" dev fab0
			# Its address (InternalIP, the node's end of its link to
			# the host) too: a cluster's nodes reach each other, and a
			# pod reaches another node's node ports there (a Valkey
			# Cluster exposed by node ports gossips through them).
			ip -n "logbook-node-$n" route replace "198.18.$m.254/32" via "198.18.$p.$((128 + km))" dev fab0
		done
	done
}

fabric_down() {
	local ns
	for ns in /run/netns/logbook-outside-"$1"-*; do
		[ -e "$ns" ] && { ip netns del "${ns#/run/netns/}" 2>/dev/null || true; }
	done
	ip netns del "logbook-fabric-$1" 2>/dev/null || true
}

# The fabric address of node N (its `fab0`), empty if it has none.
fabric_address() {
	ip -n "logbook-node-$1" -4 -o addr show dev fab0 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'
}

# A machine outside cluster P's pod network, as a client beyond the
# cluster is: on the nodes' link (the fabric) and nowhere else. It reaches
# what the nodes expose there (a NodePort on any node's address, a
# load-balancer address routed to a node), and nothing a cluster keeps
# inside: no route to the pods, the Services or the host, so a packet to
# them fails at once as unreachable. The nodes report 198.18.N.254 (the
# node's end of its link to the host) as their InternalIP, which is not on
# the fabric: each gets a route of its own through that node's fabric
# address, where the node accepts it as its own.
outside() {
	local p="$1" name="$2" lb="${3:-}" via="${4:-$1}" fab ns port n s addr count=0 gw
	[[ "$p" =~ ^[0-9]+$ ]] || die "outside: cluster index '$p' is not a number"
	[[ "$name" =~ ^[a-z0-9][a-z0-9-]{0,31}$ ]] || die "outside: name '$name': lower-case letters, digits and dashes, at most 32"
	[ -z "$lb" ] || [[ "$lb" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$ ]] || die "outside: load-balancer block '$lb' is not an IPv4 CIDR"
	fab="logbook-fabric-$p"
	ns="logbook-outside-$p-$name"
	if [ ! -e "/run/netns/$fab" ]; then
		# One node has no fabric of its own: make it, of that node alone.
		[ -e "/run/netns/logbook-node-$p" ] || die "outside: no node $p (scripts/node.sh net $p first)"
		fabric "$p" "$p"
	fi
	outside_down "$p" "$name"
	local nodes=()
	for port in $(ip -n "$fab" -o link show master br0 | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
		case "$port" in fb*) nodes+=("${port#fb}") ;; esac
	done
	count=${#nodes[@]}
	[ "$count" -ge 1 ] || die "outside: no node on the fabric $fab"
	# The top of the link down; nodes take it from the bottom (128+k).
	for s in $(seq 1 30); do
		ip -n "$fab" link show "ob$s" >/dev/null 2>&1 || break
	done
	! ip -n "$fab" link show "ob$s" >/dev/null 2>&1 || die "outside: every slot on the fabric of $p is taken"
	addr=$((159 - s))
	[ "$addr" -gt $((128 + count)) ] || die "outside: no address left on the fabric of $p ($count nodes, $((s - 1)) outside clients)"
	ip netns add "$ns"
	ip -n "$fab" link add "ob$s" type veth peer name eth0 netns "$ns"
	ip -n "$fab" link set "ob$s" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "198.18.$p.$addr/27" dev eth0
	ip -n "$ns" link set eth0 up
	echo "netns $ns"
	echo "address 198.18.$p.$addr"
	for n in "${nodes[@]}"; do
		gw=$(fabric_address "$n")
		[ -n "$gw" ] || { outside_down "$p" "$name"; die "outside: node $n has no fabric address"; }
		ip -n "$ns" route add "198.18.$n.254/32" via "$gw" dev eth0
		echo "node logbook-node-$n $gw 198.18.$n.254"
	done
	if [ -n "$lb" ]; then
		gw=$(fabric_address "$via")
		[ -n "$gw" ] || { outside_down "$p" "$name"; die "outside: node $via is not on the fabric of $p"; }
		ip -n "$ns" route add "$lb" via "$gw" dev eth0 || { outside_down "$p" "$name"; die "outside: cannot route $lb via $gw"; }
	fi
}

# The outside client's namespace; its link goes with it.
outside_down() {
	[[ "$2" =~ ^[a-z0-9][a-z0-9-]{0,31}$ ]] || die "outside-down: name '$2': lower-case letters, digits and dashes"
	ip netns del "logbook-outside-$1-$2" 2>/dev/null || true
}

# iptables in node N's network namespace (where kube-proxy's rules are).
node_iptables() {
	nsenter --net="/run/netns/$NETNS" iptables -w "$@"
}

# Node N cut off: a chain first in INPUT, OUTPUT and FORWARD of its
# namespace drops whatever crosses its links (to the host, to the other
# nodes), silently, as a partition does. Its pods keep running and reach
# each other on its bridge; nothing else reaches them.
cut() {
	names "$1"
	command -v iptables >/dev/null 2>&1 || die "missing 'iptables' (make setup installs it)"
	node_iptables -N LOGBOOK-CUT 2>/dev/null || node_iptables -F LOGBOOK-CUT
	local dev chain
	for dev in "$NODE_IF" fab0; do
		node_iptables -A LOGBOOK-CUT -i "$dev" -j DROP
		node_iptables -A LOGBOOK-CUT -o "$dev" -j DROP
	done
	for chain in INPUT OUTPUT FORWARD; do
		node_iptables -C "$chain" -j LOGBOOK-CUT 2>/dev/null || node_iptables -I "$chain" 1 -j LOGBOOK-CUT
	done
}

heal() {
	names "$1"
	local chain
	for chain in INPUT OUTPUT FORWARD; do
		while node_iptables -D "$chain" -j LOGBOOK-CUT 2>/dev/null; do :; done
	done
	node_iptables -F LOGBOOK-CUT 2>/dev/null || true
	node_iptables -X LOGBOOK-CUT 2>/dev/null || true
}

# Node N dies: everything in its cgroups killed (the kubelet, kube-proxy,
# containerd, the shims, every container), its network and files left as
# a dead machine leaves them.
stop() {
	names "$1"
	down_cgroups
}

down() {
	names "$1"
	down_cgroups
	down_net
	# The fabric named after it (one an outside client made for a single
	# node; of several, the first's, which goes with them).
	fabric_down "$1"
}

# The kubelet's kernel tunables (k8s.io/component-helpers
# node/util/sysctl): it sets them when they differ, and these are not
# namespaced, so in the node's mount namespace a file holding the value
# it wants is bound over each one that differs: the kubelet reads what it
# wants and writes nothing to the host (protectKernelDefaults makes it
# fail rather than write, should one be missed).
mask_sysctls() {
	local dir="$1" key want have
	mkdir -p "$dir/sysctl"
	for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
		kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
		key="${kv%%=*}" want="${kv#*=}"
		have=$(cat "/proc/sys/$key")
		if [ "$have" != "$want" ]; then
			echo "$want" >"$dir/sysctl/${key//\//.}"
			mount --bind "$dir/sysctl/${key//\//.}" "/proc/sys/$key"
		fi
	done
}

write_configs() {
	local dir="$1" pki="$2" cg="$3"
	mkdir -p "$dir/containerd" "$dir/cni/net.d" "$dir/cni/ipam" "$dir/kubelet" "$dir/pod-logs" "$dir/proxy"
	cat >"$dir/containerd/config.toml" <<EOF
# containerd 2.3 for node $N (scripts/node.sh; docs/node.md says why each
# setting is so).
version = 3
root = "$dir/containerd/root"
state = "/run/containerd-node"
temp = "$dir/containerd/tmp"
oom_score = 0
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "/run/containerd-node/containerd.sock"

[ttrpc]
  address = "/run/containerd-node/containerd.sock.ttrpc"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  disable_apparmor = true
  # No CAP_SYS_RESOURCE here: no negative oom_score_adj for anyone.
  restrict_oom_score_adj = true
  enable_cdi = false
  netns_mounts_under_state_dir = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$NODEBIN/cni"]
    conf_dir = "$dir/cni/net.d"
    max_conf_num = 1

[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "$NODE_IP"
  stream_server_port = "0"
EOF
	cat >"$dir/cni/net.d/10-logbook.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "logbook-node-$N",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "isDefaultGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "198.18.$N.1" }]],
        "dataDir": "$dir/cni/ipam"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
	cat >"$dir/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host is cgroup v1, which Kubernetes 1.35+ refuses by default.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: "$cg"
containerRuntimeEndpoint: unix:///run/containerd-node/containerd.sock
# Fail rather than write a host sysctl (they are answered in the node's
# mount namespace: mask_sysctls).
protectKernelDefaults: true
# No CAP_SYS_RESOURCE: a negative score cannot be set.
oomScoreAdj: 0
address: "$NODE_IP"
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: "$pki/kubelet.crt"
tlsPrivateKeyFile: "$pki/kubelet.key"
rotateCertificates: false
serverTLSBootstrap: false
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: "$pki/ca.crt" }
authorization:
  mode: Webhook
clusterDomain: cluster.local
# \`logbook local\`'s cluster DNS, on the host's end of the link
# (src/local/cluster_dns.rs): Service names resolve as in a cluster.
clusterDNS: ["${LOGBOOK_NODE_DNS:-$HOST_IP}"]
resolvConf: "$dir/kubelet/resolv.conf"
podLogsDir: "$dir/pod-logs"
# The images are imported, never pulled: never collect them, and do not
# evict for a shared disk's fill level.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%" }
failSwapOn: false
maxPods: 60
syncFrequency: 10s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
serializeImagePulls: false
EOF
	# No DNS server outside the cluster is reachable here: pods of
	# dnsPolicy Default resolve nothing but /etc/hosts; ClusterFirst pods
	# (the default) ask the cluster DNS (clusterDNS above).
	printf 'nameserver 127.0.0.1\noptions ndots:1\n' >"$dir/kubelet/resolv.conf"
	cat >"$dir/proxy/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: "$pki/proxy.kubeconfig"
hostnameOverride: "$NODE_NAME"
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: "$POD_CIDR"
# Not here: nf_conntrack_max is read-only outside the host's network
# namespace, and the hash size is the host's.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
  syncPeriod: 30s
  minSyncPeriod: 0s
oomScoreAdj: 0
EOF
}

wait_for() {
	local what="$1" tries="$2"
	shift 2
	for _ in $(seq 1 "$tries"); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	die "$what did not come up (logs in $DIR)"
}

# Inside the node's namespaces (network: the named one; mount: a private
# copy of the host's, shared within itself so the kubelet's volume mounts
# reach containerd and runc and never the host).
inside() {
	names "$1"
	DIR="$2"
	local pki="$3" cg h pids=()
	mount --make-rshared /
	mount -t tmpfs -o mode=0755 tmpfs /run
	mkdir -p "$DIR/cni/lib" /var/lib/cni
	mount --bind "$DIR/cni/lib" /var/lib/cni
	mask_sysctls "$DIR"
	sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1

	cg=$(cgroup_root)
	for h in $(hierarchies); do
		mkdir -p "$h$cg/system"
	done
	# cpuset: a new cgroup has no CPUs or memory nodes until given its
	# parent's.
	if [ -d /sys/fs/cgroup/cpuset ]; then
		local path="" parent part f
		for part in $(tr / ' ' <<<"$cg/system"); do
			parent="/sys/fs/cgroup/cpuset$path"
			path="$path/$part"
			for f in cpuset.cpus cpuset.mems; do
				[ -n "$(cat "/sys/fs/cgroup/cpuset$path/$f")" ] || cat "$parent/$f" >"/sys/fs/cgroup/cpuset$path/$f"
			done
		done
	fi
	for h in $(hierarchies); do
		echo $$ >"$h$cg/system/cgroup.procs"
	done

	write_configs "$DIR" "$pki" "$cg"
	trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT
	trap 'exit 0' TERM INT

	"$NODEBIN/containerd" --config "$DIR/containerd/config.toml" >"$DIR/containerd.log" 2>&1 &
	pids+=($!)
	wait_for containerd 150 "$NODEBIN/ctr" -a /run/containerd-node/containerd.sock version
	local image
	for image in "$TOOLS"/images/*.oci.tar; do
		[ -f "$image" ] || die "no images in $TOOLS/images: run make images"
		"$NODEBIN/ctr" -a /run/containerd-node/containerd.sock -n k8s.io images import \
			--platform linux/amd64 --snapshotter overlayfs "$image" >>"$DIR/images.log" 2>&1 \
			|| die "ctr images import $image failed (log: $DIR/images.log)"
	done
	"$TOOLS/bin/controlplane" kubelet --config "$DIR/kubelet/config.yaml" \
		--kubeconfig "$pki/node.kubeconfig" --hostname-override "$NODE_NAME" \
		--node-ip "$NODE_IP" --root-dir "$DIR/kubelet/root" \
		${LOGBOOK_NODE_ZONE:+--node-labels=topology.kubernetes.io/zone=$LOGBOOK_NODE_ZONE} \
		--v=1 >"$DIR/kubelet.log" 2>&1 &
	pids+=($!)
	"$TOOLS/bin/controlplane" proxy --config "$DIR/proxy/config.yaml" --v=1 >"$DIR/kube-proxy.log" 2>&1 &
	pids+=($!)
	# The NetworkPolicy engine (kube-network-policies; docs/node.md), signed
	# in as kube-proxy; a node holding the admin kubeconfig binds it its
	# read-only ClusterRole first.
	local admin=""
	[ -f "$pki/admin.kubeconfig" ] && admin="$pki/admin.kubeconfig"
	"$NODEBIN/kube-network-policies" --kubeconfig "$pki/proxy.kubeconfig" ${admin:+--bind-with "$admin"} \
		--hostname-override "$NODE_NAME" --pod-cidr "$POD_CIDR" >"$DIR/network-policies.log" 2>&1 &
	pids+=($!)
	wait_for "the kubelet's health" 300 curl -fsS http://127.0.0.1:10248/healthz
	echo ready
	# Any of them ending ends the node.
	wait -n "${pids[@]}" || true
	say "a node component exited (logs in $DIR)"
	exit 1
}

up() {
	names "$1"
	local dir="$2" pki="$3"
	[ -x "$TOOLS/bin/controlplane" ] && [ -x "$NODEBIN/containerd" ] || die "not built: run scripts/node.sh build"
	command -v runc >/dev/null 2>&1 || die "missing runc (apt-get install -y runc; make setup installs it)"
	ip netns list | grep -qw "$NETNS" || die "no network namespace $NETNS: run scripts/node.sh net $N first"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	pki=$(cd "$pki" && pwd)
	trap 'down_cgroups' EXIT
	trap 'exit 0' TERM INT
	# nsenter, not `ip netns exec`: that remounts /sys, which hides the
	# cgroup hierarchies the kubelet needs.
	nsenter --net="/run/netns/$NETNS" unshare --mount --propagation private \
		bash "$0" inside "$N" "$dir" "$pki" &
	wait $!
}

case "${1:-}" in
build) build ;;
net) net "$2" ;;
up) up "$2" "$3" "$4" ;;
inside) inside "$2" "$3" "$4" ;;
down) down "$2" ;;
cgroup) names "$2"; cgroup_root ;;
certs) certs "$2" "$3" "$4" ;;
fabric) shift; fabric "$@" ;;
fabric-down) fabric_down "$2" ;;
outside) outside "$2" "$3" "${4:-}" "${5:-}" ;;
outside-down) outside_down "$2" "$3" ;;
cut) cut "$2" ;;
heal) heal "$2" ;;
stop) stop "$2" ;;
*) die "usage: scripts/node.sh build | net N | up N DIR PKI | down N | cgroup N | certs N PKI OUT | fabric P N... | fabric-down P | outside P NAME [LB [N]] | outside-down P NAME | cut N | heal N | stop N" ;;
esac
