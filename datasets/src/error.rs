//! The one error type of the datasets crate.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong loading scenarios and labels.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A scenario file is not valid TOML of the scenario shape.
    #[error("invalid scenario TOML: {0}")]
    Toml(#[from] toml::de::Error),
    /// A scenario parses but cannot be generated.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A labels file is not valid JSON of the labels shape.
    #[error("invalid labels JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A labels file parses but is inconsistent.
    #[error("invalid labels: {reason}")]
    Labels {
        /// What is wrong.
        reason: &'static str,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Why a scenario was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScenarioError {
    /// A field is out of range.
    #[error("scenario field `{field}`: {reason}")]
    Field {
        /// The field (TOML path).
        field: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// `start` is not an RFC 3339 timestamp on a 5-minute boundary.
    #[error("scenario `start` must be an RFC 3339 UTC timestamp on a 5-minute boundary, got '{0}'")]
    Start(String),
    /// The archetype mix names an archetype that does not exist.
    #[error("unknown archetype '{0}' (built-ins: plug, sensor, tracker, camera, gateway)")]
    UnknownArchetype(String),
    /// An event names a region that is not in `regions`.
    #[error("unknown region '{0}'")]
    UnknownRegion(String),
    /// An event's kind is not one the generator can produce.
    #[error("event kind '{0}' cannot be generated")]
    UnknownKind(String),
    /// An event has no eligible devices (archetype/region filters match none).
    #[error("event {index} ({kind}) matches no device")]
    NoDevices {
        /// The event's position among the scenario's events.
        index: usize,
        /// Its kind.
        kind: String,
    },
}
