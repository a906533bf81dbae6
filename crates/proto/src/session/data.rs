//! DATA: `354`, then the smuggling-safe [`DataReader`]; a complete message goes to the I/O loop
//! ([`Event::Message`] → [`Session::data_done`] with `250 … queued as <id>` or a refusal).

use super::{Event, Pending, Session, State};
use crate::data::{DataError, DataProgress, DataReader};
use crate::reply::Reply;

impl Session {
    pub(super) fn data(&mut self) -> Event {
        match self.state {
            State::Transaction if !self.rcpts.is_empty() => {
                self.state = State::Data(Box::new(DataReader::new(self.cfg.max_message_size)));
                Event::Reply(Reply::new(354, "", "End data with <CR><LF>.<CR><LF>"))
            }
            State::Transaction => Event::Reply(Reply::new(554, "5.5.1", "No valid recipients")),
            _ => Event::Reply(Reply::bad_sequence("Need MAIL and RCPT before DATA")),
        }
    }

    pub(super) fn step_data(&mut self) -> Event {
        let State::Data(reader) = &mut self.state else {
            return Event::NeedMore;
        };
        let consumed = match reader.ingest(&self.input) {
            DataProgress::More => {
                self.input.clear();
                return Event::NeedMore;
            }
            DataProgress::Done(n) => n,
        };
        self.input.drain(..consumed);
        let State::Data(reader) = std::mem::replace(&mut self.state, State::Ready) else {
            return Event::NeedMore;
        };
        match reader.finish() {
            Ok(body) => self.wait(Pending::Message, Event::Message(body)),
            Err(e) => {
                self.reset_transaction();
                let event = match e {
                    // Postfix's `smtpd_forbid_bare_newline` posture: a client that sends bare CR,
                    // LF or NUL is either broken or probing for smuggling, and the bytes it
                    // pipelined after the end are exactly what a smuggler controls. Answer and
                    // hang up, so nothing it sent after a refused DATA is read as a command.
                    DataError::BareCrOrLf => self.close_with(Reply::bare_cr_lf()),
                    DataError::Nul => self.close_with(Reply::nul_byte()),
                    DataError::TooBig => Event::Reply(Reply::too_big()),
                };
                self.out.push_back(event);
                self.out.pop_front().unwrap_or(Event::NeedMore)
            }
        }
    }

    /// The I/O loop's answer to [`Event::Message`]. Either way the transaction ends.
    pub fn data_done(&mut self, reply: Reply) {
        if !self.expect_waiting(Pending::Message) {
            return;
        }
        self.state = State::Ready;
        let accepted = reply.is_positive();
        self.mail = None;
        self.rcpts.clear();
        if !accepted {
            self.out.push_back(Event::TransactionReset);
        }
        self.out.push_back(Event::Reply(reply));
    }
}
