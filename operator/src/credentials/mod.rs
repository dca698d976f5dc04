//! Credentials as the operator holds them: a [`Password`] that never
//! prints (the core's, which the object builders use too), and the keyed
//! fingerprints (HMAC-SHA-256 under a cluster's [`FingerprintKey`]) that
//! the journal, statuses and exports show in its place. The fingerprints
//! need `ring` and the system's random source, so they stay here, out
//! of the core.

mod fingerprint;

pub use fingerprint::{
    FINGERPRINT_KEY_LEN, FingerprintKey, FingerprintKeyError, is_unkeyed, unkeyed_digest,
    unkeyed_password_fingerprint,
};
pub use logbook_core::credentials::{Password, SENTINEL_USER};

/// The fingerprint key in a cluster's internal Secret, when it has a
/// usable one (none below [`FINGERPRINT_KEY_LEN`] bytes).
pub fn fingerprint_key_in(
    secret: Option<&k8s_openapi::api::core::v1::Secret>,
) -> Option<FingerprintKey> {
    let bytes = logbook_core::resources::internal_users::fingerprint_key_bytes_in(secret)?;
    FingerprintKey::from_bytes(bytes).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    use logbook_core::resources::internal_users::FINGERPRINT_KEY;

    use super::*;

    fn secret_with(key: &[u8]) -> Secret {
        Secret {
            data: Some(BTreeMap::from([(
                FINGERPRINT_KEY.to_owned(),
                ByteString(key.to_vec()),
            )])),
            ..Secret::default()
        }
    }

    #[test]
    fn the_internal_secrets_key_is_used_and_a_short_one_is_not() {
        let key = [9u8; FINGERPRINT_KEY_LEN];
        let read =
            fingerprint_key_in(Some(&secret_with(&key))).map(|k| k.password(&Password::new("x")));
        let want = FingerprintKey::from_bytes(&key)
            .ok()
            .map(|k| k.password(&Password::new("x")));
        assert!(read.is_some());
        assert_eq!(read, want);
        assert!(fingerprint_key_in(Some(&secret_with(&key[..16]))).is_none());
        assert!(fingerprint_key_in(None).is_none());
    }
}
