//! Policy checks over the fixtures in tests/fixtures/policies/.

use thingward_audit::check::reason;
use thingward_audit::{AuditInput, CheckName, PolicyRecord, ResourceType};

use crate::support::*;

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/policies/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).expect("fixture")
}

fn policy(name: &str, version: &str, default: bool) -> PolicyRecord {
    PolicyRecord {
        name: name.to_owned(),
        version_id: version.to_owned(),
        document: fixture(name),
        is_default: default,
        source: format!("api:{name}"),
        targets: vec!["c0ffee".into()],
    }
}

fn input(policies: Vec<PolicyRecord>) -> AuditInput {
    AuditInput {
        policies,
        ..Default::default()
    }
}

/// (policy name, reason code) of each finding.
fn named(r: &thingward_audit::CheckReport) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r
        .findings
        .iter()
        .map(|f| {
            let id = f
                .non_compliant_resource
                .resource_identifier
                .policy_version_identifier
                .as_ref()
                .expect("policy id");
            assert_eq!(
                f.non_compliant_resource.resource_type,
                ResourceType::IotPolicy
            );
            (
                id.policy_name.clone().expect("name"),
                f.reason_for_non_compliance_code.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

fn all() -> AuditInput {
    input(vec![
        policy("overly-permissive", "1", true),
        policy("cross-thing", "3", true),
        policy("misconfigured-deny", "1", true),
        policy("deny-shadowed", "1", true),
        policy("clean", "2", true),
        policy("not-json", "1", true),
        policy("no-statement", "1", true),
    ])
}

#[test]
fn overly_permissive_flags_wildcards_without_policy_variables() {
    let r = run_check(&all(), CheckName::IotPolicyOverlyPermissiveCheck);
    assert_eq!(r.total_resources, 7);
    let code = reason::ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS.to_owned();
    assert_eq!(
        named(&r),
        vec![
            ("cross-thing".to_owned(), code.clone()),
            ("deny-shadowed".to_owned(), code.clone()),
            ("overly-permissive".to_owned(), code),
        ]
    );
    let cross = r
        .findings
        .iter()
        .find(|f| f.reason_for_non_compliance.contains("cross-thing"))
        .expect("cross-thing finding");
    for needle in [
        "client/*",
        "topic/*",
        "topicfilter/#",
        "iot:publish",
        "iot:receive",
    ] {
        assert!(
            cross.reason_for_non_compliance.contains(needle),
            "{needle}: {}",
            cross.reason_for_non_compliance
        );
    }
    let id = cross
        .non_compliant_resource
        .resource_identifier
        .policy_version_identifier
        .as_ref()
        .expect("id");
    assert_eq!(id.policy_version_id.as_deref(), Some("3"));
}

#[test]
fn only_default_versions_are_audited() {
    let r = run_check(
        &input(vec![
            policy("overly-permissive", "1", false),
            policy("clean", "2", true),
        ]),
        CheckName::IotPolicyOverlyPermissiveCheck,
    );
    assert_eq!(r.total_resources, 1);
    assert!(r.findings.is_empty());
}

#[test]
fn misconfiguration_flags_mqtt_wildcards_in_deny_and_shadowed_deny() {
    let r = run_check(&all(), CheckName::IotPolicyPotentialMisconfigurationCheck);
    assert_eq!(
        named(&r),
        vec![
            (
                "deny-shadowed".to_owned(),
                reason::TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS.to_owned()
            ),
            (
                "misconfigured-deny".to_owned(),
                reason::POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT.to_owned()
            ),
        ]
    );
}

#[test]
fn clean_policy_with_policy_variables_passes_both_checks() {
    let clean = input(vec![policy("clean", "2", true)]);
    for check in [
        CheckName::IotPolicyOverlyPermissiveCheck,
        CheckName::IotPolicyPotentialMisconfigurationCheck,
    ] {
        let r = run_check(&clean, check);
        assert_eq!((r.total_resources, r.findings.len()), (1, 0), "{check}");
    }
}

#[test]
fn unreadable_policy_documents_become_input_findings_and_the_rest_continues() {
    let r = run_check(&all(), CheckName::AuditInputUnreadableCheck);
    assert_eq!(
        named(&r),
        vec![
            (
                "no-statement".to_owned(),
                reason::INPUT_POLICY_UNREADABLE.to_owned()
            ),
            (
                "not-json".to_owned(),
                reason::INPUT_POLICY_UNREADABLE.to_owned()
            ),
        ]
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.reason_for_non_compliance.contains("not-json"))
        .expect("finding");
    assert!(
        f.reason_for_non_compliance.contains("version 1"),
        "{}",
        f.reason_for_non_compliance
    );
    assert!(
        f.reason_for_non_compliance.contains("not JSON"),
        "{}",
        f.reason_for_non_compliance
    );
    assert_eq!(
        f.non_compliant_resource.additional_info["source"],
        "api:not-json"
    );
}
