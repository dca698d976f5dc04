//! How a container ended, as journaled: its termination reason, exit
//! code and the last lines of what it said, bounded and with anything
//! that looks like a credential redacted (a message is another program's
//! text: Valkey echoes the configuration line it refused, and a restore
//! may quote a URL).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use logbook_journal::Event;

/// The most characters of a container's message journaled.
pub(super) const MESSAGE_LIMIT: usize = 300;

/// What replaces a value that looks like a credential.
const REDACTED: &str = "<redacted>";

/// The events for a failure journaled per pod, edge-triggered: `event`
/// of each listed pod (`pods`: every one the selector lists) whose
/// failure (`failure`, given what the journal holds of it) differs from
/// `known`, and a cleared one for each pod `known` holds that is not
/// listed any more.
pub(super) fn per_pod_failures(
    known: &BTreeMap<String, String>,
    pods: &[Pod],
    failure: impl Fn(&Pod, Option<&String>) -> Option<String>,
    event: impl Fn(String, Option<String>) -> Event,
) -> Vec<Event> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for pod in pods {
        let Some(name) = pod.metadata.name.clone() else {
            continue;
        };
        let now = failure(pod, known.get(&name));
        if known.get(&name) != now.as_ref() {
            out.push(event(name.clone(), now));
        }
        seen.insert(name);
    }
    for name in known.keys().filter(|n| !seen.contains(*n)) {
        out.push(event(name.clone(), None));
    }
    out
}

/// `<reason>, exit code <n>: <the message's last lines>`: the last
/// `lines` non-empty lines of what the container said (its termination
/// message, or the tail of its log under `FallbackToLogsOnError`),
/// joined by ` / `, bounded, credentials redacted.
pub(super) fn describe(t: &ContainerStateTerminated, lines: usize) -> String {
    let reason = t.reason.as_deref().unwrap_or("Error");
    let mut out = format!("{}, exit code {}", bounded(&redact(reason)), t.exit_code);
    let mut last: Vec<String> = t
        .message
        .as_deref()
        .unwrap_or_default()
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(lines)
        .map(|l| redact(without_log_prefix(l)))
        .collect();
    last.reverse();
    if !last.is_empty() {
        out.push_str(": ");
        out.push_str(&bounded(&last.join(" / ")));
    }
    out
}

/// A Valkey log line without its prefix (`22829:S 27 Nov 2026
/// 03:04:35.849 # `: process, role, time, level): what it says is the
/// rest. Any other line as it is.
fn without_log_prefix(line: &str) -> &str {
    let parts: Vec<&str> = line.splitn(7, ' ').collect();
    let [process, day, _, year, time, level, rest] = parts.as_slice() else {
        return line;
    };
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let prefixed = process
        .split_once(':')
        .is_some_and(|(pid, role)| numeric(pid) && role.len() == 1)
        && numeric(day)
        && numeric(year)
        && time.contains(':')
        && ["#", "*", "-", "."].contains(level);
    if prefixed { rest } else { line }
}

/// `text` cut to [`MESSAGE_LIMIT`] characters.
pub(super) fn bounded(text: &str) -> String {
    match text.char_indices().nth(MESSAGE_LIMIT) {
        Some((cut, _)) => format!("{}…", text.get(..cut).unwrap_or(text)),
        None => text.to_owned(),
    }
}

/// Words naming a credential: the value after one (`key=value`,
/// `key: value`) is redacted.
const CREDENTIAL_WORDS: [&str; 7] = [
    "secret",
    "password",
    "passwd",
    "token",
    "credential",
    "signature",
    "authorization",
];

/// `text` with anything that looks like a credential replaced: the value
/// after a word naming one, an AWS access key id, and any long run of
/// key-like characters (a secret key, a token, a signature).
fn redact(text: &str) -> String {
    if let Some(echo) = redact_config_echo(text) {
        return echo;
    }
    let mut out: Vec<String> = Vec::new();
    let mut redact_next = false;
    for word in text.split(' ') {
        if redact_next && !word.is_empty() {
            out.push(REDACTED.to_owned());
            redact_next = false;
            continue;
        }
        let lower = word.to_ascii_lowercase();
        let names_credential = CREDENTIAL_WORDS.iter().any(|w| lower.contains(w));
        if names_credential && let Some((key, _)) = word.split_once('=') {
            out.push(format!("{key}={REDACTED}"));
            continue;
        }
        if names_credential && word.ends_with(':') {
            // `key: value`: the next word is the value. (A bare word is
            // prose — "the restore Secret has no …" — and kept.)
            redact_next = true;
            out.push(word.to_owned());
            continue;
        }
        if looks_like_key(word) {
            out.push(REDACTED.to_owned());
            continue;
        }
        out.push(word.to_owned());
    }
    out.join(" ")
}

