//! Transports: HTTP webhooks (reqwest), MQTT (rumqttc, QoS 1, waits for every PUBACK) and
//! NATS (async-nats, flushed). A send either completes — the receiver acknowledged every
//! message — or fails with a message for the destination's status; every wait is bounded by
//! the destination's timeout. Connections are opened lazily and dropped on failure.

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::collections::BTreeMap;
use std::time::Duration;

/// One message to send: a webhook request body, or one MQTT/NATS message.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The `Idempotency-Key` header (`Nats-Msg-Id` for NATS): the event's key, or for a
    /// webhook batch the keys of its events joined with `,`.
    pub(crate) key: String,
    /// The body's content type.
    pub(crate) content_type: &'static str,
    /// The body.
    pub(crate) body: Vec<u8>,
}

/// A connection to a destination's receiver.
pub(crate) enum Sink {
    /// An HTTP webhook.
    Http {
        /// The client, with the destination's timeout.
        client: reqwest::Client,
        /// Where to POST.
        url: String,
        /// Extra headers.
        headers: BTreeMap<String, String>,
    },
    /// An MQTT topic.
    Mqtt {
        /// The broker options.
        options: Box<MqttOptions>,
        /// The topic.
        topic: String,
        /// The open connection, if any, and when it was last used.
        conn: Option<Box<(AsyncClient, EventLoop)>>,
        /// When the connection last finished a send (its event loop is not polled in between,
        /// so no keep-alive goes out: an idle connection is replaced rather than trusted).
        last_used: Option<std::time::Instant>,
        /// Bound on connecting and on waiting for the acks.
        timeout: Duration,
    },
    /// A NATS subject.
    Nats {
        /// The server URL.
        url: String,
        /// The subject.
        subject: String,
        /// The open connection, if any.
        client: Option<async_nats::Client>,
        /// Bound on connecting and flushing.
        timeout: Duration,
    },
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http { url, .. } => f.debug_struct("Http").field("url", url).finish(),
            Self::Mqtt { topic, conn, .. } => f
                .debug_struct("Mqtt")
                .field("topic", topic)
                .field("connected", &conn.is_some())
                .finish(),
            Self::Nats { url, subject, .. } => f
                .debug_struct("Nats")
                .field("url", url)
                .field("subject", subject)
                .finish(),
        }
    }
}

/// An MQTT connection idle longer than this is replaced before the next send (the keep-alive
/// is 30 s and nothing polls the event loop between sends).
const MQTT_IDLE: Duration = Duration::from_secs(20);

/// Messages queued for the MQTT event loop, at most (a batch is at most `BATCH_MAX`).
const MQTT_CAPACITY: usize = super::config::BATCH_MAX + 16;

impl Sink {
    /// Sends `messages` in order; Ok once the receiver acknowledged them all.
    ///
    /// # Errors
    /// What went wrong, for the destination's last error (the receiver's status and the
    /// start of its answer, a connection error, a timeout).
    pub(crate) async fn send(&mut self, messages: &[Message]) -> Result<(), String> {
        match self {
            Self::Http {
                client,
                url,
                headers,
            } => {
                for m in messages {
                    let mut request = client
                        .post(url.as_str())
                        .header("content-type", m.content_type)
                        .header("idempotency-key", &m.key)
                        .body(m.body.clone());
                    for (k, v) in headers.iter() {
                        request = request.header(k, v);
                    }
                    let response = request.send().await.map_err(|e| http_error(&e))?;
                    let status = response.status();
                    if !status.is_success() {
                        let text = response.text().await.unwrap_or_default();
                        let text: String = text.chars().take(200).collect();
                        return Err(format!(
                            "HTTP {status} from {}: {text}",
                            crate::redaction::urls(url.as_str())
                        ));
                    }
                }
                Ok(())
            }
            Self::Mqtt {
                options,
                topic,
                conn,
                last_used,
                timeout,
            } => {
                if last_used.is_some_and(|t| t.elapsed() > MQTT_IDLE) {
                    *conn = None;
                }
                let result =
                    tokio::time::timeout(*timeout, mqtt_send(options, topic, conn, messages))
                        .await
                        .unwrap_or_else(|_| Err(format!("MQTT: no PUBACK within {timeout:?}")));
                if result.is_err() {
                    *conn = None;
                }
                *last_used = Some(std::time::Instant::now());
                result
            }
            Self::Nats {
                url,
                subject,
                client,
                timeout,
            } => {
                let result =
                    tokio::time::timeout(*timeout, nats_send(url, subject, client, messages))
                        .await
                        .unwrap_or_else(|_| Err(format!("NATS: no flush within {timeout:?}")));
                if result.is_err() {
                    *client = None;
                }
                result
            }
        }
    }
}

/// A reqwest error with its cause chain (reqwest's own text omits "connection refused").
fn http_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    crate::redaction::urls(&text)
}

async fn mqtt_send(
    options: &MqttOptions,
    topic: &str,
    conn: &mut Option<Box<(AsyncClient, EventLoop)>>,
    messages: &[Message],
) -> Result<(), String> {
    if conn.is_none() {
        let (client, mut eventloop) = AsyncClient::new(options.clone(), MQTT_CAPACITY);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("MQTT connect: {e}")),
            }
        }
        *conn = Some(Box::new((client, eventloop)));
    }
    let Some(pair) = conn.as_mut() else {
        return Err("MQTT: not connected".into());
    };
    let (client, eventloop) = &mut **pair;
    for m in messages {
        client
            .publish(topic, QoS::AtLeastOnce, false, m.body.clone())
            .await
            .map_err(|e| format!("MQTT publish: {e}"))?;
    }
    let mut acked = 0;
    while acked < messages.len() {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(e) => return Err(format!("MQTT: {e}")),
        }
    }
    Ok(())
}

async fn nats_send(
    url: &str,
    subject: &str,
    client: &mut Option<async_nats::Client>,
    messages: &[Message],
) -> Result<(), String> {
    if client.is_none() {
        let c = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| crate::redaction::urls(&format!("NATS connect to {url}: {e}")))?;
        *client = Some(c);
    }
    let Some(c) = client.as_ref() else {
        return Err("NATS: not connected".into());
    };
    for m in messages {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", m.key.as_str());
        headers.insert("Idempotency-Key", m.key.as_str());
        headers.insert("Content-Type", m.content_type);
        c.publish_with_headers(subject.to_owned(), headers, m.body.clone().into())
            .await
            .map_err(|e| format!("NATS publish: {e}"))?;
    }
    c.flush().await.map_err(|e| format!("NATS flush: {e}"))
}
