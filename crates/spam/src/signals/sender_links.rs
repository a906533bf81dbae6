//! LINKS_MATCH_SENDER: every link goes to the sender's own registrable domain (a receipt from
//! `shop.example` linking to `shop.example`). Spam and phishing mostly send the reader
//! somewhere other than where the mail claims to come from; the model learns how much a
//! consistent sender is worth (it is evidence, not proof: a spammer may own both).

use super::{Cx, Hit};
use crate::urls::registrable_domain;

pub const TAG: &str = "LINKS_MATCH_SENDER";

/// Hosts that pages load resources from whoever sends them (fonts, schemas).
const NEUTRAL: &[&str] = &["googleapis.com", "gstatic.com", "w3.org", "schema.org"];

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let d = cx.doc;
    if d.from_domain.is_empty() {
        return;
    }
    let sender = registrable_domain(&d.from_domain);
    let mut links = d
        .urls
        .iter()
        .filter(|u| !NEUTRAL.contains(&u.domain.as_str()))
        .peekable();
    if links.peek().is_none() {
        return;
    }
    if links.all(|u| u.domain == sender) {
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: format!("every link goes to the sender's domain {sender}"),
        });
    }
}
