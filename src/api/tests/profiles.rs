//! Security profiles: create, describe, update, delete, list, behavior validation.

use super::*;

#[tokio::test]
async fn create_profile_enforces_name_rules() {
    let t = TestApp::new();
    t.post("/security-profiles/bad%20name", json!({}))
        .await
        .invalid("securityProfileName");
    t.post("/security-profiles/bad%2Fname", json!({}))
        .await
        .invalid("securityProfileName");
    let long = "p".repeat(129);
    t.post(&format!("/security-profiles/{long}"), json!({}))
        .await
        .invalid("129");
    let longest = "p".repeat(128);
    t.post(&format!("/security-profiles/{longest}"), json!({}))
        .await
        .ok();
    // A ':' arrives percent-encoded from botocore and is allowed.
    let body = t
        .post("/security-profiles/team%3Acams_v1-2", json!({}))
        .await
        .ok();
    assert_eq!(body["securityProfileName"], "team:cams_v1-2");
    assert_eq!(
        body["securityProfileArn"],
        "arn:aws:iot:us-east-1:123456789012:securityprofile/team:cams_v1-2"
    );
    // A behavior name follows the same pattern.
    t.post(
        "/security-profiles/p2",
        json!({ "behaviors": [rule("bad name", "aws:num-listening-tcp-ports", "less-than", json!({"count": 1}))] }),
    )
    .await
    .invalid("behavior name");
}
#[tokio::test]
async fn create_profile_enforces_behavior_and_description_rules() {
    let t = TestApp::new();
    t.post(
        "/security-profiles/p",
        json!({ "securityProfileDescription": "line one\u{1}line two" }),
    )
    .await
    .invalid("securityProfileDescription");
    t.post(
        "/security-profiles/p",
        json!({ "securityProfileDescription": "d".repeat(1001) }),
    )
    .await
    .invalid("securityProfileDescription");
    // A port-list metric takes in-port-set / not-in-port-set, not a numeric operator.
    t.post(
        "/security-profiles/p",
        json!({ "behaviors": [rule("ports", "aws:listening-tcp-ports", "less-than", json!({"ports": [22]}))] }),
    )
    .await
    .invalid("less-than");
    let mut b = few_ports();
    b["criteria"]["consecutiveDatapointsToAlarm"] = json!(11);
    t.post("/security-profiles/p", json!({ "behaviors": [b] }))
        .await
        .invalid("consecutiveDatapointsToAlarm");
    let mut b = few_ports();
    b["criteria"]["consecutiveDatapointsToClear"] = json!(0);
    t.post("/security-profiles/p", json!({ "behaviors": [b] }))
        .await
        .invalid("consecutiveDatapointsToClear");
    t.post(
        "/security-profiles/p",
        json!({ "behaviors": [rule("x", "aws:no-such-metric", "less-than", json!({"count": 1}))] }),
    )
    .await
    .invalid("aws:no-such-metric");
    // An undefined custom metric, a dimension on a device metric, duplicate behavior names.
    t.post(
        "/security-profiles/p",
        json!({ "behaviors": [rule("x", "cpu_temp", "less-than", json!({"number": 1}))] }),
    )
    .await
    .invalid("cpu_temp");
    t.post(
        "/security-profiles/p",
        json!({ "behaviors": [few_ports(), few_ports()] }),
    )
    .await
    .invalid("more than once");
    // Malformed JSON and a body of the wrong shape.
    t.send_raw(
        Method::POST,
        "/security-profiles/p",
        Some("application/json"),
        b"{\"behaviors\": [".to_vec(),
    )
    .await
    .invalid("Malformed");
    t.post("/security-profiles/p", json!({ "behaviors": "nope" }))
        .await
        .invalid("Malformed");
    // Nothing above was created.
    t.get("/security-profiles/p")
        .await
        .error(404, "ResourceNotFoundException");
    // An empty body is `{}` (botocore sends none when no member is set).
    t.send_raw(Method::POST, "/security-profiles/p", None, Vec::new())
        .await
        .ok();
}
#[tokio::test]
async fn validate_behaviors_reports_without_failing() {
    let t = TestApp::new();
    let body = t
        .post(
            "/security-profile-behaviors/validate",
            json!({ "behaviors": [few_ports()] }),
        )
        .await
        .ok();
    assert_eq!(body["valid"], true);
    let mut b = few_ports();
    b["criteria"]["consecutiveDatapointsToAlarm"] = json!(11);
    let body = t
        .post(
            "/security-profile-behaviors/validate",
            json!({ "behaviors": [b] }),
        )
        .await
        .ok();
    assert_eq!(body["valid"], false);
    assert!(
        body["validationErrors"][0]["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("consecutiveDatapointsToAlarm")
    );
    t.post("/security-profile-behaviors/validate", json!({}))
        .await
        .invalid("behaviors");
}
#[tokio::test]
async fn create_existing_profile_is_resource_already_exists_with_id_and_arn() {
    let t = TestApp::new();
    t.create_profile("p1", json!([few_ports()])).await;
    let reply = t.post("/security-profiles/p1", json!({})).await;
    reply.error(409, "ResourceAlreadyExistsException");
    assert_eq!(reply.body["resourceId"], "p1");
    assert_eq!(
        reply.body["resourceArn"],
        "arn:aws:iot:us-east-1:123456789012:securityprofile/p1"
    );
    // The original is untouched.
    let p = t.get("/security-profiles/p1").await.ok();
    assert_eq!(p["behaviors"].as_array().map(Vec::len), Some(1));
}
#[tokio::test]
async fn unknown_profile_is_resource_not_found() {
    let t = TestApp::new();
    t.get("/security-profiles/ghost")
        .await
        .error(404, "ResourceNotFoundException");
    t.patch("/security-profiles/ghost", json!({}))
        .await
        .error(404, "ResourceNotFoundException");
    t.get("/security-profiles/ghost/targets")
        .await
        .error(404, "ResourceNotFoundException");
    t.put(
        &format!(
            "/security-profiles/ghost/targets?securityProfileTargetArn={}",
            enc(ALL_THINGS)
        ),
        None,
    )
    .await
    .error(404, "ResourceNotFoundException");
    // An unknown route is a 404 in the same shape.
    t.get("/no-such-operation")
        .await
        .error(404, "ResourceNotFoundException");
}
#[tokio::test]
async fn update_profile_is_partial_versioned_and_refuses_set_and_delete_together() {
    let t = TestApp::new();
    t.post(
        "/security-profiles/p",
        json!({
            "securityProfileDescription": "cameras",
            "behaviors": [few_ports()],
            "additionalMetricsToRetainV2": [{ "metric": "aws:num-messages-sent" }]
        }),
    )
    .await
    .ok();
    let created = t.get("/security-profiles/p").await.ok();
    assert_eq!(created["version"], 1);
    assert_eq!(
        created["creationDate"].as_f64(),
        Some(T0_MS as f64 / 1000.0)
    );
    assert_eq!(created["lastModifiedDate"], created["creationDate"]);

    t.advance_secs(60);
    // Only the description: behaviors and retained metrics stay.
    let updated = t
        .patch(
            "/security-profiles/p",
            json!({ "securityProfileDescription": "all cameras" }),
        )
        .await
        .ok();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["securityProfileDescription"], "all cameras");
    assert_eq!(updated["behaviors"], created["behaviors"]);
    assert_eq!(
        updated["additionalMetricsToRetainV2"],
        created["additionalMetricsToRetainV2"]
    );
    assert_eq!(updated["creationDate"], created["creationDate"]);
    assert_eq!(
        updated["lastModifiedDate"].as_f64(),
        Some((T0_MS + 60_000) as f64 / 1000.0)
    );
    assert_eq!(t.get("/security-profiles/p").await.ok(), updated);

    // expectedVersion: a stale one conflicts and changes nothing; the current one succeeds.
    t.patch(
        "/security-profiles/p?expectedVersion=1",
        json!({ "securityProfileDescription": "stale" }),
    )
    .await
    .error(409, "VersionConflictException");
    assert_eq!(
        t.get("/security-profiles/p").await.ok()["securityProfileDescription"],
        "all cameras"
    );
    let v3 = t
        .patch(
            "/security-profiles/p?expectedVersion=2",
            json!({ "behaviors": [few_ports(), rule("few-conns", "aws:num-established-tcp-connections", "less-than", json!({"count": 10}))] }),
        )
        .await
        .ok();
    assert_eq!(v3["version"], 3);
    assert_eq!(v3["behaviors"].as_array().map(Vec::len), Some(2));

    // deleteBehaviors with behaviors in the same call is refused; alone it clears them.
    t.patch(
        "/security-profiles/p",
        json!({ "deleteBehaviors": true, "behaviors": [few_ports()] }),
    )
    .await
    .invalid("behaviors");
    t.patch(
        "/security-profiles/p",
        json!({ "deleteAdditionalMetricsToRetain": true, "additionalMetricsToRetainV2": [] }),
    )
    .await
    .invalid("additionalMetricsToRetain");
    let v4 = t
        .patch(
            "/security-profiles/p",
            json!({ "deleteBehaviors": true, "deleteAdditionalMetricsToRetain": true }),
        )
        .await
        .ok();
    assert_eq!(v4["version"], 4);
    assert!(v4["behaviors"].as_array().is_none_or(Vec::is_empty));
    assert!(v4.get("additionalMetricsToRetainV2").is_none());
    assert_eq!(v4["securityProfileDescription"], "all cameras");

    // An update that breaks a rule is refused and does not bump the version.
    let mut bad = few_ports();
    bad["criteria"]["consecutiveDatapointsToAlarm"] = json!(11);
    t.patch("/security-profiles/p", json!({ "behaviors": [bad] }))
        .await
        .invalid("consecutiveDatapointsToAlarm");
    assert_eq!(t.get("/security-profiles/p").await.ok()["version"], 4);
}
#[tokio::test]
async fn delete_profile_is_idempotent_and_checks_expected_version() {
    let t = TestApp::new();
    t.delete("/security-profiles/never-existed").await.ok();
    t.create_profile("p", json!([few_ports()])).await;
    t.attach("p", ALL_THINGS).await;
    t.delete("/security-profiles/p?expectedVersion=7")
        .await
        .error(409, "VersionConflictException");
    t.get("/security-profiles/p").await.ok();
    t.delete("/security-profiles/p?expectedVersion=1")
        .await
        .ok();
    t.get("/security-profiles/p")
        .await
        .error(404, "ResourceNotFoundException");
    t.delete("/security-profiles/p").await.ok();
    // Its attachments went with it.
    let body = t
        .get(&format!(
            "/security-profiles-for-target?securityProfileTargetArn={}",
            enc(ALL_THINGS)
        ))
        .await
        .ok();
    assert_eq!(body["securityProfileTargetMappings"], json!([]));
}
#[tokio::test]
async fn sixth_profile_on_one_target_is_limit_exceeded() {
    let t = TestApp::new();
    for i in 0..6 {
        t.create_profile(&format!("p{i}"), json!([])).await;
    }
    for i in 0..5 {
        t.attach(&format!("p{i}"), ALL_THINGS).await;
    }
    // Re-attaching one of the five is not a sixth.
    t.attach("p0", ALL_THINGS).await;
    let uri = format!(
        "/security-profiles/p5/targets?securityProfileTargetArn={}",
        enc(ALL_THINGS)
    );
    t.put(&uri, None).await.error(410, "LimitExceededException");
    // The limit is per target.
    t.attach("p5", REGISTERED).await;
    // A bad or missing target ARN is an InvalidRequest.
    t.put(
        "/security-profiles/p5/targets?securityProfileTargetArn=arn%3Aaws%3As3%3A%3A%3Ab",
        None,
    )
    .await
    .error(400, INVALID_REQUEST);
    t.put("/security-profiles/p5/targets", None)
        .await
        .invalid("securityProfileTargetArn");
}
#[tokio::test]
async fn list_profiles_paginates_with_next_token() {
    let t = TestApp::new();
    for i in 0..7 {
        t.create_profile(&format!("p{i}"), json!([])).await;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let uri = match &token {
            Some(tok) => format!("/security-profiles?maxResults=3&nextToken={}", enc(tok)),
            None => "/security-profiles?maxResults=3".to_owned(),
        };
        let body = t.get(&uri).await.ok();
        pages += 1;
        let ids = body["securityProfileIdentifiers"].as_array().expect("ids");
        assert_eq!(ids.len(), if pages < 3 { 3 } else { 1 }, "page {pages}");
        for id in ids {
            let name = id["name"].as_str().expect("name").to_owned();
            assert_eq!(
                id["arn"],
                format!("arn:aws:iot:us-east-1:123456789012:securityprofile/{name}")
            );
            names.push(name);
        }
        token = body["nextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            break;
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).map(|i| format!("p{i}")).collect();
    assert_eq!(names, expected);
    // Without maxResults, one page holds everything and has no token.
    let all = t.get("/security-profiles").await.ok();
    assert_eq!(
        all["securityProfileIdentifiers"].as_array().map(Vec::len),
        Some(7)
    );
    assert!(all["nextToken"].is_null());

    t.get("/security-profiles?maxResults=0")
        .await
        .invalid("maxResults");
    t.get("/security-profiles?maxResults=251")
        .await
        .invalid("maxResults");
    t.get("/security-profiles?maxResults=abc")
        .await
        .invalid("maxResults");
    t.get("/security-profiles?nextToken=garbage")
        .await
        .invalid("nextToken");
    t.get("/custom-metrics?maxResults=0")
        .await
        .invalid("maxResults");
    t.get("/active-violations?nextToken=%21%21")
        .await
        .invalid("nextToken");
}
#[tokio::test]
async fn behavior_value_must_match_the_metric() {
    let t = TestApp::new();
    t.post(
        "/custom-metric/tags",
        json!({ "metricType": "string-list" }),
    )
    .await
    .ok();
    for (metric, op, value) in [
        (
            "aws:num-listening-tcp-ports",
            "less-than",
            json!({ "cidrs": ["10.0.0.0/8"] }),
        ),
        (
            "aws:source-ip-address",
            "in-cidr-set",
            json!({ "count": 1 }),
        ),
        (
            "aws:listening-tcp-ports",
            "in-port-set",
            json!({ "ports": [70000] }),
        ),
        ("tags", "less-than", json!({ "strings": ["a"] })),
    ] {
        t.post(
            "/security-profiles/p",
            json!({ "behaviors": [rule("b", metric, op, value)] }),
        )
        .await
        .error(400, INVALID_REQUEST);
    }
    // A list metric takes no durationSeconds.
    let mut b = rule(
        "ports",
        "aws:listening-tcp-ports",
        "in-port-set",
        json!({ "ports": [22] }),
    );
    b["criteria"]["durationSeconds"] = json!(300);
    t.post("/security-profiles/p", json!({ "behaviors": [b] }))
        .await
        .invalid("durationSeconds");
    // The suitable operators are accepted.
    t.create_profile(
        "p",
        json!([
            rule(
                "ports",
                "aws:listening-tcp-ports",
                "in-port-set",
                json!({ "ports": [22, 443] })
            ),
            rule(
                "ips",
                "aws:source-ip-address",
                "in-cidr-set",
                json!({ "cidrs": ["10.0.0.0/8"] })
            ),
            rule("tags", "tags", "in-set", json!({ "strings": ["a"] }))
        ]),
    )
    .await;
}
