//! Per-thing ingestion state: the recent report ids of each thing (duplicate detection) and the
//! last total of each cumulative counter series (running total → delta conversion).
//!
//! Both are plain single-owner structs; the service wraps each in its own lock.

use std::collections::{HashMap, VecDeque};

use thingward_models::{Metric, ThingName};

/// How many recent report ids [`ReportIds`] remembers per thing by default.
pub const REPORT_IDS_PER_THING: usize = 32;

/// Duplicate detection of report ids (aws-api.md §3.2: a reused report id is discarded).
///
/// Remembers the last [`REPORT_IDS_PER_THING`] ids of each thing in a ring, so memory is bounded
/// per thing (and grows with the number of things, like the rest of the per-thing state). An id
/// older than the ring is no longer recognised; report ids are meant to increase, so a replay
/// that old is not a retransmission.
#[derive(Debug)]
pub struct ReportIds {
    recent: HashMap<ThingName, VecDeque<i64>>,
    per_thing: usize,
}

impl Default for ReportIds {
    fn default() -> Self {
        Self::new()
    }
}

impl ReportIds {
    /// Remembers [`REPORT_IDS_PER_THING`] ids per thing.
    pub fn new() -> Self {
        Self::with_capacity_per_thing(REPORT_IDS_PER_THING)
    }

    /// Remembers `per_thing` ids per thing (at least 1).
    pub fn with_capacity_per_thing(per_thing: usize) -> Self {
        Self {
            recent: HashMap::new(),
            per_thing: per_thing.max(1),
        }
    }

    /// Records `id` for `thing`; returns `false` when the thing sent that id recently (a
    /// duplicate, which is not recorded again). Call it only for reports that passed
    /// validation, so that a device may resend a corrected report under the same id.
    pub fn check_and_record(&mut self, thing: &ThingName, id: i64) -> bool {
        if let Some(ring) = self.recent.get_mut(thing) {
            if ring.contains(&id) {
                return false;
            }
            if ring.len() >= self.per_thing {
                ring.pop_front();
            }
            ring.push_back(id);
            return true;
        }
        let mut ring = VecDeque::with_capacity(self.per_thing);
        ring.push_back(id);
        self.recent.insert(thing.clone(), ring);
        true
    }

    /// Forgets everything about `thing` (for example when it is deleted).
    #[cfg(test)]
    pub fn forget(&mut self, thing: &ThingName) {
        self.recent.remove(thing);
    }
}

/// One counter series: a thing's metric, optionally on one MQTT topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Series {
    metric: Metric,
    topic: Option<String>,
}

/// Cumulative counter → delta conversion for the batch endpoint (`"cumulative": true`).
///
/// Brokers and scripts often know running totals (messages sent since start) while Detect
/// works on per-interval counts. This keeps the last total of each (thing, metric, topic)
/// series and turns the next total into the increase since then.
#[derive(Debug, Default)]
pub struct Counters {
    last: HashMap<ThingName, HashMap<Series, f64>>,
}

impl Counters {
    /// Creates an empty state.
    #[cfg(test)]
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts the running `total` of a series into the increase since the previous total.
    ///
    /// - The first total of a series gives `None`: there is no baseline yet, and the caller
    ///   records no datapoint for it (the total only becomes the baseline).
    /// - A later total gives `total − previous`.
    /// - A total lower than the previous one means the counter restarted (broker or device
    ///   restart); the delta is then the new total itself, counted since the restart. A delta is
    ///   never negative.
    /// - A negative or non-finite total is not a counter value: `None`, and the state is left
    ///   unchanged (callers validate totals before calling).
    pub fn delta(
        &mut self,
        thing: &ThingName,
        metric: &Metric,
        topic: Option<&str>,
        total: f64,
    ) -> Option<f64> {
        if !total.is_finite() || total < 0.0 {
            return None;
        }
        let series = Series {
            metric: metric.clone(),
            topic: topic.map(str::to_owned),
        };
        let previous = match self.last.get_mut(thing) {
            Some(by_series) => by_series.insert(series, total),
            None => {
                self.last
                    .insert(thing.clone(), HashMap::from([(series, total)]));
                None
            }
        }?;
        Some(if total >= previous {
            total - previous
        } else {
            total
        })
    }

    /// How many series have a baseline.
    #[cfg(test)]
    pub fn series(&self) -> usize {
        self.last.values().map(HashMap::len).sum()
    }

