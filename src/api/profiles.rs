//! Security profiles: Create/Describe/Update/Delete/List, attach/detach targets, validate.

use super::extract::{ApiJson, ApiPath, Page, QueryMap};
use super::{AppState, empty, error::ApiError};
use crate::targeting::group_and_ancestors;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use std::collections::{BTreeMap, HashMap};
use thingward_models::behavior::{Behavior, validate_behaviors};
use thingward_models::names::{check_printable, check_resource_name};
use thingward_models::profile::{
    AlertTarget, MetricToRetain, MetricsExportConfig, SecurityProfile, Target,
};

/// At most this many profiles may be attached to one target (AWS's limit).
const MAX_PROFILES_PER_TARGET: usize = 5;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/security-profiles", get(profiles_list))
        .route(
            "/security-profiles/{name}",
            post(profile_create)
                .get(profile_describe)
                .patch(profile_update)
                .delete(profile_delete),
        )
        .route(
            "/security-profiles/{name}/targets",
            get(targets_list).put(target_attach).delete(target_detach),
        )
        .route("/security-profiles-for-target", get(profiles_for_target))
        .route(
            "/security-profile-behaviors/validate",
            post(behaviors_validate),
        )
}

/// The members Create and Update share.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileBody {
    security_profile_description: Option<String>,
    behaviors: Option<Vec<Behavior>>,
    alert_targets: Option<BTreeMap<String, AlertTarget>>,
    additional_metrics_to_retain: Option<Vec<String>>,
    additional_metrics_to_retain_v2: Option<Vec<MetricToRetain>>,
    metrics_export_config: Option<MetricsExportConfig>,
    tags: Option<JsonValue>,
    #[serde(default)]
    delete_behaviors: bool,
    #[serde(default)]
    delete_alert_targets: bool,
    #[serde(default)]
    delete_additional_metrics_to_retain: bool,
    #[serde(default)]
    delete_metrics_export_config: bool,
}

/// Checks a complete profile against every rule; the message lists all problems.
fn validate_profile(state: &AppState, p: &SecurityProfile) -> Result<(), ApiError> {
    let view = state.detect.view().map_err(ApiError::internal)?;
    let mut errors = Vec::new();
    if let Some(d) = &p.security_profile_description
        && let Err(e) = check_printable("securityProfileDescription", d, 1000)
    {
        errors.push(e.to_string());
    }
    errors.extend(validate_behaviors(&p.behaviors, view.as_ref()));
    for (kind, target) in p.alert_targets.iter().flatten() {
        errors.extend(crate::feed::config::check_alert_target(
            kind,
            &target.alert_target_arn,
            &target.role_arn,
            &state.arn("destination/"),
        ));
    }
    for m in p.additional_metrics_to_retain_v2.iter().flatten() {
        if let thingward_models::Metric::Custom(name) = &m.metric
            && view.custom_type(name).is_none()
        {
            errors.push(format!(
                "additionalMetricsToRetainV2: custom metric '{name}' does not exist"
            ));
        }
        if let Some(dim) = &m.metric_dimension {
            if !m.metric.supports_dimension() {
                errors.push(format!(
                    "additionalMetricsToRetainV2: metric '{}' does not accept a dimension",
                    m.metric
                ));
            } else if !thingward_models::registry::Registry::dimension_exists(
                view.as_ref(),
                &dim.dimension_name,
            ) {
                errors.push(format!(
                    "additionalMetricsToRetainV2: dimension '{}' does not exist",
                    dim.dimension_name
                ));
            }
        }
    }
    for m in p.additional_metrics_to_retain.iter().flatten() {
        if let Err(e) = m.parse::<thingward_models::Metric>() {
            errors.push(format!("additionalMetricsToRetain: {e}"));
        }
    }
    let exports = p.behaviors.iter().any(|b| b.export_metric == Some(true))
        || p.additional_metrics_to_retain_v2
            .iter()
            .flatten()
            .any(|m| m.export_metric == Some(true));
    match &p.metrics_export_config {
        Some(c) => {
            if !(1..=512).contains(&c.mqtt_topic.len()) {
                errors.push("metricsExportConfig.mqttTopic must be 1..512 characters".into());
            }
            if !(20..=2048).contains(&c.role_arn.len()) {
                errors.push("metricsExportConfig.roleArn must be 20..2048 characters".into());
            }
        }
        None if exports => {
            errors.push("exportMetric needs metricsExportConfig on the profile".into())
        }
        None => {}
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidRequest(errors.join("; ")))
    }
}

