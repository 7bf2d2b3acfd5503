//! Rows in columns: the input of a Parquet part file, built without a `Datapoint` per value.
//!
//! Thing names, metrics and topics are interned once per batch and referred to by a `u32` per
//! row; list values are written as their JSON text (the `list` column of
//! `docs/specs/history.md`) straight into one buffer. A batch is reusable: [`clear`] keeps the
//! allocations, so a producer that fills one batch per part file allocates nothing per row in
//! the steady state.
//!
//! [`clear`]: ColumnBatch::clear

use crate::error::Error;
use crate::schema::{self, Kind};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use thingward_models::time::EpochMillis;
use thingward_models::{Datapoint, Metric, ThingName, Value};

/// A thing interned in a [`ColumnBatch`] (valid for that batch until it is cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThingId(u32);

/// A metric interned in a [`ColumnBatch`] (valid for that batch until it is cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricId(u32);

/// Marks a row without a topic in [`ColumnBatch::topic`].
const NO_TOPIC: u32 = u32::MAX;

/// Datapoints in columns, in push order, for one import segment (see
/// [`Importer::write_batch`](crate::Importer::write_batch)).
///
/// Rows may come in any order and span several UTC days; writing sorts each day by
/// `(thing, metric, ts)` as the layout requires. A batch that is already in that order (one
/// device after another, metric-major, oldest first) is written without reordering.
#[derive(Debug, Default, Clone)]
pub struct ColumnBatch {
    pub(crate) things: Vec<ThingName>,
    thing_ids: HashMap<ThingName, u32>,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) topics: Vec<String>,
    pub(crate) thing: Vec<u32>,
    pub(crate) metric: Vec<u32>,
    /// Empty while no row has a topic (the common case); then one entry per row.
    pub(crate) topic: Vec<u32>,
    pub(crate) ts: Vec<EpochMillis>,
    pub(crate) kind: Vec<Kind>,
    /// The number of `Kind::Number` rows; 0 for list rows.
    pub(crate) value: Vec<f64>,
    /// Row `i`'s list text is `list_text[list_end[i - 1]..list_end[i]]` (empty for numbers).
    pub(crate) list_end: Vec<usize>,
    pub(crate) list_text: String,
}

impl ColumnBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            thing: Vec::with_capacity(rows),
            metric: Vec::with_capacity(rows),
            ts: Vec::with_capacity(rows),
            kind: Vec::with_capacity(rows),
            value: Vec::with_capacity(rows),
            list_end: Vec::with_capacity(rows),
            ..Self::default()
        }
    }

    /// A batch holding `datapoints`, in order.
    pub fn from_datapoints(datapoints: &[Datapoint]) -> Self {
        let mut batch = Self::with_capacity(datapoints.len());
        for dp in datapoints {
            batch.push(dp);
        }
        batch
    }

    /// Removes every row and interned name, keeping the allocations.
    pub fn clear(&mut self) {
        self.things.clear();
        self.thing_ids.clear();
        self.metrics.clear();
        self.topics.clear();
        self.thing.clear();
        self.metric.clear();
        self.topic.clear();
        self.ts.clear();
        self.kind.clear();
        self.value.clear();
        self.list_end.clear();
        self.list_text.clear();
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Interns a thing name (cheap when it is the most recently interned one).
    pub fn thing(&mut self, name: &ThingName) -> ThingId {
        if let Some(last) = self.things.last()
            && last == name
        {
            return ThingId(self.things.len() as u32 - 1);
        }
        if let Some(&id) = self.thing_ids.get(name) {
            return ThingId(id);
        }
        let id = self.things.len() as u32;
        self.things.push(name.clone());
        self.thing_ids.insert(name.clone(), id);
        ThingId(id)
    }

    /// Interns a metric.
    pub fn metric(&mut self, metric: &Metric) -> MetricId {
        if let Some(i) = self.metrics.iter().position(|m| m == metric) {
            return MetricId(i as u32);
        }
        self.metrics.push(metric.clone());
        MetricId(self.metrics.len() as u32 - 1)
    }

    fn topic_id(&mut self, topic: &str) -> u32 {
        if let Some(i) = self.topics.iter().position(|t| t == topic) {
            return i as u32;
        }
        self.topics.push(topic.to_owned());
        self.topics.len() as u32 - 1
    }

    fn push_row(&mut self, thing: ThingId, metric: MetricId, ts: EpochMillis, kind: Kind, x: f64) {
        self.thing.push(thing.0);
        self.metric.push(metric.0);
        if !self.topic.is_empty() {
            self.topic.push(NO_TOPIC);
        }
        self.ts.push(ts);
        self.kind.push(kind);
        self.value.push(x);
        self.list_end.push(self.list_text.len());
    }

    /// Appends a `number` row.
    pub fn push_number(&mut self, thing: ThingId, metric: MetricId, ts: EpochMillis, x: f64) {
        self.push_row(thing, metric, ts, Kind::Number, x);
    }

    /// Appends a `port-list` row.
    pub fn push_ports(&mut self, thing: ThingId, metric: MetricId, ts: EpochMillis, ports: &[u16]) {
        write_ports(&mut self.list_text, ports);
        self.push_row(thing, metric, ts, Kind::PortList, 0.0);
    }

    /// Appends an `ip-list` row.
    pub fn push_ips(&mut self, thing: ThingId, metric: MetricId, ts: EpochMillis, ips: &[IpAddr]) {
        write_ips(&mut self.list_text, ips);
        self.push_row(thing, metric, ts, Kind::IpList, 0.0);
    }

    /// Appends a `number-list` row.
    pub fn push_numbers(&mut self, thing: ThingId, metric: MetricId, ts: EpochMillis, xs: &[f64]) {
        schema::write_numbers_json(&mut self.list_text, xs);
        self.push_row(thing, metric, ts, Kind::NumberList, 0.0);
    }

    /// Appends a `string-list` row.
    pub fn push_strings(
        &mut self,
        thing: ThingId,
        metric: MetricId,
        ts: EpochMillis,
        strings: &[String],
    ) {
        write_strings(&mut self.list_text, strings);
        self.push_row(thing, metric, ts, Kind::StringList, 0.0);
    }

    /// Appends a datapoint of any kind, with its topic.
    pub fn push(&mut self, dp: &Datapoint) {
        let thing = self.thing(&dp.thing);
        let metric = self.metric(&dp.metric);
        match &dp.value {
            Value::Number(x) => self.push_number(thing, metric, dp.timestamp, *x),
            Value::Numbers(xs) => self.push_numbers(thing, metric, dp.timestamp, xs),
            Value::Strings(ss) => self.push_strings(thing, metric, dp.timestamp, ss),
            Value::Ips(ips) => self.push_ips(thing, metric, dp.timestamp, ips),
            Value::Ports(ports) => self.push_ports(thing, metric, dp.timestamp, ports),
        }
        if let Some(topic) = &dp.topic {
            let id = self.topic_id(topic);
            if self.topic.is_empty() {
                self.topic.resize(self.len(), NO_TOPIC);
            }
            if let Some(last) = self.topic.last_mut() {
                *last = id;
            }
        }
    }

    /// Row `i`'s list text (`None` for a number).
    pub(crate) fn list(&self, i: usize) -> Option<&str> {
        if self.kind[i] == Kind::Number {
            return None;
        }
        let start = if i == 0 { 0 } else { self.list_end[i - 1] };
        Some(&self.list_text[start..self.list_end[i]])
    }

    /// Row `i`'s topic.
    pub(crate) fn topic_of(&self, i: usize) -> Option<&str> {
        match self.topic.get(i) {
            Some(&id) if id != NO_TOPIC => Some(self.topics[id as usize].as_str()),
            _ => None,
        }
    }

    /// Whether any row has a topic.
    pub(crate) fn has_topics(&self) -> bool {
        !self.topic.is_empty()
    }

    /// Refuses the batch if a timestamp is outside the storable range.
    pub(crate) fn check_timestamps(&self) -> Result<(), Error> {
        let (Some(&min), Some(&max)) = (self.ts.iter().min(), self.ts.iter().max()) else {
            return Ok(());
        };
        schema::check_timestamp(min)?;
        schema::check_timestamp(max)
    }
}

