//! The exposition: what a scrape shows after each kind of recording, and
//! that a forgotten cluster shows nothing.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::time::Duration;

use logbook_crds::v1alpha1::ClusterPhase;

use super::*;

fn demo() -> ClusterLabels {
    ClusterLabels::new("default", "demo")
}

/// The sample lines of `body` (no comments).
fn samples(body: &str) -> Vec<&str> {
    body.lines().filter(|l| !l.starts_with('#')).collect()
}

fn has(body: &str, line: &str) -> bool {
    body.lines().any(|l| l == line)
}

#[test]
fn a_fresh_registry_shows_only_the_build_and_the_process_wide_series() {
    let body = Metrics::new().encode(Format::Prometheus);
    assert!(has(
        &body,
        &format!(
            "logbook_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )
    ));
    assert!(has(&body, "logbook_leader 0"));
    assert!(has(&body, "logbook_leader_transitions_total 0"));
    assert!(has(&body, "logbook_reconcile_duration_seconds_count 0"));
    assert!(
        !body.contains("namespace="),
        "no cluster series yet:\n{body}"
    );
}

#[test]
fn counters_carry_their_suffix_in_both_formats() {
    let metrics = Metrics::new();
    metrics.observe_reconcile(Duration::from_millis(30), true);
    metrics.observe_reconcile(Duration::from_millis(3), false);
    let text = metrics.encode(Format::Prometheus);
    assert!(has(&text, "# TYPE logbook_reconciles_total counter"));
    assert!(has(&text, "logbook_reconciles_total{result=\"ok\"} 1"));
    assert!(has(&text, "logbook_reconciles_total{result=\"error\"} 1"));
    assert!(has(&text, "logbook_reconcile_duration_seconds_count 2"));
    assert!(has(
        &text,
        "logbook_reconcile_duration_seconds_bucket{le=\"0.005\"} 1"
    ));
    assert!(!text.contains("# EOF"));
    let om = metrics.encode(Format::OpenMetrics);
    assert!(has(&om, "# TYPE logbook_reconciles counter"));
    assert!(has(&om, "logbook_reconciles_total{result=\"ok\"} 1"));
    assert_eq!(om.lines().last(), Some("# EOF"));
}

#[test]
fn appended_events_show_as_journal_decision_outcome_and_failover_series() {
    let metrics = Metrics::new();
    let notes = [
        Note::Decision {
            intent: "PromoteReplica",
            reason: "PrimaryDead",
        },
        Note::Outcome {
            intent: "PromoteReplica",
            outcome: Outcome::Succeeded,
        },
        Note::Failover {
            kind: FailoverKind::Automatic,
            seconds: Some(1.5),
        },
        Note::Failover {
            kind: FailoverKind::Observed,
            seconds: None,
        },
    ];
    metrics.observe_appended(&demo(), 4, 900, 42, &notes);
    metrics.observe_appended(&demo(), 1, 100, 43, &[]);
    let body = metrics.encode(Format::Prometheus);
    let l = "namespace=\"default\",valkeycluster=\"demo\"";
    for line in [
        format!("logbook_journal_appends_total{{{l}}} 5"),
        format!("logbook_journal_appended_bytes_total{{{l}}} 1000"),
        format!("logbook_journal_head_seq{{{l}}} 43"),
        format!(
            "logbook_decisions_total{{{l},intent=\"PromoteReplica\",reason=\"PrimaryDead\"}} 1"
        ),
        format!(
            "logbook_intent_outcomes_total{{{l},intent=\"PromoteReplica\",outcome=\"succeeded\"}} 1"
        ),
        format!("logbook_failovers_total{{{l},kind=\"automatic\"}} 1"),
        format!("logbook_failovers_total{{{l},kind=\"observed\"}} 1"),
        format!("logbook_failover_duration_seconds_count{{{l},kind=\"automatic\"}} 1"),
        format!("logbook_failover_duration_seconds_sum{{{l},kind=\"automatic\"}} 1.5"),
        format!("logbook_failover_duration_seconds_bucket{{le=\"1.0\",{l},kind=\"automatic\"}} 0"),
        format!("logbook_failover_duration_seconds_bucket{{le=\"2.0\",{l},kind=\"automatic\"}} 1"),
        format!(
            "logbook_failover_duration_seconds_bucket{{le=\"120.0\",{l},kind=\"automatic\"}} 1"
        ),
    ] {
        assert!(has(&body, &line), "missing {line}\n{body}");
    }
    // An untimed failover is counted, not observed in the histogram.
    assert!(!body.contains("logbook_failover_duration_seconds_count{namespace=\"default\",valkeycluster=\"demo\",kind=\"observed\"}"));
}

#[test]
fn status_probe_and_health_gauges() {
    let metrics = Metrics::new();
    metrics.set_status(&demo(), true, Some(ClusterPhase::Ready));
    metrics.set_journal_healthy(&demo(), true);
    metrics.observe_configmap_write(&demo(), WriteResult::Ok);
    metrics.observe_configmap_write(&demo(), WriteResult::Conflict);
    let lag = BTreeMap::from([("demo-1".to_owned(), 0), ("demo-2".to_owned(), 120)]);
    metrics.set_probed(&demo(), 0.0, &lag);
    metrics.observe_leadership(true, true);
    let body = metrics.encode(Format::Prometheus);
    let l = "namespace=\"default\",valkeycluster=\"demo\"";
    for line in [
        format!("logbook_cluster_ready{{{l}}} 1"),
        format!("logbook_cluster_phase{{{l},phase=\"Ready\"}} 1"),
        format!("logbook_cluster_phase{{{l},phase=\"Degraded\"}} 0"),
        format!("logbook_journal_healthy{{{l}}} 1"),
        format!("logbook_configmap_writes_total{{{l},result=\"ok\"}} 1"),
        format!("logbook_configmap_writes_total{{{l},result=\"conflict\"}} 1"),
        format!("logbook_primary_unhealthy_seconds{{{l}}} 0.0"),
        format!("logbook_replication_lag_bytes{{{l},pod=\"demo-1\"}} 0"),
        format!("logbook_replication_lag_bytes{{{l},pod=\"demo-2\"}} 120"),
        "logbook_leader 1".to_owned(),
        "logbook_leader_transitions_total 1".to_owned(),
    ] {
        assert!(has(&body, &line), "missing {line}\n{body}");
    }
    let phases = samples(&body)
        .into_iter()
        .filter(|s| s.starts_with("logbook_cluster_phase{"))
        .count();
    assert_eq!(phases, PHASES.len(), "one series per phase");
    // A replica that stops answering loses its series.
    metrics.set_probed(&demo(), 2.5, &BTreeMap::from([("demo-1".to_owned(), 7)]));
    let body = metrics.encode(Format::Prometheus);
    assert!(has(
        &body,
        &format!("logbook_primary_unhealthy_seconds{{{l}}} 2.5")
    ));
    assert!(has(
        &body,
        &format!("logbook_replication_lag_bytes{{{l},pod=\"demo-1\"}} 7")
    ));
    assert!(!body.contains("pod=\"demo-2\""), "{body}");
}

#[test]
fn a_forgotten_cluster_has_no_series_left_and_others_keep_theirs() {
    let metrics = Metrics::new();
    let other = ClusterLabels::new("prod", "cache");
    for cluster in [demo(), other.clone()] {
        metrics.observe_appended(
            &cluster,
            1,
            10,
            1,
            &[
                Note::Decision {
                    intent: "ApplyResources",
                    reason: "SpecChanged",
                },
                Note::Outcome {
                    intent: "ApplyResources",
                    outcome: Outcome::Failed,
                },
                Note::Failover {
                    kind: FailoverKind::Planned,
                    seconds: Some(0.2),
                },
            ],
        );
        metrics.set_status(&cluster, false, Some(ClusterPhase::Creating));
        metrics.set_journal_healthy(&cluster, false);
        metrics.observe_configmap_write(&cluster, WriteResult::Error);
        metrics.set_probed(&cluster, 1.0, &BTreeMap::from([("p-1".to_owned(), 1)]));
    }
    metrics.forget_cluster(&demo());
    let body = metrics.encode(Format::Prometheus);
    assert!(!body.contains("valkeycluster=\"demo\""), "{body}");
    assert!(body.contains("valkeycluster=\"cache\""));
    metrics.forget_all_clusters();
    let body = metrics.encode(Format::Prometheus);
    assert!(!body.contains("namespace="), "{body}");
    // The process-wide series stay.
    assert!(body.contains("logbook_build_info{"));
}

#[test]
fn cluster_metrics_publish_notes_only_once_committed() {
    use logbook_journal::{ChainHash, ClusterState, Envelope, Event, Timestamp};

    let metrics = Metrics::new();
    let mut state = ClusterState::default();
    let mut cluster = ClusterMetrics::new(metrics.clone(), "default", "demo");
    let envelope = Envelope {
        seq: 1,
        id: uuid::Uuid::now_v7(),
        at: Timestamp(1),
        cause: None,
        epoch: 1,
        body: Event::ClusterDeleted,
        prev: ChainHash::GENESIS,
        hash: ChainHash::GENESIS,
    };
    cluster.fold(&mut state, std::slice::from_ref(&envelope));
    assert!(state.deleted, "folded into the projection");
    assert!(
        !metrics
            .encode(Format::Prometheus)
            .contains("logbook_journal_appends_total{")
    );
    // Dropped (a fenced writer): nothing counted.
    cluster.discard(&state);
    cluster.committed(0, 0);
    let body = metrics.encode(Format::Prometheus);
    assert!(has(
        &body,
        "logbook_journal_appends_total{namespace=\"default\",valkeycluster=\"demo\"} 0"
    ));
    cluster.fold(&mut state, std::slice::from_ref(&envelope));
    cluster.committed(64, 1);
    let body = metrics.encode(Format::Prometheus);
    assert!(has(
        &body,
        "logbook_journal_appends_total{namespace=\"default\",valkeycluster=\"demo\"} 1"
    ));
    assert!(has(
        &body,
        "logbook_journal_appended_bytes_total{namespace=\"default\",valkeycluster=\"demo\"} 64"
    ));
}

#[test]
fn a_clusters_failover_counters_start_at_zero_once_its_status_is_known() {
    let metrics = Metrics::new();
    metrics.set_status(&demo(), true, Some(ClusterPhase::Ready));
    let body = metrics.encode(Format::Prometheus);
    for kind in ["automatic", "planned", "observed", "requested"] {
        let line = format!(
            "logbook_failovers_total{{namespace=\"default\",valkeycluster=\"demo\",kind=\"{kind}\"}} 0"
        );
        assert!(has(&body, &line), "{line} missing:\n{body}");
    }
    metrics.forget_cluster(&demo());
    let body = metrics.encode(Format::Prometheus);
    assert!(!body.contains("valkeycluster=\"demo\""), "{body}");
}
