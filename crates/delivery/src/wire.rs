//! What goes on the wire after `DATA`: the message with every line ending made CRLF (a bare CR
//! or bare LF is never emitted — SPEC §2.1, the other half of closing SMTP smuggling), lines
//! starting with `.` dot-stuffed (RFC 5321 §4.5.2), and the `CRLF.CRLF` terminator.

/// Headers we add in front of the stored message: `X-Outguard-Id` and the envelope's extras.
/// Values are stripped of CR/LF so a header can never inject lines.
pub fn prepend_headers(id: &str, extra: &[(String, String)]) -> Vec<u8> {
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut out = format!("X-Outguard-Id: {}\r\n", clean(id));
    for (name, value) in extra {
        out.push_str(&format!("{}: {}\r\n", clean(name), clean(value)));
    }
    out.into_bytes()
}

/// `parts` concatenated, normalised to CRLF, dot-stuffed, terminated with `.\r\n`.
pub fn data_payload(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = convert(parts, true);
    out.extend_from_slice(b".\r\n");
    out
}

/// `parts` concatenated and normalised to CRLF (ending with CRLF), not dot-stuffed: the form a
/// DKIM signature is computed over.
pub fn normalize_crlf(parts: &[&[u8]]) -> Vec<u8> {
    convert(parts, false)
}

fn convert(parts: &[&[u8]], stuff: bool) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + len / 50 + 8);
    let mut at_line_start = true;
    let mut prev_cr = false;
    for &b in parts.iter().flat_map(|p| p.iter()) {
        match b {
            b'\n' => {
                if !prev_cr {
                    out.push(b'\r');
                }
                out.push(b'\n');
                prev_cr = false;
                at_line_start = true;
                continue;
            }
            _ if prev_cr => {
                // Bare CR: end the line properly.
                out.push(b'\n');
                at_line_start = true;
            }
            _ => {}
        }
        prev_cr = b == b'\r';
        if b == b'\r' {
            out.push(b'\r');
            continue;
        }
        if stuff && at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = false;
    }
    if prev_cr {
        out.push(b'\n');
        at_line_start = true;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_vectors() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
            (b"a\nb\n", b"a\r\nb\r\n.\r\n"),
            (b"a\rb\r", b"a\r\nb\r\n.\r\n"),
            (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n"),
            (b".x\r\n..y\r\n.\r\n", b"..x\r\n...y\r\n..\r\n.\r\n"),
            (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"no newline", b"no newline\r\n.\r\n"),
            (b"", b".\r\n"),
            (b"x\r\n.", b"x\r\n..\r\n.\r\n"),
        ];
        for (input, want) in cases {
            let got = data_payload(&[input]);
            assert_eq!(got, *want, "input {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn normalize_does_not_stuff() {
        assert_eq!(normalize_crlf(&[b"a\n.b\r"]), b"a\r\n.b\r\n");
    }

    #[test]
    fn never_emits_bare_cr_or_lf() {
        let input: Vec<u8> = (0..2000u32)
            .map(|i| [b'\r', b'\n', b'.', b'a'][(i * 7 % 13 % 4) as usize])
            .collect();
        let out = data_payload(&[b"H: v\n", &input]);
        for (i, &b) in out.iter().enumerate() {
            if b == b'\r' {
                assert_eq!(out.get(i + 1), Some(&b'\n'));
            }
            if b == b'\n' {
                assert_eq!(out[i - 1], b'\r');
            }
        }
    }

    #[test]
    fn headers_cannot_inject_lines() {
        let h = prepend_headers("id1", &[("X-V".into(), "a\r\nBcc: x".into())]);
        assert_eq!(h, b"X-Outguard-Id: id1\r\nX-V: a  Bcc: x\r\n");
    }
}
