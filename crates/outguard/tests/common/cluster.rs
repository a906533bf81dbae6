//! Cluster-mode test helpers (SPEC §6): a PostgreSQL schema of the test's own, tenant a
//! provisioned, node configs on shared store and counters, and SMTP transactions counted.
//! Used by `tests/cluster.rs` (one Redis) and `tests/redis_cluster.rs` (a Redis Cluster).

use std::process::Command;
use std::time::Duration;

use super::client::Client;
use super::{RelayProc, Scene, message};
use outguard_store::Store;
use outguard_store::redis_counters::RedisCounters;

/// The servers: `OUTGUARD_TEST_PG` / `OUTGUARD_TEST_REDIS` override the defaults
/// (`scripts/test` sets them when it starts its own).
pub fn pg() -> String {
    std::env::var("OUTGUARD_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}
pub fn redis_url() -> String {
    std::env::var("OUTGUARD_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}
pub const WAIT: Duration = Duration::from_secs(30);

/// A PostgreSQL schema of this test's own, dropped at the end.
pub struct PgSchema(pub String);

impl PgSchema {
    pub fn new() -> PgSchema {
        PgSchema(format!("cluster_{}", uuid::Uuid::now_v7().simple()))
    }
    pub fn url(&self) -> String {
        format!("{}?schema={}", pg(), self.0)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([pg().as_str(), "-q", "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0))
            .output();
    }
}

pub async fn require_servers() {
    let redis = redis_url();
    if let Err(e) = RedisCounters::connect(&redis, "probe").await {
        panic!(
            "Redis is required at {redis} ({e}); run the tests with scripts/test, or start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
        );
    }
    let pg = pg();
    let ok = Command::new("psql")
        .args([pg.as_str(), "-qc", "SELECT 1"])
        .output();
    assert!(
        ok.as_ref().is_ok_and(|o| o.status.success()),
        "PostgreSQL is required at {pg} (trust, database `test`; run the tests with scripts/test, \
         which starts a throwaway one): {ok:?}"
    );
}

/// Tenant a (a.example: alice, bob) on the shared store.
pub async fn provision(store_url: &str) {
    let store = Store::open(store_url)
        .await
        .expect("open the PostgreSQL store");
    store.add_tenant("a", 1).await.expect("tenant");
    store.add_domain("a", "a.example").await.expect("domain");
    store
        .add_account("a", "alice@a.example", Some("alice-pw"), 1)
        .await
        .expect("account");
    store
        .add_account("a", "bob@a.example", Some("bob-pw"), 1)
        .await
        .expect("account");
    store.close().await;
}

/// Write node `n`'s config under `<scene>/n<n>/`: shared store and counters, own data dir,
/// ports and pool IPs (node 1: 127.0.0.2-4, node 2: 127.0.0.5-7).
pub fn node_config(sc: &Scene, n: u8, store: &str, counters: &str) -> std::path::PathBuf {
    let dir = sc.dir().join(format!("n{n}"));
    std::fs::create_dir_all(&dir).expect("node dir");
    let mut text = super::config(&dir, sc.dns.addr(), sc.port, "");
    text = text.replacen("[server]\n", &format!("[server]\nnode = \"n{n}\"\n"), 1);
    if n == 2 {
        for (a, b) in [
            ("127.0.0.2\"", "127.0.0.5\""),
            ("127.0.0.3\"", "127.0.0.6\""),
            ("127.0.0.4\"", "127.0.0.7\""),
        ] {
            text = text.replace(
                &format!("source_ips = [\"{a}]"),
                &format!("source_ips = [\"{b}]"),
            );
        }
    }
    let text = format!("store = \"{store}\"\ncounters = \"{counters}\"\n{text}");
    std::fs::write(dir.join("outguard.toml"), text).expect("config");
    dir
}

pub fn cli_ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(super::BIN)
        .arg("--config")
        .arg(dir.join("outguard.toml"))
        .args(args)
        .output()
        .expect("run outguard");
    assert!(
        out.status.success(),
        "outguard {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Both nodes at once (their migrations race on the advisory lock).
pub fn start_both(d1: std::path::PathBuf, d2: std::path::PathBuf) -> (RelayProc, RelayProc) {
    let t1 = std::thread::spawn(move || RelayProc::start(&d1));
    let t2 = std::thread::spawn(move || RelayProc::start(&d2));
    (t1.join().expect("node 1"), t2.join().expect("node 2"))
}

/// One transaction of `n` recipients r<first..>@dest.example; returns the RCPT replies and
/// the final reply (None when DATA was not reached).
pub async fn send_n(
    addr: std::net::SocketAddr,
    who: (&str, &str),
    tag: &str,
    first: usize,
    n: usize,
) -> (Vec<String>, Option<String>) {
    let (mut c, _) = Client::connect(addr).await;
    c.cmd("EHLO c.test").await;
    assert!(c.auth_plain(who.0, who.1).await.starts_with("235"));
    let r = c.cmd(&format!("MAIL FROM:<{}>", who.0)).await;
    if !r.starts_with("250") {
        c.cmd("QUIT").await;
        return (vec![r], None);
    }
    let mut replies = Vec::new();
    for i in first..first + n {
        replies.push(c.cmd(&format!("RCPT TO:<{tag}{i}@dest.example>")).await);
    }
    if !replies.iter().any(|r| r.starts_with("250")) {
        c.cmd("QUIT").await;
        return (replies, None);
    }
    c.cmd("DATA").await;
    c.send_raw(
        message(
            who.0,
            "list@dest.example",
            "Cluster",
            "Hello from the cluster.",
        )
        .as_bytes(),
    )
    .await;
    let fin = c.cmd(".").await;
    c.cmd("QUIT").await;
    (replies, Some(fin))
}

pub fn accepted((rcpts, fin): &(Vec<String>, Option<String>)) -> usize {
    match fin {
        Some(f) if f.starts_with("250") => rcpts.iter().filter(|r| r.starts_with("250")).count(),
        _ => 0,
    }
}
