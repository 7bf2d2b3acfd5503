//! Mitigation end to end: the real binary bans a violating thing on a real Mosquitto with the
//! dynamic-security plugin (the banned client's CONNACK is refused afterwards) and puts it in
//! a quarantine group; a ban of a client the broker does not know fails with the broker's
//! error text.

use crate::support::{Thingward, free_port, http};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DYNSEC_PLUGIN: &str = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so";
const ADMIN_PASSWORD: &str = "admin-secret";
const ROLE: &str = "arn:aws:iam::000000000000:role/mitigation";

/// A Mosquitto with the dynamic-security plugin, its JSON made by `mosquitto_ctrl dynsec init`.
struct DynsecBroker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl DynsecBroker {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let dynsec = dir.path().join("dynsec.json");
        let status = Command::new("mosquitto_ctrl")
            .args(["dynsec", "init"])
            .arg(&dynsec)
            .args(["admin", ADMIN_PASSWORD])
            .stdout(Stdio::null())
            .status()
            .expect("mosquitto_ctrl dynsec init");
        assert!(status.success(), "dynsec init failed");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous false\npersistence false\nplugin {DYNSEC_PLUGIN}\nplugin_opt_config_file {}\n",
                dynsec.display()
            ),
        )
        .expect("write mosquitto.conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    /// `mosquitto_ctrl … dynsec createClient USER -p PASSWORD` as the admin.
    fn create_client(&self, user: &str, password: &str) {
        let status = Command::new("mosquitto_ctrl")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-u", "admin", "-P", ADMIN_PASSWORD])
            .args(["dynsec", "createClient", user, "-p", password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mosquitto_ctrl createClient");
        assert!(status.success(), "createClient {user} failed");
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for DynsecBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects as `user`; Ok on an accepted CONNACK, Err with the refusal otherwise.
async fn connect(port: u16, user: &str, password: &str) -> Result<(), String> {
    let mut opts = MqttOptions::new(format!("probe-{user}"), "127.0.0.1", port);
    opts.set_credentials(user, password);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 10);
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("{e:?}")),
            }
        }
    })
    .await
    .expect("a CONNACK within 10 s");
    let _ = client.disconnect().await;
    outcome
}

