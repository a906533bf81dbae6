//! Fetching a policy file (RFC 8461 §3.3): `GET https://mta-sts.<domain>/.well-known/mta-sts.txt`
//! to the address the relay's resolver gives for `mta-sts.<domain>`, over TLS with the
//! certificate checked as the `verify` policy checks an MX (chain to `[delivery] tls_ca_file`
//! or the system's roots, valid for `mta-sts.<domain>`). Only a `200` with a `text/plain` body
//! of at most [`MAX_POLICY_BYTES`] counts: redirects are not followed (§3.3), and the whole
//! fetch has [`FETCH_TIMEOUT`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

use super::{Policy, StsError};
use crate::mx::MxResolver;

/// The path of the policy file on `mta-sts.<domain>`.
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";
/// Larger policy files are refused (RFC 8461 §3.3 lets senders cap the size; real ones are a
/// few hundred bytes).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// The longest a whole fetch (DNS, connect, TLS, request, body) may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why no policy could be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no trust roots to check https://{0}/ with (set [delivery] tls_ca_file)")]
    NoRoots(String),
    #[error("`{0}` is not a host name to ask")]
    BadName(String),
    #[error("{0}")]
    Dns(String),
    #[error("connect to {addr} failed: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS with {host} failed: {source}")]
    Tls {
        host: String,
        source: std::io::Error,
    },
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("answered HTTP {0} (only 200 counts; redirects are not followed)")]
    Status(StatusCode),
    #[error("Content-Type is {0:?}, not text/plain")]
    ContentType(String),
    #[error("policy file larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    #[error("policy file is not UTF-8")]
    NotText,
    #[error("timed out after {}s", FETCH_TIMEOUT.as_secs())]
    Timeout,
    #[error(transparent)]
    Policy(#[from] StsError),
}

/// Fetch and parse the policy of `domain` from `mta-sts.<domain>` on `port` (443 but in tests).
pub async fn fetch(
    resolver: &MxResolver,
    tls: Option<&Arc<ClientConfig>>,
    domain: &str,
    port: u16,
) -> Result<Policy, FetchError> {
    let host = format!("mta-sts.{}", domain.trim_end_matches('.'));
    let tls = tls.ok_or_else(|| FetchError::NoRoots(host.clone()))?;
    tokio::time::timeout(FETCH_TIMEOUT, fetch_from(resolver, tls, &host, port))
        .await
        .map_err(|_| FetchError::Timeout)?
}

async fn fetch_from(
    resolver: &MxResolver,
    tls: &Arc<ClientConfig>,
    host: &str,
    port: u16,
) -> Result<Policy, FetchError> {
    let ips = resolver
        .addresses(host)
        .await
        .map_err(|e| FetchError::Dns(e.to_string()))?;
    if ips.is_empty() {
        return Err(FetchError::Dns(format!("{host} has no address")));
    }
    let mut last = None;
    let mut tcp = None;
    for ip in ips {
        let addr = SocketAddr::new(ip, port);
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(source) => last = Some(FetchError::Connect { addr, source }),
        }
    }
    let Some(tcp) = tcp else {
        return Err(last.unwrap_or_else(|| FetchError::Dns(format!("{host} has no address"))));
    };
    let tls_err = |source| FetchError::Tls {
        host: host.to_string(),
        source,
    };
    let name =
        ServerName::try_from(host.to_string()).map_err(|_| FetchError::BadName(host.into()))?;
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await
        .map_err(tls_err)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let result = request(&mut sender, host).await;
    driver.abort();
    result
}

