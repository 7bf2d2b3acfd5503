//! Compiled behavior criteria: each STATIC or STATISTICAL criteria becomes a [`Rule`] that
//! decides in a few nanoseconds whether a value violates it.
//!
//! Criteria describe what is *normal*; a value violates when the criteria are not satisfied:
//!
//! | operator | violation when |
//! |---|---|
//! | `less-than t` | value ≥ t |
//! | `less-than-equals t` | value > t |
//! | `greater-than t` | value ≤ t |
//! | `greater-than-equals t` | value < t |
//! | `in-port-set S`, `in-cidr-set S`, `in-set S` | some element of the value is outside S |
//! | `not-in-port-set S`, `not-in-cidr-set S`, `not-in-set S` | some element of the value is in S |
//!
//! An empty value list (a report with no listening ports, no addresses) is always compliant,
//! as AWS documents; it therefore also counts towards clearing an alarm. An empty criteria
//! set is taken literally: `in-port-set []` means "no port may listen", `not-in-set []`
//! forbids nothing.
//!
//! Representations, chosen for the hot path:
//! - numbers compare as `f64` (`count` criteria are converted once);
//! - port sets are a 65,536-bit bitset (8 KiB per behavior, one load per port);
//! - CIDR sets are sorted, merged address ranges — IPv4 as `u32`, IPv6 as `u128` — searched
//!   by bisection; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is matched as IPv4;
//! - string and number sets are sorted and bisected (numbers by total order, `-0` as `0`).
//!
//! A value whose kind does not fit the rule (a list for a numeric rule, a NaN) gets no
//! verdict: [`Rule::violates`] returns `None` and the alarm state is left untouched.

use crate::Error;
use std::net::IpAddr;
use thingward_models::behavior::parse_cidr;
use thingward_models::{
    BehaviorCriteria, ComparisonOperator, ConfidenceLevel, Statistic, Value, ValueKind,
};

/// A compiled criteria.
#[derive(Debug, Clone)]
pub struct Rule {
    kind: RuleKind,
}

#[derive(Debug, Clone)]
enum RuleKind {
    /// A numeric comparison with a static threshold.
    Number { op: NumericOp, threshold: f64 },
    /// A numeric comparison with a percentile of the profile's devices.
    Statistical { op: NumericOp, statistic: Statistic },
    /// `in-port-set` (`inside` = true) or `not-in-port-set`.
    Ports { set: PortSet, inside: bool },
    /// `in-cidr-set` or `not-in-cidr-set`.
    Cidrs { set: CidrSet, inside: bool },
    /// `in-set` or `not-in-set` over strings.
    Strings { set: Vec<Box<str>>, inside: bool },
    /// `in-set` or `not-in-set` over numbers.
    Numbers { set: Vec<f64>, inside: bool },
    /// ML Detect: not evaluated by rules; the level at which the behavior alarms.
    MachineLearning { level: ConfidenceLevel },
}

/// The numeric comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumericOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl NumericOp {
    fn from_operator(op: ComparisonOperator) -> Option<Self> {
        match op {
            ComparisonOperator::LessThan => Some(Self::Lt),
            ComparisonOperator::LessThanEquals => Some(Self::Le),
            ComparisonOperator::GreaterThan => Some(Self::Gt),
            ComparisonOperator::GreaterThanEquals => Some(Self::Ge),
            _ => None,
        }
    }

    /// Whether `x` violates `x <op> threshold`; None for a NaN on either side.
    #[inline]
    fn violates(self, x: f64, threshold: f64) -> Option<bool> {
        if x.is_nan() || threshold.is_nan() {
            return None;
        }
        let normal = match self {
            Self::Lt => x < threshold,
            Self::Le => x <= threshold,
            Self::Gt => x > threshold,
            Self::Ge => x >= threshold,
        };
        Some(!normal)
    }
}

