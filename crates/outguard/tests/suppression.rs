//! Recipient suppression end to end (issue 25): a destination answers `550 5.1.1` for one
//! address; the relay's bounce watcher suppresses it for the sending tenant, so the next RCPT
//! to it from that tenant gets `550 5.1.1` naming the suppression, while another tenant's mail
//! to the same address still goes. Refused sends count for the account (`SENT_TO_SUPPRESSED`
//! in the next message's trace); the CLI lists and lifts the suppression.

mod common;

use std::time::{Duration, Instant};

use common::client::{Client, queued_id};
use common::{RelayProc, Scene, message, scene};
use outguard_harness::sink::{Reply as SinkReply, Script};

const WAIT: Duration = Duration::from_secs(60);
const GONE: &str = "gone@dest.example";

/// Poll `suppression list` until `rcpt` is listed for `tenant` (the watcher runs every second).
fn wait_suppressed(sc: &Scene, tenant: &str, rcpt: &str) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = sc.ok(&["--json", "suppression", "list", "--tenant", tenant]);
        let list: serde_json::Value = serde_json::from_str(&out).expect("json list");
        if let Some(s) = list
            .as_array()
            .and_then(|a| a.iter().find(|s| s["recipient"] == rcpt))
        {
            return s.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{rcpt} never suppressed for {tenant}: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_bounce_suppresses_the_recipient_for_its_tenant_only() {
    let sc = scene("[suppression]\nsignal_after = 2\n").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");
    let alice = Some(("alice@a.example", "alice-pw"));
    let carol = Some(("carol@b.example", "carol-pw"));
    sc.dest.set_script(Script::default().refuse_rcpt(
        GONE,
        SinkReply::new(550, "5.1.1 <gone@dest.example>: no such user"),
    ));

    // 1. Tenant a's mail to it bounces at our delivery.
    let m = message(
        "alice@a.example",
        GONE,
        "hello",
        "Are you still there? Alice",
    );
    let r = Client::send_mail(sub, alice, "alice@a.example", &[GONE], &m).await;
    assert!(r.starts_with("250"), "{r}");
    let first = queued_id(&r);
    let s = wait_suppressed(&sc, "a", GONE);
    assert_eq!(s["source"], "bounce", "{s}");
    assert_eq!(s["message_id"], first.as_str(), "{s}");
    assert!(s["reason"].as_str().unwrap_or("").contains("5.1.1"), "{s}");

    // 2. The next RCPT from tenant a is refused, naming the suppression (twice: the signal).
    for _ in 0..2 {
        let r = Client::send_mail(sub, alice, "alice@a.example", &[GONE], &m).await;
        assert!(r.starts_with("550 5.1.1"), "{r}");
        assert!(r.contains("suppressed for this tenant"), "{r}");
    }
    let transactions = sc.dest.transactions();

    // 3. Refused sends count for the account: its next message carries the reason.
    let m2 = message(
        "alice@a.example",
        "ok@dest.example",
        "notes",
        "The notes from today. Alice",
    );
    let r = Client::send_mail(sub, alice, "alice@a.example", &["ok@dest.example"], &m2).await;
    assert!(r.starts_with("250"), "{r}");
    let id = queued_id(&r);
    let deadline = Instant::now() + WAIT;
    loop {
        let t = sc.ok(&["--json", "trace", "--id", &id]);
        if t.contains("SENT_TO_SUPPRESSED") {
            assert!(t.contains("sends to suppressed"), "{t}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no SENT_TO_SUPPRESSED in the trace: {t}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // 4. Tenant isolation: tenant b's mail to the same address is accepted and leaves.
    let m3 = message("carol@b.example", GONE, "hi", "Hello from carol");
    let r = Client::send_mail(sub, carol, "carol@b.example", &[GONE], &m3).await;
    assert!(r.starts_with("250"), "tenant b must not be refused: {r}");
    let deadline = Instant::now() + WAIT;
    while sc.dest.transactions() <= transactions {
        assert!(
            Instant::now() < deadline,
            "tenant b's message never attempted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 5. Lifted by an admin, tenant a's next RCPT to it is accepted again.
    let out = sc.ok(&[
        "suppression",
        "remove",
        "--tenant",
        "a",
        "Gone@dest.example",
    ]);
    assert!(out.contains("removed"), "{out}");
    let (code, _, err) = sc.cli(&["suppression", "remove", "--tenant", "a", GONE]);
    assert_ne!(code, 0, "a second removal finds nothing: {err}");
    let r = Client::send_mail(sub, alice, "alice@a.example", &[GONE], &m).await;
    assert!(r.starts_with("250"), "{r}");

    // 6. The CLI adds one by hand; bad input is exit 64.
    let out = sc.ok(&[
        "suppression",
        "add",
        "--tenant",
        "b",
        "x@dest.example",
        "--days",
        "3",
    ]);
    assert!(
        out.contains("x@dest.example suppressed for tenant b"),
        "{out}"
    );
    let r = Client::send_mail(sub, carol, "carol@b.example", &["x@dest.example"], &m3).await;
    assert!(r.starts_with("550 5.1.1"), "{r}");
    let (code, _, err) = sc.cli(&["suppression", "add", "--tenant", "b", "not-an-address"]);
    assert_eq!(code, 64, "{err}");
    let (code, _, err) = sc.cli(&[
        "suppression",
        "add",
        "--tenant",
        "b",
        "y@dest.example",
        "--days",
        "0",
    ]);
    assert_eq!(code, 64, "{err}");
}

/// The trust ramp (issue 25) in the same binary: an account created today gets 10 % of its
/// tenant's 20 external recipients an hour (2), named in its trace; an old account of the same
/// tenant keeps the full limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_account_starts_at_a_fraction_of_its_limits() {
    let sc = scene("[trust_ramp]\nenabled = true\nstart_percent = 10\ndays = 14\n").await;
    sc.provision().await;
    sc.ok(&[
        "policy",
        "set",
        "--tenant",
        "a",
        "recipient_limit_external_per_hour=20",
    ]);
    {
        let url = format!("sqlite://{}", sc.dir().join("data/outguard.db").display());
        let store = outguard_store::Store::open(&url).await.expect("store");
        let now = outguard_types::time::now_ms();
        store
            .add_account("a", "dave@a.example", Some("dave-pw"), now)
            .await
            .expect("account");
        store.close().await;
    }
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");
    let dave = Some(("dave@a.example", "dave-pw"));
    let two = ["r1@dest.example", "r2@dest.example"];
    let m = message(
        "dave@a.example",
        "r1@dest.example",
        "first",
        "My first mail here. Dave",
    );
    let r = Client::send_mail(sub, dave, "dave@a.example", &two, &m).await;
    assert!(r.starts_with("250"), "{r}");
    let id = queued_id(&r);
    let deadline = Instant::now() + WAIT;
    loop {
        let t = sc.ok(&["--json", "trace", "--id", &id]);
        if t.contains("trust ramp: clean day 1 of 14, limits at 10 %") {
            break;
        }
        assert!(Instant::now() < deadline, "no trust ramp in the trace: {t}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = Client::send_mail(sub, dave, "dave@a.example", &["r3@dest.example"], &m).await;
    assert!(
        r.starts_with("550 5.2.2"),
        "the third external recipient: {r}"
    );
    // alice, created long ago, sends 5 at once under the same policy.
    let five = [
        "s1@dest.example",
        "s2@dest.example",
        "s3@dest.example",
        "s4@dest.example",
        "s5@dest.example",
    ];
    let m = message(
        "alice@a.example",
        "s1@dest.example",
        "team",
        "Notes for the team. Alice",
    );
    let r = Client::send_mail(
        sub,
        Some(("alice@a.example", "alice-pw")),
        "alice@a.example",
        &five,
        &m,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
}
