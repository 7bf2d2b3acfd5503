//! A Mosquitto 2.0 configuration parser: `key value` lines, `#` comments, `listener PORT
//! [ADDR]` and `connection NAME` sections, `per_listener_settings`, `include_dir` (read from
//! the filesystem relative to the main file), plus the ACL and password files it references.
//! Problems (unknown directives, invalid values, unreadable files) are collected, never fatal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::directives::{self, BOOLEAN, INTEGER, LOG_DESTS, LOG_TYPES, Scope};
use crate::TextSource;
use crate::check::reason;

/// Deepest `include_dir` nesting followed.
const MAX_INCLUDE_DEPTH: usize = 4;

/// A file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Location {
    pub(crate) file: String,
    pub(crate) line: usize,
}

impl Location {
    /// `file:line`.
    pub(crate) fn source(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// A directive's value and where it was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    pub(crate) value: String,
    pub(crate) at: Location,
}

impl Setting {
    pub(crate) fn is_true(&self) -> bool {
        self.value == "true"
    }

    pub(crate) fn int(&self) -> Option<i64> {
        self.value.parse().ok()
    }
}

/// Settings keyed by directive; the last occurrence wins (Mosquitto's rule for scalars).
pub(crate) type Settings = HashMap<String, Setting>;

/// A listener: explicit (`listener PORT [ADDR]`), the default listener (`port`), or
/// Mosquitto 2.0's implicit loopback-only listener when neither exists.
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    pub(crate) port: String,
    pub(crate) address: Option<String>,
    pub(crate) at: Location,
    /// Listener settings, plus security settings with `per_listener_settings true`.
    pub(crate) settings: Settings,
    /// The implicit loopback listener of a config without listeners.
    pub(crate) implicit: bool,
}

impl Listener {
    pub(crate) fn get(&self, key: &str) -> Option<&Setting> {
        self.settings.get(key)
    }

    /// Bound to loopback only (127.0.0.0/8, ::1, localhost, `bind_interface lo`, a unix
    /// socket, or the implicit listener).
    pub(crate) fn is_loopback(&self) -> bool {
        if self.implicit {
            return true;
        }
        if self.get("bind_interface").is_some_and(|s| s.value == "lo") {
            return true;
        }
        let addr = self
            .address
            .as_deref()
            .or_else(|| self.get("bind_address").map(|s| s.value.as_str()));
        match addr {
            None => false,
            Some(a) => {
                a == "localhost" || a == "::1" || a.starts_with("127.") || a.starts_with('/')
            }
        }
    }

    pub(crate) fn is_websockets(&self) -> bool {
        self.get("protocol")
            .is_some_and(|s| s.value == "websockets")
    }

    /// TLS with certificates, or PSK.
    pub(crate) fn has_certificate_tls(&self) -> bool {
        self.get("certfile").is_some() && self.get("keyfile").is_some()
    }

    pub(crate) fn has_psk(&self) -> bool {
        self.get("psk_hint").is_some()
    }

    /// `port` or `port address` for messages.
    pub(crate) fn label(&self) -> String {
        match &self.address {
            Some(a) => format!("listener {} {a}", self.port),
            None if self.implicit => {
                "implicit listener 1883 127.0.0.1 (no listener configured)".into()
            }
            None => format!("listener {} (all interfaces)", self.port),
        }
    }
}

/// A configuration problem: `BROKER_CONFIGURATION_INVALID_CHECK` reason code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) code: &'static str,
    pub(crate) at: Location,
    pub(crate) message: String,
}

/// ACL access of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
    ReadWrite,
    Deny,
}

/// `topic` or `pattern` line of an ACL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AclEntry {
    pub(crate) pattern: bool,
    /// The `user` section it belongs to (`None` = applies to every client).
    pub(crate) user: Option<String>,
    pub(crate) access: Access,
    pub(crate) topic: String,
    pub(crate) at: Location,
}

