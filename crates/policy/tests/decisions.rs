//! The relay's seam: MAIL, RCPT and after-scan decisions on the embedded counters, with the
//! exact replies and the numbers for the trace.

use outguard_policy::counters::{HOUR_MS, MINUTE_MS};
use outguard_policy::restriction::{check_lift, lift};
use outguard_policy::*;
use outguard_store::memory_counters::MemoryCounters;
use outguard_types::model::Role;
use outguard_types::policy::{EffectivePolicy, PolicySettings, ThresholdAction};
use outguard_types::verdict::{Class, Reason};

// 2026-11-23 18:00:00 UTC
const NOW: i64 = 1_795_456_800_000;
const ACCT: SenderRef<'static> = SenderRef::Account("bulk@t.example");

fn eff(f: impl FnOnce(&mut PolicySettings)) -> EffectivePolicy {
    let mut s = PolicySettings::default();
    f(&mut s);
    s.resolve(&PolicySettings::default(), &PolicySettings::default())
}

fn rcpt(sender: SenderRef<'static>, internal: bool) -> RcptRequest<'static> {
    RcptRequest {
        sender,
        tenant: "t",
        internal,
        n: 1,
    }
}

async fn send(
    c: &MemoryCounters,
    req: &RcptRequest<'_>,
    e: &EffectivePolicy,
    history: &[Restriction],
    times: u32,
    now: i64,
) -> Vec<RcptDecision> {
    let mut out = Vec::new();
    for i in 0..times {
        out.push(
            reserve_recipient(c, req, e, history, now + i64::from(i))
                .await
                .unwrap(),
        );
    }
    out
}

fn admitted(d: &[RcptDecision]) -> usize {
    d.iter()
        .filter(|d| matches!(d, RcptDecision::Admit { .. }))
        .count()
}

#[tokio::test]
async fn hourly_external_limit_refuses_the_crossing_rcpt_and_restricts_for_today() {
    let c = MemoryCounters::new();
    let e = eff(|s| s.recipient_limit_external_per_hour = Some(5));
    let d = send(&c, &rcpt(ACCT, false), &e, &[], 5, NOW).await;
    assert_eq!(admitted(&d), 5);
    // Internal recipients are counted apart.
    assert_eq!(
        admitted(&send(&c, &rcpt(ACCT, true), &e, &[], 3, NOW).await),
        3
    );
    let d = reserve_recipient(&c, &rcpt(ACCT, false), &e, &[], NOW + 10)
        .await
        .unwrap();
    let RcptDecision::Refuse {
        refusal,
        limit,
        action,
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        refusal.reject.to_string(),
        "550 5.2.2 Submission quota exceeded"
    );
    assert_eq!(limit, LimitKind::ExternalPerHour);
    assert_eq!(refusal.detail, "external recipients in last hour: 6 > 5");
    let Some(Action::Restrict { restriction }) = action else {
        panic!("{action:?}")
    };
    assert_eq!(
        restriction.subject,
        Subject::Account("bulk@t.example".into())
    );
    assert_eq!(restriction.until, Some(next_utc_midnight(NOW)));
    assert_eq!(
        restriction.reason.counts[0].to_string(),
        "external recipients in last hour: 6 > 5"
    );
    assert_eq!(
        Action::Restrict {
            restriction: restriction.clone()
        }
        .alert()
        .kind,
        AlertKind::UserRestricted
    );

    // Later transactions get 5.1.8 at MAIL while it lasts; the next day it is over.
    let history = vec![restriction.clone()];
    let r = admit_mail(&c, &history, &ACCT, "t", 30, NOW + 20)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        r.reject.to_string(),
        "550 5.1.8 Access denied, bad outbound sender"
    );
    assert!(
        admit_mail(&c, &history, &ACCT, "t", 30, next_utc_midnight(NOW))
            .await
            .unwrap()
            .is_ok()
    );
    // Another account of the tenant is not affected.
    assert!(check_sender(&history, &SenderRef::Account("other@t.example"), "t", NOW).is_ok());

    // Lifted: it sends again at once, and the same limit does not restrict it again today.
    let lifted = vec![lift(
        &restriction,
        "admin@t.example",
        "password changed",
        NOW + 30,
    )];
    assert!(check_sender(&lifted, &ACCT, "t", NOW + 31).is_ok());
    let d = reserve_recipient(&c, &rcpt(ACCT, false), &e, &lifted, NOW + 40)
        .await
        .unwrap();
    let RcptDecision::Admit {
        actions, measures, ..
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        measures[0].to_string(),
        "external recipients in last hour: 6 > 5"
    );
    assert!(
        matches!(&actions[..], [Action::Alert { alert }] if alert.summary.contains("not restricted again"))
    );
}

