//! ML Detect through the service: the models index, the lifecycle on the manual clock (a month
//! of nights in seconds), nightly refreshes while ingestion goes on, artifacts at start-up,
//! GetBehaviorModelTrainingSummaries, and explained ML violations.
//!
//! Tests that need a built model from history use the real trainer (`thingward_trainer::fit`);
//! the start-up tests write artifacts of hand-made models through the real codec and files.

use super::*;
use crate::training::{Artifacts, Quiet, RunScope, TrainAt};
use thingward_models::codec;
use thingward_models::ml::{
    BehaviorModel, CohortModel, DeviceModel, ExpectedRates, LevelTargets, Transform,
};
use thingward_trainer::lifecycle::ModelStatus;

pub(super) const PROFILE: &str = "ml";
pub(super) const BEHAVIOR: &str = "bytes-out-ml";
pub(super) const METRIC: &str = "aws:all-bytes-out";
/// Devices of the synthetic fleet, and their datapoints per day (5-minute reports).
const DEVICES: usize = 8;
const PER_DAY: i64 = 288;
const SLOT_MS: i64 = 300_000;

pub(super) fn ml_behavior(level: &str) -> Value {
    json!({
        "name": BEHAVIOR,
        "metric": METRIC,
        "criteria": { "mlDetectionConfig": { "confidenceLevel": level } }
    })
}

/// A seeded xorshift generator in [0, 1).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The typical bytes out of device `i` (around 1,000 × (i + 1)).
fn base(i: usize) -> f64 {
    1_000.0 * (i as f64 + 1.0)
}

/// One day of the fleet's bytes out from `start`: a daily cycle and ±10 % noise.
fn fleet_day(start: i64, noise: &mut Noise) -> Value {
    let mut out = Vec::new();
    for k in 0..PER_DAY {
        let ts = start + k * SLOT_MS;
        let phase = (ts % DAY_MS) as f64 / DAY_MS as f64 * std::f64::consts::TAU;
        for i in 0..DEVICES {
            let x = base(i) * (1.0 + 0.3 * phase.sin()) * (0.9 + 0.2 * noise.next());
            out.push(json!({
                "thingName": format!("dev-{i}"),
                "metric": METRIC,
                "value": { "count": x.round() as u64 },
                "timestamp": ts as f64 / 1000.0,
            }));
        }
    }
    Value::Array(out)
}

impl TestApp {
    /// The nightly run as the scheduler does it (on a blocking thread: polars may block), at
    /// the current clock time.
    async fn nightly(&self) -> crate::training::RunReport {
        let training = Arc::clone(&self.training);
        let scope = RunScope {
            profile: None,
            due_at: Some(TrainAt::hm(2, 0)),
        };
        tokio::task::spawn_blocking(move || training.run(&scope, &Quiet))
            .await
            .expect("training task")
            .expect("training run")
    }

    /// GetBehaviorModelTrainingSummaries of the profile; its only summary.
    async fn summary(&self) -> Value {
        let body = self
            .get(&format!(
                "/behavior-model-training/summaries?securityProfileName={PROFILE}"
            ))
            .await
            .ok();
        let list = body["summaries"].as_array().expect("summaries").clone();
        assert_eq!(list.len(), 1, "{body}");
        list[0].clone()
    }

    /// `days` days of fleet data from `start`, the clock following, a nightly run after each.
    async fn collect_days(&self, start: i64, days: std::ops::Range<i64>, noise: &mut Noise) {
        for d in days {
            let day_start = start + d * DAY_MS;
            self.clock.store(day_start + DAY_MS, Ordering::SeqCst);
            self.ingest(fleet_day(day_start, noise)).await;
            self.nightly().await;
        }
    }
}

