//! Audit operations at AWS's paths: the account audit configuration, on-demand and scheduled
//! audit tasks, findings (with their related resources) and suppressions.

use super::extract::{ApiJson, ApiPath, Page, QueryMap};
use super::{AppState, empty, error::ApiError};
use crate::audit::schedule::Frequency;
use crate::audit::{CERT_AGE_KEY, CERT_EXPIRATION_KEY, ON_DEMAND, SCHEDULED, runner};
use axum::extract::State;
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};
use std::collections::BTreeMap;
use thingward_audit::{CheckName, ResourceIdentifier};
use thingward_models::names::check_printable;
use thingward_models::time::{epoch_seconds_opt, millis_to_seconds};
use thingward_store::{
    AuditTaskRecord, CheckConfig, FindingFilter, FindingRecord, ScheduledAuditRecord,
    SuppressionRecord, TaskStatus,
};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/audit/configuration",
            get(config_describe)
                .patch(config_update)
                .delete(config_delete),
        )
        .route("/audit/tasks", post(task_start).get(tasks_list))
        .route("/audit/tasks/{id}", get(task_describe))
        .route("/audit/tasks/{id}/cancel", put(task_cancel))
        .route("/audit/scheduledaudits", get(scheduled_list))
        .route(
            "/audit/scheduledaudits/{name}",
            post(scheduled_create)
                .get(scheduled_describe)
                .patch(scheduled_update)
                .delete(scheduled_delete),
        )
        .route("/audit/findings", post(findings_list))
        .route("/audit/findings/{id}", get(finding_describe))
        .route("/audit/relatedResources", get(related_resources_list))
        .route("/audit/suppressions/create", post(suppression_create))
        .route("/audit/suppressions/describe", post(suppression_describe))
        .route("/audit/suppressions/update", patch(suppression_update))
        .route("/audit/suppressions/delete", post(suppression_delete))
        .route("/audit/suppressions/list", post(suppressions_list))
}

/// A check name from a request; unknown names are an InvalidRequestException.
fn check_name(name: &str) -> Result<CheckName, ApiError> {
    CheckName::parse(name).ok_or_else(|| {
        ApiError::InvalidRequest(format!(
            "Unknown audit check '{name}'; DescribeAccountAuditConfiguration lists them"
        ))
    })
}

/// The names in `targetCheckNames`, each known and enabled in the account configuration.
fn enabled_checks(state: &AppState, names: &[String]) -> Result<Vec<CheckName>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::InvalidRequest(
            "targetCheckNames must name at least one check".into(),
        ));
    }
    let config = state.store.audit_config_get()?.unwrap_or_default();
    names
        .iter()
        .map(|n| {
            let c = check_name(n)?;
            if config.checks.get(n).is_some_and(|c| c.enabled) {
                Ok(c)
            } else {
                Err(ApiError::InvalidRequest(format!(
                    "Check {n} is not enabled in the account audit configuration"
                )))
            }
        })
        .collect()
}

/// An identifier of 1..=`max` ASCII letters, digits and `extra` characters (AWS's
/// `ScheduledAuditName`, `AuditTaskId`, `FindingId` patterns).
fn check_id(kind: &str, id: &str, max: usize, extra: &[u8]) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > max
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    {
        let extra: String = extra.iter().map(|&b| char::from(b)).collect();
        return Err(ApiError::InvalidRequest(format!(
            "{kind} '{id}' must be 1..{max} characters of [a-zA-Z0-9{extra}]"
        )));
    }
    Ok(())
}

/// A scheduled audit's name: `[a-zA-Z0-9_-]{1,128}`.
fn check_scheduled_name(name: &str) -> Result<(), ApiError> {
    check_id("scheduledAuditName", name, 128, b"_-")
}

/// An audit task id: `[a-zA-Z0-9-]{1,40}`.
fn check_task_id(id: &str) -> Result<(), ApiError> {
    check_id("taskId", id, 40, b"-")
}

