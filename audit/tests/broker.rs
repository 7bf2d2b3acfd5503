//! Mosquitto configuration checks over tests/fixtures/broker/.

use thingward_audit::check::reason;
use thingward_audit::{AuditInput, CheckName, LoggingSettings, ResourceType, TextSource};

use crate::support::*;

const BROKER_CHECKS: &[CheckName] = &[
    CheckName::BrokerAnonymousAccessCheck,
    CheckName::BrokerListenerWithoutTlsCheck,
    CheckName::BrokerClientCertificateNotRequiredCheck,
    CheckName::BrokerAclOverlyPermissiveCheck,
    CheckName::BrokerPlaintextPasswordsCheck,
    CheckName::BrokerConnectionLimitsCheck,
    CheckName::BrokerConfigurationInvalidCheck,
    CheckName::LoggingDisabledCheck,
];

fn dir() -> String {
    format!("{}/tests/fixtures/broker", env!("CARGO_MANIFEST_DIR"))
}

fn config_input(name: &str) -> AuditInput {
    let path = format!("{}/{name}", dir());
    let text = std::fs::read_to_string(&path).expect("fixture");
    AuditInput {
        broker_config: Some(TextSource { path, text }),
        logging: LoggingSettings {
            thingward_log_level: Some("INFO".into()),
        },
        ..Default::default()
    }
}

/// (check, reason code, "file:line" relative to the fixture dir) of every broker finding.
fn findings(name: &str) -> Vec<(CheckName, String, String)> {
    let input = config_input(name);
    let prefix = format!("{}/", dir());
    let mut out = Vec::new();
    for &check in BROKER_CHECKS {
        let r = run_check(&input, check);
        for f in r.findings {
            let source = if check == CheckName::LoggingDisabledCheck {
                assert_eq!(
                    f.non_compliant_resource.resource_type,
                    ResourceType::AccountSettings
                );
                f.reason_for_non_compliance.replace(&prefix, "")
            } else {
                assert_eq!(
                    f.non_compliant_resource.resource_type,
                    ResourceType::BrokerConfiguration
                );
                let id = &f.non_compliant_resource.resource_identifier;
                let file = id.broker_config_file.as_deref().expect("file");
                let source = id.source.as_deref().expect("source");
                assert!(source.starts_with(file), "{source} names {file}");
                assert_eq!(f.non_compliant_resource.additional_info["file"], file);
                source.replace(&prefix, "")
            };
            out.push((check, f.reason_for_non_compliance_code, source));
        }
    }
    out
}

fn expect(name: &str, want: &[(CheckName, &str, &str)]) {
    let got = findings(name);
    let want: Vec<(CheckName, String, String)> = want
        .iter()
        .map(|(c, code, s)| (*c, (*code).to_owned(), (*s).to_owned()))
        .collect();
    assert_eq!(got, want, "{name}");
}

#[test]
fn clean_config_has_no_findings() {
    expect("clean.conf", &[]);
    let r = run_check(
        &config_input("clean.conf"),
        CheckName::BrokerListenerWithoutTlsCheck,
    );
    assert_eq!(r.total_resources, 2, "two listeners examined");
}

#[test]
fn anonymous_access_on_network_listener() {
    expect(
        "anonymous.conf",
        &[(
            CheckName::BrokerAnonymousAccessCheck,
            reason::BROKER_ANONYMOUS_ACCESS_ALLOWED,
            "anonymous.conf:5",
        )],
    );
}

#[test]
fn per_listener_settings_scope_anonymous_access_to_each_listener() {
    // Loopback listener with anonymous: fine; 8883 denies; PSK listener on 10.0.0.1 allows.
    let got = findings("per-listener-anonymous.conf");
    let anonymous: Vec<_> = got
        .iter()
        .filter(|f| f.0 == CheckName::BrokerAnonymousAccessCheck)
        .collect();
    assert_eq!(anonymous.len(), 1, "{got:?}");
    assert_eq!(anonymous[0].2, "per-listener-anonymous.conf:13");
}

