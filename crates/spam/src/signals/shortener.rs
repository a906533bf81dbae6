//! URL_SHORTENER: links through a URL shortener, which hides the destination.

use super::lists::is_shortener;
use super::{Cx, Hit};

pub const TAG: &str = "URL_SHORTENER";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    if let Some(u) = cx
        .doc
        .urls
        .iter()
        .find(|u| is_shortener(&u.domain) || is_shortener(&u.host))
    {
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: format!("link through shortener {}", u.host),
        });
    }
}
