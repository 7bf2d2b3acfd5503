//! Banning a client on the MQTT broker: EMQX's banned-clients REST API and Mosquitto's
//! dynamic-security plugin (`disableClient` over `$CONTROL/dynamic-security/v1`).

use super::action::{Ban, BanBy, BrokerConnection, BrokerKind};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::time::Duration;

/// How long a broker has to answer a ban.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// The dynamic-security command topic and its reply topic.
const DYNSEC_TOPIC: &str = "$CONTROL/dynamic-security/v1";
const DYNSEC_RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";
/// Environment variables holding the brokers' secrets (secrets never come from flags).
const EMQX_SECRET_ENV: &str = "THINGWARD_EMQX_API_SECRET";
const DYNSEC_PASSWORD_ENV: &str = "THINGWARD_MOSQUITTO_DYNSEC_PASSWORD";

/// The brokers a ban action without inline `connection` uses (`thingward serve` flags).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct BrokerArgs {
    /// EMQX REST API base URL for BAN_CLIENT_ON_BROKER actions, e.g. http://127.0.0.1:18083
    /// (the API secret comes from THINGWARD_EMQX_API_SECRET).
    #[arg(long, env = "THINGWARD_EMQX_URL")]
    pub(crate) emqx_url: Option<String>,
    /// EMQX API key for BAN_CLIENT_ON_BROKER actions.
    #[arg(long, env = "THINGWARD_EMQX_API_KEY")]
    pub(crate) emqx_api_key: Option<String>,
    /// Mosquitto broker with the dynamic-security plugin, for BAN_CLIENT_ON_BROKER actions,
    /// e.g. mqtt://127.0.0.1:1883 (the admin password comes from
    /// THINGWARD_MOSQUITTO_DYNSEC_PASSWORD, or from the URL: mqtt://admin:password@host).
    #[arg(long, env = "THINGWARD_MOSQUITTO_DYNSEC_URL")]
    pub(crate) mosquitto_dynsec_url: Option<String>,
    /// The dynamic-security admin user.
    #[arg(long, env = "THINGWARD_MOSQUITTO_DYNSEC_USER", default_value = "admin")]
    pub(crate) mosquitto_dynsec_user: String,
}

/// The resolved default connections (flags plus secrets from the environment).
#[derive(Debug, Clone, Default)]
pub(crate) struct BrokerDefaults {
    emqx: Option<BrokerConnection>,
    mosquitto: Option<BrokerConnection>,
}

impl BrokerArgs {
    /// The default connections, reading the secrets from the environment.
    pub(crate) fn resolve(&self) -> BrokerDefaults {
        BrokerDefaults {
            emqx: self.emqx_url.as_ref().map(|url| BrokerConnection {
                url: url.clone(),
                username: self.emqx_api_key.clone(),
                password: std::env::var(EMQX_SECRET_ENV).ok(),
            }),
            mosquitto: self
                .mosquitto_dynsec_url
                .as_ref()
                .map(|url| BrokerConnection {
                    url: url.clone(),
                    username: Some(self.mosquitto_dynsec_user.clone()),
                    password: std::env::var(DYNSEC_PASSWORD_ENV).ok(),
                }),
        }
    }
}

/// Why a ban failed: an error code and a message for the execution record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct BanError {
    /// `BROKER_NOT_CONFIGURED`, `BROKER_UNREACHABLE` or `BROKER_REFUSED`.
    pub(crate) code: &'static str,
    /// What happened, in words.
    pub(crate) message: String,
}

fn unreachable(message: String) -> BanError {
    BanError {
        code: "BROKER_UNREACHABLE",
        message,
    }
}

fn refused(message: String) -> BanError {
    BanError {
        code: "BROKER_REFUSED",
        message,
    }
}

/// Bans `who` (the thing name) as the action says; returns what the broker said on success.
///
/// # Errors
/// No connection configured, broker down or slow, or the broker refused the ban.
pub(crate) async fn ban(
    defaults: &BrokerDefaults,
    ban: &Ban,
    who: &str,
) -> Result<String, BanError> {
    let connection = ban
        .connection
        .as_ref()
        .or(match ban.kind {
            BrokerKind::Emqx => defaults.emqx.as_ref(),
            BrokerKind::MosquittoDynsec => defaults.mosquitto.as_ref(),
        })
        .ok_or_else(|| BanError {
            code: "BROKER_NOT_CONFIGURED",
            message: match ban.kind {
                BrokerKind::Emqx => {
                    "The action has no connection and thingward serve has no --emqx-url".into()
                }
                BrokerKind::MosquittoDynsec => {
                    "The action has no connection and thingward serve has no --mosquitto-dynsec-url"
                        .into()
                }
            },
        })?;
    match ban.kind {
        BrokerKind::Emqx => emqx_ban(connection, ban.by, who, &ban.reason).await,
        BrokerKind::MosquittoDynsec => dynsec_disable(connection, who).await,
    }
}

