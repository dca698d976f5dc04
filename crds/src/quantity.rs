//! Parsing Kubernetes resource quantities (`1Gi`, `500m`, `1.5e3`) into a
//! value that can be compared.
//!
//! This module owns one thing: turning the string form of a
//! [`Quantity`](k8s_openapi::apimachinery::pkg::api::resource::Quantity) into
//! an exact number of milli-units, so that validation can say "the new size is
//! smaller than the old one" without floating point. It does not format
//! quantities back into canonical form and it does not round-trip them: the
//! user's string stays the source of truth.
//!
//! The grammar is the one Kubernetes documents for `Quantity`:
//!
//! ```text
//! quantity  ::= sign? number suffix?
//! number    ::= digits | digits "." digits? | "." digits
//! suffix    ::= "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei"      (binary, 1024^n)
//!             | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E"   (decimal, 1000^n)
//!             | ("e" | "E") sign? digits                     (decimal exponent)
//! ```
//!
//! Like Kubernetes, precision below one milli-unit is rounded up (away from
//! zero), so `0.1m` is `1m`. Unlike Kubernetes, which silently caps values
//! above 2^63-1, a value that does not fit is an error: a storage size of
//! `1e40` is a mistake worth reporting, not a number to clamp.

use std::{fmt, str::FromStr};

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string was empty (or only a sign).
    #[error("quantity is empty")]
    Empty,
    /// The string holds no digits where the number should be, e.g. `Gi` or `.`.
    #[error("quantity {input:?} has no digits")]
    NoDigits {
        /// The string that was parsed.
        input: String,
    },
    /// The text after the number is not one of the allowed suffixes.
    #[error(
        "quantity {input:?} has unknown suffix {suffix:?} (allowed: Ki Mi Gi Ti Pi Ei, n u m k M G T P E, or an exponent such as e3)"
    )]
    UnknownSuffix {
        /// The string that was parsed.
        input: String,
        /// The unrecognised tail.
        suffix: String,
    },
    /// The value does not fit the exact representation (about 1.7e35).
    #[error("quantity {input:?} is too large")]
    TooLarge {
        /// The string that was parsed.
        input: String,
    },
}

/// An exact quantity in milli-units (`1` is `1000`, `1Ki` is `1024000`).
///
/// Ordering is numeric, so `"1Gi".parse::<ParsedQuantity>()? >
/// "1000Mi".parse()?` is `true` and `1k == 1000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParsedQuantity {
    millis: i128,
}

impl ParsedQuantity {
    /// The zero quantity.
    pub const ZERO: Self = Self { millis: 0 };

    /// The exact value in milli-units.
    pub fn millis(self) -> i128 {
        self.millis
    }

    /// The value in whole units, rounded up (e.g. bytes for a storage size).
    pub fn ceil_units(self) -> i128 {
        let whole = self.millis.div_euclid(1000);
        if self.millis.rem_euclid(1000) == 0 {
            whole
        } else {
            whole.saturating_add(1)
        }
    }

    /// `true` when the value is strictly greater than zero.
    pub fn is_positive(self) -> bool {
        self.millis > 0
    }
}

impl fmt::Display for ParsedQuantity {
    /// Writes the value as whole units when exact, otherwise with an `m` suffix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis % 1000 == 0 {
            write!(f, "{}", self.millis / 1000)
        } else {
            write!(f, "{}m", self.millis)
        }
    }
}

impl FromStr for ParsedQuantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_quantity(s)
    }
}

/// How the suffix scales the number: `value = number * 2^binary * 10^decimal`.
#[derive(Debug, Clone, Copy)]
struct Scale {
    binary: u32,
    decimal: i64,
}

