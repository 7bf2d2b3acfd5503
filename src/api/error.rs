//! `ApiError`: the one place where failures become HTTP responses in the AWS rest-json error
//! shape (`x-amzn-ErrorType` header, `{"__type", "message"}` body, AWS's status codes), and
//! where every domain error (store, auth, Detect, mitigation planning, names) is mapped to one.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::detect::maintenance::MaintenanceError;
use crate::detect::{BatchRejection, DetectError, ReportRejection};
use crate::mitigation::detect::PlanError;
use thingward_store::{PolicyVersionError, StoreError};

/// Every error the HTTP API can return.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// 400 `InvalidRequestException`: the request breaks a rule; the message says which.
    #[error("{0}")]
    InvalidRequest(String),
    /// 400 `TaskAlreadyExistsException`: a Start*MitigationActionsTask with a used task id.
    #[error("{0}")]
    TaskAlreadyExists(String),
    /// 404 `ResourceNotFoundException`.
    #[error("{0}")]
    NotFound(String),
    /// 409 `ResourceAlreadyExistsException`.
    #[error("{message}")]
    AlreadyExists {
        /// What is wrong.
        message: String,
        /// The existing resource's id.
        resource_id: String,
        /// The existing resource's ARN.
        resource_arn: String,
    },
    /// 409 `VersionConflictException`.
    #[error("{0}")]
    VersionConflict(String),
    /// 410 `LimitExceededException`.
    #[error("{0}")]
    LimitExceeded(String),
    /// 403: missing or wrong credentials; `error_type` is the AWS code
    /// (`MissingAuthenticationTokenException`, `InvalidSignatureException`, …).
    #[error("{message}")]
    Forbidden {
        /// The AWS error code.
        error_type: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 413 `PayloadTooLargeException`: the body is over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 400 `MalformedPolicyException`: an IoT policy document breaks AWS's rules (its length).
    #[error("{0}")]
    MalformedPolicy(String),
    /// 503 `ServiceUnavailableException`: shutting down or overloaded; retry.
    #[error("{0}")]
    Unavailable(String),
    /// 409 with an IoT registry code (`VersionsLimitExceededException`,
    /// `DeleteConflictException`).
    #[error("{message}")]
    RegistryConflict {
        /// The AWS error code.
        error_type: &'static str,
        /// What is wrong.
        message: String,
    },
    /// 406 `CertificateStateException`: the certificate's status forbids the operation.
    #[error("{0}")]
    CertificateState(String),
    /// 500 `InternalFailureException`: the detail is logged, never sent.
    #[error("internal failure: {0}")]
    Internal(String),
}

/// The internal error text of a 500, attached to the response for the logging middleware.
#[derive(Debug, Clone)]
pub(crate) struct InternalErrorDetail(pub(crate) String);

impl ApiError {
    /// Wraps any error as an internal failure.
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// 404 `ResourceNotFoundException` for a named resource, in the one wording every resource
    /// uses: `{resource} '{name}' does not exist` (`resource` capitalised, as in
    /// `Security profile`).
    pub(crate) fn not_found(resource: &str, name: &str) -> Self {
        Self::NotFound(format!("{resource} '{name}' does not exist"))
    }

