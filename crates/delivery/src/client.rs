//! One delivery attempt: connect from a pool source IP to one hop, EHLO with the pool's name,
//! opportunistic STARTTLS, MAIL, one RCPT per recipient (pipelined when offered), DATA, then
//! QUIT or, through `deliver_reusing`, parked in `reuse::IdlePool` for the next message to the
//! same hop; returns an outcome per recipient with the remote reply.
//!
//! Why our own client on smtp-proto's reply parser rather than mail-send 0.6's low-level API:
//! mail-send's `read()` parses one reply out of a 1 KiB read and drops whatever followed it in
//! the same read, so pipelined replies get lost; `rcpt_to` turns a refusal into an error rather
//! than a per-recipient value; it has no per-command timeouts; and the data path (CRLF
//! normalisation, dot-stuffing) must be ours anyway (`wire.rs`). The remaining work — a buffered
//! reply reader and a socket bound to the source IP — is small.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use outguard_types::config::TlsPolicy;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use smtp_proto::Response;
use smtp_proto::response::parser::ResponseReceiver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

use super::mx::Hop;
use super::reuse::{IdlePool, Key};

/// How one recipient fared in one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    Delivered(String),
    TempFail(String),
    PermFail(String),
}

impl RcptOutcome {
    fn from_reply(reply: &Reply) -> RcptOutcome {
        match reply.code {
            200..=299 => RcptOutcome::Delivered(reply.text()),
            500..=599 => RcptOutcome::PermFail(reply.text()),
            _ => RcptOutcome::TempFail(reply.text()),
        }
    }
}

/// A session that got far enough to talk SMTP.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub host: String,
    pub remote: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
    /// The TLS policy the session was held to.
    pub tls_policy: TlsPolicy,
    /// In the order the recipients were given.
    pub rcpts: Vec<(String, RcptOutcome)>,
}

/// The attempt failed before any recipient got an answer (try the next hop; temporary).
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("cannot bind source address {ip}: {source}")]
    Bind { ip: IpAddr, source: std::io::Error },
    #[error("connect to {addr} failed: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("{addr}: {reason}")]
    Session { addr: SocketAddr, reason: String },
    #[error("{addr}: TLS handshake failed: {reason}")]
    Tls { addr: SocketAddr, reason: String },
    /// The destination does not meet the TLS policy: nothing was sent.
    #[error("{addr}: TLS policy {}: {reason}", .policy.as_str())]
    TlsPolicy {
        addr: SocketAddr,
        policy: TlsPolicy,
        reason: String,
    },
    /// The smarthost did not take our login.
    #[error("{addr}: AUTH failed: {reason}")]
    Auth { addr: SocketAddr, reason: String },
}

/// What to send, and how.
pub struct Attempt<'a> {
    pub source_ip: IpAddr,
    pub ehlo: &'a str,
    pub hop: &'a Hop,
    /// Empty for DSNs.
    pub mail_from: &'a str,
    pub rcpts: &'a [String],
    /// Output of `wire::data_payload` (CRLF, dot-stuffed, terminated).
    pub payload: &'a [u8],
    /// Config for STARTTLS (verifying under `verify`); `None` never starts TLS.
    pub tls: Option<Arc<ClientConfig>>,
    /// `opportunistic`: plaintext when TLS is not offered; otherwise no TLS, no mail.
    pub tls_policy: TlsPolicy,
    /// Smarthost login (user, password), only ever sent inside TLS.
    pub auth: Option<(&'a str, &'a str)>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Transactions on one connection before it is closed rather than parked
    /// (`reuse::MAX_USES`, or a shaping rule's `max_messages_per_connection`).
    pub max_uses: u32,
}

#[derive(Debug, Clone)]
struct Reply {
    code: u16,
    text: String,
}

impl Reply {
    fn from_response(r: Response<String>) -> Reply {
        let msg = r.message.replace(['\r', '\n'], " ");
        let text = if r.esc[0] != 0 {
            format!("{} {}.{}.{} {}", r.code, r.esc[0], r.esc[1], r.esc[2], msg)
        } else {
            format!("{} {}", r.code, msg)
        };
        Reply { code: r.code, text }
    }

    fn text(&self) -> String {
        self.text.clone()
    }

