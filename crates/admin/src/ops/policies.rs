//! Policy changes (SPEC §2.4, §8): [`set`] (a tenant's default or a custom policy's keys),
//! [`add`] and [`remove`] a custom policy, each audited once. Who may set which value (SPEC §9
//! "Policy values") is decided in one function, [`authorize`], with the actor's role: the API,
//! the web UI and the CLI over the API with the token's, the CLI on the store as the operator.
//!
//! The rules, for a tenant admin: the operator-only keys (`tenant_spam_messages_per_hour`,
//! `max_unblocks_per_day`) cannot be changed — they are the service's safety net, not the
//! tenant's; numeric keys stay at or under the operator's `[policy.ceilings]`; the addresses of
//! `bcc_recipients` and `notify_recipients` lie in the tenant's own domains (else one tenant
//! could aim copies of its mail at anyone). For everyone: the keys' ranges, at most ten
//! addresses per list, no control characters (`PolicySettings::validate`).

use outguard_store::{DEFAULT_POLICY, Store, StoreError};
use outguard_types::ceilings::{OPERATOR_ONLY_KEYS, PolicyCeilings};
use outguard_types::model::Role;
use outguard_types::policy::{Policy, PolicySettings};

use super::{Actor, OpsError};

/// Why a policy write is refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyRefusal {
    /// The caller's role may not do this (API 403).
    #[error("{0}")]
    Forbidden(String),
    /// A bad value (API 422, CLI exit 64); the message names the key.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PolicyRefusal> for OpsError {
    fn from(e: PolicyRefusal) -> OpsError {
        match e {
            PolicyRefusal::Forbidden(m) => OpsError::Forbidden(m),
            PolicyRefusal::Invalid(m) => OpsError::Invalid(m),
            PolicyRefusal::Store(e) => e.into(),
        }
    }
}

/// A stored policy: the tenant's default settings, or a custom policy.
#[derive(Debug, Clone)]
pub enum Stored {
    Default(PolicySettings),
    Custom(Policy),
}

impl Stored {
    pub fn settings(&self) -> &PolicySettings {
        match self {
            Stored::Default(s) => s,
            Stored::Custom(p) => &p.settings,
        }
    }
}

/// 404 unless the tenant exists and the actor sees it.
async fn visible_tenant(store: &Store, actor: &Actor, tenant: &str) -> Result<(), OpsError> {
    super::tenants::find(store, actor, tenant).await.map(|_| ())
}

fn custom_name(name: Option<&str>) -> Option<&str> {
    name.filter(|n| *n != DEFAULT_POLICY)
}

/// The policy `name` of `tenant` as stored (`None` or `default`: the tenant default).
pub async fn get(
    store: &Store,
    actor: &Actor,
    tenant: &str,
    name: Option<&str>,
) -> Result<Stored, OpsError> {
    visible_tenant(store, actor, tenant).await?;
    match custom_name(name) {
        None => Ok(Stored::Default(store.tenant_default(tenant).await?)),
        Some(n) => match store.policy(tenant, n).await? {
            Some(p) => Ok(Stored::Custom(p)),
            None => Err(OpsError::NotFound(format!(
                "policy {n} of tenant {tenant} not found"
            ))),
        },
    }
}

/// Replace the settings of policy `name` of `tenant` (`None` or `default`: the tenant default)
/// with `settings`, as the actor may (see [`authorize`]); audited `policy.set` with the settings
/// stored.
pub async fn set(
    store: &Store,
    ceilings: &PolicyCeilings,
    actor: &Actor,
    tenant: &str,
    name: Option<&str>,
    settings: PolicySettings,
) -> Result<Stored, OpsError> {
    let current = get(store, actor, tenant, name).await?;
    actor.require_write()?;
    let next = authorize(
        store,
        ceilings,
        actor.role,
        tenant,
        current.settings(),
        settings,
    )
    .await?;
    let stored = match current {
        Stored::Default(_) => {
            store.set_tenant_default(tenant, &next).await?;
            Stored::Default(next)
        }
        Stored::Custom(mut p) => {
            p.settings = next;
            store.put_policy(tenant, &p).await?;
            Stored::Custom(p)
        }
    };
    let target = format!("{tenant}/{}", custom_name(name).unwrap_or(DEFAULT_POLICY));
    let detail = serde_json::to_string(stored.settings()).unwrap_or_default();
    actor.audit(store, "policy.set", &target, &detail).await?;
    Ok(stored)
}

