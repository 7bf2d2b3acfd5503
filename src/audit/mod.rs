//! Audit in the service: the audit config file, the registry snapshot handed to the
//! `thingward-audit` library, audit tasks (run off the async runtime, cancellable, persisted
//! with their findings) and the scheduled-audit scheduler.

pub(crate) mod config;
pub(crate) mod runner;
pub(crate) mod schedule;
pub(crate) mod snapshot;

use crate::clock::Clock;
use config::AuditConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use thingward_audit::{AuditSettings, CheckName};
use thingward_models::time::EpochMillis;
use thingward_store::{AuditTaskRecord, CheckDetails, Store, StoreError, TaskStatus};

/// `taskType` of a task started by StartOnDemandAuditTask.
pub(crate) const ON_DEMAND: &str = "ON_DEMAND_AUDIT_TASK";
/// `taskType` of a task started by the scheduler.
pub(crate) const SCHEDULED: &str = "SCHEDULED_AUDIT_TASK";
/// The account configuration key of the age threshold.
pub(crate) const CERT_AGE_KEY: &str = "CERT_AGE_THRESHOLD_IN_DAYS";
/// The account configuration key of the expiry window.
pub(crate) const CERT_EXPIRATION_KEY: &str = "CERT_EXPIRATION_THRESHOLD_IN_DAYS";

/// The audit service: what to audit, the clock, and the tasks running now.
#[derive(Debug)]
pub(crate) struct Audit {
    store: Arc<dyn Store>,
    files: Option<AuditConfig>,
    clock: ClockHandle,
    account: String,
    running: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

/// The service clock (a `Clock` is a bare closure, which is not `Debug`).
struct ClockHandle(Clock);

impl std::fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

impl Audit {
    /// The audit service over `store` and the files of `files`, on `clock`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        files: Option<AuditConfig>,
        clock: Clock,
        account: &str,
    ) -> Self {
        Self {
            store,
            files,
            clock: ClockHandle(clock),
            account: account.to_owned(),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Now, by the service clock.
    pub(crate) fn now_ms(&self) -> EpochMillis {
        (self.clock.0)()
    }

    /// The store.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The audit config file's contents, if one was given.
    pub(crate) fn files(&self) -> Option<&AuditConfig> {
        self.files.as_ref()
    }

    /// Marks tasks a previous process left `IN_PROGRESS` as `FAILED`; returns how many.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn recover(&self) -> Result<usize, StoreError> {
        self.store.audit_tasks_fail_interrupted(
            self.now_ms(),
            "The service restarted while the audit was running",
        )
    }

    /// The run settings: thresholds from the account audit configuration, else the config
    /// file, else AWS's defaults.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn settings(&self) -> Result<AuditSettings, StoreError> {
        let defaults = self
            .files
            .as_ref()
            .map(|f| f.thresholds)
            .unwrap_or_default();
        let config = self.store.audit_config_get()?.unwrap_or_default();
        let threshold = |check: CheckName, key: &str| -> Option<u32> {
            config
                .checks
                .get(check.as_str())
                .and_then(|c| c.configuration.get(key))
                .and_then(|v| v.parse().ok())
        };
        Ok(AuditSettings {
            now_ms: self.now_ms(),
            expiring_days: threshold(
                CheckName::DeviceCertificateExpiringCheck,
                CERT_EXPIRATION_KEY,
            )
            .unwrap_or(defaults.cert_expiration_days),
            age_days: threshold(CheckName::DeviceCertificateAgeCheck, CERT_AGE_KEY)
                .unwrap_or(defaults.cert_age_days),
            account: self.account.clone(),
            connections_since_ms: None,
        })
    }

    /// Records a new task and runs it on the blocking pool; returns its id.
    ///
    /// # Errors
    /// Storage failures.
    pub(crate) fn start(
        self: &Arc<Self>,
        checks: Vec<CheckName>,
        scheduled_audit_name: Option<String>,
    ) -> Result<String, StoreError> {
        let task_id = uuid::Uuid::new_v4().simple().to_string();
        let details: BTreeMap<String, CheckDetails> = checks
            .iter()
            .map(|c| {
                (
                    c.as_str().to_owned(),
                    CheckDetails {
                        check_run_status: "IN_PROGRESS".into(),
                        ..CheckDetails::default()
                    },
                )
            })
            .collect();
        let task = AuditTaskRecord {
            task_id: task_id.clone(),
            task_type: if scheduled_audit_name.is_some() {
                SCHEDULED
            } else {
                ON_DEMAND
            }
            .into(),
            status: TaskStatus::InProgress,
            start_ms: self.now_ms(),
            end_ms: None,
            scheduled_audit_name,
            checks: checks.iter().map(|c| c.as_str().to_owned()).collect(),
            details,
        };
        self.store.audit_task_insert(&task)?;
        let cancel = Arc::new(AtomicBool::new(false));
        if let Ok(mut running) = self.running.lock() {
            running.insert(task_id.clone(), Arc::clone(&cancel));
        }
        let audit = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let id = task.task_id.clone();
            if let Err(e) = runner::run_task(&audit, task, &checks, &cancel) {
                tracing::error!(task_id = %id, error = %e, "Audit task failed to record its results");
            }
            if let Ok(mut running) = audit.running.lock() {
                running.remove(&id);
            }
        });
        Ok(task_id)
    }

    /// Asks a running task to stop; returns false when it is not running in this process.
    pub(crate) fn cancel(&self, task_id: &str) -> bool {
        self.running
            .lock()
            .ok()
            .and_then(|r| {
                r.get(task_id)
                    .map(|flag| flag.store(true, Ordering::SeqCst))
            })
            .is_some()
    }
}
