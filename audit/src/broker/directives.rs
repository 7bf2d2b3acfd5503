//! The directives Mosquitto 2.0 knows (mosquitto.conf(5)), grouped by where they apply, and
//! the values some of them take.

/// Where a directive applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Broker-wide.
    Global,
    /// The current listener.
    Listener,
    /// Per listener with `per_listener_settings true`, broker-wide otherwise.
    Security,
    /// Inside a `connection` (bridge) section.
    Bridge,
}

/// Broker-wide directives.
const GLOBAL: &[&str] = &[
    "allow_duplicate_messages",
    "autosave_interval",
    "autosave_on_changes",
    "check_retain_source",
    "connection_messages",
    "include_dir",
    "log_dest",
    "log_facility",
    "log_timestamp",
    "log_timestamp_format",
    "log_type",
    "max_inflight_bytes",
    "max_inflight_messages",
    "max_keepalive",
    "max_packet_size",
    "max_queued_bytes",
    "max_queued_messages",
    "memory_limit",
    "message_size_limit",
    "per_listener_settings",
    "persistence",
    "persistence_file",
    "persistence_location",
    "persistent_client_expiration",
    "pid_file",
    "queue_qos0_messages",
    "retain_available",
    "set_tcp_nodelay",
    "sys_interval",
    "upgrade_outgoing_qos",
    "user",
    "websockets_log_level",
    "websockets_headers_size",
];

/// Listener directives (the `listener` line itself opens the section).
const LISTENER: &[&str] = &[
    "listener",
    "port",
    "bind_address",
    "bind_interface",
    "http_dir",
    "max_connections",
    "max_qos",
    "max_topic_alias",
    "mount_point",
    "protocol",
    "socket_domain",
    "use_username_as_clientid",
    "cafile",
    "capath",
    "certfile",
    "ciphers",
    "ciphers_tls1.3",
    "crlfile",
    "dhparamfile",
    "keyfile",
    "require_certificate",
    "tls_engine",
    "tls_engine_kpass_sha1",
    "tls_keyform",
    "tls_version",
    "use_identity_as_username",
    "use_subject_as_username",
    "psk_hint",
];

/// Security directives (per listener with `per_listener_settings true`).
const SECURITY: &[&str] = &[
    "acl_file",
    "allow_anonymous",
    "allow_zero_length_clientid",
    "auth_plugin",
    "auth_plugin_deny_special_chars",
    "auto_id_prefix",
    "clientid_prefixes",
    "password_file",
    "plugin",
    "psk_file",
];

/// Bridge directives (the `connection` line opens the section).
const BRIDGE: &[&str] = &[
    "connection",
    "address",
    "addresses",
    "bridge_alpn",
    "bridge_attempt_unsubscribe",
    "bridge_bind_address",
    "bridge_cafile",
    "bridge_capath",
    "bridge_certfile",
    "bridge_identity",
    "bridge_insecure",
    "bridge_keyfile",
    "bridge_max_packet_size",
    "bridge_outgoing_retain",
    "bridge_protocol_version",
    "bridge_psk",
    "bridge_require_ocsp",
    "bridge_tls_version",
    "cleansession",
    "clientid",
    "idle_timeout",
    "keepalive_interval",
    "local_cleansession",
    "local_clientid",
    "local_password",
    "local_username",
    "notifications",
    "notifications_local_only",
    "notification_topic",
    "password",
    "remote_clientid",
    "remote_password",
    "remote_username",
    "restart_timeout",
    "round_robin",
    "start_type",
    "threshold",
    "topic",
    "try_private",
    "username",
];

/// Mosquitto 2.1 directives: understood (a 2.1 broker uses them) but reported, because
/// Mosquitto 2.0 refuses to start on them.
const V2_1_ONLY: &[(&str, Scope)] = &[
    ("global_plugin", Scope::Global),
    ("global_max_clients", Scope::Global),
    ("global_max_connections", Scope::Global),
    ("enable_control_api", Scope::Global),
    ("accept_protocol_versions", Scope::Listener),
    ("listener_allow_anonymous", Scope::Listener),
    ("listener_auto_id_prefix", Scope::Listener),
    ("disable_client_cert_date_checks", Scope::Listener),
    ("bridge_receive_maximum", Scope::Bridge),
    ("bridge_session_expiry_interval", Scope::Bridge),
];

