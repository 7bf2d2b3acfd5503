//! Security profiles and their target attachments.

use crate::StoreError;
use thingward_models::profile::{SecurityProfile, Target};

/// The profiles part of the store interface ([`crate::Store`]); [`crate::SqliteStore`] implements it.
pub trait ProfileStore {
    /// Inserts a new profile; returns false (and changes nothing) when the name is taken.
    ///
    /// # Errors
    /// Storage failures.
    fn profile_insert(
        &self,
        profile: &SecurityProfile,
        tags: Option<&serde_json::Value>,
    ) -> Result<bool, StoreError>;

    /// The profile called `name`.
    ///
    /// # Errors
    /// Storage failures.
    fn profile_get(&self, name: &str) -> Result<Option<SecurityProfile>, StoreError>;

    /// Read-modify-write of one profile under the store lock, so concurrent updates with
    /// `expectedVersion` cannot both win. `f` returns the new profile, or None to leave it as
    /// it is (nothing is written). Returns the written profile; None when there is no such
    /// profile or `f` returned None. Callers use `profile_update` on `dyn Store`, which
    /// carries `f`'s own error.
    ///
    /// # Errors
    /// Storage failures.
    fn profile_update_with(
        &self,
        name: &str,
        f: &mut dyn FnMut(SecurityProfile) -> Option<SecurityProfile>,
    ) -> Result<Option<SecurityProfile>, StoreError>;

    /// Deletes a profile and its attachments; returns the deleted profile.
    ///
    /// # Errors
    /// Storage failures.
    fn profile_delete(&self, name: &str) -> Result<Option<SecurityProfile>, StoreError>;

    /// Every profile, by name.
    ///
    /// # Errors
    /// Storage failures.
    fn profiles_all(&self) -> Result<Vec<SecurityProfile>, StoreError>;

    /// Attaches a profile to a target; returns false when it was already attached.
    ///
    /// # Errors
    /// Storage failures.
    fn target_attach(&self, profile: &str, target: &Target) -> Result<bool, StoreError>;

    /// Detaches; returns false when there was no such attachment.
    ///
    /// # Errors
    /// Storage failures.
    fn target_detach(&self, profile: &str, target: &Target) -> Result<bool, StoreError>;

    /// Every (profile, target) attachment.
    ///
    /// # Errors
    /// Storage failures.
    fn attachments_all(&self) -> Result<Vec<(String, Target)>, StoreError>;
}

impl dyn crate::Store {
    /// Read-modify-write of one profile under the store lock
    /// ([`ProfileStore::profile_update_with`]): `f` returns the new profile or refuses with its
    /// error, and nothing is written then. Returns None when there is no such profile.
    ///
    /// # Errors
    /// `f`'s error, or storage failures.
    pub fn profile_update<E: From<StoreError>>(
        &self,
        name: &str,
        f: impl FnOnce(SecurityProfile) -> Result<SecurityProfile, E>,
    ) -> Result<Option<SecurityProfile>, E> {
        let mut f = Some(f);
        let mut refused = None;
        let updated =
            self.profile_update_with(name, &mut |current| match f.take().map(|f| f(current)) {
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    refused = Some(e);
                    None
                }
                None => None,
            })?;
        match refused {
            Some(e) => Err(e),
            None => Ok(updated),
        }
    }
}
