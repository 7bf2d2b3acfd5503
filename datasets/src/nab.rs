//! The Numenta Anomaly Benchmark corpus: series and labelled windows, read from a directory.
