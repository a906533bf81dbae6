//! End to end, MTA-STS (RFC 8461, issue 21) on loopback: the harness DNS serves the
//! `_mta-sts` TXT record and an A record for `mta-sts.<domain>`, a local HTTPS server with a
//! test-CA certificate serves the policy file, and the MX hosts are sinks. `enforce` delivers
//! only to the policy's MX hosts inside verified TLS, and defers (4xx, never plaintext, no DSN)
//! when no MX host matches; the policy is cached (no second fetch), refetched when the
//! record's `id` changes, and kept when a refetch fails. `testing` delivers as usual and the
//! trace says what would have failed. The operator's `[delivery.tls_policies]` wins, and
//! `[delivery.mta_sts] enabled = false` turns it all off.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::client::{Client, queued_id};
use common::{RelayProc, Scene, free_port_on, message, scene};
use outguard_harness::http::{Answer, Receiver};
use outguard_harness::{SinkOptions, SmtpSink, TestCa};

const WAIT: Duration = Duration::from_secs(30);

/// Add `lines` to the scene's `[delivery]` table and append `tail` to its config.
fn configure(sc: &Scene, delivery: &str, tail: &str) {
    let path = sc.dir().join("outguard.toml");
    let cfg = std::fs::read_to_string(&path).expect("config");
    let cfg = cfg.replacen("[delivery]\n", &format!("[delivery]\n{delivery}\n"), 1);
    std::fs::write(&path, format!("{cfg}\n{tail}\n")).expect("config");
}

async fn sink(ip: &str, port: u16, opts: SinkOptions) -> SmtpSink {
    SmtpSink::start_with((ip, port), opts)
        .await
        .unwrap_or_else(|e| panic!("sink on {ip}:{port}: {e}"))
}

/// A policy file.
fn policy(mode: &str, mx: &str) -> String {
    format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n")
}

/// An HTTPS server on `ip:port` with a test-CA certificate for `mta-sts.<domain>` serving
/// `body` as the policy file.
async fn policy_server(ca: &TestCa, ip: &str, port: u16, domain: &str, body: &str) -> Receiver {
    let addr: SocketAddr = format!("{ip}:{port}").parse().expect("addr");
    let cert = ca
        .server_config(&[&format!("mta-sts.{domain}")])
        .expect("cert");
    Receiver::start_answering(
        addr,
        Some(cert),
        Answer::ok("text/plain; charset=utf-8", body),
    )
    .await
    .unwrap_or_else(|e| panic!("policy server on {addr}: {e}"))
}

