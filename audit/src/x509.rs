//! Certificate introspection over x509-parser: key algorithm and size, curve, signature
//! algorithm names, serials and times, and the `CertSummary` the service shows.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::oid_registry::Oid;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// What `summarize` reports about one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertSummary {
    /// Certificate id (SHA-256 of the DER, lowercase hex).
    pub id: String,
    /// Subject (RFC 4514).
    pub subject: String,
    /// Issuer (RFC 4514).
    pub issuer: String,
    /// Serial number, lowercase hex without leading zero bytes.
    pub serial_hex: String,
    /// notBefore, epoch milliseconds.
    pub not_before_ms: i64,
    /// notAfter, epoch milliseconds.
    pub not_after_ms: i64,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// `RSA`, `EC`, `DSA`, `ED25519`, `ED448` or the algorithm OID.
    pub key_algorithm: String,
    /// Key size in bits (RSA modulus, EC field, DSA y), 0 when unknown.
    pub key_bits: u32,
    /// Signature algorithm name (e.g. `sha256WithRSAEncryption`) or its OID.
    pub signature_algorithm: String,
}

/// A certificate id: lowercase hex SHA-256 of the DER (AWS `certificateId`).
pub fn cert_id(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Parses one DER certificate.
///
/// # Errors
/// A message naming what x509-parser rejected.
pub(crate) fn parse_cert(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(format!(
            "{} trailing bytes after the certificate",
            rest.len()
        )),
        Err(e) => Err(format!("not an X.509 certificate: {e}")),
    }
}

/// Summarises a DER certificate (for DescribeCertificate and the CLI).
///
/// # Errors
/// The DER is not an X.509 certificate.
pub fn summarize(der: &[u8]) -> Result<CertSummary, String> {
    let cert = parse_cert(der)?;
    let key = KeyInfo::of(cert.public_key());
    Ok(CertSummary {
        id: cert_id(der),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial_hex: serial_hex(cert.raw_serial()),
        not_before_ms: cert.validity().not_before.timestamp().saturating_mul(1000),
        not_after_ms: cert.validity().not_after.timestamp().saturating_mul(1000),
        is_ca: cert.is_ca(),
        key_algorithm: key.algorithm.name(),
        key_bits: key.bits,
        signature_algorithm: signature_name(&cert.signature_algorithm.algorithm),
    })
}

/// Whether a DER certificate has basicConstraints CA:TRUE.
///
/// # Errors
/// The DER is not an X.509 certificate.
pub fn is_ca(der: &[u8]) -> Result<bool, String> {
    parse_cert(der).map(|c| c.is_ca())
}

/// Lowercase hex of a big-endian integer without leading zero bytes ("0" for zero).
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let trimmed = strip_leading_zeros(raw);
    if trimmed.is_empty() {
        "0".to_owned()
    } else {
        hex::encode(trimmed)
    }
}

/// The bytes of a big-endian unsigned integer without leading zeros.
pub(crate) fn strip_leading_zeros(raw: &[u8]) -> &[u8] {
    let first = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    &raw[first..]
}

/// A public key algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyAlgorithm {
    Rsa,
    /// EC with the named-curve OID (dotted), if present.
    Ec(Option<String>),
    Dsa,
    Ed25519,
    Ed448,
    Other(String),
}

impl KeyAlgorithm {
    fn name(&self) -> String {
        match self {
            KeyAlgorithm::Rsa => "RSA".into(),
            KeyAlgorithm::Ec(_) => "EC".into(),
            KeyAlgorithm::Dsa => "DSA".into(),
            KeyAlgorithm::Ed25519 => "ED25519".into(),
            KeyAlgorithm::Ed448 => "ED448".into(),
            KeyAlgorithm::Other(oid) => oid.clone(),
        }
    }
}

