//! thingward's own ingestion endpoints: one device report per thing (JSON or CBOR, the same
//! bytes a device publishes over MQTT) and batches of cloud-side and custom metrics.

use super::extract::{ApiBytes, ApiPath};
use super::{AppState, error::ApiError};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value as JsonValue, json};
use thingward_ingest::report::Format;
use thingward_models::ThingName;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/thingward/v1/things/{thing}/report", post(report_create))
        .route("/thingward/v1/metrics", post(batch_create))
}

async fn report_create(
    State(state): State<AppState>,
    ApiPath(thing): ApiPath<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Json<JsonValue>, ApiError> {
    let thing = ThingName::try_from(thing)?;
    let cbor = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/cbor"));
    let format = if cbor { Format::Cbor } else { Format::Json };
    let report_id = state
        .detect
        .ingest_report(&thing, &body, format, state.max_report_bytes)
        .await?;
    Ok(Json(json!({
        "thingName": thing.as_str(),
        "reportId": report_id,
        "status": "ACCEPTED",
    })))
}

async fn batch_create(
    State(state): State<AppState>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<JsonValue>, ApiError> {
    let outcome = state.detect.ingest_batch(&body).await?;
    Ok(Json(json!({
        "accepted": outcome.datapoints,
        "violationEvents": outcome.violation_events,
    })))
}
