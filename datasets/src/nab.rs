//! The Numenta Anomaly Benchmark corpus: series and labelled windows, read from a directory.
//!
//! The layout is NAB's own (`numenta/NAB`, v1.1), which is what `shared/datasets/nab` holds:
//!
//! ```text
//! <dir>/data/<category>/<file>.csv        timestamp,value   one series per file
//! <dir>/labels/combined_windows.json      {"<category>/<file>.csv": [[start, end], ...]}
//! ```
//!
//! Timestamps are naive date-times (`2014-04-10 07:15:00`, labels add `.000000`) read as UTC.
//! The windows are taken as given: NAB computed them from the labelled points (10 % of the rows
//! per file, split between its anomalies); scoring only needs their end points.
//!
//! Rows are kept in file order. Some NAB files repeat a timestamp (a daylight-saving hour folded
//! onto itself) or step back once; NAB's scorer works on row positions and tolerates that, so the
//! loader does too. What it rejects, naming the file and line: a missing header, a row without
//! exactly two fields, a timestamp or value that does not parse, a non-finite value, a series with
//! no entry in the labels (or the reverse), and a window whose end points are not rows of its
//! series.
//!
//! The corpus itself is never copied into the repository: callers pass the directory.

use chrono::NaiveDateTime;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use thingward_models::time::EpochMillis;

/// The data folder, relative to the corpus directory.
pub const DATA_DIR: &str = "data";
/// The window labels, relative to the corpus directory.
pub const WINDOWS_FILE: &str = "labels/combined_windows.json";
/// The environment variable tests and tools consult for the corpus directory.
pub const DIR_ENV: &str = "THINGWARD_NAB_DIR";

/// The whole corpus: every series with its windows, sorted by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// The series, sorted by [`Series::name`].
    pub series: Vec<Series>,
}

impl Corpus {
    /// Rows over all series.
    pub fn rows(&self) -> usize {
        self.series.iter().map(Series::len).sum()
    }

    /// Labelled windows over all series.
    pub fn windows(&self) -> usize {
        self.series.iter().map(|s| s.windows.len()).sum()
    }
}

/// One NAB series (one data file) and its labelled anomaly windows.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `<category>/<file>.csv`, the key NAB's label files use.
    pub name: String,
    /// Row timestamps, in file order (not necessarily strictly increasing, see the module docs).
    pub timestamps: Vec<EpochMillis>,
    /// Row values, parallel to `timestamps`.
    pub values: Vec<f64>,
    /// The labelled windows, in label-file order.
    pub windows: Vec<Window>,
}

impl Series {
    /// The category: the name's folder (`realTweets`), or "" for a name without one.
    pub fn category(&self) -> &str {
        self.name
            .split_once('/')
            .map_or("", |(category, _)| category)
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the series has no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A labelled anomaly window: the rows from the one at `start` to the one at `end`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The timestamp of the window's first row.
    pub start: EpochMillis,
    /// The timestamp of the window's last row.
    pub end: EpochMillis,
}

/// Why the corpus could not be loaded. Each names the file (and line) at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The label file is not the expected JSON shape.
    #[error("{}: not a map of series name to [start, end] windows: {source}", path.display())]
    Labels {
        /// The label file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The first line of a data file is not `timestamp,value`.
    #[error("{}:1: expected the header 'timestamp,value', found '{found}'", path.display())]
    Header {
        /// The data file.
        path: PathBuf,
        /// The first line (truncated to 64 characters).
        found: String,
    },
    /// A data row is malformed.
    #[error("{}:{line}: {problem}", path.display())]
    Row {
        /// The data file.
        path: PathBuf,
        /// The 1-based line number (the header is line 1).
        line: usize,
        /// What is wrong with it.
        problem: RowProblem,
    },
    /// A data file has no entry in the label file.
    #[error("{}: series '{name}' has no entry in {}", path.display(), labels.display())]
    Unlabelled {
        /// The data file.
        path: PathBuf,
        /// Its series name.
        name: String,
        /// The label file.
        labels: PathBuf,
    },
    /// The label file names a series that has no data file.
    #[error("{}: series '{name}' has no data file", labels.display())]
    MissingSeries {
        /// The label file.
        labels: PathBuf,
        /// The series name.
        name: String,
    },
    /// A labelled window does not fit its series.
    #[error("{}: window {index} of '{name}': {problem}", labels.display())]
    Window {
        /// The label file.
        labels: PathBuf,
        /// The series name.
        name: String,
        /// The window's 0-based position in the series' list.
        index: usize,
        /// What is wrong with it.
        problem: WindowProblem,
    },
    /// The data folder holds no series.
    #[error("{}: no data files (expected data/<category>/<file>.csv)", path.display())]
    Empty {
        /// The corpus directory.
        path: PathBuf,
    },
}

/// What is wrong with a data row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowProblem {
    /// The row does not have exactly two comma-separated fields.
    FieldCount {
        /// How many it has.
        found: usize,
    },
    /// The timestamp does not parse as `YYYY-MM-DD HH:MM:SS[.ffffff]`.
    Timestamp {
        /// The field (truncated to 64 characters).
        text: String,
    },
    /// The value does not parse as a number, or is not finite.
    Value {
        /// The field (truncated to 64 characters).
        text: String,
    },
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FieldCount { found } => {
                write!(f, "expected 2 fields (timestamp,value), found {found}")
            }
            Self::Timestamp { text } => {
                write!(f, "timestamp '{text}' is not YYYY-MM-DD HH:MM:SS[.ffffff]")
            }
            Self::Value { text } => write!(f, "value '{text}' is not a finite number"),
        }
    }
}

