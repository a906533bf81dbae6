//! End to end, DANE on the way out (issue 21, RFC 7672): with `[dns] dnssec = "trust_ad"` the
//! relay believes the AD bit of its resolver (here the harness DNS server, which sets it for the
//! zones marked secure). An MX host with a matching validated TLSA `3 1 1` record gets the mail
//! over TLS and the trace names the record; a mismatch or a host without STARTTLS is deferred
//! with 4.7.5 and nothing goes in plaintext, as is a host whose TLSA lookup fails; TLSA records in an unvalidated zone change nothing
//! (opportunistic as before); an operator's policy for the domain wins over DANE; with `dnssec`
//! off DANE never applies; `check-config` refuses `trust_ad` without a loopback resolver.

mod common;

use std::time::{Duration, Instant};

use common::client::{Client, queued_id};
use common::{RelayProc, Scene, message, scene};
use outguard_harness::{ServerCert, SinkOptions, SmtpSink, self_signed_cert};
use sha2::{Digest as _, Sha256};

const WAIT: Duration = Duration::from_secs(30);

/// Put `dns` lines in the scene's `[dns]` table and append `tail` to the config.
fn configure(sc: &Scene, dns: &str, tail: &str) {
    let path = sc.dir().join("outguard.toml");
    let cfg = std::fs::read_to_string(&path).expect("config");
    let cfg = cfg.replacen("[dns]\n", &format!("[dns]\n{dns}\n"), 1);
    std::fs::write(&path, format!("{cfg}\n{tail}\n")).expect("config");
}

fn cert(host: &str) -> ServerCert {
    self_signed_cert(&[host]).expect("cert")
}

/// A sink for `host` on 127.0.0.`last`, offering STARTTLS with `cert` (or no TLS at all).
async fn sink(sc: &Scene, last: u8, host: &str, cert: Option<&ServerCert>) -> SmtpSink {
    let opts = SinkOptions {
        hostname: host.into(),
        tls_config: cert.map(|c| c.config.clone()),
        ..SinkOptions::default()
    };
    SmtpSink::start_with((format!("127.0.0.{last}"), sc.port), opts)
        .await
        .unwrap_or_else(|e| panic!("sink for {host}: {e}"))
}

