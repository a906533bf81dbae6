//! LINK_TEXT_DOMAIN_MISMATCH: a link whose visible text is a URL or domain that differs from
//! where the link really goes (the classic phishing trick).

use super::{Cx, Hit};
use crate::urls::parse_url;

pub const TAG: &str = "LINK_TEXT_DOMAIN_MISMATCH";

/// The domain a link's text shows, if the text looks like a URL or a bare domain.
fn shown_domain(text: &str) -> Option<crate::urls::Url> {
    let t = text.trim().trim_end_matches('/');
    if t.is_empty() || t.contains(' ') || !t.contains('.') {
        return None;
    }
    if let Some(u) = parse_url(t) {
        return Some(u);
    }
    let host_like = t
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '/' | ':'));
    let tld_ok = t
        .split('/')
        .next()?
        .rsplit('.')
        .next()?
        .chars()
        .all(|c| c.is_ascii_alphabetic());
    if host_like && tld_ok {
        parse_url(&format!("http://{t}"))
    } else {
        None
    }
}

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    for link in &cx.doc.html_info.links {
        let Some(href) = parse_url(&link.href) else {
            continue;
        };
        let Some(shown) = shown_domain(&link.text) else {
            continue;
        };
        if shown.domain != href.domain {
            out.push(Hit {
                tag: TAG,
                value: 1.0,
                detail: format!(
                    "link text shows {}, link goes to {}",
                    shown.domain, href.host
                ),
            });
            return;
        }
    }
}
