//! The `/accepted` and `/rejected` reply a device gets for each report (aws-api.md §3.1).

use serde::Serialize;
use thingward_ingest::report::{Format, ReportError};

/// The reply body (aws-api.md §3.1); field order as in the AWS examples.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Reply<'a> {
    thing_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    report_id: Option<i64>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_details: Option<StatusDetails>,
    timestamp: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct StatusDetails {
    error_code: &'static str,
    error_message: String,
}

/// The payload of an accepted or rejected reply, encoded like the report (JSON on `json`
/// topics, the same tree as CBOR on `cbor` topics):
/// `{"thingName","reportId","status":"ACCEPTED"|"REJECTED","statusDetails"?:{"ErrorCode",
/// "ErrorMessage"},"timestamp"}`. `reportId` is left out when the report id is unknown
/// (undecodable or oversize payloads); `timestamp` is `now_ms`, epoch milliseconds.
pub(super) fn reply(
    thing: &str,
    report_id: Option<i64>,
    outcome: Result<(), &ReportError>,
    format: Format,
    now_ms: i64,
) -> Vec<u8> {
    let (status, status_details) = match outcome {
        Ok(()) => ("ACCEPTED", None),
        Err(e) => (
            "REJECTED",
            Some(StatusDetails {
                error_code: e.code(),
                error_message: e.to_string(),
            }),
        ),
    };
    let body = Reply {
        thing_name: thing,
        report_id,
        status,
        status_details,
        timestamp: now_ms,
    };
    let encoded = match format {
        Format::Json => serde_json::to_vec(&body).map_err(|e| e.to_string()),
        Format::Cbor => {
            let mut buf = Vec::new();
            ciborium::into_writer(&body, &mut buf)
                .map(|()| buf)
                .map_err(|e| e.to_string())
        }
    };
    // Encoding a struct of strings and integers into memory cannot fail; should it ever, the
    // device gets an empty reply rather than the service a panic.
    encoded.unwrap_or_else(|error| {
        tracing::error!(%error, thing, "Could not encode a report reply");
        Vec::new()
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use thingward_ingest::report::parse_report;

    fn parse_json(
        tree: &serde_json::Value,
    ) -> Result<thingward_ingest::report::Report, ReportError> {
        parse_report(tree.to_string().as_bytes(), Format::Json, 128 * 1024)
    }

    #[test]
    fn accepted_replies_have_the_documented_shape() {
        let body = reply(
            "dev1",
            Some(1_700_000_000),
            Ok(()),
            Format::Json,
            1_700_000_000_123,
        );
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            r#"{"thingName":"dev1","reportId":1700000000,"status":"ACCEPTED","timestamp":1700000000123}"#
        );
    }

    #[test]
    fn rejected_replies_carry_code_and_message() {
        let e = parse_json(&json!({"header": {"version": "1.0"}, "metrics": {}})).expect_err("bad");
        let body = reply(
            "dev1",
            Some(1_700_000_000),
            Err(&e),
            Format::Json,
            1_700_000_000_123,
        );
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            r#"{"thingName":"dev1","reportId":1700000000,"status":"REJECTED","statusDetails":{"ErrorCode":"InvalidPayload","ErrorMessage":"header.report_id is missing"},"timestamp":1700000000123}"#
        );
        // No report id known: no reportId member.
        let body = reply("dev1", None, Err(&e), Format::Json, 5);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert!(v.get("reportId").is_none());
        assert_eq!(v["status"], "REJECTED");
    }

    #[test]
    fn cbor_replies_hold_the_same_tree() {
        let e = ReportError::duplicate(7);
        for outcome in [Ok(()), Err(&e)] {
            let json_body = reply("dev1", Some(7), outcome, Format::Json, 1_700_000_000_123);
            let cbor_body = reply("dev1", Some(7), outcome, Format::Cbor, 1_700_000_000_123);
            let from_cbor: serde_json::Value =
                ciborium::from_reader(cbor_body.as_slice()).expect("cbor");
            let from_json: serde_json::Value = serde_json::from_slice(&json_body).expect("json");
            assert_eq!(from_cbor, from_json);
            // Same member order too, and integers stay integers.
            let raw: ciborium::Value = ciborium::from_reader(cbor_body.as_slice()).expect("cbor");
            let ciborium::Value::Map(entries) = raw else {
                panic!("not a map")
            };
            let keys: Vec<_> = entries.iter().filter_map(|(k, _)| k.as_text()).collect();
            let mut want = vec!["thingName", "reportId", "status", "timestamp"];
            if outcome.is_err() {
                want.insert(3, "statusDetails");
            }
            assert_eq!(keys, want);
            assert!(entries.iter().any(|(k, v)| k.as_text() == Some("timestamp")
                && v.as_integer() == Some(1_700_000_000_123_i64.into())));
        }
        assert_eq!(e.code(), "DuplicateReportId");
    }
}
