//! Who is submitting: an authenticated account or an admitted connector, with what the
//! sender checks need (tenant, send-as grants).

use outguard_types::model::Submitter;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Not (yet) authenticated and not a connector.
    None,
    Account {
        address: String,
        tenant: String,
        send_as: Vec<String>,
    },
    Connector {
        cidr: String,
        tenant: String,
        limit_per_hour: Option<u32>,
        /// An operator allowed it to relay mail from domains its tenant has not registered.
        forwarding: bool,
    },
    /// The fbl listener: anyone may deliver reports for the configured domains.
    FeedbackLoop,
}

impl From<outguard_types::model::Account> for Identity {
    fn from(a: outguard_types::model::Account) -> Identity {
        Identity::Account {
            address: a.address,
            tenant: a.tenant,
            send_as: a.send_as,
        }
    }
}

impl From<outguard_types::model::Connector> for Identity {
    fn from(c: outguard_types::model::Connector) -> Identity {
        Identity::Connector {
            cidr: c.cidr.to_string(),
            tenant: c.tenant,
            limit_per_hour: c.limit_per_hour,
            forwarding: c.forwarding,
        }
    }
}

impl Identity {
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Identity::Account { tenant, .. } | Identity::Connector { tenant, .. } => Some(tenant),
            _ => None,
        }
    }

    pub fn submitter(&self) -> Submitter {
        match self {
            Identity::Account { address, .. } => Submitter::Account(address.clone()),
            Identity::Connector { cidr, .. } => Submitter::Connector(cidr.clone()),
            Identity::None | Identity::FeedbackLoop => Submitter::System,
        }
    }

    /// May this account use `addr` as its sender (own address or a send-as grant)?
    pub fn may_send_as(&self, addr: &str) -> bool {
        let addr = addr.to_ascii_lowercase();
        match self {
            Identity::Account {
                address, send_as, ..
            } => {
                address.eq_ignore_ascii_case(&addr)
                    || send_as.iter().any(|g| match g.strip_prefix('@') {
                        Some(dom) => domain_of(&addr).is_some_and(|d| d.eq_ignore_ascii_case(dom)),
                        None => g.eq_ignore_ascii_case(&addr),
                    })
            }
            _ => false,
        }
    }
}

pub fn domain_of(addr: &str) -> Option<&str> {
    addr.rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_as_rules() {
        let id = Identity::Account {
            address: "alice@a.example".into(),
            tenant: "a".into(),
            send_as: vec!["sales@a.example".into(), "@news.a.example".into()],
        };
        assert!(id.may_send_as("ALICE@a.example"));
        assert!(id.may_send_as("sales@a.example"));
        assert!(id.may_send_as("x@news.a.example"));
        assert!(!id.may_send_as("bob@a.example"));
        assert!(!id.may_send_as("alice@b.example"));
    }
}