impl Rule {
    /// Compiles `criteria` of the behavior `behavior` for a metric whose values are `kind`.
    ///
    /// ML criteria compile to a rule that [`Rule::is_machine_learning`] reports and that
    /// never gives a verdict.
    ///
    /// # Errors
    /// When the criteria are incomplete or do not suit `kind` (see [`Error`]).
    pub fn compile(
        behavior: &str,
        criteria: &BehaviorCriteria,
        kind: ValueKind,
    ) -> Result<Self, Error> {
        let name = || behavior.to_owned();
        if let Some(ml) = &criteria.ml_detection_config {
            return Ok(Self {
                kind: RuleKind::MachineLearning {
                    level: ml.confidence_level,
                },
            });
        }
        if criteria.statistical_threshold.is_none() && criteria.value.is_none() {
            return Err(Error::MissingCriteria { behavior: name() });
        }
        let operator = criteria
            .comparison_operator
            .ok_or_else(|| Error::MissingOperator { behavior: name() })?;
        if !operator.suits(kind) {
            return Err(Error::OperatorMismatch {
                behavior: name(),
                operator,
                kind,
            });
        }
        if let Some(st) = &criteria.statistical_threshold {
            let (Some(statistic), Some(op)) = (st.statistic, NumericOp::from_operator(operator))
            else {
                return Err(Error::BadStatisticalThreshold { behavior: name() });
            };
            return Ok(Self {
                kind: RuleKind::Statistical { op, statistic },
            });
        }
        let Some(value) = &criteria.value else {
            return Err(Error::MissingCriteria { behavior: name() });
        };
        let mismatch = |member| Error::ValueMismatch {
            behavior: name(),
            operator,
            member,
        };
        let inside = matches!(
            operator,
            ComparisonOperator::InCidrSet
                | ComparisonOperator::InPortSet
                | ComparisonOperator::InSet
        );
        let kind = match (NumericOp::from_operator(operator), kind) {
            (Some(op), _) => {
                // Built-ins carry `count`, custom metrics `number`; accept either.
                let threshold = value
                    .count
                    .map(|c| c as f64)
                    .or(value.number)
                    .ok_or_else(|| mismatch("count"))?;
                if !threshold.is_finite() {
                    return Err(Error::NonFiniteValue { behavior: name() });
                }
                RuleKind::Number { op, threshold }
            }
            (None, ValueKind::PortList) => {
                let ports = value.ports.as_ref().ok_or_else(|| mismatch("ports"))?;
                let mut set = PortSet::empty();
                for &p in ports {
                    let port = u16::try_from(p).map_err(|_| Error::BadPort {
                        behavior: name(),
                        port: p,
                    })?;
                    set.insert(port);
                }
                RuleKind::Ports { set, inside }
            }
            (None, ValueKind::IpList) => {
                let cidrs = value.cidrs.as_ref().ok_or_else(|| mismatch("cidrs"))?;
                let set = CidrSet::parse(cidrs).map_err(|cidr| Error::BadCidr {
                    behavior: name(),
                    cidr: cidr.chars().take(64).collect(),
                })?;
                RuleKind::Cidrs { set, inside }
            }
            (None, ValueKind::StringList) => {
                let strings = value.strings.as_ref().ok_or_else(|| mismatch("strings"))?;
                let mut set: Vec<Box<str>> = strings.iter().map(|s| s.as_str().into()).collect();
                set.sort_unstable();
                set.dedup();
                RuleKind::Strings { set, inside }
            }
            (None, ValueKind::NumberList) => {
                let numbers = value.numbers.as_ref().ok_or_else(|| mismatch("numbers"))?;
                let mut set: Vec<f64> = numbers
                    .iter()
                    .copied()
                    .filter(|x| !x.is_nan())
                    .map(canonical)
                    .collect();
                set.sort_unstable_by(f64::total_cmp);
                set.dedup();
                RuleKind::Numbers { set, inside }
            }
            // `suits` admits only numeric operators for numbers, so this is unreachable for
            // checked input; refuse rather than guess.
            (None, ValueKind::Number) => {
                return Err(Error::OperatorMismatch {
                    behavior: name(),
                    operator,
                    kind,
                });
            }
        };
        Ok(Self { kind })
    }