/// `user:hash` line of a password file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PasswordEntry {
    pub(crate) user: String,
    pub(crate) hashed: bool,
    pub(crate) at: Location,
}

/// The parsed configuration.
#[derive(Debug, Clone, Default)]
pub(crate) struct BrokerConfig {
    pub(crate) main_file: String,
    pub(crate) per_listener_settings: bool,
    pub(crate) global: Settings,
    /// Every `log_type` / `log_dest` line (they accumulate).
    pub(crate) log_types: Vec<Setting>,
    pub(crate) log_dests: Vec<Setting>,
    pub(crate) listeners: Vec<Listener>,
    pub(crate) acl: Vec<AclEntry>,
    pub(crate) passwords: Vec<PasswordEntry>,
    pub(crate) problems: Vec<Problem>,
    /// Directive lines read (all files).
    pub(crate) lines: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Global,
    Listener(usize),
    Bridge,
}

struct Parser<'a> {
    cfg: BrokerConfig,
    section: Section,
    base: &'a Path,
    /// The default listener (created by `port`).
    default_listener: Option<usize>,
    /// Listener-scoped settings seen before any listener (they apply to the default listener).
    pre_listener: Settings,
}

fn resolve(base: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

impl BrokerConfig {
    /// Parses the main file and everything it includes or references.
    pub(crate) fn load(src: &TextSource) -> BrokerConfig {
        let base = Path::new(&src.path)
            .parent()
            .unwrap_or_else(|| Path::new("."));
        let mut p = Parser {
            cfg: BrokerConfig {
                main_file: src.path.clone(),
                per_listener_settings: per_listener_settings(&src.text),
                ..Default::default()
            },
            section: Section::Global,
            base,
            default_listener: None,
            pre_listener: Settings::new(),
        };
        p.parse_text(&src.text, &src.path, 0);
        p.finish()
    }

    /// The security setting `key` in effect for a listener.
    pub(crate) fn security<'s>(&'s self, l: &'s Listener, key: &str) -> Option<&'s Setting> {
        if self.per_listener_settings {
            l.get(key)
        } else {
            self.global.get(key)
        }
    }
}

/// `per_listener_settings` changes how every other line is read, so it is found first.
fn per_listener_settings(text: &str) -> bool {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("per_listener_settings"))
        .next_back()
        .is_some_and(|v| v.trim() == "true")
}

