//! Audit end to end: the real binary with an audit config over directories of rcgen
//! certificates, a daily scheduled audit reached by moving the service's test clock, findings
//! over HTTP, a suppression that hides a finding until it expires, and `thingward audit`.

use crate::support::{Thingward, http};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use serde_json::{Value, json};
use sha2::Digest;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const EXPIRING: &str = "DEVICE_CERTIFICATE_EXPIRING_CHECK";
const UNREADABLE: &str = "AUDIT_INPUT_UNREADABLE_CHECK";

/// Writes `<dir>/devices/expired.pem` (an rcgen certificate that expired in 2021),
/// `<dir>/devices/broken.pem` (a PEM block that is not base64) and `<dir>/audit.toml`;
/// returns the expired certificate's id.
fn fleet(dir: &Path, with_broken: bool) -> String {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "root");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("root");
    let mut d = CertificateParams::default();
    d.distinguished_name = rcgen::DistinguishedName::new();
    d.distinguished_name.push(DnType::CommonName, "old-camera");
    d.not_before = date_time_ymd(2019, 1, 1);
    d.not_after = date_time_ymd(2021, 1, 1);
    let cert = d
        .signed_by(&KeyPair::generate().expect("key"), &ca)
        .expect("device");
    let devices = dir.join("devices");
    std::fs::create_dir_all(&devices).expect("mkdir");
    std::fs::write(devices.join("expired.pem"), cert.pem()).expect("write");
    if with_broken {
        std::fs::write(
            devices.join("broken.pem"),
            "-----BEGIN CERTIFICATE-----\n%%% not base64 %%%\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
    }
    std::fs::write(dir.join("audit.toml"), "device_cert_dirs = [\"devices\"]\n").expect("write");
    hex::encode(sha2::Sha256::digest(cert.der()))
}

struct Api {
    server: Thingward,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, self.server.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    /// Moves the service clock; returns the service's now, epoch seconds.
    async fn advance(&self, seconds: i64) -> i64 {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/thingward/test/clock?advanceSeconds={seconds}"),
                None,
            )
            .await;
        v["nowMs"].as_i64().expect("nowMs") / 1000
    }

    async fn findings(&self, body: Value) -> Vec<Value> {
        self.call(reqwest::Method::POST, "/audit/findings", Some(body))
            .await["findings"]
            .as_array()
            .expect("findings")
            .clone()
    }
}

