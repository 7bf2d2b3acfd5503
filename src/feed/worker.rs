//! One delivery worker per destination: reads the outbox after the destination's cursor (a
//! bounded batch per round), keeps the events routed to it, sends them in `batchSize` chunks
//! with bounded retries (exponential backoff with jitter), and moves the cursor only after
//! the receiver acknowledged — or after the chunk went to the dead-letter table.

use super::config::{Destination, DestinationType, EventKind};
use super::format::{self, Origin};
use super::sink::{Message, Sink};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use thingward_models::time::EpochMillis;
use thingward_store::{OutboxEvent, OutboxKind, Store, StoreError};
use tokio::sync::watch;

/// Outbox events read per round, at most (whatever the routing keeps of them).
pub(crate) const READ_BATCH: usize = 500;
/// The longest backoff between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// The fallback poll when no wake-up arrives.
const POLL: Duration = Duration::from_secs(5);

/// What every worker shares.
pub(crate) struct Shared {
    /// The metadata store (outbox, cursors, profiles).
    pub(crate) store: Arc<dyn Store>,
    /// ARNs and links.
    pub(crate) origin: Origin,
    /// The first backoff; doubles per attempt up to [`BACKOFF_CAP`].
    pub(crate) backoff_base: Duration,
    /// The clock (epoch ms) used for status times.
    pub(crate) now_ms: crate::clock::Clock,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("origin", &self.origin)
            .field("backoff_base", &self.backoff_base)
            .finish_non_exhaustive()
    }
}

/// A destination's ARN: `arn:aws:iot:{region}:{account}:destination/{name}`.
pub(crate) fn destination_arn(origin: &Origin, name: &str) -> String {
    format!(
        "arn:aws:iot:{}:{}:destination/{name}",
        origin.region, origin.account
    )
}

/// Whether `event` goes to the destination: its kind is subscribed, and a violation's (or
/// fleet event's) profile is covered (`allProfiles`, or an `alertTargets` entry naming the destination's ARN).
/// `targets` caches each profile's alert target ARNs for the round.
fn routed(
    store: &dyn Store,
    dest: &Destination,
    arn: &str,
    event: &OutboxEvent,
    targets: &mut HashMap<String, Vec<String>>,
) -> Result<bool, StoreError> {
    if let Some(only) = &event.routing.destination {
        // Published to one destination by name (the publisher checked it takes the kind).
        return Ok(arn.rsplit('/').next() == Some(only.as_str()));
    }
    match event.kind {
        OutboxKind::AuditFinding => Ok(dest.events.contains(&EventKind::AuditFindings)),
        OutboxKind::Violation | OutboxKind::FleetEvent => {
            // Fleet events stand in for the device alarms they hold: a destination taking
            // violations takes them too.
            let wanted = dest.events.contains(&EventKind::Violations)
                || (event.kind == OutboxKind::FleetEvent
                    && dest.events.contains(&EventKind::FleetEvents));
            if !wanted {
                return Ok(false);
            }
            if dest.all_profiles {
                return Ok(true);
            }
            let Some(profile) = &event.routing.profile else {
                return Ok(false);
            };
            if !targets.contains_key(profile) {
                let arns = store
                    .profile_get(profile)?
                    .and_then(|p| p.alert_targets)
                    .into_iter()
                    .flatten()
                    .map(|(_, t)| t.alert_target_arn)
                    .collect();
                targets.insert(profile.clone(), arns);
            }
            Ok(targets
                .get(profile)
                .is_some_and(|arns| arns.iter().any(|a| a == arn)))
        }
    }
}

/// When each resolved violation in `events` went into alarm, from its `in-alarm` event.
fn alarm_starts(store: &dyn Store, events: &[&OutboxEvent]) -> Vec<Option<EpochMillis>> {
    events
        .iter()
        .map(|e| {
            let id = e.body.get("violationId")?.as_str()?;
            if e.kind != OutboxKind::Violation || e.key.ends_with(":in-alarm") {
                return None;
            }
            store
                .outbox_event_ms(&format!("{id}:in-alarm"))
                .ok()
                .flatten()
        })
        .collect()
}

fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Renders a chunk of events as the destination's messages.
fn render(shared: &Shared, name: &str, dest: &Destination, chunk: &[&OutboxEvent]) -> Vec<Message> {
    let keys = || {
        chunk
            .iter()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let origin = &shared.origin;
    match dest.kind {
        DestinationType::Alertmanager => {
            let starts = alarm_starts(&*shared.store, chunk);
            let pairs: Vec<_> = chunk.iter().copied().zip(starts).collect();
            vec![Message {
                key: keys(),
                content_type: "application/json",
                body: json_bytes(&format::alertmanager(origin, name, &pairs)),
            }]
        }
        DestinationType::Cloudevents if dest.batch_mode => vec![Message {
            key: keys(),
            content_type: format::CLOUDEVENTS_BATCH,
            body: json_bytes(&serde_json::Value::Array(
                chunk
                    .iter()
                    .map(|e| format::cloudevent(origin, e))
                    .collect(),
            )),
        }],
        DestinationType::Cloudevents => chunk
            .iter()
            .map(|e| Message {
                key: e.key.clone(),
                content_type: format::CLOUDEVENTS_JSON,
                body: json_bytes(&format::cloudevent(origin, e)),
            })
            .collect(),
        DestinationType::Ocsf => vec![Message {
            key: keys(),
            content_type: "application/json",
            body: json_bytes(&serde_json::Value::Array(
                chunk.iter().map(|e| format::ocsf(e)).collect(),
            )),
        }],
        DestinationType::Asff => vec![Message {
            key: keys(),
            content_type: "application/json",
            body: json_bytes(&serde_json::json!({
                "Findings": chunk.iter().map(|e| format::asff(origin, e)).collect::<Vec<_>>()
            })),
        }],
        DestinationType::Mqtt | DestinationType::Nats => chunk
            .iter()
            .map(|e| Message {
                key: e.key.clone(),
                content_type: "application/json",
                body: json_bytes(&format::plain(e)),
            })
            .collect(),
    }
}

/// The wait before attempt `attempt + 1`: base · 2^(attempt−1), capped, times a jitter in
/// [0.5, 1).
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let jitter = 0.5 + f64::from(uuid::Uuid::new_v4().as_u128() as u16) / f64::from(u16::MAX) / 2.0;
    exp.mul_f64(jitter.min(0.999))
}

/// Chunks acknowledged this round and not yet recorded: recorded in one commit at the end of
/// the round, or before a failure is (so a destination's cursor never waits behind retries).
#[derive(Debug, Clone, Copy)]
struct Acked {
    cursor: i64,
    events: usize,
}

impl Acked {
    fn flush(&mut self, shared: &Shared, name: &str) -> Result<(), StoreError> {
        if self.events > 0 {
            shared.store.delivery_succeeded(
                name,
                self.cursor,
                self.events,
                &[],
                (shared.now_ms)(),
            )?;
            self.events = 0;
        }
        Ok(())
    }
}

/// How a chunk ended.
enum Outcome {
    Delivered,
    DeadLettered,
    Stopped,
}

