//! One DNSBL query (RFC 5782): the IP's reversed octets (IPv4, §2.1) or nibbles (IPv6, §2.4)
//! under the zone, an A lookup, and for a listing the TXT record as the reason. NXDOMAIN (and
//! NODATA) = not listed; SERVFAIL, timeouts and other resolver failures = unknown, which never
//! changes an IP's state. Our own resolver (`dns.resolver`), never a public one — Spamhaus
//! refuses those (127.255.255.254) — and no answer cache: a delisting must be seen at the next
//! check, whatever TTL the zone hands out.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{RData, RecordType};
use outguard_types::config::DnsConfig;

use super::zones::{Answer, Zone};

/// The resolver could not be built from `[dns]`.
#[derive(Debug, thiserror::Error)]
#[error("DNSBL resolver: {0}")]
pub struct ResolverError(#[from] NetError);

/// The result of one IP on one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Listed {
        codes: Vec<(Ipv4Addr, String)>,
        txt: Option<String>,
    },
    Clean,
    /// The zone answered an error code (what it means).
    Error {
        code: Ipv4Addr,
        meaning: String,
    },
    /// SERVFAIL, timeout, refused: no information.
    Unknown {
        reason: String,
    },
}

impl Outcome {
    /// `listed` / `clean` / `error` / `unknown` (the store's status column).
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Listed { .. } => "listed",
            Outcome::Clean => "clean",
            Outcome::Error { .. } => "error",
            Outcome::Unknown { .. } => "unknown",
        }
    }

    /// The A code shown in the table (the first listing code, or the error code).
    pub fn code(&self) -> Option<String> {
        match self {
            Outcome::Listed { codes, .. } => codes.first().map(|(c, _)| c.to_string()),
            Outcome::Error { code, .. } => Some(code.to_string()),
            _ => None,
        }
    }

    /// What the listing state machine (`outguard_policy::listing`) makes of this answer.
    pub fn answer(&self) -> outguard_policy::listing::ZoneAnswer {
        use outguard_policy::listing::ZoneAnswer;
        match self {
            Outcome::Listed { .. } => ZoneAnswer::Listed {
                code: self.code(),
                reason: self.reason(),
            },
            Outcome::Clean => ZoneAnswer::Clean,
            Outcome::Error { .. } | Outcome::Unknown { .. } => ZoneAnswer::Inconclusive,
        }
    }

    /// The reason column: meanings and TXT for a listing, what failed otherwise.
    pub fn reason(&self) -> Option<String> {
        match self {
            Outcome::Listed { codes, txt } => {
                let meanings: Vec<&str> = codes.iter().map(|(_, m)| m.as_str()).collect();
                let mut s = meanings.join(",");
                if let Some(t) = txt {
                    let _ = write!(s, ": {t}");
                }
                Some(s)
            }
            Outcome::Error { meaning, .. } => Some(meaning.clone()),
            Outcome::Unknown { reason } => Some(reason.clone()),
            Outcome::Clean => None,
        }
    }
}

/// The DNS name to query for `ip` on `zone`.
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}.")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(64 + zone.len());
            for byte in v6.octets().iter().rev() {
                let _ = write!(s, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
            }
            format!("{s}{zone}.")
        }
    }
}

/// Asks the zones. Cheap to clone.
#[derive(Clone)]
pub struct Checker {
    dns: TokioResolver,
}

impl Checker {
    pub fn new(cfg: &DnsConfig) -> Result<Checker, ResolverError> {
        let mut builder = outguard_delivery::mx::resolver_builder(cfg)?;
        let opts = builder.options_mut();
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        opts.cache_size = 0;
        Ok(Checker {
            dns: builder.build()?,
        })
    }

    /// Check `ip` on `zone`.
    pub async fn check(&self, ip: IpAddr, zone: &Zone) -> Outcome {
        let name = query_name(ip, &zone.name);
        let codes = match self.dns.lookup(name.as_str(), RecordType::A).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => return Outcome::Clean,
            Err(e) => {
                return Outcome::Unknown {
                    reason: e.to_string(),
                };
            }
        };
        match zone.classify(&codes) {
            Answer::Listed(codes) => Outcome::Listed {
                codes,
                txt: self.txt(&name).await,
            },
            Answer::Error(code) => Outcome::Error {
                code,
                meaning: zone.error_meaning(code),
            },
            Answer::NotListing => Outcome::Clean,
        }
    }

    /// The TXT reason of a listing (joined when there are several; None when the zone has none).
    async fn txt(&self, name: &str) -> Option<String> {
        let lookup = self.dns.lookup(name, RecordType::TXT).await.ok()?;
        let texts: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(t.to_string()),
                _ => None,
            })
            .collect();
        if texts.is_empty() {
            return None;
        }
        let mut s = texts.join(" / ");
        s.truncate(s.floor_char_boundary(500));
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            query_name("203.0.113.79".parse().unwrap(), "zen.spamhaus.org"),
            "79.113.0.203.zen.spamhaus.org."
        );
        assert_eq!(
            query_name("127.0.0.2".parse().unwrap(), "bl.test."),
            "2.0.0.127.bl.test."
        );
        // RFC 5782 §2.4 example: 2001:db8:1:2:3:4:567:89ab
        assert_eq!(
            query_name(
                "2001:db8:1:2:3:4:567:89ab".parse().unwrap(),
                "ugly.example.com"
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com."
        );
    }
}