// ---------------------------------------------------------------------------------------------
// Account audit configuration

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigUpdate {
    role_arn: Option<String>,
    audit_notification_target_configurations: Option<BTreeMap<String, JsonValue>>,
    audit_check_configurations: Option<BTreeMap<String, CheckConfigIn>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckConfigIn {
    enabled: Option<bool>,
    configuration: Option<BTreeMap<String, String>>,
}

/// Checks one threshold value of a check's `configuration`.
fn check_threshold(check: CheckName, key: &str, value: &str) -> Result<(), ApiError> {
    let (range, owner) = match key {
        CERT_AGE_KEY => (30..=3652, CheckName::DeviceCertificateAgeCheck),
        CERT_EXPIRATION_KEY => (1..=3652, CheckName::DeviceCertificateExpiringCheck),
        other => {
            return Err(ApiError::InvalidRequest(format!(
                "Unknown configuration key '{other}' (known: {CERT_AGE_KEY}, {CERT_EXPIRATION_KEY})"
            )));
        }
    };
    if check != owner {
        return Err(ApiError::InvalidRequest(format!(
            "{key} applies to {} only",
            owner.as_str()
        )));
    }
    if !value.parse::<u32>().is_ok_and(|v| range.contains(&v)) {
        return Err(ApiError::InvalidRequest(format!(
            "{key} must be a whole number of days in {}..{}, got '{value}'",
            range.start(),
            range.end()
        )));
    }
    Ok(())
}

async fn config_update(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ConfigUpdate>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let stored = state.store.audit_config_get()?;
            let first = stored.is_none();
            let mut config = stored.unwrap_or_default();
            if let Some(role) = body.role_arn {
                if !(20..=2048).contains(&role.len()) {
                    return Err(ApiError::InvalidRequest(
                        "roleArn must be 20..2048 characters".into(),
                    ));
                }
                config.role_arn = Some(role);
            }
            if let Some(targets) = body.audit_notification_target_configurations {
                for (k, v) in targets {
                    if k != "SNS" {
                        return Err(ApiError::InvalidRequest(format!(
                            "auditNotificationTargetConfigurations: the only target type is SNS, got '{k}'"
                        )));
                    }
                    config.notification_targets.insert(k, v);
                }
            }
            let scheduled = state.store.scheduled_audits_all()?;
            for (name, c) in body.audit_check_configurations.unwrap_or_default() {
                let check = check_name(&name)?;
                let entry = config
                    .checks
                    .entry(name.clone())
                    .or_insert_with(CheckConfig::default);
                if let Some(cfg) = c.configuration {
                    for (k, v) in &cfg {
                        check_threshold(check, k, v)?;
                    }
                    entry.configuration = cfg;
                }
                if let Some(enabled) = c.enabled {
                    if !enabled && let Some(s) = scheduled.iter().find(|s| s.checks.contains(&name)) {
                        return Err(ApiError::InvalidRequest(format!(
                            "Check {name} is used by the scheduled audit '{}' and cannot be disabled",
                            s.name
                        )));
                    }
                    entry.enabled = enabled;
                }
            }
            if first && !config.checks.values().any(|c| c.enabled) {
                return Err(ApiError::InvalidRequest(
                    "The first audit configuration must enable at least one check".into(),
                ));
            }
            state.store.audit_config_put(&config)?;
            Ok(empty())
        })
        .await
}

async fn config_describe(State(state): State<AppState>) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let config = state.store.audit_config_get()?.unwrap_or_default();
            let checks: serde_json::Map<String, JsonValue> = CheckName::all()
                .iter()
                .map(|c| {
                    let stored = config.checks.get(c.as_str()).cloned().unwrap_or_default();
                    let mut v = json!({ "enabled": stored.enabled });
                    if !stored.configuration.is_empty() {
                        v["configuration"] = json!(stored.configuration);
                    }
                    (c.as_str().to_owned(), v)
                })
                .collect();
            let mut out = json!({ "auditCheckConfigurations": checks });
            if let Some(role) = &config.role_arn {
                out["roleArn"] = json!(role);
            }
            if !config.notification_targets.is_empty() {
                out["auditNotificationTargetConfigurations"] = json!(config.notification_targets);
            }
            Ok(Json(out))
        })
        .await
}

