//! Fingerprints of secrets, for the journal, statuses, Events and exports:
//! a password's, and a user's `ACL LIST` line's (which holds the SHA-256
//! of each of the user's passwords, unsalted).
//!
//! Each is an HMAC-SHA-256 keyed with the cluster's fingerprint key (32
//! random bytes the operator keeps in the cluster's Secret
//! `<cluster>-internal`, key `fingerprint-key`), truncated to 16 hex
//! digits. Without the key a fingerprint confirms no guess: whoever reads
//! the journal or a status cannot test a weak password offline, as they
//! could against the unkeyed SHA-256 an earlier version journaled. The
//! key never leaves the Secret and this process: it is in no journal,
//! log, Event or export, and its `Debug` prints `***`.
//!
//! Why 16 hex digits (64 bits) rather than the 8 of before: with the key
//! secret, the length gives a guesser nothing; what it bounds is the
//! chance that two different passwords share a fingerprint, which would
//! hide a rotation, or let a sync apply a password the journal never
//! decided on (2^-64 per change rather than 2^-32). It also tells a keyed
//! fingerprint from an unkeyed one ([`is_unkeyed`]).
//!
//! A journal written before the key existed holds unkeyed fingerprints
//! (8 hex digits of a SHA-256). [`unkeyed_password_fingerprint`] and
//! [`unkeyed_digest`] recompute them in memory only, to recognise the same
//! secret once (`FingerprintsRekeyed`); nothing unkeyed is journaled again.

use std::fmt;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use super::Password;

/// Bytes of a fingerprint key the operator generates; a shorter one is not
/// used.
pub const FINGERPRINT_KEY_LEN: usize = 32;

/// Hex digits of a keyed fingerprint (64 bits).
const KEYED_HEX_DIGITS: usize = 16;

/// Hex digits of the unkeyed fingerprints and digests an earlier version
/// journaled.
const UNKEYED_HEX_DIGITS: usize = 8;

/// What a password's HMAC is computed over, after this prefix: kept apart
/// from an `ACL LIST` line's, so that a password's fingerprint is never
/// some line's digest.
const PASSWORD_CONTEXT: &[u8] = b"logbook-password-fingerprint:";

/// What an `ACL LIST` line's HMAC is computed over, after this prefix.
const ACL_LINE_CONTEXT: &[u8] = b"logbook-acl-line-digest:";

/// Why a fingerprint key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintKeyError {
    /// The key is shorter than [`FINGERPRINT_KEY_LEN`] bytes (empty, or
    /// cut by hand).
    #[error("the fingerprint key has {len} bytes, fewer than the {FINGERPRINT_KEY_LEN} it needs")]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// The system's random source failed while generating a key.
    #[error("the system's random source failed while generating a fingerprint key")]
    Random,
}

/// A cluster's fingerprint key. Formatting it prints `***`.
#[derive(Clone)]
pub struct FingerprintKey(hmac::Key);

