//! `DEVICE_CERTIFICATE_EXPIRING_CHECK`, `CA_CERTIFICATE_EXPIRING_CHECK` and
//! `DEVICE_CERTIFICATE_AGE_CHECK`: validity dates of ACTIVE / PENDING_TRANSFER certificates.

use super::iso;
use crate::check::reason;
use crate::context::{CheckResult, Context, Outcome};
use crate::{CheckName, DAY_MS, Finding};

/// Expiring (within `expiring_days`) or expired certificates.
pub(crate) fn expiring(ctx: &Context<'_>, ca: bool) -> CheckResult {
    let check = if ca {
        CheckName::CaCertificateExpiringCheck
    } else {
        CheckName::DeviceCertificateExpiringCheck
    };
    let pki = ctx.pki();
    let certs = if ca { &pki.cas } else { &pki.devices };
    let now = ctx.settings.now_ms;
    let window_end = now.saturating_add(i64::from(ctx.settings.expiring_days) * DAY_MS);
    let mut examined = 0;
    let mut findings = Vec::new();
    for c in certs.iter().filter(|c| c.rec.status.is_active()) {
        examined += 1;
        let not_after = c.not_after_ms();
        let (code, why) = if not_after <= now {
            (
                reason::CERTIFICATE_PAST_EXPIRATION,
                format!("Certificate expired on {}", iso(not_after)),
            )
        } else if not_after <= window_end {
            let days = (not_after - now) / DAY_MS;
            (
                reason::CERTIFICATE_APPROACHING_EXPIRATION,
                format!(
                    "Certificate expires on {} (in {days} days; window {} days)",
                    iso(not_after),
                    ctx.settings.expiring_days
                ),
            )
        } else {
            continue;
        };
        let resource = c.resource(ca).with_info("notAfter", iso(not_after));
        findings.push(Finding::new(check, resource, code, why));
    }
    ctx.check_cancel()?;
    Ok(Outcome::new(examined, findings))
}

/// Device certificates active for at least `age_days` since notBefore.
pub(crate) fn age(ctx: &Context<'_>) -> CheckResult {
    let check = CheckName::DeviceCertificateAgeCheck;
    let now = ctx.settings.now_ms;
    let threshold = i64::from(ctx.settings.age_days) * DAY_MS;
    let mut examined = 0;
    let mut findings = Vec::new();
    for c in ctx
        .pki()
        .devices
        .iter()
        .filter(|c| c.rec.status.is_active())
    {
        examined += 1;
        let not_before = c.not_before_ms();
        let age = now.saturating_sub(not_before);
        if age >= threshold {
            let resource = c.resource(false).with_info("notBefore", iso(not_before));
            let why = format!(
                "Certificate has been valid since {} ({} days; threshold {} days)",
                iso(not_before),
                age / DAY_MS,
                ctx.settings.age_days
            );
            findings.push(Finding::new(
                check,
                resource,
                reason::CERTIFICATE_PAST_AGE_THRESHOLD,
                why,
            ));
        }
    }
    Ok(Outcome::new(examined, findings))
}