async fn profile_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ProfileBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("securityProfileName", &name)?;
            let now = state.detect.now();
            let arn = state.arn(&format!("securityprofile/{name}"));
            let profile = SecurityProfile {
                security_profile_name: name.clone(),
                security_profile_arn: arn.clone(),
                security_profile_description: body.security_profile_description,
                behaviors: body.behaviors.unwrap_or_default(),
                alert_targets: body.alert_targets,
                additional_metrics_to_retain: body.additional_metrics_to_retain,
                additional_metrics_to_retain_v2: body.additional_metrics_to_retain_v2,
                version: 1,
                creation_date: now,
                last_modified_date: now,
                metrics_export_config: body.metrics_export_config,
            };
            validate_profile(state, &profile)?;
            if !state.store.profile_insert(&profile, body.tags.as_ref())? {
                return Err(ApiError::AlreadyExists {
                    message: format!("Security profile '{name}' already exists"),
                    resource_id: name,
                    resource_arn: arn,
                });
            }
            state.reload()?;
            Ok(Json(
                json!({ "securityProfileName": name, "securityProfileArn": arn }),
            ))
        })
        .await
}

async fn profile_describe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<SecurityProfile>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("securityProfileName", &name)?;
            state
                .store
                .profile_get(&name)?
                .map(Json)
                .ok_or_else(|| not_found(&name))
        })
        .await
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found("Security profile", name)
}

fn expected_version(q: &QueryMap) -> Result<Option<i64>, ApiError> {
    q.int("expectedVersion", i64::MIN..=i64::MAX)
}

async fn profile_update(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    q: QueryMap,
    ApiJson(body): ApiJson<ProfileBody>,
) -> Result<Json<SecurityProfile>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("securityProfileName", &name)?;
            let expected = expected_version(&q)?;
            for (flag, value_given, field) in [
                (body.delete_behaviors, body.behaviors.is_some(), "behaviors"),
                (
                    body.delete_alert_targets,
                    body.alert_targets.is_some(),
                    "alertTargets",
                ),
                (
                    body.delete_additional_metrics_to_retain,
                    body.additional_metrics_to_retain.is_some()
                        || body.additional_metrics_to_retain_v2.is_some(),
                    "additionalMetricsToRetain",
                ),
                (
                    body.delete_metrics_export_config,
                    body.metrics_export_config.is_some(),
                    "metricsExportConfig",
                ),
            ] {
                if flag && value_given {
                    return Err(ApiError::InvalidRequest(format!(
                        "Cannot both set {field} and delete it in one update"
                    )));
                }
            }
            let now = state.detect.now();
            let updated = state
                .store
                .profile_update(&name, |mut p| {
                    if let Some(v) = expected
                        && v != p.version
                    {
                        return Err(ApiError::VersionConflict(format!(
                            "Expected version {v} but security profile '{name}' is at version {}",
                            p.version
                        )));
                    }
                    if let Some(d) = body.security_profile_description {
                        p.security_profile_description = Some(d);
                    }
                    if let Some(b) = body.behaviors {
                        p.behaviors = b;
                    }
                    if body.delete_behaviors {
                        p.behaviors.clear();
                    }
                    if let Some(t) = body.alert_targets {
                        p.alert_targets = Some(t);
                    }
                    if body.delete_alert_targets {
                        p.alert_targets = None;
                    }
                    if let Some(m) = body.additional_metrics_to_retain {
                        p.additional_metrics_to_retain = Some(m);
                    }
                    if let Some(m) = body.additional_metrics_to_retain_v2 {
                        p.additional_metrics_to_retain_v2 = Some(m);
                    }
                    if body.delete_additional_metrics_to_retain {
                        p.additional_metrics_to_retain = None;
                        p.additional_metrics_to_retain_v2 = None;
                    }
                    if let Some(c) = body.metrics_export_config {
                        p.metrics_export_config = Some(c);
                    }
                    if body.delete_metrics_export_config {
                        p.metrics_export_config = None;
                    }
                    validate_profile(state, &p)?;
                    p.version += 1;
                    p.last_modified_date = now;
                    Ok(p)
                })?
                .ok_or_else(|| not_found(&name))?;
            state.reload()?;
            Ok(Json(updated))
        })
        .await
}

