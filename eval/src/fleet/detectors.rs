//! The detectors `thingward eval` can run: the Rules Detect baselines through the real scorer,
//! and external detectors whose per-datapoint flags come from a CSV file.

use super::ml::MlDetector;
use crate::detector::{Detector, FitError, NoRegistry, Span, TrainingSet, Verdict};
use anyhow::{Context, bail};
use std::collections::{HashMap, HashSet};
use thingward_models::profile::SecurityProfile;
use thingward_models::time::EpochMillis;
use thingward_models::{Datapoint, Metric, ViolationEventType};
use thingward_scorer::alarm::AlarmState;
use thingward_scorer::{Change, CompiledProfile, Scorer};

/// Builds a detector from its command-line name.
///
/// # Errors
/// An unknown name or an unreadable flags file.
pub(crate) fn by_name(name: &str) -> anyhow::Result<Box<dyn Detector>> {
    match name {
        "rules-p999" => Ok(Box::new(Rules::new(RulesKind::FleetP999))),
        "rules-statistical" => Ok(Box::new(Rules::new(RulesKind::Statistical))),
        "ml" => Ok(Box::new(MlDetector::new(
            thingward_trainer::FitParams::default(),
        )?)),
        other => match other
            .strip_prefix("external:")
            .and_then(|s| s.split_once('='))
        {
            Some((label, path)) => Ok(Box::new(External::load(label, std::path::Path::new(path))?)),
            None => bail!(
                "Unknown detector '{other}': use ml, rules-p999, rules-statistical or external:NAME=ALARMS.csv"
            ),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RulesKind {
    /// A static fleet-wide p99.9 threshold per metric learnt from the training span: what a
    /// Rules Detect user would configure.
    FleetP999,
    /// AWS's statisticalThreshold: p99 across the profile's devices, live.
    Statistical,
}

/// A Rules Detect baseline run through the real scorer.
struct Rules {
    kind: RulesKind,
    profile: Option<CompiledProfile>,
    thresholds: HashMap<Metric, f64>,
    scorer: Scorer,
    transitions: Vec<thingward_scorer::Transition>,
}

impl Rules {
    fn new(kind: RulesKind) -> Self {
        Self {
            kind,
            profile: None,
            thresholds: HashMap::new(),
            scorer: Scorer::new(),
            transitions: Vec::new(),
        }
    }
}

impl Detector for Rules {
    fn name(&self) -> String {
        match self.kind {
            RulesKind::FleetP999 => "rules-p999".into(),
            RulesKind::Statistical => "rules-statistical".into(),
        }
    }

    fn train(&mut self, training: &TrainingSet, _: Span) -> Result<(), FitError> {
        let mut behaviors = Vec::new();
        for metric in training.metrics() {
            let criteria = match self.kind {
                RulesKind::FleetP999 => {
                    let Some(t) = training.quantile(&metric, 0.999) else {
                        continue;
                    };
                    self.thresholds.insert(metric.clone(), t);
                    serde_json::json!({
                        "comparisonOperator": "less-than-equals",
                        "value": { "count": t.ceil().max(0.0) as i64 },
                    })
                }
                RulesKind::Statistical => {
                    let mut c = serde_json::json!({
                        "comparisonOperator": "less-than-equals",
                        "statisticalThreshold": { "statistic": "p99" },
                    });
                    if metric.is_cumulative() {
                        c["durationSeconds"] = 300.into();
                    }
                    c
                }
            };
            behaviors.push(serde_json::json!({
                "name": metric.as_str(),
                "metric": metric.as_str(),
                "criteria": criteria,
            }));
        }
        let profile: SecurityProfile = serde_json::from_value(serde_json::json!({
            "securityProfileName": self.name(),
            "securityProfileArn": format!("arn:aws:iot:eval:000000000000:securityprofile/{}", self.name()),
            "version": 1,
            "creationDate": 0,
            "lastModifiedDate": 0,
            "behaviors": behaviors,
        }))
        .map_err(FitError::Profile)?;
        self.profile = Some(CompiledProfile::compile(&profile, &NoRegistry)?);
        Ok(())
    }

    fn observe(&mut self, dp: &Datapoint, out: &mut [Verdict]) {
        let Some(profile) = &self.profile else {
            out[0] = Verdict::default();
            return;
        };
        self.transitions.clear();
        self.scorer.observe(profile, dp, &mut self.transitions);
        out[0] = Verdict::of_transitions(&self.transitions);
    }

    fn upper_bound(&self, _: &str, metric: &Metric, _: EpochMillis, _: usize) -> Option<f64> {
        self.thresholds.get(metric).copied()
    }
}

/// A detector whose per-datapoint flags were computed elsewhere (`thing,metric,timestamp`
/// CSV, timestamp in epoch milliseconds); alarms follow the same state machine as rules with
/// one datapoint to alarm and one to clear.
struct External {
    label: String,
    flags: HashSet<(String, String, i64)>,
    states: HashMap<(String, Metric), AlarmState>,
}

impl External {
    fn load(label: &str, path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("Cannot read alarms file {}", path.display()))?;
        let mut flags = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            if i == 0 && line.starts_with("thing") {
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            let mut parts = line.split(',');
            let (Some(thing), Some(metric), Some(ts), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                bail!(
                    "{}:{}: expected thing,metric,timestamp",
                    path.display(),
                    i + 1
                );
            };
            let ts: i64 = ts.trim().parse().with_context(|| {
                format!(
                    "{}:{}: timestamp must be epoch milliseconds",
                    path.display(),
                    i + 1
                )
            })?;
            flags.insert((thing.to_owned(), metric.to_owned(), ts));
        }
        Ok(Self {
            label: label.to_owned(),
            flags,
            states: HashMap::new(),
        })
    }
}

impl Detector for External {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn train(&mut self, _: &TrainingSet, _: Span) -> Result<(), FitError> {
        Ok(())
    }

    fn observe(&mut self, dp: &Datapoint, out: &mut [Verdict]) {
        let flagged = self.flags.contains(&(
            dp.thing.as_str().to_owned(),
            dp.metric.as_str().to_owned(),
            dp.timestamp,
        ));
        let state = self
            .states
            .entry((dp.thing.as_str().to_owned(), dp.metric.clone()))
            .or_default();
        let change = state.step(flagged, 1, 1);
        out[0] = Verdict {
            flagged,
            alarm: matches!(change, Some(Change::Event(ViolationEventType::InAlarm))),
            clear: matches!(
                change,
                Some(Change::Event(ViolationEventType::AlarmCleared))
            ),
            score: if flagged { 1.0 } else { 0.0 },
            ..Verdict::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thingward_models::{ThingName, Value};

    fn observe(d: &mut dyn Detector, dp: &Datapoint) -> Verdict {
        let mut out = [Verdict::default()];
        d.observe(dp, &mut out);
        out[0]
    }

    fn dp(thing: &str, metric: Metric, ts: i64, x: f64) -> Datapoint {
        Datapoint {
            thing: ThingName::try_from(thing).unwrap(),
            metric,
            topic: None,
            timestamp: ts,
            value: Value::Number(x),
        }
    }

    #[test]
    fn p999_learns_a_fleet_threshold_and_alarms_above_it_through_the_scorer() {
        let mut training = TrainingSet::default();
        for i in 0..1000 {
            training.push(&Metric::AllBytesOut, f64::from(i));
        }
        let mut d = by_name("rules-p999").unwrap();
        d.train(&training, Span { start: 0, end: 1 }).unwrap();
        assert_eq!(d.upper_bound("a", &Metric::AllBytesOut, 0, 0), Some(998.0));
        assert_eq!(
            observe(&mut *d, &dp("a", Metric::AllBytesOut, 0, 500.0)),
            Verdict::default()
        );
        let v = observe(&mut *d, &dp("a", Metric::AllBytesOut, 1, 5000.0));
        assert!(v.flagged && v.alarm && !v.clear);
        let v = observe(&mut *d, &dp("a", Metric::AllBytesOut, 2, 6000.0));
        assert!(v.flagged && !v.alarm);
        let v = observe(&mut *d, &dp("a", Metric::AllBytesOut, 3, 1.0));
        assert!(!v.flagged && v.clear);
    }

    #[test]
    fn external_flags_drive_the_same_alarm_machine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alarms.csv");
        std::fs::write(
            &path,
            "thing,metric,timestamp\na,aws:all-bytes-out,10\na,aws:all-bytes-out,20\n",
        )
        .unwrap();
        let mut d = by_name(&format!("external:iforest={}", path.display())).unwrap();
        assert_eq!(d.name(), "iforest");
        let v = observe(&mut *d, &dp("a", Metric::AllBytesOut, 10, 1.0));
        assert!(v.flagged && v.alarm);
        let v = observe(&mut *d, &dp("a", Metric::AllBytesOut, 20, 1.0));
        assert!(v.flagged && !v.alarm);
        let v = observe(&mut *d, &dp("a", Metric::AllBytesOut, 30, 1.0));
        assert!(!v.flagged && v.clear);
        std::fs::write(&path, "a,b\n").unwrap();
        assert!(by_name(&format!("external:x={}", path.display())).is_err());
    }
}
