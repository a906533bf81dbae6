//! The decision at RCPT TO: reserve the recipient in every window that applies, atomically.
//!
//! Accounts: external *or* internal per sliding hour, all recipients per sliding 24 h, and the
//! service ceiling of 10,000 per 24 h. Connectors: only their own `limit_per_hour` (SPEC §2.2).
//! A limit whose action is `alert` — or that already restricted the subject today and was
//! lifted — is *soft*: it is still counted, but never refuses; crossing it raises an alert.
//! The ceiling always refuses. The reservation is given back with [`crate::Counters::release`]
//! when the transaction is not completed.

use outguard_types::model::Millis;
use outguard_types::policy::{DAILY_RECIPIENT_CEILING, EffectivePolicy, ThresholdAction};

use crate::alerts::AlertKind;
use crate::counters::{
    CounterError, Counters, DAY_MS, HOUR_MS, Reservation, ReserveOutcome, WindowCheck,
};
use crate::decide::{Action, Refusal, SenderRef, action_for, keys};
use crate::reply::{Measure, Reject};
use crate::restriction::{LimitKind, Restriction, RestrictionReason, active_for, exempt_today};

/// One RCPT (or `n` recipients at once, e.g. an expanded list).
#[derive(Debug, Clone, Copy)]
pub struct RcptRequest<'a> {
    pub sender: SenderRef<'a>,
    pub tenant: &'a str,
    /// The recipient is in one of the tenant's accepted domains.
    pub internal: bool,
    pub n: u32,
}

// Short-lived value returned once per RCPT; boxing the restriction would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum RcptDecision {
    /// Accept the RCPT. `actions` holds alerts for soft limits this RCPT crossed.
    Admit {
        reservation: Reservation,
        measures: Vec<Measure>,
        actions: Vec<Action>,
    },
    /// Refuse the RCPT with `refusal.reject`; take `action` (None: no new action, e.g. the
    /// ceiling, or the subject is already restricted). After a restriction, the relay answers
    /// the transaction's further RCPTs with [`crate::check_sender`] on the new record (5.1.8).
    Refuse {
        refusal: Refusal,
        limit: LimitKind,
        action: Option<Action>,
    },
}

/// A recipient is internal when its domain is one of the sender's tenant's accepted domains
/// (exact, case-insensitive; SPEC §1).
pub fn is_internal<S: AsRef<str>>(recipient: &str, accepted_domains: &[S]) -> bool {
    let domain = recipient
        .trim()
        .trim_matches(['<', '>'])
        .rsplit_once('@')
        .map_or("", |(_, d)| d);
    let domain = domain.trim_end_matches('.');
    !domain.is_empty()
        && accepted_domains.iter().any(|d| {
            d.as_ref()
                .trim_end_matches('.')
                .eq_ignore_ascii_case(domain)
        })
}

/// `[limits] max_recipients_per_message`: the RCPT that would be number `max + 1` of the
/// transaction gets `452 4.5.3` (the client may send the rest in another transaction).
pub fn check_recipient_count(
    accepted_so_far: u32,
    max_recipients_per_message: u32,
) -> Result<(), Reject> {
    if accepted_so_far >= max_recipients_per_message {
        return Err(Reject::new(452, "4.5.3", "Too many recipients"));
    }
    Ok(())
}

struct Planned {
    check: WindowCheck,
    kind: LimitKind,
    what: &'static str,
    /// The configured limit (the check's limit is `u64::MAX` when soft).
    limit: u64,
}

fn plan(req: &RcptRequest<'_>, eff: &EffectivePolicy, exempt: &[LimitKind]) -> Vec<Planned> {
    let soft = |k: LimitKind| eff.action == ThresholdAction::Alert || exempt.contains(&k);
    let mut out = Vec::with_capacity(4);
    let mut add = |key: String,
                   window_ms: i64,
                   limit: u32,
                   kind: LimitKind,
                   what: &'static str,
                   soft: bool| {
        let limit = u64::from(limit);
        let check = WindowCheck {
            key,
            window_ms,
            limit: if soft { u64::MAX } else { limit },
        };
        out.push(Planned {
            check,
            kind,
            what,
            limit,
        });
    };
    match req.sender {
        SenderRef::Account(addr) => {
            if req.internal {
                let k = LimitKind::InternalPerHour;
                add(
                    keys::account(addr, "int"),
                    HOUR_MS,
                    eff.internal_per_hour,
                    k,
                    "internal recipients in last hour",
                    soft(k),
                );
            } else {
                let k = LimitKind::ExternalPerHour;
                add(
                    keys::account(addr, "ext"),
                    HOUR_MS,
                    eff.external_per_hour,
                    k,
                    "external recipients in last hour",
                    soft(k),
                );
            }
            let all = keys::account(addr, "rcpt");
            let k = LimitKind::PerDay;
            add(
                all.clone(),
                DAY_MS,
                eff.per_day,
                k,
                "recipients in last 24 hours",
                soft(k),
            );
            let k = LimitKind::DailyCeiling;
            add(
                all,
                DAY_MS,
                DAILY_RECIPIENT_CEILING,
                k,
                "recipients in last 24 hours (service ceiling)",
                false,
            );
        }
        SenderRef::Connector {
            cidr,
            limit_per_hour,
        } => {
            let k = LimitKind::ConnectorPerHour;
            let limit = limit_per_hour.unwrap_or(u32::MAX);
            add(
                keys::connector(cidr, "rcpt"),
                HOUR_MS,
                limit,
                k,
                "connector recipients in last hour",
                limit_per_hour.is_none() || soft(k),
            );
        }
    }
    out
}

