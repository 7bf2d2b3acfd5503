//! The registry: custom metrics, dimensions, and the minimum of things and thing groups that
//! security-profile targets need.

use super::extract::{ApiJson, ApiPath, Page, QueryMap};
use super::profiles::{profile_uses_dimension, profile_uses_metric};
use super::{AppState, empty, error::ApiError};
use axum::extract::State;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use std::collections::BTreeMap;
use thingward_models::CustomMetricType;
use thingward_models::names::{check_printable, check_resource_name};
use thingward_models::time::millis_to_seconds;
use thingward_store::{CustomMetricRecord, DimensionRecord, ThingGroupRecord, ThingRecord};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/custom-metrics", get(custom_metrics_list))
        .route(
            "/custom-metric/{name}",
            post(custom_metric_create)
                .get(custom_metric_describe)
                .patch(custom_metric_update)
                .delete(custom_metric_delete),
        )
        .route("/dimensions", get(dimensions_list))
        .route(
            "/dimensions/{name}",
            post(dimension_create)
                .get(dimension_describe)
                .patch(dimension_update)
                .delete(dimension_delete),
        )
        .route("/things", get(things_list))
        .route(
            "/things/{name}",
            post(thing_create).get(thing_describe).delete(thing_delete),
        )
        .route("/thing-groups", get(groups_list))
        .route(
            "/thing-groups/{name}",
            post(group_create).get(group_describe).delete(group_delete),
        )
        .route("/thing-groups/addThingToThingGroup", put(group_add_thing))
        .route(
            "/thing-groups/removeThingFromThingGroup",
            put(group_remove_thing),
        )
        .route("/thing-groups/{name}/things", get(group_things))
}

fn check_token(token: Option<&str>) -> Result<(), ApiError> {
    match token {
        Some(t)
            if t.is_empty()
                || t.len() > 64
                || !t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Err(ApiError::InvalidRequest(
                "clientRequestToken must match ^[a-zA-Z0-9-_]{1,64}$".into(),
            ))
        }
        _ => Ok(()),
    }
}

/// Resolves an idempotent Create: the same token replayed gets the original result; another
/// token on an existing name is a conflict. A new resource makes Detect reload the registry.
fn idempotent(
    state: &AppState,
    inserted: bool,
    stored_token: Option<&str>,
    token: Option<&str>,
    kind: &str,
    name: &str,
    arn: &str,
) -> Result<(), ApiError> {
    if inserted {
        return state.reload();
    }
    if token.is_some() && stored_token == token {
        return Ok(());
    }
    Err(ApiError::AlreadyExists {
        message: format!("{kind} '{name}' already exists"),
        resource_id: name.to_owned(),
        resource_arn: arn.to_owned(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomMetricBody {
    display_name: Option<String>,
    metric_type: Option<String>,
    tags: Option<JsonValue>,
    client_request_token: Option<String>,
}

fn custom_metric_json(state: &AppState, m: &CustomMetricRecord) -> JsonValue {
    json!({
        "metricName": m.name,
        "metricArn": state.arn(&format!("custommetric/{}", m.name)),
        "metricType": m.metric_type.as_str(),
        "displayName": m.display_name,
        "creationDate": millis_to_seconds(m.creation_ms),
        "lastModifiedDate": millis_to_seconds(m.modified_ms),
    })
}

fn check_custom_name(name: &str) -> Result<(), ApiError> {
    check_resource_name("metricName", name)?;
    if name.starts_with("aws:") {
        return Err(ApiError::InvalidRequest(
            "Custom metric names must not start with aws:".into(),
        ));
    }
    Ok(())
}

async fn custom_metric_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<CustomMetricBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_custom_name(&name)?;
            let type_name = body
                .metric_type
                .ok_or_else(|| ApiError::InvalidRequest("metricType is required".into()))?;
            let metric_type = CustomMetricType::parse(&type_name).ok_or_else(|| {
                ApiError::InvalidRequest(format!(
                    "metricType must be one of number, number-list, string-list, ip-address-list; got '{type_name}'"
                ))
            })?;
            if let Some(d) = &body.display_name {
                check_printable("displayName", d, 128)?;
            }
            check_token(body.client_request_token.as_deref())?;
            let now = state.detect.now();
            let rec = CustomMetricRecord {
                name: name.clone(),
                metric_type,
                display_name: body.display_name,
                client_request_token: body.client_request_token.clone(),
                creation_ms: now,
                modified_ms: now,
            };
            let arn = state.arn(&format!("custommetric/{name}"));
            let (stored, inserted) = state.store.custom_metric_insert(&rec, body.tags.as_ref())?;
            idempotent(
                state,
                inserted,
                stored.client_request_token.as_deref(),
                body.client_request_token.as_deref(),
                "Custom metric",
                &name,
                &arn,
            )?;
            Ok(Json(json!({ "metricName": name, "metricArn": arn })))
        })
        .await
}

async fn custom_metric_describe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("metricName", &name)?;
            let m = state
                .store
                .custom_metric_get(&name)?
                .ok_or_else(|| ApiError::not_found("Custom metric", &name))?;
            Ok(Json(custom_metric_json(state, &m)))
        })
        .await
}