/// `POST {base}/api/v5/banned` with basic auth (API key and secret).
async fn emqx_ban(
    c: &BrokerConnection,
    by: BanBy,
    who: &str,
    reason: &str,
) -> Result<String, BanError> {
    let url = format!("{}/api/v5/banned", c.url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(BROKER_TIMEOUT)
        .build()
        .map_err(|e| unreachable(format!("Cannot build an HTTP client: {e}")))?;
    let mut request = client.post(&url).json(&serde_json::json!({
        "as": match by { BanBy::ClientId => "clientid", BanBy::Username => "username" },
        "who": who,
        "by": "thingward",
        "reason": reason,
    }));
    if let Some(key) = &c.username {
        request = request.basic_auth(key, c.password.as_deref());
    }
    let response = request.send().await.map_err(|e| {
        unreachable(crate::redaction::urls(&format!(
            "EMQX at {url} did not answer: {e}"
        )))
    })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(512).collect();
    if status.is_success() {
        return Ok(format!("EMQX banned {who}"));
    }
    // Banning twice is no failure: the client is banned.
    if status.as_u16() == 400 && body.contains("ALREADY_EXISTS") {
        return Ok(format!("EMQX had already banned {who}"));
    }
    Err(refused(format!("EMQX answered {status}: {body}")))
}

/// Publishes `disableClient` for `username` as the dynamic-security admin and reads the reply.
async fn dynsec_disable(c: &BrokerConnection, username: &str) -> Result<String, BanError> {
    let mut opts = crate::mqtt::options(&c.url, &crate::mqtt::client_id())
        .map_err(|e| unreachable(e.to_string()))?;
    opts.set_manual_acks(false);
    opts.set_clean_session(true);
    // Credentials in the URL (mqtt://user:password@host) stand unless a password is given.
    if let (Some(user), Some(password)) = (&c.username, &c.password) {
        opts.set_credentials(user, password);
    }
    let correlation = uuid::Uuid::new_v4().to_string();
    let command = serde_json::json!({"commands": [{
        "command": "disableClient",
        "username": username,
        "correlationData": correlation,
    }]});
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let url = crate::redaction::urls(&c.url);
    let exchange = async {
        client
            .subscribe(DYNSEC_RESPONSE_TOPIC, QoS::AtLeastOnce)
            .await
            .map_err(|e| unreachable(format!("Cannot subscribe on {url}: {e}")))?;
        let mut published = false;
        loop {
            let event = eventloop
                .poll()
                .await
                .map_err(|e| unreachable(format!("Mosquitto at {url}: {e}")))?;
            match event {
                Event::Incoming(Packet::SubAck(ack)) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        return Err(refused(format!(
                            "Mosquitto at {url} refused the subscription to {DYNSEC_RESPONSE_TOPIC}: is the user a dynamic-security admin?"
                        )));
                    }
                    if !published {
                        published = true;
                        client
                            .publish(DYNSEC_TOPIC, QoS::AtLeastOnce, false, command.to_string())
                            .await
                            .map_err(|e| unreachable(format!("Cannot publish on {url}: {e}")))?;
                    }
                }
                Event::Incoming(Packet::Publish(p)) if p.topic == DYNSEC_RESPONSE_TOPIC => {
                    if let Some(outcome) = dynsec_outcome(&p.payload, &correlation) {
                        return outcome.map(|()| format!("Mosquitto disabled client {username}"));
                    }
                }
                _ => {}
            }
        }
    };
    let result = tokio::time::timeout(BROKER_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(unreachable(format!(
                "Mosquitto at {} gave no dynamic-security reply within {} s",
                crate::redaction::urls(&c.url),
                BROKER_TIMEOUT.as_secs()
            )))
        });
    let _ = client.disconnect().await;
    result
}

/// Our command's outcome in a dynamic-security reply (None when the reply is someone else's).
fn dynsec_outcome(payload: &[u8], correlation: &str) -> Option<Result<(), BanError>> {
    let reply: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let response = reply["responses"]
        .as_array()?
        .iter()
        .find(|r| r["correlationData"] == correlation)?;
    Some(match response["error"].as_str() {
        None => Ok(()),
        Some(error) => Err(refused(format!(
            "Mosquitto dynamic security refused disableClient: {error}"
        ))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynsec_replies_are_matched_by_correlation_data() {
        let ok = br#"{"responses":[{"command":"disableClient","correlationData":"c1"}]}"#;
        assert_eq!(dynsec_outcome(ok, "c1"), Some(Ok(())));
        assert_eq!(dynsec_outcome(ok, "c2"), None, "another client's reply");
        let err = br#"{"responses":[{"command":"disableClient","error":"Client not found","correlationData":"c1"}]}"#;
        let got = dynsec_outcome(err, "c1")
            .expect("ours")
            .expect_err("refused");
        assert_eq!(got.code, "BROKER_REFUSED");
        assert!(got.message.contains("Client not found"), "{got}");
    }
}
