//! `start.sh`, the Valkey container's entrypoint: it writes the runtime
//! `valkey.conf` (the ConfigMap's, plus the password and the boot role) and
//! execs `valkey-server` on it (`redis-server` in an image that has no
//! `valkey-server`).
//!
//! Why a script: the password must reach `valkey.conf` without ever being on
//! a command line or in a ConfigMap, and the role a pod boots with must be
//! the one the operator last decided (DESIGN §5, "a role is a decision,
//! never a boot default"), read from the boot ConfigMap at start.
//!
//! The script is POSIX `sh` using builtins only (`printf`, `read`, `case`,
//! `command -v`, redirections; `mv` and `rm` only to set aside files a
//! downgraded server cannot read), so it runs the same in the image, under localkube's
//! process kubelet and in tests. Its paths and port default to the pod's
//! and may be overridden by environment variables for tests:
//! `VALKEY_CONF_DIR` (`/etc/valkey`), `VALKEY_BOOT_DIR` (`/etc/valkey-boot`)
//! `VALKEY_RUN_DIR` (`/run/valkey`),
//! `VALKEY_DATA_DIR` (replaces the `dir` line when set) and `VALKEY_PORT`
//! (replaces the `port` line when set, or with TLS the `tls-port` line).

use logbook_crds::Topology;

use super::VALKEY_PORT;
use super::internal_users::{INTERNAL_USERS, data_node_rules};

/// Where a pod with no decided primary replicates from: an address of
/// TEST-NET-1 (RFC 5737), which nothing answers. This is the fence: a
/// replica of an unreachable primary is read-only and, having no link to
/// its primary, refuses to be a sync source for other replicas
/// (`NOMASTERLINK`), so a primary whose process restarted in place can
/// never feed stale data to replicas that hold newer data. Only the
/// operator lifts the fence, by promoting or repointing the pod.
pub const FENCE_HOST: &str = "192.0.2.1";

/// The script's fixed prelude, around [`QUOTE_FN`]: settings, then the
/// copy of the ConfigMap's `valkey.conf` with the test overrides and
/// password.
const PRELUDE_HEAD: &str = r#"#!/bin/sh
# Rendered by the Logbook operator (src/resources/start_script.rs).
# Writes the runtime valkey.conf, then execs valkey-server on it.
set -eu

conf_dir=${VALKEY_CONF_DIR:-/etc/valkey}
boot_dir=${VALKEY_BOOT_DIR:-/etc/valkey-boot}
run_dir=${VALKEY_RUN_DIR:-/run/valkey}
run_conf=$run_dir/valkey.conf
# The port override must be a number: Kubernetes' service links would set
# VALKEY_PORT=tcp://... in the pods of any namespace with a Service named
# `valkey` (the pod disables them; this is a second guard).
case ${VALKEY_PORT:-} in
*[!0-9]*) VALKEY_PORT= ;;
esac

"#;

/// `nl`, `cr` and the shell function `quote VALUE`, which prints VALUE as
/// a double-quoted config argument; shared with the Sentinel's script.
pub(super) const QUOTE_FN: &str = r#"nl='
'
cr=$(printf '\r')

# quote VALUE: VALUE as a double-quoted valkey.conf argument. Builtins
# only, so a password never appears in any process's arguments.
quote() {
    rest=$1
    out=
    while [ -n "$rest" ]; do
        c=${rest%"${rest#?}"}
        rest=${rest#?}
        case $c in
        '\' | '"') out="$out\\$c" ;;
        "$nl") out="$out\\n" ;;
        "$cr") out="$out\\r" ;;
        *) out="$out$c" ;;
        esac
    done
    printf '"%s"' "$out"
}
"#;

/// The rest of the prelude, after [`QUOTE_FN`].
const PRELUDE_TAIL: &str = r#"
# The runtime config may hold the password: readable by this user only.
# (The emptyDir outlives container restarts; the file keeps the mode it
# was created with.)
umask 077
{
    # The overrides replace the ConfigMap's lines rather than follow them:
    # valkey applies `dir` as it reads it, and /data may not exist.
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
        # With TLS the plaintext port stays shut; TLS takes the port.
        'port 0') ;;
        'port '*) [ -z "${VALKEY_PORT:-}" ] || line="port $VALKEY_PORT" ;;
        'tls-port '*) [ -z "${VALKEY_PORT:-}" ] || line="tls-port $VALKEY_PORT" ;;
        'dir '*) [ -z "${VALKEY_DATA_DIR:-}" ] || line="dir $(quote "$VALKEY_DATA_DIR")" ;;
        esac
        printf '%s\n' "$line"
    done <"$conf_dir/valkey.conf"
    if [ -n "${VALKEY_PASSWORD:-}" ]; then
        password=$(quote "$VALKEY_PASSWORD")
        printf 'requirepass %s\n' "$password"
        # Replicas authenticate as the replication user when there is one.
        [ -n "${LOGBOOK_REPLICATION_PASSWORD:-}" ] || printf 'masterauth %s\n' "$password"
        password=
    fi
    if [ -n "${LOGBOOK_REPLICATION_PASSWORD:-}" ]; then
        printf 'masteruser logbook-replication\n'
        printf 'masterauth %s\n' "$(quote "$LOGBOOK_REPLICATION_PASSWORD")"
    fi
} >"$run_conf"

