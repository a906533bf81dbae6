//! Mail from domains a tenant has not registered (SPEC §9, EOP's `5.7.750`): a forwarding
//! connector may relay it, but the tenant's connectors together get at most
//! `unregistered_domain_messages_per_hour` such messages per sliding hour. The message that
//! would go past the allowance is refused and the whole tenant is blocked until an operator lifts
//! it (a tenant admin cannot: it is a tenant restriction).
//!
//! Counted at MAIL as a reservation, like recipients at RCPT: a transaction that is not
//! completed gives its unit back, so only messages really sent count. After an operator's lift
//! the same day the tenant is not blocked again, but the allowance still holds message by
//! message (the window keeps sliding), so a lift never means "unlimited until midnight".

use outguard_types::model::Millis;

use crate::counters::{CounterError, Counters, HOUR_MS, Reservation, ReserveOutcome, WindowCheck};
use crate::decide::{Action, Refusal, keys};
use crate::reply::{Measure, Reject};
use crate::restriction::{
    LimitKind, Restriction, RestrictionReason, Subject, active_for, exempt_today,
};

/// The answer for one message from an unregistered domain. One short-lived value per MAIL,
/// never stored: the size difference between the variants does not matter.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum UnregisteredDecision {
    /// Within the allowance: keep the reservation with the transaction.
    Admit(Reservation),
    /// Past it: refuse with `5.7.750`, and block the tenant when `action` says so.
    Refuse {
        refusal: Refusal,
        action: Option<Action>,
    },
}

/// Count one message of `tenant` from an unregistered domain against `per_hour`.
pub async fn admit_unregistered(
    counters: &dyn Counters,
    tenant: &str,
    per_hour: u32,
    history: &[Restriction],
    now: Millis,
) -> Result<UnregisteredDecision, CounterError> {
    let checks = [WindowCheck {
        key: keys::tenant(tenant, "unregistered"),
        window_ms: HOUR_MS,
        limit: u64::from(per_hour),
    }];
    let count = match counters.reserve(&checks, 1, now).await? {
        ReserveOutcome::Admitted(r) => return Ok(UnregisteredDecision::Admit(r)),
        ReserveOutcome::Refused { count, .. } => count,
    };
    let m = Measure::new(
        "messages from unregistered domains in last hour",
        count + 1,
        u64::from(per_hour),
    );
    let subject = Subject::Tenant(tenant.to_string());
    let block = active_for(history, &subject, now).is_none()
        && !exempt_today(history, &subject, now).contains(&LimitKind::UnregisteredDomain);
    let action = block.then(|| Action::Restrict {
        restriction: Restriction::tenant(
            tenant,
            RestrictionReason::new(LimitKind::UnregisteredDomain, vec![m.clone()]),
            now,
        ),
    });
    Ok(UnregisteredDecision::Refuse {
        refusal: Refusal {
            reject: Reject::unregistered_domains(),
            detail: format!("tenant {tenant}: {m}"),
            measures: vec![m],
        },
        action,
    })
}
