//! The what-if simulator (issue 22): recorded transactions replayed, in time order, through the
//! very decisions the relay takes — [`admit_mail`], [`check_sender`], [`reserve_recipient`],
//! [`after_verdict`] and the restriction records they return — against a fresh counter store
//! (the caller passes an empty in-memory one) on the recorded clock, with a candidate policy.
//! Nothing here decides anything of its own: it sequences the production functions as
//! `outguard_relay::enforce` does, keeps the restrictions they make (per tenant, the history
//! those functions read), applies the real lifts at their recorded times, and compares what it
//! made with what really happened.
//!
//! What the record cannot say, the report names in [`SimReport::approximations`] (e.g. mail
//! refused at MAIL while a real restriction held never named its recipients).

use std::collections::{BTreeMap, HashMap};

use outguard_types::model::Millis;
use outguard_types::policy::{EffectivePolicy, Policy, PolicySettings};
use outguard_types::verdict::{Class, Verdict};
use serde::{Deserialize, Serialize};

use crate::counters::{CounterError, Counters};
use crate::decide::{Action, SenderRef};
use crate::disposition::{Disposition, disposition};
use crate::mail::{admit_mail, check_sender};
use crate::rcpt::{RcptDecision, RcptRequest, reserve_recipient};
use crate::reply::Reject;
use crate::restriction::{LimitKind, Restriction, Subject, lift};
use crate::verdict::{ScannedMessage, after_verdict};

/// Refused recipients kept as samples in the report.
pub const REFUSED_SAMPLES: usize = 20;
/// A simulated and a recorded restriction of the same subject and limit are the same one when
/// made this close together (the relay reserves at RCPT; the record is at end of DATA).
pub const DEFAULT_MATCH_TOLERANCE_MS: i64 = 60_000;

/// Who sent a recorded transaction (owned [`SenderRef`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SimSender {
    Account {
        address: String,
    },
    Connector {
        cidr: String,
        limit_per_hour: Option<u32>,
    },
}

impl SimSender {
    pub fn as_ref(&self) -> SenderRef<'_> {
        match self {
            SimSender::Account { address } => SenderRef::Account(address),
            SimSender::Connector {
                cidr,
                limit_per_hour,
            } => SenderRef::Connector {
                cidr,
                limit_per_hour: *limit_per_hour,
            },
        }
    }
}

/// One recipient as the relay saw it at RCPT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRcpt {
    pub address: String,
    /// In one of the tenant's accepted domains.
    pub internal: bool,
}

/// The completed part of a transaction: the message and its verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct SimMessage {
    pub id: String,
    /// End of DATA (the record's `received_at`): when the verdict was counted.
    pub at: Millis,
    pub class: Class,
    /// The verdict's score (for the candidate's `reject_score`); None: not recorded.
    pub score: Option<f64>,
}

/// One recorded SMTP transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Txn {
    /// When its recipients were given (RCPT).
    pub at: Millis,
    pub sender: SimSender,
    pub tenant: String,
    /// The address policies are matched against (the account, or a connector's MAIL FROM).
    pub policy_sender: String,
    /// In RCPT order: the ones the relay accepted first, then any it refused.
    pub rcpts: Vec<SimRcpt>,
    /// None: the transaction never completed (every RCPT was refused).
    pub message: Option<SimMessage>,
}

/// The policies a replay decides with: the stored ones with the candidate's overrides on top.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    /// `[policy.default]` of the configuration.
    pub service: PolicySettings,
    /// Per tenant: its default settings and its custom policies.
    pub tenants: HashMap<String, (PolicySettings, Vec<Policy>)>,
    /// `[limits] messages_per_minute` (not a policy key; the same as the record's).
    pub messages_per_minute: u32,
    cache: HashMap<(String, String), EffectivePolicy>,
}

/// Set every key `over` sets on `base` (the candidate: `--set KEY=VALUE`, `--policy FILE`).
pub fn overlay(base: &mut PolicySettings, over: &PolicySettings) -> Result<(), String> {
    for (key, value) in over.entries() {
        if let Some(v) = value {
            base.set_key(key, &v)?;
        }
    }
    Ok(())
}

