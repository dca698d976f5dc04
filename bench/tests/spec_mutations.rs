//! The schema-driven spec mutations against the real CRDs
//! (`crds/valkeycluster.yaml`): the schemas are read with their real
//! fields; every field gets a mutation; hundreds of distinct, reproducible
//! chains come out per topology; `apply` does what it says; and every
//! expectation is honest: a `RefuseBySchema` mutation really violates the
//! schema (checked here by a validator of this file's own, or by one of
//! the CRD's own rules) and an `Accept` one really does not.
//!
//! Pure: no cluster, no network; only the CRD file and temporary files.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use logbook_bench::spec_mutations::{
    ApplyError, Chain, CrdSchema, Expectation, FieldType, Mutation, MutationKind, Op, SchemaError,
    Segment, Verdict, apply, chain, chains, checked_elsewhere_prefixes, example_spec, load_crds,
    load_crds_at, mutations_for, not_generated, parse_crds, validate, violates,
};
use serde_json::{Value, json};

const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/valkeycluster.yaml");

/// The CRDs at v1alpha1, as the trials write them (the ValkeyCluster's
/// stored v1beta1 is converted to and from by its webhook).
fn crds() -> Vec<CrdSchema> {
    load_crds_at(Path::new(CRDS), Some("v1alpha1")).unwrap()
}

fn kind<'a>(all: &'a [CrdSchema], kind: &str) -> &'a CrdSchema {
    all.iter().find(|c| c.kind == kind).unwrap()
}

/// The topology enum, from the schema.
fn topologies(vkc: &CrdSchema) -> Vec<String> {
    let field = vkc.field("/topology").unwrap();
    field
        .enum_values
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// A realistic, valid ValkeyCluster spec of a topology.
fn cluster_base(topology: &str) -> Value {
    let mut spec = json!({
        "topology": topology,
        "image": "valkey/valkey:9.1",
        "storage": {"size": "1Gi", "persistence": "Rdb"},
        "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}, "requests": {"memory": "128Mi", "cpu": "100m"}},
        "config": {"maxmemory-policy": "noeviction"},
        "labels": {"team": "cache"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "valkey", "effect": "NoSchedule"}],
        "failover": {"automatic": true, "failureThreshold": 3},
    });
    let extra = match topology {
        "Standalone" => json!({}),
        "Replication" => json!({"replicas": 3}),
        "Sentinel" => json!({"replicas": 3, "sentinel": {"replicas": 3, "quorum": 2}}),
        "Cluster" => {
            json!({"shards": 3, "replicasPerShard": 1, "clusterNodeTimeoutMilliseconds": 5000})
        }
        other => panic!("a topology this test does not know: {other}"),
    };
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    spec
}

/// Valid specs of every kind: one per topology for ValkeyCluster.
fn bases(schema: &CrdSchema) -> Vec<Value> {
    match schema.kind.as_str() {
        "ValkeyCluster" => topologies(schema).iter().map(|t| cluster_base(t)).collect(),
        "ValkeyUser" => vec![json!({
            "cluster": "demo",
            "passwordSecret": {"name": "demo-user", "key": "password"},
            "keys": ["app:*"],
            "commands": ["+@read", "+@write"],
            "rotationWindowSeconds": 300,
        })],
        "ValkeyBackup" => vec![json!({"cluster": "demo"})],
        "ValkeyOperatorDefaults" => vec![json!({
            "template": {"image": "valkey/valkey:9.1", "storage": {"size": "1Gi"}},
            "plans": {"small": {"replicas": 1}},
            "maxClustersRolling": 1,
        })],
        other => panic!("unexpected kind {other}"),
    }
}

/// Whether a mutation's path is an instance of a field's pointer pattern.
fn instance_of(path: &str, pattern: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (path.split('/').collect(), pattern.split('/').collect());
    p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| *b == "*" || a == b)
}

