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

/// Why a yuan amount typed by a person was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("no amount given")]
    Empty,
    #[error("amounts are never negative")]
    Negative,
    /// Not digits with an optional '.' and one or two decimals.
    #[error("not an amount in yuan: digits, optionally '.' and 1 or 2 decimals, e.g. 1234.56")]
    Syntax,
    /// Full-width digits or punctuation (０-９, ．, ，), as a Chinese input method types them.
    #[error("full-width digits or punctuation: type the amount with ASCII digits 0-9, '.' and ',', e.g. 1234.56")]
    FullWidth,
    /// A third decimal would need rounding, which is refused: the smallest unit is 1 fen.
    #[error("at most 2 decimals: the smallest unit is 1 fen (0.01); amounts are never rounded")]
    TooManyDecimals,
    #[error("thousands separators must group 3 digits, e.g. 1,234.56")]
    Grouping,
    #[error("too large: at most {} ({AMOUNT_FEN_MAX} fen)", format_yuan(AMOUNT_FEN_MAX))]
    Overflow,
}

/// Parses yuan typed by a person exactly into fen: `1234.56` → 123456 fen, the
/// inverse of [`format_yuan`] for non-negative amounts. Accepts an optional `¥`/`￥`,
/// thousands separators grouping 3 digits (`1,234.56`), one or two decimals. Refuses
/// signs, a third decimal (never rounds), full-width digits, anything else, and
/// amounts beyond [`AMOUNT_FEN_MAX`].
pub fn parse_yuan(text: &str) -> Result<Fen, AmountError> {
    let text = text.strip_prefix('¥').or_else(|| text.strip_prefix('￥')).unwrap_or(text);
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    if text.starts_with('-') || text.starts_with('－') {
        return Err(AmountError::Negative);
    }
    if text.chars().any(|c| ('０'..='９').contains(&c) || c == '．' || c == '，') {
        return Err(AmountError::FullWidth);
    }
    let (whole, decimals) = match text.split_once('.') {
        Some((w, d)) => (w, Some(d)),
        None => (text, None),
    };
    let digits = ungroup(whole)?;
    let fraction: u64 = match decimals {
        None => 0,
        Some(d) if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) => return Err(AmountError::Syntax),
        Some(d) if d.len() > 2 => return Err(AmountError::TooManyDecimals),
        Some(d) if d.len() == 1 => u64::from(d.as_bytes()[0] - b'0') * 10,
        Some(d) => u64::from(d.as_bytes()[0] - b'0') * 10 + u64::from(d.as_bytes()[1] - b'0'),
    };
    assert!(fraction < 100, "two decimal digits are below 100");
    let mut yuan: u64 = 0;
    for b in digits.bytes() {
        yuan = yuan.checked_mul(10).and_then(|y| y.checked_add(u64::from(b - b'0'))).ok_or(AmountError::Overflow)?;
    }
    let fen = yuan.checked_mul(100).and_then(|f| f.checked_add(fraction)).ok_or(AmountError::Overflow)?;
    let fen = i64::try_from(fen).map_err(|_| AmountError::Overflow)?;
    let parsed = Fen::new(fen).map_err(|_| AmountError::Overflow)?;
    assert!(!parsed.is_negative(), "a parsed amount is never negative");
    Ok(parsed)
}

