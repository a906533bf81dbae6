//! URLs in a message: from HTML hrefs and from plain text, with host, registrable domain and
//! whether the host is an IP literal. Parsing is lenient and bounded (no allocation per byte).

use crate::html::Link;
use crate::limits::MAX_URLS;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Url {
    pub raw: String,
    pub host: String,
    /// Registrable domain (heuristic public-suffix handling), or the IP itself.
    pub domain: String,
    pub is_ip: bool,
}

/// Second-level public suffixes common enough to matter for "registrable domain".
const TWO_LEVEL_SUFFIXES: &[&str] = &[
    "co.uk", "org.uk", "ac.uk", "gov.uk", "me.uk", "com.au", "net.au", "org.au", "co.nz", "co.jp",
    "ne.jp", "or.jp", "co.za", "com.br", "com.cn", "com.mx", "co.in", "com.tr", "com.tw", "com.hk",
    "com.sg", "co.kr", "com.ar", "com.ru", "com.ua", "co.il",
];

/// Parses one URL-ish string (`http(s)://…` or `www.…`). `None` for other schemes or no host.
pub fn parse_url(raw: &str) -> Option<Url> {
    let raw = raw.trim().trim_matches(|c| c == '"' || c == '\'');
    let lower = raw.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("http://") {
        r
    } else if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if lower.starts_with("www.") {
        &lower[..]
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    let host = if hostport.starts_with('[') {
        hostport
            .split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
            .to_string()
    } else {
        hostport
            .split(':')
            .next()
            .unwrap_or("")
            .trim_end_matches('.')
            .to_string()
    };
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let is_ip = is_ip_literal(&host);
    let domain = if is_ip {
        host.clone()
    } else {
        registrable_domain(&host)
    };
    Some(Url {
        raw: raw.chars().take(300).collect(),
        host,
        domain,
        is_ip,
    })
}

/// Dotted quad, IPv6 literal, or a bare decimal/hex number (all browsers resolve those).
pub fn is_ip_literal(host: &str) -> bool {
    if host.contains(':') {
        return host
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    }
    let parts: Vec<&str> = host.split('.').collect();
    let numeric = |p: &&str| {
        !p.is_empty()
            && (p.chars().all(|c| c.is_ascii_digit())
                || (p.starts_with("0x")
                    && p.len() > 2
                    && p[2..].chars().all(|c| c.is_ascii_hexdigit())))
    };
    (parts.len() == 4 || parts.len() == 1) && parts.iter().all(numeric)
}

/// `mail.paypal.co.uk` -> `paypal.co.uk`, `a.b.example.com` -> `example.com`.
pub fn registrable_domain(host: &str) -> String {
    let labels: Vec<&str> = host.split('.').filter(|l| !l.is_empty()).collect();
    if labels.len() <= 2 {
        return labels.join(".");
    }
    let last_two = labels[labels.len() - 2..].join(".");
    if TWO_LEVEL_SUFFIXES.contains(&last_two.as_str()) {
        labels[labels.len() - 3..].join(".")
    } else {
        last_two
    }
}

/// Domain of an address (`a@b.example.com` -> `b.example.com`), lowercase.
pub fn addr_domain(addr: &str) -> String {
    addr.rsplit_once('@')
        .map(|(_, d)| {
            d.trim()
                .trim_end_matches('>')
                .trim_end_matches('.')
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// Link hrefs first, then URLs found in the text; deduplicated, at most `MAX_URLS`.
pub fn collect(links: &[Link], text: &str) -> Vec<Url> {
    let mut out: Vec<Url> = Vec::new();
    let push = |u: Url, out: &mut Vec<Url>| {
        if out.len() < MAX_URLS && !out.iter().any(|o| o.raw == u.raw) {
            out.push(u);
        }
    };
    for l in links {
        if let Some(u) = parse_url(&l.href) {
            push(u, &mut out);
        }
    }
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    let mut scanned = 0;
    const PATTERNS: [&str; 3] = ["http://", "https://", "www."];
    let mut next: [Option<usize>; 3] = PATTERNS.map(|p| lower.find(p));
    while out.len() < MAX_URLS && scanned < 4 * MAX_URLS {
        for (i, p) in PATTERNS.iter().enumerate() {
            if matches!(next[i], Some(n) if n < from) {
                next[i] = lower[from..].find(p).map(|j| from + j);
            }
        }
        let Some(start) = next.iter().flatten().copied().min() else {
            break;
        };
        scanned += 1;
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '<' | '>' | ')' | ']' | '\''))
            .map_or(text.len(), |i| start + i);
        if let Some(u) = parse_url(text[start..end].trim_end_matches(['.', ',', ';'])) {
            push(u, &mut out);
        }
        from = end.max(start + 1);
        while from < text.len() && !text.is_char_boundary(from) {
            from += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tricky_urls() {
        let u = parse_url("http://www.paypal.com@185.12.3.4:8080/login").unwrap();
        assert_eq!(u.host, "185.12.3.4");
        assert!(u.is_ip);
        let u = parse_url("https://secure.login.paypal.co.uk/x").unwrap();
        assert_eq!(u.domain, "paypal.co.uk");
        assert!(parse_url("mailto:a@b").is_none());
        assert!(is_ip_literal("3232235777"));
        assert!(!is_ip_literal("example.com"));
    }

    #[test]
    fn collects_from_text() {
        let urls = collect(&[], "see http://bit.ly/abc, and www.Example.com. ok");
        assert_eq!(urls.len(), 2);
        assert_eq!(urls[0].domain, "bit.ly");
        assert_eq!(urls[1].domain, "example.com");
    }
}
