//! Behaviors and their criteria (the AWS `Behavior` shape) and the rules a valid one obeys.

use crate::metric::{CustomMetricType, Metric, ValueKind};
use crate::names::check_resource_name;
use crate::registry::Registry;
use crate::value::MetricValue;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::IpAddr;

/// A behavior: what normal looks like for one metric of the devices a profile targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Behavior {
    /// Unique within its profile; `[a-zA-Z0-9:_-]{1,128}`.
    pub name: String,
    /// The metric the behavior watches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    /// A `TOPIC_FILTER` dimension that narrows the metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_dimension: Option<MetricDimension>,
    /// The criteria by which the behavior is determined to be normal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criteria: Option<BehaviorCriteria>,
    /// Evaluate and record violations, but send no notifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppress_alerts: Option<bool>,
    /// Include the metric in the metrics export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_metric: Option<bool>,
}

impl Behavior {
    /// Which kind of criteria this behavior has (None when it has no usable criteria).
    pub fn criteria_type(&self) -> Option<BehaviorCriteriaType> {
        self.criteria
            .as_ref()
            .and_then(BehaviorCriteria::criteria_type)
    }

    /// Whether alerts for this behavior are suppressed.
    pub fn suppressed(&self) -> bool {
        self.suppress_alerts.unwrap_or(false)
    }

    /// The `mlDetectionConfig.confidenceLevel` of an ML behavior (None for a rule).
    pub fn confidence_level(&self) -> Option<ConfidenceLevel> {
        self.criteria
            .as_ref()
            .and_then(|c| c.ml_detection_config)
            .map(|m| m.confidence_level)
    }
}

/// A `TOPIC_FILTER` dimension applied to a behavior's metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricDimension {
    /// The dimension's name.
    pub dimension_name: String,
    /// `IN` (the default) or `NOT_IN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<DimensionOperator>,
}

/// How a dimension's values select datapoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DimensionOperator {
    /// The datapoint's topic matches one of the dimension's filters.
    #[serde(rename = "IN")]
    In,
    /// The datapoint's topic matches none of the dimension's filters.
    #[serde(rename = "NOT_IN")]
    NotIn,
}

/// The AWS `BehaviorCriteria` shape.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BehaviorCriteria {
    /// Relates the metric to `value` or `statisticalThreshold`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison_operator: Option<ComparisonOperator>,
    /// A static value to compare with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<MetricValue>,
    /// The aggregation window for metrics with a time dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<i64>,
    /// Violating datapoints in a row before an alarm (1..=10, default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_datapoints_to_alarm: Option<i64>,
    /// Compliant datapoints in a row before the alarm clears (1..=10, default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consecutive_datapoints_to_clear: Option<i64>,
    /// A percentile over the profile's devices to compare with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistical_threshold: Option<StatisticalThreshold>,
    /// ML Detect configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ml_detection_config: Option<MachineLearningDetectionConfig>,
}

impl BehaviorCriteria {
    /// The criteria type, by which member is set (the first of ML, statistical, static).
    pub fn criteria_type(&self) -> Option<BehaviorCriteriaType> {
        if self.ml_detection_config.is_some() {
            Some(BehaviorCriteriaType::MachineLearning)
        } else if self.statistical_threshold.is_some() {
            Some(BehaviorCriteriaType::Statistical)
        } else if self.value.is_some() {
            Some(BehaviorCriteriaType::Static)
        } else {
            None
        }
    }

    /// `consecutiveDatapointsToAlarm` with its default.
    pub fn datapoints_to_alarm(&self) -> u8 {
        self.consecutive_datapoints_to_alarm
            .map_or(1, |n| n.clamp(1, 10) as u8)
    }

    /// `consecutiveDatapointsToClear` with its default.
    pub fn datapoints_to_clear(&self) -> u8 {
        self.consecutive_datapoints_to_clear
            .map_or(1, |n| n.clamp(1, 10) as u8)
    }
}

/// The AWS comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComparisonOperator {
    /// `less-than`
    LessThan,
    /// `less-than-equals`
    LessThanEquals,
    /// `greater-than`
    GreaterThan,
    /// `greater-than-equals`
    GreaterThanEquals,
    /// `in-cidr-set`
    InCidrSet,
    /// `not-in-cidr-set`
    NotInCidrSet,
    /// `in-port-set`
    InPortSet,
    /// `not-in-port-set`
    NotInPortSet,
    /// `in-set`
    InSet,
    /// `not-in-set`
    NotInSet,
}

