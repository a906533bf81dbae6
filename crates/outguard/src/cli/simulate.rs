//! `outguard simulate` (issue 22): replay the recorded traffic of a span with candidate policy
//! values and print who would have been restricted, which recipients refused, and how that
//! differs from what really happened. Read-only. On the store (as the operator) or, with
//! `--server`, through `POST /api/v1/simulate` (the token's rules: a tenant token simulates its
//! own tenant). `--set KEY=VALUE` and `--policy FILE` take the policy keys of `policy set`; an
//! unknown key or a bad value is bad usage (exit 64) naming the key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use outguard_admin::api::simulate::{SimulateAnswer, SimulateBody};
use outguard_admin::ops::{self, Actor};
use outguard_policy::simulate::{SimReport, SimRestriction};
use outguard_store::Store;
use outguard_types::config::Config;
use outguard_types::policy::PolicySettings;

use super::UsageError;
use super::output::{now_ms, ops_error, table, time};
use super::remote::{Remote, decode};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// How far back to replay: an age such as 7d or 36h (at most 31 days).
    #[arg(long, default_value = "7d")]
    pub since: String,
    /// Only this tenant (default: every tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// A candidate value, `KEY=VALUE` with a policy key (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Candidate values from a TOML file of policy keys (as in `[policy.default]`); `--set`
    /// wins over the file.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// The candidate's keys and values as typed: the file's first, then `--set`.
fn assignments(a: &SimulateArgs) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if let Some(path) = &a.policy {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("--policy {}: {e}", path.display())))?;
        let file: PolicySettings = toml::from_str(&text)
            .map_err(|e| UsageError(format!("--policy {}: {}", path.display(), e.message())))?;
        file.validate()
            .map_err(|e| UsageError(format!("--policy {}: {e}", path.display())))?;
        for (k, v) in file.entries() {
            if let Some(v) = v {
                out.push((k.to_string(), v));
            }
        }
    }
    for s in &a.set {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| UsageError(format!("--set: `{s}` is not KEY=VALUE")))?;
        out.push((k.trim().to_string(), v.to_string()));
    }
    Ok(out)
}

/// On the store, as the operator.
pub async fn run(a: SimulateArgs, cfg: &Config, store: &Store, json: bool) -> anyhow::Result<()> {
    let pairs = assignments(&a)?;
    let overrides = ops::simulate::overrides(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(ops_error)?;
    let (from, to) = ops::simulate::span(&a.since, now_ms()).map_err(ops_error)?;
    let service = ops::simulate::ServiceSettings {
        policy_default: cfg.policy.default.clone(),
        messages_per_minute: cfg.limits.messages_per_minute,
    };
    let req = ops::simulate::SimulateRequest {
        from,
        to,
        tenant: a.tenant.clone(),
        overrides,
    };
    let report = ops::simulate::run(store, &service, &Actor::cli(), &req)
        .await
        .map_err(ops_error)?;
    print(&report, json)
}

/// Through the API (`--server`).
pub async fn via_api(a: SimulateArgs, api: &Remote, json: bool) -> anyhow::Result<()> {
    let settings: BTreeMap<String, serde_json::Value> = assignments(&a)?
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let body = SimulateBody {
        since: a.since.clone(),
        tenant: a.tenant.clone(),
        settings,
    };
    let v = api.post(&["simulate"], Some(&body)).await?;
    let answer: SimulateAnswer = decode(&v, "simulation")?;
    print(&answer.report, json)
}

fn restriction_rows(list: &[SimRestriction]) -> Vec<Vec<String>> {
    list.iter()
        .map(|r| {
            let opt = |v: Option<u64>| v.map_or_else(|| "-".into(), |n| n.to_string());
            vec![
                r.subject.id().to_string(),
                r.tenant.clone(),
                r.limit.as_str().to_string(),
                time(r.at),
                opt(r.after_recipients),
                opt(r.after_spam_messages),
                r.measures.join("; "),
            ]
        })
        .collect()
}

const HEADERS: [&str; 7] = [
    "SUBJECT",
    "TENANT",
    "LIMIT",
    "AT",
    "AFTER RCPTS",
    "AFTER SPAM",
    "MEASURES",
];

/// The readable report (or the JSON with `--json`).
pub fn print(r: &SimReport, json: bool) -> anyhow::Result<()> {
    if json {
        out!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    out!(
        "Replayed {} to {}: {} transactions, {} recipients ({} admitted, {} refused).",
        time(r.from),
        time(r.to),
        r.transactions,
        r.recipients,
        r.admitted,
        r.refused
    );
    out!();
    out!(
        "Restrictions with the candidate settings: {}",
        r.restrictions.len()
    );
    if !r.restrictions.is_empty() {
        out_text!("{}", table(&HEADERS, &restriction_rows(&r.restrictions)));
    }
    let d = &r.diff;
    out!();
    out!(
        "Compared with what happened: {} the same, {} new, {} that would not have happened.",
        d.same.len(),
        d.only_simulated.len(),
        d.only_real.len()
    );
    if !d.only_simulated.is_empty() {
        out!("New:");
        out_text!("{}", table(&HEADERS, &restriction_rows(&d.only_simulated)));
    }
    if !d.only_real.is_empty() {
        out!("Would not have happened:");
        out_text!("{}", table(&HEADERS, &restriction_rows(&d.only_real)));
    }
    if !r.refused_by_reply.is_empty() {
        out!();
        out!("Refused recipients by reply:");
        for (reply, n) in &r.refused_by_reply {
            out!("  {reply}  {n}");
        }
        let rows: Vec<Vec<String>> = r
            .refused_samples
            .iter()
            .map(|s| {
                vec![
                    time(s.at),
                    s.sender.clone(),
                    s.recipient.clone(),
                    s.reply.clone(),
                ]
            })
            .collect();
        out!("Samples:");
        out_text!("{}", table(&["AT", "SENDER", "RECIPIENT", "REPLY"], &rows));
    }
    if !r.alerts.is_empty() {
        out!();
        for (kind, n) in &r.alerts {
            out!("Alerts {kind}: {n}");
        }
    }
    out!();
    out!("Approximations:");
    for a in &r.approximations {
        out!("  - {a}");
    }
    Ok(())
}
