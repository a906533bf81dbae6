//! CLI verbs for the tenancy records (SPEC §8): `tenant`, `domain`, `account` (with `send-as`),
//! `connector` and `admin token`, working directly on the store as the operator: every change
//! goes through `outguard_admin::ops` (the API's own rules and audit entry, actor `cli`).
//!
//! Output: aligned tables for humans; with `--json` the API's field names (a JSON array for
//! lists, an object for a single record). `admin token create` prints the secret alone on stdout
//! so scripts can capture it. Store errors become messages: `Invalid` is bad usage (exit 64 via
//! [`UsageError`]); not found, conflicts and backend failures exit 1.

use std::io::BufRead as _;
use std::net::IpAddr;

use clap::Subcommand;
use ipnet::IpNet;
use outguard_store::Store;
use outguard_types::model::{Account, Connector, Domain, DomainStatus, Role, Tenant, TokenInfo};
use serde_json::json;

use super::UsageError;
use super::output::{done, now_ms, ops_error, print_list, time, user_error};
use outguard_admin::ops;

#[derive(Debug, Subcommand)]
pub enum TenantCmd {
    /// Create a tenant.
    Add { name: String },
    /// List tenants.
    List,
    /// Remove a tenant that no longer has domains, accounts or connectors.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Accept a domain for a tenant (a domain belongs to one tenant only). On the store (the
    /// operator) it is verified at once; a tenant admin's (`--server`) is pending until its DNS
    /// TXT record `outguard-verify=<token>` is found.
    Add {
        #[arg(long)]
        tenant: String,
        domain: String,
    },
    /// Verify a pending domain: on the store (the operator) directly; through `--server` with a
    /// tenant token, by looking up its DNS TXT record.
    Verify { domain: String },
    /// List accepted domains.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove an accepted domain that no account uses.
    Remove { domain: String },
}

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Create an account (SMTP AUTH user) in one of the tenant's domains. Without
    /// --password-stdin a random password is generated and printed once.
    Add {
        #[arg(long)]
        tenant: String,
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Remove an account.
    Remove { address: String },
    /// Extra addresses or whole domains (`@domain`) an account may send as.
    #[command(subcommand)]
    SendAs(SendAsCmd),
}

#[derive(Debug, Subcommand)]
pub enum SendAsCmd {
    /// Let ADDRESS send as TARGET (`user@domain` or `@domain`, in the same tenant).
    Add { address: String, target: String },
    /// Withdraw a send-as grant.
    Remove { address: String, target: String },
}

#[derive(Debug, Subcommand)]
pub enum ConnectorCmd {
    /// Admit a tenant's mail server(s) by source address (CIDR or single IP).
    Add {
        #[arg(long)]
        tenant: String,
        cidr: String,
        /// Messages per hour this connector may send (none by default).
        #[arg(long)]
        limit_per_hour: Option<u32>,
        /// Operators: admit a prefix wider than IPv4 /24 or IPv6 /48.
        #[arg(long)]
        allow_wide: bool,
        /// Operators: relay mail from domains the tenant has not registered (relay pool, SRS).
        #[arg(long)]
        forwarding: bool,
    },
    /// List connectors.
    List,
    /// Remove a connector.
    Remove { cidr: String },
}

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    /// Admin API bearer tokens.
    #[command(subcommand)]
    Token(TokenCmd),
}

#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token and print it (it cannot be shown again).
    Create {
        /// operator | tenant_admin | tenant_reader
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The tenant of a tenant_admin / tenant_reader token.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a token by id.
    Revoke { id: String },
    /// List tokens (ids and roles; never the secrets).
    List,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("`{s}`: expected operator, tenant_admin or tenant_reader"))
}

pub async fn run_tenant(cmd: TenantCmd, store: &Store, json: bool) -> anyhow::Result<()> {
    let actor = ops::Actor::cli();
    match cmd {
        TenantCmd::Add { name } => {
            let t = ops::tenants::add(store, &actor, &name, now_ms())
                .await
                .map_err(ops_error)?;
            done(json, &t, &format!("tenant {} added", t.name))
        }
        TenantCmd::List => {
            let list = store.list_tenants().await.map_err(user_error)?;
            print_tenants(json, &list)
        }
        TenantCmd::Remove { name } => {
            ops::tenants::remove(store, &actor, &name)
                .await
                .map_err(ops_error)?;
            done(
                json,
                &json!({ "name": name, "removed": true }),
                &format!("tenant {name} removed"),
            )
        }
    }
}