#[test]
fn loads_the_three_crds_with_their_real_fields() {
    let all = crds();
    let kinds: Vec<&str> = all.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ValkeyCluster",
            "ValkeyUser",
            "ValkeyBackup",
            "ValkeyOperatorDefaults"
        ]
    );
    for c in &all {
        assert_eq!(c.group, "valkey.logbook.dev");
        assert_eq!(c.version, "v1alpha1");
    }
    let vkc = kind(&all, "ValkeyCluster");
    let topology = vkc.field("/topology").unwrap();
    assert_eq!(topology.ty, FieldType::String);
    assert_eq!(
        topologies(vkc),
        ["Standalone", "Replication", "Sentinel", "Cluster"]
    );
    assert_eq!(topology.default, Some(json!("Replication")));
    assert!(topology.rules.iter().any(|r| r.rule == "self == oldSelf"));
    let replicas = vkc.field("/replicas").unwrap();
    assert_eq!(replicas.ty, FieldType::Integer);
    assert_eq!(
        (replicas.minimum, replicas.maximum),
        (Some(1.0), Some(100.0))
    );
    assert!(replicas.nullable && !replicas.required);
    assert_eq!(replicas.format.as_deref(), Some("int32"));
    let shards = vkc.field("/shards").unwrap();
    assert_eq!((shards.minimum, shards.maximum), (Some(1.0), Some(500.0)));
    let persistence = vkc.field("/storage/persistence").unwrap();
    assert_eq!(
        persistence.enum_values,
        [
            json!("None"),
            json!("Rdb"),
            json!("Aof"),
            json!("RdbAndAof")
        ]
    );
    let size = vkc.field("/storage/size").unwrap();
    assert!(size.pattern.is_some() && size.rules.len() == 1);
    let limits = vkc.field("/resources/limits/*").unwrap();
    assert_eq!(limits.ty, FieldType::IntOrString);
    assert_eq!(
        limits.path,
        [
            Segment::Key("resources".into()),
            Segment::Key("limits".into()),
            Segment::Values
        ]
    );
    assert_eq!(
        vkc.field("/config").unwrap().ty,
        FieldType::Map(Box::new(FieldType::String))
    );
    assert_eq!(
        vkc.field("/tolerations").unwrap().ty,
        FieldType::Array(Box::new(FieldType::Object))
    );
    assert_eq!(
        vkc.field("/tolerations/*/tolerationSeconds")
            .unwrap()
            .format
            .as_deref(),
        Some("int64")
    );
    let deep = "/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/*/matchExpressions/*/values/*";
    let deep = vkc.field(deep).unwrap();
    assert_eq!(deep.ty, FieldType::String);
    assert_eq!(
        deep.name(),
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[].matchExpressions[].values[]"
    );
    let key = vkc.field("/auth/passwordSecret/key").unwrap();
    assert!(key.required && key.min_length == Some(1) && key.max_length == Some(253));
    assert_eq!(
        vkc.field("/sentinel/replicas").unwrap().rules[0].message,
        "sentinel.replicas must be odd"
    );
    // The schema's one default: the built-in values are the operator's.
    assert_eq!(
        vkc.field("/topology").unwrap().default,
        Some(json!("Replication"))
    );
    assert_eq!(
        vkc.field("/failover/failureThreshold").unwrap().default,
        None
    );
    let vku = kind(&all, "ValkeyUser");
    assert!(
        vku.field("/cluster").unwrap().required && vku.field("/passwordSecret").unwrap().required
    );
    assert_eq!(vku.field("/keys").unwrap().max_items, Some(128));
    let vkb = kind(&all, "ValkeyBackup");
    assert!(vkb.spec_schema["x-kubernetes-validations"][0]["rule"] == "self == oldSelf");
    for c in &all {
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        for f in &c.fields {
            let t = format!("{:?}", f.ty);
            *by_type
                .entry(t.split('(').next().unwrap().to_owned())
                .or_default() += 1;
        }
        println!("{}: {} fields {by_type:?}", c.kind, c.fields.len());
    }
}