/// A fleet collecting from T0 + 1 h until its model is built on day 14 (needs the trainer).
async fn fleet_with_active_model() -> (TestApp, i64, Noise) {
    let t = TestApp::new();
    t.watch_all(PROFILE, json!([ml_behavior("HIGH")])).await;
    let start = T0_MS + 3_600_000;
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    for d in 0..13 {
        t.collect_days(start, d..d + 1, &mut noise).await;
        let s = t.summary().await;
        assert_eq!(s["modelStatus"], "PENDING_BUILD", "day {d}: {s}");
        let expected = (100.0 * ((d + 1) * PER_DAY * DEVICES as i64) as f64 / 25_000.0).min(100.0);
        assert_eq!(s["datapointsCollectionPercentage"], expected, "day {d}");
        assert_eq!(
            s["trainingDataCollectionStartDate"].as_f64(),
            Some(start as f64 / 1000.0)
        );
        assert!(s.get("lastModelRefreshDate").is_none(), "{s}");
    }
    // Day 14 ends: 14 days collected, 32,256 datapoints in the window.
    t.collect_days(start, 13..14, &mut noise).await;
    let s = t.summary().await;
    assert_eq!(s["modelStatus"], "ACTIVE", "{s}");
    assert_eq!(s["datapointsCollectionPercentage"], 100.0);
    assert_eq!(
        s["lastModelRefreshDate"].as_f64(),
        Some(t.now_ms() as f64 / 1000.0)
    );
    assert_eq!(s["modelVersion"], 1);
    (t, start, noise)
}

#[tokio::test]
async fn ml_behavior_is_pending_for_14_days_then_active_and_explains_its_alarms() {
    let (t, _, _) = fleet_with_active_model().await;
    // A normal report does not alarm; bytes out × 1000 does, with AWS's confidence level and
    // thingward's explanation.
    t.count("dev-2", METRIC, base(2) as u64).await;
    assert!(t.active("").await.is_empty());
    t.count("dev-2", METRIC, base(2) as u64 * 1000).await;
    let active = t.active("").await;
    assert_eq!(active.len(), 1, "{active:?}");
    let v = &active[0];
    assert_eq!(v["thingName"], "dev-2");
    assert_eq!(v["behavior"]["name"], BEHAVIOR);
    assert_eq!(v["violationEventAdditionalInfo"]["confidenceLevel"], "HIGH");
    let e = &v["mlExplanation"];
    assert_eq!(e["observed"].as_f64(), Some(base(2) * 1000.0));
    assert_eq!(e["modelVersion"], 1);
    assert_eq!(e["baseline"], "device");
    assert_eq!(e["baselineName"], "dev-2");
    assert_eq!(e["reached"], "HIGH");
    let ranges = e["expectedRange"].as_array().expect("expectedRange");
    assert_eq!(ranges.len(), 3);
    let high = ranges[2]["upper"].as_f64().expect("upper");
    assert!(
        high > base(2) && high < base(2) * 1000.0,
        "HIGH's upper edge {high} lies between normal and the attack"
    );
    let expected = e["expected"].as_f64().expect("expected");
    assert!(
        (expected / base(2) - 1.0).abs() < 0.5,
        "expected {expected} near the device's level"
    );
    // The in-alarm event carries it too; the trainer's summary reports calibration.
    let events = t.events("&behaviorCriteriaType=MACHINE_LEARNING").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["violationEventType"], "in-alarm");
    assert_eq!(events[0]["mlExplanation"]["observed"], e["observed"]);
    assert_eq!(
        events[0]["violationEventAdditionalInfo"]["confidenceLevel"],
        "HIGH"
    );
    let s = t.summary().await;
    assert!(s["expectedFalsePositiveRates"]["HIGH"].is_number(), "{s}");
    // In the unit people read: the profile's budget, shared by its one ML behavior, and what
    // calibration expects per 1,000 device-days and per day for the devices it was trained on.
    assert_eq!(
        s["profileAlarmBudgetPer1000DeviceDays"]["MEDIUM"], 2.0,
        "{s}"
    );
    assert_eq!(s["alarmBudgetSharedBy"], 1, "{s}");
    let per_1000 = s["expectedFalseAlarmsPer1000DeviceDays"]["LOW"]
        .as_f64()
        .expect("per 1,000 device-days");
    let per_day = s["expectedFalseAlarmsPerDay"]["LOW"]
        .as_f64()
        .expect("per day");
    assert!(per_1000 > 0.0 && per_1000 < 200.0, "{s}");
    assert!(per_day > 0.0 && per_day < per_1000, "{s}");
    // Back to normal: cleared, and the clearing event has no explanation.
    t.count("dev-2", METRIC, base(2) as u64).await;
    assert!(t.active("").await.is_empty());
    let events = t.events("").await;
    assert_eq!(
        events.last().expect("event")["violationEventType"],
        "alarm-cleared"
    );
    assert!(events.last().expect("event").get("mlExplanation").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nightly_refresh_replaces_the_model_while_ingestion_goes_on() {
    let (t, start, mut noise) = fleet_with_active_model().await;
    let t = Arc::new(t);
    // The next night: ingestion keeps going while the model is rebuilt.
    t.clock.store(start + 15 * DAY_MS, Ordering::SeqCst);
    t.ingest(fleet_day(start + 14 * DAY_MS, &mut noise)).await;
    let trainer = {
        let t = Arc::clone(&t);
        tokio::spawn(async move { t.nightly().await })
    };
    let mut batches = 0;
    while !trainer.is_finished() || batches < 20 {
        // Each reply is asserted 200 by `ingest`.
        t.ingest(json!([{ "thingName": "dev-1", "metric": METRIC, "value": { "count": base(1) as u64 } }]))
            .await;
        batches += 1;
    }
    let report = trainer.await.expect("training task");
    assert_eq!(report.behaviors.len(), 1);
    assert_eq!(report.behaviors[0].model_version, Some(2));
    let s = t.summary().await;
    assert_eq!(s["modelVersion"], 2);
    assert_eq!(
        s["lastModelRefreshDate"].as_f64(),
        Some(t.now_ms() as f64 / 1000.0)
    );
    // Scoring uses the new model.
    t.count("dev-1", METRIC, base(1) as u64 * 1000).await;
    let active = t.active("").await;
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0]["mlExplanation"]["modelVersion"], 2);
    // The same night again does nothing; the next one refreshes again.
    assert!(t.nightly().await.behaviors.is_empty());
    t.clock.store(start + 16 * DAY_MS, Ordering::SeqCst);
    assert_eq!(t.nightly().await.behaviors[0].model_version, Some(3));
}

