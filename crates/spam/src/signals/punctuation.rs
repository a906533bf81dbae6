//! EXCESS_PUNCTUATION: runs of "!!!", "???" or "$$$" in subject or body.

use super::{Cx, Hit};

pub const TAG: &str = "EXCESS_PUNCTUATION";

fn runs(s: &str) -> usize {
    let mut n = 0;
    let mut prev = ' ';
    let mut len = 0;
    for c in s.chars().take(20_000) {
        if matches!(c, '!' | '?' | '$') && (c == prev || len == 0) {
            len += 1;
        } else {
            len = usize::from(matches!(c, '!' | '?' | '$'));
        }
        if len == 3 {
            n += 1;
        }
        prev = c;
    }
    n
}

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let subj_bangs = cx.doc.subject.matches('!').count();
    let body_runs = runs(&cx.doc.text);
    let subj_runs = runs(&cx.doc.subject);
    if subj_bangs >= 2 || subj_runs > 0 || body_runs >= 3 {
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: format!(
                "{subj_bangs} '!' in the subject, {body_runs} runs like \"!!!\" in the body"
            ),
        });
    }
}
