//! Spec mutations for Logbook's custom resources, generated from their
//! schemas in the style of Acto (Gu et al., SOSP '23, "Acto: Automatic
//! End-to-End Testing for Operation Correctness of Cloud System
//! Management").
//!
//! Acto's idea: an operator's input is its custom resource's spec, and the
//! CRD's OpenAPI schema says what that input may be. Walking the schema
//! gives every field with its type and constraints ([`schema`]); per-type
//! mutations of each field (numbers to their bounds and just past them,
//! booleans toggled, enums through every value, strings emptied or made
//! too long, lists grown and shrunk, maps given keys, fields deleted or
//! added) give the generic test cases, and a few semantic mutations that a
//! generic generator would not find (a memory limit no Valkey fits in, a
//! node selector no node satisfies, a directive the operator owns, a
//! topology switch, ...) are added by hand from the real field names
//! ([`mutate`]). Seeded chains of mutations ([`chain`]) are what a trial
//! applies to a running cluster, one step at a time.
//!
//! This module only generates. It is pure: it reads the CRD file it is
//! given and nothing else, touches no network and no cluster. Applying the
//! chains to real clusters and checking oracles (the cluster converged to
//! the spec, a refused step left it alone, reverting a step restored the
//! previous state) is done elsewhere.
//!
//! # Honest expectations
//!
//! Every mutation says what the API server should do with it
//! ([`Expectation`]). `RefuseBySchema` is claimed only when the CRD really
//! forbids the result: [`validate`] checks it the way the API server does,
//! defaults applied first, with the structural schema (types, enums,
//! bounds, lengths, patterns, item counts, required fields) and the CRD's
//! `x-kubernetes-validations` rules (including the transition rules that
//! compare with the previous spec: `topology` is immutable, `storage.size`
//! may only grow, ...). A rule or pattern this module cannot evaluate makes
//! the mutation `Unknown` rather than a guess. So do schema-valid values
//! that something besides the schema checks (Kubernetes's own validation of
//! the pod fields the spec embeds, the operator's checks of `config`, an
//! image or a Secret that must exist): the oracle decides those.
//!
//! Two small evaluators the validator needs live here, private: a
//! regular-expression subset for `pattern` (enough for every pattern in the
//! CRDs; anything else is "cannot tell") and a CEL subset for the rules.

pub mod chain;
pub mod mutate;
pub mod schema;

pub use chain::{ApplyError, Chain, MAX_CHAIN_LEN, apply, chain, chains, example_spec};
pub use mutate::{
    Expectation, Mutation, MutationKind, Op, checked_elsewhere_prefixes, mutations_for,
    not_generated, pointer_of,
};
pub use schema::{
    CrdSchema, Field, FieldType, Rule, SchemaError, Segment, Verdict, load_crds, load_crds_at,
    parse_crds, validate, violates,
};

mod cel;
mod pattern;

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )]

    use super::{cel, pattern};
    use serde_json::{Value, json};

    /// Every pattern of the CRDs, with strings it must and must not match.
    #[rustfmt::skip]
    const PATTERNS: &[(&str, &[&str], &[&str])] = &[
        (r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", &["valkey-test", "a.b-c.d", "0"], &["-bad", "Upper", "", "a..b", "a-"]),
        (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
            &["1Gi", "500m", "1.5G", "+3", ".5", "1e3", "2E-2", "10", "5."], &["", "1GB", "Gi", "1 Gi", "one", "1e"]),
        (r"^https?://[^\s]+$", &["http://minio.storage:9000", "https://x"], &["http://a b", "ftp://x", "http://"]),
        (r"^[^/].*[^/]$|^[^/]$", &["a/b", "a", "ab"], &["a/", "/a", "/", ""]),
        (r"^[-._a-zA-Z0-9]+$", &["pass_word.1", "-"], &["", "a b", "a/b"]),
        (r"^[A-Za-z0-9][A-Za-z0-9._-]*$", &["app.user-1", "A"], &["_x", "", "a b"]),
        ("ab{2,3}c", &["xabbc", "abbbc"], &["abc", "abbbbc"]),
    ];

    #[test]
    fn patterns_of_the_crds() {
        for (p, yes, no) in PATTERNS {
            assert!(
                yes.iter().all(|s| pattern::matches(p, s) == Some(true)),
                "{p}"
            );
            assert!(
                no.iter().all(|s| pattern::matches(p, s) == Some(false)),
                "{p}"
            );
        }
        let name = PATTERNS[0].0;
        assert_eq!(pattern::matches(name, &"a".repeat(2000)), Some(true));
        assert_eq!(
            pattern::matches(name, &format!("{}-", "a".repeat(2000))),
            Some(false)
        );
        assert_eq!(pattern::matches(r"\bword", "word"), None);
    }

    #[rustfmt::skip]
    fn cases() -> Vec<(&'static str, Value, Option<Value>, Option<bool>)> {
        let topology = "self.topology == 'Cluster' || (!has(self.shards) && !has(self.replicasPerShard))";
        let quorum = "!has(self.quorum) || self.quorum <= (has(self.replicas) ? self.replicas : 3)";
        let grow = "quantity(self).compareTo(quantity(oldSelf)) >= 0";
        vec![
            (topology, json!({"topology": "Cluster", "shards": 3}), None, Some(true)),
            (topology, json!({"topology": "Replication", "shards": 1}), None, Some(false)),
            (quorum, json!({"quorum": 4, "replicas": 5}), None, Some(true)),
            (quorum, json!({"quorum": 4}), None, Some(false)),
            ("self % 2 == 1", json!(4), None, Some(false)),
            (grow, json!("2Gi"), Some(json!("1Gi")), Some(true)),
            (grow, json!("512Mi"), Some(json!("1Gi")), Some(false)),
            (grow, json!("512Mi"), None, Some(true)),
            ("quantity(self).isGreaterThan(quantity('0'))", json!("0"), None, Some(false)),
            ("self == oldSelf", json!({"a": 1}), Some(json!({"a": 1.0})), Some(true)),
            // `||` decides on one known side even when the other errs.
            ("self.missing == 1 || true", json!({}), None, Some(true)),
            // A missing field is an evaluation error: cannot tell.
            ("self.topology == 'Cluster'", json!({}), None, None),
            // Outside the subset: cannot tell.
            ("self.all(x, x > 0)", json!([1]), None, None),
            ("self.size() > 1.5", json!("ab"), None, None),
        ]
    }

    #[test]
    fn cel_rules_of_the_crds() {
        for (rule, this, old, want) in cases() {
            assert_eq!(
                cel::check(rule, &this, old.as_ref()),
                want,
                "{rule} on {this}"
            );
        }
        assert_eq!(cel::quantity("1Gi"), Some(1024.0 * 1024.0 * 1024.0));
        assert_eq!(cel::quantity("1.5k"), Some(1500.0));
        assert_eq!(cel::quantity("Gi"), None);
    }
}
