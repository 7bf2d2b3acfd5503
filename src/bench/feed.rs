//! `thingward bench feed`: alarm-feed delivery under load. An in-process service, a webhook
//! receiver on 127.0.0.1 (CloudEvents batch mode or Alertmanager), and `C` HTTP clients that
//! flip their own things in and out of alarm with every batch (one violation event per
//! datapoint) while scoring goes on. Reports alarm events generated per second, events
//! delivered per second, and the delivery latency (receive time − `violationEventTime`, the
//! datapoint's own timestamp, so it includes ingestion, scoring and the outbox commit).

use super::{Target, ms, percentile, print_machine};
use anyhow::bail;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Options of `thingward bench feed`.
#[derive(Debug, clap::Args)]
pub(crate) struct FeedArgs {
    /// Things per client (each batch flips all of them: one alarm event per datapoint).
    #[arg(long, default_value_t = 500)]
    things: u64,
    /// Concurrent HTTP clients, each with its own things.
    #[arg(long, default_value_t = 2)]
    clients: u64,
    /// Length of the load phase, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events per webhook request.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// The receiver's format: cloudevents (batch mode) or alertmanager.
    #[arg(long, default_value = "cloudevents")]
    format: String,
    /// Alarm events per second to offer, spread over the clients (0: as fast as the service
    /// takes them). Latency is only meaningful at a rate the feed sustains.
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

/// What the receiver measured.
#[derive(Debug, Default)]
struct Received {
    events: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The event times (epoch ms) in a delivered payload.
fn event_times(body: &serde_json::Value) -> Vec<i64> {
    let from_iso = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .ok()
    };
    match body {
        // CloudEvents batch: [{time, …}]
        serde_json::Value::Array(events) => events
            .iter()
            .filter_map(|e| e["time"].as_str().and_then(from_iso))
            .collect(),
        // Alertmanager: {alerts: [{startsAt | endsAt}]}
        _ => body["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let t = if a["status"] == "resolved" {
                    &a["endsAt"]
                } else {
                    &a["startsAt"]
                };
                t.as_str().and_then(from_iso)
            })
            .collect(),
    }
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Arc<Received>>,
    body: axum::body::Bytes,
) -> &'static str {
    let at = Instant::now();
    let now = now_ms();
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return "not json";
    };
    let times = event_times(&body);
    r.events.fetch_add(times.len() as u64, Ordering::Relaxed);
    if let Ok(mut l) = r.latencies.lock() {
        l.extend(
            times
                .iter()
                .map(|t| Duration::from_millis(u64::try_from(now - t).unwrap_or(0))),
        );
    }
    if let Ok(mut f) = r.first.lock() {
        f.get_or_insert(at);
    }
    if let Ok(mut l) = r.last.lock() {
        *l = Some(at);
    }
    "ok"
}

/// A batch flipping things `first..first + n` to `count` at the current time.
fn flip_batch(first: u64, n: u64, count: u64) -> Vec<u8> {
    let ts = now_ms() as f64 / 1000.0;
    let datapoints: Vec<serde_json::Value> = (first..first + n)
        .map(|i| {
            serde_json::json!({ "thingName": format!("feed-{i}"), "metric": "aws:num-listening-tcp-ports",
                "value": { "count": count }, "timestamp": ts })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "datapoints": datapoints })).unwrap_or_default()
}

/// Runs the feed bench.
///
/// # Errors
/// Start-up failures or a refused request.
pub(crate) async fn run(args: FeedArgs) -> anyhow::Result<()> {
    if args.things == 0 || args.clients == 0 || args.batch_size == 0 {
        bail!("--things, --clients and --batch-size must be positive");
    }
    let received = Arc::new(Received::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(Arc::clone(&received));
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await });

    let target = Target::start(None).await?;
    target
        .create_profile(
            serde_json::json!([{ "name": "few-ports", "metric": "aws:num-listening-tcp-ports",
            "criteria": { "comparisonOperator": "less-than", "value": { "count": 5 } } }]),
        )
        .await?;
    let destination = match args.format.as_str() {
        "cloudevents" => serde_json::json!({ "type": "cloudevents", "batchMode": true }),
        "alertmanager" => serde_json::json!({ "type": "alertmanager" }),
        other => bail!("--format must be cloudevents or alertmanager, got {other}"),
    };
    let mut destination = destination;
    destination["url"] = hook.into();
    destination["allProfiles"] = true.into();
    destination["batchSize"] = args.batch_size.into();
    let r = target
        .http
        .put(format!("{}/thingward/v1/destinations/bench", target.base))
        .json(&destination)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("Creating the destination failed: {}", r.text().await?);
    }

    let url = format!("{}/thingward/v1/metrics", target.base);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..args.clients {
        let url = url.clone();
        let http = reqwest::Client::new();
        let things = args.things;
        // Each client sends one batch of `things` events per period.
        let period = (args.rate > 0)
            .then(|| Duration::from_secs_f64((things * args.clients) as f64 / args.rate as f64));
        clients.spawn(async move {
            let mut round = 0u64;
            let mut acks = Vec::new();
            while Instant::now() < deadline {
                if let Some(period) = period {
                    let due = started + period.mul_f64(round as f64);
                    tokio::time::sleep_until(due.into()).await;
                }
                let count = if round.is_multiple_of(2) { 9 } else { 1 };
                let sent = Instant::now();
                let r = http
                    .post(&url)
                    .body(flip_batch(c * things, things, count))
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("A batch was refused: {}", r.text().await?);
                }
                acks.push(sent.elapsed());
                round += 1;
            }
            Ok::<_, anyhow::Error>((round, acks))
        });
    }
    let mut batches = 0;
    let mut acks = Vec::new();
    while let Some(joined) = clients.join_next().await {
        let (rounds, latencies) = joined??;
        batches += rounds;
        acks.extend(latencies);
    }
    acks.sort_unstable();
    let load = started.elapsed();
    let generated = target.service.store().outbox_last_seq()?;
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    while received.events.load(Ordering::Relaxed) < u64::try_from(generated).unwrap_or(0)
        && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = received.events.load(Ordering::Relaxed);
    let last = received
        .last
        .lock()
        .ok()
        .and_then(|l| *l)
        .unwrap_or(started);
    let span = last.duration_since(started).as_secs_f64().max(1e-9);
    let mut latencies = received
        .latencies
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    println!(
        "thingward bench feed: {} clients × {} things flipping in and out of alarm, {} format, batches of {}, offered rate {}",
        args.clients,
        args.things,
        args.format,
        args.batch_size,
        if args.rate > 0 {
            format!("{}/s", args.rate)
        } else {
            "unlimited".into()
        }
    );
    println!(
        "  load phase         {:.2} s, {batches} ingestion batches",
        load.as_secs_f64()
    );
    println!(
        "  alarm events       {generated} generated ({:.0}/s during the load phase)",
        generated as f64 / load.as_secs_f64().max(1e-9)
    );
    println!(
        "  delivered          {delivered} ({:.0}/s from the start to the last delivery)",
        delivered as f64 / span
    );
    println!(
        "  ingestion ack      p50 {:.1} ms, p99 {:.1} ms per batch (durable: WAL fsync + violation and outbox commit)",
        ms(percentile(&acks, 0.50)),
        ms(percentile(&acks, 0.99)),
    );
    println!(
        "  delivery latency   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (receive − violationEventTime)",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    print_machine();
    receiver.abort();
    target.finish().await
}
