//! ListMetricValues: retained metrics, dimension filters and each metric value shape.

use super::*;

#[tokio::test]
async fn list_metric_values_needs_a_retaining_profile_and_filters_by_dimension() {
    let t = TestApp::new();
    t.post(
        "/dimensions/sensors",
        json!({ "type": "TOPIC_FILTER", "stringValues": ["sensors/#"] }),
    )
    .await
    .ok();
    t.ingest(json!([
        { "thingName": "cam", "metric": "aws:num-messages-sent", "value": { "count": 3 }, "topic": "sensors/cam" }
    ]))
    .await;
    let values_uri = |extra: &str| {
        format!(
            "/metric-values?thingName=cam&metricName=aws%3Anum-messages-sent&startTime={}&endTime={}{extra}",
            iso(T0_MS - 60_000),
            iso(T0_MS + 3_600_000)
        )
    };
    t.get(&values_uri(""))
        .await
        .invalid("aws:num-messages-sent");

    t.create_profile("retain", json!([])).await;
    t.patch(
        "/security-profiles/retain",
        json!({ "additionalMetricsToRetainV2": [{ "metric": "aws:num-messages-sent" }] }),
    )
    .await
    .ok();
    t.advance_secs(10);
    t.ingest(json!([
        { "thingName": "cam", "metric": "aws:num-messages-sent", "value": { "count": 5 }, "topic": "logs/cam" },
        { "thingName": "other", "metric": "aws:num-messages-sent", "value": { "count": 99 }, "topic": "sensors/x" }
    ]))
    .await;
    let body = t.get(&values_uri("")).await.ok();
    assert_eq!(
        body["metricDatumList"],
        json!([
            { "timestamp": T0_MS as f64 / 1000.0, "value": { "count": 3 } },
            { "timestamp": (T0_MS + 10_000) as f64 / 1000.0, "value": { "count": 5 } }
        ])
    );
    let inside = t.get(&values_uri("&dimensionName=sensors")).await.ok();
    assert_eq!(
        inside["metricDatumList"],
        json!([{ "timestamp": T0_MS as f64 / 1000.0, "value": { "count": 3 } }])
    );
    let inside = t
        .get(&values_uri(
            "&dimensionName=sensors&dimensionValueOperator=IN",
        ))
        .await
        .ok();
    assert_eq!(inside["metricDatumList"].as_array().map(Vec::len), Some(1));
    let outside = t
        .get(&values_uri(
            "&dimensionName=sensors&dimensionValueOperator=NOT_IN",
        ))
        .await
        .ok();
    assert_eq!(
        outside["metricDatumList"],
        json!([{ "timestamp": (T0_MS + 10_000) as f64 / 1000.0, "value": { "count": 5 } }])
    );
    t.get(&values_uri(
        "&dimensionName=sensors&dimensionValueOperator=NEAR",
    ))
    .await
    .invalid("dimensionValueOperator");
    t.get(&values_uri("&dimensionName=ghost"))
        .await
        .error(404, "ResourceNotFoundException");
    // Paging.
    let page = t.get(&values_uri("&maxResults=1")).await.ok();
    assert_eq!(page["metricDatumList"].as_array().map(Vec::len), Some(1));
    assert!(page["nextToken"].is_string());
    // A narrower time range.
    let uri = format!(
        "/metric-values?thingName=cam&metricName=aws%3Anum-messages-sent&startTime={}&endTime={}",
        iso(T0_MS + 5_000),
        iso(T0_MS + 20_000)
    );
    assert_eq!(
        t.get(&uri).await.ok()["metricDatumList"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // Required parameters and metric names.
    t.get("/metric-values?metricName=aws%3Anum-messages-sent&startTime=2023-11-14T00:00:00Z&endTime=2023-11-15T00:00:00Z")
        .await
        .invalid("thingName");
    t.get("/metric-values?thingName=cam&metricName=aws%3Abogus&startTime=2023-11-14T00:00:00Z&endTime=2023-11-15T00:00:00Z")
        .await
        .invalid("aws:bogus");
    t.get("/metric-values?thingName=cam&metricName=aws%3Anum-messages-sent&endTime=2023-11-15T00:00:00Z")
        .await
        .invalid("startTime");
}
#[tokio::test]
async fn list_metric_values_counts_behavior_metrics_as_retained() {
    let t = TestApp::new();
    t.watch_all("p", json!([few_ports()])).await;
    t.count("cam", "aws:num-listening-tcp-ports", 2).await;
    let uri = format!(
        "/metric-values?thingName=cam&metricName=aws%3Anum-listening-tcp-ports&startTime={}&endTime={}",
        iso(T0_MS - 1000),
        iso(T0_MS + 1000)
    );
    let body = t.get(&uri).await.ok();
    assert_eq!(
        body["metricDatumList"],
        json!([{ "timestamp": T0_MS as f64 / 1000.0, "value": { "count": 2 } }])
    );
}
#[tokio::test]
async fn list_metric_values_answers_in_each_metric_value_shape() {
    let t = TestApp::new();
    t.post(
        "/custom-metric/battery_pct",
        json!({ "metricType": "number" }),
    )
    .await
    .ok();
    t.post(
        "/security-profiles/retain",
        json!({ "additionalMetricsToRetainV2": [
            { "metric": "battery_pct" },
            { "metric": "aws:listening-tcp-ports" },
            { "metric": "aws:source-ip-address" }
        ] }),
    )
    .await
    .ok();
    t.ingest(json!([
        { "thingName": "cam", "metric": "battery_pct", "value": { "number": -1.5 } },
        { "thingName": "cam", "metric": "aws:listening-tcp-ports", "value": { "ports": [443, 22] } },
        { "thingName": "cam", "metric": "aws:source-ip-address", "value": { "cidrs": ["2001:db8::1"] } }
    ]))
    .await;
    for (metric, value) in [
        ("battery_pct", json!({ "number": -1.5 })),
        ("aws:listening-tcp-ports", json!({ "ports": [443, 22] })),
        ("aws:source-ip-address", json!({ "cidrs": ["2001:db8::1"] })),
    ] {
        let uri = format!(
            "/metric-values?thingName=cam&metricName={}&startTime={}&endTime={}",
            enc(metric),
            iso(T0_MS - 1000),
            iso(T0_MS + 1000)
        );
        let body = t.get(&uri).await.ok();
        assert_eq!(
            body["metricDatumList"],
            json!([{ "timestamp": T0_MS as f64 / 1000.0, "value": value }]),
            "{metric}"
        );
    }
}
