//! AWS Signature Version 4 verification (`AWS4-HMAC-SHA256`, signing service `iot`), built to
//! reproduce botocore's `SigV4Auth` canonical request byte for byte.
//!
//! Both forms botocore produces are accepted: the `Authorization` header, and presigned URLs
//! (`X-Amz-Algorithm`, `X-Amz-Credential`, … in the query string, as `SigV4QueryAuth` makes).

use axum::http::HeaderMap;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};
use sha2::{Digest, Sha256};

use super::{AuthError, Credentials, Principal};

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm SigV4 defines.
pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The signing name in the IoT service model (not `execute-api`).
pub(crate) const SERVICE: &str = "iot";
/// How far `X-Amz-Date` may be from the server clock, as in AWS.
pub(crate) const MAX_CLOCK_SKEW: TimeDelta = TimeDelta::minutes(15);
/// Longest validity a presigned URL may ask for (7 days, as in AWS).
const MAX_PRESIGN_EXPIRES_SECS: i64 = 604_800;
/// `X-Amz-Date` format.
const TIMESTAMP_FORMAT: &str = "%Y%m%dT%H%M%SZ";
const TERMINATOR: &str = "aws4_request";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const CONTENT_SHA256_HEADER: &str = "x-amz-content-sha256";

/// Python's `urllib.parse.quote` keeps letters, digits and `_.-~` plus its `safe` argument.
/// botocore's query encoding uses `safe='-_.~'`, i.e. AWS's unreserved set.
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// botocore's canonical-URI encoding: `quote(path, safe='/~')`.
const PATH_ENCODE: &AsciiSet = &QUERY_ENCODE.remove(b'/');