/// Algorithm, size and (for RSA) modulus of a public key.
#[derive(Debug, Clone)]
pub(crate) struct KeyInfo {
    pub(crate) algorithm: KeyAlgorithm,
    pub(crate) bits: u32,
    /// Big-endian RSA modulus without leading zeros.
    pub(crate) rsa_modulus: Option<Vec<u8>>,
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_DSA: &str = "1.2.840.10040.4.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";

impl KeyInfo {
    pub(crate) fn of(spki: &SubjectPublicKeyInfo<'_>) -> KeyInfo {
        let oid = spki.algorithm.algorithm.to_id_string();
        let parsed = spki.parsed().ok();
        match oid.as_str() {
            OID_RSA => {
                // x509-parser's RSA key_size() is wrong for moduli without a leading zero byte:
                // count the bits ourselves.
                let modulus = match &parsed {
                    Some(PublicKey::RSA(rsa)) => Some(strip_leading_zeros(rsa.modulus)),
                    _ => None,
                };
                let bits = modulus.map_or(0, bit_length);
                let modulus = modulus.map(<[u8]>::to_vec);
                KeyInfo {
                    algorithm: KeyAlgorithm::Rsa,
                    bits,
                    rsa_modulus: modulus,
                }
            }
            OID_EC => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                let bits = curve
                    .as_deref()
                    .and_then(curve_bits)
                    .unwrap_or_else(|| parsed.as_ref().map_or(0, |k| k.key_size() as u32));
                KeyInfo {
                    algorithm: KeyAlgorithm::Ec(curve),
                    bits,
                    rsa_modulus: None,
                }
            }
            OID_DSA => {
                let bits = match &parsed {
                    Some(PublicKey::DSA(y)) => bit_length(strip_leading_zeros(y)),
                    _ => 0,
                };
                KeyInfo {
                    algorithm: KeyAlgorithm::Dsa,
                    bits,
                    rsa_modulus: None,
                }
            }
            OID_ED25519 => KeyInfo {
                algorithm: KeyAlgorithm::Ed25519,
                bits: 256,
                rsa_modulus: None,
            },
            OID_ED448 => KeyInfo {
                algorithm: KeyAlgorithm::Ed448,
                bits: 456,
                rsa_modulus: None,
            },
            _ => KeyInfo {
                algorithm: KeyAlgorithm::Other(oid),
                bits: 0,
                rsa_modulus: None,
            },
        }
    }
}

/// Bit length of a big-endian integer without leading zero bytes.
pub(crate) fn bit_length(be: &[u8]) -> u32 {
    match be.first() {
        None => 0,
        Some(&b) => (be.len() as u32 - 1) * 8 + (8 - b.leading_zeros()),
    }
}

/// Named curves thingward accepts (P-256 or stronger), with their size.
pub(crate) fn strong_curve_name(oid: &str) -> Option<&'static str> {
    match oid {
        "1.2.840.10045.3.1.7" => Some("P-256"),
        "1.3.132.0.34" => Some("P-384"),
        "1.3.132.0.35" => Some("P-521"),
        "1.3.132.0.10" => Some("secp256k1"),
        "1.3.36.3.3.2.8.1.1.7" => Some("brainpoolP256r1"),
        "1.3.36.3.3.2.8.1.1.11" => Some("brainpoolP384r1"),
        "1.3.36.3.3.2.8.1.1.13" => Some("brainpoolP512r1"),
        _ => None,
    }
}

/// Curve name for weak curves we can name (for messages).
pub(crate) fn weak_curve_name(oid: &str) -> Option<&'static str> {
    match oid {
        "1.2.840.10045.3.1.1" => Some("P-192"),
        "1.3.132.0.33" => Some("P-224"),
        "1.3.132.0.8" => Some("secp160r1"),
        "1.3.132.0.9" => Some("secp160k1"),
        "1.3.132.0.31" => Some("secp192k1"),
        "1.3.132.0.32" => Some("secp224k1"),
        _ => None,
    }
}

fn curve_bits(oid: &str) -> Option<u32> {
    Some(match oid {
        "1.2.840.10045.3.1.7" | "1.3.132.0.10" | "1.3.36.3.3.2.8.1.1.7" => 256,
        "1.3.132.0.34" | "1.3.36.3.3.2.8.1.1.11" => 384,
        "1.3.132.0.35" => 521,
        "1.3.36.3.3.2.8.1.1.13" => 512,
        "1.2.840.10045.3.1.1" | "1.3.132.0.31" => 192,
        "1.3.132.0.33" | "1.3.132.0.32" => 224,
        "1.3.132.0.8" | "1.3.132.0.9" => 160,
        _ => return None,
    })
}

/// Name of a signature algorithm OID; the dotted OID when unknown.
pub(crate) fn signature_name(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    let name = match id.as_str() {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.3" => "dsa-with-sha1",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-sha256",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        _ => return id,
    };
    name.to_owned()
}

/// Whether a signature algorithm name uses SHA-1, MD5 or MD2.
pub(crate) fn is_weak_signature(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("md2") || lower.starts_with("md5") || lower.contains("sha1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length_counts_significant_bits() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[0x7f, 0, 0]), 23);
        assert_eq!(serial_hex(&[0, 0, 0x1a, 2]), "1a02");
        assert_eq!(serial_hex(&[0]), "0");
    }

    #[test]
    fn weak_signature_names() {
        assert!(is_weak_signature("sha1WithRSAEncryption"));
        assert!(is_weak_signature("ecdsa-with-SHA1"));
        assert!(is_weak_signature("md5WithRSAEncryption"));
        assert!(!is_weak_signature("sha256WithRSAEncryption"));
        assert!(!is_weak_signature("ecdsa-with-SHA256"));
    }
}