async fn custom_metric_update(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<CustomMetricBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("metricName", &name)?;
            let display = body
                .display_name
                .ok_or_else(|| ApiError::InvalidRequest("displayName is required".into()))?;
            check_printable("displayName", &display, 128)?;
            let m = state
                .store
                .custom_metric_rename(&name, &display, state.detect.now())?
                .ok_or_else(|| ApiError::not_found("Custom metric", &name))?;
            Ok(Json(custom_metric_json(state, &m)))
        })
        .await
}

/// Refuses to delete a custom metric or dimension that a security profile still refers to,
/// naming the profiles.
fn refuse_if_used(
    state: &AppState,
    kind: &str,
    name: &str,
    uses: fn(&thingward_models::profile::SecurityProfile, &str) -> bool,
) -> Result<(), ApiError> {
    let users: Vec<String> = state
        .store
        .profiles_all()?
        .into_iter()
        .filter(|p| uses(p, name))
        .map(|p| p.security_profile_name)
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    Err(ApiError::InvalidRequest(format!(
        "{kind} '{name}' is used by security profiles {}; remove it from them first",
        users.join(", ")
    )))
}

async fn custom_metric_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("metricName", &name)?;
            refuse_if_used(state, "Custom metric", &name, profile_uses_metric)?;
            if state.store.custom_metric_delete(&name)? {
                state.reload()?;
            }
            Ok(empty())
        })
        .await
}

async fn custom_metrics_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let names: Vec<String> = state
                .store
                .custom_metrics_all()?
                .into_iter()
                .map(|m| m.name)
                .collect();
            let (items, next) = page.slice(names);
            Ok(Page::response("metricNames", items, next))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DimensionBody {
    #[serde(rename = "type")]
    dimension_type: Option<String>,
    string_values: Option<Vec<String>>,
    tags: Option<JsonValue>,
    client_request_token: Option<String>,
}

fn check_values(values: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let values =
        values.ok_or_else(|| ApiError::InvalidRequest("stringValues is required".into()))?;
    if values.is_empty() || values.len() > 100 {
        return Err(ApiError::InvalidRequest(
            "stringValues must hold 1..100 topic filters".into(),
        ));
    }
    for v in &values {
        if v.is_empty() || v.len() > 256 {
            return Err(ApiError::InvalidRequest(format!(
                "Topic filter '{v}' must be 1..256 characters"
            )));
        }
    }
    Ok(values)
}

fn dimension_json(state: &AppState, d: &DimensionRecord) -> JsonValue {
    json!({
        "name": d.name,
        "arn": state.arn(&format!("dimension/{}", d.name)),
        "type": "TOPIC_FILTER",
        "stringValues": d.string_values,
        "creationDate": millis_to_seconds(d.creation_ms),
        "lastModifiedDate": millis_to_seconds(d.modified_ms),
    })
}

async fn dimension_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DimensionBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("name", &name)?;
            match body.dimension_type.as_deref() {
                Some("TOPIC_FILTER") => {}
                Some(other) => {
                    return Err(ApiError::InvalidRequest(format!(
                        "type must be TOPIC_FILTER, got '{other}'"
                    )));
                }
                None => return Err(ApiError::InvalidRequest("type is required".into())),
            }
            let values = check_values(body.string_values)?;
            check_token(body.client_request_token.as_deref())?;
            let now = state.detect.now();
            let rec = DimensionRecord {
                name: name.clone(),
                string_values: values,
                client_request_token: body.client_request_token.clone(),
                creation_ms: now,
                modified_ms: now,
            };
            let arn = state.arn(&format!("dimension/{name}"));
            let (stored, inserted) = state.store.dimension_insert(&rec, body.tags.as_ref())?;
            idempotent(
                state,
                inserted,
                stored.client_request_token.as_deref(),
                body.client_request_token.as_deref(),
                "Dimension",
                &name,
                &arn,
            )?;
            Ok(Json(json!({ "name": name, "arn": arn })))
        })
        .await
}

async fn dimension_describe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("name", &name)?;
            let d = state
                .store
                .dimension_get(&name)?
                .ok_or_else(|| ApiError::not_found("Dimension", &name))?;
            Ok(Json(dimension_json(state, &d)))
        })
        .await
}

