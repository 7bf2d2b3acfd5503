//! Test fixtures: a real PKI made with rcgen (roots, intermediates, device certificates, CRLs),
//! weak certificates made with the openssl CLI, and one-check runners.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
    date_time_ymd,
};
use thingward_audit::{
    AuditInput, AuditSettings, CertRecord, CertStatus, CheckName, CheckReport, CrlRecord, Finding,
    cert_id,
};

/// A CA that can sign.
pub(crate) type Ca = CertifiedIssuer<'static, KeyPair>;

/// Epoch ms of a UTC date.
pub(crate) fn ms(y: i32, m: u32, d: u32) -> i64 {
    chrono::NaiveDate::from_ymd_opt(y, m, d)
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("time")
        .and_utc()
        .timestamp_millis()
}

/// "Now" of every test: 2030-01-01.
pub(crate) fn settings() -> AuditSettings {
    AuditSettings {
        now_ms: ms(2030, 1, 1),
        ..AuditSettings::default()
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2040, 1, 1);
    p
}

/// A self-signed root CA.
pub(crate) fn root(cn: &str) -> Ca {
    CertifiedIssuer::self_signed(ca_params(cn), KeyPair::generate().expect("key")).expect("root")
}

/// A root with a chosen validity.
pub(crate) fn root_valid(cn: &str, from: (i32, u8, u8), to: (i32, u8, u8)) -> Ca {
    let mut p = ca_params(cn);
    p.not_before = date_time_ymd(from.0, from.1, from.2);
    p.not_after = date_time_ymd(to.0, to.1, to.2);
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("root")
}

/// An intermediate CA with a serial number, signed by `issuer`.
pub(crate) fn intermediate(cn: &str, serial: u64, issuer: &Ca) -> Ca {
    let mut p = ca_params(cn);
    p.serial_number = Some(SerialNumber::from(serial));
    CertifiedIssuer::signed_by(p, KeyPair::generate().expect("key"), issuer).expect("intermediate")
}

/// A device certificate (CN, serial, validity) signed by `issuer`; DER.
pub(crate) fn device(
    cn: &str,
    serial: u64,
    issuer: &Ca,
    from: (i32, u8, u8),
    to: (i32, u8, u8),
) -> Vec<u8> {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serial_number = Some(SerialNumber::from(serial));
    p.not_before = date_time_ymd(from.0, from.1, from.2);
    p.not_after = date_time_ymd(to.0, to.1, to.2);
    let key = KeyPair::generate().expect("key");
    p.signed_by(&key, issuer).expect("device").der().to_vec()
}

/// A healthy device certificate: valid 2029-06-01 .. 2032-01-01.
pub(crate) fn fine_device(cn: &str, serial: u64, issuer: &Ca) -> Vec<u8> {
    device(cn, serial, issuer, (2029, 6, 1), (2032, 1, 1))
}

/// A CRL by `issuer` revoking `serials`; DER.
pub(crate) fn crl(issuer: &Ca, serials: &[u64]) -> Vec<u8> {
    let params = CertificateRevocationListParams {
        this_update: date_time_ymd(2029, 12, 1),
        next_update: date_time_ymd(2030, 2, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|&s| RevokedCertParams {
                serial_number: SerialNumber::from(s),
                revocation_time: date_time_ymd(2029, 12, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(issuer).expect("crl").der().to_vec()
}

/// A certificate record.
pub(crate) fn record(der: Vec<u8>, status: CertStatus, source: &str) -> CertRecord {
    CertRecord {
        id: cert_id(&der),
        der,
        status,
        source: source.to_owned(),
        things: Vec::new(),
        created_ms: ms(2029, 6, 1),
    }
}

pub(crate) fn active(der: Vec<u8>, source: &str) -> CertRecord {
    record(der, CertStatus::Active, source)
}

pub(crate) fn ca_record(ca: &Ca, source: &str) -> CertRecord {
    active(ca.der().to_vec(), source)
}

pub(crate) fn crl_record(der: Vec<u8>, source: &str) -> CrlRecord {
    CrlRecord {
        der,
        source: source.to_owned(),
    }
}

/// Runs one check with `settings()`.
pub(crate) fn run_check(input: &AuditInput, check: CheckName) -> CheckReport {
    run_check_with(input, &settings(), check)
}

pub(crate) fn run_check_with(
    input: &AuditInput,
    settings: &AuditSettings,
    check: CheckName,
) -> CheckReport {
    let mut reports =
        thingward_audit::run(input, settings, &[check], &|_| {}, &AtomicBool::new(false));
    let report = reports.pop().expect("one report");
    assert_eq!(report.check, check);
    assert_eq!(report.failed, None, "{check} failed");
    assert!(!report.canceled);
    for f in &report.findings {
        assert_eq!(f.check_name, check);
        assert_eq!(f.severity, check.info().severity);
        assert!(
            check
                .info()
                .reason_codes
                .contains(&f.reason_for_non_compliance_code.as_str()),
            "{check}: unexpected code {}",
            f.reason_for_non_compliance_code
        );
    }
    report
}

/// Device certificate ids of findings.
pub(crate) fn device_ids(findings: &[Finding]) -> Vec<String> {
    let mut ids: Vec<String> = findings
        .iter()
        .filter_map(|f| {
            f.non_compliant_resource
                .resource_identifier
                .device_certificate_id
                .clone()
        })
        .collect();
    ids.sort();
    ids
}

pub(crate) fn codes(findings: &[Finding]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f.reason_for_non_compliance_code.as_str())
        .collect()
}

/// `source` of findings' resource identifiers.
pub(crate) fn sources(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter_map(|f| f.non_compliant_resource.resource_identifier.source.clone())
        .collect()
}

/// Runs the openssl CLI in `dir`; panics with its stderr on failure.
pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate made by openssl: `key_args` generate `key.pem` (e.g. `genrsa -out key.pem
/// 1024`), then a self-signed CA (`ca.pem`) signs a device certificate with `digest`. Returns
/// (device DER, CA DER).
pub(crate) fn openssl_device(dir: &Path, key_args: &[&str], digest: &str) -> (Vec<u8>, Vec<u8>) {
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=openssl test CA",
            "-days",
            "7300",
            "-sha256",
            "-out",
            "ca.pem",
        ],
    );
    openssl(dir, key_args);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "key.pem",
            "-subj",
            "/CN=weak-device",
            "-out",
            "dev.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "dev.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "4242",
            "-days",
            "7300",
            &format!("-{digest}"),
            "-out",
            "dev.pem",
        ],
    );
    let der = |name: &str| {
        let text = std::fs::read_to_string(dir.join(name)).expect("read pem");
        let bundle = thingward_audit::parse_pem_bundle(&text, name);
        assert!(bundle.problems.is_empty(), "{:?}", bundle.problems);
        bundle.certs.into_iter().next().expect("one cert").0
    };
    (der("dev.pem"), der("ca.pem"))
}
