//! Delivery against real loopback peers: the harness DNS server for routing and SMTP sinks on
//! 127.0.0.x that record the source IP of every connection.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use outguard_harness::{DnsServer, Reply, Script, SinkOptions, SmtpSink, Zones};
use outguard_store::spool::{Envelope, Spool, new_message_id};
use outguard_types::config::{DeliveryConfig, DnsConfig, PoolConfig, RouteConfig, ShapingRule};
use outguard_types::model::{EventKind, MessageState, Submitter};
use tokio::sync::mpsc;

use super::client::{self, Attempt, RcptOutcome};
use super::dkim::DkimSigners;
use super::mx::{Hop, MxResolver, RouteError};
use super::pools::PoolSet;
use super::queue::{Queue, QueueConfig, QueueDeps, QueueEvent, QueueHandle};
use super::tls::opportunistic_client_config;
use super::wire;

const WAIT: Duration = Duration::from_secs(10);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn resolver(dns: &DnsServer) -> MxResolver {
    MxResolver::new(&DnsConfig {
        resolver: Some(dns.addr()),
        ..DnsConfig::default()
    })
    .expect("resolver")
}

async fn test_dns() -> DnsServer {
    let mut z = Zones::new();
    z.mx("example.net", 20, "mx2.example.net")
        .mx("example.net", 10, "mx1.example.net")
        .a("mx1.example.net", ip(3))
        .a("mx2.example.net", ip(4))
        .a("implicit.test", ip(5))
        .null_mx("nullmx.test")
        .a("nullmx.test", ip(6))
        .servfail("broken.test")
        .txt("txtonly.test", "v=spf1 -all");
    DnsServer::start(z).await.expect("dns")
}

#[tokio::test]
async fn mx_routing_classes() {
    let dns = test_dns().await;
    let r = resolver(&dns);
    let route = r.route("example.net", &[], 25).await.expect("mx route");
    let hosts: Vec<(&str, SocketAddr)> = route
        .hops
        .iter()
        .map(|h| (h.host.as_str(), h.addr))
        .collect();
    assert_eq!(
        hosts,
        vec![
            ("mx1.example.net", SocketAddr::new(ip(3).into(), 25)),
            ("mx2.example.net", SocketAddr::new(ip(4).into(), 25))
        ]
    );
    let implicit = r
        .route("Implicit.Test", &[], 2525)
        .await
        .expect("implicit MX");
    assert_eq!(
        implicit.hops,
        vec![Hop {
            host: "implicit.test".into(),
            addr: SocketAddr::new(ip(5).into(), 2525)
        }]
    );
    assert!(matches!(
        r.route("nullmx.test", &[], 25).await,
        Err(RouteError::Permanent {
            status: "5.1.10",
            ..
        })
    ));
    assert!(matches!(
        r.route("nxdomain.test", &[], 25).await,
        Err(RouteError::Permanent {
            status: "5.1.2",
            ..
        })
    ));
    assert!(matches!(
        r.route("broken.test", &[], 25).await,
        Err(RouteError::Temporary { .. })
    ));
    // Exists, but neither MX nor address: permanent.
    assert!(matches!(
        r.route("txtonly.test", &[], 25).await,
        Err(RouteError::Permanent { .. })
    ));
    let lit = r.route("[127.0.0.7]", &[], 25).await.expect("literal");
    assert_eq!(lit.hops[0].addr, SocketAddr::new(ip(7).into(), 25));
}

#[tokio::test]
async fn static_routes_win_over_mx() {
    let dns = test_dns().await;
    let r = resolver(&dns);
    let routes = vec![
        RouteConfig {
            domains: vec!["*".into()],
            next_hop: "127.0.0.8:2626".into(),
            tls: None,
            auth_user: None,
            auth_password_file: None,
        },
        RouteConfig {
            domains: vec!["example.net".into()],
            next_hop: "mx2.example.net:2727".into(),
            tls: None,
            auth_user: None,
            auth_password_file: None,
        },
    ];
    let exact = r.route("EXAMPLE.net", &routes, 25).await.expect("exact");
    assert_eq!(exact.hops[0].addr, SocketAddr::new(ip(4).into(), 2727));
    let star = r
        .route("nxdomain.test", &routes, 25)
        .await
        .expect("smarthost");
    assert_eq!(star.hops[0].addr, SocketAddr::new(ip(8).into(), 2626));
}

