//! Mitigation: action definitions, audit and detect mitigation tasks and their executions.

use crate::StoreError;
use thingward_models::time::EpochMillis;

/// A stored mitigation action.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionRecord {
    pub name: String,
    pub action_id: String,
    /// The `MitigationActionType` wire name.
    pub action_type: String,
    pub role_arn: String,
    /// The `actionParams` JSON as accepted.
    pub params: serde_json::Value,
    pub creation_ms: EpochMillis,
    pub modified_ms: EpochMillis,
}

/// Audit or detect: the two task families share tables, keyed apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// StartAuditMitigationActionsTask.
    Audit,
    /// StartDetectMitigationActionsTask.
    Detect,
}

impl TaskKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Audit => "audit",
            Self::Detect => "detect",
        }
    }
}

/// Where a task is (stored; rendered per kind by the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// Running.
    InProgress,
    /// Ran through every execution (some may have failed).
    Done,
    /// Stopped by a failure of thingward itself (store error, restart).
    Failed,
    /// Cancelled on request.
    Canceled,
}

impl TaskState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Done => "DONE",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "DONE" => Self::Done,
            "FAILED" => Self::Failed,
            "CANCELED" => Self::Canceled,
            _ => Self::InProgress,
        }
    }
}

/// Where one execution is (stored; rendered per kind by the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecState {
    /// Planned, not started.
    Pending,
    /// Running.
    InProgress,
    /// The action did what it should.
    Succeeded,
    /// The action failed; `error_code` and `message` say why.
    Failed,
    /// Not run, by rule (suppressed finding or alert, nothing to act on).
    Skipped,
    /// Not run: the task was cancelled or thingward stopped first.
    Canceled,
}

impl ExecState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::InProgress => "IN_PROGRESS",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Skipped => "SKIPPED",
            Self::Canceled => "CANCELED",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "IN_PROGRESS" => Self::InProgress,
            "SUCCEEDED" => Self::Succeeded,
            "FAILED" => Self::Failed,
            "SKIPPED" => Self::Skipped,
            "CANCELED" => Self::Canceled,
            _ => Self::Pending,
        }
    }
}

/// A stored task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRecord {
    pub kind: TaskKind,
    pub task_id: String,
    pub state: TaskState,
    pub start_ms: EpochMillis,
    pub end_ms: Option<EpochMillis>,
    pub client_request_token: Option<String>,
    /// The Start request's target and options, as JSON (echoed by Describe).
    pub request: serde_json::Value,
    /// The `MitigationAction` definitions the task runs with (a snapshot at start).
    pub actions: serde_json::Value,
}

/// One (subject, action) execution of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    pub task_id: String,
    /// Its place in the task's order.
    pub seq: i64,
    /// The finding id (audit) or violation id (detect).
    pub subject: String,
    /// The finding's check (audit).
    pub check_name: Option<String>,
    /// The violation's thing (detect).
    pub thing: Option<String>,
    pub action_name: String,
    pub action_id: String,
    pub state: ExecState,
    pub start_ms: Option<EpochMillis>,
    pub end_ms: Option<EpochMillis>,
    pub error_code: Option<String>,
    pub message: Option<String>,
}

/// Filters of the execution listings.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub task_id: Option<String>,
    pub subject: Option<String>,
    pub thing: Option<String>,
    pub state: Option<ExecState>,
    /// Executions that started (or, pending, whose task started) in [start, end].
    pub range: Option<(EpochMillis, EpochMillis)>,
}

/// A violation as a detect mitigation task sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ViolationRef {
    pub violation_id: String,
    pub thing: String,
    pub profile: String,
    pub behavior: String,
    pub suppressed: bool,
    pub active: bool,
    /// The first and last time it was seen (`last` = now for an active violation).
    pub first_ms: EpochMillis,
    pub last_ms: EpochMillis,
}

/// Which violations to look up.
#[derive(Debug, Clone)]
pub enum ViolationSelector {
    /// These ids.
    Ids(Vec<String>),
    /// A profile's, optionally one behavior's.
    Profile {
        profile: String,
        behavior: Option<String>,
    },
}

