//! The check catalog: every audit check's wire name, severity, resource type, reason codes,
//! mitigation advice and allowed mitigation actions (aws-api.md §4.1, §4.3), plus thingward's
//! own broker and input checks.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Finding severity (`AuditFindingSeverity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// `CRITICAL`.
    Critical,
    /// `HIGH`.
    High,
    /// `MEDIUM`.
    Medium,
    /// `LOW`.
    Low,
}

impl Severity {
    /// The wire name (`CRITICAL`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
        }
    }
}

/// What a finding's resource is (`ResourceType`), plus thingward's own kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceType {
    /// `DEVICE_CERTIFICATE`.
    DeviceCertificate,
    /// `CA_CERTIFICATE`.
    CaCertificate,
    /// `IOT_POLICY`.
    IotPolicy,
    /// `COGNITO_IDENTITY_POOL`.
    CognitoIdentityPool,
    /// `CLIENT_ID`.
    ClientId,
    /// `ACCOUNT_SETTINGS`.
    AccountSettings,
    /// `ROLE_ALIAS`.
    RoleAlias,
    /// `IAM_ROLE`.
    IamRole,
    /// `ISSUER_CERTIFICATE`.
    IssuerCertificate,
    /// `BROKER_CONFIGURATION` (thingward's own): a Mosquitto config, ACL or password file line.
    BrokerConfiguration,
    /// `AUDIT_INPUT` (thingward's own): a file or API resource the audit could not read
    /// (unparseable PEM, a CRL that does not verify).
    AuditInput,
}

impl ResourceType {
    /// The wire name (`DEVICE_CERTIFICATE`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::DeviceCertificate => "DEVICE_CERTIFICATE",
            ResourceType::CaCertificate => "CA_CERTIFICATE",
            ResourceType::IotPolicy => "IOT_POLICY",
            ResourceType::CognitoIdentityPool => "COGNITO_IDENTITY_POOL",
            ResourceType::ClientId => "CLIENT_ID",
            ResourceType::AccountSettings => "ACCOUNT_SETTINGS",
            ResourceType::RoleAlias => "ROLE_ALIAS",
            ResourceType::IamRole => "IAM_ROLE",
            ResourceType::IssuerCertificate => "ISSUER_CERTIFICATE",
            ResourceType::BrokerConfiguration => "BROKER_CONFIGURATION",
            ResourceType::AuditInput => "AUDIT_INPUT",
        }
    }
}

/// A mitigation action type (`MitigationActionType`, aws-api.md §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ActionType {
    /// `UPDATE_DEVICE_CERTIFICATE`.
    #[serde(rename = "UPDATE_DEVICE_CERTIFICATE")]
    UpdateDeviceCertificate,
    /// `UPDATE_CA_CERTIFICATE`.
    #[serde(rename = "UPDATE_CA_CERTIFICATE")]
    UpdateCaCertificate,
    /// `ADD_THINGS_TO_THING_GROUP`.
    #[serde(rename = "ADD_THINGS_TO_THING_GROUP")]
    AddThingsToThingGroup,
    /// `REPLACE_DEFAULT_POLICY_VERSION`.
    #[serde(rename = "REPLACE_DEFAULT_POLICY_VERSION")]
    ReplaceDefaultPolicyVersion,
    /// `ENABLE_IOT_LOGGING`.
    #[serde(rename = "ENABLE_IOT_LOGGING")]
    EnableIotLogging,
    /// `PUBLISH_FINDING_TO_SNS`.
    #[serde(rename = "PUBLISH_FINDING_TO_SNS")]
    PublishFindingToSns,
}

impl ActionType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::UpdateDeviceCertificate => "UPDATE_DEVICE_CERTIFICATE",
            ActionType::UpdateCaCertificate => "UPDATE_CA_CERTIFICATE",
            ActionType::AddThingsToThingGroup => "ADD_THINGS_TO_THING_GROUP",
            ActionType::ReplaceDefaultPolicyVersion => "REPLACE_DEFAULT_POLICY_VERSION",
            ActionType::EnableIotLogging => "ENABLE_IOT_LOGGING",
            ActionType::PublishFindingToSns => "PUBLISH_FINDING_TO_SNS",
        }
    }

    /// Parses an exact wire name.
    pub fn parse(s: &str) -> Option<ActionType> {
        [
            ActionType::UpdateDeviceCertificate,
            ActionType::UpdateCaCertificate,
            ActionType::AddThingsToThingGroup,
            ActionType::ReplaceDefaultPolicyVersion,
            ActionType::EnableIotLogging,
            ActionType::PublishFindingToSns,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }
}