/// Verifies a SigV4-signed request (header or presigned-URL form) and returns who signed it.
///
/// `raw_path` and `raw_query` are exactly as received (still percent-encoded); `headers` must
/// contain `host` (add it from the URI authority for HTTP/2). Any region is accepted; it is
/// reported in the [`Principal`].
///
/// # Errors
///
/// - [`AuthError::MissingAuthentication`]: neither an `Authorization: AWS4-HMAC-SHA256` header
///   nor presigned query parameters;
/// - [`AuthError::IncompleteSignature`]: the signature data is malformed;
/// - [`AuthError::UnrecognizedClient`]: the access key id is unknown;
/// - [`AuthError::WrongService`], [`AuthError::ScopeDateMismatch`],
///   [`AuthError::SignatureExpired`], [`AuthError::SignatureNotYetCurrent`],
///   [`AuthError::ContentSha256Mismatch`], [`AuthError::SignatureMismatch`]: the signature does
///   not hold for this request at `now`.
pub(crate) fn verify_sigv4(
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    creds: &Credentials,
    now: DateTime<Utc>,
) -> Result<Principal, AuthError> {
    let query = raw_query.unwrap_or("");
    let signed = if let Some(auth) = authorization_header(headers) {
        SignedRequest::from_header(auth, headers)?
    } else if is_presigned(query) {
        SignedRequest::from_query(query, now)?
    } else {
        return Err(AuthError::MissingAuthentication);
    };

    let key = creds
        .access_key(&signed.access_key_id)
        .ok_or(AuthError::UnrecognizedClient)?;
    if signed.service != SERVICE {
        return Err(AuthError::WrongService {
            service: signed.service,
        });
    }
    if signed.scope_date != signed.timestamp.get(..8).unwrap_or_default() {
        return Err(AuthError::ScopeDateMismatch {
            scope_date: signed.scope_date,
            timestamp: signed.timestamp,
        });
    }
    check_skew(&signed.timestamp, signed.date, now)?;

    let payload_hash = payload_hash(headers, body)?;
    let canonical_uri = canonical_uri(raw_path);
    let canonical_headers = canonical_headers(&signed.signed_headers, headers)?;
    let signing_key = signing_key(
        &key.secret,
        &signed.scope_date,
        &signed.region,
        &signed.service,
    );
    let scope = format!(
        "{}/{}/{}/{TERMINATOR}",
        signed.scope_date, signed.region, signed.service
    );

    // botocore signs the raw query pairs of the URL, sorted (its "URL mode"); other SDKs
    // decode and re-encode them. For anything botocore itself encoded the two are equal;
    // try the second only when they differ.
    let skip = if signed.presigned {
        Some("X-Amz-Signature")
    } else {
        None
    };
    let normalized = canonical_query_normalized(query, skip);
    let raw = canonical_query_raw(query, skip);
    let candidates: &[&str] = if raw == normalized {
        &[normalized.as_str()]
    } else {
        &[normalized.as_str(), raw.as_str()]
    };

    for canonical_query in candidates {
        let canonical_request = [
            method,
            &canonical_uri,
            canonical_query,
            &canonical_headers,
            &signed.signed_headers,
            &payload_hash,
        ]
        .join("\n");
        let string_to_sign = format!(
            "{ALGORITHM}\n{}\n{scope}\n{}",
            signed.timestamp,
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let mut mac = hmac(&signing_key);
        mac.update(string_to_sign.as_bytes());
        // `verify_slice` compares in constant time.
        if mac.verify_slice(&signed.signature).is_ok() {
            return Ok(Principal::AccessKey {
                access_key_id: signed.access_key_id,
                region: signed.region,
            });
        }
    }
    Err(AuthError::SignatureMismatch)
}

/// The signature data of one request, from the header or the query string.
#[derive(Debug)]
struct SignedRequest {
    access_key_id: String,
    scope_date: String,
    region: String,
    service: String,
    signed_headers: String,
    /// Decoded from hex.
    signature: Vec<u8>,
    /// The `X-Amz-Date` form of the signing time, as it goes into the string to sign.
    timestamp: String,
    date: DateTime<Utc>,
    presigned: bool,
}

impl SignedRequest {
    /// `AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/iot/aws4_request,
    /// SignedHeaders=host;x-amz-date, Signature=<hex>`.
    fn from_header(auth: &str, headers: &HeaderMap) -> Result<Self, AuthError> {
        let params = auth
            .strip_prefix(ALGORITHM)
            .filter(|rest| rest.starts_with(' '))
            .ok_or(AuthError::IncompleteSignature(
                "Unsupported Authorization algorithm",
            ))?;
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in params.split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed_headers = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {}
            }
        }
        let credential = credential.ok_or(AuthError::IncompleteSignature(
            "Authorization header requires 'Credential' parameter.",
        ))?;
        let signed_headers = signed_headers.ok_or(AuthError::IncompleteSignature(
            "Authorization header requires 'SignedHeaders' parameter.",
        ))?;
        let signature = signature.ok_or(AuthError::IncompleteSignature(
            "Authorization header requires 'Signature' parameter.",
        ))?;
        let (timestamp, date) = request_time(headers)?;
        Self::new(
            credential,
            signed_headers,
            signature,
            timestamp,
            date,
            false,
        )
    }

    /// Presigned URL: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
    /// `X-Amz-SignedHeaders`, `X-Amz-Signature` in the query string.
    fn from_query(query: &str, now: DateTime<Utc>) -> Result<Self, AuthError> {
        let get = |name: &str| -> Option<String> {
            query.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k == name).then(|| percent_decode_str(v).decode_utf8_lossy().into_owned())
            })
        };
        let missing = AuthError::IncompleteSignature(
            "Presigned URLs require X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, \
             X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature.",
        );
        let (
            Some(algorithm),
            Some(credential),
            Some(timestamp),
            Some(expires),
            Some(signed_headers),
            Some(signature),
        ) = (
            get("X-Amz-Algorithm"),
            get("X-Amz-Credential"),
            get("X-Amz-Date"),
            get("X-Amz-Expires"),
            get("X-Amz-SignedHeaders"),
            get("X-Amz-Signature"),
        )
        else {
            return Err(missing);
        };
        if algorithm != ALGORITHM {
            return Err(AuthError::IncompleteSignature(
                "Unsupported X-Amz-Algorithm",
            ));
        }
        let date = parse_timestamp(&timestamp)?;
        let expires = expires
            .parse::<i64>()
            .ok()
            .filter(|s| (1..=MAX_PRESIGN_EXPIRES_SECS).contains(s))
            .ok_or(AuthError::IncompleteSignature(
                "X-Amz-Expires must be a number of seconds from 1 to 604800.",
            ))?;
        if now > date + TimeDelta::seconds(expires) {
            return Err(AuthError::PresignedUrlExpired);
        }
        Self::new(
            &credential,
            &signed_headers,
            &signature,
            timestamp,
            date,
            true,
        )
    }

    fn new(
        credential: &str,
        signed_headers: &str,
        signature: &str,
        timestamp: String,
        date: DateTime<Utc>,
        presigned: bool,
    ) -> Result<Self, AuthError> {
        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
            return Err(AuthError::IncompleteSignature(
                "Credential must have the form <access key id>/<date>/<region>/<service>/aws4_request.",
            ));
        };
        if terminator != TERMINATOR {
            return Err(AuthError::IncompleteSignature(
                "Credential should be scoped with a valid terminator: 'aws4_request'.",
            ));
        }
        if signed_headers.is_empty() {
            return Err(AuthError::IncompleteSignature(
                "SignedHeaders must not be empty.",
            ));
        }
        let signature = hex::decode(signature)
            .map_err(|_| AuthError::IncompleteSignature("Signature must be hexadecimal."))?;
        Ok(Self {
            access_key_id: access_key_id.to_owned(),
            scope_date: scope_date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers: signed_headers.to_owned(),
            signature,
            timestamp,
            date,
            presigned,
        })
    }
}