async fn dimension_update(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DimensionBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("name", &name)?;
            let values = check_values(body.string_values)?;
            let d = state
                .store
                .dimension_set_values(&name, &values, state.detect.now())?
                .ok_or_else(|| ApiError::not_found("Dimension", &name))?;
            state.reload()?;
            Ok(Json(dimension_json(state, &d)))
        })
        .await
}

async fn dimension_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("name", &name)?;
            refuse_if_used(state, "Dimension", &name, profile_uses_dimension)?;
            if state.store.dimension_delete(&name)? {
                state.reload()?;
            }
            Ok(empty())
        })
        .await
}

async fn dimensions_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let names: Vec<String> = state
                .store
                .dimensions_all()?
                .into_iter()
                .map(|d| d.name)
                .collect();
            let (items, next) = page.slice(names);
            Ok(Page::response("dimensionNames", items, next))
        })
        .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AttributePayload {
    attributes: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThingBody {
    thing_type_name: Option<String>,
    attribute_payload: Option<AttributePayload>,
}

fn check_thing_name(name: &str) -> Result<(), ApiError> {
    // AWS ThingName: [a-zA-Z0-9:_-]+, 1..128.
    check_resource_name("thingName", name).map_err(ApiError::from)
}

async fn thing_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ThingBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_thing_name(&name)?;
            let rec = ThingRecord {
                name: name.clone(),
                thing_id: uuid::Uuid::new_v4().to_string(),
                thing_type_name: body.thing_type_name,
                attributes: body
                    .attribute_payload
                    .and_then(|a| a.attributes)
                    .unwrap_or_default(),
                version: 1,
            };
            let (stored, inserted) = state.store.thing_insert(&rec)?;
            let arn = state.arn(&format!("thing/{name}"));
            if !inserted
                && (stored.attributes != rec.attributes
                    || stored.thing_type_name != rec.thing_type_name)
            {
                return Err(ApiError::AlreadyExists {
                    message: format!("Thing '{name}' already exists with different attributes"),
                    resource_id: stored.thing_id,
                    resource_arn: arn,
                });
            }
            if inserted {
                state.reload()?;
            }
            Ok(Json(
                json!({ "thingName": name, "thingArn": arn, "thingId": stored.thing_id }),
            ))
        })
        .await
}

async fn thing_describe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_thing_name(&name)?;
            let t = state
                .store
                .thing_get(&name)?
                .ok_or_else(|| ApiError::not_found("Thing", &name))?;
            Ok(Json(json!({
                "defaultClientId": t.name,
                "thingName": t.name,
                "thingId": t.thing_id,
                "thingArn": state.arn(&format!("thing/{}", t.name)),
                "thingTypeName": t.thing_type_name,
                "attributes": t.attributes,
                "version": t.version,
            })))
        })
        .await
}

async fn thing_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_thing_name(&name)?;
            if state.store.thing_delete(&name)? {
                state.reload()?;
            }
            Ok(empty())
        })
        .await
}

async fn things_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let attr = q.str("attributeName");
            let value = q.str("attributeValue");
            let type_name = q.str("thingTypeName");
            let things: Vec<JsonValue> = state
                .store
                .things_all()?
                .into_iter()
                .filter(|t| {
                    type_name.is_none_or(|ty| t.thing_type_name.as_deref() == Some(ty))
                        && attr.is_none_or(|a| {
                            t.attributes
                                .get(a)
                                .is_some_and(|v| value.is_none_or(|want| v == want))
                        })
                })
                .map(|t| {
                    json!({
                        "thingName": t.name,
                        "thingTypeName": t.thing_type_name,
                        "thingArn": state.arn(&format!("thing/{}", t.name)),
                        "attributes": t.attributes,
                        "version": t.version,
                    })
                })
                .collect();
            let (items, next) = page.slice(things);
            Ok(Page::response("things", items, next))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupProperties {
    thing_group_description: Option<String>,
    attribute_payload: Option<AttributePayload>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupBody {
    parent_group_name: Option<String>,
    thing_group_properties: Option<GroupProperties>,
    tags: Option<JsonValue>,
}

async fn group_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<GroupBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("thingGroupName", &name)?;
            if let Some(parent) = &body.parent_group_name
                && state.store.group_get(parent)?.is_none()
            {
                return Err(ApiError::not_found("Parent thing group", parent));
            }
            let (description, attributes) = match body.thing_group_properties {
                Some(p) => (
                    p.thing_group_description,
                    p.attribute_payload
                        .and_then(|a| a.attributes)
                        .unwrap_or_default(),
                ),
                None => (None, BTreeMap::new()),
            };
            let rec = ThingGroupRecord {
                name: name.clone(),
                group_id: uuid::Uuid::new_v4().to_string(),
                parent: body.parent_group_name,
                description,
                attributes,
                creation_ms: state.detect.now(),
                version: 1,
            };
            let (stored, inserted) = state.store.group_insert(&rec, body.tags.as_ref())?;
            let arn = state.arn(&format!("thinggroup/{name}"));
            if !inserted && stored.parent != rec.parent {
                return Err(ApiError::AlreadyExists {
                    message: format!("Thing group '{name}' already exists with a different parent"),
                    resource_id: stored.group_id,
                    resource_arn: arn,
                });
            }
            if inserted {
                state.reload()?;
            }
            Ok(Json(
                json!({ "thingGroupName": name, "thingGroupArn": arn, "thingGroupId": stored.group_id }),
            ))
        })
        .await
}

