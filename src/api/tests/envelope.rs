//! Limits and the response envelope: body limits, request ids, unknown operations.

use super::*;

#[tokio::test]
async fn oversized_bodies_are_413_in_the_aws_error_shape() {
    let t = TestApp::with_max_body(1024);
    let big = json!({ "securityProfileDescription": "d".repeat(4096) });
    t.post("/security-profiles/p", big)
        .await
        .error(413, "PayloadTooLargeException");
    let datapoints: Vec<Value> = (0..100)
        .map(|i| json!({ "thingName": format!("t{i}"), "metric": "aws:num-messages-sent", "value": { "count": 1 } }))
        .collect();
    t.post("/thingward/v1/metrics", json!({ "datapoints": datapoints }))
        .await
        .error(413, "PayloadTooLargeException");
    let ports: Vec<u16> = (1..400).collect();
    t.post("/thingward/v1/things/cam/report", report(1, &ports))
        .await
        .error(413, "PayloadTooLargeException");
    // Within the limit all is well.
    t.post("/security-profiles/p", json!({})).await.ok();
}
#[tokio::test]
async fn every_response_carries_a_request_id() {
    // `send_raw` asserts the header on every response; here the ids must also differ.
    let t = TestApp::new();
    let a = t.get("/security-profiles").await;
    let b = t.get("/security-profiles/ghost").await;
    let c = t.get("/health").await;
    let ids: Vec<String> = [&a, &b, &c]
        .iter()
        .map(|r| {
            r.headers
                .get("x-amzn-RequestId")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    assert_eq!(c.ok(), json!({ "status": "ok" }));
}
#[tokio::test]
async fn undecodable_path_and_wrong_method_answer_in_the_aws_error_shape() {
    let t = TestApp::new();
    // A path segment that does not percent-decode to UTF-8.
    t.get("/security-profiles/%FF")
        .await
        .error(400, INVALID_REQUEST);
    // A known path with a method it does not have.
    t.send(Method::PUT, "/security-profiles/p", None)
        .await
        .error(404, "ResourceNotFoundException");
    t.get("/thingward/v1/metrics")
        .await
        .error(404, "ResourceNotFoundException");
}
