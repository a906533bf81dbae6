//! The sendmail milter protocol (version 6, as Postfix speaks it), sans-IO: packets are a
//! 4-byte big-endian length, a command byte and its data. [`MilterParser`] turns bytes from the
//! MTA into [`Command`]s; [`Response`] values are written back with [`Response::to_bytes`].
//!
//! Why our own codec: the crates on crates.io either bind the C libmilter under the GPL
//! (`milter`, `indymilter`'s licence is GPL-3.0 too, both outside deny.toml), or are blocking
//! frameworks that own the listener and are unmaintained (`rmilter`, last release 2020). The
//! part we use is a dozen packet types.
//!
//! Decisions recorded here:
//! - A packet longer than [`MAX_PACKET`] (Postfix's body chunks are at most 64 KiB) or shorter
//!   than its command byte is fatal: the stream cannot be resynchronised.
//! - Strings are NUL-terminated; a missing terminator takes the rest of the packet. Bytes are
//!   decoded lossily (header values stay as bytes for the message, see [`Command::Header`]).
//! - Commands we do not use decode to [`Command::Other`] with their byte.

/// Largest packet accepted.
pub const MAX_PACKET: usize = 1 << 20;

/// Protocol version we speak.
pub const VERSION: u32 = 6;
/// Action flag: we may add header fields.
pub const SMFIF_ADDHDRS: u32 = 0x01;
/// Action flag: we may quarantine (Postfix: the hold queue).
pub const SMFIF_QUARANTINE: u32 = 0x20;