/// Reason codes emitted by the checks (constants so checks and tests share one spelling).
pub mod reason {
    /// Certificate expires within the window.
    pub const CERTIFICATE_APPROACHING_EXPIRATION: &str = "CERTIFICATE_APPROACHING_EXPIRATION";
    /// Certificate already expired.
    pub const CERTIFICATE_PAST_EXPIRATION: &str = "CERTIFICATE_PAST_EXPIRATION";
    /// ROCA (Infineon RSALib) modulus fingerprint.
    pub const KEY_CVE_2017_15361: &str = "CERTIFICATE_KEY_VULNERABILITY_CVE-2017-15361";
    /// Debian OpenSSL PRNG weak key (catalogued; thingward has no blocklist, never emitted).
    pub const KEY_CVE_2008_0166: &str = "CERTIFICATE_KEY_VULNERABILITY_CVE-2008-0166";
    /// thingward: RSA modulus shorter than 2048 bits.
    pub const KEY_RSA_TOO_SHORT: &str = "CERTIFICATE_KEY_RSA_TOO_SHORT";
    /// thingward: EC key on a curve below P-256 or an unknown curve.
    pub const KEY_EC_CURVE_WEAK: &str = "CERTIFICATE_KEY_EC_CURVE_WEAK";
    /// thingward: DSA key.
    pub const KEY_DSA: &str = "CERTIFICATE_KEY_DSA";
    /// thingward: certificate signed with SHA-1 or MD5.
    pub const SIGNATURE_ALGORITHM_WEAK: &str = "CERTIFICATE_SIGNATURE_ALGORITHM_WEAK";
    /// Certificate on its issuer's CRL.
    pub const CERTIFICATE_REVOKED_BY_ISSUER: &str = "CERTIFICATE_REVOKED_BY_ISSUER";
    /// An intermediate CA in the chain is revoked by its issuer.
    pub const INTERMEDIATE_CA_REVOKED_BY_ISSUER: &str = "INTERMEDIATE_CA_REVOKED_BY_ISSUER";
    /// One certificate used by several devices at once.
    pub const CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES: &str =
        "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES";
    /// Certificate older than the age threshold.
    pub const CERTIFICATE_PAST_AGE_THRESHOLD: &str = "CERTIFICATE_PAST_AGE_THRESHOLD";
    /// Several connections with one client id.
    pub const DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS: &str =
        "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS";
    /// Policy grants broad data-plane access.
    pub const ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS: &str =
        "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS";
    /// MQTT wildcards in a Deny statement.
    pub const POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT: &str =
        "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT";
    /// A specific Deny undone by a wildcard Allow.
    pub const TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS: &str =
        "TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS";
    /// Logging disabled.
    pub const LOGGING_DISABLED: &str = "LOGGING_DISABLED";
    /// thingward: anonymous clients allowed on a non-loopback listener.
    pub const BROKER_ANONYMOUS_ACCESS_ALLOWED: &str = "BROKER_ANONYMOUS_ACCESS_ALLOWED";
    /// thingward: plaintext listener on a non-loopback address.
    pub const BROKER_LISTENER_PLAINTEXT: &str = "BROKER_LISTENER_PLAINTEXT";
    /// thingward: plaintext websockets listener on a non-loopback address.
    pub const BROKER_WEBSOCKETS_PLAINTEXT: &str = "BROKER_WEBSOCKETS_PLAINTEXT";
    /// thingward: TLS listener that does not require client certificates.
    pub const BROKER_CLIENT_CERTIFICATE_NOT_REQUIRED: &str =
        "BROKER_CLIENT_CERTIFICATE_NOT_REQUIRED";
    /// thingward: ACL grants `#` to a user or everyone.
    pub const BROKER_ACL_GRANTS_ALL_TOPICS: &str = "BROKER_ACL_GRANTS_ALL_TOPICS";
    /// thingward: ACL `pattern` without `%c`/`%u`.
    pub const BROKER_ACL_PATTERN_UNSCOPED: &str = "BROKER_ACL_PATTERN_UNSCOPED";
    /// thingward: ACL grants `$SYS/#`.
    pub const BROKER_ACL_GRANTS_SYS: &str = "BROKER_ACL_GRANTS_SYS";
    /// thingward: no `acl_file` while clients authenticate: every client may use every topic.
    pub const BROKER_ACL_MISSING: &str = "BROKER_ACL_MISSING";
    /// thingward: password file entry that is not a `$6$`/`$7$` hash.
    pub const BROKER_PASSWORD_PLAINTEXT: &str = "BROKER_PASSWORD_PLAINTEXT";
    /// thingward: `max_connections -1` (or unset).
    pub const BROKER_CONNECTIONS_UNLIMITED: &str = "BROKER_CONNECTIONS_UNLIMITED";
    /// thingward: `message_size_limit 0` / `max_packet_size 0` (or unset).
    pub const BROKER_MESSAGE_SIZE_UNLIMITED: &str = "BROKER_MESSAGE_SIZE_UNLIMITED";
    /// thingward: a directive Mosquitto 2.0 does not know.
    pub const BROKER_UNKNOWN_DIRECTIVE: &str = "BROKER_UNKNOWN_DIRECTIVE";
    /// thingward: a directive with a missing or invalid value.
    pub const BROKER_INVALID_VALUE: &str = "BROKER_INVALID_VALUE";
    /// thingward: a referenced file (include_dir, acl_file, password_file) could not be read.
    pub const BROKER_FILE_UNREADABLE: &str = "BROKER_FILE_UNREADABLE";
    /// thingward: a PEM block or DER object that does not parse.
    pub const INPUT_UNPARSEABLE: &str = "AUDIT_INPUT_UNPARSEABLE";
    /// thingward: a CRL whose signature verifies against no CA certificate.
    pub const INPUT_CRL_NOT_VERIFIED: &str = "AUDIT_INPUT_CRL_NOT_VERIFIED";
    /// thingward: a policy document that is not JSON or has no Statement.
    pub const INPUT_POLICY_UNREADABLE: &str = "AUDIT_INPUT_POLICY_UNREADABLE";
    /// thingward: a problem the loader reported (`AuditInput::problems`).
    pub const INPUT_LOADER_PROBLEM: &str = "AUDIT_INPUT_LOADER_PROBLEM";
}