#[test]
fn every_field_gets_a_mutation() {
    for schema in &crds() {
        // The realistic bases leave most fields absent (and the fields of
        // absent list items unreachable); the example spec has them all.
        let on_bases: Vec<Mutation> = bases(schema)
            .iter()
            .flat_map(|s| mutations_for(schema, s))
            .collect();
        let on_example = mutations_for(schema, &example_spec(schema));
        let paths: BTreeSet<&str> = on_bases
            .iter()
            .chain(&on_example)
            .map(|m| m.path.as_str())
            .collect();
        let opaque = schema
            .fields
            .iter()
            .filter(|f| f.ty == FieldType::Opaque)
            .count();
        let uncovered: Vec<String> = schema
            .fields
            .iter()
            .filter(|f| f.ty != FieldType::Opaque)
            // Fields no chain changes, each with its reason.
            .filter(|f| {
                !not_generated(&schema.kind)
                    .iter()
                    .any(|p| f.pointer().starts_with(p))
            })
            .filter(|f| !paths.iter().any(|p| instance_of(p, &f.pointer())))
            .map(|f| f.name())
            .collect();
        let mut per_kind: BTreeMap<MutationKind, usize> = BTreeMap::new();
        let mut per_expect: BTreeMap<String, usize> = BTreeMap::new();
        for m in &on_bases {
            *per_kind.entry(m.kind).or_default() += 1;
            *per_expect.entry(format!("{:?}", m.expect)).or_default() += 1;
        }
        println!(
            "{}: {} fields ({opaque} opaque), {} without a mutation; {} mutations on {} base specs {per_expect:?}, {} on the example spec",
            schema.kind,
            schema.fields.len(),
            uncovered.len(),
            on_bases.len(),
            bases(schema).len(),
            on_example.len(),
        );
        println!("  per kind on the base specs: {per_kind:?}");
        assert!(
            uncovered.is_empty(),
            "{}: fields without a mutation: {uncovered:?}",
            schema.kind
        );
    }
}

#[test]
fn semantic_mutations_cover_what_a_tester_would_try() {
    let all = crds();
    let vkc = kind(&all, "ValkeyCluster");
    let mut seen: BTreeMap<MutationKind, BTreeSet<String>> = BTreeMap::new();
    for base in bases(vkc) {
        for m in mutations_for(vkc, &base)
            .into_iter()
            .filter(|m| m.kind.is_semantic())
        {
            seen.entry(m.kind)
                .or_default()
                .insert(format!("{:?}", m.expect));
        }
    }
    println!("semantic kinds and their expectations over the four topologies: {seen:?}");
    use MutationKind as K;
    for k in [
        K::ResourcesTooSmall,
        K::MemoryRequestAboveLimit,
        K::UnsatisfiableNodeSelector,
        K::UnsatisfiableAffinity,
        K::StorageGrow,
        K::StorageShrink,
        K::PersistenceChange,
        K::TlsOn,
        K::TlsTwoSources,
        K::ImageOlder,
        K::ImageNewer,
        K::ImageMissingTag,
        K::ConfigValid,
        K::ConfigInvalidValue,
        K::ConfigUnknownDirective,
        K::ConfigOwnedDirective,
        K::ReplicasChange,
        K::ShardsChange,
        K::TopologySwitch,
        K::SentinelQuorumTooHigh,
        K::SentinelEvenCount,
        K::ServiceMonitorWithoutMetrics,
        K::RestoreFromAdded,
    ] {
        assert!(seen.contains_key(&k), "{k} never generated");
    }
    // TlsOff once TLS is on.
    let tls_on = json!({"topology": "Replication", "tls": {"enabled": true}});
    assert!(
        mutations_for(vkc, &tls_on)
            .iter()
            .any(|m| m.kind == K::TlsOff && m.expect == Expectation::Accept)
    );
    // Each prefix checked elsewhere names a real field.
    for c in &all {
        for prefix in checked_elsewhere_prefixes(&c.kind) {
            assert!(
                c.field(prefix).is_some(),
                "{}: {prefix} is not a field",
                c.kind
            );
        }
    }
}

/// What this file's own validator needs: the structural rules (types,
/// enums, bounds, lengths, item counts, required fields), written apart
/// from the module's (no defaults, no patterns, no CEL).
fn structural(node: &Value, v: &Value, at: &str) -> Option<String> {
    let ty = node.get("type").and_then(Value::as_str);
    let bad = |why: &str| Some(format!("{at}: {why}"));
    if v.is_null() {
        return None;
    }
    if let Some(e) = node.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return bad("not in enum");
    }
    if node.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
        return if v.is_i64() || v.is_string() {
            None
        } else {
            bad("not int-or-string")
        };
    }
    let len = |k: &str| node.get(k).and_then(Value::as_u64);
    match (ty, v) {
        (Some("string"), Value::String(s)) => {
            let n = s.chars().count() as u64;
            if len("minLength").is_some_and(|m| n < m) || len("maxLength").is_some_and(|m| n > m) {
                return bad("length");
            }
        }
        (Some("integer"), Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let x = n.as_f64().unwrap();
            let lim = |k: &str| node.get(k).and_then(Value::as_f64);
            if lim("minimum").is_some_and(|m| x < m) || lim("maximum").is_some_and(|m| x > m) {
                return bad("out of bounds");
            }
        }
        (Some("boolean"), Value::Bool(_)) => {}
        (Some("array"), Value::Array(items)) => {
            if len("maxItems").is_some_and(|m| items.len() as u64 > m) {
                return bad("too many items");
            }
            return items
                .iter()
                .enumerate()
                .find_map(|(i, item)| structural(&node["items"], item, &format!("{at}[{i}]")));
        }
        (Some("object"), Value::Object(map)) => {
            for r in node
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if !map.contains_key(r.as_str().unwrap()) {
                    return bad("required field missing");
                }
            }
            return map.iter().find_map(|(k, child)| {
                let props = &node["properties"];
                let schema = props
                    .get(k)
                    .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
                structural(schema, child, &format!("{at}.{k}"))
            });
        }
        (None, _) => {}
        _ => return bad("wrong type"),
    }
    None
}

