//! thingward's feed API: destinations (`/thingward/v1/destinations…`) with their delivery
//! status, dead letters and redrive; the SSE stream (`/thingward/v1/feed/stream`); and the
//! Prometheus exposition (`/metrics`).

use super::extract::{ApiJson, ApiPath, Page, QueryMap};
use super::{AppState, empty, error::ApiError};
use crate::feed::config::{DestinationParams, DestinationType, validate_name};
use crate::feed::{Feed, metrics, sse};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use thingward_models::time::millis_to_seconds;
use thingward_store::{DestinationRecord, DestinationStatus, OutboxKind, Severity};

/// What a header value reads as in responses.
const REDACTED: &str = "<redacted>";

/// Dead letters listed per page, at most.
const DEAD_LETTERS_MAX: i64 = 250;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/thingward/v1/destinations", get(destinations_list))
        .route(
            "/thingward/v1/destinations/{name}",
            get(destination_describe)
                .put(destination_put)
                .delete(destination_delete),
        )
        .route(
            "/thingward/v1/destinations/{name}/dead-letters",
            get(dead_letters_list),
        )
        .route(
            "/thingward/v1/destinations/{name}/redrive",
            post(dead_letters_redrive),
        )
        .route("/thingward/v1/feed/stream", get(feed_stream))
        .route("/metrics", get(metrics_get))
}

fn status_json(s: &DestinationStatus) -> Value {
    json!({
        "cursor": s.cursor,
        "delivered": s.delivered,
        "failed": s.failed,
        "deadLettered": s.dead_lettered,
        "pending": s.pending,
        "redriving": s.redriving,
        "lastError": s.last_error,
        "lastErrorTime": s.last_error_ms.map(millis_to_seconds),
        "lastSuccessTime": s.last_success_ms.map(millis_to_seconds),
    })
}

/// A destination as the API returns it: its configuration, ARN, times and status.
fn destination_json(state: &AppState, r: &DestinationRecord) -> Result<Value, ApiError> {
    let mut config = Feed::decode(r).map_err(ApiError::internal)?;
    // Header values are often credentials: returned as the names only.
    for v in config.headers.values_mut() {
        *v = REDACTED.into();
    }
    let mut out = serde_json::to_value(config).map_err(ApiError::internal)?;
    let status = state.store.destination_status(&r.name)?.unwrap_or_default();
    if let Value::Object(m) = &mut out {
        m.insert("name".into(), r.name.clone().into());
        m.insert("arn".into(), state.feed.arn(&r.name).into());
        m.insert(
            "creationDate".into(),
            millis_to_seconds(r.created_ms).into(),
        );
        m.insert(
            "lastModifiedDate".into(),
            millis_to_seconds(r.modified_ms).into(),
        );
        m.insert("status".into(), status_json(&status));
    }
    Ok(out)
}

fn checked_name(name: &str) -> Result<(), ApiError> {
    validate_name(name).map_err(ApiError::InvalidRequest)
}

fn existing(state: &AppState, name: &str) -> Result<DestinationRecord, ApiError> {
    checked_name(name)?;
    state
        .store
        .destination_get(name)?
        .ok_or_else(|| ApiError::not_found("Destination", name))
}

fn reload(state: &AppState) -> Result<(), ApiError> {
    state.feed.reload().map_err(ApiError::internal)
}

async fn destination_put(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DestinationParams>,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking(move |state| {
            checked_name(&name)?;
            let destination = body.validate().map_err(ApiError::InvalidRequest)?;
            if destination.kind == DestinationType::Mqtt
                && destination.url.is_none()
                && !state.feed.has_default_mqtt()
            {
                return Err(ApiError::InvalidRequest(
                    "type mqtt without a url needs thingward to run with --mqtt-url".into(),
                ));
            }
            let config = serde_json::to_value(&destination).map_err(ApiError::internal)?;
            state
                .store
                .destination_put(&name, &config, state.detect.now())?;
            reload(state)?;
            let record = existing(state, &name)?;
            Ok(Json(destination_json(state, &record)?))
        })
        .await
}

