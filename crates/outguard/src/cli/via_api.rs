//! The management verbs through a running server's admin API (`--server URL --token T`, SPEC
//! §5). Each subcommand makes the API call(s) that match what it does on the store — with the
//! API's own request types (`outguard_types::api`), so the server's `ops` function makes the
//! same change and the same audit entry — and prints the same table with the verb's own printer; `--json` prints the API's JSON (lists as arrays;
//! a call answered `204` prints the same small object the store path prints).
//!
//! What the token may see is the API's business: a tenant token's lists hold its tenant only.
//! Subcommands the API has no equivalent for (`dnsbl check`, `fbl import`, `spam learn` into the
//! store) are refused as bad usage rather than quietly run on a local store.

use outguard_store::{StoredAlert, StoredRestriction};
use outguard_types::api::{
    LiftRequest, NewAccount, NewConnector, NewDomain, NewTenant, NewToken, SendAs,
};
use outguard_types::model::{
    Account, Connector, Domain, MessageRecord, Tenant, TokenInfo, TraceEvent,
};
use outguard_types::policy::{EffectivePolicy, Policy, PolicyScope, PolicySettings};
use serde::Deserialize;
use serde_json::{Value, json};

use super::alerts::{AlertsArgs, parse_kind, print_alerts};
use super::output::{done, table};
use super::policy::{
    POLICY_HEADERS, PolicyCmd, apply_assignments, check_scope, policy_row, print_policy,
    split_set_args,
};
use super::queue::{QueueCmd, parse_state};
use super::records::{
    AccountCmd, AdminCmd, ConnectorCmd, DomainCmd, SendAsCmd, TenantCmd, TokenCmd, domain_added,
    parse_cidr, print_account_added, print_accounts, print_connectors, print_domains,
    print_tenants, print_tokens, read_password_line,
};
use super::remote::{Remote, decode};
use super::restricted::{
    LiftOutcome, RestrictedCmd, print_cleared, print_lift, print_restrictions,
};
use super::trace::{
    MessageLine, TraceArgs, parse_since, print_events, print_message_header, print_message_line,
    print_messages,
};
use super::{Command, UsageError};

/// Whether `--server` applies to this command (every verb that works on the store).
pub fn routed(cmd: &Command) -> bool {
    match cmd {
        Command::Serve { .. } | Command::CheckConfig { .. } | Command::Demo { .. } => false,
        Command::Spam(cmd) => matches!(cmd, super::spam::SpamCmd::Learn { overlay: None, .. }),
        _ => true,
    }
}

fn not_available(what: &str) -> anyhow::Error {
    UsageError(format!(
        "`{what}` is not available through --server; run it on the server host"
    ))
    .into()
}

/// Runs one routed command against the API; the exit code on success.
pub async fn run(cmd: Command, api: &Remote, json: bool) -> anyhow::Result<u8> {
    match cmd {
        Command::Tenant(c) => tenant(c, api, json).await?,
        Command::Domain(c) => domain(c, api, json).await?,
        Command::Account(c) => account(c, api, json).await?,
        Command::Connector(c) => connector(c, api, json).await?,
        Command::Admin(c) => admin(c, api, json).await?,
        Command::Policy(c) => policy(c, api, json).await?,
        Command::Restricted(c) => restricted(c, api, json).await?,
        Command::Queue(c) => queue(c, api, json).await?,
        Command::Trace(a) => trace(a, api, json).await?,
        Command::Alerts(a) => alerts(a, api, json).await?,
        Command::Simulate(a) => super::simulate::via_api(a, api, json).await?,
        Command::Suppression(c) => super::suppression::via_api(c, api, json).await?,
        Command::Dnsbl(_) => return Err(not_available("dnsbl check")),
        Command::Fbl(_) => return Err(not_available("fbl import")),
        Command::Spam(_) => return Err(not_available("spam learn")),
        Command::Serve { .. } | Command::CheckConfig { .. } | Command::Demo { .. } => {
            return Err(UsageError("this command does not take --server".into()).into());
        }
    }
    Ok(0)
}

