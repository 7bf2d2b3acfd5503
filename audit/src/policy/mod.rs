//! `IOT_POLICY_OVERLY_PERMISSIVE_CHECK` and `IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK` over
//! AWS IoT policy documents (default versions only). A document that is not JSON, has no
//! Statement, or has a malformed statement is reported by `AUDIT_INPUT_UNREADABLE_CHECK`
//! instead. Never panics on any input.

use serde_json::Value;

use crate::check::reason;
use crate::finding::{PolicyVersionIdentifier, Resource, ResourceIdentifier};
use crate::{PolicyRecord, ResourceType, parallel};

pub(crate) mod checks;

/// `Effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// One statement, normalised: lowercase actions (with `NotAction` expanded over the
/// data-plane actions) and resources (`NotResource` = `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Statement {
    pub(crate) index: usize,
    pub(crate) effect: Effect,
    pub(crate) actions: Vec<String>,
    pub(crate) resources: Vec<String>,
}

/// The MQTT / shadow / jobs data-plane actions and the ARN resource type each applies to.
const DATA_PLANE: &[(&str, &str)] = &[
    ("iot:connect", "client"),
    ("iot:publish", "topic"),
    ("iot:retainpublish", "topic"),
    ("iot:receive", "topic"),
    ("iot:subscribe", "topicfilter"),
    ("iot:getthingshadow", "thing"),
    ("iot:updatethingshadow", "thing"),
    ("iot:deletethingshadow", "thing"),
    ("iot:listnamedshadowsforthing", "thing"),
    ("iot:describejobexecution", "thing"),
    ("iot:getpendingjobexecutions", "thing"),
    ("iot:startnextpendingjobexecution", "thing"),
    ("iot:updatejobexecution", "thing"),
];

/// IAM-style glob: `*` any run, `?` any one character. Iterative, no recursion blow-up.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn strings(v: Option<&Value>, what: &str, index: usize) -> Result<Vec<String>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("Statement {index}: {what} entries must be strings"))
            })
            .collect(),
        Some(_) => Err(format!(
            "Statement {index}: {what} must be a string or an array of strings"
        )),
    }
}

/// Parses a policy document into statements.
///
/// # Errors
/// Not JSON, no `Statement`, or a statement without a valid `Effect` / actions / resources.
pub(crate) fn parse(document: &str) -> Result<Vec<Statement>, String> {
    let doc: Value =
        serde_json::from_str(document).map_err(|e| format!("policy document is not JSON: {e}"))?;
    let raw = match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
        Some(v @ Value::Object(_)) => vec![v],
        Some(_) => return Err("Statement must be an object or an array".into()),
        None => return Err("policy document has no Statement".into()),
    };
    raw.into_iter()
        .enumerate()
        .map(|(index, s)| {
            let obj = s
                .as_object()
                .ok_or_else(|| format!("Statement {index} is not an object"))?;
            let effect = match obj.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err(format!("Statement {index}: Effect must be Allow or Deny")),
            };
            let lower = |v: Vec<String>| {
                v.into_iter()
                    .map(|a| a.to_ascii_lowercase())
                    .collect::<Vec<_>>()
            };
            let mut actions = lower(strings(obj.get("Action"), "Action", index)?);
            let not_actions = lower(strings(obj.get("NotAction"), "NotAction", index)?);
            if !not_actions.is_empty() {
                actions.extend(
                    DATA_PLANE
                        .iter()
                        .map(|(a, _)| *a)
                        .filter(|a| !not_actions.iter().any(|n| glob(n, a)))
                        .map(str::to_owned),
                );
            }
            let mut resources = strings(obj.get("Resource"), "Resource", index)?;
            if obj.contains_key("NotResource") {
                strings(obj.get("NotResource"), "NotResource", index)?;
                resources.push("*".into());
            }
            if actions.is_empty() && not_actions.is_empty() {
                return Err(format!("Statement {index} has no Action"));
            }
            if resources.is_empty() {
                return Err(format!("Statement {index} has no Resource"));
            }
            Ok(Statement {
                index,
                effect,
                actions,
                resources,
            })
        })
        .collect()
}

/// A resource ARN split into (type, name); `None` type = every type (`*`).
fn split_resource(resource: &str) -> (Option<String>, String) {
    if resource == "*" {
        return (None, "*".into());
    }
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let rest = match parts.as_slice() {
        [_, _, _, _, _, rest] => *rest,
        _ => resource,
    };
    match rest.split_once('/') {
        Some((ty, name)) if !ty.contains('*') => (Some(ty.to_ascii_lowercase()), name.to_owned()),
        Some((_, name)) => (None, name.to_owned()),
        None if rest.contains('*') => (None, "*".into()),
        None => (Some(rest.to_ascii_lowercase()), String::new()),
    }
}

fn has_policy_variable(resource: &str) -> bool {
    resource.contains("${iot:")
}

/// Whether a resource grants more than one thing's worth: wildcards without a policy variable.
fn is_broad(resource: &str) -> bool {
    if has_policy_variable(resource) {
        return false;
    }
    let (ty, name) = split_resource(resource);
    name.contains('*')
        || (ty.as_deref() == Some("topicfilter") && (name.contains('#') || name.contains('+')))
}

fn applies(resource_type: &Option<String>, action_type: &str) -> bool {
    resource_type.as_deref().is_none_or(|t| t == action_type)
}