    fn ok(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while the plain stream is handed to the TLS handshake.
    Closed,
}

/// A connection with a buffered reply reader (pipelined replies may arrive in one read).
struct Conn {
    stream: Stream,
    pending: Vec<u8>,
    parser: ResponseReceiver,
    timeout: Duration,
    addr: SocketAddr,
}

impl Conn {
    fn fail(&self, reason: impl Into<String>) -> AttemptError {
        AttemptError::Session {
            addr: self.addr,
            reason: reason.into(),
        }
    }

    async fn io_read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.stream {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Closed => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), AttemptError> {
        let fut = async {
            match &mut self.stream {
                Stream::Plain(s) => s.write_all(bytes).await,
                Stream::Tls(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await
                }
                Stream::Closed => Err(std::io::ErrorKind::NotConnected.into()),
            }
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.fail(format!("write failed: {e}"))),
            Err(_) => Err(self.fail("timeout while writing")),
        }
    }

    async fn read_reply(&mut self) -> Result<Reply, AttemptError> {
        let mut buf = [0u8; 4096];
        loop {
            if !self.pending.is_empty() {
                let data = std::mem::take(&mut self.pending);
                let mut it = data.iter();
                match self.parser.parse(&mut it) {
                    Ok(r) => {
                        self.pending = it.as_slice().to_vec();
                        self.parser.reset();
                        return Ok(Reply::from_response(r));
                    }
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => {}
                    Err(e) => return Err(self.fail(format!("unparseable reply: {e}"))),
                }
            }
            let n = match tokio::time::timeout(self.timeout, self.io_read(&mut buf)).await {
                Ok(Ok(0)) => return Err(self.fail("connection closed by remote")),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(self.fail(format!("read failed: {e}"))),
                Err(_) => return Err(self.fail("timeout waiting for reply")),
            };
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    async fn command(&mut self, line: &str) -> Result<Reply, AttemptError> {
        self.write(line.as_bytes()).await?;
        self.read_reply().await
    }
}

/// Connect from `source_ip` (bind then connect, so the remote sees the pool address).
async fn connect(
    source_ip: IpAddr,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, AttemptError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|source| AttemptError::Bind {
        ip: source_ip,
        source,
    })?;
    socket
        .bind(SocketAddr::new(source_ip, 0))
        .map_err(|source| AttemptError::Bind {
            ip: source_ip,
            source,
        })?;
    let _ = socket.set_nodelay(true);
    match tokio::time::timeout(timeout, socket.connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(AttemptError::Connect {
            addr,
            reason: e.to_string(),
        }),
        Err(_) => Err(AttemptError::Connect {
            addr,
            reason: "timeout".into(),
        }),
    }
}

struct Capabilities {
    starttls: bool,
    auth_plain: bool,
    auth_login: bool,
    pipelining: bool,
    eightbit: bool,
    smtputf8: bool,
}

fn capabilities(ehlo: &Reply) -> Capabilities {
    let has = |kw: &str| {
        ehlo.text
            .split([' ', '\n'])
            .any(|w| w.eq_ignore_ascii_case(kw))
    };
    Capabilities {
        starttls: has("STARTTLS"),
        auth_plain: has("PLAIN"),
        auth_login: has("LOGIN"),
        pipelining: has("PIPELINING"),
        eightbit: has("8BITMIME"),
        smtputf8: has("SMTPUTF8"),
    }
}

async fn greet(conn: &mut Conn, ehlo: &str) -> Result<Reply, AttemptError> {
    let reply = conn.command(&format!("EHLO {ehlo}\r\n")).await?;
    if reply.ok() {
        return Ok(reply);
    }
    let helo = conn.command(&format!("HELO {ehlo}\r\n")).await?;
    if helo.ok() {
        Ok(Reply {
            code: 250,
            text: String::new(),
        })
    } else {
        Err(conn.fail(format!("EHLO refused: {}", reply.text)))
    }
}

/// A connection past the greeting, EHLO and (when offered and wanted) STARTTLS: ready for MAIL.
pub struct Session {
    conn: Conn,
    caps: Capabilities,
    tls: bool,
    local: SocketAddr,
    /// Transactions finished on this connection.
    pub(super) used: u32,
}

impl Session {
    /// Say QUIT and close; bounded, errors ignored (the outcomes are already known).
    pub(super) async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.conn.command("QUIT\r\n")).await;
    }

    /// Nothing unread is waiting (a parked connection must not carry stray replies).
    pub(super) fn is_clean(&self) -> bool {
        self.conn.pending.is_empty()
    }
}

