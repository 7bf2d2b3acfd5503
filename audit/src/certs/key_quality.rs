//! `DEVICE_CERTIFICATE_KEY_QUALITY_CHECK` and `CA_CERTIFICATE_KEY_QUALITY_CHECK`: ROCA moduli
//! (AWS's CVE-2017-15361 code), and thingward's own codes for RSA < 2048 bits, EC below P-256 or
//! on unknown curves, DSA keys and SHA-1/MD5 signatures (not checked on self-issued roots,
//! whose signature nobody relies on). Debian weak keys (CVE-2008-0166) need a blocklist
//! thingward does not ship, so that code is never emitted.

use x509_parser::certificate::X509Certificate;

use super::ParsedCert;
use super::roca;
use crate::check::reason;
use crate::context::{CheckResult, Context, Outcome};
use crate::x509::{
    KeyAlgorithm, KeyInfo, is_weak_signature, signature_name, strong_curve_name, weak_curve_name,
};
use crate::{CheckName, Finding, parallel};

/// Minimum RSA modulus size.
const MIN_RSA_BITS: u32 = 2048;

/// One weakness: reason code and explanation.
type Weakness = (&'static str, String);

/// Every weakness of a certificate's key and signature, most severe first.
pub(crate) fn weaknesses(cert: &X509Certificate<'_>, self_issued: bool) -> Vec<Weakness> {
    let mut out = Vec::new();
    let key = KeyInfo::of(cert.public_key());
    match &key.algorithm {
        KeyAlgorithm::Rsa => {
            if key.rsa_modulus.as_deref().is_some_and(roca::is_vulnerable) {
                out.push((
                    reason::KEY_CVE_2017_15361,
                    format!(
                        "RSA-{} modulus has the ROCA (CVE-2017-15361) fingerprint",
                        key.bits
                    ),
                ));
            }
            if key.bits < MIN_RSA_BITS {
                out.push((
                    reason::KEY_RSA_TOO_SHORT,
                    format!("RSA key is {} bits (minimum {MIN_RSA_BITS})", key.bits),
                ));
            }
        }
        KeyAlgorithm::Dsa => out.push((reason::KEY_DSA, format!("DSA key ({} bits)", key.bits))),
        KeyAlgorithm::Ec(curve) => {
            let curve = curve.as_deref().unwrap_or("");
            if strong_curve_name(curve).is_none() {
                let name = weak_curve_name(curve)
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("unknown curve {curve}"));
                out.push((
                    reason::KEY_EC_CURVE_WEAK,
                    format!("EC key on {name} (minimum P-256)"),
                ));
            }
        }
        KeyAlgorithm::Ed25519 | KeyAlgorithm::Ed448 => {}
        KeyAlgorithm::Other(oid) => {
            out.push((
                reason::KEY_EC_CURVE_WEAK,
                format!("unknown public key algorithm {oid}"),
            ));
        }
    }
    let sig = signature_name(&cert.signature_algorithm.algorithm);
    if !self_issued && is_weak_signature(&sig) {
        out.push((
            reason::SIGNATURE_ALGORITHM_WEAK,
            format!("certificate signed with {sig}"),
        ));
    }
    out
}

fn finding(check: CheckName, ca: bool, c: &ParsedCert<'_>) -> Option<Finding> {
    let found = weaknesses(&c.x, c.is_self_issued());
    let (code, _) = found.first()?;
    let why = found
        .iter()
        .map(|(_, w)| w.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let mut resource = c.resource(ca);
    for (i, (code, _)) in found.iter().enumerate() {
        resource = resource.with_info(&format!("weakness{}", i + 1), *code);
    }
    Some(Finding::new(check, resource, code, why))
}

/// Runs the key-quality check over ACTIVE / PENDING_TRANSFER device or CA certificates.
pub(crate) fn check(ctx: &Context<'_>, ca: bool) -> CheckResult {
    let check = if ca {
        CheckName::CaCertificateKeyQualityCheck
    } else {
        CheckName::DeviceCertificateKeyQualityCheck
    };
    let pki = ctx.pki();
    let certs: Vec<&ParsedCert<'_>> = (if ca { &pki.cas } else { &pki.devices })
        .iter()
        .filter(|c| c.rec.status.is_active())
        .collect();
    let progress = ctx.resources(check, certs.len());
    let findings: Vec<Finding> = parallel::map(&certs, |c| finding(check, ca, c), &progress)
        .into_iter()
        .flatten()
        .collect();
    ctx.check_cancel()?;
    Ok(Outcome::new(certs.len(), findings))
}
