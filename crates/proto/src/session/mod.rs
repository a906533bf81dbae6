//! The SMTP server session as an explicit state machine (STYLE rule 1). The I/O loop feeds it
//! bytes and pulls [`Event`]s: replies to write, and decisions it must make (AUTH, MAIL, RCPT,
//! the finished message) and hand back through the `*_done` methods. Nothing here does I/O or
//! knows about tenants: the checks live in the binary, the protocol lives here.
//!
//! One file per verb: `ehlo`, `auth`, `mail`, `rcpt`, `data`, `starttls`, `misc`.

mod auth;
mod data;
mod ehlo;
mod mail;
mod misc;
mod rcpt;
mod starttls;

use std::collections::VecDeque;

use crate::data::DataReader;
use crate::reply::Reply;
use crate::sasl::Credentials;

/// Longest command line accepted (RFC 5321 allows 512; extensions make real ones longer).
pub const MAX_COMMAND_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Port 587-style: STARTTLS, AUTH required before MAIL.
    Submission,
    /// Implicit TLS, AUTH required.
    Submissions,
    /// Tenants' servers admitted by source IP; no AUTH.
    Connector,
    /// Feedback-loop reports (ARF) from mailbox providers.
    Fbl,
    /// Mail a Postfix passes to our milter (Postfix runs the SMTP session; issue 23).
    Milter,
}

impl ListenerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerKind::Submission => "submission",
            ListenerKind::Submissions => "submissions",
            ListenerKind::Connector => "connector",
            ListenerKind::Fbl => "fbl",
            ListenerKind::Milter => "milter",
        }
    }

    fn uses_auth(self) -> bool {
        matches!(self, ListenerKind::Submission | ListenerKind::Submissions)
    }
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    pub kind: ListenerKind,
    /// STARTTLS can be offered (a certificate is loaded).
    pub tls_available: bool,
    /// The connection is already TLS (implicit TLS listener).
    pub tls_active: bool,
    /// AUTH may be offered without TLS (loopback client and the config flag set).
    pub plaintext_auth_ok: bool,
    pub max_message_size: usize,
    pub max_recipients: usize,
}

/// What the I/O loop must do next.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// Read more input (flush pending output first).
    NeedMore,
    /// Write this reply; more events may follow without reading.
    Reply(Reply),
    /// Write this reply and close the connection.
    Close(Reply),
    /// Write the reply, then run the TLS handshake and call [`Session::tls_started`].
    StartTls(Reply),
    /// Verify credentials, then call [`Session::auth_done`].
    Auth(Credentials),
    /// Check the envelope sender, then call [`Session::mail_done`].
    Mail(MailRequest),
    /// Check a recipient, then call [`Session::rcpt_done`].
    Rcpt(String),
    /// A complete, well-formed message: scan, decide, spool, then call [`Session::data_done`].
    Message(Vec<u8>),
    /// The transaction was abandoned (RSET, EHLO, failed DATA): give back what it reserved.
    TransactionReset,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRequest {
    /// Envelope sender; empty for the null sender `<>`.
    pub from: String,
    /// Declared SIZE, 0 when absent.
    pub size: usize,
    pub smtputf8: bool,
}

#[derive(Debug)]
enum State {
    /// Before EHLO/HELO.
    Fresh,
    /// Greeted, no transaction.
    Ready,
    /// MAIL accepted; `rcpts` holds accepted recipients.
    Transaction,
    Data(Box<DataReader>),
    AuthPlain,
    AuthLoginUser,
    AuthLoginPass(String),
    /// A decision is out with the I/O loop.
    Waiting(Pending),
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Auth,
    Mail,
    Rcpt,
    Message,
}

#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    state: State,
    input: Vec<u8>,
    out: VecDeque<Event>,
    tls_active: bool,
    authenticated: Option<String>,
    greeted_ehlo: bool,
    helo_name: String,
    mail: Option<MailRequest>,
    rcpts: Vec<String>,
    pending_rcpt: Option<String>,
    pending_mail: Option<MailRequest>,
    /// Skipping the rest of an overlong command line.
    discarding_line: bool,
}

impl Session {
    pub fn new(cfg: SessionConfig) -> Session {
        let tls_active = cfg.tls_active;
        Session {
            cfg,
            state: State::Fresh,
            input: Vec::new(),
            out: VecDeque::new(),
            tls_active,
            authenticated: None,
            greeted_ehlo: false,
            helo_name: String::new(),
            mail: None,
            rcpts: Vec::new(),
            pending_rcpt: None,
            pending_mail: None,
            discarding_line: false,
        }
    }