async fn group_describe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("thingGroupName", &name)?;
            let g = state
                .store
                .group_get(&name)?
                .ok_or_else(|| ApiError::not_found("Thing group", &name))?;
            Ok(Json(json!({
                "thingGroupName": g.name,
                "thingGroupId": g.group_id,
                "thingGroupArn": state.arn(&format!("thinggroup/{}", g.name)),
                "version": g.version,
                "thingGroupProperties": { "thingGroupDescription": g.description, "attributePayload": { "attributes": g.attributes } },
                "thingGroupMetadata": { "parentGroupName": g.parent, "creationDate": millis_to_seconds(g.creation_ms) },
            })))
        })
        .await
}

async fn group_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("thingGroupName", &name)?;
            if state.store.group_delete(&name)? {
                state.reload()?;
            }
            Ok(empty())
        })
        .await
}

async fn groups_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(100, 250)?;
            let prefix = q.str("namePrefixFilter").unwrap_or("");
            let parent = q.str("parentGroup");
            let groups: Vec<JsonValue> = state
                .store
                .groups_all()?
                .into_iter()
                .filter(|g| g.name.starts_with(prefix) && parent.is_none_or(|p| g.parent.as_deref() == Some(p)))
                .map(|g| json!({ "groupName": g.name, "groupArn": state.arn(&format!("thinggroup/{}", g.name)) }))
                .collect();
            let (items, next) = page.slice(groups);
            Ok(Page::response("thingGroups", items, next))
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipBody {
    thing_group_name: Option<String>,
    thing_group_arn: Option<String>,
    thing_name: Option<String>,
    thing_arn: Option<String>,
}

/// The group and thing of a membership call, by name or by ARN.
fn membership(state: &AppState, body: MembershipBody) -> Result<(String, String), ApiError> {
    let tail = |arn: Option<String>, prefix: &str| {
        arn.and_then(|a| {
            a.rsplit_once(':')
                .and_then(|(_, r)| r.strip_prefix(prefix).map(str::to_owned))
        })
    };
    let group = body
        .thing_group_name
        .or_else(|| tail(body.thing_group_arn, "thinggroup/"))
        .ok_or_else(|| {
            ApiError::InvalidRequest("thingGroupName or thingGroupArn is required".into())
        })?;
    let thing = body
        .thing_name
        .or_else(|| tail(body.thing_arn, "thing/"))
        .ok_or_else(|| ApiError::InvalidRequest("thingName or thingArn is required".into()))?;
    if state.store.group_get(&group)?.is_none() {
        return Err(ApiError::not_found("Thing group", &group));
    }
    if state.store.thing_get(&thing)?.is_none() {
        return Err(ApiError::not_found("Thing", &thing));
    }
    Ok((group, thing))
}

async fn group_add_thing(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<MembershipBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let (group, thing) = membership(state, body)?;
            state.store.group_membership(&group, &thing, true)?;
            state.reload()?;
            Ok(empty())
        })
        .await
}

async fn group_remove_thing(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<MembershipBody>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let (group, thing) = membership(state, body)?;
            state.store.group_membership(&group, &thing, false)?;
            state.reload()?;
            Ok(empty())
        })
        .await
}

async fn group_things(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_resource_name("thingGroupName", &name)?;
            let page = q.page(100, 250)?;
            if state.store.group_get(&name)?.is_none() {
                return Err(ApiError::not_found("Thing group", &name));
            }
            let things: Vec<String> = state
                .store
                .memberships_all()?
                .into_iter()
                .filter(|(g, _)| g == &name)
                .map(|(_, t)| t)
                .collect();
            let (items, next) = page.slice(things);
            Ok(Page::response("things", items, next))
        })
        .await
}
