//! BULK_MARKERS: wording of bulk mail in the body (unsubscribe / opt-out / "you are receiving
//! this"). Headers (List-Unsubscribe, Precedence) are only reported in the detail: in the
//! training corpus they mark mailing-list ham, which says nothing about modern outbound mail.

use super::{Cx, Hit};

pub const TAG: &str = "BULK_MARKERS";

const PHRASES: &[&str] = &[
    "unsubscribe",
    "opt-out",
    "opt out",
    "remove me",
    "to be removed",
    "removal instructions",
    "you are receiving this",
    "you received this",
    "no longer wish to receive",
    "mailing list",
];

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let d = cx.doc;
    let tail = tail(&d.text, 3_000).to_lowercase();
    if let Some(p) = PHRASES.iter().find(|p| tail.contains(**p)) {
        let hdr = if d.list_unsubscribe || d.precedence_bulk {
            " (and bulk headers)"
        } else {
            ""
        };
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: format!("bulk-mail wording \"{p}\"{hdr}"),
        });
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while start < s.len() && !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}
