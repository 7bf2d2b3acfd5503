//! In-process tests of the HTTP API: the real router over a temporary Store, History and Detect
//! with a manual clock, driven request by request through `tower::ServiceExt::oneshot`.
//!
//! Every request goes through [`TestApp::send`], which also checks that the response carries an
//! `x-amzn-RequestId`; error assertions check the status, the `x-amzn-ErrorType` header and the
//! body's `__type` and `message` together ([`Reply::error`]).

use crate::auth::{Authenticator, Credentials};
use crate::clock::Clock;
use crate::detect::Detect;
use crate::service::{Clocks, Service, Settings};
use crate::store::Store;
use crate::training::Training;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tower::ServiceExt;

/// The manual clock's start: 2023-11-14T22:13:20Z.
const T0_MS: i64 = 1_700_000_000_000;
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const ALL_THINGS: &str = "arn:aws:iot:us-east-1:123456789012:all/things";
const REGISTERED: &str = "arn:aws:iot:us-east-1:123456789012:all/registered-things";
const UNREGISTERED: &str = "arn:aws:iot:us-east-1:123456789012:all/unregistered-things";
const INVALID_REQUEST: &str = "InvalidRequestException";
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The application under test and the handles a test needs beside it.
struct TestApp {
    router: Router,
    clock: Arc<AtomicI64>,
    detect: Arc<Detect>,
    training: Arc<Training>,
    store: Arc<Store>,
    audit: Arc<crate::audit::Audit>,
    _dir: tempfile::TempDir,
}

/// A response, its body decoded as JSON (`Value::Null` for an empty body).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    /// Asserts a 200 and returns the body.
    #[track_caller]
    fn ok(self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "expected 200, got {self:?}");
        self.body
    }

    /// Asserts an error in the AWS rest-json shape and returns its message.
    #[track_caller]
    fn error(&self, status: u16, error_type: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "unexpected status: {self:?}");
        assert_eq!(
            self.headers
                .get("x-amzn-ErrorType")
                .and_then(|v| v.to_str().ok()),
            Some(error_type),
            "x-amzn-ErrorType: {self:?}"
        );
        assert_eq!(self.body["__type"], error_type, "__type: {self:?}");
        let message = self.body["message"]
            .as_str()
            .unwrap_or_else(|| panic!("error without a message: {self:?}"));
        assert!(!message.is_empty());
        message.to_owned()
    }

    /// Asserts a 400 `InvalidRequestException` whose message contains `needle`.
    #[track_caller]
    fn invalid(&self, needle: &str) {
        let message = self.error(400, INVALID_REQUEST);
        assert!(
            message.contains(needle),
            "message {message:?} should mention {needle:?}"
        );
    }
}

impl TestApp {
    fn new() -> Self {
        Self::with_max_body(1024 * 1024)
    }

    fn with_max_body(max_body_bytes: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::build(dir, Arc::new(AtomicI64::new(T0_MS)), max_body_bytes)
    }

    /// The app over the store and history in `dir`, on the manual clock `now`: the graph
    /// `thingward serve` runs ([`Service::open`]), without its listeners and periodic tasks.
    fn build(dir: tempfile::TempDir, now: Arc<AtomicI64>, max_body_bytes: usize) -> Self {
        let clock: Clock = {
            let now = Arc::clone(&now);
            Arc::new(move || now.load(Ordering::SeqCst))
        };
        let settings = Settings {
            region: REGION.into(),
            account_id: ACCOUNT.into(),
            max_report_bytes: 128 * 1024,
            brokers: crate::mitigation::broker::BrokerDefaults::default(),
            audit_config: None,
            feed: crate::feed::FeedSettings {
                origin: crate::feed::format::Origin {
                    region: REGION.into(),
                    account: ACCOUNT.into(),
                    external_url: "http://127.0.0.1".into(),
                },
                default_mqtt_url: None,
                backoff_base: std::time::Duration::from_millis(20),
            },
        };
        let service = Service::open(dir.path(), &settings, Clocks::one(clock)).expect("service");
        let auth = Arc::new(Authenticator::new(
            Credentials::default(),
            true,
            max_body_bytes,
        ));
        Self {
            router: service.router(auth, max_body_bytes),
            clock: now,
            detect: Arc::clone(&service.detect),
            training: Arc::clone(&service.training),
            store: Arc::clone(&service.store),
            audit: Arc::clone(&service.audit),
            _dir: dir,
        }
    }