impl Candidate {
    pub fn new(service: PolicySettings, messages_per_minute: u32) -> Candidate {
        Candidate {
            service,
            messages_per_minute,
            ..Default::default()
        }
    }

    /// The overrides apply to every policy a sender could match: the tenants' defaults and
    /// their custom policies (and, for tenants without stored settings, the service's).
    pub fn with_overrides(mut self, over: &PolicySettings) -> Result<Candidate, String> {
        overlay(&mut self.service, over)?;
        for (default, policies) in self.tenants.values_mut() {
            overlay(default, over)?;
            for p in policies {
                overlay(&mut p.settings, over)?;
            }
        }
        self.cache.clear();
        Ok(self)
    }

    /// The settings in force for `sender` of `tenant`, as `crate::effective_for` resolves them.
    pub fn effective(&mut self, tenant: &str, sender: &str) -> &EffectivePolicy {
        let key = (tenant.to_string(), sender.to_ascii_lowercase());
        let (service, tenants) = (&self.service, &self.tenants);
        self.cache
            .entry(key)
            .or_insert_with(|| match tenants.get(tenant) {
                Some((default, policies)) => {
                    crate::effective_for(policies, default, service, sender).1
                }
                None => crate::effective_for(&[], service, service, sender).1,
            })
    }
}

/// What really happened in the replayed span, besides the traffic.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Every restriction created before the span's end (with its lift, if any).
    pub restrictions: Vec<Restriction>,
    pub from: Millis,
    pub to: Millis,
}

/// The limits a replay can reproduce (the others come from outside the traffic: manual,
/// complaints, bounces, unregistered domains — those are taken from the record as they were).
pub fn simulated_limit(limit: LimitKind) -> bool {
    matches!(
        limit,
        LimitKind::ExternalPerHour
            | LimitKind::InternalPerHour
            | LimitKind::PerDay
            | LimitKind::ConnectorPerHour
            | LimitKind::SpamPerHour
            | LimitKind::SpamRatio
            | LimitKind::TenantSpamPerHour
    )
}

/// A restriction (real or simulated) as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimRestriction {
    pub subject: Subject,
    pub tenant: String,
    pub limit: LimitKind,
    pub at: Millis,
    pub until: Option<Millis>,
    /// The numbers that made it (`"external recipients in last hour: 6 > 5"`).
    pub measures: Vec<String>,
    /// Recipients the subject had sent in the replay before it (None for recorded ones).
    pub after_recipients: Option<u64>,
    /// Spam messages the subject had sent in the replay before it.
    pub after_spam_messages: Option<u64>,
}

impl SimRestriction {
    fn of(r: &Restriction, counts: Option<(u64, u64)>) -> SimRestriction {
        SimRestriction {
            subject: r.subject.clone(),
            tenant: r.tenant.clone(),
            limit: r.reason.limit,
            at: r.created_at,
            until: r.until,
            measures: r.reason.counts.iter().map(ToString::to_string).collect(),
            after_recipients: counts.map(|c| c.0),
            after_spam_messages: counts.map(|c| c.1),
        }
    }
}

/// One refused recipient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusedSample {
    pub at: Millis,
    pub sender: String,
    pub tenant: String,
    pub recipient: String,
    /// The reply, e.g. `550 5.2.2` or `550 5.1.8`.
    pub reply: String,
}

/// A simulated restriction that the record also has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matched {
    pub simulated: SimRestriction,
    pub real_at: Millis,
}

/// The comparison with what really happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    /// Made by both (same subject and limit, within the tolerance).
    pub same: Vec<Matched>,
    /// Real restrictions the candidate would not have made.
    pub only_real: Vec<SimRestriction>,
    /// Restrictions only the candidate makes.
    pub only_simulated: Vec<SimRestriction>,
}

