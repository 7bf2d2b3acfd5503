//! `Scorer::observe`: rules, windows, statistical thresholds, dimensions and the alarm machine
//! working together.

use crate::util::{dp, dp_on, observe, profile, words};
use thingward_models::{Metric, Value};
use thingward_scorer::Scorer;

fn ports(list: &[u16]) -> Value {
    Value::Ports(list.to_vec())
}

#[test]
fn alarm_after_n_violations_clear_after_m_compliant() {
    let p = profile(
        "p",
        r#"[{"name":"ports","metric":"aws:listening-tcp-ports","criteria":{"comparisonOperator":"in-port-set","value":{"ports":[22,443]},"consecutiveDatapointsToAlarm":2,"consecutiveDatapointsToClear":3}}]"#,
    );
    let mut s = Scorer::new();
    let seq = [
        (ports(&[22, 8080]), vec![]),
        (ports(&[22]), vec![]),
        (ports(&[8080]), vec![]),
        (ports(&[8081]), vec!["in"]),
        (ports(&[23]), vec!["still"]),
        (ports(&[]), vec![]),
        (ports(&[22]), vec![]),
        (ports(&[9]), vec!["still"]),
        (ports(&[22]), vec![]),
        (ports(&[443]), vec![]),
        (ports(&[]), vec!["cleared"]),
        (ports(&[]), vec![]),
    ];
    for (i, (v, want)) in seq.into_iter().enumerate() {
        let got = observe(
            &mut s,
            &p,
            &dp("cam", Metric::ListeningTcpPorts, i as i64, v),
        );
        assert_eq!(words(&got), want, "datapoint {i}");
    }
    assert_eq!(s.alarm_count(), 0);
    assert_eq!(s.alarm_entries(), 0, "a quiet behavior stores nothing");
}

#[test]
fn transitions_carry_names_value_time_and_suppression() {
    let p = profile(
        "prof",
        r#"[{"name":"bat","metric":"battery","criteria":{"comparisonOperator":"greater-than","value":{"number":10}},"suppressAlerts":true}]"#,
    );
    let mut s = Scorer::new();
    let t = observe(
        &mut s,
        &p,
        &dp(
            "x",
            Metric::Custom("battery".into()),
            42,
            Value::Number(3.5),
        ),
    );
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].thing.as_str(), "x");
    assert_eq!((&*t[0].profile, &*t[0].behavior), ("prof", "bat"));
    assert_eq!(t[0].value, Some(Value::Number(3.5)));
    assert_eq!(t[0].at, 42);
    assert!(t[0].suppressed);
    assert_eq!(s.alarm_count(), 1);
}

#[test]
fn duration_sums_cumulative_metrics_over_the_window() {
    let p = profile(
        "p",
        r#"[{"name":"sent","metric":"aws:num-messages-sent","criteria":{"comparisonOperator":"less-than","value":{"count":100},"durationSeconds":300}}]"#,
    );
    let mut s = Scorer::new();
    let m = Metric::NumMessagesSent;
    // 40 per minute: the 5-minute sum reaches 120 at the third datapoint.
    assert!(observe(&mut s, &p, &dp("t", m.clone(), 0, Value::Number(40.0))).is_empty());
    assert!(observe(&mut s, &p, &dp("t", m.clone(), 60_000, Value::Number(40.0))).is_empty());
    let t = observe(
        &mut s,
        &p,
        &dp("t", m.clone(), 120_000, Value::Number(40.0)),
    );
    assert_eq!(words(&t), ["in"]);
    assert_eq!(
        t[0].value,
        Some(Value::Number(120.0)),
        "the evaluated value is the sum"
    );
    // Another thing is summed separately.
    assert!(
        observe(
            &mut s,
            &p,
            &dp("u", m.clone(), 120_000, Value::Number(40.0))
        )
        .is_empty()
    );
    // Ten minutes later the window holds only the new datapoint.
    let t = observe(&mut s, &p, &dp("t", m.clone(), 720_000, Value::Number(1.0)));
    assert_eq!(words(&t), ["cleared"]);
    assert_eq!(t[0].value, Some(Value::Number(1.0)));
    // Out of order: evaluated over its own window, no panic.
    let t = observe(&mut s, &p, &dp("t", m, 700_000, Value::Number(150.0)));
    assert_eq!(words(&t), ["in"]);
    assert_eq!(t[0].value, Some(Value::Number(150.0)));
}

#[test]
fn duration_on_a_non_cumulative_metric_evaluates_each_value() {
    let p = profile(
        "p",
        r#"[{"name":"conns","metric":"aws:num-established-tcp-connections","criteria":{"comparisonOperator":"less-than","value":{"count":10},"durationSeconds":300}}]"#,
    );
    let mut s = Scorer::new();
    for i in 0..5 {
        let t = observe(
            &mut s,
            &p,
            &dp(
                "t",
                Metric::NumEstablishedTcpConnections,
                i * 1000,
                Value::Number(9.0),
            ),
        );
        assert!(t.is_empty(), "9 < 10 each time; never summed");
    }
}

