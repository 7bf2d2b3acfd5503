//! The axum middleware that authenticates every API request: it asks
//! [`Authenticator`](crate::auth::Authenticator) for the verdict and answers a refusal in the
//! AWS error shape (the mapping is in [`super::error`]).

use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::auth::{AuthError, Authenticator, Presented, Principal};

/// Rejects requests that are not signed with known credentials (403 in AWS's error shape);
/// passes the others on with their [`Principal`] in the request extensions. With
/// `insecure_no_auth` every request passes as [`Principal::Anonymous`].
pub(crate) async fn require_auth(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    if auth.insecure_no_auth {
        request.extensions_mut().insert(Principal::Anonymous);
        return next.run(request).await;
    }
    match authenticate(&auth, request).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Authenticates `request` and returns it (body intact) with its [`Principal`] in the
/// extensions. Bearer requests are checked without touching the body; SigV4 requests have
/// their body buffered (up to `max_body_bytes`) because the signature covers it.
async fn authenticate(auth: &Authenticator, mut request: Request) -> Result<Request, ApiError> {
    // Refuse anything unsigned before reading its body.
    let presented = Authenticator::presented(request.headers(), request.uri().query())?;
    if let Presented::Bearer(token) = presented {
        let principal = auth.verify_bearer(token).inspect_err(log_failure)?;
        request.extensions_mut().insert(principal);
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let body = read_body_limited(body, auth.max_body_bytes, &parts.headers).await?;
    let principal = {
        // Under `Router::nest` the URI is rewritten; the client signed the original.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |o| &o.0);
        let headers = with_host(&parts.headers, uri);
        auth.verify_sigv4(
            parts.method.as_str(),
            uri.path(),
            uri.query(),
            &headers,
            &body,
        )
        .inspect_err(log_failure)?
    };
    parts.extensions.insert(principal);
    Ok(Request::from_parts(parts, Body::from(body)))
}

fn log_failure(error: &AuthError) {
    tracing::debug!(error_type = error.error_type(), %error, "Request authentication failed");
}

/// HTTP/2 carries the host in the `:authority` pseudo-header, which hyper puts in the URI;
/// botocore signs it as `host`.
fn with_host<'a>(headers: &'a HeaderMap, uri: &Uri) -> Cow<'a, HeaderMap> {
    if headers.contains_key(header::HOST) {
        return Cow::Borrowed(headers);
    }
    match uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        Some(host) => {
            let mut owned = headers.clone();
            owned.insert(header::HOST, host);
            Cow::Owned(owned)
        }
        None => Cow::Borrowed(headers),
    }
}