#[tokio::test]
async fn daily_limit_gives_5_1_90_and_block_user_has_no_end() {
    let c = MemoryCounters::new();
    let e = eff(|s| {
        s.recipient_limit_per_day = Some(4);
        s.action_when_threshold_reached = Some(ThresholdAction::BlockUser);
    });
    assert_eq!(
        admitted(&send(&c, &rcpt(ACCT, false), &e, &[], 2, NOW).await),
        2
    );
    assert_eq!(
        admitted(&send(&c, &rcpt(ACCT, true), &e, &[], 2, NOW + 5 * HOUR_MS).await),
        2
    );
    let d = reserve_recipient(&c, &rcpt(ACCT, true), &e, &[], NOW + 6 * HOUR_MS)
        .await
        .unwrap();
    let RcptDecision::Refuse {
        refusal,
        action: Some(Action::Restrict { restriction }),
        ..
    } = d
    else {
        panic!("{d:?}")
    };
    assert!(refusal.reject.to_string().starts_with(
        "550 5.1.90 Your message can't be sent because you've reached your daily limit"
    ));
    assert_eq!(restriction.until, None);
    // Already restricted: a refusal, but no second restriction.
    let d = reserve_recipient(&c, &rcpt(ACCT, true), &e, &[restriction], NOW + 6 * HOUR_MS)
        .await
        .unwrap();
    assert!(matches!(d, RcptDecision::Refuse { action: None, .. }));
}

