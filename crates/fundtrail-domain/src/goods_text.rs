//! Goods lines as people type them: `NAME:QUANTITY:UNIT:UNIT_VALUE_YUAN` for goods
//! received (`大米:20:袋:60.00`) and `NAME:QUANTITY:UNIT` for goods handed out
//! (`大米:32:袋`). The name may itself contain ':' (the fields are split from the
//! right). Quantities are whole numbers from 1 to [`QUANTITY_MAX`]; values go through
//! [`parse_yuan`], so they are exact to the fen.

use std::str::FromStr;

use crate::event::{GoodsLine, GoodsOut, QUANTITY_MAX};
use crate::money::{parse_yuan, AmountError};

/// Why a typed goods line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GoodsTextError {
    #[error("expected NAME:QUANTITY:UNIT:UNIT_VALUE_YUAN, e.g. 大米:20:袋:60.00")]
    ReceivedShape,
    #[error("expected NAME:QUANTITY:UNIT, e.g. 大米:32:袋")]
    HandedOutShape,
    #[error("the goods {0} is empty")]
    Empty(&'static str),
    #[error("quantity {0:?} must be a whole number from 1 to {QUANTITY_MAX}")]
    Quantity(String),
    #[error("unit value {text:?}: {error}")]
    UnitValue { text: String, error: AmountError },
}

impl FromStr for GoodsLine {
    type Err = GoodsTextError;

    /// `NAME:QUANTITY:UNIT:UNIT_VALUE_YUAN`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let [name, quantity, unit, value] = split_from_right::<4>(text).ok_or(GoodsTextError::ReceivedShape)?;
        let unit_value_fen =
            parse_yuan(value).map_err(|error| GoodsTextError::UnitValue { text: value.to_owned(), error })?;
        Ok(GoodsLine {
            name: nonempty(name, "name")?,
            quantity: parse_quantity(quantity)?,
            unit: nonempty(unit, "unit")?,
            unit_value_fen,
        })
    }
}

impl FromStr for GoodsOut {
    type Err = GoodsTextError;

    /// `NAME:QUANTITY:UNIT`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let [name, quantity, unit] = split_from_right::<3>(text).ok_or(GoodsTextError::HandedOutShape)?;
        Ok(GoodsOut {
            name: nonempty(name, "name")?,
            quantity: parse_quantity(quantity)?,
            unit: nonempty(unit, "unit")?,
        })
    }
}

/// Exactly `N` fields split at the last `N - 1` colons, in text order.
fn split_from_right<const N: usize>(text: &str) -> Option<[&str; N]> {
    let mut parts: Vec<&str> = text.rsplitn(N, ':').collect();
    parts.reverse();
    parts.try_into().ok()
}

fn parse_quantity(text: &str) -> Result<u64, GoodsTextError> {
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u64>() {
        Ok(quantity) if digits && (1..=QUANTITY_MAX).contains(&quantity) => Ok(quantity),
        _ => Err(GoodsTextError::Quantity(text.to_owned())),
    }
}

fn nonempty(text: &str, what: &'static str) -> Result<String, GoodsTextError> {
    if text.trim().is_empty() {
        return Err(GoodsTextError::Empty(what));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Fen;

    #[test]
    fn goods_received() {
        let line: GoodsLine = "大米:20:袋:60.00".parse().unwrap();
        assert_eq!(line.name, "大米");
        assert_eq!(line.quantity, 20);
        assert_eq!(line.unit, "袋");
        assert_eq!(line.unit_value_fen, Fen::new(6000).unwrap());
        assert_eq!("牛奶:礼盒装:3:箱:55".parse::<GoodsLine>().unwrap().name, "牛奶:礼盒装");
        assert_eq!("大米:20:袋".parse::<GoodsLine>(), Err(GoodsTextError::ReceivedShape));
        assert_eq!("大米:0:袋:60".parse::<GoodsLine>(), Err(GoodsTextError::Quantity("0".into())));
        assert_eq!("大米:-1:袋:60".parse::<GoodsLine>(), Err(GoodsTextError::Quantity("-1".into())));
        assert_eq!("大米:+1:袋:60".parse::<GoodsLine>(), Err(GoodsTextError::Quantity("+1".into())));
        let too_many = format!("大米:{}:袋:60", QUANTITY_MAX + 1);
        assert!(matches!(too_many.parse::<GoodsLine>(), Err(GoodsTextError::Quantity(_))));
        assert!(matches!(
            "大米:2:袋:60.001".parse::<GoodsLine>(),
            Err(GoodsTextError::UnitValue { error: AmountError::TooManyDecimals, .. })
        ));
        assert_eq!(":2:袋:60".parse::<GoodsLine>(), Err(GoodsTextError::Empty("name")));
        assert_eq!("大米:2: :60".parse::<GoodsLine>(), Err(GoodsTextError::Empty("unit")));
    }

    #[test]
    fn goods_handed_out() {
        let out: GoodsOut = "食用油:32:桶".parse().unwrap();
        assert_eq!((out.name.as_str(), out.quantity, out.unit.as_str()), ("食用油", 32, "桶"));
        assert_eq!("食用油:32".parse::<GoodsOut>(), Err(GoodsTextError::HandedOutShape));
        assert_eq!("食用油:3.5:桶".parse::<GoodsOut>(), Err(GoodsTextError::Quantity("3.5".into())));
    }
}