impl FingerprintKey {
    /// The key in `bytes` (as read from its Secret).
    ///
    /// # Errors
    ///
    /// [`FingerprintKeyError::TooShort`] below [`FINGERPRINT_KEY_LEN`]
    /// bytes: no fingerprint is computed with a weak key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FingerprintKeyError> {
        if bytes.len() < FINGERPRINT_KEY_LEN {
            return Err(FingerprintKeyError::TooShort { len: bytes.len() });
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// [`FINGERPRINT_KEY_LEN`] fresh random bytes for a new key, from the
    /// system's random source.
    ///
    /// # Errors
    ///
    /// [`FingerprintKeyError::Random`] when the source fails.
    pub fn generate() -> Result<Vec<u8>, FingerprintKeyError> {
        let mut bytes = vec![0u8; FINGERPRINT_KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| FingerprintKeyError::Random)?;
        Ok(bytes)
    }

    /// The fingerprint of `password`: 16 hex digits of
    /// HMAC-SHA-256(key, prefix ‖ password).
    #[must_use]
    pub fn password(&self, password: &Password) -> String {
        self.mac(PASSWORD_CONTEXT, password.expose().as_bytes())
    }

    /// The digest of one user's `ACL LIST` line: 16 hex digits of
    /// HMAC-SHA-256(key, prefix ‖ line). It changes with the user's rules
    /// and password hashes, and without the key reveals neither.
    #[must_use]
    pub fn acl_line(&self, line: &str) -> String {
        self.mac(ACL_LINE_CONTEXT, line.as_bytes())
    }

    /// Whether `fingerprint`, as journaled, names `password`: compared
    /// with the keyed fingerprint, or, for one journaled before the key
    /// existed ([`is_unkeyed`]), with the unkeyed one.
    #[must_use]
    pub fn names(&self, fingerprint: &str, password: &Password) -> bool {
        if is_unkeyed(fingerprint) {
            unkeyed_password_fingerprint(password) == fingerprint
        } else {
            self.password(password) == fingerprint
        }
    }

    fn mac(&self, context: &[u8], data: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(context);
        ctx.update(data);
        hex_prefix(ctx.sign().as_ref(), KEYED_HEX_DIGITS)
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey(***)")
    }
}

/// Whether `fingerprint` is one an earlier version journaled without a key
/// (8 hex digits; a keyed one has 16).
#[must_use]
pub fn is_unkeyed(fingerprint: &str) -> bool {
    fingerprint.len() == UNKEYED_HEX_DIGITS
}

/// The unkeyed fingerprint an earlier version journaled for `password`
/// (8 hex digits of the SHA-256 of a fixed prefix and the password), to
/// recognise it; never to journal.
#[must_use]
pub fn unkeyed_password_fingerprint(password: &Password) -> String {
    unkeyed_digest(&format!(
        "logbook-password-fingerprint:{}",
        password.expose()
    ))
}

/// The unkeyed digest an earlier version journaled for an `ACL LIST` line
/// (8 hex digits of its SHA-256), to recognise it; never to journal.
#[must_use]
pub fn unkeyed_digest(line: &str) -> String {
    hex_prefix(&Sha256::digest(line.as_bytes()), UNKEYED_HEX_DIGITS)
}

/// The first `digits` hex digits of `bytes` (`digits` even).
fn hex_prefix(bytes: &[u8], digits: usize) -> String {
    bytes
        .iter()
        .take(digits / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn key(byte: u8) -> FingerprintKey {
        FingerprintKey::from_bytes(&[byte; FINGERPRINT_KEY_LEN]).unwrap()
    }

    #[test]
    fn the_same_key_and_password_give_the_same_fingerprint_and_another_password_another() {
        let k = key(7);
        let f = k.password(&Password::new("hunter2"));
        assert_eq!(f.len(), 16);
        assert!(
            f.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(f, key(7).password(&Password::new("hunter2")));
        assert_ne!(f, k.password(&Password::new("hunter3")));
        assert!(!f.contains("hunter2"));
    }

    #[test]
    fn another_key_gives_another_fingerprint() {
        let p = Password::new("hunter2");
        assert_ne!(key(7).password(&p), key(8).password(&p));
        assert_ne!(key(7).acl_line("user a on"), key(8).acl_line("user a on"));
        let fresh = FingerprintKey::from_bytes(&FingerprintKey::generate().unwrap()).unwrap();
        assert_ne!(fresh.password(&p), key(7).password(&p));
    }

    /// What a reader of the journal without the key can compute from a
    /// guess: the unkeyed fingerprints of before, and plain hashes of the
    /// password. None of them is the keyed fingerprint, nor a prefix of
    /// it, nor is the fingerprint in a SHA-256 of the guess.
    #[test]
    fn the_fingerprint_reveals_nothing_without_the_key() {
        let p = Password::new("hunter2");
        let keyed = key(7).password(&p);
        let sha = |s: &str| hex_prefix(&Sha256::digest(s.as_bytes()), 64);
        let guesses = [
            unkeyed_password_fingerprint(&p),
            sha("hunter2"),
            sha("logbook-password-fingerprint:hunter2"),
            // An HMAC whose key is empty, zero, or the password itself.
            FingerprintKey(hmac::Key::new(hmac::HMAC_SHA256, b"")).password(&p),
            key(0).password(&p),
            FingerprintKey(hmac::Key::new(hmac::HMAC_SHA256, b"hunter2")).password(&p),
        ];
        for guess in &guesses {
            assert!(!guess.starts_with(&keyed), "{guess} gives {keyed} away");
            assert!(
                !keyed.starts_with(guess.as_str()),
                "{guess} gives {keyed} away"
            );
        }
        // The fingerprint of a password is never the digest of a line
        // made of it.
        assert_ne!(key(7).acl_line("hunter2"), keyed);
    }

    #[test]
    fn it_is_hmac_sha256_as_rfc_4231_says() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for
        // nothing?". The prefix is part of the data here.
        let k = FingerprintKey(hmac::Key::new(hmac::HMAC_SHA256, b"Jefe"));
        let mut ctx = hmac::Context::with_key(&k.0);
        ctx.update(b"what do ya want ");
        ctx.update(b"for nothing?");
        assert_eq!(
            hex_prefix(ctx.sign().as_ref(), 64),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            k.mac(b"what do ya want ", b"for nothing?"),
            "5bdcc146bf60754e"
        );
    }

    #[test]
    fn a_short_key_is_refused_and_a_key_never_printed() {
        for len in [0, 1, FINGERPRINT_KEY_LEN - 1] {
            let err = FingerprintKey::from_bytes(&vec![1; len]).unwrap_err();
            assert!(
                err.to_string().contains(&format!("has {len} bytes")),
                "{err}"
            );
        }
        let bytes = FingerprintKey::generate().unwrap();
        assert_eq!(bytes.len(), FINGERPRINT_KEY_LEN);
        assert_ne!(bytes, FingerprintKey::generate().unwrap());
        let k = FingerprintKey::from_bytes(&bytes).unwrap();
        assert_eq!(format!("{k:?}"), "FingerprintKey(***)");
        assert_eq!(format!("{:?}", Some(k)), "Some(FingerprintKey(***))");
    }

    #[test]
    fn a_fingerprint_journaled_unkeyed_is_still_recognised() {
        let k = key(7);
        let p = Password::new("hunter2");
        let old = unkeyed_password_fingerprint(&p);
        assert!(is_unkeyed(&old));
        assert!(!is_unkeyed(&k.password(&p)));
        assert!(k.names(&old, &p));
        assert!(k.names(&k.password(&p), &p));
        assert!(!k.names(&old, &Password::new("hunter3")));
        assert!(!k.names(&key(8).password(&p), &p), "another key's is not");
        // What an earlier version journaled, byte for byte.
        assert_eq!(unkeyed_digest("abc"), "ba7816bf");
    }
}