pub async fn run_domain(cmd: DomainCmd, store: &Store, json: bool) -> anyhow::Result<()> {
    let actor = ops::Actor::cli();
    match cmd {
        DomainCmd::Add { tenant, domain } => {
            let d = ops::domains::add(store, &actor, &tenant, &domain)
                .await
                .map_err(ops_error)?;
            done(json, &d, &domain_added(&d))
        }
        DomainCmd::Verify { domain } => {
            // The operator verifies directly: no DNS lookup is needed (or made).
            let d = ops::domains::verify(store, None, &actor, &domain)
                .await
                .map_err(ops_error)?;
            done(json, &d, &format!("domain {} is verified", d.domain))
        }
        DomainCmd::List { tenant } => {
            let list = store
                .list_domains(tenant.as_deref())
                .await
                .map_err(user_error)?;
            print_domains(json, &list)
        }
        DomainCmd::Remove { domain } => {
            ops::domains::remove(store, &actor, &domain)
                .await
                .map_err(ops_error)?;
            done(
                json,
                &json!({ "domain": domain, "removed": true }),
                &format!("domain {domain} removed"),
            )
        }
    }
}

/// The human line for a new domain: a pending one says what to publish.
pub(super) fn domain_added(d: &Domain) -> String {
    match (&d.status, &d.verification_token) {
        (DomainStatus::Pending, Some(token)) => format!(
            "domain {} added to tenant {} (pending)\n\
             publish this DNS TXT record at {}, then run `outguard domain verify {}`:\n  {}",
            d.domain,
            d.tenant,
            d.domain,
            d.domain,
            ops::verify::record_text(token)
        ),
        _ => format!(
            "domain {} added to tenant {} (verified)",
            d.domain, d.tenant
        ),
    }
}

pub async fn run_account(cmd: AccountCmd, store: &Store, json: bool) -> anyhow::Result<()> {
    let actor = ops::Actor::cli();
    match cmd {
        AccountCmd::Add {
            tenant,
            address,
            password_stdin,
        } => add_account(store, &tenant, &address, password_stdin, json).await,
        AccountCmd::List { tenant } => {
            let list = store
                .list_accounts(tenant.as_deref())
                .await
                .map_err(user_error)?;
            print_accounts(json, &list)
        }
        AccountCmd::Remove { address } => {
            ops::accounts::remove(store, &actor, &address)
                .await
                .map_err(ops_error)?;
            done(
                json,
                &json!({ "address": address, "removed": true }),
                &format!("account {address} removed"),
            )
        }
        AccountCmd::SendAs(SendAsCmd::Add { address, target }) => {
            ops::accounts::send_as_add(store, &actor, &address, &target)
                .await
                .map_err(ops_error)?;
            let obj = json!({ "address": address, "send_as": target, "added": true });
            done(json, &obj, &format!("{address} may now send as {target}"))
        }
        AccountCmd::SendAs(SendAsCmd::Remove { address, target }) => {
            ops::accounts::send_as_remove(store, &actor, &address, &target)
                .await
                .map_err(ops_error)?;
            let obj = json!({ "address": address, "send_as": target, "removed": true });
            done(
                json,
                &obj,
                &format!("{address} may no longer send as {target}"),
            )
        }
    }
}

async fn add_account(
    store: &Store,
    tenant: &str,
    address: &str,
    password_stdin: bool,
    json: bool,
) -> anyhow::Result<()> {
    // Without --password-stdin one is generated and shown once.
    let given = password_stdin.then(read_password_line).transpose()?;
    let (a, generated) = ops::accounts::add(
        store,
        &ops::Actor::cli(),
        tenant,
        address,
        given.as_deref(),
        now_ms(),
    )
    .await
    .map_err(ops_error)?;
    if json {
        let mut v = serde_json::to_value(&a)?;
        if let Some(pw) = &generated {
            v["password"] = json!(pw);
        }
        out!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_account_added(&a, generated.as_deref());
    }
    Ok(())
}

/// The human answer to `account add` (the generated password, if any, shown once).
pub(super) fn print_account_added(a: &Account, generated: Option<&str>) {
    out!("account {} added to tenant {}", a.address, a.tenant);
    if let Some(password) = generated {
        out!("password: {password}");
        out!("(shown once; set another with --password-stdin when re-creating the account)");
    }
}

pub(super) fn print_tenants(json: bool, list: &[Tenant]) -> anyhow::Result<()> {
    let rows = list
        .iter()
        .map(|t| vec![t.name.clone(), time(t.created_at)]);
    print_list(json, list, &["TENANT", "CREATED"], rows.collect())
}

pub(super) fn print_domains(json: bool, list: &[Domain]) -> anyhow::Result<()> {
    let rows = list.iter().map(|d| {
        vec![
            d.domain.clone(),
            d.tenant.clone(),
            d.status.as_str().to_string(),
            d.dkim_selector.clone().unwrap_or_else(|| "-".into()),
        ]
    });
    print_list(
        json,
        list,
        &["DOMAIN", "TENANT", "STATUS", "DKIM"],
        rows.collect(),
    )
}

