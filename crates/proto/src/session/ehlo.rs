//! EHLO / HELO: greet, advertise extensions, reset any transaction.

use super::{Event, Session, State};
use crate::reply::Reply;

impl Session {
    pub(super) fn ehlo(&mut self, host: &str, extended: bool) -> Event {
        if host.is_empty() {
            return Event::Reply(Reply::syntax("EHLO requires a domain or address"));
        }
        self.reset_transaction();
        self.greeted_ehlo = extended;
        self.helo_name = host
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        self.state = State::Ready;
        if !extended {
            return Event::Reply(Reply::new(250, "", self.cfg.hostname.clone()));
        }
        let mut lines = vec![
            format!("{} greets {}", self.cfg.hostname, host),
            "PIPELINING".into(),
            format!("SIZE {}", self.cfg.max_message_size),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
        ];
        if self.cfg.tls_available && !self.tls_active {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.push("HELP".into());
        Event::Reply(Reply::multi(250, lines))
    }

    /// AUTH is never offered before TLS, except to loopback clients when configured (SPEC §2.1).
    pub(super) fn auth_offered(&self) -> bool {
        self.cfg.kind.uses_auth()
            && self.authenticated.is_none()
            && (self.tls_active || self.cfg.plaintext_auth_ok)
    }
}
