//! The WAL payload: a compact little-endian encoding of a batch of datapoints.
//!
//! ```text
//! batch    = version:u8 (=1) count:varint datapoint*
//! datapoint = flags:u8
//!             [thing:str]           unless flags & SAME_THING (same thing as the previous row)
//!             metric                code:u8 if flags & BUILTIN_METRIC, else name:str
//!             [topic:str]           if flags & HAS_TOPIC
//!             timestamp:i64
//!             value                 kind in flags >> 4 (see `Tag`)
//! str      = len:varint utf8-bytes
//! value    = Number: f64 | Numbers: n:varint f64*n | Strings: n:varint str*n
//!          | Ips: n:varint (4 octets | 6 16 octets)*n | Ports: n:varint u16*n
//! ```
//!
//! Integers are little-endian; varints are unsigned LEB128. Built-in metrics are stored as a
//! one-byte code from [`METRIC_CODES`], an append-only table owned here (not the order of
//! `Metric::BUILTIN`, which may change); a metric missing from the table is stored by name, so
//! correctness never depends on the table being complete.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thingward_models::{Datapoint, Metric, ThingName, Value};

/// The payload format version.
const FORMAT_V1: u8 = 1;

const SAME_THING: u8 = 0b0000_0001;
const BUILTIN_METRIC: u8 = 0b0000_0010;
const HAS_TOPIC: u8 = 0b0000_0100;
const TAG_SHIFT: u8 = 4;

const TAG_NUMBER: u8 = 0;
const TAG_NUMBERS: u8 = 1;
const TAG_STRINGS: u8 = 2;
const TAG_IPS: u8 = 3;
const TAG_PORTS: u8 = 4;

/// Built-in metric codes. Append-only: a code, once written to a WAL, never changes meaning.
const METRIC_CODES: &[Metric] = &[
    Metric::MessageByteSize,
    Metric::NumMessagesSent,
    Metric::NumMessagesReceived,
    Metric::NumAuthorizationFailures,
    Metric::SourceIpAddress,
    Metric::NumConnectionAttempts,
    Metric::NumDisconnects,
    Metric::DisconnectDuration,
    Metric::AllBytesOut,
    Metric::AllBytesIn,
    Metric::AllPacketsOut,
    Metric::AllPacketsIn,
    Metric::NumListeningTcpPorts,
    Metric::NumListeningUdpPorts,
    Metric::NumEstablishedTcpConnections,
    Metric::DestinationIpAddresses,
    Metric::ListeningTcpPorts,
    Metric::ListeningUdpPorts,
];

/// Why a payload could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

type Decoded<T> = Result<T, DecodeError>;