#[tokio::test]
async fn domain_existence_for_policy() {
    let dns = test_dns().await;
    let r = resolver(&dns);
    assert_eq!(r.domain_has_a_or_mx("example.net").await, Ok(true));
    assert_eq!(r.domain_has_a_or_mx("implicit.test").await, Ok(true));
    assert_eq!(r.domain_has_a_or_mx("txtonly.test").await, Ok(false));
    assert_eq!(r.domain_has_a_or_mx("nxdomain.test").await, Ok(false));
    assert!(r.domain_has_a_or_mx("broken.test").await.is_err());
    // Records change while the server runs (TTL 1).
    dns.update(|z| {
        z.a("txtonly.test", ip(9));
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(r.domain_has_a_or_mx("txtonly.test").await, Ok(true));
}

fn attempt<'a>(hop: &'a Hop, rcpts: &'a [String], payload: &'a [u8], tls: bool) -> Attempt<'a> {
    Attempt {
        source_ip: ip(2).into(),
        ehlo: "out.relay.test",
        hop,
        mail_from: "alice@sender.test",
        rcpts,
        payload,
        tls: if tls {
            Some(opportunistic_client_config().expect("tls"))
        } else {
            None
        },
        connect_timeout: WAIT,
        command_timeout: WAIT,
        tls_policy: outguard_types::config::TlsPolicy::Opportunistic,
        auth: None,
        max_uses: crate::reuse::MAX_USES,
    }
}

#[tokio::test]
async fn client_delivers_from_bound_source_ip_with_per_rcpt_replies() {
    let script =
        Script::default().refuse_rcpt("nobody@dest.test", Reply::new(550, "5.1.1 No such user"));
    let sink = SmtpSink::start_with(
        "127.0.0.1:0",
        SinkOptions {
            script,
            ..SinkOptions::default()
        },
    )
    .await
    .expect("sink");
    let hop = Hop {
        host: "sink.test".into(),
        addr: sink.addr(),
    };
    let rcpts = vec!["bob@dest.test".to_string(), "nobody@dest.test".to_string()];
    let payload = wire::data_payload(&[b"Subject: hi\r\n\r\nhello\r\n"]);
    let r = client::deliver(&attempt(&hop, &rcpts, &payload, false))
        .await
        .expect("attempt");
    assert_eq!(
        r.rcpts[0].1,
        RcptOutcome::Delivered("250 2.0.0 Ok: queued".into())
    );
    assert_eq!(
        r.rcpts[1].1,
        RcptOutcome::PermFail("550 5.1.1 No such user".into())
    );
    assert!(!r.tls);
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].peer.ip(),
        IpAddr::from(ip(2)),
        "connection bound to the pool IP"
    );
    assert_eq!(got[0].ehlo, "out.relay.test");
    assert_eq!(got[0].mail_from, "alice@sender.test");
    assert_eq!(got[0].rcpts, vec!["bob@dest.test".to_string()]);
}

#[tokio::test]
async fn client_uses_starttls_when_offered() {
    let opts = SinkOptions {
        starttls: true,
        ..SinkOptions::default()
    };
    let sink = SmtpSink::start_with("127.0.0.1:0", opts)
        .await
        .expect("sink");
    let hop = Hop {
        host: "sink.test".into(),
        addr: sink.addr(),
    };
    let rcpts = vec!["bob@dest.test".to_string()];
    let payload = wire::data_payload(&[b"Subject: tls\r\n\r\nsecret\r\n"]);
    let r = client::deliver(&attempt(&hop, &rcpts, &payload, true))
        .await
        .expect("attempt");
    assert!(r.tls);
    let got = sink.wait_for(1, WAIT).await;
    assert!(got[0].tls, "message travelled inside TLS");
    assert_eq!(
        got[0].ehlo, "out.relay.test",
        "EHLO repeated after STARTTLS"
    );
}

#[tokio::test]
async fn dot_stuffing_round_trips_and_no_bare_lf_reaches_the_wire() {
    let sink = SmtpSink::start("127.0.0.1:0").await.expect("sink");
    let hop = Hop {
        host: "sink.test".into(),
        addr: sink.addr(),
    };
    let rcpts = vec!["bob@dest.test".to_string()];
    let body = b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nbare\nlf and bare\rcr\r\nend";
    let payload = wire::data_payload(&[body]);
    client::deliver(&attempt(&hop, &rcpts, &payload, false))
        .await
        .expect("attempt");
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(
        String::from_utf8_lossy(&got[0].data),
        "Subject: dots\r\n\r\n.leading dot\r\n..two\r\n.\r\nbare\r\nlf and bare\r\ncr\r\nend\r\n"
    );
    let raw = &got[0].raw;
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(raw[i - 1], b'\r', "bare LF on the wire at {i}");
        }
        if b == b'\r' {
            assert_eq!(raw.get(i + 1), Some(&b'\n'), "bare CR on the wire at {i}");
        }
    }
    assert!(raw.windows(17).any(|w| w == b"\r\n..leading dot\r\n"));
}