pub(super) fn print_accounts(json: bool, list: &[Account]) -> anyhow::Result<()> {
    let rows = list.iter().map(|a| {
        let send_as = if a.send_as.is_empty() {
            "-".to_string()
        } else {
            a.send_as.join(",")
        };
        vec![
            a.address.clone(),
            a.tenant.clone(),
            send_as,
            time(a.created_at),
        ]
    });
    print_list(
        json,
        list,
        &["ADDRESS", "TENANT", "SEND-AS", "CREATED"],
        rows.collect(),
    )
}

pub(super) fn print_connectors(json: bool, list: &[Connector]) -> anyhow::Result<()> {
    let rows = list.iter().map(|c| {
        let limit = c
            .limit_per_hour
            .map_or_else(|| "-".to_string(), |l| l.to_string());
        vec![
            c.cidr.to_string(),
            c.tenant.clone(),
            limit,
            if c.forwarding { "yes" } else { "no" }.to_string(),
            time(c.created_at),
        ]
    });
    print_list(
        json,
        list,
        &["CIDR", "TENANT", "LIMIT/HOUR", "FORWARDING", "CREATED"],
        rows.collect(),
    )
}

pub(super) fn print_tokens(json: bool, list: &[TokenInfo]) -> anyhow::Result<()> {
    let rows = list.iter().map(|t| {
        let tenant = t.tenant.clone().unwrap_or_else(|| "-".into());
        vec![
            t.id.clone(),
            t.role.as_str().to_string(),
            tenant,
            time(t.created_at),
        ]
    });
    print_list(
        json,
        list,
        &["ID", "ROLE", "TENANT", "CREATED"],
        rows.collect(),
    )
}

/// One line from stdin without its line ending; empty is refused.
pub(super) fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        return Err(UsageError("--password-stdin: no password on standard input".into()).into());
    }
    Ok(pw)
}

/// `10.0.0.0/8`, or a bare address meaning just that host.
pub(super) fn parse_cidr(s: &str) -> Result<IpNet, UsageError> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| UsageError(format!("`{s}` is not an IP address or CIDR prefix")))
}

pub async fn run_connector(cmd: ConnectorCmd, store: &Store, json: bool) -> anyhow::Result<()> {
    match cmd {
        ConnectorCmd::Add {
            tenant,
            cidr,
            limit_per_hour,
            allow_wide,
            forwarding,
        } => {
            let req = ops::connectors::NewConnector {
                tenant,
                cidr: parse_cidr(&cidr)?,
                limit_per_hour,
                allow_wide,
                forwarding,
            };
            let c = ops::connectors::add(store, &ops::Actor::cli(), req, now_ms())
                .await
                .map_err(ops_error)?;
            done(
                json,
                &c,
                &format!("connector {} added to tenant {}", c.cidr, c.tenant),
            )
        }
        ConnectorCmd::List => {
            let list = store.list_connectors(None).await.map_err(user_error)?;
            print_connectors(json, &list)
        }
        ConnectorCmd::Remove { cidr } => {
            let net = parse_cidr(&cidr)?;
            ops::connectors::remove(store, &ops::Actor::cli(), net)
                .await
                .map_err(ops_error)?;
            let obj = json!({ "cidr": net.trunc().to_string(), "removed": true });
            done(json, &obj, &format!("connector {} removed", net.trunc()))
        }
    }
}

