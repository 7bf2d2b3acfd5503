//! Integration tests of the datapoint history through its public API.

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;
use thingward_history::{Error, History, HistoryOptions, MAX_TIMESTAMP};
use thingward_models::{Datapoint, Metric, ThingName, Value};

const DAY_MS: i64 = 86_400_000;
/// 2024-03-01T00:00:00Z.
const T0: i64 = 1_709_251_200_000;

fn thing(name: &str) -> ThingName {
    ThingName::try_from(name).expect("valid thing name")
}

fn dp(t: &str, metric: Metric, ts: i64, value: Value) -> Datapoint {
    Datapoint {
        thing: thing(t),
        metric,
        topic: None,
        timestamp: ts,
        value,
    }
}

fn number(t: &str, ts: i64, x: f64) -> Datapoint {
    dp(t, Metric::AllBytesOut, ts, Value::Number(x))
}

fn open(dir: &Path) -> History {
    let opts = HistoryOptions {
        group_commit_interval: Duration::ZERO,
        ..Default::default()
    };
    History::open(dir, opts).expect("opens")
}

fn all(h: &History, t: &str, metric: &Metric) -> Vec<(i64, Option<String>, Value)> {
    h.values(&thing(t), metric, i64::MIN, i64::MAX, usize::MAX)
        .expect("values")
}

fn wal_segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .expect("wal dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

/// Rows the trainer would see: a lazy scan of `partitions/date=*/*.parquet`.
fn trainer_rows(h: &History) -> usize {
    use polars::prelude::*;
    let glob = h.partitions_dir().join("date=*").join("*.parquet");
    let path = PlRefPath::new(glob.to_str().expect("utf-8 path"));
    LazyFrame::scan_parquet(path, ScanArgsParquet::default())
        .expect("scans")
        .collect()
        .expect("collects")
        .height()
}

mod round_trip {
    use super::*;

    fn every_kind() -> Vec<Datapoint> {
        let ips: Vec<IpAddr> = vec![
            "192.0.2.1".parse().expect("ip"),
            "2001:db8::7".parse().expect("ip"),
        ];
        vec![
            dp("dev", Metric::AllBytesOut, T0, Value::Number(1234.5)),
            dp(
                "dev",
                Metric::Custom("temps".into()),
                T0 + 1,
                Value::Numbers(vec![0.1, -3.0, 1e300]),
            ),
            dp(
                "dev",
                Metric::Custom("labels".into()),
                T0 + 2,
                Value::Strings(vec!["a,b".into(), "\"q\"".into(), "ü".into()]),
            ),
            dp(
                "dev",
                Metric::DestinationIpAddresses,
                T0 + 3,
                Value::Ips(ips),
            ),
            dp(
                "dev",
                Metric::ListeningTcpPorts,
                T0 + 4,
                Value::Ports(vec![22, 443, 65535]),
            ),
            dp(
                "dev",
                Metric::Custom("empty".into()),
                T0 + 5,
                Value::Numbers(vec![]),
            ),
            Datapoint {
                topic: Some("dt/fleet/+/telemetry".into()),
                ..dp("dev", Metric::NumMessagesSent, T0 + 6, Value::Number(7.0))
            },
        ]
    }

    fn check(h: &History, batch: &[Datapoint]) {
        for d in batch {
            let got = all(h, d.thing.as_str(), &d.metric);
            assert_eq!(
                got,
                vec![(d.timestamp, d.topic.clone(), d.value.clone())],
                "{}",
                d.metric
            );
        }
    }

    #[test]
    fn every_value_kind_through_the_wal_reopen_and_parquet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let batch = every_kind();
        {
            let h = open(dir.path());
            h.append_sync(&batch).expect("appends");
            check(&h, &batch); // from the active WAL segment
            h.close().expect("closes");
        }
        let h = open(dir.path());
        check(&h, &batch); // from a recovered WAL segment
        let stats = h.roll().expect("rolls");
        assert_eq!(
            (stats.segments, stats.datapoints, stats.files),
            (1, batch.len() as u64, 1)
        );
        assert!(wal_segments(dir.path()).is_empty());
        check(&h, &batch); // from Parquet
        assert_eq!(trainer_rows(&h), batch.len());
    }

    #[test]
    fn parquet_schema_is_the_documented_one() {
        use polars::prelude::*;
        let dir = tempfile::tempdir().expect("tempdir");
        let h = open(dir.path());
        h.append_sync(&every_kind()).expect("appends");
        h.roll().expect("rolls");
        let file = h
            .partitions_dir()
            .join("date=2024-03-01")
            .join(format!("part-{:020}.parquet", 0));
        let schema_of = |path: &str, hive: bool| -> Vec<(String, DataType)> {
            let args = ScanArgsParquet {
                hive_options: HiveOptions {
                    enabled: Some(hive),
                    ..Default::default()
                },
                ..Default::default()
            };
            LazyFrame::scan_parquet(PlRefPath::new(path), args)
                .expect("scans")
                .collect_schema()
                .expect("schema")
                .iter()
                .map(|(n, t)| (n.to_string(), t.clone()))
                .collect()
        };
        let mut want = vec![
            ("thing".to_owned(), DataType::String),
            ("metric".to_owned(), DataType::String),
            ("topic".to_owned(), DataType::String),
            (
                "ts".to_owned(),
                DataType::Datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC)),
            ),
            ("kind".to_owned(), DataType::String),
            ("value".to_owned(), DataType::Float64),
            ("list".to_owned(), DataType::String),
        ];
        assert_eq!(schema_of(file.to_str().expect("utf-8"), false), want);
        // The trainer's glob scan adds the hive partition column.
        let glob = h.partitions_dir().join("date=*").join("*.parquet");
        want.push(("date".to_owned(), DataType::Date));
        assert_eq!(schema_of(glob.to_str().expect("utf-8"), true), want);
    }
}

