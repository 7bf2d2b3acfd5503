//! Mitigation action definitions: the action types (AWS's six plus thingward's
//! `BAN_CLIENT_ON_BROKER`), the `actionParams` wire shape, and its validation into an [`Action`].

use serde::{Deserialize, Serialize};

/// A mitigation action type (`MitigationActionType`, plus thingward's broker ban).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ActionType {
    /// `UPDATE_DEVICE_CERTIFICATE`: deactivate a device certificate.
    UpdateDeviceCertificate,
    /// `UPDATE_CA_CERTIFICATE`: deactivate a CA certificate.
    UpdateCaCertificate,
    /// `ADD_THINGS_TO_THING_GROUP`: put things in (quarantine) groups.
    AddThingsToThingGroup,
    /// `REPLACE_DEFAULT_POLICY_VERSION`: a deny-all default policy version.
    ReplaceDefaultPolicyVersion,
    /// `ENABLE_IOT_LOGGING`: set the account logging level.
    EnableIotLogging,
    /// `PUBLISH_FINDING_TO_SNS`: append the finding or violation to a feed destination.
    PublishFindingToSns,
    /// thingward's own `BAN_CLIENT_ON_BROKER`: ban the thing's client on the MQTT broker.
    BanClientOnBroker,
}

impl ActionType {
    /// Every type, in wire order.
    pub(crate) const ALL: [Self; 7] = [
        Self::UpdateDeviceCertificate,
        Self::UpdateCaCertificate,
        Self::AddThingsToThingGroup,
        Self::ReplaceDefaultPolicyVersion,
        Self::EnableIotLogging,
        Self::PublishFindingToSns,
        Self::BanClientOnBroker,
    ];

    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::UpdateDeviceCertificate => "UPDATE_DEVICE_CERTIFICATE",
            Self::UpdateCaCertificate => "UPDATE_CA_CERTIFICATE",
            Self::AddThingsToThingGroup => "ADD_THINGS_TO_THING_GROUP",
            Self::ReplaceDefaultPolicyVersion => "REPLACE_DEFAULT_POLICY_VERSION",
            Self::EnableIotLogging => "ENABLE_IOT_LOGGING",
            Self::PublishFindingToSns => "PUBLISH_FINDING_TO_SNS",
            Self::BanClientOnBroker => "BAN_CLIENT_ON_BROKER",
        }
    }

    /// The type with this wire name.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether a detect mitigation task may run this type: AWS allows only
    /// `ADD_THINGS_TO_THING_GROUP`; thingward adds deactivating the thing's certificates,
    /// publishing the violation and the broker ban.
    pub(crate) fn applies_to_violations(self) -> bool {
        matches!(
            self,
            Self::AddThingsToThingGroup
                | Self::UpdateDeviceCertificate
                | Self::PublishFindingToSns
                | Self::BanClientOnBroker
        )
    }
}

/// `UpdateDeviceCertificateParams` / `UpdateCACertificateParams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DeactivateParams {
    action: Option<String>,
}

/// `AddThingsToThingGroupParams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AddThingsParams {
    #[serde(default)]
    thing_group_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    override_dynamic_groups: Option<bool>,
}

/// `ReplaceDefaultPolicyVersionParams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ReplacePolicyParams {
    template_name: Option<String>,
}

/// `EnableIoTLoggingParams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LoggingParams {
    role_arn_for_logging: Option<String>,
    log_level: Option<String>,
}

/// `PublishFindingToSnsParams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PublishParams {
    topic_arn: Option<String>,
}

/// Where the broker of a ban is: inline here, or (when absent) the `thingward serve` flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BrokerConnection {
    /// EMQX: the dashboard/API base URL (`http://host:18083`); Mosquitto: `mqtt://host:port`.
    pub(crate) url: String,
    /// EMQX: the API key; Mosquitto: the dynamic-security admin user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    /// EMQX: the API secret; Mosquitto: the admin password. Never returned by Describe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) password: Option<String>,
}

