//! Scoring a detector's output against labelled events: the numbers `thingward eval` reports.
//!
//! Definitions (documented for users in `docs/specs/evaluation.md`):
//! - **Clean datapoint**: a datapoint of a device that no attack touches, outside every benign
//!   event window. The false-positive rate per datapoint is flagged clean datapoints ÷ clean
//!   datapoints, compared with the level's per-datapoint target.
//! - **Alarm episode**: a maximal run of time a (device, metric) is in alarm, from the in-alarm
//!   transition to the clear (or the end of data).
//! - **Event recall**: an attack is detected when an episode on one of its devices and metrics
//!   *starts* inside `[start, end + grace]`.
//! - **Alarm precision**: episodes that overlap an attack (its device, its metric, its
//!   `[start, end + grace]`) ÷ all episodes. Benign events are not attacks: an episode that only
//!   overlaps a benign event is a false alarm, and is also counted as a benign-event false alarm.
//! - **F1** per attack class: harmonic mean of the class's recall and the overall precision (a
//!   false alarm cannot be attributed to one class).
//! - **Time to detect**: datapoints from onset to the start of the first detecting episode.
//! - **Alarms per 1,000 device-days**: episodes on clean devices outside benign windows, per
//!   1,000 days of clean devices in the scored span.

use std::collections::{BTreeMap, HashMap, HashSet};
use thingward_models::Metric;
use thingward_models::time::EpochMillis;

/// One labelled event, as the evaluation sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LabelledEvent {
    /// Attack class (`ddos`, `port-scan`, …) or benign event kind.
    pub(crate) class: String,
    /// Benign events are not attacks.
    pub(crate) benign: bool,
    /// Devices affected.
    pub(crate) devices: HashSet<String>,
    /// Metrics affected; empty means every metric.
    pub(crate) metrics: Vec<Metric>,
    /// First affected instant.
    pub(crate) start: EpochMillis,
    /// Last affected instant.
    pub(crate) end: EpochMillis,
}

impl LabelledEvent {
    fn touches(&self, device: &str, metric: &Metric) -> bool {
        self.devices.contains(device) && (self.metrics.is_empty() || self.metrics.contains(metric))
    }
}

/// A span of time one (device, metric) was in alarm.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Episode {
    pub(crate) device: String,
    pub(crate) metric: Metric,
    pub(crate) start: EpochMillis,
    pub(crate) end: EpochMillis,
}

/// Per-datapoint flags counted on clean datapoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CleanTally {
    pub(crate) datapoints: u64,
    pub(crate) flagged: u64,
}

/// The scoring context: labels, grace period and cadence.
#[derive(Debug, Clone)]
pub(crate) struct Judge {
    events: Vec<LabelledEvent>,
    attacked: HashSet<String>,
    grace_ms: i64,
    interval_ms: i64,
}

/// Detection quality of one attack class.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct ClassScore {
    pub(crate) class: String,
    pub(crate) events: usize,
    pub(crate) detected: usize,
    pub(crate) recall: f64,
    pub(crate) f1: f64,
    /// Datapoints from onset to detection, median (None when nothing was detected).
    pub(crate) ttd_median: Option<f64>,
    /// Datapoints from onset to detection, 90th percentile.
    pub(crate) ttd_p90: Option<f64>,
}

/// Everything reported for one detector at one level.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Report {
    pub(crate) clean_datapoints: u64,
    pub(crate) clean_flagged: u64,
    pub(crate) fpr: f64,
    pub(crate) episodes: usize,
    pub(crate) true_episodes: usize,
    pub(crate) precision: f64,
    pub(crate) recall: f64,
    pub(crate) f1: f64,
    pub(crate) alarms_per_1000_device_days: f64,
    pub(crate) benign_false_alarms: usize,
    pub(crate) classes: Vec<ClassScore>,
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

/// Nearest-rank percentile of a non-empty sorted slice.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

impl Judge {
    /// A judge for `events`, counting an alarm up to `grace_ms` after an attack's end as a
    /// detection, with datapoints every `interval_ms`.
    pub(crate) fn new(events: Vec<LabelledEvent>, grace_ms: i64, interval_ms: i64) -> Self {
        let attacked = events
            .iter()
            .filter(|e| !e.benign)
            .flat_map(|e| e.devices.iter().cloned())
            .collect();
        Self {
            events,
            attacked,
            grace_ms,
            interval_ms: interval_ms.max(1),
        }
    }

    /// Whether a datapoint counts as clean (for the false-positive rate).
    pub(crate) fn is_clean(&self, device: &str, at: EpochMillis) -> bool {
        !self.attacked.contains(device)
            && !self
                .events
                .iter()
                .any(|e| e.benign && e.devices.contains(device) && (e.start..=e.end).contains(&at))
    }

    /// Whether a device is touched by no attack.
    pub(crate) fn is_clean_device(&self, device: &str) -> bool {
        !self.attacked.contains(device)
    }

    fn overlaps(&self, e: &LabelledEvent, ep: &Episode, grace: i64) -> bool {
        e.touches(&ep.device, &ep.metric) && ep.start <= e.end + grace && ep.end >= e.start
    }