    fn status_and_type(&self) -> (StatusCode, &'static str) {
        match self {
            Self::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "InvalidRequestException"),
            Self::TaskAlreadyExists(_) => (StatusCode::BAD_REQUEST, "TaskAlreadyExistsException"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "ResourceNotFoundException"),
            Self::AlreadyExists { .. } => (StatusCode::CONFLICT, "ResourceAlreadyExistsException"),
            Self::VersionConflict(_) => (StatusCode::CONFLICT, "VersionConflictException"),
            Self::LimitExceeded(_) => (StatusCode::GONE, "LimitExceededException"),
            Self::Forbidden { error_type, .. } => (StatusCode::FORBIDDEN, error_type),
            Self::RegistryConflict { error_type, .. } => (StatusCode::CONFLICT, error_type),
            Self::CertificateState(_) => (StatusCode::NOT_ACCEPTABLE, "CertificateStateException"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException"),
            Self::MalformedPolicy(_) => (StatusCode::BAD_REQUEST, "MalformedPolicyException"),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
            ),
            Self::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailureException",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_type) = self.status_and_type();
        let mut body = serde_json::json!({ "__type": error_type });
        let detail = match &self {
            Self::Internal(detail) => {
                body["message"] = "An internal error occurred; see the server log".into();
                Some(InternalErrorDetail(detail.clone()))
            }
            Self::AlreadyExists {
                message,
                resource_id,
                resource_arn,
            } => {
                body["message"] = message.clone().into();
                body["resourceId"] = resource_id.clone().into();
                body["resourceArn"] = resource_arn.clone().into();
                None
            }
            other => {
                body["message"] = other.to_string().into();
                None
            }
        };
        let mut response = (status, axum::Json(body)).into_response();
        response
            .headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(error_type));
        if let Some(detail) = detail {
            response.extensions_mut().insert(detail);
        }
        response
    }
}

// ---------------------------------------------------------------------------------------------
// Domain errors → ApiError

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<thingward_models::names::NameError> for ApiError {
    fn from(e: thingward_models::names::NameError) -> Self {
        ApiError::InvalidRequest(e.to_string())
    }
}

/// A refused request is a 403 with AWS's code and message; a credentials-file failure (startup
/// only) is internal.
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        if e.is_request_error() {
            ApiError::Forbidden {
                error_type: e.error_type(),
                message: e.to_string(),
            }
        } else {
            ApiError::internal(e)
        }
    }
}

/// Detect could not take the data: 503 while shutting down (retry), otherwise internal.
impl From<DetectError> for ApiError {
    fn from(e: DetectError) -> Self {
        match e {
            DetectError::CommitterGone => {
                ApiError::Unavailable("thingward is shutting down; retry".into())
            }
            other => ApiError::internal(other),
        }
    }
}

/// An invalid report is a 400 naming the report (when its id is known) and the rule's code.
impl From<ReportRejection> for ApiError {
    fn from(e: ReportRejection) -> Self {
        match e {
            ReportRejection::Invalid(report_id, e) => ApiError::InvalidRequest(match report_id {
                Some(id) => format!("Report {id} rejected ({}): {e}", e.code()),
                None => format!("Report rejected ({}): {e}", e.code()),
            }),
            ReportRejection::Failed(e) => e.into(),
        }
    }
}

impl From<BatchRejection> for ApiError {
    fn from(e: BatchRejection) -> Self {
        match e {
            BatchRejection::Invalid(e) => ApiError::InvalidRequest(e.to_string()),
            BatchRejection::Failed(e) => e.into(),
        }
    }
}

/// A mitigation task's target names something that does not exist (the planner words it).
impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::NotFound(m) => ApiError::NotFound(m),
            PlanError::Store(e) => e.into(),
        }
    }
}

/// A maintenance window that breaks a rule is a 400; one whose target or metric does not
/// exist a 404.
impl From<MaintenanceError> for ApiError {
    fn from(e: MaintenanceError) -> Self {
        match e {
            MaintenanceError::Invalid(m) => ApiError::InvalidRequest(m),
            MaintenanceError::NotFound { resource, name } => ApiError::not_found(resource, &name),
            MaintenanceError::Store(e) => e.into(),
        }
    }
}

/// CreatePolicyVersion's failures for the policy `policy`.
pub(crate) fn policy_version_error(policy: &str, e: PolicyVersionError) -> ApiError {
    match e {
        PolicyVersionError::NotFound => ApiError::not_found("Policy", policy),
        PolicyVersionError::TooMany => ApiError::RegistryConflict {
            error_type: "VersionsLimitExceededException",
            message: format!("Policy '{policy}' already has the maximum number of versions"),
        },
        PolicyVersionError::Store(e) => e.into(),
    }
}
