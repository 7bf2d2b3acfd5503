//! Audit through the service: the IoT registry operations (certificates, CA certificates,
//! policies, principals, logging options, CRLs), the account audit configuration, on-demand and
//! scheduled tasks over real rcgen certificates, findings, suppressions on the manual clock,
//! and tasks interrupted by a restart.

use super::*;
use crate::audit::schedule::{AuditAt, run_due};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};

const EXPIRING: &str = "DEVICE_CERTIFICATE_EXPIRING_CHECK";
const AGE: &str = "DEVICE_CERTIFICATE_AGE_CHECK";
const NOT_FOUND: &str = "ResourceNotFoundException";
const EXISTS: &str = "ResourceAlreadyExistsException";

type Ca = CertifiedIssuer<'static, KeyPair>;

fn root(cn: &str) -> Ca {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.not_before = date_time_ymd(2020, 1, 1);
    p.not_after = date_time_ymd(2040, 1, 1);
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("root")
}

/// A device certificate PEM valid from `from` to `to` (years, Jan 1st), signed by `ca`.
fn device_pem(cn: &str, ca: &Ca, from: i32, to: i32) -> String {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = date_time_ymd(from, 1, 1);
    p.not_after = date_time_ymd(to, 1, 1);
    let key = KeyPair::generate().expect("key");
    p.signed_by(&key, ca).expect("device").pem()
}

impl TestApp {
    /// Registers an ACTIVE device certificate without a CA; returns its id.
    async fn register_active(&self, pem: &str) -> String {
        let r = self
            .post(
                "/certificate/register-no-ca",
                json!({ "certificatePem": pem, "status": "ACTIVE" }),
            )
            .await
            .ok();
        r["certificateId"]
            .as_str()
            .expect("certificateId")
            .to_owned()
    }

    /// Enables `checks` in the account audit configuration.
    async fn enable(&self, checks: &[&str]) {
        let configs: serde_json::Map<String, Value> = checks
            .iter()
            .map(|c| ((*c).to_owned(), json!({ "enabled": true })))
            .collect();
        self.patch(
            "/audit/configuration",
            json!({ "auditCheckConfigurations": configs }),
        )
        .await
        .ok();
    }

