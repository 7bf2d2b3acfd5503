//! `thingward bench`: end-to-end ingestion load tests. Each command starts a real service
//! in-process (the same [`Server`] `thingward serve` runs) on `127.0.0.1:0` with a temporary
//! data directory, creates a security profile of five rule behaviors attached to all things,
//! drives load over loopback until a datapoint (or report) count or a time cap is reached, and
//! prints throughput, latency, violation events and the time spent per ingestion stage.
//!
//! - `ingest-http`: `C` concurrent clients POST pre-encoded JSON batches of `B` cloud-side
//!   datapoints to `/thingward/v1/metrics`; every 200 means the batch was scored, recorded and
//!   fsync'd.
//! - `ingest-mqtt`: `C` publishers send Device Defender JSON reports (QoS 1) to the broker the
//!   service subscribes to; a subscriber counts the `/accepted` replies (sent only once the
//!   report is durable). A window bounds the reports published but not yet answered, so the
//!   broker's queue never overflows.
//!
//! Client and server share the machine's cores; the figures are for the whole loop.
//!
//! - `train`: the ML Detect trainer's fit time and memory per fleet size ([`train`]).
//! - `audit`: one on-demand audit over a generated registry, end to end ([`audit`]).

mod audit;
mod feed;
mod train;

use crate::detect::StageTimes;
use crate::serve::{ServeArgs, Server, Started};
use anyhow::{Context, bail};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use thingward_store::{EventFilter, Store};
use tokio::sync::{Notify, Semaphore};

/// Which load test to run.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[command(subcommand)]
    target: BenchTarget,
}

#[derive(Debug, clap::Subcommand)]
enum BenchTarget {
    /// HTTP batch ingestion: decode, validate, score, persist, acknowledge.
    IngestHttp(HttpArgs),
    /// MQTT Device Defender reports through a broker, counted by their `/accepted` replies.
    IngestMqtt(MqttArgs),
    /// ML Detect training: fit time and memory per fleet size.
    Train(train::TrainArgs),
    /// Alarm-feed delivery: events/s and delivery latency to a local webhook while scoring.
    Feed(feed::FeedArgs),
    /// Audit: one StartOnDemandAuditTask over a generated registry, end to end.
    Audit(audit::AuditBenchArgs),
}

/// Options of `thingward bench ingest-http`.
#[derive(Debug, clap::Args)]
struct HttpArgs {
    /// Datapoints to send in total.
    #[arg(long, default_value_t = 2_000_000)]
    datapoints: u64,
    /// Datapoints per batch request.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Distinct things the datapoints belong to.
    #[arg(long, default_value_t = 10_000)]
    things: u64,
    /// Concurrent HTTP clients (one connection each).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Hard time cap of the load phase, in seconds.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
}

/// Options of `thingward bench ingest-mqtt`.
#[derive(Debug, clap::Args)]
struct MqttArgs {
    /// The broker, e.g. mqtt://127.0.0.1:18830 (a loopback broker of your own; see README).
    #[arg(long)]
    mqtt_url: String,
    /// Reports to publish in total.
    #[arg(long, default_value_t = 200_000)]
    reports: u64,
    /// Distinct things publishing.
    #[arg(long, default_value_t = 10_000)]
    things: u64,
    /// Concurrent publishers (one MQTT connection each).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Reports published but not yet answered, at most (end-to-end flow control).
    #[arg(long, default_value_t = 4096)]
    window: usize,
    /// Hard time cap of the load phase, in seconds.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
}

/// Runs the chosen load test and prints its report.
///
/// # Errors
/// Start-up failures, an unreachable broker, or a rejected request (which means the bench or
/// the service is broken, not slow).
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.target {
        BenchTarget::IngestHttp(a) => ingest_http(a).await,
        BenchTarget::IngestMqtt(a) => ingest_mqtt(a).await,
        BenchTarget::Train(a) => tokio::task::spawn_blocking(move || train::run(&a)).await?,
        BenchTarget::Feed(a) => feed::run(a).await,
        BenchTarget::Audit(a) => audit::run(a).await,
    }
}

