//! `kubectl valkey` through the real kubectl: the built `kubectl-valkey`
//! on `PATH` in a temporary directory, a kubeconfig for localkube, the
//! operator and a real Replication cluster from the e2e harness (one
//! cluster for the whole file).
//!
//! Covered: `--help`; `status` (table, and one cluster with roles and
//! offsets from the journal); `switchover --to` (with `--wait`) and its
//! refusals; `pause`/`resume`; `events`; `replay <name> verify|audit`;
//! `report` (tarball, no Secret data, the operator's log lines found by
//! label); `failover --yes --wait`; `failover` refused on a non-terminal
//! stdin; an unknown cluster; an unreachable API server; a 403 from a
//! localkube enforcing RBAC, for a ServiceAccount that may read but not
//! patch ValkeyClusters, reached with `--kubeconfig` and `--context`.
//! `status` shows versions, backups, the certificate, users and what the
//! operator is doing; `backup` refused without a destination, then taken
//! to moto's S3 server and waited for; `logs` of the pods, and of a
//! stand-in operator pod filtered to the cluster's lines; `cli` refused
//! with the API server's word on localkube (which serves no exec), run
//! for real on the containers node.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::operator_common;
use crate::s3_server::S3Server;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use logbook::journal_store::JournalBackend;
use operator_common::*;
use serde_json::json;

fn kubectl() -> PathBuf {
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/kubectl");
    assert!(local.exists(), "kubectl not found: run `make setup`");
    local
}

/// `kubectl valkey ...` with the plugin on `PATH`.
struct Plugin {
    bin: tempfile::TempDir,
    path: OsString,
}

/// What one run printed and how it ended.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Plugin {
    fn new() -> Self {
        let bin = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_kubectl-valkey"),
            bin.path().join("kubectl-valkey"),
        )
        .unwrap();
        let mut path = OsString::from(bin.path());
        // `kubectl valkey cli` runs `kubectl exec`: the same kubectl.
        path.push(":");
        path.push(kubectl().parent().unwrap());
        if let Some(rest) = std::env::var_os("PATH") {
            path.push(":");
            path.push(rest);
        }
        Self { bin, path }
    }

    /// `kubectl valkey <args>` with `KUBECONFIG` set, standard input not a
    /// terminal.
    fn run(&self, kubeconfig: &Path, args: &[&str]) -> Ran {
        let out: Output = Command::new(kubectl())
            .arg("valkey")
            .args(args)
            .env("PATH", &self.path)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", self.bin.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let ran = Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!(
            "$ kubectl valkey {}\n{}{}=> {}\n",
            args.join(" "),
            ran.stdout.chars().take(4000).collect::<String>(),
            ran.stderr,
            ran.code
        );
        ran
    }
}

/// Runs the plugin on a blocking thread (the API server and the cluster
/// run on this test's runtime).
async fn kv(plugin: &Arc<Plugin>, kubeconfig: &Path, args: &[&str]) -> Ran {
    let (plugin, kubeconfig) = (plugin.clone(), kubeconfig.to_owned());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        plugin.run(&kubeconfig, &args)
    })
    .await
    .unwrap()
}

fn ok(ran: &Ran) -> &str {
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    &ran.stdout
}

