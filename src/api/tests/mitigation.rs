//! Mitigation through the API: actions CRUD and their validation, detect and audit mitigation
//! tasks run in the background against the real store, the broker ban against a local HTTP
//! server (EMQX's REST shape) and a closed port, cancellation and restart recovery.

use super::*;
use std::collections::BTreeMap;
use std::sync::Mutex;
use thingward_store::{
    AuditTaskRecord, CertKind, CertStatus, CertificateRecord, ExecState, ExecutionRecord,
    FindingRecord, SuppressionRecord, TaskKind, TaskRecord, TaskState, TaskStatus,
};

const ROLE: &str = "arn:aws:iam::123456789012:role/mitigation";
const NOT_FOUND: &str = "ResourceNotFoundException";

fn group_action(group: &str) -> Value {
    json!({ "roleArn": ROLE, "actionParams": {
        "addThingsToThingGroupParams": { "thingGroupNames": [group] } } })
}

impl TestApp {
    /// CreateMitigationAction; asserts success.
    async fn action(&self, name: &str, body: Value) -> Value {
        self.post(&format!("/mitigationactions/actions/{name}"), body)
            .await
            .ok()
    }

    /// CreateThing and CreateThingGroup (asserting success).
    async fn thing_and_group(&self, thing: &str, group: &str) {
        self.post(&format!("/things/{thing}"), json!({})).await.ok();
        self.post(&format!("/thing-groups/{group}"), json!({}))
            .await
            .ok();
    }

    /// The things in `group`.
    async fn group_members(&self, group: &str) -> Vec<Value> {
        self.get(&format!("/thing-groups/{group}/things"))
            .await
            .ok()["things"]
            .as_array()
            .expect("things")
            .clone()
    }