/// Add a custom policy (its scope names at least one sender or domain); audited `policy.add`.
pub async fn add(
    store: &Store,
    ceilings: &PolicyCeilings,
    actor: &Actor,
    tenant: &str,
    mut p: Policy,
) -> Result<Policy, OpsError> {
    visible_tenant(store, actor, tenant).await?;
    actor.require_write()?;
    if p.name == DEFAULT_POLICY {
        return Err(OpsError::Invalid(
            "name: `default` is the tenant default; set its keys instead".into(),
        ));
    }
    if p.scope.senders.is_empty() && p.scope.domains.is_empty() {
        return Err(OpsError::Invalid(
            "scope: a policy needs at least one sender or domain".into(),
        ));
    }
    let none = PolicySettings::default();
    p.settings = authorize(store, ceilings, actor.role, tenant, &none, p.settings).await?;
    if store.policy(tenant, &p.name).await?.is_some() {
        return Err(OpsError::Conflict(format!(
            "policy {} of tenant {tenant} already exists",
            p.name
        )));
    }
    store.put_policy(tenant, &p).await?;
    let detail = serde_json::to_string(&p).unwrap_or_default();
    actor
        .audit(
            store,
            "policy.add",
            &format!("{tenant}/{}", p.name),
            &detail,
        )
        .await?;
    Ok(p)
}

/// Remove a custom policy; audited `policy.remove`.
pub async fn remove(
    store: &Store,
    actor: &Actor,
    tenant: &str,
    name: &str,
) -> Result<(), OpsError> {
    visible_tenant(store, actor, tenant).await?;
    actor.require_write()?;
    store.remove_policy(tenant, name).await?;
    actor
        .audit(store, "policy.remove", &format!("{tenant}/{name}"), "")
        .await
}

/// The domains a tenant's BCC and notification addresses must lie in. The one place this is
/// decided: when domains gain a verified state, only verified ones belong here.
pub async fn own_domains(store: &Store, tenant: &str) -> Result<Vec<String>, StoreError> {
    // Verified only: a pending claim (SPEC §9) is not the tenant's yet.
    Ok(store
        .list_domains(Some(tenant))
        .await?
        .into_iter()
        .filter(|d| d.status == outguard_types::model::DomainStatus::Verified)
        .map(|d| d.domain)
        .collect())
}

/// Checks `next` — the settings `role` wants to store on a policy of `tenant` that holds
/// `current` now — and returns what to store. A tenant admin who leaves an operator-only key
/// out keeps the operator's value (so a form or a PUT that omits it does not unset it).
pub async fn authorize(
    store: &Store,
    ceilings: &PolicyCeilings,
    role: Role,
    tenant: &str,
    current: &PolicySettings,
    mut next: PolicySettings,
) -> Result<PolicySettings, PolicyRefusal> {
    next.validate().map_err(PolicyRefusal::Invalid)?;
    match role {
        Role::Operator => return Ok(next),
        Role::TenantReader => {
            return Err(PolicyRefusal::Forbidden(
                "a tenant_reader token cannot change anything".into(),
            ));
        }
        Role::TenantAdmin => {}
    }
    keep_operator_keys(current, &mut next)?;
    ceilings
        .check(&next, current)
        .map_err(PolicyRefusal::Invalid)?;
    let domains = own_domains(store, tenant).await?;
    for (key, list, before) in [
        (
            "bcc_recipients",
            &next.bcc_recipients,
            &current.bcc_recipients,
        ),
        (
            "notify_recipients",
            &next.notify_recipients,
            &current.notify_recipients,
        ),
    ] {
        for a in list.iter().flatten() {
            let kept = before.iter().flatten().any(|b| b.eq_ignore_ascii_case(a));
            if !kept && !outguard_policy::rcpt::is_internal(a, &domains) {
                return Err(PolicyRefusal::Invalid(format!(
                    "{key}: `{a}` is not in a domain of tenant {tenant}"
                )));
            }
        }
    }
    Ok(next)
}

