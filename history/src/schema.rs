//! The normative row layout shared by the column batches and the Parquet partitions
//! (`docs/specs/history.md`): column names, the `kind` values, the storable timestamp range, and
//! the JSON text of number lists.

use crate::error::Error;
use std::fmt::Write as _;

/// Column names.
pub mod columns {
    /// The thing name.
    pub const THING: &str = "thing";
    /// The metric's wire name.
    pub const METRIC: &str = "metric";
    /// The topic (nullable).
    pub const TOPIC: &str = "topic";
    /// The timestamp, `Datetime(ms, UTC)`.
    pub const TS: &str = "ts";
    /// The value kind (see [`super::kinds`]).
    pub const KIND: &str = "kind";
    /// A single number (null for list values).
    pub const VALUE: &str = "value";
    /// A list value as JSON array text (null for single numbers).
    pub const LIST: &str = "list";
}

/// Values of the `kind` column.
pub mod kinds {
    /// `Value::Number`.
    pub const NUMBER: &str = "number";
    /// `Value::Numbers`.
    pub const NUMBER_LIST: &str = "number-list";
    /// `Value::Strings`.
    pub const STRING_LIST: &str = "string-list";
    /// `Value::Ips`.
    pub const IP_LIST: &str = "ip-list";
    /// `Value::Ports`.
    pub const PORT_LIST: &str = "port-list";
}

/// The earliest storable timestamp: 0001-01-01T00:00:00Z.
pub const MIN_TIMESTAMP: i64 = -62_135_596_800_000;
/// The latest storable timestamp: 9999-12-31T23:59:59.999Z.
pub const MAX_TIMESTAMP: i64 = 253_402_300_799_999;

/// Refuses a timestamp the daily partitions cannot name.
pub(crate) fn check_timestamp(timestamp: i64) -> Result<(), Error> {
    if (MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&timestamp) {
        Ok(())
    } else {
        Err(Error::TimestampOutOfRange {
            timestamp,
            min: MIN_TIMESTAMP,
            max: MAX_TIMESTAMP,
        })
    }
}

/// The value kinds, as stored per row (index into [`KIND_NAMES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Number = 0,
    NumberList = 1,
    StringList = 2,
    IpList = 3,
    PortList = 4,
}

/// The `kind` column's text for each [`Kind`].
pub(crate) const KIND_NAMES: [&str; 5] = [
    kinds::NUMBER,
    kinds::NUMBER_LIST,
    kinds::STRING_LIST,
    kinds::IP_LIST,
    kinds::PORT_LIST,
];

/// Appends a JSON array of numbers, each printed in Rust's shortest round-trip form so that
/// [`parse_numbers_json`] gets the exact bits back. JSON has no NaN or infinity: those become
/// `null`, which reads back as NaN.
pub(crate) fn write_numbers_json(out: &mut String, xs: &[f64]) {
    out.push('[');
    for (i, x) in xs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let a = x.abs();
        // `write!` into a String cannot fail.
        let _ = if !x.is_finite() {
            out.write_str("null")
        } else if a != 0.0 && !(1e-5..1e16).contains(&a) {
            write!(out, "{x:e}")
        } else {
            write!(out, "{x}")
        };
    }
    out.push(']');
}

/// Reads back what [`write_numbers_json`] wrote (`null` → NaN); `None` for anything else.
pub(crate) fn parse_numbers_json(text: &str) -> Option<Vec<f64>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?.trim();
    if inner.is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|t| match t.trim() {
            "null" => Some(f64::NAN),
            t => t.parse().ok(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers_json(xs: &[f64]) -> String {
        let mut s = String::new();
        write_numbers_json(&mut s, xs);
        s
    }

    #[test]
    fn number_lists_round_trip_bit_for_bit() {
        let xs = vec![
            0.0,
            -0.0,
            0.1,
            1.0 / 3.0,
            1e-300,
            -2.5e300,
            1e16,
            123456.789,
            f64::MIN_POSITIVE,
            5e-324,
        ];
        let text = numbers_json(&xs);
        let back = parse_numbers_json(&text).expect("parses");
        assert_eq!(
            xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
        let parsed: Vec<f64> = serde_json::from_str(&text).expect("is JSON");
        assert_eq!(parsed.len(), xs.len());
        assert_eq!(numbers_json(&[f64::NAN, 1.5]), "[null,1.5]");
        assert_eq!(numbers_json(&[]), "[]");
        assert_eq!(parse_numbers_json("[]"), Some(vec![]));
    }
}