impl ComparisonOperator {
    /// Whether this operator fits values of `kind`.
    pub fn suits(self, kind: ValueKind) -> bool {
        use ComparisonOperator as C;
        match kind {
            ValueKind::Number => {
                matches!(
                    self,
                    C::LessThan | C::LessThanEquals | C::GreaterThan | C::GreaterThanEquals
                )
            }
            ValueKind::IpList => matches!(self, C::InCidrSet | C::NotInCidrSet),
            ValueKind::PortList => matches!(self, C::InPortSet | C::NotInPortSet),
            ValueKind::NumberList | ValueKind::StringList => matches!(self, C::InSet | C::NotInSet),
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        use ComparisonOperator as C;
        match self {
            C::LessThan => "less-than",
            C::LessThanEquals => "less-than-equals",
            C::GreaterThan => "greater-than",
            C::GreaterThanEquals => "greater-than-equals",
            C::InCidrSet => "in-cidr-set",
            C::NotInCidrSet => "not-in-cidr-set",
            C::InPortSet => "in-port-set",
            C::NotInPortSet => "not-in-port-set",
            C::InSet => "in-set",
            C::NotInSet => "not-in-set",
        }
    }
}

/// `StatisticalThreshold { statistic }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatisticalThreshold {
    /// The percentile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistic: Option<Statistic>,
}

/// The percentiles AWS allows in a statistical threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Statistic {
    /// p0
    #[serde(rename = "p0")]
    P0,
    /// p0.1
    #[serde(rename = "p0.1")]
    P0_1,
    /// p0.01
    #[serde(rename = "p0.01")]
    P0_01,
    /// p1
    #[serde(rename = "p1")]
    P1,
    /// p10
    #[serde(rename = "p10")]
    P10,
    /// p50
    #[serde(rename = "p50")]
    P50,
    /// p90
    #[serde(rename = "p90")]
    P90,
    /// p99
    #[serde(rename = "p99")]
    P99,
    /// p99.9
    #[serde(rename = "p99.9")]
    P99_9,
    /// p99.99
    #[serde(rename = "p99.99")]
    P99_99,
    /// p100
    #[serde(rename = "p100")]
    P100,
}

impl Statistic {
    /// The percentile as a quantile in [0, 1].
    pub fn quantile(self) -> f64 {
        match self {
            Self::P0 => 0.0,
            Self::P0_1 => 0.001,
            Self::P0_01 => 0.0001,
            Self::P1 => 0.01,
            Self::P10 => 0.10,
            Self::P50 => 0.50,
            Self::P90 => 0.90,
            Self::P99 => 0.99,
            Self::P99_9 => 0.999,
            Self::P99_99 => 0.9999,
            Self::P100 => 1.0,
        }
    }
}

/// ML Detect confidence levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConfidenceLevel {
    /// Most sensitive.
    Low,
    /// Balanced.
    Medium,
    /// Fewest alarms.
    High,
}

/// `MachineLearningDetectionConfig { confidenceLevel }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineLearningDetectionConfig {
    /// The level at which the behavior alarms.
    pub confidence_level: ConfidenceLevel,
}

/// The three kinds of criteria (a filter on the violation lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BehaviorCriteriaType {
    /// A static value.
    Static,
    /// A percentile across the profile's devices.
    Statistical,
    /// ML Detect.
    MachineLearning,
}

impl BehaviorCriteriaType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "STATIC",
            Self::Statistical => "STATISTICAL",
            Self::MachineLearning => "MACHINE_LEARNING",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Static, Self::Statistical, Self::MachineLearning]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// The `durationSeconds` values AWS documents for metrics with a time dimension.
pub const DURATIONS_SECONDS: [i64; 5] = [300, 600, 900, 1800, 3600];

/// The value kind of `metric`, looking custom metrics up in the registry.
pub fn metric_kind(metric: &Metric, ctx: &dyn Registry) -> Option<ValueKind> {
    match metric {
        Metric::Custom(name) => ctx
            .custom_metric_type(name)
            .map(CustomMetricType::value_kind),
        m => m.builtin_kind(),
    }
}

