//! Webhook URLs (`[[webhooks.hooks]] url`, `POST /api/v1/webhooks`): `http://` or `https://`,
//! a host that is a DNS name, `localhost` or an IP literal, an optional port, a path. Parsed
//! here, once, so the config check, the API and the sender agree on what a URL means.
//!
//! Refused outright: other schemes, user info (`user:pw@host`: it would be sent nowhere, and
//! it hides the real host from a reader), control characters and spaces anywhere, IPv6 zone
//! ids, and numeric host forms that are not a dotted-quad IPv4 (`2130706433`, `0x7f.1`,
//! `127.1`): some resolvers read them as addresses, so they must never pass as names.
//! Whether the host's addresses may be connected to is the sender's question, not this one's.

use std::net::IpAddr;

use crate::config::valid_dns_name;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// A checked webhook URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    pub scheme: Scheme,
    /// Lower-case name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// Path and query as sent in the request line (`/` at least; no fragment).
    pub path: String,
}

impl WebhookUrl {
    /// Parses `url`; the error says what is wrong, for a 422 or a config message.
    pub fn parse(url: &str) -> Result<WebhookUrl, String> {
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("control characters and spaces are not allowed in a webhook URL".into());
        }
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            _ => {
                return Err(format!(
                    "`{url}`: only http:// and https:// URLs are supported"
                ));
            }
        };
        let rest = rest.split('#').next().unwrap_or(rest);
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err(format!(
                "`{url}`: user info (user@) is not allowed in a webhook URL"
            ));
        }
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        let (host, port) =
            split_host_port(authority).ok_or_else(|| format!("`{url}`: bad host"))?;
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{url}`: bad port `{p}`"))?,
            None => match scheme {
                Scheme::Http => 80,
                Scheme::Https => 443,
            },
        };
        let host = host.to_ascii_lowercase();
        if !valid_host(&host) {
            return Err(format!(
                "`{url}`: `{host}` is not a valid host name or IP address"
            ));
        }
        Ok(WebhookUrl {
            scheme,
            host,
            port,
            path,
        })
    }

    /// The host as an IP address, when it is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The `Host:` header value: the host (IPv6 in brackets), with the port unless it is the
    /// scheme's default.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = match self.scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            a => Some(a.strip_prefix(':')?),
        };
        return Some((h, port));
    }
    if authority.is_empty() {
        return None;
    }
    Some(match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    })
}

/// An IP literal, `localhost`, or a DNS name whose last label is not all digits or hex-like
/// (`127.1`, `0x7f.1` and friends are numeric forms, not names).
fn valid_host(host: &str) -> bool {
    if host.parse::<IpAddr>().is_ok() || host == "localhost" {
        return true;
    }
    let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    let numeric = last.chars().all(|c| c.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].chars().all(|c| c.is_ascii_hexdigit()));
    valid_dns_name(host) && !numeric
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        let u = WebhookUrl::parse("http://127.0.0.1:8080/hooks/a?x=1").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.path.as_str()),
            (Scheme::Http, "127.0.0.1", 8080, "/hooks/a?x=1")
        );
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        let u = WebhookUrl::parse("HTTPS://Hooks.Example").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.path.as_str()),
            (Scheme::Https, "hooks.example", 443, "/")
        );
        assert_eq!(u.host_header(), "hooks.example");
        let u = WebhookUrl::parse("https://[::1]:9/p#frag").unwrap();
        assert_eq!((u.host.as_str(), u.path.as_str()), ("::1", "/p"));
        assert_eq!(u.host_header(), "[::1]:9");
        assert_eq!(u.ip(), Some("::1".parse().unwrap()));
        assert_eq!(WebhookUrl::parse("http://h.example?q").unwrap().path, "/?q");
        assert_eq!(
            WebhookUrl::parse("http://localhost:1/").unwrap().host,
            "localhost"
        );
    }

    #[test]
    fn bad_urls_say_why() {
        for (url, want) in [
            ("ftp://x", "only http:// and https://"),
            ("file:///etc/passwd", "only http:// and https://"),
            ("gopher://h.example/", "only http:// and https://"),
            ("h.example/x", "only http:// and https://"),
            ("http://u@h.example/", "user info"),
            ("http://u:p@h.example/", "user info"),
            ("http://h.example@127.0.0.1/", "user info"),
            ("http://h.example/a b", "control characters"),
            ("http://h.example/\u{1b}[31m", "control characters"),
            ("http://h.example/\0", "control characters"),
            ("http://h.example\r\nX: y/", "control characters"),
            ("http://h.example:99999/", "bad port"),
            ("http://h.example:0/", "bad port"),
            ("http://h.example:/", "bad port"),
            ("http:///x", "bad host"),
            ("http://[fe80::1%25eth0]/", "bad host"),
            ("http://[::1]x/", "bad host"),
            ("http://single/", "not a valid host"),
            ("http://h_ost!.example/", "not a valid host"),
            ("http://2130706433/", "not a valid host"),
            ("http://127.1/", "not a valid host"),
            ("http://0x7f.1/", "not a valid host"),
            ("http://0x7f.0x0.0x0.0x1/", "not a valid host"),
        ] {
            let e = WebhookUrl::parse(url).expect_err(url);
            assert!(e.contains(want), "{url}: `{e}` lacks `{want}`");
        }
    }
}
