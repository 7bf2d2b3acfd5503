//! The alarm feed: delivers the outbox (violation events, audit findings) to destinations —
//! Alertmanager, CloudEvents, OCSF and ASFF webhooks, MQTT, NATS — with one worker task per
//! destination, and serves it as Server-Sent Events and Prometheus metrics.
//! docs/specs/feed.md is the normative description.

pub(crate) mod config;
pub(crate) mod format;
pub(crate) mod metrics;
mod sink;
pub(crate) mod sse;
pub(crate) mod worker;

use crate::clock::Clock;
use crate::periodic::{self, FirstRun};
use config::{Destination, DestinationType};
use format::Origin;
use sink::Sink;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thingward_store::{DestinationRecord, Store, StoreError};
use tokio::sync::watch;
use worker::Shared;

/// How the feed runs (from `thingward serve` flags).
#[derive(Debug, Clone)]
pub(crate) struct FeedSettings {
    /// ARNs and links.
    pub(crate) origin: Origin,
    /// The broker an `mqtt` destination without a `url` publishes to (`--mqtt-url`).
    pub(crate) default_mqtt_url: Option<String>,
    /// The first retry's backoff.
    pub(crate) backoff_base: Duration,
}

/// A running worker.
#[derive(Debug)]
struct Running {
    destination: Destination,
    task: tokio::task::AbortHandle,
}

/// The feed's workers, one per destination, restarted when a destination changes.
#[derive(Debug)]
pub(crate) struct Feed {
    shared: Arc<Shared>,
    settings: FeedSettings,
    workers: Mutex<HashMap<String, Running>>,
    stop_tx: watch::Sender<bool>,
}

/// Why a destination's worker could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FeedError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored destination no longer decodes.
    #[error("destination {0}: stored configuration does not decode: {1}")]
    Config(String, serde_json::Error),
    /// A previous panic poisoned the worker table.
    #[error("feed worker table poisoned by an earlier panic")]
    Poisoned,
}

impl Feed {
    /// A feed over `store`; no worker runs until [`Feed::reload`].
    pub(crate) fn new(store: Arc<dyn Store>, settings: FeedSettings, clock: Clock) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                origin: settings.origin.clone(),
                backoff_base: settings.backoff_base,
                now_ms: clock,
            }),
            settings,
            workers: Mutex::new(HashMap::new()),
            stop_tx: watch::Sender::new(false),
        }
    }

    /// Whether an `mqtt` destination without a `url` has a broker (`--mqtt-url`).
    pub(crate) fn has_default_mqtt(&self) -> bool {
        self.settings.default_mqtt_url.is_some()
    }

    /// The destination's ARN.
    pub(crate) fn arn(&self, name: &str) -> String {
        worker::destination_arn(&self.shared.origin, name)
    }

    /// Decodes a stored destination.
    ///
    /// # Errors
    /// [`FeedError::Config`].
    pub(crate) fn decode(record: &DestinationRecord) -> Result<Destination, FeedError> {
        serde_json::from_value(record.config.clone())
            .map_err(|e| FeedError::Config(record.name.clone(), e))
    }

    fn sink(&self, d: &Destination, name: &str) -> Sink {
        let timeout = Duration::from_secs(d.timeout_seconds);
        match d.kind {
            DestinationType::Mqtt => {
                let url = d
                    .url
                    .clone()
                    .or_else(|| self.settings.default_mqtt_url.clone())
                    .unwrap_or_default();
                let id = format!(
                    "thingward-feed-{name}-{}",
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                );
                // An unparsable URL was refused by the API; a missing broker fails each send.
                let options = crate::mqtt::options(&url, &id).unwrap_or_else(|_| {
                    rumqttc::MqttOptions::new(id, "mqtt-url-not-configured.invalid", 1883)
                });
                Sink::Mqtt {
                    options: Box::new(options),
                    topic: d.topic.clone().unwrap_or_default(),
                    conn: None,
                    last_used: None,
                    timeout,
                }
            }
            DestinationType::Nats => Sink::Nats {
                url: d.url.clone().unwrap_or_default(),
                subject: d.subject.clone().unwrap_or_default(),
                client: None,
                timeout,
            },
            _ => Sink::Http {
                client: reqwest::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout.min(Duration::from_secs(5)))
                    .build()
                    .unwrap_or_default(),
                url: d.url.clone().unwrap_or_default(),
                headers: d.headers.clone(),
            },
        }
    }

    /// Starts, restarts or stops workers so that exactly the stored destinations run, each
    /// with its current configuration. Call after every change (and once at start-up); must
    /// run inside the tokio runtime.
    ///
    /// # Errors
    /// The store failed, or a stored destination does not decode (the others still start).
    pub(crate) fn reload(&self) -> Result<(), FeedError> {
        let records = self.shared.store.destinations_list()?;
        let mut workers = self.workers.lock().map_err(|_| FeedError::Poisoned)?;
        let mut first_error = None;
        let mut wanted = HashMap::new();
        for r in &records {
            match Self::decode(r) {
                Ok(d) => {
                    wanted.insert(r.name.clone(), d);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        workers.retain(|name, running| {
            let keep = wanted.get(name) == Some(&running.destination);
            if !keep {
                running.task.abort();
            }
            keep
        });
        for (name, destination) in wanted {
            if workers.contains_key(&name) {
                continue;
            }
            let sink = self.sink(&destination, &name);
            let task = tokio::spawn(worker::run(
                Arc::clone(&self.shared),
                name.clone(),
                destination.clone(),
                sink,
                self.stop_tx.subscribe(),
            ))
            .abort_handle();
            workers.insert(name, Running { destination, task });
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops every worker (shutdown); undelivered events stay in the outbox for the next start.
    pub(crate) fn stop(&self) {
        let _ = self.stop_tx.send(true);
        if let Ok(mut workers) = self.workers.lock() {
            for (_, running) in workers.drain() {
                running.task.abort();
            }
        }
    }
}

/// How often the outbox retention runs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes outbox events older than `keep` that every destination is done with, hourly (and
/// once at start), off the async runtime, until `stop` flips. SSE resume and `findings export`
/// reach back as far.
pub(crate) async fn prune_loop(
    store: Arc<dyn Store>,
    keep: Duration,
    clock: Clock,
    stop: watch::Receiver<bool>,
) {
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    periodic::every(
        "feed retention",
        PRUNE_EVERY,
        FirstRun::AtStart,
        stop,
        move || match store.outbox_prune(clock().saturating_sub(keep_ms)) {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "Pruned the feed outbox"),
            Err(e) => tracing::warn!(error = %e, "Pruning the feed outbox failed; will retry"),
        },
    )
    .await;
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.stop();
    }
}