/// One command from the MTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `O`: the MTA's version, the actions it allows, the protocol steps it offers to skip.
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// `D`: macros for the command `for` (`C`, `H`, `M`, `R`, `T`, `N`, `E`).
    Macro {
        for_cmd: u8,
        pairs: Vec<(String, String)>,
    },
    /// `C`: client host name, family (`4`, `6`, `U`, `L`), port, address.
    Connect {
        hostname: String,
        family: u8,
        port: u16,
        address: String,
    },
    /// `H`: the HELO/EHLO name.
    Helo(String),
    /// `M`: the sender (`<a@b>`, angle brackets as sent) and ESMTP arguments.
    Mail(Vec<String>),
    /// `R`: one recipient and its arguments.
    Rcpt(Vec<String>),
    /// `T`: DATA.
    Data,
    /// `L`: one header field (value as sent, without the leading space Postfix strips).
    Header {
        name: String,
        value: Vec<u8>,
    },
    /// `N`: end of headers.
    EndOfHeaders,
    /// `B`: a chunk of the body (CRLF line ends).
    Body(Vec<u8>),
    /// `E`: end of the message: the final answer is due.
    EndOfBody,
    /// `A`: the current message is abandoned (the connection goes on).
    Abort,
    /// `Q`: close.
    Quit,
    /// `K`: the MTA will start a new connection's worth of commands on this one.
    QuitNewConnection,
    /// `U`: an SMTP command the MTA did not know.
    Unknown(String),
    Other(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MilterError {
    #[error("milter packet of {0} bytes is larger than {MAX_PACKET}")]
    TooLarge(usize),
    #[error("milter packet of length 0 has no command")]
    Empty,
    #[error("milter {0:?} packet is truncated")]
    Truncated(char),
}

/// Incremental decoder.
#[derive(Debug, Default)]
pub struct MilterParser {
    buf: Vec<u8>,
    failed: bool,
}

impl MilterParser {
    pub fn new() -> MilterParser {
        MilterParser::default()
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next command, `Ok(None)` for "need more", or a fatal error.
    pub fn next_command(&mut self) -> Result<Option<Command>, MilterError> {
        if self.failed || self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len == 0 {
            return self.fail(MilterError::Empty);
        }
        if len > MAX_PACKET {
            return self.fail(MilterError::TooLarge(len));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let packet: Vec<u8> = self.buf.drain(..4 + len).skip(4).collect();
        match decode(packet[0], &packet[1..]) {
            Ok(c) => Ok(Some(c)),
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, e: MilterError) -> Result<Option<Command>, MilterError> {
        self.failed = true;
        self.buf = Vec::new();
        Err(e)
    }
}

/// NUL-terminated strings of `data`.
fn strings(data: &[u8]) -> Vec<String> {
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

fn be32(d: &[u8], at: usize, cmd: u8) -> Result<u32, MilterError> {
    d.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(MilterError::Truncated(cmd as char))
}

fn decode(cmd: u8, d: &[u8]) -> Result<Command, MilterError> {
    Ok(match cmd {
        b'O' => Command::OptNeg {
            version: be32(d, 0, cmd)?,
            actions: be32(d, 4, cmd)?,
            protocol: be32(d, 8, cmd)?,
        },
        b'D' => {
            let (&for_cmd, rest) = d.split_first().ok_or(MilterError::Truncated('D'))?;
            let s = strings(rest);
            let pairs = s
                .chunks(2)
                .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
                .collect();
            Command::Macro { for_cmd, pairs }
        }
        b'C' => {
            let nul = d
                .iter()
                .position(|&b| b == 0)
                .ok_or(MilterError::Truncated('C'))?;
            let hostname = String::from_utf8_lossy(&d[..nul]).into_owned();
            let rest = &d[nul + 1..];
            let (&family, rest) = rest.split_first().ok_or(MilterError::Truncated('C'))?;
            let (port, address) = if family == b'U' {
                (0, String::new())
            } else {
                let p = rest.get(..2).ok_or(MilterError::Truncated('C'))?;
                let addr = strings(&rest[2..]).into_iter().next().unwrap_or_default();
                (u16::from_be_bytes([p[0], p[1]]), addr)
            };
            Command::Connect {
                hostname,
                family,
                port,
                address,
            }
        }
        b'H' => Command::Helo(strings(d).into_iter().next().unwrap_or_default()),
        b'M' => Command::Mail(strings(d)),
        b'R' => Command::Rcpt(strings(d)),
        b'T' => Command::Data,
        b'L' => {
            let nul = d
                .iter()
                .position(|&b| b == 0)
                .ok_or(MilterError::Truncated('L'))?;
            let name = String::from_utf8_lossy(&d[..nul]).into_owned();
            let value = d[nul + 1..].strip_suffix(&[0]).unwrap_or(&d[nul + 1..]);
            Command::Header {
                name,
                value: value.to_vec(),
            }
        }
        b'N' => Command::EndOfHeaders,
        b'B' => Command::Body(d.to_vec()),
        b'E' => Command::EndOfBody,
        b'A' => Command::Abort,
        b'Q' => Command::Quit,
        b'K' => Command::QuitNewConnection,
        b'U' => Command::Unknown(strings(d).into_iter().next().unwrap_or_default()),
        other => Command::Other(other),
    })
}

/// One packet to the MTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `O`: our version, the actions we use and the protocol steps we skip.
    OptNeg {
        version: u32,
        actions: u32,
        protocol: u32,
    },
    /// `c`: go on.
    Continue,
    /// `a`: accept this message (no further callbacks for it).
    Accept,
    /// `r`: reject with the MTA's default reply.
    Reject,
    /// `t`: temporary failure with the MTA's default reply.
    Tempfail,
    /// `y`: reject or defer with this SMTP reply (`550 5.7.1 text`).
    ReplyCode {
        code: u16,
        enhanced: String,
        text: String,
    },
    /// `h`: add a header field at the end of the header.
    AddHeader { name: String, value: String },
    /// `q`: quarantine with a reason (Postfix: the hold queue).
    Quarantine(String),
}

impl Response {
    pub fn reply(r: &crate::Reply) -> Response {
        Response::ReplyCode {
            code: r.code,
            enhanced: r.enhanced.clone(),
            text: r.lines.join(" "),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let (cmd, data): (u8, Vec<u8>) = match self {
            Response::OptNeg {
                version,
                actions,
                protocol,
            } => {
                let mut d = Vec::with_capacity(12);
                for v in [version, actions, protocol] {
                    d.extend_from_slice(&v.to_be_bytes());
                }
                (b'O', d)
            }
            Response::Continue => (b'c', Vec::new()),
            Response::Accept => (b'a', Vec::new()),
            Response::Reject => (b'r', Vec::new()),
            Response::Tempfail => (b't', Vec::new()),
            Response::ReplyCode {
                code,
                enhanced,
                text,
            } => {
                // `%` is a format character to libmilter-style MTAs; NUL and line ends would
                // end or split the reply.
                let text: String = text
                    .chars()
                    .map(|c| match c {
                        '%' => '_',
                        c if c.is_control() => ' ',
                        c => c,
                    })
                    .collect();
                let line = if enhanced.is_empty() {
                    format!("{code} {text}")
                } else {
                    format!("{code} {enhanced} {text}")
                };
                (b'y', nul_terminated(&[&line]))
            }
            Response::AddHeader { name, value } => (b'h', nul_terminated(&[name, value])),
            Response::Quarantine(reason) => (b'q', nul_terminated(&[reason])),
        };
        let len = u32::try_from(data.len() + 1).unwrap_or(u32::MAX);
        let mut out = Vec::with_capacity(5 + data.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.push(cmd);
        out.extend_from_slice(&data);
        out
    }
}

fn nul_terminated(parts: &[&str]) -> Vec<u8> {
    let mut d = Vec::new();
    for p in parts {
        d.extend(p.bytes().map(|b| if b == 0 { b' ' } else { b }));
        d.push(0);
    }
    d
}

/// Encoders for the MTA side, for tests of the milter (ours and the relay's).
pub mod mta {
    pub fn packet(cmd: u8, data: &[u8]) -> Vec<u8> {
        let mut out = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        out.push(cmd);
        out.extend_from_slice(data);
        out
    }

    pub fn strings(cmd: u8, parts: &[&str]) -> Vec<u8> {
        let mut d = Vec::new();
        for p in parts {
            d.extend_from_slice(p.as_bytes());
            d.push(0);
        }
        packet(cmd, &d)
    }

    pub fn optneg(version: u32, actions: u32, protocol: u32) -> Vec<u8> {
        let mut d = Vec::new();
        for v in [version, actions, protocol] {
            d.extend_from_slice(&v.to_be_bytes());
        }
        packet(b'O', &d)
    }

    pub fn macros(for_cmd: u8, pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut d = vec![for_cmd];
        for (k, v) in pairs {
            d.extend_from_slice(k.as_bytes());
            d.push(0);
            d.extend_from_slice(v.as_bytes());
            d.push(0);
        }
        packet(b'D', &d)
    }

    pub fn connect(hostname: &str, ip: &str, port: u16) -> Vec<u8> {
        let mut d = hostname.as_bytes().to_vec();
        d.push(0);
        d.push(if ip.contains(':') { b'6' } else { b'4' });
        d.extend_from_slice(&port.to_be_bytes());
        d.extend_from_slice(ip.as_bytes());
        d.push(0);
        packet(b'C', &d)
    }

    /// Decode our responses: (command byte, data) per packet.
    pub fn responses(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while bytes.len() >= 5 {
            let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            if len == 0 || bytes.len() < 4 + len {
                break;
            }
            out.push((bytes[4], bytes[5..4 + len].to_vec()));
            bytes = &bytes[4 + len..];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::mta;
    use super::*;

    fn one(bytes: &[u8]) -> Command {
        let mut p = MilterParser::new();
        p.feed(bytes);
        let c = p.next_command().expect("decodes").expect("whole packet");
        assert_eq!(p.next_command(), Ok(None), "nothing left");
        c
    }

    #[test]
    fn every_command_we_use_decodes() {
        assert_eq!(
            one(&mta::optneg(6, 0x1ff, 0x1fffff)),
            Command::OptNeg {
                version: 6,
                actions: 0x1ff,
                protocol: 0x1fffff
            }
        );
        assert_eq!(
            one(&mta::macros(
                b'M',
                &[("{auth_authen}", "bob@a.example"), ("i", "4Xyz")]
            )),
            Command::Macro {
                for_cmd: b'M',
                pairs: vec![
                    ("{auth_authen}".into(), "bob@a.example".into()),
                    ("i".into(), "4Xyz".into())
                ]
            }
        );
        assert_eq!(
            one(&mta::connect("client.test", "127.0.0.5", 40000)),
            Command::Connect {
                hostname: "client.test".into(),
                family: b'4',
                port: 40000,
                address: "127.0.0.5".into()
            }
        );
        assert_eq!(
            one(&mta::strings(b'H', &["c.test"])),
            Command::Helo("c.test".into())
        );
        assert_eq!(
            one(&mta::strings(b'M', &["<bob@a.example>", "SIZE=100"])),
            Command::Mail(vec!["<bob@a.example>".into(), "SIZE=100".into()])
        );
        assert_eq!(
            one(&mta::strings(b'R', &["<x@dest.example>"])),
            Command::Rcpt(vec!["<x@dest.example>".into()])
        );
        assert_eq!(one(&mta::packet(b'T', b"")), Command::Data);
        assert_eq!(
            one(&mta::strings(b'L', &["Subject", "Hello"])),
            Command::Header {
                name: "Subject".into(),
                value: b"Hello".to_vec()
            }
        );
        assert_eq!(one(&mta::packet(b'N', b"")), Command::EndOfHeaders);
        assert_eq!(
            one(&mta::packet(b'B', b"line\r\n")),
            Command::Body(b"line\r\n".to_vec())
        );
        assert_eq!(one(&mta::packet(b'E', b"")), Command::EndOfBody);
        assert_eq!(one(&mta::packet(b'A', b"")), Command::Abort);
        assert_eq!(one(&mta::packet(b'Q', b"")), Command::Quit);
        assert_eq!(one(&mta::packet(b'K', b"")), Command::QuitNewConnection);
        assert_eq!(one(&mta::packet(b'Z', b"")), Command::Other(b'Z'));
    }

    #[test]
    fn packets_split_anywhere() {
        let mut wire = mta::strings(b'M', &["<bob@a.example>"]);
        wire.extend(mta::packet(b'B', b"body"));
        for cut in 0..wire.len() {
            let mut p = MilterParser::new();
            let mut got = Vec::new();
            p.feed(&wire[..cut]);
            while let Some(c) = p.next_command().expect("ok") {
                got.push(c);
            }
            p.feed(&wire[cut..]);
            while let Some(c) = p.next_command().expect("ok") {
                got.push(c);
            }
            assert_eq!(got.len(), 2, "cut at {cut}");
        }
    }

    #[test]
    fn bad_packets_are_fatal() {
        let mut p = MilterParser::new();
        p.feed(&((MAX_PACKET + 1) as u32).to_be_bytes());
        assert_eq!(p.next_command(), Err(MilterError::TooLarge(MAX_PACKET + 1)));
        assert_eq!(p.next_command(), Ok(None));
        let mut p = MilterParser::new();
        p.feed(&[0, 0, 0, 0]);
        assert_eq!(p.next_command(), Err(MilterError::Empty));
        let mut p = MilterParser::new();
        p.feed(&mta::packet(b'O', &[0, 0, 0, 6]));
        assert_eq!(p.next_command(), Err(MilterError::Truncated('O')));
        let mut p = MilterParser::new();
        p.feed(&mta::packet(b'L', b"no-nul"));
        assert_eq!(p.next_command(), Err(MilterError::Truncated('L')));
    }

    #[test]
    fn responses_encode() {
        assert_eq!(Response::Continue.to_bytes(), [0, 0, 0, 1, b'c']);
        assert_eq!(Response::Accept.to_bytes(), [0, 0, 0, 1, b'a']);
        assert_eq!(Response::Reject.to_bytes(), [0, 0, 0, 1, b'r']);
        assert_eq!(Response::Tempfail.to_bytes(), [0, 0, 0, 1, b't']);
        assert_eq!(
            Response::OptNeg {
                version: 6,
                actions: SMFIF_ADDHDRS,
                protocol: 0
            }
            .to_bytes(),
            [0, 0, 0, 13, b'O', 0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0]
        );
        let r = crate::Reply::new(550, "5.7.1", "Message rejected as spam (100% URL)");
        assert_eq!(
            mta::responses(&Response::reply(&r).to_bytes()),
            vec![(
                b'y',
                b"550 5.7.1 Message rejected as spam (100_ URL)\0".to_vec()
            )]
        );
        assert_eq!(
            mta::responses(
                &Response::AddHeader {
                    name: "X-Outguard-Id".into(),
                    value: "abc".into()
                }
                .to_bytes()
            ),
            vec![(b'h', b"X-Outguard-Id\0abc\0".to_vec())]
        );
        assert_eq!(
            mta::responses(&Response::Quarantine("held".into()).to_bytes()),
            vec![(b'q', b"held\0".to_vec())]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data: Vec<u8>) {
            let mut p = MilterParser::new();
            p.feed(&data);
            while let Ok(Some(_)) = p.next_command() {}
        }
    }
}