    /// Scores one detector's episodes and clean-datapoint tally; `clean_device_days` is the
    /// number of clean-device days in the scored span.
    pub(crate) fn score(
        &self,
        episodes: &[Episode],
        clean: CleanTally,
        clean_device_days: f64,
    ) -> Report {
        let true_episodes = episodes
            .iter()
            .filter(|ep| {
                self.events
                    .iter()
                    .any(|e| !e.benign && self.overlaps(e, ep, self.grace_ms))
            })
            .count();
        let benign_false_alarms = episodes
            .iter()
            .filter(|ep| {
                self.events
                    .iter()
                    .any(|e| e.benign && self.overlaps(e, ep, 0))
                    && !self
                        .events
                        .iter()
                        .any(|e| !e.benign && self.overlaps(e, ep, self.grace_ms))
            })
            .count();
        let clean_episodes = episodes
            .iter()
            .filter(|ep| self.is_clean(&ep.device, ep.start))
            .count();
        let precision = if episodes.is_empty() {
            0.0
        } else {
            true_episodes as f64 / episodes.len() as f64
        };

        let mut by_class: BTreeMap<&str, (usize, usize, Vec<f64>)> = BTreeMap::new();
        for e in self.events.iter().filter(|e| !e.benign) {
            let entry = by_class.entry(e.class.as_str()).or_default();
            entry.0 += 1;
            let first = episodes
                .iter()
                .filter(|ep| {
                    e.touches(&ep.device, &ep.metric)
                        && (e.start..=e.end + self.grace_ms).contains(&ep.start)
                })
                .map(|ep| ep.start)
                .min();
            if let Some(t) = first {
                entry.1 += 1;
                entry.2.push(((t - e.start) / self.interval_ms) as f64);
            }
        }
        let mut classes = Vec::new();
        let (mut all_events, mut all_detected) = (0, 0);
        for (class, (events, detected, mut ttd)) in by_class {
            ttd.sort_by(f64::total_cmp);
            let recall = detected as f64 / events as f64;
            all_events += events;
            all_detected += detected;
            classes.push(ClassScore {
                class: class.to_owned(),
                events,
                detected,
                recall,
                f1: f1(precision, recall),
                ttd_median: percentile(&ttd, 0.5),
                ttd_p90: percentile(&ttd, 0.9),
            });
        }
        let recall = if all_events == 0 {
            0.0
        } else {
            all_detected as f64 / all_events as f64
        };
        Report {
            clean_datapoints: clean.datapoints,
            clean_flagged: clean.flagged,
            fpr: if clean.datapoints == 0 {
                0.0
            } else {
                clean.flagged as f64 / clean.datapoints as f64
            },
            episodes: episodes.len(),
            true_episodes,
            precision,
            recall,
            f1: f1(precision, recall),
            alarms_per_1000_device_days: if clean_device_days > 0.0 {
                1000.0 * clean_episodes as f64 / clean_device_days
            } else {
                0.0
            },
            benign_false_alarms,
            classes,
        }
    }
}

/// Turns an in-alarm / cleared stream into episodes: `open` at in-alarm, close at clear; an
/// episode still open at the end of data ends at `data_end`.
#[derive(Debug, Default)]
pub(crate) struct EpisodeBuilder {
    open: HashMap<(String, Metric), EpochMillis>,
    done: Vec<Episode>,
}

impl EpisodeBuilder {
    /// The (device, metric) went into alarm at `at`.
    pub(crate) fn alarm(&mut self, device: &str, metric: &Metric, at: EpochMillis) {
        self.open
            .entry((device.to_owned(), metric.clone()))
            .or_insert(at);
    }

    /// The (device, metric) cleared at `at`.
    pub(crate) fn clear(&mut self, device: &str, metric: &Metric, at: EpochMillis) {
        if let Some(start) = self.open.remove(&(device.to_owned(), metric.clone())) {
            self.done.push(Episode {
                device: device.to_owned(),
                metric: metric.clone(),
                start,
                end: at,
            });
        }
    }

