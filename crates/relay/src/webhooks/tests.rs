//! The sender's tests: signing, retries and kinds against a loopback HTTP server; the store's
//! subscriptions by tenant; and the transport's trust rules ([`super::client::Dialer`]): a name
//! rebound to loopback is refused before any connection, https is verified against the
//! configured extra root and a wrong CA gets nothing. Everything stays on 127.0.0.0/8.

use super::*;
use outguard_harness::http::{HttpRequest as Seen, read_request};
use outguard_policy::{Measure, Subject};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

#[test]
fn hmac_sha256_vector() {
    // RFC 4231 test case 2.
    assert_eq!(
        signature(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

/// A loopback HTTP server answering each request with the next status of `statuses`
/// (then 200), reporting what it saw.
async fn server(statuses: Vec<u16>) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut statuses = statuses.into_iter();
        while let Ok((mut s, _)) = listener.accept().await {
            let Some(seen) = read_request(&mut s).await else {
                continue;
            };
            let status = statuses.next().unwrap_or(200);
            let reply =
                format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = s.write_all(reply.as_bytes()).await;
            let _ = tx.send(seen);
        }
    });
    (format!("http://{addr}"), rx)
}

fn hook(url: String, secret: &str, kinds: &[&str]) -> WebhookConfig {
    WebhookConfig {
        url,
        secret: secret.into(),
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
    }
}

fn alert(kind: AlertKind) -> Alert {
    Alert::new(
        kind,
        Some("acme"),
        Some(Subject::Account("bulk@acme.example".into())),
        "bulk@acme.example blocked".into(),
        vec![Measure::new("external recipients in last hour", 501, 500)],
        1_795_456_800_000,
    )
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a webhook request in time")
        .expect("server alive")
}

#[tokio::test]
async fn signed_post_retried_after_500_and_filtered_by_kind() {
    let (base, mut rx) = server(vec![500]).await;
    let hooks = Webhooks::with_schedule(
        &[
            hook(format!("{base}/all"), "s3cret", &[]),
            hook(format!("{base}/ip"), "other", &["ip_listed"]),
        ],
        vec![Duration::from_millis(200), Duration::from_millis(200)],
    );
    hooks.send(&alert(AlertKind::UserRestricted));
    let first = next(&mut rx).await;
    let second = next(&mut rx).await;
    assert_eq!(
        (first.path.as_str(), second.path.as_str()),
        ("/all", "/all"),
        "only the hook that wants every kind"
    );
    assert!(
        second.at.duration_since(first.at) >= Duration::from_millis(180),
        "retried after the backoff"
    );
    assert_eq!(first.body, second.body);
    for seen in [&first, &second] {
        assert_eq!(
            seen.header("X-Outguard-Signature"),
            Some(signature(b"s3cret", &seen.body).as_str())
        );
        let ts: u64 = seen
            .header("X-Outguard-Timestamp")
            .unwrap()
            .parse()
            .unwrap();
        assert!(ts.abs_diff(unix_secs()) < 60);
        assert_eq!(seen.header("Content-Type"), Some("application/json"));
    }
    let j: serde_json::Value = serde_json::from_slice(&second.body).unwrap();
    assert_eq!(j["kind"], "user_restricted");
    assert_eq!(j["severity"], "high");
    assert_eq!(j["tenant"], "acme");
    assert_eq!(j["subject"]["id"], "bulk@acme.example");
    assert_eq!(j["measures"][0]["count"], 501);
    assert_eq!(j["created_at"], 1_795_456_800_000i64);
    assert!(j["summary"].is_string());

    hooks.send(&alert(AlertKind::IpListed));
    let mut paths = [next(&mut rx).await, next(&mut rx).await];
    paths.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(paths[0].path, "/all");
    assert_eq!(paths[1].path, "/ip");
    assert_eq!(
        paths[1].header("X-Outguard-Signature"),
        Some(signature(b"other", &paths[1].body).as_str())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.try_recv().is_err(),
        "nothing more: delivered ones are not repeated"
    );
}

#[tokio::test]
async fn gives_up_after_the_schedule_and_stops_on_close() {
    let (base, mut rx) = server(vec![500; 100]).await;
    let hooks = Webhooks::with_schedule(
        &[hook(base.clone(), "k", &[])],
        vec![Duration::from_millis(20), Duration::from_millis(20)],
    );
    hooks.send(&alert(AlertKind::SendingLimitExceeded));
    for _ in 0..3 {
        next(&mut rx).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.try_recv().is_err(),
        "1 attempt + 2 retries, then given up"
    );

    // A connection refused is a failure too, retried the same way.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dead_hooks =
        Webhooks::with_schedule(&[hook(dead, "k", &[])], vec![Duration::from_millis(10)]);
    dead_hooks.send(&alert(AlertKind::UserRestricted));

    hooks.close();
    tokio::time::sleep(Duration::from_millis(50)).await;
    hooks.send(&alert(AlertKind::UserRestricted));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "a closed sender posts nothing");
}

