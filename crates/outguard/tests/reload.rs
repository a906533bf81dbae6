//! SIGHUP reloads (issue 20): the relay stays up, a session open across the signal finishes its
//! message, new TLS sessions get the reloaded certificate, a bad file is refused with the old
//! settings kept, and a changed section that needs a restart is named.

mod common;

use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, message, scene};

fn hup(relay: &RelayProc) {
    let ok = std::process::Command::new("kill")
        .arg("-HUP")
        .arg(relay.child.id().to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_a_session() {
    let sc = scene("").await;
    sc.provision().await;
    let mut relay = RelayProc::start(sc.dir());
    let addr = relay.addr("submissions");
    let tls_dir = sc.dir().join("data/tls");
    let root_a = sc.dir().join("root-a.crt");
    std::fs::copy(tls_dir.join("selfsigned.crt"), &root_a).expect("copy cert");

    // A session in the middle of a transaction when the signal comes.
    let (mut c, greet) = Client::connect_tls(addr, &root_a).await;
    assert!(greet.starts_with("220"), "{greet}");
    assert!(c.cmd("EHLO client.test").await.starts_with("250"));
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
    assert!(c.cmd("RCPT TO:<bob@dest.example>").await.starts_with("250"));

    // The certificate is renewed in place (here: removed, so a new self-signed one is made).
    std::fs::remove_file(tls_dir.join("selfsigned.crt")).expect("rm cert");
    std::fs::remove_file(tls_dir.join("selfsigned.key")).expect("rm key");
    hup(&relay);
    until("the reloaded certificate", || {
        tls_dir.join("selfsigned.crt").exists()
    })
    .await;
    until("the reload log line", || {
        relay.stderr().contains("reloaded")
    })
    .await;
    assert!(
        relay.child.try_wait().expect("wait").is_none(),
        "SIGHUP killed the relay:\n{}",
        relay.stderr()
    );

    // The open session finishes its message.
    assert!(c.cmd("DATA").await.starts_with("354"));
    let msg = message(
        "alice@a.example",
        "bob@dest.example",
        "across a reload",
        "hello",
    );
    let r = c.cmd(&format!("{msg}.")).await;
    assert!(r.starts_with("250"), "{r}");
    assert!(!queued_id(&r).is_empty());

    // New sessions get the new certificate: the old root no longer verifies it.
    assert!(Client::try_connect_tls(addr, &root_a).await.is_err());
    let root_b = tls_dir.join("selfsigned.crt");
    let (_c, greet) = Client::connect_tls(addr, &root_b).await;
    assert!(greet.starts_with("220"), "{greet}");

    // A bad file is refused and the relay runs on as it was.
    let cfg_path = sc.dir().join("outguard.toml");
    let good = std::fs::read_to_string(&cfg_path).expect("config");
    std::fs::write(&cfg_path, format!("{good}\n[nonsense]\nx = 1\n")).expect("write");
    hup(&relay);
    until("the refusal", || relay.stderr().contains("reload refused")).await;
    assert!(relay.child.try_wait().expect("wait").is_none());
    let (_c, greet) = Client::connect_tls(addr, &root_b).await;
    assert!(greet.starts_with("220"), "{greet}");

    // A section that needs a restart is named, not half-applied.
    std::fs::write(
        &cfg_path,
        good.replace("shutdown_grace = \"5s\"", "shutdown_grace = \"7s\""),
    )
    .expect("write");
    hup(&relay);
    until("the restart notice", || {
        relay.stderr().contains("take effect after a restart")
    })
    .await;
    let log = relay.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("take effect after a restart"))
        .expect("notice");
    assert!(line.contains("server"), "{line}");
    assert!(relay.terminate().success());
}
