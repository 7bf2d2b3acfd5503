//! Small result tables as Parquet files for tools (pandas, polars, DuckDB): named columns of
//! plain values, each file written atomically.
//!
//! `thingward eval` writes its per-detector and per-class results through this module, so the
//! binary never touches polars (docs/specs/evaluation.md lists the columns).

use crate::error::Error;
use crate::wal::sync_dir;
use polars::prelude::*;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// One column's values.
#[derive(Debug, Clone, PartialEq)]
pub enum TableColumn {
    /// Parquet `BYTE_ARRAY` (UTF-8 string), never null.
    Strings(Vec<String>),
    /// Parquet `DOUBLE`, nullable (`None` is null; NaN stays NaN).
    Floats(Vec<Option<f64>>),
    /// Parquet `INT64` with the unsigned 64-bit logical type, never null.
    Counts(Vec<u64>),
    /// Parquet `BYTE_ARRAY` (UTF-8 string), nullable.
    OptStrings(Vec<Option<String>>),
    /// Parquet `BOOLEAN`, never null.
    Flags(Vec<bool>),
    /// Parquet `INT64` (signed: epoch milliseconds), nullable.
    Millis(Vec<Option<i64>>),
}

impl TableColumn {
    /// The number of values.
    pub fn len(&self) -> usize {
        match self {
            Self::Strings(v) => v.len(),
            Self::Floats(v) => v.len(),
            Self::Counts(v) => v.len(),
            Self::OptStrings(v) => v.len(),
            Self::Flags(v) => v.len(),
            Self::Millis(v) => v.len(),
        }
    }

    /// Whether the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn to_column(&self, name: &str) -> Column {
        let name = PlSmallStr::from(name);
        match self {
            Self::Strings(v) => {
                StringChunked::from_iter_values(name, v.iter().map(String::as_str)).into_column()
            }
            Self::Floats(v) => {
                Float64Chunked::from_iter_options(name, v.iter().copied()).into_column()
            }
            Self::Counts(v) => UInt64Chunked::from_vec(name, v.clone()).into_column(),
            Self::OptStrings(v) => {
                StringChunked::from_iter_options(name, v.iter().map(Option::as_deref)).into_column()
            }
            Self::Flags(v) => {
                BooleanChunked::from_iter_values(name, v.iter().copied()).into_column()
            }
            Self::Millis(v) => {
                Int64Chunked::from_iter_options(name, v.iter().copied()).into_column()
            }
        }
    }
}

/// Named columns of equal length, in order.
pub type Table = Vec<(String, TableColumn)>;

