//! The bulk-sender compliance gate end to end (issue 25 part 4), on loopback with the harness
//! DNS serving SPF and DMARC (or not) and a `[[dkim]]` key for one tenant's domain:
//! - a message that is neither marked nor part of a stream above the provider line is never
//!   checked (no `bulk stream` in its trace);
//! - the same stream crossing `provider_recipients_per_day` to one provider becomes bulk, and
//!   with `bulk_dmarc_action = reject` and no DMARC record it gets `550 5.7.26` naming it;
//! - a marked message failing one-click with the default `warn` is accepted and its trace
//!   names the failed check; with `high-risk` it leaves from the high-risk pool;
//! - a compliant one (our DKIM key, SPF, DMARC, one-click) is accepted with nothing failed;
//! - the compliance report lists both streams with the last failure.

mod common;
#[path = "web/mod.rs"]
mod web;

use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, Scene, scene};

const SPF: &str = "v=spf1 ip4:127.0.0.0/8 -all";

fn dkim_key(dir: &std::path::Path) -> std::path::PathBuf {
    use base64::Engine as _;
    let pkcs8 = mail_auth::common::crypto::Ed25519Key::generate_pkcs8().expect("key");
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(&pkcs8)
    );
    let path = dir.join("dkim.pem");
    std::fs::write(&path, pem).expect("write");
    path
}

/// A message with extra header lines (each ending CRLF).
fn mail(from: &str, to: &str, subject: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@x.example>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n{extra}\r\nThe autumn newsletter: what changed in the shop this month.\r\n"
    )
}