fn metric_code(metric: &Metric) -> Option<u8> {
    if matches!(metric, Metric::Custom(_)) {
        return None;
    }
    METRIC_CODES
        .iter()
        .position(|m| m == metric)
        .and_then(|i| u8::try_from(i).ok())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    put_varint(out, len as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// Appends the encoding of `batch` to `out`.
pub(crate) fn encode_batch_into(batch: &[Datapoint], out: &mut Vec<u8>) {
    // A typical row is ~40 bytes; reserving avoids most regrowth.
    out.reserve(16 + batch.len() * 40);
    out.push(FORMAT_V1);
    put_len(out, batch.len());
    let mut previous: Option<&ThingName> = None;
    for dp in batch {
        let mut flags = tag_of(&dp.value) << TAG_SHIFT;
        let same_thing = previous.is_some_and(|p| p == &dp.thing);
        if same_thing {
            flags |= SAME_THING;
        }
        let code = metric_code(&dp.metric);
        if code.is_some() {
            flags |= BUILTIN_METRIC;
        }
        if dp.topic.is_some() {
            flags |= HAS_TOPIC;
        }
        out.push(flags);
        if !same_thing {
            put_str(out, dp.thing.as_str());
        }
        match code {
            Some(code) => out.push(code),
            None => put_str(out, dp.metric.as_str()),
        }
        if let Some(topic) = &dp.topic {
            put_str(out, topic);
        }
        out.extend_from_slice(&dp.timestamp.to_le_bytes());
        encode_value(&dp.value, out);
        previous = Some(&dp.thing);
    }
}

fn tag_of(value: &Value) -> u8 {
    match value {
        Value::Number(_) => TAG_NUMBER,
        Value::Numbers(_) => TAG_NUMBERS,
        Value::Strings(_) => TAG_STRINGS,
        Value::Ips(_) => TAG_IPS,
        Value::Ports(_) => TAG_PORTS,
    }
}

fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Number(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Numbers(xs) => {
            put_len(out, xs.len());
            for x in xs {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        Value::Strings(ss) => {
            put_len(out, ss.len());
            for s in ss {
                put_str(out, s);
            }
        }
        Value::Ips(ips) => {
            put_len(out, ips.len());
            for ip in ips {
                match ip {
                    IpAddr::V4(v4) => {
                        out.push(4);
                        out.extend_from_slice(&v4.octets());
                    }
                    IpAddr::V6(v6) => {
                        out.push(6);
                        out.extend_from_slice(&v6.octets());
                    }
                }
            }
        }
        Value::Ports(ports) => {
            put_len(out, ports.len());
            for p in ports {
                out.extend_from_slice(&p.to_le_bytes());
            }
        }
    }
}

/// A cursor over a payload.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Decoded<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(DecodeError("payload ends mid-field"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Decoded<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Decoded<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn varint(&mut self) -> Decoded<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("varint longer than 64 bits"))
    }

    /// A length, bounded by what is left of the payload at `min_elem` bytes an element, so a
    /// corrupt length cannot trigger a huge allocation.
    fn len(&mut self, min_elem: usize) -> Decoded<usize> {
        let n = usize::try_from(self.varint()?).map_err(|_| DecodeError("length overflows"))?;
        let left = self.buf.len() - self.pos;
        if n.saturating_mul(min_elem) > left {
            return Err(DecodeError("length exceeds the payload"));
        }
        Ok(n)
    }

    fn str(&mut self) -> Decoded<&'a str> {
        let n = self.len(1)?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| DecodeError("string is not UTF-8"))
    }

    fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// A metric as stored: a code or a name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RawMetric<'a> {
    /// An index into the built-in code table.
    Builtin(&'a Metric),
    /// A metric stored by name.
    Named(&'a str),
}

impl RawMetric<'_> {
    /// Whether this is `metric`.
    pub(crate) fn is(&self, metric: &Metric) -> bool {
        match self {
            Self::Builtin(m) => *m == metric,
            Self::Named(name) => metric.as_str() == *name,
        }
    }

    fn to_metric(self) -> Metric {
        match self {
            Self::Builtin(m) => m.clone(),
            // A name that parses as a built-in is one (a built-in missing from the code table);
            // anything else was a custom metric when it was written.
            Self::Named(name) => name
                .parse::<Metric>()
                .unwrap_or_else(|_| Metric::Custom(name.to_owned())),
        }
    }
}

/// A datapoint borrowed from a payload; the value is decoded only on demand, so a filtering
/// reader allocates nothing for rows it skips.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawDatapoint<'a> {
    /// The thing name (validated only by [`RawDatapoint::to_datapoint`]).
    pub(crate) thing: &'a str,
    /// The metric.
    pub(crate) metric: RawMetric<'a>,
    /// The topic, if any.
    pub(crate) topic: Option<&'a str>,
    /// The timestamp in ms since the epoch.
    pub(crate) timestamp: i64,
    tag: u8,
    value: &'a [u8],
}

impl RawDatapoint<'_> {
    /// Decodes the value.
    pub(crate) fn value(self) -> Decoded<Value> {
        let mut r = Reader {
            buf: self.value,
            pos: 0,
        };
        let value = match self.tag {
            TAG_NUMBER => Value::Number(f64::from_le_bytes(r.array()?)),
            TAG_NUMBERS => {
                let n = r.len(8)?;
                let mut xs = Vec::with_capacity(n);
                for _ in 0..n {
                    xs.push(f64::from_le_bytes(r.array()?));
                }
                Value::Numbers(xs)
            }
            TAG_STRINGS => {
                let n = r.len(1)?;
                let mut ss = Vec::with_capacity(n);
                for _ in 0..n {
                    ss.push(r.str()?.to_owned());
                }
                Value::Strings(ss)
            }
            TAG_IPS => {
                let n = r.len(5)?;
                let mut ips = Vec::with_capacity(n);
                for _ in 0..n {
                    ips.push(match r.u8()? {
                        4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>()?)),
                        6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>()?)),
                        _ => return Err(DecodeError("unknown IP address family")),
                    });
                }
                Value::Ips(ips)
            }
            TAG_PORTS => {
                let n = r.len(2)?;
                let mut ports = Vec::with_capacity(n);
                for _ in 0..n {
                    ports.push(u16::from_le_bytes(r.array()?));
                }
                Value::Ports(ports)
            }
            _ => return Err(DecodeError("unknown value kind")),
        };
        Ok(value)
    }

    /// Decodes the whole datapoint.
    pub(crate) fn to_datapoint(self) -> Decoded<Datapoint> {
        Ok(Datapoint {
            thing: ThingName::try_from(self.thing)
                .map_err(|_| DecodeError("invalid thing name"))?,
            metric: self.metric.to_metric(),
            topic: self.topic.map(str::to_owned),
            timestamp: self.timestamp,
            value: self.value()?,
        })
    }
}

