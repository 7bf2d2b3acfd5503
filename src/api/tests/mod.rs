//! In-process tests of the HTTP API: the real router over the service graph `thingward serve`
//! runs ([`Service::open`]) in a temporary directory with a manual clock, driven request by
//! request through `tower::ServiceExt::oneshot`.
//!
//! Every request goes through [`TestApp::send`], which also checks that the response carries an
//! `x-amzn-RequestId`; error assertions check the status, the `x-amzn-ErrorType` header and the
//! body's `__type` and `message` together ([`Reply::error`]).
//!
//! This module is the shared fixture ([`TestApp`], [`Reply`], request and JSON helpers); the
//! tests live in one submodule per resource (profiles, registry, targets, detect, violations,
//! invalidation, metric values, reports, envelope, ML, feed, audit, mitigation).

use crate::auth::{Authenticator, Credentials};
use crate::clock::Clock;
use crate::detect::Detect;
use crate::service::{Clocks, Service, Settings};
use crate::training::Training;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use thingward_store::Store;
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
    store: Arc<dyn Store>,
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

/// A Device Defender JSON report with these listening TCP ports.
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

mod audit;
mod detect;
mod envelope;
mod feed;
mod fleet;
mod input;
mod invalidation;
mod metric_values;
mod mitigation;
mod ml;
mod profiles;
mod registry;
mod reports;
mod targets;
mod violations;