    /// Whether `value` violates this rule: `Some(true)` violates, `Some(false)` is compliant,
    /// `None` means no verdict (the value's kind does not fit, a NaN, or a statistical or ML
    /// rule, which need more than the value).
    #[inline]
    pub fn violates(&self, value: &Value) -> Option<bool> {
        match (&self.kind, value) {
            (RuleKind::Number { op, threshold }, Value::Number(x)) => op.violates(*x, *threshold),
            (RuleKind::Ports { set, inside }, Value::Ports(ports)) => {
                Some(ports.iter().any(|&p| set.contains(p) != *inside))
            }
            (RuleKind::Cidrs { set, inside }, Value::Ips(ips)) => {
                Some(ips.iter().any(|ip| set.contains(*ip) != *inside))
            }
            (RuleKind::Strings { set, inside }, Value::Strings(strings)) => Some(
                strings
                    .iter()
                    .any(|s| set.binary_search_by(|e| (**e).cmp(s.as_str())).is_ok() != *inside),
            ),
            (RuleKind::Numbers { set, inside }, Value::Numbers(numbers)) => {
                Some(numbers.iter().any(|&x| {
                    let found =
                        !x.is_nan() && set.binary_search_by(|e| e.total_cmp(&canonical(x))).is_ok();
                    found != *inside
                }))
            }
            _ => None,
        }
    }

    /// Whether `x` violates a statistical rule whose percentile is `threshold`; None for a
    /// static or ML rule, or a NaN.
    #[inline]
    pub fn violates_threshold(&self, x: f64, threshold: f64) -> Option<bool> {
        match &self.kind {
            RuleKind::Statistical { op, .. } => op.violates(x, threshold),
            _ => None,
        }
    }

    /// The percentile of a statistical rule.
    pub fn statistic(&self) -> Option<Statistic> {
        match &self.kind {
            RuleKind::Statistical { statistic, .. } => Some(*statistic),
            _ => None,
        }
    }

    /// Whether this is an ML Detect behavior, which Rules Detect skips.
    pub fn is_machine_learning(&self) -> bool {
        matches!(self.kind, RuleKind::MachineLearning { .. })
    }

    /// The `mlDetectionConfig.confidenceLevel` of an ML Detect behavior.
    pub fn confidence_level(&self) -> Option<ConfidenceLevel> {
        match self.kind {
            RuleKind::MachineLearning { level } => Some(level),
            _ => None,
        }
    }
}

/// `-0.0` as `0.0`, so that number sets compare as people expect.
#[inline]
fn canonical(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x }
}

/// A set of ports as a 65,536-bit bitset.
#[derive(Clone)]
struct PortSet {
    bits: Box<[u64; 1024]>,
}

impl PortSet {
    fn empty() -> Self {
        Self {
            bits: Box::new([0; 1024]),
        }
    }

    fn insert(&mut self, port: u16) {
        self.bits[usize::from(port >> 6)] |= 1 << (port & 63);
    }

    #[inline]
    fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port >> 6)] >> (port & 63) & 1 == 1
    }
}

impl std::fmt::Debug for PortSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports = (0..=u16::MAX).filter(|&p| self.contains(p));
        f.debug_set().entries(ports).finish()
    }
}

/// A set of CIDRs as sorted, disjoint, inclusive address ranges per family.
#[derive(Debug, Clone, Default)]
struct CidrSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl CidrSet {
    /// Parses CIDRs and bare addresses; returns the first unparsable entry on failure.
    fn parse(cidrs: &[String]) -> Result<Self, &str> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for cidr in cidrs {
            match parse_cidr(cidr).map_err(|_| cidr.as_str())? {
                (IpAddr::V4(a), prefix) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                    let start = u32::from(a) & mask;
                    v4.push((start, start | !mask));
                }
                (IpAddr::V6(a), prefix) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                    let start = u128::from(a) & mask;
                    v6.push((start, start | !mask));
                }
            }
        }
        Ok(Self {
            v4: merge(v4),
            v6: merge(v6),
        })
    }

    #[inline]
    fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => in_ranges(&self.v4, u32::from(a)),
            IpAddr::V6(a) => in_ranges(&self.v6, u128::from(a)),
        }
    }
}

/// Sorts inclusive ranges and merges overlapping or adjacent ones.
fn merge<T: Ord + Copy + CheckedSucc>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if last.1.checked_succ().is_none_or(|next| start <= next) => {
                last.1 = last.1.max(end);
            }
            _ => out.push((start, end)),
        }
    }
    out
}

#[inline]
fn in_ranges<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    // The last range starting at or before x is the only candidate.
    let i = ranges.partition_point(|r| r.0 <= x);
    i > 0 && ranges[i - 1].1 >= x
}

trait CheckedSucc: Sized {
    fn checked_succ(self) -> Option<Self>;
}

