//! Credentials as the operator holds them: a [`Password`] that never
//! prints, and the keyed fingerprints (HMAC-SHA-256 under a cluster's
//! [`FingerprintKey`]) that the journal, statuses and exports show in
//! its place. Pure: the Valkey client (`valkey`) and the object builders
//! (`resources`) both use it, and neither depends on the other for it.

mod fingerprint;
mod password;

pub use fingerprint::{
    FINGERPRINT_KEY_LEN, FingerprintKey, FingerprintKeyError, is_unkeyed, unkeyed_digest,
    unkeyed_password_fingerprint,
};
pub use password::Password;

/// The Sentinels' own ACL user on the data nodes (the Sentinels
/// authenticate as it, and the Valkey client sets it on them).
pub const SENTINEL_USER: &str = "logbook-sentinel";