/// thingward's `banClientOnBrokerParams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct BanParams {
    broker_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<BrokerConnection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ban_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// `MitigationActionParams` as sent: exactly one member must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ActionParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    update_device_certificate_params: Option<DeactivateParams>,
    #[serde(
        rename = "updateCACertificateParams",
        skip_serializing_if = "Option::is_none"
    )]
    update_ca_certificate_params: Option<DeactivateParams>,
    #[serde(skip_serializing_if = "Option::is_none")]
    add_things_to_thing_group_params: Option<AddThingsParams>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replace_default_policy_version_params: Option<ReplacePolicyParams>,
    #[serde(
        rename = "enableIoTLoggingParams",
        skip_serializing_if = "Option::is_none"
    )]
    enable_iot_logging_params: Option<LoggingParams>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish_finding_to_sns_params: Option<PublishParams>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ban_client_on_broker_params: Option<BanParams>,
}

/// The broker a ban goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BrokerKind {
    /// Mosquitto with the dynamic-security plugin (`disableClient` over `$CONTROL`).
    MosquittoDynsec,
    /// EMQX 5 (`POST /api/v5/banned`).
    Emqx,
}

/// What identifies the banned client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BanBy {
    /// The MQTT client id (= thing name).
    ClientId,
    /// The MQTT username (= thing name).
    Username,
}

/// A validated broker ban.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ban {
    pub(crate) kind: BrokerKind,
    /// Inline connection settings; None = the serve flags.
    pub(crate) connection: Option<BrokerConnection>,
    pub(crate) by: BanBy,
    pub(crate) reason: String,
}

/// `ENABLE_IOT_LOGGING`'s level (`DISABLED` is not allowed for the action).
pub(crate) const LOG_LEVELS: [&str; 4] = ["DEBUG", "INFO", "ERROR", "WARN"];

/// A validated action: what executing it does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Set the device certificate(s) INACTIVE.
    DeactivateDeviceCertificate,
    /// Set the CA certificate INACTIVE.
    DeactivateCaCertificate,
    /// Add the things to these groups.
    AddThingsToGroups {
        /// The groups (1..10; they exist when the action is saved).
        groups: Vec<String>,
    },
    /// A new deny-all default version of the policy (`BLANK_POLICY`).
    ReplaceDefaultPolicyVersion,
    /// Set the account log level.
    EnableLogging {
        /// One of [`LOG_LEVELS`].
        level: String,
    },
    /// Append the finding / violation to the feed destination with this name.
    Publish {
        /// The destination name (the last part of its ARN).
        destination: String,
    },
    /// Ban the thing's client on a broker.
    BanClient(Ban),
}

/// The longest ban reason kept.
const MAX_REASON: usize = 256;

fn one_of<'a>(what: &str, value: Option<&'a str>, allowed: &[&str]) -> Result<&'a str, String> {
    match value {
        Some(v) if allowed.contains(&v) => Ok(v),
        Some(v) => Err(format!(
            "{what} must be {}; got '{v}'",
            allowed.join(" or ")
        )),
        None => Err(format!("{what} is required")),
    }
}

