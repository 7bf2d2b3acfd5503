//! Device incidents: the alarms of one thing in one profile that overlap in time — or follow
//! each other within [`INCIDENT_LINGER_MS`] — share one incident id, so a person reads one
//! story per device instead of one alarm per behavior. The violations keep AWS's shape; the
//! id travels beside them.

use crate::hash::IdMap;
use thingward_models::time::EpochMillis;

/// An alarm starting this long after the thing's last alarm in the profile cleared opens a
/// new incident; sooner, it joins the previous one.
pub const INCIDENT_LINGER_MS: i64 = 30 * 60 * 1000;

/// One (thing, profile)'s incident: 24 bytes, kept while an alarm is open and for the linger
/// after the last one cleared.
#[derive(Debug, Clone, Copy)]
struct Incident {
    id: u64,
    open: u32,
    last: EpochMillis,
}

/// Incident ids per (thing, profile), keyed by the packed (thing id, profile id).
#[derive(Debug, Default)]
pub(crate) struct Incidents {
    by_key: IdMap<u64, Incident>,
    next_id: u64,
}

impl Incidents {
    pub(crate) fn new(id_seed: u64) -> Self {
        Self {
            by_key: IdMap::default(),
            next_id: id_seed,
        }
    }

    /// An alarm of (thing, profile) `key` opened at `at`: its incident id.
    pub(crate) fn open(&mut self, key: u64, at: EpochMillis) -> u64 {
        let next = &mut self.next_id;
        let e = self.by_key.entry(key).or_insert_with(|| Incident {
            id: 0,
            open: 0,
            last: EpochMillis::MIN,
        });
        if e.id == 0 || (e.open == 0 && at.saturating_sub(e.last) > INCIDENT_LINGER_MS) {
            *next += 1;
            e.id = *next;
        }
        e.open += 1;
        e.last = e.last.max(at);
        e.id
    }

    /// The incident of an alarm of `key` that is still open (a touch or the clear).
    pub(crate) fn current(&self, key: u64) -> Option<u64> {
        self.by_key.get(&key).map(|e| e.id)
    }

    /// An alarm of `key` cleared (or was invalidated) at `at`.
    pub(crate) fn close(&mut self, key: u64, at: EpochMillis) -> Option<u64> {
        let e = self.by_key.get_mut(&key)?;
        e.open = e.open.saturating_sub(1);
        e.last = e.last.max(at);
        Some(e.id)
    }

    /// Forgets incidents whose alarms are all closed and whose linger has passed.
    pub(crate) fn sweep(&mut self, now: EpochMillis) {
        self.by_key
            .retain(|_, e| e.open > 0 || now.saturating_sub(e.last) <= INCIDENT_LINGER_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_and_close_alarms_share_an_incident() {
        let mut inc = Incidents::new(100);
        let a = inc.open(1, 0);
        let b = inc.open(1, 60_000);
        assert_eq!(a, b);
        assert_eq!(inc.close(1, 120_000), Some(a));
        assert_eq!(inc.close(1, 180_000), Some(a));
        // Within the linger: the same story.
        assert_eq!(inc.open(1, 180_000 + INCIDENT_LINGER_MS), a);
        inc.close(1, 200_000 + INCIDENT_LINGER_MS);
        // Long after: a new one. Another thing never shares.
        let c = inc.open(1, 10 * INCIDENT_LINGER_MS);
        assert_ne!(c, a);
        assert_ne!(inc.open(2, 10 * INCIDENT_LINGER_MS), c);
        inc.sweep(100 * INCIDENT_LINGER_MS);
        assert_eq!(inc.current(1), Some(c), "open incidents are kept");
    }
}