async fn config_delete(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let with_scheduled = q.bool("deleteScheduledAudits")?.unwrap_or(false);
            if state.store.audit_config_get()?.is_none() {
                return Err(ApiError::NotFound(
                    "No account audit configuration to delete".into(),
                ));
            }
            if !with_scheduled && !state.store.scheduled_audits_all()?.is_empty() {
                return Err(ApiError::InvalidRequest(
                    "Scheduled audits exist; delete them first or pass deleteScheduledAudits=true"
                        .into(),
                ));
            }
            state.store.audit_config_delete(with_scheduled)?;
            Ok(empty())
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Tasks

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TaskStart {
    target_check_names: Vec<String>,
}

async fn task_start(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TaskStart>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let checks = enabled_checks(state, &body.target_check_names)?;
            let task_id = state.audit.start(checks, None)?;
            Ok(Json(json!({ "taskId": task_id })))
        })
        .await
}

fn task_found(state: &AppState, id: &str) -> Result<AuditTaskRecord, ApiError> {
    check_task_id(id)?;
    state
        .store
        .audit_task_get(id)?
        .ok_or_else(|| ApiError::not_found("Audit task", id))
}

/// `taskStatistics` of a task: its checks counted by run status.
fn task_statistics(task: &AuditTaskRecord) -> JsonValue {
    let count = |statuses: &[&str]| {
        task.details
            .values()
            .filter(|d| statuses.contains(&d.check_run_status.as_str()))
            .count()
    };
    json!({
        "totalChecks": task.details.len(),
        "inProgressChecks": count(&["IN_PROGRESS"]),
        "waitingForDataCollectionChecks": count(&["WAITING_FOR_DATA_COLLECTION"]),
        "compliantChecks": count(&["COMPLETED_COMPLIANT"]),
        "nonCompliantChecks": count(&["COMPLETED_NON_COMPLIANT"]),
        "failedChecks": count(&["FAILED"]),
        "canceledChecks": count(&["CANCELED"]),
    })
}

async fn task_describe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let task = task_found(state, &id)?;
            let mut out = json!({
                "taskStatus": task.status.as_str(),
                "taskType": task.task_type,
                "taskStartTime": millis_to_seconds(task.start_ms),
                "taskStatistics": task_statistics(&task),
                "auditDetails": task.details,
            });
            if let Some(name) = &task.scheduled_audit_name {
                out["scheduledAuditName"] = json!(name);
            }
            Ok(Json(out))
        })
        .await
}

async fn tasks_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let (start, end) = q.time_range()?;
            let task_type = q.str("taskType");
            if let Some(t) = task_type
                && t != ON_DEMAND
                && t != SCHEDULED
            {
                return Err(ApiError::InvalidRequest(format!(
                    "taskType must be {ON_DEMAND} or {SCHEDULED}; got '{t}'"
                )));
            }
            let status = q
                .str("taskStatus")
                .map(|s| {
                    TaskStatus::parse(s).ok_or_else(|| {
                        ApiError::InvalidRequest(format!(
                            "taskStatus must be IN_PROGRESS, COMPLETED, FAILED or CANCELED; got '{s}'"
                        ))
                    })
                })
                .transpose()?;
            let page = q.page(25, 250)?;
            let tasks =
                state
                    .store
                    .audit_tasks_list(start, end, task_type, status, page.offset, page.limit + 1)?;
            let (tasks, next) = page.cut(tasks);
            let tasks: Vec<JsonValue> = tasks
                .iter()
                .map(|t| {
                    json!({ "taskId": t.task_id, "taskStatus": t.status.as_str(), "taskType": t.task_type })
                })
                .collect();
            Ok(Page::response("tasks", tasks, next))
        })
        .await
}

