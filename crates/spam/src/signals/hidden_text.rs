//! HIDDEN_TEXT: HTML text styled to be invisible (display:none, zero font, white-on-white),
//! used to stuff words past content filters.

use super::{Cx, Hit};

pub const TAG: &str = "HIDDEN_TEXT";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let h = &cx.doc.html_info;
    if h.hidden_chars >= 20 {
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: format!(
                "{} hidden characters, e.g. \"{}\"",
                h.hidden_chars,
                h.hidden_sample.trim()
            ),
        });
    }
}
