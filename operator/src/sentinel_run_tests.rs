//! The rendered Sentinel `start.sh` run with `sh` against the real
//! `valkey-server` (started in Sentinel mode by the script), with
//! temporary directories standing in for the pod's mounts, next to a real
//! password-protected primary: a Sentinel started before any primary is
//! decided monitors nothing; once the boot file names the primary it
//! monitors it with the spec's settings, authenticates to it and requires
//! a password itself; after a container restart it keeps its own state.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logbook_crds::{SentinelSpec, Topology, ValkeyClusterSpec};

use crate::resources::{ClusterMeta, build_sentinel_config_map, sentinel_myid};

/// Needs quoting in a config file and in a shell: a space, a double
/// quote, a backslash, `$(...)` and a single quote.
const PASSWORD: &str = r#"pa ss"w\rd$(id)'x"#;
const POD_IP: &str = "127.0.0.1";
const POD_NAME: &str = "cache-sentinel-1";
const START_TIMEOUT: Duration = Duration::from_secs(10);

fn meta() -> ClusterMeta {
    ClusterMeta {
        name: "cache".into(),
        namespace: "test".into(),
        uid: "uid".into(),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `s` as a double-quoted config argument (what the scripts' `quote` does).
fn conf_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A started process, killed when dropped.
struct Proc {
    child: Child,
    port: u16,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `proc` listens, or `None` when it exited first (it lost
/// the race for its port to another process).
fn await_listening(mut proc: Proc, what: &str) -> Option<Proc> {
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", proc.port)).is_err() {
        if proc.child.try_wait().unwrap().is_some() {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "{what} on {} did not start",
            proc.port
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(proc)
}

/// A password-protected primary, on a free port.
fn start_primary(bin: &Path, dir: &Path) -> Proc {
    let conf = dir.join("primary.conf");
    std::fs::write(
        &conf,
        format!("save \"\"\nrequirepass {}\n", conf_quote(PASSWORD)),
    )
    .unwrap();
    for _ in 0..3 {
        let port = free_port();
        let child = Command::new(bin)
            .arg(&conf)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if let Some(p) = await_listening(Proc { child, port }, "primary") {
            return p;
        }
    }
    panic!("the primary did not start on any of 3 ports");
}

/// The Sentinel pod's directories, laid out as the StatefulSet mounts
/// them, and a `PATH` directory holding `valkey-server` only.
struct Pod {
    dir: tempfile::TempDir,
}

impl Pod {
    fn new(spec: &ValkeyClusterSpec, bin: &Path) -> Pod {
        let pod = Pod {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["etc/sentinel", "etc/boot", "run", "bin", "cwd"] {
            std::fs::create_dir_all(pod.path(d)).unwrap();
        }
        let (cm, _) = build_sentinel_config_map(&meta(), spec);
        for (key, value) in cm.data.unwrap() {
            std::fs::write(pod.path("etc/sentinel").join(key), value).unwrap();
        }
        std::os::unix::fs::symlink(bin, pod.path("bin/valkey-server")).unwrap();
        pod
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn set_boot(&self, primary_host: &str) {
        std::fs::write(self.path("etc/boot/primary-host"), primary_host).unwrap();
    }

    fn runtime_conf(&self) -> String {
        std::fs::read_to_string(self.path("run/sentinel.conf")).unwrap()
    }

    /// `sh start.sh` with the overrides; the Sentinel on `port`, or on a
    /// free one when `None`. (A kept config keeps its port: a restart is
    /// given the one it had.)
    ///
    /// A Sentinel that exits before listening lost its port to another
    /// process; the next attempt takes another port. The script keeps a
    /// config once it monitors a primary, so unless the call started from
    /// such a config (a restart), the one an attempt wrote is removed
    /// first, or every retry would reuse the port that was lost.
    fn start(&self, data_port: u16, port: Option<u16>) -> Proc {
        let conf = self.path("run/sentinel.conf");
        let written_here = !std::fs::read_to_string(&conf)
            .unwrap_or_default()
            .contains("sentinel monitor ");
        let mut logs = String::new();
        for attempt in 0..3 {
            if written_here {
                let _ = std::fs::remove_file(&conf);
            }
            let port = port.unwrap_or_else(free_port);
            let log = self.path(&format!("run/start-{attempt}.log"));
            let out = std::fs::File::create(&log).unwrap();
            let err = out.try_clone().unwrap();
            let child = Command::new("sh")
                .arg(self.path("etc/sentinel/start.sh"))
                .current_dir(self.path("cwd"))
                .env_clear()
                .env(
                    "PATH",
                    format!("{}:/usr/bin:/bin", self.path("bin").display()),
                )
                .env("POD_IP", POD_IP)
                .env("POD_NAME", POD_NAME)
                .env("SENTINEL_CONF_DIR", self.path("etc/sentinel"))
                .env("SENTINEL_RUN_DIR", self.path("run"))
                .env("VALKEY_BOOT_DIR", self.path("etc/boot"))
                .env("SENTINEL_PORT", port.to_string())
                .env("VALKEY_PORT", data_port.to_string())
                .env("VALKEY_PASSWORD", PASSWORD)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap();
            if let Some(p) = await_listening(Proc { child, port }, "sentinel") {
                return p;
            }
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            logs.push_str(&format!("--- attempt {attempt}, port {port}:\n{said}"));
        }
        panic!(
            "the Sentinel did not start on any of 3 ports:\n{}\n{logs}",
            self.runtime_conf()
        );
    }
}

fn connect(port: u16) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap()
}

/// A connection to `port`, authenticated with [`PASSWORD`].
fn authed(port: u16) -> redis::Connection {
    let mut c = connect(port);
    let ok: String = redis::cmd("AUTH").arg(PASSWORD).query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    c
}

/// `SENTINEL PRIMARY cache` as a field map.
fn primary_fields(c: &mut redis::Connection) -> HashMap<String, String> {
    let flat: Vec<String> = redis::cmd("SENTINEL")
        .arg("PRIMARY")
        .arg("cache")
        .query(c)
        .unwrap();
    flat.chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect()
}

/// Waits until the primary lists a client named by the Sentinel, which
/// Sentinel names its links only after `AUTH` succeeded (`auth-pass`).
fn await_sentinel_link(primary: u16, myid: &str) {
    let mut c = authed(primary);
    let name = format!("name=sentinel-{}-cmd", &myid[..8]);
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut c).unwrap();
        if clients.contains(&name) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no authenticated Sentinel link on the primary:\n{clients}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_sentinel_script_monitors_the_decided_primary_with_a_password() {
    let bin = logbook_bench::valkey_server_binary();
    assert!(
        bin.exists(),
        "{} is missing: run `make setup`",
        bin.display()
    );
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Sentinel);
    spec.sentinel = Some(SentinelSpec {
        quorum: Some(2),
        down_after_milliseconds: 7000,
        failover_timeout_milliseconds: 30_000,
        parallel_syncs: 2,
        ..SentinelSpec::default()
    });
    let pod = Pod::new(&spec, &bin);
    let primary = start_primary(&bin, pod.dir.path());

    // Started before the operator decided a primary: monitors nothing.
    pod.set_boot("");
    let sentinel = pod.start(primary.port, None);
    let mut c = authed(sentinel.port);
    let primaries: Vec<redis::Value> = redis::cmd("SENTINEL")
        .arg("PRIMARIES")
        .query(&mut c)
        .unwrap();
    assert!(primaries.is_empty(), "{primaries:?}");
    drop(c);
    drop(sentinel);

    // Restarted once the boot file names the primary: nothing was worth
    // keeping, so the config is written again, now monitoring it.
    pod.set_boot(&format!("{POD_IP}\n"));
    let sentinel = pod.start(primary.port, None);
    let port = sentinel.port;
    let mut open = connect(sentinel.port);
    let refused = redis::cmd("PING").query::<String>(&mut open).unwrap_err();
    assert_eq!(refused.code(), Some("NOAUTH"), "{refused}");
    let mut c = authed(sentinel.port);
    let fields = primary_fields(&mut c);
    assert_eq!(fields["name"], "cache");
    assert_eq!(fields["ip"], POD_IP);
    assert_eq!(fields["port"], primary.port.to_string());
    assert_eq!(fields["quorum"], "2");
    assert_eq!(fields["down-after-milliseconds"], "7000");
    assert_eq!(fields["failover-timeout"], "30000");
    assert_eq!(fields["parallel-syncs"], "2");
    let myid: String = redis::cmd("SENTINEL").arg("MYID").query(&mut c).unwrap();
    assert_eq!(myid, sentinel_myid(&meta(), 1), "the id of ordinal 1");
    await_sentinel_link(primary.port, &myid);

    // The password is in no process's arguments and in no ConfigMap file;
    // the runtime config is readable by its owner only.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", sentinel.child.id())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(
        cmdline.contains("valkey-server"),
        "sh exec'd the server: {cmdline}"
    );
    assert!(!cmdline.contains("pa ss"), "password on the command line");
    let mode = std::fs::metadata(pod.path("run/sentinel.conf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "runtime config readable by others");
    for entry in std::fs::read_dir(pod.path("etc/sentinel")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("pa ss"));
    }
    let conf = pod.runtime_conf();
    assert!(conf.contains("sentinel announce-ip 127.0.0.1"), "{conf}");
    drop(c);
    drop(sentinel);

    // A container restart keeps the Sentinel's state, whatever the boot
    // file says now.
    pod.set_boot("192.0.2.77");
    let sentinel = pod.start(primary.port, Some(port));
    let mut c = authed(sentinel.port);
    let fields = primary_fields(&mut c);
    assert_eq!(fields["ip"], POD_IP, "{}", pod.runtime_conf());
    assert_eq!(fields["port"], primary.port.to_string());
    assert_eq!(fields["parallel-syncs"], "2");
    let again: String = redis::cmd("SENTINEL").arg("MYID").query(&mut c).unwrap();
    assert_eq!(again, myid);
}