impl CheckedSucc for u32 {
    fn checked_succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl CheckedSucc for u128 {
    fn checked_succ(self) -> Option<Self> {
        self.checked_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thingward_models::MetricValue;

    fn criteria(json: &str) -> BehaviorCriteria {
        serde_json::from_str(json).expect("criteria json")
    }

    fn rule(json: &str, kind: ValueKind) -> Rule {
        Rule::compile("b", &criteria(json), kind).expect("compiles")
    }

    fn ips(list: &[&str]) -> Value {
        Value::Ips(list.iter().map(|s| s.parse().expect("ip")).collect())
    }

    #[test]
    fn numeric_operators_describe_normal() {
        let cases = [
            ("less-than", [(99.0, false), (100.0, true), (101.0, true)]),
            (
                "less-than-equals",
                [(99.0, false), (100.0, false), (101.0, true)],
            ),
            (
                "greater-than",
                [(99.0, true), (100.0, true), (101.0, false)],
            ),
            (
                "greater-than-equals",
                [(99.0, true), (100.0, false), (101.0, false)],
            ),
        ];
        for (op, expect) in cases {
            let r = rule(
                &format!(r#"{{"comparisonOperator":"{op}","value":{{"count":100}}}}"#),
                ValueKind::Number,
            );
            for (x, violates) in expect {
                assert_eq!(r.violates(&Value::Number(x)), Some(violates), "{op} {x}");
            }
        }
    }

    #[test]
    fn custom_number_thresholds_and_nan() {
        let r = rule(
            r#"{"comparisonOperator":"greater-than","value":{"number":-1.5}}"#,
            ValueKind::Number,
        );
        assert_eq!(r.violates(&Value::Number(-1.0)), Some(false));
        assert_eq!(r.violates(&Value::Number(-2.0)), Some(true));
        assert_eq!(r.violates(&Value::Number(f64::NAN)), None);
        assert_eq!(r.violates(&Value::Number(f64::INFINITY)), Some(false));
        assert_eq!(
            r.violates(&Value::Ports(vec![1])),
            None,
            "kind mismatch gives no verdict"
        );
    }

    #[test]
    fn port_sets() {
        let r = rule(
            r#"{"comparisonOperator":"in-port-set","value":{"ports":[22,443]}}"#,
            ValueKind::PortList,
        );
        assert_eq!(r.violates(&Value::Ports(vec![22])), Some(false));
        assert_eq!(r.violates(&Value::Ports(vec![443, 22])), Some(false));
        assert_eq!(r.violates(&Value::Ports(vec![22, 8080])), Some(true));
        assert_eq!(
            r.violates(&Value::Ports(vec![])),
            Some(false),
            "empty report is compliant"
        );

        let r = rule(
            r#"{"comparisonOperator":"not-in-port-set","value":{"ports":[23,0,65535]}}"#,
            ValueKind::PortList,
        );
        assert_eq!(r.violates(&Value::Ports(vec![22, 80])), Some(false));
        assert_eq!(r.violates(&Value::Ports(vec![22, 23])), Some(true));
        assert_eq!(r.violates(&Value::Ports(vec![0])), Some(true));
        assert_eq!(r.violates(&Value::Ports(vec![65535])), Some(true));
        assert_eq!(r.violates(&Value::Ports(vec![])), Some(false));
    }

    #[test]
    fn empty_criteria_sets_are_literal() {
        let r = rule(
            r#"{"comparisonOperator":"in-port-set","value":{"ports":[]}}"#,
            ValueKind::PortList,
        );
        assert_eq!(r.violates(&Value::Ports(vec![])), Some(false));
        assert_eq!(r.violates(&Value::Ports(vec![22])), Some(true));
        let r = rule(
            r#"{"comparisonOperator":"not-in-port-set","value":{"ports":[]}}"#,
            ValueKind::PortList,
        );
        assert_eq!(r.violates(&Value::Ports(vec![22])), Some(false));
        let r = rule(
            r#"{"comparisonOperator":"not-in-cidr-set","value":{"cidrs":[]}}"#,
            ValueKind::IpList,
        );
        assert_eq!(r.violates(&ips(&["1.2.3.4"])), Some(false));
        let r = rule(
            r#"{"comparisonOperator":"not-in-set","value":{"strings":[]}}"#,
            ValueKind::StringList,
        );
        assert_eq!(r.violates(&Value::Strings(vec!["x".into()])), Some(false));
    }

    #[test]
    fn ipv4_cidr_sets() {
        let r = rule(
            r#"{"comparisonOperator":"in-cidr-set","value":{"cidrs":["10.0.0.0/8","192.168.1.7","0.0.0.0/32"]}}"#,
            ValueKind::IpList,
        );
        assert_eq!(
            r.violates(&ips(&["10.1.2.3", "10.255.255.255"])),
            Some(false)
        );
        assert_eq!(r.violates(&ips(&["192.168.1.7"])), Some(false));
        assert_eq!(r.violates(&ips(&["192.168.1.8"])), Some(true));
        assert_eq!(r.violates(&ips(&["10.0.0.1", "11.0.0.0"])), Some(true));
        assert_eq!(r.violates(&ips(&["0.0.0.0"])), Some(false));
        assert_eq!(
            r.violates(&ips(&["::ffff:10.9.9.9"])),
            Some(false),
            "v4-mapped v6 is v4"
        );
        assert_eq!(
            r.violates(&ips(&["2001:db8::1"])),
            Some(true),
            "v6 outside a v4-only set"
        );
        assert_eq!(r.violates(&ips(&[])), Some(false));

        let r = rule(
            r#"{"comparisonOperator":"not-in-cidr-set","value":{"cidrs":["0.0.0.0/0"]}}"#,
            ValueKind::IpList,
        );
        assert_eq!(r.violates(&ips(&["255.255.255.255"])), Some(true));
        assert_eq!(r.violates(&ips(&["::1"])), Some(false));
    }

    #[test]
    fn ipv6_cidr_sets() {
        let r = rule(
            r#"{"comparisonOperator":"in-cidr-set","value":{"cidrs":["2001:db8::/32","fe80::1","::/128"]}}"#,
            ValueKind::IpList,
        );
        assert_eq!(r.violates(&ips(&["2001:db8:ffff:ffff::1"])), Some(false));
        assert_eq!(r.violates(&ips(&["2001:db9::"])), Some(true));
        assert_eq!(r.violates(&ips(&["fe80::1"])), Some(false));
        assert_eq!(r.violates(&ips(&["fe80::2"])), Some(true));
        assert_eq!(r.violates(&ips(&["::"])), Some(false));

        let r = rule(
            r#"{"comparisonOperator":"not-in-cidr-set","value":{"cidrs":["::/0"]}}"#,
            ValueKind::IpList,
        );
        assert_eq!(
            r.violates(&ips(&["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"])),
            Some(true)
        );
        assert_eq!(r.violates(&ips(&["8.8.8.8"])), Some(false));
    }

    #[test]
    fn overlapping_and_adjacent_cidrs_merge() {
        let set = CidrSet::parse(&[
            "10.0.0.0/24".into(),
            "10.0.1.0/24".into(),
            "10.0.0.128/25".into(),
            "0.0.0.0/0".into(),
            "255.255.255.255".into(),
        ])
        .expect("parses");
        assert_eq!(set.v4, vec![(0, u32::MAX)]);
        let set = CidrSet::parse(&[
            "10.0.0.0/24".into(),
            "10.0.1.0/24".into(),
            "10.0.3.0/24".into(),
        ])
        .expect("parses");
        assert_eq!(set.v4.len(), 2);
        assert!(set.contains("10.0.1.255".parse().expect("ip")));
        assert!(!set.contains("10.0.2.0".parse().expect("ip")));
        assert_eq!(
            CidrSet::parse(&["10.0.0.0/33".into()]).err(),
            Some("10.0.0.0/33")
        );
    }

    #[test]
    fn string_and_number_sets() {
        let r = rule(
            r#"{"comparisonOperator":"in-set","value":{"strings":["a","b"]}}"#,
            ValueKind::StringList,
        );
        assert_eq!(
            r.violates(&Value::Strings(vec!["a".into(), "b".into()])),
            Some(false)
        );
        assert_eq!(
            r.violates(&Value::Strings(vec!["a".into(), "c".into()])),
            Some(true)
        );
        assert_eq!(r.violates(&Value::Strings(vec![])), Some(false));
        let r = rule(
            r#"{"comparisonOperator":"not-in-set","value":{"strings":["root"]}}"#,
            ValueKind::StringList,
        );
        assert_eq!(
            r.violates(&Value::Strings(vec!["user".into()])),
            Some(false)
        );
        assert_eq!(
            r.violates(&Value::Strings(vec!["user".into(), "root".into()])),
            Some(true)
        );

        let r = rule(
            r#"{"comparisonOperator":"in-set","value":{"numbers":[1.5,0,-3]}}"#,
            ValueKind::NumberList,
        );
        assert_eq!(
            r.violates(&Value::Numbers(vec![1.5, -0.0, -3.0])),
            Some(false)
        );
        assert_eq!(r.violates(&Value::Numbers(vec![2.0])), Some(true));
        assert_eq!(r.violates(&Value::Numbers(vec![f64::NAN])), Some(true));
        assert_eq!(r.violates(&Value::Numbers(vec![])), Some(false));
        let r = rule(
            r#"{"comparisonOperator":"not-in-set","value":{"numbers":[7]}}"#,
            ValueKind::NumberList,
        );
        assert_eq!(r.violates(&Value::Numbers(vec![6.0, 8.0])), Some(false));
        assert_eq!(r.violates(&Value::Numbers(vec![6.0, 7.0])), Some(true));
    }

    #[test]
    fn statistical_and_ml_rules() {
        let r = rule(
            r#"{"comparisonOperator":"less-than-equals","statisticalThreshold":{"statistic":"p90"}}"#,
            ValueKind::Number,
        );
        assert_eq!(r.statistic(), Some(Statistic::P90));
        assert_eq!(r.violates(&Value::Number(1.0)), None);
        assert_eq!(r.violates_threshold(9.0, 9.0), Some(false));
        assert_eq!(r.violates_threshold(10.0, 9.0), Some(true));
        let r = rule(
            r#"{"mlDetectionConfig":{"confidenceLevel":"HIGH"}}"#,
            ValueKind::Number,
        );
        assert!(r.is_machine_learning());
        assert_eq!(r.violates(&Value::Number(1.0)), None);
    }

    #[test]
    fn broken_criteria_are_refused() {
        type Check = fn(&Error) -> bool;
        let cases: [(&str, ValueKind, Check); 7] = [
            (r#"{"value":{"count":1}}"#, ValueKind::Number, |e| {
                matches!(e, Error::MissingOperator { .. })
            }),
            (
                r#"{"comparisonOperator":"less-than"}"#,
                ValueKind::Number,
                |e| matches!(e, Error::MissingCriteria { .. }),
            ),
            (
                r#"{"comparisonOperator":"in-port-set","value":{"ports":[1]}}"#,
                ValueKind::Number,
                |e| matches!(e, Error::OperatorMismatch { .. }),
            ),
            (
                r#"{"comparisonOperator":"in-port-set","value":{"ports":[70000]}}"#,
                ValueKind::PortList,
                |e| matches!(e, Error::BadPort { port: 70000, .. }),
            ),
            (
                r#"{"comparisonOperator":"in-cidr-set","value":{"cidrs":["nope"]}}"#,
                ValueKind::IpList,
                |e| matches!(e, Error::BadCidr { .. }),
            ),
            (
                r#"{"comparisonOperator":"in-cidr-set","value":{"ports":[1]}}"#,
                ValueKind::IpList,
                |e| {
                    matches!(
                        e,
                        Error::ValueMismatch {
                            member: "cidrs",
                            ..
                        }
                    )
                },
            ),
            (
                r#"{"comparisonOperator":"less-than","statisticalThreshold":{}}"#,
                ValueKind::Number,
                |e| matches!(e, Error::BadStatisticalThreshold { .. }),
            ),
        ];
        for (json, kind, check) in cases {
            let err = Rule::compile("b", &criteria(json), kind).expect_err(json);
            assert!(check(&err), "{json}: {err}");
        }
        let mut c = criteria(r#"{"comparisonOperator":"less-than"}"#);
        c.value = Some(MetricValue {
            number: Some(f64::INFINITY),
            ..MetricValue::default()
        });
        assert!(matches!(
            Rule::compile("b", &c, ValueKind::Number),
            Err(Error::NonFiniteValue { .. })
        ));
    }
}