async fn profile_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("securityProfileName", &name)?;
            if let Some(v) = expected_version(&q)?
                && let Some(p) = state.store.profile_get(&name)?
                && p.version != v
            {
                return Err(ApiError::VersionConflict(format!(
                    "Expected version {v} but security profile '{name}' is at version {}",
                    p.version
                )));
            }
            // AWS models no ResourceNotFound here: deleting an unknown profile succeeds.
            if state.store.profile_delete(&name)?.is_some() {
                state.reload()?;
            }
            Ok(empty())
        })
        .await
}

async fn profiles_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let dimension = q.str("dimensionName");
            let metric = q.str("metricName");
            if dimension.is_some() && metric.is_some() {
                return Err(ApiError::InvalidRequest(
                    "dimensionName and metricName are mutually exclusive".into(),
                ));
            }
            if let Some(d) = dimension
                && state.store.dimension_get(d)?.is_none()
            {
                return Err(ApiError::not_found("Dimension", d));
            }
            if let Some(m) = metric
                && state.store.custom_metric_get(m)?.is_none()
            {
                return Err(ApiError::not_found("Custom metric", m));
            }
            let profiles: Vec<JsonValue> = state
                .store
                .profiles_all()?
                .into_iter()
                .filter(|p| {
                    dimension.is_none_or(|d| profile_uses_dimension(p, d))
                        && metric.is_none_or(|m| profile_uses_metric(p, m))
                })
                .map(|p| json!({ "name": p.security_profile_name, "arn": p.security_profile_arn }))
                .collect();
            let (items, next) = page.slice(profiles);
            Ok(Page::response("securityProfileIdentifiers", items, next))
        })
        .await
}

/// Whether a profile refers to dimension `d` (in a behavior or a retained metric).
pub(super) fn profile_uses_dimension(p: &SecurityProfile, d: &str) -> bool {
    p.behaviors.iter().any(|b| {
        b.metric_dimension
            .as_ref()
            .is_some_and(|m| m.dimension_name == d)
    }) || p.additional_metrics_to_retain_v2.iter().flatten().any(|m| {
        m.metric_dimension
            .as_ref()
            .is_some_and(|m| m.dimension_name == d)
    })
}

/// Whether a profile refers to custom metric `m`.
pub(super) fn profile_uses_metric(p: &SecurityProfile, m: &str) -> bool {
    let metric = thingward_models::Metric::Custom(m.to_owned());
    p.behaviors
        .iter()
        .any(|b| b.metric.as_ref() == Some(&metric))
        || p.additional_metrics_to_retain_v2
            .iter()
            .flatten()
            .any(|r| r.metric == metric)
}

fn target_from_query(q: &QueryMap) -> Result<Target, ApiError> {
    Target::parse_arn(q.required("securityProfileTargetArn")?)
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

async fn target_attach(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("securityProfileName", &name)?;
            let target = target_from_query(&q)?;
            if state.store.profile_get(&name)?.is_none() {
                return Err(not_found(&name));
            }
            if let Target::ThingGroup(g) = &target
                && state.store.group_get(g)?.is_none()
            {
                return Err(ApiError::not_found("Thing group", g));
            }
            let attached = state.store.attachments_all()?;
            let on_target = attached
                .iter()
                .filter(|(p, t)| t == &target && p != &name)
                .count();
            if on_target >= MAX_PROFILES_PER_TARGET {
                return Err(ApiError::LimitExceeded(format!(
                    "Target {target} already has {MAX_PROFILES_PER_TARGET} security profiles attached"
                )));
            }
            if state.store.target_attach(&name, &target)? {
                state.reload()?;
            }
            Ok(empty())
        })
        .await
}

