//! Fleet events end to end: 15 days of generated history for 48 devices, a model trained by
//! the server's run endpoint, device reports over a real Mosquitto on the test clock (one
//! round every 5 minutes), and a CloudEvents receiver of the test's own. A small synchronised
//! attack still alarms per device and is notified; a maintenance window declared ahead keeps
//! a roll-out from opening a fleet event; a fleet-wide shift is exactly one fleet event on the
//! API and on the feed, its device alarms carry its id and are not notified until
//! TRUE_POSITIVE releases them.

use crate::e2e::{Device, report};
use crate::ml::{generate_fleet, get};
use crate::support::{Mosquitto, Thingward, free_port, http};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROFILE: &str = "fleet-e2e";
const DEVICES: usize = 48;
/// Bytes out of a quiet round: below every device's expected range (ML alarms only above).
const QUIET: u64 = 1;
/// Bytes out of a spike: far above any archetype's five minutes.
const SPIKE: u64 = 50_000_000_000;

fn thing(i: usize) -> String {
    format!("thing-{i:06}")
}

/// Every CloudEvent the receiver got: (type, data).
type Received = Arc<Mutex<Vec<(String, Value)>>>;

fn receiver(port: u16, got: Received) {
    async fn hook(
        axum::extract::State(got): axum::extract::State<Received>,
        body: axum::Json<Value>,
    ) -> &'static str {
        got.lock().expect("lock").push((
            body["type"].as_str().unwrap_or_default().to_owned(),
            body["data"].clone(),
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
    });
}

/// The fleet on the broker, one report per device per round.
struct Fleet {
    devices: Vec<Device>,
    round: i64,
}

impl Fleet {
    async fn connect(port: u16) -> Self {
        let mut devices = Vec::new();
        for i in 0..DEVICES {
            devices.push(Device::connect(port, &thing(i)).await);
        }
        Self { devices, round: 0 }
    }

    /// Moves the test clock 5 minutes on and sends one round: the devices in `spiking` spike.
    async fn round(&mut self, tw: &Thingward, spiking: impl Fn(usize) -> bool) {
        advance(tw, 300).await;
        self.round += 1;
        for (i, dev) in self.devices.iter_mut().enumerate() {
            let bytes = if spiking(i) { SPIKE } else { QUIET };
            let (topic, body) = dev.send(&thing(i), report(self.round, bytes, &[])).await;
            assert!(topic.ends_with("/accepted"), "{body}");
        }
    }
}

async fn advance(tw: &Thingward, secs: i64) {
    let r = http()
        .post(tw.url(&format!("/thingward/test/clock?advanceSeconds={secs}")))
        .send()
        .await
        .expect("clock");
    assert!(r.status().is_success());
}

async fn fleet_events(tw: &Thingward, query: &str) -> Vec<Value> {
    get(tw, &format!("/thingward/v1/fleet-events{query}")).await["fleetEvents"]
        .as_array()
        .expect("fleetEvents")
        .clone()
}

async fn active(tw: &Thingward) -> Vec<Value> {
    get(tw, "/active-violations?maxResults=250").await["activeViolations"]
        .as_array()
        .expect("activeViolations")
        .clone()
}