#[tokio::test]
async fn short_data_is_retried_nightly_then_expires_after_30_days() {
    let t = TestApp::new();
    t.watch_all(PROFILE, json!([ml_behavior("LOW")])).await;
    let start = T0_MS + 3_600_000;
    let one_a_day = |d: i64| {
        json!([{ "thingName": "dev-0", "metric": METRIC, "value": { "count": 5 },
                 "timestamp": (start + d * DAY_MS) as f64 / 1000.0 }])
    };
    for d in 0..44 {
        t.clock.store(start + (d + 1) * DAY_MS, Ordering::SeqCst);
        t.ingest(one_a_day(d)).await;
        let report = t.nightly().await;
        assert_eq!(report.behaviors.len(), 1, "day {d}: due once a night");
        let s = t.summary().await;
        if d < 43 {
            assert_eq!(s["modelStatus"], "PENDING_BUILD", "day {d}: {s}");
        } else {
            assert_eq!(s["modelStatus"], "EXPIRED", "day {d}: {s}");
        }
        let outcome = serde_json::to_value(report.behaviors[0].outcome).expect("json");
        assert_eq!(
            outcome,
            if d < 13 { "collecting" } else { "short" },
            "day {d}"
        );
    }
    let s = t.summary().await;
    // The window holds the last 14 daily datapoints.
    assert_eq!(s["datapointsCollectionPercentage"], 100.0 * 14.0 / 25_000.0);
    assert_eq!(
        s["trainingDataCollectionStartDate"].as_f64(),
        Some(start as f64 / 1000.0)
    );
    assert!(s.get("lastModelRefreshDate").is_none());
    assert!(
        s["lastBuildError"]
            .as_str()
            .is_some_and(|m| m.contains("25000 needed"))
    );
    let entry = t
        .store
        .model_get(PROFILE, BEHAVIOR)
        .expect("store")
        .expect("entry");
    assert_eq!(entry.state.retries, 31);
    assert_eq!(entry.state.failing_since, Some(start + 14 * DAY_MS));
    // Expired is final: nothing is attempted any more.
    t.clock.store(start + 46 * DAY_MS, Ordering::SeqCst);
    let report = t.nightly().await;
    assert_eq!(
        serde_json::to_value(report.behaviors[0].outcome).expect("json"),
        "retired"
    );
    assert_eq!(t.summary().await["modelStatus"], "EXPIRED");
}

