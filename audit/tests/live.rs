//! Against a real Mosquitto: two mosquitto_sub clients share a client id on a broker started on
//! a free loopback port; the broker's own log is audited for conflicting client ids, and its
//! config passes the parser without invalid-directive findings.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use thingward_audit::{AuditInput, AuditSettings, CheckName, TextSource};

use crate::support::run_check_with;

/// Kills a child process this test started when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn sub(port: u16, user: &str) -> Killed {
    Killed(
        Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-i",
                "shared-id",
                "-u",
                user,
                "-t",
                "t",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub"),
    )
}

#[test]
fn real_mosquitto_log_shows_conflicting_client_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let conf = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest stdout\nlog_type notice\nconnection_messages true\n"
    );
    let conf_path = dir.path().join("mosquitto.conf");
    std::fs::write(&conf_path, &conf).expect("write conf");
    let mut broker = Killed(
        Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started_ms = chrono::Utc::now().timestamp_millis() - 5_000;
    let first = sub(port, "alice");
    std::thread::sleep(Duration::from_millis(700));
    let second = sub(port, "bob");
    std::thread::sleep(Duration::from_millis(700));
    drop(first);
    drop(second);
    std::thread::sleep(Duration::from_millis(300));
    // SIGTERM (not kill): Mosquitto flushes its buffered stdout log on a clean shutdown.
    let pid = broker.0.id().to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    let _ = broker.0.wait();
    let mut log = String::new();
    broker
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut log)
        .expect("read log");
    // With `log_type notice` Mosquitto does not log `already connected` (an information
    // line): the takeover shows as a second connect while the first session is open.
    assert!(log.matches(" as shared-id (").count() >= 2, "{log}");
    assert!(!log.contains("already connected"), "{log}");

    let input = AuditInput {
        connection_log: Some(TextSource {
            path: "mosquitto.log".into(),
            text: log,
        }),
        broker_config: Some(TextSource {
            path: conf_path.display().to_string(),
            text: conf,
        }),
        ..Default::default()
    };
    let settings = AuditSettings {
        connections_since_ms: Some(started_ms),
        ..AuditSettings::default()
    };
    let r = run_check_with(&input, &settings, CheckName::ConflictingClientIdsCheck);
    let ids: Vec<_> = r
        .findings
        .iter()
        .filter_map(|f| {
            f.non_compliant_resource
                .resource_identifier
                .client_id
                .as_deref()
        })
        .collect();
    assert_eq!(ids, vec!["shared-id"]);
    // The config Mosquitto accepted has no invalid lines, and its only listener is loopback.
    assert!(
        run_check_with(
            &input,
            &settings,
            CheckName::BrokerConfigurationInvalidCheck
        )
        .findings
        .is_empty()
    );
    assert!(
        run_check_with(&input, &settings, CheckName::BrokerAnonymousAccessCheck)
            .findings
            .is_empty()
    );
}
