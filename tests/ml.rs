//! ML Detect end to end: 15 days of generated history in the data dir, an ML profile created
//! over HTTP, a model trained by `thingward train` and by the server's run endpoint, and an
//! attack-like report over MQTT that raises an explained ML violation.

use crate::e2e::{Device, report};
use crate::support::{Mosquitto, Thingward, http};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PROFILE: &str = "ml-e2e";
const BEHAVIOR: &str = "bytes-out-ml";
const THING: &str = "thing-000000";
const DAY_MS: i64 = 86_400_000;

fn thingward(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_thingward"))
        .args(args)
        .env("THINGWARD_LOG", "warn")
        .output()
        .expect("run thingward")
}

/// Generates a quiet 10-device fleet whose 15 days end at today's UTC midnight into `data`.
fn generate(work: &Path, data: &Path) {
    generate_fleet(work, data, 10);
}

/// Generates a quiet fleet of `devices` whose 15 days end at today's UTC midnight into `data`.
pub(crate) fn generate_fleet(work: &Path, data: &Path, devices: u32) {
    let today = chrono::Utc::now().timestamp_millis() / DAY_MS * DAY_MS;
    let start = chrono::DateTime::from_timestamp_millis(today - 15 * DAY_MS)
        .expect("start")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let scenario = work.join("ml.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"ml-e2e\"\nseed = 7\ndevices = {devices}\ndays = 15\ntraining_days = 14\nstart = \"{start}\"\n"
        ),
    )
    .expect("scenario");
    let out = thingward(&[
        "generate".as_ref(),
        "--scenario".as_ref(),
        scenario.as_os_str(),
        "--out".as_ref(),
        data.as_os_str(),
        "--quiet".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn train(data: &Path) -> std::process::Output {
    thingward(&[
        "train".as_ref(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--quiet".as_ref(),
    ])
}

pub(crate) async fn get(tw: &Thingward, path: &str) -> Value {
    let r = http().get(tw.url(path)).send().await.expect("request");
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.expect("json")
}

async fn summary(tw: &Thingward) -> Value {
    let body = get(
        tw,
        &format!("/behavior-model-training/summaries?securityProfileName={PROFILE}"),
    )
    .await;
    assert_eq!(
        body["summaries"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    body["summaries"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_history_trains_a_model_that_explains_an_mqtt_attack() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("data");
    generate(work.path(), &data);
    let broker = Mosquitto::start();
    let mut tw = Thingward::start(&data, Some(broker.port));
    let c = http();
    let r = c
        .post(tw.url(&format!("/security-profiles/{PROFILE}")))
        .json(
            &json!({ "behaviors": [{ "name": BEHAVIOR, "metric": "aws:all-bytes-out",
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
    assert_eq!(summary(&tw).await["modelStatus"], "PENDING_BUILD");

    // `thingward train` refuses while the server holds the data dir, then trains offline.
    let refused = train(&data);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use by a running thingward server"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    tw.terminate();
    let trained = train(&data);
    let table = String::from_utf8_lossy(&trained.stdout);
    assert!(
        trained.status.success(),
        "train: {}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let line = table
        .lines()
        .find(|l| l.starts_with(PROFILE))
        .unwrap_or_else(|| panic!("no line for the profile in:\n{table}"));
    assert!(
        line.contains(" built ") && line.contains(" ACTIVE "),
        "{table}"
    );

    // The server loads the model at start-up; the run endpoint refreshes it.
    let tw = Thingward::start(&data, Some(broker.port));
    let s = summary(&tw).await;
    assert_eq!(s["modelStatus"], "ACTIVE", "{s}");
    assert_eq!(s["modelVersion"], 1);
    assert_eq!(s["datapointsCollectionPercentage"], 100.0);
    assert!(s["trainingDataCollectionStartDate"].is_number());
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
    assert_eq!(run["behaviors"][0]["modelVersion"], 2, "{run}");

    // The device's usual bytes out, then a report with a thousand times that.
    let now = chrono::Utc::now();
    let values = get(
        &tw,
        &format!(
            "/metric-values?thingName={THING}&metricName=aws%3Aall-bytes-out&startTime={}&endTime={}&maxResults=250",
            (now - chrono::TimeDelta::days(2)).format("%Y-%m-%dT%H:%M:%SZ"),
            now.format("%Y-%m-%dT%H:%M:%SZ")
        ),
    )
    .await;
    let usual = values["metricDatumList"]
        .as_array()
        .expect("datums")
        .iter()
        .filter_map(|d| d["value"]["count"].as_f64())
        .fold(0.0, f64::max);
    assert!(usual > 0.0, "{values}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut dev = Device::connect(broker.port, THING).await;
    let attack = (usual * 1000.0) as u64;
    let (topic, body) = dev.send(THING, report(1, attack, &[])).await;
    assert!(topic.ends_with("/accepted"), "{body}");
    let active = get(&tw, &format!("/active-violations?thingName={THING}")).await;
    let list = active["activeViolations"].as_array().expect("list");
    assert_eq!(list.len(), 1, "{active}");
    let v = &list[0];
    assert_eq!(v["behavior"]["name"], BEHAVIOR);
    assert_eq!(v["violationEventAdditionalInfo"]["confidenceLevel"], "HIGH");
    let e = &v["mlExplanation"];
    assert_eq!(e["observed"].as_f64(), Some(attack as f64));
    assert_eq!(e["modelVersion"], 2);
    assert_eq!(e["baselineName"], THING);
    let upper = e["expectedRange"][2]["upper"].as_f64().expect("HIGH upper");
    assert!(upper < attack as f64, "{e}");
}
