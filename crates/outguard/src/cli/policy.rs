//! `outguard policy` (SPEC §8): a tenant's outbound spam policies, working directly on the
//! store — `list`, `show [POLICY]` (stored values beside the effective ones), `set [POLICY]
//! KEY=VALUE...` (no POLICY: the tenant's default), `add NAME --priority N` with its scope, and
//! `remove NAME`. An unknown key or a bad value is bad usage (exit 64) and names the key.
//! Changes go through `outguard_admin::ops::policies` as the operator: the API's rules and its
//! audit entry.
//!
//! Also holds the small output helpers the `restricted` and `alerts` verbs share.

use clap::Subcommand;
use outguard_store::{DEFAULT_POLICY, Store};
use outguard_types::config::Config;

use outguard_types::policy::{EffectivePolicy, Policy, PolicyScope, PolicySettings};
use serde::Serialize;
use serde_json::json;

use super::UsageError;
use super::output::{done, ops_error, print_list, table};
use outguard_admin::ops::{self, Actor, policies::Stored};

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// List the tenant's policies (its default first, then custom ones by priority).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Show one policy's keys: the stored value and the value in force (default: the tenant's
    /// default policy).
    Show {
        #[arg(long)]
        tenant: String,
        policy: Option<String>,
    },
    /// Set keys: `set --tenant T [POLICY] KEY=VALUE...` (`KEY=default` unsets a key).
    Set {
        #[arg(long)]
        tenant: String,
        /// An optional policy name followed by KEY=VALUE assignments.
        #[arg(required = true, num_args = 1.., value_name = "[POLICY] KEY=VALUE")]
        args: Vec<String>,
    },
    /// Add a custom policy scoped by sender addresses and/or domains.
    Add {
        #[arg(long)]
        tenant: String,
        name: String,
        /// 0 is the highest; unique within the tenant.
        #[arg(long)]
        priority: u32,
        #[arg(long = "sender")]
        senders: Vec<String>,
        #[arg(long = "domain")]
        domains: Vec<String>,
        #[arg(long = "except-sender")]
        except_senders: Vec<String>,
        #[arg(long = "except-domain")]
        except_domains: Vec<String>,
        /// Initial settings.
        #[arg(value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// Remove a custom policy.
    Remove {
        #[arg(long)]
        tenant: String,
        name: String,
    },
}

/// A policy as listed / shown: the default has no priority or scope.
#[derive(Debug, Serialize)]
struct PolicyView<'a> {
    name: &'a str,
    priority: Option<u32>,
    scope: Option<&'a PolicyScope>,
    settings: &'a PolicySettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    effective: Option<EffectivePolicy>,
}

pub async fn run(cmd: PolicyCmd, cfg: &Config, store: &Store, json: bool) -> anyhow::Result<()> {
    match cmd {
        PolicyCmd::List { tenant } => list(store, &tenant, json).await,
        PolicyCmd::Show { tenant, policy } => {
            show(cfg, store, &tenant, policy.as_deref(), json).await
        }
        PolicyCmd::Set { tenant, args } => set(cfg, store, &tenant, &args, json).await,
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
            let new = NewPolicy {
                name,
                priority,
                scope,
            };
            add(cfg, store, &tenant, new, &settings, json).await
        }
        PolicyCmd::Remove { tenant, name } => {
            ops::policies::remove(store, &Actor::cli(), &tenant, &name)
                .await
                .map_err(ops_error)?;
            done(
                json,
                &json!({ "tenant": tenant, "name": name, "removed": true }),
                &format!("policy {name} of tenant {tenant} removed"),
            )
        }
    }
}

/// The stored default of `tenant` (404 for an unknown tenant, as through the API).
async fn tenant_default(store: &Store, tenant: &str) -> anyhow::Result<PolicySettings> {
    match ops::policies::get(store, &Actor::cli(), tenant, None)
        .await
        .map_err(ops_error)?
    {
        Stored::Default(s) => Ok(s),
        Stored::Custom(p) => Ok(p.settings),
    }
}

async fn list(store: &Store, tenant: &str, json: bool) -> anyhow::Result<()> {
    let default = tenant_default(store, tenant).await?;
    let custom = store.list_policies(tenant).await?;
    let mut views = vec![PolicyView {
        name: DEFAULT_POLICY,
        priority: None,
        scope: None,
        settings: &default,
        effective: None,
    }];
    views.extend(custom.iter().map(|p| PolicyView {
        name: &p.name,
        priority: Some(p.priority),
        scope: Some(&p.scope),
        settings: &p.settings,
        effective: None,
    }));
    let rows = views
        .iter()
        .map(|v| policy_row(v.name, v.priority, v.scope, v.settings))
        .collect();
    print_list(json, &views, POLICY_HEADERS, rows)
}

