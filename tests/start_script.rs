//! The rendered `start.sh` run with `sh` against the real `valkey-server`,
//! with temporary directories standing in for `/etc/valkey`, `/run/valkey`
//! and `/data`: a pod with no decided primary boots fenced (a read-only
//! replica of the TEST-NET fence address), a decided primary is followed,
//! and the password reaches the server without ever being on a command
//! line. In an image without `valkey-server` it runs `redis-server`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logbook::resources::{CONF_KEY, ClusterMeta, FENCE_HOST, START_SCRIPT_KEY, build_config_map};
use logbook_crds::{Topology, ValkeyClusterSpec};

const POD_IP: &str = "127.0.0.1";

/// The pod's directories, laid out as the StatefulSet mounts them.
struct Pod {
    dir: tempfile::TempDir,
    /// More environment for the script (`HOSTNAME`, `HOST_IP`).
    env: Vec<(String, String)>,
}

impl Pod {
    /// Writes the ConfigMap's files of `spec`, and the boot file when given.
    fn new(spec: &ValkeyClusterSpec, primary_host: Option<&str>) -> Pod {
        let meta = ClusterMeta {
            name: "cache".into(),
            namespace: "test".into(),
            uid: "uid".into(),
        };
        let (cm, _hash) = build_config_map(&meta, spec);
        let data = cm.data.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pod = Pod {
            dir,
            env: Vec::new(),
        };
        for d in ["etc/boot", "run", "data"] {
            std::fs::create_dir_all(pod.path(d)).unwrap();
        }
        std::fs::write(pod.path("etc/valkey.conf"), &data[CONF_KEY]).unwrap();
        std::fs::write(pod.path("etc/start.sh"), &data[START_SCRIPT_KEY]).unwrap();
        if let Some(host) = primary_host {
            std::fs::write(pod.path("etc/boot/primary-host"), host).unwrap();
        }
        pod
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `sh start.sh` with the overrides, `bin` heading `PATH`.
    fn command(&self, bin: &Path, port: u16, password: Option<&str>) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg(self.path("etc/start.sh"))
            .current_dir(self.path("data"))
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("POD_IP", POD_IP)
            .env("VALKEY_CONF_DIR", self.path("etc"))
            .env("VALKEY_RUN_DIR", self.path("run"))
            .env("VALKEY_DATA_DIR", self.path("data"))
            .env("VALKEY_PORT", port.to_string())
            .env("VALKEY_BOOT_DIR", self.path("etc/boot"))
            .env_remove("VALKEY_PASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(pw) = password {
            cmd.env("VALKEY_PASSWORD", pw);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// The runtime config the script wrote.
    fn runtime_conf(&self) -> String {
        std::fs::read_to_string(self.path("run/valkey.conf")).unwrap()
    }
}

/// A started server, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(pod: &Pod, password: Option<&str>) -> Server {
        let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/bin");
        assert!(
            bin.join("valkey-server").exists(),
            "{}/valkey-server is missing: run `make setup`",
            bin.display()
        );
        Server::start_from(pod, &bin, password)
    }

    /// The script with `bin` heading `PATH` (then `/usr/bin:/bin`).
    ///
    /// The port is a free one picked by the test, so another process can
    /// take it (or, for a cluster node, its bus port, 10000 above, which
    /// often falls in the ephemeral range) before the server binds it: a
    /// server that exits at once is started again on another port, twice
    /// at most.
    fn start_from(pod: &Pod, bin: &Path, password: Option<&str>) -> Server {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = pod.command(bin, port, password).spawn().unwrap();
            let mut server = Server { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut exited = None;
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Some(status) = server.child.try_wait().unwrap() {
                    exited = Some(status);
                    break;
                }
                assert!(Instant::now() < deadline, "valkey on {port} did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            match exited {
                None => return server,
                Some(_) if attempt < 3 => {}
                Some(status) => panic!(
                    "start.sh exited with {status} ({attempt} ports tried):\n{}",
                    pod.runtime_conf()
                ),
            }
        }
    }