impl ActionParams {
    /// The type of the one member set.
    ///
    /// # Errors
    /// None or several members set.
    pub(crate) fn action_type(&self) -> Result<ActionType, String> {
        let set: Vec<ActionType> = [
            (
                self.update_device_certificate_params.is_some(),
                ActionType::UpdateDeviceCertificate,
            ),
            (
                self.update_ca_certificate_params.is_some(),
                ActionType::UpdateCaCertificate,
            ),
            (
                self.add_things_to_thing_group_params.is_some(),
                ActionType::AddThingsToThingGroup,
            ),
            (
                self.replace_default_policy_version_params.is_some(),
                ActionType::ReplaceDefaultPolicyVersion,
            ),
            (
                self.enable_iot_logging_params.is_some(),
                ActionType::EnableIotLogging,
            ),
            (
                self.publish_finding_to_sns_params.is_some(),
                ActionType::PublishFindingToSns,
            ),
            (
                self.ban_client_on_broker_params.is_some(),
                ActionType::BanClientOnBroker,
            ),
        ]
        .into_iter()
        .filter_map(|(set, t)| set.then_some(t))
        .collect();
        match set.as_slice() {
            [one] => Ok(*one),
            [] => Err("actionParams must set exactly one member; none is set".into()),
            several => Err(format!(
                "actionParams must set exactly one member; {} are set ({})",
                several.len(),
                several
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Checks the parameters (names, enums, ARN of the destination in `region`/`account`)
    /// and returns what the action does. Whether named thing groups exist is the caller's
    /// check (it needs the store).
    ///
    /// # Errors
    /// The first rule broken, in words.
    pub(crate) fn validate(&self, region: &str, account: &str) -> Result<Action, String> {
        let ty = self.action_type()?;
        match ty {
            ActionType::UpdateDeviceCertificate | ActionType::UpdateCaCertificate => {
                let p = self
                    .update_device_certificate_params
                    .as_ref()
                    .or(self.update_ca_certificate_params.as_ref());
                one_of(
                    "action",
                    p.and_then(|p| p.action.as_deref()),
                    &["DEACTIVATE"],
                )?;
                Ok(if ty == ActionType::UpdateDeviceCertificate {
                    Action::DeactivateDeviceCertificate
                } else {
                    Action::DeactivateCaCertificate
                })
            }
            ActionType::AddThingsToThingGroup => {
                let p = self
                    .add_things_to_thing_group_params
                    .as_ref()
                    .ok_or("addThingsToThingGroupParams is required")?;
                let groups = &p.thing_group_names;
                if groups.is_empty() || groups.len() > 10 {
                    return Err(format!(
                        "thingGroupNames must hold 1..10 names; got {}",
                        groups.len()
                    ));
                }
                for g in groups {
                    thingward_models::names::check_resource_name("thingGroupName", g)
                        .map_err(|e| e.to_string())?;
                }
                Ok(Action::AddThingsToGroups {
                    groups: groups.clone(),
                })
            }
            ActionType::ReplaceDefaultPolicyVersion => {
                let p = self.replace_default_policy_version_params.as_ref();
                one_of(
                    "templateName",
                    p.and_then(|p| p.template_name.as_deref()),
                    &["BLANK_POLICY"],
                )?;
                Ok(Action::ReplaceDefaultPolicyVersion)
            }
            ActionType::EnableIotLogging => {
                let p = self.enable_iot_logging_params.as_ref();
                let role = p.and_then(|p| p.role_arn_for_logging.as_deref());
                check_role_arn("roleArnForLogging", role)?;
                let level = p.and_then(|p| p.log_level.as_deref());
                if level == Some("DISABLED") {
                    return Err("logLevel DISABLED is not allowed for ENABLE_IOT_LOGGING".into());
                }
                let level = one_of("logLevel", level, &LOG_LEVELS)?;
                Ok(Action::EnableLogging {
                    level: level.to_owned(),
                })
            }
            ActionType::PublishFindingToSns => {
                let arn = self
                    .publish_finding_to_sns_params
                    .as_ref()
                    .and_then(|p| p.topic_arn.as_deref())
                    .ok_or("topicArn is required")?;
                Ok(Action::Publish {
                    destination: destination_name(arn, region, account)?,
                })
            }
            ActionType::BanClientOnBroker => {
                let p = self
                    .ban_client_on_broker_params
                    .as_ref()
                    .ok_or("banClientOnBrokerParams is required")?;
                let kind = match one_of(
                    "brokerKind",
                    p.broker_kind.as_deref(),
                    &["MOSQUITTO_DYNSEC", "EMQX"],
                )? {
                    "EMQX" => BrokerKind::Emqx,
                    _ => BrokerKind::MosquittoDynsec,
                };
                let by = match (kind, p.ban_by.as_deref()) {
                    (BrokerKind::MosquittoDynsec, None | Some("USERNAME")) => BanBy::Username,
                    (BrokerKind::MosquittoDynsec, Some(other)) => {
                        return Err(format!(
                            "banBy must be USERNAME for MOSQUITTO_DYNSEC (dynamic security disables clients by username); got '{other}'"
                        ));
                    }
                    (BrokerKind::Emqx, None | Some("CLIENT_ID")) => BanBy::ClientId,
                    (BrokerKind::Emqx, Some("USERNAME")) => BanBy::Username,
                    (BrokerKind::Emqx, Some(other)) => {
                        return Err(format!(
                            "banBy must be CLIENT_ID or USERNAME; got '{other}'"
                        ));
                    }
                };
                if let Some(c) = &p.connection {
                    check_broker_url(kind, &c.url)?;
                }
                let reason = p
                    .reason
                    .clone()
                    .unwrap_or_else(|| "Banned by a thingward mitigation action".into());
                thingward_models::names::check_printable("reason", &reason, MAX_REASON)
                    .map_err(|e| e.to_string())?;
                Ok(Action::BanClient(Ban {
                    kind,
                    connection: p.connection.clone(),
                    by,
                    reason,
                }))
            }
        }
    }

    /// The parameters as Describe returns them: broker passwords left out.
    pub(crate) fn redacted(&self) -> Self {
        let mut out = self.clone();
        if let Some(c) = out
            .ban_client_on_broker_params
            .as_mut()
            .and_then(|b| b.connection.as_mut())
        {
            c.password = None;
        }
        out
    }
}

/// `RoleArn`: 20..2048 characters.
///
/// # Errors
/// Absent or out of range.
pub(crate) fn check_role_arn(what: &str, arn: Option<&str>) -> Result<(), String> {
    match arn {
        None => Err(format!("{what} is required")),
        Some(a) if !(20..=2048).contains(&a.len()) => Err(format!(
            "{what} must be 20..2048 characters long; got {}",
            a.len()
        )),
        Some(_) => Ok(()),
    }
}

/// The destination name in `arn:aws:iot:{region}:{account}:destination/{name}`.
fn destination_name(arn: &str, region: &str, account: &str) -> Result<String, String> {
    if arn.len() > 350 {
        return Err(format!(
            "topicArn must be at most 350 characters long; got {}",
            arn.len()
        ));
    }
    let prefix = format!("arn:aws:iot:{region}:{account}:destination/");
    let name = arn.strip_prefix(&prefix).ok_or_else(|| {
        format!("topicArn must name a thingward feed destination ({prefix}NAME); got '{arn}'")
    })?;
    thingward_models::names::check_resource_name("destination name", name)
        .map_err(|e| e.to_string())?;
    Ok(name.to_owned())
}

fn check_broker_url(kind: BrokerKind, url: &str) -> Result<(), String> {
    let ok = match kind {
        BrokerKind::Emqx => url.starts_with("http://") || url.starts_with("https://"),
        BrokerKind::MosquittoDynsec => crate::mqtt::options(url, "check").is_ok(),
    };
    if ok {
        Ok(())
    } else {
        let url = crate::redaction::urls(url);
        Err(match kind {
            BrokerKind::Emqx => format!("connection.url must be an http(s) URL; got '{url}'"),
            BrokerKind::MosquittoDynsec => {
                format!("connection.url must be mqtt://host[:port]; got '{url}'")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: serde_json::Value) -> ActionParams {
        serde_json::from_value(v).expect("params")
    }

    #[test]
    fn the_one_member_set_decides_the_type() {
        let p = params(serde_json::json!({"updateCACertificateParams": {"action": "DEACTIVATE"}}));
        assert_eq!(p.action_type(), Ok(ActionType::UpdateCaCertificate));
        assert_eq!(
            p.validate("r", "a"),
            Ok(Action::DeactivateCaCertificate),
            "CA deactivation"
        );
        let two = params(serde_json::json!({
            "updateCACertificateParams": {"action": "DEACTIVATE"},
            "enableIoTLoggingParams": {"roleArnForLogging": "arn:aws:iam::1:role/logs", "logLevel": "INFO"}
        }));
        assert!(
            two.action_type()
                .expect_err("two members")
                .contains("2 are set")
        );
        assert!(
            ActionParams::default()
                .action_type()
                .expect_err("none")
                .contains("none is set")
        );
    }

    #[test]
    fn every_type_round_trips_its_wire_name() {
        for t in ActionType::ALL {
            assert_eq!(ActionType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ActionType::parse("REVOKE"), None);
    }

    #[test]
    fn destination_arns_must_be_this_accounts() {
        let ok = params(serde_json::json!({"publishFindingToSnsParams": {
            "topicArn": "arn:aws:iot:us-east-1:123456789012:destination/soc"}}));
        assert_eq!(
            ok.validate("us-east-1", "123456789012"),
            Ok(Action::Publish {
                destination: "soc".into()
            })
        );
        let sns = params(serde_json::json!({"publishFindingToSnsParams": {
            "topicArn": "arn:aws:sns:us-east-1:123456789012:topic"}}));
        assert!(
            sns.validate("us-east-1", "123456789012")
                .expect_err("sns arn")
                .contains("feed destination")
        );
    }

    #[test]
    fn ban_params_check_kind_subject_and_url() {
        let ban = |v: serde_json::Value| {
            params(serde_json::json!({ "banClientOnBrokerParams": v })).validate("r", "a")
        };
        assert!(matches!(
            ban(serde_json::json!({"brokerKind": "MOSQUITTO_DYNSEC"})),
            Ok(Action::BanClient(Ban {
                kind: BrokerKind::MosquittoDynsec,
                by: BanBy::Username,
                connection: None,
                ..
            }))
        ));
        assert!(
            ban(serde_json::json!({"brokerKind": "MOSQUITTO_DYNSEC", "banBy": "CLIENT_ID"}))
                .expect_err("dynsec by client id")
                .contains("USERNAME")
        );
        assert!(
            ban(serde_json::json!({"brokerKind": "HIVEMQ"}))
                .expect_err("kind")
                .contains("brokerKind")
        );
        assert!(
            ban(serde_json::json!({"brokerKind": "EMQX", "connection": {"url": "mqtt://x"}}))
                .expect_err("emqx url")
                .contains("http")
        );
        let redacted = params(serde_json::json!({"banClientOnBrokerParams": {
            "brokerKind": "EMQX", "connection": {"url": "http://e", "username": "k", "password": "s"}}}))
        .redacted();
        let shown = serde_json::to_value(&redacted).expect("json");
        assert_eq!(
            shown["banClientOnBrokerParams"]["connection"],
            serde_json::json!({"url": "http://e", "username": "k"})
        );
    }

    #[test]
    fn logging_refuses_disabled_and_short_roles() {
        let p = |level: &str, role: &str| {
            params(serde_json::json!({"enableIoTLoggingParams": {"roleArnForLogging": role, "logLevel": level}}))
                .validate("r", "a")
        };
        assert_eq!(
            p("WARN", "arn:aws:iam::123456789012:role/logs"),
            Ok(Action::EnableLogging {
                level: "WARN".into()
            })
        );
        assert!(
            p("DISABLED", "arn:aws:iam::123456789012:role/logs")
                .expect_err("disabled")
                .contains("DISABLED")
        );
        assert!(
            p("INFO", "short")
                .expect_err("role")
                .contains("roleArnForLogging")
        );
    }
}
