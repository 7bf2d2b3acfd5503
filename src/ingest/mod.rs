//! Ingestion: device reports (MQTT and HTTP) and cloud-side batches become datapoints.
