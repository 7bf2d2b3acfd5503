//! The Device Defender report topics: which topics thingward subscribes to, how a report topic
//! names its thing and format, and where the reply to a report goes.

use thingward_ingest::report::Format;
use thingward_models::ThingName;

/// The topics thingward subscribes to.
pub(super) const REPORT_TOPICS: [&str; 2] = [
    "$aws/things/+/defender/metrics/json",
    "$aws/things/+/defender/metrics/cbor",
];

const TOPIC_PREFIX: &str = "$aws/things/";
const TOPIC_METRICS: &str = "/defender/metrics/";
const ACCEPTED: &str = "accepted";
const REJECTED: &str = "rejected";

/// Recognises a report topic, `$aws/things/{thing}/defender/metrics/{json|cbor}`, and returns
/// its thing name and format.
///
/// `None` means "not a Device Defender report topic" (including the `/accepted` and `/rejected`
/// reply topics, uppercase `JSON`/`CBOR`, and a thing segment spanning several levels). A topic
/// of the right shape whose thing segment breaks the thing-name rules (empty, over 128 bytes,
/// control characters) is recognised with `Err(segment)`, the segment as in the topic: reply to
/// it with [`thingward_ingest::report::ReportError::invalid_thing_name`] so that the device gets a rejection.
pub(super) fn parse_topic(topic: &str) -> Option<(Result<ThingName, String>, Format)> {
    let (segment, suffix) = topic
        .strip_prefix(TOPIC_PREFIX)?
        .split_once(TOPIC_METRICS)?;
    if segment.contains('/') {
        return None;
    }
    let format = Format::from_suffix(suffix)?;
    Some((
        ThingName::try_from(segment).map_err(|_| segment.to_owned()),
        format,
    ))
}

/// The topic a reply goes to: `$aws/things/{thing}/defender/metrics/{json|cbor}/{accepted|rejected}`.
pub(super) fn reply_topic(thing: &str, format: Format, accepted: bool) -> String {
    let outcome = if accepted { ACCEPTED } else { REJECTED };
    format!(
        "{TOPIC_PREFIX}{thing}{TOPIC_METRICS}{}/{outcome}",
        format.suffix()
    )
}
#[cfg(test)]
mod tests {
    use super::*;
    use thingward_ingest::report::ReportError;

    #[test]
    fn report_topics_are_recognised() {
        let (thing, format) = parse_topic("$aws/things/dev1/defender/metrics/json").expect("topic");
        assert_eq!(
            (thing.expect("valid").as_str(), format),
            ("dev1", Format::Json)
        );
        let (thing, format) =
            parse_topic("$aws/things/dev-1:a_b/defender/metrics/cbor").expect("topic");
        assert_eq!(
            (thing.expect("valid").as_str(), format),
            ("dev-1:a_b", Format::Cbor)
        );
        let longest = "x".repeat(128);
        let (thing, _) =
            parse_topic(&format!("$aws/things/{longest}/defender/metrics/json")).expect("topic");
        assert!(thing.is_ok());
        for other in [
            "$aws/things/dev1/defender/metrics/json/accepted",
            "$aws/things/dev1/defender/metrics/cbor/rejected",
            "$aws/things/dev1/defender/metrics/JSON",
            "$aws/things/dev1/defender/metrics/xml",
            "$aws/things/a/b/defender/metrics/json",
            "$aws/things/dev1/shadow/update",
            "things/dev1/defender/metrics/json",
        ] {
            assert!(parse_topic(other).is_none(), "{other}");
        }
    }

    #[test]
    fn bad_thing_names_in_topics_are_rejections_not_ignored() {
        let long = "x".repeat(129);
        for bad in [long.as_str(), "bad\u{7}name", "tab\there", ""] {
            let topic = format!("$aws/things/{bad}/defender/metrics/json");
            let (thing, format) = parse_topic(&topic).expect("recognised");
            assert_eq!(format, Format::Json);
            let raw = thing.expect_err("invalid name");
            assert_eq!(raw, bad);
            let e = ReportError::invalid_thing_name(&raw);
            assert_eq!(e.code(), "InvalidThingName");
            assert_eq!(e.report_id(), None);
            assert!(
                e.to_string()
                    .starts_with("the thing name in the topic is invalid: thing name"),
                "{e}"
            );
        }
        let e = ReportError::invalid_thing_name(&long);
        assert_eq!(
            e.to_string(),
            "the thing name in the topic is invalid: thing name is 129 bytes long; at most 128 are allowed"
        );
    }

    #[test]
    fn reply_topics_follow_the_report_topic() {
        assert_eq!(
            reply_topic("dev1", Format::Json, true),
            "$aws/things/dev1/defender/metrics/json/accepted"
        );
        assert_eq!(
            reply_topic("dev1", Format::Cbor, false),
            "$aws/things/dev1/defender/metrics/cbor/rejected"
        );
    }
}
