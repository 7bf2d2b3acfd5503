//! The composition root: [`Service::open`] builds the service graph over one data directory —
//! the metadata store, the datapoint history, Detect, the ML models and the training job, the
//! alarm feed, mitigation, audit — and the API state over it. `thingward serve` (and the
//! in-process service `thingward bench` drives) and the in-process API tests all call it, so
//! the tests run exactly the graph users run.
//!
//! Opening starts no listener, loop or feed worker: `serve` does that, and the tests drive the
//! graph through the router and by hand.

use crate::api::{self, AppState};
use crate::audit::Audit;
use crate::audit::config::AuditConfig;
use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::detect::Detect;
use crate::feed::{Feed, FeedSettings};
use crate::mitigation::Mitigation;
use crate::mitigation::broker::BrokerDefaults;
use crate::training::{Models, Training};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thingward_history::{History, HistoryOptions};
use thingward_store::{SqliteStore, Store};

/// How the service graph is configured (`serve` translates its flags into this).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The region used in ARNs.
    pub(crate) region: String,
    /// The account id used in ARNs.
    pub(crate) account_id: String,
    /// The largest device report accepted, in bytes.
    pub(crate) max_report_bytes: usize,
    /// The brokers of BAN_CLIENT_ON_BROKER actions without inline connection settings.
    pub(crate) brokers: BrokerDefaults,
    /// The audit config file (certificate, CRL and policy directories, broker files), if any.
    pub(crate) audit_config: Option<PathBuf>,
    /// The alarm feed's origin, default broker and backoff.
    pub(crate) feed: FeedSettings,
}

/// The clocks the graph runs on.
#[derive(Clone)]
pub(crate) struct Clocks {
    /// Detect, training, audit and mitigation.
    pub(crate) service: Clock,
    /// The alarm feed's delivery status times (and, in `serve`, outbox retention). `serve`
    /// keeps it on the system clock under `--test-clock`, so that moving the test clock days
    /// forward does not age the outbox.
    pub(crate) feed: Clock,
}

impl Clocks {
    /// One clock for everything (the in-process tests' manual clock).
    #[cfg(test)]
    pub(crate) fn one(clock: Clock) -> Self {
        Self {
            service: clock.clone(),
            feed: clock,
        }
    }
}

impl std::fmt::Debug for Clocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clocks").finish_non_exhaustive()
    }
}

/// The service graph over one data directory.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    /// The metadata store (`{data_dir}/thingward.db`).
    pub(crate) store: Arc<dyn Store>,
    /// The datapoint history (`{data_dir}/history`).
    pub(crate) history: Arc<History>,
    /// The Detect engine.
    pub(crate) detect: Arc<Detect>,
    /// The ML Detect training job (and the models in service).
    pub(crate) training: Arc<Training>,
    /// The alarm feed (no worker runs until [`Feed::reload`]).
    pub(crate) feed: Arc<Feed>,
    /// Mitigation tasks.
    pub(crate) mitigation: Arc<Mitigation>,
    /// Audit tasks and the scheduled audits.
    pub(crate) audit: Arc<Audit>,
    region: Arc<str>,
    account: Arc<str>,
    max_report_bytes: usize,
}

impl Service {
    /// Opens the store and history in `data_dir` (which must exist), loads the audit config
    /// file and the models in service, and builds the graph. Audit tasks a previous process
    /// left running are marked FAILED; interrupted mitigation tasks resume.
    ///
    /// # Errors
    /// The store, the history, the audit config file, the models index, a stored profile that
    /// no longer compiles, or recovering the tasks failed.
    pub(crate) fn open(
        data_dir: &Path,
        settings: &Settings,
        clocks: Clocks,
    ) -> anyhow::Result<Self> {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&data_dir.join("thingward.db"))
                .context("Cannot open the metadata store")?,
        );
        let history = Arc::new(
            History::open(&data_dir.join("history"), HistoryOptions::default())
                .context("Cannot open the datapoint history")?,
        );
        let audit_files = settings
            .audit_config
            .as_deref()
            .map(AuditConfig::load)
            .transpose()?;
        let audit = Arc::new(Audit::new(
            Arc::clone(&store),
            audit_files,
            clocks.service.clone(),
            &settings.account_id,
        ));
        let interrupted = audit.recover().context("Cannot recover audit tasks")?;
        if interrupted > 0 {
            tracing::warn!(
                tasks = interrupted,
                "Audit tasks interrupted by a restart are marked FAILED"
            );
        }
        let models = Arc::new(Models::new(data_dir));
        let detect = Arc::new(Detect::open(
            Arc::clone(&store),
            Arc::clone(&history),
            Arc::clone(&models),
            clocks.service.clone(),
        )?);
        let serving = models
            .load(&*store)
            .context("Cannot read the models index")?;
        tracing::info!(models = serving, "Loaded the ML Detect models");
        let training = Arc::new(Training::new(
            Arc::clone(&store),
            Arc::clone(&history),
            models,
            clocks.service,
            crate::training::default_fit_params()?,
        ));
        let feed = Arc::new(Feed::new(
            Arc::clone(&store),
            settings.feed.clone(),
            clocks.feed,
        ));
        let region: Arc<str> = settings.region.as_str().into();
        let account: Arc<str> = settings.account_id.as_str().into();
        let mitigation = Arc::new(Mitigation::new(
            Arc::clone(&store),
            Arc::clone(&detect),
            settings.brokers.clone(),
            Arc::clone(&region),
            Arc::clone(&account),
        ));
        mitigation
            .recover()
            .context("Cannot recover the mitigation tasks")?;
        Ok(Self {
            store,
            history,
            detect,
            training,
            feed,
            mitigation,
            audit,
            region,
            account,
            max_report_bytes: settings.max_report_bytes,
        })
    }

    /// What the API handlers share.
    pub(crate) fn app_state(&self) -> AppState {
        AppState {
            mitigation: Arc::clone(&self.mitigation),
            store: Arc::clone(&self.store),
            detect: Arc::clone(&self.detect),
            history: Arc::clone(&self.history),
            training: Arc::clone(&self.training),
            region: Arc::clone(&self.region),
            account: Arc::clone(&self.account),
            max_report_bytes: self.max_report_bytes,
            feed: Arc::clone(&self.feed),
            audit: Arc::clone(&self.audit),
        }
    }

    /// The HTTP API over this graph, behind `auth`, refusing bodies over `max_body_bytes`.
    pub(crate) fn router(&self, auth: Arc<Authenticator>, max_body_bytes: usize) -> axum::Router {
        api::app(self.app_state(), auth, max_body_bytes)
    }
}
