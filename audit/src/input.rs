//! The snapshot an audit runs over (certificates, CRLs, policies, broker files, settings) and
//! the loaders that turn PEM text and directories into it.

use std::io::Cursor;
use std::path::Path;

use serde::{Deserialize, Serialize};
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

pub use crate::x509::{CertSummary, cert_id, is_ca, summarize};

/// A certificate's registry status (AWS `CertificateStatus` / `CACertificateStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertStatus {
    /// `ACTIVE`.
    Active,
    /// `INACTIVE`.
    Inactive,
    /// `REVOKED`.
    Revoked,
    /// `PENDING_TRANSFER`.
    PendingTransfer,
    /// `REGISTER_INACTIVE`.
    RegisterInactive,
    /// `PENDING_ACTIVATION`.
    PendingActivation,
}

impl CertStatus {
    /// Every status.
    pub const ALL: [CertStatus; 6] = [
        CertStatus::Active,
        CertStatus::Inactive,
        CertStatus::Revoked,
        CertStatus::PendingTransfer,
        CertStatus::RegisterInactive,
        CertStatus::PendingActivation,
    ];

    /// Parses a wire name (exact).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Active => "ACTIVE",
            CertStatus::Inactive => "INACTIVE",
            CertStatus::Revoked => "REVOKED",
            CertStatus::PendingTransfer => "PENDING_TRANSFER",
            CertStatus::RegisterInactive => "REGISTER_INACTIVE",
            CertStatus::PendingActivation => "PENDING_ACTIVATION",
        }
    }

    /// ACTIVE or PENDING_TRANSFER: the statuses AWS's certificate checks look at.
    pub fn is_active(self) -> bool {
        matches!(self, CertStatus::Active | CertStatus::PendingTransfer)
    }
}

/// A registered certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertRecord {
    /// Certificate id: 64 lowercase hex, SHA-256 of `der` (see `cert_id`).
    pub id: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Registry status.
    pub status: CertStatus,
    /// Where it came from: `file.pem:12` or `api`.
    pub source: String,
    /// Things the certificate is attached to.
    pub things: Vec<String>,
    /// Registration time, epoch milliseconds.
    pub created_ms: i64,
}

/// A certificate revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrlRecord {
    /// The CRL, DER.
    pub der: Vec<u8>,
    /// Where it came from (`path:line`).
    pub source: String,
}

/// One version of an IoT policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRecord {
    /// Policy name.
    pub name: String,
    /// Version id (digits).
    pub version_id: String,
    /// The policy document as stored (JSON text, possibly invalid).
    pub document: String,
    /// Whether this is the default version (only default versions are audited).
    pub is_default: bool,
    /// Where it came from (`api:<name>` or `path:line`).
    pub source: String,
    /// Certificate ids the policy is attached to.
    pub targets: Vec<String>,
}

/// A text file to audit: a broker configuration or a connection log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextSource {
    /// Path (used in findings and to resolve `include_dir` / `acl_file` / `password_file`).
    pub path: String,
    /// The file's text.
    pub text: String,
}

/// thingward's own logging configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggingSettings {
    /// thingward's configured log level; `None` or `DISABLED` means off.
    pub thingward_log_level: Option<String>,
}

/// Something a loader could not read; reported by `AUDIT_INPUT_UNREADABLE_CHECK`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputProblem {
    /// `path:line` or `api:<id>`.
    pub source: String,
    /// What is wrong.
    pub message: String,
}

/// Everything an audit looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditInput {
    /// Device certificates.
    pub device_certs: Vec<CertRecord>,
    /// CA certificates (roots and intermediates).
    pub ca_certs: Vec<CertRecord>,
    /// CRLs; each counts only if its signature verifies against a CA certificate.
    pub crls: Vec<CrlRecord>,
    /// Policy versions.
    pub policies: Vec<PolicyRecord>,
    /// The Mosquitto configuration; `include_dir`, `acl_file` and `password_file` are read from
    /// the filesystem relative to its path.
    pub broker_config: Option<TextSource>,
    /// The Mosquitto log with connection messages.
    pub connection_log: Option<TextSource>,
    /// thingward's own logging.
    pub logging: LoggingSettings,
    /// Loader errors.
    pub problems: Vec<InputProblem>,
}

/// Certificates and CRLs found in PEM text (or DER files), each with its `path:line`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PemBundle {
    /// Certificates: DER and `path:line` of the BEGIN line.
    pub certs: Vec<(Vec<u8>, String)>,
    /// CRLs: DER and `path:line` of the BEGIN line.
    pub crls: Vec<(Vec<u8>, String)>,
    /// Blocks that could not be used, with `path:line`.
    pub problems: Vec<InputProblem>,
}

