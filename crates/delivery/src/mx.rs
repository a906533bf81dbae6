//! Where mail for a recipient domain goes: static routes (`[[routes]]`, `"*"` = smarthost) first,
//! then `[ip]` literals, then MX lookup with hickory-resolver (RFC 5321 §5.1: MX by preference,
//! implicit MX = the domain's own A/AAAA, RFC 7505 null MX = permanent failure).
//!
//! Error classes matter more than anything here: NXDOMAIN, null MX and "no address at all" are
//! permanent (the message bounces); SERVFAIL, timeouts and every other resolver error are
//! temporary (the message is retried) — a flaky resolver must never bounce mail.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use outguard_types::config::{DnsConfig, Dnssec, RouteConfig};

/// Most addresses tried for one destination in one attempt.
const MAX_HOPS: usize = 10;

/// Why a destination could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The domain can never receive mail (bounce). `status` is the RFC 3463 code.
    #[error("{status} {reason}")]
    Permanent {
        status: &'static str,
        reason: String,
    },
    /// Try again later.
    #[error("{reason}")]
    Temporary { reason: String },
}

impl RouteError {
    fn temp(reason: impl Into<String>) -> RouteError {
        RouteError::Temporary {
            reason: reason.into(),
        }
    }
}

/// One address to try, with the host name it came from (for SNI, logs and `Remote-MTA`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub host: String,
    pub addr: SocketAddr,
}

/// Resolved destination: hops in the order to try them, and the site key that connection
/// limits are counted under (the MX host set, so aliases of one provider share a limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub site: String,
    pub hops: Vec<Hop>,
}

/// DNS for delivery (MX, A/AAAA) and for the policy's "does the sender domain exist" check.
#[derive(Clone)]
pub struct MxResolver {
    dns: TokioResolver,
    /// `[dns] dnssec = "trust_ad"`: the same resolver, asked for its AD bit (DANE).
    dnssec: Option<super::dnssec::AdResolver>,
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// Resolver errors that mean "the name has no such records" (as opposed to "could not ask").
fn classify(e: &NetError) -> Option<bool> {
    if e.is_nx_domain() {
        Some(true)
    } else if e.is_no_records_found() {
        Some(false)
    } else {
        None
    }
}

/// The one place a resolver is pointed at a server: `dns.resolver` (tests run their own) over
/// UDP and TCP. Every DNS client of the relay (MX, TXT proofs, DNSBL, DKIM) starts here, so they
/// can never disagree on which server they ask.
pub fn server_config(addr: SocketAddr) -> ResolverConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
    ResolverConfig::from_parts(None, vec![], vec![ns])
}

/// A resolver builder for `dns.resolver`, else the system configuration; callers set options.
pub fn resolver_builder(
    cfg: &DnsConfig,
) -> Result<hickory_resolver::ResolverBuilder<TokioRuntimeProvider>, NetError> {
    Ok(match cfg.resolver {
        Some(addr) => {
            TokioResolver::builder_with_config(server_config(addr), TokioRuntimeProvider::default())
        }
        None => TokioResolver::builder_tokio()?,
    })
}

impl MxResolver {
    /// The resolver named by `dns.resolver`, else the system configuration.
    pub fn new(cfg: &DnsConfig) -> Result<MxResolver, NetError> {
        let mut builder = resolver_builder(cfg)?;
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = Duration::from_secs(5);
        opts.attempts = 2;
        let dnssec = match (cfg.dnssec, cfg.resolver) {
            (Dnssec::TrustAd, Some(addr)) => Some(super::dnssec::AdResolver::new(addr)),
            _ => None,
        };
        Ok(MxResolver {
            dns: builder.build()?,
            dnssec,
        })
    }

    /// The resolver whose AD bit is believed, when the operator said it validates.
    pub fn dnssec(&self) -> Option<&super::dnssec::AdResolver> {
        self.dnssec.as_ref()
    }

