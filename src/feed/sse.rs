//! The feed as Server-Sent Events: the outbox from a sequence number on (the `Last-Event-ID`
//! a client resumes with), then live. Each event's `id` is its outbox sequence number, its
//! `event` the kind (`violation`, `audit-finding`), its `data` the plain envelope.

use super::format;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use thingward_store::{OutboxEvent, OutboxKind, Severity, Store};
use tokio_stream::wrappers::ReceiverStream;

/// Events read from the outbox per step, at most.
const READ: usize = 200;
/// Events buffered for a slow client, at most (then the reader waits: no memory growth).
const BUFFER: usize = 256;

/// Which events a stream carries.
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamFilter {
    /// Only this profile's violations.
    pub(crate) profile: Option<String>,
    /// Only events about this thing.
    pub(crate) thing: Option<String>,
    /// Only events of this severity or higher.
    pub(crate) min_severity: Option<Severity>,
    /// Only this kind.
    pub(crate) kind: Option<OutboxKind>,
}

impl StreamFilter {
    /// Whether `e` passes.
    pub(crate) fn matches(&self, e: &OutboxEvent) -> bool {
        let same = |want: &Option<String>, got: &Option<String>| {
            want.as_ref().is_none_or(|w| got.as_ref() == Some(w))
        };
        same(&self.profile, &e.routing.profile)
            && same(&self.thing, &e.routing.thing)
            && self.kind.is_none_or(|k| k == e.kind)
            && self
                .min_severity
                .is_none_or(|min| e.routing.severity.is_some_and(|s| s >= min))
    }
}

/// The SSE response: events after `after` that pass `filter`, then live ones.
pub(crate) fn stream(store: Arc<dyn Store>, filter: StreamFilter, after: i64) -> impl IntoResponse {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(BUFFER);
    tokio::spawn(async move {
        let mut tail = store.outbox_watch();
        let mut cursor = after;
        loop {
            let events = match store.outbox_after(cursor, READ) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "SSE stream could not read the outbox; closing it");
                    return;
                }
            };
            let full = events.len() == READ;
            for e in events {
                cursor = e.seq;
                if !filter.matches(&e) {
                    continue;
                }
                let event = Event::default()
                    .id(e.seq.to_string())
                    .event(e.kind.as_str())
                    .data(format::plain(&e).to_string());
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                () = tx.closed() => return,
                changed = tail.changed() => if changed.is_err() { return },
            }
        }
    });
    Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
