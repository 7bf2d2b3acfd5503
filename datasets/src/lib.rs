//! Yardsticks for detection quality: seeded synthetic fleets with labelled attacks and benign events, and the NAB corpus.
//!
//! # Synthetic fleets
//!
//! A [`Scenario`] (a small TOML file, see `datasets/scenarios/README.md`) names a fleet size,
//! a span, an archetype mix, regions, events and a seed. [`Fleet::new`] draws the device
//! profiles and the event plan; the [`Labels`] (ground truth, `docs/specs/labels.md`) are known
//! before any datapoint is generated. Datapoints are then streamed, never held for the whole
//! fleet and span:
//!
//! - [`Fleet::slots`]: one 5-minute slot of the whole fleet at a time ([`Slot`]);
//! - [`Fleet::device`]: one device over the whole span, each slot with its clean
//!   (counterfactual, attack-free) and observed readings ([`DeviceSlot`]);
//! - [`Fleet::batches`]: a day × device range at a time, in the history store's row order,
//!   generated on several threads. (`thingward generate` steps the [`DeviceStream`]s itself and
//!   writes [`Reading::value_ref`] straight into column buffers, without a `Datapoint` each.)
//!
//! The same scenario and seed give the same datapoints, whichever stream is used and however
//! many threads generate them: every device has its own RNGs, seeded from
//! `(seed, device index, stream)`.
//!
//! ```
//! use thingward_datasets::{Fleet, Scenario};
//! use thingward_models::Metric;
//!
//! let scenario = Scenario::parse(r#"
//!     name = "doc"
//!     seed = 7
//!     devices = 5
//!     days = 1
//!     [[events]]
//!     kind = "credential-stuffing"
//!     start_hours = 10
//!     duration_minutes = 30
//! "#)?;
//! let fleet = Fleet::new(&scenario)?;
//! let attack = fleet.labels().attacks().next().expect("one attack");
//! let victim = &attack.devices[0];
//! let slot = fleet.slots().nth(121).expect("slot 121 is 10:05");
//! let failures = slot.datapoints.iter()
//!     .find(|d| &d.thing == victim && d.metric == Metric::NumAuthorizationFailures)
//!     .and_then(|d| d.value.as_number());
//! assert!(failures >= Some(50.0));
//! assert!(fleet.labels().attacked(victim, &Metric::NumAuthorizationFailures, slot.timestamp).is_some());
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```
//!
//! # What the generator models
//!
//! - five [archetypes](archetype::ARCHETYPES) (plug, sensor, tracker, camera, gateway) whose
//!   rates differ by orders of magnitude, each device with a lognormal rate multiplier;
//! - daily and weekly cycles in each device's local time (region offset ± 1 h);
//! - negative-binomial (over-dispersed) counts, byte counts as messages × lognormal sizes plus
//!   background traffic, packets from bytes; spontaneous reboots restart counters;
//! - benign events (firmware update, reboot storm, regional outage, and the harder ones: a
//!   staged roll-out in waves that leaves the fleet sending more, a broker restart, a degraded
//!   regional link with back-off retries and a backlog upload, a daylight-saving change), part
//!   of the clean stream and labelled benign;
//! - attacks (DDoS, backdoor, credential stuffing and its low-and-slow variant, message flood,
//!   exfiltration drift, reconnect loop), applied as transforms on top of the clean reading,
//!   each labelled with its devices, metrics and window.

pub mod archetype;
mod device;
mod error;
mod fleet;
pub mod labels;
pub mod nab;
mod reading;
pub mod scenario;
mod schedule;

pub use error::{Error, ScenarioError};
pub use fleet::{Batch, Batches, DeviceSlot, DeviceStream, Fleet, Slot, Slots, archetype_names};
pub use labels::{Event, EventClass, EventKind, LABELS_VERSION, Labels};
pub use reading::{METRICS, Reading, ValueRef};
pub use scenario::{SLOT_MS, SLOTS_PER_DAY, Scenario, ScenarioParams};
