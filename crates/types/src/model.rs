//! Domain records kept in the store and shown by the API and CLI. Times are Unix milliseconds
//! (UTC) so every backend stores them the same way.

use serde::{Deserialize, Serialize};

/// Unix time in milliseconds.
pub type Millis = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub domain: String,
    pub tenant: String,
    /// DKIM selector and PEM private key (PKCS#8), when the operator configured signing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dkim_selector: Option<String>,
    /// Only a `verified` domain may be used as a sender (SPEC §9). Records written before
    /// verification existed read as verified.
    #[serde(default)]
    pub status: DomainStatus,
    /// While `pending`: the token to publish as the TXT record `outguard-verify=<token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_token: Option<String>,
}

/// Whether a domain's ownership is proven (SPEC §9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainStatus {
    /// Added by an operator, or its TXT record was found.
    #[default]
    Verified,
    /// Added by a tenant admin; not usable for sending until verified.
    Pending,
}

impl DomainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DomainStatus::Verified => "verified",
            DomainStatus::Pending => "pending",
        }
    }
}

/// A user that submits with SMTP AUTH. The password hash never leaves the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub address: String,
    pub tenant: String,
    pub created_at: Millis,
    /// Extra addresses (`user@dom`) or whole domains (`@dom`) this account may send as.
    pub send_as: Vec<String>,
}

/// A tenant's own mail server, admitted by source address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connector {
    pub cidr: ipnet::IpNet,
    pub tenant: String,
    pub limit_per_hour: Option<u32>,
    pub created_at: Millis,
    /// Set by an operator only: the connector may relay mail from domains its tenant has not
    /// registered (forwarded mail: `relay` pool, SRS), up to the tenant's hourly allowance.
    #[serde(default)]
    pub forwarding: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Operator,
    TenantAdmin,
    TenantReader,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::TenantAdmin => "tenant_admin",
            Role::TenantReader => "tenant_reader",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "operator" => Some(Role::Operator),
            "tenant_admin" => Some(Role::TenantAdmin),
            "tenant_reader" => Some(Role::TenantReader),
            _ => None,
        }
    }
}

/// What a bearer token stands for (the token itself is stored only as its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub role: Role,
    pub tenant: Option<String>,
    pub created_at: Millis,
}

/// Who submitted a message: an AUTH account, or a connector (by its CIDR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Submitter {
    Account(String),
    Connector(String),
    /// Mail Outguard itself generates (DSNs, notifications).
    System,
}

/// Where a message is in its life. Mirrors the spool; the spool is the truth on its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    Queued,
    Deferred,
    Held,
    Quarantined,
    Delivered,
    Bounced,
    Rejected,
    Deleted,
}

impl MessageState {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Queued => "queued",
            MessageState::Deferred => "deferred",
            MessageState::Held => "held",
            MessageState::Quarantined => "quarantined",
            MessageState::Delivered => "delivered",
            MessageState::Bounced => "bounced",
            MessageState::Rejected => "rejected",
            MessageState::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<MessageState> {
        [
            MessageState::Queued,
            MessageState::Deferred,
            MessageState::Held,
            MessageState::Quarantined,
            MessageState::Delivered,
            MessageState::Bounced,
            MessageState::Rejected,
            MessageState::Deleted,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// One message as the trace and the API see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The id of `250 … queued as <id>`, the `X-Outguard-Id` header, trace and API.
    pub id: String,
    pub tenant: Option<String>,
    pub submitter: Submitter,
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub header_from: Option<String>,
    pub message_id_header: Option<String>,
    pub subject: Option<String>,
    pub size: u64,
    pub received_at: Millis,
    pub state: MessageState,
    pub pool: Option<String>,
    pub class: Option<crate::verdict::Class>,
    pub score: Option<f64>,
    /// The node whose spool holds the message.
    pub node: String,
    /// `sha256:<hex>` of the body as spooled (see `outguard::fbl::digest`): a complaint's
    /// attached copy must match it to train the tenant's spam overlay (SPEC §9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_digest: Option<String>,
}

/// Kinds of trace events (SPEC §2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Received,
    Verdict,
    Policy,
    Queued,
    Routed,
    Attempt,
    Delivered,
    Deferred,
    Bounced,
    Dsn,
    Held,
    Released,
    Quarantined,
    Deleted,
    Complaint,
    /// Traffic shaping slowed, suspended or restored a (source IP, destination) pair, or held
    /// a message back because of it (issue 22).
    DeliveryShaping,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Received => "received",
            EventKind::Verdict => "verdict",
            EventKind::Policy => "policy",
            EventKind::Queued => "queued",
            EventKind::Routed => "routed",
            EventKind::Attempt => "attempt",
            EventKind::Delivered => "delivered",
            EventKind::Deferred => "deferred",
            EventKind::Bounced => "bounced",
            EventKind::Dsn => "dsn",
            EventKind::Held => "held",
            EventKind::Released => "released",
            EventKind::Quarantined => "quarantined",
            EventKind::Deleted => "deleted",
            EventKind::Complaint => "complaint",
            EventKind::DeliveryShaping => "delivery_shaping",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        use EventKind::*;
        [
            Received,
            Verdict,
            Policy,
            Queued,
            Routed,
            Attempt,
            Delivered,
            Deferred,
            Bounced,
            Dsn,
            Held,
            Released,
            Quarantined,
            Deleted,
            Complaint,
            DeliveryShaping,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One step of a message's life. `detail` is a short human sentence; `data` holds the numbers
/// (remote reply, pool, source IP, score, counts) for the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    pub message_id: String,
    pub at: Millis,
    pub kind: EventKind,
    pub detail: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// Search filter for `outguard trace` and `GET /api/v1/messages`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageFilter {
    pub id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub tenant: Option<String>,
    pub state: Option<MessageState>,
    pub limit: Option<u32>,
}
