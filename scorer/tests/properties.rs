//! Properties: evaluation never panics, the alarm machine's transitions are well ordered, and
//! scoring is deterministic. Proptest's default seeding is deterministic per test name unless
//! `PROPTEST_RNG_SEED` says otherwise; failures are persisted by proptest for replay.

use crate::util::{dp, profile};
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::IpAddr;
use thingward_models::{
    BehaviorCriteria, ComparisonOperator, Metric, MetricValue, Statistic, StatisticalThreshold,
    ThingName, Value, ValueKind, ViolationEventType,
};
use thingward_scorer::statistical::nearest_rank;
use thingward_scorer::window::{MAX_SAMPLES, Window};
use thingward_scorer::{Change, CompiledProfile, Rule, Scorer, Transition};

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>().prop_map(Value::Number),
        prop::collection::vec(any::<f64>(), 0..6).prop_map(Value::Numbers),
        prop::collection::vec("[a-c]{0,2}", 0..6).prop_map(Value::Strings),
        prop::collection::vec(any::<IpAddr>(), 0..6).prop_map(Value::Ips),
        prop::collection::vec(any::<u16>(), 0..6).prop_map(Value::Ports),
    ]
}

fn any_operator() -> impl Strategy<Value = ComparisonOperator> {
    use ComparisonOperator as C;
    prop::sample::select(vec![
        C::LessThan,
        C::LessThanEquals,
        C::GreaterThan,
        C::GreaterThanEquals,
        C::InCidrSet,
        C::NotInCidrSet,
        C::InPortSet,
        C::NotInPortSet,
        C::InSet,
        C::NotInSet,
    ])
}

fn any_kind() -> impl Strategy<Value = ValueKind> {
    prop::sample::select(vec![
        ValueKind::Number,
        ValueKind::NumberList,
        ValueKind::StringList,
        ValueKind::IpList,
        ValueKind::PortList,
    ])
}

fn any_metric_value() -> impl Strategy<Value = MetricValue> {
    let cidr = prop_oneof![
        (any::<std::net::Ipv4Addr>(), 0u8..=33).prop_map(|(a, p)| format!("{a}/{p}")),
        (any::<std::net::Ipv6Addr>(), 0u8..=129).prop_map(|(a, p)| format!("{a}/{p}")),
        any::<IpAddr>().prop_map(|a| a.to_string()),
        "[0-9a-f:./]{0,8}",
    ];
    (
        prop::option::of(any::<i64>()),
        prop::option::of(any::<f64>()),
        prop::option::of(prop::collection::vec(-5i64..70_000, 0..6)),
        prop::option::of(prop::collection::vec(cidr, 0..6)),
        prop::option::of(prop::collection::vec(any::<f64>(), 0..6)),
        prop::option::of(prop::collection::vec("[a-c]{0,2}", 0..6)),
    )
        .prop_map(
            |(count, number, ports, cidrs, numbers, strings)| MetricValue {
                count,
                cidrs,
                ports,
                number,
                numbers,
                strings,
            },
        )
}

fn any_criteria() -> impl Strategy<Value = BehaviorCriteria> {
    (
        prop::option::of(any_operator()),
        prop::option::of(any_metric_value()),
        prop::option::of(prop::sample::select(vec![
            Statistic::P0,
            Statistic::P50,
            Statistic::P90,
            Statistic::P100,
        ])),
    )
        .prop_map(|(comparison_operator, value, statistic)| BehaviorCriteria {
            comparison_operator,
            statistical_threshold: statistic.map(|s| StatisticalThreshold { statistic: Some(s) }),
            value,
            ..BehaviorCriteria::default()
        })
}

/// An operation on the scorer in a random session.
#[derive(Debug, Clone)]
enum Op {
    Observe {
        thing: u8,
        metric: u8,
        value: f64,
        dt: i64,
    },
    InvalidateThing {
        thing: u8,
    },
    InvalidateSilent {
        silence_ms: i64,
    },
    DropBehavior,
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => (0u8..4, 0u8..3, prop_oneof![Just(0.0), Just(2.0), Just(50.0), any::<f64>()], 0i64..5_000)
            .prop_map(|(thing, metric, value, dt)| Op::Observe { thing, metric, value, dt }),
        1 => (0u8..4).prop_map(|thing| Op::InvalidateThing { thing }),
        1 => (0i64..10_000).prop_map(|silence_ms| Op::InvalidateSilent { silence_ms }),
        1 => Just(Op::DropBehavior),
    ]
}

fn session_profile(to_alarm: u8, to_clear: u8) -> CompiledProfile {
    profile(
        "prop",
        &format!(
            r#"[
            {{"name":"tcp","metric":"aws:num-listening-tcp-ports","criteria":{{"comparisonOperator":"less-than","value":{{"count":1}},"consecutiveDatapointsToAlarm":{to_alarm},"consecutiveDatapointsToClear":{to_clear}}}}},
            {{"name":"sent","metric":"aws:num-messages-sent","criteria":{{"comparisonOperator":"less-than-equals","value":{{"count":60}},"durationSeconds":300,"consecutiveDatapointsToAlarm":{to_alarm},"consecutiveDatapointsToClear":{to_clear}}}}},
            {{"name":"stat","metric":"aws:all-bytes-out","criteria":{{"comparisonOperator":"less-than","statisticalThreshold":{{"statistic":"p50"}},"consecutiveDatapointsToAlarm":{to_alarm},"consecutiveDatapointsToClear":{to_clear}}}}}
        ]"#
        ),
    )
}