/// `[22,443]`: the same text as `serde_json::to_string(&[u16])`.
fn write_ports(out: &mut String, ports: &[u16]) {
    out.push('[');
    for (i, p) in ports.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut digits = [0u8; 5];
        let mut n = *p;
        let mut k = digits.len();
        loop {
            k -= 1;
            digits[k] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in &digits[k..] {
            out.push(char::from(d));
        }
    }
    out.push(']');
}

/// `["192.0.2.1","2001:db8::7"]`: addresses in display form, which needs no JSON escaping.
fn write_ips(out: &mut String, ips: &[IpAddr]) {
    out.push('[');
    for (i, ip) in ips.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        // `write!` into a String cannot fail.
        let _ = write!(out, "\"{ip}\"");
    }
    out.push(']');
}

/// `["a","b"]`, escaped as JSON strings.
fn write_strings(out: &mut String, strings: &[String]) {
    // Serialising strings to JSON cannot fail.
    if let Ok(text) = serde_json::to_string(strings) {
        out.push_str(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thing(name: &str) -> ThingName {
        ThingName::try_from(name).expect("name")
    }

    #[test]
    fn list_text_matches_serde_json() {
        let ports = [0u16, 7, 22, 443, 8883, 65535];
        let mut s = String::new();
        write_ports(&mut s, &ports);
        assert_eq!(s, serde_json::to_string(&ports).expect("json"));
        s.clear();
        write_ports(&mut s, &[]);
        assert_eq!(s, "[]");
        let ips: Vec<IpAddr> = ["10.0.0.1", "2001:db8::7"]
            .iter()
            .map(|t| t.parse().expect("ip"))
            .collect();
        s.clear();
        write_ips(&mut s, &ips);
        let texts: Vec<String> = ips.iter().map(ToString::to_string).collect();
        assert_eq!(s, serde_json::to_string(&texts).expect("json"));
    }

    #[test]
    fn rows_keep_their_values_topics_and_interned_names() {
        let mut b = ColumnBatch::new();
        let a = b.thing(&thing("a"));
        let m = b.metric(&Metric::AllBytesOut);
        b.push_number(a, m, 5, 1.5);
        b.push(&Datapoint {
            thing: thing("b"),
            metric: Metric::NumMessagesSent,
            topic: Some("t/1".into()),
            timestamp: 6,
            value: Value::Ports(vec![1, 2]),
        });
        assert_eq!(b.thing(&thing("a")), a);
        assert_eq!(b.len(), 2);
        assert_eq!(b.list(0), None);
        assert_eq!(b.list(1), Some("[1,2]"));
        assert_eq!(b.topic_of(0), None);
        assert_eq!(b.topic_of(1), Some("t/1"));
        assert_eq!(b.things.len(), 2);
        b.clear();
        assert!(b.is_empty() && b.things.is_empty() && !b.has_topics());
    }
}