/// The replay's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    pub from: Millis,
    pub to: Millis,
    pub transactions: u64,
    pub recipients: u64,
    /// Recipients the candidate admits / refuses (at MAIL, RCPT, or with their message at the
    /// end of DATA).
    pub admitted: u64,
    pub refused: u64,
    /// Messages refused at the end of DATA (spam over `reject_score`).
    pub rejected_messages: u64,
    /// Refused recipients by reply (`"550 5.2.2"` → count).
    pub refused_by_reply: BTreeMap<String, u64>,
    pub refused_samples: Vec<RefusedSample>,
    /// Restrictions the candidate makes, in time order.
    pub restrictions: Vec<SimRestriction>,
    /// Alerts the candidate raises without restricting, by kind.
    pub alerts: BTreeMap<String, u64>,
    pub diff: Diff,
    /// What the record cannot tell, and how the replay filled it in.
    pub approximations: Vec<String>,
}

/// Per-subject tallies for "after how many recipients / spam messages".
#[derive(Default)]
struct Tally {
    recipients: u64,
    spam: u64,
}

/// A replay in progress: feed it the transactions in time order ([`Replay::feed`]), then
/// [`Replay::finish`]. (A stream, so a week of millions of messages need not be in memory at
/// once; [`replay`] does it for a slice.)
pub struct Replay<'c> {
    counters: &'c dyn Counters,
    candidate: Candidate,
    /// Per tenant: the restriction history the decision functions read.
    history: HashMap<String, Vec<Restriction>>,
    tally: HashMap<Subject, Tally>,
    report: SimReport,
    /// Recorded restrictions still to come in, by time (the ones a replay does not make).
    outside: Vec<Restriction>,
    /// Recorded lifts still to apply: (at, subject, by, reason).
    lifts: Vec<(Millis, Subject, String, String)>,
    recorded: Recorded,
}

fn reply_text(r: &Reject) -> String {
    format!("{} {}", r.code, r.enhanced)
}

fn subject_key(s: &Subject) -> Subject {
    match s {
        Subject::Account(a) => Subject::Account(a.to_ascii_lowercase()),
        other => other.clone(),
    }
}