/// Connect, read the greeting, EHLO, and STARTTLS + EHLO again when offered and configured.
async fn open(a: &Attempt<'_>) -> Result<Session, AttemptError> {
    let addr = a.hop.addr;
    let tcp = connect(a.source_ip, addr, a.connect_timeout).await?;
    let local = tcp.local_addr().unwrap_or(SocketAddr::new(a.source_ip, 0));
    let mut conn = Conn {
        stream: Stream::Plain(tcp),
        pending: Vec::new(),
        parser: ResponseReceiver::default(),
        timeout: a.command_timeout,
        addr,
    };
    let greeting = conn.read_reply().await?;
    if !greeting.ok() {
        return Err(conn.fail(format!("greeting: {}", greeting.text)));
    }
    let mut caps = capabilities(&greet(&mut conn, a.ehlo).await?);
    let mut tls = false;
    let refuse = |reason: String| AttemptError::TlsPolicy {
        addr,
        policy: a.tls_policy,
        reason,
    };
    let must = a.tls_policy != TlsPolicy::Opportunistic;
    match (caps.starttls, a.tls.clone()) {
        (true, Some(cfg)) => {
            let reply = conn.command("STARTTLS\r\n").await?;
            if reply.ok() {
                starttls(&mut conn, a, cfg).await?;
                tls = true;
                caps = capabilities(&greet(&mut conn, a.ehlo).await?);
            } else if must {
                return Err(refuse(format!("STARTTLS refused: {}", reply.text)));
            }
        }
        (false, _) if must => return Err(refuse("STARTTLS not offered".into())),
        (true, None) if must => return Err(refuse("no TLS client configuration".into())),
        _ => {}
    }
    if let Some((user, password)) = a.auth {
        // The config refuses AUTH without a TLS policy; this is the last line.
        if !tls {
            return Err(AttemptError::Auth {
                addr,
                reason: "refusing to send a password without TLS".into(),
            });
        }
        authenticate(&mut conn, &caps, user, password).await?;
    }
    Ok(Session {
        conn,
        caps,
        tls,
        local,
        used: 0,
    })
}

/// AUTH PLAIN (RFC 4616) when offered, else AUTH LOGIN.
async fn authenticate(
    conn: &mut Conn,
    caps: &Capabilities,
    user: &str,
    password: &str,
) -> Result<(), AttemptError> {
    use base64::Engine as _;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let fail = |conn: &Conn, reason: String| AttemptError::Auth {
        addr: conn.addr,
        reason,
    };
    let reply = if caps.auth_plain {
        let token = b64(format!("\0{user}\0{password}").as_bytes());
        conn.command(&format!("AUTH PLAIN {token}\r\n")).await?
    } else if caps.auth_login {
        let r = conn.command("AUTH LOGIN\r\n").await?;
        if r.code != 334 {
            return Err(fail(conn, r.text));
        }
        let r = conn
            .command(&format!("{}\r\n", b64(user.as_bytes())))
            .await?;
        if r.code != 334 {
            return Err(fail(conn, r.text));
        }
        conn.command(&format!("{}\r\n", b64(password.as_bytes())))
            .await?
    } else {
        return Err(fail(
            conn,
            "the server offers neither AUTH PLAIN nor LOGIN".into(),
        ));
    };
    if reply.code == 235 {
        Ok(())
    } else {
        Err(fail(conn, reply.text))
    }
}

