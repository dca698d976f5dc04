//! The files of the Sentinel ConfigMap (topology Sentinel): the
//! `sentinel.conf` template, the primary's settings (`master.conf`), each
//! Sentinel's stable id (`myid-<ordinal>`), and `start.sh`, the Sentinel
//! container's entrypoint.
//!
//! Why a script: Sentinel rewrites its config file as it learns (its id,
//! the epochs, the current primary, the other Sentinels and replicas), so
//! it must run on a writable copy in the pod's run directory; the password
//! must reach that copy without ever being on a command line or in a
//! ConfigMap; and the primary to monitor is the one the operator last
//! decided, read at start from the data pods' boot ConfigMap.
//!
//! The copy is written once per pod: after a container restart the
//! Sentinel's own state is kept as is, since starting over from the boot
//! ConfigMap would forget a failover it took part in. A copy that
//! declares no primary (the Sentinel started before the operator decided
//! one) holds nothing worth keeping and is written again.
//!
//! The script is POSIX `sh` using builtins only, like the data pods'
//! (`start_script.rs`). Its paths and ports default to the pod's and may
//! be overridden by environment variables for tests: `SENTINEL_CONF_DIR`
//! (`/etc/sentinel`), `VALKEY_BOOT_DIR` (`/etc/valkey-boot`),
//! `SENTINEL_RUN_DIR` (`/run/sentinel`), `SENTINEL_PORT` (replaces the
//! `port` line) and `VALKEY_PORT` (the data port in the monitor line).

use std::fmt::Write as _;

use logbook_crds::{SentinelSpec, TlsSpec};
use sha2::{Digest, Sha256};

use super::internal_users::{INTERNAL_USERS, METRICS_USER, sentinel_node_rules};
use super::start_script::QUOTE_FN;
use super::{ClusterMeta, SENTINEL_PORT, VALKEY_PORT, sentinel_pod_name};

/// Key of the `sentinel.conf` template in the Sentinel ConfigMap.
pub const SENTINEL_CONF_KEY: &str = "sentinel.conf";
/// Key of the primary's settings (the lines after `sentinel monitor`).
pub const SENTINEL_MASTER_CONF_KEY: &str = "master.conf";
/// Key of the Sentinel's `start.sh`.
pub const SENTINEL_START_SCRIPT_KEY: &str = "start.sh";
/// Prefix of the keys holding each Sentinel's id: `myid-<ordinal>`.
pub const SENTINEL_MYID_KEY_PREFIX: &str = "myid-";

/// Hex digits of a Sentinel id (Valkey's run id size).
const MYID_HEX_DIGITS: usize = 40;

/// The marker the script appends the pod's settings after.
const POD_SETTINGS_MARKER: &str = "# --- per-pod settings, appended by start.sh ---";

/// `sentinel.conf` as the ConfigMap holds it: no password, no address,
/// no primary; `start.sh` appends those below the marker.
///
/// Hostnames are neither resolved nor announced: every address a
/// Sentinel learns or announces is a pod IP, which the operator and the
/// boot ConfigMap deal in, and a name that stops resolving (a deleted
/// pod) would otherwise stall Sentinel.
///
/// With TLS the plaintext port is closed: clients reach the Sentinel over
/// TLS, and it reaches the data nodes and the other Sentinels over TLS
/// (`tls-replication`, which also makes it announce its TLS port), with
/// the cluster's certificate (also its client certificate for mutual
/// TLS).
pub fn render_sentinel_conf(tls: &TlsSpec) -> String {
    let mut lines =
        vec!["# Rendered by the Logbook operator (src/resources/sentinel_script.rs).".to_owned()];
    if tls.enabled {
        lines.push("port 0".to_owned());
        lines.push(format!("tls-port {SENTINEL_PORT}"));
        lines.extend(super::config::tls_file_lines());
        lines.push("tls-replication yes".to_owned());
        lines.push(format!(
            "tls-auth-clients {}",
            if tls.client_auth { "yes" } else { "no" }
        ));
    } else {
        lines.push(format!("port {SENTINEL_PORT}"));
    }
    lines.extend(
        [
            // Sentinel's default, stated: with auth off, Sentinels and
            // clients in other pods must still reach it.
            "protected-mode no",
            "sentinel resolve-hostnames no",
            "sentinel announce-hostnames no",
            POD_SETTINGS_MARKER,
        ]
        .map(str::to_owned),
    );
    lines.join("\n") + "\n"
}

