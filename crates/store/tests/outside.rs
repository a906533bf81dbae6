//! The "watching the outside" records on every backend: DNSBL check history and latest state
//! per (IP, zone), feedback-loop reports (kept byte for byte, attribution, listing), and the
//! trace-event cursor the bounce-rate watcher follows.

mod common;

use common::TestDb;
use outguard_store::{DnsblCheck, FblAttribution, FblRecord};
use outguard_types::model::{EventKind, TraceEvent};

const T0: i64 = 1_795_456_800_000;

fn check(ip: &str, zone: &str, at: i64, status: &str) -> DnsblCheck {
    DnsblCheck {
        ip: ip.into(),
        zone: zone.into(),
        checked_at: at,
        status: status.into(),
        code: (status == "listed").then(|| "127.0.0.2".to_string()),
        reason: None,
    }
}

async fn dnsbl_history_and_state(db: &TestDb) {
    let s = &db.store;
    s.record_dnsbl_check(&check("127.0.0.2", "bl.test", T0, "clean"))
        .await
        .unwrap();
    s.record_dnsbl_check(&check("127.0.0.2", "bl.test", T0 + 1, "listed"))
        .await
        .unwrap();
    s.record_dnsbl_check(&check("127.0.0.2", "zen.test", T0 + 1, "error"))
        .await
        .unwrap();
    s.record_dnsbl_check(&check("127.0.0.5", "bl.test", T0 + 2, "clean"))
        .await
        .unwrap();
    let state = s.dnsbl_state().await.unwrap();
    assert_eq!(state.len(), 3, "one row per (IP, zone): {state:?}");
    assert_eq!(state[0], check("127.0.0.2", "bl.test", T0 + 1, "listed"));
    let hist = s.dnsbl_history(Some("127.0.0.2"), 10).await.unwrap();
    assert_eq!(hist.len(), 3);
    assert!(hist[0].checked_at >= hist[2].checked_at, "newest first");
    assert_eq!(s.dnsbl_history(None, 2).await.unwrap().len(), 2);
}
store_test!(dnsbl_history_and_state);

async fn fbl_reports_are_kept_exactly(db: &TestDb) {
    let s = &db.store;
    let raw = b"Subject: x\r\n\r\n\xff\xfe not utf-8".to_vec();
    let rec = FblRecord {
        id: "r1".into(),
        attributed: Some(FblAttribution {
            message_id: "m1".into(),
            account: Some("alice@a.example".into()),
            tenant: Some("a".into()),
        }),
        feedback_type: "abuse".into(),
        source_ip: Some("127.0.0.2".into()),
        received_at: T0,
        malformed: None,
        fields: serde_json::json!({"user_agent": "X/1"}),
        trusted: true,
        trusted_by: None,
        raw: String::new(),
    };
    s.insert_fbl_report(&rec, &raw).await.unwrap();
    let bad = FblRecord {
        id: "r2".into(),
        attributed: None,
        feedback_type: "unknown".into(),
        malformed: Some("not an ARF report".into()),
        received_at: T0 + 1,
        ..rec.clone()
    };
    s.insert_fbl_report(&bad, b"junk").await.unwrap();
    let got = s.fbl_report("r1").await.unwrap().expect("r1");
    assert_eq!(got.attributed, rec.attributed);
    assert_eq!(got.raw, String::from_utf8_lossy(&raw));
    assert!(s.fbl_report("nope").await.unwrap().is_none());
    let all = s.list_fbl_reports(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r2", "r1"]
    );
    assert_eq!(s.list_fbl_reports(Some("a"), 10).await.unwrap().len(), 1);
    assert!(
        s.insert_fbl_report(&rec, &raw).await.is_err(),
        "ids are unique"
    );
}
store_test!(fbl_reports_are_kept_exactly);

