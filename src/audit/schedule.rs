//! Scheduled audits: when each is due, on the service clock, at one UTC time of day
//! (`thingward serve --audit-at HH:MM`, default 03:00). DAILY runs every day; WEEKLY on its
//! `dayOfWeek`; BIWEEKLY on its `dayOfWeek` of every even week counted from Monday
//! 1970-01-05; MONTHLY on its `dayOfMonth` (a day past the month's end, or `LAST`, means the
//! month's last day). A scheduled audit is due when the most recent slot is later than both its
//! creation and its last run, so it runs once per slot, and one created after today's slot
//! first runs at the next.

use super::Audit;
use crate::periodic::{self, FirstRun};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Weekday};
use std::sync::Arc;
use std::time::Duration;
use thingward_audit::CheckName;
use thingward_models::time::EpochMillis;
use thingward_store::ScheduledAuditRecord;
use tokio::sync::watch;

/// How often the scheduler looks at the clock.
pub(crate) const TICK: Duration = Duration::from_secs(2);

/// The UTC time of day scheduled audits run at (`--audit-at`).
pub(crate) type AuditAt = crate::time_of_day::TimeOfDay;

/// How often a scheduled audit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frequency {
    Daily,
    Weekly(Weekday),
    Biweekly(Weekday),
    /// Day of month 1..=31; 32 = `LAST`.
    Monthly(u32),
}

/// The wire names of the days of the week.
const DAYS: [(&str, Weekday); 7] = [
    ("SUN", Weekday::Sun),
    ("MON", Weekday::Mon),
    ("TUE", Weekday::Tue),
    ("WED", Weekday::Wed),
    ("THU", Weekday::Thu),
    ("FRI", Weekday::Fri),
    ("SAT", Weekday::Sat),
];

const LAST: u32 = 32;

impl Frequency {
    /// Reads a schedule from the API's `frequency`, `dayOfWeek` and `dayOfMonth`.
    ///
    /// # Errors
    /// A message naming the bad member or the missing day.
    pub(crate) fn parse(
        frequency: &str,
        day_of_week: Option<&str>,
        day_of_month: Option<&str>,
    ) -> Result<Self, String> {
        let weekday = || -> Result<Weekday, String> {
            let d = day_of_week
                .ok_or_else(|| format!("dayOfWeek is required for a {frequency} audit"))?;
            DAYS.iter()
                .find(|(n, _)| *n == d)
                .map(|(_, w)| *w)
                .ok_or_else(|| {
                    format!("dayOfWeek must be one of SUN, MON, TUE, WED, THU, FRI, SAT; got '{d}'")
                })
        };
        match frequency {
            "DAILY" => Ok(Self::Daily),
            "WEEKLY" => Ok(Self::Weekly(weekday()?)),
            "BIWEEKLY" => Ok(Self::Biweekly(weekday()?)),
            "MONTHLY" => {
                let d = day_of_month
                    .ok_or_else(|| "dayOfMonth is required for a MONTHLY audit".to_owned())?;
                if d == "LAST" {
                    return Ok(Self::Monthly(LAST));
                }
                d.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=31).contains(n) && !d.starts_with('0'))
                    .map(Self::Monthly)
                    .ok_or_else(|| format!("dayOfMonth must be 1..31 or LAST; got '{d}'"))
            }
            other => Err(format!(
                "frequency must be DAILY, WEEKLY, BIWEEKLY or MONTHLY; got '{other}'"
            )),
        }
    }

    /// Reads a stored scheduled audit's schedule.
    pub(crate) fn of(rec: &ScheduledAuditRecord) -> Option<Self> {
        Self::parse(
            &rec.frequency,
            rec.day_of_week.as_deref(),
            rec.day_of_month.as_deref(),
        )
        .ok()
    }

    fn runs_on(self, day: NaiveDate) -> bool {
        match self {
            Self::Daily => true,
            Self::Weekly(w) => day.weekday() == w,
            Self::Biweekly(w) => {
                let anchor = NaiveDate::from_ymd_opt(1970, 1, 5).unwrap_or(NaiveDate::MIN);
                day.weekday() == w && ((day - anchor).num_days().div_euclid(7)) % 2 == 0
            }
            Self::Monthly(n) => {
                let last = last_day_of_month(day);
                day.day() == n.min(last)
            }
        }
    }

    /// The most recent slot at or before `now` (looks back up to 62 days).
    pub(crate) fn last_slot(self, at: AuditAt, now: EpochMillis) -> Option<EpochMillis> {
        let t = DateTime::from_timestamp_millis(now)?;
        let mut day = t.date_naive();
        for _ in 0..62 {
            let slot = day.and_time(at.time()).and_utc();
            if slot <= t && self.runs_on(day) {
                return Some(slot.timestamp_millis());
            }
            day -= TimeDelta::days(1);
        }
        None
    }
}