/// Whether the request carries SigV4 data at all (header or presigned query), so callers can
/// refuse other requests before reading their body.
pub(crate) fn has_sigv4(headers: &HeaderMap, raw_query: Option<&str>) -> bool {
    authorization_header(headers).is_some() || raw_query.is_some_and(is_presigned)
}

fn is_presigned(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair.starts_with("X-Amz-Algorithm="))
}

/// The `Authorization` header when it carries SigV4 (other schemes are not ours to judge).
fn authorization_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with(ALGORITHM))
}

/// The signing time: `X-Amz-Date`, or else `Date` (botocore uses `Date` when the caller set one).
fn request_time(headers: &HeaderMap) -> Result<(String, DateTime<Utc>), AuthError> {
    if let Some(value) = headers.get("x-amz-date") {
        let timestamp = value
            .to_str()
            .map_err(|_| AuthError::IncompleteSignature("X-Amz-Date is not a valid timestamp."))?
            .to_owned();
        let date = parse_timestamp(&timestamp)?;
        return Ok((timestamp, date));
    }
    if let Some(value) = headers.get(axum::http::header::DATE) {
        let date = value
            .to_str()
            .ok()
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
            .ok_or(AuthError::IncompleteSignature(
                "Date is not a valid RFC 1123 date.",
            ))?
            .with_timezone(&Utc);
        return Ok((date.format(TIMESTAMP_FORMAT).to_string(), date));
    }
    Err(AuthError::IncompleteSignature(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    ))
}

fn parse_timestamp(timestamp: &str) -> Result<DateTime<Utc>, AuthError> {
    NaiveDateTime::parse_from_str(timestamp, TIMESTAMP_FORMAT)
        .map(|d| d.and_utc())
        .map_err(|_| {
            AuthError::IncompleteSignature("X-Amz-Date must have the form YYYYMMDDTHHMMSSZ.")
        })
}