mod recovery {
    use super::*;
    use std::io::Write;

    fn three_batches(dir: &Path) -> u64 {
        let h = open(dir);
        for i in 0..3 {
            h.append_sync(&[number("a", T0 + i, i as f64)])
                .expect("appends");
        }
        h.close().expect("closes");
        drop(h);
        let seg = &wal_segments(dir)[0];
        std::fs::metadata(seg).expect("metadata").len()
    }

    #[test]
    fn a_torn_last_record_is_truncated_and_earlier_records_survive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let full = three_batches(dir.path());
        let seg = wal_segments(dir.path())[0].clone();
        // Cut the third record in half, as a crash mid-write would.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("opens");
        let record = full / 3;
        file.set_len(full - record / 2).expect("truncates");
        drop(file);

        let h = open(dir.path());
        let got: Vec<i64> = all(&h, "a", &Metric::AllBytesOut)
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(got, vec![T0, T0 + 1]);
        assert_eq!(
            std::fs::metadata(&seg).expect("metadata").len(),
            2 * record,
            "torn tail truncated"
        );
        // The history carries on: new appends land in a new segment and everything rolls.
        h.append_sync(&[number("a", T0 + 9, 9.0)]).expect("appends");
        assert_eq!(h.roll().expect("rolls").datapoints, 3);
        let got: Vec<i64> = all(&h, "a", &Metric::AllBytesOut)
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(got, vec![T0, T0 + 1, T0 + 9]);
    }

    #[test]
    fn garbage_after_the_last_record_is_truncated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let full = three_batches(dir.path());
        let seg = wal_segments(dir.path())[0].clone();
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&seg)
            .expect("opens");
        file.write_all(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9])
            .expect("writes");
        drop(file);

        let h = open(dir.path());
        assert_eq!(all(&h, "a", &Metric::AllBytesOut).len(), 3);
        assert_eq!(std::fs::metadata(&seg).expect("metadata").len(), full);
    }

    #[test]
    fn a_corrupted_checksum_ends_the_segment_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let full = three_batches(dir.path());
        let seg = wal_segments(dir.path())[0].clone();
        let mut bytes = std::fs::read(&seg).expect("reads");
        let record = (full / 3) as usize;
        bytes[record + 12] ^= 0x55; // inside the second record's payload
        std::fs::write(&seg, &bytes).expect("writes");

        let h = open(dir.path());
        let got: Vec<i64> = all(&h, "a", &Metric::AllBytesOut)
            .iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(got, vec![T0]);
    }

    #[test]
    fn segment_numbers_are_not_reused_after_everything_rolled() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let h = open(dir.path());
            h.append_sync(&[number("a", T0, 1.0)]).expect("appends");
            h.roll().expect("rolls");
        }
        // The WAL is empty now; a reused segment number would overwrite part-0 of that day.
        let h = open(dir.path());
        h.append_sync(&[number("a", T0 + 1, 2.0)]).expect("appends");
        h.roll().expect("rolls");
        assert_eq!(all(&h, "a", &Metric::AllBytesOut).len(), 2);
        assert_eq!(trainer_rows(&h), 2);
    }
}

