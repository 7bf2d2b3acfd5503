//! Loaders (PEM bundles, directories of PEM/DER files), AUDIT_INPUT_UNREADABLE for bad input,
//! and `run`'s progress and cancellation.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use thingward_audit::check::reason;
use thingward_audit::{AuditInput, CheckName, InputProblem, Progress, ResourceType};

use crate::support::*;

fn pem(label: &str, der: &[u8]) -> String {
    // Minimal base64 (standard alphabet, padded), 64 columns.
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[test]
fn pem_bundle_reads_certs_and_crls_and_names_bad_blocks_by_line() {
    let ca = root("Root");
    let dev = fine_device("d", 1, &ca);
    let crl_der = crl(&ca, &[1]);
    let text = format!(
        "{}{}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\n!!!notbase64\n-----END CERTIFICATE-----\n{}-----BEGIN CERTIFICATE-----\nAAAA\n",
        pem("CERTIFICATE", ca.der()),
        pem("CERTIFICATE", &dev),
        pem("X509 CRL", &crl_der),
    );
    let lines_before = |needle: usize| text.lines().take(needle).count();
    let b = thingward_audit::parse_pem_bundle(&text, "bundle.pem");
    assert_eq!(b.certs.len(), 2);
    assert_eq!(b.certs[0].0, ca.der().to_vec());
    assert_eq!(b.certs[0].1, "bundle.pem:1");
    assert_eq!(b.certs[1].0, dev);
    assert_eq!(b.crls.len(), 1);
    assert_eq!(b.crls[0].0, crl_der);
    let sources: Vec<&str> = b.problems.iter().map(|p| p.source.as_str()).collect();
    let bad_b64 = text
        .lines()
        .position(|l| l == "!!!notbase64")
        .expect("line");
    let unterminated = text.lines().count() - 1;
    assert_eq!(
        sources,
        vec![
            format!("bundle.pem:{}", lines_before(bad_b64)),
            format!("bundle.pem:{unterminated}")
        ],
        "{:?}",
        b.problems
    );
    assert!(b.problems[1].message.contains("no matching END"));

    // A block cut short by the next BEGIN: the cut block is a problem, the next one is read.
    let cut = format!(
        "-----BEGIN CERTIFICATE-----\nAAAA\n{}",
        pem("CERTIFICATE", &dev)
    );
    let b = thingward_audit::parse_pem_bundle(&cut, "cut.pem");
    assert_eq!(b.certs.len(), 1);
    assert_eq!(b.certs[0].1, "cut.pem:3");
    assert_eq!(b.problems.len(), 1);
    assert_eq!(b.problems[0].source, "cut.pem:1");

    let junk = thingward_audit::parse_pem_bundle("hello\n", "junk.pem");
    assert_eq!(
        junk.problems,
        vec![InputProblem {
            source: "junk.pem:1".into(),
            message: "no PEM blocks found".into()
        }]
    );
}

#[test]
fn load_dir_reads_pem_and_der_files_in_name_order() {
    let ca = root("Root");
    let dev = fine_device("d", 1, &ca);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("b-ca.pem"), pem("CERTIFICATE", ca.der())).expect("write");
    std::fs::write(dir.path().join("a-device.cer"), &dev).expect("write");
    std::fs::write(dir.path().join("c.crl"), crl(&ca, &[1])).expect("write");
    std::fs::write(dir.path().join("d-broken.crt"), b"\x30\x03\x01\x01").expect("write");
    std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
    let b = thingward_audit::load_dir(dir.path()).expect("load");
    assert_eq!(
        b.certs.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
        vec![dev, ca.der().to_vec()]
    );
    assert!(b.certs[0].1.ends_with("a-device.cer:1"));
    assert_eq!(b.crls.len(), 1);
    assert_eq!(b.problems.len(), 1);
    assert!(b.problems[0].source.ends_with("d-broken.crt:1"));
    assert!(thingward_audit::load_dir(&dir.path().join("missing")).is_err());
}

