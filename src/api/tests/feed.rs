//! The alarm feed through the service: destinations over the API, real webhook receivers (an
//! axum server on 127.0.0.1) checked against the published payload formats, bounded retries
//! and dead letters, the SSE stream's resume, `/metrics`, and `alertTargets` routing.

use super::*;
use axum::extract::{Path as AxPath, State as AxState};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// A webhook receiver on 127.0.0.1: `/{name}` records and answers 200; `/fail…` answers 500
/// while `failing` is set; `/hang…` never answers.
#[derive(Clone)]
struct Receiver {
    base: String,
    got: Arc<Mutex<Vec<Got>>>,
    failing: Arc<AtomicBool>,
}

async fn receive(
    AxState(r): AxState<Receiver>,
    AxPath(path): AxPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    if path.starts_with("hang") {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if path.starts_with("fail") && r.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom".into());
    }
    let body = serde_json::from_slice(&body).expect("receiver: JSON body");
    let first_slow = path.starts_with("slow") && r.at(&path).is_empty();
    r.got.lock().expect("lock").push(Got {
        path,
        headers,
        body,
    });
    if first_slow {
        // Took it, but answers after the sender's timeout: the sender must retry.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    (StatusCode::OK, String::new())
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let r = Self {
            base: format!("http://{}", listener.local_addr().expect("addr")),
            got: Arc::default(),
            failing: Arc::new(AtomicBool::new(true)),
        };
        let app = Router::new()
            .route("/{name}", axum::routing::post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        r
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn at(&self, path: &str) -> Vec<Got> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .filter(|g| g.path == path)
            .cloned()
            .collect()
    }
}

/// Waits (real time, up to 20 s) until `f` holds.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn destination_arn(name: &str) -> String {
    format!("arn:aws:iot:{REGION}:{ACCOUNT}:destination/{name}")
}

impl TestApp {
    async fn destination(&self, name: &str, body: Value) -> Value {
        self.put(&format!("/thingward/v1/destinations/{name}"), Some(body))
            .await
            .ok()
    }

    async fn status(&self, name: &str) -> Value {
        self.get(&format!("/thingward/v1/destinations/{name}"))
            .await
            .ok()["status"]
            .clone()
    }

    /// Profile `p` (few-ports) on all things, with these alert targets.
    async fn profile_with_targets(&self, targets: Value) {
        self.post(
            "/security-profiles/p",
            json!({ "behaviors": [few_ports()], "alertTargets": targets }),
        )
        .await
        .ok();
        self.attach("p", ALL_THINGS).await;
    }

    /// cam goes into alarm now and clears a minute later; returns the violation id.
    async fn alarm_and_clear(&self) -> String {
        self.count("cam", "aws:num-listening-tcp-ports", 9).await;
        let id = self.active("").await[0]["violationId"]
            .as_str()
            .expect("id")
            .to_owned();
        self.advance_secs(60);
        self.count("cam", "aws:num-listening-tcp-ports", 1).await;
        id
    }
}

