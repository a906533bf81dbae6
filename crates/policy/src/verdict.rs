//! After the scan: count the message's verdict per account (spam per sliding hour, spam share
//! of the last 20 messages once at least 10 were sent) and per tenant (spam per sliding hour),
//! and decide the actions. A spam count limit acts when the count *reaches* it (SPEC §2.4: a
//! limit of 10 spam per hour accepts the 10th — to high-risk — and takes the action then, so the
//! next transaction is refused): N spam messages leave, never N + 1. The spam ratio acts when
//! the share goes past it.
//! Connectors count toward the tenant only (SPEC §2.2).

use outguard_types::model::Millis;
use outguard_types::policy::{EffectivePolicy, SPAM_RATIO_MIN_MESSAGES, SPAM_RATIO_WINDOW};
use outguard_types::verdict::{Class, Reason};

use crate::alerts::AlertKind;
use crate::counters::{CounterError, Counters, HOUR_MS};
use crate::decide::{Action, SenderRef, action_for, keys};
use crate::reply::Measure;
use crate::restriction::{
    LimitKind, Restriction, RestrictionReason, Subject, active_for, exempt_today,
};

/// The scanned message.
#[derive(Debug, Clone, Copy)]
pub struct ScannedMessage<'a> {
    pub sender: SenderRef<'a>,
    pub tenant: &'a str,
    pub class: Class,
    /// Strongest first, as the verdict lists them.
    pub reasons: &'a [Reason],
    /// Our queue id, kept as a sample in the restriction record.
    pub message_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct VerdictOutcome {
    pub measures: Vec<Measure>,
    pub actions: Vec<Action>,
}

/// The tags of the strongest reasons that pushed towards spam (the model's prior is not one: it
/// is the same for every message).
pub fn top_spam_reasons(reasons: &[Reason], n: usize) -> Vec<String> {
    reasons
        .iter()
        .filter(|r| r.weight > 0.0 && r.tag != outguard_types::verdict::MODEL_PRIOR)
        .take(n)
        .map(|r| r.tag.clone())
        .collect()
}

/// Count the verdict and decide. `history`: restrictions of this sender and its tenant.
pub async fn after_verdict(
    counters: &dyn Counters,
    msg: &ScannedMessage<'_>,
    eff: &EffectivePolicy,
    history: &[Restriction],
    now: Millis,
) -> Result<VerdictOutcome, CounterError> {
    let spam = msg.class.is_spam();
    let mut out = VerdictOutcome::default();
    let reason = |limit: LimitKind, m: &Measure| RestrictionReason {
        limit,
        counts: vec![m.clone()],
        top_spam_reasons: top_spam_reasons(msg.reasons, 3),
        sample_message_ids: vec![msg.message_id.to_string()],
    };
    if let SenderRef::Account(addr) = msg.sender {
        let subject = msg.sender.subject();
        let exempt = exempt_today(history, &subject, now);
        let (s, total) = counters
            .push_recent(&keys::account(addr, "recent"), spam, SPAM_RATIO_WINDOW)
            .await?;
        let mut hit: Option<(LimitKind, Measure)> = None;
        if spam {
            let count = counters
                .record(&keys::account(addr, "spam"), 1, HOUR_MS, now)
                .await?;
            let m = Measure::new(
                "spam messages in last hour",
                count,
                u64::from(eff.spam_messages_per_hour),
            );
            if m.reached() {
                hit = Some((LimitKind::SpamPerHour, m.clone()));
            }
            out.measures.push(m);
            if total >= SPAM_RATIO_MIN_MESSAGES {
                let allowed = (eff.spam_ratio * f64::from(total)).floor() as u64;
                let m = Measure::new(
                    format!("spam among last {total} messages"),
                    u64::from(s),
                    allowed,
                );
                if m.exceeded() && hit.is_none() {
                    hit = Some((LimitKind::SpamRatio, m.clone()));
                }
                out.measures.push(m);
            }
        }
        if let Some((limit, m)) = hit
            && active_for(history, &subject, now).is_none()
        {
            let exempt = exempt.contains(&limit);
            let r = reason(limit, &m);
            out.actions.push(action_for(
                eff.spam_action,
                exempt,
                subject,
                msg.tenant,
                r,
                AlertKind::SuspiciousSendingPattern,
                now,
            ));
        }
    }
    if spam {
        let count = counters
            .record(&keys::tenant(msg.tenant, "spam"), 1, HOUR_MS, now)
            .await?;
        let m = Measure::new(
            "spam messages from the organisation in last hour",
            count,
            u64::from(eff.tenant_spam_messages_per_hour),
        );
        let tenant = Subject::Tenant(msg.tenant.to_string());
        if m.reached()
            && active_for(history, &tenant, now).is_none()
            && !exempt_today(history, &tenant, now).contains(&LimitKind::TenantSpamPerHour)
        {
            let restriction =
                Restriction::tenant(msg.tenant, reason(LimitKind::TenantSpamPerHour, &m), now);
            out.actions.push(Action::Restrict { restriction });
        }
        out.measures.push(m);
        if let SenderRef::Connector { cidr, .. } = msg.sender {
            // Per-connector spam is counted for the trace and the UI; no threshold applies.
            let c = counters
                .record(&keys::connector(cidr, "spam"), 1, HOUR_MS, now)
                .await?;
            out.measures.push(Measure::new(
                "connector spam messages in last hour",
                c,
                u64::MAX,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod prior_tests {
    use super::*;

    fn r(tag: &str, weight: f64) -> Reason {
        Reason {
            tag: tag.into(),
            weight,
            detail: String::new(),
        }
    }

    #[test]
    fn the_prior_is_never_a_top_spam_reason() {
        let reasons = [
            r(outguard_types::verdict::MODEL_PRIOR, 1.9),
            r("PHISH_LINK", 3.0),
            r("HAM_WORDS", -1.0),
            r("LOTTERY", 0.5),
        ];
        assert_eq!(top_spam_reasons(&reasons, 3), vec!["PHISH_LINK", "LOTTERY"]);
    }
}
