//! A real SMTP server for tests: it records every message it accepts together with the peer
//! (source) address of the connection, the EHLO name, the envelope, the data (dot-unstuffed) and
//! the raw bytes seen on the wire, and whether TLS was in use. Replies can be scripted: fail the
//! first N transactions, throttle transactions N to N+M, refuse given recipients or every recipient, or refuse at end of data.
//! Parsing is smtp-proto's (`RequestReceiver`, `DataReceiver`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::ServerConfig;
use smtp_proto::Request;
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One SMTP reply: `code` and text (the enhanced status code, if any, goes in the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn new(code: u16, text: &str) -> Reply {
        Reply {
            code,
            text: text.to_string(),
        }
    }

    fn line(&self) -> String {
        format!("{} {}\r\n", self.code, self.text)
    }
}

/// Scripted answers. Default: accept everything.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The first `n` transactions (counted at MAIL FROM, over all connections) get this reply
    /// to MAIL FROM.
    pub fail_first: Option<(u32, Reply)>,
    /// `(after, times, reply)`: transactions number `after` to `after + times - 1` (counted
    /// like `fail_first`, from 0) get this reply to MAIL FROM — a receiver that starts
    /// throttling after `after` messages and recovers.
    pub throttle: Option<(u32, u32, Reply)>,
    /// Replies to RCPT TO for given (lowercased) addresses.
    pub rcpt: HashMap<String, Reply>,
    /// Reply to every other RCPT TO.
    pub every_rcpt: Option<Reply>,
    /// Reply at end of data instead of `250`.
    pub data: Option<Reply>,
}

impl Script {
    pub fn fail_first(n: u32, reply: Reply) -> Script {
        Script {
            fail_first: Some((n, reply)),
            ..Script::default()
        }
    }

    /// Accept `after` transactions, refuse the next `times` with `reply`, then accept again.
    pub fn throttle_after(after: u32, times: u32, reply: Reply) -> Script {
        Script {
            throttle: Some((after, times, reply)),
            ..Script::default()
        }
    }

    pub fn refuse_rcpt(mut self, rcpt: &str, reply: Reply) -> Script {
        self.rcpt.insert(rcpt.to_ascii_lowercase(), reply);
        self
    }
}

#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Name in the greeting and EHLO reply (and the certificate).
    pub hostname: String,
    /// Offer STARTTLS with a self-signed certificate.
    pub starttls: bool,
    pub script: Script,
    /// Close a connection that sends nothing for this long (like a remote's idle timeout).
    pub idle_close: Option<Duration>,
    /// The certificate STARTTLS presents (e.g. `TestCa::server_config`); implies `starttls`.
    pub tls_config: Option<Arc<ServerConfig>>,
    /// Demand `AUTH PLAIN` (or LOGIN, `auth_login_only`) with this user and password before MAIL (offered only inside TLS,
    /// when TLS is offered at all), like a smarthost.
    pub auth: Option<(String, String)>,
    /// Offer `AUTH LOGIN` (RFC 4954 §4, the 334 challenge dance) instead of `AUTH PLAIN`, as
    /// some ISP relays still do.
    pub auth_login_only: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            hostname: "sink.test".into(),
            starttls: false,
            script: Script::default(),
            idle_close: None,
            tls_config: None,
            auth: None,
            auth_login_only: false,
        }
    }
}

/// A message the sink accepted (or refused at end of data: see `accepted`).
#[derive(Debug, Clone)]
pub struct Received {
    /// The client's address: its IP is the delivering relay's source IP.
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub ehlo: String,
    pub mail_from: String,
    /// Only the recipients that were accepted.
    pub rcpts: Vec<String>,
    /// Dot-unstuffed data without the final `.` line.
    pub data: Vec<u8>,
    /// The DATA bytes exactly as they came over the wire, including the final `.\r\n`.
    pub raw: Vec<u8>,
    pub tls: bool,
    /// The user that authenticated on this connection, if any.
    pub auth: Option<String>,
}

struct Shared {
    hostname: String,
    tls: Option<Arc<ServerConfig>>,
    script: Mutex<Script>,
    transactions: AtomicU32,
    messages: Mutex<Vec<Received>>,
    count: watch::Sender<usize>,
    peers: Mutex<Vec<SocketAddr>>,
    idle_close: Option<Duration>,
    /// Connections open now, and the most ever open at once.
    open: AtomicUsize,
    peak: AtomicUsize,
    auth: Option<(String, String)>,
    auth_login_only: bool,
}