mod roll {
    use super::*;

    #[test]
    fn rolling_again_after_a_crash_before_the_segment_was_deleted_adds_no_duplicates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let saved;
        {
            let h = open(dir.path());
            // Two days in one segment: two part files.
            h.append_sync(&[number("a", T0, 1.0), number("a", T0 + DAY_MS, 2.0)])
                .expect("appends");
            h.close().expect("closes");
            let seg = wal_segments(dir.path())[0].clone();
            saved = (seg.clone(), std::fs::read(&seg).expect("reads"));
            assert_eq!(h.roll().expect("rolls").files, 2);
        }
        // The crash: the Parquet files were published but the segment was never deleted.
        std::fs::write(&saved.0, &saved.1).expect("restores the segment");
        let h = open(dir.path());
        assert_eq!(
            all(&h, "a", &Metric::AllBytesOut).len(),
            4,
            "before re-roll both copies are visible"
        );
        let stats = h.roll().expect("rolls again");
        assert_eq!((stats.segments, stats.datapoints, stats.files), (1, 2, 2));
        assert_eq!(all(&h, "a", &Metric::AllBytesOut).len(), 2);
        assert_eq!(trainer_rows(&h), 2);
    }

    #[test]
    fn a_partial_parquet_file_from_a_crashed_roll_is_removed_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let h = open(dir.path());
            h.append_sync(&[number("a", T0, 1.0)]).expect("appends");
        }
        let day = dir.path().join("partitions").join("date=2024-03-01");
        std::fs::create_dir_all(&day).expect("mkdir");
        let tmp = day.join(format!("part-{:020}.parquet.tmp", 0));
        std::fs::write(&tmp, b"PAR1 half a file").expect("writes");
        let h = open(dir.path());
        assert!(!tmp.exists());
        h.roll().expect("rolls");
        assert_eq!(trainer_rows(&h), 1);
    }

    #[test]
    fn nothing_is_lost_after_close_and_roll() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = open(dir.path());
        let (tx, rx) = mpsc::channel();
        for i in 0..100 {
            let tx = tx.clone();
            h.append(
                &[number("a", T0 + i, i as f64)],
                Box::new(move |r| tx.send(r.is_ok()).expect("sends")),
            )
            .expect("appends");
        }
        h.close().expect("closes");
        drop(tx);
        assert_eq!(rx.iter().filter(|ok| *ok).count(), 100);
        assert!(matches!(
            h.append_sync(&[number("a", T0, 0.0)]),
            Err(Error::Closed)
        ));
        assert_eq!(h.roll().expect("rolls").datapoints, 100);
        assert_eq!(all(&h, "a", &Metric::AllBytesOut).len(), 100);
    }

    #[test]
    fn small_segments_rotate_and_all_roll() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = HistoryOptions {
            segment_bytes: 256,
            group_commit_interval: Duration::ZERO,
            ..Default::default()
        };
        let h = History::open(dir.path(), opts).expect("opens");
        for i in 0..50 {
            h.append_sync(&[number("a", T0 + i, 0.0), number("b", T0 + i, 0.0)])
                .expect("appends");
        }
        assert!(wal_segments(dir.path()).len() > 5);
        let stats = h.roll().expect("rolls");
        assert_eq!(stats.datapoints, 100);
        assert!(wal_segments(dir.path()).is_empty());
        assert_eq!(all(&h, "b", &Metric::AllBytesOut).len(), 50);
    }
}

mod values {
    use super::*;

