//! Certificate checks over a real rcgen PKI and openssl-made weak certificates.

use thingward_audit::check::reason;
use thingward_audit::{AuditInput, CertStatus, CheckName, ResourceType};

use crate::support::*;

#[test]
fn device_expiring_check_flags_expiring_and_expired_active_certs_only() {
    let ca = root("Root");
    let fine = fine_device("fine", 1, &ca);
    let expiring = device("expiring", 2, &ca, (2029, 1, 1), (2030, 1, 20));
    let expired = device("expired", 3, &ca, (2028, 1, 1), (2029, 12, 1));
    let expired_inactive = device("expired-inactive", 4, &ca, (2028, 1, 1), (2029, 12, 1));
    let expired_pending = device("expired-pending", 5, &ca, (2028, 1, 1), (2029, 12, 1));
    let input = AuditInput {
        device_certs: vec![
            active(fine, "devs.pem:1"),
            active(expiring.clone(), "devs.pem:20"),
            active(expired.clone(), "devs.pem:40"),
            record(expired_inactive, CertStatus::Inactive, "devs.pem:60"),
            record(
                expired_pending.clone(),
                CertStatus::PendingTransfer,
                "devs.pem:80",
            ),
        ],
        ca_certs: vec![ca_record(&ca, "ca.pem:1")],
        ..Default::default()
    };
    let r = run_check(&input, CheckName::DeviceCertificateExpiringCheck);
    assert_eq!(
        r.total_resources, 4,
        "ACTIVE and PENDING_TRANSFER certificates examined"
    );
    let by_id = |der: &[u8]| {
        r.findings
            .iter()
            .find(|f| {
                f.non_compliant_resource
                    .resource_identifier
                    .device_certificate_id
                    .as_deref()
                    == Some(&thingward_audit::cert_id(der))
            })
            .map(|f| f.reason_for_non_compliance_code.as_str())
    };
    assert_eq!(r.findings.len(), 3);
    assert_eq!(
        by_id(&expiring),
        Some(reason::CERTIFICATE_APPROACHING_EXPIRATION)
    );
    assert_eq!(by_id(&expired), Some(reason::CERTIFICATE_PAST_EXPIRATION));
    assert_eq!(
        by_id(&expired_pending),
        Some(reason::CERTIFICATE_PAST_EXPIRATION)
    );
    let f = &r.findings[0];
    assert_eq!(
        f.non_compliant_resource.resource_type,
        ResourceType::DeviceCertificate
    );
    assert_eq!(
        f.non_compliant_resource.additional_info["source"],
        "devs.pem:20"
    );

    // The window is configurable: with 10 days, the cert expiring in 19 days is fine.
    let mut s = settings();
    s.expiring_days = 10;
    let r = run_check_with(&input, &s, CheckName::DeviceCertificateExpiringCheck);
    assert_eq!(
        codes(&r.findings),
        vec![reason::CERTIFICATE_PAST_EXPIRATION; 2]
    );
}

#[test]
fn ca_expiring_check_flags_expiring_ca_and_passes_long_lived_ca() {
    let short = root_valid("Short root", (2020, 1, 1), (2030, 1, 10));
    let long = root("Long root");
    let input = AuditInput {
        ca_certs: vec![
            ca_record(&short, "short.pem:1"),
            ca_record(&long, "long.pem:1"),
        ],
        ..Default::default()
    };
    let r = run_check(&input, CheckName::CaCertificateExpiringCheck);
    assert_eq!(r.total_resources, 2);
    assert_eq!(r.findings.len(), 1);
    let f = &r.findings[0];
    assert_eq!(
        f.non_compliant_resource.resource_type,
        ResourceType::CaCertificate
    );
    assert_eq!(
        f.non_compliant_resource
            .resource_identifier
            .ca_certificate_id,
        Some(thingward_audit::cert_id(short.der()))
    );
    assert_eq!(
        f.reason_for_non_compliance_code,
        reason::CERTIFICATE_APPROACHING_EXPIRATION
    );
}

