//! `kubectl valkey certificate` end to end on localkube with real TLS
//! servers (Debian's Valkey 8.0.1, run for `valkey/valkey:8.0`) and the real
//! `redis-cli`: a Replication cluster with mutual TLS and the operator's
//! own CA, a ValkeyUser `app`. The plugin writes `app.crt`, `app.key`
//! (mode 0600) and `ca.crt`; with them `redis-cli --tls` connects, signs in
//! as `app` and runs what the user may (and is refused what it may not);
//! a certificate of another CA is refused in the handshake. Unknown
//! clusters and users, a user of another cluster and a file in the way
//! are refused, exit code 1, naming what is wrong, nothing written.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kube::api::PostParams;
use logbook::tls::issue;
use logbook_journal::Timestamp;
use operator_common::*;

/// `redis-cli --tls` to `addr` trusting `ca`, presenting `cert`/`key`,
/// signed in as `user`; what it printed.
fn as_user(addr: &str, dir: &Path, files: (&str, &str), user: &str, args: &[&str]) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let out = Command::new("redis-cli")
        .args(["--tls", "-h", host, "-p", port, "--cacert"])
        .arg(dir.join("ca.crt"))
        .arg("--cert")
        .arg(dir.join(files.0))
        .arg("--key")
        .arg(dir.join(files.1))
        .args([
            "--user",
            user,
            "--pass",
            SAMPLE_USER_PASSWORD,
            "--no-auth-warning",
        ])
        .args(args)
        .output()
        .expect("redis-cli runs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_the_plugin_signs_in_over_mutual_tls() {
    let env = Env::start("plugin-certificate").await;
    env.apply_yaml(
        r#"
apiVersion: valkey.logbook.dev/v1alpha1
kind: ValkeyCluster
metadata:
  name: demo
spec:
  topology: Replication
  replicas: 2
  image: valkey/valkey:8.0
  tls:
    enabled: true
    clientAuth: true
  storage:
    size: 1Gi
"#,
    )
    .await;
    create_user_sample(&env).await;
    let vkc = env.wait_ready("demo", 2, Duration::from_secs(60)).await;
    let addr = env.pod_addr(&primary(&vkc)).await;
    // A user of another cluster, for the refusal.
    let mut other: logbook_crds::ValkeyUser = serde_yaml::from_str(
        "apiVersion: valkey.logbook.dev/v1alpha1\nkind: ValkeyUser\nmetadata:\n  name: elsewhere\nspec:\n  cluster: other\n  passwordSecret:\n    name: app-password\n    key: password\n",
    )
    .unwrap();
    other.metadata.namespace = Some(NS.to_owned());
    env.api::<logbook_crds::ValkeyUser>()
        .create(&PostParams::default(), &other)
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let (code, said, err) = kubectl_valkey_ran(
        &env,
        &[
            "certificate",
            "demo",
            "--user",
            "app",
            "--out-dir",
            out_dir,
            "--days",
            "2",
        ],
    )
    .await;
    assert_eq!(code, 0, "{said}{err}");
    assert!(said.contains("CN=app"), "{said}");
    let key = std::fs::read_to_string(dir.path().join("app.key")).unwrap();
    assert!(key.contains("PRIVATE KEY"));
    assert!(
        !said.contains(key.lines().nth(1).unwrap()),
        "the key printed"
    );
    let mode = std::fs::metadata(dir.path().join("app.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The user signs in over mutual TLS with it and runs what it may.
    env.eventually(Duration::from_secs(20), "app may SET app:1", || {
        let out = as_user(
            &addr,
            dir.path(),
            ("app.crt", "app.key"),
            "app",
            &["SET", "app:1", "v"],
        );
        async move { out.trim() == "OK" }
    })
    .await;
    let got = as_user(
        &addr,
        dir.path(),
        ("app.crt", "app.key"),
        "app",
        &["GET", "app:1"],
    );
    assert_eq!(got.trim(), "v", "{got}");
    let denied = as_user(
        &addr,
        dir.path(),
        ("app.crt", "app.key"),
        "app",
        &["GET", "other:1"],
    );
    assert!(denied.contains("NOPERM"), "{denied}");
    let whoami = as_user(
        &addr,
        dir.path(),
        ("app.crt", "app.key"),
        "app",
        &["ACL", "WHOAMI"],
    );
    assert_eq!(whoami.trim(), "app", "{whoami}");

    // A certificate of another CA, for the same user: refused in the
    // handshake.
    let now = Timestamp::now();
    let stranger = issue::new_ca("demo", NS, now, issue::CA_VALIDITY).unwrap();
    let forged = issue::issue_client(&stranger, "app", now, Duration::from_secs(3600)).unwrap();
    std::fs::write(dir.path().join("forged.crt"), &forged.cert_pem).unwrap();
    std::fs::write(dir.path().join("forged.key"), &forged.key_pem).unwrap();
    let refused = as_user(
        &addr,
        dir.path(),
        ("forged.crt", "forged.key"),
        "app",
        &["GET", "app:1"],
    );
    assert_ne!(
        refused.trim(),
        "v",
        "a foreign CA's certificate let in: {refused}"
    );
    assert!(
        refused.contains("Server closed the connection") || refused.contains("I/O error"),
        "{refused}"
    );

    // Refusals: exit 1, saying what is wrong, nothing written.
    let empty = tempfile::tempdir().unwrap();
    let empty_dir = empty.path().to_str().unwrap();
    for (args, says) in [
        (
            vec![
                "certificate",
                "nope",
                "--user",
                "app",
                "--out-dir",
                empty_dir,
            ],
            "valkeycluster \"nope\" not found",
        ),
        (
            vec![
                "certificate",
                "demo",
                "--user",
                "ghost",
                "--out-dir",
                empty_dir,
            ],
            "valkeyuser \"ghost\" not found",
        ),
        (
            vec![
                "certificate",
                "demo",
                "--user",
                "elsewhere",
                "--out-dir",
                empty_dir,
            ],
            "belongs to valkeycluster \"other\"",
        ),
    ] {
        let (code, said, err) = kubectl_valkey_ran(&env, &args).await;
        assert_eq!(code, 1, "{args:?}: {said}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    let (code, _, err) = kubectl_valkey_ran(
        &env,
        &["certificate", "demo", "--user", "app", "--out-dir", out_dir],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.key")).unwrap(),
        key
    );
    env.finish().await;
}
