//! Money in integer minor units (fen, 1/100 yuan) with checked arithmetic.
//!
//! There are no floats anywhere in FundTrail's money path. Every amount that
//! crosses a boundary fits in ±(2^53 − 1) so that any JSON reader, including
//! JavaScript's, reads it exactly.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest magnitude an amount may have: 2^53 − 1 (JSON's exact-integer range).
pub const AMOUNT_FEN_MAX: i64 = (1 << 53) - 1;

/// An amount of money in fen (1 yuan = 100 fen). Signed so that differences can
/// be expressed; every constructor and operation is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Fen(i64);

/// Reading an amount checks its range like [`Fen::new`] does.
impl<'de> Deserialize<'de> for Fen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Fen, D::Error> {
        let fen = i64::deserialize(deserializer)?;
        Fen::new(fen).map_err(serde::de::Error::custom)
    }
}

/// Money arithmetic left the safe range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("amount overflow: {0} fen is outside ±(2^53−1)")]
pub struct MoneyOverflow(pub i128);

impl Fen {
    pub const ZERO: Fen = Fen(0);

    /// An amount in fen; refuses magnitudes beyond [`AMOUNT_FEN_MAX`].
    pub fn new(fen: i64) -> Result<Fen, MoneyOverflow> {
        if fen.unsigned_abs() > AMOUNT_FEN_MAX as u64 {
            return Err(MoneyOverflow(i128::from(fen)));
        }
        Ok(Fen(fen))
    }

    /// Whole yuan, for tests and the demo.
    pub fn yuan(yuan: i64) -> Fen {
        Fen::new(yuan.checked_mul(100).expect("yuan amount overflows i64")).expect("yuan amount beyond the safe range")
    }

    pub fn fen(self) -> i64 {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Fen) -> Result<Fen, MoneyOverflow> {
        Self::from_wide(i128::from(self.0) + i128::from(other.0))
    }

    pub fn checked_sub(self, other: Fen) -> Result<Fen, MoneyOverflow> {
        Self::from_wide(i128::from(self.0) - i128::from(other.0))
    }

    /// `self × count`, e.g. unit value × quantity of goods.
    pub fn checked_mul(self, count: u64) -> Result<Fen, MoneyOverflow> {
        Self::from_wide(i128::from(self.0) * i128::from(count))
    }

    /// `self × numerator / denominator`, rounded toward zero: the share of a
    /// value that a part of a quantity carries. `denominator` must be positive.
    pub fn checked_mul_div(self, numerator: u64, denominator: u64) -> Result<Fen, MoneyOverflow> {
        assert!(denominator > 0, "mul_div by zero");
        Self::from_wide(i128::from(self.0) * i128::from(numerator) / i128::from(denominator))
    }

    fn from_wide(wide: i128) -> Result<Fen, MoneyOverflow> {
        if wide.unsigned_abs() > AMOUNT_FEN_MAX as u128 {
            return Err(MoneyOverflow(wide));
        }
        Ok(Fen(wide as i64))
    }
}

/// Displays as yuan with thousands separators: `¥1,234.56`, `-¥0.05`.
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_yuan(self.0))
    }
}

/// Any amount in fen as yuan for people: `¥1,234.56`, `-¥0.05`. Integer
/// arithmetic only; also for figures outside [`Fen`]'s range (sums in reports).
pub fn format_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let (yuan, cents) = (abs / 100, abs % 100);
    let digits = yuan.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}¥{grouped}.{cents:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_yuan_with_separators() {
        assert_eq!(Fen::new(120_000).unwrap().to_string(), "¥1,200.00");
        assert_eq!(Fen::new(5).unwrap().to_string(), "¥0.05");
        assert_eq!(Fen::new(-5).unwrap().to_string(), "-¥0.05");
        assert_eq!(Fen::new(12_345_678_901).unwrap().to_string(), "¥123,456,789.01");
    }

    #[test]
    fn refuses_beyond_safe_range() {
        assert!(Fen::new(AMOUNT_FEN_MAX).is_ok());
        assert!(Fen::new(AMOUNT_FEN_MAX + 1).is_err());
        assert!(Fen::new(-AMOUNT_FEN_MAX - 1).is_err());
        let max = Fen::new(AMOUNT_FEN_MAX).unwrap();
        assert!(max.checked_add(Fen::new(1).unwrap()).is_err());
        assert!(max.checked_mul(2).is_err());
    }

    #[test]
    fn reading_checks_the_range() {
        assert_eq!(serde_json::from_str::<Fen>("9007199254740991").unwrap().fen(), AMOUNT_FEN_MAX);
        assert!(serde_json::from_str::<Fen>("9007199254740992").is_err());
    }

    #[test]
    fn mul_div_rounds_toward_zero() {
        let v = Fen::new(1000).unwrap();
        assert_eq!(v.checked_mul_div(1, 3).unwrap().fen(), 333);
        assert_eq!(v.checked_mul_div(3, 3).unwrap().fen(), 1000);
    }
}