/// `--json`: the API's answer as it came.
fn print_json(v: &Value) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A list answer: the API's JSON, or the verb's table from the decoded rows.
fn list<T: for<'de> Deserialize<'de>>(
    v: &Value,
    json: bool,
    what: &str,
    table: impl FnOnce(&[T]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if json {
        return print_json(v);
    }
    let rows: Vec<T> = decode(v, what)?;
    table(&rows)
}

/// DELETE `path`, then the small object the store path prints (the API answers 204).
async fn removed(
    api: &Remote,
    path: &[&str],
    json: bool,
    obj: Value,
    human: &str,
) -> anyhow::Result<()> {
    api.delete(path).await?;
    done(json, &obj, human)
}

/// A created or changed record: the API's JSON, or the human line.
fn changed(v: &Value, json: bool, human: &str) -> anyhow::Result<()> {
    if json {
        print_json(v)
    } else {
        done(false, v, human)
    }
}

async fn tenant(cmd: TenantCmd, api: &Remote, json: bool) -> anyhow::Result<()> {
    match cmd {
        TenantCmd::Add { name } => {
            let v = api
                .post(&["tenants"], Some(&NewTenant { name: name.clone() }))
                .await?;
            changed(&v, json, &format!("tenant {name} added"))
        }
        TenantCmd::List => {
            let v = api.get(&["tenants"], &[]).await?;
            list(&v, json, "tenants", |l: &[Tenant]| print_tenants(false, l))
        }
        TenantCmd::Remove { name } => {
            let human = format!("tenant {name} removed");
            let obj = json!({ "name": name, "removed": true });
            removed(api, &["tenants", &name], json, obj, &human).await
        }
    }
}

async fn domain(cmd: DomainCmd, api: &Remote, json: bool) -> anyhow::Result<()> {
    match cmd {
        DomainCmd::Add { tenant, domain } => {
            let body = NewDomain {
                tenant: Some(tenant),
                domain,
            };
            let v = api.post(&["domains"], Some(&body)).await?;
            let d: Domain = decode(&v, "domain")?;
            changed(&v, json, &domain_added(&d))
        }
        DomainCmd::Verify { domain } => {
            let v = api.post_empty(&["domains", &domain, "verify"]).await?;
            let d: Domain = decode(&v, "domain")?;
            changed(&v, json, &format!("domain {} is verified", d.domain))
        }
        DomainCmd::List { tenant } => {
            let v = api.get(&["domains"], &[("tenant", tenant)]).await?;
            list(&v, json, "domains", |l: &[Domain]| print_domains(false, l))
        }
        DomainCmd::Remove { domain } => {
            let human = format!("domain {domain} removed");
            let obj = json!({ "domain": domain, "removed": true });
            removed(api, &["domains", &domain], json, obj, &human).await
        }
    }
}

async fn account(cmd: AccountCmd, api: &Remote, json: bool) -> anyhow::Result<()> {
    match cmd {
        AccountCmd::Add {
            tenant,
            address,
            password_stdin,
        } => {
            // Without --password-stdin the server generates the password and returns it once.
            let password = password_stdin.then(read_password_line).transpose()?;
            let body = NewAccount {
                tenant: Some(tenant),
                address,
                password,
            };
            let v = api.post(&["accounts"], Some(&body)).await?;
            if json {
                return print_json(&v);
            }
            let a: Account = decode(&v, "account")?;
            print_account_added(&a, v.get("password").and_then(Value::as_str));
            Ok(())
        }
        AccountCmd::List { tenant } => {
            let v = api.get(&["accounts"], &[("tenant", tenant)]).await?;
            list(&v, json, "accounts", |l: &[Account]| {
                print_accounts(false, l)
            })
        }
        AccountCmd::Remove { address } => {
            let human = format!("account {address} removed");
            let obj = json!({ "address": address, "removed": true });
            removed(api, &["accounts", &address], json, obj, &human).await
        }
        AccountCmd::SendAs(SendAsCmd::Add { address, target }) => {
            let body = SendAs {
                target: target.clone(),
            };
            api.post(&["accounts", &address, "send_as"], Some(&body))
                .await?;
            let obj = json!({ "address": address, "send_as": target, "added": true });
            done(json, &obj, &format!("{address} may now send as {target}"))
        }
        AccountCmd::SendAs(SendAsCmd::Remove { address, target }) => {
            let human = format!("{address} may no longer send as {target}");
            let obj = json!({ "address": address, "send_as": target, "removed": true });
            let path = ["accounts", &address, "send_as", &target];
            removed(api, &path, json, obj, &human).await
        }
    }
}

async fn connector(cmd: ConnectorCmd, api: &Remote, json: bool) -> anyhow::Result<()> {
    match cmd {
        ConnectorCmd::Add {
            tenant,
            cidr,
            limit_per_hour,
            allow_wide,
            forwarding,
        } => {
            if limit_per_hour == Some(0) {
                return Err(UsageError("--limit-per-hour must be at least 1".into()).into());
            }
            let body = NewConnector {
                tenant: Some(tenant),
                cidr: parse_cidr(&cidr)?,
                limit_per_hour,
                allow_wide,
                forwarding,
            };
            let v = api.post(&["connectors"], Some(&body)).await?;
            let c: Connector = decode(&v, "connector")?;
            changed(
                &v,
                json,
                &format!("connector {} added to tenant {}", c.cidr, c.tenant),
            )
        }
        ConnectorCmd::List => {
            let v = api.get(&["connectors"], &[]).await?;
            list(&v, json, "connectors", |l: &[Connector]| {
                print_connectors(false, l)
            })
        }
        ConnectorCmd::Remove { cidr } => {
            let net = parse_cidr(&cidr)?.trunc();
            let (addr, prefix) = (net.addr().to_string(), net.prefix_len().to_string());
            let obj = json!({ "cidr": net.to_string(), "removed": true });
            let human = format!("connector {net} removed");
            removed(api, &["connectors", &addr, &prefix], json, obj, &human).await
        }
    }
}

async fn admin(cmd: AdminCmd, api: &Remote, json: bool) -> anyhow::Result<()> {
    let AdminCmd::Token(cmd) = cmd;
    match cmd {
        TokenCmd::Create { role, tenant } => {
            let body = NewToken {
                role: role.as_str().to_string(),
                tenant,
            };
            let v = api.post(&["tokens"], Some(&body)).await?;
            if json {
                return print_json(&v);
            }
            let secret = v.get("secret").and_then(Value::as_str).ok_or_else(|| {
                anyhow::anyhow!("unexpected answer for the new token: no `secret`")
            })?;
            out!("{secret}");
            Ok(())
        }
        TokenCmd::Revoke { id } => {
            let human = format!("token {id} revoked");
            let obj = json!({ "id": id, "revoked": true });
            removed(api, &["tokens", &id], json, obj, &human).await
        }
        TokenCmd::List => {
            let v = api.get(&["tokens"], &[]).await?;
            list(&v, json, "tokens", |l: &[TokenInfo]| print_tokens(false, l))
        }
    }
}

/// A policy as the API shows it (`effective` only on a single policy).
#[derive(Debug, Deserialize)]
struct ApiPolicy {
    name: String,
    priority: Option<u32>,
    scope: Option<PolicyScope>,
    settings: PolicySettings,
    effective: Option<EffectivePolicy>,
}

fn policy_path<'a>(tenant: &'a str, name: Option<&'a str>) -> [&'a str; 3] {
    [
        "policies",
        tenant,
        name.unwrap_or(outguard_store::DEFAULT_POLICY),
    ]
}

