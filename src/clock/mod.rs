//! The service clock: milliseconds since the epoch, injected into every part that reads the
//! time (Detect, training, audit, mitigation, the alarm feed), so tests can run the service on a
//! clock they move. [`system_clock`] is the production clock; [`TestClock`] is the hidden
//! `thingward serve --test-clock` one that end-to-end tests move over HTTP.

mod test_clock;

pub(crate) use test_clock::TestClock;

use std::sync::Arc;
use thingward_models::time::EpochMillis;

/// What a clock is: milliseconds since the epoch, injectable for tests.
pub(crate) type Clock = Arc<dyn Fn() -> EpochMillis + Send + Sync>;

/// The system clock.
pub(crate) fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_millis())
}