/// Checks a profile's behaviors against every rule AWS applies (and the ones its docs state),
/// returning one message per problem; an empty list means valid.
pub fn validate_behaviors(behaviors: &[Behavior], ctx: &dyn Registry) -> Vec<String> {
    let mut errors = Vec::new();
    if behaviors.len() > 100 {
        errors.push(format!(
            "A profile has at most 100 behaviors; got {}",
            behaviors.len()
        ));
    }
    let mut seen = HashSet::new();
    for b in behaviors {
        if let Err(e) = check_resource_name("behavior name", &b.name) {
            errors.push(e.to_string());
        }
        if !seen.insert(b.name.as_str()) {
            errors.push(format!("Behavior name '{}' is used more than once", b.name));
        }
        validate_behavior(b, ctx, &mut errors);
    }
    errors
}

fn validate_behavior(b: &Behavior, ctx: &dyn Registry, errors: &mut Vec<String>) {
    let name = &b.name;
    let Some(metric) = &b.metric else {
        errors.push(format!("Behavior '{name}': metric is required"));
        return;
    };
    let Some(kind) = metric_kind(metric, ctx) else {
        errors.push(format!(
            "Behavior '{name}': custom metric '{metric}' does not exist"
        ));
        return;
    };
    if let Some(dim) = &b.metric_dimension {
        if !metric.supports_dimension() {
            errors.push(format!(
                "Behavior '{name}': metric '{metric}' does not accept a dimension"
            ));
        } else if !ctx.dimension_exists(&dim.dimension_name) {
            errors.push(format!(
                "Behavior '{name}': dimension '{}' does not exist",
                dim.dimension_name
            ));
        }
    }
    let Some(c) = &b.criteria else {
        errors.push(format!("Behavior '{name}': criteria is required"));
        return;
    };
    for (field, n) in [
        (
            "consecutiveDatapointsToAlarm",
            c.consecutive_datapoints_to_alarm,
        ),
        (
            "consecutiveDatapointsToClear",
            c.consecutive_datapoints_to_clear,
        ),
    ] {
        if let Some(n) = n
            && !(1..=10).contains(&n)
        {
            errors.push(format!("Behavior '{name}': {field} must be 1..10, got {n}"));
        }
    }
    let set = usize::from(c.value.is_some())
        + usize::from(c.statistical_threshold.is_some())
        + usize::from(c.ml_detection_config.is_some());
    if set != 1 {
        errors.push(format!(
            "Behavior '{name}': criteria must hold exactly one of value, statisticalThreshold or mlDetectionConfig"
        ));
        return;
    }
    if c.ml_detection_config.is_some() {
        validate_ml(b, metric, kind, c, errors);
        return;
    }
    let Some(op) = c.comparison_operator else {
        errors.push(format!("Behavior '{name}': comparisonOperator is required"));
        return;
    };
    if !op.suits(kind) {
        errors.push(format!(
            "Behavior '{name}': operator '{}' does not suit metric '{metric}' ({})",
            op.as_str(),
            kind_words(kind)
        ));
    }
    if let Some(d) = c.duration_seconds {
        if kind != ValueKind::Number {
            errors.push(format!(
                "Behavior '{name}': durationSeconds cannot be used with list metric '{metric}'"
            ));
        } else if !DURATIONS_SECONDS.contains(&d) {
            errors.push(format!(
                "Behavior '{name}': durationSeconds must be one of 300, 600, 900, 1800, 3600; got {d}"
            ));
        }
    }
    if let Some(st) = &c.statistical_threshold {
        if kind != ValueKind::Number {
            errors.push(format!(
                "Behavior '{name}': statisticalThreshold needs a numeric metric, not '{metric}'"
            ));
        }
        if st.statistic.is_none() {
            errors.push(format!(
                "Behavior '{name}': statisticalThreshold.statistic is required"
            ));
        }
    }
    if let Some(v) = &c.value {
        validate_value(name, metric, kind, v, errors);
    }
}