/// Data-plane actions a statement grants, with their resource type.
fn granted(stmt: &Statement) -> Vec<(&'static str, &'static str)> {
    DATA_PLANE
        .iter()
        .copied()
        .filter(|(a, _)| stmt.actions.iter().any(|p| glob(p, a)))
        .collect()
}

/// One problem found in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    pub(crate) code: &'static str,
    pub(crate) statement: usize,
    pub(crate) detail: String,
}

/// Allow statements granting data-plane actions on wildcard resources without policy
/// variables.
pub(crate) fn overly_permissive(stmts: &[Statement]) -> Vec<Issue> {
    let mut out = Vec::new();
    for s in stmts.iter().filter(|s| s.effect == Effect::Allow) {
        let actions = granted(s);
        for r in s.resources.iter().filter(|r| is_broad(r)) {
            let (ty, _) = split_resource(r);
            let hit: Vec<&str> = actions
                .iter()
                .filter(|(_, t)| applies(&ty, t))
                .map(|(a, _)| *a)
                .collect();
            if !hit.is_empty() {
                out.push(Issue {
                    code: reason::ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS,
                    statement: s.index,
                    detail: format!(
                        "Statement {} allows {} on {r} (wildcard without a policy variable such as \
                         ${{iot:Connection.Thing.ThingName}}: any device can act as any other)",
                        s.index,
                        hit.join(", ")
                    ),
                });
            }
        }
    }
    out
}

/// MQTT wildcards in Deny statements, and specific Denies undone by a wildcard Allow.
pub(crate) fn misconfigurations(stmts: &[Statement]) -> Vec<Issue> {
    let mut out = Vec::new();
    let allows: Vec<&Statement> = stmts.iter().filter(|s| s.effect == Effect::Allow).collect();
    for d in stmts.iter().filter(|s| s.effect == Effect::Deny) {
        for r in &d.resources {
            let (ty, name) = split_resource(r);
            if name.contains('+') || name.contains('#') {
                out.push(Issue {
                    code: reason::POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT,
                    statement: d.index,
                    detail: format!(
                        "Statement {} denies {r}: IoT policies match MQTT wildcards + and # literally, \
                         so the deny does not cover the topics it seems to",
                        d.index
                    ),
                });
                continue;
            }
            let denies_subscribe = d
                .actions
                .iter()
                .any(|p| glob(p, "iot:subscribe") || glob(p, "iot:receive"));
            let topical = matches!(ty.as_deref(), Some("topicfilter" | "topic"));
            if !denies_subscribe || !topical || name.contains('*') {
                continue;
            }
            for a in &allows {
                if !a.actions.iter().any(|p| glob(p, "iot:subscribe")) {
                    continue;
                }
                let shadowing = a.resources.iter().find(|ar| {
                    let (aty, aname) = split_resource(ar);
                    aname.contains('*') && applies(&aty, "topicfilter") && glob(&aname, &name)
                });
                if let Some(ar) = shadowing {
                    out.push(Issue {
                        code: reason::TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS,
                        statement: d.index,
                        detail: format!(
                            "Statement {} denies {r}, but statement {} allows subscribing to {ar}: a \
                             client can subscribe to a wildcard filter (e.g. #) that still delivers {name}",
                            d.index, a.index
                        ),
                    });
                    break;
                }
            }
        }
    }
    out
}

/// The policy resource of a finding.
pub(crate) fn resource(p: &PolicyRecord) -> Resource {
    Resource::new(
        ResourceType::IotPolicy,
        ResourceIdentifier {
            policy_version_identifier: Some(PolicyVersionIdentifier {
                policy_name: Some(p.name.clone()),
                policy_version_id: Some(p.version_id.clone()),
            }),
            ..Default::default()
        },
    )
    .with_info("source", p.source.clone())
    .with_info("targets", p.targets.len().to_string())
}

/// Default policy versions with their parsed statements.
pub(crate) type Parsed<'a> = Vec<(&'a PolicyRecord, Result<Vec<Statement>, String>)>;

/// Parses every default version (in parallel).
pub(crate) fn parse_defaults(policies: &[PolicyRecord]) -> Parsed<'_> {
    let defaults: Vec<&PolicyRecord> = policies.iter().filter(|p| p.is_default).collect();
    let parsed = parallel::map(&defaults, |p| parse(&p.document), &|_| {});
    defaults.into_iter().zip(parsed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_iam_wildcards() {
        assert!(glob("iot:*", "iot:publish"));
        assert!(glob("*", ""));
        assert!(glob("iot:publish*", "iot:publish"));
        assert!(glob("secret/*", "secret/topic"));
        assert!(!glob("secret/*", "public/topic"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("abc", "abcd"));
    }

    #[test]
    fn split_resource_reads_iot_arns() {
        assert_eq!(split_resource("*"), (None, "*".into()));
        assert_eq!(
            split_resource("arn:aws:iot:us-east-1:123456789012:topic/a/b"),
            (Some("topic".into()), "a/b".into())
        );
        assert_eq!(split_resource("arn:aws:iot:*:*:*"), (None, "*".into()));
        assert!(is_broad("arn:aws:iot:*:*:client/*"));
        assert!(is_broad("arn:aws:iot:*:*:topicfilter/#"));
        assert!(!is_broad(
            "arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"
        ));
        assert!(!is_broad("arn:aws:iot:*:*:topic/sensors/temp"));
    }
}