# ACL users: the default user from the password, the others (ValkeyUsers,
# which the operator saves with ACL SAVE) as last saved. The file is kept
# beside the runtime config, so the users outlive a restart of the process
# (a new pod is given them by the operator). An ACL file line cannot hold
# a password with whitespace: then there is no file, and the operator
# gives the users again after a restart.
acl_file=$run_dir/users.acl
case ${VALKEY_PASSWORD:-} in
*[[:space:]]*)
    # No ACL file: the internal users go in the config file.
    internal_users >>"$run_conf"
    ;;
*)
    saved=
    if [ -r "$acl_file" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            case $line in
            'user default '* | 'user logbook-'* | '') ;;
            *) saved="$saved$line$nl" ;;
            esac
        done <"$acl_file"
    fi
    {
        if [ -n "${VALKEY_PASSWORD:-}" ]; then
            printf 'user default on >%s ~* &* +@all\n' "$VALKEY_PASSWORD"
        else
            printf 'user default on nopass ~* &* +@all\n'
        fi
        internal_users
        printf '%s' "$saved"
    } >"$acl_file"
    saved=
    printf 'aclfile %s\n' "$(quote "$acl_file")" >>"$run_conf"
    ;;
esac
"#;

/// `internal_users`, the shell function printing the internal users'
/// ACL lines (`user <name> on ><password> <rules>`) of a data node of
/// `topology`, each only when its password is in the environment and is a
/// generated one (letters and digits: an ACL line cannot quote).
fn internal_users_fn(topology: Topology) -> String {
    let mut out = String::from(
        "\n# The internal users (resources/internal_users.rs), from the environment.\ninternal_users() {\n",
    );
    for user in INTERNAL_USERS {
        let rules = data_node_rules(user.name, topology);
        out.push_str(&format!(
            "    case ${{{env}:-}} in\n    '' | *[!0-9A-Za-z]*) ;;\n    *) printf 'user {name} on >%s {rules}\\n' \"${env}\" ;;\n    esac\n",
            env = user.env,
            name = user.name,
        ));
    }
    out.push_str("}\n");
    out
}

/// `newer_files_aside`: on a server that cannot read them (Valkey 9
/// writes its RDB files as `VALKEY080`, which 8.x and Redis refuse at
/// start), the data files are set aside (`<name>.newer-format`, then
/// `.newer-format.1`, `.2`… when an earlier rollback set some aside:
/// never deleted nor overwritten), so that a replica going back to an older version takes a
/// full copy from its primary instead of failing at start. Called only
/// where the pod follows a primary: one that would serve its own files
/// keeps them (and fails, saying why).
const NEWER_FILES_ASIDE: &str = r#"
set_aside() {
    aside="$1.newer-format"
    n=1
    while [ -e "$aside" ]; do
        aside="$1.newer-format.$n"
        n=$((n + 1))
    done
    mv "$1" "$aside"
    printf '%s' "${aside##*/}"
}

newer_files_aside() {
    data=${VALKEY_DATA_DIR:-/data}
    version=$(valkey-server --version 2>/dev/null || redis-server --version 2>/dev/null || true)
    case $version in
    'Valkey server v='9.* | 'Valkey server v='[1-9][0-9].*) return 0 ;;
    esac
    if [ -f "$data/dump.rdb" ]; then
        magic=
        IFS= read -r magic <"$data/dump.rdb" || true
        case $magic in
        VALKEY*)
            aside=$(set_aside "$data/dump.rdb")
            printf 'start.sh: dump.rdb is in a newer format than %s reads: set aside as %s; a full copy comes from the primary