fn validate_ml(
    b: &Behavior,
    metric: &Metric,
    kind: ValueKind,
    c: &BehaviorCriteria,
    errors: &mut Vec<String>,
) {
    let name = &b.name;
    let custom_number = matches!(metric, Metric::Custom(_)) && kind == ValueKind::Number;
    if !(metric.ml_capable() || custom_number) {
        errors.push(format!(
            "Behavior '{name}': ML Detect does not support metric '{metric}'"
        ));
    }
    if c.comparison_operator.is_some() || c.duration_seconds.is_some() {
        errors.push(format!(
            "Behavior '{name}': an ML behavior takes no comparisonOperator or durationSeconds"
        ));
    }
    if b.metric_dimension.is_some() && !(metric.ml_capable() && metric.supports_dimension()) {
        errors.push(format!(
            "Behavior '{name}': ML Detect accepts a dimension only on message and authorization metrics"
        ));
    }
}

fn validate_value(
    name: &str,
    metric: &Metric,
    kind: ValueKind,
    v: &MetricValue,
    errors: &mut Vec<String>,
) {
    if v.members_set() != 1 {
        errors.push(format!(
            "Behavior '{name}': value must set exactly one member"
        ));
        return;
    }
    let custom = matches!(metric, Metric::Custom(_));
    let ok = match kind {
        ValueKind::Number if custom => v.number.is_some(),
        ValueKind::Number => v.count.is_some(),
        ValueKind::IpList => v.cidrs.is_some(),
        ValueKind::PortList => v.ports.is_some(),
        ValueKind::NumberList => v.numbers.is_some(),
        ValueKind::StringList => v.strings.is_some(),
    };
    if !ok {
        let want = match kind {
            ValueKind::Number if custom => "number",
            ValueKind::Number => "count",
            ValueKind::IpList => "cidrs",
            ValueKind::PortList => "ports",
            ValueKind::NumberList => "numbers",
            ValueKind::StringList => "strings",
        };
        errors.push(format!(
            "Behavior '{name}': metric '{metric}' takes value.{want}"
        ));
        return;
    }
    if let Some(n) = v.count
        && n < 0
    {
        errors.push(format!(
            "Behavior '{name}': value.count must be ≥ 0, got {n}"
        ));
    }
    if let Some(x) = v.number
        && !x.is_finite()
    {
        errors.push(format!("Behavior '{name}': value.number must be finite"));
    }
    for p in v.ports.iter().flatten() {
        if !(0..=65535).contains(p) {
            errors.push(format!("Behavior '{name}': port {p} is outside 0..65535"));
        }
    }
    for cidr in v.cidrs.iter().flatten() {
        if let Err(e) = parse_cidr(cidr) {
            errors.push(format!("Behavior '{name}': {e}"));
        }
    }
}

fn kind_words(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Number => {
            "numeric: less-than, less-than-equals, greater-than, greater-than-equals"
        }
        ValueKind::IpList => "IP list: in-cidr-set, not-in-cidr-set",
        ValueKind::PortList => "port list: in-port-set, not-in-port-set",
        ValueKind::NumberList | ValueKind::StringList => "list: in-set, not-in-set",
    }
}

