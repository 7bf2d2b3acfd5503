//! Ingestion: device reports (MQTT and HTTP) and cloud-side batches become datapoints.
//!
//! - [`report`]: the Device Defender metrics report (JSON or CBOR, long or short key names),
//!   its topics and its accepted/rejected replies.
//! - [`batch`]: thingward's HTTP batch of cloud-side and custom metric datapoints.
//! - [`counters`]: per-thing ingestion state (recent report ids, last cumulative totals).
//!
//! The normative description of both inputs is `docs/specs/ingest.md`.
// Until the binary wires ingestion up, its items look unused; the integrator removes this.

pub(crate) mod batch;
pub(crate) mod counters;
pub(crate) mod report;

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
