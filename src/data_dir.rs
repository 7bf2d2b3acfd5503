//! The data directory is private: created with mode 0700, and an existing one (an older version
//! created it 0755) restricted at start with a warning. The files in it are private too
//! (`credentials.json` and the metadata store are 0600).

use anyhow::Context;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// The data directory's mode: only the service's user may list or enter it.
const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) with mode 0700, or restricts an existing `dir` to 0700 if it
/// had any group or other permission.
///
/// # Errors
/// When the directory cannot be created or its mode cannot be read or set.
pub(crate) fn create_private(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .with_context(|| format!("Cannot create the data directory {}", dir.display()))?;
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("Cannot read the data directory {}", dir.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))
            .with_context(|| format!("Cannot restrict the data directory {}", dir.display()))?;
        tracing::warn!(
            path = %dir.display(),
            was = format!("{mode:o}"),
            "Restricted the data directory to mode 700: it was open to others"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn data_dir_is_created_0700() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        create_private(&dir).expect("create");
        assert_eq!(mode_of(&dir), 0o700);
    }

    #[test]
    fn data_dir_of_an_older_version_is_restricted_to_0700() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        create_private(&dir).expect("restrict");
        assert_eq!(mode_of(&dir), 0o700);
    }
}