async fn trace(sc: &Scene, id: &str) -> serde_json::Value {
    for _ in 0..100 {
        let (code, out, _) = sc.cli(&["trace", "--id", id, "--json"]);
        if code == 0
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&out)
            && v["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "policy"))
        {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no trace for {id}");
}

/// The policy step's line of a message's trace.
fn policy_line(t: &serde_json::Value) -> String {
    t["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["kind"] == "policy"))
        .map(|e| e["detail"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_streams_are_checked_against_the_sender_requirements() {
    let keys = tempfile::tempdir().expect("tempdir");
    let key = dkim_key(keys.path());
    let sc = scene(&format!(
        "[bulk]\nprovider_recipients_per_day = 3\n\
         [[bulk.providers]]\nname = \"Dest\"\ndomains = [\"dest.example\"]\n\
         [[dkim]]\ndomain = \"b.example\"\nselector = \"s1\"\nkey = \"{}\"\n",
        key.display()
    ))
    .await;
    sc.dns.update(|z| {
        z.txt("a.example", SPF)
            .txt("b.example", SPF)
            .txt("_dmarc.b.example", "v=DMARC1; p=none");
    });
    sc.provision().await;
    sc.ok(&["policy", "set", "--tenant", "a", "bulk_dmarc_action=reject"]);
    let relay = RelayProc::start(sc.dir());
    let sub = relay.addr("submission");
    let alice = Some(("alice@a.example", "alice-pw"));
    let carol = Some(("carol@b.example", "carol-pw"));

    // 1. Not marked, 2 recipients at the provider (line: 3): never checked.
    let m = mail("alice@a.example", "u1@dest.example", "plain1", "");
    let r = Client::send_mail(
        sub,
        alice,
        "alice@a.example",
        &["u1@dest.example", "u2@dest.example"],
        &m,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let t = trace(&sc, &queued_id(&r)).await;
    assert!(
        !policy_line(&t).contains("bulk"),
        "not bulk, not checked: {t:#}"
    );

    // 2. Two more: 4 recipients at Dest in 24 hours > 3, the stream is bulk; a.example has no
    //    DMARC record and tenant a rejects for it.
    let m = mail("alice@a.example", "u3@dest.example", "plain2", "");
    let r = Client::send_mail(
        sub,
        alice,
        "alice@a.example",
        &["u3@dest.example", "u4@dest.example"],
        &m,
    )
    .await;
    assert_eq!(
        r.trim_end(),
        "550 5.7.26 Bulk mail from a.example needs a DMARC record (Gmail/Yahoo/Outlook sender requirements)"
    );

    // 3. Tenant b (default warn), marked, https List-Unsubscribe without the one-click POST
    //    header: accepted, the trace names the failed check.
    let no_post = "List-Unsubscribe: <https://b.example/u?id=1>, <mailto:u@b.example>\r\n";
    let m = mail("carol@b.example", "x@other.example", "news1", no_post);
    let r = Client::send_mail(sub, carol, "carol@b.example", &["x@other.example"], &m).await;
    assert!(r.starts_with("250"), "{r}");
    let t = trace(&sc, &queued_id(&r)).await;
    let line = policy_line(&t);
    assert!(
        line.contains("bulk stream b.example (List-Unsubscribe header): FAILED one_click"),
        "{line}"
    );
    assert!(
        line.contains("one_click fail (no List-Unsubscribe-Post"),
        "{line}"
    );
    assert!(line.contains("→ warn"), "{line}");
    assert_eq!(t["message"]["pool"], "regular", "{t:#}");

    // 4. Compliant: our DKIM key for b.example, SPF, DMARC, one-click.
    let one_click = format!("{no_post}List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    let m = mail("carol@b.example", "y@other.example", "news2", &one_click);
    let r = Client::send_mail(sub, carol, "carol@b.example", &["y@other.example"], &m).await;
    assert!(r.starts_with("250"), "{r}");
    let t = trace(&sc, &queued_id(&r)).await;
    let line = policy_line(&t);
    assert!(
        line.contains("bulk stream b.example (List-Unsubscribe header): compliant"),
        "{line}"
    );
    for pass in [
        "dkim pass (signed at delivery with d=b.example)",
        "spf pass",
        "dmarc pass (_dmarc.b.example)",
        "one_click pass",
    ] {
        assert!(line.contains(pass), "{pass}: {line}");
    }
    assert!(!line.contains("FAILED"), "{line}");

    // 5. high-risk for one-click (the CLI on the store; the relay reloads within 2 s).
    sc.ok(&[
        "policy",
        "set",
        "--tenant",
        "b",
        "bulk_unsubscribe_action=high-risk",
    ]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = mail("carol@b.example", "z@other.example", "news3", no_post);
    let r = Client::send_mail(sub, carol, "carol@b.example", &["z@other.example"], &m).await;
    assert!(r.starts_with("250"), "{r}");
    let t = trace(&sc, &queued_id(&r)).await;
    assert_eq!(t["message"]["pool"], "high-risk", "{t:#}");
    assert!(policy_line(&t).contains("→ high-risk"), "{t:#}");

    // 6. The compliance report, through the API with the operator token.
    let token = relay.token.clone().expect("operator token on first start");
    let auth = format!("Bearer {token}");
    let resp = web::request(
        relay.addr("http"),
        "GET",
        "/api/v1/compliance",
        &[("Authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json();
    let a = v
        .as_array()
        .and_then(|l| l.iter().find(|t| t["tenant"] == "a"))
        .expect("tenant a");
    let s = &a["streams"][0];
    assert_eq!(s["from_domain"], "a.example", "{v:#}");
    assert_eq!(s["checks"]["dmarc"], "fail", "{v:#}");
    assert_eq!(s["last_action"], "reject", "{v:#}");
    assert_eq!(s["top_provider"], "Dest", "{v:#}");
    assert_eq!(s["top_provider_recipients_per_day"], 4, "{v:#}");
    assert!(
        s["last_failure"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("no DMARC record at _dmarc.a.example")),
        "{v:#}"
    );
    let b = v
        .as_array()
        .and_then(|l| l.iter().find(|t| t["tenant"] == "b"))
        .expect("tenant b");
    assert_eq!(b["streams"][0]["checks"]["one_click"], "fail", "{v:#}");
    assert_eq!(b["streams"][0]["messages_per_day"], 3, "{v:#}");
}
