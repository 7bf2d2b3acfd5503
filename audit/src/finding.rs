//! Findings: what a check reports about one non-compliant resource (aws-api.md §4.2, without
//! the ids and times the service adds when it stores them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::{CheckName, ResourceType, Severity};

/// A policy version (`PolicyVersionIdentifier`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyVersionIdentifier {
    /// Policy name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// Version id (digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version_id: Option<String>,
}

/// An issuer certificate (`IssuerCertificateIdentifier`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuerCertificateIdentifier {
    /// Subject of the issuer certificate (RFC 4514 string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_certificate_subject: Option<String>,
    /// Certificate id (SHA-256 of the DER) of the issuer certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_id: Option<String>,
    /// Serial number, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_certificate_serial_number: Option<String>,
}

/// Which resource a finding is about (`ResourceIdentifier`): only the members relevant to the
/// resource type are set. Eq + Ord + Hash: suppressions are keyed by (check, identifier).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceIdentifier {
    /// Device certificate id (64 hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_certificate_id: Option<String>,
    /// CA certificate id (64 hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_id: Option<String>,
    /// Cognito identity pool id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognito_identity_pool_id: Option<String>,
    /// MQTT client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Policy version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version_identifier: Option<PolicyVersionIdentifier>,
    /// Account id (12 digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// IAM role ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_role_arn: Option<String>,
    /// Role alias ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_alias_arn: Option<String>,
    /// Issuer certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_certificate_identifier: Option<IssuerCertificateIdentifier>,
    /// Device certificate ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_certificate_arn: Option<String>,
    /// thingward: the broker configuration (or ACL / password) file a finding is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_config_file: Option<String>,
    /// thingward: where the resource came from, `path:line` or `api:<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A resource (`NonCompliantResource` / `RelatedResource`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Resource type.
    pub resource_type: ResourceType,
    /// Resource identifier.
    pub resource_identifier: ResourceIdentifier,
    /// Free-form details (file, line, subject, expiry, …).
    #[serde(default)]
    pub additional_info: BTreeMap<String, String>,
}

impl Resource {
    /// A resource with no additional info.
    pub fn new(resource_type: ResourceType, resource_identifier: ResourceIdentifier) -> Resource {
        Resource {
            resource_type,
            resource_identifier,
            additional_info: BTreeMap::new(),
        }
    }

    /// Adds one `additionalInfo` entry.
    #[must_use]
    pub fn with_info(mut self, key: &str, value: impl Into<String>) -> Resource {
        self.additional_info.insert(key.to_owned(), value.into());
        self
    }
}

/// One non-compliant resource found by a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The check.
    pub check_name: CheckName,
    /// Severity (the check's).
    pub severity: Severity,
    /// The resource.
    pub non_compliant_resource: Resource,
    /// Related resources (e.g. the revoked issuer).
    #[serde(default)]
    pub related_resources: Vec<Resource>,
    /// Human-readable reason.
    pub reason_for_non_compliance: String,
    /// Reason code (one of the check's `reason_codes`).
    pub reason_for_non_compliance_code: String,
}

impl Finding {
    /// A finding with the check's catalog severity and no related resources.
    pub fn new(
        check: CheckName,
        resource: Resource,
        code: &str,
        reason: impl Into<String>,
    ) -> Finding {
        Finding {
            check_name: check,
            severity: check.info().severity,
            non_compliant_resource: resource,
            related_resources: Vec::new(),
            reason_for_non_compliance: reason.into(),
            reason_for_non_compliance_code: code.to_owned(),
        }
    }

    /// Adds a related resource.
    #[must_use]
    pub fn with_related(mut self, resource: Resource) -> Finding {
        self.related_resources.push(resource);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_serializes_with_aws_member_names_and_skips_none() {
        let id = ResourceIdentifier {
            policy_version_identifier: Some(PolicyVersionIdentifier {
                policy_name: Some("p".into()),
                policy_version_id: Some("1".into()),
            }),
            source: Some("api:p".into()),
            ..Default::default()
        };
        let f = Finding::new(
            CheckName::IotPolicyOverlyPermissiveCheck,
            Resource::new(ResourceType::IotPolicy, id).with_info("statement", "0"),
            "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
            "broad",
        );
        let v = serde_json::to_value(&f).expect("serialize");
        assert_eq!(v["checkName"], "IOT_POLICY_OVERLY_PERMISSIVE_CHECK");
        assert_eq!(v["severity"], "CRITICAL");
        assert_eq!(v["nonCompliantResource"]["resourceType"], "IOT_POLICY");
        let rid = &v["nonCompliantResource"]["resourceIdentifier"];
        assert_eq!(rid["policyVersionIdentifier"]["policyName"], "p");
        assert_eq!(rid["source"], "api:p");
        assert!(rid.get("deviceCertificateId").is_none());
        assert_eq!(
            v["nonCompliantResource"]["additionalInfo"]["statement"],
            "0"
        );
        let back: Finding = serde_json::from_value(v).expect("deserialize");
        assert_eq!(back, f);
    }
}
