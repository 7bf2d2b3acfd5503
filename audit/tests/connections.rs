//! Connection-log checks: conflicting client ids and shared device certificates, over
//! tests/fixtures/logs/ (synthetic logs in Mosquitto's format and one captured from a real
//! Mosquitto 2.0.11).

use thingward_audit::check::reason;
use thingward_audit::{AuditInput, AuditSettings, CertStatus, CheckName, ResourceType, TextSource};

use crate::support::*;

fn log(name: &str) -> TextSource {
    let path = format!("{}/tests/fixtures/logs/{name}", env!("CARGO_MANIFEST_DIR"));
    TextSource {
        text: std::fs::read_to_string(&path).expect("fixture"),
        path,
    }
}

fn client_ids(r: &thingward_audit::CheckReport) -> Vec<String> {
    r.findings
        .iter()
        .map(|f| {
            assert_eq!(
                f.non_compliant_resource.resource_type,
                ResourceType::ClientId
            );
            f.non_compliant_resource
                .resource_identifier
                .client_id
                .clone()
                .expect("client id")
        })
        .collect()
}

#[test]
fn conflicting_client_ids_from_other_addresses_or_repeated_takeovers() {
    for name in ["conflicting.log", "conflicting-iso.log"] {
        let input = AuditInput {
            connection_log: Some(log(name)),
            ..Default::default()
        };
        let r = run_check(&input, CheckName::ConflictingClientIdsCheck);
        // sensor-1: taken over from another IP; sensor-3: ping-pong; sensor-2: one reconnect
        // from its own address; sensor-4: outside the 31-day look-back.
        assert_eq!(client_ids(&r), vec!["sensor-1", "sensor-3"], "{name}");
        assert_eq!(
            r.total_resources, 3,
            "{name}: client ids connected in the window"
        );
        let f = &r.findings[0];
        assert_eq!(
            f.reason_for_non_compliance_code,
            reason::DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS
        );
        assert_eq!(
            f.non_compliant_resource.additional_info["addresses"],
            "10.0.0.5:40000,10.0.0.9:41000"
        );
        assert!(
            f.non_compliant_resource.additional_info["source"].ends_with(&format!("{name}:11"))
        );
    }
}

#[test]
fn look_back_window_is_configurable() {
    let input = AuditInput {
        connection_log: Some(log("conflicting.log")),
        ..Default::default()
    };
    let s = AuditSettings {
        connections_since_ms: Some(ms(2029, 10, 1)),
        ..settings()
    };
    let r = run_check_with(&input, &s, CheckName::ConflictingClientIdsCheck);
    assert_eq!(client_ids(&r), vec!["sensor-1", "sensor-3", "sensor-4"]);
    let s = AuditSettings {
        connections_since_ms: Some(ms(2029, 12, 25)),
        ..settings()
    };
    assert!(
        run_check_with(&input, &s, CheckName::ConflictingClientIdsCheck)
            .findings
            .is_empty()
    );
}

#[test]
fn real_mosquitto_takeover_log_is_flagged() {
    // Captured from mosquitto 2.0.11: two mosquitto_sub clients with `-i dup` (the second with
    // a username) kicking each other off on 127.0.0.1.
    let input = AuditInput {
        connection_log: Some(log("mosquitto-2.0.11-takeover.log")),
        ..Default::default()
    };
    let s = AuditSettings {
        now_ms: 1_796_166_100_000,
        ..AuditSettings::default()
    };
    let r = run_check_with(&input, &s, CheckName::ConflictingClientIdsCheck);
    assert_eq!(client_ids(&r), vec!["dup"]);
    assert_eq!(
        r.findings[0].non_compliant_resource.additional_info["takeovers"],
        "2"
    );
}

#[test]
fn shared_certificate_identity_on_overlapping_client_ids() {
    let ca = root("Root");
    let thing1 = fine_device("thing1", 1, &ca);
    let thing2 = fine_device("thing2", 2, &ca);
    let thing3 = fine_device("thing3", 3, &ca);
    let input = AuditInput {
        device_certs: vec![
            active(thing1.clone(), "t1"),
            active(thing2, "t2"),
            active(thing3, "t3"),
        ],
        connection_log: Some(log("shared.log")),
        ..Default::default()
    };
    let r = run_check(&input, CheckName::DeviceCertificateSharedCheck);
    // thing2 reconnected under a new client id after disconnecting; thing3 overlapped before
    // the look-back window.
    assert_eq!(r.total_resources, 3);
    assert_eq!(
        device_ids(&r.findings),
        vec![thingward_audit::cert_id(&thing1)]
    );
    let f = &r.findings[0];
    assert_eq!(
        f.reason_for_non_compliance_code,
        reason::CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES
    );
    assert_eq!(
        f.non_compliant_resource.additional_info["clientIds"],
        "thing1-a,thing1-b"
    );
    assert!(f.non_compliant_resource.additional_info["log"].ends_with("shared.log:9"));

    // An inactive certificate is not reported.
    let mut inactive = input.clone();
    inactive.device_certs[0].status = CertStatus::Inactive;
    assert!(
        run_check(&inactive, CheckName::DeviceCertificateSharedCheck)
            .findings
            .is_empty()
    );
}

#[test]
fn connection_checks_fail_without_a_log() {
    let reports = thingward_audit::run(
        &AuditInput::default(),
        &settings(),
        &[
            CheckName::ConflictingClientIdsCheck,
            CheckName::DeviceCertificateSharedCheck,
        ],
        &|_| {},
        &std::sync::atomic::AtomicBool::new(false),
    );
    assert!(reports.iter().all(|r| {
        r.failed
            .as_deref()
            .is_some_and(|m| m.contains("connection log"))
    }));
}
