//! Fleet events in Detect: the scorer's [`FleetChange`]s as the store records them. The
//! scorer finds them (`thingward_scorer::fleet`); Detect records each change in the
//! transaction of the batch that caused it, after the violation changes scored before it, so
//! that a release is recorded after the held alarms it releases.

use thingward_scorer::{FleetChange, FleetEvent, FleetPhase as ScorerPhase, Released};
use thingward_store::{
    FleetBehavior, FleetChangeKind, FleetCohort, FleetEventChange, FleetEventRecord, FleetPhase,
    ReleasedAlarm,
};

fn phase(p: ScorerPhase) -> FleetPhase {
    match p {
        ScorerPhase::Pending => FleetPhase::Pending,
        ScorerPhase::Open => FleetPhase::Open,
        ScorerPhase::Closed => FleetPhase::Closed,
        ScorerPhase::Dissolved => FleetPhase::Dissolved,
    }
}

fn record(e: &FleetEvent) -> FleetEventRecord {
    FleetEventRecord {
        id: e.id,
        profile: e.profile.to_string(),
        phase: phase(e.phase),
        start_ms: e.start,
        end_ms: e.end,
        behaviors: e
            .behaviors
            .iter()
            .map(|b| FleetBehavior {
                behavior_name: b.behavior.to_string(),
                metric: b.metric.to_string(),
                devices: b.devices,
                share: b.share,
                peak_devices: b.peak_devices,
                peak_share: b.peak_share,
            })
            .collect(),
        cohorts: e
            .cohorts
            .iter()
            .map(|c| FleetCohort {
                cohort: c.cohort.to_string(),
                peak_devices: c.peak_devices,
                peak_share: c.peak_share,
            })
            .collect(),
        explained_alarms: e.explained_alarms,
        verification_state: None,
        verification_description: None,
    }
}

fn released(r: &[Released]) -> Vec<ReleasedAlarm> {
    r.iter()
        .map(|r| ReleasedAlarm {
            thing: r.thing.as_str().to_owned(),
            behavior: r.behavior.to_string(),
        })
        .collect()
}

/// The store's record of one scorer change.
pub(super) fn record_change(c: &FleetChange) -> FleetEventChange {
    let (kind, released) = match c {
        FleetChange::Pending(_) => (FleetChangeKind::Pending, Vec::new()),
        FleetChange::Opened(_) => (FleetChangeKind::Opened, Vec::new()),
        FleetChange::Updated(_) => (FleetChangeKind::Updated, Vec::new()),
        FleetChange::Closed { released: r, .. } => (FleetChangeKind::Closed, released(r)),
        FleetChange::Dissolved { released: r, .. } => (FleetChangeKind::Dissolved, released(r)),
        FleetChange::Released { released: r, .. } => (FleetChangeKind::Updated, released(r)),
    };
    FleetEventChange {
        kind,
        event: record(c.event()),
        released,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use thingward_models::ThingName;
    use thingward_scorer::fleet::FleetBehaviorShare;

    #[test]
    fn a_closed_change_keeps_its_shares_and_released_alarms() {
        let event = FleetEvent {
            id: 7,
            profile: "p".into(),
            phase: ScorerPhase::Closed,
            start: 1_000,
            end: Some(9_000),
            behaviors: vec![FleetBehaviorShare {
                behavior: "out".into(),
                metric: "aws:all-bytes-out".into(),
                devices: 3,
                share: 0.1,
                peak_devices: 30,
                peak_share: 0.6,
            }],
            cohorts: Vec::new(),
            explained_alarms: 29,
        };
        let change = FleetChange::Closed {
            event,
            released: vec![Released {
                thing: ThingName::try_from("d1").expect("name"),
                behavior: Arc::from("out"),
                in_alarm: true,
            }],
        };
        let r = record_change(&change);
        assert_eq!(r.kind, FleetChangeKind::Closed);
        assert_eq!(r.event.phase, FleetPhase::Closed);
        assert_eq!(r.event.end_ms, Some(9_000));
        assert_eq!(r.event.behaviors[0].peak_share, 0.6);
        assert_eq!(r.event.explained_alarms, 29);
        assert_eq!(
            r.released,
            [ReleasedAlarm {
                thing: "d1".into(),
                behavior: "out".into()
            }]
        );
    }
}
