//! Exactly-once under `kill -9` (issue 17): a recipient the next hop accepted is recorded at
//! that `250`, before the rest of the round, so a crash before the message's other recipients are
//! decided never sends it again. The real binary, killed with SIGKILL and restarted on the same
//! spool; two next hops found by MX in a real DNS server.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::client::{Client, queued_id};
use common::{RelayProc, SmtpSink, message, scene};

const WAIT: Duration = Duration::from_secs(30);

/// A next hop that accepts connections and never greets: the relay's session with it stays
/// open (up to its command timeout) while the message's other domain is already done.
struct Tarpit {
    task: tokio::task::JoinHandle<()>,
    held: Arc<Mutex<Vec<tokio::net::TcpStream>>>,
}

impl Tarpit {
    async fn start(addr: (&str, u16)) -> Tarpit {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the tarpit");
        let held: Arc<Mutex<Vec<tokio::net::TcpStream>>> = Arc::default();
        let h = held.clone();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                h.lock().unwrap().push(s);
            }
        });
        Tarpit { task, held }
    }

    fn connections(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Close the listener and every held connection (the port is free again).
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.held.lock().unwrap().clear();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_accepted_before_a_kill_is_not_delivered_again() {
    let sc = scene("").await;
    sc.provision().await;
    // far.example's MX is 127.0.0.12 on the scene's delivery port: first a tarpit, later a sink.
    sc.dns.update(|z| {
        z.mx("far.example", 10, "mx.far.example")
            .a("mx.far.example", [127, 0, 0, 12].into());
    });
    let far_addr = ("127.0.0.12", sc.port);
    let tarpit = Tarpit::start(far_addr).await;
    let mut relay = RelayProc::start(sc.dir());
    let m = message(
        "alice@a.example",
        "x@dest.example, y@far.example",
        "two next hops",
        "one copy each",
    );
    let r = Client::send_mail(
        relay.addr("connector"),
        None,
        "alice@a.example",
        &["x@dest.example", "y@far.example"],
        &m,
    )
    .await;
    assert!(r.starts_with("250"), "{r}");
    let id = queued_id(&r);

    // dest.example answered 250; far.example has not even greeted. Kill now.
    assert_eq!(sc.dest.wait_for(1, WAIT).await.len(), 1, "first hop got it");
    let deadline = std::time::Instant::now() + WAIT;
    while tarpit.connections() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay never reached the second hop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The sink holds the copy once it has the data, a moment before the relay reads its 250;
    // a kill inside that moment is the one window no record can close (the reply is on the
    // wire). Kill once the relay has recorded the recipient, which is what this test is about.
    let done = sc.dir().join(format!("data/spool/queue/{id}.done"));
    while !std::fs::read_to_string(&done).is_ok_and(|d| d.contains("x@dest.example")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the relay never recorded x@dest.example in {}",
            done.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    relay.kill9();
    assert!(
        sc.dir().join(format!("data/spool/queue/{id}.msg")).exists(),
        "the message is still queued at the kill (its second recipient is undecided)"
    );

    // The second hop comes up; the restarted relay recovers the message from the spool.
    tarpit.stop().await;
    let far = SmtpSink::start(far_addr).await.expect("sink");
    let _relay = RelayProc::start(sc.dir());
    let got = far.wait_for(1, WAIT).await;
    assert_eq!(
        got.len(),
        1,
        "the second recipient gets its copy after restart"
    );
    assert_eq!(got[0].rcpts, vec!["y@far.example".to_string()]);
    assert!(String::from_utf8_lossy(&got[0].data).contains(&format!("X-Outguard-Id: {id}")));
    // Give a wrong resend every chance to show up before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dest = sc.dest.messages();
    assert_eq!(
        dest.len(),
        1,
        "the first next hop has exactly one copy: {:?}",
        dest.iter().map(|m| m.rcpts.clone()).collect::<Vec<_>>()
    );
    assert_eq!(far.messages().len(), 1);
    // And the message is finished: nothing of it is left in the spool.
    let deadline = std::time::Instant::now() + WAIT;
    while sc.dir().join(format!("data/spool/queue/{id}.msg")).exists() {
        assert!(std::time::Instant::now() < deadline, "message left queued");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !sc.dir()
            .join(format!("data/spool/queue/{id}.done"))
            .exists()
    );
}