impl PemBundle {
    fn problem(&mut self, source: String, message: impl Into<String>) {
        self.problems.push(InputProblem {
            source,
            message: message.into(),
        });
    }

    fn append(&mut self, other: PemBundle) {
        self.certs.extend(other.certs);
        self.crls.extend(other.crls);
        self.problems.extend(other.problems);
    }

    /// Adds one DER object (certificate or CRL) after checking that it parses.
    fn push_der(&mut self, kind: BlockKind, der: Vec<u8>, source: String) {
        match kind {
            BlockKind::Certificate => match crate::x509::parse_cert(&der) {
                Ok(_) => self.certs.push((der, source)),
                Err(e) => self.problem(source, e),
            },
            BlockKind::Crl => match CertificateRevocationList::from_der(&der) {
                Ok(([], _)) => self.crls.push((der, source)),
                Ok(_) => self.problem(source, "trailing bytes after the CRL"),
                Err(e) => self.problem(source, format!("not an X.509 CRL: {e}")),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Certificate,
    Crl,
}

/// Labels that may sit in a certificate directory and are not audited (keys, requests).
fn is_ignored_label(label: &str) -> bool {
    label.ends_with("PRIVATE KEY")
        || label.ends_with("PUBLIC KEY")
        || label.ends_with("PARAMETERS")
        || label.contains("CERTIFICATE REQUEST")
}

/// Parses every PEM block in `text`: `CERTIFICATE` / `TRUSTED CERTIFICATE` blocks become
/// certificates, `X509 CRL` blocks CRLs; keys and requests are skipped; anything else (bad
/// base64, a missing END line, DER that does not parse, unknown labels, text with no PEM at
/// all) becomes a problem naming `path:line`. Never panics.
pub fn parse_pem_bundle(text: &str, path: &str) -> PemBundle {
    let mut bundle = PemBundle::default();
    let mut lines = text.lines().enumerate().peekable();
    let mut blocks = 0usize;
    while let Some((idx, line)) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        blocks += 1;
        let source = format!("{path}:{}", idx + 1);
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        // A BEGIN line inside a block ends it unclosed and starts the next block.
        while let Some((_, l)) = lines.next_if(|(_, l)| !l.trim().starts_with("-----BEGIN ")) {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        if !closed {
            bundle.problem(
                source,
                format!("PEM block {label} has no matching END line"),
            );
            continue;
        }
        let kind = match label {
            "CERTIFICATE" | "TRUSTED CERTIFICATE" => BlockKind::Certificate,
            "X509 CRL" => BlockKind::Crl,
            l if is_ignored_label(l) => continue,
            other => {
                bundle.problem(source, format!("unsupported PEM block {other}"));
                continue;
            }
        };
        // Headers (Proc-Type etc.) are not used by certificates; x509-parser decodes the body.
        let wrapped = format!("-----BEGIN {label}-----\n{body}-----END {label}-----\n");
        match Pem::read(Cursor::new(wrapped.as_bytes())) {
            Ok((pem, _)) => bundle.push_der(kind, pem.contents, source),
            Err(e) => bundle.problem(source, format!("PEM block {label} does not decode: {e}")),
        }
    }
    if blocks == 0 && !text.trim().is_empty() {
        bundle.problem(format!("{path}:1"), "no PEM blocks found");
    }
    bundle
}

/// Loads every `*.pem`, `*.crt`, `*.crl` and `*.cer` file of `dir` (not recursive), in file
/// name order. PEM text is parsed with `parse_pem_bundle`; binary files are read as one DER
/// certificate or CRL. Unreadable files become problems.
///
/// # Errors
/// The directory itself cannot be listed.
pub fn load_dir(dir: &Path) -> std::io::Result<PemBundle> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(
                        e.to_ascii_lowercase().as_str(),
                        "pem" | "crt" | "crl" | "cer"
                    )
                })
        })
        .collect();
    paths.sort();
    let mut bundle = PemBundle::default();
    for p in paths {
        let name = p.display().to_string();
        match std::fs::read(&p) {
            Err(e) => bundle.problem(format!("{name}:1"), format!("cannot read: {e}")),
            Ok(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) if text.contains("-----BEGIN ") => {
                    bundle.append(parse_pem_bundle(text, &name))
                }
                _ => {
                    let is_crl = p
                        .extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| e.eq_ignore_ascii_case("crl"));
                    let kind = if is_crl {
                        BlockKind::Crl
                    } else {
                        BlockKind::Certificate
                    };
                    bundle.push_der(kind, bytes, format!("{name}:1"));
                }
            },
        }
    }
    Ok(bundle)
}
