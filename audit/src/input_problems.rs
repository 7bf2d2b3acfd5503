//! `AUDIT_INPUT_UNREADABLE_CHECK`: everything the audit could not use — loader problems,
//! registered certificates whose DER does not parse, CRLs that do not parse or verify, policy
//! default versions that are not JSON. The other checks ran without them.

use crate::check::reason;
use crate::context::{CheckResult, Context, Outcome};
use crate::finding::{Resource, ResourceIdentifier};
use crate::{CheckName, Finding, ResourceType};

const CHECK: CheckName = CheckName::AuditInputUnreadableCheck;

fn input_resource(source: &str) -> Resource {
    Resource::new(
        ResourceType::AuditInput,
        ResourceIdentifier {
            source: Some(source.to_owned()),
            ..Default::default()
        },
    )
    .with_info("source", source.to_owned())
}

pub(crate) fn check(ctx: &Context<'_>) -> CheckResult {
    let input = ctx.input;
    let pki = ctx.pki();
    let mut findings = Vec::new();
    for p in &input.problems {
        let why = format!("{}: {}", p.source, p.message);
        findings.push(Finding::new(
            CHECK,
            input_resource(&p.source),
            reason::INPUT_LOADER_PROBLEM,
            why,
        ));
    }
    for u in &pki.unparsed {
        let resource = crate::certs::cert_resource(u.rec, u.ca).with_info("error", u.error.clone());
        let why = format!(
            "Certificate {} ({}) does not parse: {}",
            u.rec.id, u.rec.source, u.error
        );
        findings.push(Finding::new(
            CHECK,
            resource,
            reason::INPUT_UNPARSEABLE,
            why,
        ));
    }
    for p in &pki.crl_problems {
        let code = if p.message.starts_with("not an X.509") || p.message.starts_with("trailing") {
            reason::INPUT_UNPARSEABLE
        } else {
            reason::INPUT_CRL_NOT_VERIFIED
        };
        let why = format!("CRL {}: {}", p.source, p.message);
        findings.push(Finding::new(CHECK, input_resource(&p.source), code, why));
    }
    let policies = ctx.policies();
    for (p, parsed) in policies {
        if let Err(e) = parsed {
            let resource = crate::policy::resource(p).with_info("error", e.clone());
            let why = format!(
                "Policy {} version {} ({}): {e}",
                p.name, p.version_id, p.source
            );
            findings.push(Finding::new(
                CHECK,
                resource,
                reason::INPUT_POLICY_UNREADABLE,
                why,
            ));
        }
    }
    let examined = input.problems.len()
        + input.device_certs.len()
        + input.ca_certs.len()
        + input.crls.len()
        + policies.len();
    Ok(Outcome::new(examined, findings))
}
