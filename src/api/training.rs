//! ML Detect training: GetBehaviorModelTrainingSummaries (AWS), and thingward's own endpoint
//! to run training now (`POST /thingward/v1/training/run`).

use super::extract::{ApiJson, Page, QueryMap};
use super::{AppState, error::ApiError};
use crate::training::{Quiet, RunScope};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value as JsonValue};
use std::sync::Arc;
use thingward_models::ml::LEVELS;
use thingward_models::names::check_resource_name;
use thingward_models::time::millis_to_seconds;
use thingward_trainer::lifecycle;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/behavior-model-training/summaries", get(summaries_get))
        .route("/thingward/v1/training/run", post(training_run))
}

/// Checks `securityProfileName` and that the profile exists.
fn known_profile(state: &AppState, name: Option<&str>) -> Result<(), ApiError> {
    if let Some(p) = name {
        check_resource_name("securityProfileName", p)?;
        if state.store.profile_get(p)?.is_none() {
            return Err(ApiError::not_found("Security profile", p));
        }
    }
    Ok(())
}

async fn summaries_get(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            // TinyMaxResults: 1..10, default 10.
            let page = q.page(10, 10)?;
            let profile = q.str("securityProfileName");
            known_profile(state, profile)?;
            let entries = state.store.models_all(profile)?;
            let serving = state.training.live().snapshot();
            let summaries: Vec<JsonValue> = entries
                .into_iter()
                .map(|e| {
                    let mut s = Map::new();
                    s.insert("securityProfileName".into(), e.profile.clone().into());
                    s.insert("behaviorName".into(), e.behavior.clone().into());
                    if let Some(t) = e.state.collection_start {
                        s.insert(
                            "trainingDataCollectionStartDate".into(),
                            millis_to_seconds(t).into(),
                        );
                    }
                    s.insert("modelStatus".into(), e.state.status.as_str().into());
                    s.insert(
                        "datapointsCollectionPercentage".into(),
                        lifecycle::collection_percentage(e.datapoints).into(),
                    );
                    if let Some(t) = e.state.last_refresh {
                        s.insert("lastModelRefreshDate".into(), millis_to_seconds(t).into());
                    }
                    // thingward's extras (AWS clients ignore unknown members).
                    if let Some(m) = serving.get(&e.profile, &e.behavior) {
                        s.insert("modelVersion".into(), m.version().into());
                    }
                    if let Some(expected) = e.expected.filter(|_| lifecycle::serves(&e.state)) {
                        let rates: Map<String, JsonValue> = LEVELS
                            .iter()
                            .zip(expected.datapoint)
                            .map(|(level, rate)| (level_name(*level).to_owned(), rate.into()))
                            .collect();
                        s.insert("expectedFalsePositiveRates".into(), rates.into());
                        // The budget's unit: alarm episodes, per 1,000 device-days and per
                        // day for this profile's fleet (the devices the model was trained on).
                        if let Some(episodes) = expected.episodes_per_1000_device_days {
                            let devices = serving
                                .get(&e.profile, &e.behavior)
                                .map_or(0, |m| m.model().devices.len());
                            let per_1000: Map<String, JsonValue> = LEVELS
                                .iter()
                                .zip(episodes)
                                .map(|(level, x)| (level_name(*level).to_owned(), x.into()))
                                .collect();
                            let per_day: Map<String, JsonValue> = LEVELS
                                .iter()
                                .zip(episodes)
                                .map(|(level, x)| {
                                    (
                                        level_name(*level).to_owned(),
                                        (x / 1000.0 * devices as f64).into(),
                                    )
                                })
                                .collect();
                            s.insert(
                                "expectedFalseAlarmsPer1000DeviceDays".into(),
                                per_1000.into(),
                            );
                            s.insert("expectedFalseAlarmsPerDay".into(), per_day.into());
                        }
                        if let Some(b) = serving
                            .get(&e.profile, &e.behavior)
                            .and_then(|m| m.model().budget)
                        {
                            let budget: Map<String, JsonValue> = LEVELS
                                .iter()
                                .zip(b.profile)
                                .map(|(level, x)| (level_name(*level).to_owned(), x.into()))
                                .collect();
                            s.insert("profileAlarmBudgetPer1000DeviceDays".into(), budget.into());
                            s.insert("alarmBudgetSharedBy".into(), b.behaviors.into());
                        }
                    }
                    if let Some(err) = &e.last_error {
                        s.insert("lastBuildError".into(), err.clone().into());
                    }
                    JsonValue::Object(s)
                })
                .collect();
            let (items, next) = page.slice(summaries);
            Ok(Page::response("summaries", items, next))
        })
        .await
}

fn level_name(level: thingward_models::ConfidenceLevel) -> &'static str {
    match level {
        thingward_models::ConfidenceLevel::Low => "LOW",
        thingward_models::ConfidenceLevel::Medium => "MEDIUM",
        thingward_models::ConfidenceLevel::High => "HIGH",
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunBody {
    /// Only this profile's behaviors.
    security_profile_name: Option<String>,
}

/// Runs training now for every ML behavior (or one profile's), whatever the schedule, and
/// answers with what it did. Training runs on a blocking thread; ingestion goes on.
async fn training_run(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RunBody>,
) -> Result<Json<JsonValue>, ApiError> {
    let profile = body.security_profile_name.clone();
    state
        .blocking(move |state| known_profile(state, profile.as_deref()))
        .await?;
    let training = Arc::clone(&state.training);
    let scope = RunScope {
        profile: body.security_profile_name,
        due_at: None,
    };
    let report = tokio::task::spawn_blocking(move || training.run(&scope, &Quiet))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(
        serde_json::to_value(report).map_err(ApiError::internal)?,
    ))
}
