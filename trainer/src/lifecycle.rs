//! AWS's ML Detect model lifecycle as a pure function of the history and the clock.