    /// Polls `uri` until `status_of(body)` is no longer IN_PROGRESS; returns the body.
    async fn wait_done(&self, uri: &str, status_of: fn(&Value) -> &Value) -> Value {
        for _ in 0..400 {
            let body = self.get(uri).await.ok();
            if status_of(&body) != "IN_PROGRESS" {
                return body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("{uri} still in progress after 10 s");
    }

    async fn detect_done(&self, task: &str) -> Value {
        self.wait_done(&format!("/detect/mitigationactions/tasks/{task}"), |b| {
            &b["taskSummary"]["taskStatus"]
        })
        .await["taskSummary"]
            .clone()
    }

    async fn audit_done(&self, task: &str) -> Value {
        self.wait_done(
            &format!("/audit/mitigationactions/tasks/{task}"),
            |b| &b["taskStatus"],
        )
        .await
    }

    async fn detect_executions(&self, query: &str) -> Vec<Value> {
        self.get(&format!("/detect/mitigationactions/executions?{query}"))
            .await
            .ok()["actionsExecutions"]
            .as_array()
            .expect("actionsExecutions")
            .clone()
    }

    async fn audit_executions(&self, query: &str) -> Vec<Value> {
        self.get(&format!("/audit/mitigationactions/executions?{query}"))
            .await
            .ok()["actionsExecutions"]
            .as_array()
            .expect("actionsExecutions")
            .clone()
    }
}

fn statuses(executions: &[Value]) -> Vec<(String, String)> {
    executions
        .iter()
        .map(|e| {
            (
                e["actionName"].as_str().expect("actionName").to_owned(),
                e["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn mitigation_action_lifecycle() {
    let t = TestApp::new();
    t.thing_and_group("cam", "quarantine").await;
    let created = t.action("quarantine-it", group_action("quarantine")).await;
    assert_eq!(
        created["actionArn"],
        "arn:aws:iot:us-east-1:123456789012:mitigationaction/quarantine-it"
    );
    let id = created["actionId"].as_str().expect("actionId").to_owned();
    assert_eq!(id.len(), 36, "a UUID");
    let again = t
        .post(
            "/mitigationactions/actions/quarantine-it",
            group_action("quarantine"),
        )
        .await;
    again.error(409, "ResourceAlreadyExistsException");
    assert_eq!(again.body["resourceArn"], created["actionArn"]);
    assert_eq!(again.body["resourceId"], id);

    let d = t.get("/mitigationactions/actions/quarantine-it").await.ok();
    assert_eq!(d["actionType"], "ADD_THINGS_TO_THING_GROUP");
    assert_eq!(d["actionId"], id);
    assert_eq!(d["roleArn"], ROLE);
    assert_eq!(
        d["actionParams"],
        json!({"addThingsToThingGroupParams": {"thingGroupNames": ["quarantine"]}})
    );
    assert_eq!(d["creationDate"], json!(T0_MS as f64 / 1000.0));

    t.action(
        "logs",
        json!({"roleArn": ROLE, "actionParams": {"enableIoTLoggingParams": {
            "roleArnForLogging": ROLE, "logLevel": "INFO"}}}),
    )
    .await;
    let all = t.get("/mitigationactions/actions").await.ok();
    assert_eq!(all["actionIdentifiers"].as_array().expect("list").len(), 2);
    let logs = t
        .get("/mitigationactions/actions?actionType=ENABLE_IOT_LOGGING")
        .await
        .ok();
    assert_eq!(
        logs["actionIdentifiers"],
        json!([{"actionName": "logs",
                "actionArn": "arn:aws:iot:us-east-1:123456789012:mitigationaction/logs",
                "creationDate": T0_MS as f64 / 1000.0}])
    );
    t.get("/mitigationactions/actions?actionType=REVOKE")
        .await
        .invalid("actionType");
    let page = t.get("/mitigationactions/actions?maxResults=1").await.ok();
    assert_eq!(page["actionIdentifiers"].as_array().expect("page").len(), 1);
    assert_eq!(page["nextToken"], "o1");

    // Update: a new role; the type cannot change.
    t.advance_secs(10);
    let new_role = "arn:aws:iam::123456789012:role/other";
    let u = t
        .patch(
            "/mitigationactions/actions/quarantine-it",
            json!({"roleArn": new_role}),
        )
        .await
        .ok();
    assert_eq!(u["actionId"], id);
    let d = t.get("/mitigationactions/actions/quarantine-it").await.ok();
    assert_eq!(d["roleArn"], new_role);
    assert_eq!(
        d["lastModifiedDate"],
        json!((T0_MS + 10_000) as f64 / 1000.0)
    );
    t.patch(
        "/mitigationactions/actions/quarantine-it",
        json!({"actionParams": {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}}}),
    )
    .await
    .invalid("cannot change");
    t.patch("/mitigationactions/actions/nope", json!({"roleArn": ROLE}))
        .await
        .error(404, NOT_FOUND);

    // Delete is idempotent.
    t.delete("/mitigationactions/actions/quarantine-it")
        .await
        .ok();
    t.delete("/mitigationactions/actions/quarantine-it")
        .await
        .ok();
    t.get("/mitigationactions/actions/quarantine-it")
        .await
        .error(404, NOT_FOUND);
}

#[tokio::test]
async fn mitigation_action_params_are_validated() {
    let t = TestApp::new();
    let create = |name: &'static str, params: Value| {
        let t = &t;
        async move {
            t.post(
                &format!("/mitigationactions/actions/{name}"),
                json!({"roleArn": ROLE, "actionParams": params}),
            )
            .await
        }
    };
    create("none", json!({})).await.invalid("none is set");
    create(
        "two",
        json!({"updateDeviceCertificateParams": {"action": "DEACTIVATE"},
               "updateCACertificateParams": {"action": "DEACTIVATE"}}),
    )
    .await
    .invalid("2 are set");
    create(
        "typo",
        json!({"updateDeviceCertificateParam": {"action": "DEACTIVATE"}}),
    )
    .await
    .invalid("unknown field");
    create(
        "revoke",
        json!({"updateDeviceCertificateParams": {"action": "REVOKE"}}),
    )
    .await
    .invalid("DEACTIVATE");
    create(
        "nogroup",
        json!({"addThingsToThingGroupParams": {"thingGroupNames": ["missing"]}}),
    )
    .await
    .invalid("'missing' does not exist");
    create(
        "elevengroups",
        json!({"addThingsToThingGroupParams": {"thingGroupNames": (0..11).map(|i| format!("g{i}")).collect::<Vec<_>>()}}),
    )
    .await
    .invalid("1..10");
    create(
        "disabled",
        json!({"enableIoTLoggingParams": {"roleArnForLogging": ROLE, "logLevel": "DISABLED"}}),
    )
    .await
    .invalid("DISABLED");
    create(
        "sns",
        json!({"publishFindingToSnsParams": {"topicArn": "arn:aws:sns:us-east-1:123456789012:t"}}),
    )
    .await
    .invalid("feed destination");
    create(
        "blank",
        json!({"replaceDefaultPolicyVersionParams": {"templateName": "EMPTY"}}),
    )
    .await
    .invalid("BLANK_POLICY");
    create(
        "ban",
        json!({"banClientOnBrokerParams": {"brokerKind": "MOSQUITTO_DYNSEC", "banBy": "CLIENT_ID"}}),
    )
    .await
    .invalid("USERNAME");
    // Names: MitigationActionName has no ':' (unlike profile names); roleArn is 20..2048.
    t.post(
        "/mitigationactions/actions/a:b",
        json!({"roleArn": ROLE, "actionParams": {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}}}),
    )
    .await
    .invalid("actionName");
    t.post(
        "/mitigationactions/actions/short-role",
        json!({"roleArn": "arn:x", "actionParams": {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}}}),
    )
    .await
    .invalid("roleArn");
    t.post(
        "/mitigationactions/actions/no-params",
        json!({"roleArn": ROLE}),
    )
    .await
    .invalid("actionParams is required");
    // Nothing was stored.
    let all = t.get("/mitigationactions/actions").await.ok();
    assert_eq!(all["actionIdentifiers"], json!([]));
}

/// Two violations of `cam` in profile `p`, `cam` registered, group `quarantine`, action `q`.
async fn quarantine_setup() -> (TestApp, Vec<String>) {
    let t = in_alarm().await;
    t.thing_and_group("cam", "quarantine").await;
    t.action("q", group_action("quarantine")).await;
    let ids = t
        .active("")
        .await
        .iter()
        .map(|v| v["violationId"].as_str().expect("id").to_owned())
        .collect();
    (t, ids)
}

#[tokio::test]
async fn detect_task_quarantines_the_violating_thing() {
    let (t, ids) = quarantine_setup().await;
    assert!(t.group_members("quarantine").await.is_empty());
    let started = t
        .put(
            "/detect/mitigationactions/tasks/t1",
            Some(
                json!({"target": {"securityProfileName": "p"}, "actions": ["q"],
                         "clientRequestToken": "tok1"}),
            ),
        )
        .await
        .ok();
    assert_eq!(started, json!({"taskId": "t1"}));
    let summary = t.detect_done("t1").await;
    assert_eq!(summary["taskStatus"], "SUCCESSFUL");
    assert_eq!(
        summary["taskStatistics"],
        json!({"actionsExecuted": 2, "actionsSkipped": 0, "actionsFailed": 0})
    );
    assert_eq!(summary["target"], json!({"securityProfileName": "p"}));
    assert_eq!(summary["actionsDefinition"][0]["name"], "q");
    assert_eq!(summary["onlyActiveViolationsIncluded"], false);
    assert!(summary["taskEndTime"].is_number());
    assert_eq!(t.group_members("quarantine").await, [json!("cam")]);

    // Executions by task, by violation and thing, and by time range.
    let by_task = t.detect_executions("taskId=t1").await;
    assert_eq!(by_task.len(), 2);
    for e in &by_task {
        assert_eq!(e["status"], "SUCCESSFUL");
        assert_eq!(e["thingName"], "cam");
        assert!(ids.contains(&e["violationId"].as_str().expect("id").to_owned()));
        assert!(e["executionStartDate"].is_number() && e["executionEndDate"].is_number());
    }
    let one = t
        .detect_executions(&format!("taskId=t1&violationId={}", ids[0]))
        .await;
    assert_eq!(one.len(), 1);
    let range = format!(
        "startTime={}&endTime={}&thingName=cam",
        iso(T0_MS),
        iso(t.now_ms() + 1000)
    );
    assert_eq!(t.detect_executions(&range).await.len(), 2);
    assert!(
        t.detect_executions("taskId=t1&thingName=other")
            .await
            .is_empty()
    );

    // Listing tasks needs the time range; the replay of the same request is idempotent.
    let list = t
        .get(&format!(
            "/detect/mitigationactions/tasks?startTime={}&endTime={}",
            iso(T0_MS),
            iso(t.now_ms() + 1000)
        ))
        .await
        .ok();
    assert_eq!(list["tasks"][0]["taskId"], "t1");
    t.put(
        "/detect/mitigationactions/tasks/t1",
        Some(
            json!({"target": {"securityProfileName": "p"}, "actions": ["q"],
                     "clientRequestToken": "tok1"}),
        ),
    )
    .await
    .ok();
    let reused = t
        .put(
            "/detect/mitigationactions/tasks/t1",
            Some(
                json!({"target": {"securityProfileName": "p"}, "actions": ["q"],
                         "clientRequestToken": "tok2"}),
            ),
        )
        .await;
    reused.error(400, "TaskAlreadyExistsException");
    // A finished task cannot be cancelled.
    t.put("/detect/mitigationactions/tasks/t1/cancel", None)
        .await
        .invalid("not in progress");
}

#[tokio::test]
async fn detect_tasks_select_violations_by_id_range_and_activity() {
    let (t, ids) = quarantine_setup().await;
    // By id: only that violation.
    t.put(
        "/detect/mitigationactions/tasks/by-id",
        Some(json!({"target": {"violationIds": [ids[0]]}, "actions": ["q"]})),
    )
    .await
    .ok();
    assert_eq!(
        t.detect_done("by-id").await["taskStatistics"]["actionsExecuted"],
        1
    );
    // A range before the violations selects none.
    t.put(
        "/detect/mitigationactions/tasks/early",
        Some(
            json!({"target": {"securityProfileName": "p"}, "actions": ["q"],
                     "violationEventOccurrenceRange": {"startTime": 1_000, "endTime": 2_000}}),
        ),
    )
    .await
    .ok();
    assert_eq!(
        t.detect_done("early").await["taskStatistics"],
        json!({"actionsExecuted": 0, "actionsSkipped": 0, "actionsFailed": 0})
    );
    // Clear one alarm: only the other is active.
    t.ingest(json!([
        { "thingName": "cam", "metric": "aws:num-listening-tcp-ports", "value": { "count": 1 } }
    ]))
    .await;
    assert_eq!(t.active("").await.len(), 1);
    t.put(
        "/detect/mitigationactions/tasks/active",
        Some(
            json!({"target": {"securityProfileName": "p"}, "actions": ["q"],
                     "includeOnlyActiveViolations": true}),
        ),
    )
    .await
    .ok();
    let s = t.detect_done("active").await;
    assert_eq!(s["taskStatistics"]["actionsExecuted"], 1);
    assert_eq!(s["onlyActiveViolationsIncluded"], true);
    // Behavior filter.
    t.put(
        "/detect/mitigationactions/tasks/behavior",
        Some(
            json!({"target": {"securityProfileName": "p", "behaviorName": "few-conns"},
                     "actions": ["q"]}),
        ),
    )
    .await
    .ok();
    assert_eq!(
        t.detect_done("behavior").await["taskStatistics"]["actionsExecuted"],
        1
    );
}

#[tokio::test]
async fn detect_task_requests_are_validated() {
    let (t, ids) = quarantine_setup().await;
    let start = |id: &'static str, body: Value| {
        let t = &t;
        async move {
            t.put(&format!("/detect/mitigationactions/tasks/{id}"), Some(body))
                .await
        }
    };
    start(
        "a",
        json!({"target": {"securityProfileName": "p"}, "actions": ["missing"]}),
    )
    .await
    .error(404, NOT_FOUND);
    start(
        "b",
        json!({"target": {"violationIds": ["no-such-violation"]}, "actions": ["q"]}),
    )
    .await
    .error(404, NOT_FOUND);
    start(
        "c",
        json!({"target": {"securityProfileName": "nope"}, "actions": ["q"]}),
    )
    .await
    .error(404, NOT_FOUND);
    start(
        "d",
        json!({"target": {"securityProfileName": "p", "violationIds": [ids[0]]}, "actions": ["q"]}),
    )
    .await
    .invalid("exactly one");
    start(
        "e",
        json!({"target": {"securityProfileName": "p"}, "actions": []}),
    )
    .await
    .invalid("1..5");
    start(
        "f",
        json!({"target": {"violationIds": ["bad_id"]}, "actions": ["q"]}),
    )
    .await
    .invalid("violationId");
    start(
        "bad:id",
        json!({"target": {"securityProfileName": "p"}, "actions": ["q"]}),
    )
    .await
    .invalid("taskId");
    start(
        "g",
        json!({"target": {"securityProfileName": "p"}, "actions": ["q"],
               "violationEventOccurrenceRange": {"startTime": 10, "endTime": 5}}),
    )
    .await
    .invalid("after");
    t.action(
        "logs",
        json!({"roleArn": ROLE, "actionParams": {"enableIoTLoggingParams": {
            "roleArnForLogging": ROLE, "logLevel": "INFO"}}}),
    )
    .await;
    start(
        "h",
        json!({"target": {"securityProfileName": "p"}, "actions": ["logs"]}),
    )
    .await
    .invalid("do not apply to violations");
    t.get("/detect/mitigationactions/tasks/zzz")
        .await
        .error(404, NOT_FOUND);
    t.put("/detect/mitigationactions/tasks/zzz/cancel", None)
        .await
        .error(404, NOT_FOUND);
    t.get("/detect/mitigationactions/tasks")
        .await
        .invalid("startTime");
    t.get("/detect/mitigationactions/executions")
        .await
        .invalid("taskId");
    // None of the refused requests left a task behind.
    let list = t
        .get(&format!(
            "/detect/mitigationactions/tasks?startTime={}&endTime={}",
            iso(0),
            iso(t.now_ms() + 1000)
        ))
        .await
        .ok();
    assert_eq!(list["tasks"], json!([]));
}

/// What the receiver saw: (method, path, Authorization header, JSON body) per request.
type Seen = Arc<Mutex<Vec<(String, String, Option<String>, Value)>>>;

/// A local HTTP server that records every request and answers `status`; or, with `hang`,
/// never answers.
struct Receiver {
    url: String,
    seen: Seen,
}

async fn receiver(status: u16, hang: bool) -> Receiver {
    let seen: Seen = Arc::default();
    let recorded = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let recorded = Arc::clone(&recorded);
        async move {
            let method = req.method().to_string();
            let path = req.uri().path().to_owned();
            let auth = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = req.into_body().collect().await.expect("body").to_bytes();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            recorded
                .lock()
                .expect("lock")
                .push((method, path, auth, body));
            if hang {
                std::future::pending::<()>().await;
            }
            (
                StatusCode::from_u16(status).expect("status"),
                axum::Json(json!({"code": if status == 200 { "OK" } else { "BAD_REQUEST" }})),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, seen }
}

fn emqx_ban(url: &str) -> Value {
    json!({"roleArn": ROLE, "actionParams": {"banClientOnBrokerParams": {
        "brokerKind": "EMQX", "reason": "compromised",
        "connection": {"url": url, "username": "key1", "password": "secret1"}}}})
}

#[tokio::test]
async fn emqx_ban_posts_to_the_banned_clients_api_with_basic_auth() {
    let (t, ids) = quarantine_setup().await;
    let emqx = receiver(200, false).await;
    t.action("ban", emqx_ban(&emqx.url)).await;
    // Describe never shows the secret.
    let d = t.get("/mitigationactions/actions/ban").await.ok();
    assert_eq!(d["actionType"], "BAN_CLIENT_ON_BROKER");
    assert_eq!(
        d["actionParams"]["banClientOnBrokerParams"]["connection"],
        json!({"url": emqx.url, "username": "key1"})
    );
    t.put(
        "/detect/mitigationactions/tasks/ban1",
        Some(json!({"target": {"violationIds": [ids[0]]}, "actions": ["ban"]})),
    )
    .await
    .ok();
    let s = t.detect_done("ban1").await;
    assert_eq!(s["taskStatus"], "SUCCESSFUL");
    assert_eq!(s["taskStatistics"]["actionsExecuted"], 1);
    assert!(
        s["actionsDefinition"][0]["actionParams"]["banClientOnBrokerParams"]["connection"]
            .get("password")
            .is_none()
    );
    let seen = emqx.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    let (method, path, auth, body) = &seen[0];
    assert_eq!(method, "POST");
    assert_eq!(path, "/api/v5/banned");
    // Basic base64("key1:secret1").
    assert_eq!(auth.as_deref(), Some("Basic a2V5MTpzZWNyZXQx"));
    assert_eq!(
        body,
        &json!({"as": "clientid", "who": "cam", "by": "thingward", "reason": "compromised"})
    );
    let e = t.detect_executions("taskId=ban1").await;
    assert_eq!(e[0]["status"], "SUCCESSFUL");
    assert!(
        e[0]["message"]
            .as_str()
            .expect("message")
            .contains("banned cam")
    );
}

#[tokio::test]
async fn a_broker_that_is_down_fails_its_execution_and_the_task_goes_on() {
    let (t, ids) = quarantine_setup().await;
    let closed = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    });
    t.action("ban", emqx_ban(&closed)).await;
    let refusing = receiver(500, false).await;
    t.action("ban500", emqx_ban(&refusing.url)).await;
    t.put(
        "/detect/mitigationactions/tasks/down",
        Some(json!({"target": {"violationIds": [ids[0]]}, "actions": ["ban", "ban500", "q"]})),
    )
    .await
    .ok();
    let s = t.detect_done("down").await;
    assert_eq!(s["taskStatus"], "SUCCESSFUL");
    assert_eq!(
        s["taskStatistics"],
        json!({"actionsExecuted": 3, "actionsSkipped": 0, "actionsFailed": 2})
    );
    let e = t.detect_executions("taskId=down").await;
    assert_eq!(
        statuses(&e),
        [
            ("ban".into(), "FAILED".into()),
            ("ban500".into(), "FAILED".into()),
            ("q".into(), "SUCCESSFUL".into())
        ]
    );
    assert_eq!(e[0]["errorCode"], "BROKER_UNREACHABLE");
    assert!(
        e[0]["message"]
            .as_str()
            .expect("message")
            .contains("did not answer"),
        "{e:?}"
    );
    assert_eq!(e[1]["errorCode"], "BROKER_REFUSED");
    assert!(e[1]["message"].as_str().expect("message").contains("500"));
    assert_eq!(t.group_members("quarantine").await, [json!("cam")]);
}