#[test]
fn no_listener_means_loopback_only() {
    expect("no-listener.conf", &[]);
}

#[test]
fn plaintext_listeners_on_network_addresses_including_websockets() {
    expect(
        "plaintext.conf",
        &[
            (
                CheckName::BrokerListenerWithoutTlsCheck,
                reason::BROKER_LISTENER_PLAINTEXT,
                "plaintext.conf:6",
            ),
            (
                CheckName::BrokerListenerWithoutTlsCheck,
                reason::BROKER_WEBSOCKETS_PLAINTEXT,
                "plaintext.conf:9",
            ),
        ],
    );
}

#[test]
fn tls_listeners_without_required_client_certificates() {
    expect(
        "no-client-cert.conf",
        &[
            (
                CheckName::BrokerClientCertificateNotRequiredCheck,
                reason::BROKER_CLIENT_CERTIFICATE_NOT_REQUIRED,
                "no-client-cert.conf:4",
            ),
            (
                CheckName::BrokerClientCertificateNotRequiredCheck,
                reason::BROKER_CLIENT_CERTIFICATE_NOT_REQUIRED,
                "no-client-cert.conf:11",
            ),
        ],
    );
}

#[test]
fn permissive_acl_entries_name_the_acl_file_line() {
    expect(
        "acl-permissive.conf",
        &[
            (
                CheckName::BrokerAclOverlyPermissiveCheck,
                reason::BROKER_ACL_GRANTS_ALL_TOPICS,
                "acl-permissive.acl:2",
            ),
            (
                CheckName::BrokerAclOverlyPermissiveCheck,
                reason::BROKER_ACL_PATTERN_UNSCOPED,
                "acl-permissive.acl:3",
            ),
            (
                CheckName::BrokerAclOverlyPermissiveCheck,
                reason::BROKER_ACL_GRANTS_SYS,
                "acl-permissive.acl:4",
            ),
            (
                CheckName::BrokerAclOverlyPermissiveCheck,
                reason::BROKER_ACL_GRANTS_ALL_TOPICS,
                "acl-permissive.acl:11",
            ),
        ],
    );
}

#[test]
fn network_listener_without_acl_file() {
    expect(
        "no-acl.conf",
        &[(
            CheckName::BrokerAclOverlyPermissiveCheck,
            reason::BROKER_ACL_MISSING,
            "no-acl.conf:2",
        )],
    );
}

#[test]
fn plaintext_password_entries() {
    expect(
        "passwords.conf",
        &[
            (
                CheckName::BrokerPlaintextPasswordsCheck,
                reason::BROKER_PASSWORD_PLAINTEXT,
                "passwords.passwd:1",
            ),
            (
                CheckName::BrokerPlaintextPasswordsCheck,
                reason::BROKER_PASSWORD_PLAINTEXT,
                "passwords.passwd:4",
            ),
        ],
    );
    // The finding never contains the password itself.
    let r = run_check(
        &config_input("passwords.conf"),
        CheckName::BrokerPlaintextPasswordsCheck,
    );
    assert_eq!(r.total_resources, 4);
    assert!(
        r.findings
            .iter()
            .all(|f| !format!("{f:?}").contains("hunter2"))
    );
}

#[test]
fn unlimited_connections_and_packet_size() {
    expect(
        "limits.conf",
        &[
            (
                CheckName::BrokerConnectionLimitsCheck,
                reason::BROKER_CONNECTIONS_UNLIMITED,
                "limits.conf:8",
            ),
            (
                CheckName::BrokerConnectionLimitsCheck,
                reason::BROKER_MESSAGE_SIZE_UNLIMITED,
                "limits.conf:2",
            ),
        ],
    );
    expect(
        "unset-limits.conf",
        &[
            (
                CheckName::BrokerConnectionLimitsCheck,
                reason::BROKER_CONNECTIONS_UNLIMITED,
                "unset-limits.conf:2",
            ),
            (
                CheckName::BrokerConnectionLimitsCheck,
                reason::BROKER_MESSAGE_SIZE_UNLIMITED,
                "unset-limits.conf:0",
            ),
        ],
    );
}

