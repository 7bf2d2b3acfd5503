//! `LOGGING_DISABLED_CHECK`: the broker's logging (`log_dest none`, `log_type` without
//! notice/all, `connection_messages false`) and thingward's own log level. One account-settings
//! resource; one finding listing every cause.

use crate::check::reason;
use crate::context::{CheckResult, Context, Outcome};
use crate::finding::{Resource, ResourceIdentifier};
use crate::{CheckName, Finding, ResourceType};

pub(crate) fn check(ctx: &Context<'_>) -> CheckResult {
    let mut causes: Vec<(String, String)> = Vec::new();
    if let Some(cfg) = ctx.broker() {
        if !cfg.log_dests.is_empty() && cfg.log_dests.iter().all(|d| d.value == "none") {
            let at = &cfg.log_dests[cfg.log_dests.len() - 1].at;
            causes.push((
                at.source(),
                "broker log_dest none: the broker logs nothing".into(),
            ));
        }
        if !cfg.log_types.is_empty() {
            let types: Vec<&str> = cfg
                .log_types
                .iter()
                .flat_map(|t| t.value.split_whitespace())
                .collect();
            if !types.iter().any(|t| *t == "notice" || *t == "all") {
                let at = &cfg.log_types[0].at;
                causes.push((
                    at.source(),
                    format!(
                        "broker log_type {} omits notice: connection events are not logged",
                        types.join(" ")
                    ),
                ));
            }
        }
        if let Some(s) = cfg
            .global
            .get("connection_messages")
            .filter(|s| !s.is_true())
        {
            causes.push((s.at.source(), "broker connection_messages false".into()));
        }
    }
    let level = ctx.input.logging.thingward_log_level.as_deref();
    if level.is_none_or(|l| l.eq_ignore_ascii_case("DISABLED")) {
        causes.push((
            "thingward".into(),
            format!("thingward logging is {}", level.unwrap_or("not configured")),
        ));
    }
    let mut findings = Vec::new();
    if !causes.is_empty() {
        let mut resource = Resource::new(
            ResourceType::AccountSettings,
            ResourceIdentifier {
                account: Some(ctx.settings.account.clone()),
                ..Default::default()
            },
        );
        for (i, (source, cause)) in causes.iter().enumerate() {
            resource =
                resource.with_info(&format!("cause{}", i + 1), format!("{cause} ({source})"));
        }
        let why = causes
            .iter()
            .map(|(s, c)| format!("{c} ({s})"))
            .collect::<Vec<_>>()
            .join("; ");
        findings.push(Finding::new(
            CheckName::LoggingDisabledCheck,
            resource,
            reason::LOGGING_DISABLED,
            why,
        ));
    }
    Ok(Outcome::new(1, findings))
}
