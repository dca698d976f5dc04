use logbook_crds::{ValkeyOperatorDefaults, ValkeyOperatorDefaultsSpec};
use serde_json::json;

use super::*;
use crate::decide::given::Given;

fn defaults(ns: &str, spec: Value) -> ValkeyOperatorDefaults {
    let spec: ValkeyOperatorDefaultsSpec = serde_json::from_value(spec).unwrap();
    let mut d = ValkeyOperatorDefaults::new(DEFAULTS_NAME, spec);
    d.metadata.namespace = Some(ns.to_owned());
    d
}

fn own(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn operator() -> ValkeyOperatorDefaults {
    defaults(
        "logbook-system",
        json!({"template": {"image": "valkey/valkey:8.0", "replicas": 2,
            "storage": {"size": "2Gi"}, "labels": {"team": "platform", "tier": "a"}},
            "plans": {"free": {"replicas": 1}, "pro": {"replicas": 5, "storage": {"size": "50Gi"}}}}),
    )
}

fn namespace() -> ValkeyOperatorDefaults {
    defaults(
        "shop",
        json!({"template": {"replicas": 3, "labels": {"team": "shop"}},
            "plans": {"pro": {"replicas": 4, "resources": {"limits": {"memory": "2Gi"}}}}}),
    )
}

#[test]
fn each_level_wins_over_the_one_below_and_says_so() {
    let op = operator();
    let ns = namespace();
    // Built-in < operator < namespace < the cluster's own.
    let out = layer_spec(&own(json!({"labels": {"tier": "b"}})), Some(&op), Some(&ns));
    let spec = out.spec.clone().unwrap();
    assert_eq!(spec.image, "valkey/valkey:8.0", "the operator's");
    assert_eq!(
        spec.replicas,
        Some(3),
        "the namespace's over the operator's"
    );
    assert_eq!(spec.storage.size.0, "2Gi", "the operator's over built-in");
    assert_eq!(spec.labels.get("team").map(String::as_str), Some("shop"));
    assert_eq!(
        spec.labels.get("tier").map(String::as_str),
        Some("b"),
        "its own"
    );
    assert_eq!(
        spec.failover,
        logbook_crds::FailoverSpec::default(),
        "built-in"
    );
    let from = |field: &str| {
        out.sources
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, s)| s.as_str())
    };
    assert_eq!(
        from("/image"),
        Some("operator defaults valkey-operator-defaults")
    );
    assert_eq!(
        from("/replicas"),
        Some("namespace defaults shop/valkey-operator-defaults")
    );
    assert_eq!(from("/labels/tier"), None, "its own are not listed");
    assert!(out.layers.is_some());
    // A plan wins over both defaults; the namespace's plan of a name
    // hides the operator's; the cluster's own spec wins over the plan.
    let pro = layer_spec(&own(json!({"plan": "pro"})), Some(&op), Some(&ns));
    let spec = pro.spec.unwrap();
    assert_eq!(spec.replicas, Some(4), "the namespace's plan pro");
    assert_eq!(spec.storage.size.0, "2Gi", "not the operator's pro");
    let mine = layer_spec(
        &own(json!({"plan": "free", "replicas": 2})),
        Some(&op),
        Some(&ns),
    );
    assert_eq!(mine.spec.unwrap().replicas, Some(2));
    let free = layer_spec(&own(json!({"plan": "free"})), Some(&op), Some(&ns));
    assert_eq!(free.spec.unwrap().replicas, Some(1), "the operator's plan");
    assert_eq!(
        free.sources
            .iter()
            .find(|(f, _)| f == "/replicas")
            .map(|(_, s)| s.as_str()),
        Some("plan free")
    );
}

#[test]
fn without_defaults_or_plan_nothing_is_layered() {
    let out = layer_spec(&own(json!({"replicas": 2})), None, None);
    assert_eq!(out.layers, None);
    assert!(out.sources.is_empty());
    assert_eq!(out.spec.unwrap().replicas, Some(2));
}

#[test]
fn an_unknown_plan_is_refused_with_the_known_ones() {
    let op = operator();
    let ns = namespace();
    let out = layer_spec(&own(json!({"plan": "gold"})), Some(&op), Some(&ns));
    let problems = out.spec.unwrap_err();
    assert_eq!(problems[0].path, "spec.plan");
    assert_eq!(
        problems[0].message,
        "plan \"gold\" is not defined; the plans defined are: free, pro"
    );
    // And with no defaults object at all.
    let none = layer_spec(&own(json!({"plan": "gold"})), None, None);
    assert!(
        none.spec.unwrap_err()[0]
            .message
            .ends_with("the plans defined are: none")
    );
}

