//! Shared builders: a registry, profiles from JSON, datapoints.

use thingward_models::profile::SecurityProfile;
use thingward_models::{CustomMetricType, Datapoint, Metric, ThingName, Value, ViolationEventType};
use thingward_scorer::{Change, CompiledProfile, Registry, Scorer, Transition};

/// A registry with a few custom metrics and dimensions.
pub(crate) struct Reg;

impl Registry for Reg {
    fn custom_metric_type(&self, name: &str) -> Option<CustomMetricType> {
        match name {
            "battery" => Some(CustomMetricType::Number),
            "codes" => Some(CustomMetricType::NumberList),
            "users" => Some(CustomMetricType::StringList),
            "peers" => Some(CustomMetricType::IpAddressList),
            _ => None,
        }
    }

    fn dimension_filters(&self, name: &str) -> Option<Vec<String>> {
        match name {
            "telemetry" => Some(vec![
                "dt/+/telemetry".into(),
                "devices/${iot:ClientId}/#".into(),
            ]),
            "admin" => Some(vec!["admin/#".into()]),
            _ => None,
        }
    }
}

/// A profile named `name` with the behaviors given as a JSON array.
pub(crate) fn profile(name: &str, behaviors: &str) -> CompiledProfile {
    let p: SecurityProfile = serde_json::from_str(&format!(
        r#"{{"securityProfileName":"{name}","securityProfileArn":"arn:aws:iot:r:a:securityprofile/{name}","version":1,"creationDate":0,"lastModifiedDate":0,"behaviors":{behaviors}}}"#
    ))
    .expect("profile json");
    CompiledProfile::compile(&p, &Reg).expect("profile compiles")
}

/// A thing name.
pub(crate) fn thing(name: &str) -> ThingName {
    ThingName::try_from(name).expect("thing name")
}

/// A datapoint without a topic.
pub(crate) fn dp(name: &str, metric: Metric, timestamp: i64, value: Value) -> Datapoint {
    Datapoint {
        thing: thing(name),
        metric,
        topic: None,
        timestamp,
        value,
    }
}

/// A datapoint on an MQTT topic.
pub(crate) fn dp_on(
    name: &str,
    metric: Metric,
    topic: &str,
    timestamp: i64,
    value: Value,
) -> Datapoint {
    Datapoint {
        topic: Some(topic.into()),
        ..dp(name, metric, timestamp, value)
    }
}

/// Observes one datapoint and returns what it caused.
pub(crate) fn observe(scorer: &mut Scorer, p: &CompiledProfile, d: &Datapoint) -> Vec<Transition> {
    let mut out = Vec::new();
    scorer.observe(p, d, &mut out);
    out
}

/// The changes alone, as short words: `in`, `still`, `cleared`, `invalidated`.
pub(crate) fn words(ts: &[Transition]) -> Vec<&'static str> {
    ts.iter().map(|t| word(t.change)).collect()
}

/// A change as a short word.
pub(crate) fn word(c: Change) -> &'static str {
    match c {
        Change::Event(ViolationEventType::InAlarm) => "in",
        Change::Event(ViolationEventType::AlarmCleared) => "cleared",
        Change::Event(ViolationEventType::AlarmInvalidated) => "invalidated",
        Change::StillInAlarm => "still",
    }
}
