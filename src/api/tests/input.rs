//! Issue 14 regressions: bad input is a 400 in the AWS error shape, never a 500 or accepted.

use super::*;

/// Tokens above `i64::MAX` reached SQLite's OFFSET and came back as a 500 (datatype mismatch).
#[tokio::test]
async fn r14_next_token_above_i64_max_is_invalid_request_on_every_list_route() {
    let t = TestApp::new();
    let range = format!("startTime={}&endTime={}", iso(0), iso(t.now_ms() + 1000));
    let routes = [
        "/active-violations?".to_owned(),
        format!("/violation-events?{range}&"),
        "/detect/mitigationactions/executions?taskId=zzz&".to_owned(),
        "/audit/mitigationactions/executions?taskId=zzz&findingId=f1&".to_owned(),
        "/security-profiles?".to_owned(),
        format!("/audit/tasks?{range}&"),
    ];
    for route in &routes {
        for token in [
            "o9223372036854775808",
            "o18446744073709551615",
            "o99999999999999999999999",
            "o-1",
            "x1",
        ] {
            t.get(&format!("{route}nextToken={token}"))
                .await
                .invalid("nextToken");
        }
        // A token we issue still works.
        t.get(&format!("{route}nextToken=o0")).await.ok();
    }
}

#[tokio::test]
async fn r14_metric_values_end_before_start_is_invalid_request() {
    let t = TestApp::new();
    t.get(&format!(
        "/metric-values?thingName=cam&metricName=aws%3Anum-messages-sent&startTime={}&endTime={}",
        iso(t.now_ms()),
        iso(t.now_ms() - 1000)
    ))
    .await
    .invalid("endTime is before startTime");
}

/// serde_json skips unknown members without checking their UTF-8: such a body created a
/// security profile.
#[tokio::test]
async fn r14_json_body_with_invalid_utf8_in_an_unknown_member_is_refused() {
    let t = TestApp::new();
    let mut body = br#"{"behaviors": [], "junk": ""#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(br#""}"#);
    for (method, uri) in [
        (Method::POST, "/security-profiles/p1"),
        (Method::POST, "/policies/p1"),
        (Method::POST, "/things/t1"),
    ] {
        t.send_raw(method, uri, Some("application/json"), body.clone())
            .await
            .invalid("not UTF-8");
    }
    t.get("/security-profiles/p1")
        .await
        .error(404, "ResourceNotFoundException");
}

/// A 1 MB policy document was stored; AWS allows 2048 characters excluding whitespace.
#[tokio::test]
async fn r14_policy_document_over_2048_characters_is_malformed_policy() {
    let t = TestApp::new();
    let statement = r#"{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}"#;
    let doc = |n: usize| {
        let statements = vec![statement; n].join(",");
        format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
    };
    let big = doc(1_000);
    t.post("/policies/big", json!({ "policyDocument": big }))
        .await
        .error(400, "MalformedPolicyException");
    t.get("/policies/big")
        .await
        .error(404, "ResourceNotFoundException");
    // Whitespace does not count: a document of 2048 characters padded with spaces is accepted.
    let small = doc(1);
    let padded = format!("{small}{}", " ".repeat(5000));
    t.post("/policies/p1", json!({ "policyDocument": padded }))
        .await
        .ok();
    t.post("/policies/p1/version", json!({ "policyDocument": big }))
        .await
        .error(400, "MalformedPolicyException");
    t.post("/policies/p1", json!({ "policyDocument": "   " }))
        .await
        .error(400, "MalformedPolicyException");
}
