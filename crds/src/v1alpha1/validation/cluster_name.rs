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

use super::{FieldError, FieldErrorKind};

/// The longest ValkeyCluster name: the StatefulSet's controller labels
/// each pod `controller-revision-hash: <name>-<hash>`, the hash up to ten
/// characters (a 32-bit hash in decimal), and a label value is at most 63
/// characters.
pub const MAX_CLUSTER_NAME: usize = 52;

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
    fn a_name_no_service_can_carry_is_refused() {
        for name in ["1cache", "cache.eu", "cache-", "Cache"] {
            let err = validate_name(name).unwrap_err();
            assert!(err.message.contains("DNS-1035"), "{name}: {}", err.message);
        }
    }
}
