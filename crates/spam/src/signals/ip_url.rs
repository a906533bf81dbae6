//! URL_IP_LITERAL: a link to a bare IP address instead of a host name.

use super::{Cx, Hit};

pub const TAG: &str = "URL_IP_LITERAL";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    if let Some(u) = cx.doc.urls.iter().find(|u| u.is_ip) {
        out.push(Hit {
            tag: TAG,
            value: 1.0,
            detail: format!("link goes to IP address {}", u.host),
        });
    }
}
