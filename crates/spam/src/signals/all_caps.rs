//! SUBJECT_ALL_CAPS / BODY_MOSTLY_CAPS: shouting.

use super::{Cx, Hit, upper_ratio};

pub const TAG_SUBJECT: &str = "SUBJECT_ALL_CAPS";
pub const TAG_BODY: &str = "BODY_MOSTLY_CAPS";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let (r, n) = upper_ratio(&cx.doc.subject);
    if n >= 8 && r >= 0.9 {
        out.push(Hit {
            tag: TAG_SUBJECT,
            value: 1.0,
            detail: format!("subject is in capitals: \"{}\"", cx.doc.subject),
        });
    }
    let sample: String = cx.doc.text.chars().take(8_000).collect();
    let (r, n) = upper_ratio(&sample);
    if n >= 200 && r >= 0.5 {
        out.push(Hit {
            tag: TAG_BODY,
            value: 1.0,
            detail: format!("{:.0}% of body letters are capitals", r * 100.0),
        });
    }
}