/// A queue wired to the harness: regular pool 127.0.0.2, high-risk 127.0.0.9.
struct Scene {
    _dns: DnsServer,
    sink: SmtpSink,
    spool_dir: tempfile::TempDir,
    port: u16,
    dns_addr: SocketAddr,
    /// `[[shaping]]` rules of the queues this scene starts.
    shaping: Vec<ShapingRule>,
}

async fn scene(script: Script) -> Scene {
    scene_with(SinkOptions {
        script,
        ..SinkOptions::default()
    })
    .await
}

async fn scene_with(opts: SinkOptions) -> Scene {
    let sink = SmtpSink::start_with("127.0.0.1:0", opts)
        .await
        .expect("sink");
    let mut z = Zones::new();
    z.mx("dest.test", 10, "mx.dest.test")
        .a("mx.dest.test", ip(1))
        .mx("sender.test", 10, "mx.sender.test")
        .a("mx.sender.test", ip(1));
    let dns = DnsServer::start(z).await.expect("dns");
    let dns_addr = dns.addr();
    Scene {
        _dns: dns,
        port: sink.addr().port(),
        sink,
        spool_dir: tempfile::tempdir().expect("tmp"),
        dns_addr,
        shaping: Vec::new(),
    }
}

fn pools() -> Vec<PoolConfig> {
    let p = |name: &str, last: u8| PoolConfig {
        name: name.into(),
        source_ips: vec![ip(last).into()],
        ehlo: Some(format!("{name}.relay.test")),
    };
    vec![p("regular", 2), p("high-risk", 9), p("relay", 10)]
}

impl Scene {
    async fn queue(
        &self,
        spool: Spool,
    ) -> (
        QueueHandle,
        mpsc::Receiver<QueueEvent>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        self.queue_limited(
            spool,
            DeliveryConfig::default().max_connections_per_destination,
        )
        .await
    }

    async fn queue_limited(
        &self,
        spool: Spool,
        per_destination: usize,
    ) -> (
        QueueHandle,
        mpsc::Receiver<QueueEvent>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        self.queue_with(spool, per_destination, None).await
    }

    async fn queue_with(
        &self,
        spool: Spool,
        per_destination: usize,
        srs: Option<outguard_proto::srs::Srs>,
    ) -> (
        QueueHandle,
        mpsc::Receiver<QueueEvent>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let delivery = DeliveryConfig {
            max_connections_per_destination: per_destination,
            port: self.port,
            retry_schedule: vec![Duration::from_millis(200)],
            max_age: Duration::from_secs(60),
            connect_timeout: WAIT,
            command_timeout: WAIT,
            ..DeliveryConfig::default()
        };
        let (tx, rx) = mpsc::channel(1000);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let deps = QueueDeps {
            spool,
            config: QueueConfig {
                hostname: "relay.test".into(),
                delivery,
                routes: vec![],
                shaping: self.shaping.clone(),
                srs,
            },
            resolver: MxResolver::new(&DnsConfig {
                resolver: Some(self.dns_addr),
                ..DnsConfig::default()
            })
            .expect("resolver"),
            pools: Arc::new(PoolSet::new(&pools(), "relay.test")),
            dkim: Arc::new(DkimSigners::default()),
            clock: outguard_types::time::Clock::new(),
            events: tx,
            tls: None,
            verified_tls: None,
            tls_verifier: None,
        };
        let q = Queue::start(deps, async move {
            let _ = stop_rx.await;
        })
        .await
        .expect("queue");
        (q, rx, stop_tx)
    }

    fn spool(&self) -> Spool {
        Spool::open(self.spool_dir.path()).expect("spool")
    }
}

fn envelope(rcpts: &[&str]) -> Envelope {
    Envelope {
        id: new_message_id(),
        mail_from: "alice@sender.test".into(),
        rcpts: rcpts.iter().map(|r| r.to_string()).collect(),
        tenant: Some("acme".into()),
        submitter: Submitter::Account("alice@sender.test".into()),
        pool: "regular".into(),
        received_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
        class: None,
        score: None,
        held: false,
        quarantined: false,
        extra_headers: vec![],
        extra_headers_to: None,
    }
}