/// Sends one chunk with bounded retries; records failures (after `acked`); dead-letters it
/// after the last attempt (moving the cursor to `cursor`).
#[allow(clippy::too_many_arguments)]
async fn deliver(
    shared: &Shared,
    name: &str,
    dest: &Destination,
    sink: &mut Sink,
    chunk: &[&OutboxEvent],
    cursor: i64,
    acked: &mut Acked,
    stop: &mut watch::Receiver<bool>,
) -> Result<Outcome, StoreError> {
    let messages = render(shared, name, dest, chunk);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match sink.send(&messages).await {
            Ok(()) => return Ok(Outcome::Delivered),
            Err(error) => {
                acked.flush(shared, name)?;
                let now = (shared.now_ms)();
                shared.store.delivery_failed(name, &error, now)?;
                tracing::warn!(destination = name, attempt, %error, "Feed delivery failed");
                if attempt >= dest.max_attempts {
                    let seqs: Vec<i64> = chunk.iter().map(|e| e.seq).collect();
                    shared
                        .store
                        .dead_letter(name, &seqs, cursor, attempt, &error, now)?;
                    tracing::error!(destination = name, events = seqs.len(), attempts = attempt, %error, "Feed batch dead-lettered");
                    return Ok(Outcome::DeadLettered);
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return Ok(Outcome::Stopped),
            () = tokio::time::sleep(backoff(shared.backoff_base, attempt)) => {}
        }
    }
}

/// Redelivers dead letters queued by a redrive call; true when there were any.
async fn redrive(
    shared: &Shared,
    name: &str,
    dest: &Destination,
    sink: &mut Sink,
    stop: &mut watch::Receiver<bool>,
) -> Result<bool, StoreError> {
    let seqs = shared.store.dead_letters_redriving(name, dest.batch_size)?;
    if seqs.is_empty() {
        return Ok(false);
    }
    let events = shared.store.outbox_get(&seqs)?;
    let chunk: Vec<&OutboxEvent> = events.iter().collect();
    let mut acked = Acked {
        cursor: 0,
        events: 0,
    };
    match deliver(shared, name, dest, sink, &chunk, 0, &mut acked, stop).await? {
        Outcome::Delivered => {
            let now = (shared.now_ms)();
            shared
                .store
                .delivery_succeeded(name, 0, chunk.len(), &seqs, now)?;
        }
        Outcome::DeadLettered | Outcome::Stopped => {}
    }
    Ok(true)
}

/// One round: redrives, then up to [`READ_BATCH`] outbox events after the cursor. Returns
/// whether there was anything to do.
async fn round(
    shared: &Shared,
    name: &str,
    dest: &Destination,
    arn: &str,
    sink: &mut Sink,
    stop: &mut watch::Receiver<bool>,
) -> Result<bool, StoreError> {
    let redrove = redrive(shared, name, dest, sink, stop).await?;
    let Some(start) = shared.store.destination_cursor(name)? else {
        return Ok(false);
    };
    let events = shared.store.outbox_after(start, READ_BATCH)?;
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(redrove);
    };
    let mut targets = HashMap::new();
    let mut kept = Vec::with_capacity(events.len());
    for e in &events {
        if routed(&*shared.store, dest, arn, e, &mut targets)? {
            kept.push(e);
        }
    }
    let mut acked = Acked {
        cursor: start,
        events: 0,
    };
    for chunk in kept.chunks(dest.batch_size) {
        let cursor = chunk.last().map_or(start, |e| e.seq);
        match deliver(shared, name, dest, sink, chunk, cursor, &mut acked, stop).await? {
            Outcome::Delivered => {
                acked.cursor = cursor;
                acked.events += chunk.len();
            }
            Outcome::DeadLettered => acked.cursor = cursor,
            Outcome::Stopped => {
                acked.flush(shared, name)?;
                return Ok(false);
            }
        }
    }
    // One commit for the round, past what was not routed here too.
    shared
        .store
        .delivery_succeeded(name, last, acked.events, &[], (shared.now_ms)())?;
    Ok(true)
}

/// Runs a destination's deliveries until `stop` flips (or the task is aborted: the cursor
/// only moves after an acknowledgement, so an abort at any point loses nothing).
pub(crate) async fn run(
    shared: Arc<Shared>,
    name: String,
    dest: Destination,
    mut sink: Sink,
    mut stop: watch::Receiver<bool>,
) {
    let arn = destination_arn(&shared.origin, &name);
    let mut tail = shared.store.outbox_watch();
    loop {
        if *stop.borrow() {
            return;
        }
        let busy = match round(&shared, &name, &dest, &arn, &mut sink, &mut stop).await {
            Ok(busy) => busy,
            Err(e) => {
                tracing::warn!(destination = %name, error = %e, "Feed worker store access failed; will retry");
                false
            }
        };
        if busy {
            continue;
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tail.changed() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_published_to_one_destination_is_routed_to_that_destination_only() {
        use thingward_store::{OutboxRouting, Severity, SqliteStore};
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("thingward.db")).expect("store");
        let params: crate::feed::config::DestinationParams = serde_json::from_value(
            serde_json::json!({ "type": "cloudevents", "url": "http://127.0.0.1:9/x", "allProfiles": true }),
        )
        .expect("params");
        let dest = params.validate().expect("valid");
        let arn = |n: &str| format!("arn:aws:iot:us-east-1:000000000000:destination/{n}");
        let mut event = OutboxEvent {
            seq: 1,
            key: "k".into(),
            kind: OutboxKind::Violation,
            routing: OutboxRouting {
                profile: Some("p".into()),
                severity: Some(Severity::Medium),
                ..OutboxRouting::default()
            },
            event_ms: 0,
            body: serde_json::Value::Null,
        };
        let mut targets = HashMap::new();
        for name in ["a", "b"] {
            assert!(routed(&store, &dest, &arn(name), &event, &mut targets).expect("routed"));
        }
        event.routing.destination = Some("a".into());
        assert!(routed(&store, &dest, &arn("a"), &event, &mut targets).expect("routed"));
        assert!(!routed(&store, &dest, &arn("b"), &event, &mut targets).expect("routed"));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 1..=20 {
            let full = base
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(BACKOFF_CAP);
            let d = backoff(base, attempt);
            assert!(
                d >= full / 2 && d < full,
                "attempt {attempt}: {d:?} vs {full:?}"
            );
        }
    }
}
