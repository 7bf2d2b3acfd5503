//! The alarm feed end to end: the real binary, a webhook receiver that is down across a
//! SIGKILL and comes back, real Mosquitto and nats-server destinations, and
//! `thingward findings export` on the data directory.

use crate::support::{Mosquitto, NatsServer, Thingward, free_port, http};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PORTS: &str = "aws:num-listening-tcp-ports";

/// A profile on all things: fewer than 5 listening ports is normal.
async fn watch_ports(tw: &Thingward) {
    let c = http();
    let r = c
        .post(tw.url("/security-profiles/p"))
        .json(
            &json!({ "behaviors": [{ "name": "few-ports", "metric": PORTS,
            "criteria": { "comparisonOperator": "less-than", "value": { "count": 5 } } }] }),
        )
        .send()
        .await
        .expect("create profile");
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let r = c
        .put(tw.url(
            "/security-profiles/p/targets?securityProfileTargetArn=arn%3Aaws%3Aiot%3Aus-east-1%3A000000000000%3Aall%2Fthings",
        ))
        .send()
        .await
        .expect("attach");
    assert!(r.status().is_success());
}

async fn put_destination(tw: &Thingward, name: &str, body: Value) {
    let r = http()
        .put(tw.url(&format!("/thingward/v1/destinations/{name}")))
        .json(&body)
        .send()
        .await
        .expect("put destination");
    assert!(r.status().is_success(), "{:?}", r.text().await);
}

/// Flips `things` in and out of alarm `rounds` times (one batch per round, a minute apart).
async fn flip(tw: &Thingward, things: &[String], rounds: usize, t0: i64) {
    for k in 0..rounds {
        let count = if k % 2 == 0 { 9 } else { 1 };
        let datapoints: Vec<Value> = things
            .iter()
            .map(|t| json!({ "thingName": t, "metric": PORTS, "value": { "count": count }, "timestamp": t0 + 60 * k as i64 }))
            .collect();
        let r = http()
            .post(tw.url("/thingward/v1/metrics"))
            .json(&json!({ "datapoints": datapoints }))
            .send()
            .await
            .expect("ingest");
        assert!(r.status().is_success(), "{:?}", r.text().await);
    }
}

/// Every violation event's idempotency key, per thing in event order.
async fn expected_keys(tw: &Thingward) -> BTreeMap<String, Vec<String>> {
    let body: Value = http()
        .get(tw.url("/violation-events?startTime=2020-01-01T00:00:00Z&endTime=2100-01-01T00:00:00Z&maxResults=250"))
        .send()
        .await
        .expect("events")
        .json()
        .await
        .expect("json");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in body["violationEvents"].as_array().expect("violationEvents") {
        out.entry(e["thingName"].as_str().expect("thing").to_owned())
            .or_default()
            .push(format!(
                "{}:{}",
                e["violationId"].as_str().expect("id"),
                e["violationEventType"].as_str().expect("type")
            ));
    }
    out
}

/// What the receiver got: (subject = thing, id = idempotency key), in arrival order.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A CloudEvents receiver on `port`: records (thing, key) of every event, in arrival order.
fn receiver(port: u16, got: Received) -> tokio::task::JoinHandle<()> {
    async fn hook(
        axum::extract::State(got): axum::extract::State<Received>,
        body: axum::Json<Value>,
    ) -> &'static str {
        got.lock().expect("lock").push((
            body["subject"].as_str().unwrap_or_default().to_owned(),
            body["id"].as_str().unwrap_or_default().to_owned(),
        ));
        "ok"
    }
    tokio::spawn(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the receiver port");
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(hook))
            .with_state(got);
        let _ = axum::serve(listener, app).await;
    })
}

async fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_events_survive_kill_9_and_arrive_in_order_once_the_receiver_is_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tw = Thingward::start_with(dir.path(), None, &["--feed-backoff-ms", "100"]);
    let port = free_port(); // Nothing listens yet: the receiver is down.
    put_destination(
        &tw,
        "hook",
        json!({ "type": "cloudevents", "url": format!("http://127.0.0.1:{port}/hook"),
                "allProfiles": true, "maxAttempts": 20, "timeoutSeconds": 2 }),
    )
    .await;
    watch_ports(&tw).await;
    let things: Vec<String> = (0..5).map(|i| format!("dev-{i}")).collect();
    flip(&tw, &things, 4, 1_764_000_000).await;
    let expected = expected_keys(&tw).await;
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(total, 20, "{expected:?}");
    let status: Value = http()
        .get(tw.url("/thingward/v1/destinations/hook"))
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!(status["status"]["delivered"], 0);
    assert!(
        status["status"]["lastError"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{status}"
    );

    tw.crash_and_restart();
    let got = Arc::new(Mutex::new(Vec::new()));
    let server = receiver(port, Arc::clone(&got));
    until("every event after the restart", 60, || {
        let got = got.lock().expect("lock");
        let unique: std::collections::HashSet<&String> = got.iter().map(|(_, k)| k).collect();
        unique.len() >= total
    })
    .await;
    // Let redeliveries in flight land before counting duplicates.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = got.lock().expect("lock").clone();
    let mut per_thing: HashMap<String, Vec<String>> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for (thing, key) in &got {
        if seen.insert(key.clone()) {
            per_thing
                .entry(thing.clone())
                .or_default()
                .push(key.clone());
        }
    }
    let duplicates = got.len() - seen.len();
    eprintln!(
        "feed e2e: {} deliveries, {} unique keys, {duplicates} duplicates",
        got.len(),
        seen.len()
    );
    for (thing, keys) in &expected {
        assert_eq!(
            per_thing.get(thing),
            Some(keys),
            "order or content for {thing}"
        );
    }
    assert_eq!(seen.len(), total);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_and_nats_destinations_publish_the_events_with_their_keys() {
    let broker = Mosquitto::start();
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let tw = Thingward::start(dir.path(), Some(broker.port));

    // Subscribers first.
    let nc = async_nats::connect(nats.url()).await.expect("nats connect");
    let mut sub = nc.subscribe("thingward.alarms").await.expect("subscribe");
    nc.flush().await.expect("flush");
    let mut mqtt_rx = mqtt_subscriber(broker.port, "thingward/alarms").await;
    // A destination naming its own broker.
    let own = Mosquitto::start();
    let mut own_rx = mqtt_subscriber(own.port, "alarms/own").await;

    // MQTT: no url, so thingward's own --mqtt-url broker.
    put_destination(
        &tw,
        "mq",
        json!({ "type": "mqtt", "topic": "thingward/alarms", "allProfiles": true }),
    )
    .await;
    put_destination(
        &tw,
        "mq-own",
        json!({ "type": "mqtt", "url": format!("mqtt://127.0.0.1:{}", own.port), "topic": "alarms/own", "allProfiles": true }),
    )
    .await;
    put_destination(
        &tw,
        "nats",
        json!({ "type": "nats", "url": nats.url(), "subject": "thingward.alarms", "allProfiles": true }),
    )
    .await;
    watch_ports(&tw).await;
    flip(&tw, &["cam".to_owned()], 2, 1_764_000_000).await;
    let expected = expected_keys(&tw).await["cam"].clone();
    assert_eq!(expected.len(), 2);

    for key in &expected {
        let m = tokio::time::timeout(Duration::from_secs(20), mqtt_rx.recv())
            .await
            .expect("an MQTT message")
            .expect("open");
        assert_eq!(m["idempotencyKey"], key.as_str());
        assert_eq!(m["kind"], "violation");
        assert_eq!(m["event"]["thingName"], "cam");
        assert!(m["seq"].is_i64());
        let o = tokio::time::timeout(Duration::from_secs(20), own_rx.recv())
            .await
            .expect("an MQTT message on the destination's own broker")
            .expect("open");
        assert_eq!(o["idempotencyKey"], key.as_str());

        let n = next_message(&mut sub).await;
        let headers = n.headers.clone().expect("headers");
        assert_eq!(
            headers.get("Nats-Msg-Id").map(|v| v.as_str()),
            Some(key.as_str())
        );
        let body: Value = serde_json::from_slice(&n.payload).expect("json");
        assert_eq!(body["idempotencyKey"], key.as_str());
        assert_eq!(body["event"]["securityProfileName"], "p");
    }
    assert_eq!(expected[0].split(':').nth(1), Some("in-alarm"));

    // The same events as security-hub findings, from the data directory.
    let export = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_thingward"))
            .args([
                "findings",
                "export",
                "--since",
                "2020-01-01T00:00:00Z",
                "--data-dir",
            ])
            .arg(dir.path())
            .args(args)
            .output()
            .expect("run findings export");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let ocsf: Vec<Value> =
        serde_json::from_str(&export(&["--format", "ocsf"])).expect("JSON array");
    assert_eq!(ocsf.len(), 2);
    assert_eq!(ocsf[0]["class_uid"], 2004);
    assert_eq!(ocsf[1]["activity_id"], 3);
    let asff: Vec<Value> = export(&["--format", "asff", "--jsonl"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(asff.len(), 2);
    assert_eq!(asff[0]["SchemaVersion"], "2018-10-08");
    let none: Vec<Value> =
        serde_json::from_str(&export(&["--format", "ocsf", "--kind", "audit-findings"]))
            .expect("JSON array");
    assert!(none.is_empty());
}

/// Subscribes to `topic` on the broker at `port`; yields each message's JSON payload.
async fn mqtt_subscriber(port: u16, topic: &str) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
    let mut opts = rumqttc::MqttOptions::new(format!("feed-sub-{port}"), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = rumqttc::AsyncClient::new(opts, 64);
    client
        .subscribe(topic, rumqttc::QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, mut subscribed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    let _ =
                        tx.send(serde_json::from_slice::<Value>(&p.payload).unwrap_or(Value::Null));
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed.recv())
        .await
        .expect("suback");
    rx
}

async fn next_message(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    use tokio_stream::StreamExt as _;
    tokio::time::timeout(Duration::from_secs(20), sub.next())
        .await
        .expect("a NATS message")
        .expect("subscription open")
}
