//! The docs name everything the journal and the scrape can hold: every
//! event, intent and reason code of the catalog (by the names their
//! `kind()` / `name()` give) is in `docs/journal-format.md`, and every
//! metric family the operator registers is in `docs/metrics.md`. A
//! variant or a family added without its documentation fails here; so
//! does a spec field without its oracle in `docs/field-oracles.yaml`
//! ([`field_table`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

mod api_reference;
mod field_table;
mod readme;

fn read(path: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names a catalog function of `source` maps its variants to: the
/// `=> "Name"` arms of the function whose signature contains `signature`.
fn catalog(source: &str, signature: &str) -> Vec<String> {
    let start = source
        .find(signature)
        .unwrap_or_else(|| panic!("no {signature} in the source"));
    let mut names = Vec::new();
    for line in source[start..].lines().skip(1) {
        let line = line.trim();
        if line == "}" {
            break;
        }
        if let Some((_, rest)) = line.split_once("=> \"") {
            names.push(rest.split('"').next().unwrap().to_owned());
        }
    }
    assert!(!names.is_empty(), "no arm found after {signature}");
    names
}

#[test]
fn every_event_intent_and_reason_is_in_the_journal_format() {
    let doc = read("docs/journal-format.md");
    let event = read("journal/src/event.rs");
    let intent = read("journal/src/intent.rs");
    let events = catalog(&event, "pub const fn kind(&self)");
    let intents = catalog(&intent, "impl Intent {");
    let reasons = catalog(&intent, "impl ReasonCode {");
    // The scan found the catalog, to its last variants.
    assert!(
        events.contains(&"SlotStatesObserved".to_owned()),
        "{events:?}"
    );
    assert!(intents.contains(&"SettleSlot".to_owned()), "{intents:?}");
    assert!(reasons.contains(&"SlotStuck".to_owned()), "{reasons:?}");
    let mut missing = Vec::new();
    for (what, names) in [
        ("event", events),
        ("intent", intents),
        ("reason code", reasons),
    ] {
        for name in names {
            if !doc.contains(&format!("| `{name}` |")) {
                missing.push(format!("{what} {name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/journal-format.md's catalog tables: {missing:?}"
    );
}

/// A registry with a series in every family (an empty family is not
/// encoded at all).
fn every_family() -> String {
    use logbook::metrics::{
        ClusterLabels, ClusterSummary, FailoverKind, Format, Metrics, MoveOutcome, Note, Outcome,
        ReshardGauges, ShardSummary, WriteResult,
    };
    let metrics = Metrics::new();
    let cluster = ClusterLabels::new("ns", "shop");
    metrics.observe_reconcile(std::time::Duration::from_millis(5), true);
    metrics.observe_leadership(true, true);
    metrics.observe_appended(
        &cluster,
        1,
        10,
        1,
        &[
            Note::Decision {
                intent: "MoveSlots",
                reason: "Reshard",
            },
            Note::Outcome {
                intent: "MoveSlots",
                outcome: Outcome::Succeeded,
            },
            Note::Failover {
                kind: FailoverKind::Automatic,
                seconds: Some(0.5),
            },
            Note::SlotMove {
                outcome: MoveOutcome::Succeeded,
            },
        ],
    );
    metrics.observe_configmap_write(&cluster, WriteResult::Ok);
    metrics.set_journal_healthy(&cluster, true);
    metrics.set_status(&cluster, true, None);
    metrics.set_probed(
        &cluster,
        0.0,
        &std::collections::BTreeMap::from([("shop-1".to_owned(), 0)]),
    );
    metrics.set_cluster_shards(
        &cluster,
        Some(&ClusterSummary {
            formed: true,
            slots_owned: 16_384,
            state_ok: true,
            shards_wanted: 1,
            shards: vec![ShardSummary {
                first_slot: 0,
                primary: "shop-0".to_owned(),
                retired: false,
                served: true,
                slots: Vec::new(),
                slot_count: 16_384,
                replicas: Vec::new(),
            }],
        }),
    );
    metrics.set_reshard(&cluster, Some(&ReshardGauges::default()));
    metrics.encode(Format::OpenMetrics)
}

#[test]
fn every_metric_family_is_in_the_metrics_doc() {
    let doc = read("docs/metrics.md");
    let body = every_family();
    let families: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for family in [
        "logbook_slot_moves",
        "logbook_reshard_given_up",
        "logbook_shard_slots",
    ] {
        assert!(families.contains(&family), "{family} not encoded:\n{body}");
    }
    let missing: Vec<&&str> = families
        .iter()
        .filter(|f| !doc.contains(&format!("`{f}")))
        .collect();
    assert!(missing.is_empty(), "not in docs/metrics.md: {missing:?}");
}