async fn target_detach(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("securityProfileName", &name)?;
            let target = target_from_query(&q)?;
            if !state.store.target_detach(&name, &target)? {
                return Err(ApiError::NotFound(format!(
                    "Security profile '{name}' is not attached to {target}"
                )));
            }
            state.reload()?;
            Ok(empty())
        })
        .await
}

async fn targets_list(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("securityProfileName", &name)?;
            let page = q.page(100, 250)?;
            if state.store.profile_get(&name)?.is_none() {
                return Err(not_found(&name));
            }
            let targets: Vec<JsonValue> = state
                .store
                .attachments_all()?
                .into_iter()
                .filter(|(p, _)| p == &name)
                .map(|(_, t)| json!({ "arn": t.arn(&state.region, &state.account) }))
                .collect();
            let (items, next) = page.slice(targets);
            Ok(Page::response("securityProfileTargets", items, next))
        })
        .await
}

async fn profiles_for_target(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let target = target_from_query(&q)?;
            let recursive = q.bool("recursive")?.unwrap_or(false);
            // With recursive=true a group target also matches the profiles on its ancestor groups
            // (they apply to it) and on its descendant groups (reference §1.4.1: "return child groups
            // too"); each mapping names the group the profile is attached to.
            let mut targets = vec![target.clone()];
            if let (true, Target::ThingGroup(g)) = (recursive, &target) {
                let parents: HashMap<String, Option<String>> = state
                    .store
                    .groups_all()?
                    .into_iter()
                    .map(|g| (g.name, g.parent))
                    .collect();
                let mut related = group_and_ancestors(&parents, g);
                // Descendants, walking down from the target; `related` guards against cycles.
                let mut frontier = vec![g.clone()];
                while let Some(group) = frontier.pop() {
                    for (child, parent) in &parents {
                        if parent.as_deref() == Some(group.as_str()) && !related.contains(child) {
                            related.push(child.clone());
                            frontier.push(child.clone());
                        }
                    }
                }
                targets = related.into_iter().map(Target::ThingGroup).collect();
            }
            let mappings: Vec<JsonValue> = state
                .store
                .attachments_all()?
                .into_iter()
                .filter(|(_, t)| targets.contains(t))
                .map(|(p, t)| {
                    json!({
                        "securityProfileIdentifier": { "name": p, "arn": state.arn(&format!("securityprofile/{p}")) },
                        "target": { "arn": t.arn(&state.region, &state.account) }
                    })
                })
                .collect();
            let (items, next) = page.slice(mappings);
            Ok(Page::response("securityProfileTargetMappings", items, next))
        })
        .await
}

#[derive(Debug, Deserialize)]
struct ValidateBody {
    behaviors: Option<Vec<JsonValue>>,
}

/// Always 200 for a well-formed request: each behavior that does not even decode (an unknown
/// `aws:` metric, an unknown operator) is reported as a validation error, like the rules it
/// breaks once decoded.
async fn behaviors_validate(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ValidateBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let raw = body
                .behaviors
                .ok_or_else(|| ApiError::InvalidRequest("behaviors is required".into()))?;
            let mut errors = Vec::new();
            let mut behaviors = Vec::with_capacity(raw.len());
            for (i, b) in raw.into_iter().enumerate() {
                match serde_json::from_value::<Behavior>(b) {
                    Ok(b) => behaviors.push(b),
                    Err(e) => errors.push(format!("behaviors[{i}]: {e}")),
                }
            }
            let view = state.detect.view().map_err(ApiError::internal)?;
            errors.extend(validate_behaviors(&behaviors, view.as_ref()));
            let list: Vec<JsonValue> = errors
                .iter()
                .map(|e| json!({ "errorMessage": e }))
                .collect();
            Ok(Json(
                json!({ "valid": errors.is_empty(), "validationErrors": list }),
            ))
        })
        .await
}