/// Parses a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (a /32 or /128).
///
/// # Errors
/// A message naming the bad CIDR.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("'{s}' is not a CIDR or IP address");
    if s.len() < 2 || s.len() > 43 {
        return Err(bad());
    }
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?,
        None => max,
    };
    Ok((ip, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Reg;

    impl Registry for Reg {
        fn custom_metric_type(&self, name: &str) -> Option<CustomMetricType> {
            match name {
                "battery" => Some(CustomMetricType::Number),
                "flags" => Some(CustomMetricType::StringList),
                _ => None,
            }
        }
        fn dimension_filters(&self, name: &str) -> Option<Vec<String>> {
            (name == "topics").then(Vec::new)
        }
    }

    fn behavior(json: &str) -> Behavior {
        serde_json::from_str(json).expect("behavior json")
    }

    fn errors(json: &str) -> Vec<String> {
        validate_behaviors(&[behavior(json)], &Reg)
    }

    #[test]
    fn valid_behaviors_of_each_kind_pass() {
        for json in [
            r#"{"name":"b","metric":"aws:num-messages-sent","criteria":{"comparisonOperator":"less-than","value":{"count":100},"durationSeconds":300}}"#,
            r#"{"name":"b","metric":"aws:listening-tcp-ports","criteria":{"comparisonOperator":"in-port-set","value":{"ports":[22,443]}}}"#,
            r#"{"name":"b","metric":"aws:source-ip-address","criteria":{"comparisonOperator":"in-cidr-set","value":{"cidrs":["10.0.0.0/8","2001:db8::1"]}}}"#,
            r#"{"name":"b","metric":"battery","criteria":{"comparisonOperator":"greater-than","value":{"number":5.5}}}"#,
            r#"{"name":"b","metric":"flags","criteria":{"comparisonOperator":"not-in-set","value":{"strings":["x"]}}}"#,
            r#"{"name":"b","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than","statisticalThreshold":{"statistic":"p90"},"durationSeconds":900}}"#,
            r#"{"name":"b","metric":"aws:all-bytes-out","criteria":{"mlDetectionConfig":{"confidenceLevel":"HIGH"}}}"#,
            r#"{"name":"b","metric":"aws:num-messages-sent","metricDimension":{"dimensionName":"topics"},"criteria":{"comparisonOperator":"less-than","value":{"count":1}}}"#,
        ] {
            assert_eq!(errors(json), Vec::<String>::new(), "{json}");
        }
    }

    #[test]
    fn each_broken_rule_is_named() {
        let cases = [
            (
                r#"{"name":"b","metric":"aws:listening-tcp-ports","criteria":{"comparisonOperator":"less-than","value":{"count":1}}}"#,
                "does not suit",
            ),
            (
                r#"{"name":"b","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than","value":{"ports":[1]}}}"#,
                "takes value.count",
            ),
            (
                r#"{"name":"b","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than","value":{"count":1},"durationSeconds":301}}"#,
                "durationSeconds must be one of",
            ),
            (
                r#"{"name":"b","metric":"aws:listening-tcp-ports","criteria":{"comparisonOperator":"in-port-set","value":{"ports":[1]},"durationSeconds":300}}"#,
                "cannot be used with list",
            ),
            (
                r#"{"name":"b","metric":"aws:listening-tcp-ports","criteria":{"mlDetectionConfig":{"confidenceLevel":"LOW"}}}"#,
                "does not support",
            ),
            (
                r#"{"name":"b","metric":"nosuch","criteria":{"comparisonOperator":"less-than","value":{"number":1}}}"#,
                "does not exist",
            ),
            (
                r#"{"name":"b","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than","value":{"count":1},"consecutiveDatapointsToAlarm":11}}"#,
                "1..10",
            ),
            (
                r#"{"name":"b","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than","value":{"count":1},"mlDetectionConfig":{"confidenceLevel":"LOW"}}}"#,
                "exactly one",
            ),
            (
                r#"{"name":"b","metric":"aws:all-bytes-out","metricDimension":{"dimensionName":"topics"},"criteria":{"comparisonOperator":"less-than","value":{"count":1}}}"#,
                "does not accept a dimension",
            ),
            (
                r#"{"name":"b","metric":"aws:source-ip-address","criteria":{"comparisonOperator":"in-cidr-set","value":{"cidrs":["10.0.0.0/33"]}}}"#,
                "is not a CIDR",
            ),
            (
                r#"{"name":"b c","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than","value":{"count":1}}}"#,
                "must match",
            ),
            (
                r#"{"name":"b","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than","value":{"count":-1}}}"#,
                "≥ 0",
            ),
        ];
        for (json, want) in cases {
            let errs = errors(json);
            assert!(errs.iter().any(|e| e.contains(want)), "{json}: {errs:?}");
        }
    }

    #[test]
    fn duplicate_behavior_names_are_refused() {
        let b = behavior(
            r#"{"name":"b","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than","value":{"count":1}}}"#,
        );
        let errs = validate_behaviors(&[b.clone(), b], &Reg);
        assert!(
            errs.iter().any(|e| e.contains("more than once")),
            "{errs:?}"
        );
    }

    #[test]
    fn behavior_round_trips_the_aws_json() {
        let json = r#"{"name":"b","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than","statisticalThreshold":{"statistic":"p99.9"},"durationSeconds":900,"consecutiveDatapointsToAlarm":2},"suppressAlerts":true}"#;
        let b = behavior(json);
        let back: serde_json::Value = serde_json::to_value(&b).expect("json");
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(json).expect("json")
        );
        assert_eq!(b.criteria_type(), Some(BehaviorCriteriaType::Statistical));
    }
}