async fn starttls(
    conn: &mut Conn,
    a: &Attempt<'_>,
    cfg: Arc<ClientConfig>,
) -> Result<(), AttemptError> {
    let addr = a.hop.addr;
    let tcp = match std::mem::replace(&mut conn.stream, Stream::Closed) {
        Stream::Plain(tcp) => tcp,
        other => {
            conn.stream = other;
            return Err(AttemptError::Tls {
                addr,
                reason: "already TLS".into(),
            });
        }
    };
    let name = ServerName::try_from(a.hop.host.clone())
        .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()));
    let connector = tokio_rustls::TlsConnector::from(cfg);
    let stream = match tokio::time::timeout(a.command_timeout, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(AttemptError::Tls {
                addr,
                reason: e.to_string(),
            });
        }
        Err(_) => {
            return Err(AttemptError::Tls {
                addr,
                reason: "timeout".into(),
            });
        }
    };
    conn.stream = Stream::Tls(Box::new(stream));
    // Nothing read before the handshake may be trusted (CVE-2011-0411 class).
    conn.pending.clear();
    conn.parser = ResponseReceiver::default();
    Ok(())
}

/// One attempt at one hop on a fresh connection, closed afterwards. Per-recipient outcomes, or
/// an error if nothing was decided.
#[cfg_attr(not(test), allow(dead_code))] // the queue uses `deliver_reusing`
pub async fn deliver(a: &Attempt<'_>) -> Result<AttemptResult, AttemptError> {
    let mut s = open(a).await?;
    let (rcpts, _) = transaction(&mut s.conn, a, &s.caps, false)
        .await
        .map_err(TxnError::into_inner)?;
    Ok(finish(s, a, rcpts, None))
}

/// One attempt at one hop, on an idle connection from `pool` when there is one for this source,
/// address, host and TLS wish, else on a fresh one; a connection that ends its transaction
/// cleanly is parked in `pool` for the next message. A reused connection that dies before the
/// reply to MAIL (closed by the remote while idle, 421, timeout) decided nothing: the same
/// transaction then runs once on a fresh connection and the dead one is not counted against the
/// attempt.
pub async fn deliver_reusing(
    a: &Attempt<'_>,
    pool: &IdlePool,
) -> Result<AttemptResult, AttemptError> {
    let key = Key::of(a);
    if let Some(mut s) = pool.take(&key) {
        s.conn.timeout = a.command_timeout;
        match transaction(&mut s.conn, a, &s.caps, true).await {
            Ok((rcpts, ended)) => return Ok(finish(s, a, rcpts, ended.then_some((pool, key)))),
            Err(TxnError::Unused(e)) => {
                tracing::debug!(error = %e, "reused connection unusable; retrying on a fresh one");
            }
            Err(TxnError::Failed(e)) => return Err(e),
        }
    }
    let mut s = open(a).await?;
    let (rcpts, ended) = transaction(&mut s.conn, a, &s.caps, false)
        .await
        .map_err(TxnError::into_inner)?;
    Ok(finish(s, a, rcpts, ended.then_some((pool, key))))
}

/// The result of a finished transaction; the connection goes to `park` (when it ended cleanly
/// and reuse is on) or is closed with QUIT.
fn finish(
    mut s: Session,
    a: &Attempt<'_>,
    rcpts: Vec<(String, RcptOutcome)>,
    park: Option<(&IdlePool, Key)>,
) -> AttemptResult {
    let result = AttemptResult {
        host: a.hop.host.clone(),
        remote: a.hop.addr,
        local: s.local,
        tls: s.tls,
        tls_policy: a.tls_policy,
        rcpts,
    };
    s.used += 1;
    // The outcomes are final at the reply to the dot: hand them back now and say QUIT on the
    // side, so a crash between the remote's 250 and our spool record (which would deliver the
    // message again after restart) has no round trip of its own to land in.
    match park {
        Some((pool, key)) => pool.park(key, s, a.max_uses),
        None => {
            tokio::spawn(s.quit());
        }
    }
    result
}

/// Why a transaction produced no outcomes.
enum TxnError {
    /// Nothing was decided and the connection was a reused one: retry on a fresh connection.
    Unused(AttemptError),
    Failed(AttemptError),
}

impl TxnError {
    fn into_inner(self) -> AttemptError {
        match self {
            TxnError::Unused(e) | TxnError::Failed(e) => e,
        }
    }
}

