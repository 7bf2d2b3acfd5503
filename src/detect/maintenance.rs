//! Maintenance windows in Detect: the checked declaration ([`MaintenanceParams::validate`]) and
//! the index scoring asks whether a datapoint is covered ([`MaintenanceIndex::covering`]).
//!
//! A datapoint of a thing is covered when a window's time range holds the datapoint's
//! timestamp, the window names the datapoint's metric (or no metric: every ML metric), and its
//! target is the profile being scored or a thing group the thing is in (directly or through a
//! child group). Covered datapoints are judged as usual; their alarms are recorded with the
//! window's name and not notified, and they do not count toward fleet events.
//!
//! Cost: with no window in the index nothing is looked up; with some, a datapoint costs one
//! pass over the (few) windows that have not ended.

use crate::targeting::Targeting;
use serde::Deserialize;
use std::sync::Arc;
use thingward_models::Metric;
use thingward_models::names::check_resource_name;
use thingward_models::time::{EpochMillis, seconds_to_millis};
use thingward_store::{MaintenanceTarget, MaintenanceWindowRecord, Store, StoreError};

/// The window named on a held alarm whose window is no longer known: its clear came after a
/// restart that kept the scorer's link but not the name (the index is rebuilt from the store).
pub(crate) const UNKNOWN_WINDOW: &str = "unknown";

/// The longest description kept.
const DESCRIPTION_MAX: usize = 1000;

