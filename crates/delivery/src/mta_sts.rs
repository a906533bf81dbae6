//! MTA-STS (RFC 8461): a domain says, in a `_mta-sts.<domain>` TXT record (its `id` says when
//! the policy changed) and a policy file at `https://mta-sts.<domain>/.well-known/mta-sts.txt`
//! (mode, MX patterns, `max_age`), that its mail must go only to the listed MX hosts over
//! verified TLS. Here: parsing the record and the file and matching an MX host against the
//! patterns; `fetch` gets the file over HTTPS (certificate verified, no redirects, `text/plain`,
//! size cap, timeout); `cache` discovers the policy and keeps it per node for `max_age`
//! (refetched when the record's `id` changes; a failed refetch keeps the cached one); `apply`
//! hooks it into a delivery round (`enforce` → `verify` restricted to the matching MX hosts,
//! `testing` → deliver and report what would have failed). The operator's own TLS policy for a
//! domain or route wins over the published one.

pub mod apply;
pub mod cache;
pub mod fetch;

/// A policy's mode (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deliver only to matching MX hosts with a valid certificate.
    Enforce,
    /// Deliver as usual; report what would have failed.
    Testing,
    /// No policy (the domain withdrew it).
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// MX patterns: `mail.example.com` or `*.example.net` (one leftmost label).
    pub mx: Vec<String>,
    /// Seconds the policy may be cached (at most 31557600, RFC 8461 §3.2).
    pub max_age: u64,
}

/// Why a TXT record or policy file is not a valid MTA-STS one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StsError {
    #[error("TXT record is not `v=STSv1` with an id")]
    Record,
    #[error("policy: {0}")]
    Policy(String),
}

/// The `id` of a `_mta-sts` TXT record (`v=STSv1; id=20160831085700Z;`).
pub fn record_id(txt: &str) -> Result<String, StsError> {
    let mut fields = txt.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next() != Some("v=STSv1") {
        return Err(StsError::Record);
    }
    fields
        .filter_map(|f| f.split_once('='))
        .find(|(k, _)| k.trim() == "id")
        .map(|(_, v)| v.trim().to_string())
        .filter(|id| {
            !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric())
        })
        .ok_or(StsError::Record)
}

/// The longest `max_age` a policy may ask for.
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

impl Policy {
    /// Parse a policy file (`key: value` lines, CRLF or LF).
    pub fn parse(text: &str) -> Result<Policy, StsError> {
        let bad = |m: &str| StsError::Policy(m.to_string());
        let (mut version, mut mode, mut max_age, mut mx) = (None, None, None, Vec::new());
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.trim() {
                "version" => version = Some(v.to_string()),
                "mode" => {
                    mode = Some(match v {
                        "enforce" => Mode::Enforce,
                        "testing" => Mode::Testing,
                        "none" => Mode::None,
                        _ => return Err(bad("mode is not enforce, testing or none")),
                    })
                }
                "max_age" => {
                    let n: u64 = v.parse().map_err(|_| bad("max_age is not a number"))?;
                    max_age = Some(n.min(MAX_AGE_LIMIT));
                }
                "mx" => mx.push(v.to_ascii_lowercase()),
                _ => {}
            }
        }
        if version.as_deref() != Some("STSv1") {
            return Err(bad("version is not STSv1"));
        }
        let mode = mode.ok_or_else(|| bad("no mode"))?;
        let max_age = max_age.ok_or_else(|| bad("no max_age"))?;
        if mode != Mode::None && mx.is_empty() {
            return Err(bad("no mx"));
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// Whether `host` (an MX name) is one of the policy's MX patterns (RFC 8461 §4.1: a
    /// wildcard stands for exactly one leftmost label).
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| {
            let p = p.trim_end_matches('.');
            match p.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
                None => host == p,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_records() {
        assert_eq!(
            record_id("v=STSv1; id=20160831085700Z;"),
            Ok("20160831085700Z".into())
        );
        assert_eq!(record_id("v=STSv1;id=abc"), Ok("abc".into()));
        assert_eq!(record_id("v=spf1 -all"), Err(StsError::Record));
        assert_eq!(record_id("v=STSv1;"), Err(StsError::Record));
        assert_eq!(record_id("v=STSv1; id=a-b"), Err(StsError::Record));
    }

    #[test]
    fn policies_parse_and_match() {
        let p = Policy::parse(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.Example.NET\r\n\
             max_age: 999999999\r\n",
        )
        .expect("policy");
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, MAX_AGE_LIMIT);
        assert!(p.matches("mail.example.com."));
        assert!(p.matches("MX1.example.net"));
        assert!(!p.matches("a.b.example.net"), "one label only");
        assert!(!p.matches("example.net"));
        assert!(!p.matches("evil-mail.example.com"));
        let t = Policy::parse("version: STSv1\nmode: testing\nmx: m.x\nmax_age: 60\n").expect("t");
        assert_eq!((t.mode, t.max_age), (Mode::Testing, 60));
        for bad in [
            "mode: enforce\nmx: m\nmax_age: 1",
            "version: STSv1\nmode: strict\nmx: m\nmax_age: 1",
            "version: STSv1\nmode: enforce\nmax_age: 1",
            "version: STSv1\nmode: enforce\nmx: m",
            "version: STSv1\nmode: enforce\nmx: m\nmax_age: soon",
        ] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
        assert!(Policy::parse("version: STSv1\nmode: none\nmax_age: 1").is_ok());
    }
}