#[tokio::test]
async fn alert_action_admits_and_alerts_once_at_the_crossing() {
    let c = MemoryCounters::new();
    let e = eff(|s| {
        s.recipient_limit_external_per_hour = Some(3);
        s.action_when_threshold_reached = Some(ThresholdAction::Alert);
    });
    let d = send(&c, &rcpt(ACCT, false), &e, &[], 6, NOW).await;
    assert_eq!(admitted(&d), 6, "alert never refuses");
    let alerts: Vec<usize> = d
        .iter()
        .enumerate()
        .filter(|(_, d)| matches!(d, RcptDecision::Admit { actions, .. } if !actions.is_empty()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        alerts,
        vec![3],
        "only the 4th RCPT (the crossing) raises the alert"
    );
    let RcptDecision::Admit { actions, .. } = &d[3] else {
        panic!()
    };
    let Action::Alert { alert } = &actions[0] else {
        panic!()
    };
    assert_eq!(alert.kind, AlertKind::SendingLimitExceeded);
    assert_eq!(
        alert.measures[0].to_string(),
        "external recipients in last hour: 4 > 3"
    );
}

#[tokio::test]
async fn the_ceiling_always_refuses_even_with_alert() {
    let c = MemoryCounters::new();
    let e = eff(|s| {
        s.recipient_limit_external_per_hour = Some(10_000);
        s.recipient_limit_per_day = Some(10_000);
        s.action_when_threshold_reached = Some(ThresholdAction::Alert);
    });
    let big = RcptRequest {
        n: 9_999,
        ..rcpt(ACCT, false)
    };
    assert!(matches!(
        reserve_recipient(&c, &big, &e, &[], NOW).await.unwrap(),
        RcptDecision::Admit { .. }
    ));
    assert_eq!(
        admitted(&send(&c, &rcpt(ACCT, false), &e, &[], 1, NOW + 1).await),
        1
    );
    let d = reserve_recipient(&c, &rcpt(ACCT, true), &e, &[], NOW + 2)
        .await
        .unwrap();
    let RcptDecision::Refuse {
        refusal,
        limit,
        action,
    } = d
    else {
        panic!("{d:?}")
    };
    assert_eq!(
        (refusal.reject.enhanced.as_str(), limit, action),
        ("5.1.90", LimitKind::DailyCeiling, None)
    );
}

#[tokio::test]
async fn connectors_have_only_their_own_limit() {
    let c = MemoryCounters::new();
    let e = eff(|s| s.recipient_limit_external_per_hour = Some(2));
    let free = SenderRef::Connector {
        cidr: "192.0.2.0/24",
        limit_per_hour: None,
    };
    assert_eq!(
        admitted(&send(&c, &rcpt(free, false), &e, &[], 50, NOW).await),
        50,
        "no account limits"
    );
    assert!(
        admit_mail(&c, &[], &free, "t", 1, NOW)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        admit_mail(&c, &[], &free, "t", 1, NOW)
            .await
            .unwrap()
            .is_ok(),
        "no message rate"
    );
    let limited = SenderRef::Connector {
        cidr: "198.51.100.0/24",
        limit_per_hour: Some(3),
    };
    let d = send(&c, &rcpt(limited, false), &e, &[], 4, NOW).await;
    assert_eq!(admitted(&d), 3);
    let RcptDecision::Refuse {
        refusal,
        action: Some(Action::Restrict { restriction }),
        ..
    } = &d[3]
    else {
        panic!("{:?}", d[3])
    };
    assert_eq!(refusal.reject.enhanced, "5.2.2");
    assert_eq!(
        restriction.subject,
        Subject::Connector("198.51.100.0/24".into())
    );
    let r = check_sender(std::slice::from_ref(restriction), &limited, "t", NOW + 1).unwrap_err();
    assert_eq!(
        r.reject.to_string(),
        "550 5.7.711 Access denied, bad inbound connector"
    );
}

#[tokio::test]
async fn message_rate_defers_the_31st_message_in_a_minute() {
    let c = MemoryCounters::new();
    for i in 0..30 {
        assert!(
            admit_mail(&c, &[], &ACCT, "t", 30, NOW + i)
                .await
                .unwrap()
                .is_ok()
        );
    }
    let r = admit_mail(&c, &[], &ACCT, "t", 30, NOW + 100)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!((r.reject.code, r.reject.enhanced.as_str()), (451, "4.7.0"));
    assert_eq!(r.detail, "messages in last minute: 31 > 30");
    assert!(
        admit_mail(&c, &[], &ACCT, "t", 30, NOW + MINUTE_MS)
            .await
            .unwrap()
            .is_ok()
    );
}

fn reasons() -> Vec<Reason> {
    let r = |t: &str, w| Reason {
        tag: t.into(),
        weight: w,
        detail: String::new(),
    };
    vec![
        r("PHISH_URL", 5.0),
        r("DKIM_PASS", -1.0),
        r("FREEMAIL_REPLYTO", 2.0),
        r("ALL_CAPS", 1.0),
        r("X", 0.5),
    ]
}

fn scanned<'a>(
    sender: SenderRef<'a>,
    tenant: &'a str,
    class: Class,
    reasons: &'a [Reason],
    id: &'a str,
) -> ScannedMessage<'a> {
    ScannedMessage {
        sender,
        tenant,
        class,
        reasons,
        message_id: id,
    }
}