/// Parse a Kubernetes quantity string into an exact [`ParsedQuantity`].
///
/// # Errors
///
/// Returns a [`QuantityError`] naming the input when the string is empty,
/// has no digits, carries an unknown suffix, or does not fit.
pub fn parse_quantity(input: &str) -> Result<ParsedQuantity, QuantityError> {
    if input.is_empty() {
        return Err(QuantityError::Empty);
    }
    let (negative, rest) = match input.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, input.strip_prefix('+').unwrap_or(input)),
    };
    if rest.is_empty() {
        return Err(QuantityError::Empty);
    }

    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    // A second '.' lands in `fraction`; digits-only is checked below.
    if whole.is_empty() && fraction.is_empty() {
        return Err(QuantityError::NoDigits {
            input: input.to_owned(),
        });
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError::UnknownSuffix {
            input: input.to_owned(),
            suffix: suffix_from(number, whole),
        });
    }
    let scale = parse_suffix(input, suffix)?;

    // Trailing zeros of the fraction carry no value; dropping them keeps
    // `1.000000000000000000000000000000Gi` within range.
    let fraction = fraction.trim_end_matches('0');
    let too_large = || QuantityError::TooLarge {
        input: input.to_owned(),
    };

    // value = digits / 10^fraction_len * 2^binary * 10^decimal, in milli-units.
    let digits = whole
        .bytes()
        .chain(fraction.bytes())
        .try_fold(0i128, |acc, b| {
            acc.checked_mul(10)?
                .checked_add(i128::from(b.saturating_sub(b'0')))
        })
        .ok_or_else(too_large)?;
    let fraction_len = i64::try_from(fraction.len()).map_err(|_| too_large())?;
    let mut numerator = digits
        .checked_mul(1i128.checked_shl(scale.binary).ok_or_else(too_large)?)
        .ok_or_else(too_large)?;
    let mut denominator: i128 = 1;
    // +3 turns units into milli-units.
    let decimal = scale
        .decimal
        .checked_add(3)
        .and_then(|d| d.checked_sub(fraction_len))
        .ok_or_else(too_large)?;
    if numerator != 0 {
        match (decimal >= 0, pow10(decimal.unsigned_abs())) {
            (true, power) => {
                numerator = power
                    .and_then(|p| numerator.checked_mul(p))
                    .ok_or_else(too_large)?;
            }
            (false, Some(power)) => denominator = power,
            // A divisor beyond i128 exceeds any numerator: the value is a
            // positive sliver below one milli-unit, which rounds up to 1m.
            (false, None) => {
                numerator = 1;
            }
        }
    }
    // Round up: Kubernetes never loses a request by rounding it down.
    let mut millis = numerator / denominator;
    if numerator % denominator != 0 {
        millis = millis.checked_add(1).ok_or_else(too_large)?;
    }
    if negative {
        millis = -millis;
    }
    Ok(ParsedQuantity { millis })
}

/// The offending tail for an error message when the number itself is malformed
/// (e.g. `1.2.3`).
fn suffix_from(number: &str, whole: &str) -> String {
    number.get(whole.len()..).unwrap_or(number).to_owned()
}

fn parse_suffix(input: &str, suffix: &str) -> Result<Scale, QuantityError> {
    let binary = |binary| Ok(Scale { binary, decimal: 0 });
    let decimal = |decimal| Ok(Scale { binary: 0, decimal });
    match suffix {
        "" => decimal(0),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        _ => {
            let unknown = || QuantityError::UnknownSuffix {
                input: input.to_owned(),
                suffix: suffix.to_owned(),
            };
            let exponent = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))
                .ok_or_else(unknown)?;
            let digits = exponent
                .strip_prefix('-')
                .or_else(|| exponent.strip_prefix('+'))
                .unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(unknown());
            }
            // Anything beyond a few hundred is out of range either way; cap the
            // parse so a 40-digit exponent is "too large", not an overflow.
            let value: i64 = if digits.len() > 6 {
                999_999
            } else {
                digits.parse().map_err(|_| unknown())?
            };
            decimal(if exponent.starts_with('-') {
                -value
            } else {
                value
            })
        }
    }
}

