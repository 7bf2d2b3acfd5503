//! Golden rule cases: `tests/golden/*.json`, each a profile, datapoints and the transitions they
//! must produce (vector's `tests/behavior` style, in JSON since the crate has no YAML parser).
//!
//! A case file holds `description`, `behaviors` (the AWS JSON array), `datapoints` (each
//! `{thing, metric, topic?, timestamp, value}` with `value` in `Value`'s serde form, e.g.
//! `{"Number": 5}`), optional `invalidate_silent: {now, silence_ms}`, and `expect`: one line per
//! transition, `"<thing> <behavior> <change> @<at> <value>"`. Run with
//! `THINGWARD_UPDATE_GOLDEN=1` to rewrite `expect` (which must be the last member) from the
//! actual output after a deliberate change, then review the diff.

use crate::util::{profile, word};
use serde_json::Value as Json;
use std::path::Path;
use thingward_models::Datapoint;
use thingward_scorer::{Scorer, Transition};

fn line(t: &Transition) -> String {
    let value = match &t.value {
        Some(v) => serde_json::to_string(v).expect("value json"),
        None => "-".into(),
    };
    let suppressed = if t.suppressed { " (suppressed)" } else { "" };
    format!(
        "{} {} {} @{} {}{}",
        t.thing,
        t.behavior,
        word(t.change),
        t.at,
        value,
        suppressed
    )
}

fn run(case: &Json) -> Vec<String> {
    let behaviors = serde_json::to_string(&case["behaviors"]).expect("behaviors");
    let p = profile("golden", &behaviors);
    let datapoints: Vec<Datapoint> =
        serde_json::from_value(case["datapoints"].clone()).expect("datapoints");
    let mut s = Scorer::new();
    let mut out = Vec::new();
    for d in &datapoints {
        s.observe(&p, d, &mut out);
    }
    if let Some(inv) = case.get("invalidate_silent") {
        let now = inv["now"].as_i64().expect("now");
        let silence = inv["silence_ms"].as_i64().expect("silence_ms");
        s.invalidate_silent(now, silence, &mut out);
    }
    out.iter().map(line).collect()
}

#[test]
fn golden_rule_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no golden cases in {}", dir.display());
    let update = std::env::var_os("THINGWARD_UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).expect("read case");
        let case: Json = serde_json::from_str(&text).expect("case json");
        let got = run(&case);
        let want: Vec<String> =
            serde_json::from_value(case["expect"].clone()).expect("expect lines");
        if got == want {
            continue;
        }
        if update {
            // `expect` is the last member: rewrite only it, keeping the hand formatting above.
            let at = text.find("\"expect\"").expect("case has an expect member");
            let lines = serde_json::to_string_pretty(&got)
                .expect("json")
                .replace('\n', "\n  ");
            std::fs::write(path, format!("{}\"expect\": {lines}\n}}\n", &text[..at]))
                .expect("write case");
            continue;
        }
        let mut diff = format!("\n== {} ==\n", path.display());
        for l in &want {
            if !got.contains(l) {
                diff.push_str(&format!("- {l}\n"));
            }
        }
        for l in &got {
            if !want.contains(l) {
                diff.push_str(&format!("+ {l}\n"));
            }
        }
        if diff.lines().count() == 2 {
            diff.push_str(&format!(
                "order differs:\n  want {want:#?}\n  got  {got:#?}\n"
            ));
        }
        failures.push(diff);
    }
    assert!(
        failures.is_empty(),
        "golden cases differ (THINGWARD_UPDATE_GOLDEN=1 rewrites):{}",
        failures.concat()
    );
}
