//! Timestamps on the wire: AWS responses carry epoch seconds as JSON numbers (with a fraction),
//! request bodies carry epoch seconds as integers or floats, query strings carry ISO-8601.

use chrono::{DateTime, TimeZone, Utc};

/// Milliseconds since the Unix epoch, thingward's internal timestamp unit.
pub type EpochMillis = i64;

/// Converts milliseconds since the epoch to fractional epoch seconds, the AWS response form.
pub fn millis_to_seconds(ms: EpochMillis) -> f64 {
    ms as f64 / 1000.0
}

/// Converts (possibly fractional) epoch seconds to milliseconds, rounding to the nearest.
pub fn seconds_to_millis(s: f64) -> EpochMillis {
    (s * 1000.0).round() as EpochMillis
}

/// Parses an ISO-8601 / RFC 3339 UTC timestamp as sent in AWS query strings
/// (`2020-09-22T05:42:13Z`, `2020-09-22T05:42:13.123456Z`); plain epoch seconds are accepted too.
///
/// # Errors
/// Returns the input back when it is neither form.
pub fn parse_query_timestamp(s: &str) -> Result<EpochMillis, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc).timestamp_millis());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(Utc.from_utc_datetime(&t).timestamp_millis());
    }
    if let Ok(secs) = s.parse::<f64>()
        && secs.is_finite()
    {
        return Ok(seconds_to_millis(secs));
    }
    Err(format!("'{s}' is not an ISO-8601 timestamp"))
}

/// Serde adapter for an `EpochMillis` field carried as epoch seconds on the wire.
pub mod epoch_seconds {
    use super::{EpochMillis, millis_to_seconds, seconds_to_millis};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes milliseconds as fractional seconds.
    ///
    /// # Errors
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(v: &EpochMillis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(millis_to_seconds(*v))
    }

    /// Deserializes integer or fractional seconds into milliseconds.
    ///
    /// # Errors
    /// When the value is not a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EpochMillis, D::Error> {
        let secs = f64::deserialize(d)?;
        Ok(seconds_to_millis(secs))
    }
}

/// Serde adapter for an optional `EpochMillis` field carried as epoch seconds.
pub mod epoch_seconds_opt {
    use super::{EpochMillis, millis_to_seconds, seconds_to_millis};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes milliseconds as fractional seconds (None as null; pair with skip_serializing_if).
    ///
    /// # Errors
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(v: &Option<EpochMillis>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => s.serialize_f64(millis_to_seconds(*ms)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes integer or fractional seconds into milliseconds.
    ///
    /// # Errors
    /// When the value is not a number or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EpochMillis>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(seconds_to_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_timestamps_parse_in_every_botocore_form() {
        assert_eq!(
            parse_query_timestamp("2020-09-22T05:42:13Z"),
            Ok(1_600_753_333_000)
        );
        assert_eq!(
            parse_query_timestamp("2020-09-22T05:42:13.123456Z"),
            Ok(1_600_753_333_123)
        );
        assert_eq!(parse_query_timestamp("1600753333"), Ok(1_600_753_333_000));
        assert!(parse_query_timestamp("yesterday").is_err());
    }
}
