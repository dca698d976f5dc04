//! Identifiers and fixed-size digests that appear in persisted types:
//! [`StreamId`], [`ReplId`], [`ChainHash`] and [`SpecFingerprint`].
//!
//! Digests are fixed-size byte arrays (encoded as raw bytes, no length
//! prefix) and are shown as lowercase hex. Parsing is total: bad input is an
//! [`IdError`], never a panic.

use serde::{Deserialize, Serialize};

/// Errors from parsing identifiers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The hex text has the wrong length for the digest being parsed.
    #[error("{what}: expected {expected} hex characters, got {actual}")]
    HexLength {
        /// Which identifier was being parsed.
        what: &'static str,
        /// Required number of hex characters.
        expected: usize,
        /// Number of characters supplied.
        actual: usize,
    },
    /// The text contains a character that is not a hex digit.
    #[error("{what}: invalid hex character at position {position}")]
    HexDigit {
        /// Which identifier was being parsed.
        what: &'static str,
        /// Byte position of the offending character.
        position: usize,
    },
    /// A stream id was empty or contained `/` (reserved as the sled tree
    /// name separator) or control characters.
    #[error("invalid stream id {0:?}: must be non-empty, without '/' or control characters")]
    StreamId(String),
}

/// The key of one journal stream: a ValkeyCluster's UID, or
/// [`StreamId::OPERATOR`] for operator lifecycle and leadership.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamId(String);

impl StreamId {
    /// Name of the reserved operator stream. Kubernetes UIDs are UUIDs, so
    /// they cannot collide with it.
    pub const OPERATOR: &'static str = "operator";

    /// Builds a stream id, rejecting empty names, `/` and control characters.
    ///
    /// # Errors
    /// [`IdError::StreamId`] when the name is not acceptable.
    pub fn new(name: impl Into<String>) -> Result<Self, IdError> {
        let name = name.into();
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_control) {
            return Err(IdError::StreamId(name));
        }
        Ok(Self(name))
    }

    /// The reserved operator stream.
    #[must_use]
    pub fn operator() -> Self {
        Self(Self::OPERATOR.to_owned())
    }

    /// The stream name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for StreamId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// Writes `bytes` as lowercase hex, in one write: exports format two
/// digests per event, so this is on the replay tool's hot path.
fn write_hex(f: &mut std::fmt::Formatter<'_>, bytes: &[u8]) -> std::fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        let mut len = 0;
        for (b, out) in chunk.iter().zip(buf.chunks_exact_mut(2)) {
            if let [hi, lo] = out {
                *hi = DIGITS.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
                *lo = DIGITS.get(usize::from(b & 0x0f)).copied().unwrap_or(b'0');
            }
            len += 2;
        }
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or_default())?;
    }
    Ok(())
}

/// Parses exactly `N` bytes of hex (either case).
fn parse_hex<const N: usize>(what: &'static str, text: &str) -> Result<[u8; N], IdError> {
    let expected = N.saturating_mul(2);
    if text.len() != expected {
        return Err(IdError::HexLength {
            what,
            expected,
            actual: text.len(),
        });
    }
    let mut out = [0u8; N];
    for (i, (slot, pair)) in out
        .iter_mut()
        .zip(text.as_bytes().chunks_exact(2))
        .enumerate()
    {
        let digit = |pos: usize, c: u8| {
            (c as char).to_digit(16).ok_or(IdError::HexDigit {
                what,
                position: pos,
            })
        };
        let (hi, lo) = match pair {
            [hi, lo] => (digit(i * 2, *hi)?, digit(i * 2 + 1, *lo)?),
            _ => {
                return Err(IdError::HexLength {
                    what,
                    expected,
                    actual: text.len(),
                });
            }
        };
        // Both digits are < 16, so the combination fits in a byte.
        *slot = u8::try_from(hi * 16 + lo).unwrap_or(0);
    }
    Ok(out)
}

