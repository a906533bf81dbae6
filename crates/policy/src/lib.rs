//! outguard-policy: the outbound spam policy engine (SPEC §2.4, §2.5, §3) as pure decisions
//! over a narrow counter trait.
//!
//! The relay calls, in message order:
//! 1. [`admit_mail`] at MAIL (restrictions → `5.1.8` / `5.7.711` / `5.7.705`, message rate →
//!    `451 4.7.0`);
//! 2. [`reserve_recipient`] at each RCPT (sliding-window recipient limits, atomic reservation;
//!    `5.2.2` / `5.1.90` plus the [`Action`] to take), and [`Counters::release`] when the
//!    transaction is not completed;
//! 3. after the scan, [`after_verdict`] (spam counters → actions) and [`disposition`] (reject,
//!    quarantine, or the pool, header and BCC copies).
//!
//! Every decision carries the [`Measure`]s that made it, for the trace. Restriction records,
//! lift rules, alert caps and the notification email are pure functions here; storing them,
//! holding mail and sending the email belong to the server.

pub mod alerts;
pub mod bulk;
pub mod conformance;
pub mod counters;
pub mod crossing;
pub mod decide;
pub mod deferrals;
pub mod disposition;
pub mod lift;
pub mod listing;
pub mod login;
pub mod mail;
pub mod notify;
pub mod ramp;
pub mod rates;
pub mod rcpt;
pub mod reply;
pub mod restriction;
pub mod signals;
pub mod simulate;
pub mod suppress;
pub mod unregistered;
pub mod verdict;

pub use alerts::{Alert, AlertCap, AlertKind, CapDecision, Severity};
pub use counters::{
    CounterError, CounterFuture, Counters, Reservation, ReserveOutcome, WindowCheck,
};
pub use decide::{Action, Refusal, SenderRef, effective_for};
pub use disposition::{Disposition, disposition};
pub use mail::{admit_mail, check_message_rate, check_sender};
pub use notify::{NotificationEnvelope, render_notification};
pub use rcpt::{RcptDecision, RcptRequest, check_recipient_count, is_internal, reserve_recipient};
pub use reply::{Measure, Reject};
pub use restriction::{
    Lift, LimitKind, Restriction, RestrictionReason, Subject, next_utc_midnight,
};
pub use signals::SignalStore;
pub use unregistered::{UnregisteredDecision, admit_unregistered};
pub use verdict::{ScannedMessage, VerdictOutcome, after_verdict};