fn last_day_of_month(day: NaiveDate) -> u32 {
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

/// Whether `rec` is due at `now`.
pub(crate) fn is_due(rec: &ScheduledAuditRecord, at: AuditAt, now: EpochMillis) -> bool {
    let Some(slot) = Frequency::of(rec).and_then(|f| f.last_slot(at, now)) else {
        return false;
    };
    slot > rec.created_ms && rec.last_run_ms.is_none_or(|last| slot > last)
}

/// Starts every due scheduled audit once; returns the task ids started.
///
/// # Errors
/// Storage failures.
pub(crate) fn run_due(
    audit: &Arc<Audit>,
    at: AuditAt,
) -> Result<Vec<String>, thingward_store::StoreError> {
    let now = audit.now_ms();
    let mut started = Vec::new();
    for rec in audit.store().scheduled_audits_all()? {
        if !is_due(&rec, at, now) {
            continue;
        }
        let checks: Vec<CheckName> = rec
            .checks
            .iter()
            .filter_map(|c| CheckName::parse(c))
            .collect();
        audit.store().scheduled_audit_ran(&rec.name, now)?;
        let id = audit.start(checks, Some(rec.name.clone()))?;
        tracing::info!(scheduled_audit = %rec.name, task_id = %id, "Started a scheduled audit");
        started.push(id);
    }
    Ok(started)
}

/// Checks every `tick` for due scheduled audits, off the async runtime, until `stop` changes.
pub(crate) async fn run_loop(
    audit: Arc<Audit>,
    at: AuditAt,
    tick: Duration,
    stop: watch::Receiver<bool>,
) {
    periodic::every(
        "audit scheduler",
        tick,
        FirstRun::AtStart,
        stop,
        move || {
            if let Err(e) = run_due(&audit, at) {
                tracing::warn!(error = %e, "Starting scheduled audits failed; will retry");
            }
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> EpochMillis {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .timestamp_millis()
    }

    fn rec(frequency: Frequency, created: &str, last: Option<&str>) -> ScheduledAuditRecord {
        let (f, dow, dom) = match frequency {
            Frequency::Daily => ("DAILY", None, None),
            Frequency::Weekly(_) => ("WEEKLY", Some("WED"), None),
            Frequency::Biweekly(_) => ("BIWEEKLY", Some("WED"), None),
            Frequency::Monthly(_) => ("MONTHLY", None, Some("LAST")),
        };
        ScheduledAuditRecord {
            name: "s".into(),
            frequency: f.into(),
            day_of_month: dom.map(Into::into),
            day_of_week: dow.map(Into::into),
            checks: Vec::new(),
            created_ms: ms(created),
            last_run_ms: last.map(ms),
        }
    }

    #[test]
    fn a_daily_audit_runs_once_per_slot_and_not_before_its_first() {
        let at = AuditAt::hm(3, 0);
        let r = rec(Frequency::Daily, "2026-03-04T10:00:00Z", None);
        assert!(!is_due(&r, at, ms("2026-03-05T02:59:59Z")));
        assert!(is_due(&r, at, ms("2026-03-05T03:00:00Z")));
        let ran = rec(
            Frequency::Daily,
            "2026-03-04T10:00:00Z",
            Some("2026-03-05T03:00:01Z"),
        );
        assert!(!is_due(&ran, at, ms("2026-03-05T23:00:00Z")));
        assert!(is_due(&ran, at, ms("2026-03-06T03:00:00Z")));
    }

    #[test]
    fn weekly_biweekly_and_last_day_of_month_slots() {
        let at: AuditAt = "00:30".parse().expect("at");
        // 2026-03-04 is a Wednesday.
        let weekly = Frequency::parse("WEEKLY", Some("WED"), None).expect("weekly");
        assert_eq!(
            weekly.last_slot(at, ms("2026-03-10T00:00:00Z")),
            Some(ms("2026-03-04T00:30:00Z"))
        );
        let biweekly = Frequency::parse("BIWEEKLY", Some("WED"), None).expect("biweekly");
        let slot = biweekly
            .last_slot(at, ms("2026-03-20T00:00:00Z"))
            .expect("slot");
        let other = biweekly
            .last_slot(at, ms("2026-03-20T00:00:00Z") - 7 * 86_400_000)
            .expect("slot");
        assert_eq!(slot - other, 14 * 86_400_000);
        let last = Frequency::parse("MONTHLY", None, Some("LAST")).expect("last");
        assert_eq!(
            last.last_slot(at, ms("2026-03-10T00:00:00Z")),
            Some(ms("2026-02-28T00:30:00Z"))
        );
        let thirty_first = Frequency::parse("MONTHLY", None, Some("31")).expect("31");
        assert_eq!(
            thirty_first.last_slot(at, ms("2026-05-01T00:00:00Z")),
            Some(ms("2026-04-30T00:30:00Z"))
        );
        assert!(Frequency::parse("MONTHLY", None, Some("32")).is_err());
        assert!(Frequency::parse("MONTHLY", None, None).is_err());
        assert!(Frequency::parse("WEEKLY", Some("MONDAY"), None).is_err());
        assert!(Frequency::parse("HOURLY", None, None).is_err());
    }
}
