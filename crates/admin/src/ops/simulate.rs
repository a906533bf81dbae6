//! The what-if simulator (issue 22) as a management action: read the recorded traffic of a span
//! — messages with their recipients and verdict class, the recipients the policy refused at
//! RCPT, the restrictions and their lifts — and replay it with candidate settings through
//! `outguard_policy::simulate` on a fresh in-memory counter store. Read-only: nothing is
//! written, no counter of the running relay is touched.
//!
//! Who may run it (SPEC §9): it reads what the policies screen and the trace already show, so
//! anyone who may read a tenant's policies may simulate it — operators any tenant or all of
//! them, tenant admins and tenant readers their own tenant only (forced; another tenant reads
//! as not found). The candidate values are not held to `[policy.ceilings]` or the operator-only
//! keys: a simulation changes nothing, and an admin may well ask what a value beyond its reach
//! would have done. The work is bounded: at most [`MAX_WINDOW_MS`] of traffic.

use std::collections::HashMap;

use outguard_policy::rcpt::is_internal;
use outguard_policy::simulate::{
    Candidate, DEFAULT_MATCH_TOLERANCE_MS, Recorded, SimMessage, SimRcpt, SimReport, SimSender,
    Txn, replay,
};
use outguard_store::memory_counters::MemoryCounters;
use outguard_store::{PolicyRefusal, Store, TrafficMessage};
use outguard_types::model::{DomainStatus, Millis, Submitter};
use outguard_types::policy::PolicySettings;
use outguard_types::verdict::Class;

use super::{Actor, OpsError};

/// The longest span one simulation may replay (31 days).
pub const MAX_WINDOW_MS: i64 = 31 * 86_400_000;
/// A refused RCPT belongs to the next message of the same sender received this soon after it
/// (the relay's DATA timeout): the refusal was that transaction's.
const SAME_TRANSACTION_MS: i64 = 10 * 60_000;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulateRequest {
    pub from: Millis,
    pub to: Millis,
    /// None: every tenant the actor sees (operators); a tenant role always gets its own.
    pub tenant: Option<String>,
    /// The candidate: keys set here replace the stored values of every policy.
    pub overrides: PolicySettings,
}

/// The service settings the relay decides with (from the configuration).
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub policy_default: PolicySettings,
    pub messages_per_minute: u32,
}

/// The tenant the actor may simulate (tenant roles: forced to their own).
async fn scope(
    store: &Store,
    actor: &Actor,
    tenant: Option<&str>,
) -> Result<Option<String>, OpsError> {
    match (actor.is_operator(), tenant, actor.tenant.as_deref()) {
        (true, None, _) => Ok(None),
        (true, Some(t), _) => super::tenants::find(store, actor, t)
            .await
            .map(|t| Some(t.name)),
        (false, Some(t), Some(own)) if t != own => {
            Err(OpsError::NotFound(format!("tenant {t} not found")))
        }
        (false, _, Some(own)) => Ok(Some(own.to_string())),
        (false, _, None) => Err(OpsError::Forbidden(
            "this token is not bound to a tenant".into(),
        )),
    }
}

/// Run the simulation (read-only) as `actor`.
pub async fn run(
    store: &Store,
    service: &ServiceSettings,
    actor: &Actor,
    req: &SimulateRequest,
) -> Result<SimReport, OpsError> {
    if req.to <= req.from {
        return Err(OpsError::Invalid("since: the span is empty".into()));
    }
    if req.to - req.from > MAX_WINDOW_MS {
        return Err(OpsError::Invalid(format!(
            "since: at most {} days of traffic can be replayed at once",
            MAX_WINDOW_MS / 86_400_000
        )));
    }
    req.overrides.validate().map_err(OpsError::Invalid)?;
    let tenant = scope(store, actor, req.tenant.as_deref()).await?;
    let tenants: Vec<String> = match &tenant {
        Some(t) => vec![t.clone()],
        None => store
            .list_tenants()
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect(),
    };
    let mut candidate = Candidate::new(service.policy_default.clone(), service.messages_per_minute);
    let mut domains: HashMap<String, Vec<String>> = HashMap::new();
    for t in &tenants {
        let default = store.tenant_default(t).await?;
        let policies = store.list_policies(t).await?;
        candidate.tenants.insert(t.clone(), (default, policies));
        let verified = store
            .list_domains(Some(t))
            .await?
            .into_iter()
            .filter(|d| d.status == DomainStatus::Verified)
            .map(|d| d.domain)
            .collect();
        domains.insert(t.clone(), verified);
    }
    let candidate = candidate
        .with_overrides(&req.overrides)
        .map_err(OpsError::Invalid)?;
    let limits: HashMap<String, Option<u32>> = store
        .list_connectors(tenant.as_deref())
        .await?
        .into_iter()
        .map(|c| (c.cidr.to_string(), c.limit_per_hour))
        .collect();
    let messages = store
        .traffic_between(req.from, req.to, tenant.as_deref())
        .await?;
    let refusals = store
        .policy_refusals_between(req.from, req.to, tenant.as_deref())
        .await?;
    let txns = transactions(messages, refusals, &domains, &limits);
    let restrictions = store
        .list_restrictions_at(tenant.as_deref(), None)
        .await?
        .into_iter()
        .map(|s| s.restriction)
        .filter(|r| r.created_at < req.to)
        .collect();
    let recorded = Recorded {
        restrictions,
        from: req.from,
        to: req.to,
    };
    let counters = MemoryCounters::new();
    replay(
        &counters,
        &txns,
        candidate,
        recorded,
        DEFAULT_MATCH_TOLERANCE_MS,
    )
    .await
    .map_err(|e| OpsError::Internal(e.to_string()))
}

