//! The value tree: a JSON or CBOR payload decoded into one [`Node`] tree, so that a single
//! walker ([`super::validate`]) validates both encodings by the same rules. CBOR-only shapes are
//! folded here: whole-valued floats stay floats for the walker to accept as integers, tags are
//! transparent, map entries whose key is not text are dropped.

use super::keys::Key;
use super::{Format, ReportError};
use crate::quoted;

/// A decoded JSON or CBOR item: the one tree the validator walks.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Text(String),
    Array(Vec<Node>),
    /// Entries in payload order. CBOR entries whose key is not a text string are left out:
    /// such keys cannot be report fields, and unknown keys are ignored.
    Map(Vec<(String, Node)>),
    /// An item with no JSON counterpart (a CBOR byte string…), named for messages.
    Other(&'static str),
}

impl Node {
    fn from_json(v: serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null => Self::Null,
            J::Bool(b) => Self::Bool(b),
            J::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Self::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    Self::Int(i128::from(u))
                } else {
                    n.as_f64()
                        .map_or(Self::Other("a number out of range"), Self::Float)
                }
            }
            J::String(s) => Self::Text(s),
            J::Array(items) => Self::Array(items.into_iter().map(Self::from_json).collect()),
            J::Object(map) => Self::Map(
                map.into_iter()
                    .map(|(k, v)| (k, Self::from_json(v)))
                    .collect(),
            ),
        }
    }

    fn from_cbor(v: ciborium::Value) -> Self {
        use ciborium::Value as C;
        match v {
            C::Null => Self::Null,
            C::Bool(b) => Self::Bool(b),
            C::Integer(i) => Self::Int(i128::from(i)),
            C::Float(f) => Self::Float(f),
            C::Text(s) => Self::Text(s),
            C::Bytes(_) => Self::Other("a byte string"),
            // Tags (epoch time, self-describe…) annotate the item; the item is what counts.
            C::Tag(_, inner) => Self::from_cbor(*inner),
            C::Array(items) => Self::Array(items.into_iter().map(Self::from_cbor).collect()),
            C::Map(entries) => Self::Map(
                entries
                    .into_iter()
                    .filter_map(|(k, v)| match k {
                        C::Text(k) => Some((k, Self::from_cbor(v))),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => Self::Other("an unsupported CBOR item"),
        }
    }

    /// A short description of the item for error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Null => "null".to_owned(),
            Self::Bool(b) => b.to_string(),
            Self::Int(i) => i.to_string(),
            Self::Float(x) => x.to_string(),
            Self::Text(s) => format!("\"{}\"", quoted(s)),
            Self::Array(_) => "an array".to_owned(),
            Self::Map(_) => "an object".to_owned(),
            Self::Other(what) => (*what).to_owned(),
        }
    }

    /// The item as an integer, also when it is a float with no fractional part (CBOR encoders
    /// sometimes write whole numbers as floats).
    pub(super) fn integer(&self) -> Option<i128> {
        const LIMIT: f64 = 1.8e19; // beyond u64::MAX; keeps the cast exact for what we accept
        match self {
            Self::Int(i) => Some(*i),
            Self::Float(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < LIMIT => {
                Some(*x as i128)
            }
            _ => None,
        }
    }

    /// The first entry of a map under either spelling of `key`.
    pub(super) fn first(&self, key: Key) -> Option<&Node> {
        match self {
            Self::Map(entries) => entries.iter().find(|(k, _)| key.matches(k)).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Decodes `bytes` as one JSON value or exactly one CBOR item.
pub(super) fn decode(bytes: &[u8], format: Format) -> Result<Node, ReportError> {
    match format {
        Format::Json => serde_json::from_slice::<serde_json::Value>(bytes)
            .map(Node::from_json)
            .map_err(ReportError::InvalidJson),
        Format::Cbor => {
            let mut rest = bytes;
            let value: ciborium::Value =
                ciborium::from_reader(&mut rest).map_err(ReportError::InvalidCbor)?;
            if !rest.is_empty() {
                return Err(ReportError::TrailingCbor {
                    trailing: rest.len(),
                });
            }
            Ok(Node::from_cbor(value))
        }
    }
}
#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use crate::report::{Format, parse_report};
    use thingward_models::{Metric, Value};

    #[test]
    fn json_and_cbor_give_identical_results() {
        for text in [LONG_EXAMPLE, SHORT_EXAMPLE] {
            let tree = json_tree(text);
            let from_json = datapoints(tree.to_string().as_bytes(), Format::Json).expect("json");
            let from_cbor = datapoints(&cbor(&tree), Format::Cbor).expect("cbor");
            assert_eq!(from_json, from_cbor);
            assert_eq!(
                parse_json(&tree).expect("json"),
                parse_report(&cbor(&tree), Format::Cbor, MAX).expect("cbor")
            );
        }
    }

    #[test]
    fn cbor_whole_floats_count_as_integers_and_tags_are_transparent() {
        use ciborium::Value as C;
        let text = |s: &str| C::Text(s.to_owned());
        let tree = C::Map(vec![
            (
                text("hed"),
                C::Map(vec![
                    (text("rid"), C::Tag(1, Box::new(C::Integer(7.into())))),
                    (text("v"), text("1.0")),
                ]),
            ),
            (
                text("met"),
                C::Map(vec![(
                    text("ns"),
                    C::Map(vec![(text("bi"), C::Float(5120.0))]),
                )]),
            ),
            // Non-text keys are not report fields: ignored like unknown keys.
            (C::Integer(1.into()), C::Bool(true)),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&tree, &mut bytes).expect("encodes");
        let got = datapoints(&bytes, Format::Cbor).expect("accepted");
        assert_eq!(got, vec![dp(Metric::AllBytesIn, Value::Number(5120.0))]);
    }

    #[test]
    fn undecodable_payloads_get_format_codes() {
        let e = parse_report(b"{\"header\":", Format::Json, MAX).expect_err("bad json");
        assert_eq!(e.code(), "InvalidJson");
        assert!(
            e.to_string().starts_with("report is not valid JSON: "),
            "{e}"
        );
        let e = parse_report(&[0xff, 0x00], Format::Cbor, MAX).expect_err("bad cbor");
        assert_eq!(e.code(), "InvalidCbor");
        // A CBOR report followed by more bytes.
        let mut bytes = cbor(&json_tree(SHORT_EXAMPLE));
        bytes.push(0x01);
        let e = parse_report(&bytes, Format::Cbor, MAX).expect_err("trailing bytes");
        assert_eq!(e.code(), "InvalidCbor");
        assert_eq!(
            e.to_string(),
            "report is not valid CBOR: 1 bytes follow the report"
        );
        // JSON sent on a cbor topic.
        assert_eq!(
            parse_report(SHORT_EXAMPLE.as_bytes(), Format::Cbor, MAX)
                .expect_err("json")
                .code(),
            "InvalidCbor"
        );
        let e = parse_report(b"[1, 2]", Format::Json, MAX).expect_err("not an object");
        assert_eq!(e.to_string(), "report must be an object; got an array");
    }
}