#[test]
fn statistical_p90_over_ten_devices_alarms_the_top_device() {
    let p = profile(
        "p",
        r#"[{"name":"out","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than-equals","statisticalThreshold":{"statistic":"p90"}}}]"#,
    );
    let mut s = Scorer::new();
    let mut alarmed = Vec::new();
    // Two rounds: the first fills the pool, the second is judged against all ten devices.
    for round in 0..2 {
        for i in 1..=10 {
            let name = format!("d{i:02}");
            let t = observe(
                &mut s,
                &p,
                &dp(
                    &name,
                    Metric::AllBytesOut,
                    round * 1000 + i,
                    Value::Number(i as f64 * 100.0),
                ),
            );
            if round == 1 {
                alarmed.extend(
                    t.iter()
                        .map(|t| (t.thing.to_string(), super::util::word(t.change))),
                );
            }
        }
    }
    // p90 by nearest rank over 100..1000 is 900: only d10 (1000) violates `<= 900`.
    assert_eq!(alarmed, [("d10".to_string(), "still")]);
    assert_eq!(s.alarm_count(), 1);
}

#[test]
fn statistical_needs_three_devices() {
    let p = profile(
        "p",
        r#"[{"name":"out","metric":"aws:all-bytes-out","criteria":{"comparisonOperator":"less-than","statisticalThreshold":{"statistic":"p50"}}}]"#,
    );
    let mut s = Scorer::new();
    let m = Metric::AllBytesOut;
    assert!(observe(&mut s, &p, &dp("a", m.clone(), 0, Value::Number(1.0))).is_empty());
    assert!(
        observe(&mut s, &p, &dp("b", m.clone(), 0, Value::Number(1000.0))).is_empty(),
        "two devices: no verdict"
    );
    // Three devices: p50 = 2; c (2) is not < 2 and violates.
    assert_eq!(
        words(&observe(
            &mut s,
            &p,
            &dp("c", m.clone(), 0, Value::Number(2.0))
        )),
        ["in"]
    );
    assert_eq!(
        words(&observe(&mut s, &p, &dp("b", m, 1, Value::Number(1000.0)))),
        ["in"]
    );
}

#[test]
fn statistical_with_duration_compares_window_sums() {
    let p = profile(
        "p",
        r#"[{"name":"in","metric":"aws:all-bytes-in","criteria":{"comparisonOperator":"less-than-equals","statisticalThreshold":{"statistic":"p50"},"durationSeconds":300}}]"#,
    );
    let mut s = Scorer::new();
    let m = Metric::AllBytesIn;
    for (name, v) in [("a", 10.0), ("b", 20.0), ("c", 30.0)] {
        observe(&mut s, &p, &dp(name, m.clone(), 0, Value::Number(v)));
    }
    // a's sum grows to 10 + 25 = 35 > p50 (30 over {35, 20, 30}).
    let t = observe(&mut s, &p, &dp("a", m, 1000, Value::Number(25.0)));
    assert_eq!(words(&t), ["in"]);
    assert_eq!(t[0].value, Some(Value::Number(35.0)));
}

#[test]
fn dimensions_filter_by_topic_with_wildcards_and_not_in() {
    let p = profile(
        "p",
        r#"[
        {"name":"tele","metric":"aws:num-messages-sent","metricDimension":{"dimensionName":"telemetry"},"criteria":{"comparisonOperator":"less-than","value":{"count":5}}},
        {"name":"other","metric":"aws:num-messages-sent","metricDimension":{"dimensionName":"telemetry","operator":"NOT_IN"},"criteria":{"comparisonOperator":"less-than","value":{"count":5}}}
    ]"#,
    );
    let m = Metric::NumMessagesSent;
    let cases = [
        ("dt/cam/telemetry", Some("tele")),
        ("dt/cam/x/telemetry", Some("other")),
        ("devices/cam/state/now", Some("tele")),
        ("devices/other/state", Some("other")),
        ("admin/reboot", Some("other")),
    ];
    for (topic, which) in cases {
        let mut s = Scorer::new();
        let t = observe(
            &mut s,
            &p,
            &dp_on("cam", m.clone(), topic, 0, Value::Number(9.0)),
        );
        let got: Vec<&str> = t.iter().map(|t| &*t.behavior).collect();
        assert_eq!(got, which.into_iter().collect::<Vec<_>>(), "{topic}");
    }
    let mut s = Scorer::new();
    assert!(
        observe(&mut s, &p, &dp("cam", m, 0, Value::Number(9.0))).is_empty(),
        "no topic: dimensioned behaviors ignore it"
    );
}