async fn task_cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let mut task = task_found(state, &id)?;
            if task.status != TaskStatus::InProgress {
                return Err(ApiError::InvalidRequest(format!(
                    "Audit task '{id}' is {}; only an IN_PROGRESS task can be canceled",
                    task.status.as_str()
                )));
            }
            if !state.audit.cancel(&id) {
                // Not running in this process (it finished a moment ago, or nothing runs it).
                task.status = TaskStatus::Canceled;
                task.end_ms = Some(state.audit.now_ms());
                for d in task.details.values_mut() {
                    if d.check_run_status == "IN_PROGRESS" {
                        d.check_run_status = "CANCELED".into();
                    }
                }
                state.store.audit_task_update(&task)?;
            }
            Ok(empty())
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Scheduled audits

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScheduledIn {
    frequency: Option<String>,
    day_of_month: Option<String>,
    day_of_week: Option<String>,
    target_check_names: Option<Vec<String>>,
    tags: Option<JsonValue>,
}

/// Checks a schedule: the day members must fit the frequency.
fn check_schedule(rec: &ScheduledAuditRecord) -> Result<(), ApiError> {
    Frequency::parse(
        &rec.frequency,
        rec.day_of_week.as_deref(),
        rec.day_of_month.as_deref(),
    )
    .map_err(ApiError::InvalidRequest)?;
    let weekly = matches!(rec.frequency.as_str(), "WEEKLY" | "BIWEEKLY");
    if rec.day_of_week.is_some() && !weekly {
        return Err(ApiError::InvalidRequest(format!(
            "dayOfWeek applies to WEEKLY and BIWEEKLY audits, not {}",
            rec.frequency
        )));
    }
    if rec.day_of_month.is_some() && rec.frequency != "MONTHLY" {
        return Err(ApiError::InvalidRequest(format!(
            "dayOfMonth applies to MONTHLY audits, not {}",
            rec.frequency
        )));
    }
    Ok(())
}

fn scheduled_arn(state: &AppState, name: &str) -> String {
    state.arn(&format!("scheduledaudit/{name}"))
}

async fn scheduled_create(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ScheduledIn>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_scheduled_name(&name)?;
            let frequency = body
                .frequency
                .ok_or_else(|| ApiError::InvalidRequest("frequency is required".into()))?;
            let names = body
                .target_check_names
                .ok_or_else(|| ApiError::InvalidRequest("targetCheckNames is required".into()))?;
            enabled_checks(state, &names)?;
            let rec = ScheduledAuditRecord {
                name: name.clone(),
                frequency,
                day_of_month: body.day_of_month,
                day_of_week: body.day_of_week,
                checks: names,
                created_ms: state.audit.now_ms(),
                last_run_ms: None,
            };
            check_schedule(&rec)?;
            let arn = scheduled_arn(state, &name);
            if !state
                .store
                .scheduled_audit_insert(&rec, body.tags.as_ref())?
            {
                return Err(ApiError::AlreadyExists {
                    message: format!("Scheduled audit '{name}' already exists"),
                    resource_id: name,
                    resource_arn: arn,
                });
            }
            Ok(Json(json!({ "scheduledAuditArn": arn })))
        })
        .await
}

fn scheduled_found(state: &AppState, name: &str) -> Result<ScheduledAuditRecord, ApiError> {
    check_scheduled_name(name)?;
    state
        .store
        .scheduled_audit_get(name)?
        .ok_or_else(|| ApiError::not_found("Scheduled audit", name))
}

