//! Rules Detect benchmarks: compiled rule evaluation and `Scorer::observe`.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-scorer cargo bench -p thingward-scorer -- --warm-up-time 1 --measurement-time 3`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};
use thingward_models::profile::SecurityProfile;
use thingward_models::{
    BehaviorCriteria, CustomMetricType, Datapoint, Metric, ThingName, Value, ValueKind,
};
use thingward_scorer::{CompiledProfile, Registry, Rule, Scorer};

/// The input shapes, all generated from a fixed seed (xorshift64*, below).
pub const SHAPES: &str = "\
rules/evaluate/numeric/4096: `less-than 1000` over 4,096 numbers uniform in 0..1100 (~9 % violate).
rules/evaluate/port-set/4096: `in-port-set` of 16 ports over 4,096 reports of 1-5 ports each, \
each port outside the set with probability 1/20.
rules/evaluate/cidr-set/4096: `in-cidr-set` of 24 IPv4 /16s and 8 IPv6 /48s over 4,096 reports \
of 1-4 addresses (3/4 IPv4), each outside the set with probability 1/20.
observe/batch/10000x5: one profile with 5 behaviors - static numeric (aws:num-listening-tcp-ports), \
port set (aws:listening-tcp-ports), CIDR set (aws:source-ip-address), durationSeconds=300 sum \
(aws:num-messages-sent) and a p90 statistical threshold (aws:all-bytes-out) - over 10,000 things \
x 5 metrics = 50,000 datapoints per pass, each pass one minute after the previous (~1 % of the \
numeric values violate, so transitions are produced). Warmed up: every thing interned, windows \
and the statistical pool (10,000 devices, recomputed lazily) full.
observe/single/10000x5: the latency of one observe call in that warmed-up scorer, walking the same \
batch without advancing time (so windows fill to their 64-sample cap: a worst case for them).";

const N: usize = 4096;
const THINGS: usize = 10_000;

/// xorshift64*: a seeded generator without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn criteria(json: &str) -> BehaviorCriteria {
    serde_json::from_str(json).expect("criteria json")
}

const PORTS: [u16; 16] = [
    22, 80, 443, 1883, 8883, 8080, 8443, 5683, 123, 53, 67, 68, 161, 502, 1900, 5353,
];

fn v4_cidrs() -> Vec<String> {
    (0..24).map(|i| format!("10.{i}.0.0/16")).collect()
}

fn v6_cidrs() -> Vec<String> {
    (0..8).map(|i| format!("2001:db8:{i:x}::/48")).collect()
}

fn random_ips(rng: &mut Rng) -> Vec<IpAddr> {
    (0..=rng.below(4))
        .map(|_| {
            let inside = rng.below(20) != 0;
            if rng.below(4) != 0 {
                let second = if inside {
                    rng.below(24)
                } else {
                    100 + rng.below(100)
                } as u8;
                IpAddr::V4(Ipv4Addr::new(
                    10,
                    second,
                    rng.below(256) as u8,
                    rng.below(256) as u8,
                ))
            } else {
                let third = if inside {
                    rng.below(8)
                } else {
                    0x100 + rng.below(100)
                } as u16;
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    third,
                    0,
                    0,
                    0,
                    0,
                    rng.below(65536) as u16,
                ))
            }
        })
        .collect()
}

fn random_ports(rng: &mut Rng) -> Vec<u16> {
    (0..=rng.below(5))
        .map(|_| {
            if rng.below(20) != 0 {
                PORTS[rng.below(16) as usize]
            } else {
                10_000 + rng.below(1000) as u16
            }
        })
        .collect()
}