#[tokio::test]
async fn spam_per_hour_restricts_with_the_spam_action_and_reasons() {
    let c = MemoryCounters::new();
    let e = eff(|s| s.spam_ratio = Some(1.0));
    let rs = reasons();
    for i in 0..9 {
        let o = after_verdict(
            &c,
            &scanned(ACCT, "t", Class::Spam, &rs, "m"),
            &e,
            &[],
            NOW + i,
        )
        .await
        .unwrap();
        assert!(o.actions.is_empty(), "#{i}: {o:?}");
    }
    let o = after_verdict(
        &c,
        &scanned(ACCT, "t", Class::Suspicious, &rs, "m10"),
        &e,
        &[],
        NOW + 20,
    )
    .await
    .unwrap();
    let [Action::Restrict { restriction }] = &o.actions[..] else {
        panic!("{o:?}")
    };
    assert_eq!(restriction.until, None, "block_user by default for spam");
    assert_eq!(restriction.reason.limit, LimitKind::SpamPerHour);
    assert_eq!(
        restriction.reason.top_spam_reasons,
        vec!["PHISH_URL", "FREEMAIL_REPLYTO", "ALL_CAPS"]
    );
    assert_eq!(restriction.reason.sample_message_ids, vec!["m10"]);
    // The 10th reaches 10/hour: it is accepted and the action is taken now (issue 24).
    assert_eq!(
        o.measures[0].to_string(),
        "spam messages in last hour: 10 = 10 (limit reached)"
    );
    // Clean mail does not count.
    let c2 = MemoryCounters::new();
    for i in 0..30 {
        let o = after_verdict(
            &c2,
            &scanned(ACCT, "t", Class::Clean, &rs, "m"),
            &e,
            &[],
            NOW + i,
        )
        .await
        .unwrap();
        assert!(o.actions.is_empty());
    }
}

#[tokio::test]
async fn spam_ratio_needs_ten_messages_then_more_than_half() {
    let c = MemoryCounters::new();
    let e = eff(|s| {
        s.spam_messages_per_hour = Some(1000);
        s.action_when_spam_threshold_reached = Some(ThresholdAction::BlockUserForToday);
    });
    let rs = reasons();
    let classes = [
        Class::Spam,
        Class::Spam,
        Class::Spam,
        Class::Spam,
        Class::Spam,
        Class::Spam,
        Class::Clean,
        Class::Clean,
        Class::Clean,
    ];
    for (i, class) in classes.into_iter().enumerate() {
        let o = after_verdict(
            &c,
            &scanned(ACCT, "t", class, &rs, "m"),
            &e,
            &[],
            NOW + i as i64,
        )
        .await
        .unwrap();
        assert!(o.actions.is_empty(), "fewer than 10 sent: no ratio yet");
    }
    let o = after_verdict(
        &c,
        &scanned(ACCT, "t", Class::Spam, &rs, "m10"),
        &e,
        &[],
        NOW + 10,
    )
    .await
    .unwrap();
    let [Action::Restrict { restriction }] = &o.actions[..] else {
        panic!("{o:?}")
    };
    assert_eq!(restriction.reason.limit, LimitKind::SpamRatio);
    assert_eq!(restriction.until, Some(next_utc_midnight(NOW)));
    assert_eq!(
        restriction.reason.counts[0].to_string(),
        "spam among last 10 messages: 7 > 5"
    );
}

