//! `thingward bench audit`: one StartOnDemandAuditTask over a generated registry, end to end.
//!
//! The corpus: one rcgen root CA and `--certs` ECDSA P-256 device certificates signed by it
//! (`--expired-percent` of them already expired, the rest valid for years), registered ACTIVE in
//! the SQLite registry of a temporary data directory; `--policies` IoT policies, every tenth
//! overly permissive (`iot:*` on `*`), each attached to one certificate. Every certificate is
//! older than 365 days, so DEVICE_CERTIFICATE_AGE_CHECK reports all of them: the run stores a
//! finding per certificate plus the expired and permissive ones. Generation and
//! registration are timed apart. The timed phase is the API's own path: every AWS check plus
//! AUDIT_INPUT_UNREADABLE_CHECK enabled, StartOnDemandAuditTask over HTTP, DescribeAuditTask
//! polled every 50 ms until the task leaves IN_PROGRESS — so it covers loading the registry,
//! running the checks and storing the findings.

use super::Target;
use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use thingward_audit::CheckName;
use thingward_store::{CertKind, CertStatus, CertificateRecord};

/// Options of `thingward bench audit`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AuditBenchArgs {
    /// Device certificates to register.
    #[arg(long, default_value_t = 100_000)]
    certs: usize,
    /// IoT policies to create.
    #[arg(long, default_value_t = 10_000)]
    policies: usize,
    /// Share of the certificates that are already expired, in percent.
    #[arg(long, default_value_t = 5)]
    expired_percent: usize,
}

/// Generates the certificate records (PEM, ids) of the corpus.
fn certificates(args: &AuditBenchArgs) -> anyhow::Result<Vec<CertificateRecord>> {
    let mut root = CertificateParams::default();
    root.distinguished_name = rcgen::DistinguishedName::new();
    root.distinguished_name
        .push(DnType::CommonName, "bench root");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.not_before = date_time_ymd(2020, 1, 1);
    root.not_after = date_time_ymd(2045, 1, 1);
    let ca = CertifiedIssuer::self_signed(root, KeyPair::generate()?)?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::with_capacity(args.certs);
    for i in 0..args.certs {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, format!("device-{i:07}"));
        p.serial_number = Some(rcgen::SerialNumber::from(i as u64 + 1));
        let expired = args.expired_percent > 0 && i % (100 / args.expired_percent.min(100)) == 0;
        p.not_before = date_time_ymd(2020, 1, 1);
        p.not_after = if expired {
            date_time_ymd(2021, 1, 1)
        } else {
            date_time_ymd(2044, 1, 1)
        };
        let cert = p.signed_by(&KeyPair::generate()?, &ca)?;
        out.push(CertificateRecord {
            cert_id: thingward_audit::cert_id(cert.der()),
            kind: CertKind::Device,
            pem: cert.pem(),
            status: CertStatus::Active,
            ca_cert_id: None,
            auto_registration: None,
            created_ms: now,
            modified_ms: now,
        });
    }
    Ok(out)
}

async fn call(
    t: &Target,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut req = t.http.request(method, format!("{}{path}", t.base));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path} failed: {status} {v}");
    }
    Ok(v)
}

/// Runs the bench and prints its report.
///
/// # Errors
/// Start-up failures, a rejected request, a task that fails.
pub(crate) async fn run(args: AuditBenchArgs) -> anyhow::Result<()> {
    let t = Target::start(None).await?;
    println!(
        "thingward bench audit: {} certificates ({}% expired), {} policies",
        args.certs, args.expired_percent, args.policies
    );
    let generating = Instant::now();
    let a = args.clone();
    let certs = tokio::task::spawn_blocking(move || certificates(&a)).await??;
    println!(
        "  generate           {:.2} s",
        generating.elapsed().as_secs_f64()
    );
    let registering = Instant::now();
    let store = std::sync::Arc::clone(t.service.store());
    let policy_count = args.policies;
    let targets: Vec<String> = certs
        .iter()
        .map(|c| format!("arn:aws:iot:us-east-1:000000000000:cert/{}", c.cert_id))
        .collect();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        store.certs_insert_many(&certs).context("registering certificates")?;
        let policies: Vec<(String, String, Vec<String>)> = (0..policy_count)
            .map(|i| {
                let (action, resource) = if i % 10 == 0 {
                    ("iot:*", "*".to_owned())
                } else {
                    ("iot:Publish", format!("arn:aws:iot:us-east-1:000000000000:topic/fleet/${{iot:Connection.Thing.ThingName}}/p{i}"))
                };
                let doc = json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": action, "Resource": resource }] });
                let target = targets.get(i % targets.len().max(1)).cloned().into_iter().collect();
                (format!("policy-{i:05}"), doc.to_string(), target)
            })
            .collect();
        store
            .policies_create_many(&policies, chrono::Utc::now().timestamp_millis())
            .context("creating policies")?;
        Ok(())
    })
    .await??;
    println!(
        "  register (SQLite)  {:.2} s",
        registering.elapsed().as_secs_f64()
    );

    let checks: Vec<&str> = CheckName::all()
        .iter()
        .filter(|c| !c.info().thingward_only || **c == CheckName::AuditInputUnreadableCheck)
        .map(|c| c.as_str())
        .collect();
    let configs: serde_json::Map<String, Value> = checks
        .iter()
        .map(|c| ((*c).to_owned(), json!({ "enabled": true })))
        .collect();
    call(
        &t,
        reqwest::Method::PATCH,
        "/audit/configuration",
        Some(json!({ "auditCheckConfigurations": configs })),
    )
    .await?;
    let auditing = Instant::now();
    let started = call(
        &t,
        reqwest::Method::POST,
        "/audit/tasks",
        Some(json!({ "targetCheckNames": checks })),
    )
    .await?;
    let task_id = started["taskId"].as_str().context("taskId")?.to_owned();
    let task = loop {
        let task = call(
            &t,
            reqwest::Method::GET,
            &format!("/audit/tasks/{task_id}"),
            None,
        )
        .await?;
        if task["taskStatus"] != "IN_PROGRESS" {
            break task;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let secs = auditing.elapsed().as_secs_f64();
    println!(
        "  audit task         {secs:.2} s  ({} checks, status {}, {:.0} certificates/s)",
        checks.len(),
        task["taskStatus"],
        args.certs as f64 / secs
    );
    let mut rows: Vec<(String, Value)> = task["auditDetails"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for (check, d) in rows {
        println!(
            "    {check:<62} {:<24} {} of {}",
            d["checkRunStatus"].as_str().unwrap_or("?"),
            d["nonCompliantResourcesCount"],
            d["totalResourcesCount"]
        );
    }
    t.finish().await
}