/// Waits until `f` holds of what the receiver got.
async fn until(got: &Received, what: &str, f: impl Fn(&[(String, Value)]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if f(&got.lock().expect("lock")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            got.lock().expect("lock")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The violation ids of the in-alarm events received.
fn notified(got: &[(String, Value)]) -> HashSet<String> {
    got.iter()
        .filter(|(t, _)| t == "io.thingward.violation.in-alarm")
        .filter_map(|(_, d)| d["violationId"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_wide_shift_over_mqtt_is_one_fleet_event_and_a_small_attack_still_alarms() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    generate_fleet(work.path(), &data, DEVICES as u32);
    let broker = Mosquitto::start();
    let tw = Thingward::start_with(&data, Some(broker.port), &["--test-clock"]);
    let c = http();
    let r = c
        .post(tw.url(&format!("/security-profiles/{PROFILE}")))
        .json(
            &json!({ "behaviors": [{ "name": "bytes-out-ml", "metric": "aws:all-bytes-out",
            "criteria": { "mlDetectionConfig": { "confidenceLevel": "HIGH" } } }] }),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let r = c
        .put(tw.url(&format!("/security-profiles/{PROFILE}/targets?securityProfileTargetArn=arn%3Aaws%3Aiot%3Aus-east-1%3A000000000000%3Aall%2Fthings")))
        .send()
        .await
        .expect("attach");
    assert_eq!(r.status(), 200);
    let run: Value = c
        .post(tw.url("/thingward/v1/training/run"))
        .json(&json!({}))
        .send()
        .await
        .expect("run")
        .json()
        .await
        .expect("json");
    assert_eq!(run["behaviors"][0]["outcome"], "built", "{run}");

    let port = free_port();
    let got: Received = Arc::default();
    receiver(port, Arc::clone(&got));
    let r = c
        .put(tw.url("/thingward/v1/destinations/soc"))
        .json(
            &json!({ "type": "cloudevents", "url": format!("http://127.0.0.1:{port}/hook"),
                       "allProfiles": true }),
        )
        .send()
        .await
        .expect("destination");
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let mut fleet = Fleet::connect(broker.port).await;

    // 1. A small synchronised attack: three devices spike together for four rounds.
    fleet.round(&tw, |_| false).await;
    for _ in 0..4 {
        fleet.round(&tw, |i| i < 3).await;
    }
    fleet.round(&tw, |_| false).await;
    until(&got, "the three attacked devices' alarms", |g| {
        notified(g).len() == 3
    })
    .await;
    assert!(fleet_events(&tw, "?phase=OPEN").await.is_empty());
    assert!(fleet_events(&tw, "?phase=CLOSED").await.is_empty());
    let attacked: HashSet<String> = got
        .lock()
        .expect("lock")
        .iter()
        .filter(|(t, _)| t == "io.thingward.violation.in-alarm")
        .filter_map(|(_, d)| d["thingName"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(attacked, (0..3).map(thing).collect());

    // 2. A roll-out inside a maintenance window declared ahead: no fleet event, no alarm sent.
    advance(&tw, 7200).await;
    let now: Value = c
        .post(tw.url("/thingward/test/clock?advanceSeconds=0"))
        .send()
        .await
        .expect("clock")
        .json()
        .await
        .expect("json");
    let now_s = now["nowMs"].as_i64().expect("nowMs") / 1000;
    let r = c
        .post(tw.url("/thingward/v1/maintenance-windows/firmware-2"))
        .json(
            &json!({ "securityProfileName": PROFILE, "metrics": ["aws:all-bytes-out"],
                       "startTime": now_s, "endTime": now_s + 1800 }),
        )
        .send()
        .await
        .expect("window");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let before = fleet_events(&tw, "").await.len();
    fleet.round(&tw, |_| false).await;
    fleet.round(&tw, |i| i < 40).await;
    let covered = active(&tw).await;
    assert!(covered.len() >= 30, "{covered:?}");
    assert!(
        covered
            .iter()
            .all(|v| v["maintenanceWindowId"] == "firmware-2")
    );
    let covered_ids: HashSet<String> = covered
        .iter()
        .filter_map(|v| v["violationId"].as_str().map(str::to_owned))
        .collect();
    fleet.round(&tw, |_| false).await;
    assert!(active(&tw).await.is_empty());
    assert_eq!(fleet_events(&tw, "").await.len(), before);

    // 3. The same shift after the window: one fleet event, its alarms held.
    advance(&tw, 7200).await;
    fleet.round(&tw, |_| false).await;
    fleet.round(&tw, |i| i < 40).await;
    let open = fleet_events(&tw, "?phase=OPEN").await;
    assert_eq!(open.len(), 1, "{open:?}");
    let id = open[0]["fleetEventId"].as_str().expect("id").to_owned();
    assert_eq!(open[0]["securityProfileName"], PROFILE);
    assert_eq!(open[0]["behaviors"][0]["metric"], "aws:all-bytes-out");
    until(&got, "the fleet event on the feed", |g| {
        g.iter().any(|(t, d)| {
            t == "io.thingward.fleet-event.opened" && d["fleetEventId"] == id.as_str()
        })
    })
    .await;
    let alarms = active(&tw).await;
    let held: Vec<String> = alarms
        .iter()
        .filter(|v| v["fleetEventId"] == id.as_str())
        .filter_map(|v| v["violationId"].as_str().map(str::to_owned))
        .collect();
    assert!(held.len() >= 30, "{alarms:?}");
    {
        let g = got.lock().expect("lock");
        let sent = notified(&g);
        assert!(
            held.iter().all(|v| !sent.contains(v)),
            "a held alarm was sent"
        );
        assert!(
            covered_ids.iter().all(|v| !sent.contains(v)),
            "a covered alarm was sent"
        );
        // Exactly one fleet event reached the feed.
        let fleet_feed: Vec<_> = g
            .iter()
            .filter(|(t, _)| t.starts_with("io.thingward.fleet-event."))
            .collect();
        assert_eq!(fleet_feed.len(), 1, "{fleet_feed:?}");
    }

    // 4. TRUE_POSITIVE: the held alarms are notified, carrying the event's id.
    let r = c
        .post(tw.url(&format!(
            "/thingward/v1/fleet-events/{id}/verification-state"
        )))
        .json(&json!({ "verificationState": "TRUE_POSITIVE" }))
        .send()
        .await
        .expect("verify");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    until(&got, "the released alarms", |g| {
        let sent = notified(g);
        held.iter().all(|v| sent.contains(v))
    })
    .await;
    let g = got.lock().expect("lock");
    assert!(
        g.iter()
            .filter(|(t, d)| t == "io.thingward.violation.in-alarm"
                && held.iter().any(|v| d["violationId"] == v.as_str()))
            .all(|(_, d)| d["fleetEventId"] == id.as_str())
    );
}