const BODY: &[u8] =
    b"From: alice@sender.test\r\nTo: bob@dest.test\r\nSubject: queued\r\n\r\nhello\r\n";

async fn drain(rx: &mut mpsc::Receiver<QueueEvent>) -> Vec<QueueEvent> {
    let mut out = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        out.push(ev);
    }
    out
}

fn kinds(events: &[QueueEvent], id: &str) -> Vec<EventKind> {
    events
        .iter()
        .filter_map(|e| match e {
            QueueEvent::Trace(t) if t.message_id == id => Some(t.kind),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn temp_failure_is_retried_then_delivered() {
    let s = scene(Script::fail_first(
        1,
        Reply::new(451, "4.3.0 try again later"),
    ))
    .await;
    let spool = s.spool();
    let (q, mut rx, _stop) = s.queue(spool.clone()).await;
    let env = envelope(&["bob@dest.test"]);
    spool.accept(&env, BODY).await.expect("accept");
    q.enqueue(&env.id).await;
    let got = s.sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "delivered on retry");
    assert_eq!(s.sink.transactions(), 2);
    assert_eq!(
        got[0].peer.ip(),
        IpAddr::from(ip(2)),
        "from the regular pool"
    );
    assert_eq!(got[0].ehlo, "regular.relay.test");
    assert!(
        got[0]
            .data
            .starts_with(format!("X-Outguard-Id: {}\r\n", env.id).as_bytes())
    );
    let events = drain(&mut rx).await;
    let k = kinds(&events, &env.id);
    assert!(
        k.contains(&EventKind::Routed)
            && k.contains(&EventKind::Deferred)
            && k.contains(&EventKind::Delivered),
        "{k:?}"
    );
    assert!(events.iter().any(|e| matches!(e, QueueEvent::State { id, state: MessageState::Delivered, .. } if *id == env.id)));
    assert!(
        spool.load_all().expect("load").is_empty(),
        "delivered mail leaves the spool"
    );
    assert_eq!(q.len(), 0);
}

#[tokio::test]
async fn permanent_failure_sends_dsn_from_high_risk_pool() {
    let script =
        Script::default().refuse_rcpt("nobody@dest.test", Reply::new(550, "5.1.1 No such user"));
    let s = scene(script).await;
    let spool = s.spool();
    let (q, mut rx, _stop) = s.queue(spool.clone()).await;
    let env = envelope(&["nobody@dest.test"]);
    spool.accept(&env, BODY).await.expect("accept");
    q.enqueue(&env.id).await;
    let got = s.sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "the DSN arrived");
    let dsn = &got[0];
    assert_eq!(dsn.mail_from, "", "DSNs have an empty envelope sender");
    assert_eq!(dsn.rcpts, vec!["alice@sender.test".to_string()]);
    assert_eq!(
        dsn.peer.ip(),
        IpAddr::from(ip(9)),
        "DSNs leave from the high-risk pool"
    );
    assert_eq!(dsn.ehlo, "high-risk.relay.test");
    let text = String::from_utf8_lossy(&dsn.data);
    assert!(text.contains("multipart/report"), "{text}");
    assert!(
        text.contains(
            "Final-Recipient: rfc822; nobody@dest.test\r\nAction: failed\r\nStatus: 5.1.1"
        ),
        "{text}"
    );
    assert!(text.contains("Subject: queued"));
    let events = drain(&mut rx).await;
    let k = kinds(&events, &env.id);
    assert!(
        k.contains(&EventKind::Bounced) && k.contains(&EventKind::Dsn),
        "{k:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, QueueEvent::Created { about, .. } if *about == env.id))
    );
    assert!(spool.load_all().expect("load").is_empty());
}

#[tokio::test]
async fn restart_resumes_delivery_from_the_spool() {
    let s = scene(Script::default()).await;
    let env = envelope(&["bob@dest.test", "carol@dest.test"]);
    {
        // Accepted (250 answered), then the process dies before any attempt.
        let spool = s.spool();
        spool.accept(&env, BODY).await.expect("accept");
    }
    let spool = s.spool();
    let (_q, _rx, _stop) = s.queue(spool.clone()).await;
    let got = s.sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].rcpts,
        vec!["bob@dest.test".to_string(), "carol@dest.test".to_string()]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.sink.messages().len(), 1, "delivered exactly once");
}