macro_rules! check_names {
    ($($variant:ident => $wire:literal),* $(,)?) => {
        /// An audit check (aws-api.md §4.1's 17 names plus thingward's own).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[allow(clippy::enum_variant_names)]
        pub enum CheckName {
            $(
                #[doc = concat!("`", $wire, "`.")]
                $variant,
            )*
        }

        impl CheckName {
            const ALL: &'static [CheckName] = &[$(CheckName::$variant),*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CheckName::$variant => $wire,)*
                }
            }
        }
    };
}

check_names! {
    AuthenticatedCognitoRoleOverlyPermissiveCheck => "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
    UnauthenticatedCognitoRoleOverlyPermissiveCheck => "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK",
    CaCertificateExpiringCheck => "CA_CERTIFICATE_EXPIRING_CHECK",
    CaCertificateKeyQualityCheck => "CA_CERTIFICATE_KEY_QUALITY_CHECK",
    ConflictingClientIdsCheck => "CONFLICTING_CLIENT_IDS_CHECK",
    DeviceCertificateExpiringCheck => "DEVICE_CERTIFICATE_EXPIRING_CHECK",
    DeviceCertificateAgeCheck => "DEVICE_CERTIFICATE_AGE_CHECK",
    DeviceCertificateKeyQualityCheck => "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK",
    DeviceCertificateSharedCheck => "DEVICE_CERTIFICATE_SHARED_CHECK",
    IntermediateCaRevokedForActiveDeviceCertificatesCheck => "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK",
    IotPolicyOverlyPermissiveCheck => "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    IotPolicyPotentialMisconfigurationCheck => "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK",
    IotRoleAliasOverlyPermissiveCheck => "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK",
    IotRoleAliasAllowsAccessToUnusedServicesCheck => "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK",
    LoggingDisabledCheck => "LOGGING_DISABLED_CHECK",
    RevokedCaCertificateStillActiveCheck => "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK",
    RevokedDeviceCertificateStillActiveCheck => "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK",
    BrokerAnonymousAccessCheck => "BROKER_ANONYMOUS_ACCESS_CHECK",
    BrokerListenerWithoutTlsCheck => "BROKER_LISTENER_WITHOUT_TLS_CHECK",
    BrokerClientCertificateNotRequiredCheck => "BROKER_CLIENT_CERTIFICATE_NOT_REQUIRED_CHECK",
    BrokerAclOverlyPermissiveCheck => "BROKER_ACL_OVERLY_PERMISSIVE_CHECK",
    BrokerPlaintextPasswordsCheck => "BROKER_PLAINTEXT_PASSWORDS_CHECK",
    BrokerConnectionLimitsCheck => "BROKER_CONNECTION_LIMITS_CHECK",
    BrokerConfigurationInvalidCheck => "BROKER_CONFIGURATION_INVALID_CHECK",
    AuditInputUnreadableCheck => "AUDIT_INPUT_UNREADABLE_CHECK",
}

