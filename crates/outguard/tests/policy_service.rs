//! The Postfix-facing listeners on the real binary, spoken to as Postfix speaks (issue 23):
//! the policy service (`check_policy_service`) with raw policy requests — recipient limits hit
//! exactly at N+1 with our codes, 5.1.8 afterwards, abandoned transactions given back,
//! unknown senders, malformed requests — and the milter with raw milter packets: clean mail
//! gets our headers and a trace, spam above the reject score is rejected with its reasons.

mod common;

use std::time::Duration;

use common::{RelayProc, Scene, message, scene};
use outguard_proto::milter::mta;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(30);

/// A scene with the policy and milter listeners on, unknown senders rejected, and tenant a's
/// policy set to `settings`.
async fn postfix_scene(settings: &[&str]) -> Scene {
    postfix_scene_with("\n[policy_service]\nunknown = \"reject\"\n", settings).await
}

async fn postfix_scene_with(extra: &str, settings: &[&str]) -> Scene {
    let sc = scene(extra).await;
    let path = sc.dir().join("outguard.toml");
    let cfg = std::fs::read_to_string(&path).expect("config");
    let cfg = cfg.replacen(
        "[listeners]\n",
        "[listeners]\npolicy = \"127.0.0.1:0\"\nmilter = \"127.0.0.1:0\"\n",
        1,
    );
    std::fs::write(&path, cfg).expect("config");
    sc.provision().await;
    if !settings.is_empty() {
        let mut args = vec!["policy", "set", "--tenant", "a"];
        args.extend_from_slice(settings);
        sc.ok(&args);
    }
    sc
}

struct PolicyClient {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl PolicyClient {
    async fn connect(relay: &RelayProc) -> PolicyClient {
        PolicyClient {
            tcp: TcpStream::connect(relay.addr("policy"))
                .await
                .expect("connect to the policy listener"),
            buf: Vec::new(),
        }
    }

    /// Send raw bytes; return the next answer's `action=` value (None when the server closed).
    async fn raw(&mut self, bytes: &[u8]) -> Option<String> {
        self.tcp.write_all(bytes).await.expect("write");
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let answer: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(answer).expect("utf-8");
                let line = text.trim_end();
                return Some(
                    line.strip_prefix("action=")
                        .unwrap_or_else(|| panic!("not an action line: {line:?}"))
                        .to_string(),
                );
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk))
                .await
                .expect("answer in time")
                .expect("read");
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One request as Postfix writes it.
    async fn ask(&mut self, state: &str, instance: &str, user: &str, rcpt: &str) -> String {
        self.ask_with_queue_id(state, instance, user, rcpt, "")
            .await
    }