/// Why a maintenance window was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MaintenanceError {
    /// The request breaks a rule (the message says which).
    #[error("{0}")]
    Invalid(String),
    /// The target or a metric does not exist.
    #[error("{resource} '{name}' does not exist")]
    NotFound {
        /// What kind of thing (`Security profile`, `Thing group`, `Custom metric`).
        resource: &'static str,
        /// Its name.
        name: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The body of `POST /thingward/v1/maintenance-windows/{name}`, unchecked.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct MaintenanceParams {
    /// The profile whose things are covered (exactly one of this and `thing_group_name`).
    pub(crate) security_profile_name: Option<String>,
    /// The thing group whose things (and its child groups' things) are covered.
    pub(crate) thing_group_name: Option<String>,
    /// The metrics covered; absent or empty: every ML metric.
    pub(crate) metrics: Option<Vec<String>>,
    /// Start, epoch seconds.
    pub(crate) start_time: Option<f64>,
    /// End, epoch seconds, after the start and in the future.
    pub(crate) end_time: Option<f64>,
    /// A note (≤ 1000 characters, no control characters).
    pub(crate) description: Option<String>,
}

fn epoch_ms(name: &str, v: Option<f64>) -> Result<EpochMillis, MaintenanceError> {
    let secs = v.ok_or_else(|| MaintenanceError::Invalid(format!("{name} is required")))?;
    // Between 1970 and 9999: anything else is not a time a roll-out happens at.
    if !secs.is_finite() || !(0.0..=253_402_300_799.0).contains(&secs) {
        return Err(MaintenanceError::Invalid(format!(
            "{name} must be epoch seconds between 1970 and 9999"
        )));
    }
    Ok(seconds_to_millis(secs))
}

impl MaintenanceParams {
    /// Checks every rule against the store (the target and custom metrics must exist) at
    /// `now`, into the record to store as `name`.
    ///
    /// # Errors
    /// [`MaintenanceError`]: the first rule broken.
    pub(crate) fn validate(
        self,
        name: &str,
        store: &dyn Store,
        now: EpochMillis,
    ) -> Result<MaintenanceWindowRecord, MaintenanceError> {
        check_resource_name("maintenance window name", name)
            .map_err(|e| MaintenanceError::Invalid(e.to_string()))?;
        let target = match (self.security_profile_name, self.thing_group_name) {
            (Some(p), None) => {
                check_resource_name("securityProfileName", &p)
                    .map_err(|e| MaintenanceError::Invalid(e.to_string()))?;
                if store.profile_get(&p)?.is_none() {
                    return Err(MaintenanceError::NotFound {
                        resource: "Security profile",
                        name: p,
                    });
                }
                MaintenanceTarget::SecurityProfile(p)
            }
            (None, Some(g)) => {
                check_resource_name("thingGroupName", &g)
                    .map_err(|e| MaintenanceError::Invalid(e.to_string()))?;
                if store.group_get(&g)?.is_none() {
                    return Err(MaintenanceError::NotFound {
                        resource: "Thing group",
                        name: g,
                    });
                }
                MaintenanceTarget::ThingGroup(g)
            }
            _ => {
                return Err(MaintenanceError::Invalid(
                    "Exactly one of securityProfileName and thingGroupName is required".into(),
                ));
            }
        };
        let mut metrics = self.metrics.unwrap_or_default();
        metrics.sort();
        metrics.dedup();
        for m in &metrics {
            let metric: Metric =
                m.parse()
                    .map_err(|e: thingward_models::metric::MetricParseError| {
                        MaintenanceError::Invalid(format!("metrics: {e}"))
                    })?;
            match metric {
                Metric::Custom(name) if store.custom_metric_get(&name)?.is_none() => {
                    return Err(MaintenanceError::NotFound {
                        resource: "Custom metric",
                        name,
                    });
                }
                Metric::Custom(_) => {}
                builtin if !builtin.ml_capable() => {
                    return Err(MaintenanceError::Invalid(format!(
                        "metrics: '{builtin}' is not an ML Detect metric"
                    )));
                }
                _ => {}
            }
        }
        let start_ms = epoch_ms("startTime", self.start_time)?;
        let end_ms = epoch_ms("endTime", self.end_time)?;
        if end_ms <= start_ms {
            return Err(MaintenanceError::Invalid(
                "endTime must be after startTime".into(),
            ));
        }
        if end_ms <= now {
            return Err(MaintenanceError::Invalid(
                "endTime is in the past: a maintenance window is declared ahead".into(),
            ));
        }
        if let Some(d) = &self.description
            && (d.chars().count() > DESCRIPTION_MAX || d.chars().any(char::is_control))
        {
            return Err(MaintenanceError::Invalid(format!(
                "description must be at most {DESCRIPTION_MAX} characters without control characters"
            )));
        }
        Ok(MaintenanceWindowRecord {
            name: name.to_owned(),
            target,
            metrics,
            start_ms,
            end_ms,
            description: self.description,
            creation_ms: now,
        })
    }
}

/// One window as scoring checks it.
#[derive(Debug, Clone)]
struct Window {
    name: Arc<str>,
    target: MaintenanceTarget,
    /// Empty: every metric.
    metrics: Vec<Metric>,
    start_ms: EpochMillis,
    end_ms: EpochMillis,
}

/// The windows that have not ended, for scoring.
#[derive(Debug, Clone, Default)]
pub(crate) struct MaintenanceIndex {
    windows: Vec<Window>,
}

impl MaintenanceIndex {
    /// Reads the windows that end after `now`.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn load(store: &dyn Store, now: EpochMillis) -> Result<Self, StoreError> {
        let windows = store
            .maintenance_all()?
            .into_iter()
            .filter(|w| w.end_ms > now)
            .map(|w| Window {
                name: w.name.into(),
                target: w.target,
                // Stored names were parsed when declared.
                metrics: w.metrics.iter().filter_map(|m| m.parse().ok()).collect(),
                start_ms: w.start_ms,
                end_ms: w.end_ms,
            })
            .collect();
        Ok(Self { windows })
    }

    /// Whether no window can cover anything (scoring then asks nothing).
    pub(crate) fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The window covering a datapoint of `metric` at `ts` of `thing`, scored for `profile`.
    pub(crate) fn covering(
        &self,
        targeting: &Targeting,
        profile: &str,
        thing: &str,
        metric: &Metric,
        ts: EpochMillis,
    ) -> Option<&Arc<str>> {
        self.windows
            .iter()
            .find(|w| {
                (w.start_ms..w.end_ms).contains(&ts)
                    && (w.metrics.is_empty() || w.metrics.contains(metric))
                    && match &w.target {
                        MaintenanceTarget::SecurityProfile(p) => p == profile,
                        MaintenanceTarget::ThingGroup(g) => targeting.in_group(thing, g),
                    }
            })
            .map(|w| &w.name)
    }
}