/// Skips over a value of kind `tag`, returning its bytes.
fn skip_value<'a>(r: &mut Reader<'a>, tag: u8) -> Decoded<&'a [u8]> {
    let start = r.pos;
    match tag {
        TAG_NUMBER => {
            r.bytes(8)?;
        }
        TAG_NUMBERS => {
            let n = r.len(8)?;
            r.bytes(n * 8)?;
        }
        TAG_STRINGS => {
            let n = r.len(1)?;
            for _ in 0..n {
                r.str()?;
            }
        }
        TAG_IPS => {
            let n = r.len(5)?;
            for _ in 0..n {
                match r.u8()? {
                    4 => r.bytes(4)?,
                    6 => r.bytes(16)?,
                    _ => return Err(DecodeError("unknown IP address family")),
                };
            }
        }
        TAG_PORTS => {
            let n = r.len(2)?;
            r.bytes(n * 2)?;
        }
        _ => return Err(DecodeError("unknown value kind")),
    }
    Ok(&r.buf[start..r.pos])
}

/// Walks a payload, handing every datapoint to `visit` in order.
///
/// # Errors
/// The first malformed field, or the first error `visit` returns.
pub(crate) fn decode_batch<'a>(
    payload: &'a [u8],
    mut visit: impl FnMut(RawDatapoint<'a>) -> Decoded<()>,
) -> Decoded<()> {
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    if r.u8()? != FORMAT_V1 {
        return Err(DecodeError("unknown payload format version"));
    }
    // The smallest row is 11 bytes: flags, metric code, timestamp, an empty list.
    let count = r.len(11)?;
    let mut thing: Option<&'a str> = None;
    for _ in 0..count {
        let flags = r.u8()?;
        if flags & SAME_THING == 0 {
            thing = Some(r.str()?);
        }
        let thing = thing.ok_or(DecodeError("first row refers to a previous thing"))?;
        let metric = if flags & BUILTIN_METRIC != 0 {
            let code = usize::from(r.u8()?);
            RawMetric::Builtin(
                METRIC_CODES
                    .get(code)
                    .ok_or(DecodeError("unknown built-in metric code"))?,
            )
        } else {
            RawMetric::Named(r.str()?)
        };
        let topic = if flags & HAS_TOPIC != 0 {
            Some(r.str()?)
        } else {
            None
        };
        let timestamp = i64::from_le_bytes(r.array()?);
        let tag = flags >> TAG_SHIFT;
        let value = skip_value(&mut r, tag)?;
        visit(RawDatapoint {
            thing,
            metric,
            topic,
            timestamp,
            tag,
            value,
        })?;
    }
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes after the last row"));
    }
    Ok(())
}