#[test]
fn dimensioned_and_plain_behaviors_sum_separately() {
    let p = profile(
        "p",
        r#"[
        {"name":"admin","metric":"aws:num-messages-sent","metricDimension":{"dimensionName":"admin"},"criteria":{"comparisonOperator":"less-than","value":{"count":3},"durationSeconds":300}},
        {"name":"all","metric":"aws:num-messages-sent","criteria":{"comparisonOperator":"less-than","value":{"count":3},"durationSeconds":300}}
    ]"#,
    );
    let mut s = Scorer::new();
    let m = Metric::NumMessagesSent;
    assert!(
        observe(
            &mut s,
            &p,
            &dp_on("t", m.clone(), "admin/a", 0, Value::Number(1.0))
        )
        .is_empty()
    );
    assert!(
        observe(
            &mut s,
            &p,
            &dp_on("t", m.clone(), "data/a", 1, Value::Number(1.0))
        )
        .is_empty()
    );
    let t = observe(&mut s, &p, &dp_on("t", m, "data/b", 2, Value::Number(1.0)));
    let got: Vec<&str> = t.iter().map(|t| &*t.behavior).collect();
    assert_eq!(got, ["all"], "admin saw 1, all saw 3");
}

#[test]
fn custom_metrics_of_every_type() {
    let p = profile(
        "p",
        r#"[
        {"name":"codes","metric":"codes","criteria":{"comparisonOperator":"in-set","value":{"numbers":[0,1,2]}}},
        {"name":"users","metric":"users","criteria":{"comparisonOperator":"not-in-set","value":{"strings":["root"]}}},
        {"name":"peers","metric":"peers","criteria":{"comparisonOperator":"in-cidr-set","value":{"cidrs":["10.0.0.0/8","fd00::/8"]}}}
    ]"#,
    );
    let mut s = Scorer::new();
    let cases = [
        ("codes", Value::Numbers(vec![0.0, 2.0]), false),
        ("codes", Value::Numbers(vec![3.0]), true),
        ("users", Value::Strings(vec!["pi".into()]), false),
        (
            "users",
            Value::Strings(vec!["pi".into(), "root".into()]),
            true,
        ),
        (
            "peers",
            Value::Ips(vec![
                "10.1.1.1".parse().expect("ip"),
                "fd12::1".parse().expect("ip"),
            ]),
            false,
        ),
        (
            "peers",
            Value::Ips(vec!["fe80::1".parse().expect("ip")]),
            true,
        ),
    ];
    for (i, (metric, v, violates)) in cases.into_iter().enumerate() {
        let thing = format!("t{i}");
        let t = observe(&mut s, &p, &dp(&thing, Metric::Custom(metric.into()), 0, v));
        assert_eq!(!t.is_empty(), violates, "{metric} case {i}");
    }
}

#[test]
fn ml_behaviors_and_mismatched_values_are_skipped() {
    let p = profile(
        "p",
        r#"[
        {"name":"ml","metric":"aws:all-bytes-out","criteria":{"mlDetectionConfig":{"confidenceLevel":"LOW"}}},
        {"name":"n","metric":"aws:num-listening-tcp-ports","criteria":{"comparisonOperator":"less-than","value":{"count":1}}}
    ]"#,
    );
    let mut s = Scorer::new();
    assert!(!p.watches(&Metric::AllBytesOut));
    assert!(
        observe(
            &mut s,
            &p,
            &dp("t", Metric::AllBytesOut, 0, Value::Number(1e12))
        )
        .is_empty()
    );
    assert!(
        observe(
            &mut s,
            &p,
            &dp("t", Metric::NumListeningTcpPorts, 0, Value::Ports(vec![1]))
        )
        .is_empty()
    );
    assert!(
        observe(
            &mut s,
            &p,
            &dp(
                "t",
                Metric::NumListeningTcpPorts,
                0,
                Value::Number(f64::NAN)
            )
        )
        .is_empty()
    );
    assert_eq!(s.alarm_entries(), 0);
}

#[test]
fn profiles_keep_separate_state() {
    let behaviors = r#"[{"name":"b","metric":"aws:num-listening-udp-ports","criteria":{"comparisonOperator":"less-than","value":{"count":1}}}]"#;
    let (p, q) = (profile("p", behaviors), profile("q", behaviors));
    let mut s = Scorer::new();
    let d = dp("t", Metric::NumListeningUdpPorts, 0, Value::Number(3.0));
    assert_eq!(words(&observe(&mut s, &p, &d)), ["in"]);
    assert_eq!(words(&observe(&mut s, &q, &d)), ["in"]);
    assert_eq!(s.alarm_count(), 2);
}

#[test]
fn recompiled_profile_keeps_alarms_of_unchanged_behaviors() {
    let b = r#"[{"name":"b","metric":"aws:num-listening-udp-ports","criteria":{"comparisonOperator":"less-than","value":{"count":1}}}]"#;
    let mut s = Scorer::new();
    let d = |ts, v| dp("t", Metric::NumListeningUdpPorts, ts, Value::Number(v));
    assert_eq!(
        words(&observe(&mut s, &profile("p", b), &d(0, 3.0))),
        ["in"]
    );
    let v2 = profile("p", b);
    assert_eq!(words(&observe(&mut s, &v2, &d(1, 3.0))), ["still"]);
    assert_eq!(words(&observe(&mut s, &v2, &d(2, 0.0))), ["cleared"]);
}
