//! Ingestion: turns what is sent in (device reports, metric batches) into validated datapoints.
//!
//! Both inputs are specified in `docs/specs/ingest.md`, and both are all or nothing: an input is
//! accepted whole or rejected with a reason naming the field, never trimmed silently.
//! - [`report`]: the Device Defender metrics report (JSON or CBOR, long or short key names),
//!   decoded, validated and turned into datapoints; [`report::ReportError`] carries the code and
//!   reason a rejection sends back, whatever the transport (MQTT reply or HTTP error).
//! - [`batch`]: thingward's HTTP batch of cloud-side and custom metric datapoints.
//! - [`counters`]: per-thing ingestion state (recent report ids for de-duplication, last
//!   cumulative totals for counter resets), owned and locked by the caller.
//!
//! The crate knows nothing of transports: MQTT topics and replies belong to the service.

pub mod batch;
pub mod counters;
pub mod report;

/// Whether `s` is an acceptable entry of a custom `string-list` value: 1 or more characters out
/// of ASCII letters, digits and `: _ - / .` (the Device SDK rule, aws-api.md §2.2). Shared by
/// the report and the batch so both inputs accept the same strings.
fn is_valid_string_list_entry(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'/' | b'.'))
}

/// A piece of untrusted text made safe and short enough to quote in an error message: control
/// characters escaped, at most 128 characters.
fn quoted(s: &str) -> String {
    const MAX_CHARS: usize = 128;
    let mut out: String = s.escape_debug().take(MAX_CHARS).collect();
    if s.escape_debug().nth(MAX_CHARS).is_some() {
        out.push('…');
    }
    out
}