fn scheduled_json(state: &AppState, rec: &ScheduledAuditRecord, with_checks: bool) -> JsonValue {
    let mut v = json!({
        "scheduledAuditName": rec.name,
        "scheduledAuditArn": scheduled_arn(state, &rec.name),
        "frequency": rec.frequency,
    });
    if let Some(d) = &rec.day_of_month {
        v["dayOfMonth"] = json!(d);
    }
    if let Some(d) = &rec.day_of_week {
        v["dayOfWeek"] = json!(d);
    }
    if with_checks {
        v["targetCheckNames"] = json!(rec.checks);
    }
    v
}

async fn scheduled_describe(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let rec = scheduled_found(state, &name)?;
            Ok(Json(scheduled_json(state, &rec, true)))
        })
        .await
}

async fn scheduled_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let page = q.page(25, 250)?;
            let (items, next) = page.slice(state.store.scheduled_audits_all()?);
            let items: Vec<JsonValue> = items
                .iter()
                .map(|r| scheduled_json(state, r, false))
                .collect();
            Ok(Page::response("scheduledAudits", items, next))
        })
        .await
}

async fn scheduled_update(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ScheduledIn>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let mut rec = scheduled_found(state, &name)?;
            if let Some(f) = body.frequency {
                // A new frequency brings its own day members (the old ones may not fit it).
                rec.frequency = f;
                rec.day_of_month = None;
                rec.day_of_week = None;
            }
            if body.day_of_month.is_some() {
                rec.day_of_month = body.day_of_month;
            }
            if body.day_of_week.is_some() {
                rec.day_of_week = body.day_of_week;
            }
            if let Some(names) = body.target_check_names {
                enabled_checks(state, &names)?;
                rec.checks = names;
            }
            check_schedule(&rec)?;
            state.store.scheduled_audit_update(&rec)?;
            Ok(Json(
                json!({ "scheduledAuditArn": scheduled_arn(state, &name) }),
            ))
        })
        .await
}

async fn scheduled_delete(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            check_scheduled_name(&name)?;
            if !state.store.scheduled_audit_delete(&name)? {
                return Err(ApiError::not_found("Scheduled audit", &name));
            }
            Ok(empty())
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Findings

/// A stored finding in AWS's `AuditFinding` shape.
///
/// # Errors
/// A stored body that does not decode (internal).
pub(crate) fn finding_json(rec: &FindingRecord) -> Result<JsonValue, ApiError> {
    rec.aws_json().map_err(ApiError::internal)
}

/// The suppression key of a resource identifier from a request.
fn resource_key(id: &ResourceIdentifier) -> Result<String, ApiError> {
    if *id == ResourceIdentifier::default() {
        return Err(ApiError::InvalidRequest(
            "resourceIdentifier must name a resource".into(),
        ));
    }
    let hex64 = |v: &str| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit());
    for (member, value) in [
        ("deviceCertificateId", &id.device_certificate_id),
        ("caCertificateId", &id.ca_certificate_id),
    ] {
        if let Some(v) = value
            && !hex64(v)
        {
            return Err(ApiError::InvalidRequest(format!(
                "resourceIdentifier.{member} must be 64 hexadecimal characters"
            )));
        }
    }
    if let Some(a) = &id.account
        && (a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(ApiError::InvalidRequest(
            "resourceIdentifier.account must be 12 digits".into(),
        ));
    }
    runner::resource_key(id).map_err(ApiError::internal)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FindingsQuery {
    task_id: Option<String>,
    check_name: Option<String>,
    resource_identifier: Option<ResourceIdentifier>,
    max_results: Option<i64>,
    next_token: Option<String>,
    #[serde(default, with = "epoch_seconds_opt")]
    start_time: Option<i64>,
    #[serde(default, with = "epoch_seconds_opt")]
    end_time: Option<i64>,
    list_suppressed_findings: Option<bool>,
}

async fn findings_list(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<FindingsQuery>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            if body.task_id.is_some() && (body.start_time.is_some() || body.end_time.is_some()) {
                return Err(ApiError::InvalidRequest(
                    "Give either taskId or startTime/endTime, not both".into(),
                ));
            }
            if let Some(t) = &body.task_id {
                check_task_id(t)?;
            }
            if let Some(c) = &body.check_name {
                check_name(c)?;
            }
            let page = Page::from_parts(
                body.next_token.as_deref(),
                body.max_results,
                "maxResults",
                25,
                250,
            )?;
            let filter = FindingFilter {
                task_id: body.task_id,
                check_name: body.check_name,
                resource_key: body
                    .resource_identifier
                    .as_ref()
                    .map(resource_key)
                    .transpose()?,
                start_ms: body.start_time,
                end_ms: body.end_time,
                include_suppressed: body.list_suppressed_findings.unwrap_or(false),
                now_ms: state.audit.now_ms(),
            };
            let found = state
                .store
                .findings_list(&filter, page.offset, page.limit + 1)?;
            let (found, next) = page.cut(found);
            let findings = found
                .iter()
                .map(finding_json)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::response("findings", findings, next))
        })
        .await
}