#[test]
fn device_age_check_flags_certs_older_than_threshold() {
    let ca = root("Root");
    let old = device("old", 1, &ca, (2028, 6, 1), (2035, 1, 1));
    let young = fine_device("young", 2, &ca);
    let input = AuditInput {
        device_certs: vec![active(old.clone(), "a"), active(young, "b")],
        ..Default::default()
    };
    let r = run_check(&input, CheckName::DeviceCertificateAgeCheck);
    assert_eq!(
        device_ids(&r.findings),
        vec![thingward_audit::cert_id(&old)]
    );
    assert_eq!(
        r.findings[0].reason_for_non_compliance_code,
        reason::CERTIFICATE_PAST_AGE_THRESHOLD
    );
    let mut s = settings();
    s.age_days = 1000;
    assert!(
        run_check_with(&input, &s, CheckName::DeviceCertificateAgeCheck)
            .findings
            .is_empty()
    );
}

#[test]
fn revoked_device_still_active_uses_only_verified_crls() {
    let ca = root("Root");
    let int = intermediate("Intermediate", 100, &ca);
    let revoked_active = fine_device("revoked-active", 7, &int);
    let revoked_inactive = fine_device("revoked-inactive", 8, &int);
    let not_revoked = fine_device("ok", 9, &int);
    // Same name as the intermediate, different key: its CRL must not verify.
    let impostor = root("Intermediate");
    let mut input = AuditInput {
        device_certs: vec![
            active(revoked_active.clone(), "d:1"),
            record(revoked_inactive, CertStatus::Revoked, "d:2"),
            active(not_revoked.clone(), "d:3"),
        ],
        ca_certs: vec![ca_record(&ca, "ca:1"), ca_record(&int, "int:1")],
        crls: vec![crl_record(crl(&int, &[7, 8]), "int.crl:1")],
        ..Default::default()
    };
    let r = run_check(&input, CheckName::RevokedDeviceCertificateStillActiveCheck);
    assert_eq!(r.total_resources, 2);
    assert_eq!(
        device_ids(&r.findings),
        vec![thingward_audit::cert_id(&revoked_active)]
    );
    let f = &r.findings[0];
    assert_eq!(
        f.reason_for_non_compliance_code,
        reason::CERTIFICATE_REVOKED_BY_ISSUER
    );
    assert_eq!(
        f.related_resources[0].resource_type,
        ResourceType::IssuerCertificate
    );
    assert_eq!(f.non_compliant_resource.additional_info["crl"], "int.crl:1");

    // A forged CRL (issuer name right, signature by another key) revokes nothing and is
    // reported as unreadable input.
    input.crls = vec![crl_record(crl(&impostor, &[9]), "forged.crl:1")];
    let r = run_check(&input, CheckName::RevokedDeviceCertificateStillActiveCheck);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let r = run_check(&input, CheckName::AuditInputUnreadableCheck);
    assert_eq!(codes(&r.findings), vec![reason::INPUT_CRL_NOT_VERIFIED]);
    assert_eq!(sources(&r.findings), vec!["forged.crl:1".to_owned()]);
}

#[test]
fn revoked_ca_still_active_flags_intermediate_on_root_crl() {
    let ca = root("Root");
    let revoked = intermediate("Revoked intermediate", 50, &ca);
    let fine = intermediate("Fine intermediate", 51, &ca);
    let mut input = AuditInput {
        ca_certs: vec![
            ca_record(&ca, "ca:1"),
            ca_record(&revoked, "rev:1"),
            ca_record(&fine, "fine:1"),
        ],
        crls: vec![crl_record(crl(&ca, &[50]), "root.crl:1")],
        ..Default::default()
    };
    let r = run_check(&input, CheckName::RevokedCaCertificateStillActiveCheck);
    assert_eq!(r.total_resources, 3);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(
        r.findings[0]
            .non_compliant_resource
            .resource_identifier
            .ca_certificate_id,
        Some(thingward_audit::cert_id(revoked.der()))
    );
    // Deactivated in the registry: compliant.
    input.ca_certs[1].status = CertStatus::Inactive;
    assert!(
        run_check(&input, CheckName::RevokedCaCertificateStillActiveCheck)
            .findings
            .is_empty()
    );
}

