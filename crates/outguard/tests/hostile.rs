//! Hostile clients against the real binary: slowloris, connection floods, idle-session memory,
//! injection through AUTH identities and addresses. Each asserts the exact reply and that
//! nothing was queued that should not be.

mod common;

use std::time::{Duration, Instant};

use common::client::Client;
use common::{RelayProc, Scene, scene};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A scene whose listeners have tight budgets.
async fn tight_scene() -> Scene {
    let sc = scene("").await;
    let path = sc.dir().join("outguard.toml");
    let cfg = std::fs::read_to_string(&path).expect("config").replace(
        "max_auth_failures = 3\n",
        "max_auth_failures = 3\nmax_connections = 20\nsession_timeout = \"3s\"\ncommand_timeout = \"2s\"\n",
    );
    std::fs::write(&path, cfg).expect("config");
    sc.provision().await;
    sc
}

/// A scene for load from one client address: its per-address session cap lifted, so that the
/// listener's own cap is what the test measures.
async fn one_address_load_scene() -> Scene {
    let sc = scene("").await;
    let path = sc.dir().join("outguard.toml");
    let cfg = std::fs::read_to_string(&path).expect("config").replace(
        "max_auth_failures = 3\n",
        "max_auth_failures = 3\nmax_connections_per_ip = 100000\n",
    );
    std::fs::write(&path, cfg).expect("config");
    sc.provision().await;
    sc
}

