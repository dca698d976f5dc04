//! What the decisions know of certificates: where one comes from, and
//! when one is due for renewal.

use std::time::Duration;

use logbook_journal::Timestamp;

/// [`logbook_journal::CertificateRecord::source`] of a Secret the user keeps.
pub const SOURCE_SECRET: &str = "secret";
/// [`logbook_journal::CertificateRecord::source`] of a cert-manager Certificate.
pub const SOURCE_CERT_MANAGER: &str = "cert-manager";
/// [`logbook_journal::CertificateRecord::source`] of the operator's own CA.
pub const SOURCE_INTERNAL: &str = "internal";

/// How long a leaf certificate is valid: 90 days, renewed after 60 (see
/// [`needs_renewal`]).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(90 * 24 * 60 * 60);

/// Whether a certificate valid until `not_after`, issued for `validity`,
/// should be replaced at `now`: once less than a third of `validity`
/// remains (exactly a third is not yet due), and always once expired. For
/// [`LEAF_VALIDITY`] that is 60 days after issue, leaving 30 days to retry.
#[must_use]
pub fn needs_renewal(not_after: Timestamp, now: Timestamp, validity: Duration) -> bool {
    // i128: neither the difference of two i64 nor 3× it can overflow.
    let remaining = i128::from(not_after.as_micros()) - i128::from(now.as_micros());
    let validity = i128::try_from(validity.as_micros()).unwrap_or(i128::MAX);
    remaining <= 0 || remaining.saturating_mul(3) < validity
}
