//! The API credentials: access key pairs for SigV4 and bearer tokens, kept in
//! `<data_dir>/credentials.json` (mode 0600) and extendable from the environment.

use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AuthError;

/// File name of the credentials file inside the data directory.
pub(crate) const CREDENTIALS_FILE: &str = "credentials.json";

/// Environment variable holding an extra access key id (needs [`ENV_SECRET_ACCESS_KEY`]).
pub(crate) const ENV_ACCESS_KEY_ID: &str = "THINGWARD_ACCESS_KEY_ID";
/// Environment variable holding the secret for [`ENV_ACCESS_KEY_ID`].
pub(crate) const ENV_SECRET_ACCESS_KEY: &str = "THINGWARD_SECRET_ACCESS_KEY";
/// Environment variable holding an extra bearer token.
pub(crate) const ENV_API_TOKEN: &str = "THINGWARD_API_TOKEN";

/// Prefix of generated access key ids (AWS uses `AKIA`/`ASIA`).
const ACCESS_KEY_ID_PREFIX: &str = "TW";
/// Length of a generated access key id, prefix included (AWS's ids are 20 characters).
const ACCESS_KEY_ID_LEN: usize = 20;
/// Length of a generated secret access key (AWS's are 40 characters).
const SECRET_LEN: usize = 40;

/// The fewest characters an API token or secret access key given in the environment may have:
/// 20 random characters are beyond guessing; a shorter value refuses the start.
pub(crate) const MIN_ENV_SECRET_CHARS: usize = 20;
/// Random bytes in a generated bearer token (hex-encoded, so 64 characters).
const TOKEN_BYTES: usize = 32;

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// One SigV4 access key pair.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessKey {
    /// The public access key id clients put in `Credential=`.
    pub(crate) id: String,
    /// The secret access key; never logged, and redacted from `Debug`.
    pub(crate) secret: String,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Everything that may authenticate a request.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credentials {
    /// SigV4 key pairs; ids are unique.
    pub(crate) access_keys: Vec<AccessKey>,
    /// Accepted `Authorization: Bearer` tokens.
    pub(crate) tokens: Vec<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_keys", &self.access_keys)
            .field("tokens", &format_args!("<{} redacted>", self.tokens.len()))
            .finish()
    }
}

