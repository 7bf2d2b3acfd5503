//! `run` over every check on a fleet-sized snapshot: 100,000 device certificates signed by one
//! intermediate (a verified CRL revoking 1,000 of them), 10,000 policy documents, a broker
//! config and a 200,000-line connection log.

use std::hint::black_box;
use std::sync::atomic::AtomicBool;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
    date_time_ymd,
};
use thingward_audit::{
    AuditInput, AuditSettings, CertRecord, CertStatus, CheckName, CrlRecord, LoggingSettings,
    PolicyRecord, TextSource, cert_id,
};

/// Input shapes: (device certificates, revoked serials, policies, connection-log lines).
const SHAPES: &[(usize, usize, usize, usize)] = &[(100_000, 1_000, 10_000, 200_000)];

/// Device certificates share a subject key per this many certificates (key generation is not
/// what is measured; every certificate is still parsed and checked on its own).
const CERTS_PER_KEY: usize = 1_000;

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = date_time_ymd(2025, 1, 1);
    p.not_after = date_time_ymd(2040, 1, 1);
    p
}

fn record(der: Vec<u8>, status: CertStatus) -> CertRecord {
    CertRecord {
        id: cert_id(&der),
        der,
        status,
        source: "bench".into(),
        things: vec![],
        created_ms: 0,
    }
}

const POLICIES: [&str; 4] = [
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/${iot:Connection.Thing.ThingName}"},{"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:us-east-1:123456789012:topic/$aws/things/${iot:Connection.Thing.ThingName}/*"}]}"#,
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iot:*","Resource":"*"}}"#,
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/secret/*"},{"Effect":"Deny","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/secret/topic"},{"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/admin/#"}]}"#,
    r#"{"Statement": ["#,
];

fn corpus(devices: usize, revoked: usize, policies: usize, log_lines: usize) -> AuditInput {
    let root =
        CertifiedIssuer::self_signed(ca_params("Bench root"), KeyPair::generate().expect("key"))
            .expect("root");
    let mut ip = ca_params("Bench intermediate");
    ip.serial_number = Some(SerialNumber::from(2u64));
    let int = CertifiedIssuer::signed_by(ip, KeyPair::generate().expect("key"), &root)
        .expect("intermediate");
    let mut device_certs = Vec::with_capacity(devices);
    let mut key = KeyPair::generate().expect("key");
    for i in 0..devices {
        if i % CERTS_PER_KEY == 0 {
            key = KeyPair::generate().expect("key");
        }
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, format!("thing-{i}"));
        p.serial_number = Some(SerialNumber::from(i as u64 + 1));
        p.not_before = date_time_ymd(2028 + (i % 3) as i32, 1, 1);
        p.not_after = date_time_ymd(2030, 1 + (i % 12) as u8, 1);
        let der = p.signed_by(&key, &int).expect("device").der().to_vec();
        device_certs.push(record(der, CertStatus::Active));
    }
    let crl = CertificateRevocationListParams {
        this_update: date_time_ymd(2029, 12, 1),
        next_update: date_time_ymd(2030, 2, 1),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: (0..revoked)
            .map(|i| RevokedCertParams {
                serial_number: SerialNumber::from((i * 97 % devices) as u64 + 1),
                revocation_time: date_time_ymd(2029, 12, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&int)
    .expect("crl");
    let policies = (0..policies)
        .map(|i| PolicyRecord {
            name: format!("policy-{i}"),
            version_id: "1".into(),
            document: POLICIES[i % POLICIES.len()].into(),
            is_default: true,
            source: format!("api:policy-{i}"),
            targets: vec![],
        })
        .collect();
    let base = 1_893_000_000u64;
    let mut log = String::new();
    for i in 0..log_lines / 2 {
        let t = base + i as u64;
        let id = i % 5_000;
        log.push_str(&format!(
            "{t}: New client connected from 10.0.{}.{}:4{:04} as client-{id} (p2, c1, k60, u'thing-{}').\n",
            id / 250,
            id % 250,
            i % 10_000,
            (i * 7) % devices
        ));
        if i % 3 == 0 {
            log.push_str(&format!(
                "{t}: Client client-{id} already connected, closing old connection.\n"
            ));
        } else {
            log.push_str(&format!("{t}: Client client-{id} disconnected.\n"));
        }
    }
    AuditInput {
        device_certs,
        ca_certs: vec![
            record(root.der().to_vec(), CertStatus::Active),
            record(int.der().to_vec(), CertStatus::Active),
        ],
        crls: vec![CrlRecord { der: crl.der().to_vec(), source: "bench.crl".into() }],
        policies,
        broker_config: Some(TextSource {
            path: "bench/mosquitto.conf".into(),
            text: "listener 8883\ncertfile s.pem\nkeyfile s.key\nallow_anonymous true\nlog_dest none\n".into(),
        }),
        connection_log: Some(TextSource { path: "bench/mosquitto.log".into(), text: log }),
        logging: LoggingSettings { thingward_log_level: Some("INFO".into()) },
        problems: vec![],
    }
}

fn bench_run(c: &mut Criterion) {
    let settings = AuditSettings {
        now_ms: 1_893_456_000_000,
        ..AuditSettings::default()
    };
    let mut group = c.benchmark_group("run_all_checks");
    group.sample_size(10);
    for &(devices, revoked, policies, log_lines) in SHAPES {
        let input = corpus(devices, revoked, policies, log_lines);
        let reports = thingward_audit::run(
            &input,
            &settings,
            CheckName::all(),
            &|_| {},
            &AtomicBool::new(false),
        );
        for r in &reports {
            eprintln!(
                "{:<62} resources {:>7} findings {:>6} failed {:?}",
                r.check.as_str(),
                r.total_resources,
                r.findings.len(),
                r.failed
            );
        }
        group.throughput(Throughput::Elements((devices + policies) as u64));
        let id = format!("{devices}certs_{revoked}revoked_{policies}policies_{log_lines}loglines");
        group.bench_with_input(BenchmarkId::from_parameter(id), &input, |b, input| {
            b.iter(|| {
                black_box(thingward_audit::run(
                    input,
                    &settings,
                    CheckName::all(),
                    &|_| {},
                    &AtomicBool::new(false),
                ))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_run);
criterion_main!(benches);