/// The settings of the monitored primary `master`, which Sentinel accepts
/// only after `sentinel monitor` has declared it: `down-after-milliseconds`,
/// `failover-timeout` and `parallel-syncs` from `sentinel`.
pub fn render_sentinel_master_conf(master: &str, sentinel: &SentinelSpec) -> String {
    format!(
        "sentinel down-after-milliseconds {master} {}\n\
         sentinel failover-timeout {master} {}\n\
         sentinel parallel-syncs {master} {}\n",
        sentinel.down_after_milliseconds,
        sentinel.failover_timeout_milliseconds,
        sentinel.parallel_syncs,
    )
}

/// The id of Sentinel `ordinal` of the cluster: 40 hex digits derived
/// from the cluster's uid and the pod's name.
///
/// Stable across pod replacements on purpose: Sentinels never forget a
/// peer, so a Sentinel coming back with a new address under a new id
/// would stay counted as a voter forever (until `SENTINEL RESET`), and
/// after a few rolls the failover leader could no longer win a majority.
/// Under the same id, the others update its address instead.
pub fn sentinel_myid(meta: &ClusterMeta, ordinal: i32) -> String {
    let digest = Sha256::new()
        .chain_update(meta.uid.as_bytes())
        .chain_update(b"/")
        .chain_update(sentinel_pod_name(&meta.name, ordinal).as_bytes())
        .finalize();
    let mut hex = String::with_capacity(MYID_HEX_DIGITS);
    for byte in digest.iter().take(MYID_HEX_DIGITS / 2) {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The Sentinel `start.sh`, monitoring the primary under `master` with
/// `quorum`.
///
/// # Guarantees
/// The password is read from `VALKEY_PASSWORD` only and written only into
/// the runtime config (mode 0600): `requirepass` (clients and other
/// Sentinels authenticate to this one), `sentinel sentinel-pass` (this one
/// to the others) and `sentinel auth-pass` (this one to the data pods).
pub fn render_sentinel_start_script(master: &str, quorum: i32, metrics: bool) -> String {
    // A Kubernetes object name holds no quote, so single quotes make the
    // name one shell word whatever it is.
    let vars = format!(
        "master='{master}'\n\
         quorum={quorum}\n\
         data_port=${{VALKEY_PORT:-}}\n\
         case $data_port in\n\
         '' | *[!0-9]*) data_port={VALKEY_PORT} ;;\n\
         esac\n"
    );
    format!(
        "{HEAD}{vars}\n{QUOTE_FN}{}{BODY}{EXEC}",
        sentinel_users_fn(metrics)
    )
}

/// `sentinel_users`, the shell function printing the internal users of a
/// Sentinel (`user <name> on ><password> <rules>`), each only when its
/// password is in the environment and a generated one. The metrics user
/// only with the exporter (`metrics`): a script unchanged by it leaves the
/// Sentinels of a cluster without metrics where they are.
fn sentinel_users_fn(metrics: bool) -> String {
    let mut out = String::from("\nsentinel_users() {\n");
    for user in INTERNAL_USERS {
        if user.name == METRICS_USER && !metrics {
            continue;
        }
        let Some(rules) = sentinel_node_rules(user.name) else {
            continue;
        };
        let _ = write!(
            out,
            "    case ${{{env}:-}} in\n    '' | *[!0-9A-Za-z]*) ;;\n    *) printf 'user {name} on >%s {rules}\\n' \"${env}\" ;;\n    esac\n",
            env = user.env,
            name = user.name,
        );
    }
    out.push_str("}\n");
    out
}

/// Settings and overrides, before the master name, quorum and data port.
const HEAD: &str = r#"#!/bin/sh
# Rendered by the Logbook operator (src/resources/sentinel_script.rs).
# Writes Sentinel's config file on the pod's first start, then execs
# Sentinel on it.
set -eu

conf_dir=${SENTINEL_CONF_DIR:-/etc/sentinel}
boot_dir=${VALKEY_BOOT_DIR:-/etc/valkey-boot}
run_dir=${SENTINEL_RUN_DIR:-/run/sentinel}
run_conf=$run_dir/sentinel.conf
# The overrides must be port numbers: Kubernetes' service links would set
# SENTINEL_PORT=tcp://... in the pod of any namespace with a Service
# named `sentinel` (the pod disables them; this is a second guard).
sentinel_port=${SENTINEL_PORT:-}
case $sentinel_port in
*[!0-9]*) sentinel_port= ;;
esac
"#;

/// Reading the boot ConfigMap and writing the runtime config.
const BODY: &str = r#"
# monitors FILE: whether FILE declares the primary, which is all of
# Sentinel's state worth keeping.
monitors() {
    [ -s "$1" ] || return 1
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
        "sentinel monitor $master "*) return 0 ;;
        esac
    done <"$1"
    return 1
}

# The runtime config may hold the password, and Sentinel rewrites it (with
# this umask) as it learns: readable by this user only.
umask 077

if monitors "$run_conf"; then
    # A container restart: keep Sentinel's state (its id, the epochs, the
    # current primary, the peers it knows) as Sentinel last wrote it.
    :