/// The in-process service under test and its temporary data directory.
struct Target {
    service: Server,
    dir: PathBuf,
    base: String,
    http: reqwest::Client,
}

impl Target {
    async fn start(mqtt_url: Option<String>) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("thingward-bench-{}", uuid::Uuid::new_v4().simple()));
        let args = ServeArgs {
            data_dir: dir.clone(),
            bind: ([127, 0, 0, 1], 0).into(),
            mqtt_url,
            insecure_no_auth: true,
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            max_report_bytes: 128 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            // No roll during the measurement: shutdown rolls once, outside the timed phase.
            roll_interval_seconds: 3600,
            train_at: crate::training::TrainAt::hm(2, 0),
            brokers: crate::mitigation::broker::BrokerArgs::default(),
            feed_backoff_ms: 500,
            feed_retention_days: 30,
            public_url: None,
            audit_config: None,
            audit_at: crate::audit::schedule::AuditAt::hm(3, 0),
            test_clock: false,
        };
        let Started {
            server: service, ..
        } = Server::start(&args).await?;
        let base = format!("http://{}", service.local_addr());
        Ok(Self {
            service,
            dir,
            base,
            http: reqwest::Client::new(),
        })
    }

    /// Creates profile `bench` with `behaviors` and attaches it to all things.
    async fn create_profile(&self, behaviors: serde_json::Value) -> anyhow::Result<()> {
        let body = serde_json::json!({ "behaviors": behaviors });
        let r = self
            .http
            .post(format!("{}/security-profiles/bench", self.base))
            .json(&body)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("Creating the bench profile failed: {}", r.text().await?);
        }
        let all = "arn%3Aaws%3Aiot%3Aus-east-1%3A000000000000%3Aall%2Fthings";
        let r = self
            .http
            .put(format!(
                "{}/security-profiles/bench/targets?securityProfileTargetArn={all}",
                self.base
            ))
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("Attaching the bench profile failed: {}", r.text().await?);
        }
        Ok(())
    }

    /// Stops the service (flush + roll, untimed) and removes the data directory.
    async fn finish(self) -> anyhow::Result<()> {
        let stopping = Instant::now();
        self.service.shutdown().await?;
        println!(
            "  shutdown           {:.2} s (WAL flush + roll into Parquet, not in the figures)",
            stopping.elapsed().as_secs_f64()
        );
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("Cannot remove {}", self.dir.display()))?;
        Ok(())
    }
}

/// A small deterministic generator (SplitMix64), so every run sends the same load.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

fn thing_name(i: u64) -> String {
    format!("bench-thing-{i:06}")
}

/// The cloud-side metrics of the HTTP load, in the order each thing reports them.
const HTTP_METRICS: [&str; 5] = [
    "aws:num-messages-sent",
    "aws:message-byte-size",
    "aws:num-authorization-failures",
    "aws:num-connection-attempts",
    "aws:num-disconnects",
];

/// Five behaviors over [`HTTP_METRICS`]: static thresholds, consecutive-datapoint alarms and a
/// `durationSeconds` window.
fn http_behaviors() -> serde_json::Value {
    serde_json::json!([
        {"name": "messages-sent", "metric": "aws:num-messages-sent",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 200},
                      "consecutiveDatapointsToAlarm": 2, "consecutiveDatapointsToClear": 2}},
        {"name": "message-size", "metric": "aws:message-byte-size",
         "criteria": {"comparisonOperator": "less-than-equals", "value": {"count": 4096}}},
        {"name": "authz-failures", "metric": "aws:num-authorization-failures",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 5},
                      "durationSeconds": 300}},
        {"name": "connection-attempts", "metric": "aws:num-connection-attempts",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 10}}},
        {"name": "disconnects", "metric": "aws:num-disconnects",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 5},
                      "consecutiveDatapointsToAlarm": 1, "consecutiveDatapointsToClear": 3}}
    ])
}

