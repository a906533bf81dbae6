//! Effects as data: what a policy action (SPEC §3) or a service alert (SPEC §4) calls for once
//! the part that must hold at once (the restriction, in the cache and the store) is done. Each
//! `plan_*` function is pure — the action, how the restriction write went, the policy in force
//! and the time in, a [`Batch`] out — and tested as vectors; the outbox runs the batch.

use outguard_policy::{Action, Alert, NotificationEnvelope, Restriction, Subject};
use outguard_types::model::Millis;
use outguard_types::policy::EffectivePolicy;

/// One side effect, run by the outbox in its batch's order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Hold every queued message of the subject on this node.
    HoldQueued { subject: Subject },
    /// Store a restriction this node already enforces from its cache (the write at the crossing
    /// failed). Retried until it is stored; a restriction is never given up. If another session
    /// or node stored one first, the rest of the batch (alert, notices) is theirs to do.
    Restrict { restriction: Restriction },
    /// Record the alert. With `once`, only if no alert with that dedup key exists (otherwise
    /// another node or session raised it: the rest of the batch stops). Then the per-`cap_scope`
    /// daily notification cap decides whether the webhook and email that follow go out.
    Alert {
        alert: Alert,
        once: Option<String>,
        cap_scope: String,
    },
    /// Hand the alert to the webhook sender (which retries on its own: never retried here).
    Webhook { alert: Alert },
    /// Spool and queue an email Outguard writes itself, from the `regular` pool.
    Notify { mail: SystemMail },
}

impl Effect {
    /// The effect's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Effect::HoldQueued { .. } => "hold_queued",
            Effect::Restrict { .. } => "restrict",
            Effect::Alert { .. } => "alert",
            Effect::Webhook { .. } => "webhook",
            Effect::Notify { .. } => "notify",
        }
    }
}

/// An email Outguard writes itself (restriction notices, service alerts).
#[derive(Debug, Clone, PartialEq)]
pub struct SystemMail {
    pub from: String,
    pub to: Vec<String>,
    pub tenant: Option<String>,
    pub body: Vec<u8>,
    /// For logs and the trace: `notification`, `service alert`.
    pub what: &'static str,
}

/// The effects of one action, run in order. Batches with the same `key` are one event raised
/// more than once (two sessions crossing the same limit): the outbox runs the first only.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub key: Option<String>,
    pub effects: Vec<Effect>,
}

impl Batch {
    /// A batch carrying a restriction not yet stored: it is never dropped (the sender waits
    /// for room instead).
    pub fn carries_restriction(&self) -> bool {
        self.effects
            .iter()
            .any(|e| matches!(e, Effect::Restrict { .. }))
    }
}

/// How the synchronous restriction write at the crossing went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// This call stored it: the alert and notices are ours to raise.
    Here,
    /// One was already active (another session or node decided): only hold our queued mail.
    AlreadyActive,
    /// The store failed: it is enforced from this node's cache and stored by the outbox.
    Unstored,
}

/// What the notification email needs besides the policy: `[server] hostname`,
/// `[notifications] from`.
#[derive(Debug, Clone, Copy)]
pub struct Notices<'a> {
    pub hostname: &'a str,
    pub from: Option<&'a str>,
}

/// The effects of a policy action. `recorded` is how the restriction write went (`None` for
/// an alert-only action, which is deduplicated by its alert key in the store).
pub fn plan_action(
    action: &Action,
    recorded: Option<Recorded>,
    eff: &EffectivePolicy,
    notices: Notices<'_>,
    now: Millis,
) -> Batch {
    let alert = action.alert();
    let key = alert.dedup_key();
    let cap_scope = alert.tenant.clone().unwrap_or_default();
    match action {
        Action::Alert { .. } => Batch {
            key: Some(key.clone()),
            effects: vec![
                Effect::Alert {
                    alert: alert.clone(),
                    once: Some(key),
                    cap_scope,
                },
                Effect::Webhook { alert },
            ],
        },
        Action::Restrict { restriction } => {
            let hold = Effect::HoldQueued {
                subject: restriction.subject.clone(),
            };
            let mut effects = vec![hold];
            match recorded.unwrap_or(Recorded::Here) {
                Recorded::AlreadyActive => return Batch { key: None, effects },
                Recorded::Unstored => effects.push(Effect::Restrict {
                    restriction: restriction.clone(),
                }),
                Recorded::Here => {}
            }
            effects.push(Effect::Alert {
                alert: alert.clone(),
                once: None,
                cap_scope,
            });
            effects.push(Effect::Webhook { alert });
            if let Some(mail) = restriction_notice(restriction, eff, notices, now) {
                effects.push(Effect::Notify { mail });
            }
            Batch {
                key: Some(key),
                effects,
            }
        }
    }
}

/// The email of `seeds/000_…txt` to the policy's notification recipients (none configured:
/// no email).
fn restriction_notice(
    r: &Restriction,
    eff: &EffectivePolicy,
    notices: Notices<'_>,
    now: Millis,
) -> Option<SystemMail> {
    if eff.notify_recipients.is_empty() {
        return None;
    }
    let env = NotificationEnvelope {
        hostname: notices.hostname,
        from: notices.from,
        to: &eff.notify_recipients,
        max_unblocks_per_day: eff.max_unblocks_per_day,
    };
    let body = outguard_policy::render_notification(&r.subject, &r.reason, r.until, &env, now);
    Some(SystemMail {
        from: format!("postmaster@{}", notices.hostname),
        to: eff.notify_recipients.clone(),
        tenant: Some(r.tenant.clone()),
        body,
        what: "notification",
    })
}

