//! Harness for end-to-end tests: a real Mosquitto on a free loopback port and the real
//! `thingward` binary, talked to over loopback HTTP and MQTT.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bearer token the tests start thingward with.
pub(crate) const TOKEN: &str = "e2e-test-token-0123456789abcdef";

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not open port {port} within 30 s");
}

fn mosquitto_binary() -> PathBuf {
    if let Ok(p) = std::env::var("MOSQUITTO") {
        return PathBuf::from(p);
    }
    for p in [
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
        "/usr/bin/mosquitto",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("mosquitto")
}

/// A Mosquitto broker of the test's own on a free loopback port.
pub(crate) struct Mosquitto {
    child: Child,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    pub(crate) fn start() -> Self {
        Self::start_with_conf("")
    }

    /// Starts with `extra` appended to the configuration; the broker logs connections to
    /// [`Mosquitto::log`].
    pub(crate) fn start_with_conf(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        let log = dir.path().join("mosquitto.log");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\nlog_dest stderr\nlog_type notice\n{extra}"
            ),
        )
        .expect("write mosquitto.conf");
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            // Logged to stderr into a file the test owns: started as root, Mosquitto drops to
            // its own user and could not open a `log_dest file` in the test's directory.
            .stderr(std::fs::File::create(&log).expect("create mosquitto.log"))
            .spawn()
            .expect("start mosquitto (scripts/test.sh installs it)");
        wait_for_port(port, "mosquitto");
        Self { child, port, dir }
    }
}

impl Mosquitto {
    /// The broker's log so far (connections and disconnections).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats_binary() -> PathBuf {
    if let Ok(p) = std::env::var("NATS_SERVER") {
        return PathBuf::from(p);
    }
    for p in [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("nats-server")
}

/// A NATS server of the test's own on a free loopback port (no JetStream, no persistence).
pub(crate) struct NatsServer {
    child: Child,
    pub(crate) port: u16,
}

impl NatsServer {
    pub(crate) fn start() -> Self {
        let port = free_port();
        let child = Command::new(nats_binary())
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (scripts/test.sh installs it)");
        wait_for_port(port, "nats-server");
        Self { child, port }
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real thingward binary serving on a free loopback port.
pub(crate) struct Thingward {
    child: Option<Child>,
    pub(crate) port: u16,
    pub(crate) data_dir: PathBuf,
    mqtt_port: Option<u16>,
    extra_args: Vec<String>,
}

impl Thingward {
    pub(crate) fn start(data_dir: &Path, mqtt_port: Option<u16>) -> Self {
        Self::start_with(data_dir, mqtt_port, &[])
    }

    /// Starts with extra `thingward serve` arguments (e.g. `--audit-config F`).
    pub(crate) fn start_with_args(data_dir: &Path, mqtt_port: Option<u16>, args: &[&str]) -> Self {
        Self::start_with(data_dir, mqtt_port, args)
    }

    /// Starts with extra `serve` flags (kept across restarts).
    pub(crate) fn start_with(data_dir: &Path, mqtt_port: Option<u16>, extra_args: &[&str]) -> Self {
        let mut t = Self {
            child: None,
            port: free_port(),
            data_dir: data_dir.to_owned(),
            mqtt_port,
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
        };
        t.spawn();
        t
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_thingward"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--bind")
            .arg(format!("127.0.0.1:{}", self.port))
            .env("THINGWARD_API_TOKEN", TOKEN)
            .env("THINGWARD_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(p) = self.mqtt_port {
            cmd.arg("--mqtt-url").arg(format!("mqtt://127.0.0.1:{p}"));
        }
        cmd.args(&self.extra_args);
        self.child = Some(cmd.spawn().expect("start thingward"));
        wait_for_port(self.port, "thingward");
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Graceful stop (SIGTERM) and start again on the same data dir and port.
    pub(crate) fn restart(&mut self) {
        self.terminate();
        self.spawn();
    }

    /// SIGKILL and start again: what a crash does.
    pub(crate) fn crash_and_restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.spawn();
    }

    pub(crate) fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("thingward did not stop within 30 s of SIGTERM");
        }
    }
}

impl Drop for Thingward {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An HTTP client that authenticates with the test token.
pub(crate) fn http() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().expect("header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}
