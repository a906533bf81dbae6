//! The Postfix SMTPD access policy delegation protocol (`check_policy_service`), sans-IO: the
//! client sends `name=value` lines ending with an empty line; the server answers one
//! `action=…` line and an empty line. Several requests may follow on one connection.
//!
//! Decisions recorded here:
//! - Bounded: a line longer than [`MAX_LINE`] or a request of more than [`MAX_ATTRIBUTES`]
//!   attributes is an error, after which the stream cannot be trusted to resynchronise (the
//!   connection is answered and closed by the I/O loop).
//! - A line without `=` makes the request malformed, but the parser still reads to its empty
//!   line, so one bad request is answered and the next one is read normally.
//! - Lines end with LF (Postfix writes LF); a CR before it is dropped. Values are taken as
//!   bytes and decoded lossily: Postfix sends xtext-free UTF-8 or ASCII.
//! - A repeated attribute: the last one wins (Postfix never repeats one).

use std::collections::HashMap;

/// Longest line accepted (Postfix's own `line_length_limit` default is 2048).
pub const MAX_LINE: usize = 8192;
/// Most attributes in one request (Postfix 3.x sends about 30).
pub const MAX_ATTRIBUTES: usize = 100;

/// One request's attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyRequest {
    attrs: HashMap<String, String>,
}

impl PolicyRequest {
    /// The attribute's value; an empty value counts as absent (Postfix sends `name=` for
    /// "not known").
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn len(&self) -> usize {
        self.attrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }
}

/// What the parser made of the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request.
    Request(PolicyRequest),
    /// A whole request that cannot be used; answer it and read on.
    Malformed(Malformed),
    /// The stream is beyond use: answer and close.
    Fatal(Malformed),
    NeedMore,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("line {0} of the request has no '='")]
    NoEquals(usize),
    #[error("line {0} of the request has an empty attribute name")]
    EmptyName(usize),
    #[error("a request line is longer than {MAX_LINE} bytes")]
    LineTooLong,
    #[error("a request has more than {MAX_ATTRIBUTES} attributes")]
    TooManyAttributes,
}

/// Incremental parser: [`PolicyParser::feed`] bytes, then call [`PolicyParser::next_request`] until
/// it says [`Parsed::NeedMore`].
#[derive(Debug, Default)]
pub struct PolicyParser {
    buf: Vec<u8>,
    current: PolicyRequest,
    lines: usize,
    bad: Option<Malformed>,
    fatal: bool,
}

impl PolicyParser {
    pub fn new() -> PolicyParser {
        PolicyParser::default()
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.fatal {
            self.buf.extend_from_slice(bytes);
        }
    }