pub(super) const POLICY_HEADERS: &[&str] = &["POLICY", "PRIORITY", "SCOPE", "SET KEYS"];

/// One row of `policy list` (the default policy has no priority or scope).
pub(super) fn policy_row(
    name: &str,
    priority: Option<u32>,
    scope: Option<&PolicyScope>,
    settings: &PolicySettings,
) -> Vec<String> {
    vec![
        name.to_string(),
        priority.map_or("-".into(), |p| p.to_string()),
        scope.map_or("everyone else".into(), describe_scope),
        set_keys(settings),
    ]
}

fn describe_scope(s: &PolicyScope) -> String {
    let mut parts = Vec::new();
    let mut add = |label: &str, v: &[String]| {
        if !v.is_empty() {
            parts.push(format!("{label} {}", v.join(",")));
        }
    };
    add("senders", &s.senders);
    add("domains", &s.domains);
    add("except senders", &s.except_senders);
    add("except domains", &s.except_domains);
    if parts.is_empty() {
        "nobody".into()
    } else {
        parts.join("; ")
    }
}

fn set_keys(s: &PolicySettings) -> String {
    let set: Vec<String> = s
        .entries()
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect();
    if set.is_empty() {
        "-".into()
    } else {
        set.join(" ")
    }
}

/// The effective values in `policy show`'s order, as text.
fn effective_entries(e: &EffectivePolicy) -> Vec<String> {
    let opt = |v: Option<f64>| v.map_or_else(|| "none".to_string(), |x| x.to_string());
    vec![
        e.external_per_hour.to_string(),
        e.internal_per_hour.to_string(),
        e.per_day.to_string(),
        e.action.as_str().to_string(),
        e.spam_action.as_str().to_string(),
        e.spam_messages_per_hour.to_string(),
        e.spam_ratio.to_string(),
        e.tenant_spam_messages_per_hour.to_string(),
        opt(e.reject_score),
        e.quarantine.to_string(),
        e.bcc_suspicious_outbound_mail.to_string(),
        e.bcc_recipients.join(","),
        e.notify_recipients.join(","),
        e.max_unblocks_per_day.to_string(),
        e.bulk.dkim.as_str().to_string(),
        e.bulk.spf.as_str().to_string(),
        e.bulk.dmarc.as_str().to_string(),
        e.bulk.unsubscribe.as_str().to_string(),
    ]
}

