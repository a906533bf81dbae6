//! End to end, counters on a **Redis Cluster** (issue 18): a real 3-master cluster of our own
//! on free loopback ports (`redis-server --cluster-enabled yes` × 3, `redis-cli --cluster
//! create`), two real `outguard` nodes on one PostgreSQL schema with
//! `counters = "redis+cluster://…"`. One limit is shared exactly across the nodes through the
//! cluster; then the master holding one account's slot is killed: that account's submissions
//! are deferred `451 4.3.0`, another account (on another master) keeps sending up to — never
//! past — its limit, and once the master is back (its AOF, fsynced on every write, restores the
//! windows) the first account resumes and is still held to what it had left.
//!
//! Needs redis-server/redis-cli (Debian: `apt-get install redis-server`; `scripts/test` installs
//! it) and PostgreSQL at 127.0.0.1:5432 (trust, database `test`, or `$OUTGUARD_TEST_PG`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::cluster::{PgSchema, accepted, cli_ok, node_config, provision, send_n, start_both};
use common::scene;

const DEFER: &str = "451 4.3.0 Temporary failure counting limits, try again later";

/// Three masters of our own (no replicas), each with its own dir, AOF and nodes.conf; killed
/// on drop.
struct RedisCluster {
    dir: tempfile::TempDir,
    ports: [u16; 3],
    children: [Option<Child>; 3],
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli must be installed (apt-get install redis-server)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free port whose cluster bus port (+10000) is free too.
fn free_cluster_port(taken: &[u16]) -> u16 {
    loop {
        let p = common::free_port_on(&["127.0.0.1"]);
        if p < 55_000
            && !taken.contains(&p)
            && std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok()
        {
            return p;
        }
    }
}

impl RedisCluster {
    fn start() -> RedisCluster {
        for tool in ["redis-server", "redis-cli"] {
            let found = Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                found,
                "{tool} is required for the Redis Cluster test: apt-get install redis-server \
                 (scripts/test installs it)"
            );
        }
        let mut ports = [0u16; 3];
        for i in 0..3 {
            ports[i] = free_cluster_port(&ports[..i]);
        }
        let mut me = RedisCluster {
            dir: tempfile::tempdir().expect("tempdir"),
            ports,
            children: [None, None, None],
        };
        for i in 0..3 {
            me.start_master(i);
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for p in ports {
            me.wait_ok(p);
        }
        me
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}"))
    }