else
    # The primary the operator last decided. Sentinel resolves no
    # hostnames, so only an IP address is monitored; anything else leaves
    # the Sentinel monitoring nothing until it is told (SENTINEL MONITOR)
    # or restarts with a decided primary.
    primary=
    if [ -r "$boot_dir/primary-host" ]; then
        IFS= read -r primary <"$boot_dir/primary-host" || true
    fi
    case $primary in
    *[!0-9A-Fa-f.:]*) primary= ;;
    esac

    # This pod's stable id, by its ordinal (see sentinel_myid).
    myid=
    ordinal=${POD_NAME:-}
    ordinal=${ordinal##*-}
    case $ordinal in
    '' | *[!0-9]*) ;;
    *)
        if [ -r "$conf_dir/myid-$ordinal" ]; then
            IFS= read -r myid <"$conf_dir/myid-$ordinal" || true
        fi
        ;;
    esac
    case $myid in
    *[!0-9a-f]*) myid= ;;
    esac
    [ "${#myid}" -eq 40 ] || myid=

    {
        while IFS= read -r line || [ -n "$line" ]; do
            case $line in
            'port 0') ;;
            'port '*) [ -z "$sentinel_port" ] || line="port $sentinel_port" ;;
            'tls-port '*) [ -z "$sentinel_port" ] || line="tls-port $sentinel_port" ;;
            esac
            printf '%s\n' "$line"
        done <"$conf_dir/sentinel.conf"
        [ -z "$myid" ] || printf 'sentinel myid %s\n' "$myid"
        case ${POD_IP:-} in
        '' | *[!0-9A-Fa-f.:]*) ;;
        *) printf 'sentinel announce-ip %s\n' "$POD_IP" ;;
        esac
        password=
        if [ -n "${VALKEY_PASSWORD:-}" ]; then
            password=$(quote "$VALKEY_PASSWORD")
            printf 'requirepass %s\n' "$password"
        fi
        # The internal users (resources/internal_users.rs): the operator's,
        # and the Sentinels' own, which they use with each other and with
        # the data nodes; without it, the cluster's password.
        internal=
        case ${LOGBOOK_SENTINEL_PASSWORD:-} in
        '' | *[!0-9A-Za-z]*) ;;
        *) internal=$LOGBOOK_SENTINEL_PASSWORD ;;
        esac
        sentinel_users
        if [ -n "$internal" ]; then
            printf 'sentinel sentinel-user logbook-sentinel\n'
            printf 'sentinel sentinel-pass %s\n' "$internal"
        elif [ -n "$password" ]; then
            printf 'sentinel sentinel-pass %s\n' "$password"
        fi
        if [ -n "$primary" ]; then
            # The primary is declared before its settings: Sentinel
            # refuses settings of a primary it does not know.
            printf 'sentinel monitor %s %s %s %s\n' "$master" "$primary" "$data_port" "$quorum"
            if [ -n "$internal" ]; then
                printf 'sentinel auth-user %s logbook-sentinel\n' "$master"
                printf 'sentinel auth-pass %s %s\n' "$master" "$internal"
            elif [ -n "$password" ]; then
                printf 'sentinel auth-pass %s %s\n' "$master" "$password"
            fi
            while IFS= read -r line || [ -n "$line" ]; do
                printf '%s\n' "$line"
            done <"$conf_dir/master.conf"
        fi
        password=
        internal=
    } >"$run_conf"
fi
"#;

/// The closing lines: replace the shell with Sentinel, whichever binary
/// the image has (`spec.image` may name a Redis image).
const EXEC: &str = r#"
if command -v valkey-sentinel >/dev/null 2>&1; then
    exec valkey-sentinel "$run_conf"
fi
if command -v valkey-server >/dev/null 2>&1; then
    exec valkey-server "$run_conf" --sentinel
fi
if command -v redis-sentinel >/dev/null 2>&1; then
    exec redis-sentinel "$run_conf"
