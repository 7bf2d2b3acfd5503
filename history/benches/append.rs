//! Append throughput: `append_sync` of 10k-datapoint batches through the WAL's group commit,
//! with fsync on the bench machine's real file system (a tempdir).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use thingward_history::{History, HistoryOptions};
use thingward_models::{Datapoint, Metric, ThingName, Value};

/// Input shapes: (datapoints per batch, group-commit interval, concurrent `append_sync` callers).
///
/// A batch is 1000 things × 10 metrics, like one ingestion tick of a fleet sending Device
/// Defender reports: 8 numeric built-in metrics, `aws:listening-tcp-ports` (3 ports) and
/// `aws:destination-ip-addresses` (2 IPv4 addresses). With several callers, each iteration is
/// one `append_sync` per caller, so their batches can share an `fdatasync`.
const SHAPES: &[(usize, Duration, usize)] = &[
    (10_000, Duration::ZERO, 1),
    (10_000, Duration::from_millis(2), 1),
    (10_000, Duration::ZERO, 4),
    (10_000, Duration::from_millis(2), 4),
];

fn batch(n: usize) -> Vec<Datapoint> {
    let numeric = [
        Metric::AllBytesOut,
        Metric::AllBytesIn,
        Metric::AllPacketsOut,
        Metric::AllPacketsIn,
        Metric::NumListeningTcpPorts,
        Metric::NumListeningUdpPorts,
        Metric::NumEstablishedTcpConnections,
        Metric::NumMessagesSent,
    ];
    let mut out = Vec::with_capacity(n);
    let mut thing_no = 0u32;
    while out.len() < n {
        let thing = ThingName::try_from(format!("sensor-{thing_no:06}")).expect("valid thing name");
        let ts = 1_700_000_000_000 + i64::from(thing_no);
        for (i, metric) in numeric.iter().enumerate() {
            out.push(Datapoint {
                thing: thing.clone(),
                metric: metric.clone(),
                topic: None,
                timestamp: ts,
                value: Value::Number(f64::from(thing_no) * 10.0 + i as f64),
            });
        }
        out.push(Datapoint {
            thing: thing.clone(),
            metric: Metric::ListeningTcpPorts,
            topic: None,
            timestamp: ts,
            value: Value::Ports(vec![22, 443, 8883]),
        });
        out.push(Datapoint {
            thing,
            metric: Metric::DestinationIpAddresses,
            topic: None,
            timestamp: ts,
            value: Value::Ips(vec![
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(52, 94, 236, 248)),
            ]),
        });
        thing_no += 1;
    }
    out.truncate(n);
    out
}

fn append_sync(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_sync");
    for &(n, interval, callers) in SHAPES {
        let data = batch(n);
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = HistoryOptions {
            group_commit_interval: interval,
            ..HistoryOptions::default()
        };
        let history = History::open(dir.path(), opts).expect("opens");
        group.throughput(Throughput::Elements((n * callers) as u64));
        let id = BenchmarkId::new(
            format!("batch={n}"),
            format!("interval={}ms/callers={callers}", interval.as_millis()),
        );
        group.bench_with_input(id, &data, |b, data| {
            if callers == 1 {
                b.iter(|| history.append_sync(black_box(data)).expect("appends"));
            } else {
                b.iter(|| {
                    std::thread::scope(|s| {
                        for _ in 0..callers {
                            s.spawn(|| history.append_sync(black_box(data)).expect("appends"));
                        }
                    });
                });
            }
        });
        history.close().expect("closes");
    }
    group.finish();
}

criterion_group!(benches, append_sync);
criterion_main!(benches);
