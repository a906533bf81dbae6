//! Display-name spoofing: the From display name claims a brand the address does not belong to
//! (FROM_NAME_BRAND_SPOOF), shows a different domain or address than the real one
//! (FROM_NAME_DOMAIN_MISMATCH), or claims the sender's own organisation while the address is
//! outside it (FROM_OWN_DOMAIN_SPOOF).

use super::lists::{BRANDS, contains_word};
use super::{Cx, Hit};
use crate::urls::{parse_url, registrable_domain};

pub const TAG_BRAND: &str = "FROM_NAME_BRAND_SPOOF";
pub const TAG_NAME_DOMAIN: &str = "FROM_NAME_DOMAIN_MISMATCH";
pub const TAG_OWN_DOMAIN: &str = "FROM_OWN_DOMAIN_SPOOF";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let d = cx.doc;
    if d.from_name.is_empty() || d.from_domain.is_empty() {
        return;
    }
    let name = d.from_name.to_lowercase();
    let from_reg = registrable_domain(&d.from_domain);
    for (brand, domains) in BRANDS {
        if contains_word(&name, brand) && !domains.contains(&from_reg.as_str()) {
            out.push(Hit {
                tag: TAG_BRAND,
                value: 1.0,
                detail: format!(
                    "display name says \"{}\", address is at {}",
                    d.from_name, d.from_domain
                ),
            });
            break;
        }
    }
    if let Some(shown) = name_domain(&name).filter(|s| *s != from_reg) {
        out.push(Hit {
            tag: TAG_NAME_DOMAIN,
            value: 1.0,
            detail: format!(
                "display name shows {shown}, address is at {}",
                d.from_domain
            ),
        });
    }
    own_domain(cx, &name, &from_reg, out);
}

/// A domain written in the display name ("support@paypal.com", "paypal.com Security").
fn name_domain(name: &str) -> Option<String> {
    name.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '(' | ')' | '"' | '\'' | ','))
        .filter(|w| w.contains('.') && w.chars().any(|c| c.is_alphabetic()))
        .find_map(|w| {
            let host = w.rsplit('@').next().unwrap_or(w).trim_matches('.');
            let tld = host.rsplit('.').next().unwrap_or("");
            if host.contains('.') && tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
            {
                parse_url(&format!("http://{host}")).map(|u| u.domain)
            } else {
                None
            }
        })
}

fn own_domain(cx: &Cx<'_>, name: &str, from_reg: &str, out: &mut Vec<Hit>) {
    let own: Vec<String> = cx
        .sender_domain
        .into_iter()
        .map(|s| s.to_ascii_lowercase())
        .chain(cx.tenant_domains.iter().map(|s| s.to_ascii_lowercase()))
        .collect();
    if own.is_empty() || own.iter().any(|o| registrable_domain(o) == from_reg) {
        return;
    }
    for o in &own {
        let reg = registrable_domain(o);
        let label = reg.split('.').next().unwrap_or("");
        if name.contains(&reg) || (label.len() >= 4 && contains_word(name, label)) {
            out.push(Hit {
                tag: TAG_OWN_DOMAIN,
                value: 1.0,
                detail: format!("display name claims {reg}, address is at {from_reg}"),
            });
            return;
        }
    }
}