    #[test]
    fn values_span_rolled_and_unrolled_data_across_day_boundaries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = open(dir.path());
        let midnight = T0 + DAY_MS;
        // Rolled: the last millisecond of day 1 and the first of day 2, plus another thing.
        h.append_sync(&[
            number("a", midnight - 1, 1.0),
            number("a", midnight, 2.0),
            number("b", midnight, 99.0),
            dp("a", Metric::AllBytesIn, midnight, Value::Number(98.0)),
        ])
        .expect("appends");
        h.roll().expect("rolls");
        assert!(h.partitions_dir().join("date=2024-03-01").is_dir());
        assert!(h.partitions_dir().join("date=2024-03-02").is_dir());
        // Unrolled: a late (older) datapoint and a newer one.
        h.append_sync(&[
            number("a", midnight - 2, 0.5),
            number("a", midnight + DAY_MS, 3.0),
        ])
        .expect("appends");

        let a = thing("a");
        let m = Metric::AllBytesOut;
        let ts = |rows: Vec<(i64, Option<String>, Value)>| {
            rows.into_iter().map(|r| r.0).collect::<Vec<_>>()
        };
        assert_eq!(
            ts(h.values(&a, &m, i64::MIN, i64::MAX, 100).expect("values")),
            vec![midnight - 2, midnight - 1, midnight, midnight + DAY_MS]
        );
        // Inclusive bounds, straddling midnight.
        assert_eq!(
            ts(h.values(&a, &m, midnight - 1, midnight, 100)
                .expect("values")),
            vec![midnight - 1, midnight]
        );
        // Limit keeps the oldest, whichever store they come from.
        assert_eq!(
            ts(h.values(&a, &m, i64::MIN, i64::MAX, 2).expect("values")),
            vec![midnight - 2, midnight - 1]
        );
        assert!(
            h.values(&a, &m, midnight + 1, midnight + DAY_MS - 1, 100)
                .expect("values")
                .is_empty()
        );
        assert!(
            h.values(&a, &m, midnight, midnight - 1, 100)
                .expect("values")
                .is_empty()
        );
        assert!(
            h.values(&a, &m, i64::MIN, i64::MAX, 0)
                .expect("values")
                .is_empty()
        );
        assert_eq!(all(&h, "a", &Metric::AllBytesIn).len(), 1);
        assert!(all(&h, "nobody", &m).is_empty());
    }

    #[test]
    fn the_topic_filter_matches_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = open(dir.path());
        let on = |topic: &str, ts| Datapoint {
            topic: Some(topic.to_owned()),
            ..dp("a", Metric::NumMessagesSent, ts, Value::Number(1.0))
        };
        h.append_sync(&[
            on("x/1", T0),
            on("x/2", T0 + 1),
            dp("a", Metric::NumMessagesSent, T0 + 2, Value::Number(1.0)),
        ])
        .expect("appends");
        h.roll().expect("rolls");
        h.append_sync(&[on("x/1", T0 + 3)]).expect("appends");
        let m = Metric::NumMessagesSent;
        let got: Vec<(i64, Option<String>)> = h
            .topic_values(&thing("a"), &m, "x/1", i64::MIN, i64::MAX, 10)
            .expect("values")
            .into_iter()
            .map(|r| (r.0, r.1))
            .collect();
        assert_eq!(
            got,
            vec![(T0, Some("x/1".into())), (T0 + 3, Some("x/1".into()))]
        );
        assert_eq!(all(&h, "a", &m).len(), 4);
    }

    #[test]
    fn unstorable_timestamps_are_refused_without_calling_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = open(dir.path());
        let called = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&called);
        let r = h.append(
            &[number("a", MAX_TIMESTAMP + 1, 0.0)],
            Box::new(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            }),
        );
        assert!(matches!(r, Err(Error::TimestampOutOfRange { .. })));
        h.close().expect("closes");
        assert_eq!(called.load(Ordering::SeqCst), 0);
    }
}

mod concurrency {
    use super::*;