/// One batch body: datapoints `first..first + size` of the load, each thing reporting the five
/// metrics in turn. About 1 % of the values break their behavior.
fn http_batch(first: u64, size: usize, things: u64, rng: &mut SplitMix) -> Vec<u8> {
    let mut body = String::with_capacity(size * 110 + 32);
    body.push_str("{\"datapoints\":[");
    for k in 0..size as u64 {
        let i = first + k;
        let thing = thing_name((i / HTTP_METRICS.len() as u64) % things.max(1));
        let metric_index = (i % HTTP_METRICS.len() as u64) as usize;
        let count = match metric_index {
            0 if rng.chance(10) => rng.range(200, 1000),
            0 => rng.range(0, 100),
            1 if rng.chance(10) => rng.range(4097, 20_000),
            1 => rng.range(100, 2000),
            2 if rng.chance(5) => rng.range(5, 20),
            3 => rng.range(0, 4),
            4 if rng.chance(5) => 10,
            _ => rng.range(0, 2),
        };
        if k > 0 {
            body.push(',');
        }
        let _ = write!(
            body,
            "{{\"thingName\":\"{thing}\",\"metric\":\"{}\",\"value\":{{\"count\":{count}}}",
            HTTP_METRICS[metric_index]
        );
        if metric_index == 0 {
            let _ = write!(body, ",\"topic\":\"fleet/{thing}/telemetry\"");
        }
        body.push('}');
    }
    body.push_str("]}");
    body.into_bytes()
}

/// At most this many distinct batch bodies are pre-encoded; the load cycles through them.
const DISTINCT_BATCHES: u64 = 64;

async fn ingest_http(args: HttpArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 || args.clients == 0 || args.things == 0 {
        bail!("--batch-size, --clients and --things must be positive");
    }
    let target = Target::start(None).await?;
    target.create_profile(http_behaviors()).await?;

    let batch_size = args.batch_size as u64;
    let batches_total = args.datapoints.div_ceil(batch_size);
    let mut rng = SplitMix(42);
    let bodies: Arc<Vec<axum::body::Bytes>> = Arc::new(
        (0..batches_total.clamp(1, DISTINCT_BATCHES))
            .map(|b| {
                axum::body::Bytes::from(http_batch(
                    b * batch_size,
                    args.batch_size,
                    args.things,
                    &mut rng,
                ))
            })
            .collect(),
    );
    let url = format!("{}/thingward/v1/metrics", target.base);
    let claimed = Arc::new(AtomicU64::new(0));
    let before = target.service.detect().stage_times();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.clients {
        let bodies = Arc::clone(&bodies);
        let claimed = Arc::clone(&claimed);
        let url = url.clone();
        let http = reqwest::Client::new();
        clients.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let b = claimed.fetch_add(1, Ordering::Relaxed);
                if b >= batches_total || Instant::now() >= deadline {
                    return Ok::<_, anyhow::Error>(tally);
                }
                let body = bodies[(b % bodies.len() as u64) as usize].clone();
                let sent = Instant::now();
                let r = http.post(&url).body(body).send().await?;
                let status = r.status();
                let text = r.bytes().await?;
                tally.latencies.push(sent.elapsed());
                if !status.is_success() {
                    bail!(
                        "A batch was refused ({status}): {}",
                        String::from_utf8_lossy(&text)
                    );
                }
                let reply: BatchReply = serde_json::from_slice(&text)?;
                tally.accepted += reply.accepted;
                tally.violation_events += reply.violation_events;
            }
        });
    }
    let mut tally = Tally::default();
    while let Some(joined) = clients.join_next().await {
        tally.merge(joined??);
    }
    let wall = started.elapsed();
    let stages = target.service.detect().stage_times().since(&before);
    let recorded = count_violation_events(target.service.store()).await?;
    println!(
        "thingward bench ingest-http: {} datapoints sent in batches of {} for {} things by {} clients",
        tally.accepted, args.batch_size, args.things, args.clients
    );
    tally.print(wall, "datapoints", "batch request");
    println!(
        "  violation events   {} reported in replies, {} recorded in the store",
        tally.violation_events, recorded
    );
    print_stages(&stages, wall);
    print_machine();
    target.finish().await
}