fn pow10(exponent: u64) -> Option<i128> {
    let exponent = u32::try_from(exponent).ok()?;
    10i128.checked_pow(exponent)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    fn q(s: &str) -> i128 {
        parse_quantity(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .millis()
    }

    #[test]
    fn plain_numbers() {
        assert_eq!(q("0"), 0);
        assert_eq!(q("1"), 1000);
        assert_eq!(q("+7"), 7000);
        assert_eq!(q("-2"), -2000);
        assert_eq!(q("1.5"), 1500);
        assert_eq!(q(".5"), 500);
        assert_eq!(q("5."), 5000);
        assert_eq!(q("007"), 7000);
    }

    #[test]
    fn binary_suffixes() {
        assert_eq!(q("1Ki"), 1024 * 1000);
        assert_eq!(q("1Mi"), 1024 * 1024 * 1000);
        assert_eq!(q("1Gi"), (1i128 << 30) * 1000);
        assert_eq!(q("1Ti"), (1i128 << 40) * 1000);
        assert_eq!(q("1Pi"), (1i128 << 50) * 1000);
        assert_eq!(q("1Ei"), (1i128 << 60) * 1000);
        assert_eq!(q("1.5Gi"), q("1536Mi"));
    }

    #[test]
    fn decimal_suffixes() {
        assert_eq!(q("500m"), 500);
        assert_eq!(q("1500u"), 2);
        assert_eq!(q("1000000n"), 1);
        assert_eq!(q("1k"), 1_000_000);
        assert_eq!(q("1M"), 1_000_000_000);
        assert_eq!(q("1G"), 1_000_000_000_000);
        assert_eq!(q("1T"), 10i128.pow(15));
        assert_eq!(q("1P"), 10i128.pow(18));
        assert_eq!(q("1E"), 10i128.pow(21));
    }

    #[test]
    fn exponents() {
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("1E3"), q("1k"));
        assert_eq!(q("1e+3"), q("1k"));
        assert_eq!(q("1e-3"), 1);
        assert_eq!(q("2.5e2"), 250_000);
        assert_eq!(q("0e400"), 0);
    }

    #[test]
    fn sub_milli_precision_rounds_up() {
        assert_eq!(q("0.1m"), 1);
        assert_eq!(q("1e-9"), 1);
        assert_eq!(q("-0.1m"), -1);
        assert_eq!(q("1e-400"), 1);
    }

    #[test]
    fn comparisons_across_suffixes() {
        let gi: ParsedQuantity = "1Gi".parse().unwrap();
        let mi: ParsedQuantity = "1000Mi".parse().unwrap();
        let g: ParsedQuantity = "1G".parse().unwrap();
        assert!(gi > mi);
        assert!(gi > g);
        assert!(mi > "1000M".parse().unwrap());
        assert_eq!(
            "1k".parse::<ParsedQuantity>().unwrap(),
            "1000".parse().unwrap()
        );
    }

    #[test]
    fn ceil_units_and_display() {
        let half: ParsedQuantity = "500m".parse().unwrap();
        assert_eq!(half.ceil_units(), 1);
        assert_eq!(half.to_string(), "500m");
        assert_eq!("2k".parse::<ParsedQuantity>().unwrap().to_string(), "2000");
        assert!(half.is_positive());
        assert!(!ParsedQuantity::ZERO.is_positive());
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(parse_quantity(""), Err(QuantityError::Empty));
        assert_eq!(parse_quantity("-"), Err(QuantityError::Empty));
        for bad in [
            "Gi", ".", "-.", "e3", "1 Gi", "1gi", "1GB", "1.2.3", "1e", "1e+", "1e3.5", "1Kib",
            " 1", "1 ", "abc", "1ki", "0x10", "1_000",
        ] {
            assert!(parse_quantity(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn too_large_is_an_error() {
        for big in [
            "1e40",
            "1e9999999999",
            "100000000000000000000000000000000000000000",
        ] {
            assert!(
                matches!(parse_quantity(big), Err(QuantityError::TooLarge { .. })),
                "{big}"
            );
        }
        // Long fractions of zeros are fine.
        assert_eq!(
            q("1.000000000000000000000000000000000000000000Gi"),
            q("1Gi")
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_quantity(&s);
        }

        #[test]
        fn scaling_is_exact(n in 0i64..1_000_000) {
            prop_assert_eq!(q(&format!("{n}Ki")), i128::from(n) * 1024 * 1000);
            prop_assert_eq!(q(&format!("{n}k")), q(&format!("{n}000")));
            prop_assert_eq!(q(&format!("{n}e3")), q(&format!("{n}k")));
            prop_assert_eq!(q(&format!("{n}m")), i128::from(n));
        }

        #[test]
        fn order_matches_integers(a in 0i64..1_000_000, b in 0i64..1_000_000) {
            let qa: ParsedQuantity = format!("{a}Mi").parse().unwrap();
            let qb: ParsedQuantity = format!("{b}Mi").parse().unwrap();
            prop_assert_eq!(qa.cmp(&qb), a.cmp(&b));
        }
    }
}
