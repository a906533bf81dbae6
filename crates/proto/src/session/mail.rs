//! MAIL FROM: sequencing and the cheap protocol checks; whether this sender may send is the
//! I/O loop's decision ([`Event::Mail`] → [`Session::mail_done`]).

use std::borrow::Cow;

use smtp_proto::MailFrom;

use super::{Event, MailRequest, Pending, Session, State};
use crate::reply::Reply;

impl Session {
    pub(super) fn mail(&mut self, from: MailFrom<Cow<'_, str>>) -> Event {
        match self.state {
            State::Fresh => return Event::Reply(Reply::bad_sequence("Send EHLO first")),
            State::Ready => {}
            _ => return Event::Reply(Reply::bad_sequence("Nested MAIL command")),
        }
        if self.cfg.kind.uses_auth() && self.authenticated.is_none() {
            return Event::Reply(Reply::auth_required());
        }
        if from.size > self.cfg.max_message_size {
            return Event::Reply(Reply::too_big());
        }
        let req = MailRequest {
            from: from.address.to_string(),
            size: from.size,
            smtputf8: from.flags & smtp_proto::MAIL_SMTPUTF8 != 0,
        };
        if !req.from.is_empty() && !plausible_address(&req.from) {
            return Event::Reply(Reply::new(553, "5.1.7", "Malformed sender address"));
        }
        if !req.smtputf8 && !req.from.is_ascii() {
            return Event::Reply(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address requires SMTPUTF8",
            ));
        }
        self.pending_mail = Some(req.clone());
        self.wait(Pending::Mail, Event::Mail(req))
    }

    /// The I/O loop's answer to [`Event::Mail`].
    pub fn mail_done(&mut self, result: Result<(), Reply>) {
        if !self.expect_waiting(Pending::Mail) {
            return;
        }
        let req = self.pending_mail.take();
        let reply = match result {
            Ok(()) => {
                self.mail = req;
                Reply::new(250, "2.1.0", "Sender ok")
            }
            Err(r) => r,
        };
        self.state = self.transaction_state();
        self.out.push_back(Event::Reply(reply));
    }
}

/// One `@`, a non-empty local part and domain, no source route or `%`/`!` hacks, no spaces.
/// Quoted local parts are refused outright: an outbound relay's own users never need them.
pub fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !local.contains(['@', '%', '!', '"', ' ', ':', ',', '<', '>', '\\'])
        && !domain.contains(['@', '%', '!', '"', ' ', ':', ',', '<', '>', '\\', '[', ']'])
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && a.len() <= 254
        && !a.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::plausible_address;

    #[test]
    fn open_relay_tricks_are_not_plausible() {
        for bad in [
            "user@other@domain.example",
            "user%other.example@domain.example",
            "other.example!user@domain.example",
            "\"user@other\"@domain.example",
            "@relay.example:user@other.example",
            "user@[127.0.0.1]",
            "user@localhost",
            "user@domain.example.",
            "us er@domain.example",
        ] {
            assert!(!plausible_address(bad), "{bad}");
        }
        assert!(plausible_address("alice@a.example"));
        assert!(plausible_address("a.b+tag@sub.a.example"));
    }
}