/// Every rule message in the CRD, read straight from the YAML.
fn rule_messages() -> Vec<String> {
    let text = std::fs::read_to_string(CRDS).unwrap();
    text.lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("- message: ")
                .or_else(|| l.trim().strip_prefix("message: "))
        })
        .map(|m| m.trim_matches(|c| c == '\'' || c == '"').replace("''", "'"))
        .collect()
}

#[test]
fn expectations_are_honest() {
    let messages = rule_messages();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for schema in &crds() {
        for base in bases(schema) {
            assert_eq!(
                structural(&schema.spec_schema, &base, "spec"),
                None,
                "{base}"
            );
            assert_eq!(validate(schema, None, &base), Verdict::Valid, "{base}");
            for m in mutations_for(schema, &base) {
                let after = apply(&base, &m).unwrap();
                let verdict = validate(schema, Some(&base), &after);
                let own = structural(&schema.spec_schema, &after, "spec");
                let key = format!("{} {:?}", schema.kind, m.expect);
                match m.expect {
                    Expectation::RefuseBySchema => {
                        assert!(matches!(verdict, Verdict::Invalid(_)), "{m}");
                        let by_rule = messages.iter().any(|msg| m.reason.ends_with(msg.as_str()));
                        assert!(
                            own.is_some() || by_rule || m.reason.contains("does not match"),
                            "{m}: neither a structural violation nor a rule of the CRD"
                        );
                        let why = if own.is_some() {
                            "structural"
                        } else if by_rule {
                            "rule"
                        } else {
                            "pattern"
                        };
                        *counts.entry(format!("{key} ({why})")).or_default() += 1;
                    }
                    Expectation::Accept => {
                        assert_eq!(own, None, "{m}");
                        assert_eq!(verdict, Verdict::Valid, "{m}");
                        *counts.entry(key).or_default() += 1;
                    }
                    Expectation::Unknown => {
                        assert!(!matches!(verdict, Verdict::Invalid(_)), "{m}");
                        assert_eq!(own, None, "{m}: the test's validator refuses it");
                        *counts.entry(key).or_default() += 1;
                    }
                }
            }
        }
    }
    println!("expectations over the base specs: {counts:#?}");
}

fn find<'a>(ms: &'a [Mutation], path: &str, op: &Op) -> &'a Mutation {
    ms.iter()
        .find(|m| m.path == path && m.op == *op)
        .unwrap_or_else(|| panic!("no {path} {op:?}"))
}