    /// Stops this app (closing its store and history) and starts a new one on the same data
    /// directory and clock, as a process restart would.
    fn restart(self) -> Self {
        let Self {
            router,
            clock,
            detect,
            training,
            store,
            audit,
            _dir: dir,
        } = self;
        drop(audit);
        drop(router);
        drop(detect);
        drop(training);
        drop(store);
        Self::build(dir, clock, 1024 * 1024)
    }

    /// The audit service.
    fn audit(&self) -> Arc<crate::audit::Audit> {
        Arc::clone(&self.audit)
    }

    /// The manual clock, in epoch milliseconds.
    fn now_ms(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// A GET with `headers`, answered as it is (streams, non-JSON bodies).
    async fn raw_get(&self, uri: &str, headers: &[(&str, &str)]) -> axum::response::Response {
        let mut request = Request::builder().method(Method::GET).uri(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.router
            .clone()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    /// Moves the manual clock forward.
    fn advance_secs(&self, secs: i64) {
        self.clock.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// Sends raw bytes; checks that the response carries a request id.
    async fn send_raw(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        let request = request.body(Body::from(body)).expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let request_id = headers
            .get("x-amzn-RequestId")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            !request_id.is_empty(),
            "response to {uri} has no x-amzn-RequestId"
        );
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "response to {uri} is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// Sends a request with an optional JSON body (none, like botocore, for GET and DELETE).
    async fn send(&self, method: Method, uri: &str, body: Option<Value>) -> Reply {
        match body {
            Some(b) => {
                self.send_raw(
                    method,
                    uri,
                    Some("application/json"),
                    serde_json::to_vec(&b).expect("json"),
                )
                .await
            }
            None => self.send_raw(method, uri, None, Vec::new()).await,
        }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.send(Method::GET, uri, None).await
    }

    async fn post(&self, uri: &str, body: Value) -> Reply {
        self.send(Method::POST, uri, Some(body)).await
    }

    async fn patch(&self, uri: &str, body: Value) -> Reply {
        self.send(Method::PATCH, uri, Some(body)).await
    }

    async fn delete(&self, uri: &str) -> Reply {
        self.send(Method::DELETE, uri, None).await
    }

    async fn put(&self, uri: &str, body: Option<Value>) -> Reply {
        self.send(Method::PUT, uri, body).await
    }

    /// CreateSecurityProfile with these behaviors; asserts success.
    async fn create_profile(&self, name: &str, behaviors: Value) {
        self.post(
            &format!("/security-profiles/{name}"),
            json!({ "behaviors": behaviors }),
        )
        .await
        .ok();
    }

    /// AttachSecurityProfile; asserts success.
    async fn attach(&self, profile: &str, target_arn: &str) {
        self.put(
            &format!(
                "/security-profiles/{profile}/targets?securityProfileTargetArn={}",
                enc(target_arn)
            ),
            None,
        )
        .await
        .ok();
    }

    /// A profile with these behaviors, attached to all things.
    async fn watch_all(&self, profile: &str, behaviors: Value) {
        self.create_profile(profile, behaviors).await;
        self.attach(profile, ALL_THINGS).await;
    }

    /// Posts a metrics batch; asserts it was accepted and returns the response.
    async fn ingest(&self, datapoints: Value) -> Value {
        self.post("/thingward/v1/metrics", json!({ "datapoints": datapoints }))
            .await
            .ok()
    }

    /// One `count` datapoint at the current clock time.
    async fn count(&self, thing: &str, metric: &str, count: u64) -> Value {
        self.ingest(json!([{ "thingName": thing, "metric": metric, "value": { "count": count } }]))
            .await
    }

    /// ListActiveViolations with this query string.
    async fn active(&self, query: &str) -> Vec<Value> {
        let body = self.get(&format!("/active-violations?{query}")).await.ok();
        body["activeViolations"]
            .as_array()
            .expect("activeViolations")
            .clone()
    }

    /// Every violation event from T0 − 1 day to the current time + 1 day, with extra query.
    async fn events(&self, extra: &str) -> Vec<Value> {
        let uri = format!(
            "/violation-events?startTime={}&endTime={}{extra}",
            iso(T0_MS - DAY_MS),
            iso(self.now_ms() + DAY_MS)
        );
        let body = self.get(&uri).await.ok();
        body["violationEvents"]
            .as_array()
            .expect("violationEvents")
            .clone()
    }
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Epoch milliseconds as botocore writes a query timestamp (`2020-09-22T05:42:13Z`).
fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn group_arn(group: &str) -> String {
    format!("arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}")
}

/// A static behavior.
fn rule(name: &str, metric: &str, op: &str, value: Value) -> Value {
    json!({
        "name": name,
        "metric": metric,
        "criteria": { "comparisonOperator": op, "value": value }
    })
}

/// "Fewer than 5 listening TCP ports is normal."
fn few_ports() -> Value {
    rule(
        "few-ports",
        "aws:num-listening-tcp-ports",
        "less-than",
        json!({ "count": 5 }),
    )
}

/// The (thing, profile, behavior, event type) of each event, in order.
fn event_keys(events: &[Value]) -> Vec<(String, String, String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["thingName"].as_str().unwrap_or_default().to_owned(),
                e["securityProfileName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["behavior"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                e["violationEventType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// The sorted thing names of some violations.
fn things_of(violations: &[Value]) -> Vec<String> {
    let mut things: Vec<String> = violations
        .iter()
        .map(|v| v["thingName"].as_str().unwrap_or_default().to_owned())
        .collect();
    things.sort();
    things
}

fn key(thing: &str, profile: &str, behavior: &str, kind: &str) -> (String, String, String, String) {
    (thing.into(), profile.into(), behavior.into(), kind.into())
}

// ---------------------------------------------------------------------------------------------
// Security profiles: validation, conflicts, updates, deletion, limits, pagination
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Custom metrics and dimensions
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn group_target_applies_to_its_things_and_child_groups_only() {
    let t = TestApp::new();
    t.post("/thing-groups/fleet", json!({})).await.ok();
    t.post(
        "/thing-groups/fleet-eu",
        json!({ "parentGroupName": "fleet" }),
    )
    .await
    .ok();
    t.post("/thing-groups/lab", json!({})).await.ok();
    t.post(
        "/thing-groups/orphan",
        json!({ "parentGroupName": "ghost" }),
    )
    .await
    .error(404, "ResourceNotFoundException");
    for thing in ["cam-1", "cam-eu", "cam-lab", "cam-loose"] {
        t.post(&format!("/things/{thing}"), json!({})).await.ok();
    }
    for (group, thing) in [
        ("fleet", "cam-1"),
        ("fleet-eu", "cam-eu"),
        ("lab", "cam-lab"),
    ] {
        t.put(
            "/thing-groups/addThingToThingGroup",
            Some(json!({ "thingGroupName": group, "thingName": thing })),
        )
        .await
        .ok();
    }
    t.put(
        "/thing-groups/addThingToThingGroup",
        Some(json!({ "thingGroupName": "fleet", "thingName": "ghost" })),
    )
    .await
    .error(404, "ResourceNotFoundException");

    t.create_profile("fleet-ports", json!([few_ports()])).await;
    t.attach("fleet-ports", &group_arn("fleet")).await;
    t.put(
        &format!(
            "/security-profiles/fleet-ports/targets?securityProfileTargetArn={}",
            enc(&group_arn("ghost"))
        ),
        None,
    )
    .await
    .error(404, "ResourceNotFoundException");

    for thing in ["cam-1", "cam-eu", "cam-lab", "cam-loose", "unregistered"] {
        t.count(thing, "aws:num-listening-tcp-ports", 9).await;
    }
    let active = t.active("").await;
    assert_eq!(things_of(&active), ["cam-1", "cam-eu"]);

    // ListTargetsForSecurityProfile and ListSecurityProfilesForTarget.
    let targets = t.get("/security-profiles/fleet-ports/targets").await.ok();
    assert_eq!(
        targets["securityProfileTargets"],
        json!([{ "arn": group_arn("fleet") }])
    );
    let direct = t
        .get(&format!(
            "/security-profiles-for-target?securityProfileTargetArn={}",
            enc(&group_arn("fleet"))
        ))
        .await
        .ok();
    assert_eq!(
        direct["securityProfileTargetMappings"],
        json!([{
            "securityProfileIdentifier": {
                "name": "fleet-ports",
                "arn": "arn:aws:iot:us-east-1:123456789012:securityprofile/fleet-ports"
            },
            "target": { "arn": group_arn("fleet") }
        }])
    );
    let child = t
        .get(&format!(
            "/security-profiles-for-target?securityProfileTargetArn={}",
            enc(&group_arn("fleet-eu"))
        ))
        .await
        .ok();
    assert_eq!(child["securityProfileTargetMappings"], json!([]));
    let child = t
        .get(&format!(
            "/security-profiles-for-target?recursive=true&securityProfileTargetArn={}",
            enc(&group_arn("fleet-eu"))
        ))
        .await
        .ok();
    assert_eq!(
        child["securityProfileTargetMappings"][0]["securityProfileIdentifier"]["name"],
        "fleet-ports"
    );
    assert_eq!(
        child["securityProfileTargetMappings"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    t.get("/security-profiles-for-target?recursive=maybe&securityProfileTargetArn=x")
        .await
        .error(400, INVALID_REQUEST);

    // Detaching something that is not attached is a ResourceNotFound.
    t.send(
        Method::DELETE,
        &format!(
            "/security-profiles/fleet-ports/targets?securityProfileTargetArn={}",
            enc(&group_arn("lab"))
        ),
        None,
    )
    .await
    .error(404, "ResourceNotFoundException");
}

#[tokio::test]
async fn registered_and_unregistered_targets_follow_create_thing() {
    let t = TestApp::new();
    t.create_profile("reg", json!([few_ports()])).await;
    t.attach("reg", REGISTERED).await;
    t.create_profile("unreg", json!([few_ports()])).await;
    t.attach("unreg", UNREGISTERED).await;
    let thing = t.post("/things/known", json!({})).await.ok();
    assert_eq!(
        thing["thingArn"],
        "arn:aws:iot:us-east-1:123456789012:thing/known"
    );

    t.count("known", "aws:num-listening-tcp-ports", 9).await;
    t.count("stranger", "aws:num-listening-tcp-ports", 9).await;
    let reg = t.active("securityProfileName=reg").await;
    assert_eq!(things_of(&reg), ["known"]);
    let unreg = t.active("securityProfileName=unreg").await;
    assert_eq!(things_of(&unreg), ["stranger"]);

    // Registering the stranger moves it from one target to the other: its unregistered-things
    // alarm is invalidated, and its next datapoint is judged by the registered-things profile.
    t.advance_secs(60);
    t.post("/things/stranger", json!({})).await.ok();
    assert!(t.active("securityProfileName=unreg").await.is_empty());
    assert!(event_keys(&t.events("").await).contains(&key(
        "stranger",
        "unreg",
        "few-ports",
        "alarm-invalidated"
    )));
    t.count("stranger", "aws:num-listening-tcp-ports", 9).await;
    let reg = t.active("securityProfileName=reg").await;
    assert_eq!(things_of(&reg), ["known", "stranger"]);
}

// ---------------------------------------------------------------------------------------------
// Detect through the batch endpoint
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// alarm-invalidated
// ---------------------------------------------------------------------------------------------

/// An app with profile `p` (`few-ports` and `few-conns`) on all things and `cam` in alarm on
/// both.
async fn in_alarm() -> TestApp {
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
    t.ingest(json!([
        { "thingName": "cam", "metric": "aws:num-listening-tcp-ports", "value": { "count": 9 } },
        { "thingName": "cam", "metric": "aws:num-established-tcp-connections", "value": { "count": 9 } }
    ]))
    .await;
    assert_eq!(t.active("").await.len(), 2);
    t.advance_secs(60);
    t
}

#[tokio::test]
async fn deleting_a_profile_in_alarm_invalidates_its_violations() {
    let t = in_alarm().await;
    t.delete("/security-profiles/p").await.ok();
    assert!(t.active("").await.is_empty());
    let events = t.events("").await;
    let invalidated: Vec<_> = events
        .iter()
        .filter(|e| e["violationEventType"] == "alarm-invalidated")
        .collect();
    assert_eq!(invalidated.len(), 2, "{events:?}");
    for e in invalidated {
        assert_eq!(
            e["violationEventTime"].as_f64(),
            Some((T0_MS + 60_000) as f64 / 1000.0)
        );
    }
}

#[tokio::test]
async fn removing_a_behavior_in_alarm_invalidates_only_its_violation() {
    let t = in_alarm().await;
    t.patch(
        "/security-profiles/p",
        json!({ "behaviors": [few_ports()] }),
    )
    .await
    .ok();
    let active = t.active("").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["behavior"]["name"], "few-ports");
    let events = event_keys(&t.events("").await);
    assert!(events.contains(&key("cam", "p", "few-conns", "alarm-invalidated")));
    assert!(!events.contains(&key("cam", "p", "few-ports", "alarm-invalidated")));
    // A description-only update keeps the alarm.
    t.patch(
        "/security-profiles/p",
        json!({ "securityProfileDescription": "x" }),
    )
    .await
    .ok();
    assert_eq!(t.active("").await.len(), 1);
    // Changing the behavior's threshold makes the old alarm meaningless too.
    t.patch(
        "/security-profiles/p",
        json!({ "behaviors": [rule("few-ports", "aws:num-listening-tcp-ports", "less-than", json!({ "count": 50 }))] }),
    )
    .await
    .ok();
    assert!(t.active("").await.is_empty());
}

#[tokio::test]
async fn detaching_the_target_in_alarm_invalidates_the_violations() {
    let t = in_alarm().await;
    t.send(
        Method::DELETE,
        &format!(
            "/security-profiles/p/targets?securityProfileTargetArn={}",
            enc(ALL_THINGS)
        ),
        None,
    )
    .await
    .ok();
    assert!(t.active("").await.is_empty());
    let events = event_keys(&t.events("").await);
    assert!(events.contains(&key("cam", "p", "few-ports", "alarm-invalidated")));
    assert!(events.contains(&key("cam", "p", "few-conns", "alarm-invalidated")));
    // The profile itself remains, with no targets.
    let targets = t.get("/security-profiles/p/targets").await.ok();
    assert_eq!(targets["securityProfileTargets"], json!([]));
}

#[tokio::test]
async fn deleting_a_group_detaches_its_profiles_and_invalidates_their_alarms() {
    let t = TestApp::new();
    t.post("/thing-groups/fleet", json!({})).await.ok();
    t.post(
        "/thing-groups/fleet-eu",
        json!({ "parentGroupName": "fleet" }),
    )
    .await
    .ok();
    t.post("/things/cam-1", json!({})).await.ok();
    t.put(
        "/thing-groups/addThingToThingGroup",
        Some(json!({ "thingGroupName": "fleet", "thingName": "cam-1" })),
    )
    .await
    .ok();
    t.create_profile("fleet-ports", json!([few_ports()])).await;
    t.attach("fleet-ports", &group_arn("fleet")).await;
    t.count("cam-1", "aws:num-listening-tcp-ports", 9).await;
    assert_eq!(things_of(&t.active("").await), ["cam-1"]);

    t.delete("/thing-groups/fleet").await.ok();
    assert!(t.active("").await.is_empty());
    let events = event_keys(&t.events("").await);
    assert!(events.contains(&key(
        "cam-1",
        "fleet-ports",
        "few-ports",
        "alarm-invalidated"
    )));
    let targets = t.get("/security-profiles/fleet-ports/targets").await.ok();
    assert_eq!(targets["securityProfileTargets"], json!([]));
    let child = t.get("/thing-groups/fleet-eu").await.ok();
    assert_eq!(child["thingGroupMetadata"]["parentGroupName"], Value::Null);
}

#[tokio::test]
async fn a_thing_silent_for_two_days_is_invalidated_by_the_sweep() {
    let t = in_alarm().await;
    // A thing that keeps reporting stays in alarm.
    t.count("busy", "aws:num-listening-tcp-ports", 9).await;
    t.advance_secs(2 * 24 * 3600 - 120);
    t.count("busy", "aws:num-listening-tcp-ports", 9).await;
    assert_eq!(t.detect.sweep().expect("sweep"), 0);
    assert_eq!(t.active("").await.len(), 3);
    t.advance_secs(120);
    let invalidated = t.detect.sweep().expect("sweep");
    assert_eq!(invalidated, 2);
    assert_eq!(things_of(&t.active("").await), ["busy"]);
    let events = event_keys(&t.events("&thingName=cam").await);
    assert!(events.contains(&key("cam", "p", "few-ports", "alarm-invalidated")));
    assert!(events.contains(&key("cam", "p", "few-conns", "alarm-invalidated")));
    // Sweeping again finds nothing new.
    assert_eq!(t.detect.sweep().expect("sweep"), 0);
}

// ---------------------------------------------------------------------------------------------
// PutVerificationStateOnViolation
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// ListMetricValues
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Device reports over HTTP
// ---------------------------------------------------------------------------------------------

fn report(id: i64, ports: &[u16]) -> Value {
    let ports: Vec<Value> = ports.iter().map(|p| json!({ "port": p })).collect();
    json!({
        "header": { "report_id": id, "version": "1.0" },
        "metrics": {
            "listening_tcp_ports": { "ports": ports },
            "network_stats": { "bytes_in": 100, "bytes_out": 200, "packets_in": 1, "packets_out": 2 }
        }
    })
}

#[tokio::test]
async fn device_reports_over_http_in_json_and_cbor() {
    let t = TestApp::new();
    t.watch_all("p", json!([few_ports()])).await;

    let ports: Vec<u16> = (20..30).collect();
    let body = t
        .post("/thingward/v1/things/cam/report", report(1, &ports))
        .await
        .ok();
    assert_eq!(body["thingName"], "cam");
    assert_eq!(body["reportId"], 1);
    assert_eq!(body["status"], "ACCEPTED");
    let active = t.active("").await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["lastViolationValue"], json!({ "count": 10 }));

    // The same report in CBOR, short keys, for another thing.
    let short = json!({
        "hed": { "rid": 1, "v": "1.0" },
        "met": { "tp": { "pts": [{ "pt": 22 }, { "pt": 80 }, { "pt": 443 }, { "pt": 8080 }, { "pt": 8443 }, { "pt": 9000 }] } }
    });
    let mut cbor = Vec::new();
    ciborium::into_writer(&short, &mut cbor).expect("cbor");
    let reply = t
        .send_raw(
            Method::POST,
            "/thingward/v1/things/door/report",
            Some("application/cbor"),
            cbor.clone(),
        )
        .await;
    let body = reply.ok();
    assert_eq!(body["reportId"], 1);
    assert_eq!(body["thingName"], "door");
    assert_eq!(things_of(&t.active("").await), ["cam", "door"]);

    // A compliant report clears.
    t.advance_secs(300);
    t.post("/thingward/v1/things/cam/report", report(2, &[22]))
        .await
        .ok();
    assert_eq!(things_of(&t.active("").await), ["door"]);

    // A report id the thing used recently is refused, in either encoding.
    t.post("/thingward/v1/things/cam/report", report(2, &[22]))
        .await
        .invalid("DuplicateReportId");
    t.send_raw(
        Method::POST,
        "/thingward/v1/things/door/report",
        Some("application/cbor"),
        cbor,
    )
    .await
    .invalid("DuplicateReportId");
    // ... but another thing may use it.
    t.post("/thingward/v1/things/gate/report", report(2, &[22]))
        .await
        .ok();

    // Broken reports say why.
    t.post(
        "/thingward/v1/things/cam/report",
        json!({ "header": { "version": "1.0" }, "metrics": {} }),
    )
    .await
    .invalid("report_id");
    t.send_raw(
        Method::POST,
        "/thingward/v1/things/cam/report",
        Some("application/cbor"),
        vec![0xff, 0x00],
    )
    .await
    .invalid("InvalidCbor");
    t.send_raw(
        Method::POST,
        "/thingward/v1/things/cam/report",
        Some("application/json"),
        b"{".to_vec(),
    )
    .await
    .invalid("InvalidJson");
}

// ---------------------------------------------------------------------------------------------
// Limits and the response envelope
// ---------------------------------------------------------------------------------------------

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

#[tokio::test]
async fn recursive_profiles_for_target_include_parent_and_child_groups() {
    let t = TestApp::new();
    t.post("/thing-groups/fleet", json!({})).await.ok();
    t.post(
        "/thing-groups/fleet-eu",
        json!({ "parentGroupName": "fleet" }),
    )
    .await
    .ok();
    t.post(
        "/thing-groups/fleet-eu-1",
        json!({ "parentGroupName": "fleet-eu" }),
    )
    .await
    .ok();
    t.post("/thing-groups/lab", json!({})).await.ok();
    for (profile, group) in [
        ("on-fleet", "fleet"),
        ("on-eu", "fleet-eu"),
        ("on-eu-1", "fleet-eu-1"),
        ("on-lab", "lab"),
    ] {
        t.create_profile(profile, json!([])).await;
        t.attach(profile, &group_arn(group)).await;
    }
    let mappings = |group: &str, recursive: bool| {
        format!(
            "/security-profiles-for-target?recursive={recursive}&securityProfileTargetArn={}",
            enc(&group_arn(group))
        )
    };
    let names = |body: Value| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = body["securityProfileTargetMappings"]
            .as_array()
            .expect("mappings")
            .iter()
            .map(|m| {
                (
                    m["securityProfileIdentifier"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    m["target"]["arn"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(
        names(t.get(&mappings("fleet-eu", false)).await.ok()),
        [("on-eu".to_owned(), group_arn("fleet-eu"))]
    );
    // Recursive: the profiles that reach the group from its ancestors, and those on the groups
    // below it, each with the target it is attached to.
    assert_eq!(
        names(t.get(&mappings("fleet-eu", true)).await.ok()),
        [
            ("on-eu".to_owned(), group_arn("fleet-eu")),
            ("on-eu-1".to_owned(), group_arn("fleet-eu-1")),
            ("on-fleet".to_owned(), group_arn("fleet")),
        ]
    );
    assert_eq!(
        names(t.get(&mappings("fleet", true)).await.ok()),
        [
            ("on-eu".to_owned(), group_arn("fleet-eu")),
            ("on-eu-1".to_owned(), group_arn("fleet-eu-1")),
            ("on-fleet".to_owned(), group_arn("fleet")),
        ]
    );
    assert_eq!(
        names(t.get(&mappings("lab", true)).await.ok()),
        [("on-lab".to_owned(), group_arn("lab"))]
    );
}

#[tokio::test]
async fn leaving_a_group_invalidates_but_another_target_keeps_the_alarm() {
    let t = TestApp::new();
    t.post("/thing-groups/fleet", json!({})).await.ok();
    t.post("/thing-groups/lab", json!({})).await.ok();
    for thing in ["cam", "door"] {
        t.post(&format!("/things/{thing}"), json!({})).await.ok();
        t.put(
            "/thing-groups/addThingToThingGroup",
            Some(json!({ "thingGroupName": "fleet", "thingName": thing })),
        )
        .await
        .ok();
    }
    t.put(
        "/thing-groups/addThingToThingGroup",
        Some(json!({ "thingGroupArn": group_arn("lab"), "thingArn": "arn:aws:iot:us-east-1:123456789012:thing/door" })),
    )
    .await
    .ok();
    t.create_profile("p", json!([few_ports()])).await;
    t.attach("p", &group_arn("fleet")).await;
    t.attach("p", &group_arn("lab")).await;
    t.count("cam", "aws:num-listening-tcp-ports", 9).await;
    t.count("door", "aws:num-listening-tcp-ports", 9).await;
    assert_eq!(things_of(&t.active("").await), ["cam", "door"]);

    // Both leave fleet; door is still targeted through lab.
    t.advance_secs(60);
    for thing in ["cam", "door"] {
        t.put(
            "/thing-groups/removeThingFromThingGroup",
            Some(json!({ "thingGroupName": "fleet", "thingName": thing })),
        )
        .await
        .ok();
    }
    assert_eq!(things_of(&t.active("").await), ["door"]);
    let events = event_keys(&t.events("").await);
    assert!(events.contains(&key("cam", "p", "few-ports", "alarm-invalidated")));
    assert!(!events.contains(&key("door", "p", "few-ports", "alarm-invalidated")));

    // Deleting the thing ends its group membership, and so its alarm.
    t.delete("/things/door").await.ok();
    assert!(t.active("").await.is_empty());
    t.get("/things/door")
        .await
        .error(404, "ResourceNotFoundException");
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

mod audit;
mod feed;
mod ml;

mod mitigation;