/// What is wrong with a labelled window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowProblem {
    /// An end point does not parse as a timestamp.
    Timestamp {
        /// The text (truncated to 64 characters).
        text: String,
    },
    /// The window ends before it starts.
    Reversed,
    /// No row of the series has the window's start timestamp.
    StartNotInSeries,
    /// No row of the series has the window's end timestamp.
    EndNotInSeries,
}

impl fmt::Display for WindowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timestamp { text } => write!(f, "'{text}' is not a timestamp"),
            Self::Reversed => f.write_str("it ends before it starts"),
            Self::StartNotInSeries => f.write_str("no row has its start timestamp"),
            Self::EndNotInSeries => f.write_str("no row has its end timestamp"),
        }
    }
}

/// Loads every series under `<dir>/data` and its windows from `<dir>/labels/combined_windows.json`.
///
/// # Errors
/// Returns the first problem found, naming its file and, for data rows, its line; see [`Error`].
pub fn load(dir: &Path) -> Result<Corpus, Error> {
    let labels_path = dir.join(WINDOWS_FILE);
    let labels_text = read(&labels_path)?;
    let labels: BTreeMap<String, Vec<[String; 2]>> =
        serde_json::from_str(&labels_text).map_err(|source| Error::Labels {
            path: labels_path.clone(),
            source,
        })?;

    let mut series = Vec::new();
    for (name, path) in data_files(&dir.join(DATA_DIR))? {
        let Some(raw_windows) = labels.get(&name) else {
            return Err(Error::Unlabelled {
                path,
                name,
                labels: labels_path,
            });
        };
        let (timestamps, values) = parse_csv(&path, &read(&path)?)?;
        let windows = resolve_windows(&labels_path, &name, raw_windows, &timestamps)?;
        series.push(Series {
            name,
            timestamps,
            values,
            windows,
        });
    }
    if series.is_empty() {
        return Err(Error::Empty {
            path: dir.to_path_buf(),
        });
    }
    let known: HashSet<&str> = series.iter().map(|s| s.name.as_str()).collect();
    if let Some(name) = labels.keys().find(|n| !known.contains(n.as_str())) {
        return Err(Error::MissingSeries {
            labels: labels_path,
            name: name.clone(),
        });
    }
    series.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Corpus { series })
}

/// Parses the text of one NAB data file (`timestamp,value` header, then one row per line).
///
/// Blank lines are skipped; `path` only names the file in errors.
///
/// # Errors
/// [`Error::Header`] for a missing header, [`Error::Row`] for the first malformed row.
pub fn parse_csv(path: &Path, text: &str) -> Result<(Vec<EpochMillis>, Vec<f64>), Error> {
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    let header = lines.next().unwrap_or("").trim_start_matches('\u{feff}');
    if header.trim() != "timestamp,value" {
        return Err(Error::Header {
            path: path.to_path_buf(),
            found: truncate(header),
        });
    }
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row_error = |problem| Error::Row {
            path: path.to_path_buf(),
            line: i + 2,
            problem,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [ts, value] = fields[..] else {
            return Err(row_error(RowProblem::FieldCount {
                found: fields.len(),
            }));
        };
        let ts = parse_timestamp(ts)
            .ok_or_else(|| row_error(RowProblem::Timestamp { text: truncate(ts) }))?;
        let value = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                row_error(RowProblem::Value {
                    text: truncate(value),
                })
            })?;
        timestamps.push(ts);
        values.push(value);
    }
    Ok((timestamps, values))
}

