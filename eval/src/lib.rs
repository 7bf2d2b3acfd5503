//! Measures thingward's detectors offline on labelled data.
//!
//! The labelled data is a synthetic fleet (a `datasets/scenarios/*.toml` scenario, generated
//! on the fly or written to disk by [`generate`]), recorded datapoints in the history layout
//! with a labels file, or the Numenta Anomaly Benchmark corpus. Every detector — ML Detect and
//! the Rules Detect baselines through the real trainer and scorer, external flags, NAB's null
//! and perfect references — implements the one [`detector::Detector`] interface, and each
//! runner scores it by its own rules:
//!
//! | module | command | what it measures on |
//! | --- | --- | --- |
//! | [`fleet`] | `thingward eval` | a labelled fleet: per level and attack class (recall, precision, F1, time to detect, false-positive rate), with plots |
//! | [`nab`] | `thingward nab` | the NAB corpus, with NAB's own scoring rules |
//! | [`generate`] | `thingward generate` | writes a scenario's fleet as history Parquet plus `labels.json`, the data `fleet` (and `thingward serve`) read |
//!
//! The `thingward` binary only parses the command line and calls each module's `run`. This
//! crate depends on the library crates (`models`, `scorer`, `trainer`, `datasets`, `history`)
//! and on nothing of the service; plotting (plotters) and the progress bar (indicatif) are
//! built for it alone. Parquet goes through `thingward_history` (no polars here).
//!
//! Errors: the detector interface returns a typed [`detector::FitError`]. The three `run`
//! entry points are command-line orchestration (reading files, writing reports) and return
//! `anyhow::Result`, as the style guide allows for orchestration code.

pub mod detector;
pub mod fleet;
pub mod generate;
pub mod nab;