    pub fn next_request(&mut self) -> Parsed {
        if self.fatal {
            return Parsed::NeedMore;
        }
        loop {
            let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > MAX_LINE {
                    return self.fail(Malformed::LineTooLong);
                }
                return Parsed::NeedMore;
            };
            if end > MAX_LINE {
                return self.fail(Malformed::LineTooLong);
            }
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.is_empty() {
                let req = std::mem::take(&mut self.current);
                self.lines = 0;
                return match self.bad.take() {
                    Some(m) => Parsed::Malformed(m),
                    None => Parsed::Request(req),
                };
            }
            self.lines += 1;
            if self.bad.is_some() {
                continue;
            }
            let line = String::from_utf8_lossy(&line);
            match line.split_once('=') {
                None => self.bad = Some(Malformed::NoEquals(self.lines)),
                Some(("", _)) => self.bad = Some(Malformed::EmptyName(self.lines)),
                Some((name, value)) => {
                    if self.current.attrs.len() >= MAX_ATTRIBUTES {
                        return self.fail(Malformed::TooManyAttributes);
                    }
                    self.current.attrs.insert(name.into(), value.into());
                }
            }
        }
    }

    fn fail(&mut self, m: Malformed) -> Parsed {
        self.fatal = true;
        self.buf = Vec::new();
        Parsed::Fatal(m)
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAction {
    /// No opinion: Postfix goes on with its other restrictions.
    Dunno,
    /// An SMTP reply Postfix sends as is: `action=550 5.1.8 Access denied…`.
    Reply {
        code: u16,
        enhanced: String,
        text: String,
    },
}

impl PolicyAction {
    pub fn reply(r: &crate::Reply) -> PolicyAction {
        PolicyAction::Reply {
            code: r.code,
            enhanced: r.enhanced.clone(),
            text: r.lines.join(" "),
        }
    }

    /// Wire form: the `action=` line and the empty line. Text is kept on one line.
    pub fn to_bytes(&self) -> Vec<u8> {
        let line = match self {
            PolicyAction::Dunno => "action=DUNNO".to_string(),
            PolicyAction::Reply {
                code,
                enhanced,
                text,
            } => {
                let text: String = text
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                if enhanced.is_empty() {
                    format!("action={code} {text}")
                } else {
                    format!("action={code} {enhanced} {text}")
                }
            }
        };
        format!("{line}\n\n").into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut PolicyParser) -> Vec<Parsed> {
        let mut out = Vec::new();
        loop {
            match p.next_request() {
                Parsed::NeedMore => return out,
                x => out.push(x),
            }
        }
    }

    #[test]
    fn requests_split_anywhere_and_several_per_connection() {
        let wire = b"request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=bob@a.example\r\nrecipient=\n\nrequest=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n\n";
        for cut in 0..wire.len() {
            let mut p = PolicyParser::new();
            p.feed(&wire[..cut]);
            let mut got = all(&mut p);
            p.feed(&wire[cut..]);
            got.extend(all(&mut p));
            assert_eq!(got.len(), 2, "cut at {cut}");
            let Parsed::Request(a) = &got[0] else {
                panic!("{got:?}")
            };
            assert_eq!(a.get("protocol_state"), Some("RCPT"));
            assert_eq!(a.get("sasl_username"), Some("bob@a.example"));
            assert_eq!(a.get("recipient"), None, "empty is absent");
            let Parsed::Request(b) = &got[1] else {
                panic!("{got:?}")
            };
            assert_eq!(b.get("protocol_state"), Some("END-OF-MESSAGE"));
        }
    }

    #[test]
    fn a_bad_line_spoils_only_its_request() {
        let mut p = PolicyParser::new();
        p.feed(b"request=smtpd_access_policy\ngarbage\nx=1\n\n=v\n\nprotocol_state=RCPT\n\n");
        assert_eq!(
            all(&mut p),
            vec![
                Parsed::Malformed(Malformed::NoEquals(2)),
                Parsed::Malformed(Malformed::EmptyName(1)),
                Parsed::Request(PolicyRequest {
                    attrs: [("protocol_state".to_string(), "RCPT".to_string())].into()
                }),
            ]
        );
    }

    #[test]
    fn bounds_are_fatal() {
        let mut p = PolicyParser::new();
        p.feed(&vec![b'a'; MAX_LINE + 1]);
        assert_eq!(p.next_request(), Parsed::Fatal(Malformed::LineTooLong));
        p.feed(b"\n\n");
        assert_eq!(
            p.next_request(),
            Parsed::NeedMore,
            "nothing after a fatal error"
        );

        let mut p = PolicyParser::new();
        for i in 0..=MAX_ATTRIBUTES {
            p.feed(format!("a{i}=v\n").as_bytes());
        }
        assert_eq!(
            p.next_request(),
            Parsed::Fatal(Malformed::TooManyAttributes)
        );
    }

    #[test]
    fn actions_render() {
        assert_eq!(PolicyAction::Dunno.to_bytes(), b"action=DUNNO\n\n");
        let r = crate::Reply::new(550, "5.1.8", "Access denied,\r\nbad outbound sender");
        assert_eq!(
            PolicyAction::reply(&r).to_bytes(),
            b"action=550 5.1.8 Access denied,  bad outbound sender\n\n"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data: Vec<u8>) {
            let mut p = PolicyParser::new();
            p.feed(&data);
            let _ = all(&mut p);
        }
    }
}