/// What inserting a task found.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskInsert {
    /// Stored.
    Inserted,
    /// The id was taken, by a request with this client token.
    Exists(Option<String>),
}

/// What the restart recovery says about an execution that never finished.
pub const STOPPED_MESSAGE: &str = "thingward stopped before this execution finished";

/// The mitigation part of the store interface ([`crate::Store`]); [`crate::SqliteStore`] implements it.
pub trait MitigationStore {
    /// Inserts an action unless the name exists; returns whether it was inserted.
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_action_insert(
        &self,
        rec: &ActionRecord,
        tags: Option<&serde_json::Value>,
    ) -> Result<bool, StoreError>;

    /// The action called `name`.
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_action_get(&self, name: &str) -> Result<Option<ActionRecord>, StoreError>;

    /// Replaces an action's role, type and parameters; returns the updated record (None when
    /// there is no such action).
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_action_update(
        &self,
        name: &str,
        role_arn: &str,
        action_type: &str,
        params_json: &serde_json::Value,
        now: EpochMillis,
    ) -> Result<Option<ActionRecord>, StoreError>;

    /// Deletes an action; returns whether it existed.
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_action_delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Every action, oldest first.
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_actions_all(&self) -> Result<Vec<ActionRecord>, StoreError>;

    /// Inserts a task and its planned executions in one transaction, unless the id is taken.
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_task_insert(
        &self,
        task: &TaskRecord,
        executions: &[ExecutionRecord],
    ) -> Result<TaskInsert, StoreError>;

    /// The task `task_id` of `kind`.
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_task_get(
        &self,
        kind: TaskKind,
        task_id: &str,
    ) -> Result<Option<TaskRecord>, StoreError>;

    /// Tasks of `kind` that started in [start, end], newest first.
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_tasks(
        &self,
        kind: TaskKind,
        start_ms: EpochMillis,
        end_ms: EpochMillis,
    ) -> Result<Vec<TaskRecord>, StoreError>;

    /// Ends an in-progress task: sets its state and end time, and marks its pending executions
    /// (and, with `running_too`, the one in progress) with `leftover` (and `message`). Returns
    /// false when the task was not in progress (already ended).
    ///
    /// # Errors
    /// Storage failures.
    #[allow(clippy::too_many_arguments)]
    fn mitigation_task_end(
        &self,
        kind: TaskKind,
        task_id: &str,
        state: TaskState,
        leftover: ExecState,
        running_too: bool,
        message: Option<&str>,
        now: EpochMillis,
    ) -> Result<bool, StoreError>;

    /// Marks a pending execution IN_PROGRESS from `now`; returns false when it is no longer
    /// pending (its task was cancelled or ended).
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_execution_begin(
        &self,
        kind: TaskKind,
        task_id: &str,
        seq: i64,
        now: EpochMillis,
    ) -> Result<bool, StoreError>;

    /// Records an execution's new state (start and end times when given).
    ///
    /// # Errors
    /// Storage failures.
    #[allow(clippy::too_many_arguments)]
    fn mitigation_execution_set(
        &self,
        kind: TaskKind,
        task_id: &str,
        seq: i64,
        state: ExecState,
        start_ms: Option<EpochMillis>,
        end_ms: Option<EpochMillis>,
        error_code: Option<&str>,
        message: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Executions of `kind` matching `f`, in task order (task start, then seq), paged.
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_executions(
        &self,
        kind: TaskKind,
        f: &ExecutionFilter,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError>;

    /// Every task still IN_PROGRESS (after a restart: tasks whose runner died with the
    /// process).
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_tasks_in_progress(&self) -> Result<Vec<(TaskKind, String)>, StoreError>;

    /// The violations `sel` names (active ones and those with recorded events), by id.
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_violations(
        &self,
        sel: &ViolationSelector,
        now: EpochMillis,
    ) -> Result<Vec<ViolationRef>, StoreError>;

    /// The latest recorded state of a violation as AWS's `ViolationEvent` JSON (the active
    /// violation when it is still in alarm, else its last event), for publishing it.
    ///
    /// # Errors
    /// Storage failures.
    fn mitigation_violation_json(
        &self,
        violation_id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
}
