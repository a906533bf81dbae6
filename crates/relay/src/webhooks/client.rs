//! The transport of one webhook attempt: resolve the host once, check every address (a tenant's
//! subscription may only reach public ones, [`super::addr`]), connect to exactly those checked
//! addresses, speak TLS for `https://` (the name as SNI and for verification), send the request
//! bytes and read the status line. Resolving here rather than letting the socket layer do it is
//! the point: a name that moved to 127.0.0.1 since it was subscribed (DNS rebinding) is refused
//! before any connection, and no second lookup can differ from the checked one.
//!
//! Names go through the relay's resolver (`[dns] resolver`); `localhost` and `*.localhost` are
//! loopback without asking DNS (RFC 6761). Certificates are verified against the platform's root
//! store plus `[webhooks] extra_roots`; there is no way to skip verification.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use outguard_types::config::{DnsConfig, WebhooksConfig};
use outguard_types::webhook_url::{Scheme, WebhookUrl};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::addr::{AddressPolicy, Refused};
use outguard_delivery::mx::{MxResolver, RouteError};

const MAX_STATUS_LINE: usize = 8 * 1024;
/// Most addresses tried for one host in one attempt.
const MAX_ADDRS: usize = 8;

/// What stops the webhooks from starting (a bad `[webhooks]` or `[dns]`).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("webhooks.extra_roots: cannot read {path}: {message}")]
    Roots { path: PathBuf, message: String },
    #[error("webhooks.extra_roots: {path}: {source}")]
    BadRoot {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("webhooks: TLS client: {0}")]
    Tls(#[from] rustls::Error),
    #[error("webhooks: DNS resolver: {0}")]
    Dns(String),
}

/// Why one attempt did not get a 2xx.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    /// An address the hook may not reach; never connected, not retried.
    #[error("webhook refused: {0}")]
    Refused(#[from] Refused),
    #[error("{0}")]
    Resolve(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP {0}")]
    Status(u16),
}

/// Resolver, address rules and TLS roots shared by every attempt.
pub struct Dialer {
    resolver: MxResolver,
    policy: AddressPolicy,
    tls: Arc<ClientConfig>,
}

/// The platform's roots plus the operator's extra ones.
fn roots(extra: Option<&Path>) -> Result<RootCertStore, SetupError> {
    let mut store = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        tracing::debug!(errors = ?native.errors, "some platform root certificates were not loaded");
    }
    let (added, _ignored) = store.add_parsable_certificates(native.certs);
    tracing::debug!(
        roots = added,
        "platform root certificates for https webhooks"
    );
    if let Some(path) = extra {
        let bad = |message: String| SetupError::Roots {
            path: path.to_path_buf(),
            message,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate in it".into()));
        }
        for cert in certs {
            store.add(cert).map_err(|source| SetupError::BadRoot {
                path: path.to_path_buf(),
                source,
            })?;
        }
    }
    if store.is_empty() {
        tracing::warn!("no trusted root certificates: https:// webhooks will fail");
    }
    Ok(store)
}

impl Dialer {
    pub fn new(cfg: &WebhooksConfig, dns: &DnsConfig) -> Result<Dialer, SetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots(cfg.extra_roots.as_deref())?)
            .with_no_client_auth();
        Ok(Dialer {
            resolver: MxResolver::new(dns).map_err(|e| SetupError::Dns(e.to_string()))?,
            policy: AddressPolicy::new(&cfg.allow_private),
            tls: Arc::new(tls),
        })
    }

    /// The host's addresses, resolved once.
    async fn resolve(&self, url: &WebhookUrl) -> Result<Vec<IpAddr>, AttemptError> {
        if let Some(ip) = url.ip() {
            return Ok(vec![ip]);
        }
        let host = url.host.trim_end_matches('.');
        if host == "localhost" || host.ends_with(".localhost") {
            return Ok(vec![
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]);
        }
        let ips = self.resolver.addresses(host).await.map_err(|e| match e {
            RouteError::Permanent { .. } => {
                AttemptError::Resolve(format!("host {host} does not resolve"))
            }
            RouteError::Temporary { reason } => AttemptError::Resolve(reason),
        })?;
        if ips.is_empty() {
            return Err(AttemptError::Resolve(format!("host {host} has no address")));
        }
        Ok(ips)
    }

    /// Where to connect for `url`: every resolved address, each checked when `restricted` (a
    /// subscription made through the API). One refused address refuses the host.
    pub async fn addresses(
        &self,
        url: &WebhookUrl,
        restricted: bool,
    ) -> Result<Vec<SocketAddr>, AttemptError> {
        let ips = self.resolve(url).await?;
        if restricted {
            for ip in &ips {
                self.policy.check(*ip)?;
            }
        }
        Ok(ips
            .into_iter()
            .take(MAX_ADDRS)
            .map(|ip| SocketAddr::new(ip, url.port))
            .collect())
    }

    /// Whether a subscription to `url` may be stored: the URL parses and, resolved now, every
    /// address is one a tenant may reach. The error is the 422's message.
    pub async fn check_subscription(&self, url: &str) -> Result<WebhookUrl, String> {
        let parsed = WebhookUrl::parse(url)?;
        match self.addresses(&parsed, true).await {
            Ok(_) => Ok(parsed),
            Err(AttemptError::Refused(r)) => Err(format!(
                "`{}` resolves to {r}; webhooks may only reach public addresses",
                parsed.host
            )),
            Err(e) => Err(format!("`{}`: {e}", parsed.host)),
        }
    }

    /// Connect to a checked address of `url` and send `request`; the answer's status code.
    pub async fn send(
        &self,
        url: &WebhookUrl,
        restricted: bool,
        request: &[u8],
    ) -> Result<u16, AttemptError> {
        let addrs = self.addresses(url, restricted).await?;
        let mut last: Option<std::io::Error> = None;
        let mut tcp = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            last.unwrap_or_else(|| std::io::Error::other("no address to connect to"))
        })?;
        match url.scheme {
            Scheme::Http => exchange(tcp, request).await,
            Scheme::Https => {
                let name = ServerName::try_from(url.host.trim_end_matches('.').to_string())
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                    .connect(name, tcp)
                    .await?;
                exchange(tls, request).await
            }
        }
    }
}

/// Writes the request, reads the status line.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> Result<u16, AttemptError> {
    stream.write_all(request).await?;
    stream.flush().await?;
    let status = read_status(&mut stream).await?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(AttemptError::Status(status))
    }
}

/// Reads up to the end of the status line and returns the status code.
async fn read_status<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<u16> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed before the status line"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_STATUS_LINE {
            return Err(bad("status line too long"));
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => {
            code.parse().map_err(|_| bad("bad status code"))
        }
        _ => Err(bad("not an HTTP/1.x answer")),
    }
}
