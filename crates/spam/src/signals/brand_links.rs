//! BRAND_LINKS_ELSEWHERE: the subject or the start of the body names a brand (PayPal, DHL, JCB,
//! Bradesco…), the message links out, and neither the sender nor any link belongs to that brand
//! — a lure that borrows a brand's name and sends the reader somewhere else. In any language:
//! only the brand's name and the link destinations are compared.

use super::lists::brand_in;
use super::{Cx, Hit};
use crate::urls::registrable_domain;

pub const TAG: &str = "BRAND_LINKS_ELSEWHERE";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let d = cx.doc;
    if d.urls.is_empty() {
        return;
    }
    let head: String = d
        .text
        .chars()
        .take(3_000)
        .collect::<String>()
        .to_lowercase();
    let subject = d.subject.to_lowercase();
    let Some((brand, domains)) = brand_in(&subject).or_else(|| brand_in(&head)) else {
        return;
    };
    let own = |dom: &str| domains.contains(&dom);
    if !d.from_domain.is_empty() && own(&registrable_domain(&d.from_domain)) {
        return;
    }
    if d.urls.iter().any(|u| own(&u.domain)) {
        return;
    }
    let target = d.urls.first().map(|u| u.host.as_str()).unwrap_or("");
    out.push(Hit {
        tag: TAG,
        value: 1.0,
        detail: format!("names {brand} but links to {target}, not to {brand}"),
    });
}
