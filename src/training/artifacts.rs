//! Model artifacts on disk: `{data-dir}/models/{profile}/{behavior}/v{N}.twm`, each written
//! atomically (temporary file, fsync, rename, directory fsync), the newest few kept.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Artifacts kept per behavior: the one serving and fallbacks for a corrupt newest file.
pub(crate) const KEEP_VERSIONS: usize = 3;
const SUFFIX: &str = ".twm";
const TMP_SUFFIX: &str = ".twm.tmp";

/// Why an artifact file operation failed.
#[derive(Debug, thiserror::Error)]
#[error("model artifact {}: {source}", path.display())]
pub(crate) struct ArtifactError {
    pub(crate) path: PathBuf,
    #[source]
    pub(crate) source: std::io::Error,
}

fn err(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError {
        path: path.to_owned(),
        source,
    }
}

/// The models directory of a data directory.
#[derive(Debug, Clone)]
pub(crate) struct Artifacts {
    dir: PathBuf,
}

impl Artifacts {
    /// The artifacts under `dir` (`{data-dir}/models`); nothing is created until a write.
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory of one behavior's artifacts.
    pub(crate) fn behavior_dir(&self, profile: &str, behavior: &str) -> PathBuf {
        // Profile and behavior names are `[a-zA-Z0-9:_-]{1,128}`: safe path components.
        self.dir.join(profile).join(behavior)
    }

    /// The file name of version `version`, relative to the models directory.
    pub(crate) fn relative(profile: &str, behavior: &str, version: u64) -> String {
        format!("{profile}/{behavior}/v{version}{SUFFIX}")
    }

    /// The absolute path of a relative artifact name.
    pub(crate) fn resolve(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// Writes version `version` atomically: a reader sees the whole file or none of it, and
    /// after a crash the file is either absent or complete. Returns the relative name.
    ///
    /// # Errors
    /// File-system failures (the temporary file is removed).
    pub(crate) fn write(
        &self,
        profile: &str,
        behavior: &str,
        version: u64,
        bytes: &[u8],
    ) -> Result<String, ArtifactError> {
        let dir = self.behavior_dir(profile, behavior);
        let created = !dir.exists();
        fs::create_dir_all(&dir).map_err(err(&dir))?;
        if created {
            // The new directories must survive a crash too.
            for d in [&self.dir, &self.dir.join(profile)] {
                sync_dir(d)?;
            }
        }
        let relative = Self::relative(profile, behavior, version);
        let path = self.resolve(&relative);
        let tmp = dir.join(format!("v{version}{TMP_SUFFIX}"));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(err(&tmp)(e));
        }
        fs::rename(&tmp, &path).map_err(err(&path))?;
        sync_dir(&dir)?;
        Ok(relative)
    }

    /// The versions on disk for one behavior, newest first.
    ///
    /// # Errors
    /// The directory exists but cannot be listed.
    pub(crate) fn versions(
        &self,
        profile: &str,
        behavior: &str,
    ) -> Result<Vec<u64>, ArtifactError> {
        let dir = self.behavior_dir(profile, behavior);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(err(&dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(err(&dir))?;
            if let Some(v) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix('v'))
                .and_then(|n| n.strip_suffix(SUFFIX))
                .and_then(|n| n.parse::<u64>().ok())
            {
                out.push(v);
            }
        }
        out.sort_unstable_by(|a, b| b.cmp(a));
        Ok(out)
    }

    /// Reads version `version`.
    ///
    /// # Errors
    /// The file cannot be read.
    pub(crate) fn read(
        &self,
        profile: &str,
        behavior: &str,
        version: u64,
    ) -> Result<Vec<u8>, ArtifactError> {
        let path = self.resolve(&Self::relative(profile, behavior, version));
        fs::read(&path).map_err(err(&path))
    }

    /// Deletes all but the newest [`KEEP_VERSIONS`] versions (and leftover temporary files).
    ///
    /// # Errors
    /// A file that cannot be removed.
    pub(crate) fn prune(&self, profile: &str, behavior: &str) -> Result<(), ArtifactError> {
        let dir = self.behavior_dir(profile, behavior);
        for v in self
            .versions(profile, behavior)?
            .into_iter()
            .skip(KEEP_VERSIONS)
        {
            let path = self.resolve(&Self::relative(profile, behavior, v));
            fs::remove_file(&path).map_err(err(&path))?;
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.ends_with(TMP_SUFFIX))
                {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// Deletes every artifact of one behavior (its profile's directory too once empty).
    ///
    /// # Errors
    /// The directory exists but cannot be removed.
    pub(crate) fn remove_behavior(
        &self,
        profile: &str,
        behavior: &str,
    ) -> Result<(), ArtifactError> {
        let dir = self.behavior_dir(profile, behavior);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(&dir)(e)),
        }
        // Fails harmlessly while other behaviors of the profile have artifacts.
        let _ = fs::remove_dir(self.dir.join(profile));
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), ArtifactError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_lists_newest_first_and_prunes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Artifacts::new(dir.path().join("models"));
        for v in 1..=5u64 {
            let rel = a.write("p", "b:1", v, &[v as u8; 10]).expect("write");
            assert_eq!(rel, format!("p/b:1/v{v}.twm"));
        }
        assert_eq!(a.versions("p", "b:1").expect("list"), [5, 4, 3, 2, 1]);
        assert_eq!(a.read("p", "b:1", 4).expect("read"), [4u8; 10]);
        // A temporary file left by a crash is not a version, and is pruned.
        std::fs::write(a.behavior_dir("p", "b:1").join("v6.twm.tmp"), b"half").expect("tmp");
        assert_eq!(a.versions("p", "b:1").expect("list"), [5, 4, 3, 2, 1]);
        a.prune("p", "b:1").expect("prune");
        assert_eq!(a.versions("p", "b:1").expect("list"), [5, 4, 3]);
        assert!(!a.behavior_dir("p", "b:1").join("v6.twm.tmp").exists());
        a.remove_behavior("p", "b:1").expect("remove");
        assert!(a.versions("p", "b:1").expect("list").is_empty());
        assert!(!dir.path().join("models").join("p").exists());
        a.remove_behavior("p", "b:1")
            .expect("removing twice is fine");
    }
}
