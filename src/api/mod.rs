//! The HTTP API: AWS Device Defender operations at AWS's paths and shapes, thingward's
//! ingestion endpoints and health. Handlers live beside their routes, one module per resource.

mod audit;
mod auth;
pub(crate) mod error;
mod extract;
mod feed;
mod fleet_events;
mod incidents;
mod ingest;
mod iot_registry;
mod maintenance;
mod mitigation;
mod profiles;
mod registry;
mod training;
mod violations;

#[cfg(test)]
mod tests;

use crate::auth::Authenticator;
use crate::detect::Detect;
use auth::require_auth;
use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use error::{ApiError, InternalErrorDetail};
use std::sync::Arc;
use thingward_history::History;
use thingward_store::Store;

/// Everything a handler needs.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) detect: Arc<Detect>,
    pub(crate) history: Arc<History>,
    /// The ML Detect training job (summaries, runs on demand).
    pub(crate) training: Arc<crate::training::Training>,
    /// Mitigation tasks (start, run in the background, cancel).
    pub(crate) mitigation: Arc<crate::mitigation::Mitigation>,
    /// The region used in ARNs.
    pub(crate) region: Arc<str>,
    /// The account id used in ARNs.
    pub(crate) account: Arc<str>,
    /// The largest device report accepted, in bytes.
    pub(crate) max_report_bytes: usize,
    /// The alarm feed (destinations' workers).
    pub(crate) feed: Arc<crate::feed::Feed>,
    /// Audit: tasks, the registry snapshot, the scheduler's clock.
    pub(crate) audit: Arc<crate::audit::Audit>,
}

impl AppState {
    /// An ARN for `resource` (`securityprofile/p`, `custommetric/m`, …).
    pub(crate) fn arn(&self, resource: &str) -> String {
        format!("arn:aws:iot:{}:{}:{resource}", self.region, self.account)
    }

    /// Runs `f` on a blocking thread with a handle on the state, for handler work that calls
    /// the store (SQLite) or reads files, so it never stalls the async workers.
    ///
    /// # Errors
    /// What `f` returns; an internal failure when `f` panics.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || f(&state))
            .await
            .map_err(ApiError::internal)?
    }

    /// Re-reads Detect's configuration after a change.
    ///
    /// # Errors
    /// An internal failure when the reload fails.
    pub(crate) fn reload(&self) -> Result<(), ApiError> {
        self.detect.reload().map_err(ApiError::internal)
    }
}

/// The whole application: API routes behind authentication, plus the health probe.
pub(crate) fn app(state: AppState, auth: Arc<Authenticator>, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .merge(profiles::routes())
        .merge(registry::routes())
        .merge(violations::routes())
        .merge(training::routes())
        .merge(ingest::routes())
        .merge(mitigation::routes())
        .merge(feed::routes())
        .merge(audit::routes())
        .merge(iot_registry::routes())
        .merge(fleet_events::routes())
        .merge(incidents::routes())
        .merge(maintenance::routes())
        .layer(middleware::from_fn_with_state(auth, require_auth))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes));
    Router::new()
        .route(
            "/health",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .merge(api)
        .fallback(no_such_operation)
        // A known path with another method is no operation either (axum's 405 has no body).
        .method_not_allowed_fallback(no_such_operation)
        .with_state(state)
        .layer(middleware::from_fn(request_id_and_log))
}

/// The answer to a request that matches no operation (path or method), in the AWS error shape.
async fn no_such_operation() -> ApiError {
    ApiError::NotFound("No such operation".into())
}

/// Gives every response an `x-amzn-RequestId`, and logs internal errors (their detail never
/// reaches the client).
async fn request_id_and_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let id = uuid::Uuid::new_v4().to_string();
    let mut response = next.run(request).await;
    if let Some(detail) = response.extensions().get::<InternalErrorDetail>() {
        tracing::error!(request_id = %id, %method, %path, error = %detail.0, "Request failed");
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-amzn-RequestId", v);
    }
    response
}

/// An empty `{}` response body.
pub(crate) fn empty() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({}))
}
