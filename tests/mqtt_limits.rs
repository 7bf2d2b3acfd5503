//! MQTT packet limits end to end: an oversized report costs only that report.

use crate::e2e::report;
use crate::support::{Mosquitto, Thingward, http};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// The Mosquitto setting the README tells users to make: packets above thingward's ceiling are
/// refused by the broker, never forwarded.
const BROKER_CONF: &str = "max_packet_size 16777216\n";

/// A device client allowed to publish large packets; yields every reply it receives.
async fn device(
    port: u16,
    id: &str,
    filter: &str,
) -> (AsyncClient, mpsc::UnboundedReceiver<(String, Value)>) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(4 * 1024 * 1024, 4 * 1024 * 1024);
    let (client, mut eventloop) = AsyncClient::new(opts, 256);
    let (tx, rx) = mpsc::unbounded_channel();
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
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    tokio::time::timeout(Duration::from_secs(10), subscribed.recv())
        .await
        .expect("suback");
    (client, rx)
}

/// Times thingward's client connected to the broker, from the broker's log.
fn thingward_connections(broker: &Mosquitto) -> usize {
    broker
        .log()
        .lines()
        .filter(|l| l.contains("New client connected") && l.contains(" as thingward-"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r14_oversized_mqtt_report_is_rejected_and_other_things_reports_still_accepted() {
    let broker = Mosquitto::start_with_conf(BROKER_CONF);
    let dir = tempfile::tempdir().expect("tempdir");
    let tw = Thingward::start(dir.path(), Some(broker.port));
    // A profile that retains the metric the good reports carry, so their datapoints can be read.
    let r = http()
        .post(tw.url("/security-profiles/retain"))
        .json(&json!({"behaviors": [], "additionalMetricsToRetainV2": [{"metric": "aws:num-listening-tcp-ports"}]}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 200);
    // thingward subscribes after its CONNACK; wait for it, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while thingward_connections(&broker) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "thingward never connected:\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (big, mut big_replies) = device(
        broker.port,
        "dev-big",
        "$aws/things/big-thing/defender/metrics/json/+",
    )
    .await;
    let (good, mut good_replies) = device(
        broker.port,
        "dev-good",
        "$aws/things/+/defender/metrics/json/+",
    )
    .await;
    // thingward's subscriptions are in place once an ordinary report gets its reply.
    good.publish(
        "$aws/things/warmup/defender/metrics/json",
        QoS::AtLeastOnce,
        false,
        report(1, 1, &[]),
    )
    .await
    .expect("publish");
    tokio::time::timeout(Duration::from_secs(20), good_replies.recv())
        .await
        .expect("warm-up reply within 20 s")
        .expect("reply channel open");

    let mut oversized = report(1, 1, &[]);
    oversized.resize(1_500_000, b' ');
    big.publish(
        "$aws/things/big-thing/defender/metrics/json",
        QoS::AtLeastOnce,
        false,
        oversized,
    )
    .await
    .expect("publish the oversized report");
    for i in 0..50 {
        good.publish(
            format!("$aws/things/good-{i}/defender/metrics/json"),
            QoS::AtLeastOnce,
            false,
            report(i + 1, 100, &[22]),
        )
        .await
        .expect("publish");
    }

    let (topic, body) = tokio::time::timeout(Duration::from_secs(20), big_replies.recv())
        .await
        .expect("the oversized report gets a reply within 20 s")
        .expect("reply channel open");
    assert_eq!(
        topic, "$aws/things/big-thing/defender/metrics/json/rejected",
        "{body}"
    );
    assert_eq!(
        body["statusDetails"]["ErrorCode"], "PayloadTooLarge",
        "{body}"
    );

    let mut replies: HashMap<String, String> = HashMap::new();
    while replies.len() < 50 {
        let (topic, body) = tokio::time::timeout(Duration::from_secs(20), good_replies.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of 50 replies within 20 s: {replies:?}",
                    replies.len()
                )
            })
            .expect("reply channel open");
        let thing = body["thingName"].as_str().unwrap_or_default().to_owned();
        if thing.starts_with("good-") {
            replies.insert(thing, topic);
        }
    }
    for (thing, topic) in &replies {
        assert!(topic.ends_with("/accepted"), "{thing}: {topic}");
    }

    let c = http();
    for i in 0..50 {
        let r: Value = c
            .get(tw.url(&format!("/metric-values?thingName=good-{i}&metricName=aws%3Anum-listening-tcp-ports&startTime=2000-01-01T00%3A00%3A00Z&endTime=2100-01-01T00%3A00%3A00Z")))
            .send()
            .await
            .expect("values")
            .json()
            .await
            .expect("json");
        let values = r["metricDatumList"]
            .as_array()
            .unwrap_or_else(|| panic!("good-{i}: {r}"));
        assert_eq!(values.len(), 1, "good-{i}: {r}");
    }
    assert_eq!(
        thingward_connections(&broker),
        1,
        "thingward's broker connection was dropped:\n{}",
        broker.log()
    );
}
