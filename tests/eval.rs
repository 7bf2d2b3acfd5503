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
    assert_eq!(ml[1]["target_fpr"].as_f64(), Some(1e-4));
    assert!(ml[0]["recall"].as_f64().expect("recall") > 0.0, "{}", ml[0]);
    assert!(direct.read_dir().expect("out dir").any(|e| {
        e.expect("entry")
            .path()
            .extension()
            .is_some_and(|x| x == "svg")
    }));
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