fn sim_sender(s: &Submitter, limits: &HashMap<String, Option<u32>>) -> Option<SimSender> {
    match s {
        Submitter::Account(a) => Some(SimSender::Account { address: a.clone() }),
        Submitter::Connector(c) => Some(SimSender::Connector {
            cidr: c.clone(),
            limit_per_hour: limits.get(c).copied().flatten(),
        }),
        Submitter::System => None,
    }
}

fn sender_key(s: &Submitter) -> String {
    match s {
        Submitter::Account(a) => format!("a:{}", a.to_ascii_lowercase()),
        Submitter::Connector(c) => format!("c:{c}"),
        Submitter::System => String::new(),
    }
}

/// A refusal because the sender was already restricted (not a limit crossing).
fn restricted_reply(reply: &str) -> bool {
    ["5.1.8", "5.7.711", "5.7.705", "5.7.750"]
        .iter()
        .any(|c| reply.ends_with(c))
}

/// The recorded messages and refused recipients as transactions. A limit refusal joins the
/// next message of its sender within [`SAME_TRANSACTION_MS`] (the transaction's accepted
/// recipients came first, then the refused one: the relay restricts at the crossing and
/// refuses the rest), and the refusals that follow it in that transaction join it too; that
/// transaction's recipients are then replayed at the refusal's time. Other refusals are
/// transactions of their own that never completed.
pub fn transactions(
    messages: Vec<TrafficMessage>,
    refusals: Vec<PolicyRefusal>,
    domains: &HashMap<String, Vec<String>>,
    limits: &HashMap<String, Option<u32>>,
) -> Vec<Txn> {
    let none: Vec<String> = Vec::new();
    let rcpt = |tenant: &str, address: String| SimRcpt {
        internal: is_internal(&address, domains.get(tenant).unwrap_or(&none)),
        address,
    };
    let mut by_sender: HashMap<String, Vec<usize>> = HashMap::new();
    let mut txns: Vec<Txn> = Vec::with_capacity(messages.len() + refusals.len());
    for m in messages {
        let Some(sender) = sim_sender(&m.submitter, limits) else {
            continue;
        };
        by_sender
            .entry(sender_key(&m.submitter))
            .or_default()
            .push(txns.len());
        let policy_sender = match &m.submitter {
            Submitter::Account(a) => a.clone(),
            _ => m.mail_from.clone(),
        };
        let rcpts = m.rcpts.into_iter().map(|r| rcpt(&m.tenant, r)).collect();
        txns.push(Txn {
            at: m.at,
            sender,
            policy_sender,
            rcpts,
            message: Some(SimMessage {
                id: m.id,
                at: m.at,
                class: m.class.unwrap_or(Class::Clean),
                score: m.score,
            }),
            tenant: m.tenant,
        });
    }
    // Per sender: the message an open transaction's refusals join, and until when.
    let mut open: HashMap<String, (usize, Millis)> = HashMap::new();
    let mut standalone = Vec::new();
    for r in refusals {
        let Some(sender) = sim_sender(&r.submitter, limits) else {
            continue;
        };
        let key = sender_key(&r.submitter);
        let target = if restricted_reply(&r.reply) {
            open.get(&key)
                .filter(|(_, until)| r.at <= *until)
                .map(|(i, _)| *i)
        } else {
            let list = by_sender.get(&key).map_or(&[][..], Vec::as_slice);
            let received = |i: usize| txns[i].message.as_ref().map_or(txns[i].at, |m| m.at);
            let pos = list.partition_point(|&i| received(i) < r.at);
            list.get(pos)
                .copied()
                .filter(|&i| received(i) - r.at <= SAME_TRANSACTION_MS)
        };
        match target {
            Some(i) => {
                let t = &mut txns[i];
                t.at = t.at.min(r.at);
                let at = t.message.as_ref().map_or(t.at, |m| m.at);
                open.insert(key, (i, at));
                let internal = rcpt(&t.tenant, r.rcpt);
                t.rcpts.push(internal);
            }
            None => {
                let policy_sender = match &r.submitter {
                    Submitter::Account(a) => a.clone(),
                    _ => r.mail_from.clone(),
                };
                standalone.push(Txn {
                    at: r.at,
                    sender,
                    policy_sender,
                    rcpts: vec![rcpt(&r.tenant, r.rcpt)],
                    message: None,
                    tenant: r.tenant,
                });
            }
        }
    }
    txns.extend(standalone);
    txns
}

/// `since` as an age (`7d`, `36h`) back from `now`: the span `[now - age, now)`.
pub fn span(since: &str, now: Millis) -> Result<(Millis, Millis), OpsError> {
    let age = outguard_types::config::parse_duration(since)
        .map_err(|e| OpsError::Invalid(format!("since: {e}")))?;
    let ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    if ms > MAX_WINDOW_MS {
        return Err(OpsError::Invalid(format!(
            "since: at most {} days of traffic can be replayed at once",
            MAX_WINDOW_MS / 86_400_000
        )));
    }
    Ok((now.saturating_sub(ms), now))
}

/// The candidate's overrides from `KEY=VALUE` pairs (policy keys, SPEC §8). An unknown key or a
/// bad value is refused with the key's name.
pub fn overrides<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<PolicySettings, OpsError> {
    let mut s = PolicySettings::default();
    for (k, v) in pairs {
        s.set_key(k.trim(), v).map_err(OpsError::Invalid)?;
    }
    Ok(s)
}