#[test]
fn intermediate_ca_revoked_flags_devices_below_it_only() {
    let ca = root("Root");
    let revoked = intermediate("Revoked intermediate", 50, &ca);
    let fine = intermediate("Fine intermediate", 51, &ca);
    let below_revoked = fine_device("below-revoked", 1, &revoked);
    let below_fine = fine_device("below-fine", 2, &fine);
    let input = AuditInput {
        device_certs: vec![active(below_revoked.clone(), "a"), active(below_fine, "b")],
        ca_certs: vec![
            ca_record(&ca, "ca:1"),
            ca_record(&revoked, "rev:1"),
            ca_record(&fine, "fine:1"),
        ],
        crls: vec![crl_record(crl(&ca, &[50]), "root.crl:1")],
        ..Default::default()
    };
    let r = run_check(
        &input,
        CheckName::IntermediateCaRevokedForActiveDeviceCertificatesCheck,
    );
    assert_eq!(r.total_resources, 2);
    assert_eq!(
        device_ids(&r.findings),
        vec![thingward_audit::cert_id(&below_revoked)]
    );
    let related = &r.findings[0].related_resources[0];
    assert_eq!(related.resource_type, ResourceType::IssuerCertificate);
    let issuer = related
        .resource_identifier
        .issuer_certificate_identifier
        .as_ref()
        .expect("issuer id");
    assert_eq!(
        issuer.issuer_certificate_serial_number.as_deref(),
        Some("32")
    );
    assert_eq!(
        issuer.issuer_id,
        Some(thingward_audit::cert_id(revoked.der()))
    );

    // Without the CRL nothing is revoked.
    let clean = AuditInput {
        crls: vec![],
        ..input
    };
    assert!(
        run_check(
            &clean,
            CheckName::IntermediateCaRevokedForActiveDeviceCertificatesCheck
        )
        .findings
        .is_empty()
    );
}

#[test]
fn key_quality_passes_p256_and_flags_rsa_1024_sha1_dsa_and_p192() {
    let ca = root("Root");
    let good = fine_device("good", 1, &ca);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (rsa1024, openssl_ca) = openssl_device(d, &["genrsa", "-out", "key.pem", "1024"], "sha256");
    let (sha1, _) = openssl_device(d, &["genrsa", "-out", "key.pem", "2048"], "sha1");
    let (rsa2048, _) = openssl_device(d, &["genrsa", "-out", "key.pem", "2048"], "sha256");
    openssl(d, &["dsaparam", "-out", "dsa.param", "2048"]);
    let (dsa, _) = openssl_device(d, &["gendsa", "-out", "key.pem", "dsa.param"], "sha256");
    let (p192, _) = openssl_device(
        d,
        &[
            "ecparam",
            "-name",
            "prime192v1",
            "-genkey",
            "-noout",
            "-out",
            "key.pem",
        ],
        "sha256",
    );
    let input = AuditInput {
        device_certs: vec![
            active(good, "good"),
            active(rsa1024.clone(), "rsa1024"),
            active(sha1.clone(), "sha1"),
            active(rsa2048, "rsa2048"),
            active(dsa.clone(), "dsa"),
            active(p192.clone(), "p192"),
        ],
        ca_certs: vec![ca_record(&ca, "ca"), active(openssl_ca, "openssl-ca")],
        ..Default::default()
    };
    let r = run_check(&input, CheckName::DeviceCertificateKeyQualityCheck);
    assert_eq!(r.total_resources, 6);
    let code_of = |der: &[u8]| {
        r.findings
            .iter()
            .find(|f| {
                f.non_compliant_resource
                    .resource_identifier
                    .device_certificate_id
                    .as_deref()
                    == Some(&thingward_audit::cert_id(der))
            })
            .map(|f| f.reason_for_non_compliance_code.clone())
    };
    assert_eq!(r.findings.len(), 4, "{:#?}", r.findings);
    assert_eq!(
        code_of(&rsa1024).as_deref(),
        Some(reason::KEY_RSA_TOO_SHORT)
    );
    assert_eq!(
        code_of(&sha1).as_deref(),
        Some(reason::SIGNATURE_ALGORITHM_WEAK)
    );
    assert_eq!(code_of(&dsa).as_deref(), Some(reason::KEY_DSA));
    assert_eq!(code_of(&p192).as_deref(), Some(reason::KEY_EC_CURVE_WEAK));
    let summary = thingward_audit::summarize(&rsa1024).expect("summary");
    assert_eq!(
        (summary.key_algorithm.as_str(), summary.key_bits),
        ("RSA", 1024)
    );
    assert_eq!(
        thingward_audit::summarize(&sha1)
            .expect("summary")
            .signature_algorithm,
        "ecdsa-with-SHA1"
    );
}

