//! SMTP replies as values (STYLE rule 3): code, enhanced status code and text. Every refusal
//! Outguard answers is one of these, built by a named constructor, never a string assembled in
//! place.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code (RFC 3463) such as `5.7.1`; empty for the greeting and EHLO.
    pub enhanced: String,
    /// One entry per line of a multi-line reply.
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: enhanced.to_string(),
            lines: vec![text.into()],
        }
    }

    pub fn multi(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced: String::new(),
            lines,
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// Wire form: `250-…\r\n250 …\r\n`. Text is sanitised: CR/LF inside a line cannot break the
    /// reply (a client-supplied value in a reply never injects a line).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let n = self.lines.len().max(1);
        for i in 0..n {
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            let sep = if i + 1 == n { ' ' } else { '-' };
            out.extend_from_slice(format!("{}{}", self.code, sep).as_bytes());
            if !self.enhanced.is_empty() {
                out.extend_from_slice(self.enhanced.as_bytes());
                out.push(b' ');
            }
            out.extend(
                text.bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    // ---- the replies of SPEC §2, by name ----

    pub fn ok(text: &str) -> Reply {
        Reply::new(250, "2.0.0", text)
    }
    pub fn queued(id: &str) -> Reply {
        Reply::new(250, "2.0.0", format!("Ok: queued as {id}"))
    }
    pub fn auth_required() -> Reply {
        Reply::new(530, "5.7.0", "Authentication required")
    }
    pub fn sender_not_owned() -> Reply {
        Reply::new(550, "5.7.1", "Sender address not owned by this account")
    }
    pub fn too_many_recipients() -> Reply {
        Reply::new(452, "4.5.3", "Too many recipients")
    }
    pub fn too_big() -> Reply {
        Reply::new(
            552,
            "5.3.4",
            "Message size exceeds fixed maximum message size",
        )
    }
    pub fn bare_cr_lf() -> Reply {
        Reply::new(550, "5.6.0", "Bare CR or LF not allowed")
    }
    pub fn nul_byte() -> Reply {
        Reply::new(550, "5.6.0", "NUL byte not allowed")
    }
    /// A message that breaks a header rule of SPEC §9 (e.g. not exactly one `From:`).
    pub fn malformed_message(text: impl Into<String>) -> Reply {
        Reply::new(550, "5.6.0", text)
    }
    pub fn shutting_down() -> Reply {
        Reply::new(421, "4.3.2", "Service shutting down, try again later")
    }
    pub fn too_many_connections() -> Reply {
        Reply::new(421, "4.7.0", "Too many connections, try again later")
    }
    /// Past the per-client-address session cap (SPEC §9).
    pub fn too_many_connections_from_ip() -> Reply {
        Reply::new(421, "4.7.0", "Too many connections from your address")
    }
    pub fn timeout() -> Reply {
        Reply::new(421, "4.4.2", "Timeout, closing connection")
    }
    pub fn bad_sequence(text: &str) -> Reply {
        Reply::new(503, "5.5.1", text)
    }
    pub fn syntax(text: &str) -> Reply {
        Reply::new(501, "5.5.4", text)
    }
    pub fn unknown_command() -> Reply {
        Reply::new(500, "5.5.2", "Command not recognized")
    }
    pub fn line_too_long() -> Reply {
        Reply::new(500, "5.5.2", "Line too long")
    }
    pub fn not_implemented() -> Reply {
        Reply::new(502, "5.5.1", "Command not implemented")
    }
    pub fn auth_ok() -> Reply {
        Reply::new(235, "2.7.0", "Authentication successful")
    }
    pub fn auth_failed() -> Reply {
        Reply::new(535, "5.7.8", "Authentication credentials invalid")
    }
    pub fn auth_locked() -> Reply {
        Reply::new(
            454,
            "4.7.0",
            "Too many failed authentication attempts, try again later",
        )
    }
    pub fn encryption_required() -> Reply {
        Reply::new(
            538,
            "5.7.11",
            "Encryption required for requested authentication mechanism",
        )
    }
    pub fn temp_failure(text: &str) -> Reply {
        Reply::new(451, "4.3.0", text)
    }
    pub fn local_error() -> Reply {
        Reply::new(451, "4.3.0", "Local error in processing, try again later")
    }
    pub fn disk_full() -> Reply {
        Reply::new(452, "4.3.1", "Insufficient system storage")
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.lines.join(" / ");
        if self.enhanced.is_empty() {
            write!(f, "{} {}", self.code, text)
        } else {
            write!(f, "{} {} {}", self.code, self.enhanced, text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line_wire_form() {
        assert_eq!(
            Reply::auth_required().to_bytes(),
            b"530 5.7.0 Authentication required\r\n"
        );
        let r = Reply::multi(250, vec!["host".into(), "PIPELINING".into()]);
        assert_eq!(r.to_bytes(), b"250-host\r\n250 PIPELINING\r\n");
    }

    #[test]
    fn text_cannot_inject_lines() {
        let r = Reply::new(550, "5.1.1", "bad <a@b>\r\n250 ok");
        assert_eq!(r.to_bytes(), b"550 5.1.1 bad <a@b>  250 ok\r\n");
    }
}
