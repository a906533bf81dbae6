//! A message's header block as the fields a mail client sees, read from the raw bytes: one
//! item per field with its folded continuation lines, names compared without case. The trust
//! rules (SPEC §9) count and strip fields themselves instead of asking mail-parser, whose
//! accessors keep only the last field of a name — a reader that shows the first must not be
//! shown a field the checks never looked at.

use std::borrow::Cow;

/// One header field: its name (without the colon and trailing blanks) and its raw value
/// (after the colon, continuation lines included, line endings kept except the last one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Empty for a line that is not a field (no colon, or a continuation with nothing before).
    pub name: &'a [u8],
    pub value: &'a [u8],
    /// Byte range of the whole field in the message, line ending included.
    pub start: usize,
    pub end: usize,
}

impl Field<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// The fields of the header block, in order, up to the first empty line (or the end).
pub fn fields(msg: &[u8]) -> Fields<'_> {
    Fields { msg, pos: 0 }
}

pub struct Fields<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let msg = self.msg;
        let start = self.pos;
        let rest = &msg[start..];
        if rest.is_empty() || rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            return None;
        }
        let mut end = line_end(msg, start);
        // Folded field: every following line that starts with a blank belongs to it.
        while end < msg.len() && matches!(msg[end], b' ' | b'\t') {
            end = line_end(msg, end);
        }
        self.pos = end;
        let whole = &msg[start..end];
        let text = trim_line_ending(whole);
        let field = match text.iter().position(|&b| b == b':') {
            Some(colon) if !matches!(text[0], b' ' | b'\t') => {
                let name = trim_end_blanks(&text[..colon]);
                let ok = !name.is_empty() && name.iter().all(|&b| b.is_ascii_graphic());
                Field {
                    name: if ok { name } else { b"" },
                    value: &text[colon + 1..],
                    start,
                    end,
                }
            }
            _ => Field {
                name: b"",
                value: text,
                start,
                end,
            },
        };
        Some(field)
    }
}

/// Index just past the next `\n` at or after `from` (or the end of `msg`).
fn line_end(msg: &[u8], from: usize) -> usize {
    msg[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(msg.len(), |i| from + i + 1)
}

fn trim_line_ending(s: &[u8]) -> &[u8] {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    s.strip_suffix(b"\r").unwrap_or(s)
}

fn trim_end_blanks(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The message without the header fields `drop` selects (borrowed when none is dropped).
pub fn strip_fields(msg: &[u8], drop: impl Fn(&Field<'_>) -> bool) -> Cow<'_, [u8]> {
    let dropped: Vec<(usize, usize)> = fields(msg)
        .filter(|f| drop(f))
        .map(|f| (f.start, f.end))
        .collect();
    if dropped.is_empty() {
        return Cow::Borrowed(msg);
    }
    let mut out = Vec::with_capacity(msg.len());
    let mut at = 0;
    for (s, e) in dropped {
        out.extend_from_slice(&msg[at..s]);
        at = e;
    }
    out.extend_from_slice(&msg[at..]);
    Cow::Owned(out)
}

/// The value of the first field named `name` (as text; `None` when absent or not UTF-8).
///
/// Outguard prepends its own fields at delivery (`X-Outguard-Id` is the copy's first line), and
/// whoever handles the message later (a reporter's MTA, a forwarding hop) can only add fields
/// above ours or append further down. So in a copy that comes back (ARF, DSN) the first
/// `X-Outguard-*` field of a name is ours and any later one a forgery: reading the first is
/// what keeps a tenant from pinning complaints on another's message (SPEC §9).
pub fn first_value<'a>(msg: &'a [u8], name: &str) -> Option<&'a str> {
    fields(msg)
        .find(|f| f.is(name))
        .and_then(|f| std::str::from_utf8(f.value).ok())
}

/// The prefix of the header fields Outguard writes itself (`X-Outguard-Id`, `-Verdict`, …).
pub const OWN_PREFIX: &str = "X-Outguard-";

/// Is this one of the names Outguard writes? A client's copy of one is a forgery.
pub fn is_own(f: &Field<'_>) -> bool {
    f.name.len() >= OWN_PREFIX.len()
        && f.name[..OWN_PREFIX.len()].eq_ignore_ascii_case(OWN_PREFIX.as_bytes())
}

/// Submitted mail without any `X-Outguard-*` field (SPEC §9): what is spooled, scanned and
/// delivered then carries only the ones Outguard adds.
pub fn strip_own(msg: &[u8]) -> Cow<'_, [u8]> {
    strip_fields(msg, is_own)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(msg: &[u8]) -> Vec<String> {
        fields(msg)
            .map(|f| String::from_utf8_lossy(f.name).into_owned())
            .collect()
    }

    #[test]
    fn fields_fold_and_stop_at_the_blank_line() {
        let m =
            b"From: a@x\r\nSubject: one\r\n two\r\n\tthree\r\nfrom :b@y\r\n\r\nFrom: body@x\r\n";
        assert_eq!(names(m), ["From", "Subject", "from"]);
        let subj = fields(m).nth(1).expect("subject");
        assert_eq!(subj.value, b" one\r\n two\r\n\tthree");
        assert_eq!(
            &m[subj.start..subj.end],
            b"Subject: one\r\n two\r\n\tthree\r\n"
        );
        let last = fields(m).nth(2).expect("from");
        assert!(last.is("FROM"));
        assert_eq!(last.value, b"b@y");
    }

    #[test]
    fn odd_lines_are_fields_without_a_name() {
        let m = b" leading fold\r\nno colon here\r\nX: 1\nY: 2";
        assert_eq!(names(m), ["", "", "X", "Y"]);
        assert_eq!(fields(b"").count(), 0);
        assert_eq!(fields(b"\r\nFrom: x\r\n").count(), 0);
        assert_eq!(names(b"Bad Name: v\r\n\r\n"), [""]);
    }

    #[test]
    fn first_value_is_the_first_field_of_that_name() {
        let m = b"Received: x\r\nX-Outguard-Id: ours\r\nFrom: a@x\r\nx-outguard-id: forged\r\n\r\n";
        assert_eq!(first_value(m, "X-Outguard-Id"), Some(" ours"));
        assert_eq!(first_value(m, "Message-ID"), None);
        assert_eq!(
            first_value(b"\r\nX-Outguard-Id: body\r\n", "X-Outguard-Id"),
            None
        );
    }

    #[test]
    fn strip_own_removes_every_x_outguard_field_and_only_those() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"From: a@x\r\n\r\nbody\r\n", b"From: a@x\r\n\r\nbody\r\n"),
            (
                b"X-Outguard-Id: forged\r\nFrom: a@x\r\nx-outguard-verdict: clean\r\n\r\nX-Outguard-Id: in body\r\n",
                b"From: a@x\r\n\r\nX-Outguard-Id: in body\r\n",
            ),
            (
                b"From: a@x\r\nX-OUTGUARD-ID: a\r\n b folded\r\nTo: y@z\r\n\r\n",
                b"From: a@x\r\nTo: y@z\r\n\r\n",
            ),
            (
                b"X-Outguard-Id : spaced\r\nX-Outguardian: kept\r\n\r\n",
                b"X-Outguardian: kept\r\n\r\n",
            ),
            (b"X-Outguard-Id: only", b""),
        ];
        for (input, want) in cases {
            assert_eq!(
                strip_own(input).as_ref(),
                *want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        assert!(matches!(strip_own(b"A: b\r\n\r\n"), Cow::Borrowed(_)));
    }
}
