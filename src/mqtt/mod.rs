//! MQTT ingestion: subscribes on the user's broker to the Device Defender report topics,
//! ingests each report and answers on `…/accepted` or `…/rejected`. A report is acknowledged
//! (PUBACK, manual acks) only after it is durable, so a QoS 1 report is never lost.
//!
//! The transport's side of a report lives here: [`topic`] (which topic is a report of which
//! thing, in which format, and where its reply goes) and [`reply`] (the reply payload). The
//! report itself is decoded and validated by `thingward_ingest`, called through Detect.

mod reply;
mod topic;

use self::topic::REPORT_TOPICS;
use crate::detect::{Detect, ReportRejection};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use thingward_ingest::report::ReportError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// At most this many reports are processed at once.
const MAX_IN_FLIGHT: usize = 4096;

/// Requests (replies, acks, subscriptions) queued for the MQTT event loop, at most: two per
/// report in flight, plus room for subscriptions.
const REQUEST_CHANNEL_CAPACITY: usize = 2 * MAX_IN_FLIGHT + 64;

/// The largest incoming MQTT packet thingward reads, unless the report cap is larger (see
/// [`max_incoming_packet_bytes`]). The MQTT client drops the whole broker connection on a packet
/// above its limit (every device's reports stop until it reconnects), so the limit sits far
/// above the report cap: an oversized report still arrives and is rejected by the report parser
/// with `PayloadTooLarge`, costing only that report. Above this ceiling the broker must refuse
/// the packet itself (Mosquitto `max_packet_size`, docs/specs/ingest.md §1.2).
pub(crate) const MAX_INCOMING_PACKET_CEILING_BYTES: usize = 16 * 1024 * 1024;

/// Room in an incoming PUBLISH besides the report: topic (with its length) and packet id.
const PUBLISH_OVERHEAD_BYTES: usize = 64 * 1024;

/// The largest outgoing packet: replies and subscriptions are small.
const MAX_OUTGOING_PACKET_BYTES: usize = 1024 * 1024;

/// The MQTT client's limit on an incoming packet's remaining length: the ceiling, or the report
/// cap plus room for the topic if that is larger, so a report up to the cap always fits.
fn max_incoming_packet_bytes(max_report_bytes: usize) -> usize {
    max_report_bytes
        .saturating_add(PUBLISH_OVERHEAD_BYTES)
        .max(MAX_INCOMING_PACKET_CEILING_BYTES)
}

/// Why the MQTT URL was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid MQTT URL '{0}': expected mqtt://[user[:password]@]host[:port]")]
pub(crate) struct MqttUrlError(String);

/// Parses `mqtt://[user[:password]@]host[:port]` into client options.
///
/// # Errors
/// A malformed URL.
pub(crate) fn options(url: &str, client_id: &str) -> Result<MqttOptions, MqttUrlError> {
    let err = || MqttUrlError(crate::redaction::urls(url));
    let rest = url
        .strip_prefix("mqtt://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(err)?;
    let rest = rest.trim_end_matches('/');
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| err())?),
        None => (hostport, 1883),
    };
    if host.is_empty() {
        return Err(err());
    }
    let mut opts = MqttOptions::new(
        client_id,
        host.trim_start_matches('[').trim_end_matches(']'),
        port,
    );
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_manual_acks(true);
    opts.set_max_packet_size(MAX_INCOMING_PACKET_CEILING_BYTES, MAX_OUTGOING_PACKET_BYTES);
    if let Some(auth) = auth {
        let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
        opts.set_credentials(user, pass);
    }
    Ok(opts)
}

