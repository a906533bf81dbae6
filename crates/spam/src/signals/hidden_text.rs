//! HIDDEN_TEXT: HTML text styled to be invisible (display:none, zero font, white-on-white),
//! used to stuff words past content filters. HIDDEN_FILLER: one hidden element holds a whole
//! paragraph (150+ letters) — not a newsletter's one-line preview text but filler meant for
//! filters, usually copied from an encyclopaedia so that its words look like ham.

use super::{Cx, Hit};

pub const TAG: &str = "HIDDEN_TEXT";
pub const TAG_FILLER: &str = "HIDDEN_FILLER";

/// Letters in one hidden element from which it counts as filler (`inner_text` reads 200 chars).
const FILLER_LETTERS: usize = 150;

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
    if h.hidden_max >= FILLER_LETTERS {
        out.push(Hit {
            tag: TAG_FILLER,
            value: 1.0,
            detail: format!("a hidden paragraph of {}+ letters", h.hidden_max),
        });
    }
}