fn check_skew(timestamp: &str, date: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), AuthError> {
    let fmt = |d: DateTime<Utc>| d.format(TIMESTAMP_FORMAT).to_string();
    if date < now - MAX_CLOCK_SKEW {
        return Err(AuthError::SignatureExpired {
            signed: timestamp.to_owned(),
            earliest: fmt(now - MAX_CLOCK_SKEW),
            now: fmt(now),
        });
    }
    if date > now + MAX_CLOCK_SKEW {
        return Err(AuthError::SignatureNotYetCurrent {
            signed: timestamp.to_owned(),
            latest: fmt(now + MAX_CLOCK_SKEW),
            now: fmt(now),
        });
    }
    Ok(())
}

/// SHA-256 hex of the body. botocore puts `X-Amz-Content-SHA256` verbatim into the canonical
/// request when the header is present, so we do too, but only once it is known to be true:
/// it must equal the body's hash, or be `UNSIGNED-PAYLOAD` on an empty body (an unsigned
/// non-empty body could be swapped in transit).
fn payload_hash(headers: &HeaderMap, body: &[u8]) -> Result<String, AuthError> {
    let computed = hex::encode(Sha256::digest(body));
    let Some(value) = headers.get(CONTENT_SHA256_HEADER) else {
        return Ok(computed);
    };
    let value = value
        .to_str()
        .map_err(|_| AuthError::ContentSha256Mismatch)?;
    if value == UNSIGNED_PAYLOAD && body.is_empty() {
        return Ok(value.to_owned());
    }
    if value.eq_ignore_ascii_case(&computed) {
        return Ok(value.to_owned());
    }
    Err(AuthError::ContentSha256Mismatch)
}

/// botocore: `quote(remove_dot_segments(path), safe='/~')` on the path as sent, which is
/// already percent-encoded, so `%3A` becomes `%253A` (every SDK double-encodes for non-S3
/// services). `remove_dot_segments` also drops empty segments (`//`).
pub(crate) fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = String::with_capacity(raw_path.len() + 1);
    if raw_path.starts_with('/') {
        path.push('/');
    }
    path.push_str(&segments.join("/"));
    if raw_path.ends_with('/') && !segments.is_empty() {
        path.push('/');
    }
    percent_encode(path.as_bytes(), PATH_ENCODE).to_string()
}

/// botocore's URL mode: split on `&`, split each pair at the first `=`, sort the raw
/// (key, value) pairs, join. No re-encoding.
fn canonical_query_raw(query: &str, skip: Option<&str>) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .filter(|(k, _)| Some(*k) != skip)
        .collect();
    pairs.sort_unstable();
    join_pairs(pairs.iter().map(|(k, v)| (*k, *v)))
}

/// The SigV4 specification's form: percent-decode each key and value, re-encode with the
/// unreserved set `A-Za-z0-9-_.~`, sort by key then value.
fn canonical_query_normalized(query: &str, skip: Option<&str>) -> String {
    let reencode = |s: &str| {
        let bytes: Vec<u8> = percent_decode_str(s).collect();
        percent_encode(&bytes, QUERY_ENCODE).to_string()
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .filter(|(k, _)| Some(*k) != skip)
        .map(|(k, v)| (reencode(k), reencode(v)))
        .collect();
    pairs.sort_unstable();
    join_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn join_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// `name:value` lines for the headers in `signed_headers` (in that order), followed by the
/// blank line botocore appends. Values of repeated headers are joined with `,`; each is
/// trimmed with runs of whitespace collapsed to one space (Python `' '.join(v.split())`).
fn canonical_headers(signed_headers: &str, headers: &HeaderMap) -> Result<String, AuthError> {
    let mut out = String::new();
    for name in signed_headers.split(';') {
        let name = name.trim().to_ascii_lowercase();
        let mut values = headers.get_all(name.as_str()).iter().peekable();
        if values.peek().is_none() {
            // A header the client signed is gone: the request is not the one signed.
            return Err(AuthError::SignatureMismatch);
        }
        out.push_str(&name);
        out.push(':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_trimmed(&mut out, value.as_bytes());
        }
        out.push('\n');
    }
    Ok(out)
}

/// Appends `value` with whitespace runs collapsed. http.client sends header text as
/// Latin-1 and botocore hashes the UTF-8 of that text, so each byte maps to one char.
fn push_trimmed(out: &mut String, value: &[u8]) {
    let is_space = |c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c);
    let text: String = value.iter().map(|&b| char::from(b)).collect();
    for (i, word) in text.split(is_space).filter(|w| !w.is_empty()).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

fn hmac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this never fails.
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of every length"),
    }
}