async fn send(relay: &RelayProc, to: &str) -> String {
    let m = message(
        "alice@a.example",
        to,
        "Contract",
        "Please find the contract.",
    );
    let r = Client::send_mail(
        relay.addr("submission"),
        Some(("alice@a.example", "alice-pw")),
        "alice@a.example",
        &[to],
        &m,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    queued_id(&r)
}

/// Poll `outguard trace --id` until it contains `what`; returns the trace.
fn wait_trace(sc: &Scene, id: &str, what: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, out, _) = sc.cli(&["trace", "--id", id]);
        if out.contains(what) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "trace never said {what:?}:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Let the resolver's cache forget a changed record (the harness answers with TTL 1).
async fn dns_ttl() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_delivers_only_to_policy_mx_with_verified_tls_and_caches() {
    let sc = scene("").await;
    sc.provision().await;
    let ca = TestCa::new("Outguard test CA").expect("ca");
    std::fs::write(sc.dir().join("ca.pem"), ca.pem()).expect("ca file");
    let https = free_port_on(&["127.0.0.40", "127.0.0.41"]);
    let mut enforce_policy = policy_server(
        &ca,
        "127.0.0.40",
        https,
        "enforce.example",
        &policy("enforce", "mx.enforce.example"),
    )
    .await;
    let mismatch_policy = policy_server(
        &ca,
        "127.0.0.41",
        https,
        "mismatch.example",
        &policy("enforce", "mx.mismatch.example"),
    )
    .await;
    let good = sink(
        "127.0.0.42",
        sc.port,
        SinkOptions {
            hostname: "mx.enforce.example".into(),
            tls_config: Some(ca.server_config(&["mx.enforce.example"]).expect("cert")),
            ..SinkOptions::default()
        },
    )
    .await;
    // Not in the policy, and no STARTTLS: without MTA-STS mail would go here in plaintext.
    let other = sink("127.0.0.43", sc.port, SinkOptions::default()).await;
    sc.dns.update(|z| {
        z.txt("_mta-sts.enforce.example", "v=STSv1; id=one;")
            .a("mta-sts.enforce.example", [127, 0, 0, 40].into())
            .mx("enforce.example", 10, "mx.enforce.example")
            .a("mx.enforce.example", [127, 0, 0, 42].into())
            .txt("_mta-sts.mismatch.example", "v=STSv1; id=m1;")
            .a("mta-sts.mismatch.example", [127, 0, 0, 41].into())
            .mx("mismatch.example", 10, "other.mismatch.example")
            .a("other.mismatch.example", [127, 0, 0, 43].into());
    });
    configure(
        &sc,
        &format!("tls_ca_file = \"{}\"", sc.dir().join("ca.pem").display()),
        &format!("[delivery.mta_sts]\nhttps_port = {https}"),
    );
    let relay = RelayProc::start(sc.dir());

    // enforce, MX in the policy with a valid certificate: delivered inside verified TLS.
    let id = send(&relay, "x@enforce.example").await;
    let got = good.wait_for(1, WAIT).await;
    assert!(got[0].tls, "delivered inside TLS");
    wait_trace(
        &sc,
        &id,
        "(TLS) (TLS policy verify from mta-sts; MTA-STS enforce, policy id one, fetched)",
    );
    let req = enforce_policy
        .requests
        .recv()
        .await
        .expect("policy request");
    assert_eq!(req.path, "/.well-known/mta-sts.txt");
    assert_eq!(req.header("host"), Some("mta-sts.enforce.example"));

    // The policy is cached: the second message does not fetch it again.
    let id = send(&relay, "y@enforce.example").await;
    good.wait_for(2, WAIT).await;
    wait_trace(&sc, &id, "MTA-STS enforce, policy id one, cached)");
    assert_eq!(enforce_policy.connections(), 1, "fetched once");

    // A new record id: fetched again.
    sc.dns.update(|z| {
        z.remove("_mta-sts.enforce.example")
            .txt("_mta-sts.enforce.example", "v=STSv1; id=two;");
    });
    dns_ttl().await;
    let id = send(&relay, "z@enforce.example").await;
    good.wait_for(3, WAIT).await;
    wait_trace(&sc, &id, "MTA-STS enforce, policy id two, fetched)");
    assert_eq!(enforce_policy.connections(), 2, "refetched for the new id");

    // The refetch fails (server gone): the cached, unexpired policy still applies.
    drop(enforce_policy);
    sc.dns.update(|z| {
        z.remove("_mta-sts.enforce.example")
            .txt("_mta-sts.enforce.example", "v=STSv1; id=three;");
    });
    dns_ttl().await;
    let id = send(&relay, "w@enforce.example").await;
    good.wait_for(4, WAIT).await;
    wait_trace(
        &sc,
        &id,
        "(TLS policy verify from mta-sts; MTA-STS enforce, policy id two, cached; refetch failed: connect to 127.0.0.40",
    );

    // enforce, no MX host in the policy: deferred with 4.7.5, nothing sent, no DSN.
    let id = send(&relay, "x@mismatch.example").await;
    let t = wait_trace(&sc, &id, "451 4.7.5");
    assert!(
        t.contains(
            "no MX host matches the policy's mx (mx.mismatch.example): other.mismatch.example refused"
        ),
        "{t}"
    );
    assert!(t.contains("MTA-STS enforce, policy id m1, fetched"), "{t}");
    assert_eq!(mismatch_policy.connections(), 1);
    assert!(other.messages().is_empty(), "nothing went in plaintext");
    assert_eq!(other.transactions(), 0);
    assert!(
        sc.home.messages().is_empty(),
        "no DSN: a refusal is temporary"
    );
    let log = relay.stderr();
    assert!(log.contains("delivery refused by MTA-STS"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testing_mode_delivers_and_reports_and_operator_policy_wins() {
    let sc = scene("").await;
    sc.provision().await;
    let ca = TestCa::new("Outguard test CA").expect("ca");
    std::fs::write(sc.dir().join("ca.pem"), ca.pem()).expect("ca file");
    let https = free_port_on(&["127.0.0.44", "127.0.0.46"]);
    let _testing_policy = policy_server(
        &ca,
        "127.0.0.44",
        https,
        "testing.example",
        &policy("testing", "mx.testing.example"),
    )
    .await;
    // Published as enforce with an MX that matches nothing, but the operator says opportunistic.
    let override_policy = policy_server(
        &ca,
        "127.0.0.46",
        https,
        "override.example",
        &policy("enforce", "nothing.override.example"),
    )
    .await;
    // A certificate `verify` refuses: signed by the CA but for another name.
    let testing = sink(
        "127.0.0.45",
        sc.port,
        SinkOptions {
            hostname: "mx.testing.example".into(),
            tls_config: Some(ca.server_config(&["someone-else.example"]).expect("cert")),
            ..SinkOptions::default()
        },
    )
    .await;
    let overridden = sink("127.0.0.47", sc.port, SinkOptions::default()).await;
    sc.dns.update(|z| {
        z.txt("_mta-sts.testing.example", "v=STSv1; id=t1;")
            .a("mta-sts.testing.example", [127, 0, 0, 44].into())
            .mx("testing.example", 10, "mx.testing.example")
            .a("mx.testing.example", [127, 0, 0, 45].into())
            .txt("_mta-sts.override.example", "v=STSv1; id=o1;")
            .a("mta-sts.override.example", [127, 0, 0, 46].into())
            .mx("override.example", 10, "mx.override.example")
            .a("mx.override.example", [127, 0, 0, 47].into());
    });
    configure(
        &sc,
        &format!("tls_ca_file = \"{}\"", sc.dir().join("ca.pem").display()),
        &format!(
            "[delivery.mta_sts]\nhttps_port = {https}\n\
             [delivery.tls_policies]\n\"override.example\" = \"opportunistic\""
        ),
    );
    let relay = RelayProc::start(sc.dir());

    // testing: delivered as usual (opportunistic TLS), the trace says what enforce would do.
    let id = send(&relay, "x@testing.example").await;
    let got = testing.wait_for(1, WAIT).await;
    assert!(got[0].tls);
    let t = wait_trace(
        &sc,
        &id,
        "(TLS) (TLS policy opportunistic from delivery.tls; MTA-STS testing, policy id t1, \
         fetched: would have failed: certificate: ",
    );
    assert!(t.contains("not valid for name"), "{t}");

    // The operator's per-domain policy wins: no policy fetched, delivered in plaintext.
    let id = send(&relay, "x@override.example").await;
    overridden.wait_for(1, WAIT).await;
    let t = wait_trace(
        &sc,
        &id,
        "(TLS policy opportunistic from delivery.tls_policies)",
    );
    assert!(!t.contains("MTA-STS"), "{t}");
    assert_eq!(override_policy.connections(), 0, "never fetched");
}

/// `[delivery.mta_sts] enabled = false`: the published `enforce` policy is not looked up, and
/// mail goes as before (here: in plaintext to an MX the policy does not list).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_mta_sts_is_never_fetched() {
    let sc = scene("").await;
    sc.provision().await;
    let ca = TestCa::new("Outguard test CA").expect("ca");
    let https = free_port_on(&["127.0.0.48"]);
    let published = policy_server(
        &ca,
        "127.0.0.48",
        https,
        "off.example",
        &policy("enforce", "mx.off.example"),
    )
    .await;
    let other = sink("127.0.0.49", sc.port, SinkOptions::default()).await;
    sc.dns.update(|z| {
        z.txt("_mta-sts.off.example", "v=STSv1; id=1;")
            .a("mta-sts.off.example", [127, 0, 0, 48].into())
            .mx("off.example", 10, "other.off.example")
            .a("other.off.example", [127, 0, 0, 49].into());
    });
    configure(
        &sc,
        "",
        &format!("[delivery.mta_sts]\nenabled = false\nhttps_port = {https}"),
    );
    let relay = RelayProc::start(sc.dir());
    let id = send(&relay, "x@off.example").await;
    let got = other.wait_for(1, WAIT).await;
    assert!(!got[0].tls);
    let t = wait_trace(&sc, &id, "(TLS policy opportunistic from delivery.tls)");
    assert!(!t.contains("MTA-STS"), "{t}");
    assert_eq!(published.connections(), 0, "never fetched");
}
