//! Which security profiles apply to a thing: attachments to all things, registered or
//! unregistered things, and thing groups (a profile on a group applies to its child groups).
//! Detect resolves the profiles of each datapoint's thing with it, training the things of a
//! behavior's window.

use std::collections::{HashMap, HashSet};
use thingward_models::profile::Target;
use thingward_store::{Store, StoreError};

/// Attachments and the registry facts needed to resolve them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Targeting {
    attachments: Vec<(String, Target)>,
    registered: HashSet<String>,
    /// Every group a thing is in, directly or through a parent group.
    groups_of_thing: HashMap<String, HashSet<String>>,
}

impl Targeting {
    /// Reads attachments, things, groups and memberships.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let parents: HashMap<String, Option<String>> = store
            .groups_all()?
            .into_iter()
            .map(|g| (g.name, g.parent))
            .collect();
        let mut groups_of_thing: HashMap<String, HashSet<String>> = HashMap::new();
        for (group, thing) in store.memberships_all()? {
            groups_of_thing
                .entry(thing)
                .or_default()
                .extend(group_and_ancestors(&parents, &group));
        }
        Ok(Self {
            attachments: store.attachments_all()?,
            registered: store.things_all()?.into_iter().map(|t| t.name).collect(),
            groups_of_thing,
        })
    }

    /// The names of the profiles that apply to `thing`, each once.
    pub(crate) fn profiles_for(&self, thing: &str) -> Vec<String> {
        let registered = self.registered.contains(thing);
        let groups = self.groups_of_thing.get(thing);
        let mut out: Vec<String> = Vec::new();
        for (profile, target) in &self.attachments {
            let applies = match target {
                Target::AllThings => true,
                Target::RegisteredThings => registered,
                Target::UnregisteredThings => !registered,
                Target::ThingGroup(g) => groups.is_some_and(|gs| gs.contains(g)),
            };
            if applies && !out.contains(profile) {
                out.push(profile.clone());
            }
        }
        out
    }

    /// Whether `thing` is in `group`, directly or through one of the group's child groups.
    pub(crate) fn in_group(&self, thing: &str, group: &str) -> bool {
        self.groups_of_thing
            .get(thing)
            .is_some_and(|gs| gs.contains(group))
    }
}

/// `group` and every group above it (parent, grandparent, …), nearest first, each once:
/// `parents` maps a group's name to its parent's; a cycle in it ends the walk.
pub(crate) fn group_and_ancestors(
    parents: &HashMap<String, Option<String>>,
    group: &str,
) -> Vec<String> {
    let mut chain: Vec<String> = Vec::new();
    let mut next = Some(group.to_owned());
    while let Some(g) = next {
        if chain.contains(&g) {
            break;
        }
        next = parents.get(&g).cloned().flatten();
        chain.push(g);
    }
    chain
}
