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
    /// When a person was notified: at the start, later (a held alarm released), or never
    /// (a fleet event explained it).
    pub(crate) notified_at: Option<EpochMillis>,
    /// The fleet event that explained it.
    pub(crate) fleet_event: Option<u64>,
    /// The device incident it belongs to.
    pub(crate) incident: Option<u64>,
}

/// A fleet event as scored: notified once when it opened.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScoredFleetEvent {
    pub(crate) id: u64,
    pub(crate) start: EpochMillis,
    pub(crate) end: EpochMillis,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) peak_share: f64,
    pub(crate) explained: u32,
}

/// What one benign fleet-wide event cost the people reading alarms.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct BenignScore {
    pub(crate) kind: String,
    pub(crate) start: EpochMillis,
    pub(crate) devices: usize,
    /// Fleet events (opened) overlapping it in time and metrics.
    pub(crate) fleet_events: usize,
    /// Device alarms notified on its devices and metrics during it (not overlapping an attack).
    pub(crate) device_notifications: usize,
    /// Device alarms recorded there but held (explained by a fleet event).
    pub(crate) held_alarms: usize,
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
    /// Alarm episodes recorded (notified or not).
    pub(crate) recorded_episodes: usize,
    /// Recorded episodes never notified (explained by a fleet event).
    pub(crate) held_episodes: usize,
    /// Fleet events notified.
    pub(crate) fleet_events: usize,
    /// Fleet events overlapping no benign event.
    pub(crate) unexplained_fleet_events: usize,
    /// Per benign event.
    pub(crate) benign_events: Vec<BenignScore>,
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

    /// What an episode overlaps: the attack class (within its grace), else `benign:<kind>`,
    /// else None (a false alarm on a clean device, or off-target on an attacked one).
    pub(crate) fn label(&self, ep: &Episode) -> Option<String> {
        self.events
            .iter()
            .find(|e| !e.benign && self.overlaps(e, ep, self.grace_ms))
            .map(|e| e.class.clone())
            .or_else(|| {
                self.events
                    .iter()
                    .find(|e| e.benign && self.overlaps(e, ep, 0))
                    .map(|e| format!("benign:{}", e.class))
            })
    }

    fn overlaps(&self, e: &LabelledEvent, ep: &Episode, grace: i64) -> bool {
        e.touches(&ep.device, &ep.metric) && ep.start <= e.end + grace && ep.end >= e.start
    }

    /// Scores one detector's episodes and clean-datapoint tally; `clean_device_days` is the
    /// number of clean-device days in the scored span.
    pub(crate) fn score(
        &self,
        recorded: &[Episode],
        fleet_events: &[ScoredFleetEvent],
        clean: CleanTally,
        clean_device_days: f64,
    ) -> Report {
        // People read notified alarms: held ones are judged through their fleet event.
        let episodes: Vec<Episode> = recorded
            .iter()
            .filter(|e| e.notified_at.is_some())
            .cloned()
            .collect();
        let episodes = episodes.as_slice();
        let fleet_touches = |e: &LabelledEvent, f: &ScoredFleetEvent| {
            f.start <= e.end + self.grace_ms
                && f.end >= e.start
                && (e.metrics.is_empty() || f.metrics.iter().any(|m| e.metrics.contains(m)))
        };
        let benign_events: Vec<BenignScore> = self
            .events
            .iter()
            .filter(|e| e.benign)
            .map(|e| {
                let on_it = |ep: &&Episode| {
                    self.overlaps(e, ep, 0)
                        && !self
                            .events
                            .iter()
                            .any(|a| !a.benign && self.overlaps(a, ep, self.grace_ms))
                };
                BenignScore {
                    kind: e.class.clone(),
                    start: e.start,
                    devices: e.devices.len(),
                    fleet_events: fleet_events.iter().filter(|f| fleet_touches(e, f)).count(),
                    device_notifications: episodes.iter().filter(on_it).count(),
                    held_alarms: recorded
                        .iter()
                        .filter(|ep| ep.notified_at.is_none())
                        .filter(on_it)
                        .count(),
                }
            })
            .collect();
        let unexplained_fleet_events = fleet_events
            .iter()
            .filter(|f| !self.events.iter().any(|e| e.benign && fleet_touches(e, f)))
            .count();
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
            // Detected when a notified alarm started inside the attack (or its grace); the
            // time to detect runs to the notification.
            let first = episodes
                .iter()
                .filter(|ep| {
                    e.touches(&ep.device, &ep.metric)
                        && (e.start..=e.end + self.grace_ms).contains(&ep.start)
                })
                .filter_map(|ep| ep.notified_at)
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
            recorded_episodes: recorded.len(),
            held_episodes: recorded.len() - episodes.len(),
            fleet_events: fleet_events.len(),
            unexplained_fleet_events,
            benign_events,
        }
    }
}

