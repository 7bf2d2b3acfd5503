//! What one `run` shares between its checks: the input, settings, progress sink, cancel flag,
//! and inputs parsed once on first use (certificates and CRLs, the broker configuration, the
//! connection log).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::broker::config::BrokerConfig;
use crate::certs::Pki;
use crate::connlog::ConnectionLog;
use crate::policy;
use crate::{AuditInput, AuditSettings, CheckName, Finding, Progress};

/// Why a check did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The audit was canceled.
    Canceled,
    /// The check could not run.
    Failed(String),
}

/// What a check computed.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) total_resources: u64,
    pub(crate) findings: Vec<Finding>,
}

impl Outcome {
    pub(crate) fn new(total_resources: usize, findings: Vec<Finding>) -> Outcome {
        Outcome {
            total_resources: total_resources as u64,
            findings,
        }
    }
}

pub(crate) type CheckResult = Result<Outcome, Stop>;

pub(crate) struct Context<'a> {
    pub(crate) input: &'a AuditInput,
    pub(crate) settings: &'a AuditSettings,
    progress: &'a (dyn Fn(Progress) + Sync),
    cancel: &'a AtomicBool,
    pki: OnceLock<Pki<'a>>,
    broker: OnceLock<Option<BrokerConfig>>,
    log: OnceLock<Option<ConnectionLog>>,
    policies: OnceLock<policy::Parsed<'a>>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        input: &'a AuditInput,
        settings: &'a AuditSettings,
        progress: &'a (dyn Fn(Progress) + Sync),
        cancel: &'a AtomicBool,
    ) -> Context<'a> {
        Context {
            input,
            settings,
            progress,
            cancel,
            pki: OnceLock::new(),
            broker: OnceLock::new(),
            log: OnceLock::new(),
            policies: OnceLock::new(),
        }
    }

    pub(crate) fn canceled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `Err(Stop::Canceled)` once the audit is canceled.
    pub(crate) fn check_cancel(&self) -> Result<(), Stop> {
        if self.canceled() {
            Err(Stop::Canceled)
        } else {
            Ok(())
        }
    }

    pub(crate) fn progress(&self, event: Progress) {
        (self.progress)(event);
    }

    /// A progress callback for `parallel::map` over a check's resources.
    pub(crate) fn resources(&self, check: CheckName, total: usize) -> impl Fn(usize) + Sync + '_ {
        move |done| {
            self.progress(Progress::Resources {
                check,
                done: done as u64,
                total: total as u64,
            });
        }
    }

    /// Certificates and CRLs, parsed (in parallel) on first use.
    pub(crate) fn pki(&self) -> &Pki<'a> {
        self.pki.get_or_init(|| Pki::build(self.input))
    }

    /// The broker configuration (with includes, ACL and password files), parsed on first use.
    pub(crate) fn broker(&self) -> Option<&BrokerConfig> {
        self.broker
            .get_or_init(|| self.input.broker_config.as_ref().map(BrokerConfig::load))
            .as_ref()
    }

    /// Default policy versions, parsed on first use.
    pub(crate) fn policies(&self) -> &policy::Parsed<'a> {
        self.policies
            .get_or_init(|| policy::parse_defaults(&self.input.policies))
    }

    /// The connection log, parsed on first use.
    pub(crate) fn log(&self) -> Option<&ConnectionLog> {
        self.log
            .get_or_init(|| {
                self.input
                    .connection_log
                    .as_ref()
                    .map(|t| ConnectionLog::parse(&t.text))
            })
            .as_ref()
    }
}