    fn connect(&self) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A RESP reply, just enough of it for these checks.
#[derive(Debug, PartialEq)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<String>),
    Array(Vec<Reply>),
}

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn cmd(&mut self, args: &[&str]) -> Reply {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.writer.write_all(out.as_bytes()).unwrap();
        self.read()
    }

    fn read(&mut self) -> Reply {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let line = line.trim_end_matches("\r\n");
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Status(rest.to_owned()),
            "-" => Reply::Error(rest.to_owned()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let len: i64 = rest.parse().unwrap();
                if len < 0 {
                    return Reply::Bulk(None);
                }
                let mut buf = vec![0; usize::try_from(len).unwrap() + 2];
                self.reader.read_exact(&mut buf).unwrap();
                buf.truncate(buf.len() - 2);
                Reply::Bulk(Some(String::from_utf8(buf).unwrap()))
            }
            "*" => {
                let n: usize = rest.parse().unwrap();
                Reply::Array((0..n).map(|_| self.read()).collect())
            }
            other => panic!("unexpected RESP type {other:?} in {line:?}"),
        }
    }
}

fn error_code(reply: &Reply) -> &str {
    match reply {
        Reply::Error(e) => e.split(' ').next().unwrap(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The `replicaof` line of the runtime config the script writes.
fn rendered_role(primary_host: Option<&str>) -> String {
    let conf = rendered_conf(primary_host);
    let replicaof: Vec<&str> = conf
        .lines()
        .filter(|l| l.starts_with("replicaof"))
        .collect();
    assert_eq!(replicaof.len(), 1, "{conf}");
    replicaof[0].to_owned()
}

/// Runs the script with a stand-in `valkey-server` that exits at once, and
/// returns the runtime config it wrote.
fn rendered_conf(primary_host: Option<&str>) -> String {
    let pod = Pod::new(&ValkeyClusterSpec::default(), primary_host);
    let stub = pod.path("stub");
    std::fs::create_dir_all(&stub).unwrap();
    std::fs::write(stub.join("valkey-server"), "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(
        stub.join("valkey-server"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let status = pod.command(&stub, 1, None).status().unwrap();
    assert!(status.success(), "start.sh failed: {status}");
    pod.runtime_conf()
}

#[test]
fn start_script_fences_follows_and_hides_the_password() {
    // The boot role: fenced unless the boot file names another pod.
    let fence = format!("replicaof {FENCE_HOST} 6379");
    assert_eq!(rendered_role(None), fence, "no boot file");
    assert_eq!(rendered_role(Some("")), fence, "empty boot file");
    assert_eq!(
        rendered_role(Some(POD_IP)),
        fence,
        "boot file names this pod"
    );
    assert_eq!(rendered_role(Some("1.2.3.4 6380")), fence, "not a host");
    assert_eq!(
        rendered_role(Some("198.51.100.7\n")),
        "replicaof 198.51.100.7 6379"
    );

    // A Replication pod with an empty boot file comes up fenced: a
    // replica of the fence address, refusing writes.
    let mut open = ValkeyClusterSpec::default();
    open.auth.enabled = false;
    let pod = Pod::new(&open, Some(""));
    let server = Server::start(&pod, None);
    let mut c = server.connect();
    match c.cmd(&["ROLE"]) {
        Reply::Array(items) => {
            assert_eq!(items[0], Reply::Bulk(Some("slave".into())));
            assert_eq!(items[1], Reply::Bulk(Some(FENCE_HOST.into())));
            assert_eq!(items[2], Reply::Int(6379));
        }
        other => panic!("ROLE: {other:?}"),
    }
    assert_eq!(error_code(&c.cmd(&["SET", "k", "v"])), "READONLY");
    // Nor reads: what a fenced node holds is what it last saved, not
    // what was acknowledged since (a primary restarted in place that the
    // client Service still selects).
    assert_eq!(error_code(&c.cmd(&["GET", "k"])), "MASTERDOWN");
    assert_eq!(
        error_code(&c.cmd(&["LRANGE", "k", "0", "-1"])),
        "MASTERDOWN"
    );
    drop(server);
    // A pod booting as the replica of a named primary is not fenced: the
    // read Service may serve what it holds.
    assert!(
        !rendered_conf(Some("198.51.100.7")).contains("replica-serve-stale-data no"),
        "a replica of a named primary refuses reads"
    );
    assert!(rendered_conf(None).contains("replica-serve-stale-data no"));

    // A Standalone pod with a password that needs quoting: a primary that
    // requires AUTH, and the password is on no command line.
    let password = r#"pa ss"w\rd$(id)'x"#;
    let pod = Pod::new(
        &ValkeyClusterSpec::with_topology(Topology::Standalone),
        None,
    );
    let server = Server::start(&pod, Some(password));
    let mut c = server.connect();
    assert_eq!(error_code(&c.cmd(&["SET", "k", "v"])), "NOAUTH");
    assert!(matches!(c.cmd(&["AUTH", "wrong"]), Reply::Error(_)));
    assert_eq!(c.cmd(&["AUTH", password]), Reply::Status("OK".into()));
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::Status("OK".into()));
    match c.cmd(&["ROLE"]) {
        Reply::Array(items) => assert_eq!(items[0], Reply::Bulk(Some("master".into()))),
        other => panic!("ROLE: {other:?}"),
    }
    // `sh` exec'd the server, so the child's pid is the server's.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.child.id())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(cmdline.contains("valkey-server"), "{cmdline}");
    assert!(!cmdline.contains("pa ss"), "password on the command line");
    let mode = std::fs::metadata(pod.path("run/valkey.conf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "runtime config readable by others");
    assert!(!pod.runtime_conf().contains("replicaof"));
    // The ConfigMap's copy never holds it.
    let conf = std::fs::read_to_string(pod.path("etc/valkey.conf")).unwrap();
    assert!(!conf.contains("requirepass"));
}

/// A Cluster exposed by node ports boots announcing what the operator
/// last told it (the boot ConfigMap's `announce-<pod>`), its node's
/// address standing for `host`; a value that is not an address or a
/// port, or a key it does not own, is left out.
#[test]
fn an_exposed_cluster_node_boots_announcing_its_node_address_and_ports() {
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Cluster);
    spec.external_access.enabled = true;
    let mut pod = Pod::new(&spec, None);
    pod.env = vec![
        ("POD_NAME".into(), "cache-0".into()),
        ("HOST_IP".into(), "192.0.2.1".into()),
    ];
    std::fs::write(
        pod.path("etc/boot/announce-cache-0"),
        "cluster-announce-ip host\ncluster-announce-port 30001\ncluster-announce-bus-port 30002\nrequirepass nope\ncluster-announce-port 1;rm\n",
    )
    .unwrap();
    std::fs::write(
        pod.path("etc/boot/announce-cache-1"),
        "cluster-announce-ip 10.9.9.9\n",
    )
    .unwrap();
    let server = Server::start(&pod, None);
    let mut c = server.connect();
    let get = |c: &mut Conn, key: &str| match c.cmd(&["CONFIG", "GET", key]) {
        Reply::Array(items) => match items.get(1) {
            Some(Reply::Bulk(Some(v))) => v.clone(),
            other => panic!("{key}: {other:?}"),
        },
        other => panic!("{key}: {other:?}"),
    };
    assert_eq!(get(&mut c, "cluster-announce-ip"), "192.0.2.1");
    assert_eq!(get(&mut c, "cluster-announce-port"), "30001");
    assert_eq!(get(&mut c, "cluster-announce-bus-port"), "30002");
    let conf = pod.runtime_conf();
    assert!(
        !conf.contains("requirepass nope") && !conf.contains("rm"),
        "{conf}"
    );
    // Without external access the script reads no such file.
    let (cm, _) = build_config_map(
        &ClusterMeta {
            name: "cache".into(),
            namespace: "test".into(),
            uid: "uid".into(),
        },
        &ValkeyClusterSpec::with_topology(Topology::Cluster),
    );
    assert!(!cm.data.unwrap()[START_SCRIPT_KEY].contains("$boot_dir/announce-"));
}

/// A Sentinel cluster's data pod exposed by node ports boots announcing
/// its node's address and node port to its primary (what Sentinel names
/// it by), and still follows the primary the boot ConfigMap names.
#[test]
fn an_exposed_sentinel_data_pod_boots_announcing_its_endpoint_to_its_primary() {
    let mut spec = ValkeyClusterSpec::with_topology(Topology::Sentinel);
    spec.external_access.enabled = true;
    let mut pod = Pod::new(&spec, Some("192.0.2.7"));
    pod.env = vec![
        ("POD_NAME".into(), "cache-1".into()),
        ("HOST_IP".into(), "192.0.2.1".into()),
    ];
    std::fs::write(
        pod.path("etc/boot/announce-cache-1"),
        "replica-announce-ip host
replica-announce-port 30002
cluster-announce-ip 10.9.9.9;x
",
    )
    .unwrap();
    let server = Server::start(&pod, None);
    let mut c = server.connect();
    let get = |c: &mut Conn, key: &str| match c.cmd(&["CONFIG", "GET", key]) {
        Reply::Array(items) => match items.get(1) {
            Some(Reply::Bulk(Some(v))) => v.clone(),
            other => panic!("{key}: {other:?}"),
        },
        other => panic!("{key}: {other:?}"),
    };
    assert_eq!(get(&mut c, "replica-announce-ip"), "192.0.2.1");
    assert_eq!(get(&mut c, "replica-announce-port"), "30002");
    assert!(pod.runtime_conf().contains("replicaof 192.0.2.7 6379"));
    assert!(!pod.runtime_conf().contains("10.9.9.9"));
    // Not exposed: the script reads no such file.
    let (cm, _) = build_config_map(
        &ClusterMeta {
            name: "cache".into(),
            namespace: "test".into(),
            uid: "uid".into(),
        },
        &ValkeyClusterSpec::with_topology(Topology::Sentinel),
    );
    assert!(!cm.data.unwrap()[START_SCRIPT_KEY].contains("$boot_dir/announce-"));
}

#[test]
fn without_valkey_server_the_script_runs_redis_server() {
    // No valkey-server on PATH, as in a Redis image: /usr/bin's
    // redis-server (Debian's 7.0) runs the rendered config, cluster
    // directives and password included.
    let empty = tempfile::tempdir().unwrap();
    let pod = Pod::new(&ValkeyClusterSpec::with_topology(Topology::Cluster), None);
    let server = Server::start_from(&pod, empty.path(), Some("s3cret"));
    let mut c = server.connect();
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), Reply::Status("OK".into()));
    let Reply::Bulk(Some(info)) = c.cmd(&["INFO", "server"]) else {
        panic!("INFO server");
    };
    assert!(info.contains("redis_version:"), "{info}");
    assert!(!info.contains("valkey_version:"), "{info}");
    let Reply::Bulk(Some(info)) = c.cmd(&["CLUSTER", "INFO"]) else {
        panic!("CLUSTER INFO");
    };
    assert!(info.contains("cluster_state:"), "{info}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", server.child.id())).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("redis-server"));
}

#[test]
fn acl_users_outlive_a_restart_and_the_default_user_follows_the_password() {
    let pod = Pod::new(
        &ValkeyClusterSpec::with_topology(Topology::Standalone),
        None,
    );
    let server = Server::start(&pod, Some("s3cret"));
    let mut c = server.connect();
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), Reply::Status("OK".into()));
    let setuser = [
        "ACL", "SETUSER", "app", "reset", ">apppass", "on", "+@all", "~app:*",
    ];
    assert_eq!(c.cmd(&setuser), Reply::Status("OK".into()));
    assert_eq!(c.cmd(&["ACL", "SAVE"]), Reply::Status("OK".into()));
    // Saved with hashes only.
    let saved = std::fs::read_to_string(pod.path("run/users.acl")).unwrap();
    assert!(
        !saved.contains("apppass") && !saved.contains("s3cret"),
        "{saved}"
    );
    let mode = std::fs::metadata(pod.path("run/users.acl"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "ACL file readable by others");
    drop(c);
    drop(server);
    // The process restarts with the password rotated: the default user
    // takes the new one, the saved user is still there.
    let server = Server::start(&pod, Some("n3w"));
    let mut c = server.connect();
    assert!(matches!(c.cmd(&["AUTH", "s3cret"]), Reply::Error(_)));
    assert_eq!(c.cmd(&["AUTH", "n3w"]), Reply::Status("OK".into()));
    assert_eq!(
        c.cmd(&["AUTH", "app", "apppass"]),
        Reply::Status("OK".into())
    );
    assert_eq!(c.cmd(&["SET", "app:1", "v"]), Reply::Status("OK".into()));
    assert_eq!(error_code(&c.cmd(&["SET", "other:1", "v"])), "NOPERM");
    drop(c);
    drop(server);
    // A password with whitespace cannot be written in an ACL file: no
    // file then, and the server still starts and requires it.
    let pod = Pod::new(
        &ValkeyClusterSpec::with_topology(Topology::Replication),
        None,
    );
    let server = Server::start(&pod, Some("two words"));
    let mut c = server.connect();
    assert_eq!(c.cmd(&["AUTH", "two words"]), Reply::Status("OK".into()));
    match c.cmd(&["CONFIG", "GET", "aclfile"]) {
        Reply::Array(items) => assert_eq!(items[1], Reply::Bulk(Some(String::new()))),
        other => panic!("CONFIG GET aclfile: {other:?}"),
    }
}

