//! The field oracles on the servers: what a converged step's field must
//! read back as with `CONFIG GET` on every data pod, so that a trial
//! judges a setting where it takes effect, not by the status or the
//! objects alone. The same oracles are the `server` rows of
//! `docs/field-oracles.yaml` (`docs/field-table.md`).
//!
//! Pure: the parameters and values to expect from a mutation; the trial
//! reads the servers (`trial_cluster::Cluster::settings_on_servers`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::spec_mutations::{Mutation, Op};

/// One setting every data node must report: `CONFIG GET parameter`
/// answering `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Expected {
    /// The directive.
    pub(super) parameter: String,
    /// Its value as Valkey reports it.
    pub(super) value: String,
}

/// What `m`, once converged into the spec `attempted`, must show on
/// every server: a `config` directive as itself (sizes in bytes, as
/// Valkey reports them); a persistence as `save` and `appendonly`; a
/// change under `resources` as the `maxmemory` the memory limit gives
/// (75 % of it, `0` without one) unless `config` sets its own. Empty for
/// every other field (their oracles are objects or behaviour).
pub(super) fn expected(m: &Mutation, attempted: &Value) -> Vec<Expected> {
    let setting = |parameter: &str, value: String| Expected {
        parameter: parameter.to_owned(),
        value,
    };
    if m.path.starts_with("/resources") && !matches!(m.op, Op::Set(Value::Null)) {
        if attempted.pointer("/config/maxmemory").is_some() {
            return Vec::new();
        }
        let mut spec = logbook_crds::ValkeyClusterSpec::default();
        let Ok(resources) =
            serde_json::from_value(attempted.get("resources").cloned().unwrap_or(Value::Null))
        else {
            return Vec::new();
        };
        spec.resources = resources;
        let bytes = logbook::resources::maxmemory_bytes(&spec).unwrap_or(0);
        return vec![setting("maxmemory", bytes.to_string())];
    }
    let Op::Set(Value::String(value)) = &m.op else {
        return Vec::new();
    };
    if let Some(directive) = m.path.strip_prefix("/config/") {
        let directive = directive.replace("~1", "/").replace("~0", "~");
        return vec![setting(&directive, as_reported(value))];
    }
    if m.path == "/storage/persistence" {
        let Some((rdb, aof)) = persistence_parts(value) else {
            return Vec::new();
        };
        return vec![
            setting(
                "save",
                if rdb {
                    logbook::resources::SAVE_SCHEDULE.to_owned()
                } else {
                    String::new()
                },
            ),
            setting("appendonly", if aof { "yes" } else { "no" }.to_owned()),
        ];
    }
    Vec::new()
}

/// A `storage.persistence` as Valkey says it: (RDB snapshots on a
/// schedule, the append-only file); `None` for a value it is not.
pub(super) fn persistence_parts(persistence: &str) -> Option<(bool, bool)> {
    match persistence {
        "None" => Some((false, false)),
        "Rdb" => Some((true, false)),
        "Aof" => Some((false, true)),
        "RdbAndAof" => Some((true, true)),
        _ => None,
    }
}

/// What a converged `replicas` of a Replication cluster must show on the
/// servers: one data pod answering as the primary and `replicas - 1` as
/// replicas (`ROLE`), as `(primaries, replicas)`.
pub(super) fn expected_roles(m: &Mutation, attempted: &Value) -> Option<(usize, usize)> {
    if m.path != "/replicas"
        || attempted.get("topology").and_then(Value::as_str) != Some("Replication")
    {
        return None;
    }
    let Op::Set(Value::Number(n)) = &m.op else {
        return None;
    };
    let n = usize::try_from(n.as_u64()?).ok()?;
    Some((1, n.checked_sub(1)?))
}

/// The finding of `expected` (primaries, replicas) against the roles the
/// data pods answered with (`master`, `slave`).
pub(super) fn judge_roles(
    expected: (usize, usize),
    roles: &BTreeMap<String, String>,
) -> Option<String> {
    let count = |r: &str| roles.values().filter(|v| *v == r).count();
    let seen = (count("master"), count("slave"));
    (seen != expected).then(|| {
        format!(
            "converged, but the servers answer {} primary and {} replicas, not {} and {} (/replicas): {roles:?}",
            seen.0, seen.1, expected.0, expected.1
        )
    })
}

