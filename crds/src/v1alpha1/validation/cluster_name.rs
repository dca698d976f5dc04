//! The ValkeyCluster's own name. Every object the operator makes is named
//! after it, so the name must fit the tightest rule among them; the API
//! server refuses it at creation (a CEL rule on the CRD's root) and the
//! operator refuses it in the status, never running a cluster that would
//! stay `Creating` for good.
//!
//! | object | name | rule |
//! |---|---|---|
//! | StatefulSet, PodDisruptionBudget, client Service | `<name>` | Service: DNS-1035 label |
//! | pods | `<name>-<ordinal>` | DNS-1123 label (the hostname) |
//! | each pod's `controller-revision-hash` label | `<name>-<hash>` (hash ≤ 10) | label value ≤ 63 |
//! | headless and read Services | `<name>-headless`, `<name>-read` | DNS-1035 label |
//! | ConfigMaps, connection Secret | `<name>-config`, `<name>-boot`, `<name>-connection` | DNS-1123 subdomain |
//! | Sentinel StatefulSet (topology Sentinel) | `<name>-sentinel` | its pods' `controller-revision-hash` label ≤ 63, so the name ≤ 43 |
//! | Sentinel Services | `<name>-sentinel`, `<name>-sentinel-hl` | DNS-1035 label |

use super::{FieldError, FieldErrorKind};
use crate::v1alpha1::topology::Topology;

/// The longest ValkeyCluster name: the StatefulSet's controller labels
/// each pod `controller-revision-hash: <name>-<hash>`, the hash up to ten
/// characters (a 32-bit hash in decimal), and a label value is at most 63
/// characters.
pub const MAX_CLUSTER_NAME: usize = 52;

/// The longest name of a ValkeyCluster of topology Sentinel: its Sentinel
/// StatefulSet is `<name>-sentinel`, nine characters longer, and must fit
/// the same `controller-revision-hash` bound ([`MAX_CLUSTER_NAME`]).
pub const MAX_SENTINEL_CLUSTER_NAME: usize = MAX_CLUSTER_NAME - "-sentinel".len();

/// Checks the name of a ValkeyCluster against the objects named after it
/// (see the module's table).
///
/// # Errors
/// A [`FieldError`] on `metadata.name` that names the limit broken.
pub fn validate_name(name: &str) -> Result<(), FieldError> {
    let invalid = |message: String| FieldError {
        path: "metadata.name".into(),
        kind: FieldErrorKind::Invalid,
        message,
    };
    if name.len() > MAX_CLUSTER_NAME {
        return Err(invalid(format!(
            "must be at most {MAX_CLUSTER_NAME} characters, got {}: the StatefulSet named after the cluster labels each pod controller-revision-hash=<name>-<hash of up to 10 characters>, and a label value is at most 63 characters",
            name.len()
        )));
    }
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let starts = bytes.first().is_some_and(u8::is_ascii_lowercase);
    let ends = bytes.last().is_some_and(alnum);
    if !starts || !ends || !bytes.iter().all(|b| alnum(b) || *b == b'-') {
        return Err(invalid(format!(
            "{name:?} must be a DNS-1035 label (lower case letters, digits and '-', starting with a letter and ending with a letter or digit): the cluster's Services are named after it"
        )));
    }
    Ok(())
}

/// [`validate_name`], and for topology Sentinel the tighter bound of the
/// Sentinel StatefulSet's name ([`MAX_SENTINEL_CLUSTER_NAME`]).
///
/// # Errors
/// A [`FieldError`] on `metadata.name` that names the limit broken.
pub fn validate_name_for_topology(name: &str, topology: Topology) -> Result<(), FieldError> {
    validate_name(name)?;
    if topology.uses_sentinel() && name.len() > MAX_SENTINEL_CLUSTER_NAME {
        return Err(FieldError {
            path: "metadata.name".into(),
            kind: FieldErrorKind::Invalid,
            message: format!(
                "must be at most {MAX_SENTINEL_CLUSTER_NAME} characters for topology Sentinel, got {}: the Sentinel StatefulSet <name>-sentinel labels each pod controller-revision-hash=<name>-sentinel-<hash of up to 10 characters>, and a label value is at most 63 characters",
                name.len()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_that_fit_every_derived_object_pass() {
        assert!(validate_name("demo").is_ok());
        assert!(validate_name("a").is_ok());
        assert!(validate_name(&"a".repeat(MAX_CLUSTER_NAME)).is_ok());
        assert!(validate_name("shop-cache-2").is_ok());
    }

    #[test]
    fn a_name_too_long_for_the_revision_label_names_the_limit() {
        let err = validate_name(&"a".repeat(MAX_CLUSTER_NAME + 1)).unwrap_err();
        assert_eq!(err.path, "metadata.name");
        assert!(
            err.message.contains("at most 52 characters, got 53"),
            "{}",
            err.message
        );
        assert!(
            err.message.contains("controller-revision-hash"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_sentinel_cluster_name_leaves_room_for_the_sentinel_statefulset() {
        assert_eq!(MAX_SENTINEL_CLUSTER_NAME, 43);
        let fits = "a".repeat(MAX_SENTINEL_CLUSTER_NAME);
        let long = "a".repeat(MAX_SENTINEL_CLUSTER_NAME + 1);
        assert!(validate_name_for_topology(&fits, Topology::Sentinel).is_ok());
        let err = validate_name_for_topology(&long, Topology::Sentinel).unwrap_err();
        assert_eq!(err.path, "metadata.name");
        assert!(
            err.message
                .contains("at most 43 characters for topology Sentinel, got 44"),
            "{}",
            err.message
        );
        for other in [
            Topology::Standalone,
            Topology::Replication,
            Topology::Cluster,
        ] {
            assert!(validate_name_for_topology(&long, other).is_ok(), "{other}");
        }
        // The general rules still apply first.
        let err = validate_name_for_topology("1cache", Topology::Sentinel).unwrap_err();
        assert!(err.message.contains("DNS-1035"), "{}", err.message);
    }

    #[test]
    fn a_name_no_service_can_carry_is_refused() {
        for name in ["1cache", "cache.eu", "cache-", "Cache"] {
            let err = validate_name(name).unwrap_err();
            assert!(err.message.contains("DNS-1035"), "{name}: {}", err.message);
        }
    }
}
