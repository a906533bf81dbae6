//! Golden fixture for the restriction notification email (seed format). Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p outguard-policy --test notification` and review the diff.

use outguard_policy::notify::{NotificationEnvelope, notification_subject};
use outguard_policy::{LimitKind, Measure, RestrictionReason, Subject, render_notification};

const NOW: i64 = 1_795_456_800_000; // 2026-11-23 18:00:00 UTC

fn check_golden(name: &str, actual: &[u8]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        String::from_utf8_lossy(actual),
        String::from_utf8_lossy(&expected),
        "{name} differs from its golden file"
    );
}

#[test]
fn account_notification_matches_golden() {
    let subject = Subject::Account("bulk@tenant.example".into());
    let reason = RestrictionReason {
        limit: LimitKind::ExternalPerHour,
        counts: vec![Measure::new("external recipients in last hour", 501, 500)],
        top_spam_reasons: vec!["PHISH_URL".into(), "FREEMAIL_REPLYTO".into()],
        sample_message_ids: vec!["0193a5b2c4d5e6f7".into()],
    };
    let to = vec![
        "admin@tenant.example".to_string(),
        "sec@tenant.example".to_string(),
    ];
    let env = NotificationEnvelope {
        hostname: "relay.outguard.test",
        from: None,
        to: &to,
        max_unblocks_per_day: 3,
    };
    let msg = render_notification(&subject, &reason, Some(1_795_478_400_000), &env, NOW);
    let text = String::from_utf8_lossy(&msg);
    let parsed = mail_parser::MessageParser::default()
        .parse(&msg)
        .expect("parses");
    assert_eq!(
        parsed.subject(),
        Some("Outbound spam notification - bulk@tenant.example blocked from sending outbound mail")
    );
    let from = parsed.from().and_then(|a| a.first()).expect("from");
    assert_eq!(
        (from.name(), from.address()),
        (Some("Outguard"), Some("postmaster@relay.outguard.test"))
    );
    assert_eq!(parsed.to().map(|a| a.iter().count()), Some(2));
    let body = parsed.body_text(0).expect("text body");
    assert!(
        body.contains(
            "This is an automated reply from the Outguard outbound spam analysis system."
        )
    );
    assert!(body.contains("external recipients in last hour: 501 > 500"));
    assert!(body.contains("Top spam reasons: PHISH_URL, FREEMAIL_REPLYTO"));
    assert!(text.contains(
        "It is likely that this email account has been compromised. Please follow these steps:"
    ));
    assert!(text.contains("outguard restricted lift bulk@tenant.example"));
    assert!(!text.contains("Microsoft"));
    check_golden("notification_account.eml", &msg);
}

#[test]
fn tenant_notification_and_custom_from() {
    let subject = Subject::Tenant("acme".into());
    assert_eq!(
        notification_subject(&subject),
        "Outbound spam notification - acme blocked from sending outbound mail"
    );
    let reason = RestrictionReason::new(
        LimitKind::TenantSpamPerHour,
        vec![Measure::new(
            "spam messages from the organisation in last hour",
            201,
            200,
        )],
    );
    let to = vec!["admin@acme.example".to_string()];
    let env = NotificationEnvelope {
        hostname: "h.test",
        from: Some("Abuse Desk <abuse@isp.example>"),
        to: &to,
        max_unblocks_per_day: 3,
    };
    let msg = render_notification(&subject, &reason, None, &env, NOW);
    check_golden("notification_tenant.eml", &msg);
    let text = String::from_utf8_lossy(&msg);
    assert!(text.contains("abuse@isp.example") && text.contains("Abuse Desk"));
    assert!(text.contains("only be lifted by an operator"));
    assert!(text.contains("Blocked until: an administrator lifts the restriction"));
}