    fn start_master(&mut self, i: usize) {
        let dir = self.node_dir(i);
        std::fs::create_dir_all(&dir).expect("node dir");
        let port = self.ports[i];
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--cluster-node-timeout", "1000"])
            // A dead master stops only its own slots, not the whole cluster.
            .args(["--cluster-require-full-coverage", "no"])
            // Every acknowledged write is on disk: a killed master restarts with its windows.
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.children[i] = Some(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_ok(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !redis_cli(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok") {
            assert!(
                Instant::now() < deadline,
                "cluster not ok on {port}: {}",
                redis_cli(port, &["CLUSTER", "INFO"])
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}?prefix=rc", nodes.join(","))
    }

    /// Which master (index) serves the slot of hash tag `tag`.
    fn master_of(&self, tag: &str) -> usize {
        let slot: u32 = redis_cli(
            self.ports[0],
            &["CLUSTER", "KEYSLOT", &format!("{{{tag}}}")],
        )
        .trim()
        .parse()
        .expect("slot");
        for (i, p) in self.ports.iter().enumerate() {
            let nodes = redis_cli(*p, &["CLUSTER", "NODES"]);
            let me = nodes
                .lines()
                .find(|l| l.contains("myself"))
                .expect("myself");
            for range in me.split_whitespace().skip(8) {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>())
                    && (a..=b).contains(&slot)
                {
                    return i;
                }
            }
        }
        panic!("no master serves slot {slot} of {tag}")
    }

    /// How many keys under `rc:` the master holds (the windows it must keep across a restart).
    fn keys_on(&self, i: usize) -> usize {
        redis_cli(self.ports[i], &["KEYS", "rc:*"]).lines().count()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..3 {
            self.kill(i);
        }
    }
}

/// `n` concurrent transactions of 5 recipients by `who` (password `pw`), alternating nodes.
/// With `retry`, a deferred transaction is tried again (as an SMTP client does with `451`) —
/// on a loaded machine a counter call may miss its 500 ms bound — until it is not deferred.
/// Returns the recipients accepted and the deferred attempts.
async fn burst(
    nodes: [std::net::SocketAddr; 2],
    who: &'static str,
    tag: &str,
    n: usize,
    retry: bool,
) -> (usize, usize) {
    let mut tasks = Vec::new();
    for s in 0..n {
        let addr = nodes[s % 2];
        let tag = format!("{tag}{s}r");
        tasks.push(tokio::spawn(async move {
            let mut deferred = 0;
            for _ in 0..20 {
                let r = send_n(addr, (who, "pw"), &tag, 0, 5).await;
                if !r.0.iter().any(|x| x == DEFER) {
                    return (accepted(&r), deferred);
                }
                deferred += 1;
                if !retry {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (0, deferred)
        }));
    }
    let (mut total, mut deferred) = (0, 0);
    for t in tasks {
        let (a, d) = t.await.expect("task");
        total += a;
        deferred += d;
    }
    (total, deferred)
}

fn add_accounts(dir: &Path, names: &[String]) {
    for n in names {
        let out = Command::new(common::BIN)
            .arg("--config")
            .arg(dir.join("outguard.toml"))
            .args(["account", "add", "--tenant", "a", n, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write as _;
                c.stdin.take().expect("stdin").write_all(b"pw\n")?;
                c.wait()
            })
            .expect("outguard account add");
        assert!(out.success(), "account add {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_shared_through_a_redis_cluster_survives_a_dead_master() {
    common::cluster::require_servers().await;
    let mut rc = RedisCluster::start();
    let sc = scene("").await;
    let schema = PgSchema::new();
    provision(&schema.url()).await;
    let d1 = node_config(&sc, 1, &schema.url(), &rc.url());
    let d2 = node_config(&sc, 2, &schema.url(), &rc.url());
    cli_ok(
        &d1,
        &[
            "policy",
            "set",
            "--tenant",
            "a",
            "recipient_limit_external_per_hour=100",
        ],
    );

    // Two accounts on different masters, neither on the tenant's master (the tenant's keys
    // must stay reachable while the victim's master is down).
    let names: Vec<String> = (0..16).map(|i| format!("u{i}@a.example")).collect();
    add_accounts(&d1, &names);
    let tenant_master = rc.master_of("t:a");
    let rcr = &rc;
    let on = |i: usize| {
        names
            .iter()
            .filter(move |n| rcr.master_of(&format!("a:{n}")) == i)
    };
    let victim_master = (0..3)
        .find(|m| *m != tenant_master)
        .expect("another master");
    let victim: &'static str = on(victim_master)
        .next()
        .expect("an account on the victim master")
        .clone()
        .leak();
    let survivor: &'static str = (0..3)
        .filter(|m| *m != victim_master)
        .find_map(|m| on(m).next())
        .expect("an account on another master")
        .clone()
        .leak();
    eprintln!(
        "victim {victim} on master {victim_master}, survivor {survivor}, tenant on {tenant_master}"
    );

    let (n1, n2) = start_both(d1.clone(), d2);
    let nodes = [n1.addr("submission"), n2.addr("submission")];

    // Both accounts, concurrently through both nodes: 12 x 5 recipients each, under 100/hour.
    let (v, s) = tokio::join!(
        burst(nodes, victim, "v", 12, true),
        burst(nodes, survivor, "s", 12, true)
    );
    assert_eq!(
        (v.0, s.0),
        (60, 60),
        "all admitted below the limit: {v:?} {s:?}"
    );
    assert!(
        rc.keys_on(victim_master) > 0,
        "the victim's windows live on its master"
    );

    // The victim's master dies: its submissions are deferred, the survivor goes on up to its
    // limit (40 more of 60 tried), never past it. (A call that timed out after Redis ran it
    // keeps its units counted: the safe side, so "up to" rather than "exactly".)
    rc.kill(victim_master);
    let t = Instant::now();
    let (r, fin) = send_n(nodes[0], (victim, "pw"), "dead", 0, 1).await;
    assert_eq!(r[0], DEFER, "the victim while its master is down");
    assert!(fin.is_none());
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "deferral took {:?}",
        t.elapsed()
    );
    let (s2, _) = burst(nodes, survivor, "s2", 12, true).await;
    eprintln!("survivor: 60 + {s2} admitted while the victim's master was down");
    assert!(
        (90..=100).contains(&(60 + s2)),
        "survivor: 60 + {s2} admitted against a limit of 100"
    );
    let (v2, v2_deferred) = burst(nodes, victim, "dead", 4, false).await;
    assert_eq!(
        (v2, v2_deferred),
        (0, 4),
        "the victim admitted nothing uncounted"
    );

    // The master is back with its AOF: the victim resumes, held to the 40 it had left (were
    // its windows lost, it would be admitted 100 more).
    rc.start_master(victim_master);
    rc.wait_ok(rc.ports[victim_master]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        let r = send_n(nodes[1], (victim, "pw"), "back", 0, 5).await;
        if accepted(&r) > 0 {
            break accepted(&r);
        }
        assert!(
            Instant::now() < deadline,
            "the victim did not resume after its master came back: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let (v3, _) = burst(nodes, victim, "v3", 12, true).await;
    eprintln!("victim: 60 + {first} + {v3} admitted after its master came back");
    assert!(
        (90..=100).contains(&(60 + first + v3)),
        "victim after the restart: 60 + {first} + {v3} admitted against a limit of 100"
    );
    drop((n1, n2));
}
