//! Syntax of Kubernetes names, label keys and values, and Secret keys.
//!
//! This module owns the checks only; each returns `Err(reason)` with a short
//! phrase the caller puts into a [`FieldError`](super::FieldError). The rules
//! are Kubernetes' own (`k8s.io/apimachinery/pkg/util/validation`).

/// A DNS-1123 label: 1..=63 of `[a-z0-9-]`, alphanumeric at both ends.
pub fn check_dns_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 63 {
        return Err(format!("must be at most 63 characters, got {}", name.len()));
    }
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let ends_ok = bytes.first().is_some_and(alnum) && bytes.last().is_some_and(alnum);
    if !ends_ok || !bytes.iter().all(|b| alnum(b) || *b == b'-') {
        return Err(format!(
            "{name:?} must consist of lower case letters, digits and '-', and start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters of dot-separated labels.
pub fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "must be at most 253 characters, got {}",
            name.len()
        ));
    }
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let chars_ok = bytes.iter().all(|b| alnum(b) || *b == b'-' || *b == b'.');
    let ends_ok = bytes.first().is_some_and(alnum) && bytes.last().is_some_and(alnum);
    let parts_ok = name.split('.').all(|part| {
        let p = part.as_bytes();
        p.first().is_some_and(alnum) && p.last().is_some_and(alnum)
    });
    if !(chars_ok && ends_ok && parts_ok) {
        return Err(format!(
            "{name:?} is not a valid DNS-1123 subdomain (lower case letters, digits, '-' and '.', each part starting and ending with a letter or digit)"
        ));
    }
    Ok(())
}

/// The name part of a qualified name: 1..=63 of `[A-Za-z0-9-_.]`,
/// alphanumeric at both ends.
fn check_qualified_name_part(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name part must not be empty".into());
    }
    if name.len() > 63 {
        return Err(format!(
            "name part must be at most 63 characters, got {}",
            name.len()
        ));
    }
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    let ends_ok = bytes.first().is_some_and(alnum) && bytes.last().is_some_and(alnum);
    if !ends_ok
        || !bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "name part {name:?} must consist of letters, digits, '-', '_' or '.', and start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain.
pub fn check_qualified_name(key: &str) -> Result<(), String> {
    match key.split_once('/') {
        Some((prefix, name)) => {
            check_dns_subdomain(prefix).map_err(|e| format!("prefix {e}"))?;
            check_qualified_name_part(name)
        }
        None => check_qualified_name_part(key),
    }
}

/// A label value: empty, or like a qualified name's name part.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    check_qualified_name_part(value).map_err(|e| e.replacen("name part", "value", 1))
}

/// A key in a Secret's or ConfigMap's data: 1..=253 of `[-._a-zA-Z0-9]`,
/// and not `.` or `..`.
pub fn check_secret_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("must not be empty".into());
    }
    if key.len() > 253 {
        return Err(format!("must be at most 253 characters, got {}", key.len()));
    }
    if key == "." || key == ".." {
        return Err(format!("{key:?} is not a valid key"));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "{key:?} must consist of letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn dns_labels() {
        assert!(check_dns_label("demo").is_ok());
        assert!(check_dns_label("a-1").is_ok());
        for bad in ["", "-a", "a-", "A", "a.b", &"a".repeat(64)] {
            assert!(check_dns_label(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dns_subdomains() {
        for good in ["demo", "demo-connection", "a.b.c", "fast-ssd", "1abc"] {
            assert!(check_dns_subdomain(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "Demo",
            "a..b",
            ".a",
            "a.",
            "a_b",
            "a b",
            "a.-b",
            &"a".repeat(254),
        ] {
            assert!(check_dns_subdomain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn qualified_names_and_values() {
        for good in ["app", "team", "example.com/team", "a_b.c-d", "A1"] {
            assert!(check_qualified_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "Ex.com/a",
            "a/b/c",
            "-a",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(check_qualified_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("v1.2_3").is_ok());
        assert!(check_label_value("a b").is_err());
        assert!(check_label_value(&"a".repeat(64)).is_err());
    }

    #[test]
    fn secret_keys() {
        assert!(check_secret_key("password").is_ok());
        assert!(check_secret_key("tls.crt").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(check_secret_key(bad).is_err(), "{bad:?}");
        }
    }
}
