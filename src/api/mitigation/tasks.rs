//! The mitigation-task operations both task kinds share, written once: Start, Describe, List,
//! Cancel and ListExecutions, parameterised by a [`TaskFamily`] that holds what differs between
//! audit and detect tasks (paths, the Start body and its plan, the response shapes, the
//! listing filters).

use super::{check_task_id, check_token, invalid};
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, ApiPath, Page, QueryMap};
use crate::api::{AppState, empty};
use crate::mitigation::ActionDefinition;
use axum::extract::State;
use axum::routing::{MethodFilter, get, on, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value as JsonValue, json};
use thingward_models::time::EpochMillis;
use thingward_store::{
    ExecutionFilter, ExecutionRecord, TaskInsert, TaskKind, TaskRecord, TaskState,
};

/// What a started task stores besides its id, kind, state and times.
#[derive(Debug)]
pub(super) struct Planned {
    /// The request as Describe shows it back.
    pub(super) request: JsonValue,
    /// The actions the task runs (their definitions at start).
    pub(super) actions: Vec<ActionDefinition>,
    /// One execution per (subject, action).
    pub(super) executions: Vec<ExecutionRecord>,
}

/// The per-kind pieces of the mitigation-task operations.
pub(super) trait TaskFamily: Send + Sync + 'static {
    /// The store's kind of these tasks.
    const KIND: TaskKind;
    /// The paths' prefix (`/audit/mitigationactions`, `/detect/mitigationactions`).
    const PREFIX: &'static str;
    /// The method of `PREFIX/tasks/{id}` that starts a task.
    const START: MethodFilter;
    /// The Start request body.
    type Start: DeserializeOwned + Send + 'static;

    /// The body's `clientRequestToken`.
    fn client_request_token(body: &Self::Start) -> Option<String>;

    /// Validates a Start request and plans its executions at `now`.
    ///
    /// # Errors
    /// An invalid request, a target or action that does not exist, or a store failure.
    fn plan(
        state: &AppState,
        task_id: &str,
        body: Self::Start,
        now: EpochMillis,
    ) -> Result<Planned, ApiError>;

    /// The Describe response.
    ///
    /// # Errors
    /// A store failure.
    fn describe(state: &AppState, task: &TaskRecord) -> Result<JsonValue, ApiError>;

    /// The tasks of a listing that pass its kind's query filters, in order.
    ///
    /// # Errors
    /// An invalid filter or a store failure.
    fn select(
        state: &AppState,
        q: &QueryMap,
        tasks: Vec<TaskRecord>,
    ) -> Result<Vec<TaskRecord>, ApiError>;

    /// One task in a listing.
    ///
    /// # Errors
    /// A store failure.
    fn summary(state: &AppState, task: &TaskRecord) -> Result<JsonValue, ApiError>;

    /// The filter of ListExecutions from its query.
    ///
    /// # Errors
    /// An invalid or missing parameter.
    fn execution_filter(q: &QueryMap) -> Result<ExecutionFilter, ApiError>;

    /// One execution in ListExecutions.
    fn execution_json(e: ExecutionRecord) -> JsonValue;
}

/// The routes of one task kind.
pub(super) fn routes<F: TaskFamily>() -> Router<AppState> {
    let prefix = F::PREFIX;
    Router::new()
        .route(&format!("{prefix}/tasks"), get(tasks_list::<F>))
        .route(
            &format!("{prefix}/tasks/{{id}}"),
            on(F::START, task_start::<F>).get(task_describe::<F>),
        )
        .route(
            &format!("{prefix}/tasks/{{id}}/cancel"),
            put(task_cancel::<F>),
        )
        .route(&format!("{prefix}/executions"), get(executions_list::<F>))
}

async fn task_start<F: TaskFamily>(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<F::Start>,
) -> Result<Json<JsonValue>, ApiError> {
    check_task_id(&id)?;
    let token = F::client_request_token(&body);
    check_token(token.as_deref())?;
    state
        .blocking(move |state| {
            let now = state.detect.now();
            let planned = F::plan(state, &id, body, now)?;
            let task = TaskRecord {
                kind: F::KIND,
                task_id: id,
                state: TaskState::InProgress,
                start_ms: now,
                end_ms: None,
                client_request_token: token,
                request: planned.request,
                actions: serde_json::to_value(&planned.actions).map_err(ApiError::internal)?,
            };
            start_task(state, &task, &planned.executions)
        })
        .await
}