const METRICS: [Metric; 3] = [
    Metric::NumListeningTcpPorts,
    Metric::NumMessagesSent,
    Metric::AllBytesOut,
];

/// Runs a session and returns every transition, in order.
fn run_session(to_alarm: u8, to_clear: u8, ops: &[Op]) -> Vec<Transition> {
    let p = session_profile(to_alarm, to_clear);
    let mut s = Scorer::new();
    let mut out = Vec::new();
    let mut now = 0i64;
    for op in ops {
        match *op {
            Op::Observe {
                thing,
                metric,
                value,
                dt,
            } => {
                now += dt;
                let d = dp(
                    &format!("t{thing}"),
                    METRICS[usize::from(metric)].clone(),
                    now,
                    Value::Number(value),
                );
                s.observe(&p, &d, &mut out);
            }
            Op::InvalidateThing { thing } => {
                let name = ThingName::try_from(format!("t{thing}")).expect("thing");
                s.invalidate_thing(&name, "prop", now, &mut out);
            }
            Op::InvalidateSilent { silence_ms } => s.invalidate_silent(now, silence_ms, &mut out),
            Op::DropBehavior => s.invalidate_profile("prop", &["tcp", "stat"], now, &mut out),
        }
    }
    out
}

proptest! {
    #[test]
    fn rule_evaluation_never_panics(criteria in any_criteria(), kind in any_kind(), values in prop::collection::vec(any_value(), 1..8), threshold in any::<f64>()) {
        if let Ok(rule) = Rule::compile("b", &criteria, kind) {
            for v in &values {
                let verdict = rule.violates(v);
                if let (Some(_), Value::Number(x)) = (verdict, v) {
                    prop_assert!(!x.is_nan(), "NaN never gets a verdict");
                }
                if let Value::Number(x) = v {
                    let _ = rule.violates_threshold(*x, threshold);
                }
            }
        }
    }

    #[test]
    fn empty_value_lists_are_always_compliant(criteria in any_criteria(), kind in any_kind()) {
        if let Ok(rule) = Rule::compile("b", &criteria, kind) {
            for v in [Value::Numbers(vec![]), Value::Strings(vec![]), Value::Ips(vec![]), Value::Ports(vec![])] {
                prop_assert_ne!(rule.violates(&v), Some(true));
            }
        }
    }

    #[test]
    fn alarm_transitions_are_well_ordered(to_alarm in 1u8..=4, to_clear in 1u8..=4, ops in prop::collection::vec(any_op(), 0..200)) {
        let mut in_alarm: HashMap<(String, String), bool> = HashMap::new();
        for t in run_session(to_alarm, to_clear, &ops) {
            let state = in_alarm.entry((t.thing.to_string(), t.behavior.to_string())).or_default();
            match t.change {
                Change::Event(ViolationEventType::InAlarm) => {
                    prop_assert!(!*state, "in-alarm while in alarm: {t:?}");
                    *state = true;
                }
                Change::StillInAlarm => prop_assert!(*state, "still-in-alarm without in-alarm: {t:?}"),
                Change::Event(ViolationEventType::AlarmCleared | ViolationEventType::AlarmInvalidated) => {
                    prop_assert!(*state, "cleared/invalidated without a prior in-alarm: {t:?}");
                    *state = false;
                }
            }
        }
    }

    #[test]
    fn scoring_is_deterministic(to_alarm in 1u8..=4, to_clear in 1u8..=4, ops in prop::collection::vec(any_op(), 0..200)) {
        let a = run_session(to_alarm, to_clear, &ops);
        let b = run_session(to_alarm, to_clear, &ops);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn window_sums_match_brute_force_in_order(steps in prop::collection::vec((0i64..200_000, 0.0f64..1e6), 1..MAX_SAMPLES)) {
        const D: i64 = 300_000;
        let mut w = Window::new();
        let mut seen: Vec<(i64, f64)> = Vec::new();
        let mut t = 0;
        for (dt, x) in steps {
            t += dt;
            seen.push((t, x));
            let want: f64 = seen.iter().filter(|s| s.0 > t - D && s.0 <= t).map(|s| s.1).sum();
            let got = w.push(t, x, D);
            prop_assert!((got - want).abs() <= 1e-6 * want.abs().max(1.0), "{got} vs {want}");
        }
    }

    #[test]
    fn nearest_rank_matches_sorting(mut values in prop::collection::vec(-1e9f64..1e9, 1..300), q in 0.0f64..=1.0) {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let rank = ((q * n as f64) - 1e-9).ceil().max(1.0) as usize;
        prop_assert_eq!(nearest_rank(&mut values, q), Some(sorted[rank.min(n) - 1]));
    }
}
