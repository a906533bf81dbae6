//! Where a scanned message goes (SPEC §2.5): refused above the reject score, quarantined when
//! the policy says so, otherwise delivered from the pool its verdict and sender call for.

use outguard_types::policy::EffectivePolicy;
use outguard_types::verdict::{Class, Verdict};

use crate::reply::Reject;
use crate::verdict::top_spam_reasons;

pub const POOL_REGULAR: &str = "regular";
pub const POOL_HIGH_RISK: &str = "high-risk";
pub const POOL_RELAY: &str = "relay";
/// The header marking mail that leaves from the high-risk pool.
pub const VERDICT_HEADER: &str = "X-Outguard-Verdict";

#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// Answer DATA with this (550 5.7.1 with the top reasons).
    Reject(Reject),
    /// Hold for admin release.
    Quarantine { header: String },
    Deliver {
        pool: &'static str,
        /// Value of `X-Outguard-Verdict` to add, when the message is marked.
        header: Option<String>,
        /// BCC copies to send (suspicious/spam mail when the policy asks for it).
        bcc: Vec<String>,
        /// One line for the trace.
        why: &'static str,
    },
}

/// `spam; score=12.40` (the header value).
pub fn verdict_header(v: &Verdict) -> String {
    format!("{}; score={:.2}", v.class.as_str(), v.score)
}

/// Decide the disposition of one message.
pub fn disposition(
    v: &Verdict,
    eff: &EffectivePolicy,
    sender_domain_resolves: bool,
    sender_in_accepted_domain: bool,
) -> Disposition {
    let spam = v.class.is_spam();
    if let Some(limit) = eff.reject_score
        && spam
        && v.score >= limit
    {
        return Disposition::Reject(Reject::spam(&top_spam_reasons(&v.reasons, 3)));
    }
    if spam && eff.quarantine {
        return Disposition::Quarantine {
            header: verdict_header(v),
        };
    }
    let bcc = if spam && eff.bcc_suspicious_outbound_mail {
        eff.bcc_recipients.clone()
    } else {
        Vec::new()
    };
    let (pool, why) = if spam {
        (
            POOL_HIGH_RISK,
            if v.class == Class::Spam {
                "called spam"
            } else {
                "called suspicious"
            },
        )
    } else if !sender_domain_resolves {
        (POOL_HIGH_RISK, "sender domain has no A and no MX record")
    } else if !sender_in_accepted_domain {
        (POOL_RELAY, "forwarded: sender is not in an accepted domain")
    } else {
        (POOL_REGULAR, "clean")
    };
    let header = (pool == POOL_HIGH_RISK).then(|| verdict_header(v));
    Disposition::Deliver {
        pool,
        header,
        bcc,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outguard_types::verdict::Reason;

    fn v(class: Class, score: f64) -> Verdict {
        let r = |t: &str, w| Reason {
            tag: t.into(),
            weight: w,
            detail: String::new(),
        };
        Verdict {
            score,
            class,
            reasons: vec![
                r("PHISH_URL", 6.0),
                r("DKIM_OK", -1.0),
                r("BAD_FROM", 3.0),
                r("X", 1.0),
                r("Y", 0.5),
            ],
        }
    }

    #[test]
    fn disposition_table() {
        let base = EffectivePolicy::default();
        let strict = EffectivePolicy {
            reject_score: Some(10.0),
            bcc_suspicious_outbound_mail: true,
            bcc_recipients: vec!["sec@t.example".into()],
            ..EffectivePolicy::default()
        };
        let quarantine = EffectivePolicy {
            quarantine: true,
            ..EffectivePolicy::default()
        };
        let deliver = |pool: &'static str, marked: bool, bcc: usize| {
            move |d: &Disposition| match d {
                Disposition::Deliver {
                    pool: p,
                    header,
                    bcc: b,
                    ..
                } => *p == pool && header.is_some() == marked && b.len() == bcc,
                _ => false,
            }
        };
        type Check = Box<dyn Fn(&Disposition) -> bool>;
        let cases: Vec<(Verdict, &EffectivePolicy, bool, bool, Check)> = vec![
            (
                v(Class::Clean, 0.5),
                &base,
                true,
                true,
                Box::new(deliver("regular", false, 0)),
            ),
            (
                v(Class::Clean, 0.5),
                &base,
                false,
                true,
                Box::new(deliver("high-risk", true, 0)),
            ),
            (
                v(Class::Clean, 0.5),
                &base,
                true,
                false,
                Box::new(deliver("relay", false, 0)),
            ),
            (
                v(Class::Suspicious, 5.0),
                &base,
                true,
                true,
                Box::new(deliver("high-risk", true, 0)),
            ),
            (
                v(Class::Spam, 50.0),
                &base,
                true,
                true,
                Box::new(deliver("high-risk", true, 0)),
            ),
            (
                v(Class::Suspicious, 5.0),
                &strict,
                true,
                true,
                Box::new(deliver("high-risk", true, 1)),
            ),
            (
                v(Class::Clean, 11.0),
                &strict,
                true,
                true,
                Box::new(deliver("regular", false, 0)),
            ),
            (
                v(Class::Spam, 12.0),
                &strict,
                true,
                true,
                Box::new(|d: &Disposition| {
                    matches!(d,
                Disposition::Reject(r) if r.to_string() == "550 5.7.1 Message rejected as spam (PHISH_URL, BAD_FROM, X)")
                }),
            ),
            (
                v(Class::Spam, 12.0),
                &quarantine,
                true,
                true,
                Box::new(|d: &Disposition| matches!(d, Disposition::Quarantine { .. })),
            ),
            (
                v(Class::Clean, 1.0),
                &quarantine,
                true,
                true,
                Box::new(deliver("regular", false, 0)),
            ),
        ];
        for (i, (verdict, eff, resolves, accepted, check)) in cases.iter().enumerate() {
            let d = disposition(verdict, eff, *resolves, *accepted);
            assert!(check(&d), "case {i}: {d:?}");
        }
        assert_eq!(verdict_header(&v(Class::Spam, 12.5)), "spam; score=12.50");
    }
}