async fn call(tw: &Thingward, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut r = http().request(method, tw.url(path));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Polls DescribeDetectMitigationActionsTask until the task has ended.
async fn finished(tw: &Thingward, task: &str) -> Value {
    for _ in 0..300 {
        let d = call(
            tw,
            reqwest::Method::GET,
            &format!("/detect/mitigationactions/tasks/{task}"),
            None,
        )
        .await;
        if d["taskSummary"]["taskStatus"] != "IN_PROGRESS" {
            return d["taskSummary"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("task {task} did not finish in 30 s");
}

async fn executions(tw: &Thingward, task: &str) -> Vec<Value> {
    call(
        tw,
        reqwest::Method::GET,
        &format!("/detect/mitigationactions/executions?taskId={task}"),
        None,
    )
    .await["actionsExecutions"]
        .as_array()
        .expect("actionsExecutions")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_violating_thing_is_banned_on_mosquitto_dynsec_and_quarantined() {
    assert!(Path::new(DYNSEC_PLUGIN).exists(), "{DYNSEC_PLUGIN} missing");
    let broker = DynsecBroker::start();
    broker.create_client("cam", "cam-pass");
    connect(broker.port, "cam", "cam-pass")
        .await
        .expect("cam connects before the ban");

    let dir = tempfile::tempdir().expect("tempdir");
    // The serve flags name the broker too (credentials in the URL), for actions without
    // their own connection settings.
    let flag_url = format!("mqtt://admin:{ADMIN_PASSWORD}@127.0.0.1:{}", broker.port);
    let tw = Thingward::start_with(dir.path(), None, &["--mosquitto-dynsec-url", &flag_url]);
    use reqwest::Method;
    call(
        &tw,
        Method::POST,
        "/security-profiles/p",
        Some(json!({"behaviors": [
        {"name": "few-ports", "metric": "aws:num-listening-tcp-ports",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}}}]})),
    )
    .await;
    call(&tw, Method::PUT, "/security-profiles/p/targets?securityProfileTargetArn=arn%3Aaws%3Aiot%3Aus-east-1%3A000000000000%3Aall%2Fthings", None).await;
    call(&tw, Method::POST, "/things/cam", Some(json!({}))).await;
    call(
        &tw,
        Method::POST,
        "/thing-groups/quarantine",
        Some(json!({})),
    )
    .await;
    call(
        &tw,
        Method::POST,
        "/thingward/v1/metrics",
        Some(json!({"datapoints": [
        {"thingName": "cam", "metric": "aws:num-listening-tcp-ports", "value": {"count": 9}},
        {"thingName": "ghost", "metric": "aws:num-listening-tcp-ports", "value": {"count": 9}}]})),
    )
    .await;
    let active = call(&tw, Method::GET, "/active-violations", None).await;
    let id_of = |thing: &str| {
        active["activeViolations"]
            .as_array()
            .expect("active")
            .iter()
            .find(|v| v["thingName"] == thing)
            .and_then(|v| v["violationId"].as_str())
            .expect("violation")
            .to_owned()
    };
    let (cam, ghost) = (id_of("cam"), id_of("ghost"));

    call(&tw, Method::POST, "/mitigationactions/actions/ban", Some(json!({
        "roleArn": ROLE, "actionParams": {"banClientOnBrokerParams": {
            "brokerKind": "MOSQUITTO_DYNSEC",
            "connection": {"url": broker.url(), "username": "admin", "password": ADMIN_PASSWORD}}}}))).await;
    call(&tw, Method::POST, "/mitigationactions/actions/quarantine", Some(json!({
        "roleArn": ROLE, "actionParams": {"addThingsToThingGroupParams": {"thingGroupNames": ["quarantine"]}}}))).await;

    call(
        &tw,
        Method::PUT,
        "/detect/mitigationactions/tasks/ban-cam",
        Some(json!({
        "target": {"violationIds": [cam]}, "actions": ["ban", "quarantine"]})),
    )
    .await;
    let summary = finished(&tw, "ban-cam").await;
    assert_eq!(summary["taskStatus"], "SUCCESSFUL");
    assert_eq!(
        summary["taskStatistics"],
        json!({"actionsExecuted": 2, "actionsSkipped": 0, "actionsFailed": 0})
    );
    let done = executions(&tw, "ban-cam").await;
    assert_eq!(done.len(), 2);
    for e in &done {
        assert_eq!(e["status"], "SUCCESSFUL", "{e}");
        assert_eq!(e["thingName"], "cam");
    }
    assert!(
        done[0]["message"]
            .as_str()
            .expect("message")
            .contains("disabled client cam")
    );
    let members = call(&tw, Method::GET, "/thing-groups/quarantine/things", None).await;
    assert_eq!(members["things"], json!(["cam"]));

    // The banned client is refused now.
    let refused = connect(broker.port, "cam", "cam-pass")
        .await
        .expect_err("cam is banned");
    assert!(
        refused.contains("NotAuthorized") || refused.contains("Refused"),
        "{refused}"
    );

    // A client the broker does not know: FAILED with the broker's own error text. This action
    // has no connection: it goes to the broker of the serve flags.
    call(&tw, Method::POST, "/mitigationactions/actions/ban-by-flags", Some(json!({
        "roleArn": ROLE, "actionParams": {"banClientOnBrokerParams": {"brokerKind": "MOSQUITTO_DYNSEC"}}}))).await;
    call(
        &tw,
        Method::PUT,
        "/detect/mitigationactions/tasks/ban-ghost",
        Some(json!({
        "target": {"violationIds": [ghost]}, "actions": ["ban-by-flags"]})),
    )
    .await;
    let summary = finished(&tw, "ban-ghost").await;
    assert_eq!(summary["taskStatistics"]["actionsFailed"], 1);
    let failed = executions(&tw, "ban-ghost").await;
    assert_eq!(failed[0]["status"], "FAILED");
    assert_eq!(failed[0]["errorCode"], "BROKER_REFUSED");
    assert!(
        failed[0]["message"]
            .as_str()
            .expect("message")
            .contains("Client not found"),
        "{}",
        failed[0]
    );

    // A wrong admin password: the broker refuses the connection; the execution says so.
    call(
        &tw,
        Method::POST,
        "/mitigationactions/actions/ban-wrong-admin",
        Some(json!({
        "roleArn": ROLE, "actionParams": {"banClientOnBrokerParams": {
            "brokerKind": "MOSQUITTO_DYNSEC",
            "connection": {"url": broker.url(), "username": "admin", "password": "wrong"}}}})),
    )
    .await;
    call(
        &tw,
        Method::PUT,
        "/detect/mitigationactions/tasks/wrong-admin",
        Some(json!({
        "target": {"violationIds": [ghost]}, "actions": ["ban-wrong-admin"]})),
    )
    .await;
    finished(&tw, "wrong-admin").await;
    let e = executions(&tw, "wrong-admin").await;
    assert_eq!(e[0]["status"], "FAILED");
    assert_eq!(e[0]["errorCode"], "BROKER_UNREACHABLE");
    assert!(
        e[0]["message"]
            .as_str()
            .expect("message")
            .contains("NotAuthorized")
            || e[0]["message"]
                .as_str()
                .expect("message")
                .contains("Refused"),
        "{}",
        e[0]
    );
}

/// Polls `path` until `field` is no longer IN_PROGRESS; returns the body.
async fn settled(tw: &Thingward, path: &str, field: &str) -> Value {
    for _ in 0..300 {
        let v = call(tw, reqwest::Method::GET, path, None).await;
        if v[field] != "IN_PROGRESS" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} still in progress after 30 s");
}

/// An on-demand audit of the expiring-certificate check; returns (task id, its findings).
async fn audit_expiring(tw: &Thingward) -> (String, Vec<Value>) {
    let started = call(
        tw,
        reqwest::Method::POST,
        "/audit/tasks",
        Some(json!({"targetCheckNames": [EXPIRING]})),
    )
    .await;
    let id = started["taskId"].as_str().expect("taskId").to_owned();
    let task = settled(tw, &format!("/audit/tasks/{id}"), "taskStatus").await;
    assert_eq!(task["taskStatus"], "COMPLETED", "{task}");
    let findings = call(
        tw,
        reqwest::Method::POST,
        "/audit/findings",
        Some(json!({"taskId": id})),
    )
    .await["findings"]
        .as_array()
        .expect("findings")
        .clone();
    (id, findings)
}

const EXPIRING: &str = "DEVICE_CERTIFICATE_EXPIRING_CHECK";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mitigation_deactivates_an_expired_certificate_and_the_next_audit_reflects_it() {
    use reqwest::Method;
    let dir = tempfile::tempdir().expect("tempdir");
    let tw = Thingward::start(dir.path(), None);
    // A real expired certificate (rcgen), registered and attached to thing cam.
    let mut params = rcgen::CertificateParams::new(vec!["cam".to_owned()]).expect("params");
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params
        .self_signed(&rcgen::KeyPair::generate().expect("key"))
        .expect("cert");
    let registered = call(
        &tw,
        Method::POST,
        "/certificate/register-no-ca",
        Some(json!({"certificatePem": cert.pem(), "status": "ACTIVE"})),
    )
    .await;
    let cert_id = registered["certificateId"]
        .as_str()
        .expect("certificateId")
        .to_owned();
    let cert_arn = registered["certificateArn"]
        .as_str()
        .expect("certificateArn")
        .to_owned();
    call(&tw, Method::POST, "/things/cam", Some(json!({}))).await;
    call(
        &tw,
        Method::POST,
        "/thing-groups/quarantine",
        Some(json!({})),
    )
    .await;
    let r = http()
        .put(tw.url("/things/cam/principals"))
        .header("x-amzn-principal", &cert_arn)
        .send()
        .await
        .expect("attach principal");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    call(
        &tw,
        Method::PATCH,
        "/audit/configuration",
        Some(json!({"auditCheckConfigurations": {EXPIRING: {"enabled": true}}})),
    )
    .await;

    let (audit1, findings) = audit_expiring(&tw).await;
    let finding = findings
        .iter()
        .find(|f| {
            f["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"]
                == cert_id.as_str()
        })
        .unwrap_or_else(|| panic!("no finding for the expired certificate: {findings:?}"));
    let finding_id = finding["findingId"].as_str().expect("findingId").to_owned();

    call(&tw, Method::POST, "/mitigationactions/actions/deactivate", Some(json!({
        "roleArn": ROLE, "actionParams": {"updateDeviceCertificateParams": {"action": "DEACTIVATE"}}}))).await;
    call(&tw, Method::POST, "/mitigationactions/actions/quarantine", Some(json!({
        "roleArn": ROLE, "actionParams": {"addThingsToThingGroupParams": {"thingGroupNames": ["quarantine"]}}}))).await;
    call(
        &tw,
        Method::POST,
        "/audit/mitigationactions/tasks/fix-expired",
        Some(json!({
        "target": {"auditTaskId": audit1},
        "auditCheckToActionsMapping": {EXPIRING: ["deactivate", "quarantine"]}})),
    )
    .await;
    let task = settled(
        &tw,
        "/audit/mitigationactions/tasks/fix-expired",
        "taskStatus",
    )
    .await;
    assert_eq!(task["taskStatus"], "COMPLETED", "{task}");
    assert_eq!(
        task["taskStatistics"][EXPIRING]["succeededFindingsCount"], 1,
        "{task}"
    );
    let execs = call(
        &tw,
        Method::GET,
        &format!("/audit/mitigationactions/executions?taskId=fix-expired&findingId={finding_id}"),
        None,
    )
    .await;
    assert_eq!(
        execs["actionsExecutions"]
            .as_array()
            .expect("executions")
            .len(),
        2
    );
    for e in execs["actionsExecutions"].as_array().expect("executions") {
        assert_eq!(e["status"], "COMPLETED", "{e}");
    }
    let described = call(&tw, Method::GET, &format!("/certificates/{cert_id}"), None).await;
    assert_eq!(described["certificateDescription"]["status"], "INACTIVE");
    let members = call(&tw, Method::GET, "/thing-groups/quarantine/things", None).await;
    assert_eq!(members["things"], json!(["cam"]));

    // The next audit no longer flags the (now inactive) certificate.
    let (_, after) = audit_expiring(&tw).await;
    assert!(
        !after.iter().any(
            |f| f["nonCompliantResource"]["resourceIdentifier"]["deviceCertificateId"]
                == cert_id.as_str()
        ),
        "{after:?}"
    );
}
