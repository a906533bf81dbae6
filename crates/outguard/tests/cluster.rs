//! End to end, cluster mode (SPEC §6, issue 8): two real `outguard` nodes (own data dirs, ports
//! and pool IPs) on ONE PostgreSQL schema and ONE Redis key prefix enforce one set of limits:
//! concurrent sending through both never passes the limit, a restriction made on one node is
//! refused on the other within a second, the notification goes out once. And with Redis gone
//! (our own redis-server, never the shared one) submissions are deferred `451 4.3.0` and
//! nothing is accepted uncounted; Redis back, traffic resumes without a restart.
//!
//! Needs PostgreSQL at 127.0.0.1:5432 (trust, database `test`) and Redis at 127.0.0.1:6379
//! (`$OUTGUARD_TEST_PG`, `$OUTGUARD_TEST_REDIS` to point elsewhere; `scripts/test` does);
//! a missing server fails the test with how to start it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::client::Client;
use common::cluster::{
    PgSchema, WAIT, accepted, cli_ok, node_config, provision, redis_url, require_servers, send_n,
    start_both,
};
use common::{RelayProc, Scene, message, scene};
use outguard_store::Store;
use outguard_store::redis_counters::RedisCounters;

/// A redis-server of our own on a free loopback port, killed on drop.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = common::free_port_on(&["127.0.0.1"]);
        let mut me = OwnRedis { port, child: None };
        me.restart();
        me
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (/usr/bin/redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "own redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Two nodes on a fresh schema and key prefix, tenant a provisioned, `policy` set for it.
struct Cluster {
    // Fields drop in this order: the nodes stop before their schema is dropped.
    n1: RelayProc,
    n2: RelayProc,
    d1: std::path::PathBuf,
    prefix: String,
    _schema: PgSchema,
}

impl Cluster {
    async fn start(sc: &Scene, policy: &[&str]) -> Cluster {
        require_servers().await;
        let schema = PgSchema::new();
        let prefix = format!("cluster-{}", uuid::Uuid::now_v7().simple());
        let counters = format!("{}?prefix={prefix}", redis_url());
        provision(&schema.url()).await;
        let d1 = node_config(sc, 1, &schema.url(), &counters);
        let d2 = node_config(sc, 2, &schema.url(), &counters);
        let mut args = vec!["policy", "set", "--tenant", "a"];
        args.extend_from_slice(policy);
        cli_ok(&d1, &args);
        let (n1, n2) = start_both(d1.clone(), d2);
        Cluster {
            n1,
            n2,
            d1,
            prefix,
            _schema: schema,
        }
    }

    /// Stop both nodes, then drop the Redis keys (the schema goes when `self` drops).
    async fn stop(self) {
        let prefix = self.prefix.clone();
        drop(self);
        if let Ok(c) = RedisCounters::connect(&redis_url(), &prefix).await {
            let _ = c.purge().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_one_limit_restriction_and_notification() {
    let sc = scene("").await;
    let c = Cluster::start(
        &sc,
        &[
            "recipient_limit_external_per_hour=100",
            "notify_recipients=admin@a.example",
        ],
    )
    .await;
    let (d1, n1, n2) = (&c.d1, &c.n1, &c.n2);
    let nodes = [n1.addr("submission"), n2.addr("submission")];

    // Alice, concurrently through both nodes: 40 sessions x 5 recipients against 100/hour.
    let mut tasks = Vec::new();
    for s in 0..40usize {
        let addr = nodes[s % 2];
        tasks.push(tokio::spawn(async move {
            accepted(
                &send_n(
                    addr,
                    ("alice@a.example", "alice-pw"),
                    &format!("s{s}r"),
                    0,
                    5,
                )
                .await,
            )
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    eprintln!("alice: {total} recipients accepted across two nodes (limit 100, 200 tried)");
    assert!(
        total <= 100,
        "{total} recipients accepted across two nodes against a limit of 100"
    );
    // Nearly filled: a transaction cut short by the restriction gives its recipients back
    // after the others stopped trying, so the total may end a little under the limit.
    assert!(
        total >= 90,
        "only {total} of 100 admitted: the nodes do not share the window sensibly"
    );

    // Bob, alternately through both nodes up to the limit; the 101st on node 1 restricts him,
    // and node 2 refuses him within about a second (the restriction version poll).
    for t in 0..20 {
        let r = send_n(nodes[t % 2], ("bob@a.example", "bob-pw"), "b", t * 5, 5).await;
        assert_eq!(accepted(&r), 5, "txn {t} on node {}: {r:?}", t % 2 + 1);
    }
    let (r, _) = send_n(nodes[0], ("bob@a.example", "bob-pw"), "b", 100, 1).await;
    assert_eq!(
        r[0], "550 5.2.2 Submission quota exceeded",
        "the 101st recipient"
    );
    let restricted_at = Instant::now();
    loop {
        let (r, _) = send_n(nodes[1], ("bob@a.example", "bob-pw"), "b", 200, 1).await;
        if r[0] == "550 5.1.8 Access denied, bad outbound sender" {
            break;
        }
        assert!(
            r[0].starts_with("550 5.2.2"),
            "node 2 must refuse bob meanwhile: {r:?}"
        );
        assert!(
            restricted_at.elapsed() < Duration::from_millis(1500),
            "node 2 still not enforcing the restriction after {:?}",
            restricted_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen_after = restricted_at.elapsed();

    // Nothing left that was not counted: at most the 200 accepted recipients are delivered
    // (fewer when a restriction held queued mail, SPEC §3).
    sc.dest.wait_for(1, WAIT).await;
    let mut delivered = 0;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        delivered = sc
            .dest
            .messages()
            .iter()
            .map(|m| m.rcpts.len())
            .sum::<usize>();
    }
    assert!(
        (100..=200).contains(&delivered),
        "{delivered} recipients delivered for 200 accepted"
    );

    // One restriction per account, one notification per restriction (not one per node).
    sc.home.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let notes: Vec<String> = sc
        .home
        .messages()
        .iter()
        .filter(|m| m.rcpts == ["admin@a.example"])
        .filter_map(|m| {
            mail_parser::MessageParser::new()
                .parse(&m.data)?
                .subject()
                .map(str::to_string)
        })
        .collect();
    for who in ["alice@a.example", "bob@a.example"] {
        let subject =
            format!("Outbound spam notification - {who} blocked from sending outbound mail");
        let n = notes.iter().filter(|s| **s == subject).count();
        assert_eq!(n, 1, "{who}: {n} notifications in {notes:#?}");
    }
    let list: serde_json::Value =
        serde_json::from_str(&cli_ok(d1, &["restricted", "list", "--json"])).expect("json");
    for who in ["alice@a.example", "bob@a.example"] {
        let n = list
            .as_array()
            .expect("array")
            .iter()
            .filter(|r| r.to_string().contains(who))
            .count();
        assert_eq!(n, 1, "{who}: {n} restriction records: {list}");
    }
    eprintln!("restriction seen on node 2 after {seen_after:?}");
    c.stop().await;
}

/// SPEC §3 on a cluster: a restriction decided on node 1 holds the account's mail that is
/// queued on node 2 (each node has its own spool), not only on the deciding node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restriction_on_one_node_holds_mail_queued_on_the_other() {
    let sc = scene("").await;
    let c = Cluster::start(&sc, &["recipient_limit_external_per_hour=5"]).await;
    let (d1, n1, n2) = (&c.d1, &c.n1, &c.n2);

    // Queued on node 2 and deferred there: broken.example answers SERVFAIL for its MX.
    let reply = Client::send_mail(
        n2.addr("submission"),
        Some(("bob@a.example", "bob-pw")),
        "bob@a.example",
        &["x@broken.example"],
        &message(
            "bob@a.example",
            "x@broken.example",
            "Queued",
            "Waiting on node 2.",
        ),
    )
    .await;
    assert!(reply.starts_with("250"), "node 2: {reply}");
    let id = common::client::queued_id(&reply);

    // Bob crosses the limit on node 1: node 1 decides the restriction.
    let mut crossed = None;
    for i in 0..10 {
        let to = format!("r{i}@dest.example");
        let r = Client::send_mail(
            n1.addr("submission"),
            Some(("bob@a.example", "bob-pw")),
            "bob@a.example",
            &[to.as_str()],
            &message("bob@a.example", &to, "More", "Over the limit."),
        )
        .await;
        if !r.starts_with("250") {
            crossed = Some(r);
            break;
        }
    }
    assert_eq!(
        crossed.as_deref(),
        Some("550 5.2.2 Submission quota exceeded"),
        "bob must cross 5/hour on node 1"
    );

    // Node 2 holds its queued message of bob within its restriction poll.
    let start = Instant::now();
    loop {
        let trace = cli_ok(d1, &["trace", "--id", &id, "--json"]);
        if trace.contains("\"held\"") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "node 2 did not hold bob's queued message {id}: {trace}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "held on node 2 {:?} after the restriction on node 1",
        start.elapsed()
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_defers_and_recovers_without_restart() {
    require_servers().await;
    let sc = scene("").await;
    let schema = PgSchema::new();
    let mut redis = OwnRedis::start();
    provision(&schema.url()).await;
    let d1 = node_config(
        &sc,
        1,
        &schema.url(),
        &format!("{}?prefix=down", redis.url()),
    );
    let relay = RelayProc::start(&d1);
    let sub = relay.addr("submission");
    let alice = ("alice@a.example", "alice-pw");

    let r = send_n(sub, alice, "a", 0, 2).await;
    assert_eq!(accepted(&r), 2, "{r:?}");

    // A transaction open when Redis goes: its later RCPTs are deferred, never admitted.
    let (mut open, _) = Client::connect(sub).await;
    open.cmd("EHLO c.test").await;
    assert!(open.auth_plain(alice.0, alice.1).await.starts_with("235"));
    assert!(
        open.cmd("MAIL FROM:<alice@a.example>")
            .await
            .starts_with("250")
    );
    // And one past RCPT when Redis goes: its verdict cannot be counted at the end of DATA, so
    // it is deferred and nothing is queued (issue 24: it used to be accepted uncounted).
    let (mut late, _) = Client::connect(sub).await;
    late.cmd("EHLO c.test").await;
    assert!(late.auth_plain(alice.0, alice.1).await.starts_with("235"));
    assert!(
        late.cmd("MAIL FROM:<alice@a.example>")
            .await
            .starts_with("250")
    );
    assert!(
        late.cmd("RCPT TO:<late@dest.example>")
            .await
            .starts_with("250")
    );
    assert!(late.cmd("DATA").await.starts_with("354"));
    redis.stop();
    late.send_raw(
        common::message("alice@a.example", "late@dest.example", "late", "counted?").as_bytes(),
    )
    .await;
    assert_eq!(
        late.cmd(".").await,
        "451 4.3.0 Temporary failure counting limits, try again later"
    );
    late.cmd("QUIT").await;
    let t = Instant::now();
    let rcpt = open.cmd("RCPT TO:<open@dest.example>").await;
    assert_eq!(
        rcpt,
        "451 4.3.0 Temporary failure counting limits, try again later"
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "deferral took {:?}",
        t.elapsed()
    );
    open.cmd("QUIT").await;
    for i in 0..3 {
        let t = Instant::now();
        let (r, fin) = send_n(sub, alice, "down", i, 1).await;
        assert_eq!(
            r[0], "451 4.3.0 Temporary failure counting limits, try again later",
            "while Redis is down"
        );
        assert!(fin.is_none());
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "deferral took {:?}",
            t.elapsed()
        );
    }

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = send_n(sub, alice, "back", 0, 1).await;
        if accepted(&r) == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "traffic did not resume after Redis came back: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Only what was counted left: the first 2 and the one after recovery.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered: Vec<String> = sc
        .dest
        .messages()
        .iter()
        .flat_map(|m| m.rcpts.clone())
        .collect();
    assert_eq!(delivered.len(), 3, "{delivered:?}");
    assert!(
        delivered
            .iter()
            .all(|r| !r.starts_with("down") && !r.starts_with("open") && !r.starts_with("late")),
        "{delivered:?}"
    );
}

/// Alerts once per cluster (SPEC §3/§6): both nodes have the same high-risk IP and both
/// monitors see it listed, round after round; one `ip_listed` alert is recorded in the shared
/// store and the operators get one email, not one per node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ip_listed_on_two_nodes_is_alerted_once() {
    require_servers().await;
    let sc = scene("").await;
    sc.dns.update(|z| {
        z.a("3.0.0.127.bl.test", [127, 0, 0, 2].into());
    });
    let schema = PgSchema::new();
    let prefix = format!("cluster-{}", uuid::Uuid::now_v7().simple());
    let counters = format!("{}?prefix={prefix}", redis_url());
    provision(&schema.url()).await;
    let dnsbl = "\n[dnsbl]\ninterval = \"1s\"\n\n[[dnsbl.zones]]\nname = \"bl.test\"\n\n\
                 [notifications]\noperator_recipients = [\"ops@b.example\"]\n";
    let mut dirs = Vec::new();
    for n in [1, 2] {
        let dir = node_config(&sc, n, &schema.url(), &counters);
        let path = dir.join("outguard.toml");
        let text = std::fs::read_to_string(&path).expect("config");
        // Node 2's high-risk pool is node 1's: the same IP watched by both.
        let text = text.replace(
            r#"source_ips = ["127.0.0.6"]"#,
            r#"source_ips = ["127.0.0.3"]"#,
        );
        std::fs::write(&path, format!("{text}{dnsbl}")).expect("config");
        dirs.push(dir);
    }
    let (n1, n2) = start_both(dirs[0].clone(), dirs[1].clone());
    let store = Store::open(&schema.url()).await.expect("store");
    let deadline = Instant::now() + WAIT;
    // Both monitors have checked a few rounds: each node's DNSBL history has the listing.
    loop {
        let checks = store
            .dnsbl_history(Some("127.0.0.3"), 100)
            .await
            .expect("history");
        if checks.iter().filter(|c| c.status == "listed").count() >= 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the monitors did not check; n1:\n{}\nn2:\n{}",
            n1.stderr(),
            n2.stderr()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let listed = store
        .list_alerts(None, Some(outguard_policy::AlertKind::IpListed), 100)
        .await
        .expect("alerts");
    assert_eq!(
        listed.len(),
        1,
        "one ip_listed for the cluster: {:?}",
        listed.iter().map(|a| &a.alert.summary).collect::<Vec<_>>()
    );
    assert!(listed[0].alert.summary.contains("127.0.0.3"), "{listed:?}");
    let mails = sc.home.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let ops: Vec<_> = sc
        .home
        .wait_for(mails.len(), WAIT)
        .await
        .into_iter()
        .filter(|m| m.rcpts == ["ops@b.example"])
        .collect();
    assert_eq!(
        ops.len(),
        1,
        "the operators are mailed once, not once per node"
    );
    store.close().await;
}
