//! Security profiles compiled for scoring: each behavior's metric, dimension, rule, window and
//! alarm parameters, resolved once so that [`crate::Scorer::observe`] does no lookups in the
//! registry and no parsing.

use crate::dimension::TopicDimension;
use crate::rules::Rule;
use crate::{Error, Registry};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use thingward_models::profile::SecurityProfile;
use thingward_models::{Behavior, DimensionOperator, Metric, ValueKind};

/// Distinguishes compilations, so the scorer can cache per-profile lookups and notice an update.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// A security profile ready for scoring.
#[derive(Debug, Clone)]
pub struct CompiledProfile {
    name: Arc<str>,
    behaviors: Vec<CompiledBehavior>,
    generation: u64,
}

/// One behavior of a [`CompiledProfile`].
#[derive(Debug, Clone)]
pub struct CompiledBehavior {
    name: Arc<str>,
    metric: Metric,
    dimension: Option<TopicDimension>,
    rule: Rule,
    window_ms: Option<i64>,
    to_alarm: u8,
    to_clear: u8,
    suppressed: bool,
}

impl CompiledProfile {
    /// Compiles every behavior of `profile`, resolving custom metric types and dimensions in
    /// `reg`. Behaviors without a metric are skipped; ML behaviors are kept but never evaluated
    /// by rules.
    ///
    /// # Errors
    /// The first behavior that cannot be compiled: an unknown custom metric or dimension, or
    /// criteria that do not fit the metric (see [`Error`]).
    pub fn compile(profile: &SecurityProfile, reg: &dyn Registry) -> Result<Self, Error> {
        let behaviors = profile
            .behaviors
            .iter()
            .filter_map(|b| CompiledBehavior::compile(b, reg).transpose())
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: profile.security_profile_name.as_str().into(),
            behaviors,
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The profile's name, shared.
    pub fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// Whether a rule behavior (static or statistical) of this profile watches `metric`, so
    /// that the binary can skip [`crate::Scorer::observe`] for datapoints nobody evaluates.
    pub fn watches(&self, metric: &Metric) -> bool {
        self.behaviors
            .iter()
            .any(|b| b.metric == *metric && !b.rule.is_machine_learning())
    }

    /// Whether an ML behavior of this profile watches `metric`.
    pub fn watches_ml(&self, metric: &Metric) -> bool {
        self.behaviors
            .iter()
            .any(|b| b.metric == *metric && b.rule.is_machine_learning())
    }

    /// Whether the profile has any ML behavior.
    pub fn has_ml(&self) -> bool {
        self.behaviors.iter().any(|b| b.rule.is_machine_learning())
    }

    /// The compiled behaviors, in the profile's order.
    pub fn behaviors(&self) -> &[CompiledBehavior] {
        &self.behaviors
    }

    /// Identifies this compilation (clones share it).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

impl CompiledBehavior {
    /// Compiles one behavior; `Ok(None)` for a behavior without a metric.
    fn compile(b: &Behavior, reg: &dyn Registry) -> Result<Option<Self>, Error> {
        let Some(metric) = &b.metric else {
            return Ok(None);
        };
        let kind = match metric {
            Metric::Custom(name) => reg
                .custom_metric_type(name)
                .ok_or_else(|| Error::UnknownCustomMetric {
                    behavior: b.name.clone(),
                    metric: name.clone(),
                })?
                .value_kind(),
            builtin => builtin
                .builtin_kind()
                .ok_or_else(|| Error::UnknownCustomMetric {
                    behavior: b.name.clone(),
                    metric: builtin.as_str().to_owned(),
                })?,
        };
        let criteria = b.criteria.as_ref().ok_or_else(|| Error::MissingCriteria {
            behavior: b.name.clone(),
        })?;
        let rule = Rule::compile(&b.name, criteria, kind)?;
        let dimension = match &b.metric_dimension {
            None => None,
            Some(dim) => {
                let filters = reg.dimension_filters(&dim.dimension_name).ok_or_else(|| {
                    Error::UnknownDimension {
                        behavior: b.name.clone(),
                        dimension: dim.dimension_name.clone(),
                    }
                })?;
                Some(TopicDimension::new(
                    &filters,
                    dim.operator.unwrap_or(DimensionOperator::In),
                ))
            }
        };
        let window_ms = criteria
            .duration_seconds
            .filter(|&d| {
                d > 0
                    && metric.is_cumulative()
                    && kind == ValueKind::Number
                    && !rule.is_machine_learning()
            })
            .map(|d| d.saturating_mul(1000));
        Ok(Some(Self {
            name: b.name.as_str().into(),
            metric: metric.clone(),
            dimension,
            rule,
            window_ms,
            to_alarm: criteria.datapoints_to_alarm(),
            to_clear: criteria.datapoints_to_clear(),
            suppressed: b.suppressed(),
        }))
    }

    /// The behavior's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The behavior's name, shared.
    pub fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The metric it watches.
    pub fn metric(&self) -> &Metric {
        &self.metric
    }

    /// The compiled criteria.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The compiled `TOPIC_FILTER` dimension, if any.
    pub fn dimension(&self) -> Option<&TopicDimension> {
        self.dimension.as_ref()
    }

    /// The aggregation window in milliseconds: `durationSeconds` of a cumulative numeric
    /// metric; None when the behavior evaluates each datapoint's own value.
    pub fn window_ms(&self) -> Option<i64> {
        self.window_ms
    }

    /// `consecutiveDatapointsToAlarm` (1..=10).
    pub fn datapoints_to_alarm(&self) -> u8 {
        self.to_alarm
    }

    /// `consecutiveDatapointsToClear` (1..=10).
    pub fn datapoints_to_clear(&self) -> u8 {
        self.to_clear
    }

    /// `suppressAlerts`.
    pub fn suppressed(&self) -> bool {
        self.suppressed
    }

    /// Whether a datapoint of `thing` on `topic` passes the behavior's dimension (always, when
    /// it has none).
    #[inline]
    pub fn sees(&self, topic: Option<&str>, thing: &str) -> bool {
        self.dimension
            .as_ref()
            .is_none_or(|d| d.accepts(topic, thing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thingward_models::CustomMetricType;

    struct Reg;

    impl Registry for Reg {
        fn custom_metric_type(&self, name: &str) -> Option<CustomMetricType> {
            (name == "battery").then_some(CustomMetricType::Number)
        }
        fn dimension_filters(&self, name: &str) -> Option<Vec<String>> {
            (name == "topics").then(|| vec!["a/#".to_owned()])
        }
    }

    fn profile(behaviors: &str) -> SecurityProfile {
        serde_json::from_str(&format!(
            r#"{{"securityProfileName":"p","securityProfileArn":"arn","version":1,"creationDate":0,"lastModifiedDate":0,"behaviors":{behaviors}}}"#
        ))
        .expect("profile json")
    }

    #[test]
    fn compiles_rules_skips_metricless_and_keeps_ml_unevaluated() {
        let p = profile(
            r#"[
            {"name":"sent","metric":"aws:num-messages-sent","metricDimension":{"dimensionName":"topics","operator":"NOT_IN"},
             "criteria":{"comparisonOperator":"less-than","value":{"count":10},"durationSeconds":300,"consecutiveDatapointsToAlarm":2}},
            {"name":"size","metric":"aws:message-byte-size","criteria":{"comparisonOperator":"less-than","value":{"count":10},"durationSeconds":300}},
            {"name":"bat","metric":"battery","criteria":{"comparisonOperator":"greater-than","value":{"number":5}},"suppressAlerts":true},
            {"name":"ml","metric":"aws:all-bytes-out","criteria":{"mlDetectionConfig":{"confidenceLevel":"LOW"}}},
            {"name":"nometric","criteria":{"comparisonOperator":"less-than","value":{"count":1}}}
        ]"#,
        );
        let c = CompiledProfile::compile(&p, &Reg).expect("compiles");
        assert_eq!(c.name(), "p");
        let names: Vec<&str> = c.behaviors().iter().map(CompiledBehavior::name).collect();
        assert_eq!(names, ["sent", "size", "bat", "ml"]);
        let [sent, size, bat, ml] = c.behaviors() else {
            panic!("four behaviors")
        };
        assert_eq!(sent.window_ms(), Some(300_000));
        assert_eq!(sent.datapoints_to_alarm(), 2);
        assert!(!sent.sees(Some("a/b"), "t") && sent.sees(Some("b"), "t"));
        assert_eq!(size.window_ms(), None, "message size is not cumulative");
        assert!(bat.suppressed());
        assert!(ml.rule().is_machine_learning());
        assert!(c.watches(&Metric::NumMessagesSent));
        assert!(c.watches(&Metric::Custom("battery".into())));
        assert!(
            !c.watches(&Metric::AllBytesOut),
            "ML behaviors are not watched by rules"
        );
        assert_ne!(
            c.generation(),
            CompiledProfile::compile(&p, &Reg)
                .expect("compiles")
                .generation()
        );
    }

    #[test]
    fn unknown_registry_entries_are_errors() {
        let p = profile(
            r#"[{"name":"b","metric":"nosuch","criteria":{"comparisonOperator":"less-than","value":{"number":1}}}]"#,
        );
        assert!(matches!(
            CompiledProfile::compile(&p, &Reg),
            Err(Error::UnknownCustomMetric { .. })
        ));
        let p = profile(
            r#"[{"name":"b","metric":"aws:num-messages-sent","metricDimension":{"dimensionName":"gone"},"criteria":{"comparisonOperator":"less-than","value":{"count":1}}}]"#,
        );
        assert!(matches!(
            CompiledProfile::compile(&p, &Reg),
            Err(Error::UnknownDimension { .. })
        ));
        let p = profile(r#"[{"name":"b","metric":"aws:num-messages-sent"}]"#);
        assert!(matches!(
            CompiledProfile::compile(&p, &Reg),
            Err(Error::MissingCriteria { .. })
        ));
    }
}