#[tokio::test]
async fn a_cancelled_task_stops_and_skips_what_is_left() {
    let (t, ids) = quarantine_setup().await;
    let hanging = receiver(200, true).await;
    t.action("slow-ban", emqx_ban(&hanging.url)).await;
    t.put(
        "/detect/mitigationactions/tasks/stop-me",
        Some(json!({"target": {"violationIds": ids}, "actions": ["slow-ban", "q"]})),
    )
    .await
    .ok();
    // Wait until the first ban is in flight, then cancel.
    for _ in 0..200 {
        if !hanging.seen.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(hanging.seen.lock().expect("lock").len(), 1);
    t.put("/detect/mitigationactions/tasks/stop-me/cancel", None)
        .await
        .ok();
    let s = t.get("/detect/mitigationactions/tasks/stop-me").await.ok()["taskSummary"].clone();
    assert_eq!(s["taskStatus"], "CANCELED");
    // The ban in flight times out (10 s) and is recorded; nothing after it runs.
    for _ in 0..300 {
        let e = t.detect_executions("taskId=stop-me").await;
        if e[0]["status"] != "IN_PROGRESS" {
            assert_eq!(e[0]["status"], "FAILED");
            assert_eq!(
                statuses(&e[1..]),
                [
                    ("q".into(), "SKIPPED".into()),
                    ("slow-ban".into(), "SKIPPED".into()),
                    ("q".into(), "SKIPPED".into())
                ]
            );
            assert_eq!(e[1]["message"], "The task was canceled");
            assert!(t.group_members("quarantine").await.is_empty());
            assert_eq!(hanging.seen.lock().expect("lock").len(), 1);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the in-flight ban never ended");
}

#[tokio::test]
async fn a_task_in_progress_at_restart_ends_failed() {
    let t = TestApp::new();
    let task = TaskRecord {
        kind: TaskKind::Audit,
        task_id: "interrupted".into(),
        state: TaskState::InProgress,
        start_ms: T0_MS,
        end_ms: None,
        client_request_token: None,
        request: json!({"target": {"findingIds": ["f1"]}, "auditCheckToActionsMapping": {}}),
        actions: json!([]),
    };
    let exec = ExecutionRecord {
        task_id: "interrupted".into(),
        seq: 0,
        subject: "f1".into(),
        check_name: Some("LOGGING_DISABLED_CHECK".into()),
        thing: None,
        action_name: "logs".into(),
        action_id: "id".into(),
        state: ExecState::InProgress,
        start_ms: Some(T0_MS),
        end_ms: None,
        error_code: None,
        message: None,
    };
    t.store
        .mitigation_task_insert(&task, &[exec])
        .expect("insert");
    t.advance_secs(5);
    let t = t.restart();
    let d = t
        .get("/audit/mitigationactions/tasks/interrupted")
        .await
        .ok();
    assert_eq!(d["taskStatus"], "FAILED");
    assert_eq!(d["endTime"], json!((T0_MS + 5000) as f64 / 1000.0));
    let e = t.audit_executions("taskId=interrupted").await;
    assert_eq!(e[0]["status"], "CANCELED");
    assert_eq!(e[0]["message"], thingward_store::STOPPED_MESSAGE);
}

/// A real device certificate (rcgen), registered through the store, attached to `thing`.
fn register_cert(t: &TestApp, thing: &str) -> String {
    let key = rcgen::generate_simple_self_signed(vec![thing.to_owned()]).expect("rcgen");
    let id = thingward_audit::input::cert_id(key.cert.der());
    t.store
        .cert_insert(&CertificateRecord {
            cert_id: id.clone(),
            kind: CertKind::Device,
            pem: key.cert.pem(),
            status: CertStatus::Active,
            ca_cert_id: None,
            auto_registration: None,
            created_ms: T0_MS,
            modified_ms: T0_MS,
        })
        .expect("cert");
    t.store
        .thing_principal_set(
            thing,
            &format!("arn:aws:iot:us-east-1:123456789012:cert/{id}"),
            true,
        )
        .expect("principal");
    id
}

/// An audit task `a1` with these (finding id, check, resource identifier, reason code)
/// findings.
fn audit_with(t: &TestApp, findings: &[(&str, &str, Value, &str)]) {
    t.store
        .audit_task_insert(&AuditTaskRecord {
            task_id: "a1".into(),
            task_type: "ON_DEMAND_AUDIT_TASK".into(),
            status: TaskStatus::Completed,
            start_ms: T0_MS,
            end_ms: Some(T0_MS),
            scheduled_audit_name: None,
            checks: findings.iter().map(|f| f.1.to_owned()).collect(),
            details: BTreeMap::new(),
        })
        .expect("audit task");
    let records: Vec<FindingRecord> = findings
        .iter()
        .map(|(id, check, resource, code)| FindingRecord {
            finding_id: (*id).into(),
            task_id: "a1".into(),
            check_name: (*check).into(),
            task_start_ms: T0_MS,
            finding_ms: T0_MS,
            severity: "MEDIUM".into(),
            resource_key: resource.to_string(),
            body: json!({
                "checkName": check, "severity": "MEDIUM",
                "nonCompliantResource": {"resourceType": "DEVICE_CERTIFICATE", "resourceIdentifier": resource},
                "relatedResources": [],
                "reasonForNonCompliance": "test", "reasonForNonComplianceCode": code
            })
            .to_string(),
            is_suppressed: false,
        })
        .collect();
    t.store.findings_insert(&records).expect("findings");
}

const EXPIRING: &str = "DEVICE_CERTIFICATE_EXPIRING_CHECK";

#[tokio::test]
async fn audit_task_deactivates_the_certificate_and_quarantines_its_thing() {
    let t = TestApp::new();
    t.thing_and_group("cam", "quarantine").await;
    let cam = register_cert(&t, "cam");
    let other = register_cert(&t, "cam2");
    audit_with(
        &t,
        &[
            (
                "f-cam",
                EXPIRING,
                json!({"deviceCertificateId": cam}),
                "CERTIFICATE_PAST_EXPIRATION",
            ),
            (
                "f-other",
                EXPIRING,
                json!({"deviceCertificateId": other}),
                "CERTIFICATE_APPROACHING_EXPIRATION",
            ),
        ],
    );
    // f-other is suppressed: skipped.
    t.store
        .suppression_insert(&SuppressionRecord {
            check_name: EXPIRING.into(),
            resource_key: json!({"deviceCertificateId": other}).to_string(),
            expiration_ms: None,
            indefinitely: true,
            description: None,
            created_ms: T0_MS,
        })
        .expect("suppression");
    t.action(
        "deactivate",
        json!({"roleArn": ROLE, "actionParams": {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}}}),
    )
    .await;
    t.action("q", group_action("quarantine")).await;
    t.post(
        "/audit/mitigationactions/tasks/m1",
        json!({"target": {"auditTaskId": "a1"},
               "auditCheckToActionsMapping": {EXPIRING: ["deactivate", "q"]},
               "clientRequestToken": "tok"}),
    )
    .await
    .ok();
    let d = t.audit_done("m1").await;
    assert_eq!(d["taskStatus"], "COMPLETED");
    assert_eq!(
        d["taskStatistics"][EXPIRING],
        json!({"totalFindingsCount": 2, "failedFindingsCount": 0, "succeededFindingsCount": 1,
               "skippedFindingsCount": 1, "canceledFindingsCount": 0})
    );
    assert_eq!(d["target"], json!({"auditTaskId": "a1"}));
    assert_eq!(
        d["auditCheckToActionsMapping"],
        json!({EXPIRING: ["deactivate", "q"]})
    );
    assert_eq!(d["actionsDefinition"].as_array().expect("defs").len(), 2);
    let status = |id: &str| {
        t.store
            .cert_get(CertKind::Device, id)
            .expect("get")
            .expect("cert")
            .status
    };
    assert_eq!(status(&cam), CertStatus::Inactive);
    assert_eq!(status(&other), CertStatus::Active, "suppressed: untouched");
    assert_eq!(t.group_members("quarantine").await, [json!("cam")]);

    let all = t.audit_executions("taskId=m1").await;
    assert_eq!(all.len(), 4);
    let cam_execs = t.audit_executions("taskId=m1&findingId=f-cam").await;
    assert_eq!(
        statuses(&cam_execs),
        [
            ("deactivate".into(), "COMPLETED".into()),
            ("q".into(), "COMPLETED".into())
        ]
    );
    assert!(cam_execs[0]["actionId"].is_string());
    let skipped = t.audit_executions("taskId=m1&actionStatus=SKIPPED").await;
    assert_eq!(skipped.len(), 2);
    assert_eq!(skipped[0]["findingId"], "f-other");
    assert_eq!(skipped[0]["message"], "The finding is suppressed");

    // ListAuditMitigationActionsTasks filters.
    let range = format!("startTime={}&endTime={}", iso(T0_MS), iso(T0_MS + 1000));
    let list = |q: String| {
        let t = &t;
        async move {
            t.get(&format!("/audit/mitigationactions/tasks?{q}"))
                .await
                .ok()["tasks"]
                .as_array()
                .expect("tasks")
                .len()
        }
    };
    assert_eq!(list(range.clone()).await, 1);
    assert_eq!(list(format!("{range}&auditTaskId=a1")).await, 1);
    assert_eq!(list(format!("{range}&auditTaskId=a2")).await, 0);
    assert_eq!(list(format!("{range}&findingId=f-cam")).await, 1);
    assert_eq!(list(format!("{range}&taskStatus=COMPLETED")).await, 1);
    assert_eq!(list(format!("{range}&taskStatus=FAILED")).await, 0);
    t.get(&format!(
        "/audit/mitigationactions/tasks?{range}&taskStatus=DONE"
    ))
    .await
    .invalid("taskStatus");
}

#[tokio::test]
async fn audit_policy_logging_and_publish_actions() {
    let t = TestApp::new();
    t.store
        .policy_create(
            "open",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#,
            T0_MS,
        )
        .expect("policy");
    audit_with(
        &t,
        &[
            (
                "f-policy",
                "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
                json!({"policyVersionIdentifier": {"policyName": "open", "policyVersionId": "1"}}),
                "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
            ),
            (
                "f-dir-policy",
                "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
                json!({"policyVersionIdentifier": {"policyName": "on-disk", "policyVersionId": "1"}}),
                "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
            ),
            (
                "f-logs",
                "LOGGING_DISABLED_CHECK",
                json!({"account": ACCOUNT}),
                "LOGGING_DISABLED",
            ),
        ],
    );
    t.store
        .destination_put(
            "soc",
            &json!({"type": "cloudevents", "url": "http://127.0.0.1:9/", "events": ["audit-findings"]}),
            T0_MS,
        )
        .expect("destination");
    t.action(
        "blank",
        json!({"roleArn": ROLE, "actionParams": {"replaceDefaultPolicyVersionParams": {"templateName": "BLANK_POLICY"}}}),
    )
    .await;
    t.action(
        "logs",
        json!({"roleArn": ROLE, "actionParams": {"enableIoTLoggingParams": {"roleArnForLogging": ROLE, "logLevel": "WARN"}}}),
    )
    .await;
    let dest = |name: &str| {
        json!({"roleArn": ROLE, "actionParams": {"publishFindingToSnsParams": {
            "topicArn": format!("arn:aws:iot:us-east-1:123456789012:destination/{name}")}}})
    };
    t.action("to-soc", dest("soc")).await;
    t.action("to-nowhere", dest("nowhere")).await;
    t.post(
        "/audit/mitigationactions/tasks/m2",
        json!({"target": {"auditTaskId": "a1"},
               "auditCheckToActionsMapping": {
                   "IOT_POLICY_OVERLY_PERMISSIVE_CHECK": ["blank"],
                   "LOGGING_DISABLED_CHECK": ["logs", "to-soc", "to-nowhere"]}}),
    )
    .await
    .ok();
    let d = t.audit_done("m2").await;
    assert_eq!(d["taskStatus"], "COMPLETED");
    assert_eq!(
        d["taskStatistics"]["IOT_POLICY_OVERLY_PERMISSIVE_CHECK"]["failedFindingsCount"], 1,
        "the directory policy cannot get a version"
    );
    assert_eq!(
        d["taskStatistics"]["LOGGING_DISABLED_CHECK"]["failedFindingsCount"], 1,
        "to-nowhere failed"
    );
    let policy = t.store.policy_get("open").expect("get").expect("policy");
    assert_eq!(policy.default_version, 2);
    let v2 = t
        .store
        .policy_version_get("open", 2)
        .expect("get")
        .expect("v2");
    assert!(v2.is_default);
    assert_eq!(v2.document, crate::mitigation::BLANK_POLICY);
    let logging = t.store.logging_get().expect("get").expect("set");
    assert_eq!(logging.default_log_level.as_deref(), Some("WARN"));
    // Storing the findings announced each on the feed; the publish action added one more,
    // under its own key.
    let all = t.store.outbox_after(0, 10).expect("outbox");
    let out: Vec<_> = all
        .iter()
        .filter(|e| e.key.starts_with("mitigation:"))
        .collect();
    assert_eq!(out.len(), 1, "{all:?}");
    assert!(
        all.iter()
            .filter(|e| !e.key.starts_with("mitigation:"))
            .all(|e| e.body["findingId"] == e.key.as_str())
    );
    assert_eq!(out[0].kind, thingward_store::OutboxKind::AuditFinding);
    assert_eq!(out[0].key, "mitigation:m2:2");
    assert_eq!(out[0].body["findingId"], "f-logs");
    assert_eq!(out[0].body["checkName"], "LOGGING_DISABLED_CHECK");
    assert_eq!(out[0].body["taskId"], "a1");
    assert_eq!(out[0].body["isSuppressed"], false);
    let e = t.audit_executions("taskId=m2&findingId=f-logs").await;
    assert_eq!(
        statuses(&e),
        [
            ("logs".into(), "COMPLETED".into()),
            ("to-soc".into(), "COMPLETED".into()),
            ("to-nowhere".into(), "FAILED".into())
        ]
    );
    assert_eq!(e[2]["errorCode"], "RESOURCE_NOT_FOUND");
    let dir = t.audit_executions("taskId=m2&findingId=f-dir-policy").await;
    assert!(
        dir[0]["message"]
            .as_str()
            .expect("message")
            .contains("not registered through the API")
    );
}

#[tokio::test]
async fn audit_task_requests_are_validated() {
    let t = TestApp::new();
    let cam = register_cert(&t, "cam");
    audit_with(
        &t,
        &[(
            "f-cam",
            EXPIRING,
            json!({"deviceCertificateId": cam}),
            "CERTIFICATE_PAST_EXPIRATION",
        )],
    );
    t.action(
        "logs",
        json!({"roleArn": ROLE, "actionParams": {"enableIoTLoggingParams": {"roleArnForLogging": ROLE, "logLevel": "INFO"}}}),
    )
    .await;
    t.action(
        "ban",
        json!({"roleArn": ROLE, "actionParams": {"banClientOnBrokerParams": {"brokerKind": "MOSQUITTO_DYNSEC"}}}),
    )
    .await;
    t.action(
        "deactivate",
        json!({"roleArn": ROLE, "actionParams": {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}}}),
    )
    .await;
    let start = |id: &'static str, body: Value| {
        let t = &t;
        async move {
            t.post(&format!("/audit/mitigationactions/tasks/{id}"), body)
                .await
        }
    };
    start(
        "x1",
        json!({"target": {"auditTaskId": "a1"}, "auditCheckToActionsMapping": {EXPIRING: ["logs"]}}),
    )
    .await
    .invalid("not allowed for DEVICE_CERTIFICATE_EXPIRING_CHECK");
    start(
        "x2",
        json!({"target": {"auditTaskId": "a1"}, "auditCheckToActionsMapping": {EXPIRING: ["ban"]}}),
    )
    .await
    .invalid("BAN_CLIENT_ON_BROKER actions are not allowed");
    start(
        "x3",
        json!({"target": {"auditTaskId": "a1"}, "auditCheckToActionsMapping": {"NO_SUCH_CHECK": ["deactivate"]}}),
    )
    .await
    .invalid("Unknown audit check");
    start(
        "x4",
        json!({"target": {"auditTaskId": "nope"}, "auditCheckToActionsMapping": {EXPIRING: ["deactivate"]}}),
    )
    .await
    .error(404, NOT_FOUND);
    start(
        "x5",
        json!({"target": {"findingIds": ["f-cam", "missing"]}, "auditCheckToActionsMapping": {EXPIRING: ["deactivate"]}}),
    )
    .await
    .error(404, NOT_FOUND);
    start(
        "x6",
        json!({"target": {"auditTaskId": "a1"}, "auditCheckToActionsMapping": {EXPIRING: ["missing"]}}),
    )
    .await
    .error(404, NOT_FOUND);
    start(
        "x7",
        json!({"target": {"auditTaskId": "a1", "findingIds": ["f-cam"]}, "auditCheckToActionsMapping": {EXPIRING: ["deactivate"]}}),
    )
    .await
    .invalid("exactly one");
    start(
        "x8",
        json!({"target": {"auditTaskId": "a1"}, "auditCheckToActionsMapping": {}}),
    )
    .await
    .invalid("at least one");
    start(
        "x9",
        json!({"auditCheckToActionsMapping": {EXPIRING: ["deactivate"]}}),
    )
    .await
    .invalid("target is required");
    t.get("/audit/mitigationactions/tasks/zzz")
        .await
        .error(404, NOT_FOUND);
    t.put("/audit/mitigationactions/tasks/zzz/cancel", None)
        .await
        .error(404, NOT_FOUND);
    t.get("/audit/mitigationactions/executions")
        .await
        .invalid("taskId");
    // By finding id, reason-code filtered: the filter leaves the finding out.
    start(
        "ok",
        json!({"target": {"auditTaskId": "a1", "auditCheckToReasonCodeFilter": {EXPIRING: ["CERTIFICATE_APPROACHING_EXPIRATION"]}},
               "auditCheckToActionsMapping": {EXPIRING: ["deactivate"]}}),
    )
    .await
    .ok();
    let d = t.audit_done("ok").await;
    assert_eq!(d["taskStatistics"][EXPIRING]["totalFindingsCount"], 0);
    start(
        "ok",
        json!({"target": {"findingIds": ["f-cam"]}, "auditCheckToActionsMapping": {EXPIRING: ["deactivate"]}}),
    )
    .await
    .error(400, "TaskAlreadyExistsException");
    start(
        "by-id",
        json!({"target": {"findingIds": ["f-cam"]}, "auditCheckToActionsMapping": {EXPIRING: ["deactivate"]}}),
    )
    .await
    .ok();
    let d = t.audit_done("by-id").await;
    assert_eq!(d["taskStatistics"][EXPIRING]["succeededFindingsCount"], 1);
}

