//! `thingward train`: the nightly ML Detect training job, run now on a data directory outside
//! the server (same index, same artifacts, same lifecycle). The server must not be running on
//! that directory: the history's lock says whether it is.

use crate::training::{BehaviorRun, Models, Progress, RunScope, Training};
use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Arc;
use thingward_history::{History, HistoryOptions};
use thingward_models::time::EpochMillis;
use thingward_store::{SqliteStore, Store};

/// Options of `thingward train`.
#[derive(Debug, clap::Args)]
pub(crate) struct TrainArgs {
    /// The data directory (as `thingward serve --data-dir`).
    #[arg(long, env = "THINGWARD_DATA_DIR", default_value = "./thingward-data")]
    data_dir: PathBuf,
    /// Only this security profile's ML behaviors.
    #[arg(long)]
    profile: Option<String>,
    /// Train as of this time: YYYY-MM-DD (the end of that UTC day) or RFC 3339. Default: now.
    #[arg(long, value_parser = parse_as_of)]
    as_of: Option<EpochMillis>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// `YYYY-MM-DD` → the end of that UTC day (the window holds the day); or an RFC 3339 time.
fn parse_as_of(s: &str) -> Result<EpochMillis, String> {
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let next = day
            .succ_opt()
            .ok_or_else(|| format!("'{s}' is out of range"))?;
        return Ok(next
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .map_err(|_| format!("'{s}' is neither YYYY-MM-DD nor an RFC 3339 time"))
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, n: usize) {
        self.0.set_length(n as u64);
    }

    fn done(&self, run: &BehaviorRun) {
        self.0.set_message(format!(
            "{}/{}",
            run.security_profile_name, run.behavior_name
        ));
        self.0.inc(1);
    }
}

/// Runs training and prints what it did.
///
/// # Errors
/// The data directory is in use by a server, missing, or unreadable; the store failed.
pub(crate) fn run(args: TrainArgs) -> anyhow::Result<()> {
    let db = args.data_dir.join("thingward.db");
    if !db.exists() {
        bail!(
            "{} holds no thingward metadata store (thingward.db); is it a data directory?",
            args.data_dir.display()
        );
    }
    let history = match History::open(&args.data_dir.join("history"), HistoryOptions::default()) {
        Ok(h) => Arc::new(h),
        Err(thingward_history::Error::Locked { .. }) => bail!(
            "{} is in use by a running thingward server; trigger training there instead: POST /thingward/v1/training/run",
            args.data_dir.display()
        ),
        Err(e) => {
            return Err(e).context("Cannot open the datapoint history");
        }
    };
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&db).context("Cannot open the metadata store")?);
    let now = args.as_of.unwrap_or_else(|| Utc::now().timestamp_millis());
    let clock: crate::clock::Clock = Arc::new(move || now);
    let models = Arc::new(Models::new(&args.data_dir));
    let profiles = store.profiles_all()?;
    if let Some(p) = &args.profile
        && !profiles.iter().any(|d| &d.security_profile_name == p)
    {
        bail!("Security profile '{p}' does not exist");
    }
    let definitions: Vec<_> = profiles.iter().collect();
    models
        .sync(&*store, &definitions, now)
        .context("Cannot update the models index")?;
    let training = Training::new(
        Arc::clone(&store),
        Arc::clone(&history),
        models,
        clock,
        crate::training::default_fit_params()?,
    );
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} behaviors {elapsed} {msg}")
            .context("progress bar template")?,
    );
    let scope = RunScope {
        profile: args.profile.clone(),
        due_at: None,
    };
    let report = training
        .run(&scope, &Bar(bar.clone()))
        .context("Training failed")?;
    bar.finish_and_clear();
    drop(training);
    history.close().context("Cannot close the history")?;
    print!("{}", table(&report.behaviors));
    Ok(())
}

/// The report as an aligned text table.
fn table(runs: &[BehaviorRun]) -> String {
    if runs.is_empty() {
        return "No ML behaviors to train.\n".into();
    }
    let header = [
        "PROFILE",
        "BEHAVIOR",
        "OUTCOME",
        "STATUS",
        "VERSION",
        "DATAPOINTS",
        "%",
        "SECONDS",
        "NOTE",
    ];
    let rows: Vec<[String; 9]> = runs
        .iter()
        .map(|r| {
            [
                r.security_profile_name.clone(),
                r.behavior_name.clone(),
                serde_json::to_value(r.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                r.model_status.to_owned(),
                r.model_version.map_or("-".into(), |v| v.to_string()),
                r.datapoints.to_string(),
                format!("{:.1}", r.datapoints_collection_percentage),
                format!("{:.2}", r.seconds),
                r.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let text: Vec<String> = cells.zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_of_takes_a_day_or_a_time() {
        // 2026-01-05 → 2026-01-06T00:00:00Z.
        assert_eq!(parse_as_of("2026-01-05"), Ok(1_767_657_600_000));
        assert_eq!(parse_as_of("2026-01-05T12:00:00Z"), Ok(1_767_614_400_000));
        assert!(parse_as_of("yesterday").is_err());
    }
}