/// What the batch endpoint answers.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchReply {
    accepted: u64,
    violation_events: u64,
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Tally {
    accepted: u64,
    rejected: u64,
    violation_events: u64,
    latencies: Vec<Duration>,
}

impl Tally {
    fn merge(&mut self, other: Self) {
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.violation_events += other.violation_events;
        self.latencies.extend(other.latencies);
    }

    fn print(&mut self, wall: Duration, unit: &str, request: &str) {
        self.latencies.sort_unstable();
        let secs = wall.as_secs_f64().max(1e-9);
        println!("  total              {} {unit}", self.accepted);
        println!("  wall time          {secs:.2} s");
        println!(
            "  throughput         {:.0} {unit}/s ({:.0} {request}s/s)",
            self.accepted as f64 / secs,
            self.latencies.len() as f64 / secs
        );
        println!(
            "  latency            p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms per {request}",
            ms(percentile(&self.latencies, 0.50)),
            ms(percentile(&self.latencies, 0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `q` quantile of sorted samples (nearest rank).
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl StageTimes {
    /// The time spent between `earlier` and this snapshot.
    fn since(&self, earlier: &Self) -> Self {
        Self {
            batches: self.batches - earlier.batches,
            decode: self.decode.saturating_sub(earlier.decode),
            lock_wait: self.lock_wait.saturating_sub(earlier.lock_wait),
            score: self.score.saturating_sub(earlier.score),
            wal_append: self.wal_append.saturating_sub(earlier.wal_append),
            violations: self.violations.saturating_sub(earlier.violations),
            durable_wait: self.durable_wait.saturating_sub(earlier.durable_wait),
        }
    }
}

fn print_stages(s: &StageTimes, wall: Duration) {
    let wall_s = wall.as_secs_f64().max(1e-9);
    let per = |d: Duration| {
        format!(
            "{:>7.2} s  {:>5.1} % of wall  {:>8.1} µs/batch",
            d.as_secs_f64(),
            100.0 * d.as_secs_f64() / wall_s,
            d.as_secs_f64() * 1e6 / s.batches.max(1) as f64
        )
    };
    let locked = s.score + s.wal_append + s.violations;
    println!(
        "  where the time goes ({} batches; totals over concurrent requests):",
        s.batches
    );
    println!("    decode + validate  {}", per(s.decode));
    println!("    lock wait          {}", per(s.lock_wait));
    println!("    score              {}  (under the lock)", per(s.score));
    println!(
        "    WAL encode+queue   {}  (under the lock)",
        per(s.wal_append)
    );
    println!(
        "    violations         {}  (under the lock: records; SQLite too before the writer)",
        per(s.violations)
    );
    println!(
        "    lock held          {}  (score + WAL + violations: the serial part)",
        per(locked)
    );
    println!(
        "    durability wait    {}  (outside the lock: WAL fsync, SQLite commit, wake-up)",
        per(s.durable_wait)
    );
}

fn print_machine() {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!(
        "  machine            nproc = {cores}; load generator, service (and broker) share these cores, loopback only"
    );
}

/// Counts the violation events in the store (in-alarm, alarm-cleared, alarm-invalidated).
async fn count_violation_events(store: &Arc<dyn Store>) -> anyhow::Result<usize> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let filter = EventFilter {
            common: Default::default(),
            start_ms: 0,
            end_ms: i64::MAX,
        };
        let page = 10_000;
        let mut total = 0;
        loop {
            let n = store.violation_events(&filter, total, page)?.len();
            total += n;
            if n < page {
                return Ok(total);
            }
        }
    })
    .await?
}

/// Five behaviors over the device-side metrics of [`device_report`].
fn mqtt_behaviors() -> serde_json::Value {
    serde_json::json!([
        {"name": "bytes-out", "metric": "aws:all-bytes-out",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 100_000},
                      "consecutiveDatapointsToAlarm": 2, "consecutiveDatapointsToClear": 2}},
        {"name": "tcp-ports", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [22, 443, 8883]}}},
        {"name": "established", "metric": "aws:num-established-tcp-connections",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 20}}},
        {"name": "destinations", "metric": "aws:destination-ip-addresses",
         "criteria": {"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["10.0.0.0/8"]}}},
        {"name": "packets-in", "metric": "aws:all-packets-in",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 5000},
                      "durationSeconds": 300}}
    ])
}