    /// Every episode, closing open ones at `data_end`, ordered by start.
    pub(crate) fn finish(mut self, data_end: EpochMillis) -> Vec<Episode> {
        for ((device, metric), start) in self.open.drain() {
            self.done.push(Episode {
                device,
                metric,
                start,
                end: data_end,
            });
        }
        self.done.sort_by(|a, b| {
            (a.start, &a.device, a.metric.as_str()).cmp(&(b.start, &b.device, b.metric.as_str()))
        });
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN5: i64 = 300_000;

    fn attack(class: &str, device: &str, metric: Metric, start: i64, end: i64) -> LabelledEvent {
        LabelledEvent {
            class: class.into(),
            benign: false,
            devices: [device.to_owned()].into(),
            metrics: vec![metric],
            start,
            end,
        }
    }

    fn ep(device: &str, metric: Metric, start: i64, end: i64) -> Episode {
        Episode {
            device: device.into(),
            metric,
            start,
            end,
        }
    }

    #[test]
    fn perfect_detection_scores_one() {
        let judge = Judge::new(
            vec![attack(
                "ddos",
                "d1",
                Metric::AllBytesOut,
                10 * MIN5,
                20 * MIN5,
            )],
            0,
            MIN5,
        );
        let r = judge.score(
            &[ep("d1", Metric::AllBytesOut, 10 * MIN5, 20 * MIN5)],
            CleanTally::default(),
            10.0,
        );
        assert_eq!((r.precision, r.recall, r.f1), (1.0, 1.0, 1.0));
        assert_eq!(r.classes[0].ttd_median, Some(0.0));
        assert_eq!(r.alarms_per_1000_device_days, 0.0);
    }

    #[test]
    fn hand_computed_case() {
        // Two DDoS events and one port scan. Detector: detects ddos#1 3 datapoints late, misses
        // ddos#2, detects the scan within the grace period (2 datapoints after its end, grace 3),
        // raises one alarm on the wrong metric of an attacked device, and one on a clean device.
        let events = vec![
            attack("ddos", "d1", Metric::AllBytesOut, 100 * MIN5, 110 * MIN5),
            attack("ddos", "d2", Metric::AllBytesOut, 100 * MIN5, 110 * MIN5),
            attack(
                "port-scan",
                "d3",
                Metric::NumListeningTcpPorts,
                50 * MIN5,
                60 * MIN5,
            ),
        ];
        let judge = Judge::new(events, 3 * MIN5, MIN5);
        let episodes = [
            ep("d1", Metric::AllBytesOut, 103 * MIN5, 108 * MIN5),
            ep("d3", Metric::NumListeningTcpPorts, 62 * MIN5, 70 * MIN5),
            ep("d1", Metric::AllBytesIn, 104 * MIN5, 105 * MIN5),
            ep("clean", Metric::AllBytesOut, 10 * MIN5, 11 * MIN5),
        ];
        let r = judge.score(
            &episodes,
            CleanTally {
                datapoints: 1000,
                flagged: 4,
            },
            2.0,
        );
        // precision = 2 true of 4; recall = 2 of 3 events.
        assert_eq!(r.true_episodes, 2);
        assert!((r.precision - 0.5).abs() < 1e-12);
        assert!((r.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.f1 - 2.0 * 0.5 * (2.0 / 3.0) / (0.5 + 2.0 / 3.0)).abs() < 1e-12);
        assert!((r.fpr - 0.004).abs() < 1e-12);
        let ddos = &r.classes[0];
        assert_eq!(
            (ddos.class.as_str(), ddos.events, ddos.detected),
            ("ddos", 2, 1)
        );
        assert_eq!(ddos.ttd_median, Some(3.0));
        let scan = &r.classes[1];
        assert_eq!((scan.detected, scan.ttd_median), (1, Some(12.0)));
        // one clean-device episode over 2 clean device-days → 500 per 1,000 device-days.
        assert!((r.alarms_per_1000_device_days - 500.0).abs() < 1e-9);
    }

    #[test]
    fn an_alarm_after_the_grace_period_is_a_miss_and_a_false_alarm() {
        let judge = Judge::new(
            vec![attack("flood", "d1", Metric::NumMessagesSent, 0, 10 * MIN5)],
            MIN5,
            MIN5,
        );
        let r = judge.score(
            &[ep("d1", Metric::NumMessagesSent, 12 * MIN5, 13 * MIN5)],
            CleanTally::default(),
            1.0,
        );
        assert_eq!((r.recall, r.precision), (0.0, 0.0));
    }

    #[test]
    fn benign_events_count_separately_and_are_not_clean() {
        let benign = LabelledEvent {
            class: "firmware-update".into(),
            benign: true,
            devices: ["d1".to_owned(), "d2".to_owned()].into(),
            metrics: vec![],
            start: 0,
            end: 10 * MIN5,
        };
        let judge = Judge::new(vec![benign], 0, MIN5);
        assert!(!judge.is_clean("d1", 5 * MIN5));
        assert!(judge.is_clean("d1", 11 * MIN5));
        assert!(judge.is_clean_device("d1"));
        let r = judge.score(
            &[ep("d2", Metric::AllBytesIn, 2 * MIN5, 3 * MIN5)],
            CleanTally::default(),
            1.0,
        );
        assert_eq!(r.benign_false_alarms, 1);
        assert_eq!(r.precision, 0.0);
        // Benign-window episodes are not charged to the clean alarm rate.
        assert_eq!(r.alarms_per_1000_device_days, 0.0);
    }

    #[test]
    fn episodes_are_built_from_transitions() {
        let mut b = EpisodeBuilder::default();
        b.alarm("d", &Metric::AllBytesOut, 10);
        b.alarm("d", &Metric::AllBytesOut, 20);
        b.clear("d", &Metric::AllBytesOut, 30);
        b.clear("d", &Metric::AllBytesOut, 40);
        b.alarm("e", &Metric::AllBytesIn, 35);
        let eps = b.finish(100);
        assert_eq!(
            eps,
            vec![
                ep("d", Metric::AllBytesOut, 10, 30),
                ep("e", Metric::AllBytesIn, 35, 100)
            ]
        );
    }
}