/// A recipient recorded as accepted (the `.done` record written at the next hop's 250) before
/// the process died is not sent again after restart; only the undecided one is, and the message
/// then finishes (issue 17). A second message whose every recipient is recorded finishes
/// without any connection at all.
#[tokio::test]
async fn recorded_recipients_are_not_delivered_again_after_restart() {
    let s = scene(Script::default()).await;
    let env = envelope(&["bob@dest.test", "carol@dest.test"]);
    let all_done = envelope(&["dave@dest.test"]);
    {
        let spool = s.spool();
        spool.accept(&env, BODY).await.expect("accept");
        spool.accept(&all_done, BODY).await.expect("accept");
        spool
            .record_delivered(&env.id, &["bob@dest.test"])
            .expect("record");
        spool
            .record_delivered(&all_done.id, &["dave@dest.test"])
            .expect("record");
    }
    let spool = s.spool();
    let (q, mut rx, _stop) = s.queue(spool.clone()).await;
    let got = s.sink.wait_for(1, WAIT).await;
    assert_eq!(got[0].rcpts, vec!["carol@dest.test".to_string()]);
    assert!(eventually(WAIT, || q.is_empty()).await, "both finish");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.sink.messages().len(), 1, "nothing sent twice");
    assert_eq!(s.sink.transactions(), 1);
    let events = drain(&mut rx).await;
    // The recorded recipients' delivery is traced after the restart too.
    assert!(kinds(&events, &all_done.id).contains(&EventKind::Delivered));
    assert!(events.iter().any(|e| matches!(e,
        QueueEvent::State { id, state: MessageState::Delivered, .. } if *id == all_done.id)));
    assert!(spool.load_all().expect("load").is_empty());
}

/// A spooled message the queue cannot read at attempt time (an I/O error, no descriptor left)
/// stays queued and is tried again on the schedule; before, it was dropped from the queue's
/// memory and sat in the spool undelivered until the next restart.
#[tokio::test]
async fn a_message_that_cannot_be_read_is_retried_not_dropped() {
    let s = scene(Script::default()).await;
    let spool = s.spool();
    let (q, _rx, _stop) = s.queue(spool.clone()).await;
    let mut env = envelope(&["bob@dest.test"]);
    env.held = true;
    spool.accept(&env, BODY).await.expect("accept");
    q.enqueue(&env.id).await;
    let path = s
        .spool_dir
        .path()
        .join("queue")
        .join(format!("{}.msg", env.id));
    let good = std::fs::read(&path).expect("spooled");
    std::fs::write(&path, b"not an envelope\n").expect("damage");
    q.release(&env.id).await.expect("release");
    assert!(
        eventually(WAIT, || q.list().first().is_some_and(|m| m.attempts >= 1)).await,
        "the failed read counts as an attempt and the message stays queued: {:?}",
        q.list()
    );
    std::fs::write(&path, &good).expect("repair");
    assert_eq!(
        s.sink.wait_for(1, WAIT).await.len(),
        1,
        "delivered on a later attempt"
    );
    assert!(eventually(WAIT, || q.is_empty()).await);
}

#[tokio::test]
async fn held_messages_wait_for_release() {
    let s = scene(Script::default()).await;
    let spool = s.spool();
    let (q, _rx, _stop) = s.queue(spool.clone()).await;
    let mut env = envelope(&["bob@dest.test"]);
    env.held = true;
    spool.accept(&env, BODY).await.expect("accept");
    q.enqueue(&env.id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.sink.messages().is_empty(), "held mail is not delivered");
    assert_eq!(q.list()[0].state, MessageState::Held);
    q.release(&env.id).await.expect("release");
    assert_eq!(s.sink.wait_for(1, WAIT).await.len(), 1);
}

#[tokio::test]
async fn delete_and_hold_survive_in_the_spool() {
    let s = scene(Script::fail_first(100, Reply::new(451, "4.3.0 later"))).await;
    let spool = s.spool();
    let (q, _rx, stop) = s.queue(spool.clone()).await;
    let a = envelope(&["bob@dest.test"]);
    let b = envelope(&["bob@dest.test"]);
    for e in [&a, &b] {
        spool.accept(e, BODY).await.expect("accept");
        q.enqueue(&e.id).await;
    }
    q.hold(&a.id).await.expect("hold");
    q.delete(&b.id).await.expect("delete");
    let _ = stop.send(());
    let all = spool.load_all().expect("load");
    assert_eq!(all.len(), 1);
    assert!(all[0].1.held, "hold is durable");
}