/// Runs the MQTT ingestion loop until `shutdown` flips to true.
pub(crate) async fn run(
    mut opts: MqttOptions,
    detect: Arc<Detect>,
    max_report_bytes: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    opts.set_max_packet_size(
        max_incoming_packet_bytes(max_report_bytes),
        MAX_OUTGOING_PACKET_BYTES,
    );
    // Room for every handler's reply and ack at once: a handler then never waits to send.
    // (Waiting senders are kept in a queue that is scanned on every wake-up; with thousands of
    // them that scan took a quarter of the CPU under load.)
    let (client, mut eventloop): (AsyncClient, EventLoop) =
        AsyncClient::new(opts, REQUEST_CHANNEL_CAPACITY);
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // Reports received while all permits are taken wait here. The event loop must keep being
    // polled meanwhile: the handlers' replies and acks only leave through it, so blocking it on
    // a permit would deadlock (handlers wait for the request channel, the loop for a handler).
    // The backlog is bounded by the broker's in-flight window, since nothing in it is acked.
    let mut backlog: VecDeque<Publish> = VecDeque::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            permit = Arc::clone(&permits).acquire_owned(), if !backlog.is_empty() => {
                let (Ok(permit), Some(publish)) = (permit, backlog.pop_front()) else { break };
                spawn_handler(&client, &detect, publish, max_report_bytes, permit);
            }
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!("Connected to the MQTT broker; subscribing to Device Defender report topics");
                    for topic in REPORT_TOPICS {
                        if let Err(e) = client.subscribe(topic, QoS::AtLeastOnce).await {
                            tracing::error!(%topic, error = %e, "Could not subscribe");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    match Arc::clone(&permits).try_acquire_owned() {
                        Ok(permit) if backlog.is_empty() => {
                            spawn_handler(&client, &detect, publish, max_report_bytes, permit);
                        }
                        _ => backlog.push_back(publish),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "MQTT connection lost; reconnecting in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    // Let the received reports finish before disconnecting, polling the event loop meanwhile so
    // that their replies and acks get out (reports arriving now are not acked: the broker keeps
    // them for redelivery).
    let finished = async {
        while let Some(publish) = backlog.pop_front() {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                break;
            };
            spawn_handler(&client, &detect, publish, max_report_bytes, permit);
        }
        let _ = permits.acquire_many(MAX_IN_FLIGHT as u32).await;
    };
    tokio::pin!(finished);
    loop {
        tokio::select! {
            () = &mut finished => break,
            event = eventloop.poll() => {
                if event.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
    let _ = client.disconnect().await;
    // Drive the event loop so the DISCONNECT (and pending acks) are actually sent.
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while eventloop.poll().await.is_ok() {}
    })
    .await;
}

/// Handles `publish` on its own task, holding `permit` until done.
fn spawn_handler(
    client: &AsyncClient,
    detect: &Arc<Detect>,
    publish: Publish,
    max_report_bytes: usize,
    permit: OwnedSemaphorePermit,
) {
    let client = client.clone();
    let detect = Arc::clone(detect);
    tokio::spawn(async move {
        handle(&client, &detect, publish, max_report_bytes).await;
        drop(permit);
    });
}

/// Ingests one published report and replies; acks the PUBLISH unless storage failed (then the
/// broker redelivers it).
async fn handle(client: &AsyncClient, detect: &Detect, publish: Publish, max_report_bytes: usize) {
    let topic = publish.topic.clone();
    let Some((thing, format)) = topic::parse_topic(&topic) else {
        let _ = client.ack(&publish).await;
        return;
    };
    let (thing_text, outcome) = match thing {
        Ok(thing) => {
            let outcome = detect
                .ingest_report(&thing, &publish.payload, format, max_report_bytes)
                .await;
            (thing.as_str().to_owned(), outcome)
        }
        Err(raw) => {
            let e = ReportError::invalid_thing_name(&raw);
            (raw, Err(ReportRejection::Invalid(None, e)))
        }
    };
    let now = detect.now();
    let (accepted, payload) = match &outcome {
        Ok(id) => (true, reply::reply(&thing_text, *id, Ok(()), format, now)),
        Err(ReportRejection::Invalid(id, e)) => {
            (false, reply::reply(&thing_text, *id, Err(e), format, now))
        }
        Err(ReportRejection::Failed(e)) => {
            // Not acked: the broker redelivers a QoS 1 report; a QoS 0 one is lost, as MQTT says.
            tracing::error!(thing = %thing_text, error = %e, "Could not store a device report");
            return;
        }
    };
    let reply_topic = topic::reply_topic(&thing_text, format, accepted);
    if let Err(e) = client
        .publish(reply_topic, QoS::AtLeastOnce, false, payload)
        .await
    {
        tracing::warn!(error = %e, "Could not queue the report reply");
    }
    let _ = client.ack(&publish).await;
}

/// The client id thingward uses on the broker.
pub(crate) fn client_id() -> String {
    format!(
        "thingward-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_packet_limit_is_far_above_the_report_cap_and_fits_any_cap() {
        assert_eq!(
            max_incoming_packet_bytes(128 * 1024),
            MAX_INCOMING_PACKET_CEILING_BYTES
        );
        let big = 64 * 1024 * 1024;
        assert!(max_incoming_packet_bytes(big) > big);
        assert_eq!(max_incoming_packet_bytes(usize::MAX), usize::MAX);
    }
}
