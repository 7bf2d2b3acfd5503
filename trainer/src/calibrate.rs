//! Thresholds for a target false-positive rate.
