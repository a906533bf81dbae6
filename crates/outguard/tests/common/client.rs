//! A small line-based SMTP client for tests: exact replies, raw bytes when a test needs to be
//! hostile; over plain TCP or the implicit-TLS `submissions` listener.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// A byte stream the client can speak over: TCP, or TLS on top of it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Client {
    r: BufReader<Box<dyn Io>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> (Client, String) {
        let s = TcpStream::connect(addr).await.expect("connect");
        Client::greeted(s).await
    }

    /// Connect to an implicit-TLS listener, trusting the relay's certificate at `root` (its
    /// self-signed `data/tls/selfsigned.crt`) for the name `relay.outguard.test`.
    pub async fn connect_tls(addr: SocketAddr, root: &Path) -> (Client, String) {
        Client::try_connect_tls(addr, root)
            .await
            .expect("tls handshake")
    }

    /// [`Client::connect_tls`] that returns a failed handshake instead of panicking.
    pub async fn try_connect_tls(
        addr: SocketAddr,
        root: &Path,
    ) -> std::io::Result<(Client, String)> {
        use rustls_pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(root).expect("relay certificate");
        for c in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(c.expect("pem")).expect("root");
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from("relay.outguard.test").expect("name");
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await?;
        Ok(Client::greeted(tls).await)
    }

    async fn greeted(s: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) -> (Client, String) {
        let mut c = Client {
            r: BufReader::new(Box::new(s)),
        };
        let greet = c.reply().await;
        (c, greet)
    }

    /// Connect from a chosen source address (any 127.0.0.x on loopback): tests that need
    /// several clients' addresses.
    pub async fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> (Client, String) {
        Client::greeted(tcp_from(addr, source).await).await
    }

    /// One whole reply (all lines), joined with '\n'.
    pub async fn reply(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(20), self.r.read_line(&mut line))
                .await
                .expect("reply timeout")
                .or_else(|e| match e.kind() {
                    // A TLS peer that hung up without close_notify: closed, as for TCP.
                    std::io::ErrorKind::UnexpectedEof => Ok(0),
                    _ => Err(e),
                })
                .expect("read");
            if n == 0 {
                out.push("<closed>".to_string());
                break;
            }
            let l = line.trim_end().to_string();
            let last = l.len() < 4 || l.as_bytes()[3] == b' ';
            out.push(l);
            if last {
                break;
            }
        }
        out.join("\n")
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let w = self.r.get_mut();
        w.write_all(bytes).await.expect("write");
        w.flush().await.expect("flush"); // TLS holds bytes until flushed
    }

    pub async fn cmd(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    pub async fn auth_plain(&mut self, user: &str, pass: &str) -> String {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"));
        self.cmd(&format!("AUTH PLAIN {b}")).await
    }

    /// EHLO, AUTH (when given), MAIL, RCPTs, DATA; returns the reply to the final dot (or the
    /// first refusal).
    pub async fn send_mail(
        addr: SocketAddr,
        auth: Option<(&str, &str)>,
        from: &str,
        rcpts: &[&str],
        data: &str,
    ) -> String {
        let (c, _) = Client::connect(addr).await;
        c.transaction(auth, from, rcpts, data).await
    }

    /// `send_mail` over implicit TLS (see [`Client::connect_tls`]).
    pub async fn send_mail_tls(
        addr: SocketAddr,
        root: &Path,
        auth: Option<(&str, &str)>,
        from: &str,
        rcpts: &[&str],
        data: &str,
    ) -> String {
        let (c, _) = Client::connect_tls(addr, root).await;
        c.transaction(auth, from, rcpts, data).await
    }

    /// `send_mail` from a chosen source address.
    pub async fn send_mail_from(
        src: std::net::IpAddr,
        addr: SocketAddr,
        from: &str,
        rcpts: &[&str],
        data: &str,
    ) -> String {
        let (c, _) = Client::connect_from(addr, src).await;
        c.transaction(None, from, rcpts, data).await
    }

    /// `send_mail` with AUTH from a chosen source address (any 127.x.y.z on loopback): one
    /// account seen from many networks.
    pub async fn send_mail_auth_from(
        src: std::net::IpAddr,
        addr: SocketAddr,
        auth: (&str, &str),
        from: &str,
        rcpts: &[&str],
        data: &str,
    ) -> String {
        let (c, _) = Client::connect_from(addr, src).await;
        c.transaction(Some(auth), from, rcpts, data).await
    }

    async fn transaction(
        mut self,
        auth: Option<(&str, &str)>,
        from: &str,
        rcpts: &[&str],
        data: &str,
    ) -> String {
        let c = &mut self;
        c.cmd("EHLO client.test").await;
        if let Some((u, p)) = auth {
            let r = c.auth_plain(u, p).await;
            if !r.starts_with("235") {
                return r;
            }
        }
        let r = c.cmd(&format!("MAIL FROM:<{from}>")).await;
        if !r.starts_with("250") {
            return r;
        }
        for to in rcpts {
            let r = c.cmd(&format!("RCPT TO:<{to}>")).await;
            if !r.starts_with("250") {
                return r;
            }
        }
        let r = c.cmd("DATA").await;
        if !r.starts_with("354") {
            return r;
        }
        c.send_raw(data.as_bytes()).await;
        let r = c.cmd(".").await;
        c.cmd("QUIT").await;
        r
    }
}

pub fn queued_id(reply: &str) -> String {
    reply.rsplit(' ').next().expect("id").to_string()
}

/// A TCP connection to `addr` from `source` (port chosen by the OS).
pub async fn tcp_from(addr: SocketAddr, source: std::net::IpAddr) -> TcpStream {
    let sock = if source.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .expect("socket");
    sock.bind(SocketAddr::new(source, 0)).expect("bind source");
    sock.connect(addr).await.expect("connect")
}