/// The effects of a service-wide alert (`ip_listed`, `ip_delisted`): recorded (once per
/// `dedup` key cluster-wide when given), then within the service's daily cap the webhooks and
/// the operators' email (`mail`, when operators have recipients).
pub fn plan_service_alert(alert: Alert, dedup: Option<String>, mail: Option<SystemMail>) -> Batch {
    let mut effects = vec![
        Effect::Alert {
            alert: alert.clone(),
            once: dedup.clone(),
            cap_scope: String::new(),
        },
        Effect::Webhook { alert },
    ];
    effects.extend(mail.map(|mail| Effect::Notify { mail }));
    Batch {
        key: dedup,
        effects,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outguard_policy::restriction::LimitKind;
    use outguard_policy::{AlertKind, Measure, RestrictionReason};
    use outguard_types::policy::{PolicySettings, ThresholdAction};

    const NOW: Millis = 1_700_000_000_000;

    fn restriction() -> Restriction {
        let reason = RestrictionReason::new(
            LimitKind::ExternalPerHour,
            vec![Measure::new("external recipients in last hour", 5, 5)],
        );
        Restriction::for_action(
            ThresholdAction::BlockUser,
            Subject::Account("bob@a.example".into()),
            "a",
            reason,
            NOW,
        )
        .expect("a restricting action")
    }

    fn policy(notify: &[&str]) -> EffectivePolicy {
        let mut eff = PolicySettings::default()
            .resolve(&PolicySettings::default(), &PolicySettings::default());
        eff.notify_recipients = notify.iter().map(|s| s.to_string()).collect();
        eff
    }

    const NOTICES: Notices<'static> = Notices {
        hostname: "relay.test",
        from: None,
    };

    fn names(b: &Batch) -> Vec<&'static str> {
        b.effects.iter().map(Effect::name).collect()
    }

    #[test]
    fn a_restriction_made_here_holds_alerts_posts_and_mails_in_that_order() {
        let action = Action::Restrict {
            restriction: restriction(),
        };
        let eff = policy(&["admin@a.example"]);
        let b = plan_action(&action, Some(Recorded::Here), &eff, NOTICES, NOW);
        assert_eq!(names(&b), ["hold_queued", "alert", "webhook", "notify"]);
        assert_eq!(b.key, Some(action.alert().dedup_key()));
        assert!(!b.carries_restriction());
        let Some(Effect::Notify { mail }) = b.effects.last() else {
            panic!("no notice")
        };
        assert_eq!(mail.to, ["admin@a.example"]);
        assert_eq!(mail.from, "postmaster@relay.test");
        assert_eq!(mail.tenant.as_deref(), Some("a"));
        let text = String::from_utf8_lossy(&mail.body);
        assert!(
            text.contains("bob@a.example blocked from sending"),
            "{text}"
        );
    }

    #[test]
    fn an_unstored_restriction_is_stored_before_anyone_is_told() {
        let action = Action::Restrict {
            restriction: restriction(),
        };
        let b = plan_action(
            &action,
            Some(Recorded::Unstored),
            &policy(&[]),
            NOTICES,
            NOW,
        );
        assert_eq!(names(&b), ["hold_queued", "restrict", "alert", "webhook"]);
        assert!(b.carries_restriction());
    }

    #[test]
    fn a_restriction_already_active_only_holds_this_nodes_mail() {
        let action = Action::Restrict {
            restriction: restriction(),
        };
        let eff = policy(&["admin@a.example"]);
        let b = plan_action(&action, Some(Recorded::AlreadyActive), &eff, NOTICES, NOW);
        assert_eq!(names(&b), ["hold_queued"]);
        assert_eq!(
            b.key, None,
            "holding is idempotent: never deduplicated away"
        );
    }

    #[test]
    fn an_alert_action_is_recorded_once_cluster_wide_then_posted() {
        let alert = Alert::new(
            AlertKind::SendingLimitExceeded,
            Some("a"),
            Some(Subject::Account("bob@a.example".into())),
            "bob".into(),
            vec![Measure::new("external recipients in last hour", 5, 5)],
            NOW,
        );
        let key = alert.dedup_key();
        let b = plan_action(
            &Action::Alert { alert },
            None,
            &policy(&["admin@a.example"]),
            NOTICES,
            NOW,
        );
        assert_eq!(names(&b), ["alert", "webhook"]);
        assert!(
            matches!(&b.effects[0], Effect::Alert { once: Some(k), cap_scope, .. }
            if *k == key && cap_scope == "a")
        );
        assert_eq!(b.key, Some(key));
    }

    #[test]
    fn a_service_alert_mails_the_operators_only_when_they_have_recipients() {
        let alert = Alert::new(AlertKind::IpListed, None, None, "x".into(), vec![], NOW);
        let b = plan_service_alert(alert.clone(), Some("k".into()), None);
        assert_eq!(names(&b), ["alert", "webhook"]);
        let mail = SystemMail {
            from: "postmaster@relay.test".into(),
            to: vec!["ops@example.net".into()],
            tenant: None,
            body: b"hi".to_vec(),
            what: "service alert",
        };
        let b = plan_service_alert(alert, None, Some(mail));
        assert_eq!(names(&b), ["alert", "webhook", "notify"]);
        assert_eq!(b.key, None);
    }
}