/// MAIL and the RCPTs (pipelined when offered): the reply to MAIL and, if it was a success or
/// pipelined, one reply per recipient. On a `reused` connection a failure up to and including
/// the reply to MAIL, or a 421 there, is `TxnError::Unused`.
async fn envelope(
    conn: &mut Conn,
    a: &Attempt<'_>,
    caps: &Capabilities,
    reused: bool,
) -> Result<(Reply, Vec<Reply>), TxnError> {
    let eight = caps.eightbit && a.payload.iter().any(|b| *b >= 0x80);
    let utf8 = caps.smtputf8 && (!a.mail_from.is_ascii() || a.rcpts.iter().any(|r| !r.is_ascii()));
    // Addresses are spooled from parsed commands; strip CR/LF anyway so no command can be smuggled.
    let clean = |s: &str| s.replace(['\r', '\n', '<', '>'], "");
    let mail = format!(
        "MAIL FROM:<{}>{}{}\r\n",
        clean(a.mail_from),
        if eight { " BODY=8BITMIME" } else { "" },
        if utf8 { " SMTPUTF8" } else { "" }
    );
    let rcpt_lines: Vec<String> = a
        .rcpts
        .iter()
        .map(|r| format!("RCPT TO:<{}>\r\n", clean(r)))
        .collect();
    let early = |e: AttemptError| {
        if reused {
            TxnError::Unused(e)
        } else {
            TxnError::Failed(e)
        }
    };
    let mut first = mail.clone();
    if caps.pipelining {
        rcpt_lines.iter().for_each(|l| first.push_str(l));
    }
    conn.write(first.as_bytes()).await.map_err(early)?;
    let mail_reply = conn.read_reply().await.map_err(early)?;
    if reused && mail_reply.code == 421 {
        return Err(TxnError::Unused(
            conn.fail(format!("reused connection: {}", mail_reply.text)),
        ));
    }
    let mut replies = Vec::with_capacity(a.rcpts.len());
    if caps.pipelining {
        for _ in a.rcpts {
            replies.push(conn.read_reply().await.map_err(TxnError::Failed)?);
        }
    } else if mail_reply.ok() {
        for line in &rcpt_lines {
            replies.push(conn.command(line).await.map_err(TxnError::Failed)?);
        }
    }
    Ok((mail_reply, replies))
}

/// MAIL, RCPTs, DATA. Outcomes per recipient, and whether the connection ended the
/// transaction in a known clean state (reply to the dot, or RSET accepted; never after a 421),
/// so it can carry another one.
async fn transaction(
    conn: &mut Conn,
    a: &Attempt<'_>,
    caps: &Capabilities,
    reused: bool,
) -> Result<(Vec<(String, RcptOutcome)>, bool), TxnError> {
    let (mail_reply, rcpt_replies) = envelope(conn, a, caps, reused).await?;
    let saw_421 = mail_reply.code == 421 || rcpt_replies.iter().any(|r| r.code == 421);
    if !mail_reply.ok() {
        let outcome = RcptOutcome::from_reply(&mail_reply);
        let clean = reset(conn).await && !saw_421;
        let out = a.rcpts.iter().map(|r| (r.clone(), outcome.clone()));
        return Ok((out.collect(), clean));
    }
    let mut out: Vec<(String, RcptOutcome)> = a
        .rcpts
        .iter()
        .zip(&rcpt_replies)
        .map(|(r, rep)| (r.clone(), RcptOutcome::from_reply(rep)))
        .collect();
    if !out
        .iter()
        .any(|(_, o)| matches!(o, RcptOutcome::Delivered(_)))
    {
        let clean = reset(conn).await && !saw_421;
        return Ok((out, clean));
    }
    let go = conn.command("DATA\r\n").await.map_err(TxnError::Failed)?;
    let (final_reply, clean) = if go.code == 354 {
        conn.write(a.payload).await.map_err(TxnError::Failed)?;
        let r = conn.read_reply().await.map_err(TxnError::Failed)?;
        let clean = r.code != 421 && !saw_421;
        (r, clean)
    } else {
        (go, false)
    };
    for (_, o) in out.iter_mut() {
        if matches!(o, RcptOutcome::Delivered(_)) {
            *o = RcptOutcome::from_reply(&final_reply);
        }
    }
    Ok((out, clean))
}

/// RSET after a transaction that did not reach DATA; true when the remote accepted it.
async fn reset(conn: &mut Conn) -> bool {
    matches!(conn.command("RSET\r\n").await, Ok(r) if r.ok())
}
