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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

// A bare i64 in binary formats (the journal, snapshots); RFC 3339 text in
// human-readable ones (JSON exports, YAML state dumps), read back from
// either the text or a number of microseconds.
impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Rfc3339(String),
            Micros(i64),
        }
        if !deserializer.is_human_readable() {
            return i64::deserialize(deserializer).map(Self);
        }
        match Text::deserialize(deserializer)? {
            Text::Micros(us) => Ok(Self(us)),
            Text::Rfc3339(text) => Self::parse(&text).map_err(serde::de::Error::custom),
        }
    }
}

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

    /// Parses RFC 3339 text (`2026-11-22T12:00:00Z`, any offset), or the
    /// `@<micros>us` form `Display` uses for instants chrono cannot show.
    ///
    /// # Errors
    /// A message naming the text when it is neither.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(us) = text.strip_prefix('@').and_then(|t| t.strip_suffix("us")) {
            return us
                .parse::<i64>()
                .map(Self)
                .map_err(|e| format!("invalid timestamp {text:?}: {e}"));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|at| Self::from_datetime(at.with_timezone(&Utc)))
            .map_err(|e| format!("invalid RFC 3339 time {text:?}: {e}"))
    }

    /// Microseconds since the Unix epoch.
    #[must_use]
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// `ms` milliseconds later, saturating.
    #[must_use]
    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms.saturating_mul(1000)))
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
    fn text_in_json_and_an_integer_in_the_journal() {
        let ts = Timestamp(1_764_000_000_123_456);
        let json = serde_json::to_string(&ts).unwrap();
        assert_eq!(json, "\"2025-11-24T16:00:00.123456Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), ts);
        assert_eq!(
            serde_json::from_str::<Timestamp>("1764000000123456").unwrap(),
            ts
        );
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
        let bytes = bincode::serde::encode_to_vec(ts, bincode::config::standard()).unwrap();
        let (back, _): (i64, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, ts.0);
        assert_eq!(Timestamp::parse("@-5us"), Ok(Timestamp(-5)));
        assert_eq!(Timestamp::parse("2025-11-24T17:00:00.123456+01:00"), Ok(ts));
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