async fn policy(cmd: PolicyCmd, api: &Remote, json: bool) -> anyhow::Result<()> {
    match cmd {
        PolicyCmd::List { tenant } => {
            let v = api.get(&["policies"], &[("tenant", Some(tenant))]).await?;
            list(&v, json, "policies", |l: &[ApiPolicy]| {
                let rows: Vec<Vec<String>> = l
                    .iter()
                    .map(|p| policy_row(&p.name, p.priority, p.scope.as_ref(), &p.settings))
                    .collect();
                out_text!("{}", table(POLICY_HEADERS, &rows));
                Ok(())
            })
        }
        PolicyCmd::Show { tenant, policy } => {
            let path = policy_path(&tenant, policy.as_deref());
            let (v, p): (Value, ApiPolicy) = api.get_as(&path, &[], "policy").await?;
            if json {
                return print_json(&v);
            }
            let effective = p.effective.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "the server does not report the values in force (an older version?)"
                )
            })?;
            let custom = match (p.priority, p.scope.as_ref()) {
                (Some(prio), Some(scope)) => Some((p.name.as_str(), prio, scope)),
                _ => None,
            };
            print_policy(&tenant, custom, &p.settings, effective);
            Ok(())
        }
        PolicyCmd::Set { tenant, args } => {
            let (name, assignments) = split_set_args(&args)?;
            let path = policy_path(&tenant, name);
            let (_, current): (Value, ApiPolicy) = api.get_as(&path, &[], "policy").await?;
            let next = apply_assignments(&current.settings, assignments)?;
            let v = api.put(&path, &next).await?;
            let human = match name.filter(|n| *n != outguard_store::DEFAULT_POLICY) {
                Some(n) => format!("policy {n} of tenant {tenant} updated"),
                None => format!("default policy of tenant {tenant} updated"),
            };
            changed(&v, json, &human)
        }
        PolicyCmd::Add {
            tenant,
            name,
            priority,
            senders,
            domains,
            except_senders,
            except_domains,
            settings,
        } => {
            let scope = PolicyScope {
                senders,
                domains,
                except_senders,
                except_domains,
            };
            check_scope(&scope)?;
            let settings = apply_assignments(&PolicySettings::default(), &settings)?;
            let p = Policy {
                name,
                priority,
                scope,
                settings,
            };
            let v = api.post(&["policies", &tenant], Some(&p)).await?;
            let human = format!(
                "policy {} added to tenant {tenant} with priority {}",
                p.name, p.priority
            );
            changed(&v, json, &human)
        }
        PolicyCmd::Remove { tenant, name } => {
            let human = format!("policy {name} of tenant {tenant} removed");
            let path = policy_path(&tenant, Some(&name));
            let obj = json!({ "tenant": tenant, "name": name, "removed": true });
            removed(api, &path, json, obj, &human).await
        }
    }
}

