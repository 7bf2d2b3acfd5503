//! `thingward serve`: opens the data directory, starts the HTTP API, MQTT ingestion and the
//! background tasks, and shuts down without losing anything acknowledged.

use crate::api::{self, AppState};
use crate::auth::{Authenticator, Credentials};
use crate::detect::{Detect, system_clock};
use crate::store::Store;
use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thingward_history::{History, HistoryOptions};
use tokio::sync::watch;

/// How to run the service (flags and environment; see `thingward serve --help`).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServeArgs {
    /// Where thingward keeps its SQLite metadata, datapoint history and credentials.
    #[arg(long, env = "THINGWARD_DATA_DIR", default_value = "./thingward-data")]
    pub(crate) data_dir: PathBuf,
    /// Address of the HTTP API.
    #[arg(long, env = "THINGWARD_BIND", default_value = "127.0.0.1:8080")]
    pub(crate) bind: SocketAddr,
    /// MQTT broker to take device reports from, e.g. mqtt://127.0.0.1:1883 (none by default).
    #[arg(long, env = "THINGWARD_MQTT_URL")]
    pub(crate) mqtt_url: Option<String>,
    /// Accept unauthenticated API requests (local play only).
    #[arg(long)]
    pub(crate) insecure_no_auth: bool,
    /// Region used in ARNs and in the printed AWS CLI profile.
    #[arg(long, env = "THINGWARD_REGION", default_value = "us-east-1")]
    pub(crate) region: String,
    /// Account id used in ARNs.
    #[arg(long, env = "THINGWARD_ACCOUNT_ID", default_value = "000000000000")]
    pub(crate) account_id: String,
    /// Largest device report accepted, in bytes (AWS IoT's MQTT limit is 128 KiB).
    #[arg(long, default_value_t = 128 * 1024)]
    pub(crate) max_report_bytes: usize,
    /// Largest HTTP request body accepted, in bytes (batches).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub(crate) max_body_bytes: usize,
    /// How often the history write-ahead log is rolled into Parquet partitions, in seconds.
    #[arg(long, default_value_t = 300)]
    pub(crate) roll_interval_seconds: u64,
}

/// Runs the service until SIGINT or SIGTERM.
///
/// # Errors
/// Start-up failures (data dir, port in use, bad MQTT URL); runtime errors are logged.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir).with_context(|| {
        format!(
            "Cannot create the data directory {}",
            args.data_dir.display()
        )
    })?;
    let (creds, created) =
        Credentials::load_or_create(&args.data_dir).context("Cannot load credentials")?;
    let creds = creds.with_env(|k| std::env::var(k).ok());
    let store = Arc::new(
        Store::open(&args.data_dir.join("thingward.db"))
            .context("Cannot open the metadata store")?,
    );
    let history = Arc::new(
        History::open(&args.data_dir.join("history"), HistoryOptions::default())
            .context("Cannot open the datapoint history")?,
    );
    let detect = Arc::new(Detect::open(
        Arc::clone(&store),
        Arc::clone(&history),
        system_clock(),
    )?);
    let mqtt_opts = args
        .mqtt_url
        .as_deref()
        .map(|url| crate::mqtt::options(url, &crate::mqtt::client_id()))
        .transpose()?;

    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("Cannot listen on {}", args.bind))?;
    let local = listener.local_addr()?;
    let endpoint = format!("http://{local}");
    if created && !args.insecure_no_auth {
        println!(
            "{}",
            creds.first_start_instructions(&endpoint, &args.region)
        );
    }
    let auth = Arc::new(Authenticator::new(
        creds,
        args.insecure_no_auth,
        args.max_body_bytes,
    ));
    let state = AppState {
        store,
        detect: Arc::clone(&detect),
        history: Arc::clone(&history),
        region: args.region.as_str().into(),
        account: args.account_id.as_str().into(),
        max_report_bytes: args.max_report_bytes,
    };
    let app = api::app(state, auth, args.max_body_bytes);

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(opts) = mqtt_opts {
        tasks.spawn(crate::mqtt::run(
            opts,
            Arc::clone(&detect),
            args.max_report_bytes,
            stop_rx.clone(),
        ));
    }
    tasks.spawn(background(
        Arc::clone(&detect),
        Arc::clone(&history),
        args.roll_interval_seconds,
        stop_rx.clone(),
    ));

    tracing::info!(%endpoint, data_dir = %args.data_dir.display(), mqtt = ?args.mqtt_url, "thingward is serving");
    println!("thingward listening on {endpoint}");
    let mut http_stop = stop_rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = http_stop.changed().await;
    });
    let server = tokio::spawn(async move { server.await });
    shutdown_signal().await;
    tracing::info!("Shutting down: finishing in-flight requests");
    let _ = stop_tx.send(true);
    let _ = server.await;
    while tasks.join_next().await.is_some() {}
    let history_for_close = Arc::clone(&history);
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        history_for_close
            .close()
            .context("Cannot flush the history")?;
        history_for_close
            .roll()
            .context("Cannot roll the history into Parquet")?;
        Ok(())
    })
    .await??;
    tracing::info!("Stopped cleanly");
    Ok(())
}

/// Periodic work: roll the WAL into Parquet, invalidate alarms of silent things.
async fn background(
    detect: Arc<Detect>,
    history: Arc<History>,
    roll_seconds: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut roll = tokio::time::interval(Duration::from_secs(roll_seconds.max(1)));
    let mut sweep = tokio::time::interval(Duration::from_secs(60));
    roll.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = roll.tick() => {
                let h = Arc::clone(&history);
                match tokio::task::spawn_blocking(move || h.roll()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "Rolling the history failed; will retry"),
                    Err(e) => tracing::error!(error = %e, "History roll task panicked"),
                }
            }
            _ = sweep.tick() => {
                if let Err(e) = detect.sweep() {
                    tracing::warn!(error = %e, "Invalidating silent alarms failed; will retry");
                }
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