#[test]
fn unreadable_input_check_reports_loader_problems_and_unparseable_certs() {
    let ca = root("Root");
    let input = AuditInput {
        device_certs: vec![active(b"not a certificate".to_vec(), "api")],
        ca_certs: vec![ca_record(&ca, "ca.pem:1")],
        crls: vec![crl_record(b"junk".to_vec(), "x.crl:1")],
        problems: vec![InputProblem {
            source: "certs/bad.pem:3".into(),
            message: "does not decode".into(),
        }],
        ..Default::default()
    };
    let r = run_check(&input, CheckName::AuditInputUnreadableCheck);
    assert_eq!(r.total_resources, 4);
    assert_eq!(
        codes(&r.findings),
        vec![
            reason::INPUT_LOADER_PROBLEM,
            reason::INPUT_UNPARSEABLE,
            reason::INPUT_UNPARSEABLE
        ]
    );
    assert_eq!(
        r.findings[0].non_compliant_resource.resource_type,
        ResourceType::AuditInput
    );
    assert_eq!(
        r.findings[0]
            .non_compliant_resource
            .resource_identifier
            .source
            .as_deref(),
        Some("certs/bad.pem:3")
    );
    assert_eq!(
        r.findings[1].non_compliant_resource.resource_type,
        ResourceType::DeviceCertificate
    );
    // The other checks still run over what parsed.
    let r = run_check(&input, CheckName::CaCertificateExpiringCheck);
    assert_eq!(r.total_resources, 1);

    let clean = AuditInput {
        ca_certs: vec![ca_record(&ca, "ca.pem:1")],
        ..Default::default()
    };
    assert!(
        run_check(&clean, CheckName::AuditInputUnreadableCheck)
            .findings
            .is_empty()
    );
}

#[test]
fn run_reports_progress_per_check_and_stops_on_cancel() {
    let ca = root("Root");
    let input = AuditInput {
        device_certs: (0..600)
            .map(|i| active(fine_device("d", i + 1, &ca), "d"))
            .collect(),
        ..Default::default()
    };
    let events = Mutex::new(Vec::new());
    let checks = [
        CheckName::DeviceCertificateKeyQualityCheck,
        CheckName::LoggingDisabledCheck,
    ];
    let reports = thingward_audit::run(
        &input,
        &settings(),
        &checks,
        &|p| events.lock().expect("lock").push(p),
        &AtomicBool::new(false),
    );
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].total_resources, 600);
    let events = events.into_inner().expect("events");
    assert_eq!(
        events.first(),
        Some(&Progress::CheckStarted(
            CheckName::DeviceCertificateKeyQualityCheck
        ))
    );
    assert!(events.contains(&Progress::Resources {
        check: CheckName::DeviceCertificateKeyQualityCheck,
        done: 600,
        total: 600
    }));
    assert_eq!(
        events.last(),
        Some(&Progress::CheckFinished(CheckName::LoggingDisabledCheck))
    );

    // Cancel from the progress callback after the first check starts: the rest are canceled.
    let cancel = AtomicBool::new(false);
    let reports = thingward_audit::run(
        &input,
        &settings(),
        &checks,
        &|p| {
            if p == Progress::CheckStarted(CheckName::DeviceCertificateKeyQualityCheck) {
                cancel.store(true, Ordering::Relaxed);
            }
        },
        &cancel,
    );
    assert!(
        reports.iter().all(|r| r.canceled && r.findings.is_empty()),
        "{reports:?}"
    );
}

#[test]
fn aws_only_checks_without_resources_are_compliant_and_every_check_runs() {
    let reports = thingward_audit::run(
        &AuditInput::default(),
        &settings(),
        CheckName::all(),
        &|_| {},
        &AtomicBool::new(false),
    );
    for r in &reports {
        if r.check.info().resource_type == ResourceType::CognitoIdentityPool
            || r.check.info().resource_type == ResourceType::RoleAlias
        {
            assert_eq!(
                (r.failed.as_deref(), r.total_resources, r.findings.len()),
                (None, 0, 0),
                "{}",
                r.check
            );
        }
        assert_ne!(r.failed.as_deref(), Some("not implemented"), "{}", r.check);
    }
}
