//! Credentials as the object builders need them: the Valkey password as
//! a type that cannot be printed by accident, and the Sentinels' user.
//!
//! It comes from the cluster's Secret and must never reach a log line, an
//! error message or the journal: `Debug` and `Display` print `***`, there is
//! no serde impl, and only the client reads the secret, to send `AUTH`.

use std::fmt;

/// The Sentinels' own ACL user on the data nodes (the Sentinels
/// authenticate as it, and the Valkey client sets it on them).
pub const SENTINEL_USER: &str = "logbook-sentinel";

/// A Valkey password. Formatting it prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a secret read from the Secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    /// The secret, for the `AUTH` command only: this module's client's, and
    /// the benches' write probe (the `logbook-bench` crate), which sends its
    /// own.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_secret() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p}"), "***");
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(!format!("{:#?}", Some(p.clone())).contains("hunter2"));
        assert_eq!(p.expose(), "hunter2");
    }
}