macro_rules! hex_digest {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; $len]);

        // Raw bytes in binary formats (the journal's bincode: unchanged
        // since format version 1), lowercase hex in human-readable ones
        // (JSON exports, YAML state dumps), so a reader sees the same
        // text as `Display` and the JSON reads back.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.collect_str(self)
                } else {
                    self.0.serialize(serializer)
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                if deserializer.is_human_readable() {
                    let text = String::deserialize(deserializer)?;
                    Self::from_hex(&text).map_err(serde::de::Error::custom)
                } else {
                    <[u8; $len]>::deserialize(deserializer).map(Self)
                }
            }
        }

        impl $name {
            /// Number of bytes in the digest.
            pub const LEN: usize = $len;

            /// Parses the lowercase or uppercase hex form.
            ///
            /// # Errors
            /// [`IdError`] when the text is not exactly the right number of hex digits.
            pub fn from_hex(text: &str) -> Result<Self, IdError> {
                parse_hex::<$len>($what, text).map(Self)
            }

            /// The lowercase hex form.
            #[must_use]
            pub fn to_hex(&self) -> String {
                self.to_string()
            }

            /// The raw bytes.
            #[must_use]
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "("))?;
                write_hex(f, &self.0)?;
                write!(f, ")")
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_hex(s)
            }
        }
    };
}

hex_digest!(
    /// A Valkey replication id (`master_replid` of `INFO replication`): 40 hex
    /// characters on the wire, 20 raw bytes in the journal.
    ReplId, 20, "replid"
);

hex_digest!(
    /// A link of the journal's SHA-256 hash chain. The all-zero value is the
    /// genesis: the `prev` of seq 1.
    ChainHash, 32, "chain hash"
);

hex_digest!(
    /// SHA-256 of a spec's canonical JSON text, so two generations with the
    /// same content are recognisably equal without comparing the text.
    SpecFingerprint, 32, "spec fingerprint"
);

impl ChainHash {
    /// The `prev` of the first event of every stream: 32 zero bytes.
    pub const GENESIS: Self = Self([0u8; 32]);
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
    fn replid_hex_round_trips() {
        let text = "8d3c1e9fa0b4c2d7e6f5a4b3c2d1e0f9a8b7c6d5";
        let id = ReplId::from_hex(text).unwrap();
        assert_eq!(id.to_hex(), text);
        assert_eq!(ReplId::from_hex(&text.to_uppercase()).unwrap(), id);
    }

    #[test]
    fn bad_hex_is_an_error_not_a_panic() {
        assert!(matches!(
            ReplId::from_hex("abc"),
            Err(IdError::HexLength { .. })
        ));
        let bad = "zz3c1e9fa0b4c2d7e6f5a4b3c2d1e0f9a8b7c6d5";
        assert!(matches!(
            ReplId::from_hex(bad),
            Err(IdError::HexDigit { position: 0, .. })
        ));
        // Multi-byte UTF-8 of the right byte length must not split a char badly.
        let utf = "é".repeat(20);
        assert!(ReplId::from_hex(&utf).is_err());
    }

    #[test]
    fn digests_are_hex_in_json_and_raw_bytes_in_the_journal() {
        let hash = ChainHash([0xab; 32]);
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<ChainHash>(&json).unwrap(), hash);
        assert!(serde_json::from_str::<ChainHash>("\"abc\"").is_err());
        // The binary encoding is the 32 bytes, no length prefix: the frame
        // format of every journal ever written.
        let bytes = bincode::serde::encode_to_vec(hash, bincode::config::standard()).unwrap();
        assert_eq!(bytes, vec![0xab; 32]);
    }

    #[test]
    fn stream_ids_are_validated() {
        assert!(StreamId::new("").is_err());
        assert!(StreamId::new("a/b").is_err());
        assert!(StreamId::new("a\nb").is_err());
        assert_eq!(StreamId::operator().as_str(), "operator");
        assert_eq!("0b9e".parse::<StreamId>().unwrap().to_string(), "0b9e");
    }
}
