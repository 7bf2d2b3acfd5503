//! Fleet events, incidents and maintenance windows through the service: a fleet-wide shift of
//! a hand-made ML model's fleet opens one fleet event whose device alarms are recorded with its
//! id and not notified, TRUE_POSITIVE releases them, a restart ends live events, maintenance
//! windows keep covered alarms off the feed; every operation's validation errors.

use super::ml::{BEHAVIOR, METRIC, PROFILE, ml_behavior};
use super::*;
use thingward_store::OutboxKind;

const DEVICES: usize = 20;
const NOT_FOUND: &str = "ResourceNotFoundException";

fn thing(i: usize) -> String {
    format!("d{i:02}")
}

impl TestApp {
    /// An ML profile on all things with an ACTIVE hand-made model of `DEVICES` devices
    /// (bytes out around 1,000), restarted so that the model serves.
    async fn fleet() -> Self {
        let t = TestApp::new();
        t.watch_all(PROFILE, json!([ml_behavior("MEDIUM")])).await;
        let things: Vec<String> = (0..DEVICES).map(thing).collect();
        let names: Vec<&str> = things.iter().map(String::as_str).collect();
        t.write_active_model(1, &names);
        t.restart()
    }

    /// One 5-minute slot: every device reports its usual bytes out, the first `spiking` a
    /// thousand times that.
    async fn slot(&self, spiking: usize) {
        self.advance_secs(300);
        let datapoints: Vec<Value> = (0..DEVICES)
            .map(|i| {
                let count = if i < spiking { 1_000_000 } else { 1_000 };
                json!({ "thingName": thing(i), "metric": METRIC, "value": { "count": count } })
            })
            .collect();
        self.ingest(Value::Array(datapoints)).await;
    }

    /// The outbox rows of `kind`.
    fn feed(&self, kind: OutboxKind) -> Vec<thingward_store::OutboxEvent> {
        self.store
            .outbox_after(0, 10_000)
            .expect("outbox")
            .into_iter()
            .filter(|e| e.kind == kind)
            .collect()
    }

    async fn fleet_events(&self, query: &str) -> Vec<Value> {
        let body = self
            .get(&format!("/thingward/v1/fleet-events{query}"))
            .await
            .ok();
        body["fleetEvents"].as_array().expect("fleetEvents").clone()
    }

