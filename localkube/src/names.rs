//! Object names and metadata values: DNS-1123 validation with the real
//! server's messages, `generateName` suffixes, timestamps and uids.

use crate::error::cause;
use crate::schema::Cause;

/// Which rule a kind's names follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 subdomain (most kinds).
    Subdomain,
    /// DNS-1123 label (namespaces).
    Label,
    /// DNS-1035 label (services: must start with a letter).
    Label1035,
    /// Any path segment (RBAC kinds).
    PathSegment,
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// Lower case alphanumerics and '-', alphanumeric at both ends, of any
/// length.
fn label_chars(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

fn is_label(s: &str) -> bool {
    s.len() <= 63 && label_chars(s)
}

/// Whether `s` is a DNS-1123 subdomain: at most 253 characters of
/// dot-separated labels. Kubernetes caps only the whole name
/// (`IsDNS1123Subdomain`), not each part: a Secret named with a part of 64
/// characters is valid.
pub fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(label_chars)
}

/// The field errors of `name` under `rule` (empty when valid).
pub fn validate_name(name: &str, rule: NameRule) -> Vec<Cause> {
    let invalid = |msg: &str| {
        vec![cause(
            "FieldValueInvalid",
            format!("Invalid value: \"{name}\": {msg}"),
            "metadata.name",
        )]
    };
    match rule {
        NameRule::Subdomain if !is_subdomain(name) => {
            if name.len() > 253 {
                invalid("must be no more than 253 characters")
            } else {
                invalid(SUBDOMAIN_MSG)
            }
        }
        NameRule::Label if !is_label(name) => {
            if name.len() > 63 {
                invalid("must be no more than 63 characters")
            } else {
                invalid(LABEL_MSG)
            }
        }
        NameRule::Label1035
            if !is_label(name) || !name.as_bytes().first().is_some_and(u8::is_ascii_lowercase) =>
        {
            if name.len() > 63 {
                invalid("must be no more than 63 characters")
            } else {
                invalid(LABEL1035_MSG)
            }
        }
        NameRule::PathSegment if name == "." || name == ".." => {
            invalid(&format!("may not be '{name}'"))
        }
        NameRule::PathSegment if name.contains('/') || name.contains('%') => {
            invalid("may not contain '/' or '%'")
        }
        _ => Vec::new(),
    }
}

/// Five random lowercase alphanumerics, as `generateName` appends
/// (the real server leaves out vowels and look-alikes the same way).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(5)
        .map(|b| {
            let i = usize::from(*b) % ALPHABET.len();
            char::from(ALPHABET.get(i).copied().unwrap_or(b'x'))
        })
        .collect()
}

/// A fresh uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// RFC 3339 with seconds, as the real server's timestamps.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now, as [`timestamp`].
pub fn now() -> String {
    timestamp(chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("a.b-c", NameRule::Subdomain).is_empty());
        // Only the whole subdomain is capped, as in Kubernetes.
        let long_part = format!("{}.conn", "a".repeat(64));
        assert!(validate_name(&long_part, NameRule::Subdomain).is_empty());
        assert!(!validate_name(&"a".repeat(254), NameRule::Subdomain).is_empty());
        assert!(!validate_name(&"a".repeat(64), NameRule::Label).is_empty());
        assert!(!validate_name("A", NameRule::Subdomain).is_empty());
        assert!(!validate_name("a.b", NameRule::Label).is_empty());
        assert!(!validate_name("1a", NameRule::Label1035).is_empty());
        assert!(validate_name("system:foo", NameRule::PathSegment).is_empty());
        assert_eq!(random_suffix().len(), 5);
    }
}