/// Reserve the recipient(s) of `req`. `history`: the restrictions of this sender and tenant
/// (for "not restricted again by the same limit today" and to avoid restricting twice).
pub async fn reserve_recipient(
    counters: &dyn Counters,
    req: &RcptRequest<'_>,
    eff: &EffectivePolicy,
    history: &[Restriction],
    now: Millis,
) -> Result<RcptDecision, CounterError> {
    let subject = req.sender.subject();
    let exempt = exempt_today(history, &subject, now);
    let planned = plan(req, eff, &exempt);
    let checks: Vec<WindowCheck> = planned.iter().map(|p| p.check.clone()).collect();
    let n = u64::from(req.n);
    match counters.reserve(&checks, req.n, now).await? {
        ReserveOutcome::Admitted(reservation) => {
            let mut measures = Vec::with_capacity(planned.len());
            let mut actions = Vec::new();
            for (p, before) in planned.iter().zip(&reservation.counts) {
                if p.limit == u64::from(u32::MAX) {
                    continue; // a connector without a limit: nothing to show
                }
                let m = Measure::new(p.what, before + n, p.limit);
                // Alert once, at the crossing, not on every RCPT past it.
                if m.exceeded() && *before <= p.limit {
                    let reason = RestrictionReason::new(p.kind, vec![m.clone()]);
                    let exempt = exempt.contains(&p.kind);
                    actions.push(action_for(
                        ThresholdAction::Alert,
                        exempt,
                        subject.clone(),
                        req.tenant,
                        reason,
                        AlertKind::SendingLimitExceeded,
                        now,
                    ));
                }
                measures.push(m);
            }
            Ok(RcptDecision::Admit {
                reservation,
                measures,
                actions,
            })
        }
        ReserveOutcome::Refused { index, count } => {
            let Some(p) = planned.get(index) else {
                return Err(CounterError::Unavailable(format!(
                    "backend refused unknown check {index}"
                )));
            };
            let m = Measure::new(p.what, count + n, p.limit);
            let refusal = Refusal {
                reject: p.kind.recipient_reject(),
                detail: m.to_string(),
                measures: vec![m.clone()],
            };
            let already = active_for(history, &subject, now).is_some();
            let action = match p.kind {
                LimitKind::DailyCeiling => None,
                _ if already => None,
                kind => Some(action_for(
                    eff.action,
                    false,
                    subject,
                    req.tenant,
                    RestrictionReason::new(kind, vec![m]),
                    AlertKind::SendingLimitExceeded,
                    now,
                )),
            };
            Ok(RcptDecision::Refuse {
                refusal,
                limit: p.kind,
                action,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_or_external() {
        let accepted = ["tenant.example", "Other.Example"];
        let cases = [
            ("a@tenant.example", true),
            ("<A@TENANT.EXAMPLE>", true),
            ("a@other.example.", true),
            ("a@sub.tenant.example", false),
            ("a@evil-tenant.example", false),
            ("a@gmail.com", false),
            ("postmaster", false),
            ("", false),
        ];
        for (rcpt, want) in cases {
            assert_eq!(is_internal(rcpt, &accepted), want, "{rcpt}");
        }
    }

    #[test]
    fn recipients_per_message() {
        assert!(check_recipient_count(0, 1).is_ok());
        assert!(check_recipient_count(499, 500).is_ok());
        assert_eq!(
            check_recipient_count(500, 500).unwrap_err().to_string(),
            "452 4.5.3 Too many recipients"
        );
    }
}
