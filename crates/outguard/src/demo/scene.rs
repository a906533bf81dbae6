//! The demo's stage, all on loopback in a temporary directory: a DNS server for the demo domains,
//! MX sinks on 127.0.0.10–12, the config file, and the relay itself — this same binary started
//! as `outguard serve --config <dir>/outguard.toml`, its listeners on port 0 read back from its
//! `listening: KIND URL` lines, exactly as an operator would run it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use outguard_harness::sink::{Reply, Script};
use outguard_harness::{DnsServer, SmtpSink, Zones};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// Source addresses of the three pools; the narration names a delivery's pool by its peer IP.
pub const REGULAR_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
pub const HIGH_RISK_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
pub const RELAY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
/// MX of example.com (the outside world), of the tenants' own domains, of example.net (greylists).
const WORLD_MX: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 10);
const MAILBOX_MX: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const GREYLIST_MX: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 12);

/// The pool a delivery left from, by its source address.
pub fn pool_of(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(v) if v == REGULAR_IP => "regular",
        IpAddr::V4(v) if v == HIGH_RISK_IP => "high-risk",
        IpAddr::V4(v) if v == RELAY_IP => "relay",
        _ => "unknown",
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> anyhow::Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("outguard-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
        Ok(TempDir(p))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// DNS and the destination mail servers.
pub struct World {
    pub dns: DnsServer,
    /// example.com's MX: where the outside world receives.
    pub world: SmtpSink,
    /// acme.example's and globex.example's MX: the tenants' own mailboxes (admins, DSNs).
    pub mailboxes: SmtpSink,
    /// example.net's MX, which greylists (451) everything: mail to it stays in the queue.
    pub greylist: SmtpSink,
    pub port: u16,
}

/// A port free on every one of `ips` (the sinks share the relay's single delivery port).
fn free_port_on(ips: &[Ipv4Addr]) -> anyhow::Result<u16> {
    'outer: for _ in 0..200 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        for ip in ips {
            if std::net::TcpListener::bind((*ip, port)).is_err() {
                continue 'outer;
            }
        }
        return Ok(port);
    }
    bail!("no TCP port is free on all of {ips:?}")
}

impl World {
    pub async fn start() -> anyhow::Result<World> {
        let port = free_port_on(&[WORLD_MX, MAILBOX_MX, GREYLIST_MX])?;
        let sink = |ip: Ipv4Addr| SmtpSink::start((ip, port));
        let world = sink(WORLD_MX)
            .await
            .context("starting the example.com MX sink")?;
        let mailboxes = sink(MAILBOX_MX)
            .await
            .context("starting the tenants' MX sink")?;
        let greylist = sink(GREYLIST_MX)
            .await
            .context("starting the example.net MX sink")?;
        greylist.set_script(Script::fail_first(
            u32::MAX,
            Reply::new(451, "4.7.1 Greylisted, please try again later"),
        ));
        let mut z = Zones::new();
        z.mx("example.com", 10, "mx.example.com")
            .a("mx.example.com", WORLD_MX)
            .mx("example.net", 10, "mx.example.net")
            .a("mx.example.net", GREYLIST_MX)
            .mx("acme.example", 10, "mx.acme.example")
            .a("mx.acme.example", MAILBOX_MX)
            .txt("acme.example", "v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 -all")
            .mx("globex.example", 10, "mx.globex.example")
            .a("mx.globex.example", MAILBOX_MX)
            .txt("globex.example", "v=spf1 ip4:127.0.0.2 ip4:127.0.0.3 -all");
        // globex-old.example is accepted by the relay but has neither MX nor A in DNS.
        let dns = DnsServer::start(z)
            .await
            .context("starting the demo DNS server")?;
        Ok(World {
            dns,
            world,
            mailboxes,
            greylist,
            port,
        })
    }

