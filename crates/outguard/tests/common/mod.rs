//! End-to-end harness: the real `outguard` binary on loopback ports chosen by the OS, in a temp
//! dir, with a real DNS server and SMTP sinks from `outguard-harness`. Processes are killed on
//! drop. Nothing leaves 127.0.0.0/8.

// Compiled into several test binaries, each of which uses only part of it.
#![allow(dead_code)]

pub mod client;
pub mod cluster;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use outguard_harness::{DnsServer, SmtpSink, Zones};
use outguard_store::Store;

pub const BIN: &str = env!("CARGO_BIN_EXE_outguard");

/// A free TCP port on every one of `ips` (sinks on several 127.0.0.x share the delivery port).
pub fn free_port_on(ips: &[&str]) -> u16 {
    'outer: for _ in 0..200 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        for ip in ips {
            if std::net::TcpListener::bind((*ip, port)).is_err() {
                continue 'outer;
            }
        }
        return port;
    }
    panic!("no free port shared by {ips:?}");
}

pub struct RelayProc {
    pub child: Child,
    pub dir: PathBuf,
    pub addrs: HashMap<String, SocketAddr>,
    pub token: Option<String>,
    pub stdout_rest: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RelayProc {
    /// Start `outguard serve --config <dir>/outguard.toml` and wait for "outguard ready".
    pub fn start(dir: &Path) -> RelayProc {
        RelayProc::start_command(dir, Command::new(BIN))
    }

    /// `start` with the process's open-file limit (soft and hard) set to `nofile`.
    pub fn start_with_nofile(dir: &Path, nofile: u32) -> RelayProc {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
            .arg(BIN);
        RelayProc::start_command(dir, cmd)
    }

    /// [`RelayProc::start`] under `umask` (a shell sets it, then `exec`s the binary, so the
    /// child is the server itself).
    pub fn start_under_umask(dir: &Path, umask: &str) -> RelayProc {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
            .arg(BIN);
        RelayProc::start_command(dir, cmd)
    }

    /// `start` with `cmd` as the program (it gets the `serve` arguments).
    pub fn start_command(dir: &Path, mut cmd: Command) -> RelayProc {
        let mut child = cmd
            .arg("serve")
            .arg("--config")
            .arg(dir.join("outguard.toml"))
            .env("OUTGUARD_LOG", "info,outguard=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr.log")).expect("log file"))
            .spawn()
            .expect("start outguard");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let rest = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let rest2 = rest.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                rest2.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut addrs = HashMap::new();
        let mut token = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                    panic!("outguard did not become ready; stderr:\n{log}");
                }
            };
            if let Some(rest) = line.strip_prefix("listening: ") {
                let (kind, url) = rest.split_once(' ').expect("listening line");
                let hostport = url.split("://").nth(1).expect("url");
                addrs.insert(kind.to_string(), hostport.parse().expect("addr"));
            } else if let Some(t) = line.strip_prefix("operator token: ") {
                token = Some(t.to_string());
            } else if line.starts_with("outguard ready") {
                break;
            }
        }
        RelayProc {
            child,
            dir: dir.to_path_buf(),
            addrs,
            token,
            stdout_rest: rest,
        }
    }

    pub fn addr(&self, kind: &str) -> SocketAddr {
        self.addrs[kind]
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (graceful shutdown).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Config text for a test relay: every listener on port 0, pools on 127.0.0.2 (regular),
/// 127.0.0.3 (high-risk), 127.0.0.4 (relay), our DNS server, the sinks' port.
pub fn config(dir: &Path, dns: SocketAddr, delivery_port: u16, extra: &str) -> String {
    format!(
        r#"
[server]
hostname = "relay.outguard.test"
data_dir = "{data}"
shutdown_grace = "5s"

[listeners]
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
connector = "127.0.0.1:0"
fbl = "127.0.0.1:0"
http = "127.0.0.1:0"
allow_plaintext_auth_on_loopback = true
max_auth_failures = 3

[limits]
max_recipients_per_message = 5
max_message_size = "200KB"
messages_per_minute = 600

[dns]
resolver = "{dns}"

[delivery]
port = {delivery_port}
retry_schedule = ["1s", "1s", "2s"]
max_age = "1h"
connect_timeout = "3s"
command_timeout = "10s"

[[pools]]
name = "regular"
source_ips = ["127.0.0.2"]
ehlo = "regular.outguard.test"

[[pools]]
name = "high-risk"
source_ips = ["127.0.0.3"]
ehlo = "highrisk.outguard.test"

[[pools]]
name = "relay"
source_ips = ["127.0.0.4"]
ehlo = "relay.outguard.test"
{extra}
"#,
        data = dir.join("data").display()
    )
}

/// A scene: DNS with two tenants' domains and destination MX hosts, sinks, the config written.
pub struct Scene {
    pub tmp: tempfile::TempDir,
    pub dns: DnsServer,
    /// MX for dest.example (127.0.0.10) and for the tenants' own domains (127.0.0.11: DSNs).
    pub dest: SmtpSink,
    pub home: SmtpSink,
    pub port: u16,
}

pub async fn scene(extra_config: &str) -> Scene {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port_on(&["127.0.0.10", "127.0.0.11"]);
    let dest = SmtpSink::start(("127.0.0.10", port)).await.expect("sink");
    let home = SmtpSink::start(("127.0.0.11", port)).await.expect("sink");
    let mut z = Zones::new();
    z.mx("dest.example", 10, "mx.dest.example")
        .a("mx.dest.example", [127, 0, 0, 10].into())
        .mx("a.example", 10, "mx.a.example")
        .a("mx.a.example", [127, 0, 0, 11].into())
        .mx("b.example", 10, "mx.b.example")
        .a("mx.b.example", [127, 0, 0, 11].into())
        .null_mx("nullmx.example")
        .servfail("broken.example");
    let dns = DnsServer::start(z).await.expect("dns");
    std::fs::write(
        tmp.path().join("outguard.toml"),
        config(tmp.path(), dns.addr(), port, extra_config),
    )
    .expect("config");
    Scene {
        tmp,
        dns,
        dest,
        home,
        port,
    }
}

impl Scene {
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Run the CLI against this scene's config; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let cfg = self.dir().join("outguard.toml");
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(args)
            .output()
            .expect("run outguard");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `cli` that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.cli(args);
        assert_eq!(code, 0, "outguard {args:?} failed: {err}");
        out
    }

    /// Tenants a (a.example: alice, bob) and b (b.example: carol); connector 127.0.0.0/8 → a.
    pub async fn provision(&self) {
        self.provision_with(false).await;
    }

    /// [`Scene::provision`] with tenant a's connector marked `forwarding` (SPEC §9: mail from
    /// domains no tenant registered leaves from the relay pool, with SRS).
    pub async fn provision_with(&self, forwarding: bool) {
        std::fs::create_dir_all(self.dir().join("data")).expect("data dir");
        let url = format!(
            "sqlite://{}?mode=rwc",
            self.dir().join("data/outguard.db").display()
        );
        let store = Store::open(&url).await.expect("store");
        let now = 1;
        store.add_tenant("a", now).await.expect("tenant");
        store.add_tenant("b", now).await.expect("tenant");
        store.add_domain("a", "a.example").await.expect("domain");
        store.add_domain("b", "b.example").await.expect("domain");
        store
            .add_domain("a", "ghost.example")
            .await
            .expect("domain");
        store
            .add_account("a", "alice@a.example", Some("alice-pw"), now)
            .await
            .expect("account");
        store
            .add_account("a", "bob@a.example", Some("bob-pw"), now)
            .await
            .expect("account");
        store
            .add_account("b", "carol@b.example", Some("carol-pw"), now)
            .await
            .expect("account");
        store
            .add_account("a", "ghost@ghost.example", Some("ghost-pw"), now)
            .await
            .expect("account");
        store
            .add_connector_with(
                "a",
                "127.0.0.0/8".parse().expect("cidr"),
                None,
                forwarding,
                now,
            )
            .await
            .expect("connector");
        store.close().await;
    }
}