    /// Waits for a task to leave IN_PROGRESS; returns DescribeAuditTask.
    async fn finished_task(&self, task_id: &str) -> Value {
        for _ in 0..400 {
            let t = self.get(&format!("/audit/tasks/{task_id}")).await.ok();
            if t["taskStatus"] != "IN_PROGRESS" {
                return t;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("audit task {task_id} did not finish");
    }

    /// Starts an on-demand audit of `checks` and waits for it.
    async fn audit_now(&self, checks: &[&str]) -> (String, Value) {
        let id = self
            .post("/audit/tasks", json!({ "targetCheckNames": checks }))
            .await
            .ok()["taskId"]
            .as_str()
            .expect("taskId")
            .to_owned();
        let task = self.finished_task(&id).await;
        (id, task)
    }

    async fn findings(&self, body: Value) -> Value {
        self.post("/audit/findings", body).await.ok()
    }
}

#[tokio::test]
async fn the_first_audit_configuration_must_enable_a_check_and_describe_lists_every_check() {
    let app = TestApp::new();
    app.patch(
        "/audit/configuration",
        json!({ "auditCheckConfigurations": { EXPIRING: { "enabled": false } } }),
    )
    .await
    .invalid("at least one check");
    app.patch(
        "/audit/configuration",
        json!({ "auditCheckConfigurations": { "NO_SUCH_CHECK": { "enabled": true } } }),
    )
    .await
    .invalid("NO_SUCH_CHECK");
    app.patch(
        "/audit/configuration",
        json!({ "auditCheckConfigurations": { AGE: { "enabled": true, "configuration": { "CERT_AGE_THRESHOLD_IN_DAYS": "5" } } } }),
    )
    .await
    .invalid("30..3652");
    app.patch(
        "/audit/configuration",
        json!({ "auditCheckConfigurations": { EXPIRING: { "enabled": true, "configuration": { "CERT_AGE_THRESHOLD_IN_DAYS": "100" } } } }),
    )
    .await
    .invalid("applies to DEVICE_CERTIFICATE_AGE_CHECK only");
    app.patch(
        "/audit/configuration",
        json!({ "roleArn": "arn:aws:iam::123456789012:role/audit", "auditCheckConfigurations": { AGE: { "enabled": true, "configuration": { "CERT_AGE_THRESHOLD_IN_DAYS": "90" } } } }),
    )
    .await
    .ok();
    let d = app.get("/audit/configuration").await.ok();
    let checks = d["auditCheckConfigurations"].as_object().expect("map");
    assert_eq!(checks.len(), thingward_audit::CheckName::all().len());
    for own in [
        "AUDIT_INPUT_UNREADABLE_CHECK",
        "BROKER_ANONYMOUS_ACCESS_CHECK",
    ] {
        assert_eq!(checks[own]["enabled"], false, "{own}");
    }
    assert_eq!(checks[AGE]["enabled"], true);
    assert_eq!(
        checks[AGE]["configuration"]["CERT_AGE_THRESHOLD_IN_DAYS"],
        "90"
    );
    assert_eq!(d["roleArn"], "arn:aws:iam::123456789012:role/audit");
    // Later updates may disable checks; delete resets everything.
    app.enable(&[EXPIRING]).await;
    app.delete("/audit/configuration").await.ok();
    let d = app.get("/audit/configuration").await.ok();
    assert_eq!(d["auditCheckConfigurations"][AGE]["enabled"], false);
    app.delete("/audit/configuration")
        .await
        .error(404, NOT_FOUND);
}

#[tokio::test]
async fn certificates_register_describe_list_update_and_delete() {
    let app = TestApp::new();
    let ca = root("root");
    let pem = device_pem("cam-1", &ca, 2023, 2030);
    let id = app.register_active(&pem).await;
    assert_eq!(id.len(), 64);
    let dup = app
        .post(
            "/certificate/register-no-ca",
            json!({ "certificatePem": pem }),
        )
        .await;
    dup.error(409, EXISTS);
    assert_eq!(dup.body["resourceId"], id.as_str());
    assert!(
        dup.body["resourceArn"]
            .as_str()
            .expect("arn")
            .ends_with(&format!(":cert/{id}"))
    );
    app.post(
        "/certificate/register",
        json!({ "certificatePem": "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n" }),
    )
    .await
    .invalid("certificatePem is not a usable certificate");
    app.post(
        "/certificate/register",
        json!({ "certificatePem": "hello" }),
    )
    .await
    .invalid("no PEM blocks found");
    // With a CA PEM: registered INACTIVE (AWS's default) with the CA's id.
    let second = device_pem("cam-2", &ca, 2023, 2030);
    let r = app
        .post(
            "/certificate/register",
            json!({ "certificatePem": second, "caCertificatePem": ca.pem() }),
        )
        .await
        .ok();
    let id2 = r["certificateId"].as_str().expect("id").to_owned();
    let d = app.get(&format!("/certificates/{id2}")).await.ok();
    let desc = &d["certificateDescription"];
    assert_eq!(desc["status"], "INACTIVE");
    assert_eq!(desc["certificatePem"], second.as_str());
    assert_eq!(desc["validity"]["notAfter"], 1_893_456_000.0);
    assert!(desc["caCertificateId"].as_str().is_some());
    // Paging with marker / pageSize.
    let p1 = app.get("/certificates?pageSize=1").await.ok();
    assert_eq!(p1["certificates"].as_array().expect("list").len(), 1);
    let marker = p1["nextMarker"].as_str().expect("marker");
    let p2 = app
        .get(&format!("/certificates?pageSize=1&marker={marker}"))
        .await
        .ok();
    assert_eq!(p2["certificates"].as_array().expect("list").len(), 1);
    assert!(p2.get("nextMarker").is_none());
    assert_ne!(
        p1["certificates"][0]["certificateId"],
        p2["certificates"][0]["certificateId"]
    );
    // Status changes and deletion rules.
    app.put(&format!("/certificates/{id}?newStatus=BOGUS"), None)
        .await
        .invalid("status must be one of");
    app.delete(&format!("/certificates/{id}"))
        .await
        .error(406, "CertificateStateException");
    app.put(&format!("/certificates/{id}?newStatus=REVOKED"), None)
        .await
        .ok();
    let d = app.get(&format!("/certificates/{id}")).await.ok();
    assert_eq!(d["certificateDescription"]["status"], "REVOKED");
    app.delete(&format!("/certificates/{id}")).await.ok();
    app.get(&format!("/certificates/{id}"))
        .await
        .error(404, NOT_FOUND);
    app.get("/certificates/xyz").await.invalid("64 hexadecimal");
    app.put(
        &format!("/certificates/{}?newStatus=ACTIVE", "a".repeat(64)),
        None,
    )
    .await
    .error(404, NOT_FOUND);
}

#[tokio::test]
async fn ca_certificates_must_be_cas() {
    let app = TestApp::new();
    let ca = root("fleet-root");
    let r = app
        .post(
            "/cacertificate?setAsActive=true&allowAutoRegistration=true",
            json!({ "caCertificate": ca.pem() }),
        )
        .await
        .ok();
    let id = r["certificateId"].as_str().expect("id").to_owned();
    assert!(
        r["certificateArn"]
            .as_str()
            .expect("arn")
            .contains(":cacert/")
    );
    let d = app.get(&format!("/cacertificate/{id}")).await.ok();
    assert_eq!(d["certificateDescription"]["status"], "ACTIVE");
    assert_eq!(
        d["certificateDescription"]["autoRegistrationStatus"],
        "ENABLE"
    );
    assert_eq!(
        app.get("/cacertificates").await.ok()["certificates"]
            .as_array()
            .expect("list")
            .len(),
        1
    );
    app.post(
        "/cacertificate",
        json!({ "caCertificate": device_pem("leaf", &ca, 2023, 2030) }),
    )
    .await
    .invalid("not a CA certificate");
    app.put(&format!("/cacertificate/{id}?newStatus=REVOKED"), None)
        .await
        .invalid("status must be one of ACTIVE, INACTIVE");
    app.put(&format!("/cacertificate/{id}?newStatus=INACTIVE"), None)
        .await
        .ok();
    app.delete(&format!("/cacertificate/{id}")).await.ok();
    app.get(&format!("/cacertificate/{id}"))
        .await
        .error(404, NOT_FOUND);
}

#[tokio::test]
async fn policies_have_versions_a_default_and_targets() {
    let app = TestApp::new();
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#;
    let r = app
        .post("/policies/cam.policy", json!({ "policyDocument": doc }))
        .await
        .ok();
    assert_eq!(r["policyVersionId"], "1");
    app.post("/policies/cam.policy", json!({ "policyDocument": doc }))
        .await
        .error(409, EXISTS);
    app.post("/policies/bad%20name", json!({ "policyDocument": doc }))
        .await
        .invalid("policyName");
    app.post("/policies/p2", json!({ "policyDocument": "not json" }))
        .await
        .invalid("policyDocument is not JSON");
    let v2 = app
        .post(
            "/policies/cam.policy/version?setAsDefault=true",
            json!({ "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }),
        )
        .await
        .ok();
    assert_eq!(v2["policyVersionId"], "2");
    assert_eq!(v2["isDefaultVersion"], true);
    let got = app.get("/policies/cam.policy").await.ok();
    assert_eq!(got["defaultVersionId"], "2");
    app.send(Method::PATCH, "/policies/cam.policy/version/1", None)
        .await
        .ok();
    assert_eq!(
        app.get("/policies/cam.policy").await.ok()["defaultVersionId"],
        "1"
    );
    let v1 = app.get("/policies/cam.policy/version/1").await.ok();
    assert_eq!(v1["isDefaultVersion"], true);
    assert_eq!(v1["policyDocument"], doc);
    app.delete("/policies/cam.policy/version/1")
        .await
        .error(409, "DeleteConflictException");
    for _ in 0..3 {
        app.post(
            "/policies/cam.policy/version",
            json!({ "policyDocument": doc }),
        )
        .await
        .ok();
    }
    app.post(
        "/policies/cam.policy/version",
        json!({ "policyDocument": doc }),
    )
    .await
    .error(409, "VersionsLimitExceededException");
    let versions = app.get("/policies/cam.policy/version").await.ok();
    assert_eq!(
        versions["policyVersions"].as_array().expect("list").len(),
        5
    );
    let target = format!("arn:aws:iot:us-east-1:123456789012:cert/{}", "b".repeat(64));
    app.put(
        "/target-policies/cam.policy",
        Some(json!({ "target": target })),
    )
    .await
    .ok();
    app.put("/target-policies/nope", Some(json!({ "target": target })))
        .await
        .error(404, NOT_FOUND);
    app.delete("/policies/cam.policy")
        .await
        .error(409, "DeleteConflictException");
    app.post("/target-policies/cam.policy", json!({ "target": target }))
        .await
        .ok();
    app.delete("/policies/cam.policy").await.ok();
    assert_eq!(
        app.get("/policies").await.ok()["policies"]
            .as_array()
            .expect("list")
            .len(),
        0
    );
}

#[tokio::test]
async fn thing_principals_attach_through_the_principal_header() {
    let app = TestApp::new();
    app.post("/things/cam", json!({})).await.ok();
    let principal = format!("arn:aws:iot:us-east-1:123456789012:cert/{}", "c".repeat(64));
    let put = |thing: &'static str, p: Option<String>| {
        let mut req = Request::builder()
            .method(Method::PUT)
            .uri(format!("/things/{thing}/principals"));
        if let Some(p) = p {
            req = req.header("x-amzn-principal", p);
        }
        req.body(Body::empty()).expect("request")
    };
    let send = |req| app.router.clone().oneshot(req);
    assert_eq!(
        send(put("cam", Some(principal.clone())))
            .await
            .expect("infallible")
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        send(put("cam", None)).await.expect("infallible").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(put("ghost", Some(principal.clone())))
            .await
            .expect("infallible")
            .status(),
        StatusCode::NOT_FOUND
    );
    let list = app.get("/things/cam/principals").await.ok();
    assert_eq!(list["principals"], json!([principal]));
    assert_eq!(
        app.store.thing_certificates("cam").expect("certs"),
        vec!["c".repeat(64)]
    );
}

#[tokio::test]
async fn logging_options_and_crls_round_trip_and_refuse_bad_input() {
    let app = TestApp::new();
    assert_eq!(
        app.get("/v2LoggingOptions").await.ok()["disableAllLogs"],
        false
    );
    app.post("/v2LoggingOptions", json!({ "defaultLogLevel": "LOUD" }))
        .await
        .invalid("defaultLogLevel");
    app.post(
        "/v2LoggingOptions",
        json!({ "roleArn": "arn:aws:iam::123456789012:role/log", "defaultLogLevel": "WARN" }),
    )
    .await
    .ok();
    assert_eq!(
        app.get("/v2LoggingOptions").await.ok()["defaultLogLevel"],
        "WARN"
    );

    let ca = root("crl-root");
    let crl = rcgen::CertificateRevocationListParams {
        this_update: date_time_ymd(2023, 1, 1),
        next_update: date_time_ymd(2024, 1, 1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca)
    .expect("crl")
    .pem()
    .expect("pem");
    let r = app
        .send_raw(
            Method::PUT,
            "/thingward/v1/crls/root",
            None,
            crl.clone().into_bytes(),
        )
        .await
        .ok();
    assert_eq!(r["created"], true);
    assert_eq!(
        app.get("/thingward/v1/crls/root").await.ok()["crlPem"],
        crl.as_str()
    );
    app.send_raw(
        Method::PUT,
        "/thingward/v1/crls/bad",
        None,
        b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n".to_vec(),
    )
    .await
    .invalid("does not parse");
    assert_eq!(
        app.get("/thingward/v1/crls").await.ok()["crls"]
            .as_array()
            .expect("list")
            .len(),
        1
    );
    app.delete("/thingward/v1/crls/root").await.ok();
    app.get("/thingward/v1/crls/root")
        .await
        .error(404, NOT_FOUND);
}

#[tokio::test]
async fn an_on_demand_audit_finds_an_expired_certificate_and_a_suppression_hides_it_until_it_expires()
 {
    let app = TestApp::new();
    let ca = root("root");
    // The manual clock is 2023-11-14: one expired, one healthy certificate.
    let expired = app
        .register_active(&device_pem("old", &ca, 2020, 2023))
        .await;
    app.register_active(&device_pem("new", &ca, 2023, 2030))
        .await;
    app.post("/audit/tasks", json!({ "targetCheckNames": [EXPIRING] }))
        .await
        .invalid("not enabled");
    app.enable(&[EXPIRING]).await;
    app.post("/audit/tasks", json!({ "targetCheckNames": [] }))
        .await
        .invalid("at least one");
    let (task_id, task) = app.audit_now(&[EXPIRING]).await;
    assert_eq!(task["taskStatus"], "COMPLETED", "{task}");
    assert_eq!(task["taskType"], "ON_DEMAND_AUDIT_TASK");
    let details = &task["auditDetails"][EXPIRING];
    assert_eq!(
        details["checkRunStatus"], "COMPLETED_NON_COMPLIANT",
        "{task}"
    );
    assert_eq!(details["totalResourcesCount"], 2);
    assert_eq!(details["nonCompliantResourcesCount"], 1);
    assert_eq!(details["suppressedNonCompliantResourcesCount"], 0);
    assert_eq!(task["taskStatistics"]["nonCompliantChecks"], 1);
    assert_eq!(task["taskStatistics"]["totalChecks"], 1);
    // Prometheus shows the check's latest result, labelled by check only.
    let metrics = app.raw_get("/metrics", &[]).await;
    let text = metrics
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let text = String::from_utf8(text.to_vec()).expect("utf-8");
    for line in [
        format!("thingward_audit_non_compliant_resources{{check=\"{EXPIRING}\"}} 1"),
        format!("thingward_audit_resources{{check=\"{EXPIRING}\"}} 2"),
        format!("thingward_audit_suppressed_non_compliant_resources{{check=\"{EXPIRING}\"}} 0"),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }

    let found = app.findings(json!({ "taskId": task_id })).await;
    let findings = found["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{found}");
    let f = &findings[0];
    assert_eq!(f["checkName"], EXPIRING);
    assert_eq!(f["taskId"], task_id.as_str());
    assert_eq!(f["isSuppressed"], false);
    assert_eq!(
        f["reasonForNonComplianceCode"],
        "CERTIFICATE_PAST_EXPIRATION"
    );
    let rid = f["nonCompliantResource"]["resourceIdentifier"].clone();
    assert_eq!(rid["deviceCertificateId"], expired.as_str());
    let finding_id = f["findingId"].as_str().expect("id").to_owned();
    // The finding is announced on the alarm feed, keyed by its id, in the AuditFinding shape.
    let feed = |app: &TestApp| {
        app.store
            .outbox_after(0, 100)
            .expect("outbox")
            .into_iter()
            .filter(|e| e.kind == thingward_store::OutboxKind::AuditFinding)
            .collect::<Vec<_>>()
    };
    let announced = feed(&app);
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0].key, finding_id);
    assert_eq!(announced[0].body["findingId"], finding_id.as_str());
    assert_eq!(announced[0].body["checkName"], EXPIRING);
    assert_eq!(announced[0].body["isSuppressed"], false);
    assert_eq!(announced[0].routing.check_name.as_deref(), Some(EXPIRING));
    let d = app.get(&format!("/audit/findings/{finding_id}")).await.ok();
    assert_eq!(d["finding"]["findingId"], finding_id.as_str());
    assert!(
        app.get(&format!("/audit/relatedResources?findingId={finding_id}"))
            .await
            .ok()["relatedResources"]
            .is_array()
    );
    app.get("/audit/findings/nope").await.error(404, NOT_FOUND);
    app.get("/audit/findings/bad%20id")
        .await
        .invalid("findingId");

    // Suppress it for a day.
    let until = (app.now_ms() / 1000) + 86_400;
    let suppression = json!({ "checkName": EXPIRING, "resourceIdentifier": rid, "expirationDate": until, "description": "replacing it" });
    app.post("/audit/suppressions/create", suppression.clone())
        .await
        .ok();
    app.post("/audit/suppressions/create", suppression)
        .await
        .error(409, EXISTS);
    app.post(
        "/audit/suppressions/create",
        json!({ "checkName": EXPIRING, "resourceIdentifier": rid }),
    )
    .await
    .invalid("expirationDate or suppressIndefinitely");
    app.post(
        "/audit/suppressions/create",
        json!({ "checkName": EXPIRING, "resourceIdentifier": {}, "suppressIndefinitely": true }),
    )
    .await
    .invalid("resourceIdentifier");
    app.post(
        "/audit/suppressions/create",
        json!({ "checkName": EXPIRING, "resourceIdentifier": { "deviceCertificateId": "abc" }, "suppressIndefinitely": true }),
    )
    .await
    .invalid("deviceCertificateId must be 64 hexadecimal");
    app.post(
        "/audit/suppressions/create",
        json!({ "checkName": "NOPE", "resourceIdentifier": rid, "suppressIndefinitely": true }),
    )
    .await
    .invalid("Unknown audit check 'NOPE'");
    let described = app
        .post(
            "/audit/suppressions/describe",
            json!({ "checkName": EXPIRING, "resourceIdentifier": rid }),
        )
        .await
        .ok();
    assert_eq!(described["expirationDate"], until as f64);
    assert_eq!(described["description"], "replacing it");
    assert_eq!(
        app.findings(json!({ "taskId": task_id })).await["findings"]
            .as_array()
            .expect("list")
            .len(),
        0
    );
    let with = app
        .findings(json!({ "taskId": task_id, "listSuppressedFindings": true }))
        .await;
    assert_eq!(with["findings"][0]["isSuppressed"], true);
    // A new audit counts it as suppressed, not non-compliant.
    let (_, again) = app.audit_now(&[EXPIRING]).await;
    let d = &again["auditDetails"][EXPIRING];
    assert_eq!(d["nonCompliantResourcesCount"], 0, "{again}");
    assert_eq!(d["suppressedNonCompliantResourcesCount"], 1);
    assert_eq!(d["checkRunStatus"], "COMPLETED_COMPLIANT");
    // A suppressed finding is stored but not announced.
    assert_eq!(feed(&app).len(), 1);
    // Expired: the finding is back.
    app.advance_secs(86_401);
    let back = app.findings(json!({ "taskId": task_id })).await;
    assert_eq!(back["findings"].as_array().expect("list").len(), 1);
    assert_eq!(
        app.post("/audit/suppressions/list", json!({})).await.ok()["suppressions"]
            .as_array()
            .expect("list")
            .len(),
        1
    );
    app.post(
        "/audit/suppressions/delete",
        json!({ "checkName": EXPIRING, "resourceIdentifier": rid }),
    )
    .await
    .ok();
    app.post(
        "/audit/suppressions/describe",
        json!({ "checkName": EXPIRING, "resourceIdentifier": rid }),
    )
    .await
    .error(404, NOT_FOUND);
}

#[tokio::test]
async fn findings_and_tasks_page_and_filter() {
    let app = TestApp::new();
    let ca = root("root");
    for n in 0..3 {
        app.register_active(&device_pem(&format!("old-{n}"), &ca, 2020, 2023))
            .await;
    }
    app.enable(&[EXPIRING]).await;
    let (task_id, _) = app.audit_now(&[EXPIRING]).await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({ "taskId": task_id, "maxResults": 2 });
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = app.findings(body).await;
        for f in page["findings"].as_array().expect("list") {
            seen.push(f["findingId"].as_str().expect("id").to_owned());
        }
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
        assert!(seen.len() < 10, "paging does not end");
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3);
    app.post("/audit/findings", json!({ "maxResults": 0 }))
        .await
        .invalid("maxResults");
    app.post(
        "/audit/findings",
        json!({ "taskId": task_id, "startTime": 1 }),
    )
    .await
    .invalid("either taskId");
    let by_time = app
        .findings(json!({ "startTime": (app.now_ms() / 1000) - 10, "endTime": (app.now_ms() / 1000) + 10, "checkName": EXPIRING }))
        .await;
    assert_eq!(by_time["findings"].as_array().expect("list").len(), 3);
    let none = app
        .findings(json!({ "checkName": "LOGGING_DISABLED_CHECK" }))
        .await;
    assert_eq!(none["findings"].as_array().expect("list").len(), 0);
    // ListAuditTasks requires its window and filters by type and status.
    app.get("/audit/tasks").await.invalid("startTime");
    let list = app
        .get("/audit/tasks?startTime=2023-11-14T00:00:00Z&endTime=2023-11-15T00:00:00Z&taskType=ON_DEMAND_AUDIT_TASK&taskStatus=COMPLETED")
        .await
        .ok();
    assert_eq!(list["tasks"][0]["taskId"], task_id.as_str());
    let empty = app
        .get("/audit/tasks?startTime=2023-11-14T00:00:00Z&endTime=2023-11-15T00:00:00Z&taskType=SCHEDULED_AUDIT_TASK")
        .await
        .ok();
    assert_eq!(empty["tasks"].as_array().expect("list").len(), 0);
    app.get("/audit/tasks/no-such-task")
        .await
        .error(404, NOT_FOUND);
    app.get("/audit/tasks/bad_id").await.invalid("taskId");
    app.put(&format!("/audit/tasks/{task_id}/cancel"), None)
        .await
        .invalid("only an IN_PROGRESS task");
}

#[tokio::test]
async fn scheduled_audits_validate_run_when_due_and_pin_their_checks() {
    let app = TestApp::new();
    let ca = root("root");
    app.register_active(&device_pem("old", &ca, 2020, 2023))
        .await;
    app.enable(&[EXPIRING, AGE]).await;
    app.post(
        "/audit/scheduledaudits/nightly",
        json!({ "frequency": "HOURLY", "targetCheckNames": [EXPIRING] }),
    )
    .await
    .invalid("frequency");
    app.post(
        "/audit/scheduledaudits/nightly",
        json!({ "frequency": "WEEKLY", "targetCheckNames": [EXPIRING] }),
    )
    .await
    .invalid("dayOfWeek is required");
    app.post(
        "/audit/scheduledaudits/nightly",
        json!({ "frequency": "DAILY", "dayOfMonth": "3", "targetCheckNames": [EXPIRING] }),
    )
    .await
    .invalid("dayOfMonth applies to MONTHLY");
    app.post(
        "/audit/scheduledaudits/bad%20name",
        json!({ "frequency": "DAILY", "targetCheckNames": [EXPIRING] }),
    )
    .await
    .invalid("scheduledAuditName");
    let r = app
        .post(
            "/audit/scheduledaudits/nightly",
            json!({ "frequency": "DAILY", "targetCheckNames": [EXPIRING] }),
        )
        .await
        .ok();
    assert!(
        r["scheduledAuditArn"]
            .as_str()
            .expect("arn")
            .ends_with(":scheduledaudit/nightly")
    );
    app.post(
        "/audit/scheduledaudits/nightly",
        json!({ "frequency": "DAILY", "targetCheckNames": [EXPIRING] }),
    )
    .await
    .error(409, EXISTS);
    app.patch(
        "/audit/configuration",
        json!({ "auditCheckConfigurations": { EXPIRING: { "enabled": false } } }),
    )
    .await
    .invalid("scheduled audit 'nightly'");
    app.patch(
        "/audit/scheduledaudits/nightly",
        json!({ "frequency": "MONTHLY", "dayOfMonth": "LAST" }),
    )
    .await
    .ok();
    let d = app.get("/audit/scheduledaudits/nightly").await.ok();
    assert_eq!(d["frequency"], "MONTHLY");
    assert_eq!(d["dayOfMonth"], "LAST");
    assert_eq!(d["targetCheckNames"], json!([EXPIRING]));
    app.patch(
        "/audit/scheduledaudits/nightly",
        json!({ "frequency": "DAILY" }),
    )
    .await
    .ok();
    assert_eq!(
        app.get("/audit/scheduledaudits").await.ok()["scheduledAudits"][0]["frequency"],
        "DAILY"
    );
    // Not due before the first 03:00 after its creation (created 22:13); due after.
    let at = AuditAt::hm(3, 0);
    assert!(run_due(&app.audit(), at).expect("due").is_empty());
    app.advance_secs(5 * 3600);
    let started = run_due(&app.audit(), at).expect("due");
    assert_eq!(started.len(), 1);
    assert!(
        run_due(&app.audit(), at).expect("due").is_empty(),
        "runs once per slot"
    );
    let task = app.finished_task(&started[0]).await;
    assert_eq!(task["taskType"], "SCHEDULED_AUDIT_TASK");
    assert_eq!(task["scheduledAuditName"], "nightly");
    assert_eq!(
        task["auditDetails"][EXPIRING]["nonCompliantResourcesCount"],
        1
    );
    app.delete("/audit/configuration")
        .await
        .invalid("deleteScheduledAudits");
    app.delete("/audit/scheduledaudits/nightly").await.ok();
    app.delete("/audit/scheduledaudits/nightly")
        .await
        .error(404, NOT_FOUND);
    app.get("/audit/scheduledaudits/nightly")
        .await
        .error(404, NOT_FOUND);
}

#[tokio::test]
async fn a_task_left_in_progress_by_a_restart_is_failed_not_stuck() {
    let app = TestApp::new();
    app.store
        .audit_task_insert(&thingward_store::AuditTaskRecord {
            task_id: "interrupted".into(),
            task_type: "ON_DEMAND_AUDIT_TASK".into(),
            status: thingward_store::TaskStatus::InProgress,
            start_ms: app.now_ms(),
            end_ms: None,
            scheduled_audit_name: None,
            checks: vec![EXPIRING.into()],
            details: [(
                EXPIRING.to_owned(),
                thingward_store::CheckDetails {
                    check_run_status: "IN_PROGRESS".into(),
                    ..Default::default()
                },
            )]
            .into(),
        })
        .expect("insert");
    // CancelAuditTask on a task nothing runs in this process cancels it in place.
    let mut other = app
        .store
        .audit_task_get("interrupted")
        .expect("get")
        .expect("task");
    other.task_id = "orphan".into();
    app.store.audit_task_insert(&other).expect("insert");
    app.put("/audit/tasks/orphan/cancel", None).await.ok();
    let t = app.get("/audit/tasks/orphan").await.ok();
    assert_eq!(t["taskStatus"], "CANCELED");
    assert_eq!(t["taskStatistics"]["canceledChecks"], 1);
    app.put("/audit/tasks/nope/cancel", None)
        .await
        .error(404, NOT_FOUND);
    let app = app.restart();
    app.audit().recover().expect("recover");
    let t = app.get("/audit/tasks/interrupted").await.ok();
    assert_eq!(t["taskStatus"], "FAILED");
    assert_eq!(t["auditDetails"][EXPIRING]["checkRunStatus"], "FAILED");
    assert_eq!(t["taskStatistics"]["failedChecks"], 1);
}