/// Whether `key` exists only in Mosquitto 2.1.
pub(crate) fn is_v2_1_only(key: &str) -> bool {
    V2_1_ONLY.iter().any(|(k, _)| *k == key)
}

/// Where `key` applies, or `None` for a directive Mosquitto (2.0 or 2.1) does not know.
pub(crate) fn scope(key: &str) -> Option<Scope> {
    if key.starts_with("plugin_opt_") || key.starts_with("auth_opt_") {
        return Some(Scope::Security);
    }
    if let Some((_, scope)) = V2_1_ONLY.iter().find(|(k, _)| *k == key) {
        return Some(*scope);
    }
    if GLOBAL.contains(&key) {
        Some(Scope::Global)
    } else if LISTENER.contains(&key) {
        Some(Scope::Listener)
    } else if SECURITY.contains(&key) {
        Some(Scope::Security)
    } else if BRIDGE.contains(&key) {
        Some(Scope::Bridge)
    } else {
        None
    }
}

/// Directives whose value must be `true` or `false`.
pub(crate) const BOOLEAN: &[&str] = &[
    "allow_anonymous",
    "allow_duplicate_messages",
    "allow_zero_length_clientid",
    "autosave_on_changes",
    "check_retain_source",
    "connection_messages",
    "log_timestamp",
    "per_listener_settings",
    "persistence",
    "queue_qos0_messages",
    "require_certificate",
    "retain_available",
    "set_tcp_nodelay",
    "upgrade_outgoing_qos",
    "use_identity_as_username",
    "use_subject_as_username",
    "use_username_as_clientid",
    "listener_allow_anonymous",
    "bridge_insecure",
    "cleansession",
    "notifications",
];

/// Directives whose value must be an integer.
pub(crate) const INTEGER: &[&str] = &[
    "max_connections",
    "max_packet_size",
    "message_size_limit",
    "max_inflight_messages",
    "max_queued_messages",
    "max_keepalive",
    "port",
    "sys_interval",
    "autosave_interval",
];

/// Values of `log_type`.
pub(crate) const LOG_TYPES: &[&str] = &[
    "debug",
    "error",
    "warning",
    "notice",
    "information",
    "subscribe",
    "unsubscribe",
    "websockets",
    "none",
    "all",
];

/// First words of `log_dest` values.
pub(crate) const LOG_DESTS: &[&str] =
    &["stdout", "stderr", "syslog", "topic", "file", "dlt", "none"];

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// What the real Mosquitto says about `key` in its section.
    fn mosquitto_knows(dir: &std::path::Path, key: &str, section: &str) -> bool {
        let conf = dir.join("probe.conf");
        // The marker line makes Mosquitto exit even when the probe line is valid.
        std::fs::write(
            &conf,
            format!("{section}{key} 1\nzz_thingward_probe_end 1\n"),
        )
        .expect("write");
        // `timeout`: never wait on a broker that starts after all.
        let out = Command::new("timeout")
            .args(["2", "/usr/sbin/mosquitto", "-c"])
            .arg(&conf)
            .output()
            .expect("run /usr/sbin/mosquitto");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        !text.contains(&format!("Unknown configuration variable \"{key}\""))
    }

    #[test]
    fn directive_lists_match_the_installed_mosquitto_2_0() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Values are nonsense ("1"): Mosquitto then fails on the value or a missing file, which
        // is fine; only "Unknown configuration variable" means the name is wrong.
        let sections = [
            (GLOBAL, ""),
            (SECURITY, ""),
            (LISTENER, "listener 18999 127.0.0.1\n"),
            (BRIDGE, "connection probe\naddress 127.0.0.1:1\n"),
        ];
        for (list, section) in sections {
            for key in list {
                let section = if matches!(*key, "listener" | "port" | "connection") {
                    ""
                } else {
                    section
                };
                assert!(
                    mosquitto_knows(dir.path(), key, section),
                    "mosquitto 2.0 does not know {key}"
                );
            }
        }
        for (key, _) in V2_1_ONLY {
            assert!(
                !mosquitto_knows(dir.path(), key, "listener 18999 127.0.0.1\n"),
                "{key} is known to 2.0"
            );
        }
        assert!(!mosquitto_knows(dir.path(), "allow_anonymus", ""));
    }
}