async fn restricted(cmd: RestrictedCmd, api: &Remote, json: bool) -> anyhow::Result<()> {
    match cmd {
        RestrictedCmd::List { tenant, all } => {
            let query = [("tenant", tenant), ("all", all.then(|| "true".to_string()))];
            let v = api.get(&["restricted"], &query).await?;
            list(&v, json, "restrictions", |l: &[StoredRestriction]| {
                print_restrictions(false, l)
            })
        }
        RestrictedCmd::Lift(args) => {
            if args.reason.trim().is_empty() {
                return Err(
                    UsageError("--reason must say why the restriction is lifted".into()).into(),
                );
            }
            let body = LiftRequest {
                reason: Some(args.reason.clone()),
                release_held: args.release_held,
            };
            let v = api
                .post(&["restricted", &args.address, "lift"], Some(&body))
                .await?;
            if json {
                return print_json(&v);
            }
            let outcome: LiftOutcome = decode(&v, "the lift")?;
            print_lift(&args, &outcome);
            Ok(())
        }
        RestrictedCmd::ClearReputation(args) => {
            if args.reason.trim().is_empty() {
                return Err(
                    UsageError("--reason must say why the reputation is cleared".into()).into(),
                );
            }
            let body = outguard_types::api::ClearReputationRequest {
                reason: Some(args.reason.clone()),
            };
            let v = api
                .post(
                    &["restricted", &args.address, "clear-reputation"],
                    Some(&body),
                )
                .await?;
            if json {
                return print_json(&v);
            }
            let subject = v["subject"].as_str().unwrap_or(&args.address);
            print_cleared(subject, v["was_recent_spam"].as_bool().unwrap_or(false));
            Ok(())
        }
    }
}