pub async fn run_admin(cmd: AdminCmd, store: &Store, json: bool) -> anyhow::Result<()> {
    let AdminCmd::Token(cmd) = cmd;
    let actor = ops::Actor::cli();
    match cmd {
        TokenCmd::Create { role, tenant } => {
            let (info, secret) =
                ops::tokens::create(store, &actor, role, tenant.as_deref(), now_ms())
                    .await
                    .map_err(ops_error)?;
            if json {
                let mut v = serde_json::to_value(&info)?;
                v["token"] = json!(secret);
                out!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                out!("{secret}");
            }
            Ok(())
        }
        TokenCmd::Revoke { id } => {
            ops::tokens::revoke(store, &actor, &id)
                .await
                .map_err(ops_error)?;
            done(
                json,
                &json!({ "id": id, "revoked": true }),
                &format!("token {id} revoked"),
            )
        }
        TokenCmd::List => {
            let list = store.list_tokens().await.map_err(user_error)?;
            print_tokens(json, &list)
        }
    }
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
        Tenant(TenantCmd),
        #[command(subcommand)]
        Domain(DomainCmd),
        #[command(subcommand)]
        Account(AccountCmd),
        #[command(subcommand)]
        Connector(ConnectorCmd),
        #[command(subcommand)]
        Admin(AdminCmd),
    }

    fn parse(args: &str) -> Result<Top, clap::Error> {
        T::try_parse_from(std::iter::once("outguard").chain(args.split_whitespace())).map(|t| t.cmd)
    }

    #[test]
    fn spec_section_8_command_lines_parse() {
        for ok in [
            "tenant add acme",
            "tenant list",
            "tenant remove acme",
            "domain add --tenant acme acme.example",
            "domain list",
            "domain list --tenant acme",
            "domain remove acme.example",
            "account add --tenant acme alice@acme.example",
            "account add --tenant acme alice@acme.example --password-stdin",
            "account list --tenant acme",
            "account remove alice@acme.example",
            "account send-as add alice@acme.example @acme.example",
            "account send-as remove alice@acme.example sales@acme.example",
            "connector add --tenant acme 10.0.0.0/8 --limit-per-hour 100",
            "connector list",
            "connector remove 10.0.0.0/8",
            "admin token create --role operator",
            "admin token create --role tenant_admin --tenant acme",
            "admin token revoke abc",
            "admin token list",
        ] {
            assert!(parse(ok).is_ok(), "{ok}: {:?}", parse(ok).err());
        }
        for bad in [
            "domain add acme.example",
            "admin token create --role root",
            "account add alice@acme.example",
            "connector add --tenant acme 10.0.0.0/8 --limit-per-hour many",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(time(0), "1970-01-01 00:00:00Z");
        assert_eq!(time(1_700_000_000_000), "2023-11-14 22:13:20Z");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(parse_cidr("10.1.2.3").unwrap().to_string(), "10.1.2.3/32");
        assert_eq!(
            parse_cidr("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert_eq!(
            super::super::output::table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]),
            "A    BB\nxxx  y\n"
        );
    }

    #[tokio::test]
    async fn verbs_change_the_store_and_map_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/r.db", dir.path().display()))
            .await
            .unwrap();
        run_tenant(
            TenantCmd::Add {
                name: "acme".into(),
            },
            &store,
            false,
        )
        .await
        .unwrap();
        run_tenant(
            TenantCmd::Add {
                name: "globex".into(),
            },
            &store,
            true,
        )
        .await
        .unwrap();
        let add = |t: &str, d: &str| DomainCmd::Add {
            tenant: t.into(),
            domain: d.into(),
        };
        run_domain(add("acme", "acme.example"), &store, false)
            .await
            .unwrap();
        let e = run_domain(add("globex", "acme.example"), &store, false)
            .await
            .unwrap_err();
        assert!(
            e.downcast_ref::<UsageError>().is_none(),
            "a conflict is not a usage error"
        );
        let e = run_domain(add("acme", "bad domain"), &store, false)
            .await
            .unwrap_err();
        assert!(
            e.downcast_ref::<UsageError>().is_some(),
            "invalid input is a usage error: {e}"
        );
        let acct = AccountCmd::Add {
            tenant: "acme".into(),
            address: "a@acme.example".into(),
            password_stdin: false,
        };
        run_account(acct, &store, true).await.unwrap();
        assert!(store.account("a@acme.example").await.unwrap().is_some());
        let conn = |t: &str, cidr: &str, allow_wide: bool| ConnectorCmd::Add {
            tenant: t.into(),
            cidr: cidr.into(),
            limit_per_hour: Some(5),
            allow_wide,
            forwarding: false,
        };
        run_connector(conn("acme", "10.0.0.1", false), &store, false)
            .await
            .unwrap();
        // The CLI on the store is the operator: wider only with --allow-wide; never over
        // another tenant's connector.
        let e = run_connector(conn("globex", "10.0.0.0/8", false), &store, false)
            .await
            .unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some(), "{e}");
        let e = run_connector(conn("globex", "10.0.0.0/8", true), &store, false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("overlaps"), "{e}");
        assert!(!e.to_string().contains("acme"), "{e}");
        run_connector(conn("globex", "172.16.0.0/12", true), &store, false)
            .await
            .unwrap();
        let c = store
            .connector_for_ip("10.0.0.1".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.limit_per_hour, Some(5));
        let tok = AdminCmd::Token(TokenCmd::Create {
            role: Role::Operator,
            tenant: None,
        });
        run_admin(tok, &store, false).await.unwrap();
        assert!(store.has_any_operator_token().await.unwrap());
        let e = run_tenant(
            TenantCmd::Remove {
                name: "nope".into(),
            },
            &store,
            false,
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("not found"), "{e}");
        for list in [TenantCmd::List] {
            run_tenant(list, &store, false).await.unwrap();
        }
        run_account(AccountCmd::List { tenant: None }, &store, false)
            .await
            .unwrap();
        run_connector(ConnectorCmd::List, &store, true)
            .await
            .unwrap();
        run_admin(AdminCmd::Token(TokenCmd::List), &store, false)
            .await
            .unwrap();
    }
}