fn bench_rules(c: &mut Criterion) {
    debug_assert!(!SHAPES.is_empty());
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    let mut g = c.benchmark_group("rules/evaluate");
    g.throughput(Throughput::Elements(N as u64));

    let numeric = Rule::compile(
        "n",
        &criteria(r#"{"comparisonOperator":"less-than","value":{"count":1000}}"#),
        ValueKind::Number,
    )
    .expect("rule");
    let numbers: Vec<Value> = (0..N)
        .map(|_| Value::Number(rng.below(1100) as f64))
        .collect();

    let ports_json = serde_json::to_string(&PORTS).expect("json");
    let ports = Rule::compile(
        "p",
        &criteria(&format!(
            r#"{{"comparisonOperator":"in-port-set","value":{{"ports":{ports_json}}}}}"#
        )),
        ValueKind::PortList,
    )
    .expect("rule");
    let port_values: Vec<Value> = (0..N)
        .map(|_| Value::Ports(random_ports(&mut rng)))
        .collect();

    let cidrs_json = serde_json::to_string(&[v4_cidrs(), v6_cidrs()].concat()).expect("json");
    let cidrs = Rule::compile(
        "c",
        &criteria(&format!(
            r#"{{"comparisonOperator":"in-cidr-set","value":{{"cidrs":{cidrs_json}}}}}"#
        )),
        ValueKind::IpList,
    )
    .expect("rule");
    let ip_values: Vec<Value> = (0..N).map(|_| Value::Ips(random_ips(&mut rng))).collect();

    for (name, rule, values) in [
        ("numeric", &numeric, &numbers),
        ("port-set", &ports, &port_values),
        ("cidr-set", &cidrs, &ip_values),
    ] {
        g.bench_with_input(BenchmarkId::new(name, N), values, |b, values| {
            b.iter(|| {
                let mut violations = 0u32;
                for v in values {
                    violations += u32::from(rule.violates(black_box(v)) == Some(true));
                }
                violations
            });
        });
    }
    g.finish();
}

struct NoCustom;

impl Registry for NoCustom {
    fn custom_metric_type(&self, _: &str) -> Option<CustomMetricType> {
        None
    }
    fn dimension_filters(&self, _: &str) -> Option<Vec<String>> {
        None
    }
}

fn observe_profile() -> CompiledProfile {
    let ports_json = serde_json::to_string(&PORTS).expect("json");
    let cidrs_json = serde_json::to_string(&[v4_cidrs(), v6_cidrs()].concat()).expect("json");
    let json = format!(
        r#"{{"securityProfileName":"bench","securityProfileArn":"arn","version":1,"creationDate":0,"lastModifiedDate":0,"behaviors":[
        {{"name":"tcp-count","metric":"aws:num-listening-tcp-ports","criteria":{{"comparisonOperator":"less-than","value":{{"count":20}}}}}},
        {{"name":"tcp-ports","metric":"aws:listening-tcp-ports","criteria":{{"comparisonOperator":"in-port-set","value":{{"ports":{ports_json}}}}}}},
        {{"name":"sources","metric":"aws:source-ip-address","criteria":{{"comparisonOperator":"in-cidr-set","value":{{"cidrs":{cidrs_json}}}}}}},
        {{"name":"sent","metric":"aws:num-messages-sent","criteria":{{"comparisonOperator":"less-than","value":{{"count":5000}},"durationSeconds":300}}}},
        {{"name":"bytes-out","metric":"aws:all-bytes-out","criteria":{{"comparisonOperator":"less-than-equals","statisticalThreshold":{{"statistic":"p90"}}}}}}
    ]}}"#
    );
    let p: SecurityProfile = serde_json::from_str(&json).expect("profile json");
    CompiledProfile::compile(&p, &NoCustom).expect("profile compiles")
}

fn observe_batch(rng: &mut Rng) -> Vec<Datapoint> {
    let mut batch = Vec::with_capacity(THINGS * 5);
    for t in 0..THINGS {
        let thing = ThingName::try_from(format!("thing-{t:05}")).expect("thing");
        let rare = |rng: &mut Rng| rng.below(100) == 0;
        let values = [
            (
                Metric::NumListeningTcpPorts,
                Value::Number(if rare(rng) {
                    30.0
                } else {
                    rng.below(10) as f64
                }),
            ),
            (Metric::ListeningTcpPorts, Value::Ports(random_ports(rng))),
            (Metric::SourceIpAddress, Value::Ips(random_ips(rng))),
            (
                Metric::NumMessagesSent,
                Value::Number(if rare(rng) {
                    6000.0
                } else {
                    rng.below(1000) as f64
                }),
            ),
            (
                Metric::AllBytesOut,
                Value::Number(rng.below(1_000_000) as f64),
            ),
        ];
        for (metric, value) in values {
            batch.push(Datapoint {
                thing: thing.clone(),
                metric,
                topic: None,
                timestamp: 0,
                value,
            });
        }
    }
    batch
}

fn bench_observe(c: &mut Criterion) {
    let mut rng = Rng(0xdec0_de5e_ed5e_ed01);
    let profile = observe_profile();
    let mut batch = observe_batch(&mut rng);
    let mut scorer = Scorer::new();
    let mut out = Vec::new();
    let mut now = 0i64;
    let mut pass = |scorer: &mut Scorer, batch: &mut Vec<Datapoint>, out: &mut Vec<_>| {
        now += 60_000;
        for d in batch.iter_mut() {
            d.timestamp = now;
        }
        let start = Instant::now();
        for d in batch.iter() {
            scorer.observe(&profile, d, out);
            out.clear();
        }
        start.elapsed()
    };
    // Warm up: intern every thing and fill the windows and the statistical pool.
    for _ in 0..6 {
        pass(&mut scorer, &mut batch, &mut out);
    }

    let mut g = c.benchmark_group("observe");
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.sample_size(20);
    g.bench_function(BenchmarkId::new("batch", format!("{THINGS}x5")), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| pass(&mut scorer, &mut batch, &mut out))
                .sum::<Duration>()
        });
    });
    g.finish();

    let mut g = c.benchmark_group("observe");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function(BenchmarkId::new("single", format!("{THINGS}x5")), |b| {
        b.iter(|| {
            i = (i + 1) % batch.len();
            scorer.observe(&profile, black_box(&batch[i]), &mut out);
            out.clear();
        });
    });
    g.finish();
}

criterion_group!(benches, bench_rules, bench_observe);
criterion_main!(benches);