async fn show(
    cfg: &Config,
    store: &Store,
    tenant: &str,
    name: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let default = tenant_default(store, tenant).await?;
    let service = &cfg.policy.default;
    let custom = match ops::policies::get(store, &Actor::cli(), tenant, name)
        .await
        .map_err(ops_error)?
    {
        Stored::Custom(p) => Some(p),
        Stored::Default(_) => None,
    };
    let (settings, view_name) = match &custom {
        Some(p) => (&p.settings, p.name.as_str()),
        None => (&default, DEFAULT_POLICY),
    };
    let effective = settings.resolve(&default, service);
    if json {
        let view = PolicyView {
            name: view_name,
            priority: custom.as_ref().map(|p| p.priority),
            scope: custom.as_ref().map(|p| &p.scope),
            settings,
            effective: Some(effective),
        };
        out!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    let custom = custom
        .as_ref()
        .map(|p| (p.name.as_str(), p.priority, &p.scope));
    print_policy(tenant, custom, settings, &effective);
    Ok(())
}

/// The human form of `policy show`: a title line, then each key's stored and in-force value.
pub(super) fn print_policy(
    tenant: &str,
    custom: Option<(&str, u32, &PolicyScope)>,
    settings: &PolicySettings,
    effective: &EffectivePolicy,
) {
    if let Some((name, priority, scope)) = custom {
        out!(
            "policy {name} of tenant {tenant}, priority {priority}, applies to {}",
            describe_scope(scope)
        );
    } else {
        out!("default policy of tenant {tenant}");
    }
    let rows: Vec<Vec<String>> = settings
        .entries()
        .into_iter()
        .zip(effective_entries(effective))
        .map(|((k, v), eff)| vec![k.to_string(), v.unwrap_or_else(|| "-".into()), eff])
        .collect();
    out_text!("{}", table(&["KEY", "SET", "IN FORCE"], &rows));
}

/// Apply `KEY=VALUE` assignments in order; the first bad one is a usage error naming its key
/// and nothing is changed.
pub(super) fn apply_assignments(
    settings: &PolicySettings,
    assignments: &[String],
) -> Result<PolicySettings, UsageError> {
    let mut next = settings.clone();
    for a in assignments {
        next.set_assignment(a).map_err(UsageError)?;
    }
    Ok(next)
}

/// `[POLICY] KEY=VALUE...` → the policy name (if given) and the assignments (at least one).
pub(super) fn split_set_args(args: &[String]) -> Result<(Option<&str>, &[String]), UsageError> {
    let (name, assignments) = match args.split_first() {
        Some((first, rest)) if !first.contains('=') => (Some(first.as_str()), rest),
        _ => (None, args),
    };
    if assignments.is_empty() {
        return Err(UsageError("give at least one KEY=VALUE".into()));
    }
    Ok((name, assignments))
}

/// The CLI on the store acts as the operator (SPEC §9): the API's own rules and audit entry
/// (`ops::policies::set`), with the operator's role. A refusal is bad usage (exit 64) naming
/// the key.
async fn set(
    cfg: &Config,
    store: &Store,
    tenant: &str,
    args: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let (name, assignments) = split_set_args(args)?;
    let actor = Actor::cli();
    let current = ops::policies::get(store, &actor, tenant, name)
        .await
        .map_err(ops_error)?;
    let next = apply_assignments(current.settings(), assignments)?;
    let ceilings = &cfg.policy.ceilings;
    let stored = ops::policies::set(store, ceilings, &actor, tenant, name, next)
        .await
        .map_err(ops_error)?;
    match stored {
        Stored::Default(settings) => done(
            json,
            &settings,
            &format!("default policy of tenant {tenant} updated"),
        ),
        Stored::Custom(p) => done(
            json,
            &p,
            &format!("policy {} of tenant {tenant} updated", p.name),
        ),
    }
}

/// A custom policy's scope must name someone.
pub(super) fn check_scope(scope: &PolicyScope) -> Result<(), UsageError> {
    if scope.senders.is_empty() && scope.domains.is_empty() {
        return Err(UsageError(
            "a policy needs at least one --sender or --domain (a scope without them matches nobody)"
                .into(),
        ));
    }
    Ok(())
}

/// A custom policy's name, priority and scope (`policy add`).
struct NewPolicy {
    name: String,
    priority: u32,
    scope: PolicyScope,
}

async fn add(
    cfg: &Config,
    store: &Store,
    tenant: &str,
    new: NewPolicy,
    assignments: &[String],
    json: bool,
) -> anyhow::Result<()> {
    let NewPolicy {
        name,
        priority,
        scope,
    } = new;
    check_scope(&scope)?;
    let settings = apply_assignments(&PolicySettings::default(), assignments)?;
    let p = Policy {
        name,
        priority,
        scope,
        settings,
    };
    let p = ops::policies::add(store, &cfg.policy.ceilings, &Actor::cli(), tenant, p)
        .await
        .map_err(ops_error)?;
    done(
        json,
        &p,
        &format!(
            "policy {} added to tenant {tenant} with priority {}",
            p.name, p.priority
        ),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct T {
        #[command(subcommand)]
        cmd: Top,
    }

    #[derive(Debug, Subcommand)]
    enum Top {
        #[command(subcommand)]
        Policy(PolicyCmd),
        #[command(subcommand)]
        Restricted(super::super::restricted::RestrictedCmd),
        Alerts(super::super::alerts::AlertsArgs),
    }

    fn parse(args: &str) -> Result<Top, clap::Error> {
        T::try_parse_from(std::iter::once("outguard").chain(args.split_whitespace())).map(|t| t.cmd)
    }

    #[test]
    fn spec_section_8_command_lines_parse() {
        for ok in [
            "policy list --tenant acme",
            "policy show --tenant acme",
            "policy show --tenant acme bulk",
            "policy set --tenant acme recipient_limit_per_day=100",
            "policy set --tenant acme bulk recipient_limit_per_day=100 quarantine=on",
            "policy add --tenant acme bulk --priority 1 --sender a@acme.example --domain acme.example --except-sender b@acme.example --except-domain lab.acme.example spam_ratio=0.3",
            "policy remove --tenant acme bulk",
            "restricted list",
            "restricted list --tenant acme --all",
            "restricted lift a@acme.example --reason fixed",
            "restricted lift a@acme.example --reason fixed --release-held",
            "alerts",
            "alerts --tenant acme --kind user_restricted",
            "alerts --ack a b",
        ] {
            assert!(parse(ok).is_ok(), "{ok}: {:?}", parse(ok).err());
        }
        for bad in [
            "policy set --tenant acme",
            "policy list",
            "policy add --tenant acme bulk",
            "restricted lift a@acme.example",
            "policy add --tenant acme bulk --priority -1 --sender a@acme.example",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/r.db", dir.path().display()))
            .await
            .unwrap();
        store.add_tenant("acme", 1).await.unwrap();
        (dir, store)
    }

    fn set_cmd(args: &str) -> PolicyCmd {
        PolicyCmd::Set {
            tenant: "acme".into(),
            args: args.split_whitespace().map(String::from).collect(),
        }
    }

    #[tokio::test]
    async fn set_add_show_remove_and_exit_codes() {
        let (_dir, store) = store().await;
        let cfg = Config::default();
        run(
            set_cmd("recipient_limit_external_per_hour=300 action_when_threshold_reached=alert"),
            &cfg,
            &store,
            false,
        )
        .await
        .unwrap();
        let d = store.tenant_default("acme").await.unwrap();
        assert_eq!(d.recipient_limit_external_per_hour, Some(300));

        // Unknown key and bad value: usage errors naming the key; nothing stored.
        for (args, key) in [
            ("bogus_key=1", "bogus_key"),
            ("recipient_limit_per_day=20000", "recipient_limit_per_day"),
            ("spam_ratio=lots", "spam_ratio"),
        ] {
            let e = run(
                set_cmd(&format!("recipient_limit_internal_per_hour=5 {args}")),
                &cfg,
                &store,
                false,
            )
            .await
            .unwrap_err();
            assert!(e.downcast_ref::<UsageError>().is_some(), "{args}: {e}");
            assert!(e.to_string().contains(key), "{args}: {e}");
        }
        assert_eq!(
            store.tenant_default("acme").await.unwrap(),
            d,
            "a refused set changes nothing"
        );

        let add = PolicyCmd::Add {
            tenant: "acme".into(),
            name: "bulk".into(),
            priority: 1,
            senders: vec!["bulk@acme.example".into()],
            domains: vec![],
            except_senders: vec![],
            except_domains: vec![],
            settings: vec!["recipient_limit_per_day=50".into()],
        };
        run(add, &cfg, &store, true).await.unwrap();
        run(set_cmd("bulk quarantine=on"), &cfg, &store, false)
            .await
            .unwrap();
        let p = store.policy("acme", "bulk").await.unwrap().unwrap();
        assert_eq!(
            (p.settings.recipient_limit_per_day, p.settings.quarantine),
            (Some(50), Some(true))
        );
        let eff = p.settings.resolve(
            &store.tenant_default("acme").await.unwrap(),
            &cfg.policy.default,
        );
        assert_eq!(
            eff.external_per_hour, 300,
            "inherited from the tenant default"
        );

        let empty_scope = PolicyCmd::Add {
            tenant: "acme".into(),
            name: "x".into(),
            priority: 2,
            senders: vec![],
            domains: vec![],
            except_senders: vec![],
            except_domains: vec![],
            settings: vec![],
        };
        assert!(
            run(empty_scope, &cfg, &store, false)
                .await
                .unwrap_err()
                .downcast_ref::<UsageError>()
                .is_some()
        );
        for show in [None, Some("bulk".to_string())] {
            run(
                PolicyCmd::Show {
                    tenant: "acme".into(),
                    policy: show,
                },
                &cfg,
                &store,
                false,
            )
            .await
            .unwrap();
        }
        run(
            PolicyCmd::List {
                tenant: "acme".into(),
            },
            &cfg,
            &store,
            false,
        )
        .await
        .unwrap();
        let e = run(
            PolicyCmd::List {
                tenant: "nope".into(),
            },
            &cfg,
            &store,
            false,
        )
        .await
        .unwrap_err();
        assert!(
            e.downcast_ref::<UsageError>().is_none() && e.to_string().contains("not found"),
            "{e}"
        );
        run(
            PolicyCmd::Remove {
                tenant: "acme".into(),
                name: "bulk".into(),
            },
            &cfg,
            &store,
            false,
        )
        .await
        .unwrap();
        assert!(store.list_policies("acme").await.unwrap().is_empty());
    }

    #[test]
    fn helpers() {
        assert_eq!(
            super::super::output::time(1_700_000_000_000),
            "2023-11-14 22:13:20Z"
        );
        assert_eq!(
            table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]),
            "A    BB\nxxx  y\n"
        );
        let s = PolicySettings::default();
        assert!(
            apply_assignments(&s, &["recipient_limit_per_day=5".into(), "nope=1".into()]).is_err()
        );
        assert_eq!(set_keys(&s), "-");
    }
}