#[tokio::test]
async fn a_daily_scheduled_audit_runs_on_the_moved_clock_and_a_suppression_hides_its_finding_until_it_expires()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_id = fleet(dir.path(), true);
    // Schedule at an hour from now (UTC): not due until the clock moves.
    let at = (chrono::Utc::now() + chrono::TimeDelta::hours(1))
        .format("%H:%M")
        .to_string();
    let config = dir.path().join("audit.toml");
    let server = Thingward::start_with_args(
        &dir.path().join("data"),
        None,
        &[
            "--test-clock",
            "--audit-config",
            config.to_str().expect("utf-8"),
            "--audit-at",
            &at,
        ],
    );
    let api = Api {
        server,
        http: http(),
    };
    use reqwest::Method as M;
    api.call(
        M::PATCH,
        "/audit/configuration",
        Some(json!({ "auditCheckConfigurations": { EXPIRING: { "enabled": true }, UNREADABLE: { "enabled": true } } })),
    )
    .await;
    api.call(
        M::POST,
        "/audit/scheduledaudits/daily",
        Some(json!({ "frequency": "DAILY", "targetCheckNames": [EXPIRING, UNREADABLE] })),
    )
    .await;
    let start = api.advance(0).await;
    let window = format!(
        "/audit/tasks?startTime={}&endTime={}",
        chrono::DateTime::from_timestamp(start - 86_400, 0)
            .expect("t")
            .format("%Y-%m-%dT%H:%M:%SZ"),
        chrono::DateTime::from_timestamp(start + 5 * 86_400, 0)
            .expect("t")
            .format("%Y-%m-%dT%H:%M:%SZ"),
    );
    // Nothing runs before the slot (the scheduler ticks every 2 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(api.call(M::GET, &window, None).await["tasks"], json!([]));
    let now = api.advance(2 * 3600).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let task_id = loop {
        let tasks = api.call(M::GET, &window, None).await;
        if let Some(t) = tasks["tasks"].as_array().and_then(|t| t.first())
            && t["taskStatus"] == "COMPLETED"
        {
            assert_eq!(t["taskType"], "SCHEDULED_AUDIT_TASK");
            break t["taskId"].as_str().expect("id").to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no scheduled task completed: {tasks}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let task = api
        .call(M::GET, &format!("/audit/tasks/{task_id}"), None)
        .await;
    assert_eq!(task["scheduledAuditName"], "daily");
    assert_eq!(
        task["auditDetails"][EXPIRING]["nonCompliantResourcesCount"], 1,
        "{task}"
    );
    assert_eq!(
        task["auditDetails"][EXPIRING]["totalResourcesCount"], 1,
        "{task}"
    );

    let findings = api.findings(json!({ "taskId": task_id })).await;
    let expired = findings
        .iter()
        .find(|f| f["checkName"] == EXPIRING)
        .unwrap_or_else(|| panic!("no expiring finding: {findings:?}"));
    let rid = expired["nonCompliantResource"]["resourceIdentifier"].clone();
    assert_eq!(rid["deviceCertificateId"], cert_id.as_str());
    let broken = findings
        .iter()
        .find(|f| f["checkName"] == UNREADABLE)
        .unwrap_or_else(|| panic!("no unreadable-input finding: {findings:?}"));
    assert!(
        broken.to_string().contains("broken.pem"),
        "the finding names the file: {broken}"
    );

    // Suppressed for a day of the service clock, then back.
    api.call(
        M::POST,
        "/audit/suppressions/create",
        Some(json!({ "checkName": EXPIRING, "resourceIdentifier": rid, "expirationDate": now + 86_400 })),
    )
    .await;
    let visible = |fs: &[Value]| fs.iter().filter(|f| f["checkName"] == EXPIRING).count();
    assert_eq!(
        visible(&api.findings(json!({ "taskId": task_id })).await),
        0
    );
    let all = api
        .findings(json!({ "taskId": task_id, "listSuppressedFindings": true }))
        .await;
    assert!(
        all.iter()
            .any(|f| f["checkName"] == EXPIRING && f["isSuppressed"] == true)
    );
    api.advance(86_400 + 60).await;
    assert_eq!(
        visible(&api.findings(json!({ "taskId": task_id })).await),
        1
    );

    // The directory certificate through the registry API: described from its file, and a
    // status change kept as an override that the next audit sees (an inactive certificate is
    // not reported as expiring).
    let path = format!("/certificates/{cert_id}");
    let d = api.call(M::GET, &path, None).await;
    assert_eq!(d["certificateDescription"]["status"], "ACTIVE");
    assert!(
        d["certificateDescription"]["source"]
            .as_str()
            .expect("source")
            .ends_with("expired.pem:1")
    );
    assert!(
        d["certificateDescription"]["certificatePem"]
            .as_str()
            .expect("pem")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    // ListCertificates shows it too, beside the API-registered ones.
    let listed = api.call(M::GET, "/certificates", None).await;
    assert!(
        listed["certificates"]
            .as_array()
            .expect("certificates")
            .iter()
            .any(|c| c["certificateId"] == cert_id.as_str() && c["status"] == "ACTIVE"),
        "{listed}"
    );
    api.call(M::PUT, &format!("{path}?newStatus=INACTIVE"), None)
        .await;
    assert_eq!(
        api.call(M::GET, &path, None).await["certificateDescription"]["status"],
        "INACTIVE"
    );
    let again = api
        .call(
            M::POST,
            "/audit/tasks",
            Some(json!({ "targetCheckNames": [EXPIRING] })),
        )
        .await["taskId"]
        .as_str()
        .expect("taskId")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let task = loop {
        let t = api
            .call(M::GET, &format!("/audit/tasks/{again}"), None)
            .await;
        if t["taskStatus"] != "IN_PROGRESS" {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "the on-demand task did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        task["auditDetails"][EXPIRING]["nonCompliantResourcesCount"], 0,
        "{task}"
    );
}

#[test]
fn the_cli_prints_a_findings_table_and_exits_2_when_something_is_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_id = fleet(dir.path(), false);
    let config = dir.path().join("audit.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_thingward"))
        .args(["audit", "--config"])
        .arg(&config)
        .args(["--checks", &format!("{EXPIRING},{UNREADABLE}")])
        .env("THINGWARD_LOG", "warn")
        .output()
        .expect("run thingward audit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "stdout: {stdout}");
    assert!(stdout.contains("SEVERITY"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.contains(EXPIRING) && l.contains(&cert_id))
        .unwrap_or_else(|| panic!("no row for the expired certificate: {stdout}"));
    assert!(
        row.starts_with("MEDIUM")
            || row.starts_with("HIGH")
            || row.starts_with("LOW")
            || row.starts_with("CRITICAL"),
        "{row}"
    );
    assert!(stdout.contains("1 of 1"), "summary counts: {stdout}");

    // Without the expired certificate: compliant, exit 0.
    std::fs::remove_file(dir.path().join("devices/expired.pem")).expect("rm");
    let out = Command::new(env!("CARGO_BIN_EXE_thingward"))
        .args(["audit", "--config"])
        .arg(&config)
        .args(["--checks", EXPIRING])
        .output()
        .expect("run thingward audit");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}");
    assert!(stdout.contains("No findings."), "{stdout}");
    // A config that does not parse is an error (exit 1) naming the file.
    std::fs::write(&config, "device_certs = 1\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_thingward"))
        .args(["audit", "--config"])
        .arg(&config)
        .output()
        .expect("run thingward audit");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("audit.toml"));
}