' "$version" "$aside" >&2
            ;;
        esac
    fi
    for base in "$data"/appendonlydir/*.base.rdb; do
        [ -f "$base" ] || continue
        magic=
        IFS= read -r magic <"$base" || true
        case $magic in
        VALKEY*)
            aside=$(set_aside "$data/appendonlydir")
            printf 'start.sh: appendonlydir is in a newer format than %s reads: set aside as %s
' "$version" "$aside" >&2
            break
            ;;
        esac
    done
    return 0
}
"#;

/// Standalone boots as a primary: there is no one else to follow.
const BOOT_PRIMARY: &str = r#"
# Standalone: the only pod is the primary.
"#;

/// Cluster: the node's identity, role and slots live in `nodes.conf` on
/// its volume (Valkey keeps it); `replicaof` does not exist in cluster
/// mode, and who is primary of a shard is Valkey's election's to say.
const BOOT_CLUSTER: &str = r#"
# Cluster: announce the pod's own address to the other nodes. The node id,
# role and slots are in nodes.conf on the volume; the operator joins new
# nodes and Valkey's election decides primaries.
case ${POD_IP:-} in
'' | *[!0-9A-Fa-f.:]*) ;;
*) printf 'cluster-announce-ip %s
' "$POD_IP" >>"$run_conf" ;;
esac
# A node that stopped as a primary serving slots restarts as one, with what
# it persisted or nothing, while its replica may hold writes it lost: it
# holds full resyncs back (its replicas keep their data) until the operator
# has handed the shard to that replica, or let it go on (see config.rs).
# So does a node with no nodes.conf at all: new, or back on a volume that
# was lost, at the address a replica of the lost node still follows; it is
# lifted once the node is given the slots of a cluster being formed, or
# promoted by the operator.
booted_primary=
fresh=1
if [ -r "${VALKEY_DATA_DIR:-/data}/nodes.conf" ]; then
    fresh=
    while read -r _id _addr flags _primary _ping _pong _epoch _link slots; do
        case ",$flags," in
        *,myself,*master,* | *,master,*myself,*) [ -z "$slots" ] || booted_primary=1 ;;
        esac
    done <"${VALKEY_DATA_DIR:-/data}/nodes.conf"
fi
if [ -n "$booted_primary$fresh" ]; then
    printf 'repl-diskless-sync-delay {BOOT_FENCE}\n' >>"$run_conf"
fi
if [ -z "$booted_primary" ]; then
    newer_files_aside
fi
"#;

/// The closing lines: replace the shell with the server, `valkey-server`,
/// or `redis-server` in an image without it (`spec.image` may name a
/// Redis image: the operator then reshards the classic way).
const EXEC: &str = r#"
if command -v valkey-server >/dev/null 2>&1; then
    exec valkey-server "$run_conf"
fi
exec redis-server "$run_conf"
"#;

/// The `start.sh` of a cluster of `topology`.
///
/// Standalone boots as a primary. Replication and Sentinel boot as a
/// replica of the primary named in the boot ConfigMap (`primary-host`), or
/// fenced (a replica of [`FENCE_HOST`]) when it names none, names this pod,
/// or names something that is not a host. A Cluster node boots as what its
/// `nodes.conf` says, announcing its pod address.
pub fn render_start_script(topology: Topology) -> String {
    let role = match topology {
        Topology::Standalone => BOOT_PRIMARY.to_owned(),
        Topology::Cluster => BOOT_CLUSTER.replace(
            "{BOOT_FENCE}",
            &super::config::CLUSTER_BOOT_FENCE_SECONDS.to_string(),
        ),
        Topology::Replication | Topology::Sentinel => boot_replica(),
    };
    let users = internal_users_fn(topology);
    let aside = match topology {
        Topology::Standalone => "",
        Topology::Cluster | Topology::Replication | Topology::Sentinel => NEWER_FILES_ASIDE,
    };
    format!("{PRELUDE_HEAD}{QUOTE_FN}{users}{aside}{PRELUDE_TAIL}{role}{EXEC}")
}

/// A Cluster or a Sentinel cluster with external access: what the node
/// announced when the operator last told it (`<boot>/announce-<pod>`,
/// written by the operator into the boot ConfigMap), so that a restarted
/// node tells clients (or its primary, and so the Sentinels) where it is
/// reached from its first answer, not after the operator has seen it
/// again; `host` stands for the node's address (`HOST_IP`), which is
/// where a pod is reached by node port whichever node it came back on.
/// Only `cluster-announce-*` and `replica-announce-ip`/`-port` keys with
/// plain values are taken; later lines of `valkey.conf` win over earlier
/// ones.
const EXTERNAL_ANNOUNCE: &str = r#"
announce="$boot_dir/announce-${POD_NAME:-${HOSTNAME:-}}"
if [ -r "$announce" ]; then
    while read -r key value; do
        [ "$value" = host ] && value=${HOST_IP:-}
        case $key in
        cluster-announce-ip | cluster-announce-port | cluster-announce-tls-port | \
            cluster-announce-bus-port | cluster-announce-client-ipv4 | cluster-announce-client-ipv6 | \
            replica-announce-ip | replica-announce-port)
            case $value in
            '' | *[!0-9A-Fa-f.:]*) ;;
            *) printf '%s %s\n' "$key" "$value" >>"$run_conf" ;;
            esac
            ;;
        esac
    done <"$announce"
fi
"#;

/// [`render_start_script`] for `spec`: a node that announces its
/// external endpoint (a Cluster's, a Sentinel cluster's) also reads what
/// it announces from the boot ConfigMap ([`EXTERNAL_ANNOUNCE`]). Without
/// external access the script is the topology's own, so that its config
/// hash is unchanged.
pub fn render_start_script_for(spec: &logbook_crds::ValkeyClusterSpec) -> String {
    let script = render_start_script(spec.topology);
    if !super::announce::announces(spec.topology) || !spec.external_access.enabled {
        return script;
    }
    match script.rfind(EXEC) {
        Some(at) => format!("{}{EXTERNAL_ANNOUNCE}{}", &script[..at], &script[at..]),
        None => script,
    }
}

/// The role section of every topology but Standalone.
fn boot_replica() -> String {
    format!(
        r#"
# A role is a decision, never a boot default: follow the primary the
# operator last decided, else stay fenced until it decides.
primary=
if [ -r "$boot_dir/primary-host" ]; then
    IFS= read -r primary <"$boot_dir/primary-host" || true
fi
case $primary in
*[!0-9A-Za-z.:-]*) primary= ;;
esac
if [ -n "$primary" ] && [ "$primary" != "${{POD_IP:-}}" ]; then
    printf 'replicaof %s {VALKEY_PORT}\n' "$primary" >>"$run_conf"
    newer_files_aside
else
    # The fence (see FENCE_HOST): read-only and never a sync source. It
    # serves no reads either until it is linked to a primary: a primary
    # restarted in place keeps its label (and so the client Service) until
    # the operator hands its role over, and its volume holds what it last
    # saved, not what was acknowledged since (`MASTERDOWN` instead).
    printf 'replicaof {FENCE_HOST} {VALKEY_PORT}\n' >>"$run_conf"
    printf 'replica-serve-stale-data no\n' >>"$run_conf"
fi
"#
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn standalone_boots_without_replicaof() {
        let s = render_start_script(Topology::Standalone);
        // No replicaof directive (the operator's own user may send it).
        assert!(!s.contains("printf 'replicaof"), "{s}");
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("set -eu"));
        assert!(s.trim_end().ends_with(r#"exec redis-server "$run_conf""#));
        assert!(s.contains(
            "if command -v valkey-server >/dev/null 2>&1; then\n    exec valkey-server \"$run_conf\"\nfi"
        ));
    }

    #[test]
    fn other_topologies_follow_the_boot_file_or_fence() {
        for t in [Topology::Replication, Topology::Sentinel] {
            let s = render_start_script(t);
            assert!(s.contains("replicaof 192.0.2.1 6379"), "{s}");
            assert!(s.contains(r#"printf 'replicaof %s 6379\n' "$primary""#));
            assert!(s.contains("$boot_dir/primary-host"));
            assert!(s.contains(r#""${POD_IP:-}""#));
        }
    }

    #[test]
    fn a_cluster_node_announces_its_pod_address_and_never_replicaof() {
        let s = render_start_script(Topology::Cluster);
        assert!(!s.contains("printf 'replicaof"), "{s}");
        assert!(s.contains("cluster-announce-ip %s"), "{s}");
        assert!(s.contains("masterauth"), "{s}");
    }

    #[test]
    fn the_password_comes_from_the_environment_only() {
        let s = render_start_script(Topology::Replication);
        assert!(s.contains("${VALKEY_PASSWORD:-}"));
        assert!(s.contains("requirepass"));
        assert!(s.contains("masterauth"));
        assert!(s.contains("umask 077"));
        // The server's argv is the config file only.
        assert!(!s.contains("--requirepass"));
    }

    #[test]
    fn the_acl_file_holds_the_default_user_from_the_password_and_keeps_saved_users() {
        let s = render_start_script(Topology::Cluster);
        assert!(s.contains("acl_file=$run_dir/users.acl"), "{s}");
        assert!(
            s.contains("'user default '* | 'user logbook-'* | '') ;;"),
            "{s}"
        );
        assert!(
            s.contains(r#"printf 'aclfile %s\n' "$(quote "$acl_file")""#),
            "{s}"
        );
        assert!(
            s.contains("*[[:space:]]*)\n    # No ACL file: the internal users go in the config file.\n    internal_users >>\"$run_conf\""),
            "{s}"
        );
    }

    #[test]
    fn the_internal_users_come_from_the_environment_with_generated_passwords_only() {
        let s = render_start_script(Topology::Cluster);
        for user in INTERNAL_USERS {
            assert!(s.contains(&format!("case ${{{}:-}} in", user.env)), "{s}");
            assert!(
                s.contains(&format!("printf 'user {} on >%s ", user.name)),
                "{s}"
            );
        }
        assert!(s.contains("'' | *[!0-9A-Za-z]*) ;;"), "{s}");
        assert!(
            s.contains("printf 'masteruser logbook-replication\\n'"),
            "{s}"
        );
        assert!(
            s.contains("~* &* +@all -@admin +psync +replconf +ping +cluster"),
            "{s}"
        );
        let r = render_start_script(Topology::Replication);
        assert!(r.contains("-@all +psync +replconf +ping\\n"), "{r}");
    }

    #[test]
    fn the_script_uses_no_external_command_but_the_server() {
        // Save `mv` and `rm`, in every image with a shell (coreutils or
        // busybox), where older files are set aside after a downgrade.
        for t in [
            Topology::Replication,
            Topology::Cluster,
            Topology::Standalone,
        ] {
            let s = render_start_script(t).replace(NEWER_FILES_ASIDE, "");
            for cmd in ["cat ", "cp ", "sed ", "mv ", "rm ", "chmod ", "echo "] {
                assert!(!s.contains(cmd), "uses {cmd:?}");
            }
        }
        for cmd in ["cat ", "cp ", "sed ", "chmod ", "echo "] {
            assert!(!NEWER_FILES_ASIDE.contains(cmd), "uses {cmd:?}");
        }
    }

    #[test]
    fn only_a_pod_that_follows_a_primary_sets_newer_files_aside() {
        let r = render_start_script(Topology::Replication);
        let follows = r
            .find("printf 'replicaof %s 6379\\n' \"$primary\"")
            .unwrap();
        let fenced = r.find("printf 'replicaof 192.0.2.1").unwrap();
        let aside = r.rfind("    newer_files_aside\n").unwrap();
        assert!(follows < aside && aside < fenced, "{r}");
        let c = render_start_script(Topology::Cluster);
        assert!(
            c.contains("if [ -z \"$booted_primary\" ]; then\n    newer_files_aside\nfi"),
            "{c}"
        );
        assert!(!render_start_script(Topology::Standalone).contains("newer_files_aside"));
    }

    /// A second rollback keeps what the first set aside: nothing is
    /// overwritten nor deleted (the first once was).
    #[test]
    fn a_second_rollback_keeps_what_the_first_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(data.join("appendonlydir")).unwrap();
        let fake = bin.join("valkey-server");
        std::fs::write(&fake, "#!/bin/sh\necho 'Valkey server v=8.0.1 sha=0'\n").unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let script = format!("{NEWER_FILES_ASIDE}\nnewer_files_aside\n");
        for round in ["first", "second"] {
            std::fs::write(data.join("dump.rdb"), format!("VALKEY080{round}")).unwrap();
            std::fs::create_dir_all(data.join("appendonlydir")).unwrap();
            std::fs::write(
                data.join("appendonlydir/appendonly.aof.1.base.rdb"),
                format!("VALKEY080{round}"),
            )
            .unwrap();
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .env("VALKEY_DATA_DIR", &data)
                .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        }
        let read = |p: &str| std::fs::read_to_string(data.join(p)).unwrap();
        assert_eq!(read("dump.rdb.newer-format"), "VALKEY080first");
        assert_eq!(read("dump.rdb.newer-format.1"), "VALKEY080second");
        assert_eq!(
            read("appendonlydir.newer-format/appendonly.aof.1.base.rdb"),
            "VALKEY080first"
        );
        assert_eq!(
            read("appendonlydir.newer-format.1/appendonly.aof.1.base.rdb"),
            "VALKEY080second"
        );
        assert!(!data.join("dump.rdb").exists());
    }
}
