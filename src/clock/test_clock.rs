//! A test-only service clock: `thingward serve --test-clock` (hidden) runs the service on the
//! system clock plus an offset that `POST /thingward/test/clock?advanceSeconds=N` moves
//! forward, so end-to-end tests can reach tomorrow's scheduled audit in seconds.
//! Never enable it in production: the route is unauthenticated.

use super::{Clock, system_clock};
use axum::Router;
use axum::extract::Query;
use axum::routing::post;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The offset the test clock adds to the system clock.
#[derive(Debug, Clone, Default)]
pub(crate) struct TestClock {
    offset_ms: Arc<AtomicI64>,
}

impl TestClock {
    /// The clock: system time plus the offset.
    pub(crate) fn clock(&self) -> Clock {
        let offset = Arc::clone(&self.offset_ms);
        let system = system_clock();
        Arc::new(move || system() + offset.load(Ordering::SeqCst))
    }

    /// The route that moves the clock.
    pub(crate) fn routes(&self) -> Router {
        let offset = Arc::clone(&self.offset_ms);
        let now = self.clock();
        Router::new().route(
            "/thingward/test/clock",
            post(move |Query(q): Query<HashMap<String, String>>| {
                let offset = Arc::clone(&offset);
                let now = Arc::clone(&now);
                async move {
                    let secs: i64 = q
                        .get("advanceSeconds")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    offset.fetch_add(secs * 1000, Ordering::SeqCst);
                    axum::Json(serde_json::json!({ "nowMs": now() }))
                }
            }),
        )
    }
}
