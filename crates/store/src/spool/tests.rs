//! Spool round trips on a real temp directory.

use super::*;
use outguard_types::model::Submitter;

fn env(id: &str) -> Envelope {
    Envelope {
        id: id.to_string(),
        mail_from: "alice@example.com".into(),
        rcpts: vec!["bob@example.net".into(), "carol@example.org".into()],
        tenant: Some("acme".into()),
        submitter: Submitter::Account("alice@example.com".into()),
        pool: "regular".into(),
        received_at: 1_700_000_000_000,
        class: Some(Class::Clean),
        score: Some(0.25),
        held: false,
        quarantined: false,
        extra_headers: vec![("X-Outguard-Verdict".into(), "clean".into())],
        extra_headers_to: None,
    }
}

#[test]
fn accept_then_load_all_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let (a, b) = (new_message_id(), new_message_id());
    assert!(a < b, "ids sort by time");
    let body = b"Subject: hi\r\n\r\n.dot line\r\nbody\r\n";
    spool.accept_blocking(&env(&a), body).unwrap();
    spool.accept_blocking(&env(&b), b"x\r\n").unwrap();
    drop(spool);

    let spool = Spool::open(dir.path()).unwrap();
    let all = spool.load_all().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, env(&a));
    assert_eq!(all[0].1, State::initial(&env(&a)));
    assert_eq!(spool.read_body(&a).unwrap(), body);

    let mut st = all[0].1.clone();
    st.attempts = 2;
    st.next_attempt_at = 42;
    st.rcpts.insert(
        "bob@example.net".into(),
        RcptState {
            status: RcptStatus::Delivered,
            reply: Some("250 ok".into()),
            remote: None,
        },
    );
    spool.update_state(&a, &st).unwrap();
    let held = spool.set_held(&b, true).unwrap();
    assert!(held.held);
    drop(spool);

    let spool = Spool::open(dir.path()).unwrap();
    let all = spool.load_all().unwrap();
    assert_eq!(all[0].1, st);
    assert_eq!(st.pending(&all[0].0), vec!["carol@example.org"]);
    assert!(all[1].1.held);
    spool.remove(&a).unwrap();
    spool.remove(&a).unwrap();
    assert_eq!(spool.load_all().unwrap().len(), 1);
    assert!(matches!(spool.read_body(&a), Err(SpoolError::NotFound(_))));
}

#[test]
fn leftover_tmp_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = new_message_id();
    spool.accept_blocking(&env(&id), b"ok\r\n").unwrap();
    drop(spool);
    // A crash between write and rename leaves a file in tmp/ (maybe half written).
    let half = new_message_id();
    std::fs::write(
        dir.path().join("tmp").join(format!("{half}.msg")),
        b"{\"id\":\"",
    )
    .unwrap();
    // Orphan sidecars (message removed, crash before the sidecars went).
    std::fs::write(
        dir.path().join("queue").join(format!("{half}.state")),
        b"{}",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("queue").join(format!("{half}.done")),
        b"\"x@example.net\"\n",
    )
    .unwrap();

    let spool = Spool::open(dir.path()).unwrap();
    let all = spool.load_all().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0.id, id);
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    for ext in ["state", "done"] {
        assert!(
            !dir.path()
                .join("queue")
                .join(format!("{half}.{ext}"))
                .exists()
        );
    }
}

/// A recipient recorded at its `250` stays delivered across a reopen (kill -9 and restart),
/// whatever the state sidecar (written later, or never) says; the record goes with the message.
#[test]
fn recorded_recipients_stay_delivered_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let id = new_message_id();
    spool.accept_blocking(&env(&id), b"x\r\n").unwrap();
    spool.record_delivered(&id, &["bob@example.net"]).unwrap();
    // A name that would break a line-based record stays one record.
    spool
        .record_delivered(&id, &["odd\nname@example.org"])
        .unwrap();
    assert_eq!(
        spool.read_done(&id).unwrap(),
        vec!["bob@example.net", "odd\nname@example.org"]
    );
    drop(spool);

    let spool = Spool::open(dir.path()).unwrap();
    let (e, mut st) = spool.load_all().unwrap().remove(0);
    // A sidecar written before the record (or none) says pending; the record wins.
    assert_eq!(st.pending(&e).len(), 2);
    let changed = st.mark_delivered(&e, &spool.read_done(&id).unwrap());
    assert_eq!(
        changed,
        vec!["bob@example.net"],
        "only recipients of the message"
    );
    assert_eq!(st.status("bob@example.net"), RcptStatus::Delivered);
    assert_eq!(st.pending(&e), vec!["carol@example.org"]);
    assert!(
        st.mark_delivered(&e, &spool.read_done(&id).unwrap())
            .is_empty()
    );

    spool.remove(&id).unwrap();
    assert!(!dir.path().join("queue").join(format!("{id}.done")).exists());
    assert!(spool.read_done(&id).unwrap().is_empty());
}

#[test]
fn second_open_is_refused_while_locked() {
    let dir = tempfile::tempdir().unwrap();
    let first = Spool::open(dir.path()).unwrap();
    assert!(matches!(
        Spool::open(dir.path()),
        Err(SpoolError::Locked(_))
    ));
    drop(first);
    assert!(Spool::open(dir.path()).is_ok());
}

#[test]
fn bad_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    assert!(matches!(
        spool.accept_blocking(&env("../x"), b""),
        Err(SpoolError::BadId(_))
    ));
    assert!(matches!(spool.read_body("a/b"), Err(SpoolError::BadId(_))));
}

/// Many concurrent accepts (group-committed directory fsync) all land.
#[test]
fn concurrent_accepts_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let spool = spool.clone();
            std::thread::spawn(move || {
                for _ in 0..10 {
                    spool
                        .accept_blocking(&env(&new_message_id()), b"body\r\n")
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(spool.load_all().unwrap().len(), 80);
}

/// Throughput probe (not a timed test): `cargo test -p outguard-store --release spool_accept_rate
/// -- --ignored --nocapture`. Concurrent accepts with real fsyncs, as sessions would do.
#[test]
#[ignore]
fn spool_accept_rate() {
    let dir = tempfile::Builder::new()
        .prefix("spool-bench")
        .tempdir_in(".")
        .unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    let body = vec![b'x'; 3000];
    for threads in [1usize, 8, 32, 64] {
        let per = 1600 / threads;
        let start = std::time::Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (spool, body) = (spool.clone(), body.clone());
                std::thread::spawn(move || {
                    for _ in 0..per {
                        spool
                            .accept_blocking(&env(&new_message_id()), &body)
                            .unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let rate = (per * threads) as f64 / start.elapsed().as_secs_f64();
        println!("spool accept: {threads:>2} concurrent writers: {rate:.0} msg/s");
    }
}
