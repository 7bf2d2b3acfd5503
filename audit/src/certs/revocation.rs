//! `REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK`, `REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK`
//! and `INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK`: certificates (or their
//! chain's intermediates) on a verified CRL of their issuer while the registry still has them
//! ACTIVE / PENDING_TRANSFER.

use super::{ParsedCert, Pki, Revocation};
use crate::check::reason;
use crate::context::{CheckResult, Context, Outcome};
use crate::{CheckName, Finding};

/// Longest chain walked from a device certificate to its root.
const MAX_CHAIN: usize = 8;

fn revoked_finding(
    check: CheckName,
    ca: bool,
    c: &ParsedCert<'_>,
    r: &Revocation,
    pki: &Pki<'_>,
) -> Finding {
    let issuer = &pki.cas[r.crl_issuer];
    let resource = c
        .resource(ca)
        .with_info("crl", r.crl_source.clone())
        .with_info("revokedAt", super::iso(r.revoked_ms));
    let why = format!(
        "Certificate serial {} is revoked by {} (CRL {}) but still {}",
        c.serial_hex(),
        issuer.subject(),
        r.crl_source,
        c.rec.status.as_str()
    );
    Finding::new(check, resource, reason::CERTIFICATE_REVOKED_BY_ISSUER, why)
        .with_related(issuer.issuer_resource())
}

/// Revoked but still active device (`ca = false`) or CA certificates.
pub(crate) fn still_active(ctx: &Context<'_>, ca: bool) -> CheckResult {
    let check = if ca {
        CheckName::RevokedCaCertificateStillActiveCheck
    } else {
        CheckName::RevokedDeviceCertificateStillActiveCheck
    };
    let pki = ctx.pki();
    let certs = if ca { &pki.cas } else { &pki.devices };
    let mut examined = 0;
    let mut findings = Vec::new();
    for c in certs.iter().filter(|c| c.rec.status.is_active()) {
        examined += 1;
        if let Some(r) = pki.revocation(&c.x) {
            findings.push(revoked_finding(check, ca, c, r, pki));
        }
    }
    ctx.check_cancel()?;
    Ok(Outcome::new(examined, findings))
}

/// Active device certificates with a revoked intermediate CA somewhere in their chain.
pub(crate) fn intermediate(ctx: &Context<'_>) -> CheckResult {
    let check = CheckName::IntermediateCaRevokedForActiveDeviceCertificatesCheck;
    let pki = ctx.pki();
    let mut examined = 0;
    let mut findings = Vec::new();
    for c in pki.devices.iter().filter(|c| c.rec.status.is_active()) {
        examined += 1;
        let mut current = &c.x;
        for _ in 0..MAX_CHAIN {
            let Some(i) = pki.issuer_of(current) else {
                break;
            };
            let ca = &pki.cas[i];
            if ca.is_self_issued() {
                break;
            }
            if let Some(r) = pki.revocation(&ca.x) {
                let revoker = &pki.cas[r.crl_issuer];
                let resource = c.resource(false).with_info("crl", r.crl_source.clone());
                let why = format!(
                    "Intermediate CA {} (serial {}) in this certificate's chain is revoked by {} (CRL {})",
                    ca.subject(),
                    ca.serial_hex(),
                    revoker.subject(),
                    r.crl_source
                );
                findings.push(
                    Finding::new(
                        check,
                        resource,
                        reason::INTERMEDIATE_CA_REVOKED_BY_ISSUER,
                        why,
                    )
                    .with_related(ca.issuer_resource()),
                );
                break;
            }
            current = &ca.x;
        }
    }
    ctx.check_cancel()?;
    Ok(Outcome::new(examined, findings))
}