#[tokio::test]
async fn dkim_signature_verifies_at_the_receiver() {
    use base64::Engine as _;
    use mail_auth::common::crypto::Ed25519Key;

    let s = scene(Script::default()).await;
    let pkcs8 = Ed25519Key::generate_pkcs8().expect("key");
    let public = Ed25519Key::from_pkcs8_der(&pkcs8)
        .expect("key")
        .public_key();
    let b64 = base64::engine::general_purpose::STANDARD;
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        b64.encode(&pkcs8)
    );
    let key_path = s.spool_dir.path().join("dkim.pem");
    std::fs::write(&key_path, pem).expect("write key");
    let txt = format!("v=DKIM1; k=ed25519; p={}", b64.encode(&public));
    s._dns.update(|z| {
        z.txt("sel._domainkey.sender.test", &txt);
    });
    let cfg = outguard_types::config::DkimConfig {
        domain: "sender.test".into(),
        selector: "sel".into(),
        key: key_path,
    };
    let signers = DkimSigners::load(&[cfg]).expect("load key");

    let sink = &s.sink;
    let hop = Hop {
        host: "sink.test".into(),
        addr: sink.addr(),
    };
    let rcpts = vec!["bob@dest.test".to_string()];
    let body = b"From: alice@sender.test\nTo: bob@dest.test\nSubject: signed\n\n.dot\nbody\n";
    let normalised = wire::normalize_crlf(&[&wire::prepend_headers("id1", &[]), body]);
    let sig = signers.sign("sender.test", &normalised).expect("signature");
    assert!(sig.starts_with(b"DKIM-Signature:") && sig.ends_with(b"\r\n"));
    let payload = wire::data_payload(&[&sig, &normalised]);
    client::deliver(&attempt(&hop, &rcpts, &payload, false))
        .await
        .expect("attempt");
    let got = sink.wait_for(1, WAIT).await;

    let dns_cfg = {
        use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
        let mut udp = ConnectionConfig::udp();
        udp.port = s.dns_addr.port();
        ResolverConfig::from_parts(
            None,
            vec![],
            vec![NameServerConfig::new(s.dns_addr.ip(), true, vec![udp])],
        )
    };
    let auth =
        mail_auth::MessageAuthenticator::new(dns_cfg, Default::default()).expect("authenticator");
    let msg = mail_auth::AuthenticatedMessage::parse(&got[0].data).expect("parse");
    let results = auth.verify_dkim(mail_auth::Parameters::new(&msg)).await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].result(), &mail_auth::DkimResult::Pass);
    // RFC 8058 §4: one-click unsubscribe needs both fields under the signature (issue 25).
    let h = &results[0].signature().expect("signature").h;
    for f in ["List-Unsubscribe", "List-Unsubscribe-Post"] {
        assert!(
            h.iter().any(|x| x.eq_ignore_ascii_case(f)),
            "{f} not in h={h:?}"
        );
    }
}

/// Throughput probe (not a timed test): `cargo test -p outguard --release --bin outguard
/// queue_delivery_rate -- --ignored --nocapture`. 2,000 spooled messages through the queue to a
/// sink on loopback, over reused connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn queue_delivery_rate() {
    let s = scene(Script::default()).await;
    let spool = s.spool();
    let n = 2000;
    for _ in 0..n {
        spool
            .accept(&envelope(&["bob@dest.test"]), BODY)
            .await
            .expect("accept");
    }
    let start = std::time::Instant::now();
    let (_q, mut rx, _stop) = s.queue(spool.clone()).await;
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let got = s.sink.wait_for(n, Duration::from_secs(120)).await;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "queue delivery: {} messages in {secs:.2}s = {:.0} msg/s",
        got.len(),
        got.len() as f64 / secs
    );
    assert_eq!(got.len(), n);
}