impl Replay<'_> {
    /// Bring the recorded restrictions and lifts up to `now`.
    fn advance(&mut self, now: Millis) {
        while self.outside.last().is_some_and(|r| r.created_at <= now) {
            if let Some(r) = self.outside.pop() {
                self.history.entry(r.tenant.clone()).or_default().push(r);
            }
        }
        while self.lifts.last().is_some_and(|l| l.0 <= now) {
            let Some((at, subject, by, reason)) = self.lifts.pop() else {
                break;
            };
            for h in self.history.values_mut() {
                for r in h.iter_mut() {
                    if r.subject.same(&subject)
                        && r.is_active(at)
                        && simulated_limit(r.reason.limit)
                    {
                        *r = lift(r, &by, &reason, at);
                    }
                }
            }
        }
    }

    fn take(&mut self, action: Action) {
        match action {
            Action::Restrict { restriction } => {
                let t = self.tally.get(&subject_key(&restriction.subject));
                let counts = t.map_or((0, 0), |t| (t.recipients, t.spam));
                self.report
                    .restrictions
                    .push(SimRestriction::of(&restriction, Some(counts)));
                self.history
                    .entry(restriction.tenant.clone())
                    .or_default()
                    .push(restriction);
            }
            Action::Alert { alert } => {
                *self
                    .report
                    .alerts
                    .entry(alert.kind.as_str().to_string())
                    .or_default() += 1;
            }
        }
    }

    fn refuse(&mut self, txn: &Txn, rcpt: &SimRcpt, reject: &Reject, at: Millis) {
        let reply = reply_text(reject);
        self.report.refused += 1;
        *self
            .report
            .refused_by_reply
            .entry(reply.clone())
            .or_default() += 1;
        if self.report.refused_samples.len() < REFUSED_SAMPLES {
            self.report.refused_samples.push(RefusedSample {
                at,
                sender: txn.sender.as_ref().subject().id().to_string(),
                tenant: txn.tenant.clone(),
                recipient: rcpt.address.clone(),
                reply,
            });
        }
    }

    fn count(&mut self, subject: Subject, recipients: u64, spam: bool) {
        let t = self.tally.entry(subject).or_default();
        t.recipients += recipients;
        t.spam += u64::from(spam);
    }

    async fn transaction(
        &mut self,
        txn: &Txn,
        eff: &EffectivePolicy,
        rate: u32,
    ) -> Result<(), CounterError> {
        let now = txn.at;
        self.advance(now);
        let sender = txn.sender.as_ref();
        let tenant = txn.tenant.as_str();
        self.report.transactions += 1;
        self.report.recipients += txn.rcpts.len() as u64;
        let mut reservations = Vec::new();
        if txn.message.is_some() {
            let history = self.history.entry(tenant.to_string()).or_default();
            match admit_mail(self.counters, history, &sender, tenant, rate, now).await? {
                Ok(r) => reservations.extend(r),
                Err(refusal) => {
                    for rcpt in &txn.rcpts {
                        self.refuse(txn, rcpt, &refusal.reject, now);
                    }
                    return Ok(());
                }
            }
        }
        let mut admitted: Vec<&SimRcpt> = Vec::new();
        for rcpt in &txn.rcpts {
            let history = self.history.entry(tenant.to_string()).or_default();
            // A restriction made earlier in this transaction holds at once (as at the relay).
            if let Err(refusal) = check_sender(history, &sender, tenant, now) {
                self.refuse(txn, rcpt, &refusal.reject, now);
                continue;
            }
            let req = RcptRequest {
                sender,
                tenant,
                internal: rcpt.internal,
                n: 1,
            };
            match reserve_recipient(self.counters, &req, eff, history, now).await? {
                RcptDecision::Admit {
                    reservation,
                    actions,
                    ..
                } => {
                    reservations.push(reservation);
                    admitted.push(rcpt);
                    self.report.admitted += 1;
                    self.count(subject_key(&sender.subject()), 1, false);
                    self.count(Subject::Tenant(tenant.to_string()), 1, false);
                    for a in actions {
                        self.take(a);
                    }
                }
                RcptDecision::Refuse {
                    refusal, action, ..
                } => {
                    self.refuse(txn, rcpt, &refusal.reject, now);
                    if let Some(a) = action {
                        self.take(a);
                    }
                }
            }
        }
        match &txn.message {
            Some(msg) if !admitted.is_empty() => {
                let scanned = ScannedMessage {
                    sender,
                    tenant,
                    class: msg.class,
                    reasons: &[],
                    message_id: &msg.id,
                };
                let spam = msg.class.is_spam();
                self.count(subject_key(&sender.subject()), 0, spam);
                self.count(Subject::Tenant(tenant.to_string()), 0, spam);
                let history = self.history.entry(tenant.to_string()).or_default();
                let out = after_verdict(self.counters, &scanned, eff, history, msg.at).await?;
                for a in out.actions {
                    self.take(a);
                }
                // Refused at end of DATA (spam over the candidate's reject_score): the relay
                // gives back what the transaction reserved.
                let verdict = Verdict {
                    score: msg.score.unwrap_or(0.0),
                    class: msg.class,
                    reasons: Vec::new(),
                };
                if let Disposition::Reject(reject) = disposition(&verdict, eff, true, true) {
                    self.report.rejected_messages += 1;
                    self.report.admitted -= admitted.len() as u64;
                    for rcpt in admitted {
                        self.refuse(txn, rcpt, &reject, msg.at);
                    }
                    for r in &reservations {
                        self.counters.release(r).await?;
                    }
                }
            }
            // Not completed: the relay gives back what the transaction reserved.
            _ => {
                for r in &reservations {
                    self.counters.release(r).await?;
                }
            }
        }
        Ok(())
    }
}

