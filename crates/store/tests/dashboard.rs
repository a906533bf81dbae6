//! The dashboard's grouped queries (volume per hour/state/pool, top senders, complaints) and the
//! web UI's persistent sessions, on every backend.

mod common;

use common::TestDb;
use outguard_store::{FblAttribution, FblRecord};
use outguard_types::model::{MessageRecord, MessageState, Role, Submitter};
use outguard_types::verdict::Class;

const H: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000 / H * H;

fn msg(id: &str, tenant: &str, from: &str, at: i64, state: MessageState) -> MessageRecord {
    MessageRecord {
        id: id.into(),
        tenant: Some(tenant.into()),
        submitter: Submitter::Account(from.into()),
        mail_from: from.into(),
        rcpts: vec!["x@dest.example".into()],
        header_from: None,
        message_id_header: None,
        subject: None,
        size: 10,
        received_at: at,
        state,
        pool: Some(
            if state == MessageState::Quarantined {
                "high-risk"
            } else {
                "regular"
            }
            .into(),
        ),
        class: Some(if state == MessageState::Quarantined {
            Class::Spam
        } else {
            Class::Clean
        }),
        score: Some(1.0),
        node: "n".into(),
        body_digest: None,
    }
}

fn report(id: &str, tenant: Option<&str>, account: &str, at: i64, kind: &str) -> FblRecord {
    FblRecord {
        id: id.into(),
        attributed: tenant.map(|t| FblAttribution {
            message_id: format!("m-{id}"),
            account: Some(account.into()),
            tenant: Some(t.into()),
        }),
        feedback_type: kind.into(),
        source_ip: None,
        received_at: at,
        malformed: None,
        fields: serde_json::json!({}),
        trusted: true,
        trusted_by: None,
        raw: String::new(),
    }
}

async fn grouped_volume_and_complaints(db: &TestDb) {
    let s = &db.store;
    let d = MessageState::Delivered;
    for m in [
        msg("1", "a", "x@a", T0 + 5, d),
        msg("2", "a", "x@a", T0 + 10, d),
        msg("3", "a", "y@a", T0 + H + 1, MessageState::Quarantined),
        msg("4", "a", "y@a", T0 + H + 2, MessageState::Bounced),
        msg("5", "b", "z@b", T0 + 7, d),
        msg("6", "a", "x@a", T0 - 1, d), // before the window
    ] {
        s.insert_message(&m).await.expect("insert");
    }
    // The relay's own notice to tenant a: the service's mail, not the tenant's traffic.
    let mut notice = msg("7", "a", "postmaster@relay.test", T0 + 6, d);
    notice.submitter = Submitter::System;
    s.insert_message(&notice).await.expect("insert");
    let a = s
        .hourly_volume(Some("a"), T0, T0 + 2 * H)
        .await
        .expect("volume");
    let got: Vec<(i64, &str, Option<&str>, u64, u64)> = a
        .iter()
        .map(|v| {
            (
                v.hour - T0,
                v.state.as_str(),
                v.pool.as_deref(),
                v.messages,
                v.spam,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "delivered", Some("regular"), 2, 0),
            (H, "bounced", Some("regular"), 1, 0),
            (H, "quarantined", Some("high-risk"), 1, 1),
        ]
    );
    let all = s.hourly_volume(None, T0, T0 + 2 * H).await.expect("volume");
    assert_eq!(all.iter().map(|v| v.messages).sum::<u64>(), 5);

    let top = s
        .top_senders(Some("a"), T0, T0 + 2 * H, 10)
        .await
        .expect("top");
    let top: Vec<(&str, u64, u64)> = top
        .iter()
        .map(|t| (t.sender.as_str(), t.messages, t.spam))
        .collect();
    assert_eq!(top, vec![("x@a", 2, 0), ("y@a", 2, 1)]);
    assert_eq!(
        s.top_senders(None, T0, T0 + 2 * H, 1)
            .await
            .expect("top")
            .len(),
        1
    );

    for (r, raw) in [
        (report("f1", Some("a"), "x@a", T0 + 1, "abuse"), b"r1"),
        (report("f2", Some("a"), "x@a", T0 + H + 1, "abuse"), b"r2"),
        (
            report("f3", Some("a"), "y@a", T0 + H + 2, "not-spam"),
            b"r3",
        ),
        (report("f4", Some("b"), "z@b", T0 + 3, "abuse"), b"r4"),
        (report("f5", None, "", T0 + 4, "abuse"), b"r5"),
    ] {
        s.insert_fbl_report(&r, raw).await.expect("fbl");
    }
    let by_hour = s
        .complaints_by_hour(Some("a"), T0, T0 + 2 * H)
        .await
        .expect("c");
    assert_eq!(
        by_hour,
        vec![(T0, 1), (T0 + H, 1)],
        "not-spam is no complaint"
    );
    let everyone = s.complaints_by_hour(None, T0, T0 + 2 * H).await.expect("c");
    assert_eq!(everyone, vec![(T0, 3), (T0 + H, 1)]);
    let by_account = s
        .complaints_by_account(None, T0, T0 + 2 * H, 10)
        .await
        .expect("c");
    assert_eq!(
        by_account,
        vec![("a".into(), "x@a".into(), 2), ("b".into(), "z@b".into(), 1)]
    );
    let only_b = s
        .complaints_by_account(Some("b"), T0, T0 + 2 * H, 10)
        .await
        .expect("c");
    assert_eq!(only_b, vec![("b".into(), "z@b".into(), 1)]);
}
store_test!(grouped_volume_and_complaints);

