//! The two policy checks run over the parsed default versions the audit context holds (the
//! document analysis itself is in the parent module and needs no context).

use super::{Issue, Statement, misconfigurations, overly_permissive, resource};
use crate::context::{CheckResult, Context, Outcome};
use crate::{CheckName, Finding, parallel};

/// Runs one of the two policy checks.
pub(crate) fn check(ctx: &Context<'_>, check: CheckName) -> CheckResult {
    let analyse: fn(&[Statement]) -> Vec<Issue> =
        if check == CheckName::IotPolicyOverlyPermissiveCheck {
            overly_permissive
        } else {
            misconfigurations
        };
    let parsed = ctx.policies();
    let progress = ctx.resources(check, parsed.len());
    let findings = parallel::map(
        parsed,
        |(p, stmts)| {
            let issues = analyse(stmts.as_deref().ok()?);
            let first = issues.first()?;
            let mut resource = resource(p);
            for (i, issue) in issues.iter().enumerate() {
                resource = resource.with_info(&format!("issue{}", i + 1), issue.detail.clone());
            }
            let why = format!(
                "Policy {} version {}: {}",
                p.name,
                p.version_id,
                issues
                    .iter()
                    .map(|i| i.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            Some(Finding::new(check, resource, first.code, why))
        },
        &progress,
    );
    ctx.check_cancel()?;
    Ok(Outcome::new(
        parsed.len(),
        findings.into_iter().flatten().collect(),
    ))
}