    pub fn greeting(&self) -> Reply {
        Reply::new(220, "", format!("{} ESMTP Outguard", self.cfg.hostname))
    }

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }
    pub fn tls_active(&self) -> bool {
        self.tls_active
    }
    /// The name the client gave in EHLO/HELO (for the Received header).
    pub fn helo_name(&self) -> &str {
        &self.helo_name
    }
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }
    pub fn mail_from(&self) -> Option<&MailRequest> {
        self.mail.as_ref()
    }
    pub fn rcpts(&self) -> &[String] {
        &self.rcpts
    }
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }
    /// True while a message body is being read (the I/O loop uses a larger byte budget then).
    pub fn in_data(&self) -> bool {
        matches!(self.state, State::Data(_))
    }

    /// Append bytes read from the client.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// The next thing to do. Call repeatedly until [`Event::NeedMore`] (or a decision event).
    pub fn next_event(&mut self) -> Event {
        if let Some(ev) = self.out.pop_front() {
            return ev;
        }
        match &self.state {
            State::Closed => Event::NeedMore,
            State::Waiting(_) => Event::NeedMore,
            State::Data(_) => self.step_data(),
            State::AuthPlain | State::AuthLoginUser | State::AuthLoginPass(_) => {
                self.step_auth_line()
            }
            _ => self.step_command(),
        }
    }

    /// End the session with `reply`: whatever the client already pipelined is dropped unread.
    fn close_with(&mut self, reply: Reply) -> Event {
        self.input.clear();
        self.state = State::Closed;
        Event::Close(reply)
    }

    fn reset_transaction(&mut self) {
        let had = self.mail.is_some() || !self.rcpts.is_empty();
        self.mail = None;
        self.rcpts.clear();
        if had {
            self.out.push_back(Event::TransactionReset);
        }
    }

    /// Take one line (through LF) out of the input, or None if incomplete.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        loop {
            let pos = self.input.iter().position(|&b| b == b'\n');
            match pos {
                Some(p) => {
                    let line: Vec<u8> = self.input.drain(..=p).collect();
                    if self.discarding_line {
                        self.discarding_line = false;
                        continue;
                    }
                    if line.len() > MAX_COMMAND_LINE {
                        self.out.push_back(Event::Reply(Reply::line_too_long()));
                        continue;
                    }
                    return Some(line);
                }
                None => {
                    if self.input.len() > MAX_COMMAND_LINE {
                        self.input.clear();
                        if !self.discarding_line {
                            self.discarding_line = true;
                            self.out.push_back(Event::Reply(Reply::line_too_long()));
                        }
                    }
                    return None;
                }
            }
        }
    }

    fn step_command(&mut self) -> Event {
        let Some(line) = self.take_line() else {
            return self.out.pop_front().unwrap_or(Event::NeedMore);
        };
        if let Some(ev) = self.out.pop_front() {
            // An overlong-line reply was queued while taking this line: keep order.
            self.input.splice(0..0, line);
            return ev;
        }
        let ev = self.dispatch(&line);
        self.out.push_back(ev);
        self.out.pop_front().unwrap_or(Event::NeedMore)
    }

    fn dispatch(&mut self, line: &[u8]) -> Event {
        use smtp_proto::Request;
        match Request::parse(&mut line.iter()) {
            Ok(Request::Ehlo { host }) => self.ehlo(host.as_ref(), true),
            Ok(Request::Helo { host }) => self.ehlo(host.as_ref(), false),
            Ok(Request::Lhlo { .. }) => Event::Reply(Reply::unknown_command()),
            Ok(Request::StartTls) => self.starttls(),
            Ok(Request::Auth {
                mechanism,
                initial_response,
            }) => self.auth(mechanism, initial_response.as_ref()),
            Ok(Request::Mail { from }) => self.mail(from),
            Ok(Request::Rcpt { to }) => self.rcpt(to.address.as_ref()),
            Ok(Request::Data) => self.data(),
            Ok(Request::Rset) => self.rset(),
            Ok(Request::Noop { .. }) => Event::Reply(Reply::ok("Ok")),
            Ok(Request::Quit) => self.quit(),
            Ok(Request::Vrfy { .. }) => Event::Reply(Reply::new(252, "2.5.0", "Cannot VRFY user")),
            Ok(Request::Help { .. }) => Event::Reply(Reply::new(214, "2.0.0", "See RFC 5321")),
            Ok(_) => Event::Reply(Reply::not_implemented()),
            Err(e) => Event::Reply(misc::parse_error_reply(&e)),
        }
    }

    fn wait(&mut self, p: Pending, ev: Event) -> Event {
        self.state = State::Waiting(p);
        ev
    }

    fn expect_waiting(&mut self, p: Pending) -> bool {
        matches!(self.state, State::Waiting(q) if q == p)
    }

    fn transaction_state(&self) -> State {
        if self.mail.is_some() {
            State::Transaction
        } else {
            State::Ready
        }
    }
}

#[cfg(test)]
mod tests;
