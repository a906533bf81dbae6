//! The `From:` rule of SPEC §9: a submitted message has exactly one `From:` field, naming at
//! least one and at most [`MAX_FROM_ADDRESSES`] mailboxes, each with an address. The fields are
//! counted on the raw header block ([`crate::header_fields`]) because mail-parser keeps only
//! the last `From:` while mail clients show the first: with two fields the checks and the
//! reader would see different senders. Anything else is `550 5.6.0` (malformed); ownership of
//! the addresses is the caller's check.

use crate::Reply;
use crate::header_fields::fields;

/// Addresses one `From:` may name. Real mail has one; a few lists name a handful. The cap also
/// bounds the ownership check's work per message.
pub const MAX_FROM_ADDRESSES: usize = 100;

/// Why a message's `From:` is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FromFieldError {
    #[error("Exactly one From: field required, found none")]
    Missing,
    #[error("Exactly one From: field required, found {0}")]
    Repeated(usize),
    #[error("From: field names no address")]
    NoAddress,
    #[error("From: field has a name without an address")]
    AddressLess,
    #[error("From: field names more than 100 addresses")]
    TooMany,
}

impl FromFieldError {
    /// The SMTP answer: `550 5.6.0` with the reason.
    pub fn reply(&self) -> Reply {
        Reply::malformed_message(self.to_string())
    }
}

/// The addresses (lowercased, in order) of the message's single `From:` field.
pub fn from_addresses(msg: &[u8]) -> Result<Vec<String>, FromFieldError> {
    let mut from = fields(msg).filter(|f| f.is("From"));
    let Some(field) = from.next() else {
        return Err(FromFieldError::Missing);
    };
    let more = from.count();
    if more > 0 {
        return Err(FromFieldError::Repeated(more + 1));
    }
    // Quoted names may hold `@` and `,`, so only the parse can count mailboxes; its cost is
    // linear in the value (bounded by DATA's size limit) and no store is asked before the cap.
    let mut one = Vec::with_capacity(field.value.len() + 9);
    one.extend_from_slice(b"From:");
    one.extend_from_slice(field.value);
    one.extend_from_slice(b"\r\n\r\n");
    let parsed = mail_parser::MessageParser::new().parse_headers(&one[..]);
    let addrs: Vec<Option<String>> = match parsed.as_ref().and_then(|m| m.from()) {
        None => return Err(FromFieldError::NoAddress),
        Some(a) => a
            .iter()
            .map(|x| x.address().map(str::to_ascii_lowercase))
            .collect(),
    };
    if addrs.is_empty() {
        return Err(FromFieldError::NoAddress);
    }
    if addrs.len() > MAX_FROM_ADDRESSES {
        return Err(FromFieldError::TooMany);
    }
    addrs
        .into_iter()
        .map(|a| {
            a.filter(|a| is_addr_spec(a))
                .ok_or(FromFieldError::AddressLess)
        })
        .collect()
}

/// `local@domain` with both parts present and nothing a mailbox cannot hold.
fn is_addr_spec(a: &str) -> bool {
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !a.chars().any(|c| c.is_control() || c.is_whitespace())
                && !domain.contains(['<', '>', '"', '(', ')', ',', ';', ':', '\\', '[', ']'])
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FromFieldError::*;

    fn check(headers: &str) -> Result<Vec<String>, FromFieldError> {
        from_addresses(format!("{headers}\r\n\r\nbody\r\n").as_bytes())
    }

    #[test]
    fn table() {
        let ok = |v: &[&str]| Ok(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let cases: &[(&str, Result<Vec<String>, FromFieldError>)] = &[
            ("From: alice@acme.example", ok(&["alice@acme.example"])),
            (
                "From: Alice <Alice@Acme.Example>",
                ok(&["alice@acme.example"]),
            ),
            ("from:alice@acme.example", ok(&["alice@acme.example"])),
            ("FROM : alice@acme.example", ok(&["alice@acme.example"])),
            (
                "From: Alice\r\n <alice@acme.example>,\r\n\tbob@acme.example",
                ok(&["alice@acme.example", "bob@acme.example"]),
            ),
            (
                "From: \"Smith, J\" <j@acme.example>",
                ok(&["j@acme.example"]),
            ),
            (
                "From: Team: a@acme.example, b@acme.example;",
                ok(&["a@acme.example", "b@acme.example"]),
            ),
            // Two fields, whichever comes first, folded or not, any case.
            (
                "From: CEO <ceo@globex.example>\r\nFrom: alice@acme.example",
                Err(Repeated(2)),
            ),
            (
                "From: alice@acme.example\r\nSubject: x\r\nfrom:\r\n ceo@globex.example",
                Err(Repeated(2)),
            ),
            (
                "From: a@x.example\r\nFROM: a@x.example\r\nFrom: a@x.example",
                Err(Repeated(3)),
            ),
            // None: only Sender:, or a look-alike name.
            (
                "Sender: alice@acme.example\r\nTo: x@y.example",
                Err(Missing),
            ),
            ("Resent-From: alice@acme.example", Err(Missing)),
            ("X-From: alice@acme.example", Err(Missing)),
            // No address at all.
            ("From: undisclosed-recipients:;", Err(NoAddress)),
            ("From:", Err(NoAddress)),
            ("From:   ", Err(NoAddress)),
            // A name, however address-like, without an address.
            ("From: \"ceo@globex.example\"", Err(AddressLess)),
            ("From: \"ceo@globex.example\" <>", Err(AddressLess)),
            ("From: CEO", Err(AddressLess)),
            (
                "From: alice@acme.example, \"ceo@globex.example\"",
                Err(AddressLess),
            ),
        ];
        for (headers, want) in cases {
            assert_eq!(&check(headers), want, "{headers:?}");
        }
    }

    #[test]
    fn one_hundred_addresses_at_most() {
        let list = |n: usize| {
            (0..n)
                .map(|i| format!("u{i}@acme.example"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert_eq!(
            check(&format!("From: {}", list(100))).map(|v| v.len()),
            Ok(100)
        );
        assert_eq!(check(&format!("From: {}", list(101))), Err(TooMany));
    }

    #[test]
    fn a_huge_from_is_refused_quickly() {
        let list: Vec<String> = (0..200_000).map(|i| format!("u{i}@d{i}.example")).collect();
        let t = std::time::Instant::now();
        assert_eq!(check(&format!("From: {}", list.join(", "))), Err(TooMany));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn the_reply_is_550_5_6_0() {
        assert_eq!(
            Repeated(2).reply().to_string(),
            "550 5.6.0 Exactly one From: field required, found 2"
        );
    }
}