impl CheckName {
    /// Parses an exact wire name.
    pub fn parse(s: &str) -> Option<CheckName> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// Every check, AWS's first (in §4.1 order), then thingward's.
    pub fn all() -> &'static [CheckName] {
        Self::ALL
    }

    /// The catalog entry.
    pub fn info(self) -> &'static CheckInfo {
        CATALOG
            .iter()
            .find(|i| i.name == self)
            .unwrap_or(&FALLBACK_INFO)
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of `CheckName::from_str`: the name is not a known check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit check name: {0}")]
pub struct UnknownCheckName(pub String);

impl std::str::FromStr for CheckName {
    type Err = UnknownCheckName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CheckName::parse(s).ok_or_else(|| UnknownCheckName(s.to_owned()))
    }
}

impl Serialize for CheckName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CheckName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CheckName::parse(&s).ok_or_else(|| serde::de::Error::custom(UnknownCheckName(s)))
    }
}

/// A check's catalog entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckInfo {
    /// The check.
    pub name: CheckName,
    /// Severity of its findings.
    pub severity: Severity,
    /// `nonCompliantResource.resourceType` of its findings.
    pub resource_type: ResourceType,
    /// Every reason code the check can emit (the AWS ones first).
    pub reason_codes: &'static [&'static str],
    /// What the check examines.
    pub description: &'static str,
    /// What to do about a finding.
    pub mitigation_advice: &'static str,
    /// Whether a fresh account configuration enables it (AWS: all but the age check).
    pub enabled_by_default: bool,
    /// Mitigation actions that may be applied to its findings (aws-api.md §4.3).
    pub allowed_actions: &'static [ActionType],
    /// A thingward check with no AWS counterpart.
    pub thingward_only: bool,
}

use ActionType::{
    AddThingsToThingGroup, EnableIotLogging, PublishFindingToSns, ReplaceDefaultPolicyVersion,
    UpdateCaCertificate, UpdateDeviceCertificate,
};
use reason as r;

const SNS_ONLY: &[ActionType] = &[PublishFindingToSns];
const CA_ACTIONS: &[ActionType] = &[UpdateCaCertificate, PublishFindingToSns];
const DEVICE_ACTIONS: &[ActionType] = &[
    UpdateDeviceCertificate,
    AddThingsToThingGroup,
    PublishFindingToSns,
];
const EXPIRING_CODES: &[&str] = &[
    r::CERTIFICATE_APPROACHING_EXPIRATION,
    r::CERTIFICATE_PAST_EXPIRATION,
];
const KEY_QUALITY_CODES: &[&str] = &[
    r::KEY_CVE_2017_15361,
    r::KEY_CVE_2008_0166,
    r::KEY_RSA_TOO_SHORT,
    r::KEY_EC_CURVE_WEAK,
    r::KEY_DSA,
    r::SIGNATURE_ALGORITHM_WEAK,
];

