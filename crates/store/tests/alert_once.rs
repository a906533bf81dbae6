//! Alerts once per cluster (SPEC §3/§6) on every backend: however many nodes race to record
//! the same alert (same kind, subject, cause and UTC day), `insert_alert_once` stores one row
//! and exactly one racer wins (and notifies); another cause, subject or day is a new alert.
//! Also the DNSBL monitor's per-IP state, saved and loaded back as it was.

mod common;

use std::collections::BTreeMap;

use common::TestDb;
use outguard_policy::alerts::dedup_key;
use outguard_policy::{Alert, AlertKind};
use outguard_store::{DnsblListing, DnsblTrack};

// 2026-11-23 18:00:00 UTC
const NOW: i64 = 1_795_456_800_000;
const DAY: i64 = 24 * 3600 * 1000;

fn listed(ip: &str, zone: &str, at: i64) -> (Alert, String) {
    let alert = Alert::new(
        AlertKind::IpListed,
        None,
        None,
        format!("IP {ip} listed on {zone} (seen at {at})"),
        Vec::new(),
        at,
    );
    (alert, dedup_key(AlertKind::IpListed, ip, zone, at))
}

async fn one_winner_among_racers(db: &TestDb) {
    // 16 racers on 4 handles (as if 4 nodes), the same listing seen at slightly different times.
    let mut handles = vec![db.store.clone()];
    for _ in 0..3 {
        handles.push(
            outguard_store::Store::open(&db.url)
                .await
                .expect("second handle"),
        );
    }
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = handles[i % handles.len()].clone();
        tasks.push(tokio::spawn(async move {
            let (a, key) = listed("127.0.0.2", "bl.test", NOW + i as i64);
            s.insert_alert_once(&a, &key).await
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        if let Some(id) = t.await.expect("task").expect("insert") {
            won.push(id);
        }
    }
    assert_eq!(won.len(), 1, "exactly one racer records it: {won:?}");
    let rows = db
        .store
        .list_alerts(None, Some(AlertKind::IpListed), 100)
        .await
        .expect("list");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].id, won[0]);

    // Another zone, another IP, the next UTC day: new alerts. Plain inserts are never deduped.
    for (ip, zone, at) in [
        ("127.0.0.2", "zen.test", NOW),
        ("127.0.0.5", "bl.test", NOW),
        ("127.0.0.2", "bl.test", NOW + DAY),
    ] {
        let (a, key) = listed(ip, zone, at);
        assert!(
            db.store
                .insert_alert_once(&a, &key)
                .await
                .expect("insert")
                .is_some(),
            "{ip} {zone} {at}"
        );
    }
    let (a, key) = listed("127.0.0.2", "bl.test", NOW + 5);
    assert!(
        db.store
            .insert_alert_once(&a, &key)
            .await
            .expect("insert")
            .is_none()
    );
    db.store.insert_alert(&a).await.expect("plain insert");
    db.store.insert_alert(&a).await.expect("plain insert again");
    let rows = db
        .store
        .list_alerts(None, Some(AlertKind::IpListed), 100)
        .await
        .expect("list");
    assert_eq!(rows.len(), 6, "{rows:?}");
    for h in handles.into_iter().skip(1) {
        h.close().await;
    }
}
store_test!(one_winner_among_racers);

async fn dnsbl_tracks_round_trip(db: &TestDb) {
    assert!(db.store.dnsbl_tracks().await.expect("empty").is_empty());
    let mut zones = BTreeMap::new();
    zones.insert(
        "bl.test".to_string(),
        DnsblListing {
            code: Some("127.0.0.2".into()),
            reason: Some("listed: spam".into()),
        },
    );
    let mut t = DnsblTrack {
        ip: "127.0.0.2".into(),
        listed: true,
        zones,
        clean_streak: 1,
        drained: true,
        updated_at: NOW,
    };
    db.store.save_dnsbl_track(&t).await.expect("save");
    let other = DnsblTrack {
        ip: "127.0.0.5".into(),
        updated_at: NOW,
        ..DnsblTrack::default()
    };
    db.store.save_dnsbl_track(&other).await.expect("save");
    assert_eq!(
        db.store.dnsbl_tracks().await.expect("load"),
        vec![t.clone(), other.clone()]
    );
    // Cleared: the same row is replaced.
    t.listed = false;
    t.drained = false;
    t.clean_streak = 0;
    t.zones.clear();
    t.updated_at = NOW + 1;
    db.store.save_dnsbl_track(&t).await.expect("save");
    assert_eq!(db.store.dnsbl_tracks().await.expect("load"), vec![t, other]);
}
store_test!(dnsbl_tracks_round_trip);