/// The finding `id` (`[a-zA-Z0-9_-]{1,128}`).
fn finding_found(state: &AppState, id: &str) -> Result<FindingRecord, ApiError> {
    check_id("findingId", id, 128, b"_-")?;
    state
        .store
        .finding_get(id, state.audit.now_ms())?
        .ok_or_else(|| ApiError::not_found("Audit finding", id))
}

async fn finding_describe(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let rec = finding_found(state, &id)?;
            Ok(Json(json!({ "finding": finding_json(&rec)? })))
        })
        .await
}

async fn related_resources_list(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let rec = finding_found(state, q.required("findingId")?)?;
            let finding = runner::stored_finding(&rec).map_err(ApiError::internal)?;
            let page = q.page(25, 250)?;
            let (items, next) = page.slice(finding.related_resources);
            Ok(Page::response("relatedResources", items, next))
        })
        .await
}

// ---------------------------------------------------------------------------------------------
// Suppressions

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SuppressionIn {
    check_name: String,
    resource_identifier: ResourceIdentifier,
    #[serde(default, with = "epoch_seconds_opt")]
    expiration_date: Option<i64>,
    suppress_indefinitely: Option<bool>,
    description: Option<String>,
    client_request_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SuppressionKey {
    check_name: String,
    resource_identifier: ResourceIdentifier,
}

fn suppression_key(check: &str, id: &ResourceIdentifier) -> Result<String, ApiError> {
    check_name(check)?;
    resource_key(id)
}

/// The expiry members: a future date or `suppressIndefinitely`, exactly one.
fn suppression_expiry(
    state: &AppState,
    body: &SuppressionIn,
) -> Result<(Option<i64>, bool), ApiError> {
    let indefinitely = body.suppress_indefinitely.unwrap_or(false);
    match (body.expiration_date, indefinitely) {
        (Some(_), true) => Err(ApiError::InvalidRequest(
            "Give expirationDate or suppressIndefinitely, not both".into(),
        )),
        (None, false) => Err(ApiError::InvalidRequest(
            "Give expirationDate or suppressIndefinitely=true".into(),
        )),
        (Some(ms), false) if ms <= state.audit.now_ms() => Err(ApiError::InvalidRequest(
            "expirationDate must be in the future".into(),
        )),
        (e, i) => Ok((e, i)),
    }
}

fn check_description(d: Option<&str>) -> Result<(), ApiError> {
    if let Some(d) = d {
        check_printable("description", d, 1000)?;
    }
    Ok(())
}

async fn suppression_create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SuppressionIn>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let key = suppression_key(&body.check_name, &body.resource_identifier)?;
            let (expiration_ms, indefinitely) = suppression_expiry(state, &body)?;
            check_description(body.description.as_deref())?;
            if let Some(t) = &body.client_request_token
                && (t.is_empty() || t.len() > 64)
            {
                return Err(ApiError::InvalidRequest(
                    "clientRequestToken must be 1..64 characters".into(),
                ));
            }
            let rec = SuppressionRecord {
                check_name: body.check_name.clone(),
                resource_key: key.clone(),
                expiration_ms,
                indefinitely,
                description: body.description,
                created_ms: state.audit.now_ms(),
            };
            if !state.store.suppression_insert(&rec)? {
                return Err(ApiError::AlreadyExists {
                    message: format!(
                        "A suppression of {} for this resource already exists",
                        body.check_name
                    ),
                    resource_id: key,
                    resource_arn: String::new(),
                });
            }
            Ok(empty())
        })
        .await
}