#[tokio::test]
async fn expiry_and_null_mx_bounce_with_a_dsn() {
    let script =
        Script::default().refuse_rcpt("slow@dest.test", Reply::new(451, "4.2.1 mailbox busy"));
    let s = scene(script).await;
    s._dns.update(|z| {
        z.null_mx("nomail.test");
    });
    let spool = s.spool();
    let (q, _rx, _stop) = s.queue(spool.clone()).await;
    let mut env = envelope(&["slow@dest.test", "who@nomail.test"]);
    // Received 59.5 s ago with max_age 60 s: the first retries run into the expiry.
    env.received_at -= 59_500;
    spool.accept(&env, BODY).await.expect("accept");
    q.enqueue(&env.id).await;
    let got = s.sink.wait_for(2, WAIT).await;
    assert_eq!(
        got.len(),
        2,
        "one DSN for the null MX at once, one at expiry"
    );
    let first = String::from_utf8_lossy(&got[0].data);
    assert!(
        first.contains(
            "Final-Recipient: rfc822; who@nomail.test\r\nAction: failed\r\nStatus: 5.1.10"
        ),
        "{first}"
    );
    let second = String::from_utf8_lossy(&got[1].data);
    assert!(
        second
            .contains("Final-Recipient: rfc822; slow@dest.test\r\nAction: failed\r\nStatus: 4.4.7"),
        "{second}"
    );
    assert!(
        second.contains("4.2.1 mailbox busy"),
        "last remote reply kept: {second}"
    );
    assert!(got.iter().all(|m| m.peer.ip() == IpAddr::from(ip(9))));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(spool.load_all().expect("load").is_empty());
}

/// Poll `cond` until it holds or `timeout` passes; true if it held.
async fn eventually(timeout: Duration, cond: impl Fn() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// Accept and enqueue one message to bob@dest.test, wait until the sink has `total` messages.
async fn send_one(s: &Scene, spool: &Spool, q: &QueueHandle, total: usize) -> Envelope {
    let env = envelope(&["bob@dest.test"]);
    spool.accept(&env, BODY).await.expect("accept");
    q.enqueue(&env.id).await;
    let got = s.sink.wait_for(total, WAIT).await;
    assert_eq!(got.len(), total, "message {total} delivered");
    // Finished (and its connection parked) before the next one starts.
    assert!(
        eventually(WAIT, || q.is_empty()).await,
        "message {total} done"
    );
    env
}

fn count(events: &[QueueEvent], id: &str, kind: EventKind) -> usize {
    kinds(events, id).into_iter().filter(|k| *k == kind).count()
}

#[tokio::test]
async fn sequential_messages_share_one_connection_until_idle_expiry() {
    let s = scene(Script::default()).await;
    let spool = s.spool();
    let (q, _rx, _stop) = s.queue(spool.clone()).await;
    for n in 1..=10 {
        send_one(&s, &spool, &q, n).await;
    }
    assert_eq!(
        s.sink.connections().len(),
        1,
        "one connection for 10 messages"
    );
    assert_eq!(s.sink.transactions(), 10);
    let ids: std::collections::BTreeSet<Vec<u8>> =
        s.sink.messages().into_iter().map(|m| m.data).collect();
    assert_eq!(ids.len(), 10, "every message once");
    // Parked, then closed by us after the idle limit.
    assert_eq!(
        s.sink.open_connections(),
        1,
        "connection kept open while idle"
    );
    let start = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(15), || s.sink.open_connections() == 0).await,
        "idle connection closed"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "closed too early"
    );
}

#[tokio::test]
async fn concurrent_messages_respect_the_destination_limit_and_reuse() {
    let s = scene(Script::default()).await;
    let spool = s.spool();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let env = envelope(&["bob@dest.test"]);
        spool.accept(&env, BODY).await.expect("accept");
        ids.push(env.id);
    }
    // All ten are due at start: the queue runs them at once, two connections at a time.
    let (q, mut rx, stop) = s.queue_limited(spool.clone(), 2).await;
    let got = s.sink.wait_for(10, WAIT).await;
    assert_eq!(got.len(), 10);
    assert!(
        s.sink.connections().len() <= 2,
        "{} connections for 10 messages",
        s.sink.connections().len()
    );
    assert!(s.sink.peak_connections() <= 2, "per-destination limit");
    let events = drain(&mut rx).await;
    for id in &ids {
        assert_eq!(count(&events, id, EventKind::Delivered), 1, "{id} once");
    }
    assert!(eventually(WAIT, || q.is_empty()).await);
    // Shutdown closes the parked connections at once, not at idle expiry.
    let _ = stop.send(());
    assert!(
        eventually(Duration::from_secs(3), || s.sink.open_connections() == 0).await,
        "parked connections closed on shutdown"
    );
}

