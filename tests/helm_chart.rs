//! The Helm chart (`charts/logbook`), checked with the real tools:
//!
//! - `helm lint --strict`, and `helm template` over the value sets a user
//!   picks between (cluster-wide, one namespace, monitoring on, no RBAC);
//! - `values.schema.json` refusing wrong values with a message naming them;
//! - the chart's CRD is exactly what `logbook crds` prints;
//! - the rendered Deployment is hardened as promised, and the RBAC holds no
//!   wildcard and, with `watchNamespace`, nothing cluster-wide;
//! - every rendered object is accepted by localkube through `kubectl apply
//!   --server-side --dry-run=server`, and nothing is stored;
//! - the Deployment's arguments are accepted by the real `logbook operator`;
//! - the PrometheusRule passes `promtool check rules` and the unit tests of
//!   `tests/alerts/` (`promtool test rules`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_yaml::Value;

const RELEASE: &str = "ops";
const RELEASE_NS: &str = "logbook-system";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("charts/logbook")
}

fn tool(name: &str) -> PathBuf {
    let local = root().join(".tools/bin").join(name);
    assert!(local.exists(), "{name} not found: run `make setup`");
    local
}

fn promtool() -> PathBuf {
    let found = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    found.expect("promtool not found: run `make setup` (Debian package prometheus)")
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("logbook-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("logbook-helm-config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("logbook-helm-data"),
        )
        .output()
        .unwrap()
}

#[track_caller]
fn ok(program: &Path, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{} {} failed:\n{}{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `helm template` with `sets`, as YAML text.
fn template(sets: &[&str]) -> String {
    let chart = chart();
    let mut args = vec![
        "template",
        RELEASE,
        chart.to_str().unwrap(),
        "--namespace",
        RELEASE_NS,
    ];
    for set in sets {
        args.push("--set");
        args.push(set);
    }
    ok(&tool("helm"), &args)
}

/// The rendered objects, parsed.
fn objects(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize;

fn kinds(objs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = objs
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    kinds
}

fn find<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

#[test]
fn the_chart_lints_strictly_with_each_scope() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    ok(&tool("helm"), &["lint", "--strict", chart]);
    ok(
        &tool("helm"),
        &["lint", "--strict", chart, "--set", "watchNamespace=shop"],
    );
    ok(
        &tool("helm"),
        &[
            "lint",
            "--strict",
            chart,
            "--set",
            "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true",
        ],
    );
}

#[test]
fn the_default_rendering_is_the_promised_set_of_objects() {
    let objs = objects(&template(&[]));
    assert_eq!(
        kinds(&objs),
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "Service",
            "ServiceAccount",
            "ValidatingWebhookConfiguration",
            "ValkeyOperatorDefaults",
        ]
    );
    // The validating webhook: asked about the operator's objects only,
    // through its Service, for changes and deletions.
    let webhook = find(&objs, "ValidatingWebhookConfiguration");
    let hook = &webhook["webhooks"][0];
    assert_eq!(
        hook["objectSelector"]["matchLabels"]["app.kubernetes.io/managed-by"],
        "logbook"
    );
    assert_eq!(hook["failurePolicy"], "Ignore");
    assert_eq!(hook["clientConfig"]["service"]["path"], "/validate");
    let deploy = find(&objs, "Deployment");
    let args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap();
    assert!(
        args.iter().any(|a| a
            .as_str()
            .is_some_and(|a| a.starts_with("--webhook-configuration="))),
        "{args:?}"
    );
    // And it keeps the caBundle of the ValkeyCluster CRD's conversion
    // webhook, allowed to get and update that CRD only.
    assert!(
        args.iter()
            .any(|a| a.as_str()
                == Some("--webhook-conversion-crds=valkeyclusters.valkey.logbook.dev")),
        "{args:?}"
    );
    let crd_rule = objs
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .flat_map(|o| o["rules"].as_sequence().cloned().unwrap_or_default())
        .find(|r| r["apiGroups"][0] == "apiextensions.k8s.io")
        .unwrap();
    assert_eq!(
        crd_rule["resourceNames"][0],
        "valkeyclusters.valkey.logbook.dev"
    );
    // The operator's defaults: the built-in values, written down.
    let defaults = find(&objs, "ValkeyOperatorDefaults");
    assert_eq!(defaults["metadata"]["name"], "valkey-operator-defaults");
    assert_eq!(defaults["spec"]["template"]["image"], "valkey/valkey:9.1");
    assert_eq!(defaults["spec"]["maxClustersRolling"], 1);
    let monitored = objects(&template(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
    ]));
    assert!(kinds(&monitored).contains(&"ServiceMonitor".to_owned()));
    assert!(kinds(&monitored).contains(&"PrometheusRule".to_owned()));
    let monitor = find(&monitored, "ServiceMonitor");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true);

    let bare = objects(&template(&["rbac.create=false"]));
    assert!(
        !kinds(&bare).iter().any(|k| k.contains("Role")),
        "rbac.create=false renders no RBAC: {:?}",
        kinds(&bare)
    );
}

