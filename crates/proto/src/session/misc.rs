//! RSET, QUIT and the replies for commands smtp-proto could not parse.

use super::{Event, Session, State};
use crate::reply::Reply;

impl Session {
    pub(super) fn rset(&mut self) -> Event {
        self.reset_transaction();
        if !matches!(self.state, State::Fresh) {
            self.state = State::Ready;
        }
        Event::Reply(Reply::ok("Ok"))
    }

    pub(super) fn quit(&mut self) -> Event {
        self.reset_transaction();
        self.state = State::Closed;
        Event::Close(Reply::new(221, "2.0.0", "Bye"))
    }

    /// Close with a reply (timeout, shutdown, budget exceeded).
    pub fn abort(&mut self) {
        self.reset_transaction();
        self.state = State::Closed;
    }
}

pub(super) fn parse_error_reply(e: &smtp_proto::Error) -> Reply {
    use smtp_proto::Error as E;
    match e {
        E::UnknownCommand => Reply::unknown_command(),
        E::InvalidSenderAddress => Reply::new(553, "5.1.7", "Malformed sender address"),
        E::InvalidRecipientAddress => Reply::new(553, "5.1.3", "Malformed recipient address"),
        E::SyntaxError { syntax } => Reply::syntax(&format!("Syntax: {syntax}")),
        E::InvalidParameter { param } => {
            Reply::new(501, "5.5.4", format!("Invalid parameter {param}"))
        }
        E::UnsupportedParameter { param } => {
            let p: String = param
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(40)
                .collect();
            Reply::new(555, "5.5.4", format!("Unsupported parameter {p}"))
        }
        E::ResponseTooLong => Reply::line_too_long(),
        E::NeedsMoreData { .. } | E::InvalidResponse { .. } => Reply::syntax("Syntax error"),
    }
}
