//! CHARSET_ANOMALY: broken transfer encodings, unknown charsets, raw 8-bit headers, or text
//! full of replacement characters — mail made by hand-rolled spam tools.

use super::{Cx, Hit};

pub const TAG: &str = "CHARSET_ANOMALY";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let d = cx.doc;
    let mut why = Vec::new();
    if d.encoding_problems > 0 {
        why.push(format!(
            "{} badly encoded part(s) or unknown charset",
            d.encoding_problems
        ));
    }
    if d.raw_8bit_headers {
        why.push("unencoded 8-bit bytes in headers".to_string());
    }
    let bad = d
        .text
        .chars()
        .take(20_000)
        .filter(|&c| c == '\u{FFFD}')
        .count();
    if bad >= 5 {
        why.push(format!("{bad} undecodable characters in the body"));
    }
    if d.subject.contains('\u{FFFD}') {
        why.push("undecodable characters in the subject".to_string());
    }
    if !why.is_empty() {
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: why.join("; "),
        });
    }
}
