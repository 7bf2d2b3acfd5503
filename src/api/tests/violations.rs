//! Violations: ListActiveViolations, ListViolationEvents, suppressed alerts, PutVerificationStateOnViolation, and active violations across a restart.

use super::*;

#[tokio::test]
async fn suppressed_alerts_are_listed_only_when_asked_for() {
    let t = TestApp::new();
    let mut quiet = rule(
        "quiet",
        "aws:num-established-tcp-connections",
        "less-than",
        json!({ "count": 5 }),
    );
    quiet["suppressAlerts"] = json!(true);
    t.watch_all("p", json!([few_ports(), quiet])).await;
    t.ingest(json!([
        { "thingName": "cam", "metric": "aws:num-listening-tcp-ports", "value": { "count": 9 } },
        { "thingName": "cam", "metric": "aws:num-established-tcp-connections", "value": { "count": 9 } }
    ]))
    .await;
    assert_eq!(t.active("").await.len(), 2);
    let suppressed = t.active("listSuppressedAlerts=true").await;
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["behavior"]["name"], "quiet");
    assert_eq!(suppressed[0]["behavior"]["suppressAlerts"], true);
    let loud = t.active("listSuppressedAlerts=false").await;
    assert_eq!(loud.len(), 1);
    assert_eq!(loud[0]["behavior"]["name"], "few-ports");
    let events = t.events("&listSuppressedAlerts=true").await;
    assert_eq!(event_keys(&events), [key("cam", "p", "quiet", "in-alarm")]);
    t.get("/active-violations?listSuppressedAlerts=yes")
        .await
        .invalid("listSuppressedAlerts");
}
#[tokio::test]
async fn active_violations_filter_by_thing_profile_and_criteria_type() {
    let t = TestApp::new();
    t.watch_all("ports", json!([few_ports()])).await;
    t.watch_all(
        "conns",
        json!([rule(
            "few-conns",
            "aws:num-established-tcp-connections",
            "less-than",
            json!({ "count": 5 })
        )]),
    )
    .await;
    t.ingest(json!([
        { "thingName": "a", "metric": "aws:num-listening-tcp-ports", "value": { "count": 9 } },
        { "thingName": "b", "metric": "aws:num-listening-tcp-ports", "value": { "count": 9 } },
        { "thingName": "b", "metric": "aws:num-established-tcp-connections", "value": { "count": 9 } }
    ]))
    .await;
    assert_eq!(t.active("").await.len(), 3);
    assert_eq!(things_of(&t.active("thingName=a").await), ["a"]);
    assert_eq!(t.active("thingName=b").await.len(), 2);
    assert_eq!(
        things_of(&t.active("securityProfileName=ports").await),
        ["a", "b"]
    );
    let both = t.active("thingName=b&securityProfileName=conns").await;
    assert_eq!(both.len(), 1);
    assert_eq!(both[0]["behavior"]["name"], "few-conns");
    assert_eq!(t.active("behaviorCriteriaType=STATIC").await.len(), 3);
    assert!(
        t.active("behaviorCriteriaType=MACHINE_LEARNING")
            .await
            .is_empty()
    );
    assert!(t.active("thingName=nobody").await.is_empty());
    t.get("/active-violations?behaviorCriteriaType=FUZZY")
        .await
        .invalid("behaviorCriteriaType");
    t.get("/active-violations?verificationState=MAYBE")
        .await
        .invalid("verificationState");
    t.get("/active-violations?securityProfileName=bad%20name")
        .await
        .error(400, INVALID_REQUEST);
    // Paging over active violations.
    let page = t.get("/active-violations?maxResults=2").await.ok();
    assert_eq!(page["activeViolations"].as_array().map(Vec::len), Some(2));
    let token = page["nextToken"].as_str().expect("nextToken");
    let rest = t
        .get(&format!(
            "/active-violations?maxResults=2&nextToken={}",
            enc(token)
        ))
        .await
        .ok();
    assert_eq!(rest["activeViolations"].as_array().map(Vec::len), Some(1));
    assert!(rest["nextToken"].is_null());
}
#[tokio::test]
async fn violation_events_are_selected_by_time_range() {
    let t = TestApp::new();
    t.watch_all("p", json!([few_ports()])).await;
    t.count("early", "aws:num-listening-tcp-ports", 9).await;
    t.advance_secs(3600);
    t.count("late", "aws:num-listening-tcp-ports", 9).await;
    let t1 = T0_MS + 3_600_000;

    let in_range = |start: i64, end: i64| {
        format!(
            "/violation-events?startTime={}&endTime={}",
            iso(start),
            iso(end)
        )
    };
    let things = |body: Value| -> Vec<String> {
        things_of(body["violationEvents"].as_array().expect("violationEvents"))
    };
    assert_eq!(
        things(t.get(&in_range(T0_MS - 1000, t1 + 1000)).await.ok()),
        ["early", "late"]
    );
    assert_eq!(
        things(t.get(&in_range(T0_MS - 1000, T0_MS + 1000)).await.ok()),
        ["early"]
    );
    assert_eq!(
        things(t.get(&in_range(t1 - 1000, t1 + 1000)).await.ok()),
        ["late"]
    );
    // The bounds are inclusive.
    assert_eq!(things(t.get(&in_range(t1, t1)).await.ok()), ["late"]);
    assert!(things(t.get(&in_range(t1 + 1000, t1 + 9000)).await.ok()).is_empty());
    // Fractional seconds as botocore sends them.
    let uri = "/violation-events?startTime=2023-11-14T22:13:19.500000Z&endTime=2023-11-14T22:13:20.500000Z";
    assert_eq!(things(t.get(uri).await.ok()), ["early"]);
    // Event filters apply too.
    let uri = format!("{}&thingName=late", in_range(T0_MS - 1000, t1 + 1000));
    assert_eq!(things(t.get(&uri).await.ok()), ["late"]);

    t.get(&format!("/violation-events?endTime={}", iso(t1)))
        .await
        .invalid("startTime");
    t.get(&format!("/violation-events?startTime={}", iso(t1)))
        .await
        .invalid("endTime");
    t.get("/violation-events?startTime=yesterday&endTime=2023-11-14T22:13:20Z")
        .await
        .invalid("startTime");
    t.get(&in_range(t1, T0_MS)).await.invalid("endTime");
}
#[tokio::test]
async fn verification_state_is_set_on_the_violation_and_its_events() {
    let t = in_alarm().await;
    let active = t.active("").await;
    let id = active[0]["violationId"].as_str().expect("id").to_owned();
    let behavior = active[0]["behavior"]["name"].clone();
    t.post(
        &format!("/violations/verification-state/{id}"),
        json!({ "verificationState": "BENIGN_POSITIVE", "verificationStateDescription": "lab camera" }),
    )
    .await
    .ok();
    let active = t.active("verificationState=BENIGN_POSITIVE").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["violationId"], id.as_str());
    assert_eq!(active[0]["verificationState"], "BENIGN_POSITIVE");
    assert_eq!(active[0]["verificationStateDescription"], "lab camera");
    let other = t.active("verificationState=TRUE_POSITIVE").await;
    assert!(other.is_empty());
    let events = t.events("&verificationState=BENIGN_POSITIVE").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["violationId"], id.as_str());
    assert_eq!(events[0]["verificationStateDescription"], "lab camera");

    // The state follows the violation into its closing event.
    let remaining: Vec<Value> = [
        few_ports(),
        rule(
            "few-conns",
            "aws:num-established-tcp-connections",
            "less-than",
            json!({ "count": 5 }),
        ),
    ]
    .into_iter()
    .filter(|b| b["name"] != behavior)
    .collect();
    t.patch("/security-profiles/p", json!({ "behaviors": remaining }))
        .await
        .ok();
    let events = t.events("&verificationState=BENIGN_POSITIVE").await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1]["violationEventType"], "alarm-invalidated");

    t.post(
        "/violations/verification-state/0123456789abcdef0123456789abcdef",
        json!({ "verificationState": "TRUE_POSITIVE" }),
    )
    .await
    .invalid("0123456789abcdef0123456789abcdef");
    t.post(
        &format!("/violations/verification-state/{id}"),
        json!({ "verificationState": "PROBABLY" }),
    )
    .await
    .invalid("verificationState");
    t.post(&format!("/violations/verification-state/{id}"), json!({}))
        .await
        .invalid("verificationState");
    t.post(
        &format!("/violations/verification-state/{id}"),
        json!({ "verificationState": "UNKNOWN", "verificationStateDescription": "a\u{7}b" }),
    )
    .await
    .invalid("verificationStateDescription");
    t.post(
        "/violations/verification-state/not_an_id",
        json!({ "verificationState": "UNKNOWN" }),
    )
    .await
    .invalid("violationId");
}
#[tokio::test]
async fn active_violations_survive_a_restart() {
    let t = TestApp::new();
    let mut b = few_ports();
    b["criteria"]["consecutiveDatapointsToClear"] = json!(2);
    t.watch_all("p", json!([b])).await;
    t.count("cam", "aws:num-listening-tcp-ports", 9).await;
    t.count("door", "aws:num-listening-tcp-ports", 9).await;
    let before = t.active("thingName=cam").await;
    assert_eq!(before.len(), 1);
    let id = before[0]["violationId"].clone();

    let t = t.restart();
    assert_eq!(things_of(&t.active("").await), ["cam", "door"]);
    // Still in alarm after the restart: a violating datapoint continues the same violation
    // (no second in-alarm event), and two compliant ones clear it.
    t.advance_secs(60);
    t.count("cam", "aws:num-listening-tcp-ports", 11).await;
    let after = t.active("thingName=cam").await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["violationId"], id);
    assert_eq!(after[0]["lastViolationValue"], json!({ "count": 11 }));
    t.count("cam", "aws:num-listening-tcp-ports", 1).await;
    t.count("cam", "aws:num-listening-tcp-ports", 1).await;
    assert!(t.active("thingName=cam").await.is_empty());
    assert_eq!(
        event_keys(&t.events("&thingName=cam").await),
        [
            key("cam", "p", "few-ports", "in-alarm"),
            key("cam", "p", "few-ports", "alarm-cleared")
        ]
    );
    // The restored alarm of a thing that stays silent is still swept after two days.
    t.advance_secs(2 * 24 * 3600);
    assert_eq!(t.detect.sweep().expect("sweep"), 1);
    assert!(t.active("").await.is_empty());
    // Profiles and history data survived too.
    assert_eq!(t.get("/security-profiles/p").await.ok()["version"], 1);
}