fn hmac_bytes(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac(key);
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac_bytes(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac_bytes(&k_date, region);
    let k_service = hmac_bytes(&k_region, service);
    hmac_bytes(&k_service, TERMINATOR)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap (STYLE.md: allow-unwrap-in-tests).
pub(crate) mod tests {
    use super::*;
    use crate::auth::credentials::AccessKey;
    use axum::http::{HeaderName, HeaderValue};
    use serde::Deserialize;

    /// Output of `tests/sigv4_vectors.py` (botocore signing real boto3 IoT requests).
    const VECTORS_JSON: &str = include_str!("testdata/sigv4_vectors.json");

    #[derive(Debug, Deserialize)]
    pub(crate) struct Vectors {
        pub(crate) access_key_id: String,
        pub(crate) secret_access_key: String,
        pub(crate) now: DateTime<Utc>,
        pub(crate) vectors: Vec<Vector>,
    }

    #[derive(Debug, Clone, Deserialize)]
    pub(crate) struct Vector {
        pub(crate) name: String,
        pub(crate) method: String,
        pub(crate) path: String,
        pub(crate) query: Option<String>,
        pub(crate) headers: Vec<(String, String)>,
        pub(crate) body: String,
    }

    impl Vector {
        pub(crate) fn header_map(&self) -> HeaderMap {
            let mut map = HeaderMap::new();
            for (name, value) in &self.headers {
                map.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            map
        }

        fn verify(&self, creds: &Credentials, now: DateTime<Utc>) -> Result<Principal, AuthError> {
            verify_sigv4(
                &self.method,
                &self.path,
                self.query.as_deref(),
                &self.header_map(),
                self.body.as_bytes(),
                creds,
                now,
            )
        }
    }

    pub(crate) fn vectors() -> Vectors {
        serde_json::from_str(VECTORS_JSON).unwrap()
    }

    pub(crate) fn vector(name: &str) -> (Vector, Credentials, DateTime<Utc>) {
        let all = vectors();
        let creds = creds_of(&all);
        let v = all.vectors.into_iter().find(|v| v.name == name).unwrap();
        (v, creds, all.now)
    }

    pub(crate) fn creds_of(all: &Vectors) -> Credentials {
        Credentials {
            access_keys: vec![
                AccessKey {
                    id: "TWOTHERKEY0000000000".into(),
                    secret: "other".into(),
                },
                AccessKey {
                    id: all.access_key_id.clone(),
                    secret: all.secret_access_key.clone(),
                },
            ],
            tokens: vec![],
        }
    }

    fn assert_mismatch(result: Result<Principal, AuthError>) {
        assert!(
            matches!(result, Err(AuthError::SignatureMismatch)),
            "{result:?}"
        );
    }

    #[test]
    fn accepts_every_botocore_vector() {
        let all = vectors();
        let creds = creds_of(&all);
        assert!(all.vectors.len() >= 7);
        for v in &all.vectors {
            let principal = v
                .verify(&creds, all.now)
                .unwrap_or_else(|e| panic!("{}: {e:?}", v.name));
            let Principal::AccessKey { access_key_id, .. } = principal else {
                panic!("{}", v.name)
            };
            assert_eq!(access_key_id, all.access_key_id);
        }
    }

    #[test]
    fn reports_region_from_the_credential_scope() {
        let (v, creds, now) = vector("raw_repeated_query_keys_and_header_spaces");
        let Ok(Principal::AccessKey { region, .. }) = v.verify(&creds, now) else {
            panic!()
        };
        assert_eq!(region, "eu-west-1");
    }

    #[test]
    fn rejects_a_changed_body_byte() {
        let (mut v, creds, now) = vector("create_security_profile_colon_name");
        v.body = v.body.replacen("100", "101", 1);
        assert_mismatch(v.verify(&creds, now));
    }

    #[test]
    fn rejects_a_body_on_a_bodyless_request() {
        let (mut v, creds, now) = vector("delete_security_profile_no_body");
        v.body = "{}".into();
        assert_mismatch(v.verify(&creds, now));
    }

    #[test]
    fn rejects_a_changed_query_value() {
        let (mut v, creds, now) = vector("list_security_profiles");
        v.query = Some("maxResults=6&nextToken=abc".into());
        assert_mismatch(v.verify(&creds, now));
        let (mut v, creds, now) = vector("presigned_list_security_profiles");
        v.query = v.query.map(|q| q.replace("maxResults=5", "maxResults=6"));
        assert_mismatch(v.verify(&creds, now));
    }

    #[test]
    fn rejects_a_changed_path() {
        let (mut v, creds, now) = vector("update_security_profile_expected_version");
        v.path = "/security-profiles/my%3Aprofile2".into();
        assert_mismatch(v.verify(&creds, now));
    }

    #[test]
    fn rejects_a_wrong_secret() {
        let all = vectors();
        let creds = Credentials {
            access_keys: vec![AccessKey {
                id: all.access_key_id.clone(),
                secret: "wrong".into(),
            }],
            tokens: vec![],
        };
        for v in &all.vectors {
            assert_mismatch(v.verify(&creds, all.now));
        }
    }

    #[test]
    fn rejects_an_unknown_key_id() {
        let all = vectors();
        let creds = Credentials {
            access_keys: vec![AccessKey {
                id: "TWSOMEONEELSE0000000".into(),
                secret: all.secret_access_key.clone(),
            }],
            tokens: vec![],
        };
        for v in &all.vectors {
            assert!(
                matches!(
                    v.verify(&creds, all.now),
                    Err(AuthError::UnrecognizedClient)
                ),
                "{}",
                v.name
            );
        }
    }

    #[test]
    fn rejects_a_date_more_than_15_minutes_off() {
        let (v, creds, now) = vector("list_violation_events_time_query");
        assert!(v.verify(&creds, now + TimeDelta::minutes(15)).is_ok());
        assert!(v.verify(&creds, now - TimeDelta::minutes(15)).is_ok());
        let late = v.verify(&creds, now + TimeDelta::minutes(16));
        assert!(
            matches!(late, Err(AuthError::SignatureExpired { .. })),
            "{late:?}"
        );
        let early = v.verify(&creds, now - TimeDelta::minutes(16));
        assert!(
            matches!(early, Err(AuthError::SignatureNotYetCurrent { .. })),
            "{early:?}"
        );
        let message = late.unwrap_err().to_string();
        assert!(
            message.starts_with("Signature expired: 20250101T120000Z is now earlier than"),
            "{message}"
        );
        assert_eq!(
            AuthError::SignatureExpired {
                signed: String::new(),
                earliest: String::new(),
                now: String::new()
            }
            .error_type(),
            "InvalidSignatureException"
        );
    }

    #[test]
    fn rejects_a_changed_date_header() {
        let (mut v, creds, now) = vector("list_security_profiles");
        for (name, value) in &mut v.headers {
            if name == "X-Amz-Date" {
                *value = "20250101T120100Z".into();
            }
        }
        assert_mismatch(v.verify(&creds, now));
    }

    #[test]
    fn rejects_a_missing_signed_header() {
        let (mut v, creds, now) = vector("create_security_profile_colon_name");
        v.headers.retain(|(name, _)| name != "Content-Type");
        assert_mismatch(v.verify(&creds, now));
        let (mut v, creds, now) = vector("list_security_profiles");
        v.headers.retain(|(name, _)| name != "Host");
        assert_mismatch(v.verify(&creds, now));
    }

    #[test]
    fn ignores_unsigned_headers() {
        let (mut v, creds, now) = vector("list_security_profiles");
        v.headers.push(("X-Extra".into(), "anything".into()));
        v.headers.retain(|(name, _)| name != "User-Agent");
        assert!(v.verify(&creds, now).is_ok());
    }

    #[test]
    fn presigned_url_expires() {
        let (v, creds, now) = vector("presigned_list_security_profiles");
        assert!(v.verify(&creds, now + TimeDelta::seconds(300)).is_ok());
        let result = v.verify(&creds, now + TimeDelta::seconds(301));
        assert!(
            matches!(result, Err(AuthError::PresignedUrlExpired)),
            "{result:?}"
        );
    }

    #[test]
    fn missing_or_foreign_authorization_is_missing_authentication() {
        let (mut v, creds, now) = vector("list_security_profiles");
        v.headers.retain(|(name, _)| name != "Authorization");
        assert!(matches!(
            v.verify(&creds, now),
            Err(AuthError::MissingAuthentication)
        ));
        v.headers
            .push(("Authorization".into(), "Bearer abc".into()));
        assert!(matches!(
            v.verify(&creds, now),
            Err(AuthError::MissingAuthentication)
        ));
    }

    #[test]
    fn malformed_authorization_is_incomplete_signature() {
        let (mut v, creds, now) = vector("list_security_profiles");
        for bad in [
            "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=TWEXAMPLEACCESSKEY01/20250101/us-east-1/iot/aws4_request, Signature=00",
            "AWS4-HMAC-SHA256 Credential=TWEXAMPLEACCESSKEY01/20250101/us-east-1/iot, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=TWEXAMPLEACCESSKEY01/20250101/us-east-1/iot/aws4_request, SignedHeaders=host, Signature=zz",
        ] {
            v.headers.retain(|(name, _)| name != "Authorization");
            v.headers.push(("Authorization".into(), bad.into()));
            let result = v.verify(&creds, now);
            assert!(
                matches!(result, Err(AuthError::IncompleteSignature(_))),
                "{bad}: {result:?}"
            );
        }
    }

    #[test]
    fn wrong_service_and_scope_date_are_rejected() {
        let (mut v, creds, now) = vector("list_security_profiles");
        let original = v
            .headers
            .iter()
            .find(|(n, _)| n == "Authorization")
            .unwrap()
            .1
            .clone();
        for (from, to) in [("/iot/", "/execute-api/"), ("/20250101/", "/20250102/")] {
            for (name, value) in &mut v.headers {
                if name == "Authorization" {
                    *value = original.replace(from, to);
                }
            }
            let result = v.verify(&creds, now);
            assert!(
                matches!(
                    result,
                    Err(AuthError::WrongService { .. } | AuthError::ScopeDateMismatch { .. })
                ),
                "{result:?}"
            );
            assert_eq!(
                result.unwrap_err().error_type(),
                "InvalidSignatureException"
            );
        }
    }

    /// Signs like botocore, with this module's primitives, for cases the Python vectors lack.
    fn resign(v: &mut Vector, secret: &str) {
        let headers = v.header_map();
        let auth = headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let signed_headers = auth
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        let credential = auth
            .split("Credential=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        let scope = credential.split_once('/').unwrap().1;
        let timestamp = headers.get("x-amz-date").unwrap().to_str().unwrap();
        let canonical = [
            v.method.clone(),
            canonical_uri(&v.path),
            canonical_query_normalized(v.query.as_deref().unwrap_or(""), None),
            canonical_headers(signed_headers, &headers).unwrap(),
            signed_headers.to_owned(),
            payload_hash(&headers, v.body.as_bytes()).unwrap(),
        ]
        .join("\n");
        let sts = format!(
            "{ALGORITHM}\n{timestamp}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical))
        );
        let parts: Vec<&str> = scope.split('/').collect();
        let key = signing_key(secret, parts[0], parts[1], parts[2]);
        let signature = hex::encode(hmac_bytes(&key, &sts));
        let new_auth = format!(
            "{ALGORITHM} Credential={credential}, SignedHeaders={signed_headers}, Signature={signature}"
        );
        for (name, value) in &mut v.headers {
            if name == "Authorization" {
                *value = new_auth.clone();
            }
        }
    }

    #[test]
    fn resign_helper_matches_botocore() {
        let all = vectors();
        for v in all
            .vectors
            .iter()
            .filter(|v| v.headers.iter().any(|(n, _)| n == "X-Amz-Date"))
        {
            let mut copy = v.clone();
            resign(&mut copy, &all.secret_access_key);
            assert_eq!(copy.headers, v.headers, "{}", v.name);
        }
    }

    #[test]
    fn content_sha256_header_must_match_the_body() {
        let (mut v, creds, now) = vector("create_security_profile_colon_name");
        let hash = hex::encode(Sha256::digest(v.body.as_bytes()));
        v.headers.push(("X-Amz-Content-SHA256".into(), hash));
        resign(&mut v, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert!(v.verify(&creds, now).is_ok());
        v.body.push(' ');
        assert!(matches!(
            v.verify(&creds, now),
            Err(AuthError::ContentSha256Mismatch)
        ));
    }

    #[test]
    fn unsigned_payload_only_without_a_body() {
        let (mut v, creds, now) = vector("delete_security_profile_no_body");
        v.headers
            .push(("X-Amz-Content-SHA256".into(), UNSIGNED_PAYLOAD.into()));
        resign(&mut v, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert!(v.verify(&creds, now).is_ok());
        v.body = "{}".into();
        assert!(matches!(
            v.verify(&creds, now),
            Err(AuthError::ContentSha256Mismatch)
        ));
    }

    #[test]
    fn canonical_uri_double_encodes_like_botocore() {
        assert_eq!(
            canonical_uri("/security-profiles/my%3Aprofile"),
            "/security-profiles/my%253Aprofile"
        );
        assert_eq!(
            canonical_uri("/custom-metric/caf%C3%A9%20m"),
            "/custom-metric/caf%25C3%25A9%2520m"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(canonical_uri("/~user_x-y.z"), "/~user_x-y.z");
    }

    #[test]
    fn canonical_query_sorts_and_encodes() {
        assert_eq!(
            canonical_query_normalized("b=2&a=2&a=1&c=", None),
            "a=1&a=2&b=2&c="
        );
        assert_eq!(
            canonical_query_normalized("t=2020-09-22T05:42:13Z&x=a+b&y", None),
            "t=2020-09-22T05%3A42%3A13Z&x=a%2Bb&y="
        );
        assert_eq!(canonical_query_raw("t=05:42&a=1", None), "a=1&t=05:42");
        assert_eq!(
            canonical_query_normalized("a=1&X-Amz-Signature=ff", Some("X-Amz-Signature")),
            "a=1"
        );
    }

    #[test]
    fn header_values_are_trimmed_and_joined() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("  a   b \t c  "));
        headers.append("x-a", HeaderValue::from_static("d"));
        headers.append("host", HeaderValue::from_static("h:1"));
        assert_eq!(
            canonical_headers("host;x-a", &headers).unwrap(),
            "host:h:1\nx-a:a b c,d\n"
        );
    }

    #[test]
    fn date_header_is_the_signing_time_when_x_amz_date_is_absent() {
        // botocore writes `formatdate(...)`, whose zone is "-0000".
        let mut headers = HeaderMap::new();
        headers.insert(
            "date",
            HeaderValue::from_static("Wed, 01 Jan 2025 12:00:00 -0000"),
        );
        let (timestamp, date) = request_time(&headers).unwrap();
        assert_eq!(timestamp, "20250101T120000Z");
        assert_eq!(date, vectors().now);
    }
}
