//! HTML_ONLY: the message has an HTML body and no plain-text alternative.

use super::{Cx, Hit};

pub const TAG: &str = "HTML_ONLY";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let d = cx.doc;
    if d.html_parts > 0 && d.text_parts == 0 {
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: "HTML body with no plain-text alternative".into(),
        });
    }
}