/// A running sink; stops accepting when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SmtpSink {
    /// A sink that accepts everything, without STARTTLS, at `addr` (e.g. `127.0.0.2:0`).
    pub async fn start(addr: impl ToSocketAddrs) -> std::io::Result<SmtpSink> {
        SmtpSink::start_with(addr, SinkOptions::default()).await
    }

    pub async fn start_with(
        addr: impl ToSocketAddrs,
        opts: SinkOptions,
    ) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let tls = if let Some(cfg) = opts.tls_config {
            Some(cfg)
        } else if opts.starttls {
            Some(crate::tls::self_signed_config(&opts.hostname).map_err(std::io::Error::other)?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            hostname: opts.hostname,
            tls,
            script: Mutex::new(opts.script),
            transactions: AtomicU32::new(0),
            messages: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
            peers: Mutex::new(Vec::new()),
            idle_close: opts.idle_close,
            open: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            auth: opts.auth,
            auth_login_only: opts.auth_login_only,
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                lock(&s.peers).push(peer);
                let now = s.open.fetch_add(1, Ordering::SeqCst) + 1;
                s.peak.fetch_max(now, Ordering::SeqCst);
                let s = s.clone();
                tokio::spawn(async move {
                    connection(stream, peer, s.clone()).await;
                    s.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(SmtpSink { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replace the reply script (takes effect for the next command).
    pub fn set_script(&self, script: Script) {
        *lock(&self.shared.script) = script;
    }

    /// Every message accepted so far.
    pub fn messages(&self) -> Vec<Received> {
        lock(&self.shared.messages).clone()
    }

    /// Peer addresses of every connection so far.
    pub fn connections(&self) -> Vec<SocketAddr> {
        lock(&self.shared.peers).clone()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// The most connections that were ever open at the same time.
    pub fn peak_connections(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    /// Transactions started (MAIL FROM commands seen).
    pub fn transactions(&self) -> u32 {
        self.shared.transactions.load(Ordering::SeqCst)
    }

    /// Wait until at least `n` messages were accepted; returns them, or what there is at timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let mut rx = self.shared.count.subscribe();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await;
        self.messages()
    }
}

async fn connection(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let local = stream.local_addr().unwrap_or(peer);
    let greeting = format!("220 {} ESMTP test sink\r\n", shared.hostname);
    if stream.write_all(greeting.as_bytes()).await.is_err() {
        return;
    }
    let mut s = Session {
        shared: shared.clone(),
        peer,
        local,
        tls: false,
        ehlo: String::new(),
        authed: None,
        login: None,
        line: Vec::new(),
    };
    let Ok(Outcome::StartTls) = s.run(&mut stream).await else {
        return;
    };
    let Some(cfg) = shared.tls.clone() else {
        return;
    };
    let Ok(mut tls) = tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await else {
        return;
    };
    s.tls = true;
    s.ehlo.clear();
    let _ = s.run(&mut tls).await;
}

enum Outcome {
    Closed,
    StartTls,
}

#[derive(Default)]
struct Txn {
    mail_from: Option<String>,
    rcpts: Vec<String>,
}

struct Data {
    rx: DataReceiver,
    body: Vec<u8>,
    raw: Vec<u8>,
}

struct Session {
    shared: Arc<Shared>,
    peer: SocketAddr,
    local: SocketAddr,
    tls: bool,
    ehlo: String,
    authed: Option<String>,
    /// Inside `AUTH LOGIN`: the next line answers this challenge (not a command).
    login: Option<LoginStep>,
    /// The part of an `AUTH LOGIN` answer line read so far.
    line: Vec<u8>,
}

/// Where an `AUTH LOGIN` exchange is.
enum LoginStep {
    User,
    Password(String),
}

impl Session {
    /// AUTH is offered once the connection is as private as it will get.
    fn auth_offered(&self) -> bool {
        self.shared.auth.is_some() && (self.tls || self.shared.tls.is_none())
    }

    /// `AUTH PLAIN <initial response>` checked against the demanded user and password.
    fn auth(&mut self, mechanism: u64, initial: &str) -> &'static str {
        use base64::Engine as _;
        let Some((user, password)) = self.shared.auth.clone() else {
            return "502 5.5.1 Not implemented\r\n";
        };
        if !self.auth_offered() {
            return "538 5.7.11 Encryption required for requested authentication mechanism\r\n";
        }
        let offered = if self.shared.auth_login_only {
            smtp_proto::AUTH_LOGIN
        } else {
            smtp_proto::AUTH_PLAIN
        };
        if mechanism != offered {
            return "504 5.5.4 Unrecognized authentication type\r\n";
        }
        if mechanism == smtp_proto::AUTH_LOGIN {
            if initial.trim().is_empty() {
                self.login = Some(LoginStep::User);
                return "334 VXNlcm5hbWU6\r\n";
            }
            return self.login_line(initial.as_bytes());
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(initial.trim())
            .unwrap_or_default();
        let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
        match parts.as_slice() {
            [_, u, p] if *u == user.as_bytes() && *p == password.as_bytes() => {
                self.authed = Some(user);
                "235 2.7.0 Authentication successful\r\n"
            }
            _ => "535 5.7.8 Authentication credentials invalid\r\n",
        }
    }

    /// One base64 line answering an `AUTH LOGIN` challenge (the user first, then the password).
    fn login_line(&mut self, line: &[u8]) -> &'static str {
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(line.trim_ascii())
            .ok()
            .and_then(|d| String::from_utf8(d).ok());
        let Some(text) = decoded else {
            self.login = None;
            return "501 5.5.2 Cannot decode response\r\n";
        };
        match self.login.take() {
            None | Some(LoginStep::User) => {
                self.login = Some(LoginStep::Password(text));
                "334 UGFzc3dvcmQ6\r\n"
            }
            Some(LoginStep::Password(user)) => match &self.shared.auth {
                Some((u, p)) if *u == user && *p == text => {
                    self.authed = Some(user);
                    "235 2.7.0 Authentication successful\r\n"
                }
                _ => "535 5.7.8 Authentication credentials invalid\r\n",
            },
        }
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
    ) -> std::io::Result<Outcome> {
        let mut buf = vec![0u8; 16 * 1024];
        let mut requests = RequestReceiver::default();
        let mut txn = Txn::default();
        let mut data: Option<Data> = None;
        loop {
            let n = match self.shared.idle_close {
                Some(idle) => match tokio::time::timeout(idle, io.read(&mut buf)).await {
                    Ok(n) => n?,
                    Err(_) => return Ok(Outcome::Closed),
                },
                None => io.read(&mut buf).await?,
            };
            if n == 0 {
                return Ok(Outcome::Closed);
            }
            let mut iter = buf[..n].iter();
            let mut out = String::new();
            loop {
                if let Some(d) = data.as_mut() {
                    let start = iter.as_slice();
                    let done = d.rx.ingest(&mut iter, &mut d.body);
                    let used = start.len() - iter.as_slice().len();
                    d.raw.extend_from_slice(&start[..used]);
                    if !done {
                        break;
                    }
                    if let Some(d) = data.take() {
                        out.push_str(&self.end_of_data(&mut txn, d));
                    }
                    continue;
                }
                if self.login.is_some() {
                    let rest = iter.as_slice();
                    let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                        self.line.extend_from_slice(rest);
                        break;
                    };
                    self.line.extend_from_slice(&rest[..end]);
                    iter = rest[end + 1..].iter();
                    let line = std::mem::take(&mut self.line);
                    out.push_str(self.login_line(&line));
                    continue;
                }
                let req = match requests.ingest(&mut iter) {
                    Ok(req) => req.into_owned(),
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                    Err(_) => {
                        out.push_str("500 5.5.2 Syntax error\r\n");
                        continue;
                    }
                };
                match self.command(req, &mut txn, &mut out) {
                    Next::Continue => {}
                    Next::Data => {
                        data = Some(Data {
                            rx: DataReceiver::new(),
                            body: Vec::new(),
                            raw: Vec::new(),
                        })
                    }
                    Next::StartTls => {
                        io.write_all(out.as_bytes()).await?;
                        // Anything pipelined after STARTTLS is discarded (CVE-2011-0411 class).
                        return Ok(Outcome::StartTls);
                    }
                    Next::Quit => {
                        io.write_all(out.as_bytes()).await?;
                        return Ok(Outcome::Closed);
                    }
                }
            }
            if !out.is_empty() {
                io.write_all(out.as_bytes()).await?;
            }
        }
    }

    fn command(&mut self, req: Request<String>, txn: &mut Txn, out: &mut String) -> Next {
        let script = lock(&self.shared.script).clone();
        match req {
            Request::Ehlo { host } | Request::Helo { host } => {
                self.ehlo = host;
                *txn = Txn::default();
                out.push_str(&format!(
                    "250-{}\r\n250-PIPELINING\r\n250-8BITMIME\r\n",
                    self.shared.hostname
                ));
                if self.shared.tls.is_some() && !self.tls {
                    out.push_str("250-STARTTLS\r\n");
                }
                if self.auth_offered() {
                    out.push_str(if self.shared.auth_login_only {
                        "250-AUTH LOGIN\r\n"
                    } else {
                        "250-AUTH PLAIN\r\n"
                    });
                }
                out.push_str("250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n");
            }
            Request::StartTls if self.shared.tls.is_some() && !self.tls => {
                out.push_str("220 2.0.0 Ready to start TLS\r\n");
                return Next::StartTls;
            }
            Request::Auth {
                mechanism,
                initial_response,
            } => out.push_str(self.auth(mechanism, &initial_response)),
            Request::Mail { .. } if self.shared.auth.is_some() && self.authed.is_none() => {
                out.push_str("530 5.7.0 Authentication required\r\n");
            }
            Request::Mail { from } => {
                let nth = self.shared.transactions.fetch_add(1, Ordering::SeqCst);
                let throttled = match &script.throttle {
                    Some((after, times, reply))
                        if (*after..after.saturating_add(*times)).contains(&nth) =>
                    {
                        Some(reply.clone())
                    }
                    _ => None,
                };
                match (script.fail_first, throttled) {
                    (Some((n, reply)), _) if nth < n => out.push_str(&reply.line()),
                    (_, Some(reply)) => out.push_str(&reply.line()),
                    _ => {
                        *txn = Txn {
                            mail_from: Some(from.address),
                            rcpts: Vec::new(),
                        };
                        out.push_str("250 2.1.0 Ok\r\n");
                    }
                }
            }
            Request::Rcpt { to } => {
                let scripted = script
                    .rcpt
                    .get(&to.address.to_ascii_lowercase())
                    .or(script.every_rcpt.as_ref());
                match (txn.mail_from.is_some(), scripted) {
                    (false, _) => out.push_str("503 5.5.1 MAIL first\r\n"),
                    (true, Some(reply)) => out.push_str(&reply.line()),
                    (true, None) => {
                        txn.rcpts.push(to.address);
                        out.push_str("250 2.1.5 Ok\r\n");
                    }
                }
            }
            Request::Data if txn.mail_from.is_some() && !txn.rcpts.is_empty() => {
                out.push_str("354 End data with <CR><LF>.<CR><LF>\r\n");
                return Next::Data;
            }
            Request::Data => out.push_str("554 5.5.1 No valid recipients\r\n"),
            Request::Rset => {
                *txn = Txn::default();
                out.push_str("250 2.0.0 Ok\r\n");
            }
            Request::Noop { .. } => out.push_str("250 2.0.0 Ok\r\n"),
            Request::Quit => {
                out.push_str("221 2.0.0 Bye\r\n");
                return Next::Quit;
            }
            _ => out.push_str("502 5.5.1 Not implemented\r\n"),
        }
        Next::Continue
    }

    fn end_of_data(&mut self, txn: &mut Txn, d: Data) -> String {
        let script = lock(&self.shared.script).clone();
        let taken = std::mem::take(txn);
        if let Some(reply) = script.data {
            return reply.line();
        }
        let msg = Received {
            peer: self.peer,
            local: self.local,
            ehlo: self.ehlo.clone(),
            mail_from: taken.mail_from.unwrap_or_default(),
            rcpts: taken.rcpts,
            data: d.body,
            raw: d.raw,
            tls: self.tls,
            auth: self.authed.clone(),
        };
        let n = {
            let mut all = lock(&self.shared.messages);
            all.push(msg);
            all.len()
        };
        self.shared.count.send_replace(n);
        "250 2.0.0 Ok: queued\r\n".to_string()
    }
}

enum Next {
    Continue,
    Data,
    StartTls,
    Quit,
}
