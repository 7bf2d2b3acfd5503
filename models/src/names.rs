//! Names with rules: thing names (device reports) and the `[a-zA-Z0-9:_-]{1,128}` family
//! (security profiles, behaviors, metrics, dimensions, thing groups).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// What kind of name it is, for the message.
        kind: &'static str,
    },
    /// The name is longer than allowed.
    #[error("{kind} is {len} bytes long; at most {max} are allowed")]
    TooLong {
        /// What kind of name it is.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The name holds a character outside its pattern.
    #[error("{kind} '{name}' must match {pattern}")]
    Pattern {
        /// What kind of name it is.
        kind: &'static str,
        /// The offending name (truncated to 128 characters).
        name: String,
        /// The pattern in words.
        pattern: &'static str,
    },
}

/// The AWS name family `[a-zA-Z0-9:_-]+` with a length of 1..=128 (security profiles,
/// behaviors, custom metrics, dimensions, thing groups).
///
/// # Errors
/// The first rule the name breaks.
pub fn check_resource_name(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if name.len() > 128 {
        return Err(NameError::TooLong {
            kind,
            len: name.len(),
            max: 128,
        });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-'))
    {
        return Err(NameError::Pattern {
            kind,
            name: name.chars().take(128).collect(),
            pattern: "[a-zA-Z0-9:_-]+",
        });
    }
    Ok(())
}

/// Checks a free-text field that AWS restricts to `[\p{Graph}\x20]*` (printable ASCII and space).
///
/// # Errors
/// When too long or holding other characters.
pub fn check_printable(kind: &'static str, text: &str, max: usize) -> Result<(), NameError> {
    if text.len() > max {
        return Err(NameError::TooLong {
            kind,
            len: text.len(),
            max,
        });
    }
    if !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(NameError::Pattern {
            kind,
            name: text.chars().take(128).collect(),
            pattern: "printable ASCII characters and spaces",
        });
    }
    Ok(())
}

/// A thing name as it appears in a report topic or a datapoint: 1..=128 bytes of UTF-8 with no
/// control characters (AWS `DeviceDefenderThingName` plus the device-report rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ThingName(String);

impl ThingName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ThingName {
    type Error = NameError;

    fn try_from(name: String) -> Result<Self, NameError> {
        const KIND: &str = "thing name";
        if name.is_empty() {
            return Err(NameError::Empty { kind: KIND });
        }
        if name.len() > 128 {
            return Err(NameError::TooLong {
                kind: KIND,
                len: name.len(),
                max: 128,
            });
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::Pattern {
                kind: KIND,
                name: name.escape_debug().take(128).collect(),
                pattern: "UTF-8 without control characters",
            });
        }
        Ok(Self(name))
    }
}

impl TryFrom<&str> for ThingName {
    type Error = NameError;

    fn try_from(name: &str) -> Result<Self, NameError> {
        Self::try_from(name.to_owned())
    }
}

impl From<ThingName> for String {
    fn from(n: ThingName) -> String {
        n.0
    }
}

impl fmt::Display for ThingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_follow_the_aws_pattern() {
        assert!(check_resource_name("name", "my-profile:v1_2").is_ok());
        assert!(matches!(
            check_resource_name("name", ""),
            Err(NameError::Empty { .. })
        ));
        assert!(matches!(
            check_resource_name("name", "a b"),
            Err(NameError::Pattern { .. })
        ));
        assert!(matches!(
            check_resource_name("name", &"a".repeat(129)),
            Err(NameError::TooLong { len: 129, .. })
        ));
        assert!(check_resource_name("name", &"a".repeat(128)).is_ok());
    }

    #[test]
    fn thing_names_are_utf8_up_to_128_bytes_without_control_characters() {
        assert!(ThingName::try_from("sensor-ünïcode").is_ok());
        assert!(ThingName::try_from("x".repeat(128)).is_ok());
        // 64 two-byte characters = 128 bytes: allowed; 65 = 130 bytes: refused.
        assert!(ThingName::try_from("é".repeat(64)).is_ok());
        assert!(ThingName::try_from("é".repeat(65)).is_err());
        assert!(ThingName::try_from("bad\nname").is_err());
        assert!(ThingName::try_from("").is_err());
    }
}
