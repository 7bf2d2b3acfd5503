//! ML Detect scoring benchmarks: `CompiledModel::judge` and `Scorer::observe_ml`.
//!
//! Run: `cargo bench -p thingward-scorer --bench ml -- --warm-up-time 1 --measurement-time 3`
//! (the latency percentiles are printed before criterion's own output).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;
use thingward_models::ml::{
    BehaviorModel, CohortModel, DeviceModel, ExpectedRates, LevelTargets, Transform, WEEK_BUCKETS,
};
use thingward_models::profile::SecurityProfile;
use thingward_models::{CustomMetricType, Datapoint, Metric, ThingName, Value};
use thingward_scorer::{CompiledModel, CompiledProfile, ModelSet, Registry, Scorer};

/// The input shapes, all generated from a fixed seed (xorshift64*, below).
pub const SHAPES: &str = "\
ml/judge/batch/10000: one model of 10,000 devices (each with 168 hour-of-week offsets, 4 cohorts \
plus the fleet), judged on 10,000 datapoints (one per device, shuffled order, values around each \
device's expected level with ~0.5 % far above), drift state in a Vec.
ml/observe/batch/10000: the same through `Scorer::observe_ml` with a profile of one MEDIUM ML \
behavior (aws:all-bytes-out), things interned, each pass five minutes after the previous; \
alarm transitions (with explanations) are produced for the far-above values.
latency: 200,000 single `observe_ml` calls on that warmed-up scorer, each timed with Instant \
(the ~20 ns timer cost included), percentiles printed.";

const THINGS: usize = 10_000;
const START: i64 = 1_767_571_200_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

struct NoRegistry;

impl Registry for NoRegistry {
    fn custom_metric_type(&self, _: &str) -> Option<CustomMetricType> {
        None
    }
    fn dimension_filters(&self, _: &str) -> Option<Vec<String>> {
        None
    }
}

fn thing(i: usize) -> String {
    format!("device-{i:06}")
}

fn model(rng: &mut Rng) -> BehaviorModel {
    let cohort = |name: &str| CohortModel {
        name: name.into(),
        devices: (THINGS / 4) as u32,
        location: 8.0,
        scale: 1.0,
        seasonal: (0..WEEK_BUCKETS).map(|b| (b % 24) as f32 / 48.0).collect(),
        point: [3.4, 4.1, 4.6],
        drift: [0.8, 0.9, 1.0],
        cohort_point: [3.6, 4.4, 5.0],
    };
    let mut devices: Vec<DeviceModel> = (0..THINGS)
        .map(|i| DeviceModel {
            thing: thing(i),
            cohort: (1 + i % 4) as u16,
            location: 4.0 + 8.0 * rng.unit(),
            scale: 0.2 + 0.5 * rng.unit(),
            seasonal: (0..WEEK_BUCKETS).map(|_| rng.unit() - 0.5).collect(),
            datapoints: 4032,
        })
        .collect();
    devices.sort_by(|a, b| a.thing.cmp(&b.thing));
    BehaviorModel {
        profile: "p".into(),
        behavior: "ml".into(),
        metric: "aws:all-bytes-out".into(),
        version: 1,
        trained_at: START,
        window_start: START - 14 * 86_400_000,
        window_end: START,
        datapoints: (THINGS * 4032) as u64,
        excluded_datapoints: 0,
        transform: Transform::Log1p,
        targets: LevelTargets::default(),
        drift_lambda: 1.0 / 144.0,
        residual_clip: 4.0,
        drift_fast_lambda: 0.0,
        budget: None,
        cohorts: ["fleet", "cohort-1", "cohort-2", "cohort-3", "cohort-4"]
            .into_iter()
            .map(cohort)
            .collect(),
        devices,
        expected: ExpectedRates::default(),
    }
}

fn batch(rng: &mut Rng, model: &BehaviorModel, at: i64) -> Vec<Datapoint> {
    let mut order: Vec<usize> = (0..THINGS).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    order
        .into_iter()
        .map(|i| {
            let d = &model.devices[i];
            let bump = if rng.next().is_multiple_of(200) {
                6.0
            } else {
                rng.unit() - 0.5
            };
            let y = d.location + d.scale * bump;
            Datapoint {
                thing: ThingName::try_from(d.thing.as_str()).expect("thing name"),
                metric: Metric::AllBytesOut,
                topic: None,
                timestamp: at,
                value: Value::Number(f64::from(y).exp_m1()),
            }
        })
        .collect()
}

fn profile() -> CompiledProfile {
    let p: SecurityProfile = serde_json::from_str(
        r#"{"securityProfileName":"p","securityProfileArn":"arn","version":1,"creationDate":0,"lastModifiedDate":0,
            "behaviors":[{"name":"ml","metric":"aws:all-bytes-out","criteria":{"mlDetectionConfig":{"confidenceLevel":"MEDIUM"}}}]}"#,
    )
    .expect("profile json");
    CompiledProfile::compile(&p, &NoRegistry).expect("profile compiles")
}

fn benches(c: &mut Criterion) {
    eprintln!("{SHAPES}");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let m = model(&mut rng);
    let data = batch(&mut rng, &m, START);
    let compiled = Arc::new(CompiledModel::new(m).expect("valid model"));
    let mut models = ModelSet::default();
    models.insert(Arc::clone(&compiled));
    let profile = profile();

    let mut group = c.benchmark_group("ml");
    group.throughput(Throughput::Elements(THINGS as u64));
    let mut drift = vec![thingward_scorer::Drift::default(); THINGS];
    group.bench_function(BenchmarkId::new("judge/batch", THINGS), |b| {
        b.iter(|| {
            let mut flagged = 0usize;
            for (dp, d) in data.iter().zip(drift.iter_mut()) {
                let x = dp.value.as_number().unwrap_or(0.0);
                let j = compiled.judge(dp.thing.as_str(), dp.timestamp, x, d);
                flagged += usize::from(j.level.is_some());
            }
            black_box(flagged)
        });
    });

    let mut scorer = Scorer::new();
    let mut out = Vec::new();
    for dp in &data {
        scorer.observe_ml(&profile, &models, dp, &mut out);
    }
    let mut at = START;
    let mut moving = data.clone();
    group.bench_function(BenchmarkId::new("observe/batch", THINGS), |b| {
        b.iter(|| {
            at += 300_000;
            out.clear();
            for dp in moving.iter_mut() {
                dp.timestamp = at;
                scorer.observe_ml(&profile, &models, dp, &mut out);
            }
            black_box(out.len())
        });
    });
    group.finish();

    let mut samples = Vec::with_capacity(200_000);
    for dp in moving.iter().cycle().take(200_000) {
        out.clear();
        let t = Instant::now();
        scorer.observe_ml(&profile, &models, dp, &mut out);
        samples.push(t.elapsed().as_nanos() as u64);
    }
    samples.sort_unstable();
    let pct = |q: f64| samples[((q * samples.len() as f64) as usize).min(samples.len() - 1)];
    eprintln!(
        "ml/observe/single latency over {} calls: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        samples.len(),
        pct(0.5),
        pct(0.99),
        pct(0.999),
        samples[samples.len() - 1]
    );
}

criterion_group!(ml, benches);
criterion_main!(ml);
