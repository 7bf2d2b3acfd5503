//! The `thingward` binary: the service (`thingward serve`) and its batch commands.

mod api;
mod audit;
mod audit_cli;
mod auth;
mod bench;
mod clock;
mod data_dir;
mod detect;
mod feed;
mod findings_cli;
mod mitigation;
mod mqtt;
mod periodic;
mod redaction;
mod serve;
mod service;
mod targeting;
mod time_of_day;
mod train;
mod training;

use clap::{Parser, Subcommand};

/// thingward: self-hosted IoT fleet security monitoring, Device Defender compatible.
#[derive(Debug, Parser)]
#[command(name = "thingward", version, about)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. info or thingward=debug.
    #[arg(long, env = "THINGWARD_LOG", default_value = "info", global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service: HTTP API, MQTT ingestion, Rules and ML Detect, Audit, the alarm feed, embedded storage.
    ///
    /// Credentials are generated on first start (`<data-dir>/credentials.json`, mode 0600);
    /// THINGWARD_ACCESS_KEY_ID with THINGWARD_SECRET_ACCESS_KEY, and THINGWARD_API_TOKEN, add
    /// more from the environment. A secret or token given there must be at least 20 characters.
    Serve(serve::ServeArgs),
    /// Benchmarks: ingestion, the alarm feed and audits against an in-process service on loopback; training fits.
    Bench(bench::BenchArgs),
    /// Run a detector over the NAB corpus and score it with NAB's rules.
    Nab(thingward_eval::nab::NabArgs),
    /// Write a synthetic fleet (datapoints as history Parquet, labels.json) from a scenario.
    Generate(thingward_eval::generate::GenerateArgs),
    /// Score detectors on a labelled fleet (a scenario, or recorded data with labels).
    Eval(thingward_eval::fleet::EvalArgs),
    /// Run ML Detect training on a data directory now, outside the server.
    Train(train::TrainArgs),
    /// Export alarm-feed findings (OCSF, ASFF) from a data directory.
    #[command(subcommand)]
    Findings(findings_cli::FindingsCommand),
    /// Audit the certificates, policies and broker files an audit config names, now.
    Audit(audit_cli::AuditArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
        Command::Bench(args) => runtime.block_on(bench::run(args)),
        Command::Nab(args) => thingward_eval::nab::run(args),
        Command::Generate(args) => thingward_eval::generate::run(args),
        Command::Eval(args) => thingward_eval::fleet::run(args),
        Command::Train(args) => train::run(args),
        Command::Findings(cmd) => findings_cli::run(cmd),
        Command::Audit(args) => audit_cli::run(args),
    }
}