impl<'c> Replay<'c> {
    /// Start a replay on `counters` (a fresh, empty store: the replay's counts are its own)
    /// with `candidate`, against what `recorded` says really happened.
    pub fn new(counters: &'c dyn Counters, candidate: Candidate, recorded: Recorded) -> Replay<'c> {
        // Restrictions from before the span are history as they were; inside it, only those a
        // replay cannot make come in from the record, and the lifts of the others.
        let mut history: HashMap<String, Vec<Restriction>> = HashMap::new();
        let mut outside = Vec::new();
        let mut lifts = Vec::new();
        for r in &recorded.restrictions {
            if r.created_at < recorded.from {
                history.entry(r.tenant.clone()).or_default().push(r.clone());
            } else if !simulated_limit(r.reason.limit) {
                outside.push(r.clone());
            } else if let Some(l) = &r.lifted {
                lifts.push((l.at, r.subject.clone(), l.by.clone(), l.reason.clone()));
            }
        }
        outside.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        lifts.sort_by_key(|l| std::cmp::Reverse(l.0));
        Replay {
            counters,
            candidate,
            history,
            tally: HashMap::new(),
            report: SimReport {
                from: recorded.from,
                to: recorded.to,
                ..Default::default()
            },
            outside,
            lifts,
            recorded,
        }
    }

    /// Replay one transaction (each no earlier than the one before).
    pub async fn feed(&mut self, txn: &Txn) -> Result<(), CounterError> {
        let eff = self
            .candidate
            .effective(&txn.tenant, &txn.policy_sender)
            .clone();
        let rate = self.candidate.messages_per_minute;
        self.transaction(txn, &eff, rate).await
    }

    /// The report, compared with the record (`tolerance_ms`: see [`compare`]).
    pub fn finish(self, tolerance_ms: i64) -> SimReport {
        let mut report = self.report;
        report.diff = compare(&report.restrictions, &self.recorded, tolerance_ms);
        report.approximations = approximations();
        report
    }
}

/// Replay `txns` (sorted here by time, stably) with `candidate` on `counters` (a fresh,
/// empty store), and compare with `recorded`.
pub async fn replay(
    counters: &dyn Counters,
    txns: &[Txn],
    candidate: Candidate,
    recorded: Recorded,
    tolerance_ms: i64,
) -> Result<SimReport, CounterError> {
    let mut order: Vec<usize> = (0..txns.len()).collect();
    order.sort_by_key(|&i| txns[i].at);
    let mut run = Replay::new(counters, candidate, recorded);
    for i in order {
        run.feed(&txns[i]).await?;
    }
    Ok(run.finish(tolerance_ms))
}

/// Pair simulated restrictions with recorded ones (same subject and limit, closest in time
/// within `tolerance_ms`).
pub fn compare(simulated: &[SimRestriction], recorded: &Recorded, tolerance_ms: i64) -> Diff {
    let real: Vec<SimRestriction> = recorded
        .restrictions
        .iter()
        .filter(|r| {
            simulated_limit(r.reason.limit)
                && r.created_at >= recorded.from
                && r.created_at <= recorded.to
        })
        .map(|r| SimRestriction::of(r, None))
        .collect();
    let mut used = vec![false; real.len()];
    let mut diff = Diff::default();
    for s in simulated {
        let best = real
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                !used[*i]
                    && r.limit == s.limit
                    && r.subject.same(&s.subject)
                    && (r.at - s.at).abs() <= tolerance_ms
            })
            .min_by_key(|(_, r)| (r.at - s.at).abs())
            .map(|(i, _)| i);
        match best {
            Some(i) => {
                used[i] = true;
                diff.same.push(Matched {
                    simulated: s.clone(),
                    real_at: real[i].at,
                });
            }
            None => diff.only_simulated.push(s.clone()),
        }
    }
    diff.only_real = real
        .into_iter()
        .zip(used)
        .filter(|(_, u)| !u)
        .map(|(r, _)| r)
        .collect();
    diff
}

/// The replay's known limits, printed with every report.
pub fn approximations() -> Vec<String> {
    [
        "Mail refused at MAIL while a real restriction held never named its recipients: a \
         candidate that would not have restricted the sender cannot replay that mail.",
        "Recipients are replayed at their RCPT time when the relay refused one of them, \
         otherwise at the message's receive time (end of DATA, milliseconds later).",
        "Internal or external is judged against the tenants' accepted domains as they are now.",
        "BCC copies of suspicious mail and the trust ramp are not replayed.",
        "The spam limits use the recorded verdict class; the top spam reasons are not stored \
         per message, so simulated spam restrictions name none.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Restrictions per UTC day (the day's start → count), for the chart.
pub fn per_day(list: &[SimRestriction]) -> BTreeMap<Millis, u64> {
    let mut m = BTreeMap::new();
    for r in list {
        *m.entry(crate::restriction::utc_day_start(r.at))
            .or_default() += 1;
    }
    m
}