/// A Device Defender JSON report (10 datapoints); about 1 in 200 breaks a behavior.
fn device_report(report_id: u64, rng: &mut SplitMix) -> String {
    let odd = rng.chance(5);
    let bytes_out = if odd && rng.chance(500) {
        rng.range(100_000, 500_000)
    } else {
        rng.range(1000, 50_000)
    };
    let extra_port = if odd && rng.chance(500) {
        ",{\"port\":23}"
    } else {
        ""
    };
    let remote = if odd && rng.chance(500) {
        "203.0.113.7:443".to_owned()
    } else {
        format!("10.0.{}.{}:443", rng.range(0, 255), rng.range(1, 255))
    };
    format!(
        concat!(
            "{{\"header\":{{\"report_id\":{id},\"version\":\"1.0\"}},\"metrics\":{{",
            "\"network_stats\":{{\"bytes_in\":{bi},\"bytes_out\":{bo},\"packets_in\":{pi},\"packets_out\":{po}}},",
            "\"listening_tcp_ports\":{{\"ports\":[{{\"port\":22}},{{\"port\":8883}}{extra}],\"total\":{tcp_total}}},",
            "\"listening_udp_ports\":{{\"ports\":[{{\"port\":53}}],\"total\":1}},",
            "\"tcp_connections\":{{\"established_connections\":{{\"connections\":[{{\"remote_addr\":\"{remote}\",\"local_port\":50001}}],\"total\":1}}}}",
            "}}}}"
        ),
        id = report_id,
        bi = rng.range(1000, 50_000),
        bo = bytes_out,
        pi = rng.range(10, 400),
        po = rng.range(10, 400),
        extra = extra_port,
        tcp_total = if extra_port.is_empty() { 2 } else { 3 },
        remote = remote,
    )
}

/// The thing whose report proves thingward is subscribed before the load starts.
const PROBE_THING: &str = "bench-probe";

/// A reply on `…/accepted` or `…/rejected`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportReply {
    thing_name: String,
    report_id: Option<u64>,
}

/// Shared between the publishers and the reply counter.
#[derive(Debug)]
struct MqttProgress {
    started: Instant,
    /// Send time of report `i` (nanoseconds since `started`, plus one; 0 = not sent).
    sent_at: Vec<AtomicU64>,
    accepted: AtomicU64,
    rejected: AtomicU64,
    window: Semaphore,
    probe_answered: Notify,
    done: Notify,
    total: AtomicU64,
    latencies: std::sync::Mutex<Vec<Duration>>,
    stop: AtomicBool,
}

fn mqtt_client(url: &str, name: &str) -> anyhow::Result<MqttOptions> {
    let id = format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut opts = crate::mqtt::options(url, &id)?;
    opts.set_manual_acks(false);
    opts.set_inflight(1000);
    opts.set_clean_session(true);
    Ok(opts)
}

