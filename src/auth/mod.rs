//! Request authentication: AWS SigV4 (service `iot`) and bearer tokens.
//!
//! - [`credentials`]: the key pairs and tokens, from `<data_dir>/credentials.json` (generated
//!   on first start) plus the environment;
//! - [`sigv4`]: signature verification that matches botocore's signer byte for byte;
//! - [`bearer`]: `Authorization: Bearer <token>`;
//! - [`authenticator`]: what is accepted, and the verdict on one request ([`Principal`] or
//!   [`AuthError`]).
//!
//! Nothing here speaks HTTP status codes: the API's middleware (`api::auth`) applies the
//! verdict, and `api::error` maps an [`AuthError`] to its response.

pub(crate) mod authenticator;
pub(crate) mod bearer;
pub(crate) mod credentials;
pub(crate) mod sigv4;

use std::path::PathBuf;

pub(crate) use self::{
    authenticator::{Authenticator, Presented},
    credentials::Credentials,
};

/// Who made an authenticated request; the middleware puts it in the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Principal {
    /// A SigV4 signature by this access key, scoped to this region.
    AccessKey {
        /// The access key id from `Credential=`.
        access_key_id: String,
        /// The region from the credential scope (any region is accepted).
        region: String,
    },
    /// A valid bearer token (which one is deliberately not recorded).
    BearerToken,
    /// Authentication is switched off (`insecure_no_auth`).
    Anonymous,
}

impl Principal {
    /// A loggable name: the access key id, `token` or `anonymous`. Never a secret.
    #[cfg(test)]
    pub(crate) fn name(&self) -> &str {
        match self {
            Self::AccessKey { access_key_id, .. } => access_key_id,
            Self::BearerToken => "token",
            Self::Anonymous => "anonymous",
        }
    }
}

/// Why authentication failed, or why the credentials file could not be used.
///
/// The request-time variants carry AWS's error codes and messages ([`AuthError::error_type`]);
/// the `Credentials*`/`Random` variants happen at startup only ([`AuthError::is_request_error`]
/// tells them apart).
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    /// No `Authorization` header (of a scheme we know) and no presigned query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthentication,
    /// The signature data is present but malformed; the text says what is wrong.
    #[error("{0}")]
    IncompleteSignature(&'static str),
    /// The access key id or bearer token is not known.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The credential scope names a service other than `iot`.
    #[error("Credential should be scoped to correct service: 'iot'. (got '{service}')")]
    WrongService {
        /// The service from the credential scope.
        service: String,
    },
    /// The credential scope's date is not the date of `X-Amz-Date`.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '{scope_date}' != '{}', from '{timestamp}'.",
        timestamp.get(..8).unwrap_or(timestamp)
    )]
    ScopeDateMismatch {
        /// The date from the credential scope.
        scope_date: String,
        /// The request's `X-Amz-Date`.
        timestamp: String,
    },
    /// `X-Amz-Date` is more than 15 minutes in the past.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - 15 min.)")]
    SignatureExpired {
        /// The request's `X-Amz-Date`.
        signed: String,
        /// The earliest accepted time.
        earliest: String,
        /// The server time.
        now: String,
    },
    /// `X-Amz-Date` is more than 15 minutes in the future.
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + 15 min.)")]
    SignatureNotYetCurrent {
        /// The request's `X-Amz-Date`.
        signed: String,
        /// The latest accepted time.
        latest: String,
        /// The server time.
        now: String,
    },
    /// A presigned URL used after `X-Amz-Date + X-Amz-Expires`.
    #[error("Request has expired")]
    PresignedUrlExpired,
    /// `X-Amz-Content-SHA256` is not the body's hash (or is `UNSIGNED-PAYLOAD` with a body).
    #[error(
        "The provided 'x-amz-content-sha256' header does not match what was computed; \
         unsigned payloads are accepted only without a body."
    )]
    ContentSha256Mismatch,
    /// The signature does not match this request.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,
    /// A secret given in the environment is shorter than [`credentials::MIN_ENV_SECRET_CHARS`]
    /// (the value is never printed).
    #[error(
        "{variable} is too short: a secret given in the environment must have at least {min} \
         characters (generate one with `openssl rand -hex 20`)"
    )]
    WeakEnvSecret {
        /// The environment variable.
        variable: &'static str,
        /// The minimum length in characters.
        min: usize,
    },
    /// Reading or writing the credentials file failed.
    #[error("failed to {action} {}: {source}", path.display())]
    CredentialsIo {
        /// What was being done (`read`, `write`, `create directory`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The credentials file is not valid JSON of the expected shape.
    #[error("invalid credentials file {}: {source}", path.display())]
    CredentialsParse {
        /// The file.
        path: PathBuf,
        /// The parse error (never includes the secrets: serde reports positions, not values).
        #[source]
        source: serde_json::Error,
    },
    /// The credentials file parses but breaks a rule.
    #[error("invalid credentials file {}: {reason}", path.display())]
    CredentialsInvalid {
        /// The file.
        path: PathBuf,
        /// Which rule.
        reason: &'static str,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(getrandom::Error),
}

impl AuthError {
    /// The AWS error code (`x-amzn-ErrorType`) for a request-time failure.
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            Self::MissingAuthentication => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) => "IncompleteSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::PresignedUrlExpired
            | Self::WrongService { .. }
            | Self::ScopeDateMismatch { .. }
            | Self::SignatureExpired { .. }
            | Self::SignatureNotYetCurrent { .. }
            | Self::ContentSha256Mismatch
            | Self::SignatureMismatch => "InvalidSignatureException",
            Self::CredentialsIo { .. }
            | Self::CredentialsParse { .. }
            | Self::CredentialsInvalid { .. }
            | Self::Random(_)
            | Self::WeakEnvSecret { .. } => "InternalFailureException",
        }
    }

    /// Whether this is a verdict on a request rather than a server-side failure.
    pub(crate) fn is_request_error(&self) -> bool {
        !matches!(
            self,
            Self::CredentialsIo { .. }
                | Self::CredentialsParse { .. }
                | Self::CredentialsInvalid { .. }
                | Self::Random(_)
                | Self::WeakEnvSecret { .. }
        )
    }
}