impl Credentials {
    /// Reads `data_dir/credentials.json`, or, when it does not exist, generates one access
    /// key pair and one bearer token and writes them there with mode 0600 (temp file +
    /// rename, so a crash never leaves a half-written file). `data_dir` is created (mode
    /// 0700) if missing. The flag is `true` when the file was created by this call.
    ///
    /// # Errors
    ///
    /// [`AuthError::CredentialsIo`] when the file cannot be read or written,
    /// [`AuthError::CredentialsParse`] / [`AuthError::CredentialsInvalid`] when it is not a
    /// valid credentials file, [`AuthError::Random`] when the OS RNG fails.
    pub(crate) fn load_or_create(data_dir: &Path) -> Result<(Self, bool), AuthError> {
        let path = data_dir.join(CREDENTIALS_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                warn_if_readable_by_others(&path);
                let creds: Self = serde_json::from_slice(&bytes).map_err(|source| {
                    AuthError::CredentialsParse {
                        path: path.clone(),
                        source,
                    }
                })?;
                creds
                    .validate()
                    .map_err(|reason| AuthError::CredentialsInvalid { path, reason })?;
                Ok((creds, false))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let creds = Self::generate()?;
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(data_dir)
                    .map_err(io_error("create directory", data_dir))?;
                write_private(&path, &creds)?;
                tracing::info!(path = %path.display(), "Created API credentials file");
                Ok((creds, true))
            }
            Err(e) => Err(io_error("read", &path)(e)),
        }
    }

    /// Fresh random credentials: one access key pair and one bearer token.
    ///
    /// # Errors
    ///
    /// [`AuthError::Random`] when the operating system's RNG fails.
    pub(crate) fn generate() -> Result<Self, AuthError> {
        let mut id = String::from(ACCESS_KEY_ID_PREFIX);
        id.push_str(&random_chars(
            UPPER_ALNUM,
            ACCESS_KEY_ID_LEN - ACCESS_KEY_ID_PREFIX.len(),
        )?);
        let secret = random_chars(BASE62, SECRET_LEN)?;
        let mut token = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut token).map_err(AuthError::Random)?;
        Ok(Self {
            access_keys: vec![AccessKey { id, secret }],
            tokens: vec![hex::encode(token)],
        })
    }

    /// Adds the credentials given in the environment: `THINGWARD_ACCESS_KEY_ID` together with
    /// `THINGWARD_SECRET_ACCESS_KEY` add (or, for an id already present, replace) a key pair,
    /// and `THINGWARD_API_TOKEN` adds a token. `env` is the lookup (`|k| std::env::var(k).ok()`
    /// in production), so tests need not touch the process environment. Empty values are
    /// ignored; a key id without its secret (or the reverse) is ignored with a warning.
    ///
    /// # Errors
    /// [`AuthError::WeakEnvSecret`] when the token or the secret access key has fewer than
    /// [`MIN_ENV_SECRET_CHARS`] characters.
    pub(crate) fn with_env(
        mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        for variable in [ENV_SECRET_ACCESS_KEY, ENV_API_TOKEN] {
            if get(variable).is_some_and(|v| v.chars().count() < MIN_ENV_SECRET_CHARS) {
                return Err(AuthError::WeakEnvSecret {
                    variable,
                    min: MIN_ENV_SECRET_CHARS,
                });
            }
        }
        match (get(ENV_ACCESS_KEY_ID), get(ENV_SECRET_ACCESS_KEY)) {
            (Some(id), Some(secret)) => {
                let id = id.trim().to_owned();
                if !valid_key_id(&id) {
                    tracing::warn!(
                        variable = ENV_ACCESS_KEY_ID,
                        "Ignoring access key id from the environment: it must be ASCII letters and digits"
                    );
                } else if let Some(existing) = self.access_keys.iter_mut().find(|k| k.id == id) {
                    existing.secret = secret;
                } else {
                    self.access_keys.push(AccessKey { id, secret });
                }
            }
            (Some(_), None) | (None, Some(_)) => tracing::warn!(
                id_variable = ENV_ACCESS_KEY_ID,
                secret_variable = ENV_SECRET_ACCESS_KEY,
                "Ignoring the access key from the environment: both variables must be set"
            ),
            (None, None) => {}
        }
        if let Some(token) = get(ENV_API_TOKEN)
            && !self.tokens.contains(&token)
        {
            self.tokens.push(token);
        }
        Ok(self)
    }

    /// The key pair with this access key id, if any.
    pub(crate) fn access_key(&self, id: &str) -> Option<&AccessKey> {
        self.access_keys.iter().find(|k| k.id == id)
    }

    /// The text to print (to the terminal, never to the log: it contains the secrets) when
    /// the credentials file was just created: an AWS CLI profile, an example `aws` command
    /// and an example `curl` with the bearer token. `endpoint` is the base URL clients use
    /// (e.g. `http://127.0.0.1:8080`), `region` the one to put in the profile.
    pub(crate) fn first_start_instructions(&self, endpoint: &str, region: &str) -> String {
        let endpoint = endpoint.trim_end_matches('/');
        let mut out = String::from(
            "thingward generated API credentials and stored them in credentials.json in its data\n\
             directory (mode 0600). They are shown only this once.\n",
        );
        if let Some(key) = self.access_keys.first() {
            out.push_str(&format!(
                "\nFor the AWS CLI and boto3, add this profile to ~/.aws/config:\n\n\
                 [profile thingward]\n\
                 aws_access_key_id = {id}\n\
                 aws_secret_access_key = {secret}\n\
                 region = {region}\n\n\
                 then run, for example:\n\n    \
                 aws --profile thingward --endpoint-url {endpoint} iot list-security-profiles\n",
                id = key.id,
                secret = key.secret,
            ));
        }
        if let Some(token) = self.tokens.first() {
            out.push_str(&format!(
                "\nWith plain HTTP, send the bearer token:\n\n    \
                 curl -H \"Authorization: Bearer {token}\" {endpoint}/security-profiles\n"
            ));
        }
        out
    }

    /// Checks what a hand-edited file could get wrong.
    fn validate(&self) -> Result<(), &'static str> {
        if self.access_keys.iter().any(|k| !valid_key_id(&k.id)) {
            return Err("an access key id is empty or not ASCII letters and digits");
        }
        if self.access_keys.iter().any(|k| k.secret.is_empty()) {
            return Err("a secret access key is empty");
        }
        for (i, key) in self.access_keys.iter().enumerate() {
            if self.access_keys[..i].iter().any(|k| k.id == key.id) {
                return Err("an access key id appears twice");
            }
        }
        if self.tokens.iter().any(|t| t.trim().is_empty()) {
            return Err("a bearer token is empty");
        }
        Ok(())
    }
}

