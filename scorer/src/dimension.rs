//! `TOPIC_FILTER` dimensions: which datapoints a dimensioned behavior sees.
//!
//! A dimension holds MQTT topic filters. With operator `IN` (the default) a behavior sees the
//! datapoints whose topic matches at least one filter; with `NOT_IN`, those whose topic matches
//! none. Datapoints without a topic (device-side metrics) are never seen by a dimensioned
//! behavior, whatever the operator.
//!
//! Matching follows MQTT 3.1.1 §4.7: `+` matches exactly one level, `#` (last) matches the
//! parent level and everything below it, and neither wildcard in the first level matches a
//! topic starting with `$`. The policy variable `${iot:ClientId}` inside a level is replaced by
//! the thing name (thingward's client id). Filters are validated when the dimension is created;
//! a malformed one here (`a+b`, `#` mid-filter) is matched as best it can be, never refused.

use thingward_models::DimensionOperator;

/// The policy variable replaced by the thing name.
pub const CLIENT_ID_VARIABLE: &str = "${iot:ClientId}";

/// A compiled dimension: its topic filters and operator.
#[derive(Debug, Clone)]
pub struct TopicDimension {
    filters: Vec<TopicFilter>,
    operator: DimensionOperator,
}

impl TopicDimension {
    /// Compiles the dimension's filters.
    pub fn new<S: AsRef<str>>(filters: &[S], operator: DimensionOperator) -> Self {
        Self {
            filters: filters
                .iter()
                .map(|f| TopicFilter::parse(f.as_ref()))
                .collect(),
            operator,
        }
    }

    /// Whether a datapoint of `thing` on `topic` passes the dimension.
    pub fn accepts(&self, topic: Option<&str>, thing: &str) -> bool {
        let Some(topic) = topic else { return false };
        let matched = self.filters.iter().any(|f| f.matches(topic, thing));
        match self.operator {
            DimensionOperator::In => matched,
            DimensionOperator::NotIn => !matched,
        }
    }
}

/// One topic filter, split into levels.
#[derive(Debug, Clone)]
struct TopicFilter {
    levels: Vec<Level>,
}

#[derive(Debug, Clone)]
enum Level {
    /// A literal level.
    Exact(Box<str>),
    /// `+`
    Single,
    /// `#`
    Rest,
    /// A level containing `${iot:ClientId}`: the literal pieces around each occurrence.
    WithClientId(Vec<Box<str>>),
}

impl TopicFilter {
    fn parse(filter: &str) -> Self {
        let levels = filter
            .split('/')
            .map(|level| match level {
                "+" => Level::Single,
                "#" => Level::Rest,
                l if l.contains(CLIENT_ID_VARIABLE) => {
                    Level::WithClientId(l.split(CLIENT_ID_VARIABLE).map(Into::into).collect())
                }
                l => Level::Exact(l.into()),
            })
            .collect();
        Self { levels }
    }

    fn matches(&self, topic: &str, thing: &str) -> bool {
        let mut topic_levels = topic.split('/');
        for (i, level) in self.levels.iter().enumerate() {
            let wildcard_on_system_topic = i == 0 && topic.starts_with('$');
            if let Level::Rest = level {
                return !wildcard_on_system_topic;
            }
            let Some(t) = topic_levels.next() else {
                return false;
            };
            let ok = match level {
                Level::Single => !wildcard_on_system_topic,
                Level::Exact(s) => **s == *t,
                Level::WithClientId(pieces) => matches_with_client_id(pieces, t, thing),
                Level::Rest => true,
            };
            if !ok {
                return false;
            }
        }
        topic_levels.next().is_none()
    }
}

/// Whether `level` equals the pieces joined by `client_id`, without allocating.
fn matches_with_client_id(pieces: &[Box<str>], level: &str, client_id: &str) -> bool {
    let mut rest = level;
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            let Some(r) = rest.strip_prefix(client_id) else {
                return false;
            };
            rest = r;
        }
        let Some(r) = rest.strip_prefix(&**piece) else {
            return false;
        };
        rest = r;
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(filter: &str, topic: &str) -> bool {
        TopicFilter::parse(filter).matches(topic, "cam-1")
    }

    #[test]
    fn literal_and_single_level_wildcards() {
        assert!(matches("a/b", "a/b"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(matches("a/+/c", "a/x/c"));
        assert!(matches("a/+/c", "a//c"), "+ matches an empty level");
        assert!(!matches("a/+/c", "a/x/y/c"));
        assert!(matches("+/+", "a/b"));
        assert!(!matches("+", "a/b"));
        assert!(matches("+", "a"));
    }

    #[test]
    fn multi_level_wildcard_matches_parent_and_below() {
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c/d"));
        assert!(!matches("a/#", "b/c"));
        assert!(matches("#", "anything/at/all"));
        assert!(matches("a/+/#", "a/b"));
        assert!(!matches("a/+/#", "a"));
    }

    #[test]
    fn wildcards_skip_system_topics_at_the_first_level() {
        assert!(!matches("#", "$aws/things/x"));
        assert!(!matches("+/things/x", "$aws/things/x"));
        assert!(matches("$aws/#", "$aws/things/x"));
        assert!(matches("$aws/+/x", "$aws/things/x"));
    }

    #[test]
    fn client_id_variable_is_the_thing_name() {
        assert!(matches(
            "devices/${iot:ClientId}/telemetry",
            "devices/cam-1/telemetry"
        ));
        assert!(!matches(
            "devices/${iot:ClientId}/telemetry",
            "devices/cam-2/telemetry"
        ));
        assert!(matches(
            "d/pre-${iot:ClientId}-post/#",
            "d/pre-cam-1-post/x"
        ));
        assert!(!matches("d/pre-${iot:ClientId}-post", "d/pre-cam-1-pos"));
        assert!(matches("${iot:ClientId}${iot:ClientId}", "cam-1cam-1"));
        assert!(!matches("${iot:ClientId}", "cam-1x"));
    }

    #[test]
    fn operators_and_missing_topics() {
        let filters = ["admin/#", "devices/${iot:ClientId}/cmd"];
        let inside = TopicDimension::new(&filters, DimensionOperator::In);
        let outside = TopicDimension::new(&filters, DimensionOperator::NotIn);
        for (topic, is_in) in [
            ("admin/x", true),
            ("devices/cam-1/cmd", true),
            ("devices/cam-9/cmd", false),
            ("t", false),
        ] {
            assert_eq!(inside.accepts(Some(topic), "cam-1"), is_in, "{topic}");
            assert_eq!(outside.accepts(Some(topic), "cam-1"), !is_in, "{topic}");
        }
        assert!(!inside.accepts(None, "cam-1"));
        assert!(!outside.accepts(None, "cam-1"));
        let none = TopicDimension::new::<&str>(&[], DimensionOperator::NotIn);
        assert!(
            none.accepts(Some("x"), "t"),
            "NOT_IN nothing admits every topic"
        );
    }
}
