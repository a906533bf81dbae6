//! Decisions at MAIL FROM: restrictions first (account `5.1.8`, connector `5.7.711`, tenant
//! `5.7.705`), then the per-account message rate (`451 4.7.0`, a deferral: the client retries,
//! nothing is lost). Connectors are not held to the message rate (SPEC §2.2).

use outguard_types::model::Millis;

use crate::counters::{
    CounterError, Counters, MINUTE_MS, Reservation, ReserveOutcome, WindowCheck,
};
use crate::decide::{Refusal, SenderRef, keys};
use crate::reply::{Measure, Reject};
use crate::restriction::{Restriction, Subject, active_for};

/// Refuse a restricted sender. `history` holds the restrictions the relay loaded for this
/// account or connector and its tenant (lifted and expired ones are ignored).
pub fn check_sender(
    history: &[Restriction],
    sender: &SenderRef<'_>,
    tenant: &str,
    now: Millis,
) -> Result<(), Refusal> {
    let tenant_subject = Subject::Tenant(tenant.to_string());
    for subject in [sender.subject(), tenant_subject] {
        if let Some(r) = active_for(history, &subject, now) {
            let until = r
                .until
                .map_or_else(|| "until lifted".to_string(), |u| format!("until {u}"));
            return Err(Refusal {
                reject: r.reject(),
                measures: r.reason.counts.clone(),
                detail: format!(
                    "{} is restricted ({}, {until})",
                    subject.id(),
                    r.reason.limit.as_str()
                ),
            });
        }
    }
    Ok(())
}

/// Count one message against the account's `messages_per_minute` (sliding minute). The
/// reservation is returned so a transaction that never reaches DATA may be given back; the
/// relay may also keep it (an attempt counts). Connectors: Ok(None), nothing counted.
pub async fn check_message_rate(
    counters: &dyn Counters,
    sender: &SenderRef<'_>,
    messages_per_minute: u32,
    now: Millis,
) -> Result<Result<Option<Reservation>, Refusal>, CounterError> {
    let SenderRef::Account(addr) = sender else {
        return Ok(Ok(None));
    };
    let checks = [WindowCheck {
        key: keys::account(addr, "msg"),
        window_ms: MINUTE_MS,
        limit: u64::from(messages_per_minute),
    }];
    Ok(match counters.reserve(&checks, 1, now).await? {
        ReserveOutcome::Admitted(r) => Ok(Some(r)),
        ReserveOutcome::Refused { count, .. } => {
            let m = Measure::new(
                "messages in last minute",
                count + 1,
                u64::from(messages_per_minute),
            );
            Err(Refusal {
                reject: Reject::message_rate(messages_per_minute),
                detail: m.to_string(),
                measures: vec![m],
            })
        }
    })
}

/// Everything at MAIL: restrictions, then the message rate.
pub async fn admit_mail(
    counters: &dyn Counters,
    history: &[Restriction],
    sender: &SenderRef<'_>,
    tenant: &str,
    messages_per_minute: u32,
    now: Millis,
) -> Result<Result<Option<Reservation>, Refusal>, CounterError> {
    if let Err(refusal) = check_sender(history, sender, tenant, now) {
        return Ok(Err(refusal));
    }
    check_message_rate(counters, sender, messages_per_minute, now).await
}
