//! `outguard suppression list|add|remove` (issue 25): a tenant's suppressed recipients — those
//! that hard-bounced (RCPT gets `550 5.1.1`) and those an admin added. On the store the CLI is
//! the operator; with `--server` the same `ops::suppressions` rules run behind the API.

use clap::Subcommand;
use outguard_admin::ops::{self, Actor};
use outguard_store::{Store, Suppression};
use outguard_types::api::NewSuppression;
use outguard_types::config::Config;
use serde_json::json;

use super::output::{done, now_ms, ops_error, print_list, time};
use super::remote::{Remote, decode};

#[derive(Debug, Subcommand)]
pub enum SuppressionCmd {
    /// Suppressed recipients in force, newest first.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
    /// Suppress a recipient for a tenant (default `[suppression] duration`).
    Add {
        #[arg(long)]
        tenant: String,
        recipient: String,
        /// Days it lasts (1–365).
        #[arg(long)]
        days: Option<u32>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a tenant's suppression of a recipient.
    Remove {
        #[arg(long)]
        tenant: String,
        recipient: String,
    },
}

pub fn print_suppressions(json: bool, list: &[Suppression]) -> anyhow::Result<()> {
    let rows = list
        .iter()
        .map(|s| {
            vec![
                s.tenant.clone(),
                s.recipient.clone(),
                s.source.clone(),
                time(s.until),
                s.reason.clone(),
            ]
        })
        .collect();
    print_list(
        json,
        list,
        &["TENANT", "RECIPIENT", "SOURCE", "UNTIL", "REASON"],
        rows,
    )
}

fn added(s: &Suppression) -> String {
    format!(
        "{} suppressed for tenant {} until {}",
        s.recipient,
        s.tenant,
        time(s.until)
    )
}

/// On the store, as the operator.
pub async fn run(
    cmd: SuppressionCmd,
    cfg: &Config,
    store: &Store,
    json: bool,
) -> anyhow::Result<()> {
    let actor = Actor::cli();
    match cmd {
        SuppressionCmd::List { tenant, limit } => {
            let list = ops::suppressions::list(store, &actor, tenant.as_deref(), now_ms(), limit)
                .await
                .map_err(ops_error)?;
            print_suppressions(json, &list)
        }
        SuppressionCmd::Add {
            tenant,
            recipient,
            days,
            reason,
        } => {
            let req = NewSuppression {
                tenant: Some(tenant.clone()),
                recipient,
                days,
                reason,
            };
            let s = ops::suppressions::add(
                store,
                &actor,
                &tenant,
                &req,
                cfg.suppression.duration,
                now_ms(),
            )
            .await
            .map_err(ops_error)?;
            done(json, &s, &added(&s))
        }
        SuppressionCmd::Remove { tenant, recipient } => {
            ops::suppressions::remove(store, &actor, &tenant, &recipient)
                .await
                .map_err(ops_error)?;
            removed(json, &tenant, &recipient)
        }
    }
}

fn removed(json: bool, tenant: &str, recipient: &str) -> anyhow::Result<()> {
    let obj = json!({"tenant": tenant, "recipient": recipient, "removed": true});
    done(
        json,
        &obj,
        &format!("suppression of {recipient} for tenant {tenant} removed"),
    )
}

/// Through the running server's API (`--server`).
pub async fn via_api(cmd: SuppressionCmd, api: &Remote, json: bool) -> anyhow::Result<()> {
    match cmd {
        SuppressionCmd::List { tenant, limit } => {
            let v = api
                .get(
                    &["suppressions"],
                    &[("tenant", tenant), ("limit", Some(limit.to_string()))],
                )
                .await?;
            let list: Vec<Suppression> = decode(&v, "suppressions")?;
            print_suppressions(json, &list)
        }
        SuppressionCmd::Add {
            tenant,
            recipient,
            days,
            reason,
        } => {
            let body = NewSuppression {
                tenant: Some(tenant),
                recipient,
                days,
                reason,
            };
            let v = api.post(&["suppressions"], Some(&body)).await?;
            let s: Suppression = decode(&v, "suppression")?;
            done(json, &s, &added(&s))
        }
        SuppressionCmd::Remove { tenant, recipient } => {
            api.delete(&["suppressions", &tenant, &recipient]).await?;
            removed(json, &tenant, &recipient)
        }
    }
}
