//! `thingward generate` and `thingward eval` from the command line, on the bundled tiny scenario.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn thingward(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_thingward"))
        .args(args)
        .env("THINGWARD_LOG", "warn")
        .output()
        .expect("run thingward");
    assert!(
        out.status.success(),
        "thingward {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scenario() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("datasets/scenarios/tiny.toml")
        .display()
        .to_string()
}

fn results(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("eval.json")).expect("eval.json written");
    serde_json::from_str(&text).expect("eval.json is JSON")
}

#[test]
fn eval_of_generated_data_matches_eval_of_the_scenario() {
    let work = tempfile::tempdir().expect("tempdir");
    let data = work.path().join("fleet");
    let direct = work.path().join("direct");
    let recorded = work.path().join("recorded");
    let scenario = scenario();

    let table = thingward(&[
        "eval",
        "--scenario",
        &scenario,
        "--out",
        direct.to_str().expect("utf8"),
    ]);
    assert!(table.contains("| rules-p999 | rule |"), "{table}");
    assert!(table.contains("| attack class |"), "{table}");

    thingward(&[
        "generate",
        "--scenario",
        &scenario,
        "--out",
        data.to_str().expect("utf8"),
    ]);
    thingward(&[
        "eval",
        "--data",
        data.to_str().expect("utf8"),
        "--labels",
        data.join("labels.json").to_str().expect("utf8"),
        "--out",
        recorded.to_str().expect("utf8"),
    ]);

    let (a, b) = (results(&direct), results(&recorded));
    assert!(a["scored_datapoints"].as_u64().expect("count") > 0);
    // The same fleet read back from Parquet scores exactly as the generated stream.
    assert_eq!(a["scored_datapoints"], b["scored_datapoints"]);
    assert_eq!(a["results"], b["results"]);
    let all = a["results"].as_array().expect("results");
    let p999 = all
        .iter()
        .find(|r| r["detector"] == "rules-p999")
        .expect("rules-p999 runs by default");
    assert!(p999["recall"].as_f64().expect("recall") > 0.0, "{p999}");
    // ML Detect runs by default too, once per confidence level, each with its target.
    let ml: Vec<&serde_json::Value> = all.iter().filter(|r| r["detector"] == "ml").collect();
    let levels: Vec<&str> = ml
        .iter()
        .map(|r| r["level"].as_str().expect("level"))
        .collect();
    assert_eq!(levels, ["LOW", "MEDIUM", "HIGH"]);
    // Each level states its budget for the whole profile (episodes per 1,000 device-days).
    let budgets: Vec<f64> = ml
        .iter()
        .map(|r| r["budget"].as_f64().expect("budget"))
        .collect();
    assert_eq!(budgets, [20.0, 2.0, 0.2]);
    assert!(
        ml[1]["target_fpr"]
            .as_f64()
            .expect("per-datapoint equivalent")
            > 0.0
    );
    assert!(ml[0]["recall"].as_f64().expect("recall") > 0.0, "{}", ml[0]);
    parquet_tables_match_eval_json(&direct, &a);
    assert!(direct.read_dir().expect("out dir").any(|e| {
        e.expect("entry")
            .path()
            .extension()
            .is_some_and(|x| x == "svg")
    }));
}

/// Whether a float from the Parquet table equals eval.json's number. JSON has no NaN (serde
/// writes null), and serde_json's default parser may miss the exact double by an ulp.
fn same_float(parquet: Option<f64>, json: &Value) -> bool {
    match (parquet.filter(|x| !x.is_nan()), json.as_f64()) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300),
        _ => false,
    }
}

/// `results.parquet` and `classes.parquet` hold the numbers of eval.json, row for row.
fn parquet_tables_match_eval_json(dir: &Path, json: &Value) {
    use thingward_history::tables::{TableColumn, read_table};
    let column = |table: &[(String, TableColumn)], name: &str| -> TableColumn {
        table
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("column {name}"))
            .1
            .clone()
    };
    let check = |table: &[(String, TableColumn)], rows: &[&Value], fields: &[(&str, &str)]| {
        for &(name, field) in fields {
            let expected: Vec<&Value> = rows.iter().map(|r| &r[field]).collect();
            match column(table, name) {
                TableColumn::Strings(v) => {
                    let want: Vec<&str> = expected
                        .iter()
                        .map(|e| e.as_str().expect("string"))
                        .collect();
                    assert_eq!(v, want, "{name}");
                }
                TableColumn::Counts(v) => {
                    let want: Vec<u64> = expected
                        .iter()
                        .map(|e| e.as_u64().expect("count"))
                        .collect();
                    assert_eq!(v, want, "{name}");
                }
                TableColumn::Floats(v) => {
                    assert_eq!(v.len(), expected.len(), "{name}");
                    for (got, want) in v.iter().zip(&expected) {
                        assert!(same_float(*got, want), "{name}: {got:?} vs {want}");
                    }
                }
                other => panic!("{name}: results tables hold no {other:?} columns"),
            }
        }
    };
    let results: Vec<&Value> = json["results"]
        .as_array()
        .expect("results")
        .iter()
        .collect();
    let table = read_table(&dir.join("results.parquet")).expect("results.parquet reads");
    assert_eq!(table.len(), 13, "results.parquet columns");
    check(
        &table,
        &results,
        &[
            ("detector", "detector"),
            ("level", "level"),
            ("target_fpr", "target_fpr"),
            ("fpr", "fpr"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "f1"),
            ("alarms_per_1000_device_days", "alarms_per_1000_device_days"),
            ("benign_false_alarms", "benign_false_alarms"),
            ("episodes", "episodes"),
            ("true_episodes", "true_episodes"),
            ("clean_datapoints", "clean_datapoints"),
            ("clean_flagged", "clean_flagged"),
        ],
    );

    let classes: Vec<&Value> = results
        .iter()
        .flat_map(|r| r["classes"].as_array().expect("classes").iter())
        .collect();
    assert!(!classes.is_empty());
    let table = read_table(&dir.join("classes.parquet")).expect("classes.parquet reads");
    let owners: Vec<(&Value, &Value)> = results
        .iter()
        .flat_map(|r| {
            r["classes"]
                .as_array()
                .expect("classes")
                .iter()
                .map(move |_| (&r["detector"], &r["level"]))
        })
        .collect();
    let with_owner: Vec<Value> = classes
        .iter()
        .zip(&owners)
        .map(|(c, (d, l))| {
            let mut c = (*c).clone();
            c["detector"] = (*d).clone();
            c["level"] = (*l).clone();
            c
        })
        .collect();
    let rows: Vec<&Value> = with_owner.iter().collect();
    check(
        &table,
        &rows,
        &[
            ("detector", "detector"),
            ("level", "level"),
            ("class", "class"),
            ("events", "events"),
            ("detected", "detected"),
            ("recall", "recall"),
            ("f1", "f1"),
            ("ttd_median", "ttd_median"),
            ("ttd_p90", "ttd_p90"),
        ],
    );
}

#[test]
fn eval_refuses_an_unknown_detector_with_a_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_thingward"))
        .args(["eval", "--scenario", &scenario(), "--detector", "magic"])
        .output()
        .expect("run thingward");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unknown detector 'magic'"));
}
