//! The account's logging options: GetV2LoggingOptions, SetV2LoggingOptions.

use crate::api::error::ApiError;
use crate::api::extract::ApiJson;
use crate::api::{AppState, empty};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value as JsonValue;
use thingward_store::LoggingOptions;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(
        "/v2LoggingOptions",
        get(logging_options_get).post(logging_options_set),
    )
}

const LOG_LEVELS: [&str; 5] = ["DEBUG", "INFO", "ERROR", "WARN", "DISABLED"];

async fn logging_options_get(State(state): State<AppState>) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let options = state.store.logging_get()?.unwrap_or_default();
            Ok(Json(
                serde_json::to_value(options).map_err(ApiError::internal)?,
            ))
        })
        .await
}

async fn logging_options_set(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<LoggingOptions>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            if let Some(l) = body.default_log_level.as_deref()
                && !LOG_LEVELS.contains(&l)
            {
                return Err(ApiError::InvalidRequest(format!(
                    "defaultLogLevel must be one of {}; got '{l}'",
                    LOG_LEVELS.join(", ")
                )));
            }
            if let Some(r) = body.role_arn.as_deref()
                && !(20..=2048).contains(&r.len())
            {
                return Err(ApiError::InvalidRequest(
                    "roleArn must be 20..2048 characters".into(),
                ));
            }
            state.store.logging_set(&body)?;
            Ok(empty())
        })
        .await
}
