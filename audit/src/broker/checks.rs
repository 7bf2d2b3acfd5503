//! The `BROKER_*` checks over a parsed `BrokerConfig`. Each finding names the file and line
//! (`resourceIdentifier.source`, `additionalInfo.file`/`line`).

use super::config::{Access, BrokerConfig, Listener, Location};
use crate::check::reason;
use crate::context::{CheckResult, Context, Outcome, Stop};
use crate::finding::{Resource, ResourceIdentifier};
use crate::{CheckName, Finding, ResourceType};

/// The finding resource for a broker file line.
pub(crate) fn resource(at: &Location) -> Resource {
    Resource::new(
        ResourceType::BrokerConfiguration,
        ResourceIdentifier {
            broker_config_file: Some(at.file.clone()),
            source: Some(at.source()),
            ..Default::default()
        },
    )
    .with_info("file", at.file.clone())
    .with_info("line", at.line.to_string())
}

fn finding(check: CheckName, at: &Location, code: &str, why: String) -> Finding {
    Finding::new(check, resource(at), code, why)
}

fn config<'c>(ctx: &'c Context<'_>) -> Result<&'c BrokerConfig, Stop> {
    ctx.broker()
        .ok_or_else(|| Stop::Failed("no broker configuration file configured".into()))
}

fn network_listeners(cfg: &BrokerConfig) -> impl Iterator<Item = &Listener> {
    cfg.listeners.iter().filter(|l| !l.is_loopback())
}

/// `BROKER_ANONYMOUS_ACCESS_CHECK`.
pub(crate) fn anonymous(ctx: &Context<'_>) -> CheckResult {
    let cfg = config(ctx)?;
    let check = CheckName::BrokerAnonymousAccessCheck;
    let mut findings = Vec::new();
    for l in network_listeners(cfg) {
        // 2.1's per-listener override first, then the (per-listener or global) setting;
        // Mosquitto 2.0's default is false.
        let setting = l
            .get("listener_allow_anonymous")
            .or_else(|| cfg.security(l, "allow_anonymous"));
        if let Some(s) = setting.filter(|s| s.is_true()) {
            let why = format!(
                "{} accepts anonymous clients from the network ({} at {})",
                l.label(),
                "allow_anonymous true",
                s.at.source()
            );
            let mut f = finding(check, &s.at, reason::BROKER_ANONYMOUS_ACCESS_ALLOWED, why);
            f.non_compliant_resource = f
                .non_compliant_resource
                .with_info("listener", l.at.source());
            findings.push(f);
        }
    }
    Ok(Outcome::new(cfg.listeners.len(), findings))
}

/// `BROKER_LISTENER_WITHOUT_TLS_CHECK`.
pub(crate) fn without_tls(ctx: &Context<'_>) -> CheckResult {
    let cfg = config(ctx)?;
    let check = CheckName::BrokerListenerWithoutTlsCheck;
    let findings = network_listeners(cfg)
        .filter(|l| !l.has_certificate_tls() && !l.has_psk())
        .map(|l| {
            let (code, kind) = if l.is_websockets() {
                (reason::BROKER_WEBSOCKETS_PLAINTEXT, "websockets ")
            } else {
                (reason::BROKER_LISTENER_PLAINTEXT, "")
            };
            let why = format!(
                "{} is a plaintext {kind}listener reachable from the network (no certfile/keyfile or psk_hint)",
                l.label()
            );
            finding(check, &l.at, code, why)
        })
        .collect();
    Ok(Outcome::new(cfg.listeners.len(), findings))
}

/// `BROKER_CLIENT_CERTIFICATE_NOT_REQUIRED_CHECK`.
pub(crate) fn client_certificate(ctx: &Context<'_>) -> CheckResult {
    let cfg = config(ctx)?;
    let check = CheckName::BrokerClientCertificateNotRequiredCheck;
    let mut findings = Vec::new();
    for l in network_listeners(cfg).filter(|l| l.has_certificate_tls()) {
        let setting = l.get("require_certificate");
        if setting.is_some_and(|s| s.is_true()) {
            continue;
        }
        let at = setting.map_or(&l.at, |s| &s.at);
        let why = format!(
            "TLS {} does not require client certificates (require_certificate {})",
            l.label(),
            if setting.is_some() {
                "false"
            } else {
                "unset, default false"
            }
        );
        findings.push(finding(
            check,
            at,
            reason::BROKER_CLIENT_CERTIFICATE_NOT_REQUIRED,
            why,
        ));
    }
    Ok(Outcome::new(cfg.listeners.len(), findings))
}