/// The digits of the whole part, thousands separators checked and removed.
fn ungroup(whole: &str) -> Result<String, AmountError> {
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit() || b == b',') {
        return Err(AmountError::Syntax);
    }
    if !whole.contains(',') {
        return Ok(whole.to_owned());
    }
    let groups: Vec<&str> = whole.split(',').collect();
    let first_ok = (1..=3).contains(&groups[0].len());
    if !first_ok || groups[1..].iter().any(|g| g.len() != 3) {
        return Err(AmountError::Grouping);
    }
    Ok(groups.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fen(s: &str) -> i64 {
        parse_yuan(s).unwrap().fen()
    }

    #[test]
    fn yuan_parse_exactly_to_fen() {
        assert_eq!(fen("1234.56"), 123_456);
        assert_eq!(fen("0.05"), 5);
        assert_eq!(fen("0.5"), 50);
        assert_eq!(fen("12.5"), 1_250);
        assert_eq!(fen("100"), 10_000);
        assert_eq!(fen("0"), 0);
        assert_eq!(fen("007.10"), 710);
        assert_eq!(fen("¥1,234.56"), 123_456);
        assert_eq!(fen("￥190,000"), 19_000_000);
        assert_eq!(fen("1,234,567.89"), 123_456_789);
        // 0.1 + 0.2 style traps do not exist without floats.
        assert_eq!(fen("0.29"), 29);
        assert_eq!(fen("1.13"), 113);
    }

    #[test]
    fn yuan_refusals_are_specific() {
        use AmountError as E;
        let err = |s: &str| parse_yuan(s).unwrap_err();
        assert_eq!(err(""), E::Empty);
        assert_eq!(err("¥"), E::Empty);
        assert_eq!(err("-1"), E::Negative);
        assert_eq!(err("-0.01"), E::Negative);
        assert_eq!(err("－5"), E::Negative);
        assert_eq!(err("+1"), E::Syntax);
        assert_eq!(err(".5"), E::Syntax);
        assert_eq!(err("5."), E::Syntax);
        assert_eq!(err("1.2.3"), E::Syntax);
        assert_eq!(err("1e3"), E::Syntax);
        assert_eq!(err(" 1"), E::Syntax);
        assert_eq!(err("1 000"), E::Syntax);
        assert_eq!(err("一百"), E::Syntax);
        assert_eq!(err("1,23.00"), E::Grouping);
        assert_eq!(err("1234,567"), E::Grouping);
        assert_eq!(err(",123"), E::Grouping);
    }

    #[test]
    fn yuan_never_rounds() {
        assert_eq!(parse_yuan("1.234"), Err(AmountError::TooManyDecimals));
        assert_eq!(parse_yuan("0.001"), Err(AmountError::TooManyDecimals));
        assert_eq!(parse_yuan("0.995"), Err(AmountError::TooManyDecimals));
        assert_eq!(parse_yuan("12.340"), Err(AmountError::TooManyDecimals), "even a trailing zero is a third decimal");
        assert!(AmountError::TooManyDecimals.to_string().contains("never rounded"));
    }

    #[test]
    fn full_width_digits_are_refused_with_a_hint() {
        for typed in ["１２３", "１２３．４５", "１，２３４", "¥５００", "12．5"] {
            assert_eq!(parse_yuan(typed), Err(AmountError::FullWidth), "{typed}");
        }
        assert!(AmountError::FullWidth.to_string().contains("ASCII digits"));
    }

    #[test]
    fn yuan_range_is_json_safe() {
        // 2^53 − 1 fen is the largest amount any JSON reader holds exactly.
        assert_eq!(fen("90071992547409.91"), AMOUNT_FEN_MAX);
        assert_eq!(parse_yuan("90071992547409.92"), Err(AmountError::Overflow));
        // Beyond u64 once multiplied by 100, and beyond u64 outright.
        assert_eq!(parse_yuan("184467440737095516.16"), Err(AmountError::Overflow));
        assert_eq!(parse_yuan("99999999999999999999999999"), Err(AmountError::Overflow));
        assert_eq!(
            AmountError::Overflow.to_string(),
            "too large: at most ¥90,071,992,547,409.91 (9007199254740991 fen)"
        );
    }

    #[test]
    fn yuan_round_trips_through_format_yuan() {
        for fen in [0_i64, 1, 99, 100, 123_456, 19_000_000, AMOUNT_FEN_MAX] {
            let shown = format_yuan(fen);
            assert_eq!(parse_yuan(&shown).unwrap().fen(), fen, "{shown}");
        }
    }

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