const fn aws(
    name: CheckName,
    severity: Severity,
    resource_type: ResourceType,
    reason_codes: &'static [&'static str],
    description: &'static str,
    mitigation_advice: &'static str,
    allowed_actions: &'static [ActionType],
) -> CheckInfo {
    CheckInfo {
        name,
        severity,
        resource_type,
        reason_codes,
        description,
        mitigation_advice,
        enabled_by_default: true,
        allowed_actions,
        thingward_only: false,
    }
}

const fn own(
    name: CheckName,
    severity: Severity,
    resource_type: ResourceType,
    reason_codes: &'static [&'static str],
    description: &'static str,
    mitigation_advice: &'static str,
) -> CheckInfo {
    CheckInfo {
        name,
        severity,
        resource_type,
        reason_codes,
        description,
        mitigation_advice,
        enabled_by_default: true,
        allowed_actions: SNS_ONLY,
        thingward_only: true,
    }
}

const FALLBACK_INFO: CheckInfo = own(
    CheckName::AuditInputUnreadableCheck,
    Severity::Medium,
    ResourceType::AuditInput,
    &[],
    "",
    "",
);

use CheckName as C;
use ResourceType as R;
use Severity::{Critical, High, Low, Medium};

/// The catalog, one entry per `CheckName` (a unit test asserts completeness).
static CATALOG: &[CheckInfo] = &[
    aws(
        C::AuthenticatedCognitoRoleOverlyPermissiveCheck,
        Critical,
        R::CognitoIdentityPool,
        &[
            "ALLOWS_BROAD_ACCESS_TO_IOT_THING_ADMIN_READ_ACTIONS",
            "ALLOWS_ACCESS_TO_IOT_NON_THING_ADMIN_ACTIONS",
            "ALLOWS_ACCESS_TO_IOT_THING_ADMIN_WRITE_ACTIONS",
        ],
        "Policy of the authenticated role of Cognito identity pools. A self-hosted deployment has no \
         Cognito identity pools, so this check runs over zero resources.",
        "Restrict the authenticated role's policy to the thing-scoped data-plane actions the app needs.",
        SNS_ONLY,
    ),
    aws(
        C::UnauthenticatedCognitoRoleOverlyPermissiveCheck,
        Critical,
        R::CognitoIdentityPool,
        &[
            "ALLOWS_ACCESS_TO_IOT_ADMIN_ACTIONS",
            "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS",
        ],
        "Policy of the unauthenticated role of Cognito identity pools. A self-hosted deployment has \
         no Cognito identity pools, so this check runs over zero resources.",
        "Grant unauthenticated identities no admin actions and no broad data-plane access.",
        SNS_ONLY,
    ),
    aws(
        C::CaCertificateExpiringCheck,
        Medium,
        R::CaCertificate,
        EXPIRING_CODES,
        "ACTIVE or PENDING_TRANSFER CA certificates that expire within the configured window \
         (default 30 days) or have already expired.",
        "Register a new CA certificate, re-issue the device certificates it signs, then deactivate \
         the old CA certificate.",
        CA_ACTIONS,
    ),
    aws(
        C::CaCertificateKeyQualityCheck,
        Critical,
        R::CaCertificate,
        KEY_QUALITY_CODES,
        "CA certificate keys: ROCA (CVE-2017-15361) RSA moduli, RSA below 2048 bits, EC below P-256 \
         or on an unknown curve, DSA keys, and SHA-1/MD5 signatures.",
        "Generate a new CA key pair (RSA >= 2048 bits or EC P-256 or stronger, SHA-256 signatures), \
         register the new CA, re-issue device certificates and deactivate the weak CA certificate.",
        CA_ACTIONS,
    ),
    aws(
        C::ConflictingClientIdsCheck,
        High,
        R::ClientId,
        &[r::DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS],
        "Several connections using the same MQTT client id and taking each other over, from the \
         broker's connection log (`Client <id> already connected, closing old connection.`).",
        "Give every device a unique client id (e.g. its thing name) and enforce it with a policy or \
         ACL bound to the client id; check for cloned devices.",
        SNS_ONLY,
    ),
    aws(
        C::DeviceCertificateExpiringCheck,
        Medium,
        R::DeviceCertificate,
        EXPIRING_CODES,
        "ACTIVE or PENDING_TRANSFER device certificates that expire within the configured window \
         (default 30 days) or have already expired.",
        "Issue a new certificate to the device and deactivate the expiring one once the device uses \
         the new one.",
        DEVICE_ACTIONS,
    ),
    CheckInfo {
        enabled_by_default: false,
        ..aws(
            C::DeviceCertificateAgeCheck,
            Low,
            R::DeviceCertificate,
            &[r::CERTIFICATE_PAST_AGE_THRESHOLD],
            "ACTIVE or PENDING_TRANSFER device certificates in use for at least the configured age \
             (default 365 days) since notBefore. Disabled by default.",
            "Rotate long-lived device certificates: issue a new certificate and deactivate the old one.",
            DEVICE_ACTIONS,
        )
    },
    aws(
        C::DeviceCertificateKeyQualityCheck,
        Critical,
        R::DeviceCertificate,
        KEY_QUALITY_CODES,
        "Device certificate keys: ROCA (CVE-2017-15361) RSA moduli, RSA below 2048 bits, EC below \
         P-256 or on an unknown curve, DSA keys, and SHA-1/MD5 signatures.",
        "Generate a new key pair on the device (RSA >= 2048 bits or EC P-256 or stronger), issue a \
         SHA-256-signed certificate for it and deactivate the weak certificate.",
        DEVICE_ACTIONS,
    ),
    aws(
        C::DeviceCertificateSharedCheck,
        Critical,
        R::DeviceCertificate,
        &[r::CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES],
        "One device certificate identity (the subject CN, as Mosquitto's use_identity_as_username \
         logs it) used by several client ids at overlapping times in the connection log.",
        "Give every device its own certificate; deactivate the shared certificate and move the \
         devices using it to a quarantine thing group.",
        DEVICE_ACTIONS,
    ),
    aws(
        C::IntermediateCaRevokedForActiveDeviceCertificatesCheck,
        Critical,
        R::DeviceCertificate,
        &[r::INTERMEDIATE_CA_REVOKED_BY_ISSUER],
        "ACTIVE or PENDING_TRANSFER device certificates whose issuing intermediate CA is on its own \
         issuer's (verified) CRL.",
        "Re-issue the device certificates under a CA that is not revoked and deactivate the old ones.",
        DEVICE_ACTIONS,
    ),
    aws(
        C::IotPolicyOverlyPermissiveCheck,
        Critical,
        R::IotPolicy,
        &[r::ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS],
        "Default versions of IoT policies that allow MQTT connect/publish/subscribe/receive or \
         shadow/job access on wildcard resources without policy variables (cross-thing access).",
        "Scope resources with policy variables such as ${iot:Connection.Thing.ThingName} or \
         ${iot:ClientId} and list actions explicitly instead of iot:*.",
        &[ReplaceDefaultPolicyVersion, PublishFindingToSns],
    ),
    aws(
        C::IotPolicyPotentialMisconfigurationCheck,
        Medium,
        R::IotPolicy,
        &[
            r::POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT,
            r::TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS,
        ],
        "Default versions of IoT policies with MQTT wildcards (+, #) in Deny statements (IoT \
         policies treat them literally) or a specific Deny shadowed by a wildcard Allow.",
        "Use IoT policy wildcards (*) in Deny resources, and deny topic filters as well as topics.",
        SNS_ONLY,
    ),
    aws(
        C::IotRoleAliasOverlyPermissiveCheck,
        Critical,
        R::RoleAlias,
        &[
            "ALLOWS_BROAD_ACCESS_TO_USED_SERVICES",
            "ALLOWS_ACCESS_TO_SECURITY_AUDITING_SERVICES",
            "ALLOWS_BROAD_ACCESS_TO_IOT_THING_ADMIN_READ_ACTIONS",
            "ALLOWS_ACCESS_TO_IOT_NON_THING_ADMIN_ACTIONS",
            "ALLOWS_ACCESS_TO_IOT_THING_ADMIN_WRITE_ACTIONS",
            r::ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS,
        ],
        "IAM role behind a role alias. A self-hosted deployment has no role aliases, so this check \
         runs over zero resources.",
        "Grant the role behind the alias only the services and resources the devices need.",
        SNS_ONLY,
    ),
    aws(
        C::IotRoleAliasAllowsAccessToUnusedServicesCheck,
        Medium,
        R::RoleAlias,
        &["ALLOWS_ACCESS_TO_UNUSED_SERVICES"],
        "Services granted by a role alias's role but unused for a year. A self-hosted deployment \
         has no role aliases, so this check runs over zero resources.",
        "Remove unused services from the role's policy.",
        SNS_ONLY,
    ),
    aws(
        C::LoggingDisabledCheck,
        Low,
        R::AccountSettings,
        &[r::LOGGING_DISABLED],
        "Broker logging (log_dest none, log_type without notice/all, connection_messages false) and \
         thingward's own log level (unset or DISABLED).",
        "Enable connection logging on the broker (log_type notice, connection_messages true) and set \
         thingward's log level to INFO or more verbose.",
        &[EnableIotLogging, PublishFindingToSns],
    ),
    aws(
        C::RevokedCaCertificateStillActiveCheck,
        Critical,
        R::CaCertificate,
        &[r::CERTIFICATE_REVOKED_BY_ISSUER],
        "CA certificates on their issuer's verified CRL but still ACTIVE or PENDING_TRANSFER.",
        "Deactivate the CA certificate and re-issue the device certificates it signed.",
        CA_ACTIONS,
    ),
    aws(
        C::RevokedDeviceCertificateStillActiveCheck,
        Medium,
        R::DeviceCertificate,
        &[r::CERTIFICATE_REVOKED_BY_ISSUER],
        "Device certificates on their CA's verified CRL but still ACTIVE or PENDING_TRANSFER.",
        "Deactivate the revoked certificate; give the device a new one if it is legitimate.",
        DEVICE_ACTIONS,
    ),
    own(
        C::BrokerAnonymousAccessCheck,
        Critical,
        R::BrokerConfiguration,
        &[r::BROKER_ANONYMOUS_ACCESS_ALLOWED],
        "Mosquitto listeners on non-loopback addresses that accept anonymous clients \
         (allow_anonymous true, globally or per listener with per_listener_settings).",
        "Set allow_anonymous false and authenticate clients with certificates \
         (require_certificate true) or a hashed password file.",
    ),
    own(
        C::BrokerListenerWithoutTlsCheck,
        High,
        R::BrokerConfiguration,
        &[r::BROKER_LISTENER_PLAINTEXT, r::BROKER_WEBSOCKETS_PLAINTEXT],
        "Mosquitto listeners (MQTT or websockets) on non-loopback addresses without TLS \
         (certfile and keyfile) or PSK.",
        "Configure certfile/keyfile (and cafile) on every listener reachable from the network, or \
         bind plaintext listeners to 127.0.0.1.",
    ),
    own(
        C::BrokerClientCertificateNotRequiredCheck,
        High,
        R::BrokerConfiguration,
        &[r::BROKER_CLIENT_CERTIFICATE_NOT_REQUIRED],
        "TLS listeners on non-loopback addresses with require_certificate false (the default): \
         devices are not authenticated by certificate.",
        "Set require_certificate true (and use_identity_as_username true) on device listeners.",
    ),
    own(
        C::BrokerAclOverlyPermissiveCheck,
        High,
        R::BrokerConfiguration,
        &[
            r::BROKER_ACL_GRANTS_ALL_TOPICS,
            r::BROKER_ACL_PATTERN_UNSCOPED,
            r::BROKER_ACL_GRANTS_SYS,
            r::BROKER_ACL_MISSING,
        ],
        "The Mosquitto ACL file: topic # grants, pattern lines without %c/%u, $SYS/# grants, and no \
         acl_file at all on a broker that authenticates clients.",
        "Grant each device only its own namespace, e.g. pattern readwrite $aws/things/%u/#.",
    ),
    own(
        C::BrokerPlaintextPasswordsCheck,
        High,
        R::BrokerConfiguration,
        &[r::BROKER_PASSWORD_PLAINTEXT],
        "Entries of the Mosquitto password_file that are not $6$ (SHA-512) or $7$ (PBKDF2) hashes.",
        "Hash the file with mosquitto_passwd -U and rotate the exposed passwords.",
    ),
    own(
        C::BrokerConnectionLimitsCheck,
        Low,
        R::BrokerConfiguration,
        &[
            r::BROKER_CONNECTIONS_UNLIMITED,
            r::BROKER_MESSAGE_SIZE_UNLIMITED,
        ],
        "Mosquitto connection and message limits: max_connections -1, message_size_limit 0 and \
         max_packet_size 0 or unset.",
        "Set max_connections per listener and max_packet_size (e.g. 131072) to bound memory use.",
    ),
    own(
        C::BrokerConfigurationInvalidCheck,
        Medium,
        R::BrokerConfiguration,
        &[
            r::BROKER_UNKNOWN_DIRECTIVE,
            r::BROKER_INVALID_VALUE,
            r::BROKER_FILE_UNREADABLE,
        ],
        "Directives Mosquitto 2.0 does not know, directives with invalid values, and referenced \
         files (include_dir, acl_file, password_file) that cannot be read.",
        "Fix the named line: Mosquitto refuses to start on unknown directives.",
    ),
    own(
        C::AuditInputUnreadableCheck,
        Medium,
        R::AuditInput,
        &[
            r::INPUT_UNPARSEABLE,
            r::INPUT_CRL_NOT_VERIFIED,
            r::INPUT_POLICY_UNREADABLE,
            r::INPUT_LOADER_PROBLEM,
        ],
        "Inputs the audit could not use: unparseable PEM or DER, CRLs whose signature verifies \
         against no CA certificate, policy documents that are not JSON or have no Statement.",
        "Fix or remove the named file or resource; the other checks ran without it.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_covers_every_check_once_with_its_own_name() {
        assert_eq!(CheckName::all().len(), 25);
        assert_eq!(CATALOG.len(), CheckName::all().len());
        for &c in CheckName::all() {
            assert_eq!(CATALOG.iter().filter(|i| i.name == c).count(), 1, "{c}");
            let info = c.info();
            assert_eq!(info.name, c);
            assert!(!info.reason_codes.is_empty(), "{c}");
            assert!(
                !info.description.is_empty() && !info.mitigation_advice.is_empty(),
                "{c}"
            );
            assert!(
                info.allowed_actions
                    .contains(&ActionType::PublishFindingToSns),
                "{c}"
            );
            assert_eq!(CheckName::parse(c.as_str()), Some(c));
        }
        assert_eq!(
            CheckName::all()
                .iter()
                .filter(|c| !c.info().thingward_only)
                .count(),
            17
        );
        assert!(
            !CheckName::DeviceCertificateAgeCheck
                .info()
                .enabled_by_default
        );
        assert_eq!(CheckName::parse("device_certificate_age_check"), None);
    }

    #[test]
    fn wire_names_serialize_as_aws_spells_them() {
        let json = serde_json::to_string(&(
            CheckName::LoggingDisabledCheck,
            ActionType::UpdateCaCertificate,
            ActionType::EnableIotLogging,
            ResourceType::IssuerCertificate,
            Severity::Critical,
        ))
        .expect("serialize");
        assert_eq!(
            json,
            r#"["LOGGING_DISABLED_CHECK","UPDATE_CA_CERTIFICATE","ENABLE_IOT_LOGGING","ISSUER_CERTIFICATE","CRITICAL"]"#
        );
        let back: CheckName =
            serde_json::from_str("\"CONFLICTING_CLIENT_IDS_CHECK\"").expect("deserialize");
        assert_eq!(back, CheckName::ConflictingClientIdsCheck);
        assert!(serde_json::from_str::<CheckName>("\"NOPE\"").is_err());
        for a in [
            ActionType::UpdateDeviceCertificate,
            ActionType::ReplaceDefaultPolicyVersion,
        ] {
            assert_eq!(ActionType::parse(a.as_str()), Some(a));
            assert_eq!(
                serde_json::to_string(&a).expect("ser"),
                format!("\"{}\"", a.as_str())
            );
        }
    }
}
