//! STARTTLS (RFC 3207). After the handshake everything read before it is discarded (the
//! CVE-2011-0411 command-injection class) and the client must EHLO again.

use super::{Event, Session, State};
use crate::reply::Reply;

impl Session {
    pub(super) fn starttls(&mut self) -> Event {
        if self.tls_active {
            return Event::Reply(Reply::bad_sequence("TLS already active"));
        }
        if !self.cfg.tls_available {
            return Event::Reply(Reply::new(454, "4.7.0", "TLS not available"));
        }
        if !self.input.is_empty() {
            // Pipelined commands after STARTTLS are an injection attempt: refuse and drop them.
            self.input.clear();
            return Event::Reply(Reply::new(
                554,
                "5.5.1",
                "Commands pipelined after STARTTLS are not allowed",
            ));
        }
        self.reset_transaction();
        Event::StartTls(Reply::new(220, "2.0.0", "Ready to start TLS"))
    }

    /// The handshake succeeded: forget all pre-TLS state.
    pub fn tls_started(&mut self) {
        self.input.clear();
        self.tls_active = true;
        self.greeted_ehlo = false;
        self.mail = None;
        self.rcpts.clear();
        self.state = State::Fresh;
    }
}