/// Turns an in-alarm / cleared stream into episodes: `open` at in-alarm, close at clear; an
/// episode still open at the end of data ends at `data_end`.
#[derive(Debug, Default)]
pub(crate) struct EpisodeBuilder {
    open: HashMap<(String, Metric), Episode>,
    done: Vec<Episode>,
}

/// How an alarm started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AlarmStart {
    /// Recorded but not notified.
    pub(crate) held: bool,
    pub(crate) fleet_event: Option<u64>,
    pub(crate) incident: Option<u64>,
}

impl EpisodeBuilder {
    /// The (device, metric) went into alarm at `at`.
    pub(crate) fn alarm(
        &mut self,
        device: &str,
        metric: &Metric,
        at: EpochMillis,
        how: AlarmStart,
    ) {
        self.open
            .entry((device.to_owned(), metric.clone()))
            .or_insert_with(|| Episode {
                device: device.to_owned(),
                metric: metric.clone(),
                start: at,
                end: at,
                notified_at: (!how.held).then_some(at),
                fleet_event: how.fleet_event,
                incident: how.incident,
            });
    }

    /// The (device, metric) cleared at `at`.
    pub(crate) fn clear(&mut self, device: &str, metric: &Metric, at: EpochMillis) {
        if let Some(mut ep) = self.open.remove(&(device.to_owned(), metric.clone())) {
            ep.end = at;
            self.done.push(ep);
        }
    }

    /// A held alarm of (device, metric) is notified at `at`: the open episode, or else the
    /// latest one that ended unnotified.
    pub(crate) fn release(&mut self, device: &str, metric: &Metric, at: EpochMillis) {
        let key = (device.to_owned(), metric.clone());
        let ep = match self.open.get_mut(&key) {
            Some(ep) => Some(ep),
            None => self
                .done
                .iter_mut()
                .rev()
                .find(|e| e.device == device && &e.metric == metric),
        };
        if let Some(ep) = ep
            && ep.notified_at.is_none()
        {
            ep.notified_at = Some(at);
        }
    }

    /// Every episode, closing open ones at `data_end`, ordered by start.
    pub(crate) fn finish(mut self, data_end: EpochMillis) -> Vec<Episode> {
        for (_, mut ep) in self.open.drain() {
            ep.end = data_end;
            self.done.push(ep);
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
            notified_at: Some(start),
            fleet_event: None,
            incident: None,
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
            &[],
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
            &[],
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
            &[],
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
            &[],
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
        let notified = AlarmStart::default();
        b.alarm("d", &Metric::AllBytesOut, 10, notified);
        b.alarm("d", &Metric::AllBytesOut, 20, notified);
        b.clear("d", &Metric::AllBytesOut, 30);
        b.clear("d", &Metric::AllBytesOut, 40);
        b.alarm("e", &Metric::AllBytesIn, 35, notified);
        let eps = b.finish(100);
        assert_eq!(
            eps,
            vec![
                ep("d", Metric::AllBytesOut, 10, 30),
                ep("e", Metric::AllBytesIn, 35, 100)
            ]
        );
    }

    #[test]
    fn held_alarms_count_only_once_released_and_benign_events_are_scored() {
        let held = AlarmStart {
            held: true,
            fleet_event: Some(7),
            incident: None,
        };
        let mut b = EpisodeBuilder::default();
        b.alarm("d1", &Metric::AllBytesIn, 2 * MIN5, held);
        b.alarm("d2", &Metric::AllBytesIn, 2 * MIN5, held);
        b.clear("d1", &Metric::AllBytesIn, 3 * MIN5);
        // d1's alarm ended while held and is released later; d2's never is.
        b.release("d1", &Metric::AllBytesIn, 5 * MIN5);
        let eps = b.finish(10 * MIN5);
        assert_eq!(eps[0].notified_at, Some(5 * MIN5));
        assert_eq!(eps[1].notified_at, None);
        let rollout = LabelledEvent {
            class: "firmware-update".into(),
            benign: true,
            devices: ["d1".to_owned(), "d2".to_owned()].into(),
            metrics: vec![Metric::AllBytesIn],
            start: MIN5,
            end: 4 * MIN5,
        };
        let judge = Judge::new(vec![rollout], 0, MIN5);
        let fleet = ScoredFleetEvent {
            id: 7,
            start: MIN5,
            end: 6 * MIN5,
            metrics: vec![Metric::AllBytesIn],
            peak_share: 1.0,
            explained: 2,
        };
        let r = judge.score(&eps, &[fleet], CleanTally::default(), 1.0);
        assert_eq!(
            (r.recorded_episodes, r.held_episodes, r.episodes),
            (2, 1, 1)
        );
        assert_eq!(r.fleet_events, 1);
        assert_eq!(r.unexplained_fleet_events, 0);
        let b = &r.benign_events[0];
        assert_eq!(
            (b.fleet_events, b.device_notifications, b.held_alarms),
            (1, 1, 1)
        );
    }
}
