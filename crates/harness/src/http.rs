//! The request side of a loopback HTTP peer for tests (webhook receivers, MTA-STS policy
//! servers): read one HTTP/1.1 request (a body only with `Content-Length`) off a stream
//! ([`read_request`]; answering is the caller's), and a whole receiver ([`Receiver`]) over plain
//! TCP or TLS that answers every request alike (200 and no body, or an [`Answer`]) and reports
//! each request and each accepted connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One request as the loopback server saw it.
#[derive(Debug)]
pub struct HttpRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the whole request had arrived.
    pub at: std::time::Instant,
}

impl HttpRequest {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Read one request; `None` when the peer closed early. No `Content-Length`: no body (a GET).
pub async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<HttpRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let len: usize = match headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        Some((_, v)) => v.parse().ok()?,
        None => 0,
    };
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(HttpRequest {
        path,
        headers,
        body,
        at: std::time::Instant::now(),
    })
}

/// What a [`Receiver`] answers every request with.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Default for Answer {
    /// `200` without a body.
    fn default() -> Self {
        Answer {
            status: 200,
            content_type: None,
            body: Vec::new(),
        }
    }
}

impl Answer {
    /// `200` with `body` as `content_type`.
    pub fn ok(content_type: &str, body: &str) -> Answer {
        Answer {
            status: 200,
            content_type: Some(content_type.into()),
            body: body.as_bytes().to_vec(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            301 | 302 => "Moved",
            404 => "Not Found",
            _ => "Status",
        };
        let mut head = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        if let Some(t) = &self.content_type {
            head.push_str(&format!("Content-Type: {t}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// A loopback HTTP or HTTPS server answering `200` (or an [`Answer`]) to every request. Each request is sent on
/// [`Receiver::requests`]; TCP connections are counted whether or not a request followed (a
/// failed TLS handshake is a connection without a request). Stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: mpsc::UnboundedReceiver<HttpRequest>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Listen on `addr` (a 127.0.0.x address, port 0 for any); `tls`: speak HTTPS with it.
    pub async fn start(
        addr: SocketAddr,
        tls: Option<Arc<ServerConfig>>,
    ) -> std::io::Result<Receiver> {
        Receiver::start_answering(addr, tls, Answer::default()).await
    }

    /// [`Receiver::start`], answering every request with `answer`.
    pub async fn start_answering(
        addr: SocketAddr,
        tls: Option<Arc<ServerConfig>>,
        answer: Answer,
    ) -> std::io::Result<Receiver> {
        let answer = Arc::new(answer.bytes());
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, requests) = mpsc::unbounded_channel();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let (tx, tls, bytes) = (tx.clone(), tls.clone(), answer.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(cfg) => {
                            if let Ok(mut s) =
                                tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await
                            {
                                respond(&mut s, &bytes, &tx).await;
                            }
                        }
                        None => {
                            let mut s = stream;
                            respond(&mut s, &bytes, &tx).await;
                        }
                    }
                });
            }
        });
        Ok(Receiver {
            addr,
            requests,
            connections,
            task,
        })
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    answer: &[u8],
    tx: &mpsc::UnboundedSender<HttpRequest>,
) {
    if let Some(seen) = read_request(s).await {
        let _ = s.write_all(answer).await;
        let _ = s.flush().await;
        let _ = s.shutdown().await;
        let _ = tx.send(seen);
    }
}
