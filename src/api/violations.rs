//! Violations (active and history), verification states, and ListMetricValues.

use super::extract::{ApiJson, ApiPath, Page, QueryMap};
use super::{AppState, empty, error::ApiError};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use thingward_models::behavior::{BehaviorCriteriaType, DimensionOperator};
use thingward_models::names::check_resource_name;
use thingward_models::time::millis_to_seconds;
use thingward_models::violation::VerificationState;
use thingward_models::{Metric, ThingName};
use thingward_store::{EventFilter, ViolationFilter};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/active-violations", get(active_list))
        .route("/violation-events", get(events_list))
        .route(
            "/violations/verification-state/{id}",
            post(verification_put),
        )
        .route("/metric-values", get(metric_values_list))
}

fn filter(q: &QueryMap) -> Result<ViolationFilter, ApiError> {
    let criteria_type = q
        .str("behaviorCriteriaType")
        .map(|s| {
            BehaviorCriteriaType::parse(s).ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "behaviorCriteriaType must be STATIC, STATISTICAL or MACHINE_LEARNING; got '{s}'"
                ))
            })
        })
        .transpose()?;
    let verification = q
        .str("verificationState")
        .map(|s| {
            VerificationState::parse(s).ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "verificationState must be FALSE_POSITIVE, BENIGN_POSITIVE, TRUE_POSITIVE or UNKNOWN; got '{s}'"
                ))
            })
        })
        .transpose()?;
    if let Some(t) = q.str("thingName") {
        ThingName::try_from(t)?;
    }
    if let Some(p) = q.str("securityProfileName") {
        check_resource_name("securityProfileName", p)?;
    }
    Ok(ViolationFilter {
        thing: q.str("thingName").map(str::to_owned),
        profile: q.str("securityProfileName").map(str::to_owned),
        criteria_type,
        suppressed: q.bool("listSuppressedAlerts")?,
        verification,
    })
}

async fn active_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let f = filter(&q)?;
            let rows = state
                .store
                .violations_active(&f, page.offset, page.limit + 1)?;
            let (items, next) = page.cut(rows);
            Ok(Page::response("activeViolations", items, next))
        })
        .await
}

async fn events_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let (start_ms, end_ms) = q.time_range()?;
            let f = EventFilter {
                common: filter(&q)?,
                start_ms,
                end_ms,
            };
            let rows = state
                .store
                .violation_events(&f, page.offset, page.limit + 1)?;
            let (items, next) = page.cut(rows);
            Ok(Page::response("violationEvents", items, next))
        })
        .await
}

/// The body of PutVerificationStateOnViolation (and of thingward's fleet event
/// verification, which mirrors it).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VerificationBody {
    verification_state: Option<String>,
    verification_state_description: Option<String>,
}

impl VerificationBody {
    /// The state and description, checked as AWS checks them.
    ///
    /// # Errors
    /// `InvalidRequestException`: no or an unknown state, a description over 1000 characters
    /// or with control characters.
    pub(super) fn checked(self) -> Result<(VerificationState, Option<String>), ApiError> {
        let raw = self
            .verification_state
            .ok_or_else(|| ApiError::InvalidRequest("verificationState is required".into()))?;
        let state = VerificationState::parse(&raw).ok_or_else(|| {
            ApiError::InvalidRequest(format!("Invalid verificationState '{raw}'"))
        })?;
        if let Some(d) = &self.verification_state_description
            && (d.chars().count() > 1000 || d.chars().any(char::is_control))
        {
            return Err(ApiError::InvalidRequest(
                "verificationStateDescription must be at most 1000 characters without control characters".into(),
            ));
        }
        Ok((state, self.verification_state_description))
    }
}

async fn verification_put(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<VerificationBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            if id.is_empty()
                || id.len() > 128
                || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(ApiError::InvalidRequest(
                    "violationId must match [a-zA-Z0-9-]{1,128}".into(),
                ));
            }
            let (vstate, description) = body.checked()?;
            if !state
                .store
                .verification_set(&id, vstate, description.as_deref())?
            {
                return Err(ApiError::InvalidRequest(format!(
                    "Violation '{id}' does not exist"
                )));
            }
            Ok(empty())
        })
        .await
}

async fn metric_values_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let thing = ThingName::try_from(q.required("thingName")?)?;
            let metric: Metric = q.required("metricName")?.parse().map_err(
                |e: thingward_models::metric::MetricParseError| ApiError::InvalidRequest(e.to_string()),
            )?;
            let (start, end) = q.time_range()?;
            let retained = state
                .store
                .profiles_all()?
                .iter()
                .any(|p| p.retains(&metric));
            if !retained {
                return Err(ApiError::InvalidRequest(format!(
                    "No security profile retains metric '{metric}': add it to a behavior or to additionalMetricsToRetainV2"
                )));
            }
            let dimension = match q.str("dimensionName") {
                Some(name) => {
                    let d = state
                        .store
                        .dimension_get(name)?
                        .ok_or_else(|| ApiError::not_found("Dimension", name))?;
                    let op = match q.str("dimensionValueOperator") {
                        None | Some("IN") => DimensionOperator::In,
                        Some("NOT_IN") => DimensionOperator::NotIn,
                        Some(o) => {
                            return Err(ApiError::InvalidRequest(format!(
                                "dimensionValueOperator must be IN or NOT_IN, got '{o}'"
                            )));
                        }
                    };
                    Some(thingward_scorer::dimension::TopicDimension::new(
                        &d.string_values,
                        op,
                    ))
                }
                None => None,
            };
            let rows = state
                .history
                .values(&thing, &metric, start, end, usize::MAX)
                .map_err(ApiError::internal)?;
            let data: Vec<JsonValue> = rows
                .into_iter()
                .filter(|(_, topic, _)| dimension.as_ref().is_none_or(|d| d.accepts(topic.as_deref(), thing.as_str())))
                .map(|(ts, _, v)| json!({ "timestamp": millis_to_seconds(ts), "value": v.to_metric_value(&metric) }))
                .collect();
            let (items, next) = page.slice(data);
            Ok(Page::response("metricDatumList", items, next))
        })
        .await
}