fn suppression_json(rec: &SuppressionRecord) -> Result<JsonValue, ApiError> {
    let id: JsonValue = serde_json::from_str(&rec.resource_key).map_err(ApiError::internal)?;
    let mut v = json!({
        "checkName": rec.check_name,
        "resourceIdentifier": id,
        "suppressIndefinitely": rec.indefinitely,
    });
    if let Some(e) = rec.expiration_ms {
        v["expirationDate"] = json!(millis_to_seconds(e));
    }
    if let Some(d) = &rec.description {
        v["description"] = json!(d);
    }
    Ok(v)
}

fn suppression_found(
    state: &AppState,
    key: &SuppressionKey,
) -> Result<SuppressionRecord, ApiError> {
    let k = suppression_key(&key.check_name, &key.resource_identifier)?;
    state
        .store
        .suppression_get(&key.check_name, &k)?
        .ok_or_else(|| no_suppression(&key.check_name))
}

/// A suppression is named by its check and resource: 404 for the pair.
fn no_suppression(check: &str) -> ApiError {
    ApiError::NotFound(format!("No suppression of {check} for this resource"))
}

async fn suppression_describe(
    State(state): State<AppState>,
    ApiJson(key): ApiJson<SuppressionKey>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| Ok(Json(suppression_json(&suppression_found(state, &key)?)?)))
        .await
}

async fn suppression_update(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SuppressionIn>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let mut rec = suppression_found(
                state,
                &SuppressionKey {
                    check_name: body.check_name.clone(),
                    resource_identifier: body.resource_identifier.clone(),
                },
            )?;
            if body.expiration_date.is_some() || body.suppress_indefinitely.is_some() {
                let (e, i) = suppression_expiry(state, &body)?;
                rec.expiration_ms = e;
                rec.indefinitely = i;
            }
            if body.description.is_some() {
                check_description(body.description.as_deref())?;
                rec.description = body.description;
            }
            state.store.suppression_update(&rec)?;
            Ok(empty())
        })
        .await
}

async fn suppression_delete(
    State(state): State<AppState>,
    ApiJson(key): ApiJson<SuppressionKey>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            let k = suppression_key(&key.check_name, &key.resource_identifier)?;
            if !state.store.suppression_delete(&key.check_name, &k)? {
                return Err(no_suppression(&key.check_name));
            }
            Ok(empty())
        })
        .await
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SuppressionsQuery {
    check_name: Option<String>,
    resource_identifier: Option<ResourceIdentifier>,
    ascending_order: Option<bool>,
    next_token: Option<String>,
    max_results: Option<i64>,
}

async fn suppressions_list(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SuppressionsQuery>,
) -> Result<Json<JsonValue>, ApiError> {
    state
        .blocking(move |state| {
            if let Some(c) = &body.check_name {
                check_name(c)?;
            }
            let key = body
                .resource_identifier
                .as_ref()
                .map(resource_key)
                .transpose()?;
            let page = Page::from_parts(
                body.next_token.as_deref(),
                body.max_results,
                "maxResults",
                25,
                250,
            )?;
            let found = state.store.suppressions_list(
                body.check_name.as_deref(),
                key.as_deref(),
                body.ascending_order.unwrap_or(true),
                page.offset,
                page.limit + 1,
            )?;
            let (found, next) = page.cut(found);
            let items = found
                .iter()
                .map(suppression_json)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::response("suppressions", items, next))
        })
        .await
}