#[test]
fn invalid_lines_are_findings_and_the_rest_is_still_audited() {
    expect(
        "invalid.conf",
        &[
            (
                CheckName::BrokerConfigurationInvalidCheck,
                reason::BROKER_UNKNOWN_DIRECTIVE,
                "invalid.conf:1",
            ),
            (
                CheckName::BrokerConfigurationInvalidCheck,
                reason::BROKER_INVALID_VALUE,
                "invalid.conf:2",
            ),
            (
                CheckName::BrokerConfigurationInvalidCheck,
                reason::BROKER_INVALID_VALUE,
                "invalid.conf:3",
            ),
            (
                CheckName::BrokerConfigurationInvalidCheck,
                reason::BROKER_INVALID_VALUE,
                "invalid.conf:4",
            ),
            (
                CheckName::BrokerConfigurationInvalidCheck,
                reason::BROKER_FILE_UNREADABLE,
                "invalid.conf:5",
            ),
            (
                CheckName::BrokerConfigurationInvalidCheck,
                reason::BROKER_FILE_UNREADABLE,
                "invalid.conf:6",
            ),
            (
                CheckName::BrokerConfigurationInvalidCheck,
                reason::BROKER_INVALID_VALUE,
                "invalid.conf:7",
            ),
        ],
    );
}

#[test]
fn broker_checks_fail_without_a_config() {
    let input = AuditInput::default();
    let reports = thingward_audit::run(
        &input,
        &settings(),
        &[CheckName::BrokerAnonymousAccessCheck],
        &|_| {},
        &std::sync::atomic::AtomicBool::new(false),
    );
    assert!(
        reports[0]
            .failed
            .as_deref()
            .is_some_and(|m| m.contains("no broker configuration"))
    );
}

#[test]
fn logging_disabled_by_broker_config_or_thingward_settings() {
    expect(
        "logging-disabled.conf",
        &[(
            CheckName::LoggingDisabledCheck,
            reason::LOGGING_DISABLED,
            "broker log_dest none: the broker logs nothing (logging-disabled.conf:1); broker connection_messages false (logging-disabled.conf:2)",
        )],
    );
    let got = findings("logging-quiet.conf");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].2.contains("omits notice") && got[0].2.contains("logging-quiet.conf:2"),
        "{got:?}"
    );

    // thingward's own logging: unset or DISABLED is non-compliant, INFO is fine.
    let mut input = config_input("clean.conf");
    assert!(
        run_check(&input, CheckName::LoggingDisabledCheck)
            .findings
            .is_empty()
    );
    input.logging.thingward_log_level = Some("DISABLED".into());
    let r = run_check(&input, CheckName::LoggingDisabledCheck);
    assert_eq!(r.total_resources, 1);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(
        r.findings[0]
            .non_compliant_resource
            .resource_identifier
            .account
            .as_deref(),
        Some(settings().account.as_str())
    );
    input.logging.thingward_log_level = None;
    assert_eq!(
        run_check(&input, CheckName::LoggingDisabledCheck)
            .findings
            .len(),
        1
    );
}

#[test]
fn mosquitto_2_1_directives_are_reported_but_still_understood() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v21.conf").display().to_string();
    let text = "listener 8883\ncertfile s.pem\nkeyfile s.key\nrequire_certificate true\nlistener_allow_anonymous true\n";
    let input = AuditInput {
        broker_config: Some(TextSource {
            path: path.clone(),
            text: text.into(),
        }),
        ..Default::default()
    };
    let r = run_check(&input, CheckName::BrokerConfigurationInvalidCheck);
    assert_eq!(codes(&r.findings), vec![reason::BROKER_UNKNOWN_DIRECTIVE]);
    assert!(r.findings[0].reason_for_non_compliance.contains("2.1"));
    assert_eq!(sources(&r.findings), vec![format!("{path}:5")]);
    let r = run_check(&input, CheckName::BrokerAnonymousAccessCheck);
    assert_eq!(sources(&r.findings), vec![format!("{path}:5")]);
}