    /// Addresses of `host` (A and AAAA). `Ok(empty)` = the name exists without addresses.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, RouteError> {
        match self.dns.lookup_ip(fqdn(host)).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) => match classify(&e) {
                Some(true) => Err(RouteError::Permanent {
                    status: "5.1.2",
                    reason: format!("host {host} not found"),
                }),
                Some(false) => Ok(Vec::new()),
                None => Err(RouteError::temp(format!(
                    "DNS lookup of {host} failed: {e}"
                ))),
            },
        }
    }

    /// The TXT records at `name`, each one's strings joined (RFC 7208 §3.3 style). `Ok(empty)`
    /// = the name has none (or does not exist); `Err` = DNS could not tell.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, RouteError> {
        match self.dns.txt_lookup(fqdn(name)).await {
            Ok(lookup) => Ok(lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(t) => Some(
                        t.txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s))
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) => match classify(&e) {
                Some(_) => Ok(Vec::new()),
                None => Err(RouteError::temp(format!(
                    "TXT lookup of {name} failed: {e}"
                ))),
            },
        }
    }

    /// MX hosts of `domain` by preference. `Ok(None)` = no MX records (implicit MX applies).
    async fn mx_hosts(&self, domain: &str) -> Result<Option<Vec<String>>, RouteError> {
        match self.dns.mx_lookup(fqdn(domain)).await {
            Ok(lookup) => {
                let mut mx: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                        _ => None,
                    })
                    .collect();
                if mx.iter().any(|(_, host)| host == "." || host.is_empty()) {
                    return Err(RouteError::Permanent {
                        status: "5.1.10",
                        reason: format!("{domain} does not accept mail (null MX)"),
                    });
                }
                mx.sort();
                let hosts = mx
                    .into_iter()
                    .map(|(_, h)| h.trim_end_matches('.').to_ascii_lowercase());
                Ok(Some(hosts.collect()))
            }
            Err(e) => match classify(&e) {
                Some(true) => Err(RouteError::Permanent {
                    status: "5.1.2",
                    reason: format!("domain {domain} not found"),
                }),
                Some(false) => Ok(None),
                None => Err(RouteError::temp(format!(
                    "MX lookup of {domain} failed: {e}"
                ))),
            },
        }
    }

    /// Where to deliver mail for `domain` on `port` (static routes take precedence).
    pub async fn route(
        &self,
        domain: &str,
        routes: &[RouteConfig],
        port: u16,
    ) -> Result<Route, RouteError> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if let Some(next_hop) = static_route(&domain, routes) {
            return self.next_hop(next_hop).await;
        }
        if let Some(ip) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            let ip: IpAddr =
                ip.trim_start_matches("IPv6:")
                    .parse()
                    .map_err(|_| RouteError::Permanent {
                        status: "5.1.2",
                        reason: format!("bad address literal {domain}"),
                    })?;
            let addr = SocketAddr::new(ip, port);
            return Ok(Route {
                site: ip.to_string(),
                hops: vec![Hop {
                    host: ip.to_string(),
                    addr,
                }],
            });
        }
        let hosts = match self.mx_hosts(&domain).await? {
            Some(hosts) if !hosts.is_empty() => hosts,
            _ => vec![domain.clone()], // implicit MX
        };
        let mut hops = Vec::new();
        let mut temp: Option<RouteError> = None;
        for host in &hosts {
            match self.addresses(host).await {
                Ok(ips) => hops.extend(ips.into_iter().map(|ip| Hop {
                    host: host.clone(),
                    addr: SocketAddr::new(ip, port),
                })),
                Err(e @ RouteError::Temporary { .. }) => temp = Some(e),
                Err(RouteError::Permanent { .. }) => {}
            }
            if hops.len() >= MAX_HOPS {
                break;
            }
        }
        hops.truncate(MAX_HOPS);
        if hops.is_empty() {
            return Err(temp.unwrap_or(RouteError::Permanent {
                status: "5.1.2",
                reason: format!("no address for the mail hosts of {domain}"),
            }));
        }
        let mut site: Vec<&str> = hosts.iter().map(String::as_str).collect();
        site.sort_unstable();
        Ok(Route {
            site: site.join(","),
            hops,
        })
    }

    /// A static route's `host:port` / `ip:port` / `[ip]:port`.
    async fn next_hop(&self, next_hop: &str) -> Result<Route, RouteError> {
        if let Ok(addr) = next_hop.parse::<SocketAddr>() {
            return Ok(Route {
                site: next_hop.to_string(),
                hops: vec![Hop {
                    host: addr.ip().to_string(),
                    addr,
                }],
            });
        }
        let (host, port) = next_hop
            .rsplit_once(':')
            .and_then(|(h, p)| {
                Some((
                    h.trim_start_matches('[').trim_end_matches(']'),
                    p.parse::<u16>().ok()?,
                ))
            })
            .ok_or_else(|| RouteError::temp(format!("bad next hop `{next_hop}`")))?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Route {
                site: next_hop.to_string(),
                hops: vec![Hop {
                    host: host.into(),
                    addr: SocketAddr::new(ip, port),
                }],
            });
        }
        // A configured next hop that does not resolve is an operator problem: retry, never bounce.
        let ips = self
            .addresses(host)
            .await
            .map_err(|e| RouteError::temp(format!("next hop {next_hop}: {e}")))?;
        if ips.is_empty() {
            return Err(RouteError::temp(format!(
                "next hop {next_hop} has no address"
            )));
        }
        let hops = ips.into_iter().take(MAX_HOPS).map(|ip| Hop {
            host: host.into(),
            addr: SocketAddr::new(ip, port),
        });
        Ok(Route {
            site: next_hop.to_string(),
            hops: hops.collect(),
        })
    }

    /// Whether `domain` has an MX or an A/AAAA record (SPEC §2.5: senders whose domain has
    /// neither go to `high-risk`). `Err` = DNS could not tell (the caller decides).
    pub async fn domain_has_a_or_mx(&self, domain: &str) -> Result<bool, RouteError> {
        match self.mx_hosts(domain).await {
            Ok(Some(hosts)) if !hosts.is_empty() => return Ok(true),
            Ok(_) => {}
            // A null MX is an MX record: the domain exists, it just receives nothing.
            Err(RouteError::Permanent {
                status: "5.1.10", ..
            }) => return Ok(true),
            Err(RouteError::Permanent { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        match self.addresses(domain).await {
            Ok(ips) => Ok(!ips.is_empty()),
            Err(RouteError::Permanent { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The configured next hop for `domain`: an exact domain match wins over `"*"`.
pub fn static_route<'a>(domain: &str, routes: &'a [RouteConfig]) -> Option<&'a str> {
    route_config(domain, routes).map(|(_, r)| r.next_hop.as_str())
}

/// The `[[routes]]` entry (index, entry) that serves `domain`, as [`static_route`] picks it.
pub fn route_config<'a>(
    domain: &str,
    routes: &'a [RouteConfig],
) -> Option<(usize, &'a RouteConfig)> {
    let domain = domain.trim_end_matches('.');
    let mut all = routes.iter().enumerate();
    let exact = all
        .clone()
        .find(|(_, r)| r.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)));
    exact.or_else(|| all.find(|(_, r)| r.domains.iter().any(|d| d == "*")))
}
