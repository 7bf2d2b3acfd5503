//! `restore_alarm` and the three `invalidate_*` paths.

use crate::util::{dp, observe, profile, thing, words};
use thingward_models::{Metric, Value};
use thingward_scorer::{CompiledProfile, Scorer};

const DAY_MS: i64 = 86_400_000;

fn two_behaviors(name: &str) -> CompiledProfile {
    profile(
        name,
        r#"[
        {"name":"tcp","metric":"aws:num-listening-tcp-ports","criteria":{"comparisonOperator":"less-than","value":{"count":1}}},
        {"name":"udp","metric":"aws:num-listening-udp-ports","criteria":{"comparisonOperator":"less-than","value":{"count":1}},"suppressAlerts":true}
    ]"#,
    )
}

fn alarm_both(s: &mut Scorer, p: &CompiledProfile, name: &str, at: i64) {
    assert_eq!(
        words(&observe(
            s,
            p,
            &dp(name, Metric::NumListeningTcpPorts, at, Value::Number(2.0))
        )),
        ["in"]
    );
    assert_eq!(
        words(&observe(
            s,
            p,
            &dp(name, Metric::NumListeningUdpPorts, at, Value::Number(2.0))
        )),
        ["in"]
    );
}

#[test]
fn silent_things_are_invalidated_and_forgotten() {
    let p = two_behaviors("p");
    let mut s = Scorer::new();
    alarm_both(&mut s, &p, "quiet", 0);
    alarm_both(&mut s, &p, "chatty", 0);
    // "chatty" keeps talking, about a metric nobody watches: still a sign of life.
    observe(
        &mut s,
        &p,
        &dp(
            "chatty",
            Metric::AllBytesIn,
            3 * DAY_MS - 1,
            Value::Number(1.0),
        ),
    );
    let mut out = Vec::new();
    s.invalidate_silent(2 * DAY_MS, 2 * DAY_MS, &mut out);
    assert!(out.is_empty(), "exactly two days is not more than two days");
    s.invalidate_silent(3 * DAY_MS, 2 * DAY_MS, &mut out);
    let got: Vec<(&str, &str, &str, i64, bool)> = out
        .iter()
        .map(|t| {
            (
                t.thing.as_str(),
                &*t.behavior,
                crate::util::word(t.change),
                t.at,
                t.suppressed,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("quiet", "tcp", "invalidated", 3 * DAY_MS, false),
            ("quiet", "udp", "invalidated", 3 * DAY_MS, true)
        ]
    );
    assert!(out.iter().all(|t| t.value.is_none()));
    assert_eq!(s.alarm_count(), 2);
    assert_eq!(s.thing_count(), 1, "the silent thing is forgotten");
    // When it comes back, it starts from scratch.
    assert_eq!(
        words(&observe(
            &mut s,
            &p,
            &dp(
                "quiet",
                Metric::NumListeningTcpPorts,
                4 * DAY_MS,
                Value::Number(2.0)
            )
        )),
        ["in"]
    );
}

#[test]
fn removed_behaviors_and_deleted_profiles_are_invalidated() {
    let (p, q) = (two_behaviors("p"), two_behaviors("q"));
    let mut s = Scorer::new();
    alarm_both(&mut s, &p, "a", 0);
    alarm_both(&mut s, &p, "b", 0);
    alarm_both(&mut s, &q, "a", 0);
    let mut out = Vec::new();
    s.invalidate_profile("p", &["tcp"], 10, &mut out);
    let got: Vec<(&str, &str, &str)> = out
        .iter()
        .map(|t| (&*t.profile, &*t.behavior, t.thing.as_str()))
        .collect();
    assert_eq!(got, [("p", "udp", "a"), ("p", "udp", "b")]);
    assert_eq!(s.alarm_count(), 4);
    // The kept behavior keeps its alarm; the removed one would start over if it came back.
    assert_eq!(
        words(&observe(
            &mut s,
            &p,
            &dp("a", Metric::NumListeningTcpPorts, 11, Value::Number(2.0))
        )),
        ["still"]
    );
    out.clear();
    s.invalidate_profile("p", &[], 12, &mut out);
    assert_eq!(out.len(), 2);
    assert!(
        out.iter()
            .all(|t| &*t.profile == "p" && &*t.behavior == "tcp" && t.at == 12)
    );
    assert_eq!(s.alarm_count(), 2, "profile q is untouched");
    out.clear();
    s.invalidate_profile("nosuch", &[], 12, &mut out);
    assert!(out.is_empty());
    // A deleted-then-recreated profile starts from scratch.
    assert_eq!(
        words(&observe(
            &mut s,
            &p,
            &dp("a", Metric::NumListeningTcpPorts, 13, Value::Number(2.0))
        )),
        ["in"]
    );
}

#[test]
fn a_thing_leaving_the_targets_is_invalidated_for_that_profile_only() {
    let (p, q) = (two_behaviors("p"), two_behaviors("q"));
    let mut s = Scorer::new();
    alarm_both(&mut s, &p, "a", 0);
    alarm_both(&mut s, &q, "a", 0);
    let mut out = Vec::new();
    s.invalidate_thing(&thing("a"), "p", 5, &mut out);
    let got: Vec<(&str, &str)> = out.iter().map(|t| (&*t.profile, &*t.behavior)).collect();
    assert_eq!(got, [("p", "tcp"), ("p", "udp")]);
    assert_eq!(s.alarm_count(), 2);
    out.clear();
    s.invalidate_thing(&thing("a"), "p", 6, &mut out);
    s.invalidate_thing(&thing("nobody"), "p", 6, &mut out);
    assert!(out.is_empty(), "nothing left to invalidate");
}

#[test]
fn invalidating_a_thing_drops_its_statistical_contribution() {
    let p = profile(
        "p",
        r#"[{"name":"s","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than-equals","statisticalThreshold":{"statistic":"p50"}}}]"#,
    );
    let mut s = Scorer::new();
    for (name, v) in [("a", 1.0), ("b", 2.0), ("c", 3.0)] {
        observe(
            &mut s,
            &p,
            &dp(name, Metric::AllBytesOut, 0, Value::Number(v)),
        );
    }
    let mut out = Vec::new();
    s.invalidate_thing(&thing("a"), "p", 1, &mut out);
    // Only b and c remain: two devices give no verdict…
    assert!(
        observe(
            &mut s,
            &p,
            &dp("c", Metric::AllBytesOut, 2, Value::Number(30.0))
        )
        .is_empty()
    );
    // …and with d there are three again: p50 over {2, 30, 9} is 9, and d (9) is normal,
    // while a still counted would have made it {1, 2, 30, 9} → 2 and d a violation.
    assert!(
        observe(
            &mut s,
            &p,
            &dp("d", Metric::AllBytesOut, 2, Value::Number(9.0))
        )
        .is_empty()
    );
}

#[test]
fn restored_alarms_clear_and_invalidate_like_live_ones() {
    let p = two_behaviors("p");
    let mut s = Scorer::new();
    s.restore_alarm(&thing("a"), "p", "tcp", 1_000);
    s.restore_alarm(&thing("b"), "p", "tcp", 1_000);
    s.restore_alarm(&thing("c"), "p", "gone", 1_000);
    assert_eq!(s.alarm_count(), 3);
    assert_eq!(
        words(&observe(
            &mut s,
            &p,
            &dp("a", Metric::NumListeningTcpPorts, 2_000, Value::Number(0.0))
        )),
        ["cleared"]
    );
    assert_eq!(
        words(&observe(
            &mut s,
            &p,
            &dp("b", Metric::NumListeningTcpPorts, 2_000, Value::Number(5.0))
        )),
        ["still"]
    );
    let mut out = Vec::new();
    s.invalidate_profile("p", &["tcp", "udp"], 3_000, &mut out);
    assert_eq!(words(&out), ["invalidated"]);
    assert_eq!((out[0].thing.as_str(), &*out[0].behavior), ("c", "gone"));
    out.clear();
    s.invalidate_silent(1_000 + 2 * DAY_MS + 1, 2 * DAY_MS, &mut out);
    assert!(out.is_empty(), "b spoke at 2000");
    s.invalidate_silent(2_000 + 2 * DAY_MS + 1, 2 * DAY_MS, &mut out);
    assert_eq!(words(&out), ["invalidated"]);
    assert_eq!(s.alarm_count(), 0);
    assert_eq!(s.thing_count(), 0);
}
