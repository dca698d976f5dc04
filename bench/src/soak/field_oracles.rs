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

/// What `m`, once converged, must show on every server: a `config`
/// directive as itself (sizes in bytes, as Valkey reports them); a
/// persistence as `save` and `appendonly`. Empty for every other field
/// (their oracles are objects or behaviour).
pub(super) fn expected(m: &Mutation) -> Vec<Expected> {
    let Op::Set(Value::String(value)) = &m.op else {
        return Vec::new();
    };
    let setting = |parameter: &str, value: String| Expected {
        parameter: parameter.to_owned(),
        value,
    };
    if let Some(directive) = m.path.strip_prefix("/config/") {
        let directive = directive.replace("~1", "/").replace("~0", "~");
        return vec![setting(&directive, as_reported(value))];
    }
    if m.path == "/storage/persistence" {
        let (rdb, aof) = match value.as_str() {
            "None" => (false, false),
            "Rdb" => (true, false),
            "Aof" => (false, true),
            "RdbAndAof" => (true, true),
            _ => return Vec::new(),
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
    #![allow(clippy::unwrap_used)]
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
        let e = expected(&set("/config/maxmemory", "100mb"));
        assert_eq!(e[0].parameter, "maxmemory");
        assert_eq!(e[0].value, "104857600");
        assert_eq!(
            expected(&set("/config/maxmemory-policy", "allkeys-lru"))[0].value,
            "allkeys-lru"
        );
        assert_eq!(as_reported("300"), "300");
        assert_eq!(as_reported("64k"), "64000");
        assert!(expected(&set("/storage/size", "2Gi")).is_empty());
    }

    #[test]
    fn a_persistence_is_expected_as_save_and_appendonly() {
        let e = expected(&set("/storage/persistence", "Aof"));
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
    fn a_pod_with_another_value_is_a_finding() {
        let e = expected(&set("/config/timeout", "300"));
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