/// A queue row as `GET /api/v1/queue` returns it (the columns the table shows).
#[derive(Debug, Deserialize)]
struct QueueRow {
    id: String,
    mail_from: String,
    rcpts: Vec<String>,
    pool: String,
    state: String,
    received_at: i64,
}

async fn queue(cmd: QueueCmd, api: &Remote, json: bool) -> anyhow::Result<()> {
    let (ids, action, label) = match cmd {
        QueueCmd::List { state } => {
            if let Some(s) = &state {
                parse_state(s)?;
            }
            let v = api.get(&["queue"], &[("state", state)]).await?;
            return list(&v, json, "the queue", |rows: &[QueueRow]| {
                let mut rows: Vec<&QueueRow> = rows.iter().collect();
                rows.sort_by(|a, b| a.id.cmp(&b.id));
                print_message_header();
                for r in rows {
                    print_message_line(&MessageLine {
                        id: &r.id,
                        received_at: r.received_at,
                        state: &r.state,
                        pool: Some(&r.pool),
                        class: None,
                        mail_from: &r.mail_from,
                        rcpts: &r.rcpts,
                    });
                }
                Ok(())
            });
        }
        QueueCmd::Release { ids } => (ids, "release", "released"),
        QueueCmd::Hold { ids } => (ids, "hold", "held"),
        QueueCmd::Delete { ids } => (ids, "delete", "deleted"),
        QueueCmd::Retry { ids } => (ids, "retry", "will be retried now"),
    };
    if ids.is_empty() {
        return Err(UsageError("give at least one message id".into()).into());
    }
    for id in &ids {
        if action == "delete" {
            api.delete(&["queue", id]).await?;
        } else {
            api.post_empty(&["queue", id, action]).await?;
        }
        if json {
            out!("{}", json!({ "id": id, "action": action, "done": true }));
        } else {
            out!("{id}: {label}");
        }
    }
    Ok(())
}

async fn trace(a: TraceArgs, api: &Remote, json: bool) -> anyhow::Result<()> {
    if let Some(id) = &a.id {
        let v = api.get(&["messages", id], &[]).await?;
        if json {
            return print_json(&v);
        }
        let m: MessageRecord = decode(&v["message"], "the message")?;
        let events: Vec<TraceEvent> = decode(&v["events"], "the message's events")?;
        print_messages(std::slice::from_ref(&m));
        out!();
        print_events(&events);
        return Ok(());
    }
    let since = a
        .since
        .as_deref()
        .map(|s| parse_since(s, outguard_types::time::now_ms()))
        .transpose()?;
    let query = [
        ("from", a.from),
        ("to", a.to),
        ("since", since.map(|s| s.to_string())),
        ("limit", Some(a.limit.to_string())),
    ];
    let v = api.get(&["messages"], &query).await?;
    let page = v.get("messages").cloned().unwrap_or(Value::Null);
    list(&page, json, "messages", |l: &[MessageRecord]| {
        print_messages(l);
        Ok(())
    })
}

async fn alerts(args: AlertsArgs, api: &Remote, json: bool) -> anyhow::Result<()> {
    if !args.ack.is_empty() {
        for id in &args.ack {
            api.post_empty(&["alerts", id, "ack"]).await?;
        }
        return done(
            json,
            &json!({ "acknowledged": args.ack }),
            &format!("{} alert(s) acknowledged", args.ack.len()),
        );
    }
    if let Some(k) = &args.kind {
        parse_kind(k)?;
    }
    let query = [
        ("tenant", args.tenant),
        ("kind", args.kind),
        ("limit", Some(args.limit.to_string())),
    ];
    let v = api.get(&["alerts"], &query).await?;
    list(&v, json, "alerts", |l: &[StoredAlert]| {
        print_alerts(false, l)
    })
}
