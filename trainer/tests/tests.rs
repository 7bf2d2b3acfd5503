//! The trainer's integration tests: whole synthetic fleets through `fit` and the scorer.

mod calibration;