#[tokio::test]
async fn tenant_spam_threshold_restricts_the_whole_tenant_only() {
    let c = MemoryCounters::new();
    let e = eff(|s| {
        s.tenant_spam_messages_per_hour = Some(5);
        s.spam_messages_per_hour = Some(1000);
        s.spam_ratio = Some(1.0);
    });
    let rs = reasons();
    let mut actions = Vec::new();
    // The 5th spam reaches 5/hour and restricts; nothing before it does.
    for i in 0..5 {
        // Spread over accounts and a connector: the tenant aggregate counts them all.
        let sender = match i % 3 {
            0 => SenderRef::Account("a@t.example"),
            1 => SenderRef::Account("b@t.example"),
            _ => SenderRef::Connector {
                cidr: "192.0.2.0/24",
                limit_per_hour: None,
            },
        };
        let o = after_verdict(
            &c,
            &scanned(sender, "t", Class::Spam, &rs, "m"),
            &e,
            &[],
            NOW + i,
        )
        .await
        .unwrap();
        actions.extend(o.actions);
    }
    let [Action::Restrict { restriction }] = &actions[..] else {
        panic!("{actions:?}")
    };
    assert_eq!(restriction.subject, Subject::Tenant("t".into()));
    assert_eq!(restriction.until, None);
    assert_eq!(
        Action::Restrict {
            restriction: restriction.clone()
        }
        .alert()
        .kind,
        AlertKind::TenantRestricted
    );
    let history = vec![restriction.clone()];
    for who in [
        SenderRef::Account("a@t.example"),
        SenderRef::Account("new@t.example"),
        SenderRef::Connector {
            cidr: "192.0.2.0/24",
            limit_per_hour: None,
        },
    ] {
        let r = check_sender(&history, &who, "t", NOW + HOUR_MS * 48).unwrap_err();
        assert_eq!(
            r.reject.to_string(),
            "550 5.7.705 Access denied, tenant has exceeded threshold"
        );
    }
    assert!(
        check_sender(&history, &SenderRef::Account("a@u.example"), "u", NOW).is_ok(),
        "other tenants unaffected"
    );
    // Other tenant's spam counter is separate.
    let o = after_verdict(
        &c,
        &scanned(
            SenderRef::Account("x@u.example"),
            "u",
            Class::Spam,
            &rs,
            "m",
        ),
        &e,
        &[],
        NOW,
    )
    .await
    .unwrap();
    assert!(o.actions.is_empty());
}

/// SPEC §9: a tenant's forwarded mail from unregistered domains, then the block and its lift.
const UNREG_NOW: i64 = 1_795_456_800_000;

#[tokio::test]
async fn unregistered_allowance_then_block_then_operator_lift() {
    let c = MemoryCounters::new();
    let mut history = Vec::new();
    for i in 0..3 {
        let d = admit_unregistered(&c, "t", 3, &history, UNREG_NOW + i)
            .await
            .unwrap();
        assert!(matches!(d, UnregisteredDecision::Admit(_)), "message {i}");
    }
    let UnregisteredDecision::Refuse { refusal, action } =
        admit_unregistered(&c, "t", 3, &history, UNREG_NOW + 5)
            .await
            .unwrap()
    else {
        panic!("the 4th message must be refused");
    };
    assert_eq!(
        (refusal.reject.code, refusal.reject.enhanced.as_str()),
        (550, "5.7.750")
    );
    let Some(Action::Restrict { restriction: r }) = action else {
        panic!("the tenant must be blocked");
    };
    assert_eq!(r.subject, Subject::Tenant("t".into()));
    assert_eq!(r.until, None, "until an operator lifts it");
    assert_eq!(r.reject().enhanced, "5.7.750");
    assert!(check_lift(&r, Role::TenantAdmin, 0, 3, "please", UNREG_NOW).is_err());
    assert!(check_lift(&r, Role::Operator, 0, 3, "checked", UNREG_NOW).is_ok());
    // While blocked, no second restriction is made.
    history.push(r.clone());
    let d = admit_unregistered(&c, "t", 3, &history, UNREG_NOW + 6)
        .await
        .unwrap();
    assert!(matches!(
        d,
        UnregisteredDecision::Refuse { action: None, .. }
    ));
    // Lifted by an operator: not blocked again today, but the allowance still holds.
    history[0] = lift(&r, "operator", "checked", UNREG_NOW + 7);
    let d = admit_unregistered(&c, "t", 3, &history, UNREG_NOW + 8)
        .await
        .unwrap();
    assert!(matches!(
        d,
        UnregisteredDecision::Refuse { action: None, .. }
    ));
    // An hour later the window has room again.
    let d = admit_unregistered(&c, "t", 3, &history, UNREG_NOW + HOUR_MS + 10)
        .await
        .unwrap();
    assert!(matches!(d, UnregisteredDecision::Admit(_)));
    // Other tenants have their own allowance.
    let d = admit_unregistered(&c, "u", 3, &[], UNREG_NOW + 9)
        .await
        .unwrap();
    assert!(matches!(d, UnregisteredDecision::Admit(_)));
}