#[test]
fn ca_key_quality_flags_rsa_1024_ca_and_passes_p256_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl(d, &["genrsa", "-out", "weak.key", "1024"]);
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "weak.key",
            "-subj",
            "/CN=weak CA",
            "-days",
            "7300",
            "-sha256",
            "-out",
            "weak.pem",
        ],
    );
    let text = std::fs::read_to_string(d.join("weak.pem")).expect("read");
    let weak = thingward_audit::parse_pem_bundle(&text, "weak.pem")
        .certs
        .remove(0)
        .0;
    let good = root("Good root");
    let input = AuditInput {
        ca_certs: vec![
            active(weak.clone(), "weak.pem:1"),
            ca_record(&good, "good.pem:1"),
        ],
        ..Default::default()
    };
    let r = run_check(&input, CheckName::CaCertificateKeyQualityCheck);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(
        r.findings[0]
            .non_compliant_resource
            .resource_identifier
            .ca_certificate_id,
        Some(thingward_audit::cert_id(&weak))
    );
    assert_eq!(
        r.findings[0].reason_for_non_compliance_code,
        reason::KEY_RSA_TOO_SHORT
    );
}

/// An RSA public key with a ROCA-shaped modulus, for rcgen to put in a certificate.
struct RocaKey(Vec<u8>);

impl rcgen::PublicKeyData for RocaKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

fn der_integer(be: &[u8]) -> Vec<u8> {
    let mut body = be.to_vec();
    if body[0] & 0x80 != 0 {
        body.insert(0, 0);
    }
    let mut out = vec![0x02];
    out.extend(der_len(body.len()));
    out.extend(body);
    out
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 128 {
        vec![n as u8]
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        let mut v = vec![0x80 | bytes.len() as u8];
        v.extend(bytes);
        v
    }
}

#[test]
fn key_quality_detects_roca_fingerprint() {
    use x509_parser::num_bigint::BigUint;
    // The ROCA primes; an RSALib modulus is 65537^c mod M (+ k·M).
    let primes: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    let m = primes.iter().fold(BigUint::from(1u32), |acc, &p| acc * p);
    let k = (BigUint::from(1u32) << 2047u32) / &m + 777u32;
    let modulus = BigUint::from(65537u32).modpow(&BigUint::from(99991u32), &m) + k * &m;
    let mut rsa = der_integer(&modulus.to_bytes_be());
    rsa.extend(der_integer(&[1, 0, 1]));
    let mut key = vec![0x30];
    key.extend(der_len(rsa.len()));
    key.extend(rsa);

    let ca = root("Root");
    let mut p = rcgen::CertificateParams::default();
    p.serial_number = Some(rcgen::SerialNumber::from(5u64));
    let roca = p
        .signed_by(&RocaKey(key), &ca)
        .expect("cert")
        .der()
        .to_vec();
    let input = AuditInput {
        device_certs: vec![
            active(roca.clone(), "roca"),
            active(fine_device("fine", 6, &ca), "fine"),
        ],
        ..Default::default()
    };
    let r = run_check(&input, CheckName::DeviceCertificateKeyQualityCheck);
    assert_eq!(
        device_ids(&r.findings),
        vec![thingward_audit::cert_id(&roca)]
    );
    assert_eq!(
        r.findings[0].reason_for_non_compliance_code,
        reason::KEY_CVE_2017_15361
    );
}
