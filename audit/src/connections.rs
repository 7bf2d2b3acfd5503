//! `CONFLICTING_CLIENT_IDS_CHECK`: client ids whose sessions were taken over (`Client <id>
//! already connected, closing old connection.`) in the look-back window — from a different
//! source IP or identity, or at least twice (devices kicking each other off). A single
//! takeover from the same address is a device reconnecting over its own stale session.

use std::collections::BTreeMap;

use crate::check::reason;
use crate::connlog::Takeover;
use crate::context::{CheckResult, Context, Outcome, Stop};
use crate::finding::{Resource, ResourceIdentifier};
use crate::{CheckName, Finding, ResourceType};

/// Takeovers from the same address at which a client id counts as conflicting.
const REPEATED_TAKEOVERS: usize = 2;

pub(crate) fn conflicting_client_ids(ctx: &Context<'_>) -> CheckResult {
    let check = CheckName::ConflictingClientIdsCheck;
    let Some(log_src) = ctx.input.connection_log.as_ref() else {
        return Err(Stop::Failed("no broker connection log configured".into()));
    };
    let log = ctx
        .log()
        .ok_or_else(|| Stop::Failed("no broker connection log".into()))?;
    let replay = log.replay(ctx.settings.connections_since());
    let mut by_client: BTreeMap<&str, Vec<&Takeover>> = BTreeMap::new();
    for t in &replay.takeovers {
        by_client.entry(&t.client_id).or_default().push(t);
    }
    let mut findings = Vec::new();
    for (client, takeovers) in by_client {
        let elsewhere = takeovers.iter().filter(|t| t.is_from_elsewhere()).count();
        if elsewhere == 0 && takeovers.len() < REPEATED_TAKEOVERS {
            continue;
        }
        let mut addrs: Vec<&str> = takeovers
            .iter()
            .flat_map(|t| [t.old_addr.as_deref(), t.new_addr.as_deref()])
            .flatten()
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        let first = takeovers[0];
        let resource = Resource::new(
            ResourceType::ClientId,
            ResourceIdentifier {
                client_id: Some(client.to_owned()),
                ..Default::default()
            },
        )
        .with_info("source", format!("{}:{}", log_src.path, first.line))
        .with_info("takeovers", takeovers.len().to_string())
        .with_info("addresses", addrs.join(","));
        let why = format!(
            "Client id {client} was taken over {} times by another connection ({} from a different \
             address or identity); first at {}:{}",
            takeovers.len(),
            elsewhere,
            log_src.path,
            first.line
        );
        findings.push(Finding::new(
            check,
            resource,
            reason::DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS,
            why,
        ));
    }
    Ok(Outcome::new(replay.client_ids.len(), findings))
}
