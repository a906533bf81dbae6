//! End to end, inbound: the real binary's listeners and every refusal of SPEC §2.1–2.2 with its
//! exact code, and nothing queued that should not be.

mod common;

use common::client::{Client, queued_id};
use common::{RelayProc, message, scene};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_required_and_wrong_passwords_lock_out() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");

    let (mut c, greet) = Client::connect(sub).await;
    assert!(greet.starts_with("220 relay.outguard.test"), "{greet}");
    c.cmd("EHLO c.test").await;
    assert_eq!(
        c.cmd("MAIL FROM:<alice@a.example>").await,
        "530 5.7.0 Authentication required"
    );
    assert_eq!(
        c.auth_plain("alice@a.example", "wrong").await,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        c.auth_plain("nobody@a.example", "x").await,
        "535 5.7.8 Authentication credentials invalid"
    );
    assert_eq!(
        c.auth_plain("alice@a.example", "wrong").await,
        "535 5.7.8 Authentication credentials invalid"
    );
    // Three failures from this IP: even the right password is not checked now.
    assert!(
        c.auth_plain("alice@a.example", "alice-pw")
            .await
            .starts_with("454 4.7.0")
    );

    // The connector listener refuses unauthenticated relay from an IP that is not a connector
    // only when no connector matches; here 127.0.0.0/8 is tenant a's connector, so it relays.
    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "bob@a.example",
        &["x@dest.example"],
        &message("bob@a.example", "x@dest.example", "hi", "hello"),
    )
    .await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_must_be_owned_and_tenants_cannot_spoof_each_other() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");
    let alice = Some(("alice@a.example", "alice-pw"));
    let m = |from: &str| message(from, "x@dest.example", "s", "b");

    // Envelope: another account of the same tenant, another tenant's domain, a foreign domain.
    for from in ["bob@a.example", "carol@b.example", "someone@gmail.example"] {
        let r = Client::send_mail(sub, alice, from, &["x@dest.example"], &m(from)).await;
        assert_eq!(
            r, "550 5.7.1 Sender address not owned by this account",
            "{from}"
        );
    }
    // From: header spoofing with an owned envelope.
    let r = Client::send_mail(
        sub,
        alice,
        "alice@a.example",
        &["x@dest.example"],
        &m("carol@b.example"),
    )
    .await;
    assert_eq!(r, "550 5.7.1 Sender address not owned by this account");
    // The connector (tenant a) cannot use tenant b's domain either.
    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "carol@b.example",
        &["x@dest.example"],
        &m("carol@b.example"),
    )
    .await;
    assert_eq!(r, "550 5.7.1 Sender address not owned by this account");
    // Owned sender: queued.
    let r = Client::send_mail(
        sub,
        alice,
        "alice@a.example",
        &["x@dest.example"],
        &m("alice@a.example"),
    )
    .await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_smuggling_get_their_exact_codes_and_queue_nothing() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let (mut c, _) = Client::connect(relay.addr("submission")).await;
    c.cmd("EHLO c.test").await;
    assert!(
        c.auth_plain("alice@a.example", "alice-pw")
            .await
            .starts_with("235")
    );
    assert!(
        c.cmd("MAIL FROM:<alice@a.example>")
            .await
            .starts_with("250")
    );
    for i in 0..5 {
        assert!(
            c.cmd(&format!("RCPT TO:<r{i}@dest.example>"))
                .await
                .starts_with("250")
        );
    }
    assert_eq!(
        c.cmd("RCPT TO:<r6@dest.example>").await,
        "452 4.5.3 Too many recipients"
    );
    assert_eq!(c.cmd("RSET").await, "250 2.0.0 Ok");

    assert_eq!(
        c.cmd("MAIL FROM:<alice@a.example> SIZE=999999999").await,
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    c.cmd("MAIL FROM:<alice@a.example>").await;
    c.cmd("RCPT TO:<x@dest.example>").await;
    c.cmd("DATA").await;
    c.send_raw(&vec![b'x'; 300_000]).await;
    assert_eq!(
        c.cmd("\r\n.").await,
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );

    // Smuggling: each variant's fake end and fake second transaction stay inside one DATA that
    // is refused whole when the real CRLF.CRLF arrives, and the relay hangs up (every variant on
    // every listener: tests/smuggling.rs).
    for evil in [
        "\n.\n",
        "\r.\r",
        "\n.\r\n",
        "\r\n.\n",
        "\r\n.\r",
        "\r\n\r.\r\n",
    ] {
        let (mut c, _) = Client::connect(relay.addr("submission")).await;
        c.cmd("EHLO c.test").await;
        c.auth_plain("alice@a.example", "alice-pw").await;
        c.cmd("MAIL FROM:<alice@a.example>").await;
        c.cmd("RCPT TO:<x@dest.example>").await;
        assert!(c.cmd("DATA").await.starts_with("354"));
        let body = format!(
            "Subject: s\r\n\r\nhello{evil}MAIL FROM:<alice@a.example>\r\nRCPT TO:<victim@dest.example>\r\nDATA\r\nSubject: smuggled\r\n"
        );
        c.send_raw(body.as_bytes()).await;
        assert_eq!(
            c.cmd(".").await,
            "550 5.6.0 Bare CR or LF not allowed",
            "{evil:?}"
        );
        assert_eq!(c.reply().await, "<closed>", "{evil:?}");
    }
    // Pipelined commands after a well-formed DATA are the next commands.
    c.cmd("MAIL FROM:<alice@a.example>").await;
    c.cmd("RCPT TO:<x@dest.example>").await;
    c.cmd("DATA").await;
    c.send_raw(b"From: alice@a.example\r\nSubject: ok\r\n\r\nbody\r\n.\r\nNOOP\r\n")
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    assert_eq!(c.reply().await, "250 2.0.0 Ok");
    let id = queued_id(&r);
    // Only that one message reached the destination.
    let got = sc
        .dest
        .wait_for(1, std::time::Duration::from_secs(20))
        .await;
    assert_eq!(got.len(), 1);
    assert!(String::from_utf8_lossy(&got[0].data).contains(&format!("X-Outguard-Id: {id}")));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        sc.dest.messages().len(),
        1,
        "nothing smuggled was delivered"
    );
}