    async fn ask_with_queue_id(
        &mut self,
        state: &str,
        instance: &str,
        user: &str,
        rcpt: &str,
        queue_id: &str,
    ) -> String {
        let req = format!(
            "request=smtpd_access_policy\nprotocol_state={state}\nprotocol_name=ESMTP\nclient_address=10.9.9.9\nclient_name=unknown\nhelo_name=c.test\nsender={user}\nrecipient={rcpt}\nrecipient_count=0\nqueue_id={queue_id}\ninstance={instance}\nsize=0\nsasl_method=PLAIN\nsasl_username={user}\nsasl_sender=\n\n"
        );
        self.raw(req.as_bytes()).await.expect("an answer")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_service_limits_restricts_and_gives_back_like_our_listeners() {
    let sc = postfix_scene(&["recipient_limit_external_per_hour=3"]).await;
    let relay = RelayProc::start(sc.dir());
    let mut pc = PolicyClient::connect(&relay).await;
    let bob = "bob@a.example";

    // Three recipients in one transaction, then its end: all DUNNO (Postfix decides the rest).
    // Each is asked twice, as Postfix does with check_policy_service in both the sender and
    // the recipient restrictions: reserved once.
    for i in 0..3 {
        for _ in 0..2 {
            let r = pc
                .ask("RCPT", "b1", bob, &format!("r{i}@dest.example"))
                .await;
            assert_eq!(r, "DUNNO", "recipient {i}");
        }
    }
    assert_eq!(pc.ask("END-OF-MESSAGE", "b1", bob, "").await, "DUNNO");
    // The fourth in the hour (N+1) is refused with our code, and then the account is restricted.
    assert_eq!(
        pc.ask("RCPT", "b2", bob, "r3@dest.example").await,
        "550 5.2.2 Submission quota exceeded"
    );
    assert_eq!(
        pc.ask("RCPT", "b3", bob, "r4@dest.example").await,
        "550 5.1.8 Access denied, bad outbound sender"
    );

    // alice: two recipients in a transaction that never ends (RSET), then a new one on the
    // same connection: the two are given back, so the new one may have three.
    let alice = "alice@a.example";
    for i in 0..2 {
        assert_eq!(
            pc.ask("RCPT", "a1", alice, &format!("x{i}@dest.example"))
                .await,
            "DUNNO"
        );
    }
    for i in 0..3 {
        assert_eq!(
            pc.ask("RCPT", "a2", alice, &format!("y{i}@dest.example"))
                .await,
            "DUNNO",
            "recipient {i} of the second transaction"
        );
    }
    assert_eq!(
        pc.ask("RCPT", "a2", alice, "y3@dest.example").await,
        "550 5.2.2 Submission quota exceeded"
    );

    // An account Outguard does not know, under unknown = "reject".
    assert_eq!(
        pc.ask("RCPT", "n1", "nobody@nowhere.example", "z@dest.example")
            .await,
        "550 5.7.1 Sender unknown to Outguard (no account or connector)"
    );
    // Other states are not ours to judge.
    assert_eq!(pc.ask("CONNECT", "c1", "", "").await, "DUNNO");

    // A malformed request is answered precisely and the connection goes on.
    assert_eq!(
        pc.raw(b"request=smtpd_access_policy\nthis line has no equals sign\n\n")
            .await
            .as_deref(),
        Some(
            "451 4.3.0 Outguard policy service: malformed request (line 2 of the request has no '=')"
        )
    );
    assert_eq!(
        pc.raw(b"request=smtpd_access_policy\ninstance=q\n\n")
            .await
            .as_deref(),
        Some("451 4.3.0 Outguard policy service: malformed request (no protocol_state attribute)")
    );
    assert_eq!(pc.ask("DATA", "c1", "", "").await, "DUNNO");
    // A line past the bound: answered, then closed.
    let mut long = b"x=".to_vec();
    long.extend(std::iter::repeat_n(b'a', 9000));
    long.push(b'\n');
    let r = pc.raw(&long).await.expect("an answer before closing");
    assert!(r.starts_with("451 4.3.0"), "{r}");
    let mut rest = [0u8; 64];
    let after = tokio::time::timeout(WAIT, pc.tcp.read(&mut rest))
        .await
        .expect("closed in time");
    assert!(matches!(after, Ok(0) | Err(_)), "closed: {after:?}");
    // The relay is fine.
    let mut pc = PolicyClient::connect(&relay).await;
    assert_eq!(pc.ask("CONNECT", "c2", "", "").await, "DUNNO");
}

struct MilterClient {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl MilterClient {
    async fn connect(relay: &RelayProc) -> MilterClient {
        MilterClient {
            tcp: TcpStream::connect(relay.addr("milter"))
                .await
                .expect("connect to the milter listener"),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, packet: &[u8]) {
        self.tcp.write_all(packet).await.expect("write");
    }

    /// Read responses until one of `until` (command bytes) arrives; return all of them.
    async fn until(&mut self, until: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let got = mta::responses(&self.buf);
            let used: usize = got.iter().map(|(_, d)| d.len() + 5).sum();
            self.buf.drain(..used);
            for g in got {
                let last = until.contains(&g.0);
                out.push(g);
                if last {
                    return out;
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk))
                .await
                .expect("milter answer in time")
                .expect("read");
            assert!(n > 0, "milter closed; got {out:?}");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One message the way Postfix passes it: the reply to end of body and what preceded it.
    async fn message(
        &mut self,
        queue_id: &str,
        user: &str,
        from: &str,
        rcpt: &str,
        msg: &str,
    ) -> Vec<(u8, Vec<u8>)> {
        self.send(&mta::macros(b'C', &[("j", "mx.postfix.test")]))
            .await;
        self.send(&mta::connect("client.test", "10.9.9.9", 40000))
            .await;
        assert_eq!(self.until(b"c").await[0].0, b'c');
        self.send(&mta::strings(b'H', &["c.test"])).await;
        assert_eq!(self.until(b"c").await[0].0, b'c');
        self.send(&mta::macros(
            b'M',
            &[("i", queue_id), ("{auth_authen}", user)],
        ))
        .await;
        self.send(&mta::strings(b'M', &[&format!("<{from}>")]))
            .await;
        let r = self.until(b"cyar").await;
        if r[0].0 != b'c' {
            return r;
        }
        self.send(&mta::strings(b'R', &[&format!("<{rcpt}>")]))
            .await;
        assert_eq!(self.until(b"c").await[0].0, b'c');
        self.send(&mta::packet(b'T', b"")).await;
        assert_eq!(self.until(b"c").await[0].0, b'c');
        let (head, body) = msg.split_once("\r\n\r\n").expect("header and body");
        for field in head.split("\r\n").fold(Vec::<String>::new(), |mut acc, l| {
            if l.starts_with(' ') || l.starts_with('\t') {
                if let Some(last) = acc.last_mut() {
                    last.push_str("\r\n");
                    last.push_str(l);
                }
            } else {
                acc.push(l.to_string());
            }
            acc
        }) {
            let (name, value) = field.split_once(':').expect("header field");
            let value = value.strip_prefix(' ').unwrap_or(value);
            self.send(&mta::strings(b'L', &[name, value])).await;
            assert_eq!(self.until(b"c").await[0].0, b'c');
        }
        self.send(&mta::packet(b'N', b"")).await;
        assert_eq!(self.until(b"c").await[0].0, b'c');
        for chunk in body.as_bytes().chunks(65535) {
            self.send(&mta::packet(b'B', chunk)).await;
            assert_eq!(self.until(b"c").await[0].0, b'c');
        }
        self.send(&mta::packet(b'E', b"")).await;
        self.until(b"cyart").await
    }
}

fn header_of(responses: &[(u8, Vec<u8>)], name: &str) -> Option<String> {
    responses.iter().find_map(|(c, d)| {
        if *c != b'h' {
            return None;
        }
        let mut parts = d.split(|&b| b == 0);
        let n = parts.next()?;
        let v = parts.next()?;
        (n == name.as_bytes()).then(|| String::from_utf8_lossy(v).into_owned())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn milter_adds_our_headers_to_clean_mail_and_rejects_spam_with_reasons() {
    let engine = outguard_spam::Engine::builtin();
    let (_, spam_at) = engine.thresholds();
    let reject_at = format!("reject_score={spam_at}");
    let sc = postfix_scene(&[&reject_at, "recipient_limit_external_per_hour=1"]).await;
    let relay = RelayProc::start(sc.dir());
    let mut mc = MilterClient::connect(&relay).await;
    mc.send(&mta::optneg(6, 0x1ff, 0x1f_ffff)).await;
    let neg = mc.until(b"O").await;
    assert_eq!(neg[0].1[..4], 6u32.to_be_bytes(), "version 6");

    let bob = "bob@a.example";
    let clean = message(
        bob,
        "x@dest.example",
        "Minutes",
        "The minutes of Monday's meeting.",
    );
    let r = mc
        .message("4QUEUEID", bob, bob, "x@dest.example", &clean)
        .await;
    assert_eq!(r.last().map(|x| x.0), Some(b'c'), "accepted: {r:?}");
    let verdict = header_of(&r, "X-Outguard-Verdict").expect("verdict header");
    assert!(verdict.starts_with("clean"), "{verdict}");
    assert_eq!(header_of(&r, "X-Outguard-Pool").as_deref(), Some("regular"));
    let id = header_of(&r, "X-Outguard-Id").expect("id header");

    // The trace shows the message, its verdict and that Postfix delivers it.
    let deadline = std::time::Instant::now() + WAIT;
    let trace = loop {
        let (code, out, _) = sc.cli(&["trace", "--id", &id]);
        if code == 0 && out.contains("handed back to Postfix") {
            break out;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "trace of {id} never complete: {out}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(trace.contains("4QUEUEID"), "{trace}");
    assert!(trace.contains("account bob@a.example"), "{trace}");

    // Spam above the reject score: rejected with its reasons. alice's one recipient of the
    // hour was reserved by the policy service (Postfix asks it at END-OF-MESSAGE before the
    // milter's verdict); the rejection gives it back, as on our own listeners.
    let alice = "alice@a.example";
    let mut pc = PolicyClient::connect(&relay).await;
    assert_eq!(pc.ask("RCPT", "s1", alice, "x@dest.example").await, "DUNNO");
    assert_eq!(
        pc.ask_with_queue_id("END-OF-MESSAGE", "s1", alice, "", "SPAMQ")
            .await,
        "DUNNO"
    );
    let spam = common::corpus_files("spam")
        .into_iter()
        .map(|f| common::readdress(&std::fs::read(f).expect("read"), alice, "x@dest.example"))
        .find(|m| {
            engine
                .scan(m.as_bytes(), &outguard_spam::ScanContext::default())
                .score
                >= spam_at + 2.0
        })
        .expect("the corpus has spam");
    let r = mc
        .message("SPAMQ", alice, alice, "x@dest.example", &spam)
        .await;
    let (cmd, data) = r.last().expect("a final answer");
    let text = String::from_utf8_lossy(data);
    assert_eq!(*cmd, b'y', "{r:?}");
    assert!(
        text.starts_with("550 5.7.1 Message rejected as spam ("),
        "{text}"
    );
    assert!(header_of(&r, "X-Outguard-Id").is_none());
    assert_eq!(
        pc.ask("RCPT", "s2", alice, "y@dest.example").await,
        "DUNNO",
        "the rejected message's recipient was given back"
    );
    assert_eq!(
        pc.ask("RCPT", "s2", alice, "z@dest.example").await,
        "550 5.2.2 Submission quota exceeded",
        "and the limit still holds"
    );

    // An account Outguard does not know (unknown = "reject").
    let r = mc
        .message(
            "4NOBODY",
            "nobody@nowhere.example",
            "nobody@nowhere.example",
            "x@dest.example",
            &clean,
        )
        .await;
    assert_eq!(r[0].0, b'y', "{r:?}");
    assert!(String::from_utf8_lossy(&r[0].1).starts_with("550 5.7.1 Sender unknown to Outguard"));
}

/// Anyone who may talk to these listeners can spend an account's recipient allowance:
/// connections from outside `[policy_service] clients` are closed unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_configured_postfix_hosts_may_connect() {
    let sc = postfix_scene_with("\n[policy_service]\nclients = [\"10.0.0.0/8\"]\n", &[]).await;
    let relay = RelayProc::start(sc.dir());
    for kind in ["policy", "milter"] {
        let mut tcp = TcpStream::connect(relay.addr(kind)).await.expect("connect");
        let _ = tcp
            .write_all(b"request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=bob@a.example\nrecipient=x@dest.example\n\n")
            .await;
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("closed in time");
        assert!(matches!(r, Ok(0) | Err(_)), "{kind}: answered {r:?}");
    }
    assert!(
        relay
            .stderr()
            .contains("connection from a client not in policy_service.clients"),
        "the refusal is logged"
    );
}
