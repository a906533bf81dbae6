//! RCPT TO: sequencing, the per-message recipient cap (`452 4.5.3`), then the I/O loop's
//! decision ([`Event::Rcpt`] → [`Session::rcpt_done`]).

use super::mail::plausible_address;
use super::{Event, Pending, Session, State};
use crate::reply::Reply;

impl Session {
    pub(super) fn rcpt(&mut self, to: &str) -> Event {
        if !matches!(self.state, State::Transaction) {
            return Event::Reply(Reply::bad_sequence("Need MAIL before RCPT"));
        }
        if self.rcpts.len() >= self.cfg.max_recipients {
            return Event::Reply(Reply::too_many_recipients());
        }
        if !plausible_address(to) {
            return Event::Reply(Reply::new(553, "5.1.3", "Malformed recipient address"));
        }
        let smtputf8 = self.mail.as_ref().is_some_and(|m| m.smtputf8);
        if !smtputf8 && !to.is_ascii() {
            return Event::Reply(Reply::new(
                553,
                "5.6.7",
                "Non-ASCII address requires SMTPUTF8",
            ));
        }
        self.pending_rcpt = Some(to.to_string());
        self.wait(Pending::Rcpt, Event::Rcpt(to.to_string()))
    }

    /// The I/O loop's answer to [`Event::Rcpt`].
    pub fn rcpt_done(&mut self, result: Result<(), Reply>) {
        if !self.expect_waiting(Pending::Rcpt) {
            return;
        }
        let to = self.pending_rcpt.take();
        let reply = match (result, to) {
            (Ok(()), Some(to)) => {
                self.rcpts.push(to);
                Reply::new(250, "2.1.5", "Recipient ok")
            }
            (Ok(()), None) => Reply::local_error(),
            (Err(r), _) => r,
        };
        self.state = State::Transaction;
        self.out.push_back(Event::Reply(reply));
    }
}