/// A model of the fleet `things` (bytes out around 1,000) with this version, by hand.
fn hand_model(version: u64, things: &[&str]) -> BehaviorModel {
    let location = 1_000f32.ln_1p();
    BehaviorModel {
        profile: PROFILE.into(),
        behavior: BEHAVIOR.into(),
        metric: METRIC.into(),
        version,
        trained_at: T0_MS,
        window_start: T0_MS - 14 * DAY_MS,
        window_end: T0_MS,
        datapoints: 30_000,
        excluded_datapoints: 0,
        transform: Transform::Log1p,
        targets: LevelTargets::default(),
        drift_lambda: 0.01,
        residual_clip: 4.0,
        drift_fast_lambda: 0.0,
        budget: None,
        cohorts: vec![CohortModel {
            name: "fleet".into(),
            devices: things.len() as u32,
            location,
            scale: 0.2,
            seasonal: Vec::new(),
            point: [3.0, 3.7, 4.3],
            drift: [1.0, 1.2, 1.4],
            cohort_point: [4.0, 4.7, 5.3],
        }],
        devices: things
            .iter()
            .map(|t| DeviceModel {
                thing: (*t).into(),
                cohort: 0,
                location,
                scale: 0.2,
                seasonal: Vec::new(),
                datapoints: 4_000,
            })
            .collect(),
        expected: ExpectedRates {
            datapoint: [1e-3, 1e-4, 1e-5],
            calibration_datapoints: 1_000,
            episodes_per_1000_device_days: None,
            datapoints_per_device_day: 0.0,
        },
    }
}

impl TestApp {
    fn artifacts(&self) -> Artifacts {
        Artifacts::new(self._dir.path().join("models"))
    }

    /// Writes hand-made artifacts v1..=v`n` and records the behavior as ACTIVE at v`n`, as a
    /// nightly run would have.
    fn write_active_versions(&self, n: u64) {
        self.write_active_model(n, &["cam"]);
    }

    /// Like `write_active_versions`, for a model of the fleet `things`.
    pub(super) fn write_active_model(&self, n: u64, things: &[&str]) {
        for v in 1..=n {
            let bytes = codec::encode(&hand_model(v, things)).expect("encode");
            self.artifacts()
                .write(PROFILE, BEHAVIOR, v, &bytes)
                .expect("write");
        }
        let mut entry = self
            .store
            .model_get(PROFILE, BEHAVIOR)
            .expect("store")
            .expect("entry");
        entry.state.status = ModelStatus::Active;
        entry.state.version = n;
        entry.state.last_refresh = Some(self.now_ms());
        entry.artifact = Some(Artifacts::relative(PROFILE, BEHAVIOR, n));
        assert!(self.store.model_update(&entry).expect("update"));
    }

    /// Sends an attack datapoint for `cam` and returns the model version that explained the
    /// alarm, then clears it again.
    async fn alarming_version(&self) -> Value {
        self.count("cam", METRIC, 1_000_000).await;
        let active = self.active("").await;
        assert_eq!(active.len(), 1, "{active:?}");
        let version = active[0]["mlExplanation"]["modelVersion"].clone();
        self.count("cam", METRIC, 1_000).await;
        assert!(self.active("").await.is_empty());
        version
    }
}

