//! One rule for the text people type into the management interfaces (SPEC §9: "addresses and
//! names anywhere in the API refuse control characters"), and its mirror for output: stored
//! text printed on a terminal has its control characters escaped.
//!
//! Why: a NUL or ESC in a name or address travels — into SMTP envelopes (`RCPT TO:<z\0y@…>`),
//! audit lines and terminals (`ESC [2J` clears the operator's screen) — so it is refused where
//! it enters, once, and escaped where stored data leaves for a terminal.

use std::borrow::Cow;

/// `Err` naming `field` when `value` holds a control character (C0, DEL or C1, which includes
/// NUL, ESC, CR, LF and TAB).
pub fn check_no_control(field: &str, value: &str) -> Result<(), String> {
    match value.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(format!(
            "{field}: control characters are not allowed (found {})",
            c.escape_unicode()
        )),
    }
}

/// An email address as the config and the API take one: `local@domain`, a non-empty local part,
/// a domain with a dot (or `localhost`), no whitespace, brackets or commas (those mean a display
/// name or a list was written where one address belongs), no control characters.
pub fn is_email_address(a: &str) -> bool {
    a.split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && (d.contains('.') || d == "localhost"))
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ','))
}

/// `value` with every control character written as a visible escape (`\u{1b}`), borrowed
/// unchanged when there is none. For human (non-JSON) output of stored data.
pub fn escape_control(value: &str) -> Cow<'_, str> {
    if !value.chars().any(char::is_control) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_and_escaped() {
        for bad in [
            "z\0y@a.example",
            "a\x1b[31m",
            "x\ny",
            "tab\there",
            "del\x7f",
            "c1\u{85}",
        ] {
            let e = check_no_control("bcc_recipients", bad).expect_err(bad);
            assert!(e.starts_with("bcc_recipients:"), "{e}");
            assert!(
                !escape_control(bad).chars().any(char::is_control),
                "{bad:?}"
            );
        }
        assert!(check_no_control("name", "Ünïcode ok@a.example").is_ok());
        assert_eq!(escape_control("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert!(matches!(escape_control("plain"), Cow::Borrowed("plain")));
    }
}
