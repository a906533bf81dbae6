//! SMTP smuggling, end to end (issue 14, SPEC §9 "SMTP input"): every published end-of-data
//! variant, sent on every listener (submission and submissions after AUTH, connector, fbl) by a
//! raw client, is refused with `550 5.6.0` and the connection is closed, so the smuggled second
//! transaction never runs. A recording sink then checks that exactly the messages acknowledged
//! with 250 arrived, byte for byte, and the fbl store holds no report made of smuggled bytes.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, scene};

/// The end-of-data variants of hannob's smtpsmug and The-Login's SMTP-Smuggling-Tools, and
/// the combinations of the separators they are built from.
fn variants() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        &b"\n.\n"[..],
        b"\n.\r\n",
        b"\r.\r",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r\n\r.\r\n",
        b"\r\n\r\r.\r\n",
        b"\r\n.\n",
        b"\r\n\x00.\r\n",
        b"\r\n.\x00\r\n",
        b"\n.\r",
        b"\r.\n",
        b"\r\n.\r\r\n",
        b"\r\n\n.\r\n",
        b"\r\n.\n\r\n",
    ]
    .iter()
    .map(|x| x.to_vec())
    .collect();
    for b in [&b"\n"[..], b"\r", b"\r\n\r", b"\r\n\x00", b"\x00"] {
        for a in [&b"\n"[..], b"\r", b"\r\r\n", b"\x00\r\n", b"\r\x00\n"] {
            v.push([b, &b"."[..], a].concat());
        }
    }
    v
}

struct Listener {
    kind: &'static str,
    addr: SocketAddr,
    tls: bool,
    auth: Option<(&'static str, &'static str)>,
    from: &'static str,
    to: &'static str,
}

async fn open(l: &Listener, root: &std::path::Path) -> Client {
    let (mut c, greet) = if l.tls {
        Client::connect_tls(l.addr, root).await
    } else {
        Client::connect(l.addr).await
    };
    assert!(greet.starts_with("220"), "{}: {greet}", l.kind);
    assert!(c.cmd("EHLO client.test").await.starts_with("250"));
    if let Some((u, p)) = l.auth {
        let r = c.auth_plain(u, p).await;
        assert!(r.starts_with("235"), "{}: {r}", l.kind);
    }
    c
}

async fn start_transaction(c: &mut Client, l: &Listener) {
    let r = c.cmd(&format!("MAIL FROM:<{}>", l.from)).await;
    assert!(r.starts_with("250"), "{}: {r}", l.kind);
    let r = c.cmd(&format!("RCPT TO:<{}>", l.to)).await;
    assert!(r.starts_with("250"), "{}: {r}", l.kind);
    let r = c.cmd("DATA").await;
    assert!(r.starts_with("354"), "{}: {r}", l.kind);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_smuggling_variant_is_refused_on_every_listener() {
    let sc = scene("[fbl]\ndomains = [\"fbl.outguard.test\"]\n").await;
    sc.provision().await;
    let relay = RelayProc::start(sc.dir());
    let root = sc.dir().join("data/tls/selfsigned.crt");
    let listeners = [
        Listener {
            kind: "submission",
            addr: relay.addr("submission"),
            tls: false,
            auth: Some(("alice@a.example", "alice-pw")),
            from: "alice@a.example",
            to: "x@dest.example",
        },
        Listener {
            kind: "submissions",
            addr: relay.addr("submissions"),
            tls: true,
            auth: Some(("alice@a.example", "alice-pw")),
            from: "alice@a.example",
            to: "x@dest.example",
        },
        Listener {
            kind: "connector",
            addr: relay.addr("connector"),
            tls: false,
            auth: None,
            from: "bob@a.example",
            to: "x@dest.example",
        },
        Listener {
            kind: "fbl",
            addr: relay.addr("fbl"),
            tls: false,
            auth: None,
            from: "",
            to: "fbl@fbl.outguard.test",
        },
    ];

    for l in &listeners {
        for evil in variants() {
            let show = String::from_utf8_lossy(&evil).escape_debug().to_string();
            let mut c = open(l, &root).await;
            start_transaction(&mut c, l).await;
            let first = format!(
                "From: {f}\r\nTo: {t}\r\nSubject: first\r\n\r\nhello",
                f = l.from,
                t = l.to
            );
            let smuggled = format!(
                "MAIL FROM:<{f}>\r\nRCPT TO:<victim@dest.example>\r\nDATA\r\nFrom: {f}\r\n\
                 To: victim@dest.example\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\nQUIT\r\n",
                f = l.from
            );
            c.send_raw(&[first.as_bytes(), &evil, smuggled.as_bytes()].concat())
                .await;
            let r = c.reply().await;
            assert!(
                r.starts_with("550 5.6.0 "),
                "{} {show}: the refusal, got {r:?}",
                l.kind
            );
            assert_eq!(
                c.reply().await,
                "<closed>",
                "{} {show}: nothing after a refused DATA is read as a command",
                l.kind
            );
        }
    }

    // One well-formed message per delivering listener, each acknowledged with 250.
    let mut sent = Vec::new();
    for l in listeners.iter().filter(|l| l.kind != "fbl") {
        let mut c = open(l, &root).await;
        start_transaction(&mut c, l).await;
        let body = format!(
            "From: {f}\r\nTo: {t}\r\nSubject: real via {k}\r\n\r\n..a stuffed line\r\nbye\r\n",
            f = l.from,
            t = l.to,
            k = l.kind
        );
        c.send_raw(body.as_bytes()).await;
        let r = c.cmd(".").await;
        assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{}: {r}", l.kind);
        sent.push((queued_id(&r), body.replace("\r\n..a", "\r\n.a")));
        c.cmd("QUIT").await;
    }

    let got = sc.dest.wait_for(sent.len(), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got_now = sc.dest.messages();
    assert_eq!(
        got_now.len(),
        sent.len(),
        "exactly the acknowledged messages"
    );
    for (id, body) in &sent {
        let m = got
            .iter()
            .find(|m| String::from_utf8_lossy(&m.data).contains(&format!("X-Outguard-Id: {id}")))
            .unwrap_or_else(|| panic!("message {id} was not delivered"));
        assert!(
            m.data.ends_with(body.as_bytes()),
            "delivered byte for byte: {:?}",
            String::from_utf8_lossy(&m.data)
        );
        assert_eq!(m.rcpts, vec!["x@dest.example".to_string()]);
    }
    for m in &got_now {
        assert!(!String::from_utf8_lossy(&m.data).contains("smuggled"));
    }
    // The fbl listener stored nothing: every DATA it saw was refused.
    let url = format!(
        "sqlite://{}?mode=rw",
        sc.dir().join("data/outguard.db").display()
    );
    let st = outguard_store::Store::open(&url).await.expect("store");
    let recs = st.list_fbl_reports(None, 10).await.expect("reports");
    assert!(
        recs.is_empty(),
        "no report from refused DATA: {}",
        recs.len()
    );
}
