//! Custom metrics and dimensions: their lifecycle and what profiles may reference.

use super::*;

#[tokio::test]
async fn custom_metric_lifecycle() {
    let t = TestApp::new();
    let create = json!({ "metricType": "number", "displayName": "Battery %", "clientRequestToken": "tok-1" });
    let first = t
        .post("/custom-metric/battery_pct", create.clone())
        .await
        .ok();
    assert_eq!(first["metricName"], "battery_pct");
    assert_eq!(
        first["metricArn"],
        "arn:aws:iot:us-east-1:123456789012:custommetric/battery_pct"
    );
    // The same token replayed gets the original result.
    t.advance_secs(5);
    assert_eq!(
        t.post("/custom-metric/battery_pct", create).await.ok(),
        first
    );
    // Another token (or none) on the same name is a conflict.
    let reply = t
        .post(
            "/custom-metric/battery_pct",
            json!({ "metricType": "number", "clientRequestToken": "tok-2" }),
        )
        .await;
    reply.error(409, "ResourceAlreadyExistsException");
    assert_eq!(reply.body["resourceId"], "battery_pct");
    assert_eq!(reply.body["resourceArn"], first["metricArn"]);
    t.post(
        "/custom-metric/battery_pct",
        json!({ "metricType": "number" }),
    )
    .await
    .error(409, "ResourceAlreadyExistsException");

    let described = t.get("/custom-metric/battery_pct").await.ok();
    assert_eq!(described["metricType"], "number");
    assert_eq!(described["displayName"], "Battery %");
    assert!(described["creationDate"].is_number(), "{described}");
    assert_eq!(
        described["creationDate"].as_f64(),
        Some(T0_MS as f64 / 1000.0)
    );
    assert_eq!(described["lastModifiedDate"], described["creationDate"]);

    t.advance_secs(60);
    let updated = t
        .patch(
            "/custom-metric/battery_pct",
            json!({ "displayName": "Battery level" }),
        )
        .await
        .ok();
    assert_eq!(updated["displayName"], "Battery level");
    assert_eq!(updated["metricType"], "number");
    assert_eq!(updated["creationDate"], described["creationDate"]);
    assert_eq!(
        updated["lastModifiedDate"].as_f64(),
        Some((T0_MS + 65_000) as f64 / 1000.0)
    );
    assert_eq!(t.get("/custom-metric/battery_pct").await.ok(), updated);
    t.patch(
        "/custom-metric/battery_pct",
        json!({ "displayName": "tab\there" }),
    )
    .await
    .invalid("displayName");
    t.patch("/custom-metric/ghost", json!({ "displayName": "x" }))
        .await
        .error(404, "ResourceNotFoundException");

    // Rules on creation.
    t.post("/custom-metric/aws:mine", json!({ "metricType": "number" }))
        .await
        .invalid("aws:");
    t.post("/custom-metric/m", json!({ "metricType": "float" }))
        .await
        .invalid("metricType");
    t.post("/custom-metric/m", json!({}))
        .await
        .invalid("metricType");
    t.post(
        "/custom-metric/m",
        json!({ "metricType": "number", "clientRequestToken": "bad token!" }),
    )
    .await
    .invalid("clientRequestToken");
    t.post(
        &format!("/custom-metric/{}", "m".repeat(129)),
        json!({ "metricType": "number" }),
    )
    .await
    .invalid("metricName");

    // In use by a profile: refused, and the profile is found by ListSecurityProfiles?metricName.
    t.create_profile(
        "uses-battery",
        json!([rule(
            "low-battery",
            "battery_pct",
            "greater-than",
            json!({"number": 20})
        )]),
    )
    .await;
    t.create_profile("other", json!([])).await;
    let using = t
        .get("/security-profiles?metricName=battery_pct")
        .await
        .ok();
    assert_eq!(
        using["securityProfileIdentifiers"],
        json!([{ "name": "uses-battery", "arn": "arn:aws:iot:us-east-1:123456789012:securityprofile/uses-battery" }])
    );
    t.get("/security-profiles?metricName=ghost")
        .await
        .error(404, "ResourceNotFoundException");
    t.delete("/custom-metric/battery_pct")
        .await
        .invalid("uses-battery");
    t.get("/custom-metric/battery_pct").await.ok();

    t.patch(
        "/security-profiles/uses-battery",
        json!({ "deleteBehaviors": true }),
    )
    .await
    .ok();
    t.delete("/custom-metric/battery_pct").await.ok();
    t.get("/custom-metric/battery_pct")
        .await
        .error(404, "ResourceNotFoundException");
    // Deleting again is an idempotent success.
    t.delete("/custom-metric/battery_pct").await.ok();
    let list = t.get("/custom-metrics").await.ok();
    assert_eq!(list["metricNames"], json!([]));
}
#[tokio::test]
async fn dimension_lifecycle() {
    let t = TestApp::new();
    let create = json!({ "type": "TOPIC_FILTER", "stringValues": ["sensors/#"], "clientRequestToken": "t1" });
    let first = t.post("/dimensions/sensors", create.clone()).await.ok();
    assert_eq!(first["name"], "sensors");
    assert_eq!(
        first["arn"],
        "arn:aws:iot:us-east-1:123456789012:dimension/sensors"
    );
    assert_eq!(t.post("/dimensions/sensors", create).await.ok(), first);
    let reply = t
        .post(
            "/dimensions/sensors",
            json!({ "type": "TOPIC_FILTER", "stringValues": ["x"], "clientRequestToken": "t2" }),
        )
        .await;
    reply.error(409, "ResourceAlreadyExistsException");
    assert_eq!(reply.body["resourceId"], "sensors");
    assert_eq!(reply.body["resourceArn"], first["arn"]);

    // Rules on creation: TOPIC_FILTER only, 1..100 values of 1..256 characters.
    t.post(
        "/dimensions/d",
        json!({ "type": "CLIENT_ID", "stringValues": ["x"] }),
    )
    .await
    .invalid("TOPIC_FILTER");
    t.post("/dimensions/d", json!({ "stringValues": ["x"] }))
        .await
        .invalid("type");
    t.post(
        "/dimensions/d",
        json!({ "type": "TOPIC_FILTER", "stringValues": [] }),
    )
    .await
    .invalid("stringValues");
    t.post("/dimensions/d", json!({ "type": "TOPIC_FILTER" }))
        .await
        .invalid("stringValues");
    let many: Vec<String> = (0..101).map(|i| format!("t/{i}")).collect();
    t.post(
        "/dimensions/d",
        json!({ "type": "TOPIC_FILTER", "stringValues": many }),
    )
    .await
    .invalid("stringValues");
    t.post(
        "/dimensions/d",
        json!({ "type": "TOPIC_FILTER", "stringValues": ["x".repeat(257)] }),
    )
    .await
    .error(400, INVALID_REQUEST);
    t.post(
        "/dimensions/bad%20name",
        json!({ "type": "TOPIC_FILTER", "stringValues": ["x"] }),
    )
    .await
    .error(400, INVALID_REQUEST);
    let hundred: Vec<String> = (0..100).map(|i| format!("t/{i}")).collect();
    t.post(
        "/dimensions/d100",
        json!({ "type": "TOPIC_FILTER", "stringValues": hundred }),
    )
    .await
    .ok();

    let described = t.get("/dimensions/sensors").await.ok();
    assert_eq!(described["type"], "TOPIC_FILTER");
    assert_eq!(described["stringValues"], json!(["sensors/#"]));
    assert!(described["creationDate"].is_number());
    assert_eq!(
        described["creationDate"].as_f64(),
        Some(T0_MS as f64 / 1000.0)
    );

    t.advance_secs(30);
    let updated = t
        .patch(
            "/dimensions/sensors",
            json!({ "stringValues": ["sensors/#", "telemetry/+"] }),
        )
        .await
        .ok();
    assert_eq!(updated["stringValues"], json!(["sensors/#", "telemetry/+"]));
    assert_eq!(updated["creationDate"], described["creationDate"]);
    assert_eq!(
        updated["lastModifiedDate"].as_f64(),
        Some((T0_MS + 30_000) as f64 / 1000.0)
    );
    t.patch("/dimensions/sensors", json!({ "stringValues": [] }))
        .await
        .invalid("stringValues");
    t.patch("/dimensions/ghost", json!({ "stringValues": ["a"] }))
        .await
        .error(404, "ResourceNotFoundException");
    t.get("/dimensions/ghost")
        .await
        .error(404, "ResourceNotFoundException");

    // Not on a metric without TOPIC_FILTER support.
    let mut b = few_ports();
    b["metricDimension"] = json!({ "dimensionName": "sensors" });
    t.post("/security-profiles/p", json!({ "behaviors": [b] }))
        .await
        .invalid("dimension");
    let mut b = rule(
        "msgs",
        "aws:num-messages-sent",
        "less-than",
        json!({"count": 10}),
    );
    b["metricDimension"] = json!({ "dimensionName": "ghost" });
    t.post("/security-profiles/p", json!({ "behaviors": [b] }))
        .await
        .invalid("ghost");

    // In use: refused; ListSecurityProfiles?dimensionName finds the user.
    let mut b = rule(
        "msgs",
        "aws:num-messages-sent",
        "less-than",
        json!({"count": 10}),
    );
    b["metricDimension"] = json!({ "dimensionName": "sensors", "operator": "NOT_IN" });
    t.create_profile("uses-sensors", json!([b])).await;
    let using = t.get("/security-profiles?dimensionName=sensors").await.ok();
    assert_eq!(
        using["securityProfileIdentifiers"][0]["name"],
        "uses-sensors"
    );
    t.get("/security-profiles?dimensionName=sensors&metricName=m")
        .await
        .invalid("mutually exclusive");
    t.delete("/dimensions/sensors")
        .await
        .invalid("uses-sensors");
    t.delete("/security-profiles/uses-sensors").await.ok();
    t.delete("/dimensions/sensors").await.ok();
    t.delete("/dimensions/sensors").await.ok();
    let list = t.get("/dimensions").await.ok();
    assert_eq!(list["dimensionNames"], json!(["d100"]));
}