impl Parser<'_> {
    fn problem(&mut self, code: &'static str, at: Location, message: String) {
        self.cfg.problems.push(Problem { code, at, message });
    }

    fn parse_text(&mut self, text: &str, file: &str, depth: usize) {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = Location {
                file: file.to_owned(),
                line: i + 1,
            };
            let (key, value) = match line.split_once(char::is_whitespace) {
                Some((k, v)) => (k, v.trim()),
                None => (line, ""),
            };
            self.cfg.lines += 1;
            self.directive(key, value, at, depth);
        }
    }

    fn directive(&mut self, key: &str, value: &str, at: Location, depth: usize) {
        let Some(scope) = directives::scope(key) else {
            let msg = format!("unknown directive {key} (not a Mosquitto 2.0 option)");
            self.problem(reason::BROKER_UNKNOWN_DIRECTIVE, at, msg);
            return;
        };
        if directives::is_v2_1_only(key) {
            let msg =
                format!("{key} is a Mosquitto 2.1 option: Mosquitto 2.0 refuses to start with it");
            self.problem(reason::BROKER_UNKNOWN_DIRECTIVE, at.clone(), msg);
        }
        if value.is_empty() && key != "connection" {
            self.problem(
                reason::BROKER_INVALID_VALUE,
                at,
                format!("{key} needs a value"),
            );
            return;
        }
        if BOOLEAN.contains(&key) && value != "true" && value != "false" {
            let msg = format!("{key} must be true or false, not {value:?}");
            self.problem(reason::BROKER_INVALID_VALUE, at, msg);
            return;
        }
        if INTEGER.contains(&key) && value.parse::<i64>().is_err() {
            self.problem(
                reason::BROKER_INVALID_VALUE,
                at,
                format!("{key} must be an integer, not {value:?}"),
            );
            return;
        }
        let setting = Setting {
            value: value.to_owned(),
            at: at.clone(),
        };
        match key {
            "listener" => return self.open_listener(value, at),
            "connection" => {
                self.section = Section::Bridge;
                return;
            }
            "include_dir" => return self.include_dir(value, at, depth),
            "log_type" => {
                if !value.split_whitespace().all(|v| LOG_TYPES.contains(&v)) {
                    self.problem(
                        reason::BROKER_INVALID_VALUE,
                        at,
                        format!("unknown log_type {value:?}"),
                    );
                    return;
                }
                self.cfg.log_types.push(setting);
                return;
            }
            "log_dest" => {
                let first = value.split_whitespace().next().unwrap_or("");
                if !LOG_DESTS.contains(&first) {
                    self.problem(
                        reason::BROKER_INVALID_VALUE,
                        at,
                        format!("unknown log_dest {value:?}"),
                    );
                    return;
                }
                self.cfg.log_dests.push(setting);
                return;
            }
            "acl_file" => self.read_acl(value, &at),
            "password_file" => self.read_passwords(value, &at),
            "port" if self.default_listener.is_none() => {
                self.cfg.listeners.push(Listener {
                    port: value.to_owned(),
                    address: None,
                    at: at.clone(),
                    settings: self.pre_listener.clone(),
                    implicit: false,
                });
                self.default_listener = Some(self.cfg.listeners.len() - 1);
            }
            _ => {}
        }
        match (scope, self.section) {
            (Scope::Bridge, _) | (_, Section::Bridge) => {}
            (Scope::Global, _) => {
                self.cfg.global.insert(key.to_owned(), setting);
            }
            (Scope::Security, _) if !self.cfg.per_listener_settings => {
                self.cfg.global.insert(key.to_owned(), setting);
            }
            (Scope::Listener | Scope::Security, Section::Listener(i)) => {
                self.cfg.listeners[i]
                    .settings
                    .insert(key.to_owned(), setting);
            }
            (Scope::Listener | Scope::Security, Section::Global) => match self.default_listener {
                Some(i) => {
                    self.cfg.listeners[i]
                        .settings
                        .insert(key.to_owned(), setting);
                }
                None => {
                    self.pre_listener.insert(key.to_owned(), setting);
                }
            },
        }
    }

    fn open_listener(&mut self, value: &str, at: Location) {
        let mut parts = value.split_whitespace();
        let port = parts.next().unwrap_or("");
        if port.parse::<u16>().is_err() {
            let msg = format!("listener port must be 0..65535, not {port:?}");
            self.problem(reason::BROKER_INVALID_VALUE, at, msg);
            // Keep reading the section's lines as belonging to a bridge-like void.
            self.section = Section::Bridge;
            return;
        }
        self.cfg.listeners.push(Listener {
            port: port.to_owned(),
            address: parts.next().map(str::to_owned),
            at,
            settings: Settings::new(),
            implicit: false,
        });
        self.section = Section::Listener(self.cfg.listeners.len() - 1);
    }

    fn include_dir(&mut self, value: &str, at: Location, depth: usize) {
        if depth >= MAX_INCLUDE_DEPTH {
            self.problem(
                reason::BROKER_INVALID_VALUE,
                at,
                format!("include_dir nested deeper than {MAX_INCLUDE_DEPTH}"),
            );
            return;
        }
        let dir = resolve(self.base, value);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                let msg = format!("include_dir {} cannot be read: {e}", dir.display());
                self.problem(reason::BROKER_FILE_UNREADABLE, at, msg);
                return;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "conf"))
            .collect();
        files.sort();
        for f in files {
            let name = f.display().to_string();
            match std::fs::read_to_string(&f) {
                Ok(text) => self.parse_text(&text, &name, depth + 1),
                Err(e) => {
                    let msg = format!("included file {name} cannot be read: {e}");
                    self.problem(reason::BROKER_FILE_UNREADABLE, at.clone(), msg);
                }
            }
        }
    }

    fn read_referenced(
        &mut self,
        what: &str,
        value: &str,
        at: &Location,
    ) -> Option<(String, String)> {
        let path = resolve(self.base, value);
        let name = path.display().to_string();
        if self.cfg.acl.iter().any(|a| a.at.file == name)
            || self.cfg.passwords.iter().any(|p| p.at.file == name)
        {
            return None; // already read (per-listener files are often shared)
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => Some((name, text)),
            Err(e) => {
                let msg = format!("{what} {name} cannot be read: {e}");
                self.problem(reason::BROKER_FILE_UNREADABLE, at.clone(), msg);
                None
            }
        }
    }

    fn read_acl(&mut self, value: &str, at: &Location) {
        let Some((file, text)) = self.read_referenced("acl_file", value, at) else {
            return;
        };
        let (entries, problems) = parse_acl(&text, &file);
        self.cfg.acl.extend(entries);
        self.cfg.problems.extend(problems);
    }

    fn read_passwords(&mut self, value: &str, at: &Location) {
        let Some((file, text)) = self.read_referenced("password_file", value, at) else {
            return;
        };
        let (entries, problems) = parse_passwords(&text, &file);
        self.cfg.passwords.extend(entries);
        self.cfg.problems.extend(problems);
    }

    fn finish(mut self) -> BrokerConfig {
        if self.cfg.listeners.is_empty() {
            // Mosquitto 2.0 without listeners: local-only mode on 127.0.0.1/::1 port 1883.
            self.cfg.listeners.push(Listener {
                port: "1883".into(),
                address: None,
                at: Location {
                    file: self.cfg.main_file.clone(),
                    line: 0,
                },
                settings: self.pre_listener,
                implicit: true,
            });
        }
        self.cfg
    }
}

