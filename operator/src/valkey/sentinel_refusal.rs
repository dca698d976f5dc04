//! The refusals of a Sentinel the operator acts on, read from a rejected
//! command, and the redaction of `SENTINEL SET`'s values in them.

use logbook_core::replies::ProbeError;

/// The refusals of a Sentinel a caller acts on, read from a
/// [`ProbeError::Rejected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentinelRefusal {
    /// `ERR No such master with that name`: the Sentinel does not monitor
    /// the name (not yet, or no more).
    UnknownMaster,
    /// `INPROG Failover already in progress`.
    FailoverInProgress,
    /// `NOGOODSLAVE No suitable replica to promote`: no replica is
    /// connected, recent and of non-zero priority.
    NoGoodReplica,
    /// `NOQUORUM ...`: too few Sentinels reachable for the quorum or for a
    /// majority.
    NoQuorum,
}

impl SentinelRefusal {
    /// Which refusal `err` is; `None` for any other error. Codes and text
    /// are compared case-insensitively.
    pub fn of(err: &ProbeError) -> Option<SentinelRefusal> {
        let ProbeError::Rejected { message, .. } = err else {
            return None;
        };
        let lower = message.to_ascii_lowercase();
        // `trim_matches` also reads the redis crate's rendering
        // (`"INPROG": ...`) should a Rejected come from elsewhere.
        let code = lower
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_matches(|c| c == '"' || c == ':');
        match code {
            "inprog" => Some(SentinelRefusal::FailoverInProgress),
            "nogoodslave" | "nogoodreplica" => Some(SentinelRefusal::NoGoodReplica),
            "noquorum" => Some(SentinelRefusal::NoQuorum),
            _ if lower.contains("no such master") || lower.contains("no such primary") => {
                Some(SentinelRefusal::UnknownMaster)
            }
            _ => None,
        }
    }
}

/// Keys of `SENTINEL SET` whose values are secrets.
const SECRET_KEYS: &[&str] = &["auth-pass"];

/// Replaces every value of `settings` in a refusal's text by `***`: quoted
/// ones as the server echoes them, and secrets wherever they appear.
pub(super) fn redact(err: ProbeError, settings: &[(&str, String)]) -> ProbeError {
    let ProbeError::Rejected {
        addr,
        command,
        mut message,
    } = err
    else {
        return err;
    };
    for (key, value) in settings {
        if value.is_empty() {
            continue;
        }
        message = message.replace(&format!("'{value}'"), "'***'");
        if SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str()) {
            message = message.replace(value.as_str(), "***");
        }
    }
    ProbeError::Rejected {
        addr,
        command,
        message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn addr() -> std::net::SocketAddr {
        std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 26379))
    }

    fn rejected(message: &str) -> ProbeError {
        ProbeError::Rejected {
            addr: addr(),
            command: "SENTINEL FAILOVER",
            message: message.to_owned(),
        }
    }

    #[test]
    fn refusals_are_told_apart() {
        let cases = [
            (
                "INPROG Failover already in progress",
                Some(SentinelRefusal::FailoverInProgress),
            ),
            (
                "NOGOODSLAVE No suitable replica to promote",
                Some(SentinelRefusal::NoGoodReplica),
            ),
            (
                "NOQUORUM 2 usable Sentinels. Not enough",
                Some(SentinelRefusal::NoQuorum),
            ),
            (
                "ERR No such master with that name",
                Some(SentinelRefusal::UnknownMaster),
            ),
            (
                "ResponseError: No such master with that name",
                Some(SentinelRefusal::UnknownMaster),
            ),
            (
                "\"INPROG\": Failover already in progress",
                Some(SentinelRefusal::FailoverInProgress),
            ),
            ("ERR Duplicate master name.", None),
            ("", None),
        ];
        for (message, expected) in cases {
            assert_eq!(
                SentinelRefusal::of(&rejected(message)),
                expected,
                "{message}"
            );
        }
        assert_eq!(
            SentinelRefusal::of(&ProbeError::Refused { addr: addr() }),
            None
        );
    }

    #[test]
    fn set_refusals_never_show_values() {
        let settings = [
            ("quorum", "0".to_owned()),
            ("auth-pass", "hunter2".to_owned()),
        ];
        let err = redact(
            rejected("ERR Invalid argument '0' for SENTINEL SET 'quorum' hunter2"),
            &settings,
        );
        let text = err.to_string();
        assert!(!text.contains("'0'"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("'quorum'"), "{text}");
    }
}
