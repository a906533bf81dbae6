//! End to end, the header fields we add on the way out (issue 21): `Date:` and `Message-ID:` for
//! a submission without them, `X-Outguard-Verdict` only to the sender's own tenant by default
//! (`[delivery] verdict_header`), and `[privacy] hide_client_ip` for our `Received:`.

mod common;

use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, Scene, scene};

const WAIT: Duration = Duration::from_secs(30);

fn text(d: &[u8]) -> String {
    String::from_utf8_lossy(d).into_owned()
}

/// Add `lines` to the scene's `[delivery]` table and append `tail` to its config.
fn configure(sc: &Scene, delivery: &str, tail: &str) {
    let path = sc.dir().join("outguard.toml");
    let cfg = std::fs::read_to_string(&path).expect("config");
    let cfg = cfg.replacen("[delivery]\n", &format!("[delivery]\n{delivery}\n"), 1);
    std::fs::write(&path, format!("{cfg}\n{tail}\n")).expect("config");
}

/// ghost.example (tenant a) has neither A nor MX: its mail is marked with a verdict. One copy
/// to bob@a.example (internal: the home sink), one to y@dest.example (external). The message has
/// neither `Date:` nor `Message-ID:`. Returns (queue id, internal copy, external copy).
async fn send_marked(sc: &Scene, relay: &RelayProc) -> (String, String, String) {
    let m = "From: ghost@ghost.example\r\nTo: bob@a.example, y@dest.example\r\n\
             Subject: Lunch on Friday\r\n\r\nShall we meet at noon? Cheers\r\n";
    let r = Client::send_mail(
        relay.addr("submission"),
        Some(("ghost@ghost.example", "ghost-pw")),
        "ghost@ghost.example",
        &["bob@a.example", "y@dest.example"],
        m,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let id = queued_id(&r);
    let internal = sc.home.wait_for(1, WAIT).await;
    let external = sc.dest.wait_for(1, WAIT).await;
    assert_eq!(internal.len(), 1);
    assert_eq!(external.len(), 1);
    assert_eq!(internal[0].rcpts, ["bob@a.example"]);
    assert_eq!(external[0].rcpts, ["y@dest.example"]);
    (id, text(&internal[0].data), text(&external[0].data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_date_and_message_id_are_added_and_the_verdict_stays_inside_the_tenant() {
    let sc = scene("").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let (id, internal, external) = send_marked(&sc, &relay).await;
    for d in [&internal, &external] {
        assert!(
            d.contains(&format!("Message-ID: <{id}@relay.outguard.test>\r\n")),
            "{d}"
        );
        assert_eq!(d.matches("\r\nDate: ").count(), 1, "{d}");
        assert!(
            d.contains("Received: from client.test ([127.0.0.1])"),
            "{d}"
        );
    }
    assert!(internal.contains("X-Outguard-Verdict: "), "{internal}");
    assert!(!external.contains("X-Outguard-Verdict"), "{external}");

    // A message with its own Date and Message-ID keeps them, and gets no second one.
    let m = common::message(
        "alice@a.example",
        "x@dest.example",
        "Quarterly numbers",
        "Hi, the figures are attached as discussed. Regards, Alice",
    );
    let r = Client::send_mail(
        relay.addr("submission"),
        Some(("alice@a.example", "alice-pw")),
        "alice@a.example",
        &["x@dest.example"],
        &m,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let got = sc.dest.wait_for(2, WAIT).await;
    let d = text(&got[1].data);
    assert_eq!(d.matches("Message-ID: ").count(), 1, "{d}");
    assert_eq!(d.matches("\r\nDate: ").count(), 1, "{d}");
    assert!(d.contains("Date: Mon, 23 Nov 2026 10:00:00 +0000"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdict_header_all_goes_to_everyone() {
    let sc = scene("").await;
    sc.provision().await;
    configure(&sc, "verdict_header = \"all\"", "");
    let relay = RelayProc::start(sc.dir());
    let (_, internal, external) = send_marked(&sc, &relay).await;
    assert!(internal.contains("X-Outguard-Verdict: "), "{internal}");
    assert!(external.contains("X-Outguard-Verdict: "), "{external}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdict_header_none_and_hidden_client_ip() {
    let sc = scene("").await;
    sc.provision().await;
    configure(
        &sc,
        "verdict_header = \"none\"",
        "[privacy]\nhide_client_ip = true",
    );
    let relay = RelayProc::start(sc.dir());
    let (id, internal, external) = send_marked(&sc, &relay).await;
    for d in [&internal, &external] {
        assert!(!d.contains("X-Outguard-Verdict"), "{d}");
        assert!(
            d.contains(&format!(
                "Received: by relay.outguard.test (Outguard) with ESMTPA id {id};"
            )),
            "{d}"
        );
        assert!(
            !d.contains("127.0.0.1") && !d.contains("client.test"),
            "{d}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_names_a_bad_verdict_header() {
    let sc = scene("").await;
    configure(&sc, "verdict_header = \"some\"", "");
    let path = sc.dir().join("outguard.toml");
    let (code, out, err) = sc.cli(&["check-config", path.to_str().expect("path")]);
    assert_eq!(code, 64, "{out}{err}");
    assert!(err.contains("delivery.verdict_header"), "{err}");
}