async fn read_all(s: &mut tokio::net::TcpStream, within: Duration) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match tokio::time::timeout(deadline - Instant::now(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_idle_clients_are_cut_off() {
    let sc = tight_scene().await;
    let relay = RelayProc::start(sc.dir());
    // Idle: no command within command_timeout.
    let (mut c, _) = Client::connect(relay.addr("submission")).await;
    let start = Instant::now();
    assert_eq!(c.reply().await, "421 4.4.2 Timeout, closing connection");
    assert!(start.elapsed() < Duration::from_secs(4));
    // One byte every 400 ms keeps each read alive, but the session budget ends it.
    let mut s = tokio::net::TcpStream::connect(relay.addr("submission"))
        .await
        .expect("connect");
    let started = Instant::now();
    let mut got = String::new();
    for b in b"EHLO slow.example.with.a.very.long.name.that.never.ends" {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        got.push_str(&read_all(&mut s, Duration::from_millis(400)).await);
        if got.contains("421") {
            break;
        }
    }
    assert!(got.contains("421 4.4.2 Timeout"), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "cut off by the session budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_gets_421_and_served_clients_are_unaffected() {
    let sc = tight_scene().await;
    let relay = RelayProc::start(sc.dir());
    let mut held = Vec::new();
    for _ in 0..20 {
        let (c, greet) = Client::connect(relay.addr("connector")).await;
        assert!(greet.starts_with("220"), "{greet}");
        held.push(c);
    }
    for _ in 0..50 {
        let (_, greet) = Client::connect(relay.addr("connector")).await;
        assert_eq!(greet, "421 4.7.0 Too many connections, try again later");
    }
    // Other listeners have their own budget.
    let (_, greet) = Client::connect(relay.addr("submission")).await;
    assert!(greet.starts_with("220"), "{greet}");
    let r = held[0].cmd("EHLO c.test").await;
    assert!(r.starts_with("250"), "{r}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, greet) = Client::connect(relay.addr("connector")).await;
    assert!(greet.starts_with("220"), "slots come back: {greet}");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_sessions_stay_small() {
    let sc = one_address_load_scene().await;
    let relay = RelayProc::start(sc.dir());
    let before = rss_kib(relay.child.id());
    let mut conns = Vec::new();
    for _ in 0..1000 {
        let mut s = tokio::net::TcpStream::connect(relay.addr("connector"))
            .await
            .expect("connect");
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.expect("greeting");
        assert!(buf[..n].starts_with(b"220"));
        s.write_all(b"EHLO idle.test\r\n").await.expect("ehlo");
        conns.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(relay.child.id());
    println!(
        "RSS with 1000 idle sessions: {} MiB (before: {} MiB)",
        after / 1024,
        before / 1024
    );
    assert!(after < 200 * 1024, "1,000 idle sessions hold {after} KiB");
    drop(conns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injection_through_auth_identities_and_parameters_is_refused() {
    use base64::Engine as _;
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let (mut c, _) = Client::connect(relay.addr("submission")).await;
    c.cmd("EHLO c.test").await;
    let b = base64::engine::general_purpose::STANDARD
        .encode("\0alice@a.example\r\nX-Injected: yes\0alice-pw");
    let r = c.cmd(&format!("AUTH PLAIN {b}")).await;
    assert!(r.starts_with("501 5.5.2"), "{r}");
    // authzid differing from the user: refused, not "act as".
    let b = base64::engine::general_purpose::STANDARD
        .encode("carol@b.example\0alice@a.example\0alice-pw");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {b}")).await,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert!(
        c.auth_plain("alice@a.example", "alice-pw")
            .await
            .starts_with("235")
    );
    // Unknown and malformed parameters on MAIL.
    let r = c.cmd("MAIL FROM:<alice@a.example> X-EVIL=1").await;
    assert!(r.starts_with("555") || r.starts_with("501"), "{r}");
    let r = c.cmd("MAIL FROM:<alice@a.example> SIZE=abc").await;
    assert!(r.starts_with("501") || r.starts_with("555"), "{r}");
    assert!(
        c.cmd("MAIL FROM:<alice@a.example>")
            .await
            .starts_with("250")
    );
    // Open-relay probes as recipients. (A source route `<@a.example:x@dest.example>` is stripped
    // as RFC 5321 §3.3 says, leaving the real recipient, so it is no relay trick.)
    for evil in [
        "<x%dest.example@a.example>",
        "<x!dest.example@a.example>",
        "<\"x@dest.example\"@a.example>",
        "<x@dest.example@a.example>",
    ] {
        let r = c.cmd(&format!("RCPT TO:{evil}")).await;
        assert!(r.starts_with("553") || r.starts_with("501"), "{evil}: {r}");
    }
    assert_eq!(c.cmd("DATA").await, "554 5.5.1 No valid recipients");
    assert_eq!(
        c.cmd("BDAT 10 LAST").await,
        "502 5.5.1 Command not implemented"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sc.dest.messages().is_empty(), "nothing was relayed");
}

/// 10,000 connections opened at once on the connector listener (default limit 1,000): each
/// gets either the greeting or `421 4.7.0`, never silence past the flood, never more than the
/// limit served; the relay survives, stays small, and serves mail right after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connections_at_once() {
    const N: usize = 10_000;
    let sc = one_address_load_scene().await;
    let relay = RelayProc::start(sc.dir());
    let addr = relay.addr("connector");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..N {
        tasks.spawn(async move {
            let mut s = tokio::time::timeout(
                Duration::from_secs(60),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            .ok()?
            .ok()?;
            let mut buf = [0u8; 128];
            let n = tokio::time::timeout(Duration::from_secs(60), s.read(&mut buf))
                .await
                .ok()?
                .ok()?;
            Some((String::from_utf8_lossy(&buf[..n]).into_owned(), s))
        });
    }
    let (mut served, mut refused, mut other) = (Vec::new(), 0, Vec::new());
    while let Some(r) = tasks.join_next().await {
        match r.expect("task") {
            Some((greet, s)) if greet.starts_with("220 ") => served.push(s),
            Some((greet, _)) if greet.starts_with("421 4.7.0 ") => refused += 1,
            Some((greet, _)) => other.push(greet),
            None => other.push("no answer within 60 s".into()),
        }
    }
    let rss = rss_kib(relay.child.id());
    println!(
        "{N} connections at once: {} greeted, {refused} refused with 421, {} other; RSS {} MiB",
        served.len(),
        other.len(),
        rss / 1024
    );
    assert!(
        other.is_empty(),
        "{} odd answers, e.g. {:?}",
        other.len(),
        &other[..other.len().min(3)]
    );
    assert!(
        served.len() <= 1000,
        "{} served past the limit of 1,000",
        served.len()
    );
    assert_eq!(served.len() + refused, N);
    assert!(rss < 200 * 1024, "RSS {rss} KiB under the flood");
    drop(served);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = Client::send_mail(
        addr,
        None,
        "alice@a.example",
        &["x@dest.example"],
        &common::message("alice@a.example", "x@dest.example", "After", "Still here."),
    )
    .await;
    assert!(r.starts_with("250"), "after the flood: {r}");
}