/// An API-only localkube enforcing RBAC, with the CRDs, a ValkeyCluster
/// `demo` in namespace `team-a`, and a ServiceAccount `team-a/viewer` that
/// may get and list ValkeyClusters there but not patch them. Returns the
/// server (keep it running) and a token of the ServiceAccount.
async fn rbac_server() -> (logbook_localkube::RunningServer, String) {
    let server = logbook_localkube::LocalKube::start(logbook_localkube::Config {
        rbac: true,
        ..logbook_localkube::Config::default()
    })
    .await
    .unwrap();
    logbook::local_cluster::install_crds(&server).unwrap();
    let admin = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let objects = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "viewer", "namespace": "team-a"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "valkey-viewer", "namespace": "team-a"},
            "rules": [{"apiGroups": ["valkey.logbook.dev"], "resources": ["valkeyclusters"], "verbs": ["get", "list"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "valkey-viewer", "namespace": "team-a"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "valkey-viewer"},
            "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": "team-a"}]}),
    ];
    for obj in objects {
        let (group, version) = match obj["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (
                String::new(),
                obj["apiVersion"].as_str().unwrap().to_owned(),
            ),
        };
        let kind = obj["kind"].as_str().unwrap();
        let plural = match kind {
            "Namespace" => "namespaces".to_owned(),
            "ServiceAccount" => "serviceaccounts".to_owned(),
            other => format!("{}s", other.to_lowercase()),
        };
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&group, &version, kind),
            &plural,
        );
        let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(admin.clone(), ns, &ar),
            None => Api::all_with(admin.clone(), &ar),
        };
        let name = obj["metadata"]["name"].as_str().unwrap().to_owned();
        api.patch(
            &name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap();
    }
    let vkcs: Api<logbook_crds::ValkeyCluster> = Api::namespaced(admin, "team-a");
    let vkc: logbook_crds::ValkeyCluster =
        serde_yaml::from_str(&replication_yaml("demo", 3)).unwrap();
    vkcs.create(&PostParams::default(), &vkc).await.unwrap();
    let token = server
        .service_account_token("team-a", "viewer", Duration::from_secs(600))
        .unwrap();
    (server, token)
}

/// A kubeconfig with two contexts: `local` (the current one) at `dead`,
/// and `elsewhere` at `rbac` as the ServiceAccount whose `token` is given,
/// namespace `team-a`.
fn two_contexts(dir: &Path, dead: &str, rbac: &str, token: &str) -> PathBuf {
    let path = dir.join("two-contexts");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster: {{server: \"{dead}\"}}\n- name: other\n  cluster: {{server: \"{rbac}\"}}\nusers:\n- name: nobody\n  user: {{}}\n- name: viewer\n  user: {{token: \"{token}\"}}\ncontexts:\n- name: local\n  context: {{cluster: local, user: nobody, namespace: default}}\n- name: elsewhere\n  context: {{cluster: other, user: viewer, namespace: team-a}}\ncurrent-context: local\n"
        ),
    )
    .unwrap();
    path
}

/// What the stand-in operator logs: a line about no cluster, two about
/// `default/demo` (JSON and text, as `operator/src/logging.rs` writes
/// them), one about another cluster of the same name elsewhere and one
/// about `default/demo2`.
const OPERATOR_SAYS: &str = r#"echo operator says hello
echo '{"timestamp":"2026-11-30T17:00:00Z","level":"INFO","target":"logbook","message":"json about demo","namespace":"default","name":"demo","seq":7}'
echo '{"timestamp":"2026-11-30T17:00:01Z","level":"INFO","target":"logbook","message":"json about prod demo","namespace":"prod","name":"demo"}'
echo '2026-11-30T17:00:02Z  INFO logbook::operator: text about demo name=demo namespace=default seq=8'
echo '2026-11-30T17:00:03Z  INFO logbook::operator: text about demo2 name=demo2 namespace=default'
sleep 3600"#;