/// `value` as `CONFIG GET` reports it: a size with a unit (`100mb`,
/// `1gb`, `64k`) in bytes, anything else as given.
fn as_reported(value: &str) -> String {
    let lower = value.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let factor: u64 = match unit {
        "k" => 1_000,
        "kb" => 1_024,
        "m" => 1_000_000,
        "mb" => 1_024 * 1_024,
        "g" => 1_000_000_000,
        "gb" => 1_024 * 1_024 * 1_024,
        _ => return value.to_owned(),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .map_or_else(|| value.to_owned(), |n| n.to_string())
}

/// The findings of `expected` against what each pod reported
/// (pod → directive → value): a pod reporting another value, or none.
pub(super) fn judge(
    path: &str,
    expected: &[Expected],
    observed: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<String> {
    let mut findings = Vec::new();
    for (pod, settings) in observed {
        for e in expected {
            match settings.get(&e.parameter) {
                Some(v) if *v == e.value => {}
                Some(v) => findings.push(format!(
                    "converged, but {pod} reports {} {v:?}, not {:?} ({path})",
                    e.parameter, e.value
                )),
                None => findings.push(format!(
                    "converged, but {pod} does not report {} ({path})",
                    e.parameter
                )),
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::spec_mutations::{Expectation, MutationKind};

    fn set(path: &str, v: &str) -> Mutation {
        Mutation {
            crd_kind: "ValkeyCluster".into(),
            path: path.into(),
            op: Op::Set(Value::String(v.into())),
            kind: MutationKind::ConfigValid,
            expect: Expectation::Accept,
            reason: String::new(),
        }
    }

    #[test]
    fn a_directive_is_expected_as_valkey_reports_it() {
        let none = Value::Null;
        let e = expected(&set("/config/maxmemory", "100mb"), &none);
        assert_eq!(e[0].parameter, "maxmemory");
        assert_eq!(e[0].value, "104857600");
        assert_eq!(
            expected(&set("/config/maxmemory-policy", "allkeys-lru"), &none)[0].value,
            "allkeys-lru"
        );
        assert_eq!(as_reported("300"), "300");
        assert_eq!(as_reported("64k"), "64000");
        assert!(expected(&set("/storage/size", "2Gi"), &none).is_empty());
    }

    #[test]
    fn a_persistence_is_expected_as_save_and_appendonly() {
        let e = expected(&set("/storage/persistence", "Aof"), &Value::Null);
        assert_eq!(
            e,
            vec![
                Expected {
                    parameter: "save".into(),
                    value: String::new()
                },
                Expected {
                    parameter: "appendonly".into(),
                    value: "yes".into()
                },
            ]
        );
    }

    #[test]
    fn a_memory_limit_is_expected_as_the_maxmemory_it_gives() {
        let spec = serde_json::json!({"resources": {"limits": {"memory": "1Gi"}}});
        let e = expected(&set("/resources/limits/memory", "1Gi"), &spec);
        assert_eq!(e[0].parameter, "maxmemory");
        assert_eq!(e[0].value, (1_073_741_824_u64 / 4 * 3).to_string());
        // No limit: none; a maxmemory of the spec's own: not judged here.
        let e = expected(&set("/resources/requests/cpu", "1"), &serde_json::json!({}));
        assert_eq!(e[0].value, "0");
        let own = serde_json::json!({"resources": {"limits": {"memory": "1Gi"}}, "config": {"maxmemory": "10mb"}});
        assert!(expected(&set("/resources/limits/memory", "1Gi"), &own).is_empty());
    }

    #[test]
    fn replicas_are_expected_as_the_roles_the_servers_answer() {
        let spec = serde_json::json!({"topology": "Replication"});
        let m = Mutation {
            op: Op::Set(serde_json::json!(2)),
            ..set("/replicas", "")
        };
        assert_eq!(expected_roles(&m, &spec), Some((1, 1)));
        assert_eq!(
            expected_roles(&m, &serde_json::json!({"topology": "Cluster"})),
            None
        );
        let roles = BTreeMap::from([
            ("p-0".to_owned(), "master".to_owned()),
            ("p-1".to_owned(), "slave".to_owned()),
        ]);
        assert_eq!(judge_roles((1, 1), &roles), None);
        assert!(judge_roles((1, 2), &roles).is_some());
    }

    #[test]
    fn a_pod_with_another_value_is_a_finding() {
        let e = expected(&set("/config/timeout", "300"), &Value::Null);
        let observed = BTreeMap::from([
            (
                "p-0".to_owned(),
                BTreeMap::from([("timeout".to_owned(), "300".to_owned())]),
            ),
            (
                "p-1".to_owned(),
                BTreeMap::from([("timeout".to_owned(), "0".to_owned())]),
            ),
        ]);
        let findings = judge("/config/timeout", &e, &observed);
        assert_eq!(findings.len(), 1);
        assert!(
            findings[0].contains("p-1 reports timeout \"0\""),
            "{findings:?}"
        );
    }
}