/// The paths of the next `n` requests (sorted), each checked for the test secret's signature.
async fn paths(rx: &mut mpsc::UnboundedReceiver<Seen>, n: usize) -> Vec<String> {
    let mut v = Vec::new();
    for _ in 0..n {
        let seen = next(rx).await;
        assert_eq!(
            seen.header("X-Outguard-Signature"),
            Some(signature(b"0123456789abcdef", &seen.body).as_str())
        );
        v.push(seen.path);
    }
    v.sort();
    v
}

/// Store subscriptions: a tenant's get only its alerts, a tenant-less one every alert; a
/// change made on another handle is picked up by the poll, one made here by `reload`.
#[tokio::test]
async fn stored_subscriptions_filter_by_tenant_and_follow_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/r.db", dir.path().display());
    let store = Store::open(&url).await.unwrap();
    for t in ["acme", "globex"] {
        store.add_tenant(t, 1).await.unwrap();
    }
    let (base, mut rx) = server(vec![]).await;
    let mk = |tenant: Option<&'static str>, path: &'static str| {
        let (store, base) = (store.clone(), base.clone());
        async move {
            store
                .create_webhook(
                    tenant,
                    &format!("{base}{path}"),
                    "0123456789abcdef",
                    &[],
                    "t",
                    1,
                )
                .await
                .unwrap()
        }
    };
    let acme = mk(Some("acme"), "/acme").await;
    mk(None, "/all").await;
    // Stored subscriptions are restricted to public addresses: open loopback for the receiver.
    let mut cfg = Config::default();
    cfg.webhooks.allow_private = vec!["127.0.0.0/8".parse().unwrap()];
    let hooks = Webhooks::with_store(&cfg, store.clone()).unwrap();
    hooks.reload().await.unwrap();
    hooks.send(&alert(AlertKind::UserRestricted)); // tenant acme
    assert_eq!(paths(&mut rx, 2).await, ["/acme", "/all"]);
    let mut globex = alert(AlertKind::UserRestricted);
    globex.tenant = Some("globex".into());
    hooks.send(&globex);
    assert_eq!(paths(&mut rx, 1).await, ["/all"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err(), "acme's hook got nothing of globex");

    // Another node deletes acme's and adds globex's: the poll follows within a few seconds.
    let other = Store::open(&url).await.unwrap();
    other.delete_webhook(&acme.id).await.unwrap();
    other
        .create_webhook(
            Some("globex"),
            &format!("{base}/globex"),
            "0123456789abcdef",
            &[],
            "t",
            2,
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while hooks
        .stored
        .as_ref()
        .unwrap()
        .snapshot()
        .iter()
        .all(|h| !h.url.ends_with("/globex"))
    {
        assert!(
            Instant::now() < deadline,
            "the poll never picked the change up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hooks.send(&globex);
    assert_eq!(paths(&mut rx, 2).await, ["/all", "/globex"]);
    hooks.send(&alert(AlertKind::IpListed));
    assert_eq!(paths(&mut rx, 1).await, ["/all"]);
    hooks.close();
}

#[tokio::test]
async fn no_hooks_no_task() {
    let hooks = Webhooks::new(&[]);
    assert!(hooks.tx.is_none());
    hooks.send(&alert(AlertKind::UserRestricted));
    let bad = Webhooks::new(&[hook("ftp://hooks.example/x".into(), "k", &[])]);
    assert!(bad.tx.is_none(), "an unusable URL is skipped");
    let https = Webhooks::new(&[hook("https://hooks.example/x".into(), "k", &[])]);
    assert!(https.tx.is_some(), "https is delivered");
}

fn dialer(
    dns: Option<std::net::SocketAddr>,
    allow: &[&str],
    roots: Option<&std::path::Path>,
) -> Dialer {
    let cfg = outguard_types::config::WebhooksConfig {
        allow_private: allow.iter().map(|n| n.parse().expect("cidr")).collect(),
        extra_roots: roots.map(std::path::Path::to_path_buf),
        hooks: Vec::new(),
    };
    let dns = outguard_types::config::DnsConfig {
        resolver: dns,
        ..Default::default()
    };
    Dialer::new(&cfg, &dns).expect("dialer")
}

fn request(url: &WebhookUrl) -> Vec<u8> {
    format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        url.path,
        url.host_header()
    )
    .into_bytes()
}

/// A subscription's host that now resolves to loopback is refused before any connection; the
/// operator's own hook to the same URL is not restricted; `allow_private` opens the range.
#[tokio::test]
async fn rebound_name_is_refused_before_connecting() {
    use outguard_harness::http::Receiver;
    use outguard_harness::{DnsServer, Zones};
    let mut hook = Receiver::start("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let mut z = Zones::new();
    z.a("rebind.hooks.example", [8, 8, 8, 8].into());
    let dns = DnsServer::start(z).await.unwrap();
    let d = dialer(Some(dns.addr()), &[], None);
    let url_text = format!("http://rebind.hooks.example:{}/r", hook.addr.port());
    assert!(
        d.check_subscription(&url_text).await.is_ok(),
        "public at subscription"
    );
    dns.update(|z| {
        z.remove("rebind.hooks.example")
            .a("rebind.hooks.example", [127, 0, 0, 1].into());
    });
    tokio::time::sleep(Duration::from_millis(1500)).await; // TTL 1 s
    let url = WebhookUrl::parse(&url_text).unwrap();
    match d.send(&url, true, &request(&url)).await {
        Err(AttemptError::Refused(r)) => {
            assert_eq!(
                (r.ip.to_string().as_str(), r.why),
                ("127.0.0.1", "loopback")
            )
        }
        other => panic!("not refused: {other:?}"),
    }
    let e = d
        .check_subscription(&url_text)
        .await
        .expect_err("refused now");
    assert!(e.contains("127.0.0.1 is loopback"), "{e}");
    assert_eq!(hook.connections(), 0, "never connected");
    // The operator's hook (unrestricted) and an opened range do connect.
    assert_eq!(d.send(&url, false, &request(&url)).await.unwrap(), 200);
    let opened = dialer(Some(dns.addr()), &["127.0.0.0/8"], None);
    assert_eq!(opened.send(&url, true, &request(&url)).await.unwrap(), 200);
    for _ in 0..2 {
        let seen = next(&mut hook.requests).await;
        assert_eq!(seen.header("Host"), Some(url.host_header().as_str()));
    }
}

/// https: verified against `extra_roots` (SNI and name check on the URL's host); another CA's
/// certificate or the wrong name gets no request.
#[tokio::test]
async fn https_verifies_against_the_extra_root() {
    use outguard_harness::http::Receiver;
    use outguard_harness::{DnsServer, TestCa};
    crate::tls::install_provider();
    let ca = TestCa::new("test root").unwrap();
    let other = TestCa::new("other root").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, ca.pem()).unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    let mut good = Receiver::start(any, Some(ca.server_config(&["hook.tls.example"]).unwrap()))
        .await
        .unwrap();
    let mut bad = Receiver::start(
        any,
        Some(other.server_config(&["hook.tls.example"]).unwrap()),
    )
    .await
    .unwrap();
    let mut z = outguard_harness::Zones::new();
    z.a("hook.tls.example", [127, 0, 0, 1].into())
        .a("other.tls.example", [127, 0, 0, 1].into());
    let dns = DnsServer::start(z).await.unwrap();
    let d = dialer(Some(dns.addr()), &["127.0.0.0/8"], Some(&pem));
    let url =
        WebhookUrl::parse(&format!("https://hook.tls.example:{}/t", good.addr.port())).unwrap();
    assert_eq!(d.send(&url, true, &request(&url)).await.unwrap(), 200);
    let seen = next(&mut good.requests).await;
    assert_eq!(seen.path, "/t");
    // Right CA, wrong name: refused by verification.
    let wrong_name =
        WebhookUrl::parse(&format!("https://other.tls.example:{}/t", good.addr.port())).unwrap();
    let e = d
        .send(&wrong_name, true, &request(&wrong_name))
        .await
        .expect_err("wrong name");
    assert!(matches!(e, AttemptError::Io(_)), "{e:?}");
    // Another CA: the handshake fails, no request.
    let url =
        WebhookUrl::parse(&format!("https://hook.tls.example:{}/t", bad.addr.port())).unwrap();
    let e = d
        .send(&url, true, &request(&url))
        .await
        .expect_err("wrong CA");
    assert!(e.to_string().contains("certificate"), "{e}");
    // Without the extra root, the good endpoint is not trusted either.
    let plain = dialer(Some(dns.addr()), &["127.0.0.0/8"], None);
    let url =
        WebhookUrl::parse(&format!("https://hook.tls.example:{}/t", good.addr.port())).unwrap();
    assert!(plain.send(&url, true, &request(&url)).await.is_err());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(good.requests.try_recv().is_err() && bad.requests.try_recv().is_err());
    assert!(bad.connections() >= 1);
}