    #[test]
    fn many_concurrent_appenders_all_get_callbacks_and_all_data_is_there() {
        const THREADS: usize = 8;
        const BATCHES: usize = 40;
        const PER_BATCH: usize = 50;
        let dir = tempfile::tempdir().expect("tempdir");
        // A real interval, so groups form, and small segments, so rotation happens mid-run.
        let opts = HistoryOptions {
            group_commit_interval: Duration::from_millis(1),
            segment_bytes: 16 * 1024,
            ..Default::default()
        };
        let h = Arc::new(History::open(dir.path(), opts).expect("opens"));
        let ok = Arc::new(AtomicUsize::new(0));
        let rolled = std::thread::scope(|s| {
            for t in 0..THREADS {
                let (h, ok) = (Arc::clone(&h), Arc::clone(&ok));
                s.spawn(move || {
                    let name = format!("thing-{t}");
                    let (tx, rx) = mpsc::channel();
                    for b in 0..BATCHES {
                        let batch: Vec<Datapoint> = (0..PER_BATCH)
                            .map(|i| number(&name, T0 + (b * PER_BATCH + i) as i64, i as f64))
                            .collect();
                        let (ok, tx) = (Arc::clone(&ok), tx.clone());
                        h.append(
                            &batch,
                            Box::new(move |r| {
                                if r.is_ok() {
                                    ok.fetch_add(1, Ordering::SeqCst);
                                }
                                tx.send(()).expect("sends");
                            }),
                        )
                        .expect("appends");
                    }
                    for _ in 0..BATCHES {
                        rx.recv_timeout(Duration::from_secs(30))
                            .expect("callback arrives");
                    }
                });
            }
            // Roll concurrently with the appenders.
            let roller = s.spawn(|| {
                (0..5)
                    .map(|_| h.roll().expect("rolls").datapoints)
                    .sum::<u64>()
            });
            roller.join().expect("roller")
        });
        assert_eq!(ok.load(Ordering::SeqCst), THREADS * BATCHES);
        h.close().expect("closes");
        let rest = h.roll().expect("rolls").datapoints;
        assert_eq!(rolled + rest, (THREADS * BATCHES * PER_BATCH) as u64);
        for t in 0..THREADS {
            let rows = all(&h, &format!("thing-{t}"), &Metric::AllBytesOut);
            let ts: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let want: Vec<i64> = (0..BATCHES * PER_BATCH).map(|i| T0 + i as i64).collect();
            assert_eq!(ts, want, "thing-{t}");
        }
        assert_eq!(trainer_rows(&h), THREADS * BATCHES * PER_BATCH);
    }

    #[test]
    fn readers_during_rolls_never_see_a_row_twice_or_miss_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let h = open(dir.path());
        let batch: Vec<Datapoint> = (0..200).map(|i| number("a", T0 + i, 0.0)).collect();
        for _ in 0..5 {
            h.append_sync(&batch).expect("appends");
            // Force one segment per batch so rolls have work to do.
            h.roll().expect("rolls");
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..10 {
                    h.append_sync(&batch).expect("appends");
                    h.roll().expect("rolls");
                }
            });
            let mut last = 0;
            for _ in 0..30 {
                let n = all(&h, "a", &Metric::AllBytesOut).len();
                assert_eq!(n % 200, 0, "a reader saw a partial or doubled segment: {n}");
                assert!(n >= last);
                last = n;
            }
        });
    }
}

mod day_reader {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn days_read_back_every_datapoint_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path());
        // Two days, appended out of order across things.
        let batch = vec![
            number("b", 2 * DAY + 600_000, 3.0),
            number("a", 2 * DAY + 300_000, 2.0),
            dp(
                "a",
                Metric::ListeningTcpPorts,
                2 * DAY + 300_000,
                Value::Ports(vec![22, 443]),
            ),
            number("a", DAY + 1, 1.0),
        ];
        h.append_sync(&batch).unwrap();
        h.roll().unwrap();
        let days = thingward_history::partition_days(&h.partitions_dir()).unwrap();
        assert_eq!(days.len(), 2);
        let first = thingward_history::read_partition_day(&h.partitions_dir(), days[0]).unwrap();
        assert_eq!(first, vec![batch[3].clone()]);
        let second = thingward_history::read_partition_day(&h.partitions_dir(), days[1]).unwrap();
        assert_eq!(second.len(), 3);
        assert!(second.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        assert!(second.contains(&batch[2]));
        assert_eq!(second.last(), Some(&batch[0]));
    }
}
