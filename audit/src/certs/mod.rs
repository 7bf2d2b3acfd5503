//! Certificate checks: expiry and age, key quality, revocation (CRLs), and shared
//! certificates. `Pki` is the parsed view every certificate check shares.

pub(crate) mod expiry;
pub(crate) mod key_quality;
pub(crate) mod revocation;
pub(crate) mod roca;
pub(crate) mod shared;

use std::collections::HashMap;

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::finding::{Resource, ResourceIdentifier};
use crate::input::{CertRecord, InputProblem};
use crate::x509::{parse_cert, serial_hex, strip_leading_zeros};
use crate::{AuditInput, ResourceType, parallel};

/// An epoch-ms time as RFC 3339 (UTC, seconds).
pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// A registered certificate whose DER parsed.
#[derive(Debug)]
pub(crate) struct ParsedCert<'a> {
    pub(crate) rec: &'a CertRecord,
    pub(crate) x: X509Certificate<'a>,
}

impl ParsedCert<'_> {
    pub(crate) fn subject(&self) -> String {
        self.x.subject().to_string()
    }

    pub(crate) fn not_after_ms(&self) -> i64 {
        self.x.validity().not_after.timestamp().saturating_mul(1000)
    }

    pub(crate) fn not_before_ms(&self) -> i64 {
        self.x
            .validity()
            .not_before
            .timestamp()
            .saturating_mul(1000)
    }

    pub(crate) fn serial_hex(&self) -> String {
        serial_hex(self.x.raw_serial())
    }

    pub(crate) fn is_self_issued(&self) -> bool {
        self.x.tbs_certificate.subject.as_raw() == self.x.tbs_certificate.issuer.as_raw()
    }

    /// The finding resource for this certificate: a device or CA certificate by id.
    pub(crate) fn resource(&self, ca: bool) -> Resource {
        cert_resource(self.rec, ca)
            .with_info("subject", self.subject())
            .with_info("serialNumber", self.serial_hex())
    }

    /// This certificate as an `ISSUER_CERTIFICATE` related resource.
    pub(crate) fn issuer_resource(&self) -> Resource {
        Resource::new(
            ResourceType::IssuerCertificate,
            ResourceIdentifier {
                issuer_certificate_identifier: Some(crate::IssuerCertificateIdentifier {
                    issuer_certificate_subject: Some(self.subject()),
                    issuer_id: Some(self.rec.id.clone()),
                    issuer_certificate_serial_number: Some(self.serial_hex()),
                }),
                ..Default::default()
            },
        )
        .with_info("source", self.rec.source.clone())
    }
}

/// A device or CA certificate resource identified by certificate id (its source in
/// additionalInfo, so the suppression key stays the AWS one).
pub(crate) fn cert_resource(rec: &CertRecord, ca: bool) -> Resource {
    let mut id = ResourceIdentifier::default();
    let kind = if ca {
        id.ca_certificate_id = Some(rec.id.clone());
        ResourceType::CaCertificate
    } else {
        id.device_certificate_id = Some(rec.id.clone());
        ResourceType::DeviceCertificate
    };
    Resource::new(kind, id)
        .with_info("source", rec.source.clone())
        .with_info("status", rec.status.as_str())
}

/// A registered certificate whose DER did not parse.
#[derive(Debug)]
pub(crate) struct Unparsed<'a> {
    pub(crate) rec: &'a CertRecord,
    pub(crate) ca: bool,
    pub(crate) error: String,
}

/// A revocation found on a verified CRL.
#[derive(Debug, Clone)]
pub(crate) struct Revocation {
    /// Index into `Pki::cas` of the CA whose key verified the CRL.
    pub(crate) crl_issuer: usize,
    pub(crate) crl_source: String,
    pub(crate) revoked_ms: i64,
}

/// Certificates and CRLs of one audit, parsed once.
#[derive(Debug)]
pub(crate) struct Pki<'a> {
    pub(crate) devices: Vec<ParsedCert<'a>>,
    pub(crate) cas: Vec<ParsedCert<'a>>,
    pub(crate) unparsed: Vec<Unparsed<'a>>,
    /// CRLs that did not parse or did not verify against any CA certificate.
    pub(crate) crl_problems: Vec<InputProblem>,
    /// issuer name (DER) → serial (big-endian, no leading zeros) → revocation.
    revoked: HashMap<Vec<u8>, HashMap<Vec<u8>, Revocation>>,
    /// CA subject name (DER) → indices into `cas`.
    ca_by_subject: HashMap<Vec<u8>, Vec<usize>>,
}