#[test]
fn an_invalid_defaults_object_changes_no_cluster() {
    let bad = defaults("logbook-system", json!({"template": {"replicaz": 3}}));
    let out = layer_spec(&own(json!({})), Some(&bad), None);
    let problems = out.spec.unwrap_err();
    assert!(
        problems[0]
            .message
            .contains("ValkeyOperatorDefaults logbook-system/valkey-operator-defaults is invalid"),
        "{problems:?}"
    );
    assert!(problems[0].message.contains("spec.template.replicaz"));
}

#[test]
fn a_default_that_does_not_apply_to_the_topology_is_left_out() {
    let op = operator();
    let out = layer_spec(&own(json!({"topology": "Cluster"})), Some(&op), None);
    let spec = out.spec.unwrap();
    assert_eq!(spec.replicas, None, "replicas is not a Cluster's");
    assert_eq!(spec.image, "valkey/valkey:8.0");
}

fn judged(g: &mut Given, out: &Judged) {
    for e in &out.events {
        g.event(e.clone());
    }
}

#[test]
fn a_change_of_defaults_is_judged_once_and_waits_for_its_turn() {
    let mut g = Given::new();
    let op = operator();
    let first = layer_spec(&own(json!({})), Some(&op), None);
    let out = observe_layered_spec(&g.state, "demo", 1, &first, false);
    let kinds: Vec<&str> = out.events.iter().map(Event::kind).collect();
    assert_eq!(
        kinds,
        ["SpecChanged", "SpecLayersObserved"],
        "a new generation is never held"
    );
    judged(&mut g, &out);
    assert_eq!(
        observe_layered_spec(&g.state, "demo", 1, &first, true),
        Judged::default(),
        "judged already"
    );
    // The operator's defaults change: the same generation, new layers.
    let changed = defaults(
        "logbook-system",
        json!({"template": {"image": "valkey/valkey:9.1", "replicas": 2, "storage": {"size": "2Gi"}}}),
    );
    let second = layer_spec(&own(json!({})), Some(&changed), None);
    let held = observe_layered_spec(&g.state, "demo", 1, &second, false);
    assert!(held.events.is_empty(), "{held:?}");
    assert!(
        held.waiting
            .as_deref()
            .unwrap()
            .contains("maxClustersRolling")
    );
    let taken = observe_layered_spec(&g.state, "demo", 1, &second, true);
    match taken.events.as_slice() {
        [
            Event::SpecChanged { generation: 1, .. },
            Event::SpecLayersObserved {
                from_defaults: true,
                ..
            },
        ] => {}
        other => panic!("{other:?}"),
    }
    judged(&mut g, &taken);
    assert_eq!(g.state.applied_generation, None, "applied again");
    // Layers that change but give the same spec: journaled, not rolled.
    // (an empty object adds nothing)
    let same = defaults(
        "logbook-system",
        json!({"template": {"image": "valkey/valkey:9.1", "replicas": 2, "storage": {"size": "2Gi"}, "labels": {}}}),
    );
    let third = layer_spec(&own(json!({})), Some(&same), None);
    assert_ne!(third.layers, second.layers);
    let out = observe_layered_spec(&g.state, "demo", 1, &third, false);
    let kinds: Vec<&str> = out.events.iter().map(Event::kind).collect();
    assert_eq!(kinds, ["SpecLayersObserved"]);
    // A change the spec's rules refuse (storage may only grow) is refused
    // in the status, the spec in force kept, whatever the turn.
    let smaller = defaults(
        "logbook-system",
        json!({"template": {"image": "valkey/valkey:9.1"}}),
    );
    let fourth = layer_spec(&own(json!({})), Some(&smaller), None);
    let out = observe_layered_spec(&g.state, "demo", 1, &fourth, false);
    match out.events.as_slice() {
        [
            Event::SpecRejected { errors, .. },
            Event::SpecLayersObserved {
                fingerprint: None, ..
            },
        ] => {
            assert_eq!(errors[0].path, "spec.storage.size", "{errors:?}");
        }
        other => panic!("{other:?}"),
    }
}
