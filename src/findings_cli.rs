//! `thingward findings export`: the outbox's violation events and audit findings since a time,
//! as OCSF Detection Findings or ASFF findings, a JSON array or JSON lines, on stdout. Reads
//! the data directory's metadata store directly (the server may be running: SQLite WAL).

use crate::feed::format::{self, Origin};
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;
use thingward_store::prelude::*;
use thingward_store::{OutboxKind, SqliteStore};

/// Events read per step (the export streams: memory stays bounded).
const PAGE: usize = 1000;

/// `thingward findings …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum FindingsCommand {
    /// Write findings in a security-hub format to stdout.
    Export(ExportArgs),
}

/// The output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportFormat {
    /// OCSF Detection Finding (class 2004).
    Ocsf,
    /// AWS Security Finding Format.
    Asff,
}

/// Which events.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ExportKind {
    /// Violation events and audit findings.
    All,
    /// Violation events only.
    Violations,
    /// Audit findings only.
    AuditFindings,
}

/// `thingward findings export` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// Only events that happened at or after this time (ISO-8601, e.g. 2026-12-01T00:00:00Z).
    #[arg(long)]
    since: String,
    /// The data directory.
    #[arg(long, env = "THINGWARD_DATA_DIR", default_value = "./thingward-data")]
    data_dir: PathBuf,
    /// One finding per line instead of a JSON array.
    #[arg(long)]
    jsonl: bool,
    /// Which events.
    #[arg(long, value_enum, default_value = "all")]
    kind: ExportKind,
    /// Region used in ARNs (ASFF).
    #[arg(long, env = "THINGWARD_REGION", default_value = "us-east-1")]
    region: String,
    /// Account id used in ARNs (ASFF).
    #[arg(long, env = "THINGWARD_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
}

/// Runs a findings command.
///
/// # Errors
/// A bad `--since`, a missing store, a write failure.
pub(crate) fn run(cmd: FindingsCommand) -> anyhow::Result<()> {
    let FindingsCommand::Export(args) = cmd;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    export(&args, &mut out)?;
    out.flush()?;
    Ok(())
}

/// Writes the export of `args` to `out`.
///
/// # Errors
/// See [`run`].
pub(crate) fn export(args: &ExportArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let since = thingward_models::time::parse_query_timestamp(&args.since)
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let path = args.data_dir.join("thingward.db");
    anyhow::ensure!(
        path.exists(),
        "No thingward metadata store at {}",
        path.display()
    );
    let store = SqliteStore::open(&path).context("Cannot open the metadata store")?;
    let origin = Origin {
        region: args.region.clone(),
        account: args.account_id.clone(),
        external_url: String::new(),
    };
    let kind = match args.kind {
        ExportKind::All => None,
        ExportKind::Violations => Some(OutboxKind::Violation),
        ExportKind::AuditFindings => Some(OutboxKind::AuditFinding),
    };
    let mut after = 0;
    let mut first = true;
    if !args.jsonl {
        out.write_all(b"[")?;
    }
    loop {
        let events = store.outbox_since(kind, since, after, PAGE)?;
        let Some(last) = events.last() else { break };
        after = last.seq;
        for e in &events {
            let finding = match args.format {
                ExportFormat::Ocsf => format::ocsf(e),
                ExportFormat::Asff => format::asff(&origin, e),
            };
            if args.jsonl {
                serde_json::to_writer(&mut *out, &finding)?;
                out.write_all(b"\n")?;
            } else {
                if !first {
                    out.write_all(b",")?;
                }
                out.write_all(b"\n")?;
                serde_json::to_writer(&mut *out, &finding)?;
            }
            first = false;
        }
    }
    if !args.jsonl {
        out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
    }
    Ok(())
}