/// Polls `eventloop` until the connection is closed, passing each incoming PUBLISH to `on`.
fn drive(
    mut eventloop: rumqttc::EventLoop,
    progress: Arc<MqttProgress>,
    on: Option<fn(&MqttProgress, &rumqttc::Publish)>,
    connected: Arc<Notify>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Some(on) = on {
                        on(&progress, &p);
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_) | Packet::ConnAck(_))) => {
                    connected.notify_one();
                }
                Ok(_) => {}
                Err(e) => {
                    if !progress.stop.load(Ordering::Relaxed) {
                        tracing::warn!(error = %e, "Bench MQTT connection failed");
                    }
                    return;
                }
            }
        }
    })
}

/// Counts one reply: releases a window slot and records the report's latency.
fn on_reply(progress: &MqttProgress, publish: &rumqttc::Publish) {
    let Ok(reply) = serde_json::from_slice::<ReportReply>(&publish.payload) else {
        return;
    };
    if reply.thing_name == PROBE_THING {
        progress.probe_answered.notify_one();
        return;
    }
    if publish.topic.ends_with("/accepted") {
        progress.accepted.fetch_add(1, Ordering::Relaxed);
    } else {
        progress.rejected.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(sent) = reply
        .report_id
        .and_then(|id| progress.sent_at.get(usize::try_from(id).ok()?))
    {
        let sent = sent.load(Ordering::Relaxed);
        if sent > 0 {
            let now = progress.started.elapsed();
            let latency = now.saturating_sub(Duration::from_nanos(sent - 1));
            if let Ok(mut l) = progress.latencies.lock() {
                l.push(latency);
            }
        }
    }
    progress.window.add_permits(1);
    let answered =
        progress.accepted.load(Ordering::Relaxed) + progress.rejected.load(Ordering::Relaxed);
    if answered >= progress.total.load(Ordering::Relaxed) {
        progress.done.notify_one();
    }
}

/// The largest `--reports` (the send-time table holds one slot per report).
const MAX_REPORTS: u64 = 50_000_000;

async fn ingest_mqtt(args: MqttArgs) -> anyhow::Result<()> {
    if args.clients == 0 || args.things == 0 || args.window == 0 {
        bail!("--clients, --things and --window must be positive");
    }
    if args.reports > MAX_REPORTS {
        bail!("--reports must be at most {MAX_REPORTS}");
    }
    let target = Target::start(Some(args.mqtt_url.clone())).await?;
    target.create_profile(mqtt_behaviors()).await?;
    let progress = Arc::new(MqttProgress {
        started: Instant::now(),
        sent_at: (0..args.reports).map(|_| AtomicU64::new(0)).collect(),
        accepted: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        window: Semaphore::new(args.window),
        probe_answered: Notify::new(),
        done: Notify::new(),
        total: AtomicU64::new(args.reports),
        latencies: std::sync::Mutex::new(Vec::with_capacity(args.reports as usize)),
        stop: AtomicBool::new(false),
    });

    // The reply counter subscribes first, then a probe proves thingward is subscribed too.
    let (subscriber, events) = AsyncClient::new(mqtt_client(&args.mqtt_url, "bench-sub")?, 1024);
    let subscribed = Arc::new(Notify::new());
    let mut loops = vec![drive(
        events,
        Arc::clone(&progress),
        Some(on_reply),
        Arc::clone(&subscribed),
    )];
    for suffix in ["accepted", "rejected"] {
        subscriber
            .subscribe(
                format!("$aws/things/+/defender/metrics/json/{suffix}"),
                QoS::AtLeastOnce,
            )
            .await?;
    }
    tokio::time::timeout(Duration::from_secs(10), subscribed.notified())
        .await
        .context("The broker did not answer the bench's subscription within 10 s")?;
    let (prober, events) = AsyncClient::new(mqtt_client(&args.mqtt_url, "bench-probe")?, 16);
    loops.push(drive(
        events,
        Arc::clone(&progress),
        None,
        Arc::new(Notify::new()),
    ));
    let probe_deadline = Instant::now() + Duration::from_secs(15);
    let mut rng = SplitMix(7);
    let mut probe_id = 0;
    loop {
        probe_id += 1;
        prober
            .publish(
                format!("$aws/things/{PROBE_THING}/defender/metrics/json"),
                QoS::AtLeastOnce,
                false,
                device_report(probe_id, &mut rng),
            )
            .await?;
        let answered = tokio::time::timeout(
            Duration::from_millis(250),
            progress.probe_answered.notified(),
        )
        .await;
        if answered.is_ok() {
            break;
        }
        if Instant::now() >= probe_deadline {
            bail!("thingward did not answer a probe report through the broker within 15 s");
        }
    }

    let before = target.service.detect().stage_times();
    let claimed = Arc::new(AtomicU64::new(0));
    let load_started = Instant::now();
    let deadline = load_started + Duration::from_secs(args.max_seconds);
    let mut publishers = tokio::task::JoinSet::new();
    for c in 0..args.clients {
        let (client, events) =
            AsyncClient::new(mqtt_client(&args.mqtt_url, &format!("bench-pub{c}"))?, 1024);
        let connected = Arc::new(Notify::new());
        loops.push(drive(
            events,
            Arc::clone(&progress),
            None,
            Arc::clone(&connected),
        ));
        let progress = Arc::clone(&progress);
        let claimed = Arc::clone(&claimed);
        let (reports, things) = (args.reports, args.things);
        publishers.spawn(async move {
            let mut rng = SplitMix(1000 + c as u64);
            let mut sent = 0u64;
            loop {
                let permit = progress.window.acquire().await?;
                permit.forget();
                let i = claimed.fetch_add(1, Ordering::Relaxed);
                if i >= reports || Instant::now() >= deadline {
                    return Ok::<_, anyhow::Error>((client, sent));
                }
                let thing = thing_name(i % things);
                let payload = device_report(i, &mut rng);
                let at = u64::try_from(progress.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                if let Some(slot) = progress.sent_at.get(i as usize) {
                    slot.store(at.saturating_add(1), Ordering::Relaxed);
                }
                client
                    .publish(
                        format!("$aws/things/{thing}/defender/metrics/json"),
                        QoS::AtLeastOnce,
                        false,
                        payload,
                    )
                    .await?;
                sent += 1;
            }
        });
    }
    let mut sent = 0;
    let mut clients = vec![subscriber, prober];
    while let Some(joined) = publishers.join_next().await {
        let (client, n) = joined??;
        sent += n;
        clients.push(client);
    }
    // Everything is published: wait for the replies (a little past the cap at most).
    progress.total.store(sent, Ordering::Relaxed);
    let answered =
        || progress.accepted.load(Ordering::Relaxed) + progress.rejected.load(Ordering::Relaxed);
    let grace = deadline.max(Instant::now()) + Duration::from_secs(10);
    while answered() < sent && Instant::now() < grace {
        let _ = tokio::time::timeout(Duration::from_millis(100), progress.done.notified()).await;
    }
    let wall = load_started.elapsed();
    let stages = target.service.detect().stage_times().since(&before);

    progress.stop.store(true, Ordering::Relaxed);
    for c in &clients {
        let _ = c.disconnect().await;
    }
    for l in loops {
        let _ = tokio::time::timeout(Duration::from_secs(2), l).await;
    }
    let mut tally = Tally {
        accepted: progress.accepted.load(Ordering::Relaxed),
        rejected: progress.rejected.load(Ordering::Relaxed),
        violation_events: 0,
        latencies: progress
            .latencies
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default(),
    };
    let recorded = count_violation_events(target.service.store()).await?;
    println!(
        "thingward bench ingest-mqtt: {sent} reports published (QoS 1) for {} things by {} publishers via {}",
        args.things, args.clients, args.mqtt_url
    );
    tally.print(wall, "reports", "report");
    println!(
        "  replies            {} accepted, {} rejected, {} missing",
        tally.accepted,
        tally.rejected,
        sent.saturating_sub(tally.accepted + tally.rejected)
    );
    println!("  violation events   {recorded} recorded in the store");
    print_stages(&stages, wall);
    print_machine();
    target.finish().await
}