#[test]
fn the_deployment_is_hardened_and_highly_available() {
    let objs = objects(&template(&[]));
    let deploy = find(&objs, "Deployment");
    let spec = &deploy["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let sc = &container["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["requests"]["cpu"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    let anti =
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    assert_eq!(
        anti[0]["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"],
        spec["selector"]["matchLabels"]
    );
    let pdb = find(&objs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(pdb["spec"]["selector"], spec["selector"]);
    let service = find(&objs, "Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    // One replica: a PDB would block every drain.
    let single = objects(&template(&["replicaCount=1"]));
    assert!(!kinds(&single).contains(&"PodDisruptionBudget".to_owned()));
}

#[test]
fn the_ui_is_served_behind_token_and_access_reviews_when_enabled() {
    let objs = objects(&template(&[]));
    assert!(
        !objs.iter().any(|o| o["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("-ui"))),
        "the UI is off by default"
    );
    let objs = objects(&template(&["ui.enabled=true", "ui.port=9000"]));
    let container = &find(&objs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let args = container["args"].as_sequence().unwrap();
    assert!(
        args.contains(&Value::from("--ui-addr=0.0.0.0:9000")),
        "{args:?}"
    );
    // Readers are checked by the API server: the default, not switched off.
    assert!(
        !args
            .iter()
            .any(|a| a.as_str().is_some_and(|a| a.starts_with("--ui-auth")))
    );
    let ports = container["ports"].as_sequence().unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p["name"] == "ui" && p["containerPort"] == 9000),
        "{ports:?}"
    );
    let service = objs
        .iter()
        .find(|o| {
            o["kind"] == "Service" && o["metadata"]["name"].as_str().unwrap().ends_with("-ui")
        })
        .expect("the UI's Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "ui");
    assert_eq!(service["spec"]["ports"][0]["port"], 9000);
    let delegator = objs
        .iter()
        .find(|o| {
            o["kind"] == "ClusterRoleBinding" && o["roleRef"]["name"] == "system:auth-delegator"
        })
        .expect("the reviews' ClusterRoleBinding");
    assert_eq!(delegator["subjects"][0]["kind"], "ServiceAccount");
    // Without the chart's RBAC, no binding is made for the reviews either.
    let bare = objects(&template(&["ui.enabled=true", "rbac.create=false"]));
    assert!(!kinds(&bare).iter().any(|k| k.contains("Role")));
}

/// Every RBAC rule of `objs`.
fn rules(objs: &[Value]) -> Vec<(String, &Value)> {
    objs.iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Role" | "ClusterRole")))
        .flat_map(|o| {
            let name = format!(
                "{} {}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            );
            o["rules"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(move |r| (name.clone(), r))
        })
        .collect()
}

#[test]
fn rbac_has_no_wildcard_and_a_namespace_scope_has_nothing_cluster_wide() {
    for sets in [&[][..], &["watchNamespace=shop"][..]] {
        let objs = objects(&template(sets));
        for (role, rule) in rules(&objs) {
            for field in ["apiGroups", "resources", "verbs"] {
                for item in rule[field].as_sequence().unwrap() {
                    assert_ne!(item, "*", "{role} has a wildcard in {field}: {rule:?}");
                }
            }
            assert!(
                rule["resourceNames"].is_null() || rule["resourceNames"].is_sequence(),
                "{role}: {rule:?}"
            );
        }
    }
    let scoped = objects(&template(&["watchNamespace=shop"]));
    // One cluster-wide right: get and update of the ValkeyCluster CRD
    // (its conversion webhook's caBundle and Service), bound to the
    // operator alone, named with the release's namespace.
    let cluster_wide: Vec<&Value> = scoped
        .iter()
        .filter(|o| o["kind"].as_str().is_some_and(|k| k.starts_with("Cluster")))
        .collect();
    assert_eq!(
        cluster_wide.len(),
        2,
        "watchNamespace renders the conversion's ClusterRole and its binding alone: {:?}",
        kinds(&scoped)
    );
    let conversion = find(&scoped, "ClusterRole");
    assert_eq!(
        conversion["metadata"]["name"].as_str(),
        Some(format!("{RELEASE}-logbook-{RELEASE_NS}-webhook").as_str())
    );
    let rules = conversion["rules"].as_sequence().unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["apiGroups"][0], "apiextensions.k8s.io");
    assert_eq!(rules[0]["resources"][0], "customresourcedefinitions");
    assert_eq!(
        rules[0]["resourceNames"].as_sequence().unwrap(),
        &[Value::from("valkeyclusters.valkey.logbook.dev")]
    );
    let binding = find(&scoped, "ClusterRoleBinding");
    assert_eq!(binding["subjects"].as_sequence().unwrap().len(), 1);
    let role = scoped
        .iter()
        .find(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == "shop")
        .expect("a Role in the watched namespace");
    assert!(!role["rules"].as_sequence().unwrap().is_empty());
    let deploy = find(&scoped, "Deployment");
    let args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap();
    assert!(args.contains(&Value::from("--namespace=shop")), "{args:?}");
    conversion_is_served(&scoped);
    assert!(!kinds(&scoped).contains(&"ValidatingWebhookConfiguration".to_owned()));
}

/// The conversion webhook is served whatever the values: the Service, the
/// port and the flags naming the CRD, the validating webhook's
/// configuration only where it is enabled.
#[track_caller]
fn conversion_is_served(objs: &[Value]) {
    let webhook = format!("{RELEASE}-logbook-webhook");
    let service = objs
        .iter()
        .find(|o| o["kind"] == "Service" && o["metadata"]["name"].as_str() == Some(&webhook))
        .expect("the webhook's Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "webhook");
    let deploy = find(objs, "Deployment");
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    let args = container["args"].as_sequence().unwrap();
    for wanted in [
        "--webhook-conversion-crds=valkeyclusters.valkey.logbook.dev".to_owned(),
        format!("--webhook-names={webhook}.{RELEASE_NS}.svc"),
    ] {
        assert!(
            args.contains(&Value::from(wanted.as_str())),
            "{wanted}: {args:?}"
        );
    }
    assert!(
        container["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "webhook"),
        "{container:?}"
    );
    let validating = kinds(objs).contains(&"ValidatingWebhookConfiguration".to_owned());
    assert_eq!(
        validating,
        args.iter().any(|a| a
            .as_str()
            .is_some_and(|a| a.starts_with("--webhook-configuration="))),
        "{args:?}"
    );
}

#[test]
fn every_install_serves_the_crds_conversion() {
    for sets in [
        &[][..],
        &["webhook.enabled=false"][..],
        &["watchNamespace=shop"][..],
        &["watchNamespace=shop", "webhook.enabled=false"][..],
    ] {
        let objs = objects(&template(sets));
        conversion_is_served(&objs);
    }
    let disabled = objects(&template(&["webhook.enabled=false"]));
    assert!(!kinds(&disabled).contains(&"ValidatingWebhookConfiguration".to_owned()));
    let rules: Vec<Value> = disabled
        .iter()
        .filter(|o| o["kind"] == "ClusterRole")
        .flat_map(|o| o["rules"].as_sequence().cloned().unwrap_or_default())
        .collect();
    assert!(
        !rules
            .iter()
            .any(|r| r["apiGroups"][0] == "admissionregistration.k8s.io"),
        "no right over a configuration it does not have: {rules:?}"
    );
}

#[test]
fn wrong_values_fail_with_a_message_naming_them() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    for (set, expected) in [
        ("replicaCount=0", "/replicaCount"),
        ("logs.format=xml", "/logs/format"),
        ("replicaCont=2", "replicaCont"),
        ("watchNamespace=Not_A_Namespace", "/watchNamespace"),
        ("image.digest=latest", "/image/digest"),
        (
            "metrics.prometheusRule.notReadyFor=ten",
            "/metrics/prometheusRule/notReadyFor",
        ),
        (
            "leaderElection.leaseSeconds=0",
            "/leaderElection/leaseSeconds",
        ),
        // The alert waits 5 minutes' window plus the rest: at least 6.
        (
            "metrics.prometheusRule.reshardStuckMinutes=5",
            "/metrics/prometheusRule/reshardStuckMinutes",
        ),
    ] {
        let out = run(&tool("helm"), &["template", RELEASE, chart, "--set", set]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {set} was accepted");
        assert!(
            stderr.contains(expected),
            "--set {set}: the error does not name {expected}: {stderr}"
        );
    }
    let out = run(
        &tool("helm"),
        &[
            "template",
            RELEASE,
            chart,
            "--set",
            "metrics.serviceMonitor.enabled=true,metrics.service.enabled=false",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs metrics.service.enabled"));
}

#[test]
fn the_charts_crd_is_what_logbook_crds_prints() {
    let printed = Command::new(env!("CARGO_BIN_EXE_logbook"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(printed.status.success());
    let path = chart().join("crds/valkeycluster.yaml");
    let shipped = std::fs::read_to_string(&path).unwrap();
    assert!(
        shipped == String::from_utf8(printed.stdout).unwrap(),
        "{} differs from `logbook crds`: run `make crds`",
        path.display()
    );
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let objs = objects(&template(&["metrics.prometheusRule.enabled=true"]));
    let rule = find(&objs, "PrometheusRule");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_yaml::to_string(&rule["spec"]).unwrap(),
    )
    .unwrap();
    let tests = root().join("tests/alerts/logbook_alerts_test.yaml");
    std::fs::copy(&tests, dir.path().join("logbook_alerts_test.yaml")).unwrap();
    let promtool = promtool();
    let checked = ok(
        &promtool,
        &[
            "check",
            "rules",
            dir.path().join("rules.yaml").to_str().unwrap(),
        ],
    );
    assert!(checked.contains("SUCCESS: 15 rules found"), "{checked}");
    let tested = ok(
        &promtool,
        &[
            "test",
            "rules",
            dir.path()
                .join("logbook_alerts_test.yaml")
                .to_str()
                .unwrap(),
        ],
    );
    assert!(tested.contains("SUCCESS"), "{tested}");

    // The unit tests can fail: a broken threshold is caught.
    let broken = serde_yaml::to_string(&rule["spec"]).unwrap().replace(
        "logbook_primary_unhealthy_seconds) > 30",
        "logbook_primary_unhealthy_seconds) > 300",
    );
    std::fs::write(dir.path().join("rules.yaml"), broken).unwrap();
    let out = run(
        &promtool,
        &[
            "test",
            "rules",
            dir.path()
                .join("logbook_alerts_test.yaml")
                .to_str()
                .unwrap(),
        ],
    );
    assert!(!out.status.success(), "a broken rule passed its unit tests");
}

/// A free TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_objects_are_accepted_by_the_api_server_and_the_operator() {
    let server = logbook_localkube::LocalKube::start(logbook_localkube::Config::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = |args: &[&str]| -> Output {
        Command::new(tool("kubectl"))
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", dir.path())
            .output()
            .unwrap()
    };
    let must = |args: &[&str]| -> String {
        let out = kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    must(&["create", "namespace", RELEASE_NS]);
    // The Prometheus Operator's kinds exist once their CRDs are applied.
    let monitoring = root().join("localkube/tests/fixtures/monitoring.coreos.com-crds.yaml");
    must(&["apply", "--server-side", "-f", monitoring.to_str().unwrap()]);
    must(&[
        "wait",
        "--for=condition=Established",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
        "--timeout=30s",
    ]);

    let chart = chart();
    // The chart's own CRDs first, as helm installs them before the
    // templates (the operator's defaults object is of one of them).
    let crds = chart.join("crds/valkeycluster.yaml");
    must(&["apply", "--server-side", "-f", crds.to_str().unwrap()]);
    must(&[
        "wait",
        "--for=condition=Established",
        "crd/valkeyoperatordefaults.valkey.logbook.dev",
        "--timeout=30s",
    ]);
    let rendered = ok(
        &tool("helm"),
        &[
            "template",
            RELEASE,
            chart.to_str().unwrap(),
            "--namespace",
            RELEASE_NS,
            "--include-crds",
            "--set",
            "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true",
        ],
    );
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, &rendered).unwrap();
    let applied = must(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        file.to_str().unwrap(),
    ]);
    let count = objects(&rendered).len();
    assert_eq!(
        applied
            .lines()
            .filter(|l| l.contains("(server dry run)"))
            .count(),
        count,
        "every rendered object is accepted: {applied}"
    );
    // A dry run stores nothing.
    let out = kubectl(&["get", "deployment", "-n", RELEASE_NS, "ops-logbook"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));

    // The one namespace rendering too, into its namespace.
    must(&["create", "namespace", "shop"]);
    let scoped = ok(
        &tool("helm"),
        &[
            "template",
            RELEASE,
            chart.to_str().unwrap(),
            "--namespace",
            RELEASE_NS,
            "--set",
            "watchNamespace=shop",
        ],
    );
    std::fs::write(&file, &scoped).unwrap();
    must(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        file.to_str().unwrap(),
    ]);

    // The real operator accepts the Deployment's arguments: it starts with
    // them (ports moved to free ones) and serves its health endpoint.
    let health = free_port();
    let metrics = free_port();
    let webhook = free_port();
    let objs = objects(&template(&[
        &format!("health.port={health}"),
        &format!("metrics.port={metrics}"),
        &format!("webhook.port={webhook}"),
    ]));
    let deploy = find(&objs, "Deployment");
    let args: Vec<String> = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    must(&["create", "namespace", "logbook-probe"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_logbook"))
        .args(&args)
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .env("POD_NAME", "ops-logbook-0")
        .env("POD_NAMESPACE", RELEASE_NS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let started = Instant::now();
    let healthy = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "logbook {} exited ({status}):\n{}",
                args.join(" "),
                lines.lock().unwrap().join("\n")
            );
        }
        // The health port is bound before anything else starts, so it can
        // answer before the first log line is written: wait for both.
        let answered = std::net::TcpStream::connect(("127.0.0.1", health)).is_ok();
        let logged = !lines.lock().unwrap().is_empty();
        if (answered && logged) || started.elapsed() > Duration::from_secs(30) {
            break answered;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    // Every line it wrote before it died (the pipe closes with it).
    let _ = reader.join();
    assert!(
        healthy,
        "logbook {} never served /healthz:\n{}",
        args.join(" "),
        lines.lock().unwrap().join("\n")
    );
    // JSON logs, as the chart asks.
    let first = lines.lock().unwrap().first().cloned();
    let first = first.expect("logbook wrote no log line in 30 s");
    assert!(
        serde_json::from_str::<serde_json::Value>(&first).is_ok(),
        "not a JSON log line: {first}"
    );
    server.shutdown().await;
}

/// The permissions table of `docs/guide/install.md` (between its
/// `rbac:begin` and `rbac:end` marks) is exactly the rules the chart
/// renders for the install the guide shows (release `logbook` in
/// `logbook-system`), rule by rule and in order: where each applies, the
/// API group, the resources, the verbs and the object names. A rule added
/// to `_rules.tpl` or `rbac.yaml` fails here until the guide says it.
#[test]
fn the_install_guides_permissions_table_is_the_charts_rules() {
    let chart = chart();
    let rendered = ok(
        &tool("helm"),
        &[
            "template",
            "logbook",
            chart.to_str().unwrap(),
            "--namespace",
            "logbook-system",
        ],
    );
    let objs = objects(&rendered);
    let cell = |rule: &Value, field: &str, quote: bool| -> String {
        rule[field]
            .as_sequence()
            .map(|items| {
                items
                    .iter()
                    .map(|i| {
                        let s = i.as_str().unwrap();
                        if quote {
                            format!("`{}`", if s.is_empty() { "\"\"" } else { s })
                        } else {
                            s.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let mut wanted: Vec<Vec<String>> = Vec::new();
    // The managed namespaces' rules first, then the release namespace's,
    // then the cluster-wide ones on named objects.
    for scope in ["managed namespaces", "release namespace", "cluster"] {
        for o in &objs {
            let kind = o["kind"].as_str().unwrap();
            let name = o["metadata"]["name"].as_str().unwrap();
            let here = match kind {
                "ClusterRole" if name == "logbook" => "managed namespaces",
                "ClusterRole" => "cluster",
                "Role" => "release namespace",
                _ => continue,
            };
            if here != scope {
                continue;
            }
            for rule in o["rules"].as_sequence().unwrap() {
                wanted.push(vec![
                    scope.to_owned(),
                    cell(rule, "apiGroups", true),
                    cell(rule, "resources", true),
                    cell(rule, "verbs", false),
                    cell(rule, "resourceNames", true),
                ]);
            }
        }
    }
    let guide = std::fs::read_to_string(root().join("docs/guide/install.md")).unwrap();
    let table = guide
        .split("<!-- rbac:begin -->")
        .nth(1)
        .and_then(|t| t.split("<!-- rbac:end -->").next())
        .expect("docs/guide/install.md has a <!-- rbac:begin --> ... <!-- rbac:end --> table");
    let documented: Vec<Vec<String>> = table
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            let inner = l.trim().strip_prefix('|').unwrap_or(l);
            let inner = inner.strip_suffix('|').unwrap_or(inner);
            inner.split('|').map(|c| c.trim().to_owned()).collect()
        })
        .collect();
    let show = |rows: &[Vec<String>]| {
        rows.iter()
            .map(|r| format!("| {} |", r.join(" | ")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        documented == wanted,
        "docs/guide/install.md's permissions table differs from the chart's rules; it should read:\n{}\n\nit reads:\n{}",
        show(&wanted),
        show(&documented)
    );
    // A namespace-scoped install grants the same managed rules in its
    // namespace, by a Role.
    let scoped = objects(&ok(
        &tool("helm"),
        &[
            "template",
            "logbook",
            chart.to_str().unwrap(),
            "--namespace",
            "logbook-system",
            "--set",
            "watchNamespace=shop",
        ],
    ));
    let role = scoped
        .iter()
        .find(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == "shop")
        .unwrap();
    let managed = objs
        .iter()
        .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == "logbook")
        .unwrap();
    assert_eq!(role["rules"], managed["rules"]);
}

/// A misspelt value, at any depth, fails `helm lint --strict` (and so
/// `helm install` and `helm upgrade`) with a message naming it: every
/// object of `values.schema.json` that lists its properties refuses
/// others.
#[test]
fn a_misspelt_value_fails_helm_lint_naming_it() {
    let chart = chart();
    let chart = chart.to_str().unwrap();
    for (set, named) in [
        ("imag.tag=1", "'imag'"),
        ("image.tagg=1", "'tagg'"),
        ("resources.limit.memory=1Gi", "'limit'"),
        ("securityContext.runAsNonroot=true", "'runAsNonroot'"),
        ("podSecurityContext.fsgroup=1", "'fsgroup'"),
        ("metrics.serviceMonitor.intervall=1m", "'intervall'"),
        ("health.readinessProbe.period=3", "'period'"),
        (
            "operatorDefaults.maxClusterRolling=2",
            "'maxClusterRolling'",
        ),
        ("extraEnv[0].name=A,extraEnv[0].valu=b", "'valu'"),
    ] {
        let out = run(&tool("helm"), &["lint", "--strict", chart, "--set", set]);
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "--set {set} passed helm lint");
        assert!(
            printed.contains(&format!("additional properties {named} not allowed")),
            "--set {set}: helm lint does not name {named}: {printed}"
        );
    }
}

/// `charts/logbook/README.md`'s values table is what
/// `scripts/chart-readme.py` makes from `values.yaml` and
/// `values.schema.json` now; the script also fails when a value has no
/// schema property or description, or a schema object lets unknown keys in.
#[test]
fn the_charts_readme_lists_every_value_as_it_is() {
    let out = Command::new("python3")
        .arg(root().join("scripts/chart-readme.py"))
        .arg("--check")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