pub fn message(from: &str, to: &str, subject: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}@a.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n{body}\r\n",
        subject.len() * 7919 + body.len()
    )
}

/// The SpamAssassin corpus, never copied into the repo: `$OUTGUARD_CORPUS`, `../shared` beside
/// the repository, or the cache `scripts/fetch-corpus` fills (`outguard_spam::corpus::locate`).
pub fn corpus_dir() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    outguard_spam::corpus::locate(&repo).unwrap_or_else(|e| panic!("{e}"))
}

/// TEST-split files of one label, in manifest order.
pub fn corpus_files(label: &str) -> Vec<PathBuf> {
    let dir = corpus_dir();
    let manifest = std::fs::read_to_string(dir.join("manifest.csv")).expect("manifest");
    manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() >= 7 && f[1] == label && f[6] == "test").then(|| dir.join(f[0]))
        })
        .collect()
}

/// A corpus message re-addressed so that `from` owns it: its From:/Sender:/Return-Path headers
/// are replaced, everything else (body, MIME, other headers) kept, line endings made CRLF.
pub fn readdress(raw: &[u8], from: &str, to: &str) -> String {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut out = format!("From: {from}\r\nTo: {to}\r\n");
    let mut skip = false;
    for line in head.lines() {
        let cont = line.starts_with(' ') || line.starts_with('\t');
        if cont {
            if !skip {
                out.push_str(line);
                out.push_str("\r\n");
            }
            continue;
        }
        let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
        skip = matches!(
            name.as_str(),
            "from"
                | "to"
                | "cc"
                | "sender"
                | "return-path"
                | "reply-to"
                | "received"
                | "delivered-to"
        );
        if !skip && !line.starts_with("From ") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    for line in body.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}
