//! `Timestamp`: the journal's wall-clock type.
//!
//! Stored as signed microseconds since the Unix epoch (a zig-zag varint in
//! the frame, 9 bytes for present-day values) because an RFC 3339 string
//! would cost ~30 bytes per event and the byte budget per observation is
//! tight. Microseconds keep ordering of events appended in the same
//! millisecond meaningful. This module does not read the clock except in
//! [`Timestamp::now`], which only the writing shell calls.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A UTC instant, microseconds since 1970-01-01T00:00:00Z.
///
/// Persisted as a bare `i64`; never change the unit.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The Unix epoch, used as a neutral default in projections.
    pub const EPOCH: Self = Self(0);

    /// The current wall-clock time. Only the writing shell calls this; pure
    /// code takes time as an argument.
    #[must_use]
    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    /// Converts from chrono, saturating far outside the representable range
    /// (±292,000 years) instead of failing.
    #[must_use]
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        Self(at.timestamp_micros())
    }

    /// Converts to chrono; `None` only for values chrono cannot represent
    /// (possible when reading a corrupt or hostile journal).
    #[must_use]
    pub fn to_datetime(self) -> Option<DateTime<Utc>> {
        Utc.timestamp_micros(self.0).single()
    }

    /// Microseconds since the Unix epoch.
    #[must_use]
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Milliseconds elapsed from `earlier` to `self`, saturating, negative when
    /// `earlier` is later (clocks of different writers may disagree).
    #[must_use]
    pub const fn millis_since(self, earlier: Self) -> i64 {
        self.0.saturating_sub(earlier.0) / 1000
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Self::from_datetime(at)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_datetime() {
            Some(at) => write!(
                f,
                "{}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            None => write!(f, "@{}us", self.0),
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_chrono() {
        let at = Utc
            .with_ymd_and_hms(2025, 6, 1, 12, 30, 0)
            .single()
            .unwrap();
        let ts = Timestamp::from(at);
        assert_eq!(ts.to_datetime(), Some(at));
        assert_eq!(ts.to_string(), "2025-06-01T12:30:00.000000Z");
    }

    #[test]
    fn unrepresentable_values_do_not_panic() {
        assert_eq!(Timestamp(i64::MAX).to_datetime(), None);
        assert!(Timestamp(i64::MIN).to_string().starts_with('@'));
        assert_eq!(
            Timestamp(i64::MAX).millis_since(Timestamp(i64::MIN)),
            i64::MAX / 1000
        );
    }
}