#[tokio::test]
async fn detect_publish_appends_the_violation_for_a_destination_that_receives_it() {
    let (t, ids) = quarantine_setup().await;
    let events = |all: bool| json!({"type": "cloudevents", "url": "http://127.0.0.1:9/", "events": ["violations"], "allProfiles": all});
    t.store
        .destination_put("everything", &events(true), T0_MS)
        .expect("destination");
    t.store
        .destination_put("other-team", &events(false), T0_MS)
        .expect("destination");
    let publish = |name: &str| {
        json!({"roleArn": ROLE, "actionParams": {"publishFindingToSnsParams": {
            "topicArn": format!("arn:aws:iot:us-east-1:123456789012:destination/{name}")}}})
    };
    t.action("to-everything", publish("everything")).await;
    t.action("to-other-team", publish("other-team")).await;
    let before = t.store.outbox_after(0, 100).expect("outbox").len();
    t.put(
        "/detect/mitigationactions/tasks/pub",
        Some(json!({"target": {"violationIds": [ids[0]]}, "actions": ["to-everything", "to-other-team"]})),
    )
    .await
    .ok();
    t.detect_done("pub").await;
    let e = t.detect_executions("taskId=pub").await;
    assert_eq!(
        statuses(&e),
        [
            ("to-everything".into(), "SUCCESSFUL".into()),
            ("to-other-team".into(), "FAILED".into())
        ]
    );
    assert_eq!(e[1]["errorCode"], "DESTINATION_NOT_ROUTED");
    let out = t.store.outbox_after(0, 100).expect("outbox");
    assert_eq!(out.len(), before + 1);
    let last = out.last().expect("event");
    assert_eq!(last.key, "mitigation:pub:0");
    assert_eq!(last.body["violationId"], ids[0].as_str());
    assert_eq!(last.body["thingName"], "cam");
    assert_eq!(last.body["violationEventType"], "in-alarm");
    assert_eq!(last.routing.profile.as_deref(), Some("p"));
    // Only the named destination delivers it.
    assert_eq!(last.routing.destination.as_deref(), Some("everything"));
}

#[tokio::test]
async fn a_ban_without_connection_needs_the_serve_flags() {
    let (t, ids) = quarantine_setup().await;
    t.action(
        "ban-flags",
        json!({"roleArn": ROLE, "actionParams": {"banClientOnBrokerParams": {"brokerKind": "EMQX"}}}),
    )
    .await;
    t.put(
        "/detect/mitigationactions/tasks/unconfigured",
        Some(json!({"target": {"violationIds": [ids[0]]}, "actions": ["ban-flags"]})),
    )
    .await
    .ok();
    assert_eq!(
        t.detect_done("unconfigured").await["taskStatistics"]["actionsFailed"],
        1
    );
    let e = t.detect_executions("taskId=unconfigured").await;
    assert_eq!(e[0]["errorCode"], "BROKER_NOT_CONFIGURED");
    assert!(
        e[0]["message"]
            .as_str()
            .expect("message")
            .contains("--emqx-url")
    );
}