    async fn metrics_text(&self) -> String {
        let r = self.raw_get("/metrics", &[]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let bytes = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }
}

#[tokio::test]
async fn a_fleet_wide_shift_is_one_event_whose_alarms_are_held_until_true_positive() {
    let t = TestApp::fleet().await;
    t.slot(0).await;
    t.slot(12).await;
    let events = t.fleet_events("").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let ev = &events[0];
    let id = ev["fleetEventId"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 16);
    assert_eq!(ev["phase"], "OPEN");
    assert_eq!(ev["securityProfileName"], PROFILE);
    assert_eq!(ev["behaviors"][0]["behaviorName"], BEHAVIOR);
    assert_eq!(ev["behaviors"][0]["metric"], METRIC);
    assert!(ev["behaviors"][0]["peakShare"].as_f64().expect("share") >= 0.25);
    assert!(ev["endTime"].is_null());
    assert_eq!(
        t.get(&format!("/thingward/v1/fleet-events/{id}"))
            .await
            .ok(),
        *ev
    );
    // Filters.
    assert_eq!(t.fleet_events("?phase=OPEN").await.len(), 1);
    assert!(t.fleet_events("?phase=CLOSED").await.is_empty());
    assert!(
        t.fleet_events("?securityProfileName=other")
            .await
            .is_empty()
    );
    assert_eq!(
        t.fleet_events(&format!("?startTime={}", iso(T0_MS)))
            .await
            .len(),
        1
    );
    assert!(
        t.fleet_events(&format!("?endTime={}", iso(T0_MS)))
            .await
            .is_empty()
    );

    // The first devices alarmed before the event pended (the scorer needs a few hot devices
    // to call it unlikely): notified. The others are held.
    let active = t.active("").await;
    assert_eq!(active.len(), 12);
    let held = active
        .iter()
        .filter(|v| v["fleetEventId"] == id.as_str())
        .count();
    assert!(held >= 8, "{active:?}");
    let notified = 12 - held;
    assert!(active.iter().all(|v| v["incidentId"].is_string()));
    let in_alarm = t.feed(OutboxKind::Violation);
    assert_eq!(in_alarm.len(), notified, "{in_alarm:?}");
    assert!(
        in_alarm
            .iter()
            .all(|e| e.body.get("fleetEventId").is_none())
    );
    let fleet_feed = t.feed(OutboxKind::FleetEvent);
    assert_eq!(fleet_feed.len(), 1);
    assert_eq!(fleet_feed[0].key, format!("{id}:opened"));
    assert_eq!(fleet_feed[0].body["fleetEventChange"], "opened");
    assert_eq!(fleet_feed[0].routing.profile.as_deref(), Some(PROFILE));
    let events = t.events("").await;
    assert!(
        events
            .iter()
            .filter(|e| e["fleetEventId"] == id.as_str())
            .all(|e| e["violationEventType"] == "in-alarm")
    );
    let m = t.metrics_text().await;
    assert!(
        m.contains("thingward_fleet_events_active{profile=\"ml\",phase=\"OPEN\"} 1"),
        "{m}"
    );
    assert!(m.contains("thingward_fleet_events_total{profile=\"ml\",phase=\"opened\"} 1"));
    assert!(m.contains(&format!(
        "thingward_alarms_held_total{{cause=\"fleet_event\"}} {held}"
    )));
    assert!(m.contains("thingward_alarms_released_total 0"));
    assert!(m.contains("thingward_incidents_open 12"));

    // TRUE_POSITIVE: every held alarm is notified now, with its link kept.
    t.post(
        &format!("/thingward/v1/fleet-events/{id}/verification-state"),
        json!({ "verificationState": "TRUE_POSITIVE", "verificationStateDescription": "a botnet" }),
    )
    .await
    .ok();
    let in_alarm = t.feed(OutboxKind::Violation);
    assert_eq!(in_alarm.len(), 12);
    assert_eq!(
        in_alarm
            .iter()
            .filter(|e| e.body["fleetEventId"] == id.as_str())
            .count(),
        held
    );
    let ev = t
        .get(&format!("/thingward/v1/fleet-events/{id}"))
        .await
        .ok();
    assert_eq!(ev["verificationState"], "TRUE_POSITIVE");
    assert_eq!(ev["verificationStateDescription"], "a botnet");
    assert!(
        t.metrics_text()
            .await
            .contains(&format!("thingward_alarms_released_total {held}"))
    );
    // Releasing twice writes nothing more; later changes of the alarms are notified.
    t.post(
        &format!("/thingward/v1/fleet-events/{id}/verification-state"),
        json!({ "verificationState": "TRUE_POSITIVE" }),
    )
    .await
    .ok();
    assert_eq!(t.feed(OutboxKind::Violation).len(), 12);
    t.slot(0).await;
    let cleared = t.feed(OutboxKind::Violation).len();
    assert_eq!(cleared, 24, "every clear is notified");

    // Incidents: one per device, closed now.
    let body = t.get("/thingward/v1/incidents").await.ok();
    let incidents = body["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 12, "{body}");
    assert!(incidents.iter().all(|i| i["status"] == "CLOSED"
        && i["endTime"].is_number()
        && i["violationCount"] == 1
        && i["behaviors"] == json!([BEHAVIOR])));
    let body = t
        .get("/thingward/v1/incidents?thingName=d03&securityProfileName=ml")
        .await
        .ok();
    assert_eq!(body["incidents"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        body["incidents"][0]["incidentId"],
        t.events("&thingName=d03").await[0]["incidentId"]
    );
    let body = t.get("/thingward/v1/incidents?maxResults=5").await.ok();
    assert_eq!(body["incidents"].as_array().map(Vec::len), Some(5));
    assert_eq!(body["nextToken"], "o5");
    let body = t
        .get(&format!("/thingward/v1/incidents?endTime={}", iso(T0_MS)))
        .await
        .ok();
    assert_eq!(body["incidents"], json!([]));
}

#[tokio::test]
async fn a_restart_ends_the_live_fleet_events_of_the_previous_run() {
    let t = TestApp::fleet().await;
    t.slot(0).await;
    t.slot(12).await;
    let id = t.fleet_events("").await[0]["fleetEventId"]
        .as_str()
        .expect("id")
        .to_owned();
    let t = t.restart();
    let ev = t
        .get(&format!("/thingward/v1/fleet-events/{id}"))
        .await
        .ok();
    assert_eq!(ev["phase"], "CLOSED");
    assert!(ev["endTime"].is_number());
    let keys: Vec<String> = t
        .feed(OutboxKind::FleetEvent)
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, [format!("{id}:opened"), format!("{id}:closed")]);
    // A TRUE_POSITIVE after the restart still releases what it held, from the store.
    t.post(
        &format!("/thingward/v1/fleet-events/{id}/verification-state"),
        json!({ "verificationState": "TRUE_POSITIVE" }),
    )
    .await
    .ok();
    assert_eq!(t.feed(OutboxKind::Violation).len(), 12);
}

#[tokio::test]
async fn fleet_event_and_incident_requests_are_validated() {
    let t = TestApp::fleet().await;
    let r = t.get("/thingward/v1/fleet-events/not-hex").await;
    r.invalid("fleetEventId must be 16 hex digits");
    let r = t.get("/thingward/v1/fleet-events/0000000000000001").await;
    assert!(r.error(404, NOT_FOUND).contains("0000000000000001"));
    let r = t
        .post(
            "/thingward/v1/fleet-events/0000000000000001/verification-state",
            json!({ "verificationState": "TRUE_POSITIVE" }),
        )
        .await;
    r.error(404, NOT_FOUND);
    t.get("/thingward/v1/fleet-events?phase=BOGUS")
        .await
        .invalid("phase must be");
    t.get("/thingward/v1/fleet-events?startTime=yesterday")
        .await
        .invalid("startTime");
    t.get("/thingward/v1/fleet-events?maxResults=0")
        .await
        .invalid("maxResults");
    t.get("/thingward/v1/fleet-events?nextToken=zz")
        .await
        .invalid("nextToken");
    t.get(&format!(
        "/thingward/v1/fleet-events?startTime={}&endTime={}",
        iso(T0_MS),
        iso(T0_MS - 1000)
    ))
    .await
    .invalid("endTime is before startTime");
    t.get("/thingward/v1/incidents?thingName=")
        .await
        .error(400, INVALID_REQUEST);
    t.get("/thingward/v1/incidents?securityProfileName=a%20b")
        .await
        .invalid("securityProfileName");
    t.get("/thingward/v1/incidents?endTime=soon")
        .await
        .invalid("endTime");

    // The verification body, on a real event, as PutVerificationStateOnViolation checks it.
    t.slot(0).await;
    t.slot(12).await;
    let id = t.fleet_events("").await[0]["fleetEventId"]
        .as_str()
        .expect("id")
        .to_owned();
    let uri = format!("/thingward/v1/fleet-events/{id}/verification-state");
    t.post(&uri, json!({}))
        .await
        .invalid("verificationState is required");
    t.post(&uri, json!({ "verificationState": "MAYBE" }))
        .await
        .invalid("Invalid verificationState");
    t.post(
        &uri,
        json!({ "verificationState": "UNKNOWN", "verificationStateDescription": "x".repeat(1001) }),
    )
    .await
    .invalid("at most 1000");
    t.post(
        &uri,
        json!({ "verificationState": "UNKNOWN", "verificationStateDescription": "a\u{7}b" }),
    )
    .await
    .invalid("control characters");
    t.send_raw(Method::POST, &uri, Some("application/json"), b"{".to_vec())
        .await
        .invalid("Malformed request body");
    // A benign positive is recorded and releases nothing.
    let before = t.feed(OutboxKind::Violation).len();
    t.post(&uri, json!({ "verificationState": "BENIGN_POSITIVE" }))
        .await
        .ok();
    assert_eq!(t.feed(OutboxKind::Violation).len(), before);
    assert_eq!(
        t.get(&format!("/thingward/v1/fleet-events/{id}"))
            .await
            .ok()["verificationState"],
        "BENIGN_POSITIVE"
    );
}

#[tokio::test]
async fn maintenance_windows_are_validated_listed_and_deleted() {
    let t = TestApp::fleet().await;
    let now = t.now_ms() / 1000;
    let ok = json!({ "securityProfileName": PROFILE, "startTime": now, "endTime": now + 3600 });
    let uri = "/thingward/v1/maintenance-windows/rollout-1";
    let created = t.post(uri, ok.clone()).await.ok();
    assert_eq!(created["name"], "rollout-1");
    assert_eq!(created["securityProfileName"], PROFILE);
    assert_eq!(created["metrics"], json!([]));
    assert_eq!(created["endTime"], json!((now + 3600) as f64));
    assert_eq!(
        created["arn"],
        "arn:aws:iot:us-east-1:123456789012:maintenancewindow/rollout-1"
    );
    let dup = t.post(uri, ok.clone()).await;
    dup.error(409, "ResourceAlreadyExistsException");
    assert_eq!(dup.body["resourceId"], "rollout-1");
    assert_eq!(t.get(uri).await.ok(), created);
    let list = t.get("/thingward/v1/maintenance-windows").await.ok();
    assert_eq!(list["maintenanceWindows"], json!([created]));
    assert!(list.get("nextToken").is_none());

    let bad = |patch: Value| {
        let mut body = ok.clone();
        for (k, v) in patch.as_object().expect("object") {
            if v.is_null() {
                body.as_object_mut().expect("object").remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let w = "/thingward/v1/maintenance-windows/w2";
    for (body, needle) in [
        (
            bad(json!({ "securityProfileName": null })),
            "Exactly one of",
        ),
        (bad(json!({ "thingGroupName": "g" })), "Exactly one of"),
        (
            bad(json!({ "endTime": now - 10 })),
            "endTime must be after startTime",
        ),
        (
            bad(json!({ "startTime": now - 7200, "endTime": now - 3600 })),
            "in the past",
        ),
        (bad(json!({ "startTime": null })), "startTime is required"),
        (bad(json!({ "endTime": -5 })), "epoch seconds"),
        (
            bad(json!({ "metrics": ["aws:listening-tcp-ports"] })),
            "not an ML Detect metric",
        ),
        (
            bad(json!({ "metrics": ["aws:nope"] })),
            "unknown built-in metric",
        ),
        (bad(json!({ "description": "a\nb" })), "description"),
        (bad(json!({ "colour": "red" })), "unknown field"),
        (
            bad(json!({ "securityProfileName": "bad name" })),
            "securityProfileName",
        ),
    ] {
        t.post(w, body).await.invalid(needle);
    }
    t.post("/thingward/v1/maintenance-windows/bad%20name", ok.clone())
        .await
        .invalid("maintenance window name");
    let r = t
        .post(w, bad(json!({ "securityProfileName": "nobody" })))
        .await;
    assert!(
        r.error(404, NOT_FOUND)
            .contains("Security profile 'nobody'")
    );
    let r = t
        .post(
            w,
            bad(json!({ "securityProfileName": null, "thingGroupName": "nogroup" })),
        )
        .await;
    assert!(r.error(404, NOT_FOUND).contains("Thing group 'nogroup'"));
    let r = t.post(w, bad(json!({ "metrics": ["my-metric"] }))).await;
    assert!(
        r.error(404, NOT_FOUND)
            .contains("Custom metric 'my-metric'")
    );
    t.get(w).await.error(404, NOT_FOUND);
    t.delete(uri).await.ok();
    t.delete(uri).await.error(404, NOT_FOUND);
    assert_eq!(
        t.get("/thingward/v1/maintenance-windows").await.ok()["maintenanceWindows"],
        json!([])
    );
}

#[tokio::test]
async fn a_window_declared_ahead_keeps_a_roll_out_off_the_feed() {
    let t = TestApp::fleet().await;
    // The roll-out is planned on a thing group holding the whole fleet, for bytes out.
    t.post("/thing-groups/cameras", json!({})).await.ok();
    for i in 0..DEVICES {
        t.post(&format!("/things/{}", thing(i)), json!({}))
            .await
            .ok();
        t.put(
            "/thing-groups/addThingToThingGroup",
            Some(json!({ "thingGroupName": "cameras", "thingName": thing(i) })),
        )
        .await
        .ok();
    }
    let now = t.now_ms() / 1000;
    t.post(
        "/thingward/v1/maintenance-windows/firmware-2",
        json!({ "thingGroupName": "cameras", "metrics": [METRIC],
                "startTime": now + 300, "endTime": now + 1200,
                "description": "firmware 2.0 roll-out" }),
    )
    .await
    .ok();
    t.slot(0).await;
    t.slot(12).await;
    assert!(t.fleet_events("").await.is_empty());
    let active = t.active("").await;
    assert_eq!(active.len(), 12);
    assert!(
        active
            .iter()
            .all(|v| v["maintenanceWindowId"] == "firmware-2" && v.get("fleetEventId").is_none())
    );
    // Covered clears are not notified either; nothing reached the feed.
    t.slot(0).await;
    assert!(t.active("").await.is_empty());
    assert!(t.feed(OutboxKind::Violation).is_empty());
    assert!(t.feed(OutboxKind::FleetEvent).is_empty());
    let cleared = t.events("").await;
    assert_eq!(cleared.len(), 24);
    assert!(
        cleared
            .iter()
            .all(|e| e["maintenanceWindowId"] == "firmware-2")
    );
    assert!(
        t.metrics_text()
            .await
            .contains("thingward_alarms_held_total{cause=\"maintenance\"} 12")
    );
    // After the window the same shift is a fleet event again.
    t.advance_secs(1200);
    t.slot(0).await;
    t.slot(12).await;
    assert_eq!(t.fleet_events("").await.len(), 1);
}