/// Words in the name of a Valkey directive whose arguments may hold a
/// credential (`requirepass`, `masterauth`, `primaryauth`, `user`, the
/// TLS key files' passphrases).
const SECRET_DIRECTIVE_WORDS: [&str; 4] = ["pass", "auth", "user", "acl"];

/// A line where Valkey echoes the configuration directive it refused
/// (`>>> 'requirepass …'`): the directive kept, its arguments redacted
/// when its name says they may hold a credential. `None` for any other
/// line.
fn redact_config_echo(text: &str) -> Option<String> {
    let quoted = text.strip_prefix(">>> '")?;
    let directive = quoted.split([' ', '\'']).next().unwrap_or_default();
    let lower = directive.to_ascii_lowercase();
    SECRET_DIRECTIVE_WORDS
        .iter()
        .any(|w| lower.contains(w))
        .then(|| format!(">>> '{directive} {REDACTED}'"))
}

/// An AWS access key id (`AKIA…`, `ASIA…`), or 24 characters and more
/// of the alphabet keys and tokens are written in, with a digit — not a
/// word, a path or a host name.
fn looks_like_key(word: &str) -> bool {
    let word = word.trim_matches(|c: char| "\"'(),;.".contains(c));
    let key_chars = word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=_-".contains(c));
    let access_key_id = (word.starts_with("AKIA") || word.starts_with("ASIA"))
        && word.len() >= 16
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let long_token = word.len() >= 24
        && key_chars
        && word.chars().any(|c| c.is_ascii_digit())
        && !word.contains('/');
    access_key_id || long_token
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ended(message: &str) -> ContainerStateTerminated {
        ContainerStateTerminated {
            exit_code: 1,
            reason: Some("Error".to_owned()),
            message: Some(message.to_owned()),
            ..ContainerStateTerminated::default()
        }
    }

    #[test]
    fn the_last_lines_are_kept_in_order() {
        let valkey = "*** FATAL CONFIG FILE ERROR (Version 9.1.2) ***\n\
            Reading the configuration file, at line 2\n\
            >>> 'maxmemory-policy nonsense'\n\
            argument(s) must be one of the following: volatile-lru, noeviction\n\n";
        assert_eq!(
            describe(&ended(valkey), 2),
            "Error, exit code 1: >>> 'maxmemory-policy nonsense' / \
             argument(s) must be one of the following: volatile-lru, noeviction"
        );
        assert_eq!(
            describe(&ended(valkey), 1),
            "Error, exit code 1: argument(s) must be one of the following: volatile-lru, noeviction"
        );
    }

    #[test]
    fn valkey_log_prefixes_are_left_out() {
        let said = "22829:S 27 Nov 2026 03:04:35.849 # Wrong signature trying to load DB from file\n\
            22829:S 27 Nov 2026 03:04:35.849 # Fatal error loading the DB. Exiting.\n";
        assert_eq!(
            describe(&ended(said), 2),
            "Error, exit code 1: Wrong signature trying to load DB from file / \
             Fatal error loading the DB. Exiting."
        );
        assert_eq!(without_log_prefix("1:M a b c d # e"), "1:M a b c d # e");
    }

    #[test]
    fn a_refused_directive_that_may_hold_a_credential_is_redacted() {
        for (line, kept) in [
            (
                ">>> 'requirepass hunter2 extra'",
                ">>> 'requirepass <redacted>'",
            ),
            (">>> 'masterauth hunter2'", ">>> 'masterauth <redacted>'"),
            (
                ">>> 'user bob on >hunter2 ~* +@all'",
                ">>> 'user <redacted>'",
            ),
            (
                ">>> 'maxmemory-policy nonsense'",
                ">>> 'maxmemory-policy nonsense'",
            ),
        ] {
            let said = describe(&ended(&format!("{line}\nBad directive")), 2);
            assert!(said.contains(kept), "{said}");
            assert!(!said.contains("hunter2"), "{said}");
        }
    }
}
