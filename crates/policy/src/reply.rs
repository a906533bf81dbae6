//! Policy refusals as values (STYLE rule 3) and the numbers behind every decision, so the relay
//! answers with the exact SMTP reply and the trace shows why ("external recipients in last
//! hour: 501 > 500").

use std::fmt;

use serde::{Deserialize, Serialize};

/// An SMTP refusal the relay sends as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub code: u16,
    pub enhanced: String,
    pub text: String,
}

impl Reject {
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Reject {
        Reject {
            code,
            enhanced: enhanced.to_string(),
            text: text.into(),
        }
    }

    /// `550 5.1.8` for a restricted account.
    pub fn account_restricted() -> Reject {
        Reject::new(550, "5.1.8", "Access denied, bad outbound sender")
    }

    /// `550 5.7.711` for a restricted connector.
    pub fn connector_restricted() -> Reject {
        Reject::new(550, "5.7.711", "Access denied, bad inbound connector")
    }

    /// `550 5.7.705` for a tenant restricted as a whole.
    pub fn tenant_restricted() -> Reject {
        Reject::new(
            550,
            "5.7.705",
            "Access denied, tenant has exceeded threshold",
        )
    }

    /// `550 5.7.750` for a tenant whose connectors sent too much from unregistered domains
    /// (SPEC §9; EOP's text).
    pub fn unregistered_domains() -> Reject {
        Reject::new(
            550,
            "5.7.750",
            "Service unavailable. Client blocked from sending from unregistered domains",
        )
    }

    /// `550 5.1.90` for the daily recipient limit (and the 24 h ceiling).
    pub fn daily_limit() -> Reject {
        Reject::new(
            550,
            "5.1.90",
            "Your message can't be sent because you've reached your daily limit for message recipients",
        )
    }

    /// `550 5.2.2` for the hourly recipient limits.
    pub fn hourly_limit() -> Reject {
        Reject::new(550, "5.2.2", "Submission quota exceeded")
    }

    /// `451 4.7.0` deferral for the message rate (the client retries; nothing is lost).
    pub fn message_rate(per_minute: u32) -> Reject {
        Reject::new(
            451,
            "4.7.0",
            format!("Message rate limit exceeded ({per_minute} per minute), try again later"),
        )
    }

    /// `550 5.7.1` for spam above the reject score, with the strongest reasons.
    pub fn spam(top_reasons: &[String]) -> Reject {
        let mut text = String::from("Message rejected as spam");
        if !top_reasons.is_empty() {
            text.push_str(" (");
            text.push_str(&top_reasons.join(", "));
            text.push(')');
        }
        Reject::new(550, "5.7.1", text)
    }

    /// Permanent (5xx) rather than transient (4xx).
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.code, self.enhanced, self.text)
    }
}

/// One number a decision looked at: what was counted, the count including this request, and
/// the limit it was held to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    pub what: String,
    pub count: u64,
    pub limit: u64,
}

impl Measure {
    pub fn new(what: impl Into<String>, count: u64, limit: u64) -> Measure {
        Measure {
            what: what.into(),
            count,
            limit,
        }
    }

    pub fn exceeded(&self) -> bool {
        self.count > self.limit
    }

    /// The count has come to the limit: a spam limit acts on the message that reaches it
    /// (SPEC §2.4 "reaching a spam limit"), where a recipient limit acts on the one past it.
    pub fn reached(&self) -> bool {
        self.count >= self.limit
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == self.limit {
            return write!(
                f,
                "{}: {} = {} (limit reached)",
                self.what, self.count, self.limit
            );
        }
        let op = if self.exceeded() { ">" } else { "<" };
        write!(f, "{}: {} {op} {}", self.what, self.count, self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_render_exactly() {
        assert_eq!(
            Reject::account_restricted().to_string(),
            "550 5.1.8 Access denied, bad outbound sender"
        );
        assert_eq!(
            Reject::connector_restricted().to_string(),
            "550 5.7.711 Access denied, bad inbound connector"
        );
        assert_eq!(
            Reject::tenant_restricted().to_string(),
            "550 5.7.705 Access denied, tenant has exceeded threshold"
        );
        assert_eq!(
            Reject::hourly_limit().to_string(),
            "550 5.2.2 Submission quota exceeded"
        );
        assert!(
            Reject::daily_limit()
                .to_string()
                .starts_with("550 5.1.90 Your message can't be sent")
        );
        assert!(!Reject::message_rate(30).is_permanent());
        assert_eq!(
            Reject::spam(&["URL_SHORTENER".into(), "FROM_MISMATCH".into()]).to_string(),
            "550 5.7.1 Message rejected as spam (URL_SHORTENER, FROM_MISMATCH)"
        );
        assert_eq!(
            Measure::new("external recipients in last hour", 503, 500).to_string(),
            "external recipients in last hour: 503 > 500"
        );
    }
}