/// SPEC §9: untrusted reports are kept but listed apart and never counted on the dashboard;
/// lists carry no raw bodies; what a trusted report counted is claimed once.
async fn fbl_trust_and_dedupe(db: &TestDb) {
    let s = &db.store;
    let base = FblRecord {
        id: "t1".into(),
        attributed: Some(FblAttribution {
            message_id: "m1".into(),
            account: Some("alice@a.example".into()),
            tenant: Some("a".into()),
        }),
        feedback_type: "abuse".into(),
        source_ip: None,
        received_at: T0,
        malformed: None,
        fields: serde_json::Value::Null,
        trusted: true,
        trusted_by: Some("192.0.2.0/24".into()),
        raw: String::new(),
    };
    let anon = FblRecord {
        id: "u1".into(),
        received_at: T0 + 1,
        trusted: false,
        trusted_by: None,
        ..base.clone()
    };
    s.insert_fbl_report(&base, b"trusted raw").await.unwrap();
    s.insert_fbl_report(&anon, b"anonymous raw").await.unwrap();
    let all = s.list_fbl_reports(Some("a"), 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|r| r.raw.is_empty()), "metadata only");
    let trusted = s.list_fbl_reports_where(Some("a"), true, 10).await.unwrap();
    assert_eq!(trusted.len(), 1);
    assert_eq!(trusted[0].trusted_by.as_deref(), Some("192.0.2.0/24"));
    assert_eq!(
        s.list_fbl_reports_where(None, true, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let got = s.fbl_report("u1").await.unwrap().expect("u1");
    assert!(!got.trusted);
    assert_eq!(
        s.fbl_report_raw("u1").await.unwrap().as_deref(),
        Some(&b"anonymous raw"[..])
    );
    assert!(s.fbl_report_raw("nope").await.unwrap().is_none());
    let hours = s
        .complaints_by_hour(Some("a"), T0 - 1, T0 + 10)
        .await
        .unwrap();
    assert_eq!(hours.iter().map(|(_, n)| n).sum::<u64>(), 1, "{hours:?}");

    assert!(
        s.claim_fbl_count("m1", "complaint", "192.0.2.0/24", T0)
            .await
            .unwrap()
    );
    assert!(
        !s.claim_fbl_count("m1", "complaint", "192.0.2.0/24", T0 + 5)
            .await
            .unwrap()
    );
    assert!(
        s.claim_fbl_count("m1", "complaint", "dkim:isp.example", T0)
            .await
            .unwrap()
    );
    assert!(
        s.claim_fbl_count("m2", "complaint", "192.0.2.0/24", T0)
            .await
            .unwrap()
    );
    assert!(
        s.claim_fbl_count("m1", "hard_bounce", "x@dest.example", T0)
            .await
            .unwrap()
    );
    assert!(
        !s.claim_fbl_count("m1", "hard_bounce", "x@dest.example", T0)
            .await
            .unwrap()
    );
}
store_test!(fbl_trust_and_dedupe);

async fn bounce_cursor(db: &TestDb) {
    let s = &db.store;
    let start = s.last_event_seq().await.unwrap();
    let ev = |id: &str, kind| TraceEvent {
        message_id: id.into(),
        at: T0,
        kind,
        detail: "d".into(),
        data: serde_json::json!({"rcpts": ["a@x.example", "b@x.example"]}),
    };
    s.append_events(&[
        ev("m1", EventKind::Delivered),
        ev("m1", EventKind::Bounced),
        ev("m2", EventKind::Bounced),
    ])
    .await
    .unwrap();
    let got = s.events_after(EventKind::Bounced, start, 10).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1.message_id, "m1");
    assert_eq!(got[0].1.data["rcpts"].as_array().map(Vec::len), Some(2));
    let after = s
        .events_after(EventKind::Bounced, got[0].0, 10)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(
        s.events_after(EventKind::Bounced, got[1].0, 10)
            .await
            .unwrap()
            .len(),
        0
    );
    assert!(s.last_event_seq().await.unwrap() >= got[1].0);
}
store_test!(bounce_cursor);