#[test]
fn a_service_link_in_valkey_port_is_not_taken_for_the_port() {
    // Kubernetes' service links set VALKEY_PORT=tcp://<ip>:6379 in every
    // pod of a namespace with a Service named `valkey`: the script keeps
    // the rendered port instead of writing `port tcp://...`.
    let pod = Pod::new(
        &ValkeyClusterSpec::with_topology(Topology::Replication),
        None,
    );
    let stub = tempfile::tempdir().unwrap();
    let server = stub.path().join("valkey-server");
    std::fs::write(&server, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&server, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let status = pod
        .command(stub.path(), 7000, None)
        .env("VALKEY_PORT", "tcp://10.96.0.7:6379")
        .status()
        .unwrap();
    assert!(status.success());
    let conf = pod.runtime_conf();
    assert!(conf.lines().any(|l| l == "port 6379"), "{conf}");
    assert!(!conf.contains("tcp://"), "{conf}");
}

/// `CONFIG GET repl-diskless-sync-delay` of a started server.
fn sync_delay(server: &Server, password: &str) -> String {
    let mut c = server.connect();
    assert_eq!(c.cmd(&["AUTH", password]), Reply::Status("OK".into()));
    match c.cmd(&["CONFIG", "GET", "repl-diskless-sync-delay"]) {
        Reply::Array(items) => match &items[1] {
            Reply::Bulk(Some(v)) => v.clone(),
            other => panic!("CONFIG GET repl-diskless-sync-delay: {other:?}"),
        },
        other => panic!("CONFIG GET repl-diskless-sync-delay: {other:?}"),
    }
}

#[test]
fn a_cluster_node_that_stopped_as_a_primary_serving_slots_boots_holding_full_resyncs_back() {
    let pod = Pod::new(&ValkeyClusterSpec::with_topology(Topology::Cluster), None);
    // A node with no nodes.conf (new, or its volume lost, where a replica
    // of the node it replaces may follow its address) holds full resyncs
    // back; one that stopped holding no slot has the normal delay.
    let server = Server::start(&pod, Some("pw"));
    assert_eq!(
        sync_delay(&server, "pw"),
        logbook::resources::CLUSTER_BOOT_FENCE_SECONDS.to_string()
    );
    drop(server);
    let server = Server::start(&pod, Some("pw"));
    assert_eq!(
        sync_delay(&server, "pw"),
        logbook::resources::CLUSTER_FULL_SYNC_DELAY_SECONDS.to_string()
    );
    // It serves slots (nodes.conf says so, written at once) and stops, as
    // a killed primary does: back, it holds full resyncs back.
    let mut c = server.connect();
    assert_eq!(c.cmd(&["AUTH", "pw"]), Reply::Status("OK".into()));
    assert_eq!(
        c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "99"]),
        Reply::Status("OK".into())
    );
    let nodes = std::fs::read_to_string(pod.path("data/nodes.conf")).unwrap();
    assert!(nodes.contains("myself,master"), "{nodes}");
    drop(c);
    drop(server);
    let server = Server::start(&pod, Some("pw"));
    assert_eq!(
        sync_delay(&server, "pw"),
        logbook::resources::CLUSTER_BOOT_FENCE_SECONDS.to_string()
    );
    let conf = pod.runtime_conf();
    assert!(
        conf.trim_end().ends_with(&format!(
            "repl-diskless-sync-delay {}",
            logbook::resources::CLUSTER_BOOT_FENCE_SECONDS
        )),
        "{conf}"
    );
}
