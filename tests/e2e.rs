//! Rules Detect end to end: profile over HTTP → reports over MQTT → violations, restarts, crashes.

use crate::support::{Mosquitto, Thingward, http};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

/// A device on the broker: publishes reports, collects the replies.
pub(crate) struct Device {
    client: AsyncClient,
    replies: mpsc::UnboundedReceiver<(String, Value)>,
}

impl Device {
    pub(crate) async fn connect(port: u16, thing: &str) -> Self {
        let mut opts = MqttOptions::new(format!("dev-{thing}"), "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, replies) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let body: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        let _ = tx.send((p.topic.clone(), body));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        client
            .subscribe(
                format!("$aws/things/{thing}/defender/metrics/json/+"),
                QoS::AtLeastOnce,
            )
            .await
            .expect("subscribe");
        tokio::time::timeout(Duration::from_secs(10), subscribed.recv())
            .await
            .expect("suback");
        Self { client, replies }
    }

    pub(crate) async fn send(&mut self, thing: &str, payload: Vec<u8>) -> (String, Value) {
        self.client
            .publish(
                format!("$aws/things/{thing}/defender/metrics/json"),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .expect("publish");
        tokio::time::timeout(Duration::from_secs(20), self.replies.recv())
            .await
            .expect("a reply within 20 s")
            .expect("reply channel open")
    }
}

pub(crate) fn report(id: i64, bytes_out: u64, ports: &[u16]) -> Vec<u8> {
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| json!({"port": p, "interface": "eth0"}))
        .collect();
    serde_json::to_vec(&json!({
        "header": {"report_id": id, "version": "1.0"},
        "metrics": {
            "network_stats": {"bytes_in": 10, "bytes_out": bytes_out, "packets_in": 1, "packets_out": 1},
            "listening_tcp_ports": {"ports": ports, "total": ports.len()}
        }
    }))
    .expect("json")
}

async fn create_profile(tw: &Thingward) {
    let c = http();
    let body = json!({
        "securityProfileDescription": "e2e",
        "behaviors": [
            {"name": "bytes-out", "metric": "aws:all-bytes-out",
             "criteria": {"comparisonOperator": "less-than", "value": {"count": 1000},
                          "consecutiveDatapointsToAlarm": 2, "consecutiveDatapointsToClear": 2}},
            {"name": "ports", "metric": "aws:listening-tcp-ports",
             "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [22, 443]}}}
        ]
    });
    let r = c
        .post(tw.url("/security-profiles/e2e-profile"))
        .json(&body)
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let r = c
        .put(tw.url("/security-profiles/e2e-profile/targets?securityProfileTargetArn=arn%3Aaws%3Aiot%3Aus-east-1%3A000000000000%3Aall%2Fthings"))
        .send()
        .await
        .expect("attach");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

async fn active(tw: &Thingward, thing: &str) -> Vec<Value> {
    let r: Value = http()
        .get(tw.url(&format!("/active-violations?thingName={thing}")))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    r["activeViolations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn events(tw: &Thingward, thing: &str) -> Vec<Value> {
    let r: Value = http()
        .get(tw.url(&format!(
            "/violation-events?thingName={thing}&startTime=2000-01-01T00%3A00%3A00Z&endTime=2100-01-01T00%3A00%3A00Z"
        )))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    r["violationEvents"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_reports_raise_violations_that_survive_restart_and_clear() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tw = Thingward::start(dir.path(), Some(broker.port));
    create_profile(&tw).await;
    // thingward subscribes asynchronously after start; give it a moment to be on the broker.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut dev = Device::connect(broker.port, "dev1").await;

    let (topic, body) = dev.send("dev1", report(1, 5000, &[22])).await;
    assert_eq!(
        topic, "$aws/things/dev1/defender/metrics/json/accepted",
        "{body}"
    );
    assert_eq!(body["reportId"], 1);
    assert!(
        active(&tw, "dev1").await.is_empty(),
        "one violating datapoint of two must not alarm"
    );

    let (topic, _) = dev.send("dev1", report(2, 6000, &[22])).await;
    assert!(topic.ends_with("/accepted"));
    let now = active(&tw, "dev1").await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["behavior"]["name"], "bytes-out");
    assert_eq!(now[0]["lastViolationValue"]["count"], 6000);
    let violation_id = now[0]["violationId"].as_str().expect("id").to_owned();

    tw.restart();
    let after = active(&tw, "dev1").await;
    assert_eq!(
        after.len(),
        1,
        "violation must survive a restart: {after:?}"
    );
    assert_eq!(after[0]["violationId"], violation_id.as_str());

    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in [3, 4] {
        let (topic, body) = dev.send("dev1", report(id, 10, &[22, 443])).await;
        assert!(topic.ends_with("/accepted"), "{body}");
    }
    assert!(
        active(&tw, "dev1").await.is_empty(),
        "two normal datapoints clear the alarm"
    );
    let kinds: Vec<String> = events(&tw, "dev1")
        .await
        .iter()
        .map(|e| {
            e["violationEventType"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["in-alarm", "alarm-cleared"]);

    // A port outside the set alarms at once (consecutiveDatapointsToAlarm defaults to 1).
    let (topic, _) = dev.send("dev1", report(5, 10, &[22, 23])).await;
    assert!(topic.ends_with("/accepted"));
    let now = active(&tw, "dev1").await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0]["behavior"]["name"], "ports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_duplicate_reports_are_rejected_with_a_reason_and_the_server_keeps_serving() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let tw = Thingward::start(dir.path(), Some(broker.port));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut dev = Device::connect(broker.port, "dev2").await;

    let (topic, body) = dev.send("dev2", b"{not json".to_vec()).await;
    assert_eq!(topic, "$aws/things/dev2/defender/metrics/json/rejected");
    assert_eq!(body["status"], "REJECTED");
    assert!(
        body["statusDetails"]["ErrorMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );

    let (topic, body) = dev
        .send(
            "dev2",
            br#"{"header":{"report_id":7,"version":"1.0"}}"#.to_vec(),
        )
        .await;
    assert!(topic.ends_with("/rejected"), "{body}");
    assert_eq!(body["reportId"], 7, "the report id is echoed on rejection");

    let (topic, _) = dev.send("dev2", report(8, 1, &[])).await;
    assert!(topic.ends_with("/accepted"));
    let (topic, body) = dev.send("dev2", report(8, 1, &[])).await;
    assert!(
        topic.ends_with("/rejected"),
        "a reused report id is a duplicate: {body}"
    );

    let health = reqwest::get(tw.url("/health")).await.expect("health");
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_datapoints_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tw = Thingward::start(dir.path(), None);
    let c = http();
    let r = c
        .post(tw.url("/security-profiles/retain"))
        .json(&json!({"behaviors": [], "additionalMetricsToRetainV2": [{"metric": "aws:num-messages-sent"}]}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 200);
    let datapoints: Vec<Value> = (0..50)
        .map(|i| json!({"thingName": "gw1", "metric": "aws:num-messages-sent", "value": {"count": i}, "timestamp": 1_700_000_000 + i * 300}))
        .collect();
    let r = c
        .post(tw.url("/thingward/v1/metrics"))
        .json(&json!({"datapoints": datapoints}))
        .send()
        .await
        .expect("batch");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    tw.crash_and_restart();

    let r: Value = c
        .get(tw.url("/metric-values?thingName=gw1&metricName=aws%3Anum-messages-sent&startTime=2023-01-01T00%3A00%3A00Z&endTime=2030-01-01T00%3A00%3A00Z&maxResults=250"))
        .send()
        .await
        .expect("values")
        .json()
        .await
        .expect("json");
    let values = r["metricDatumList"].as_array().expect("list");
    assert_eq!(values.len(), 50, "{r}");
    assert_eq!(values[49]["value"]["count"], 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_credentials_get_403_in_the_aws_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tw = Thingward::start(dir.path(), None);
    let r = reqwest::get(tw.url("/security-profiles"))
        .await
        .expect("get");
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("x-amzn-ErrorType").is_some());
    assert!(r.headers().get("x-amzn-RequestId").is_some());
    let creds =
        std::fs::metadata(dir.path().join("credentials.json")).expect("credentials written");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(creds.permissions().mode() & 0o777, 0o600);
}
