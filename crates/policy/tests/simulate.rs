//! The what-if replay (`outguard_policy::simulate`) on synthetic records: a tighter candidate
//! restricts more, a looser one fewer; the diff against recorded restrictions; recorded lifts
//! and the "not again today" rule; refused recipients are counted with samples.

use outguard_policy::simulate::{
    Candidate, Recorded, SimMessage, SimRcpt, SimReport, SimSender, Txn, replay,
};
use outguard_policy::{LimitKind, Restriction, RestrictionReason, Subject};
use outguard_store::memory_counters::MemoryCounters;
use outguard_types::model::Millis;
use outguard_types::policy::PolicySettings;
use outguard_types::verdict::Class;

// 2026-11-23 08:00:00 UTC
const T0: Millis = 1_795_420_800_000;
const MIN: Millis = 60_000;

fn txn(at: Millis, who: &str, n: usize, class: Class, id: &str) -> Txn {
    Txn {
        at,
        sender: SimSender::Account {
            address: who.into(),
        },
        tenant: "acme".into(),
        policy_sender: who.into(),
        rcpts: (0..n)
            .map(|i| SimRcpt {
                address: format!("r{i}@ext.example"),
                internal: false,
            })
            .collect(),
        message: Some(SimMessage {
            id: id.into(),
            at,
            class,
            score: None,
        }),
    }
}

/// bulk@ sends 12 single-recipient messages in an hour; spam@ sends 4 spam among 4 messages;
/// ok@ sends 3 clean messages.
fn traffic() -> Vec<Txn> {
    let mut v = Vec::new();
    for i in 0..12 {
        v.push(txn(
            T0 + i * MIN,
            "bulk@acme.example",
            1,
            Class::Clean,
            &format!("b{i}"),
        ));
    }
    for i in 0..4 {
        v.push(txn(
            T0 + i * MIN + 1,
            "spam@acme.example",
            1,
            Class::Spam,
            &format!("s{i}"),
        ));
    }
    for i in 0..3 {
        v.push(txn(
            T0 + i * MIN + 2,
            "ok@acme.example",
            2,
            Class::Clean,
            &format!("o{i}"),
        ));
    }
    v
}

fn candidate(tenant_default: PolicySettings) -> Candidate {
    let mut c = Candidate::new(PolicySettings::default(), 30);
    c.tenants
        .insert("acme".into(), (tenant_default, Vec::new()));
    c
}

async fn run(c: Candidate, recorded: &Recorded) -> SimReport {
    let counters = MemoryCounters::new();
    replay(&counters, &traffic(), c, recorded.clone(), 60_000)
        .await
        .unwrap()
}

fn window() -> Recorded {
    Recorded {
        restrictions: Vec::new(),
        from: T0 - MIN,
        to: T0 + 120 * MIN,
    }
}

fn subjects(r: &SimReport) -> Vec<(String, LimitKind)> {
    r.restrictions
        .iter()
        .map(|x| (x.subject.id().to_string(), x.limit))
        .collect()
}

fn current() -> PolicySettings {
    PolicySettings {
        recipient_limit_external_per_hour: Some(10),
        spam_messages_per_hour: Some(5),
        ..Default::default()
    }
}

#[tokio::test]
async fn tighter_restricts_more_and_looser_fewer() {
    let now = run(candidate(current()), &window()).await;
    assert_eq!(
        subjects(&now),
        vec![("bulk@acme.example".into(), LimitKind::ExternalPerHour)]
    );
    let r = &now.restrictions[0];
    // The 11th recipient crossed 10 per hour: after 10 admitted, at minute 10.
    assert_eq!((r.at, r.after_recipients), (T0 + 10 * MIN, Some(10)));
    // 11th refused (5.2.2, the restriction), 12th refused as restricted (5.1.8).
    assert_eq!(now.refused, 2);
    assert_eq!(now.refused_by_reply.get("550 5.2.2"), Some(&1));
    assert_eq!(now.refused_by_reply.get("550 5.1.8"), Some(&1));
    assert_eq!(now.refused_samples.len(), 2);

    let tighter = candidate(current())
        .with_overrides(&PolicySettings {
            recipient_limit_external_per_hour: Some(5),
            spam_messages_per_hour: Some(3),
            ..Default::default()
        })
        .unwrap();
    let t = run(tighter, &window()).await;
    let mut got = subjects(&t);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("bulk@acme.example".into(), LimitKind::ExternalPerHour),
            ("ok@acme.example".into(), LimitKind::ExternalPerHour),
            ("spam@acme.example".into(), LimitKind::SpamPerHour),
        ]
    );
    let spam = t
        .restrictions
        .iter()
        .find(|r| r.limit == LimitKind::SpamPerHour)
        .unwrap();
    assert_eq!(spam.after_spam_messages, Some(3));
    assert!(t.refused > now.refused);

    let looser = candidate(current())
        .with_overrides(&PolicySettings {
            recipient_limit_external_per_hour: Some(100),
            ..Default::default()
        })
        .unwrap();
    let l = run(looser, &window()).await;
    assert!(l.restrictions.is_empty(), "{:?}", l.restrictions);
    assert_eq!(l.refused, 0);
}

fn real(subject: &str, limit: LimitKind, at: Millis) -> Restriction {
    Restriction::for_action(
        outguard_types::policy::ThresholdAction::BlockUserForToday,
        Subject::Account(subject.into()),
        "acme",
        RestrictionReason::new(limit, Vec::new()),
        at,
    )
    .unwrap()
}

#[tokio::test]
async fn diff_against_the_record() {
    let mut rec = window();
    // What really happened: bulk@ restricted at minute 10; also someone the candidate spares.
    rec.restrictions.push(real(
        "Bulk@acme.example",
        LimitKind::ExternalPerHour,
        T0 + 10 * MIN + 3,
    ));
    rec.restrictions
        .push(real("old@acme.example", LimitKind::PerDay, T0 + 30 * MIN));
    // A manual restriction is taken as given, never compared.
    rec.restrictions
        .push(real("ok@acme.example", LimitKind::Manual, T0 + 1));
    let r = run(candidate(current()), &rec).await;
    assert_eq!(r.diff.same.len(), 1);
    assert_eq!(r.diff.same[0].real_at, T0 + 10 * MIN + 3);
    assert_eq!(r.diff.only_real.len(), 1);
    assert_eq!(r.diff.only_real[0].subject.id(), "old@acme.example");
    assert!(r.diff.only_simulated.is_empty());
    // ok@ was manually restricted from T0+1: its three messages (2 recipients each) are
    // refused at MAIL, and bulk@'s 12th after its restriction.
    assert_eq!(r.refused_by_reply.get("550 5.1.8"), Some(&(6 + 1)));
}

#[tokio::test]
async fn a_recorded_lift_applies_and_the_limit_does_not_restrict_again_that_day() {
    let mut rec = window();
    let mut lifted = real(
        "bulk@acme.example",
        LimitKind::ExternalPerHour,
        T0 + 10 * MIN,
    );
    lifted.lifted = Some(outguard_policy::Lift {
        by: "token:t1".into(),
        at: T0 + 10 * MIN + 30_000,
        reason: "known campaign".into(),
    });
    rec.restrictions.push(lifted);
    let r = run(candidate(current()), &rec).await;
    // Restricted once at the crossing; lifted 30 s later; the 12th message (minute 11) is
    // admitted (exempt today), with an alert instead.
    assert_eq!(r.restrictions.len(), 1);
    assert_eq!(r.refused, 1);
    assert_eq!(r.alerts.get("sending_limit_exceeded"), Some(&1));
}
