//! REPLYTO_FREEMAIL: replies go to a free-mail mailbox other than the sender's domain (advance
//! fee fraud, business e-mail compromise).

use super::lists::is_freemail;
use super::{Cx, Hit};

pub const TAG: &str = "REPLYTO_FREEMAIL";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let d = cx.doc;
    if let Some(rt) = d
        .reply_to_domain
        .as_ref()
        .filter(|rt| is_freemail(rt) && **rt != d.from_domain)
    {
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: format!(
                "Reply-To goes to free-mail {rt}, From is at {}",
                d.from_domain
            ),
        });
    }
}