/// Access key ids go into `Credential=AKID/date/…`, so they must not contain `/` or spaces.
fn valid_key_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
fn random_chars(alphabet: &[u8], len: usize) -> Result<String, AuthError> {
    // The largest multiple of the alphabet size that fits in a byte; bytes above it are redrawn.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(AuthError::Random)?;
        for &b in &buf {
            if usize::from(b) < limit && out.len() < len {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

/// Writes `creds` to `path` with mode 0600 via a temp file in the same directory and a rename.
fn write_private(path: &Path, creds: &Credentials) -> Result<(), AuthError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(AuthError::Random)?;
    let tmp = dir.join(format!(".{CREDENTIALS_FILE}.{}.tmp", hex::encode(suffix)));
    let result = (|| {
        let mut json = serde_json::to_vec_pretty(creds).map_err(io::Error::other)?;
        json.push(b'\n');
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_error("write", path)(e)
    })
}

/// A warning, not an error: the operator may have reasons, but should know.
fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
            "Credentials file is accessible to other users; chmod 600 it"
        );
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> AuthError {
    let path: PathBuf = path.to_owned();
    move |source| AuthError::CredentialsIo {
        action,
        path,
        source,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests may unwrap (STYLE.md: allow-unwrap-in-tests).
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn generated_credentials_have_aws_like_shapes() {
        let creds = Credentials::generate().unwrap();
        assert_eq!(creds.access_keys.len(), 1);
        assert_eq!(creds.tokens.len(), 1);
        let key = &creds.access_keys[0];
        assert_eq!(key.id.len(), 20);
        assert!(key.id.starts_with("TW"));
        assert!(
            key.id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        );
        assert_eq!(key.secret.len(), 40);
        assert!(key.secret.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(creds.tokens[0].len(), 64);
        assert!(creds.tokens[0].bytes().all(|b| b.is_ascii_hexdigit()));
        let other = Credentials::generate().unwrap();
        assert_ne!(creds, other);
    }

    #[test]
    fn created_file_is_private_and_reloads_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let (first, created) = Credentials::load_or_create(&data_dir).unwrap();
        assert!(created);
        let path = data_dir.join(CREDENTIALS_FILE);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (second, created) = Credentials::load_or_create(&data_dir).unwrap();
        assert!(!created);
        assert_eq!(first, second);
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(&data_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(CREDENTIALS_FILE)]);
    }

    #[test]
    fn corrupt_or_invalid_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CREDENTIALS_FILE);
        fs::write(&path, b"{not json").unwrap();
        assert!(matches!(
            Credentials::load_or_create(dir.path()),
            Err(AuthError::CredentialsParse { .. })
        ));
        fs::write(
            &path,
            br#"{"access_keys":[{"id":"A/B","secret":"s"}],"tokens":[]}"#,
        )
        .unwrap();
        assert!(matches!(
            Credentials::load_or_create(dir.path()),
            Err(AuthError::CredentialsInvalid { .. })
        ));
    }

    #[test]
    fn env_adds_key_pair_and_token() {
        let creds = Credentials::default()
            .with_env(env_of(&[
                (ENV_ACCESS_KEY_ID, "ENVKEY1"),
                (ENV_SECRET_ACCESS_KEY, "envsecret-0123456789abcdef"),
                (ENV_API_TOKEN, "envtoken-0123456789abcdef"),
            ]))
            .expect("env");
        assert_eq!(
            creds.access_key("ENVKEY1").unwrap().secret,
            "envsecret-0123456789abcdef"
        );
        assert_eq!(creds.tokens, vec!["envtoken-0123456789abcdef".to_owned()]);
    }

    #[test]
    fn env_replaces_secret_of_existing_id_and_ignores_half_pairs() {
        let base = Credentials {
            access_keys: vec![AccessKey {
                id: "K1".into(),
                secret: "old".into(),
            }],
            tokens: vec![],
        };
        let creds = base
            .clone()
            .with_env(env_of(&[
                (ENV_ACCESS_KEY_ID, "K1"),
                (ENV_SECRET_ACCESS_KEY, "new-0123456789abcdefghij"),
            ]))
            .expect("env");
        assert_eq!(creds.access_keys.len(), 1);
        assert_eq!(
            creds.access_key("K1").unwrap().secret,
            "new-0123456789abcdefghij"
        );

        let creds = base
            .clone()
            .with_env(env_of(&[(ENV_ACCESS_KEY_ID, "K2")]))
            .expect("env");
        assert_eq!(creds, base);
        let creds = base
            .clone()
            .with_env(env_of(&[(ENV_API_TOKEN, "  ")]))
            .expect("env");
        assert_eq!(creds, base);
    }

    #[test]
    fn short_env_token_or_secret_refuses_start_naming_the_variable() {
        for (variable, others) in [
            (ENV_API_TOKEN, vec![]),
            (ENV_SECRET_ACCESS_KEY, vec![(ENV_ACCESS_KEY_ID, "ENVKEY1")]),
        ] {
            let mut pairs = others;
            pairs.push((variable, "x"));
            let err = Credentials::default()
                .with_env(env_of(&pairs))
                .expect_err("a one-character secret is refused");
            let text = err.to_string();
            assert!(text.contains(variable), "{text}");
            assert!(text.contains(&MIN_ENV_SECRET_CHARS.to_string()), "{text}");
        }
        let at_minimum = "a".repeat(MIN_ENV_SECRET_CHARS);
        let creds = Credentials::default()
            .with_env(env_of(&[(ENV_API_TOKEN, &at_minimum)]))
            .expect("the minimum is enough");
        assert_eq!(creds.tokens, vec![at_minimum]);
    }

    #[test]
    fn debug_redacts_secrets() {
        let creds = Credentials {
            access_keys: vec![AccessKey {
                id: "K1".into(),
                secret: "supersecret".into(),
            }],
            tokens: vec!["tokentokentoken".into()],
        };
        let shown = format!("{creds:?}");
        assert!(shown.contains("K1"));
        assert!(!shown.contains("supersecret"));
        assert!(!shown.contains("tokentokentoken"));
    }

    #[test]
    fn first_start_instructions_have_profile_aws_and_curl_lines() {
        let creds = Credentials {
            access_keys: vec![AccessKey {
                id: "TWKEY".into(),
                secret: "SECRET".into(),
            }],
            tokens: vec!["TOKEN".into()],
        };
        let text = creds.first_start_instructions("http://127.0.0.1:8080/", "us-east-1");
        for line in [
            "[profile thingward]",
            "aws_access_key_id = TWKEY",
            "aws_secret_access_key = SECRET",
            "region = us-east-1",
            "aws --profile thingward --endpoint-url http://127.0.0.1:8080 iot list-security-profiles",
            "curl -H \"Authorization: Bearer TOKEN\" http://127.0.0.1:8080/security-profiles",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }
}