/// What the CRD's rules (and the checks beyond them) make of mutations a
/// generic generator would call valid or invalid: (base topology, path,
/// value as JSON or `DELETE`, expectation, a piece of the reason).
#[rustfmt::skip]
const CLUSTER_CASES: &[(&str, &str, &str, Expectation, &str)] = {
    use Expectation::{Accept, RefuseBySchema as Refuse, Unknown};
    &[
        ("Cluster", "/topology", r#""Replication""#, Refuse, "topology is immutable"),
        ("Cluster", "/replicas", "1", Refuse, "replicas does not apply to topology Cluster"),
        ("Cluster", "/shards", "4", Accept, "valid by the schema"),
        ("Cluster", "/shards", "501", Refuse, "above the maximum 500"),
        ("Cluster", "/storage/size", r#""512Mi""#, Accept, "valid by the schema"),
        ("Cluster", "/storage/size", r#""2048Mi""#, Unknown, "refuses a new size"),
        ("Cluster", "/storage/size", r#""0""#, Refuse, "must be greater than zero"),
        ("Cluster", "/tls/enabled", "true", Accept, ""),
        ("Cluster", "/tls", r#"{"enabled": true, "issuerRef": {"name": "ca-issuer"}, "secretName": "valkey-tls"}"#, Refuse, "not both"),
        ("Cluster", "/metrics", r#"{"enabled": false, "serviceMonitor": true}"#, Refuse, "requires metrics.enabled"),
        ("Cluster", "/restoreFrom", r#"{"backup": "nightly"}"#, Refuse, "cannot be added or removed later"),
        ("Cluster", "/config/port", r#""6380""#, Unknown, "the operator owns `port`"),
        ("Cluster", "/config/maxmemory-policy", r#""allkeys-lru""#, Accept, ""),
        ("Cluster", "/failover/failureThreshold", "101", Refuse, "above the maximum 100"),
        ("Cluster", "/imagePullPolicy", r#""Always""#, Accept, ""),
        ("Cluster", "/topology", "DELETE", Refuse, "topology is immutable"),
        ("Standalone", "/replicas", "1", Accept, ""),
        ("Standalone", "/replicas", "5", Refuse, "replicas must be 1"),
        ("Standalone", "/sentinel", "{}", Refuse, "sentinel applies only to topology Sentinel"),
        ("Sentinel", "/sentinel/quorum", "4", Refuse, "must not exceed sentinel.replicas"),
        ("Sentinel", "/sentinel/replicas", "4", Refuse, "sentinel.replicas must be odd"),
        ("Sentinel", "/sentinel/replicas", "9", Accept, ""),
        ("Replication", "/replicas", "5", Accept, ""),
        ("Replication", "/shards", "4", Refuse, "apply only to topology Cluster"),
        ("Replication", "/image", r#""valkey/valkey:0.0.0-logbook-no-such-tag""#, Unknown, "no such tag"),
        ("Replication", "/storage/storageClassName", r#""valkey-test""#, Refuse, "storageClassName is immutable"),
    ]
};

#[test]
fn the_crd_rules_decide_what_a_generic_generator_would_get_wrong() {
    let all = crds();
    let vkc = kind(&all, "ValkeyCluster");
    for (topology, path, value, expect, why) in CLUSTER_CASES {
        let op = match *value {
            "DELETE" => Op::Delete,
            v => Op::Set(serde_json::from_str(v).unwrap()),
        };
        let m = find(&mutations_for(vkc, &cluster_base(topology)), path, &op).clone();
        assert_eq!(m.expect, *expect, "{topology}: {m}");
        assert!(m.reason.contains(why), "{topology}: {m}");
    }
    // Deleting a size above the default sets it back to the default: the
    // schema lets a size change be undone (the operator refuses a change
    // on a running cluster itself).
    let grown = json!({"topology": "Replication", "storage": {"size": "2Gi"}});
    let ms = mutations_for(vkc, &grown);
    assert_eq!(
        find(&ms, "/storage/size", &Op::Delete).expect,
        Expectation::Accept
    );
    // A ValkeyBackup's spec is immutable: every change is refused.
    let vkb = kind(&all, "ValkeyBackup");
    let backup = mutations_for(vkb, &json!({"cluster": "demo"}));
    assert!(
        !backup.is_empty()
            && backup
                .iter()
                .all(|m| m.expect == Expectation::RefuseBySchema)
    );
    let vku = kind(&all, "ValkeyUser");
    let ms = mutations_for(vku, &bases(vku)[0]);
    let set = |v: Value| Op::Set(v);
    assert!(
        find(&ms, "/cluster", &set(json!("valkey-test")))
            .reason
            .contains("cluster is immutable")
    );
    assert_eq!(
        find(&ms, "/rotationWindowSeconds", &set(json!(86401))).expect,
        Expectation::RefuseBySchema
    );
    let empty = find(&ms, "/passwordSecret/name", &set(json!("")));
    assert!(empty.reason.contains("fewer than minLength 1"), "{empty}");
    // A value the name pattern accepts (by the module's own matcher).
    let renamed = find(&ms, "/passwordSecret/name", &set(json!("valkey-test")));
    assert_eq!(
        (renamed.kind, renamed.expect),
        (MutationKind::StringChange, Expectation::Unknown)
    );
    assert_eq!(renamed.reason, "the password Secret must exist");
    let missing = violates(vku, &json!({"cluster": "demo"}));
    assert_eq!(
        missing.as_deref(),
        Some(r#"spec: required field "passwordSecret" is missing"#)
    );
}

fn chain_key(c: &Chain) -> String {
    c.steps
        .iter()
        .map(|(m, _)| format!("{} {:?};", m.path, m.op))
        .collect()
}

#[test]
fn four_hundred_distinct_reproducible_chains_per_topology() {
    let all = crds();
    let vkc = kind(&all, "ValkeyCluster");
    for topology in topologies(vkc) {
        let base = cluster_base(&topology);
        let made = chains(vkc, &base, 2024, 400, 10);
        let keys: BTreeSet<String> = made.iter().map(chain_key).collect();
        assert_eq!((made.len(), keys.len()), (400, 400), "{topology}");
        let lengths: BTreeSet<usize> = made.iter().map(Chain::len).collect();
        assert!(lengths.iter().all(|n| (1..=10).contains(n)), "{lengths:?}");
        assert!(lengths.contains(&1) && lengths.contains(&10), "{lengths:?}");
        let mut expect: BTreeMap<String, usize> = BTreeMap::new();
        let mut semantic = 0;
        for c in &made {
            assert_eq!((c.base.clone(), c.reverts.len()), (base.clone(), c.len()));
            assert_eq!(c.reverts[0], base);
            for (i, (m, attempted)) in c.steps.iter().enumerate() {
                assert_eq!(&apply(&c.reverts[i], m).unwrap(), attempted, "{c}");
                if let Some(next) = c.reverts.get(i + 1) {
                    assert_eq!(c.expected_after(i), Some(next), "{c}");
                }
                if m.expect == Expectation::RefuseBySchema {
                    assert_eq!(c.expected_after(i), Some(&c.reverts[i]));
                }
                // Every accepted step starts from a spec the schema accepts.
                assert!(violates(vkc, &c.reverts[i]).is_none(), "{c}");
                // And asks for no more data pods than the machine runs.
                if m.expect != Expectation::RefuseBySchema {
                    assert!(
                        logbook_bench::spec_mutations::chain::data_pods(attempted)
                            <= logbook_bench::spec_mutations::chain::MAX_DATA_PODS,
                        "{c}"
                    );
                }
                *expect.entry(format!("{:?}", m.expect)).or_default() += 1;
                semantic += usize::from(m.kind.is_semantic());
            }
        }
        let steps: usize = made.iter().map(Chain::len).sum();
        println!(
            "{topology}: {} chains, {steps} steps ({semantic} semantic): {expect:?}",
            made.len()
        );
        // Deterministic (a shorter run gives the same first chains), and
        // another seed gives others.
        assert_eq!(
            made[..50],
            chains(vkc, &base, 2024, 50, 10),
            "not deterministic"
        );
        let other: BTreeSet<String> = chains(vkc, &base, 2025, 50, 10)
            .iter()
            .map(chain_key)
            .collect();
        assert!(
            other.intersection(&keys).count() < 25,
            "another seed gave the same chains"
        );
    }
}

#[test]
fn a_chain_prints_what_reproduces_it() {
    let all = crds();
    let vkc = kind(&all, "ValkeyCluster");
    let base = cluster_base("Sentinel");
    let made = chains(vkc, &base, 77, 20, 4);
    let c = made.iter().find(|c| c.len() >= 2).unwrap();
    let text = c.to_string();
    println!("{text}");
    assert!(text.starts_with(&format!(
        "ValkeyCluster chain seed=77 index={} max_len=4: {} steps",
        c.index,
        c.len()
    )));
    assert!(text.contains(&base.to_string()));
    for (i, (m, _)) in c.steps.iter().enumerate() {
        assert!(text.contains(&format!("  {}. {m}", i + 1)));
        assert!(text.contains(&m.path));
    }
    assert_eq!(&chain(vkc, &base, 77, c.index, 4), c);
    assert_eq!(chain(vkc, &base, 77, c.index, 40).max_len, 10);
    assert!(chains(vkc, &base, 77, 5, 0).iter().all(|c| c.len() == 1));
    assert_eq!(c.final_spec(), c.expected_after(c.len() - 1).unwrap());
}

fn set(path: &str, v: Value) -> Mutation {
    Mutation {
        crd_kind: "ValkeyCluster".into(),
        path: path.into(),
        op: Op::Set(v),
        kind: MutationKind::FieldAdd,
        expect: Expectation::Accept,
        reason: String::new(),
    }
}

fn delete(path: &str) -> Mutation {
    Mutation {
        op: Op::Delete,
        kind: MutationKind::FieldDelete,
        ..set(path, Value::Null)
    }
}

#[test]
fn apply_sets_deletes_creates_and_names_its_errors() {
    let spec = json!({"image": "valkey/valkey:9.1", "tolerations": [{"key": "a"}], "config": {}});
    // Round trip: set an absent field, read it back, delete it again.
    let grown = apply(&spec, &set("/sentinel/quorum", json!(2))).unwrap();
    assert_eq!(
        grown["sentinel"],
        json!({"quorum": 2}),
        "intermediates created"
    );
    assert_eq!(apply(&grown, &delete("/sentinel")).unwrap(), spec);
    assert_eq!(apply(&spec, &delete("/image")).unwrap().get("image"), None);
    assert_eq!(
        apply(&spec, &delete("/no/such/field")).unwrap(),
        spec,
        "absent: a no-op"
    );
    assert_eq!(
        apply(&spec, &delete("/tolerations/5")).unwrap(),
        spec,
        "absent: a no-op"
    );
    let escaped = apply(&spec, &set("/config/a~1b~0c", json!("x"))).unwrap();
    assert_eq!(escaped["config"]["a/b~c"], "x");
    let appended = apply(&spec, &set("/tolerations/1", json!({"key": "b"}))).unwrap();
    assert_eq!(appended["tolerations"][1]["key"], "b");
    let appended = apply(&spec, &set("/tolerations/-", json!({"key": "c"}))).unwrap();
    assert_eq!(appended["tolerations"][1]["key"], "c");
    let changed = apply(&spec, &set("/tolerations/0/key", json!("z"))).unwrap();
    assert_eq!(changed["tolerations"], json!([{"key": "z"}]));
    assert_eq!(
        apply(&spec, &delete("/tolerations/0")).unwrap()["tolerations"],
        json!([])
    );
    assert_eq!(
        apply(&spec, &set("", json!({"a": 1}))).unwrap(),
        json!({"a": 1})
    );
    let through = apply(&spec, &set("/image/tag", json!("x"))).unwrap_err();
    assert_eq!(
        through,
        ApplyError::NotAContainer {
            at: "/image".into(),
            found: "\"valkey/valkey:9.1\"".into()
        }
    );
    assert!(
        through.to_string().contains("cannot go through \"/image\""),
        "{through}"
    );
    assert!(matches!(
        apply(&spec, &set("image", json!(1))).unwrap_err(),
        ApplyError::BadPointer { .. }
    ));
    let bad = apply(&spec, &set("/tolerations/x/key", json!(1))).unwrap_err();
    assert_eq!(
        bad,
        ApplyError::BadIndex {
            at: "/tolerations".into(),
            segment: "x".into(),
            len: 1
        }
    );
    assert!(matches!(
        apply(&spec, &set("/tolerations/3", json!(1))).unwrap_err(),
        ApplyError::BadIndex { len: 1, .. }
    ));
    assert!(matches!(
        apply(&spec, &set("/tolerations/01", json!(1))).unwrap_err(),
        ApplyError::BadIndex { .. }
    ));
    assert_eq!(
        apply(&spec, &delete("")).unwrap_err(),
        ApplyError::DeleteRoot
    );
}

const ONE_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.test}
spec:
  group: example.test
  names: {kind: Thing}
  versions:
  - name: v1beta1
    served: true
    storage: false
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - {rule: "!has(self.low) || !has(self.high) || self.low <= self.high", message: low above high}
            properties:
              name: {type: string, pattern: '^[a-z]([-a-z0-9]*[a-z0-9])?$', maxLength: 10}
              low: {type: integer}
              high: {type: integer, default: 10}
              odd: {type: integer, x-kubernetes-validations: [{rule: "self % 2 == 1", message: odd only}]}
              size: {type: string, x-kubernetes-validations: [{rule: "quantity(self).compareTo(quantity(oldSelf)) >= 0", message: only grows}]}
              glob: {type: string, pattern: '(?i)x'}
              fancy: {type: string, x-kubernetes-validations: [{rule: "self.all(c, c != 'x')", message: no x}]}
              blob: {x-kubernetes-preserve-unknown-fields: true}
"#;

#[test]
fn the_validator_evaluates_patterns_rules_and_defaults() {
    let thing = parse_crds(ONE_CRD).unwrap().remove(0);
    assert_eq!(
        (thing.kind.as_str(), thing.version.as_str()),
        ("Thing", "v1")
    );
    assert_eq!(thing.field("/blob").unwrap().ty, FieldType::Opaque);
    let v = |old: Option<Value>, new: Value| validate(&thing, old.as_ref(), &new);
    assert_eq!(v(None, json!({"name": "ok-1"})), Verdict::Valid);
    assert!(
        matches!(v(None, json!({"name": "-no"})), Verdict::Invalid(w) if w.contains("does not match"))
    );
    assert!(
        matches!(v(None, json!({"name": "abcdefghijk"})), Verdict::Invalid(w) if w.contains("maxLength"))
    );
    // The default of `high` (10) takes part in the rule.
    assert_eq!(
        v(None, json!({"low": 11})),
        Verdict::Invalid("spec: low above high".into())
    );
    assert_eq!(v(None, json!({"low": 11, "high": 12})), Verdict::Valid);
    assert_eq!(
        v(None, json!({"odd": 4})),
        Verdict::Invalid("spec.odd: odd only".into())
    );
    // A transition rule applies only to an update.
    assert_eq!(v(None, json!({"size": "1Mi"})), Verdict::Valid);
    assert_eq!(
        v(Some(json!({"size": "1Gi"})), json!({"size": "1Mi"})),
        Verdict::Invalid("spec.size: only grows".into())
    );
    assert_eq!(
        v(Some(json!({"size": "1Gi"})), json!({"size": "1.5Gi"})),
        Verdict::Valid
    );
    // What this module cannot evaluate is undecided, never a guess.
    assert!(matches!(
        v(None, json!({"glob": "x"})),
        Verdict::Undecided(_)
    ));
    assert!(matches!(
        v(None, json!({"fancy": "y"})),
        Verdict::Undecided(_)
    ));
    assert!(matches!(
        v(None, json!({"fancy": "y", "odd": 2})),
        Verdict::Invalid(_)
    ));
    let ms = mutations_for(&thing, &json!({"name": "ok", "glob": "x"}));
    assert!(
        ms.iter()
            .filter(|m| m.path == "/glob" && m.kind == MutationKind::StringChange)
            .all(|m| m.expect == Expectation::Unknown)
    );
}

fn write(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn bad_input_gives_named_errors() {
    let missing = load_crds(Path::new("/nonexistent/crds.yaml")).unwrap_err();
    assert!(matches!(missing, SchemaError::Read { .. }));
    assert!(
        missing
            .to_string()
            .starts_with("cannot read /nonexistent/crds.yaml"),
        "{missing}"
    );
    let f = write("kind: [unclosed\n");
    let e = load_crds(f.path()).unwrap_err();
    assert!(matches!(e, SchemaError::NotYaml { .. }), "{e}");
    assert!(
        e.to_string().contains(&f.path().display().to_string())
            && e.to_string().contains("is not YAML"),
        "{e}"
    );
    let e = parse_crds("apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: Secret\n")
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "<text> holds no CustomResourceDefinition (2 YAML documents)"
    );
    let e = parse_crds("").unwrap_err();
    assert!(matches!(e, SchemaError::NoCrd { documents: 0, .. }), "{e}");
    let head = "kind: CustomResourceDefinition\nmetadata: {name: x.test}\nspec:\n  group: test\n  names: {kind: X}\n";
    let e = parse_crds(
        "kind: CustomResourceDefinition\nmetadata: {name: x.test}\nspec: {group: test}\n",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"<text>: CustomResourceDefinition "x.test" has no spec.names.kind"#
    );
    let e = parse_crds(&format!("{head}  versions: []\n")).unwrap_err();
    assert!(
        matches!(e, SchemaError::Malformed { .. })
            && e.to_string().contains("storage or served version"),
        "{e}"
    );
    let e = parse_crds(&format!(
        "{head}  versions: [{{name: v1, served: true, storage: true}}]\n"
    ))
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"<text>: X version "v1" has no schema.openAPIV3Schema"#
    );
    let no_spec =
        "  versions: [{name: v1, served: true, schema: {openAPIV3Schema: {type: object}}}]\n";
    let e = parse_crds(&format!("{head}{no_spec}")).unwrap_err();
    assert!(
        matches!(&e, SchemaError::NoSchema { what, .. } if what.contains("properties.spec")),
        "{e}"
    );
}
