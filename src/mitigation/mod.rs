//! Mitigation: actions applied to audit findings and Detect violations, run as background
//! tasks whose executions are recorded in the metadata store.
//!
//! - `action`: the action types and `actionParams` validation;
//! - `audit`: choosing an audit task's findings, planning its executions, its statistics;
//! - `detect`: choosing a detect task's violations and planning its executions;
//! - `executor`: what one action does to one finding or violation;
//! - `broker`: the broker ban (EMQX REST, Mosquitto dynamic security).
//!
//! A task is stored with every (subject, action) execution planned as PENDING, in one
//! transaction, then a tokio task runs them in order. The store is the only state: cancelling
//! ends the task in SQLite and the runner stops at the next execution it cannot begin; at
//! start-up [`Mitigation::recover`] ends tasks a previous process left IN_PROGRESS as FAILED.

pub(crate) mod action;
pub(crate) mod audit;
pub(crate) mod broker;
pub(crate) mod detect;
mod executor;

#[cfg(test)]
pub(crate) use executor::BLANK_POLICY;

use crate::detect::Detect;
use action::{Action, ActionParams};
use broker::BrokerDefaults;
use std::collections::HashMap;
use std::sync::Arc;
use thingward_store::{
    ExecState, ExecutionFilter, ExecutionRecord, STOPPED_MESSAGE, Store, StoreError, TaskInsert,
    TaskKind, TaskRecord, TaskState,
};

/// The mitigation service: starts, runs and recovers tasks.
#[derive(Debug)]
pub(crate) struct Mitigation {
    store: Arc<dyn Store>,
    detect: Arc<Detect>,
    brokers: BrokerDefaults,
    region: Arc<str>,
    account: Arc<str>,
}

/// One action of a task as it was defined when the task started (`MitigationAction`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActionDefinition {
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) role_arn: String,
    pub(crate) action_params: ActionParams,
}

/// How one execution ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) state: ExecState,
    pub(crate) error_code: Option<&'static str>,
    pub(crate) message: Option<String>,
}

impl Outcome {
    fn succeeded(message: impl Into<String>) -> Self {
        Self {
            state: ExecState::Succeeded,
            error_code: None,
            message: Some(message.into()),
        }
    }

    fn failed(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            state: ExecState::Failed,
            error_code: Some(code),
            message: Some(message.into()),
        }
    }

    fn skipped(message: impl Into<String>) -> Self {
        Self {
            state: ExecState::Skipped,
            error_code: None,
            message: Some(message.into()),
        }
    }
}

/// Listing every execution of one task.
const ALL: usize = 1 << 40;

impl Mitigation {
    /// The service over `store`, using Detect's clock and registry reload, and `brokers` for
    /// bans without inline connection settings.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        detect: Arc<Detect>,
        brokers: BrokerDefaults,
        region: Arc<str>,
        account: Arc<str>,
    ) -> Self {
        Self {
            store,
            detect,
            brokers,
            region,
            account,
        }
    }

    /// The service clock, epoch milliseconds.
    pub(crate) fn now(&self) -> i64 {
        self.detect.now()
    }

    /// The region and account actions' ARNs are checked against.
    pub(crate) fn region_account(&self) -> (&str, &str) {
        (&self.region, &self.account)
    }

    /// Ends every task a previous process left IN_PROGRESS: FAILED, with its unfinished
    /// executions CANCELED ([`STOPPED_MESSAGE`]). Returns how many.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn recover(&self) -> Result<usize, StoreError> {
        let stuck = self.store.mitigation_tasks_in_progress()?;
        let now = self.now();
        for (kind, id) in &stuck {
            self.store.mitigation_task_end(
                *kind,
                id,
                TaskState::Failed,
                ExecState::Canceled,
                true,
                Some(STOPPED_MESSAGE),
                now,
            )?;
            tracing::warn!(task = %id, ?kind, "Mitigation task was in progress when thingward stopped; marked FAILED");
        }
        Ok(stuck.len())
    }

    /// Cancels an in-progress task: it ends CANCELED now, its pending executions CANCELED;
    /// the runner stops after the execution it is in. Returns false when the task had
    /// already ended.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn cancel(&self, kind: TaskKind, task_id: &str) -> Result<bool, StoreError> {
        self.store.mitigation_task_end(
            kind,
            task_id,
            TaskState::Canceled,
            ExecState::Canceled,
            false,
            Some("The task was canceled"),
            self.now(),
        )
    }

    /// Stores a task with its planned executions and starts running it; returns what the
    /// insert found (an id already taken starts nothing).
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn start(
        self: &Arc<Self>,
        task: &TaskRecord,
        executions: &[ExecutionRecord],
    ) -> Result<TaskInsert, StoreError> {
        let inserted = self.store.mitigation_task_insert(task, executions)?;
        if inserted == TaskInsert::Inserted {
            self.spawn(task.kind, task.task_id.clone());
        }
        Ok(inserted)
    }

    /// Runs a stored task's pending executions in the background.
    pub(crate) fn spawn(self: &Arc<Self>, kind: TaskKind, task_id: String) {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = me.run(kind, &task_id).await {
                tracing::error!(task = %task_id, error = %e, "Mitigation task failed");
                let _ = me.store.mitigation_task_end(
                    kind,
                    &task_id,
                    TaskState::Failed,
                    ExecState::Canceled,
                    true,
                    Some(&format!("The task failed: {e}")),
                    me.now(),
                );
            }
        });
    }

    async fn run(&self, kind: TaskKind, task_id: &str) -> Result<(), StoreError> {
        let Some(task) = self.store.mitigation_task_get(kind, task_id)? else {
            return Ok(());
        };
        let definitions: Vec<ActionDefinition> = serde_json::from_value(task.actions)?;
        let (region, account) = self.region_account();
        let actions: HashMap<String, Result<Action, String>> = definitions
            .into_iter()
            .map(|d| (d.name, d.action_params.validate(region, account)))
            .collect();
        let filter = ExecutionFilter {
            task_id: Some(task_id.to_owned()),
            state: Some(ExecState::Pending),
            ..ExecutionFilter::default()
        };
        for e in self.store.mitigation_executions(kind, &filter, 0, ALL)? {
            if !self
                .store
                .mitigation_execution_begin(kind, task_id, e.seq, self.now())?
            {
                // Cancelled (or ended) meanwhile: stop here.
                return Ok(());
            }
            let outcome = match actions.get(&e.action_name) {
                Some(Ok(action)) => self.execute(kind, action, &e).await,
                Some(Err(why)) => Outcome::failed("INVALID_ACTION", why.clone()),
                None => Outcome::failed(
                    "INVALID_ACTION",
                    format!(
                        "Action '{}' is not in the task's definitions",
                        e.action_name
                    ),
                ),
            };
            self.store.mitigation_execution_set(
                kind,
                task_id,
                e.seq,
                outcome.state,
                None,
                Some(self.now()),
                outcome.error_code,
                outcome.message.as_deref(),
            )?;
        }
        self.store.mitigation_task_end(
            kind,
            task_id,
            TaskState::Done,
            ExecState::Canceled,
            false,
            None,
            self.now(),
        )?;
        Ok(())
    }
}
