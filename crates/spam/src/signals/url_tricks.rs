//! URL tricks that hide where a link goes: a user-info part before `@` in the authority
//! (`https://paypal.com@evil.example/`), an internationalised (punycode `xn--`) host, or a
//! brand's name inside a host that is not the brand's (`paypal-secure.top`,
//! `amazon.co.jp.login.cn`) — URL_OBFUSCATED and URL_BRAND_IN_HOST.

use super::lists::BRANDS;
use super::{Cx, Hit};

pub const TAG_OBFUSCATED: &str = "URL_OBFUSCATED";
pub const TAG_BRAND_HOST: &str = "URL_BRAND_IN_HOST";

pub fn check(cx: &Cx<'_>, out: &mut Vec<Hit>) {
    let urls = &cx.doc.urls;
    if let Some(u) = urls
        .iter()
        .find(|u| has_userinfo(&u.raw) || u.host.contains("xn--"))
    {
        out.push(Hit {
            tag: TAG_OBFUSCATED,
            value: 1.0,
            detail: format!("link hides its destination: {}", short(&u.raw)),
        });
    }
    for u in urls.iter().filter(|u| !u.is_ip) {
        let hit = BRANDS.iter().find(|(b, domains)| {
            b.is_ascii()
                && b.len() >= 4
                && !b.contains(' ')
                && u.host.contains(b)
                && !domains.contains(&u.domain.as_str())
        });
        if let Some((brand, _)) = hit {
            out.push(Hit {
                tag: TAG_BRAND_HOST,
                value: 1.0,
                detail: format!("link host {} borrows the name {brand}", u.host),
            });
            return;
        }
    }
}

/// `scheme://user@host/…`: an `@` before the first `/` of the authority.
fn has_userinfo(raw: &str) -> bool {
    let rest = raw.split_once("://").map_or(raw, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

fn short(raw: &str) -> String {
    raw.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_only_in_the_authority() {
        assert!(has_userinfo("https://paypal.com@185.1.2.3/x"));
        assert!(!has_userinfo("https://ex.org/contact?to=a@b.org"));
    }
}