#[tokio::test]
async fn the_newest_artifact_serves_after_a_restart_and_a_corrupt_one_falls_back() {
    let t = TestApp::new();
    t.watch_all(PROFILE, json!([ml_behavior("MEDIUM")])).await;
    // Pending: nothing scores the ML behavior.
    t.count("cam", METRIC, 1_000_000).await;
    assert!(t.active("").await.is_empty());
    t.write_active_versions(2);
    let t = t.restart();
    assert_eq!(t.alarming_version().await, 2);
    assert_eq!(t.summary().await["modelVersion"], 2);
    // Flip one payload byte of v2: the checksum refuses it at start-up and v1 serves.
    let path = t.artifacts().behavior_dir(PROFILE, BEHAVIOR).join("v2.twm");
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, bytes).expect("corrupt");
    let t = t.restart();
    assert_eq!(t.alarming_version().await, 1);
    let s = t.summary().await;
    assert_eq!(s["modelVersion"], 1);
    assert_eq!(s["modelStatus"], "ACTIVE");
    // Every version corrupt (or gone): the behavior is not scored, nothing fails.
    std::fs::remove_file(t.artifacts().behavior_dir(PROFILE, BEHAVIOR).join("v1.twm"))
        .expect("remove");
    let t = t.restart();
    t.count("cam", METRIC, 1_000_000).await;
    assert!(t.active("").await.is_empty());
    assert!(t.summary().await.get("modelVersion").is_none());
}

#[tokio::test]
async fn removing_the_behavior_or_the_profile_drops_its_model_and_artifacts() {
    let t = TestApp::new();
    t.watch_all(PROFILE, json!([ml_behavior("LOW"), few_ports()]))
        .await;
    t.write_active_versions(1);
    let t = t.restart();
    assert_eq!(t.training.live().snapshot().len(), 1);
    let dir = t.artifacts().behavior_dir(PROFILE, BEHAVIOR);
    assert!(dir.join("v1.twm").exists());
    // Changing the behavior's confidence level keeps the model (it covers every level).
    t.patch(
        &format!("/security-profiles/{PROFILE}"),
        json!({ "behaviors": [ml_behavior("HIGH"), few_ports()] }),
    )
    .await
    .ok();
    assert_eq!(t.training.live().snapshot().len(), 1);
    assert_eq!(t.summary().await["modelStatus"], "ACTIVE");
    // Removing it drops the entry, the live model and the files.
    t.patch(
        &format!("/security-profiles/{PROFILE}"),
        json!({ "behaviors": [few_ports()] }),
    )
    .await
    .ok();
    assert!(t.training.live().snapshot().is_empty());
    assert!(!dir.exists());
    let body = t.get("/behavior-model-training/summaries").await.ok();
    assert_eq!(body["summaries"], json!([]));
    // Re-added, it starts over; deleting the profile drops it again.
    t.patch(
        &format!("/security-profiles/{PROFILE}"),
        json!({ "behaviors": [ml_behavior("LOW")] }),
    )
    .await
    .ok();
    let s = t.summary().await;
    assert_eq!(s["modelStatus"], "PENDING_BUILD");
    assert_eq!(s["datapointsCollectionPercentage"], 0.0);
    t.delete(&format!("/security-profiles/{PROFILE}"))
        .await
        .ok();
    let body = t.get("/behavior-model-training/summaries").await.ok();
    assert_eq!(body["summaries"], json!([]));
}

#[tokio::test]
async fn training_summaries_page_validate_and_name_unknown_profiles() {
    let t = TestApp::new();
    let behaviors: Vec<Value> = (0..12)
        .map(|i| {
            json!({ "name": format!("b{i:02}"), "metric": METRIC,
                    "criteria": { "mlDetectionConfig": { "confidenceLevel": "LOW" } } })
        })
        .collect();
    t.create_profile("p1", Value::Array(behaviors)).await;
    t.create_profile("p2", json!([ml_behavior("LOW"), few_ports()]))
        .await;
    // 13 ML behaviors, pages of at most 10 (TinyMaxResults).
    let first = t.get("/behavior-model-training/summaries").await.ok();
    let page = first["summaries"].as_array().expect("summaries");
    assert_eq!(page.len(), 10);
    assert_eq!(page[0]["securityProfileName"], "p1");
    assert_eq!(page[0]["behaviorName"], "b00");
    assert_eq!(page[0]["modelStatus"], "PENDING_BUILD");
    assert_eq!(page[0]["datapointsCollectionPercentage"], 0.0);
    assert!(page[0].get("trainingDataCollectionStartDate").is_none());
    let token = first["nextToken"].as_str().expect("nextToken");
    let second = t
        .get(&format!(
            "/behavior-model-training/summaries?nextToken={token}"
        ))
        .await
        .ok();
    let rest = second["summaries"].as_array().expect("summaries");
    assert_eq!(rest.len(), 3);
    assert_eq!(rest[2]["securityProfileName"], "p2");
    assert!(second["nextToken"].is_null());
    let p2 = t
        .get("/behavior-model-training/summaries?securityProfileName=p2&maxResults=1")
        .await
        .ok();
    assert_eq!(p2["summaries"].as_array().map(Vec::len), Some(1));
    assert!(p2["nextToken"].is_null());
    t.get("/behavior-model-training/summaries?maxResults=11")
        .await
        .invalid("maxResults");
    t.get("/behavior-model-training/summaries?securityProfileName=bad%20name")
        .await
        .invalid("securityProfileName");
    t.get("/behavior-model-training/summaries?securityProfileName=nope")
        .await
        .error(404, "ResourceNotFoundException");
    t.post(
        "/thingward/v1/training/run",
        json!({ "securityProfileName": "nope" }),
    )
    .await
    .error(404, "ResourceNotFoundException");
}