fn header<'a>(g: &'a Got, name: &str) -> &'a str {
    g.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn rfc3339(ms: i64) -> String {
    crate::feed::format::rfc3339(ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_receive_violation_events_in_the_published_formats() {
    let t = TestApp::new();
    let r = Receiver::start().await;
    let all =
        |kind: &str, path: &str| json!({ "type": kind, "url": r.url(path), "allProfiles": true });
    t.destination("am", all("alertmanager", "am")).await;
    t.destination("ocsf", all("ocsf", "ocsf")).await;
    t.destination("asff", all("asff", "asff")).await;
    // Routed by the profile's alertTargets, not allProfiles.
    let ce = t
        .destination("ce", json!({ "type": "cloudevents", "url": r.url("ce") }))
        .await;
    assert_eq!(ce["arn"], destination_arn("ce"));
    t.destination(
        "other",
        json!({ "type": "cloudevents", "url": r.url("other") }),
    )
    .await;
    t.profile_with_targets(json!({ "WEBHOOK": { "alertTargetArn": destination_arn("ce") } }))
        .await;
    let id = t.alarm_and_clear().await;
    let (k_in, k_out) = (format!("{id}:in-alarm"), format!("{id}:alarm-cleared"));

    eventually("every destination's events", async || {
        let alerts: usize = r
            .at("am")
            .iter()
            .map(|g| g.body["alerts"].as_array().map_or(0, Vec::len))
            .sum();
        let findings = |path: &str, pointer: &str| -> usize {
            r.at(path)
                .iter()
                .map(|g| {
                    g.body
                        .pointer(pointer)
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len)
                })
                .sum()
        };
        alerts == 2
            && r.at("ce").len() == 2
            && findings("ocsf", "") == 2
            && findings("asff", "/Findings") == 2
    })
    .await;

    // Alertmanager webhook (receiver side, version 4).
    let payloads = r.at("am");
    let mut alerts = Vec::new();
    for p in &payloads {
        let b = &p.body;
        assert_eq!(b["version"], "4");
        assert_eq!(b["receiver"], "am");
        assert_eq!(b["truncatedAlerts"], 0);
        assert!(b["groupKey"].is_string());
        assert!(b["status"] == "firing" || b["status"] == "resolved");
        assert!(b["groupLabels"].is_object() && b["commonAnnotations"].is_object());
        assert_eq!(b["commonLabels"]["securityProfileName"], "p");
        assert_eq!(b["externalURL"], "http://127.0.0.1");
        assert_eq!(header(p, "content-type"), "application/json");
        alerts.extend(b["alerts"].as_array().expect("alerts").iter().cloned());
    }
    let (firing, resolved) = (&alerts[0], &alerts[1]);
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["labels"]["alertname"], "few-ports");
    assert_eq!(firing["labels"]["thingName"], "cam");
    assert_eq!(firing["labels"]["severity"], "medium");
    assert_eq!(firing["startsAt"], rfc3339(T0_MS));
    assert_eq!(firing["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(firing["annotations"]["idempotencyKey"], k_in.as_str());
    assert!(
        firing["generatorURL"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1"))
    );
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["startsAt"], rfc3339(T0_MS));
    assert_eq!(resolved["endsAt"], rfc3339(T0_MS + 60_000));
    assert_eq!(resolved["annotations"]["idempotencyKey"], k_out.as_str());
    assert_eq!(firing["fingerprint"], resolved["fingerprint"]);
    assert!(header(&payloads[0], "idempotency-key").contains(&k_in));

    // CloudEvents 1.0, structured mode, one event per request.
    let ce = r.at("ce");
    for (g, key, kind) in [
        (&ce[0], &k_in, "io.thingward.violation.in-alarm"),
        (&ce[1], &k_out, "io.thingward.violation.alarm-cleared"),
    ] {
        assert_eq!(header(g, "content-type"), "application/cloudevents+json");
        assert_eq!(header(g, "idempotency-key"), key.as_str());
        let e = &g.body;
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["id"], key.as_str());
        assert_eq!(e["type"], kind);
        assert!(e["source"].as_str().is_some_and(|s| !s.is_empty()));
        assert_eq!(e["subject"], "cam");
        assert_eq!(e["datacontenttype"], "application/json");
        assert!(chrono::DateTime::parse_from_rfc3339(e["time"].as_str().expect("time")).is_ok());
        assert_eq!(e["data"]["violationId"], id.as_str());
        assert_eq!(e["data"]["securityProfileName"], "p");
    }

    // OCSF Detection Finding: the required fields of ecosystem.md §3.
    let ocsf: Vec<Value> = r
        .at("ocsf")
        .iter()
        .flat_map(|g| g.body.as_array().expect("array").clone())
        .collect();
    assert_eq!(ocsf.len(), 2);
    for (f, activity) in ocsf.iter().zip([1, 3]) {
        assert_eq!(f["class_uid"], 2004);
        assert_eq!(f["category_uid"], 2);
        assert_eq!(f["activity_id"], activity);
        assert_eq!(f["type_uid"], 200_400 + activity);
        assert!((1..=6).contains(&f["severity_id"].as_i64().expect("severity_id")));
        assert!(f["time"].is_i64());
        assert_eq!(f["metadata"]["product"]["name"], "thingward");
        assert!(f["metadata"]["product"]["vendor_name"].is_string());
        assert!(f["metadata"]["version"].is_string());
        assert_eq!(f["finding_info"]["uid"], id.as_str());
        assert!(f["finding_info"]["title"].is_string());
        assert_eq!(f["resources"][0]["name"], "cam");
    }
    assert_eq!(ocsf[0]["status_id"], 1);
    assert_eq!(ocsf[1]["status_id"], 4);
    assert!(
        ocsf[0].get("confidence_id").is_none(),
        "a rules violation has no confidence"
    );

    // ASFF: the required fields of ecosystem.md §3.
    let asff: Vec<Value> = r
        .at("asff")
        .iter()
        .flat_map(|g| g.body["Findings"].as_array().expect("Findings").clone())
        .collect();
    assert_eq!(asff.len(), 2);
    for f in &asff {
        assert_eq!(f["SchemaVersion"], "2018-10-08");
        for k in [
            "Id",
            "ProductArn",
            "GeneratorId",
            "AwsAccountId",
            "CreatedAt",
            "UpdatedAt",
            "Title",
            "Description",
        ] {
            assert!(
                f[k].as_str().is_some_and(|s| !s.is_empty()),
                "ASFF {k}: {f}"
            );
        }
        assert_eq!(f["AwsAccountId"], ACCOUNT);
        assert!(f["Types"].as_array().is_some_and(|t| !t.is_empty()));
        assert_eq!(f["Severity"]["Label"], "MEDIUM");
        assert_eq!(f["Resources"][0]["Type"], "Other");
        assert!(
            f["Resources"][0]["Id"]
                .as_str()
                .is_some_and(|s| s.ends_with(":thing/cam"))
        );
    }
    assert_eq!(asff[0]["Workflow"]["Status"], "NEW");
    assert_eq!(asff[1]["Workflow"]["Status"], "RESOLVED");

    // Not routed: nothing sent, and the cursor moved past both events.
    eventually("the unrouted destination's cursor", async || {
        t.status("other").await["pending"] == 0
    })
    .await;
    assert!(r.at("other").is_empty());
    assert_eq!(t.status("other").await["delivered"], 0);
    assert_eq!(t.status("am").await["delivered"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receivers_are_retried_a_bounded_number_of_times_then_dead_lettered() {
    let t = TestApp::new();
    let r = Receiver::start().await;
    let dest = |kind: &str, url: String, extra: Value| {
        let mut b = json!({ "type": kind, "url": url, "allProfiles": true });
        b.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        b
    };
    t.destination(
        "bad",
        dest("alertmanager", r.url("fail"), json!({ "maxAttempts": 3 })),
    )
    .await;
    t.destination(
        "hang",
        dest(
            "cloudevents",
            r.url("hang"),
            json!({ "maxAttempts": 2, "timeoutSeconds": 1 }),
        ),
    )
    .await;
    t.destination(
        "nowhere",
        dest(
            "cloudevents",
            "http://does-not-resolve.invalid/x".into(),
            json!({ "maxAttempts": 2 }),
        ),
    )
    .await;
    t.destination("good", dest("cloudevents", r.url("ok"), json!({})))
        .await;
    t.watch_all("p", json!([few_ports()])).await;
    t.count("cam", "aws:num-listening-tcp-ports", 9).await;
    let id = t.active("").await[0]["violationId"]
        .as_str()
        .expect("id")
        .to_owned();

    eventually("the good receiver", async || r.at("ok").len() == 1).await;
    for name in ["bad", "hang", "nowhere"] {
        eventually(name, async || t.status(name).await["deadLettered"] == 1).await;
    }
    let bad = t.status("bad").await;
    assert_eq!(bad["failed"], 3, "{bad}");
    assert_eq!(bad["delivered"], 0);
    assert_eq!(bad["pending"], 0);
    assert!(
        bad["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("500") && e.contains("boom")),
        "{bad}"
    );
    assert!(bad["lastErrorTime"].is_number());
    let hang = t.status("hang").await;
    assert_eq!(hang["failed"], 2, "{hang}");
    let nowhere = t.status("nowhere").await;
    assert_eq!(nowhere["failed"], 2);
    assert!(
        nowhere["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("does-not-resolve.invalid")),
        "{nowhere}"
    );
    let good = t.status("good").await;
    assert_eq!(
        (good["delivered"].clone(), good["failed"].clone()),
        (json!(1), json!(0))
    );
    assert!(good["lastSuccessTime"].is_number());

    let letters = t
        .get("/thingward/v1/destinations/bad/dead-letters")
        .await
        .ok();
    let letters = letters["deadLetters"]
        .as_array()
        .expect("deadLetters")
        .clone();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["attempts"], 3);
    assert_eq!(letters[0]["idempotencyKey"], format!("{id}:in-alarm"));
    assert_eq!(letters[0]["event"]["violationId"], id.as_str());

    // The receiver recovers: delivery has moved on (the clear arrives), and a redrive
    // delivers the dead letter.
    r.failing.store(false, Ordering::SeqCst);
    t.advance_secs(60);
    t.count("cam", "aws:num-listening-tcp-ports", 1).await;
    eventually("the clear after the dead letter", async || {
        r.at("fail").len() == 1
    })
    .await;
    assert_eq!(r.at("fail")[0].body["alerts"][0]["status"], "resolved");
    let redriven = t
        .post("/thingward/v1/destinations/bad/redrive", json!({}))
        .await
        .ok();
    assert_eq!(redriven["redriven"], 1);
    eventually("the redriven event", async || r.at("fail").len() == 2).await;
    assert_eq!(r.at("fail")[1].body["alerts"][0]["status"], "firing");
    eventually("an empty dead-letter table", async || {
        t.get("/thingward/v1/destinations/bad/dead-letters")
            .await
            .ok()["deadLetters"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    assert_eq!(t.status("bad").await["delivered"], 2);
    // The hanging receiver never held up the others (good got both events).
    eventually("good's second event", async || r.at("ok").len() == 2).await;
}

/// Reads SSE events (id, event, data) from `body` until `n` arrived or 5 s passed.
async fn sse_events(body: &mut Body, n: usize) -> Vec<(i64, String, Value)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while out.len() < n {
        let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await else {
            break;
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.push_str(&String::from_utf8_lossy(&data));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().into();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if let Some(id) = id {
                out.push((
                    id,
                    event,
                    serde_json::from_str(&data).expect("data is JSON"),
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sse_stream_resumes_after_last_event_id_then_goes_live() {
    let t = TestApp::new();
    t.watch_all(
        "p",
        json!([
            few_ports(),
            rule(
                "few-conns",
                "aws:num-established-tcp-connections",
                "less-than",
                json!({ "count": 5 })
            )
        ]),
    )
    .await;
    t.alarm_and_clear().await; // seq 1, 2
    t.count("cam", "aws:num-listening-tcp-ports", 9).await; // seq 3
    let response = t
        .raw_get(
            "/thingward/v1/feed/stream?profile=p",
            &[("last-event-id", "1")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ct")
            .starts_with("text/event-stream")
    );
    let mut body = response.into_body();
    let got = sse_events(&mut body, 2).await;
    assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(got[0].1, "violation");
    assert_eq!(got[0].2["event"]["violationEventType"], "alarm-cleared");
    assert_eq!(got[1].2["event"]["violationEventType"], "in-alarm");
    assert!(
        got[1].2["idempotencyKey"]
            .as_str()
            .is_some_and(|k| k.ends_with(":in-alarm"))
    );
    // Live: a new event arrives on the open stream, and nothing else.
    t.ingest(json!([{ "thingName": "cam", "metric": "aws:num-established-tcp-connections", "value": { "count": 9 } }])).await;
    let live = sse_events(&mut body, 2).await;
    assert_eq!(live.iter().map(|e| e.0).collect::<Vec<_>>(), [4]);
    assert_eq!(live[0].2["event"]["behavior"]["name"], "few-conns");

    // Filters: another thing's stream sees nothing; a bad severity is refused.
    let mut other = t
        .raw_get(
            "/thingward/v1/feed/stream?thing=other",
            &[("last-event-id", "0")],
        )
        .await
        .into_body();
    assert!(sse_events(&mut other, 1).await.is_empty());
    let bad = t
        .raw_get("/thingward/v1/feed/stream?severity=urgent", &[])
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad = t
        .raw_get("/thingward/v1/feed/stream", &[("last-event-id", "x")])
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn destinations_and_alert_targets_are_validated() {
    let t = TestApp::new();
    for (name, body, needle) in [
        (
            "bad name",
            json!({ "type": "cloudevents", "url": "http://x/" }),
            "name",
        ),
        (
            "d",
            json!({ "type": "sns", "url": "http://x/" }),
            "Malformed",
        ),
        (
            "d",
            json!({ "type": "cloudevents", "url": "http://x/", "colour": 1 }),
            "Malformed",
        ),
        ("d", json!({ "type": "cloudevents" }), "needs a url"),
        (
            "d",
            json!({ "type": "nats", "url": "http://x/", "subject": "a" }),
            "scheme",
        ),
        ("d", json!({ "type": "mqtt", "topic": "a/#" }), "wildcards"),
        ("d", json!({ "type": "mqtt", "topic": "a/b" }), "--mqtt-url"),
    ] {
        let uri = format!("/thingward/v1/destinations/{}", enc(name));
        t.put(&uri, Some(body)).await.invalid(needle);
    }
    t.get("/thingward/v1/destinations/none")
        .await
        .error(404, "ResourceNotFoundException");
    t.delete("/thingward/v1/destinations/none")
        .await
        .error(404, "ResourceNotFoundException");
    t.post("/thingward/v1/destinations/none/redrive", json!({}))
        .await
        .error(404, "ResourceNotFoundException");
    let h = json!({ "type": "ocsf", "url": "http://127.0.0.1:1/",
                    "headers": { "Authorization": "Bearer s3cret" } });
    let d = t.destination("h", h).await;
    assert_eq!(d["headers"], json!({ "Authorization": "<redacted>" }));
    t.delete("/thingward/v1/destinations/h").await.ok();
    let d = t
        .destination(
            "n",
            json!({ "type": "nats", "url": "nats://127.0.0.1:1", "subject": "alarms.p" }),
        )
        .await;
    assert_eq!(d["batchSize"], 100);
    assert_eq!(d["events"], json!(["violations"]));
    assert_eq!(d["status"]["delivered"], 0);
    let list = t.get("/thingward/v1/destinations").await.ok();
    assert_eq!(list["destinations"][0]["name"], "n");
    t.delete("/thingward/v1/destinations/n").await.ok();
    assert!(
        t.get("/thingward/v1/destinations").await.ok()["destinations"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    let profile = |targets: Value| json!({ "behaviors": [few_ports()], "alertTargets": targets });
    t.post(
        "/security-profiles/a",
        profile(json!({ "SNS": { "alertTargetArn": "arn:aws:sns:us-east-1:123456789012:t" } })),
    )
    .await
    .invalid("roleArn");
    t.post(
        "/security-profiles/a",
        profile(json!({ "SLACK": { "alertTargetArn": destination_arn("x") } })),
    )
    .await
    .invalid("alertTargets key");
    t.post(
        "/security-profiles/a",
        profile(json!({ "WEBHOOK": { "alertTargetArn": "arn:aws:sns:us-east-1:123456789012:t" } })),
    )
    .await
    .invalid("alertTargetArn must be");
    // thingward's keys need no roleArn; the response does not invent one.
    t.post(
        "/security-profiles/a",
        profile(json!({ "NATS": { "alertTargetArn": destination_arn("n") } })),
    )
    .await
    .ok();
    let p = t.get("/security-profiles/a").await.ok();
    assert_eq!(
        p["alertTargets"]["NATS"],
        json!({ "alertTargetArn": destination_arn("n") })
    );
}

#[tokio::test]
async fn metrics_expose_violations_and_destinations_without_thing_labels() {
    let t = TestApp::new();
    t.destination(
        "nowhere",
        json!({ "type": "cloudevents", "url": "http://127.0.0.1:1/x", "allProfiles": true }),
    )
    .await;
    t.watch_all("p", json!([few_ports()])).await;
    t.alarm_and_clear().await;
    t.count("cam", "aws:num-listening-tcp-ports", 9).await;
    let response = t.raw_get("/metrics", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ct")
            .starts_with("text/plain; version=0.0.4")
    );
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    for line in [
        "# TYPE thingward_violations_in_alarm gauge",
        "thingward_violations_in_alarm{security_profile=\"p\",behavior=\"few-ports\"} 1",
        "thingward_violation_events_total{security_profile=\"p\",behavior=\"few-ports\",type=\"in-alarm\"} 2",
        "thingward_violation_events_total{security_profile=\"p\",behavior=\"few-ports\",type=\"alarm-cleared\"} 1",
        "# TYPE thingward_feed_delivered_events_total counter",
        "thingward_feed_outbox_last_sequence 3",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.contains("thingward_feed_pending_events{destination=\"nowhere\"}"));
    assert!(!text.contains("cam"), "a thing name is a label:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidated_alarms_resolve_and_audit_findings_go_only_where_subscribed() {
    use thingward_store::{NewOutboxEvent, OutboxKind, OutboxRouting, Severity};
    let t = TestApp::new();
    let r = Receiver::start().await;
    t.destination(
        "am",
        json!({ "type": "alertmanager", "url": r.url("am"), "allProfiles": true }),
    )
    .await;
    t.destination(
        "audit",
        json!({ "type": "cloudevents", "url": r.url("audit"), "events": ["audit-findings"] }),
    )
    .await;
    t.watch_all("p", json!([few_ports()])).await;
    t.count("cam", "aws:num-listening-tcp-ports", 9).await;
    // Deleting the profile in alarm invalidates the violation: a resolved, annotated alert.
    t.delete("/security-profiles/p").await.ok();
    // An audit finding, appended to the outbox as an audit task appends one.
    let finding = json!({
        "findingId": "f-1", "taskId": "t-1", "checkName": "CA_CERTIFICATE_EXPIRING_CHECK",
        "taskStartTime": 1.0, "findingTime": 2.0, "severity": "HIGH",
        "nonCompliantResource": { "resourceType": "CA_CERTIFICATE",
            "resourceIdentifier": { "caCertificateId": "cd".repeat(32) } },
        "reasonForNonCompliance": "CA certificate expires in 3 days",
        "reasonForNonComplianceCode": "CERTIFICATE_EXPIRING", "isSuppressed": false
    });
    let seqs = t
        .store
        .outbox_append(&[NewOutboxEvent {
            key: "f-1".into(),
            kind: OutboxKind::AuditFinding,
            routing: OutboxRouting {
                check_name: Some("CA_CERTIFICATE_EXPIRING_CHECK".into()),
                severity: Severity::parse("HIGH"),
                ..OutboxRouting::default()
            },
            event_ms: 2_000,
            body: finding,
        }])
        .expect("append");
    assert_eq!(seqs, [Some(3)]);

    eventually("the invalidation and the finding", async || {
        let alerts: usize = r
            .at("am")
            .iter()
            .map(|g| g.body["alerts"].as_array().map_or(0, Vec::len))
            .sum();
        alerts == 2 && r.at("audit").len() == 1
    })
    .await;
    let alerts: Vec<Value> = r
        .at("am")
        .iter()
        .flat_map(|g| g.body["alerts"].as_array().expect("alerts").clone())
        .collect();
    assert_eq!(alerts[1]["status"], "resolved");
    assert_eq!(
        alerts[1]["annotations"]["violationEventType"],
        "alarm-invalidated"
    );
    assert_eq!(alerts[1]["annotations"]["invalidated"], "true");
    let e = &r.at("audit")[0];
    assert_eq!(e.body["type"], "io.thingward.audit.finding");
    assert_eq!(e.body["id"], "f-1");
    assert_eq!(e.body["severity"], "high");
    assert_eq!(e.body["data"]["checkName"], "CA_CERTIFICATE_EXPIRING_CHECK");
    // The violations-only destination skipped the finding; the findings-only one the alarms.
    eventually("both cursors at the end", async || {
        t.status("am").await["cursor"] == 3 && t.status("audit").await["cursor"] == 3
    })
    .await;
    assert_eq!(t.status("am").await["delivered"], 2);
    assert_eq!(t.status("audit").await["delivered"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_answers_too_late_gets_the_batch_again_with_the_same_keys() {
    let t = TestApp::new();
    let r = Receiver::start().await;
    t.destination(
        "slow",
        json!({ "type": "cloudevents", "url": r.url("slow"), "allProfiles": true, "timeoutSeconds": 1 }),
    )
    .await;
    t.watch_all("p", json!([few_ports()])).await;
    let id = t.alarm_and_clear().await;
    eventually("both events acknowledged", async || {
        t.status("slow").await["delivered"] == 2
    })
    .await;
    let got = r.at("slow");
    let keys: Vec<&str> = got.iter().map(|g| header(g, "idempotency-key")).collect();
    let (k_in, k_out) = (format!("{id}:in-alarm"), format!("{id}:alarm-cleared"));
    // At least once: the first event arrived twice under one key; de-duplicated, once each.
    assert_eq!(keys, [k_in.as_str(), k_in.as_str(), k_out.as_str()]);
    assert_eq!(got[0].body["id"], got[1].body["id"]);
    assert_eq!(t.status("slow").await["failed"], 1);
}