/// Parses a NAB timestamp (`2014-04-10 07:15:00`, optionally with a fraction, or with `T`
/// instead of the space) as UTC.
pub fn parse_timestamp(text: &str) -> Option<EpochMillis> {
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text.trim(), format).ok())
        .map(|t| t.and_utc().timestamp_millis())
}

/// The `<category>/<file>.csv` files under `data`, as (series name, path).
fn data_files(data: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let mut files = Vec::new();
    for category in read_dir(data)? {
        if !category.is_dir() {
            continue;
        }
        let Some(category_name) = category.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        for file in read_dir(&category)? {
            let Some(file_name) = file.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if file.is_file() && file_name.ends_with(".csv") {
                files.push((format!("{category_name}/{file_name}"), file.clone()));
            }
        }
    }
    files.sort();
    Ok(files)
}

fn resolve_windows(
    labels: &Path,
    name: &str,
    raw: &[[String; 2]],
    timestamps: &[EpochMillis],
) -> Result<Vec<Window>, Error> {
    let present: HashSet<EpochMillis> = timestamps.iter().copied().collect();
    raw.iter()
        .enumerate()
        .map(|(index, [start, end])| {
            let window_error = |problem| Error::Window {
                labels: labels.to_path_buf(),
                name: name.to_owned(),
                index,
                problem,
            };
            let parse = |text: &str| {
                parse_timestamp(text).ok_or_else(|| {
                    window_error(WindowProblem::Timestamp {
                        text: truncate(text),
                    })
                })
            };
            let window = Window {
                start: parse(start)?,
                end: parse(end)?,
            };
            if window.end < window.start {
                Err(window_error(WindowProblem::Reversed))
            } else if !present.contains(&window.start) {
                Err(window_error(WindowProblem::StartNotInSeries))
            } else if !present.contains(&window.end) {
                Err(window_error(WindowProblem::EndNotInSeries))
            } else {
                Ok(window)
            }
        })
        .collect()
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_dir(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::read_dir(path)
        .map_err(io_error)?
        .map(|entry| entry.map(|e| e.path()).map_err(io_error))
        .collect()
}

fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Writes a corpus of the given files (`"category/file.csv"`, contents) and label JSON.
    fn corpus_dir(files: &[(&str, &str)], windows_json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(DATA_DIR).join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let labels = dir.path().join(WINDOWS_FILE);
        fs::create_dir_all(labels.parent().unwrap()).unwrap();
        fs::write(labels, windows_json).unwrap();
        dir
    }

    const GOOD: &str = "timestamp,value\n\
        2014-04-01 00:00:00,1\n\
        2014-04-01 00:05:00,2.5\n\
        2014-04-01 00:10:00,-3e2\n";

    #[test]
    fn loads_series_and_windows() {
        let dir = corpus_dir(
            &[("catB/b.csv", GOOD), ("catA/a.csv", GOOD)],
            r#"{"catA/a.csv": [], "catB/b.csv": [["2014-04-01 00:05:00.000000", "2014-04-01 00:10:00.000000"]]}"#,
        );
        let corpus = load(dir.path()).unwrap();
        assert_eq!(corpus.series.len(), 2);
        assert_eq!((corpus.rows(), corpus.windows()), (6, 1));
        let [a, b] = &corpus.series[..] else {
            panic!("two series")
        };
        assert_eq!((a.name.as_str(), a.category()), ("catA/a.csv", "catA"));
        assert_eq!(a.values, [1.0, 2.5, -300.0]);
        let t0 = parse_timestamp("2014-04-01 00:00:00").unwrap();
        assert_eq!(t0, 1_396_310_400_000);
        assert_eq!(a.timestamps, [t0, t0 + 300_000, t0 + 600_000]);
        assert!(a.windows.is_empty());
        assert_eq!(
            b.windows,
            [Window {
                start: t0 + 300_000,
                end: t0 + 600_000
            }]
        );
    }

    #[test]
    fn malformed_row_names_file_and_line() {
        let bad = "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n";
        let dir = corpus_dir(&[("cat/bad.csv", bad)], r#"{"cat/bad.csv": []}"#);
        let err = load(dir.path()).unwrap_err();
        let Error::Row {
            path,
            line,
            problem,
        } = &err
        else {
            panic!("expected a row error, got {err}")
        };
        assert!(path.ends_with("data/cat/bad.csv"));
        assert_eq!(*line, 3);
        assert_eq!(*problem, RowProblem::Value { text: "abc".into() });
        let message = err.to_string();
        assert!(
            message.contains("bad.csv:3: value 'abc' is not a finite number"),
            "{message}"
        );
    }

    #[test]
    fn row_problems() {
        let path = Path::new("x.csv");
        let line2 = |row: &str| parse_csv(path, &format!("timestamp,value\n{row}\n")).unwrap_err();
        assert!(matches!(
            line2("2014-04-01 00:00:00,1,2"),
            Error::Row {
                line: 2,
                problem: RowProblem::FieldCount { found: 3 },
                ..
            }
        ));
        assert!(matches!(
            line2("yesterday,1"),
            Error::Row {
                line: 2,
                problem: RowProblem::Timestamp { .. },
                ..
            }
        ));
        assert!(matches!(
            line2("2014-04-01 00:00:00,NaN"),
            Error::Row {
                line: 2,
                problem: RowProblem::Value { .. },
                ..
            }
        ));
        assert!(matches!(
            parse_csv(path, "time,value\n"),
            Err(Error::Header { .. })
        ));
        // CRLF line ends, a byte-order mark and blank lines are tolerated.
        let (ts, values) = parse_csv(
            path,
            "\u{feff}timestamp,value\r\n2014-04-01 00:00:00,7\r\n\r\n",
        )
        .unwrap();
        assert_eq!((ts.len(), values), (1, vec![7.0]));
    }

    #[test]
    fn label_problems() {
        let files = [("cat/a.csv", GOOD)];
        let unlabelled = corpus_dir(&files, r#"{}"#);
        assert!(matches!(
            load(unlabelled.path()),
            Err(Error::Unlabelled { name, .. }) if name == "cat/a.csv"
        ));
        let extra = corpus_dir(&files, r#"{"cat/a.csv": [], "cat/gone.csv": []}"#);
        assert!(matches!(
            load(extra.path()),
            Err(Error::MissingSeries { name, .. }) if name == "cat/gone.csv"
        ));
        let off_grid = corpus_dir(
            &files,
            r#"{"cat/a.csv": [["2014-04-01 00:01:00", "2014-04-01 00:10:00"]]}"#,
        );
        assert!(matches!(
            load(off_grid.path()),
            Err(Error::Window {
                index: 0,
                problem: WindowProblem::StartNotInSeries,
                ..
            })
        ));
        let reversed = corpus_dir(
            &files,
            r#"{"cat/a.csv": [["2014-04-01 00:10:00", "2014-04-01 00:05:00"]]}"#,
        );
        assert!(matches!(
            load(reversed.path()),
            Err(Error::Window {
                problem: WindowProblem::Reversed,
                ..
            })
        ));
        let not_json = corpus_dir(&files, r#"{"cat/a.csv": "#);
        assert!(matches!(load(not_json.path()), Err(Error::Labels { .. })));
        let missing = tempfile::tempdir().unwrap();
        assert!(matches!(load(missing.path()), Err(Error::Io { .. })));
    }

    /// The real corpus at `$THINGWARD_NAB_DIR` or `<workspace>/../shared/datasets/nab`.
    fn real_corpus_dir() -> Option<PathBuf> {
        let dir = std::env::var_os(DIR_ENV).map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/nab"),
            PathBuf::from,
        );
        if dir.join(WINDOWS_FILE).is_file() {
            Some(dir)
        } else {
            eprintln!(
                "NAB corpus not found at {} (set {DIR_ENV}); skipping",
                dir.display()
            );
            None
        }
    }

    #[test]
    fn real_corpus_has_nab_v1_shape() {
        let Some(dir) = real_corpus_dir() else { return };
        let corpus = load(&dir).unwrap();
        // NAB v1.1: 58 series, 116 windows (ml-design §2.1), 7 categories.
        assert_eq!(corpus.series.len(), 58);
        assert_eq!(corpus.windows(), 116);
        let categories: HashSet<&str> = corpus.series.iter().map(Series::category).collect();
        assert_eq!(categories.len(), 7);
        assert!(corpus.series.iter().all(|s| s.timestamps.len() == s.len()));
        let tweets = corpus
            .series
            .iter()
            .find(|s| s.name == "realTweets/Twitter_volume_AAPL.csv")
            .unwrap();
        assert_eq!(
            tweets.timestamps[0],
            parse_timestamp("2015-02-26 21:42:53").unwrap()
        );
        assert_eq!(tweets.values[0], 104.0);
    }
}