    /// Which sink a delivery reached, by name (for the narration).
    pub fn sinks(&self) -> [(&'static str, &SmtpSink); 3] {
        [
            ("mx.example.com", &self.world),
            ("mx.acme.example", &self.mailboxes),
            ("mx.example.net", &self.greylist),
        ]
    }
}

/// The relay's configuration: every listener on port 0, three pools on 127.0.0.2–4, our DNS.
pub fn config_text(data_dir: &Path, dns: SocketAddr, delivery_port: u16) -> String {
    format!(
        r#"# Written by `outguard demo`.
[server]
hostname = "relay.outguard.demo"
data_dir = "{data}"
shutdown_grace = "3s"

[listeners]
submission = "127.0.0.1:0"
submissions = "127.0.0.1:0"
connector = "127.0.0.1:0"
fbl = "127.0.0.1:0"
http = "127.0.0.1:0"
allow_plaintext_auth_on_loopback = true

[limits]
messages_per_minute = 600

[dns]
resolver = "{dns}"

[delivery]
port = {delivery_port}
retry_schedule = ["2m", "10m"]
max_age = "1h"
connect_timeout = "3s"
command_timeout = "10s"

[[pools]]
name = "regular"
source_ips = ["{REGULAR_IP}"]
ehlo = "regular.outguard.demo"

[[pools]]
name = "high-risk"
source_ips = ["{HIGH_RISK_IP}"]
ehlo = "highrisk.outguard.demo"

[[pools]]
name = "relay"
source_ips = ["{RELAY_IP}"]
ehlo = "relay.outguard.demo"

[notifications]
from = "Outguard <postmaster@relay.outguard.demo>"
"#,
        data = data_dir.display()
    )
}

/// The running relay process; killed on drop.
pub struct RelayProc {
    pub child: Child,
    pub addrs: HashMap<String, SocketAddr>,
    pub operator_token: Option<String>,
}

impl RelayProc {
    /// `outguard serve --config FILE`, waiting up to a minute for `outguard ready`.
    pub async fn start(config: &Path, log: &Path) -> anyhow::Result<RelayProc> {
        let exe = std::env::current_exe().context("finding the outguard binary")?;
        let mut child = Command::new(exe)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("OUTGUARD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(
                std::fs::File::create(log)
                    .with_context(|| format!("creating {}", log.display()))?,
            )
            .kill_on_drop(true)
            .spawn()
            .context("starting `outguard serve`")?;
        let stdout = child.stdout.take().context("the relay's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let mut relay = RelayProc {
            child,
            addrs: HashMap::new(),
            operator_token: None,
        };
        let ready = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix("listening: ") {
                    let (kind, url) = rest
                        .split_once(' ')
                        .context("a `listening:` line without a URL")?;
                    let hostport = url.split("://").nth(1).unwrap_or(url).trim_end_matches('/');
                    relay.addrs.insert(
                        kind.to_string(),
                        hostport
                            .parse()
                            .with_context(|| format!("address in `{line}`"))?,
                    );
                } else if let Some(t) = line.strip_prefix("operator token: ") {
                    relay.operator_token = Some(t.to_string());
                } else if line.starts_with("outguard ready") {
                    return Ok(());
                }
            }
            bail!("the relay exited before it was ready")
        };
        match tokio::time::timeout(Duration::from_secs(60), ready).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.context(relay_log_tail(log))),
            Err(_) => bail!(
                "the relay was not ready within 60 s; {}",
                relay_log_tail(log)
            ),
        }
        // Keep draining stdout so the relay never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(relay)
    }

    pub fn addr(&self, kind: &str) -> anyhow::Result<SocketAddr> {
        self.addrs
            .get(kind)
            .copied()
            .with_context(|| format!("the relay printed no `{kind}` listener"))
    }

    /// SIGTERM (graceful drain) via kill(1), then SIGKILL if it is still there after 10 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn relay_log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "relay log ({}):\n{}",
        log.display(),
        lines[lines.len().saturating_sub(20)..].join("\n")
    )
}

/// Run `outguard --config FILE ARGS…` (the operator's own CLI) and return its stdout.
pub async fn cli(config: &Path, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt as _;
    let exe = std::env::current_exe().context("finding the outguard binary")?;
    let mut child = Command::new(exe)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("running outguard {}", args.join(" ")))?;
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        w.write_all(text.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!(
            "`outguard {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
