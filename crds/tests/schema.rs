//! The generated CRD says what the API promises: the CEL rules, enums,
//! bounds and defaults are in the schema, and the schema is structural (a
//! real API server refuses a CRD whose schema is not).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::Value;

/// The root schema of the CRD named `name`, at v1alpha1.
fn root_schema_of(name: &str) -> Value {
    root_schema_at(name, "v1alpha1")
}

/// The root schema of the CRD named `name` at `version`.
fn root_schema_at(name: &str, version: &str) -> Value {
    let crds = logbook_crds::crds();
    let names: Vec<String> = crds
        .iter()
        .map(|c| c.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "valkeyclusters.valkey.logbook.dev",
            "valkeyusers.valkey.logbook.dev",
            "valkeybackups.valkey.logbook.dev",
            "valkeyoperatordefaults.valkey.logbook.dev"
        ]
    );
    let crd = crds
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .map(|c| serde_json::to_value(c).unwrap())
        .unwrap();
    let versions = crd["spec"]["versions"].as_array().unwrap();
    // The ValkeyCluster is served at v1alpha1 and v1beta1, v1beta1
    // stored; every other kind at v1alpha1 alone.
    let expected: &[(&str, bool)] = if name == "valkeyclusters.valkey.logbook.dev" {
        &[("v1alpha1", false), ("v1beta1", true)]
    } else {
        &[("v1alpha1", true)]
    };
    let served: Vec<(&str, bool)> = versions
        .iter()
        .map(|v| {
            assert_eq!(v["served"], true, "{name} {}", v["name"]);
            (v["name"].as_str().unwrap(), v["storage"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(served, expected, "{name}");
    versions
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("{name} has no version {version}"))["schema"]["openAPIV3Schema"]
        .clone()
}

fn root_schema() -> Value {
    root_schema_of("valkeyclusters.valkey.logbook.dev")
}

fn spec_schema() -> Value {
    root_schema()["properties"]["spec"].clone()
}

/// The schema node at a dotted path of property names below `spec`.
fn at(path: &str) -> Value {
    let mut node = spec_schema();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        node = node["properties"][part].clone();
        assert!(!node.is_null(), "no property {part} in {path}");
    }
    node
}

fn rules(node: &Value) -> Vec<(String, String)> {
    node["x-kubernetes-validations"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| {
                    (
                        r["rule"].as_str().unwrap().to_owned(),
                        r["message"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
fn has_rule(path: &str, rule: &str) {
    let found = rules(&at(path));
    assert!(
        found.iter().any(|(r, m)| r == rule && !m.is_empty()),
        "spec.{path} lacks rule {rule:?} with a message; has {found:?}"
    );
}

#[track_caller]
fn has_range(path: &str, min: f64, max: Option<f64>) {
    let node = at(path);
    assert_eq!(node["minimum"].as_f64(), Some(min), "minimum of {path}");
    assert_eq!(node["maximum"].as_f64(), max, "maximum of {path}");
}

#[track_caller]
fn has_enum(path: &str, values: &[&str]) {
    let node = at(path);
    let found: Vec<&str> = node["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(found, values, "enum of {path}");
    assert_eq!(node["type"], "string");
}

#[test]
fn cel_rules_are_in_the_schema() {
    has_rule("topology", "self == oldSelf");
    has_rule("sentinel.replicas", "self % 2 == 1");
    has_rule(
        "sentinel",
        "!has(self.quorum) || self.quorum <= (has(self.replicas) ? self.replicas : 3)",
    );
    has_rule(
        "storage.size",
        "quantity(self).isGreaterThan(quantity('0'))",
    );
    let storage_rules = rules(&at("storage"));
    assert!(
        storage_rules
            .iter()
            .any(|(r, _)| r.contains("oldSelf.storageClassName")),
        "{storage_rules:?}"
    );
    let tls = rules(&at("tls"));
    assert!(
        tls.iter()
            .any(|(r, _)| r == "!(has(self.issuerRef) && has(self.secretName))")
    );
    assert!(
        !tls.iter()
            .any(|(r, _)| r.contains("has(self.issuerRef) || has(self.secretName)")),
        "tls without a source is the internal CA, not an error"
    );
    has_rule(
        "metrics",
        "!(has(self.serviceMonitor) && self.serviceMonitor) || (has(self.enabled) && self.enabled)",
    );
    let spec = rules(&spec_schema());
    for fragment in [
        "!has(self.shards) && !has(self.replicasPerShard)",
        "self.topology != 'Cluster' || !has(self.replicas)",
        "self.topology != 'Standalone' || !has(self.replicas) || self.replicas == 1",
        "self.topology == 'Sentinel' || !has(self.sentinel)",
    ] {
        assert!(
            spec.iter().any(|(r, _)| r.contains(fragment)),
            "spec lacks {fragment:?}: {spec:?}"
        );
    }
}

#[test]
fn bounds_are_in_the_schema() {
    has_range("replicas", 1.0, Some(100.0));
    has_range("shards", 1.0, Some(500.0));
    has_range("replicasPerShard", 0.0, Some(5.0));
    has_range("clusterNodeTimeoutMilliseconds", 1000.0, Some(600_000.0));
    has_range("sentinel.replicas", 3.0, Some(9.0));
    has_range("sentinel.quorum", 1.0, Some(9.0));
    has_range("sentinel.downAfterMilliseconds", 1000.0, Some(600_000.0));
    has_range(
        "sentinel.failoverTimeoutMilliseconds",
        1000.0,
        Some(3_600_000.0),
    );
    has_range("sentinel.parallelSyncs", 1.0, Some(16.0));
    has_range("failover.probeIntervalMilliseconds", 100.0, Some(60_000.0));
    has_range("failover.failureThreshold", 1.0, Some(100.0));
    has_range("podDisruptionBudget.maxUnavailable", 1.0, None);
    has_range("journal.maxEvents", 1000.0, Some(10_000_000.0));
    for path in [
        "connectionSecret",
        "priorityClassName",
        "tls.secretName",
        "auth.passwordSecret.name",
    ] {
        let node = at(path);
        assert_eq!(
            node["pattern"],
            logbook_crds::v1alpha1::DNS_SUBDOMAIN_PATTERN,
            "{path}"
        );
        assert_eq!(node["maxLength"], 253, "{path}");
    }
    assert_eq!(
        at("storage.size")["pattern"],
        logbook_crds::v1alpha1::QUANTITY_PATTERN
    );
    assert_eq!(at("storage.size")["type"], "string");
}

#[test]
fn enums_are_in_the_schema() {
    has_enum(
        "topology",
        &["Standalone", "Replication", "Sentinel", "Cluster"],
    );
    has_enum("imagePullPolicy", &["Always", "IfNotPresent", "Never"]);
    has_enum("storage.persistence", &["None", "Rdb", "Aof", "RdbAndAof"]);
    let phase = &root_schema()["properties"]["status"]["properties"]["phase"];
    assert_eq!(phase["enum"].as_array().unwrap().len(), 11);
}

#[test]
fn only_topology_has_a_default_in_the_schema() {
    // A default the API server writes into the object would win over
    // every defaults layer (ValkeyOperatorDefaults, a plan): the built-in
    // values are the operator's, beneath them (crds/src/crdgen.rs).
    assert_eq!(at("topology")["default"], "Replication");
    for field in [
        "image",
        "storage.size",
        "storage.persistence",
        "auth.enabled",
        "failover.probeIntervalMilliseconds",
        "sentinel.replicas",
        "journal.maxEvents",
        "podDisruptionBudget",
        "paused",
    ] {
        assert_eq!(at(field).get("default"), None, "{field}");
    }
    // The built-in values themselves, as the operator fills them in.
    let spec: logbook_crds::ValkeyClusterSpec =
        serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(spec.image, "valkey/valkey:9.1");
    assert_eq!(spec.storage.size.0, "1Gi");
    assert_eq!(spec.storage.persistence, logbook_crds::Persistence::Rdb);
    assert!(spec.auth.enabled);
    assert_eq!(spec.failover.probe_interval_milliseconds, 500);
    assert_eq!(spec.journal.max_events, 100_000);
    assert!(!spec.paused);
}

/// Walk every node and check the structural-schema rules Kubernetes applies.
fn check_structural(node: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(obj) = node.as_object() else { return };
    for forbidden in [
        "$ref",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "definitions",
        "$defs",
    ] {
        if obj.contains_key(forbidden) {
            problems.push(format!("{path}: has {forbidden}"));
        }
    }
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let preserve = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if !obj.contains_key("type") && !int_or_string && !preserve {
        problems.push(format!("{path}: no type"));
    }
    if obj.contains_key("properties") && obj.get("type") != Some(&Value::from("object")) {
        problems.push(format!("{path}: properties without type object"));
    }
    if obj.contains_key("properties") && obj.contains_key("additionalProperties") {
        problems.push(format!("{path}: both properties and additionalProperties"));
    }
    if obj.get("type") == Some(&Value::from("array")) && !obj.contains_key("items") {
        problems.push(format!("{path}: array without items"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            check_structural(child, &format!("{path}.{name}"), problems);
        }
    }
    if let Some(items) = obj.get("items") {
        check_structural(items, &format!("{path}[]"), problems);
    }
    if let Some(additional) = obj.get("additionalProperties").filter(|a| a.is_object()) {
        check_structural(additional, &format!("{path}{{}}"), problems);
    }
}

#[test]
fn schema_is_structural() {
    let mut problems = Vec::new();
    check_structural(&root_schema(), "", &mut problems);
    check_structural(
        &root_schema_at("valkeyclusters.valkey.logbook.dev", "v1beta1"),
        "v1beta1:",
        &mut problems,
    );
    check_structural(
        &root_schema_of("valkeyusers.valkey.logbook.dev"),
        "valkeyusers:",
        &mut problems,
    );
    assert!(
        problems.is_empty(),
        "not structural:\n{}",
        problems.join("\n")
    );
}

#[test]
fn crd_names_columns_and_subresources() {
    let crd = serde_json::to_value(&logbook_crds::crds()[0]).unwrap();
    let spec = &crd["spec"];
    assert_eq!(spec["group"], "valkey.logbook.dev");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["shortNames"], serde_json::json!(["vkc"]));
    assert_eq!(spec["names"]["categories"], serde_json::json!(["valkey"]));
    let version = &spec["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<(String, String, String)> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["jsonPath"].as_str().unwrap().to_owned(),
                c["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("Topology", ".spec.topology", "string"),
        ("Phase", ".status.phase", "string"),
        ("Ready", ".status.readyReplicas", "integer"),
        ("Primary", ".status.primary", "string"),
        ("Age", ".metadata.creationTimestamp", "date"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into()))
        .collect();
    assert_eq!(columns, expected);
}

#[test]
fn the_user_crd_states_its_rules() {
    let root = root_schema_of("valkeyusers.valkey.logbook.dev");
    let spec = &root["properties"]["spec"];
    let required: Vec<&str> = spec["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        required.contains(&"cluster") && required.contains(&"passwordSecret"),
        "{required:?}"
    );
    let username = &spec["properties"]["username"];
    assert_eq!(username["maxLength"], 64);
    assert!(username["pattern"].as_str().is_some());
    let window = &spec["properties"]["rotationWindowSeconds"];
    assert_eq!(window["maximum"].as_f64(), Some(86400.0));
    assert_eq!(window["default"], 300);
    let immutable: Vec<String> = spec["properties"]["cluster"]["x-kubernetes-validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(immutable, ["self == oldSelf"]);
}
