//! AUTH PLAIN and LOGIN (RFC 4954). The session decodes SASL; the I/O loop verifies the
//! credentials (and counts failures per client IP) and answers through [`Session::auth_done`].

use super::{Event, Pending, Session, State};
use crate::reply::Reply;
use crate::sasl::{self, Credentials};

impl Session {
    pub(super) fn auth(&mut self, mechanism: u64, initial: &str) -> Event {
        if !self.cfg.kind.uses_auth() {
            return Event::Reply(Reply::not_implemented());
        }
        if self.authenticated.is_some() {
            return Event::Reply(Reply::bad_sequence("Already authenticated"));
        }
        if matches!(self.state, State::Fresh) {
            return Event::Reply(Reply::bad_sequence("Send EHLO first"));
        }
        if self.mail.is_some() {
            return Event::Reply(Reply::bad_sequence(
                "AUTH not allowed during a mail transaction",
            ));
        }
        if !self.tls_active && !self.cfg.plaintext_auth_ok {
            return Event::Reply(Reply::encryption_required());
        }
        let initial = initial.trim();
        if mechanism == smtp_proto::AUTH_PLAIN {
            if initial.is_empty() {
                self.state = State::AuthPlain;
                return Event::Reply(Reply::new(334, "", ""));
            }
            return self.plain(initial);
        }
        if mechanism == smtp_proto::AUTH_LOGIN {
            if initial.is_empty() {
                self.state = State::AuthLoginUser;
                return Event::Reply(challenge("Username:"));
            }
            return self.login_user(initial);
        }
        Event::Reply(Reply::new(504, "5.5.4", "Unrecognized authentication type"))
    }

    fn plain(&mut self, b64: &str) -> Event {
        match sasl::decode_plain(b64) {
            Ok(creds) => self.wait(Pending::Auth, Event::Auth(creds)),
            Err(e) => self.auth_syntax(e),
        }
    }

    fn login_user(&mut self, b64: &str) -> Event {
        match sasl::decode_login_field(b64) {
            Ok(user) if !user.is_empty() => {
                self.state = State::AuthLoginPass(user);
                Event::Reply(challenge("Password:"))
            }
            Ok(_) => self.auth_syntax(sasl::SaslError::Malformed),
            Err(e) => self.auth_syntax(e),
        }
    }

    fn auth_syntax(&mut self, e: sasl::SaslError) -> Event {
        self.state = State::Ready;
        Event::Reply(Reply::new(
            501,
            "5.5.2",
            format!("Cannot decode response: {e}"),
        ))
    }

    /// A continuation line of an AUTH exchange.
    pub(super) fn step_auth_line(&mut self) -> Event {
        let Some(line) = self.take_line() else {
            return self.out.pop_front().unwrap_or(Event::NeedMore);
        };
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if text == "*" {
            self.state = State::Ready;
            return Event::Reply(Reply::new(501, "5.7.0", "Authentication cancelled"));
        }
        match std::mem::replace(&mut self.state, State::Ready) {
            State::AuthPlain => self.plain(&text),
            State::AuthLoginUser => self.login_user(&text),
            State::AuthLoginPass(username) => match sasl::decode_login_field(&text) {
                Ok(password) => {
                    let creds = Credentials {
                        authzid: String::new(),
                        username,
                        password,
                    };
                    self.wait(Pending::Auth, Event::Auth(creds))
                }
                Err(e) => self.auth_syntax(e),
            },
            other => {
                self.state = other;
                Event::NeedMore
            }
        }
    }

    /// The I/O loop's answer to [`Event::Auth`]: the authenticated identity, or the refusal
    /// (`535 5.7.8`, or `454 4.7.0` when the client is locked out).
    pub fn auth_done(&mut self, result: Result<String, Reply>) {
        if !self.expect_waiting(Pending::Auth) {
            return;
        }
        self.state = State::Ready;
        let reply = match result {
            Ok(identity) => {
                self.authenticated = Some(identity);
                Reply::auth_ok()
            }
            Err(r) => r,
        };
        self.out.push_back(Event::Reply(reply));
    }
}

fn challenge(text: &str) -> Reply {
    Reply::new(334, "", sasl::encode_b64(text.as_bytes()))
}