async fn ui_sessions_persist_expire_and_follow_the_token(db: &TestDb) {
    let s = &db.store;
    s.add_tenant("a", 1).await.expect("tenant");
    let (tok, _) = s
        .create_token(Role::TenantAdmin, Some("a"), 1)
        .await
        .expect("token");
    s.create_ui_session("sid-1", &tok.id, "csrf-1", 100, 1_000)
        .await
        .expect("create");
    let got = s
        .ui_session("sid-1", 200)
        .await
        .expect("get")
        .expect("live");
    assert_eq!(
        (got.token.id.as_str(), got.token.role),
        (tok.id.as_str(), Role::TenantAdmin)
    );
    assert_eq!(got.token.tenant.as_deref(), Some("a"));
    assert_eq!(
        (got.csrf.as_str(), got.created_at, got.expires_at),
        ("csrf-1", 100, 1_000)
    );
    s.touch_ui_session("sid-1", 300).await.expect("touch");
    assert_eq!(
        s.ui_session("sid-1", 301)
            .await
            .expect("get")
            .expect("live")
            .last_seen,
        300
    );
    // The id itself is never stored, only its digest.
    let other = s.ui_session("SID-1", 200).await.expect("get");
    assert!(other.is_none());
    // Expiry is enforced by the lookup; pruning removes the row.
    assert!(s.ui_session("sid-1", 1_000).await.expect("get").is_none());
    assert_eq!(s.prune_ui_sessions(1_000).await.expect("prune"), 1);
    // Logout deletes; revoking the token ends (and deletes) its sessions.
    s.create_ui_session("sid-2", &tok.id, "c2", 100, 1_000)
        .await
        .expect("create");
    s.create_ui_session("sid-3", &tok.id, "c3", 100, 1_000)
        .await
        .expect("create");
    s.delete_ui_session("sid-2").await.expect("delete");
    assert!(s.ui_session("sid-2", 200).await.expect("get").is_none());
    assert!(s.ui_session("sid-3", 200).await.expect("get").is_some());
    s.revoke_token(&tok.id).await.expect("revoke");
    assert!(s.ui_session("sid-3", 200).await.expect("get").is_none());
    assert_eq!(
        s.prune_ui_sessions(i64::MAX).await.expect("prune"),
        0,
        "cascaded"
    );
    // A session for a token that does not exist is refused by the foreign key.
    assert!(
        s.create_ui_session("sid-4", "nope", "c", 1, 2)
            .await
            .is_err()
    );
}
store_test!(ui_sessions_persist_expire_and_follow_the_token);
