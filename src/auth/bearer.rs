//! `Authorization: Bearer <token>` for scripts and `curl`.

use axum::http::{HeaderMap, header::AUTHORIZATION};
use sha2::{Digest, Sha256};

use super::{AuthError, Credentials, Principal};

/// The token of an `Authorization: Bearer <token>` header (scheme matched case-insensitively),
/// or `None` when the header is absent or uses another scheme.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Checks `presented` against every configured token in constant time.
///
/// Both sides are hashed first so the comparison is over equal-length digests and its timing
/// reveals neither the token's contents nor its length; every token is compared (no early exit).
///
/// # Errors
///
/// [`AuthError::UnrecognizedClient`] when no token matches.
pub(crate) fn verify_bearer(presented: &str, creds: &Credentials) -> Result<Principal, AuthError> {
    let presented = Sha256::digest(presented.as_bytes());
    let mut matched = false;
    for token in &creds.tokens {
        matched |= constant_time_eq(&presented, &Sha256::digest(token.as_bytes()));
    }
    if matched {
        Ok(Principal::BearerToken)
    } else {
        Err(AuthError::UnrecognizedClient)
    }
}

/// Equality whose running time depends only on the length of `a`.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // `black_box` keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap (STYLE.md: allow-unwrap-in-tests).
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn creds() -> Credentials {
        Credentials {
            access_keys: vec![],
            tokens: vec!["first-token".into(), "second-token".into()],
        }
    }

    #[test]
    fn accepts_any_configured_token() {
        assert_eq!(
            verify_bearer("first-token", &creds()).unwrap(),
            Principal::BearerToken
        );
        assert_eq!(
            verify_bearer("second-token", &creds()).unwrap(),
            Principal::BearerToken
        );
    }

    #[test]
    fn rejects_unknown_prefix_and_empty_tokens() {
        for bad in ["", "first", "first-token ", "first-tokeN", "third-token"] {
            assert!(
                matches!(
                    verify_bearer(bad, &creds()),
                    Err(AuthError::UnrecognizedClient)
                ),
                "{bad:?}"
            );
        }
        let none = Credentials::default();
        assert!(verify_bearer("", &none).is_err());
    }

    #[test]
    fn parses_the_bearer_scheme_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"),
        );
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
