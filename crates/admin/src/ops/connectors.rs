//! Connector management (SPEC §9): a tenant admin's prefix is no wider than IPv4 /24 or IPv6
//! /48 (`0.0.0.0/0` and `::/0` never); an operator goes wider only with `allow_wide`; only an
//! operator sets `forwarding`; and a connector never overlaps another tenant's, in either
//! direction, so no tenant can take over another's servers (the source-IP match of
//! `Store::connector_for_ip` then only ever chooses among one tenant's prefixes).

use ipnet::IpNet;
use outguard_store::Store;
use outguard_types::model::{Connector, Millis};

use super::{Actor, OpsError};

/// The widest IPv4 prefix a tenant admin may admit.
pub const TENANT_MIN_PREFIX_V4: u8 = 24;
/// The widest IPv6 prefix a tenant admin may admit.
pub const TENANT_MIN_PREFIX_V6: u8 = 48;

/// A connector to add, as every interface receives it.
#[derive(Debug, Clone)]
pub struct NewConnector {
    pub tenant: String,
    pub cidr: IpNet,
    pub limit_per_hour: Option<u32>,
    /// Operators only: admit a prefix wider than /24 or /48.
    pub allow_wide: bool,
    /// Operators only: relay mail from domains the tenant has not registered.
    pub forwarding: bool,
}

/// Whether `cidr` is narrow enough (pure; the width rule).
pub fn check_width(cidr: IpNet, allow_wide: bool) -> Result<(), OpsError> {
    let min = match cidr {
        IpNet::V4(_) => TENANT_MIN_PREFIX_V4,
        IpNet::V6(_) => TENANT_MIN_PREFIX_V6,
    };
    if cidr.prefix_len() >= min || allow_wide {
        return Ok(());
    }
    Err(OpsError::Invalid(format!(
        "connector {cidr} is too wide: a connector admits at most /{min} ({} addresses); \
         list your mail servers' addresses, or ask an operator",
        match cidr {
            IpNet::V4(_) => "256",
            IpNet::V6(_) => "one /48 site",
        }
    )))
}

/// The first connector of another tenant that `cidr` overlaps (either contains the other).
pub fn overlapping<'a>(
    existing: &'a [Connector],
    tenant: &str,
    cidr: IpNet,
) -> Option<&'a Connector> {
    existing.iter().find(|c| {
        c.tenant != tenant && (c.cidr.contains(&cidr.network()) || cidr.contains(&c.cidr.network()))
    })
}

/// Admit a tenant's mail server(s).
pub async fn add(
    store: &Store,
    actor: &Actor,
    req: NewConnector,
    now: Millis,
) -> Result<Connector, OpsError> {
    actor.require_write()?;
    actor.require_tenant(&req.tenant)?;
    if !actor.is_operator() && (req.allow_wide || req.forwarding) {
        return Err(OpsError::Forbidden(
            "only an operator may set allow_wide or forwarding".into(),
        ));
    }
    if req.limit_per_hour == Some(0) {
        return Err(OpsError::Invalid(
            "limit_per_hour must be at least 1".into(),
        ));
    }
    let cidr = req.cidr.trunc();
    if let IpNet::V6(v6) = cidr
        && v6.addr().to_ipv4_mapped().is_some()
    {
        // Mapped clients are matched as IPv4 (Store::connector_for_ip): say so instead of
        // accepting a prefix that would never match.
        return Err(OpsError::Invalid(format!(
            "connector {cidr}: write IPv4-mapped addresses in their IPv4 form"
        )));
    }
    check_width(cidr, actor.is_operator() && req.allow_wide)?;
    let existing = store.list_connectors(None).await?;
    if overlapping(&existing, &req.tenant, cidr).is_some() {
        return Err(OpsError::Conflict(format!(
            "connector {cidr} is not available: it overlaps an existing connector"
        )));
    }
    let c = store
        .add_connector_with(&req.tenant, cidr, req.limit_per_hour, req.forwarding, now)
        .await?;
    let mut detail = format!("tenant {}", c.tenant);
    if req.allow_wide {
        detail.push_str(", allow_wide");
    }
    if c.forwarding {
        detail.push_str(", forwarding");
    }
    actor
        .audit(store, "connector.add", &c.cidr.to_string(), &detail)
        .await?;
    Ok(c)
}

/// The connector `cidr` names, if the actor may see it (another tenant's reads as missing).
pub async fn find(store: &Store, actor: &Actor, cidr: IpNet) -> Result<Connector, OpsError> {
    let cidr = cidr.trunc();
    store
        .list_connectors(actor.tenant.as_deref().filter(|_| !actor.is_operator()))
        .await?
        .into_iter()
        .find(|c| c.cidr == cidr && actor.sees(&c.tenant))
        .ok_or_else(|| OpsError::NotFound(format!("connector {cidr} not found")))
}

/// Withdraw a connector.
pub async fn remove(store: &Store, actor: &Actor, cidr: IpNet) -> Result<Connector, OpsError> {
    let c = find(store, actor, cidr).await?;
    actor.require_write()?;
    store.remove_connector(c.cidr).await?;
    actor
        .audit(store, "connector.remove", &c.cidr.to_string(), "")
        .await?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("cidr")
    }

    fn conn(tenant: &str, cidr: &str) -> Connector {
        Connector {
            cidr: net(cidr),
            tenant: tenant.into(),
            limit_per_hour: None,
            created_at: 1,
            forwarding: false,
        }
    }

    #[test]
    fn width_vectors() {
        for (cidr, wide, ok) in [
            ("192.0.2.0/24", false, true),
            ("192.0.2.7/32", false, true),
            ("192.0.2.0/23", false, false),
            ("0.0.0.0/0", false, false),
            ("2001:db8::/48", false, true),
            ("2001:db8::/47", false, false),
            ("::/0", false, false),
            ("192.0.2.0/23", true, true),
            ("0.0.0.0/0", true, true),
        ] {
            let r = check_width(net(cidr), wide);
            assert_eq!(r.is_ok(), ok, "{cidr} allow_wide={wide}: {r:?}");
            if let Err(e) = r {
                assert!(matches!(e, OpsError::Invalid(_)));
                assert!(e.to_string().contains("too wide"), "{e}");
            }
        }
    }

    #[test]
    fn overlap_either_direction_other_tenants_only() {
        let existing = vec![conn("globex", "127.0.1.0/24"), conn("acme", "10.0.0.0/24")];
        // Inside another tenant's prefix, and around it.
        assert!(overlapping(&existing, "acme", net("127.0.1.5/32")).is_some());
        assert!(overlapping(&existing, "acme", net("127.0.0.0/16")).is_some());
        assert!(overlapping(&existing, "acme", net("127.0.1.0/24")).is_some());
        // Beside it; and one's own prefixes may nest.
        assert!(overlapping(&existing, "acme", net("127.0.2.0/24")).is_none());
        assert!(overlapping(&existing, "acme", net("10.0.0.5/32")).is_none());
        assert!(overlapping(&existing, "globex", net("127.0.1.5/32")).is_none());
        // Families never overlap.
        assert!(overlapping(&existing, "acme", net("2001:db8::/48")).is_none());
    }
}