async fn request(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    host: &str,
) -> Result<Policy, FetchError> {
    let req = Request::get(POLICY_PATH)
        .header(HOST, host)
        .body(Empty::new())
        .map_err(|_| FetchError::BadName(host.into()))?;
    let resp = sender.send_request(req).await?;
    if resp.status() != StatusCode::OK {
        return Err(FetchError::Status(resp.status()));
    }
    let media = resp
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = media.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("text/plain") {
        return Err(FetchError::ContentType(media));
    }
    let body = Limited::new(resp.into_body(), MAX_POLICY_BYTES)
        .collect()
        .await
        .map_err(|e| match e.downcast::<hyper::Error>() {
            Ok(e) => FetchError::Http(*e),
            Err(_) => FetchError::TooLarge,
        })?
        .to_bytes();
    let text = std::str::from_utf8(&body).map_err(|_| FetchError::NotText)?;
    Ok(Policy::parse(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use outguard_harness::http::{Answer, Receiver};
    use outguard_harness::{DnsServer, TestCa, Zones};
    use outguard_types::config::DnsConfig;

    const GOOD: &str = "version: STSv1\nmode: enforce\nmx: mx.s.example\nmax_age: 60\n";

    /// A policy server for `mta-sts.s.example` answering `answer` with a certificate for
    /// `cert_name`, the resolver pointing there, and the client config trusting the test CA.
    async fn setup(
        cert_name: &str,
        answer: Answer,
    ) -> (Receiver, DnsServer, MxResolver, Arc<ClientConfig>) {
        let ca = TestCa::new("fetch test CA").expect("ca");
        let cert = ca.server_config(&[cert_name]).expect("cert");
        let addr = "127.0.0.1:0".parse().expect("addr");
        let server = Receiver::start_answering(addr, Some(cert), answer)
            .await
            .expect("server");
        let mut z = Zones::new();
        z.a("mta-sts.s.example", [127, 0, 0, 1].into());
        let dns = DnsServer::start(z).await.expect("dns");
        let resolver = MxResolver::new(&DnsConfig {
            resolver: Some(dns.addr()),
            ..DnsConfig::default()
        })
        .expect("resolver");
        let dir = tempfile::tempdir().expect("dir");
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, ca.pem()).expect("pem");
        let tls = crate::tls::verifying_client_config(Some(&pem)).expect("tls");
        (server, dns, resolver, tls)
    }

    async fn outcome(cert_name: &str, answer: Answer) -> Result<Policy, FetchError> {
        let (server, _dns, resolver, tls) = setup(cert_name, answer).await;
        fetch(&resolver, Some(&tls), "s.example", server.addr.port()).await
    }

    #[tokio::test]
    async fn a_policy_is_fetched_only_as_rfc_8461_allows() {
        let p = outcome("mta-sts.s.example", Answer::ok("text/plain", GOOD))
            .await
            .expect("policy");
        assert_eq!(p.mx, ["mx.s.example"]);
        let cases: Vec<(&str, Answer, &str)> = vec![
            (
                "other.example",
                Answer::ok("text/plain", GOOD),
                "not valid for name",
            ),
            (
                "mta-sts.s.example",
                Answer {
                    status: 301,
                    content_type: Some("text/plain".into()),
                    body: Vec::new(),
                },
                "answered HTTP 301",
            ),
            (
                "mta-sts.s.example",
                Answer::ok("text/html", GOOD),
                "not text/plain",
            ),
            (
                "mta-sts.s.example",
                Answer::ok("text/plain", &"x".repeat(MAX_POLICY_BYTES + 1)),
                "larger than",
            ),
            (
                "mta-sts.s.example",
                Answer::ok("text/plain", "version: STSv1\nmode: strict\n"),
                "mode is not",
            ),
        ];
        for (name, answer, why) in cases {
            let e = outcome(name, answer).await.expect_err(why);
            assert!(e.to_string().contains(why), "{why}: {e}");
        }
        let (server, _dns, resolver, _) = setup("mta-sts.s.example", Answer::default()).await;
        let e = fetch(&resolver, None, "s.example", server.addr.port())
            .await
            .expect_err("no roots");
        assert!(matches!(e, FetchError::NoRoots(_)), "{e}");
        let e = fetch(&resolver, Some(&any_tls()), "nx.example", 443)
            .await
            .expect_err("no such host");
        assert!(matches!(e, FetchError::Dns(_)), "{e}");
    }

    fn any_tls() -> Arc<ClientConfig> {
        crate::tls::opportunistic_client_config().expect("tls")
    }
}