#[tokio::test]
async fn the_run_endpoint_trains_now_and_reports_each_behavior() {
    let t = TestApp::new();
    t.watch_all(PROFILE, json!([ml_behavior("LOW")])).await;
    t.create_profile(
        "other",
        json!([{ "name": "o", "metric": METRIC,
        "criteria": { "mlDetectionConfig": { "confidenceLevel": "LOW" } } }]),
    )
    .await;
    t.count("dev-0", METRIC, 10).await;
    // The window ends (exclusive) at the run's time.
    t.advance_secs(1);
    let all = t.post("/thingward/v1/training/run", json!({})).await.ok();
    let lines = all["behaviors"].as_array().expect("behaviors");
    assert_eq!(lines.len(), 2, "{all}");
    assert_eq!(all["asOf"].as_f64(), Some(t.now_ms() as f64 / 1000.0));
    let ml = lines
        .iter()
        .find(|l| l["securityProfileName"] == PROFILE)
        .expect("ml line");
    assert_eq!(ml["outcome"], "collecting");
    assert_eq!(ml["modelStatus"], "PENDING_BUILD");
    // The datapoint was still in the WAL: the run rolled it into Parquet first.
    assert_eq!(ml["datapoints"], 1);
    // "other" targets nothing: its window is empty.
    let other = lines
        .iter()
        .find(|l| l["securityProfileName"] == "other")
        .expect("other line");
    assert_eq!(other["datapoints"], 0);
    // Again right away, for one profile: the endpoint ignores the schedule.
    let one = t
        .post(
            "/thingward/v1/training/run",
            json!({ "securityProfileName": PROFILE }),
        )
        .await
        .ok();
    assert_eq!(one["behaviors"].as_array().map(Vec::len), Some(1));
    t.post("/thingward/v1/training/run", json!({ "profile": PROFILE }))
        .await
        .invalid("unknown field");
}

#[tokio::test]
async fn the_scheduler_runs_training_at_the_configured_time_on_the_service_clock() {
    let t = TestApp::new();
    t.watch_all(PROFILE, json!([ml_behavior("LOW")])).await;
    t.count("dev-0", METRIC, 10).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // 23:00 UTC: T0 is 22:13, so the first slot is later the same day.
    let at: TrainAt = "23:00".parse().expect("time");
    let task = tokio::spawn(crate::training::schedule::run_loop(
        Arc::clone(&t.training),
        at,
        std::time::Duration::from_millis(10),
        stop_rx,
    ));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let entry = |t: &TestApp| {
        t.store
            .model_get(PROFILE, BEHAVIOR)
            .expect("store")
            .expect("entry")
    };
    assert_eq!(entry(&t).last_attempt, None, "not due before 23:00");
    t.advance_secs(3600);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while entry(&t).last_attempt.is_none() {
        assert!(std::time::Instant::now() < deadline, "no run after 23:00");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(entry(&t).last_attempt, Some(t.now_ms()));
    assert_eq!(entry(&t).datapoints, 1);
    let _ = stop_tx.send(true);
    task.await.expect("scheduler stops");
}
