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