/// `BROKER_ACL_OVERLY_PERMISSIVE_CHECK`.
pub(crate) fn acl(ctx: &Context<'_>) -> CheckResult {
    let cfg = config(ctx)?;
    let check = CheckName::BrokerAclOverlyPermissiveCheck;
    let mut findings = Vec::new();
    for e in cfg.acl.iter().filter(|e| e.access != Access::Deny) {
        let whom = match (&e.user, e.pattern) {
            (_, true) => "every client (pattern)".to_owned(),
            (Some(u), false) => format!("user {u}"),
            (None, false) => "every client".to_owned(),
        };
        let kind = if e.pattern { "pattern" } else { "topic" };
        if e.topic == "#" {
            let why = format!("ACL grants {whom} every topic ({kind} #)");
            findings.push(finding(
                check,
                &e.at,
                reason::BROKER_ACL_GRANTS_ALL_TOPICS,
                why,
            ));
        } else if (e.user.is_none() || e.pattern) && (e.topic == "$SYS/#" || e.topic == "$SYS/+/#")
        {
            let why = format!(
                "ACL grants {whom} the broker's $SYS topics ({kind} {})",
                e.topic
            );
            findings.push(finding(check, &e.at, reason::BROKER_ACL_GRANTS_SYS, why));
        } else if e.pattern && !e.topic.contains("%c") && !e.topic.contains("%u") {
            let why = format!(
                "ACL pattern {} is not scoped to the client (%c) or user (%u): it applies to every client",
                e.topic
            );
            findings.push(finding(
                check,
                &e.at,
                reason::BROKER_ACL_PATTERN_UNSCOPED,
                why,
            ));
        }
    }
    let mut examined = cfg.acl.len();
    for l in network_listeners(cfg) {
        examined += 1;
        let has_plugin =
            cfg.security(l, "plugin").is_some() || cfg.security(l, "auth_plugin").is_some();
        if cfg.security(l, "acl_file").is_none() && !has_plugin {
            let why = format!(
                "{} has no acl_file (and no plugin): every authenticated client may publish and \
                 subscribe to every topic",
                l.label()
            );
            findings.push(finding(check, &l.at, reason::BROKER_ACL_MISSING, why));
        }
    }
    Ok(Outcome::new(examined, findings))
}

/// `BROKER_PLAINTEXT_PASSWORDS_CHECK`.
pub(crate) fn passwords(ctx: &Context<'_>) -> CheckResult {
    let cfg = config(ctx)?;
    let check = CheckName::BrokerPlaintextPasswordsCheck;
    let findings = cfg
        .passwords
        .iter()
        .filter(|p| !p.hashed)
        .map(|p| {
            let why = format!(
                "Password of user {} is stored in plaintext (not a $6$/$7$ hash)",
                p.user
            );
            finding(check, &p.at, reason::BROKER_PASSWORD_PLAINTEXT, why)
        })
        .collect();
    Ok(Outcome::new(cfg.passwords.len(), findings))
}

/// `BROKER_CONNECTION_LIMITS_CHECK` (only for brokers reachable from the network).
pub(crate) fn limits(ctx: &Context<'_>) -> CheckResult {
    let cfg = config(ctx)?;
    let check = CheckName::BrokerConnectionLimitsCheck;
    let mut findings = Vec::new();
    let mut examined = 0;
    for l in network_listeners(cfg) {
        examined += 1;
        let setting = l.get("max_connections");
        if setting.and_then(|s| s.int()).is_none_or(|n| n < 0) {
            let at = setting.map_or(&l.at, |s| &s.at);
            let why = format!(
                "{} accepts unlimited connections (max_connections -1 or unset)",
                l.label()
            );
            findings.push(finding(
                check,
                at,
                reason::BROKER_CONNECTIONS_UNLIMITED,
                why,
            ));
        }
    }
    if examined > 0 {
        examined += 1;
        let limited = |key: &str| {
            cfg.global
                .get(key)
                .and_then(|s| s.int())
                .is_some_and(|n| n > 0)
        };
        if !limited("max_packet_size") && !limited("message_size_limit") {
            let at = cfg
                .global
                .get("max_packet_size")
                .or_else(|| cfg.global.get("message_size_limit"))
                .map_or_else(
                    || Location {
                        file: cfg.main_file.clone(),
                        line: 0,
                    },
                    |s| s.at.clone(),
                );
            let why =
                "Packet size is unlimited (max_packet_size and message_size_limit 0 or unset): \
                       one client can make the broker allocate up to 256 MB per message"
                    .to_owned();
            findings.push(finding(
                check,
                &at,
                reason::BROKER_MESSAGE_SIZE_UNLIMITED,
                why,
            ));
        }
    }
    Ok(Outcome::new(examined, findings))
}

/// `BROKER_CONFIGURATION_INVALID_CHECK`.
pub(crate) fn invalid(ctx: &Context<'_>) -> CheckResult {
    let cfg = config(ctx)?;
    let check = CheckName::BrokerConfigurationInvalidCheck;
    let findings = cfg
        .problems
        .iter()
        .map(|p| finding(check, &p.at, p.code, p.message.clone()))
        .collect();
    Ok(Outcome::new(cfg.lines, findings))
}