/// Writes `columns` as one Parquet file (zstd, one row group) at `path`: to a temporary file
/// next to it, fsync'd, renamed over `path`, then the directory fsync'd, so readers see the old
/// file or the new one, never a partial one.
///
/// # Errors
/// [`Error::InvalidTable`] when the columns differ in length or a name repeats, [`Error::Io`]
/// or [`Error::Polars`].
pub fn write_table(path: &Path, columns: &[(&str, TableColumn)]) -> Result<(), Error> {
    let height = columns.first().map_or(0, |(_, c)| c.len());
    if columns.iter().any(|(_, c)| c.len() != height) {
        return Err(Error::InvalidTable {
            path: path.to_owned(),
            reason: "columns differ in length",
        });
    }
    for (i, (name, _)) in columns.iter().enumerate() {
        if columns[..i].iter().any(|(n, _)| n == name) {
            return Err(Error::InvalidTable {
                path: path.to_owned(),
                reason: "a column name repeats",
            });
        }
    }
    let mut df = DataFrame::new(
        height,
        columns.iter().map(|(n, c)| c.to_column(n)).collect(),
    )?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut file = File::create(&tmp).map_err(Error::io(&tmp))?;
    ParquetWriter::new(&mut file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)?;
    file.sync_all().map_err(Error::io(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(Error::io(path))?;
    sync_dir(&dir)
}

/// Reads a table [`write_table`] wrote (or any Parquet file of string, float and unsigned
/// 64-bit columns), columns in file order.
///
/// # Errors
/// [`Error::InvalidTable`] for a column of another type or a null string, [`Error::Io`] or
/// [`Error::Polars`].
pub fn read_table(path: &Path) -> Result<Table, Error> {
    let file = File::open(path).map_err(Error::io(path))?;
    let df = ParquetReader::new(file).finish()?;
    let invalid = |reason| Error::InvalidTable {
        path: path.to_owned(),
        reason,
    };
    df.columns()
        .iter()
        .map(|c| {
            let values = match c.dtype() {
                DataType::String if c.null_count() > 0 => {
                    TableColumn::OptStrings(c.str()?.iter().map(|v| v.map(str::to_owned)).collect())
                }
                DataType::String => TableColumn::Strings(
                    c.str()?
                        .iter()
                        .map(|v| v.map(str::to_owned).ok_or_else(|| invalid("null string")))
                        .collect::<Result<_, _>>()?,
                ),
                DataType::Boolean => TableColumn::Flags(
                    c.bool()?
                        .iter()
                        .map(|v| v.ok_or_else(|| invalid("null flag")))
                        .collect::<Result<_, _>>()?,
                ),
                DataType::Int64 => TableColumn::Millis(c.i64()?.iter().collect()),
                DataType::Float64 => TableColumn::Floats(c.f64()?.iter().collect()),
                DataType::UInt64 => TableColumn::Counts(
                    c.u64()?
                        .iter()
                        .map(|v| v.ok_or_else(|| invalid("null count")))
                        .collect::<Result<_, _>>()?,
                ),
                _ => {
                    return Err(invalid(
                        "a column is not a string, float, count, flag or millisecond time",
                    ));
                }
            };
            Ok((c.name().to_string(), values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_with_nulls_and_nan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.parquet");
        let columns = [
            (
                "name",
                TableColumn::Strings(vec!["a".into(), "b".into(), "ü".into()]),
            ),
            (
                "x",
                TableColumn::Floats(vec![Some(1.5), None, Some(f64::NAN)]),
            ),
            ("n", TableColumn::Counts(vec![0, 7, u64::MAX])),
            (
                "id",
                TableColumn::OptStrings(vec![None, Some("e1".into()), None]),
            ),
            ("ok", TableColumn::Flags(vec![true, false, true])),
            (
                "at",
                TableColumn::Millis(vec![Some(-5), None, Some(i64::MAX)]),
            ),
        ];
        write_table(&path, &columns).expect("writes");
        write_table(&path, &columns).expect("replaces");
        let back = read_table(&path).expect("reads");
        assert_eq!(back.len(), 6);
        for i in 3..6 {
            assert_eq!(back[i], (columns[i].0.to_owned(), columns[i].1.clone()));
        }
        assert_eq!(back[0], ("name".to_owned(), columns[0].1.clone()));
        assert_eq!(back[2], ("n".to_owned(), columns[2].1.clone()));
        let TableColumn::Floats(x) = &back[1].1 else {
            panic!("x is floats")
        };
        assert_eq!(x[..2], [Some(1.5), None]);
        assert!(x[2].is_some_and(f64::is_nan));
        assert_eq!(
            fs::read_dir(dir.path()).expect("dir").count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn ragged_or_repeated_columns_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.parquet");
        let ragged = [
            ("a", TableColumn::Counts(vec![1])),
            ("b", TableColumn::Counts(vec![])),
        ];
        assert!(matches!(
            write_table(&path, &ragged),
            Err(Error::InvalidTable { .. })
        ));
        let repeated = [
            ("a", TableColumn::Counts(vec![1])),
            ("a", TableColumn::Counts(vec![2])),
        ];
        assert!(matches!(
            write_table(&path, &repeated),
            Err(Error::InvalidTable { .. })
        ));
        assert!(!path.exists());
    }
}
