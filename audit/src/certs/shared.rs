//! `DEVICE_CERTIFICATE_SHARED_CHECK`: one certificate identity on several client ids at the
//! same time. With Mosquitto's `use_identity_as_username`, the `u'<CN>'` of `New client
//! connected …` is the certificate's subject CN; a connection with that username while another
//! client id with the same username is still connected is an overlap. The finding names each
//! ACTIVE / PENDING_TRANSFER device certificate with that CN.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::ParsedCert;
use crate::check::reason;
use crate::connlog::Overlap;
use crate::context::{CheckResult, Context, Outcome, Stop};
use crate::{CheckName, Finding};

fn common_name(c: &ParsedCert<'_>) -> Option<String> {
    c.x.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

pub(crate) fn check(ctx: &Context<'_>) -> CheckResult {
    let check = CheckName::DeviceCertificateSharedCheck;
    let Some(log_src) = ctx.input.connection_log.as_ref() else {
        return Err(Stop::Failed("no broker connection log configured".into()));
    };
    let log = ctx
        .log()
        .ok_or_else(|| Stop::Failed("no broker connection log".into()))?;
    let replay = log.replay(ctx.settings.connections_since());
    let mut by_identity: BTreeMap<&str, Vec<&Overlap>> = BTreeMap::new();
    for o in &replay.overlaps {
        by_identity.entry(&o.username).or_default().push(o);
    }
    let active: Vec<&ParsedCert<'_>> = ctx
        .pki()
        .devices
        .iter()
        .filter(|c| c.rec.status.is_active())
        .collect();
    let mut by_cn: HashMap<String, Vec<&ParsedCert<'_>>> = HashMap::new();
    for c in &active {
        if let Some(cn) = common_name(c) {
            by_cn.entry(cn).or_default().push(c);
        }
    }
    let mut findings = Vec::new();
    for (identity, overlaps) in by_identity {
        let Some(certs) = by_cn.get(identity) else {
            continue;
        };
        let clients: BTreeSet<&str> = overlaps
            .iter()
            .flat_map(|o| [o.first_client.as_str(), o.second_client.as_str()])
            .collect();
        let clients = clients.into_iter().collect::<Vec<_>>().join(",");
        let first = overlaps[0];
        for c in certs {
            let resource = c
                .resource(false)
                .with_info("clientIds", clients.clone())
                .with_info("log", format!("{}:{}", log_src.path, first.line));
            let why = format!(
                "Certificate identity {identity} was connected as several client ids at once ({clients}); \
                 first overlap at {}:{}",
                log_src.path, first.line
            );
            findings.push(Finding::new(
                check,
                resource,
                reason::CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES,
                why,
            ));
        }
    }
    Ok(Outcome::new(active.len(), findings))
}
