//! End to end, TLS policies on the way out (issue 21): `verify` delivers to an MX whose
//! certificate chains to the configured CA and names the MX host, and defers (4xx, no bounce)
//! when the name is wrong; `required` defers when the MX offers no STARTTLS; a smarthost route
//! logs in with AUTH (PLAIN, or LOGIN when that is all it offers) inside TLS; check-config
//! refuses AUTH on a route without enforced TLS.

mod common;

use std::time::{Duration, Instant};

use common::client::{Client, queued_id};
use common::{RelayProc, Scene, message, scene};
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
async fn tls_policies_verify_and_require_per_destination() {
    let sc = scene("").await;
    sc.provision().await;
    let ca = TestCa::new("Outguard test CA").expect("ca");
    std::fs::write(sc.dir().join("ca.pem"), ca.pem()).expect("ca file");
    let good = sink(
        "127.0.0.20",
        sc.port,
        SinkOptions {
            hostname: "mx.verified.example".into(),
            tls_config: Some(ca.server_config(&["mx.verified.example"]).expect("cert")),
            ..SinkOptions::default()
        },
    )
    .await;
    let wrong = sink(
        "127.0.0.21",
        sc.port,
        SinkOptions {
            hostname: "mx.wrongname.example".into(),
            tls_config: Some(ca.server_config(&["someone-else.example"]).expect("cert")),
            ..SinkOptions::default()
        },
    )
    .await;
    let plain = sink("127.0.0.22", sc.port, SinkOptions::default()).await;
    sc.dns.update(|z| {
        z.mx("verified.example", 10, "mx.verified.example")
            .a("mx.verified.example", [127, 0, 0, 20].into())
            .mx("wrongname.example", 10, "mx.wrongname.example")
            .a("mx.wrongname.example", [127, 0, 0, 21].into())
            .mx("plain.example", 10, "mx.plain.example")
            .a("mx.plain.example", [127, 0, 0, 22].into());
    });
    configure(
        &sc,
        &format!("tls_ca_file = \"{}\"", sc.dir().join("ca.pem").display()),
        "[delivery.tls_policies]\n\"verified.example\" = \"verify\"\n\
         \"wrongname.example\" = \"verify\"\n\"plain.example\" = \"required\"",
    );
    let relay = RelayProc::start(sc.dir());

    // verify: the chain leads to the configured CA and names the MX host.
    let id = send(&relay, "x@verified.example").await;
    let got = good.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].tls, "delivered inside TLS");
    wait_trace(
        &sc,
        &id,
        "(TLS) (TLS policy verify from delivery.tls_policies)",
    );

    // verify, certificate for another name: deferred with 4.7.5, retried, never bounced.
    let id = send(&relay, "x@wrongname.example").await;
    let t = wait_trace(&sc, &id, "TLS policy verify: TLS handshake failed");
    assert!(t.contains("not valid for name"), "{t}");
    let t = wait_trace(&sc, &id, "451 4.7.5");
    assert!(!t.contains("bounce") && !t.contains("dsn"), "{t}");

    // required, no STARTTLS offered: deferred, nothing sent in plaintext.
    let id = send(&relay, "x@plain.example").await;
    wait_trace(&sc, &id, "TLS policy required: STARTTLS not offered");
    wait_trace(&sc, &id, "451 4.7.5");

    assert!(
        wrong.messages().is_empty(),
        "nothing reached the wrong name"
    );
    assert!(plain.messages().is_empty(), "nothing went in plaintext");
    assert!(plain.transactions() == 0 && wrong.transactions() == 0);
    assert!(
        sc.home.messages().is_empty(),
        "no DSN: a refusal is temporary"
    );
    let log = relay.stderr();
    assert!(log.contains("delivery refused by TLS policy"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smarthost_route_logs_in_inside_tls() {
    let sc = scene("").await;
    sc.provision().await;
    let smarthost = sink(
        "127.0.0.23",
        sc.port,
        SinkOptions {
            hostname: "smtp.isp.example".into(),
            starttls: true,
            auth: Some(("relayuser".into(), "s3cret pass".into())),
            ..SinkOptions::default()
        },
    )
    .await;
    std::fs::write(sc.dir().join("smarthost.pw"), "s3cret pass\n").expect("pw");
    configure(
        &sc,
        "",
        &format!(
            "[[routes]]\ndomains = [\"*\"]\nnext_hop = \"127.0.0.23:{}\"\ntls = \"required\"\n\
             auth_user = \"relayuser\"\nauth_password_file = \"{}\"",
            sc.port,
            sc.dir().join("smarthost.pw").display()
        ),
    );
    let relay = RelayProc::start(sc.dir());
    let id = send(&relay, "x@dest.example").await;
    let got = smarthost.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].auth.as_deref(), Some("relayuser"));
    assert!(got[0].tls);
    assert!(
        sc.dest.messages().is_empty(),
        "everything goes through the smarthost"
    );
    wait_trace(&sc, &id, "TLS policy required from route");
}

/// A smarthost that offers only AUTH LOGIN (the 334 challenge exchange, no PLAIN) gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smarthost_route_logs_in_with_auth_login() {
    let sc = scene("").await;
    sc.provision().await;
    let smarthost = sink(
        "127.0.0.24",
        sc.port,
        SinkOptions {
            hostname: "smtp.oldisp.example".into(),
            starttls: true,
            auth: Some(("olduser".into(), "login pass".into())),
            auth_login_only: true,
            ..SinkOptions::default()
        },
    )
    .await;
    std::fs::write(sc.dir().join("smarthost.pw"), "login pass\n").expect("pw");
    configure(
        &sc,
        "",
        &format!(
            "[[routes]]\ndomains = [\"*\"]\nnext_hop = \"127.0.0.24:{}\"\ntls = \"required\"\n\
             auth_user = \"olduser\"\nauth_password_file = \"{}\"",
            sc.port,
            sc.dir().join("smarthost.pw").display()
        ),
    );
    let relay = RelayProc::start(sc.dir());
    let id = send(&relay, "x@dest.example").await;
    let got = smarthost.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].auth.as_deref(), Some("olduser"));
    assert!(got[0].tls);
    wait_trace(&sc, &id, "TLS policy required from route");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_refuses_auth_without_enforced_tls() {
    let sc = scene("").await;
    std::fs::write(sc.dir().join("pw"), "x\n").expect("pw");
    configure(
        &sc,
        "",
        &format!(
            "[[routes]]\ndomains = [\"*\"]\nnext_hop = \"127.0.0.23:25\"\n\
             auth_user = \"u\"\nauth_password_file = \"{}\"\n\
             [[routes]]\ndomains = [\"x.example\"]\nnext_hop = \"127.0.0.23:25\"\n\
             auth_user = \"u\"\nauth_password_file = \"{}/missing\"\ntls = \"required\"",
            sc.dir().join("pw").display(),
            sc.dir().display()
        ),
    );
    let path = sc.dir().join("outguard.toml");
    let (code, out, err) = sc.cli(&["check-config", path.to_str().expect("path")]);
    assert_eq!(code, 64, "{out}{err}");
    assert!(err.contains("routes[0].tls"), "{err}");
    assert!(err.contains("routes[1].auth_password_file"), "{err}");
}