/// Parses an ACL file (`user`, `topic [read|write|readwrite|deny] TOPIC`, `pattern …`).
pub(crate) fn parse_acl(text: &str, file: &str) -> (Vec<AclEntry>, Vec<Problem>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    let mut user: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = Location {
            file: file.to_owned(),
            line: i + 1,
        };
        let (key, rest) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(k, v)| (k, v.trim()));
        match key {
            "user" if !rest.is_empty() => user = Some(rest.to_owned()),
            "topic" | "pattern" if !rest.is_empty() => {
                let (access, topic) = match rest.split_once(char::is_whitespace) {
                    Some((a, t)) if matches!(a, "read" | "write" | "readwrite" | "deny") => {
                        (a, t.trim())
                    }
                    _ => ("readwrite", rest),
                };
                let access = match access {
                    "read" => Access::Read,
                    "write" => Access::Write,
                    "deny" => Access::Deny,
                    _ => Access::ReadWrite,
                };
                entries.push(AclEntry {
                    pattern: key == "pattern",
                    user: if key == "pattern" { None } else { user.clone() },
                    access,
                    topic: topic.to_owned(),
                    at,
                });
            }
            _ => problems.push(Problem {
                code: reason::BROKER_INVALID_VALUE,
                at,
                message: format!("ACL line is not user/topic/pattern: {key}"),
            }),
        }
    }
    (entries, problems)
}

/// Parses a password file (`user:hash`).
pub(crate) fn parse_passwords(text: &str, file: &str) -> (Vec<PasswordEntry>, Vec<Problem>) {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = Location {
            file: file.to_owned(),
            line: i + 1,
        };
        match line.split_once(':') {
            Some((user, hash)) if !user.is_empty() => entries.push(PasswordEntry {
                user: user.to_owned(),
                hashed: hash.starts_with("$6$") || hash.starts_with("$7$"),
                at,
            }),
            _ => problems.push(Problem {
                code: reason::BROKER_INVALID_VALUE,
                at,
                message: "password file line is not user:password".into(),
            }),
        }
    }
    (entries, problems)
}