/// A shaping rule's `max_messages_per_connection` (issue 22): with 1, no connection is reused.
#[tokio::test]
async fn shaping_rule_caps_messages_per_connection() {
    let mut s = scene(Script::default()).await;
    s.shaping = vec![ShapingRule {
        destination: "dest.test".into(),
        pool: None,
        source_ip: None,
        max_connections: None,
        max_messages_per_connection: Some(1),
        messages_per_minute: None,
    }];
    let spool = s.spool();
    let (q, _rx, _stop) = s.queue(spool.clone()).await;
    for n in 1..=3 {
        send_one(&s, &spool, &q, n).await;
    }
    assert_eq!(s.sink.connections().len(), 3, "one connection per message");
    assert_eq!(s.sink.transactions(), 3);
}

#[tokio::test]
async fn connection_closed_by_the_remote_while_parked_is_replaced() {
    let s = scene_with(SinkOptions {
        idle_close: Some(Duration::from_millis(300)),
        ..SinkOptions::default()
    })
    .await;
    let spool = s.spool();
    let (q, mut rx, _stop) = s.queue(spool.clone()).await;
    send_one(&s, &spool, &q, 1).await;
    assert!(eventually(WAIT, || s.sink.open_connections() == 0).await);
    let env = send_one(&s, &spool, &q, 2).await;
    assert_eq!(s.sink.connections().len(), 2, "a fresh connection");
    assert_eq!(s.sink.transactions(), 2, "no duplicate");
    let events = drain(&mut rx).await;
    assert_eq!(
        count(&events, &env.id, EventKind::Attempt),
        1,
        "the dead one is no attempt"
    );
    assert_eq!(count(&events, &env.id, EventKind::Deferred), 0);
    assert!(
        s.sink
            .messages()
            .iter()
            .all(|m| m.mail_from == "alice@sender.test"),
        "no bounce"
    );
}

#[tokio::test]
async fn reused_connection_answering_421_is_replaced() {
    let s = scene(Script::default()).await;
    let spool = s.spool();
    let (q, mut rx, _stop) = s.queue(spool.clone()).await;
    send_one(&s, &spool, &q, 1).await;
    // The next MAIL (the second transaction, on the parked connection) gets 421.
    s.sink.set_script(Script::fail_first(
        2,
        Reply::new(421, "4.4.2 closing connection"),
    ));
    let env = send_one(&s, &spool, &q, 2).await;
    assert_eq!(s.sink.connections().len(), 2);
    assert_eq!(
        s.sink.transactions(),
        3,
        "421 on the reused one, then the fresh one"
    );
    assert_eq!(s.sink.messages().len(), 2, "delivered once");
    let events = drain(&mut rx).await;
    assert_eq!(count(&events, &env.id, EventKind::Attempt), 1);
    assert_eq!(count(&events, &env.id, EventKind::Deferred), 0);
    assert_eq!(count(&events, &env.id, EventKind::Delivered), 1);
}

/// A forwarded message spooled with our SRS0 sender: its DSN goes straight to the original
/// sender, not through our SRS domain (which may not even resolve), still null-sender, high-risk.
#[tokio::test]
async fn dsn_about_srs_forwarded_mail_goes_to_the_original_sender() {
    let script =
        Script::default().refuse_rcpt("nobody@dest.test", Reply::new(550, "5.1.1 No such user"));
    let s = scene(script).await;
    let spool = s.spool();
    let srs = outguard_proto::srs::Srs::new(b"unit-test-secret-16b", "srs.relay.test", 21);
    let (q, mut rx, _stop) = s
        .queue_with(
            spool.clone(),
            DeliveryConfig::default().max_connections_per_destination,
            Some(srs.clone()),
        )
        .await;
    let mut env = envelope(&["nobody@dest.test"]);
    env.mail_from = srs
        .forward("alice@sender.test", env.received_at / 1000)
        .expect("srs");
    env.pool = "relay".into();
    spool.accept(&env, BODY).await.expect("accept");
    q.enqueue(&env.id).await;
    let got = s.sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "the DSN arrived");
    assert_eq!(got[0].mail_from, "");
    assert_eq!(got[0].rcpts, vec!["alice@sender.test".to_string()]);
    assert_eq!(got[0].peer.ip(), IpAddr::from(ip(9)));
    let events = drain(&mut rx).await;
    assert!(events.iter().any(|e| matches!(e, QueueEvent::Trace(t)
        if t.kind == EventKind::Dsn && t.detail.ends_with("to alice@sender.test"))));
}