/// Reads the whole body, failing with 413 as soon as it is known to exceed `limit`.
async fn read_body_limited(
    mut body: Body,
    limit: usize,
    headers: &HeaderMap,
) -> Result<Bytes, ApiError> {
    let too_large =
        || ApiError::PayloadTooLarge(format!("The request body is larger than {limit} bytes."));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame
            .map_err(|_| ApiError::InvalidRequest("Failed to read the request body.".into()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len().saturating_add(data.len()) > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap (STYLE.md: allow-unwrap-in-tests).
mod tests {
    use super::*;
    use crate::auth::sigv4::tests::{Vector, creds_of, vectors};
    use axum::Router;
    use axum::extract::Extension;
    use axum::http::{Method, StatusCode};
    use axum::routing::any;
    use chrono::{DateTime, Utc};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    const TOKEN: &str = "test-token-0123456789abcdef0123456789abcdef";

    /// The signing time of the botocore vectors (2025-01-01T12:00:00Z).
    fn fixture_now() -> DateTime<Utc> {
        vectors().now
    }

    fn authenticator(insecure: bool) -> Authenticator {
        let mut creds = creds_of(&vectors());
        creds.tokens.push(TOKEN.into());
        Authenticator::new(creds, insecure, 1024).with_clock(fixture_now)
    }

    /// Echoes who called and what body arrived.
    async fn echo(Extension(principal): Extension<Principal>, body: Bytes) -> String {
        format!("{}:{}", principal.name(), String::from_utf8_lossy(&body))
    }

    fn app(auth: Authenticator) -> Router {
        Router::new()
            .route("/security-profiles", any(echo))
            .route("/security-profiles/{name}", any(echo))
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(auth),
                require_auth,
            ))
    }

    fn request_of(v: &Vector) -> Request {
        let uri = match &v.query {
            Some(q) => format!("{}?{q}", v.path),
            None => v.path.clone(),
        };
        let mut request = Request::builder()
            .method(Method::from_bytes(v.method.as_bytes()).unwrap())
            .uri(uri)
            .body(Body::from(v.body.clone()))
            .unwrap();
        *request.headers_mut() = v.header_map();
        request
    }

    async fn send(app: Router, request: Request) -> (StatusCode, HeaderMap, String) {
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    fn get(path: &str) -> axum::http::request::Builder {
        Request::builder()
            .uri(path)
            .header(header::HOST, "127.0.0.1:8080")
    }

    #[tokio::test]
    async fn unauthenticated_request_is_403_in_aws_shape() {
        let (status, headers, body) = send(
            app(authenticator(false)),
            get("/security-profiles").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            headers["x-amzn-ErrorType"],
            "MissingAuthenticationTokenException"
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["message"], "Missing Authentication Token");
    }

    #[tokio::test]
    async fn bearer_token_is_accepted_and_wrong_token_rejected() {
        let ok = get("/security-profiles").header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        let (status, _, body) = send(
            app(authenticator(false)),
            ok.body(Body::from("hi")).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "token:hi");

        let bad = get("/security-profiles").header(header::AUTHORIZATION, "Bearer nope");
        let (status, headers, _) =
            send(app(authenticator(false)), bad.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(headers["x-amzn-ErrorType"], "UnrecognizedClientException");
    }

    #[tokio::test]
    async fn insecure_mode_lets_everything_through() {
        let (status, _, body) = send(
            app(authenticator(true)),
            get("/security-profiles").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "anonymous:");
    }

    #[tokio::test]
    async fn every_botocore_vector_passes_and_the_body_reaches_the_handler() {
        for v in vectors()
            .vectors
            .iter()
            .filter(|v| v.path.starts_with("/security-profiles"))
        {
            let (status, _, body) = send(app(authenticator(false)), request_of(v)).await;
            assert_eq!(status, StatusCode::OK, "{}: {body}", v.name);
            assert_eq!(
                body,
                format!("TWEXAMPLEACCESSKEY01:{}", v.body),
                "{}",
                v.name
            );
        }
    }

    #[tokio::test]
    async fn tampered_sigv4_request_is_403_invalid_signature() {
        let v = vectors()
            .vectors
            .into_iter()
            .find(|v| v.name == "create_security_profile_colon_name")
            .unwrap();
        let mut tampered = v.clone();
        tampered.body = tampered.body.replacen("100", "999", 1);
        let (status, headers, body) = send(app(authenticator(false)), request_of(&tampered)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(headers["x-amzn-ErrorType"], "InvalidSignatureException");
        assert!(
            body.contains("does not match the signature you provided"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn stale_sigv4_request_is_403_signature_expired() {
        fn late() -> DateTime<Utc> {
            fixture_now() + chrono::TimeDelta::minutes(16)
        }
        let v = vectors()
            .vectors
            .into_iter()
            .find(|v| v.name == "list_security_profiles")
            .unwrap();
        let (status, headers, body) =
            send(app(authenticator(false).with_clock(late)), request_of(&v)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(headers["x-amzn-ErrorType"], "InvalidSignatureException");
        assert!(body.contains("Signature expired"), "{body}");
    }

    #[tokio::test]
    async fn oversized_sigv4_body_is_413() {
        let v = vectors()
            .vectors
            .into_iter()
            .find(|v| v.name == "create_security_profile_colon_name")
            .unwrap();
        let mut auth = authenticator(false);
        auth.max_body_bytes = 100;
        let (status, headers, _) = send(app(auth.clone()), request_of(&v)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(headers["x-amzn-ErrorType"], "PayloadTooLargeException");
        // Without Content-Length the limit still holds while streaming.
        let mut request = request_of(&v);
        request.headers_mut().remove(header::CONTENT_LENGTH);
        let (status, _, _) = send(app(auth), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn host_comes_from_the_uri_authority_when_the_header_is_absent() {
        let v = vectors()
            .vectors
            .into_iter()
            .find(|v| v.name == "list_security_profiles")
            .unwrap();
        let mut request = request_of(&v);
        request.headers_mut().remove(header::HOST);
        *request.uri_mut() = "http://127.0.0.1:8080/security-profiles?maxResults=5&nextToken=abc"
            .parse()
            .unwrap();
        let (status, _, body) = send(app(authenticator(false)), request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// The real client against a real server: boto3 with the system clock, hyper's parsing of
    /// the path (`%3A` stays encoded) and of `Host`. Run with `--ignored` where boto3 exists.
    #[tokio::test]
    #[ignore = "needs python3 with boto3"]
    async fn boto3_against_a_real_server() {
        let auth = Authenticator::new(creds_of(&vectors()), false, 1 << 20);
        let app = Router::new()
            .route(
                "/{*rest}",
                any(|| async { axum::Json(serde_json::json!({})) }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(auth),
                require_auth,
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let script = format!(
            r#"
import datetime, boto3, botocore.exceptions
c = boto3.client("iot", endpoint_url="http://127.0.0.1:{port}", region_name="eu-central-1",
    aws_access_key_id="TWEXAMPLEACCESSKEY01",
    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
c.list_security_profiles(maxResults=5, nextToken="a b/c:d")
c.create_security_profile(securityProfileName="my:profile", behaviors=[])
c.update_security_profile(securityProfileName="my:profile", expectedVersion=1)
c.list_violation_events(startTime=datetime.datetime(2020, 9, 22, 5, 42, 13),
    endTime=datetime.datetime.now())
c.delete_security_profile(securityProfileName="my:profile")
bad = boto3.client("iot", endpoint_url="http://127.0.0.1:{port}", region_name="eu-central-1",
    aws_access_key_id="TWEXAMPLEACCESSKEY01", aws_secret_access_key="wrong")
try:
    bad.list_security_profiles()
    raise SystemExit("wrong secret accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "InvalidSignatureException", e.response
print("ok")
"#
        );
        let output = tokio::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
    }
}