/// The operator-only keys of a tenant admin's write: unchanged or left out (kept), never new.
fn keep_operator_keys(
    current: &PolicySettings,
    next: &mut PolicySettings,
) -> Result<(), PolicyRefusal> {
    let pairs = [
        (
            &mut next.tenant_spam_messages_per_hour,
            current.tenant_spam_messages_per_hour,
        ),
        (&mut next.max_unblocks_per_day, current.max_unblocks_per_day),
    ];
    for ((slot, was), key) in pairs.into_iter().zip(OPERATOR_ONLY_KEYS) {
        match *slot {
            None => *slot = was,
            Some(v) if Some(v) == was => {}
            Some(v) => {
                return Err(PolicyRefusal::Forbidden(format!(
                    "{key}: only an operator may set this service limit (asked {v})"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/r.db", dir.path().display()))
            .await
            .unwrap();
        store.add_tenant("acme", 1).await.unwrap();
        store.add_tenant("globex", 1).await.unwrap();
        store.add_domain("acme", "acme.example").await.unwrap();
        store.add_domain("globex", "globex.example").await.unwrap();
        (dir, store)
    }

    fn with(k: &str, v: &str) -> PolicySettings {
        let mut s = PolicySettings::default();
        s.set_key(k, v).unwrap();
        s
    }

    #[tokio::test]
    async fn the_authority_table() {
        let (_d, store) = store().await;
        let ceilings = PolicyCeilings {
            recipient_limit_per_day: 2000,
            ..Default::default()
        };
        let none = PolicySettings::default();
        let run = |role: Role, next: PolicySettings, current: PolicySettings| {
            let (store, ceilings) = (&store, &ceilings);
            async move { authorize(store, ceilings, role, "acme", &current, next).await }
        };
        use Role::{Operator as Op, TenantAdmin as Ta, TenantReader as Tr};
        let forbidden = |r: &Result<PolicySettings, PolicyRefusal>| {
            matches!(r, Err(PolicyRefusal::Forbidden(_)))
        };
        let invalid = |r: &Result<PolicySettings, PolicyRefusal>, key: &str| matches!(r, Err(PolicyRefusal::Invalid(m)) if m.contains(key));
        for key in OPERATOR_ONLY_KEYS {
            let r = run(Ta, with(key, "999"), none.clone()).await;
            assert!(forbidden(&r), "{key}: {r:?}");
            assert!(run(Op, with(key, "999"), none.clone()).await.is_ok());
            // The operator's value survives a tenant admin's write that leaves it out or repeats it.
            let set = with(key, "999");
            let kept = run(Ta, with("quarantine", "on"), set.clone())
                .await
                .unwrap();
            assert_eq!(kept.entries(), {
                let mut s = set.clone();
                s.quarantine = Some(true);
                s.entries()
            });
            assert!(run(Ta, set.clone(), set.clone()).await.is_ok());
        }
        let r = run(Ta, with("recipient_limit_per_day", "2001"), none.clone()).await;
        assert!(invalid(&r, "2000"), "{r:?}");
        assert!(
            run(Op, with("recipient_limit_per_day", "5000"), none.clone())
                .await
                .is_ok()
        );
        assert!(
            run(Tr, with("quarantine", "on"), none.clone())
                .await
                .is_err()
        );
        assert!(
            run(Ta, with("bcc_recipients", "sec@ACME.example"), none.clone())
                .await
                .is_ok()
        );
        let r = run(Ta, with("bcc_recipients", "x@globex.example"), none.clone()).await;
        assert!(invalid(&r, "not in a domain of tenant acme"), "{r:?}");
        let r = run(
            Ta,
            with("notify_recipients", "x@sub.acme.example"),
            none.clone(),
        )
        .await;
        assert!(invalid(&r, "notify_recipients"), "{r:?}");
        assert!(
            run(
                Op,
                with("bcc_recipients", "abuse@service.example"),
                none.clone()
            )
            .await
            .is_ok(),
            "an operator may aim copies at the service's own desk"
        );
        let nul = PolicySettings {
            bcc_recipients: Some(vec!["z\0y@acme.example".into()]),
            ..Default::default()
        };
        assert!(invalid(&run(Op, nul, none.clone()).await, "control"));
    }
}