/// `domain MX 10 mx.domain`, its A record, and a `3 1 1` TLSA record of `spki` for the port used.
fn publish(sc: &Scene, domain: &str, last: u8, spki: &[u8], secure: bool) {
    let mx = format!("mx.{domain}");
    let owner = format!("_{}._tcp.{mx}", sc.port);
    let digest = Sha256::digest(spki);
    sc.dns.update(|z| {
        z.mx(domain, 10, &mx)
            .a(&mx, [127, 0, 0, last].into())
            .tlsa(&owner, 3, 1, 1, &digest);
        if secure {
            z.secure(domain);
        }
    });
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dane_authenticates_the_mx_or_defers() {
    let sc = scene("").await;
    sc.provision().await;
    let (good_cert, bad_cert, other) = (cert("mx.good.test"), cert("mx.bad.test"), cert("x"));
    let good = sink(&sc, 40, "mx.good.test", Some(&good_cert)).await;
    let bad = sink(&sc, 41, "mx.bad.test", Some(&bad_cert)).await;
    let insecure_cert = cert("mx.insecure.test");
    let insecure = sink(&sc, 42, "mx.insecure.test", Some(&insecure_cert)).await;
    let notls = sink(&sc, 43, "mx.notls.test", None).await;
    let override_cert = cert("mx.override.test");
    let overridden = sink(&sc, 44, "mx.override.test", Some(&override_cert)).await;
    publish(&sc, "good.test", 40, &good_cert.spki, true);
    publish(&sc, "bad.test", 41, &other.spki, true);
    publish(&sc, "insecure.test", 42, &other.spki, false);
    publish(&sc, "notls.test", 43, &other.spki, true);
    publish(&sc, "override.test", 44, &other.spki, true);
    configure(
        &sc,
        "dnssec = \"trust_ad\"",
        "[delivery.tls_policies]\n\"override.test\" = \"required\"",
    );
    let relay = RelayProc::start(sc.dir());
    let port = sc.port;

    // A validated 3 1 1 record that matches: delivered over TLS, the trace names the record.
    let id = send(&relay, "x@good.test").await;
    let got = good.wait_for(1, WAIT).await;
    assert!(got[0].tls, "delivered inside TLS");
    let want =
        format!("(TLS) (TLS policy dane from tlsa _{port}._tcp.mx.good.test, matched 3 1 1 ");
    wait_trace(&sc, &id, &want);

    // A validated record that does not match: 4.7.5, retried, nothing sent.
    let id = send(&relay, "x@bad.test").await;
    let t = wait_trace(&sc, &id, "TLS policy dane: TLS handshake failed");
    assert!(
        t.contains(&format!(
            "no TLSA record of _{port}._tcp.mx.bad.test matches"
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!("from tlsa _{port}._tcp.mx.bad.test")),
        "{t}"
    );
    let t = wait_trace(&sc, &id, "451 4.7.5");
    assert!(!t.contains("bounce") && !t.contains("dsn"), "{t}");

    // A validated record and no STARTTLS: never plaintext.
    let id = send(&relay, "x@notls.test").await;
    wait_trace(&sc, &id, "TLS policy dane: STARTTLS not offered");
    wait_trace(&sc, &id, "451 4.7.5");

    // Validated addresses but the TLSA lookup fails: deferred, not downgraded.
    sc.dns.update(|z| {
        z.mx("servfail.test", 10, "mx.servfail.test")
            .a("mx.servfail.test", [127, 0, 0, 46].into())
            .servfail(&format!("_{port}._tcp.mx.servfail.test"))
            .secure("servfail.test");
    });
    let id = send(&relay, "x@servfail.test").await;
    wait_trace(
        &sc,
        &id,
        &format!("TLS policy dane: TLSA lookup of _{port}._tcp.mx.servfail.test failed"),
    );
    wait_trace(&sc, &id, "451 4.7.5");

    // The same mismatching record in a zone that is not validated: DANE does not apply.
    let id = send(&relay, "x@insecure.test").await;
    let got = insecure.wait_for(1, WAIT).await;
    assert!(got[0].tls);
    wait_trace(
        &sc,
        &id,
        "(TLS) (TLS policy opportunistic from delivery.tls)",
    );

    // The operator's policy for the domain wins over its TLSA records.
    let id = send(&relay, "x@override.test").await;
    overridden.wait_for(1, WAIT).await;
    wait_trace(&sc, &id, "(TLS policy required from delivery.tls_policies)");

    // Retries happened (schedule 1s, 1s, 2s) and still nothing reached the refused hosts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(bad.messages().is_empty() && bad.transactions() == 0);
    assert!(notls.messages().is_empty() && notls.transactions() == 0);
    assert!(
        sc.home.messages().is_empty(),
        "no DSN: a refusal is temporary"
    );
    let log = relay.stderr();
    assert!(log.contains("server authenticated by DANE"), "{log}");
    assert!(log.contains("delivery refused by TLS policy"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_dnssec_trust_dane_never_applies() {
    let sc = scene("").await;
    sc.provision().await;
    let (mx_cert, other) = (cert("mx.signed.test"), cert("x"));
    let mx = sink(&sc, 45, "mx.signed.test", Some(&mx_cert)).await;
    // Validated-looking answers with a record that does not match: ignored with dnssec off.
    publish(&sc, "signed.test", 45, &other.spki, true);
    let relay = RelayProc::start(sc.dir());
    let id = send(&relay, "x@signed.test").await;
    let got = mx.wait_for(1, WAIT).await;
    assert!(got[0].tls);
    wait_trace(
        &sc,
        &id,
        "(TLS) (TLS policy opportunistic from delivery.tls)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_trusts_ad_only_from_loopback() {
    let sc = scene("").await;
    let path = sc.dir().join("outguard.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let bad = with_resolver(&text, "192.0.2.53:53");
    std::fs::write(
        &path,
        bad.replacen("[dns]\n", "[dns]\ndnssec = \"trust_ad\"\n", 1),
    )
    .expect("config");
    let (code, out, err) = sc.cli(&["check-config", path.to_str().expect("path")]);
    assert_eq!(code, 64, "{out}{err}");
    assert!(err.contains("dns.dnssec"), "{err}");
    std::fs::write(
        &path,
        text.replacen("[dns]\n", "[dns]\ndnssec = \"always\"\n", 1),
    )
    .expect("config");
    let (code, _, err) = sc.cli(&["check-config", path.to_str().expect("path")]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("dns.dnssec"), "{err}");
    std::fs::write(
        &path,
        text.replacen("[dns]\n", "[dns]\ndnssec = \"trust_ad\"\n", 1),
    )
    .expect("config");
    let (code, out, err) = sc.cli(&["check-config", path.to_str().expect("path")]);
    assert_eq!(code, 0, "{out}{err}");
}

/// The config with `[dns] resolver` pointed at `addr`.
fn with_resolver(text: &str, addr: &str) -> String {
    text.lines()
        .map(|l| {
            if l.starts_with("resolver = ") {
                format!("resolver = \"{addr}\"")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
