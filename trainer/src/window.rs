//! Reading a behavior's training window from the history's daily Parquet partitions.