impl<'a> Pki<'a> {
    pub(crate) fn build(input: &'a AuditInput) -> Pki<'a> {
        let mut unparsed = Vec::new();
        let mut split = |records: &'a [CertRecord], ca: bool| -> Vec<ParsedCert<'a>> {
            let refs: Vec<&'a CertRecord> = records.iter().collect();
            let parsed = parallel::map(&refs, |rec: &&'a CertRecord| parse_cert(&rec.der), &|_| {});
            let mut ok = Vec::with_capacity(records.len());
            for (rec, p) in records.iter().zip(parsed) {
                match p {
                    Ok(x) => ok.push(ParsedCert { rec, x }),
                    Err(error) => unparsed.push(Unparsed { rec, ca, error }),
                }
            }
            ok
        };
        let devices = split(&input.device_certs, false);
        let cas = split(&input.ca_certs, true);
        let mut ca_by_subject: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for (i, ca) in cas.iter().enumerate() {
            ca_by_subject
                .entry(ca.x.tbs_certificate.subject.as_raw().to_vec())
                .or_default()
                .push(i);
        }
        let mut pki = Pki {
            devices,
            cas,
            unparsed,
            crl_problems: Vec::new(),
            revoked: HashMap::new(),
            ca_by_subject,
        };
        for crl in &input.crls {
            pki.add_crl(&crl.der, &crl.source);
        }
        pki
    }

    /// Verifies a CRL against the CA certificates named as its issuer; a CRL that verifies
    /// against none is a problem and its entries are ignored.
    fn add_crl(&mut self, der: &[u8], source: &str) {
        let problem = |message: String| InputProblem {
            source: source.to_owned(),
            message,
        };
        let crl = match CertificateRevocationList::from_der(der) {
            Ok(([], crl)) => crl,
            Ok(_) => {
                self.crl_problems
                    .push(problem("trailing bytes after the CRL".into()));
                return;
            }
            Err(e) => {
                self.crl_problems
                    .push(problem(format!("not an X.509 CRL: {e}")));
                return;
            }
        };
        let issuer = crl.tbs_cert_list.issuer.as_raw();
        let candidates = self
            .ca_by_subject
            .get(issuer)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let verified_by = candidates
            .iter()
            .copied()
            .find(|&i| crl.verify_signature(self.cas[i].x.public_key()).is_ok());
        let Some(ca) = verified_by else {
            let why = if candidates.is_empty() {
                format!(
                    "CRL issuer {} is not among the CA certificates; its entries are ignored",
                    crl.issuer()
                )
            } else {
                format!(
                    "CRL signature does not verify against its issuer {}; its entries are ignored",
                    crl.issuer()
                )
            };
            self.crl_problems.push(problem(why));
            return;
        };
        let entries = self.revoked.entry(issuer.to_vec()).or_default();
        for r in crl.iter_revoked_certificates() {
            entries.insert(
                strip_leading_zeros(r.raw_serial()).to_vec(),
                Revocation {
                    crl_issuer: ca,
                    crl_source: source.to_owned(),
                    revoked_ms: r.revocation_date.timestamp().saturating_mul(1000),
                },
            );
        }
    }

    /// The verified revocation of `cert` by its issuer, if any (matched by issuer name and
    /// serial).
    pub(crate) fn revocation(&self, cert: &X509Certificate<'_>) -> Option<&Revocation> {
        self.revoked
            .get(cert.tbs_certificate.issuer.as_raw())?
            .get(strip_leading_zeros(cert.raw_serial()))
    }

    /// The CA certificate that issued `cert`: matched by name, and by signature when several
    /// CA certificates share the name. Never `cert` itself.
    pub(crate) fn issuer_of(&self, cert: &X509Certificate<'_>) -> Option<usize> {
        let candidates = self
            .ca_by_subject
            .get(cert.tbs_certificate.issuer.as_raw())?;
        let others: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| self.cas[i].x.as_raw() != cert.as_raw())
            .collect();
        match others.as_slice() {
            [] => None,
            [one] => Some(*one),
            many => many.iter().copied().find(|&i| {
                cert.verify_signature(Some(self.cas[i].x.public_key()))
                    .is_ok()
            }),
        }
    }
}