    /// Forgets every baseline of `thing`.
    #[cfg(test)]
    pub fn forget(&mut self, thing: &ThingName) {
        self.last.remove(thing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thing(name: &str) -> ThingName {
        ThingName::try_from(name).expect("valid thing name")
    }

    #[test]
    fn report_ids_detect_duplicates_per_thing() {
        let mut ids = ReportIds::new();
        let (a, b) = (thing("a"), thing("b"));
        assert!(ids.check_and_record(&a, 1_700_000_000));
        assert!(!ids.check_and_record(&a, 1_700_000_000));
        // Another thing may use the same id.
        assert!(ids.check_and_record(&b, 1_700_000_000));
        assert!(ids.check_and_record(&a, 1_700_000_300));
        assert!(!ids.check_and_record(&a, 1_700_000_300));
        ids.forget(&a);
        assert!(ids.check_and_record(&a, 1_700_000_000));
    }

    #[test]
    fn report_ids_remember_a_bounded_number_per_thing() {
        let mut ids = ReportIds::with_capacity_per_thing(3);
        let a = thing("a");
        for id in 0..5 {
            assert!(ids.check_and_record(&a, id));
        }
        assert_eq!(ids.recent[&a].len(), 3);
        // 2, 3, 4 are remembered; 0 and 1 fell out of the ring.
        assert!(!ids.check_and_record(&a, 4));
        assert!(!ids.check_and_record(&a, 2));
        assert!(ids.check_and_record(&a, 0));
        assert_eq!(ids.recent[&a].len(), 3);
    }

    #[test]
    fn the_first_total_is_only_a_baseline() {
        let mut c = Counters::new();
        let t = thing("t");
        assert_eq!(c.delta(&t, &Metric::NumMessagesSent, None, 100.0), None);
        assert_eq!(c.series(), 1);
    }

    #[test]
    fn increasing_totals_give_differences() {
        let mut c = Counters::new();
        let t = thing("t");
        let m = Metric::NumMessagesSent;
        assert_eq!(c.delta(&t, &m, None, 100.0), None);
        assert_eq!(c.delta(&t, &m, None, 130.0), Some(30.0));
        assert_eq!(c.delta(&t, &m, None, 130.0), Some(0.0));
        assert_eq!(c.delta(&t, &m, None, 200.5), Some(70.5));
    }

    #[test]
    fn a_counter_reset_gives_the_new_total_never_a_negative_delta() {
        let mut c = Counters::new();
        let t = thing("t");
        let m = Metric::NumMessagesReceived;
        assert_eq!(c.delta(&t, &m, None, 1000.0), None);
        assert_eq!(c.delta(&t, &m, None, 7.0), Some(7.0));
        assert_eq!(c.delta(&t, &m, None, 10.0), Some(3.0));
        assert_eq!(c.delta(&t, &m, None, 0.0), Some(0.0));
    }

    #[test]
    fn series_are_kept_apart_by_thing_metric_and_topic() {
        let mut c = Counters::new();
        let (a, b) = (thing("a"), thing("b"));
        let m = Metric::NumMessagesSent;
        assert_eq!(c.delta(&a, &m, Some("x"), 10.0), None);
        assert_eq!(c.delta(&a, &m, Some("y"), 20.0), None);
        assert_eq!(c.delta(&a, &m, None, 30.0), None);
        assert_eq!(c.delta(&b, &m, Some("x"), 40.0), None);
        assert_eq!(c.delta(&a, &Metric::NumDisconnects, Some("x"), 50.0), None);
        assert_eq!(c.series(), 5);
        assert_eq!(c.delta(&a, &m, Some("x"), 11.0), Some(1.0));
        c.forget(&a);
        assert_eq!(c.series(), 1);
    }

    #[test]
    fn invalid_totals_change_nothing() {
        let mut c = Counters::new();
        let t = thing("t");
        let m = Metric::NumMessagesSent;
        assert_eq!(c.delta(&t, &m, None, f64::NAN), None);
        assert_eq!(c.delta(&t, &m, None, -1.0), None);
        assert_eq!(c.series(), 0);
        assert_eq!(c.delta(&t, &m, None, 5.0), None);
        assert_eq!(c.delta(&t, &m, None, f64::INFINITY), None);
        assert_eq!(c.delta(&t, &m, None, 8.0), Some(3.0));
    }
}
