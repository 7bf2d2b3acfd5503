//! [`Authenticator`]: what the service accepts (key pairs, tokens, or nothing at all) and the
//! verdict on one request's credentials. It knows nothing of HTTP frameworks: the caller hands
//! it the request's method, path, query, headers and body, and maps its [`AuthError`] to a
//! response.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};

use super::bearer::{bearer_token, verify_bearer};
use super::sigv4::{has_sigv4, verify_sigv4};
use super::{AuthError, Credentials, Principal};

/// What to accept, and the clock signatures are checked against.
#[derive(Debug, Clone)]
pub(crate) struct Authenticator {
    /// The accepted key pairs and tokens.
    pub(crate) creds: Credentials,
    /// Let every request through unauthenticated (local experiments only).
    pub(crate) insecure_no_auth: bool,
    /// Largest body buffered for SigV4 verification (the signature covers the body).
    pub(crate) max_body_bytes: usize,
    /// The current time; replaced in tests to verify fixed-date signatures.
    pub(crate) clock: fn() -> DateTime<Utc>,
}

/// How a request presents its credentials, read from its headers and query alone.
#[derive(Debug)]
pub(crate) enum Presented<'a> {
    /// `Authorization: Bearer <token>`: checked without the body.
    Bearer(&'a str),
    /// A SigV4 signature (header or presigned URL): the body is needed to check it.
    SigV4,
}

impl Authenticator {
    /// An authenticator on the system clock.
    pub(crate) fn new(creds: Credentials, insecure_no_auth: bool, max_body_bytes: usize) -> Self {
        Self {
            creds,
            insecure_no_auth,
            max_body_bytes,
            clock: Utc::now,
        }
    }

    /// The same authenticator with another clock.
    #[cfg(test)]
    pub(crate) fn with_clock(self, clock: fn() -> DateTime<Utc>) -> Self {
        Self { clock, ..self }
    }

    /// Which credentials a request presents, so an unsigned request is refused before its body
    /// is read.
    ///
    /// # Errors
    /// [`AuthError::MissingAuthentication`] when it presents none we know.
    pub(crate) fn presented<'a>(
        headers: &'a HeaderMap,
        raw_query: Option<&str>,
    ) -> Result<Presented<'a>, AuthError> {
        if let Some(token) = bearer_token(headers) {
            Ok(Presented::Bearer(token))
        } else if has_sigv4(headers, raw_query) {
            Ok(Presented::SigV4)
        } else {
            Err(AuthError::MissingAuthentication)
        }
    }

    /// Checks a bearer token.
    ///
    /// # Errors
    /// [`AuthError::UnrecognizedClient`] for an unknown token.
    pub(crate) fn verify_bearer(&self, token: &str) -> Result<Principal, AuthError> {
        verify_bearer(token, &self.creds)
    }

    /// Checks a SigV4-signed request at the authenticator's clock; `raw_path` and `raw_query`
    /// are as the client signed them, `headers` include `host`.
    ///
    /// # Errors
    /// The [`AuthError`] request-time variants (see [`verify_sigv4`]).
    pub(crate) fn verify_sigv4(
        &self,
        method: &str,
        raw_path: &str,
        raw_query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Principal, AuthError> {
        verify_sigv4(
            method,
            raw_path,
            raw_query,
            headers,
            body,
            &self.creds,
            (self.clock)(),
        )
    }
}