/// A stand-in operator pod in `logbook-system`, for `report`'s logs.
async fn operator_pod(env: &Env) {
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "logbook-system"}
    }))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "logbook-system");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "logbook-operator-0", "labels": {"app.kubernetes.io/name": "logbook"}},
        "spec": {"containers": [{
            "name": "operator",
            "image": "valkey/valkey:9.1",
            "command": ["sh", "-c", OPERATOR_SAYS]
        }]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    env.eventually(
        Duration::from_secs(20),
        "the stand-in operator's log",
        || {
            let pods = pods.clone();
            async move {
                pods.logs("logbook-operator-0", &Default::default())
                    .await
                    .is_ok_and(|l| l.contains("operator says hello"))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_valkey_against_a_live_replication_cluster() {
    let mut env = Env::start_without_operator("kubectl-plugin").await;
    env.journal = JournalBackend::ConfigMap;
    env.start_operator();
    env.apply_yaml(&replication_yaml("demo", 3)).await;
    let kubeconfig = env.write_kubeconfig();
    let plugin = Arc::new(Plugin::new());
    let tmp = tempfile::tempdir().unwrap();

    // Help needs no cluster.
    let help = kv(&plugin, &kubeconfig, &["--help"]).await;
    for word in [
        "status",
        "backup",
        "logs",
        "cli",
        "switchover",
        "failover",
        "pause",
        "resume",
        "hibernate",
        "wake",
        "replay",
        "events",
        "report",
        "Exit codes",
        "--context",
    ] {
        assert!(ok(&help).contains(word), "--help lacks {word}");
    }
    let help = kv(&plugin, &kubeconfig, &["failover", "--help"]).await;
    assert!(ok(&help).contains("--yes"));

    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    let first = primary(&vkc);
    let password = env.password("demo").await;
    write_keys(&env.service_addr("demo").await, &password, "k", 100).await;

    // status: the table, then one cluster from its journal.
    let table = kv(&plugin, &kubeconfig, &["status"]).await;
    let line = ok(&table)
        .lines()
        .find(|l| l.starts_with("demo "))
        .unwrap()
        .to_owned();
    for cell in ["Replication", "Ready", "3/3", first.as_str()] {
        assert!(line.contains(cell), "{line:?} lacks {cell}");
    }
    let detail = kv(&plugin, &kubeconfig, &["status", "demo", "-n", NS]).await;
    let text = ok(&detail);
    assert!(
        text.contains("as last observed by the operator at"),
        "{text}"
    );
    assert!(text.contains("Journal head:  seq "), "{text}");
    let row = |pod: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{pod} ")))
            .unwrap_or_else(|| panic!("no row for {pod}"))
    };
    assert!(row(&first).contains("primary"), "{}", row(&first));
    let replicas: Vec<String> = (0..3)
        .map(|i| format!("demo-{i}"))
        .filter(|p| *p != first)
        .collect();
    // Columns: pod, role, follows, link, offset, lag: every pod's offset
    // is known (its value is whatever the last coarse probe recorded).
    let offset = |line: &str| line.split_whitespace().nth(4).map(str::to_owned);
    assert!(
        offset(row(&first)).is_some_and(|o| o.parse::<u64>().is_ok()),
        "{}",
        row(&first)
    );
    for r in &replicas {
        let line = row(r);
        assert!(line.contains("replica") && line.contains(&first), "{line}");
        assert!(
            offset(line).is_some_and(|o| o.parse::<u64>().is_ok()),
            "no offset in {line}"
        );
    }

    // status: what else the published status holds, "none" where nothing.
    assert!(ok(&table).starts_with("NAME "), "{}", table.stdout);
    assert!(ok(&table).lines().next().unwrap().contains("VERSION"));
    let image = env.vkc("demo").await.spec.image;
    let tag = image.rsplit(':').next().unwrap();
    assert!(line.contains(tag), "{line:?} lacks the image's tag {tag}");
    for needed in [
        "Version:",
        "Doing now:",
        "Backups:       none completed",
        "no destination: set spec.backup.destination",
        "Certificate:   none (TLS off)",
        "Users:         none",
    ] {
        assert!(text.contains(needed), "status lacks {needed:?}:\n{text}");
    }

    // logs: each pod's last lines, prefixed with its name.
    let logs = kv(&plugin, &kubeconfig, &["logs", "demo", "--tail", "5"]).await;
    let text = ok(&logs);
    for i in 0..3 {
        let pod = format!("[demo-{i}] ");
        let lines = text.lines().filter(|l| l.starts_with(&pod)).count();
        assert!((1..=5).contains(&lines), "{lines} lines of {pod}in\n{text}");
    }
    assert!(text.lines().all(|l| l.starts_with("[demo-")), "{text}");
    // -f streams every pod at once; localkube's log ends where it is
    // (it follows nothing), so the stream ends too.
    if !on_kubernetes() {
        let followed = kv(&plugin, &kubeconfig, &["logs", "demo", "-f", "--tail", "2"]).await;
        let text = ok(&followed);
        for i in 0..3 {
            let pod = format!("[demo-{i}] ");
            let lines = text.lines().filter(|l| l.starts_with(&pod)).count();
            assert!((1..=2).contains(&lines), "{lines} lines of {pod}in\n{text}");
        }
    }
    let none = kv(&plugin, &kubeconfig, &["logs", "nope"]).await;
    assert_eq!(none.code, 1, "{}", none.stderr);
    assert!(
        none.stderr.contains("valkeycluster \"nope\" not found"),
        "{}",
        none.stderr
    );

    // cli: the pod must be one of the cluster's; exec itself is the API
    // server's to serve (localkube refuses it, a real node runs it).
    let bad = kv(
        &plugin,
        &kubeconfig,
        &["cli", "demo", "--pod", "demo-9", "--", "PING"],
    )
    .await;
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("\"demo-9\" is not a data pod of valkeycluster \"demo\""),
        "{}",
        bad.stderr
    );
    let set = kv(
        &plugin,
        &kubeconfig,
        &["cli", "demo", "--", "SET", "cli-key", "from-cli"],
    )
    .await;
    if on_containers() {
        assert!(ok(&set).contains("OK"), "{}", set.stdout);
        let got = kv(
            &plugin,
            &kubeconfig,
            &["cli", "demo", "--pod", &replicas[0], "--", "GET", "cli-key"],
        )
        .await;
        assert!(ok(&got).contains("from-cli"), "{}", got.stdout);
    } else if !on_kubernetes() {
        assert_eq!(set.code, 1, "{}", set.stderr);
        assert!(
            set.stderr
                .contains(&format!("refused exec into pod {first}"))
                && set.stderr.contains("pods/exec"),
            "{}",
            set.stderr
        );
    }
    // Nothing of the password on the plugin's or kubectl's output.
    assert!(!set.stderr.contains(&password) && !set.stdout.contains(&password));

    // switchover: refusals first, then a real one, waited for.
    let bad = kv(
        &plugin,
        &kubeconfig,
        &["switchover", "demo", "--to", "demo-9"],
    )
    .await;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr
            .contains("\"demo-9\" is not a data pod of valkeycluster \"demo\""),
        "{}",
        bad.stderr
    );
    let bad = kv(
        &plugin,
        &kubeconfig,
        &["switchover", "demo", "--to", &first],
    )
    .await;
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("already the primary"), "{}", bad.stderr);
    let target = replicas[0].clone();
    let switched = kv(
        &plugin,
        &kubeconfig,
        &[
            "switchover",
            "demo",
            "--to",
            &target,
            "--wait",
            "--timeout",
            "60s",
        ],
    )
    .await;
    assert!(ok(&switched).contains(&format!("primary is now {target}")));
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    assert_eq!(primary(&vkc), target);
    assert!(switchover_cleared(&vkc));

    // pause / resume: spec.paused, said plainly.
    let paused = kv(&plugin, &kubeconfig, &["pause", "demo"]).await;
    assert!(ok(&paused).contains("changes nothing"));
    assert!(env.vkc("demo").await.spec.paused);
    let resumed = kv(&plugin, &kubeconfig, &["resume", "demo"]).await;
    assert!(ok(&resumed).contains("resumed"));
    assert!(!env.vkc("demo").await.spec.paused);
    env.wait_ready("demo", 3, Duration::from_secs(40)).await;

    // hibernate / wake: spec.hibernated, the cluster asleep, then back
    // with the same primary.
    let before = primary(&env.vkc("demo").await);
    let asleep = kv(&plugin, &kubeconfig, &["hibernate", "demo"]).await;
    assert!(ok(&asleep).contains("stops every pod"));
    assert!(env.vkc("demo").await.spec.hibernated);
    env.wait_status("demo", Duration::from_secs(60), "phase Hibernated", |v| {
        v.status.as_ref().and_then(|s| s.phase)
            == Some(logbook_crds::v1alpha1::ClusterPhase::Hibernated)
    })
    .await;
    let woken = kv(&plugin, &kubeconfig, &["wake", "demo"]).await;
    assert!(ok(&woken).contains("no failover"));
    assert!(!env.vkc("demo").await.spec.hibernated);
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(60)).await;
    assert_eq!(primary(&vkc), before);

    // events: the switchover's decision, reason and outcome.
    let events = kv(&plugin, &kubeconfig, &["events", "demo", "--limit", "50"]).await;
    let text = ok(&events);
    assert!(
        text.contains(&format!("switch over {first} -> {target}")),
        "{text}"
    );
    assert!(
        text.contains("[Requested]") && text.contains("-> succeeded"),
        "{text}"
    );

    // replay: verify and audit on the ConfigMap journal, replay's exit codes.
    let verify = kv(&plugin, &kubeconfig, &["replay", "demo", "verify"]).await;
    ok(&verify);
    let audit = kv(
        &plugin,
        &kubeconfig,
        &["replay", "demo", "audit", "--json", "-n", NS],
    )
    .await;
    let report: serde_json::Value = serde_json::from_str(ok(&audit)).unwrap();
    assert_eq!(
        report["findings"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    let bad = kv(
        &plugin,
        &kubeconfig,
        &["replay", "demo", "audit", "--file", "x.jsonl"],
    )
    .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);

    // failover: refused without a terminal, then confirmed with --yes.
    let refused = kv(&plugin, &kubeconfig, &["failover", "demo"]).await;
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("not a terminal") && refused.stderr.contains("--yes"),
        "{}",
        refused.stderr
    );
    assert!(
        !env.vkc("demo")
            .await
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("valkey.logbook.dev/failover-requested")
    );
    let failed_over = kv(
        &plugin,
        &kubeconfig,
        &["failover", "demo", "--yes", "--wait", "--timeout", "60s"],
    )
    .await;
    assert!(ok(&failed_over).contains("primary is now"));
    let vkc = env.wait_ready("demo", 3, Duration::from_secs(40)).await;
    assert_ne!(primary(&vkc), target);
    let failovers = kv(&plugin, &kubeconfig, &["replay", "demo", "failovers"]).await;
    assert!(
        ok(&failovers).contains(&format!("Requested {target} -> ")),
        "{}",
        failovers.stdout
    );

    // A ValkeyUser of demo, for status's Users.
    let user_secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "app-password"},
        "stringData": {"password": "app-password-value"}
    }))
    .unwrap();
    env.api::<Secret>()
        .create(&PostParams::default(), &user_secret)
        .await
        .unwrap();
    let mut user_spec = logbook_crds::ValkeyUserSpec::new("demo", "app-password", "password");
    user_spec.commands = vec!["+@read".to_owned()];
    env.api::<logbook_crds::ValkeyUser>()
        .create(
            &PostParams::default(),
            &logbook_crds::ValkeyUser::new("app", user_spec),
        )
        .await
        .unwrap();

    // backup: refused without a destination, then taken to moto's S3.
    let refused = kv(&plugin, &kubeconfig, &["backup", "demo"]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("has no backup destination: set spec.backup.destination"),
        "{}",
        refused.stderr
    );
    let missing = kv(&plugin, &kubeconfig, &["backup", "nope", "--wait"]).await;
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    let s3 = S3Server::start_at(env.host_for_pods(), None, &[]);
    s3.create_bucket("plugin-backups");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "backup-s3"},
        "stringData": {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "endpoint": s3.endpoint()}
    }))
    .unwrap();
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    env.patch(
        "demo",
        json!({"spec": {"backup": {"destination": {"bucket": "plugin-backups", "prefix": "logbook", "credentialsSecret": "backup-s3"}}}}),
    )
    .await;
    let taken = kv(
        &plugin,
        &kubeconfig,
        &["backup", "demo", "--wait", "--timeout", "120s"],
    )
    .await;
    let text = ok(&taken);
    let backup = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("valkeybackup/"))
        .unwrap()
        .to_owned();
    assert!(backup.starts_with("demo-"), "{text}");
    assert!(
        text.contains(&format!("valkeybackup/{backup} completed in ")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "at s3://plugin-backups/logbook/{NS}/demo/{backup}/"
        )),
        "{text}"
    );
    env.wait_status(
        "demo",
        Duration::from_secs(30),
        "status.backup.lastCompleted",
        |v| {
            v.status
                .as_ref()
                .and_then(|s| s.backup.as_ref())
                .and_then(|b| b.last_completed.as_deref())
                == Some(backup.as_str())
        },
    )
    .await;
    let users = env.api::<logbook_crds::ValkeyUser>();
    env.eventually(Duration::from_secs(30), "ValkeyUser app Ready", || {
        let users = users.clone();
        async move {
            users
                .get("app")
                .await
                .ok()
                .and_then(|u| u.status)
                .and_then(|s| s.phase)
                == Some(logbook_crds::UserPhase::Ready)
        }
    })
    .await;
    let detail = kv(&plugin, &kubeconfig, &["status", "demo"]).await;
    let text = ok(&detail);
    let user_row = text
        .lines()
        .find(|l| l.starts_with("  app "))
        .unwrap_or_else(|| panic!("no row of ValkeyUser app:\n{text}"));
    for cell in ["Ready", "3/3", "yes"] {
        assert!(user_row.contains(cell), "{user_row:?} lacks {cell}");
    }
    assert!(!text.contains("app-password-value"), "{text}");
    assert!(
        text.contains(&format!("Backups:       last completed {backup}, ")),
        "{text}"
    );
    assert!(text.contains("no schedule"), "{text}");
    // The last failover and why, from the decision that made it.
    assert!(
        text.contains("why: [Requested] failover requested"),
        "{text}"
    );
    let version = redis_cli(
        &env.service_addr("demo").await,
        &password,
        &["INFO", "server"],
    );
    let version = version
        .lines()
        .find_map(|l| l.trim().strip_prefix("valkey_version:"))
        .unwrap()
        .to_owned();
    let line = text.lines().find(|l| l.starts_with("Version:")).unwrap();
    assert!(
        line.contains(&format!("{version} ({image}) on every pod observed (3)")),
        "{line} lacks {version} ({image})"
    );

    // report: a tarball with every part, the operator's logs, no secret.
    operator_pod(&env).await;
    // logs --operator: the operator's lines about this cluster only.
    let op = kv(&plugin, &kubeconfig, &["logs", "demo", "--operator"]).await;
    let lines: Vec<&str> = ok(&op).lines().collect();
    assert_eq!(lines.len(), 2, "{}", op.stdout);
    assert!(lines[0].starts_with("[logbook-operator-0] {") && lines[0].contains("json about demo"));
    assert!(
        lines[1].contains("text about demo name=demo"),
        "{}",
        lines[1]
    );
    let op = kv(
        &plugin,
        &kubeconfig,
        &["logs", "demo", "--operator", "--tail", "1"],
    )
    .await;
    assert_eq!(ok(&op).lines().count(), 1, "{}", op.stdout);
    assert!(op.stdout.contains("text about demo"), "{}", op.stdout);
    let elsewhere = kv(
        &plugin,
        &kubeconfig,
        &[
            "logs",
            "demo",
            "--operator",
            "--operator-namespace",
            "nowhere",
        ],
    )
    .await;
    assert_eq!(elsewhere.code, 1, "{}", elsewhere.stderr);
    assert!(
        elsewhere.stderr.contains("--operator-namespace"),
        "{}",
        elsewhere.stderr
    );
    let bundle = tmp.path().join("bundle.tar.gz");
    let made = kv(
        &plugin,
        &kubeconfig,
        &["report", "demo", "-o", bundle.to_str().unwrap()],
    )
    .await;
    ok(&made);
    let unpacked = tmp.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let tar = Command::new("tar")
        .arg("xzf")
        .arg(&bundle)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(tar.success());
    let top = std::fs::read_dir(&unpacked)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for part in [
        "README.txt",
        "cluster.yaml",
        "status.txt",
        "events.txt",
        "pods.yaml",
        "statefulsets.yaml",
        "services.yaml",
        "configmaps.yaml",
        "secrets.txt",
        "journal.jsonl",
        "operator-logs/logbook-operator-0.log",
    ] {
        assert!(
            top.join(part).is_file(),
            "the bundle lacks {part}: {}",
            made.stdout
        );
    }
    let read = |p: &str| std::fs::read_to_string(top.join(p)).unwrap();
    assert!(read("operator-logs/logbook-operator-0.log").contains("operator says hello"));
    assert!(read("secrets.txt").contains("demo-password"));
    assert!(read("journal.jsonl").lines().count() > 10);
    let mut files = vec![top.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&password),
                "{} holds the password",
                path.display()
            );
        }
    }
    let dir_bundle = tmp.path().join("bundle-dir");
    ok(&kv(
        &plugin,
        &kubeconfig,
        &["report", "demo", "-o", dir_bundle.to_str().unwrap()],
    )
    .await);
    assert!(dir_bundle.join("journal.jsonl").is_file());

    // Errors: an unknown cluster, an unreachable API, a forbidden verb.
    let missing = kv(&plugin, &kubeconfig, &["status", "nope"]).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("valkeycluster \"nope\" not found in namespace \"default\""),
        "{}",
        missing.stderr
    );
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (rbac, token) = rbac_server().await;
    let dead = two_contexts(
        tmp.path(),
        &format!("https://127.0.0.1:{closed}"),
        &rbac.url(),
        &token,
    );
    let unreachable = kv(&plugin, &dead, &["status"]).await;
    assert_eq!(unreachable.code, 3, "{}", unreachable.stderr);
    assert!(
        unreachable.stderr.contains(&format!(
            "cannot reach the Kubernetes API at https://127.0.0.1:{closed}"
        )),
        "{}",
        unreachable.stderr
    );
    // The ServiceAccount may read (its namespace comes from the context)...
    let allowed = kv(
        &plugin,
        Path::new("/nonexistent"),
        &[
            "status",
            "--kubeconfig",
            dead.to_str().unwrap(),
            "--context",
            "elsewhere",
        ],
    )
    .await;
    assert!(ok(&allowed).contains("demo"));
    // ...but not patch: the verb and resource, RBAC, and the server's words.
    let forbidden = kv(
        &plugin,
        Path::new("/nonexistent"),
        &[
            "pause",
            "demo",
            "--kubeconfig",
            dead.to_str().unwrap(),
            "--context",
            "elsewhere",
        ],
    )
    .await;
    assert_eq!(forbidden.code, 4, "{}", forbidden.stderr);
    for needed in [
        "cannot patch valkeyclusters.valkey.logbook.dev in namespace \"team-a\"",
        "RBAC",
        "system:serviceaccount:team-a:viewer",
    ] {
        assert!(
            forbidden.stderr.contains(needed),
            "{} lacks {needed}",
            forbidden.stderr
        );
    }
    rbac.shutdown().await;
    let bad_context = kv(&plugin, &dead, &["status", "--context", "nowhere"]).await;
    assert_eq!(bad_context.code, 3, "{}", bad_context.stderr);
    env.finish().await;
}