fi
exec redis-server "$run_conf" --sentinel
"#;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::super::test_support::meta;
    use super::*;

    #[test]
    fn a_tls_sentinel_closes_the_plaintext_port_and_speaks_tls_to_everyone() {
        let tls = TlsSpec {
            enabled: true,
            client_auth: true,
            ..TlsSpec::default()
        };
        let conf = render_sentinel_conf(&tls);
        let lines: Vec<&str> = conf.lines().collect();
        for want in [
            "port 0",
            "tls-port 26379",
            "tls-cert-file /etc/valkey-tls/tls.crt",
            "tls-replication yes",
            "tls-auth-clients yes",
        ] {
            assert!(lines.contains(&want), "{want} missing: {conf}");
        }
        assert!(!lines.contains(&"port 26379"), "{conf}");
    }

    #[test]
    fn conf_has_the_port_and_no_hostnames_and_no_secret() {
        let conf = render_sentinel_conf(&TlsSpec::default());
        let lines: Vec<&str> = conf.lines().collect();
        assert!(lines.contains(&"port 26379"), "{conf}");
        assert!(lines.contains(&"sentinel resolve-hostnames no"));
        assert!(lines.contains(&"sentinel announce-hostnames no"));
        assert_eq!(lines.last(), Some(&POD_SETTINGS_MARKER));
        assert!(!conf.contains("pass"), "{conf}");
        assert!(!conf.contains("sentinel monitor"), "{conf}");
    }

    #[test]
    fn master_conf_names_the_master_in_every_setting() {
        let sentinel = SentinelSpec {
            down_after_milliseconds: 7000,
            failover_timeout_milliseconds: 30_000,
            parallel_syncs: 2,
            ..SentinelSpec::default()
        };
        assert_eq!(
            render_sentinel_master_conf("cache", &sentinel),
            "sentinel down-after-milliseconds cache 7000\n\
             sentinel failover-timeout cache 30000\n\
             sentinel parallel-syncs cache 2\n"
        );
    }

    #[test]
    fn myids_are_stable_distinct_and_forty_hex_digits() {
        let a = sentinel_myid(&meta(), 0);
        assert_eq!(a.len(), 40);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(sentinel_myid(&meta(), 0), a);
        assert_ne!(sentinel_myid(&meta(), 1), a);
        let mut other = meta();
        other.uid = "another-uid".into();
        assert_ne!(
            sentinel_myid(&other, 0),
            a,
            "a recreated cluster gets new ids"
        );
    }

    #[test]
    fn script_declares_the_master_then_its_password_then_its_settings() {
        let s = render_sentinel_start_script("cache", 2, false);
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("set -eu"));
        assert!(s.contains("\nmaster='cache'\nquorum=2\n"), "{s}");
        assert!(s.contains("'' | *[!0-9]*) data_port=6379 ;;"), "{s}");
        let monitor = s.find("'sentinel monitor %s %s %s %s\\n'").unwrap();
        let auth = s.find("'sentinel auth-pass %s %s\\n'").unwrap();
        let settings = s.find("\"$conf_dir/master.conf\"").unwrap();
        assert!(monitor < auth && auth < settings, "{s}");
        for path in [
            "${SENTINEL_CONF_DIR:-/etc/sentinel}",
            "${VALKEY_BOOT_DIR:-/etc/valkey-boot}",
            "${SENTINEL_RUN_DIR:-/run/sentinel}",
            "$boot_dir/primary-host",
        ] {
            assert!(s.contains(path), "{path}");
        }
    }

    #[test]
    fn script_keeps_a_restarted_sentinels_state() {
        let s = render_sentinel_start_script("cache", 2, false);
        assert!(s.contains(r#"if monitors "$run_conf"; then"#), "{s}");
        assert!(s.contains(r#""sentinel monitor $master "*) return 0 ;;"#));
    }

    #[test]
    fn script_monitors_only_an_address() {
        let s = render_sentinel_start_script("cache", 2, false);
        assert!(s.contains("*[!0-9A-Fa-f.:]*) primary= ;;"), "{s}");
        assert!(s.contains("sentinel announce-ip %s"));
    }

    #[test]
    fn the_password_comes_from_the_environment_only() {
        let s = render_sentinel_start_script("cache", 2, false);
        assert!(s.contains("${VALKEY_PASSWORD:-}"));
        assert!(s.contains("requirepass %s"));
        assert!(s.contains("sentinel sentinel-pass %s"));
        assert!(s.contains("umask 077"));
        assert!(s.contains("quote() {"));
        assert!(!s.contains("--requirepass"));
    }

    #[test]
    fn script_execs_whichever_sentinel_the_image_has() {
        let s = render_sentinel_start_script("cache", 2, false);
        let order = [
            r#"exec valkey-sentinel "$run_conf""#,
            r#"exec valkey-server "$run_conf" --sentinel"#,
            r#"exec redis-sentinel "$run_conf""#,
            r#"exec redis-server "$run_conf" --sentinel"#,
        ];
        let at: Vec<usize> = order.iter().map(|e| s.find(e).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{s}");
        assert!(s.trim_end().ends_with(order[3]));
    }

    #[test]
    fn the_script_uses_no_external_command_but_the_server() {
        let s = render_sentinel_start_script("cache", 2, false);
        for cmd in [
            "cat ", "cp ", "sed ", "mv ", "chmod ", "echo ", "grep ", "sleep ",
        ] {
            assert!(!s.contains(cmd), "uses {cmd:?}");
        }
    }
}