/// Stores and starts a task; a taken id is a TaskAlreadyExistsException unless the same
/// client token replays the original request.
fn start_task(
    state: &AppState,
    task: &TaskRecord,
    executions: &[ExecutionRecord],
) -> Result<Json<JsonValue>, ApiError> {
    match state.mitigation.start(task, executions)? {
        TaskInsert::Inserted => {}
        TaskInsert::Exists(token) if token.is_some() && token == task.client_request_token => {}
        TaskInsert::Exists(_) => {
            return Err(ApiError::TaskAlreadyExists(format!(
                "A mitigation actions task with id '{}' already exists",
                task.task_id
            )));
        }
    }
    Ok(Json(json!({ "taskId": task.task_id })))
}

async fn task_describe<F: TaskFamily>(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_task_id(&id)?;
    state
        .blocking(move |state| {
            let task = task_or_404(state, F::KIND, &id)?;
            F::describe(state, &task).map(Json)
        })
        .await
}

async fn tasks_list<F: TaskFamily>(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    let page = q.page(25, 250)?;
    let (start, end) = q.time_range()?;
    state
        .blocking(move |state| {
            let tasks = state.store.mitigation_tasks(F::KIND, start, end)?;
            let (tasks, next) = page.slice(F::select(state, &q, tasks)?);
            let items = tasks
                .iter()
                .map(|t| F::summary(state, t))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::response("tasks", items, next))
        })
        .await
}

async fn task_cancel<F: TaskFamily>(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<JsonValue>, ApiError> {
    check_task_id(&id)?;
    state
        .blocking(move |state| {
            task_or_404(state, F::KIND, &id)?;
            if !state.mitigation.cancel(F::KIND, &id)? {
                return Err(invalid(format!(
                    "Mitigation actions task '{id}' is not in progress; only an in-progress task can be canceled"
                )));
            }
            Ok(empty())
        })
        .await
}

async fn executions_list<F: TaskFamily>(
    State(state): State<AppState>,
    q: QueryMap,
) -> Result<Json<JsonValue>, ApiError> {
    let page = q.page(25, 250)?;
    let f = F::execution_filter(&q)?;
    state
        .blocking(move |state| {
            let rows =
                state
                    .store
                    .mitigation_executions(F::KIND, &f, page.offset, page.limit + 1)?;
            let (rows, next) = page.cut(rows);
            let items: Vec<JsonValue> = rows.into_iter().map(F::execution_json).collect();
            Ok(Page::response("actionsExecutions", items, next))
        })
        .await
}

pub(super) fn task_or_404(
    state: &AppState,
    kind: TaskKind,
    id: &str,
) -> Result<TaskRecord, ApiError> {
    state
        .store
        .mitigation_task_get(kind, id)?
        .ok_or_else(|| ApiError::not_found("Mitigation actions task", id))
}

/// Every execution of a task.
pub(super) fn task_executions(
    state: &AppState,
    kind: TaskKind,
    id: &str,
) -> Result<Vec<ExecutionRecord>, ApiError> {
    let f = ExecutionFilter {
        task_id: Some(id.to_owned()),
        ..ExecutionFilter::default()
    };
    Ok(state.store.mitigation_executions(kind, &f, 0, 1 << 40)?)
}

/// The stored request's object with its null members left out.
pub(super) fn without_nulls(v: &JsonValue) -> JsonValue {
    match v {
        JsonValue::Object(m) => JsonValue::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `actionsDefinition` as Describe shows it (no secrets).
pub(super) fn definitions_json(actions: &JsonValue) -> JsonValue {
    let defs: Vec<ActionDefinition> = serde_json::from_value(actions.clone()).unwrap_or_default();
    JsonValue::Array(
        defs.into_iter()
            .map(|d| {
                json!({
                    "name": d.name,
                    "id": d.id,
                    "roleArn": d.role_arn,
                    "actionParams": d.action_params.redacted(),
                })
            })
            .collect(),
    )
}

/// A task runs 1..=5 actions.
pub(super) fn check_action_count(names: &[String]) -> Result<(), ApiError> {
    if names.is_empty() || names.len() > 5 {
        return Err(invalid(format!(
            "A task runs 1..5 actions; got {}",
            names.len()
        )));
    }
    Ok(())
}
