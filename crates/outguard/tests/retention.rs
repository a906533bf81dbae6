//! `[retention]` in the real binary (issue 17): `check-config` refuses a bad window naming the
//! key (exit 64), and `serve` runs the `retention` task that prunes finished records older than
//! their window while younger ones and unfinished messages stay. The store-level rules, on
//! SQLite and PostgreSQL, are `crates/store/tests/retention.rs`.

mod common;

use std::time::Duration;

use common::{BIN, RelayProc, scene};
use outguard_store::Store;
use outguard_types::model::{MessageRecord, MessageState, Submitter};

const DAY: i64 = 86_400_000;

fn msg(id: &str, at: i64) -> MessageRecord {
    MessageRecord {
        id: id.into(),
        tenant: Some("a".into()),
        submitter: Submitter::Account("alice@a.example".into()),
        mail_from: "alice@a.example".into(),
        rcpts: vec!["x@dest.example".into()],
        header_from: None,
        message_id_header: None,
        subject: None,
        size: 10,
        received_at: at,
        state: MessageState::Queued,
        pool: None,
        class: None,
        score: None,
        node: "n".into(),
        body_digest: None,
    }
}

#[test]
fn check_config_refuses_a_bad_retention_window_by_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, key) in [
        ("[retention]\nmessages = \"5s\"\n", "retention.messages"),
        ("[retention]\ntrace = \"30\"\n", "retention.trace"),
        ("[retention]\nbatch = 0\n", "retention.batch"),
    ] {
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, text).expect("write");
        let out = std::process::Command::new(BIN)
            .arg("check-config")
            .arg(&f)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{text}: {err}");
        assert!(err.contains(key) && err.contains("line 2"), "{text}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prunes_old_finished_records_and_keeps_the_rest() {
    let sc = scene(
        "\n[retention]\ntrace = \"1day\"\nmessages = \"1day\"\naudit = \"1day\"\n\
         interval = \"1s\"\nbatch = 2\npause = \"10ms\"\n",
    )
    .await;
    sc.provision().await;
    let url = format!(
        "sqlite://{}?mode=rwc",
        sc.dir().join("data/outguard.db").display()
    );
    let store = Store::open(&url).await.expect("store");
    let now = outguard_types::time::now_ms();
    // Five old delivered messages (more than one batch), one young, one old but still held.
    let mut old = Vec::new();
    for i in 0..5 {
        let id = format!("old{i}");
        store
            .insert_message(&msg(&id, now - 2 * DAY - i))
            .await
            .unwrap();
        store
            .set_message_state(&id, MessageState::Delivered, None)
            .await
            .unwrap();
        old.push(id);
    }
    store
        .insert_message(&msg("young", now - DAY / 2))
        .await
        .unwrap();
    store
        .set_message_state("young", MessageState::Delivered, None)
        .await
        .unwrap();
    store
        .insert_message(&msg("held", now - 9 * DAY))
        .await
        .unwrap();
    store
        .set_message_state("held", MessageState::Held, None)
        .await
        .unwrap();
    store
        .audit("cli", "account.add", "old", "", None, now - 3 * DAY)
        .await
        .unwrap();
    store
        .audit("cli", "account.add", "young", "", None, now - 60_000)
        .await
        .unwrap();
    store.close().await;

    let _relay = RelayProc::start(sc.dir());
    let store = Store::open(&url).await.expect("store");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut left = 0;
        for id in &old {
            left += usize::from(store.message(id).await.unwrap().is_some());
        }
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} old delivered messages still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(store.message("young").await.unwrap().is_some());
    assert!(
        store.message("held").await.unwrap().is_some(),
        "an unfinished message is never pruned"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let audit: Vec<String> = store
            .audit_log(100)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.target)
            .collect();
        if !audit.contains(&"old".to_string()) {
            assert!(audit.contains(&"young".to_string()), "{audit:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "old audit row stays");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