async fn destinations_list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .blocking(move |state| {
            let list = state
                .store
                .destinations_list()?
                .iter()
                .map(|r| destination_json(state, r))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Json(json!({ "destinations": list })))
        })
        .await
}

async fn destination_describe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking(move |state| {
            let record = existing(state, &name)?;
            Ok(Json(destination_json(state, &record)?))
        })
        .await
}

async fn destination_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking(move |state| {
            checked_name(&name)?;
            if !state.store.destination_delete(&name)? {
                return Err(ApiError::not_found("Destination", &name));
            }
            reload(state)?;
            Ok(empty())
        })
        .await
}

async fn dead_letters_list(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    query: QueryMap,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking(move |state| {
            existing(state, &name)?;
            let page = query.page(100, DEAD_LETTERS_MAX)?;
            let letters = state
                .store
                .dead_letters(&name, page.offset + page.limit + 1)?;
            let (letters, next) = page.slice(letters);
            let seqs: Vec<i64> = letters.iter().map(|d| d.seq).collect();
            let events = state.store.outbox_get(&seqs)?;
            let items: Vec<Value> = letters
                .iter()
                .map(|d| {
                    let event = events.iter().find(|e| e.seq == d.seq);
                    json!({
                        "seq": d.seq,
                        "idempotencyKey": event.map(|e| e.key.clone()),
                        "kind": event.map(|e| e.kind.as_str()),
                        "attempts": d.attempts,
                        "error": d.error,
                        "deadLetterTime": millis_to_seconds(d.dead_ms),
                        "redrive": d.redrive,
                        "event": event.map(|e| e.body.clone()),
                    })
                })
                .collect();
            Ok(Page::response("deadLetters", items, next))
        })
        .await
}

async fn dead_letters_redrive(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .blocking(move |state| {
            existing(state, &name)?;
            let n = state.store.dead_letters_redrive(&name)?;
            state.store.outbox_wake();
            Ok(Json(json!({ "redriven": n })))
        })
        .await
}

/// Parses the stream's filters (`profile`, `thing`, `severity` = minimum, `kind`).
fn stream_filter(query: &QueryMap) -> Result<sse::StreamFilter, ApiError> {
    let min_severity = query
        .str("severity")
        .map(|s| {
            Severity::parse(s).ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "severity must be low, medium, high or critical, got '{s}'"
                ))
            })
        })
        .transpose()?;
    let kind = query
        .str("kind")
        .map(|k| match k {
            "violations" | "violation" => Ok(OutboxKind::Violation),
            "audit-findings" | "audit-finding" => Ok(OutboxKind::AuditFinding),
            "fleet-events" | "fleet-event" => Ok(OutboxKind::FleetEvent),
            _ => Err(ApiError::InvalidRequest(format!(
                "kind must be violations, audit-findings or fleet-events, got '{k}'"
            ))),
        })
        .transpose()?;
    Ok(sse::StreamFilter {
        profile: query.str("profile").map(str::to_owned),
        thing: query.str("thing").map(str::to_owned),
        min_severity,
        kind,
    })
}

async fn feed_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: QueryMap,
) -> Result<impl IntoResponse, ApiError> {
    let filter = stream_filter(&query)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or_else(|| query.str("lastEventId"));
    let after = match resume {
        Some(id) => id.trim().parse::<i64>().map_err(|_| {
            ApiError::InvalidRequest(format!(
                "Last-Event-ID must be an event id (a sequence number), got '{id}'"
            ))
        })?,
        None => {
            state
                .blocking(|state| Ok(state.store.outbox_last_seq()?))
                .await?
        }
    };
    Ok(sse::stream(Arc::clone(&state.store), filter, after))
}

async fn metrics_get(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state
        .blocking(move |state| {
            let text = metrics::render(&*state.store)?;
            Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text))
        })
        .await
}