/// Decodes a whole payload into datapoints.
///
/// # Errors
/// The first malformed field.
pub(crate) fn decode_datapoints(payload: &[u8]) -> Decoded<Vec<Datapoint>> {
    let mut out = Vec::new();
    decode_batch(payload, |raw| {
        out.push(raw.to_datapoint()?);
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(batch: &[Datapoint]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_batch_into(batch, &mut out);
        out
    }

    fn dp(thing: &str, metric: Metric, topic: Option<&str>, ts: i64, value: Value) -> Datapoint {
        Datapoint {
            thing: ThingName::try_from(thing).expect("valid thing"),
            metric,
            topic: topic.map(str::to_owned),
            timestamp: ts,
            value,
        }
    }

    #[test]
    fn every_builtin_metric_has_a_code() {
        for m in Metric::BUILTIN {
            assert!(
                metric_code(m).is_some(),
                "{m} has no WAL code; append it to METRIC_CODES"
            );
        }
        assert_eq!(metric_code(&Metric::Custom("x".into())), None);
    }

    #[test]
    fn every_value_kind_round_trips() {
        let batch = vec![
            dp("a", Metric::AllBytesOut, None, 1, Value::Number(42.5)),
            dp(
                "a",
                Metric::Custom("temps".into()),
                None,
                -2,
                Value::Numbers(vec![1.0, -0.5]),
            ),
            dp(
                "b",
                Metric::Custom("tags".into()),
                None,
                3,
                Value::Strings(vec!["x".into(), "".into()]),
            ),
            dp(
                "b",
                Metric::DestinationIpAddresses,
                None,
                4,
                Value::Ips(vec![
                    "10.0.0.1".parse().expect("ip"),
                    "::1".parse().expect("ip"),
                ]),
            ),
            dp(
                "c",
                Metric::ListeningTcpPorts,
                None,
                5,
                Value::Ports(vec![22, 443, 0, 65535]),
            ),
            dp(
                "c",
                Metric::NumMessagesSent,
                Some("dt/+/x"),
                6,
                Value::Number(f64::NAN),
            ),
            dp(
                "c",
                Metric::NumMessagesSent,
                Some(""),
                7,
                Value::Numbers(vec![]),
            ),
        ];
        let back = decode_datapoints(&encode(&batch)).expect("decodes");
        assert_eq!(back.len(), batch.len());
        // NaN != NaN, so compare bits for the one NaN row.
        assert!(back[5].value.as_number().is_some_and(f64::is_nan));
        for (i, (a, b)) in batch.iter().zip(&back).enumerate() {
            if i != 5 {
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn repeated_things_are_stored_once() {
        let one = encode(&[dp(
            "sensor-0001",
            Metric::AllBytesIn,
            None,
            0,
            Value::Number(0.0),
        )]);
        let two = encode(&[
            dp(
                "sensor-0001",
                Metric::AllBytesIn,
                None,
                0,
                Value::Number(0.0),
            ),
            dp(
                "sensor-0001",
                Metric::AllBytesOut,
                None,
                0,
                Value::Number(0.0),
            ),
        ]);
        assert_eq!(two.len() - one.len(), 1 + 1 + 8 + 8);
    }

    #[test]
    fn truncated_and_corrupt_payloads_are_errors_not_panics() {
        let payload = encode(&[
            dp(
                "a",
                Metric::Custom("s".into()),
                Some("t"),
                1,
                Value::Strings(vec!["hello".into()]),
            ),
            dp(
                "a",
                Metric::DestinationIpAddresses,
                None,
                1,
                Value::Ips(vec!["::1".parse().expect("ip")]),
            ),
        ]);
        for cut in 0..payload.len() {
            assert!(decode_datapoints(&payload[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..payload.len() {
            let mut bad = payload.clone();
            bad[i] ^= 0xff;
            let _ = decode_datapoints(&bad); // must not panic or allocate wildly
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<f64>()
                .prop_filter("NaN != NaN", |x| !x.is_nan())
                .prop_map(Value::Number),
            prop::collection::vec(-1e300f64..1e300, 0..5).prop_map(Value::Numbers),
            prop::collection::vec(".{0,12}", 0..4).prop_map(Value::Strings),
            prop::collection::vec(any::<IpAddr>(), 0..4).prop_map(Value::Ips),
            prop::collection::vec(any::<u16>(), 0..6).prop_map(Value::Ports),
        ]
    }

    fn arb_datapoint() -> impl Strategy<Value = Datapoint> {
        let metric = prop_oneof![
            prop::sample::select(Metric::BUILTIN.to_vec()),
            "[a-zA-Z0-9:_-]{1,20}".prop_filter_map("not a built-in", |s| {
                (!s.starts_with("aws:")).then_some(Metric::Custom(s))
            }),
        ];
        (
            prop::sample::select(vec!["t1", "t2", "thing-ü", "x"]),
            metric,
            prop::option::of(".{0,16}"),
            any::<i64>(),
            arb_value(),
        )
            .prop_map(|(thing, metric, topic, timestamp, value)| Datapoint {
                thing: ThingName::try_from(thing).expect("valid thing"),
                metric,
                topic,
                timestamp,
                value,
            })
    }

    proptest! {
        #[test]
        fn random_batches_survive_encode_decode(batch in prop::collection::vec(arb_datapoint(), 0..40)) {
            let back = decode_datapoints(&encode(&batch)).expect("decodes");
            prop_assert_eq!(back, batch);
        }
    }
}
