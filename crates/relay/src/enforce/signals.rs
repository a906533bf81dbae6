//! The sender signals step of the message path (issue 19), between the scan and the policy:
//! the sending pattern and the campaign lists may raise the verdict (their reasons are in the
//! trace with the numbers), then the sender's reputation says whether a message not called spam
//! must still leave from `high-risk` (`ACCOUNT_RECENT_SPAM`). See `outguard_policy::signals`.
//!
//! [`assess`] takes the store and `now` as arguments and touches nothing else, so the 30-day
//! replay test drives the very steps the relay takes with an injected clock.

use std::collections::BTreeSet;

use outguard_policy::signals::{
    CAMPAIGN_MATCH, campaign, pattern, raise_to_suspicious, reputation,
};
use outguard_policy::{CounterError, SignalStore, Subject};
use outguard_types::model::Millis;
use outguard_types::verdict::{Class, Reason, Verdict};

/// What the signals step needs of one message.
pub struct SignalInput<'a> {
    pub subject: Subject,
    pub tenant: &'a str,
    pub rcpts: &'a [String],
    /// The body's fingerprint ([`body_fingerprint`]); None for bodies too short to have one.
    pub fingerprint: Option<u64>,
    /// `[suppression] signal_after`: refused sends to suppressed recipients in 24 hours that
    /// raise the message (`SENT_TO_SUPPRESSED`, issue 25).
    pub suppressed_after: u32,
}

/// The verdict after the signals, and what else they found.
#[derive(Debug)]
pub struct Signalled {
    pub verdict: Verdict,
    /// Set when a message not called spam must leave from `high-risk` (also in the reasons).
    pub recent_spam: Option<Reason>,
    /// A campaign the operator should hear of now: (summary, dedup key).
    pub campaign_alert: Option<(String, String)>,
}

/// The engine's thresholds the signals raise a score against.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub suspicious: f64,
    pub spam: f64,
}

fn class_of(score: f64, t: Thresholds, at_least: Class) -> Class {
    let by_score = if score >= t.spam {
        Class::Spam
    } else if score >= t.suspicious {
        Class::Suspicious
    } else {
        Class::Clean
    };
    match (by_score, at_least) {
        (Class::Spam, _) | (_, Class::Spam) => Class::Spam,
        (Class::Suspicious, _) | (_, Class::Suspicious) => Class::Suspicious,
        _ => Class::Clean,
    }
}

/// The distinct recipient domains, lowercase.
pub fn rcpt_domains(rcpts: &[String]) -> Vec<String> {
    let set: BTreeSet<String> = rcpts
        .iter()
        .filter_map(|r| r.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
        .collect();
    set.into_iter().collect()
}

/// The body's campaign fingerprint: its text (HTML rendered to text) plus the links of its HTML
/// part, which the rendering drops. Nothing of the body is kept, only the hash.
pub fn body_fingerprint(body: &[u8]) -> Option<u64> {
    let msg = mail_parser::MessageParser::new().parse(body)?;
    let mut text = msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    if let Some(html) = msg.body_html(0) {
        for l in campaign::links(&html) {
            text.push_str(" https://");
            text.push_str(&l);
        }
    }
    campaign::fingerprint(&text)
}

/// Run the signals on one scanned message: pattern, campaign, sends to suppressed recipients,
/// then reputation.
pub async fn assess(
    store: &dyn SignalStore,
    t: Thresholds,
    input: &SignalInput<'_>,
    mut v: Verdict,
    now: Millis,
) -> Result<Signalled, CounterError> {
    let domains = rcpt_domains(input.rcpts);
    let sending = pattern::Sending {
        subject: &input.subject,
        tenant: input.tenant,
        domains: &domains,
        recipients: input.rcpts.len() as u64,
        fingerprint: input.fingerprint,
    };
    if let Some(r) = pattern::assess(store, &sending, now).await? {
        // A burst from a sender whose mail was just called spam is what a taken-over account
        // looks like: suspicious outright. Otherwise the burst adds its weight to the score.
        let rep = reputation::key(&input.subject);
        if store.peek_reputation(&rep, now).await?.is_some() {
            let detail = format!(
                "{}; and this sender's mail was called spam recently",
                r.detail
            );
            raise_to_suspicious(&mut v, t.suspicious, &r.tag, detail);
        } else {
            v.score += r.weight;
            v.class = class_of(v.score, t, v.class);
            v.reasons.insert(0, r);
        }
    }
    let mut campaign_alert = None;
    if let Some(fp) = input.fingerprint {
        let c = campaign::assess(
            store,
            fp,
            &input.subject,
            input.tenant,
            v.class.is_spam(),
            now,
        )
        .await?;
        if c.matched() {
            let whose = match c.other_tenants {
                0 => "all of this tenant".to_string(),
                n => format!("of this tenant and {n} others"),
            };
            let detail = format!(
                "near-duplicate of mail from {} senders ({whose}) in the last hour, at least one called spam",
                c.senders
            );
            raise_to_suspicious(&mut v, t.suspicious, CAMPAIGN_MATCH, detail);
        }
        if c.alert_now() {
            // The latest sender may be a tenant whose mail other tenants copied: say whether
            // the campaign counts against its own message, so the operator does not read it as
            // the culprit (the trust rule, `campaign::judge`).
            let latest = if c.matched() {
                "CAMPAIGN_MATCH for its mail"
            } else {
                "no CAMPAIGN_MATCH for its mail: too few of the senders count for its tenant"
            };
            let summary = format!(
                "campaign: {} senders of {} tenant(s) sent near-identical mail within an hour, at least one called spam; latest {} of tenant {} ({latest})",
                c.all_senders,
                c.all_tenants,
                input.subject.id(),
                input.tenant
            );
            let hour = outguard_policy::signals::hour_of(now);
            let key = format!("campaign_detected:{fp:016x}:{}:{hour}", c.all_senders);
            campaign_alert = Some((summary, key));
        }
    }
    outguard_policy::suppress::assess(
        store,
        &input.subject,
        input.suppressed_after,
        t.suspicious,
        &mut v,
        now,
    )
    .await?;
    let recent_spam = reputation::note(store, &input.subject, v.class, now).await?;
    if let Some(r) = &recent_spam {
        v.reasons.insert(0, r.clone());
    }
    Ok(Signalled {
        verdict: v,
        recent_spam,
        campaign_alert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_only_go_up() {
        let t = Thresholds {
            suspicious: 5.0,
            spam: 8.0,
        };
        assert_eq!(class_of(1.0, t, Class::Clean), Class::Clean);
        assert_eq!(class_of(5.0, t, Class::Clean), Class::Suspicious);
        assert_eq!(class_of(9.0, t, Class::Clean), Class::Spam);
        assert_eq!(class_of(1.0, t, Class::Spam), Class::Spam);
    }

    #[test]
    fn domains_are_distinct_and_lowercase() {
        let r = vec![
            "a@X.example".into(),
            "b@x.example".into(),
            "c@y.example".into(),
        ];
        assert_eq!(rcpt_domains(&r), vec!["x.example", "y.example"]);
    }
}
