//! Detect through the batch endpoint: static, statistical, list and custom-metric rules, windows, dimensions and cumulative counters.

use super::*;

#[tokio::test]
async fn static_rule_alarms_and_clears_after_consecutive_datapoints() {
    let t = TestApp::new();
    let mut b = few_ports();
    b["criteria"]["consecutiveDatapointsToAlarm"] = json!(2);
    b["criteria"]["consecutiveDatapointsToClear"] = json!(2);
    t.watch_all("p", json!([b])).await;

    let first = t.count("cam", "aws:num-listening-tcp-ports", 9).await;
    assert_eq!(first, json!({ "accepted": 1, "violationEvents": 0 }));
    assert!(t.active("").await.is_empty());
    t.advance_secs(60);
    let second = t.count("cam", "aws:num-listening-tcp-ports", 12).await;
    assert_eq!(second["violationEvents"], 1);
    let active = t.active("").await;
    assert_eq!(active.len(), 1);
    let v = &active[0];
    assert_eq!(v["thingName"], "cam");
    assert_eq!(v["securityProfileName"], "p");
    assert_eq!(v["behavior"]["name"], "few-ports");
    assert_eq!(v["lastViolationValue"], json!({ "count": 12 }));
    assert_eq!(
        v["violationStartTime"].as_f64(),
        Some((T0_MS + 60_000) as f64 / 1000.0)
    );
    let id = v["violationId"].as_str().expect("violationId");
    assert!(!id.is_empty() && id.len() <= 128);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));

    // Still violating: the same violation, with the latest value and time.
    t.advance_secs(60);
    t.count("cam", "aws:num-listening-tcp-ports", 15).await;
    let active = t.active("").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["violationId"], id);
    assert_eq!(active[0]["lastViolationValue"], json!({ "count": 15 }));
    assert_eq!(
        active[0]["lastViolationTime"].as_f64(),
        Some((T0_MS + 120_000) as f64 / 1000.0)
    );

    // One compliant datapoint does not clear; two do.
    t.advance_secs(60);
    t.count("cam", "aws:num-listening-tcp-ports", 1).await;
    assert_eq!(t.active("").await.len(), 1);
    t.advance_secs(60);
    let cleared = t.count("cam", "aws:num-listening-tcp-ports", 2).await;
    assert_eq!(cleared["violationEvents"], 1);
    assert!(t.active("").await.is_empty());

    let events = t.events("").await;
    assert_eq!(
        event_keys(&events),
        [
            key("cam", "p", "few-ports", "in-alarm"),
            key("cam", "p", "few-ports", "alarm-cleared")
        ]
    );
    assert_eq!(events[0]["violationId"], id);
    assert_eq!(events[1]["violationId"], id);
    assert_eq!(events[0]["metricValue"], json!({ "count": 12 }));
}
#[tokio::test]
async fn duration_seconds_sums_messages_sent_over_the_window() {
    let t = TestApp::new();
    let mut b = rule(
        "chatty",
        "aws:num-messages-sent",
        "less-than-equals",
        json!({ "count": 100 }),
    );
    b["criteria"]["durationSeconds"] = json!(300);
    t.watch_all("p", json!([b])).await;

    t.count("cam", "aws:num-messages-sent", 60).await;
    assert!(t.active("").await.is_empty());
    t.advance_secs(60);
    // 60 + 60 = 120 in the last 300 s: over 100.
    t.count("cam", "aws:num-messages-sent", 60).await;
    let active = t.active("").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["lastViolationValue"], json!({ "count": 120 }));
    // Another thing with the same rate but alone in its window is fine.
    t.count("quiet", "aws:num-messages-sent", 60).await;
    assert_eq!(things_of(&t.active("").await), ["cam"]);

    // Five minutes later the window holds only the new datapoint.
    t.advance_secs(400);
    t.count("cam", "aws:num-messages-sent", 10).await;
    assert!(t.active("").await.is_empty());
    assert_eq!(
        event_keys(&t.events("&thingName=cam").await),
        [
            key("cam", "p", "chatty", "in-alarm"),
            key("cam", "p", "chatty", "alarm-cleared")
        ]
    );
}
#[tokio::test]
async fn statistical_p90_alarms_only_the_outlier() {
    let t = TestApp::new();
    let b = json!({
        "name": "conns-p90",
        "metric": "aws:num-established-tcp-connections",
        "criteria": {
            "comparisonOperator": "less-than-equals",
            "statisticalThreshold": { "statistic": "p90" }
        }
    });
    t.watch_all("p", json!([b])).await;
    // Two rounds over ten things, the outlier in the middle: by the second round the pool holds
    // every thing, and the 90th percentile (nearest rank 9 of 10) is the common value.
    for _ in 0..2 {
        let datapoints: Vec<Value> = (0..10)
            .map(|i| {
                let count = if i == 5 { 500 } else { 10 + i };
                json!({ "thingName": format!("dev-{i}"), "metric": "aws:num-established-tcp-connections", "value": { "count": count } })
            })
            .collect();
        t.ingest(json!(datapoints)).await;
        t.advance_secs(60);
    }
    let active = t.active("").await;
    assert_eq!(things_of(&active), ["dev-5"]);
    assert_eq!(
        active[0]["behavior"]["criteria"]["statisticalThreshold"]["statistic"],
        "p90"
    );
    assert_eq!(t.active("behaviorCriteriaType=STATISTICAL").await.len(), 1);
    assert!(t.active("behaviorCriteriaType=STATIC").await.is_empty());
}
#[tokio::test]
async fn topic_filter_dimension_counts_only_matching_topics() {
    let t = TestApp::new();
    t.post(
        "/dimensions/sensors",
        json!({ "type": "TOPIC_FILTER", "stringValues": ["sensors/#"] }),
    )
    .await
    .ok();
    let mut b = rule(
        "sensor-msgs",
        "aws:num-messages-sent",
        "less-than",
        json!({ "count": 10 }),
    );
    b["metricDimension"] = json!({ "dimensionName": "sensors" });
    t.watch_all("p", json!([b])).await;

    t.ingest(json!([
        { "thingName": "cam", "metric": "aws:num-messages-sent", "value": { "count": 50 }, "topic": "logs/cam" },
        { "thingName": "cam", "metric": "aws:num-messages-sent", "value": { "count": 50 } }
    ]))
    .await;
    assert!(t.active("").await.is_empty());
    t.ingest(json!([
        { "thingName": "cam", "metric": "aws:num-messages-sent", "value": { "count": 50 }, "topic": "sensors/cam/temp" }
    ]))
    .await;
    let active = t.active("").await;
    assert_eq!(active.len(), 1);
    assert_eq!(
        active[0]["behavior"]["metricDimension"]["dimensionName"],
        "sensors"
    );
    // A topic on a metric without dimensions is refused as a whole batch.
    t.post(
        "/thingward/v1/metrics",
        json!({ "datapoints": [
            { "thingName": "cam", "metric": "aws:num-listening-tcp-ports", "value": { "count": 1 }, "topic": "sensors/x" }
        ] }),
    )
    .await
    .invalid("datapoints[0]");
}
#[tokio::test]
async fn custom_number_metric_rule() {
    let t = TestApp::new();
    t.post(
        "/custom-metric/battery_pct",
        json!({ "metricType": "number" }),
    )
    .await
    .ok();
    t.watch_all(
        "p",
        json!([rule(
            "battery",
            "battery_pct",
            "greater-than",
            json!({ "number": 20 })
        )]),
    )
    .await;
    t.ingest(json!([
        { "thingName": "cam", "metric": "battery_pct", "value": { "number": 87.5 } },
        { "thingName": "door", "metric": "battery_pct", "value": { "number": 4.5 } }
    ]))
    .await;
    let active = t.active("").await;
    assert_eq!(things_of(&active), ["door"]);
    assert_eq!(active[0]["lastViolationValue"], json!({ "number": 4.5 }));
    // An undefined custom metric refuses the batch, naming it.
    t.post(
        "/thingward/v1/metrics",
        json!({ "datapoints": [{ "thingName": "cam", "metric": "cpu_temp", "value": { "number": 1 } }] }),
    )
    .await
    .invalid("cpu_temp");
    // The wrong value member for the metric.
    t.post(
        "/thingward/v1/metrics",
        json!({ "datapoints": [{ "thingName": "cam", "metric": "battery_pct", "value": { "count": 1 } }] }),
    )
    .await
    .invalid("datapoints[0]");
    t.send_raw(
        Method::POST,
        "/thingward/v1/metrics",
        Some("application/json"),
        b"not json".to_vec(),
    )
    .await
    .error(400, INVALID_REQUEST);
}
#[tokio::test]
async fn list_metric_rules_judge_every_element() {
    let t = TestApp::new();
    t.post(
        "/custom-metric/users",
        json!({ "metricType": "string-list" }),
    )
    .await
    .ok();
    t.post(
        "/custom-metric/task_ids",
        json!({ "metricType": "number-list" }),
    )
    .await
    .ok();
    t.post(
        "/custom-metric/peers",
        json!({ "metricType": "ip-address-list" }),
    )
    .await
    .ok();
    t.watch_all(
        "p",
        json!([
            rule(
                "ports",
                "aws:listening-tcp-ports",
                "in-port-set",
                json!({ "ports": [22, 443] })
            ),
            rule(
                "src",
                "aws:source-ip-address",
                "in-cidr-set",
                json!({ "cidrs": ["10.0.0.0/8"] })
            ),
            rule(
                "no-root",
                "users",
                "not-in-set",
                json!({ "strings": ["root"] })
            ),
            rule(
                "tasks",
                "task_ids",
                "in-set",
                json!({ "numbers": [1, 2, 3] })
            ),
            rule(
                "peers",
                "peers",
                "not-in-cidr-set",
                json!({ "cidrs": ["192.0.2.0/24"] })
            )
        ]),
    )
    .await;
    // Compliant values.
    t.ingest(json!([
        { "thingName": "ok", "metric": "aws:listening-tcp-ports", "value": { "ports": [22] } },
        { "thingName": "ok", "metric": "aws:source-ip-address", "value": { "cidrs": ["10.1.2.3"] } },
        { "thingName": "ok", "metric": "users", "value": { "strings": ["alice", "bob"] } },
        { "thingName": "ok", "metric": "task_ids", "value": { "numbers": [1, 3] } },
        { "thingName": "ok", "metric": "peers", "value": { "cidrs": ["198.51.100.7"] } }
    ]))
    .await;
    assert!(t.active("").await.is_empty());
    // One element out of place is enough.
    t.ingest(json!([
        { "thingName": "bad", "metric": "aws:listening-tcp-ports", "value": { "ports": [22, 8080] } },
        { "thingName": "bad", "metric": "aws:source-ip-address", "value": { "cidrs": ["10.1.2.3", "203.0.113.9"] } },
        { "thingName": "bad", "metric": "users", "value": { "strings": ["alice", "root"] } },
        { "thingName": "bad", "metric": "task_ids", "value": { "numbers": [1, 4] } },
        { "thingName": "bad", "metric": "peers", "value": { "cidrs": ["192.0.2.200"] } }
    ]))
    .await;
    let active = t.active("thingName=bad").await;
    let mut behaviors: Vec<&str> = active
        .iter()
        .map(|v| v["behavior"]["name"].as_str().unwrap_or_default())
        .collect();
    behaviors.sort_unstable();
    assert_eq!(behaviors, ["no-root", "peers", "ports", "src", "tasks"]);
    let ports = active
        .iter()
        .find(|v| v["behavior"]["name"] == "ports")
        .expect("ports violation");
    assert_eq!(ports["lastViolationValue"], json!({ "ports": [22, 8080] }));
    // An empty list is compliant and clears.
    t.ingest(json!([
        { "thingName": "bad", "metric": "aws:listening-tcp-ports", "value": { "ports": [] } }
    ]))
    .await;
    assert_eq!(t.active("thingName=bad").await.len(), 4);
}
#[tokio::test]
async fn one_batch_may_open_clear_and_reopen_a_violation() {
    let t = TestApp::new();
    t.watch_all("p", json!([few_ports()])).await;
    let at = |secs: i64| (T0_MS / 1000) + secs;
    let body = t
        .ingest(json!([
            { "thingName": "cam", "metric": "aws:num-listening-tcp-ports", "value": { "count": 9 }, "timestamp": at(-30) },
            { "thingName": "cam", "metric": "aws:num-listening-tcp-ports", "value": { "count": 8 }, "timestamp": at(-20) },
            { "thingName": "cam", "metric": "aws:num-listening-tcp-ports", "value": { "count": 1 }, "timestamp": at(-10) },
            { "thingName": "cam", "metric": "aws:num-listening-tcp-ports", "value": { "count": 7 }, "timestamp": at(0) }
        ]))
        .await;
    assert_eq!(body, json!({ "accepted": 4, "violationEvents": 3 }));
    let events = t.events("").await;
    assert_eq!(
        event_keys(&events),
        [
            key("cam", "p", "few-ports", "in-alarm"),
            key("cam", "p", "few-ports", "alarm-cleared"),
            key("cam", "p", "few-ports", "in-alarm")
        ]
    );
    // Event times are the datapoints' times; the two violations have different ids.
    assert_eq!(
        events[0]["violationEventTime"].as_f64(),
        Some(at(-30) as f64)
    );
    assert_eq!(
        events[1]["violationEventTime"].as_f64(),
        Some(at(-10) as f64)
    );
    assert_eq!(events[0]["violationId"], events[1]["violationId"]);
    assert_ne!(events[0]["violationId"], events[2]["violationId"]);
    let active = t.active("").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["violationId"], events[2]["violationId"]);
    assert_eq!(active[0]["lastViolationValue"], json!({ "count": 7 }));

    // A closed violation can still be verified; its events carry the state.
    let closed = events[0]["violationId"].as_str().expect("id");
    t.post(
        &format!("/violations/verification-state/{closed}"),
        json!({ "verificationState": "FALSE_POSITIVE" }),
    )
    .await
    .ok();
    let verified = t.events("&verificationState=FALSE_POSITIVE").await;
    assert_eq!(verified.len(), 2);
    assert!(
        t.active("verificationState=FALSE_POSITIVE")
            .await
            .is_empty()
    );

    // Event pages.
    let uri = format!(
        "/violation-events?startTime={}&endTime={}&maxResults=2",
        iso(T0_MS - 60_000),
        iso(T0_MS + 60_000)
    );
    let page = t.get(&uri).await.ok();
    assert_eq!(page["violationEvents"].as_array().map(Vec::len), Some(2));
    let token = page["nextToken"].as_str().expect("nextToken");
    let rest = t.get(&format!("{uri}&nextToken={}", enc(token))).await.ok();
    assert_eq!(rest["violationEvents"].as_array().map(Vec::len), Some(1));
    assert!(rest["nextToken"].is_null());
}
#[tokio::test]
async fn cumulative_totals_become_deltas() {
    let t = TestApp::new();
    let mut b = rule(
        "chatty",
        "aws:num-messages-sent",
        "less-than-equals",
        json!({ "count": 100 }),
    );
    b["criteria"]["durationSeconds"] = json!(300);
    t.watch_all("p", json!([b])).await;
    let total = |n: u64| json!([{ "thingName": "broker-seen", "metric": "aws:num-messages-sent", "value": { "count": n }, "cumulative": true }]);
    // The first total is only a baseline.
    assert_eq!(t.ingest(total(1_000_000)).await["accepted"], 0);
    t.advance_secs(60);
    assert_eq!(t.ingest(total(1_000_050)).await["accepted"], 1);
    assert!(t.active("").await.is_empty());
    t.advance_secs(60);
    t.ingest(total(1_000_200)).await;
    let active = t.active("").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["lastViolationValue"], json!({ "count": 200 }));
    // cumulative on a metric that is not a counter is refused.
    t.post(
        "/thingward/v1/metrics",
        json!({ "datapoints": [{ "thingName": "x", "metric": "aws:num-listening-tcp-ports", "value": { "count": 1 }, "cumulative": true }] }),
    )
    .await
    .invalid("datapoints[0]");
}
