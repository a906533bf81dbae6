//! Alert webhooks (SPEC §3, config `[[webhooks]] url, secret, kinds`): each alert is POSTed as
//! JSON to every webhook whose `kinds` is empty or names the alert's kind, signed with
//! `X-Outguard-Signature: sha256=<hex HMAC-SHA256(secret, body)>` plus `X-Outguard-Timestamp`
//! (Unix seconds of the attempt). A failed attempt (network error, timeout, non-2xx) is retried
//! after 1 s, 5 s, 30 s, 2 min and 10 min, then dropped with an error log: the alert itself is
//! in the store either way.
//!
//! [`Webhooks::send`] never blocks the caller: it queues on a bounded channel for one sender
//! task. The task keeps at most [`MAX_PENDING`] deliveries waiting (newer ones are dropped with
//! a warning when full), runs at most [`MAX_INFLIGHT`] attempts at a time, and ends when
//! [`Webhooks::close`] is called or the handle is dropped (pending retries are abandoned).
//!
//! Targets are the config's webhooks plus the store's subscriptions (`/api/v1/webhooks`): a
//! stored one names a tenant (only that tenant's alerts) or none (every alert). The stored list
//! is cached and reloaded when the store's `webhooks_version` moves (polled every second, and at
//! once after a change through this node's API), so every node follows within about a second.
//!
//! The client is a minimal HTTP/1.1 one on tokio (`Connection: close`, status line read only),
//! `http://` only: an `https://` webhook is reported at start and skipped (no root store in the
//! workspace yet).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use outguard_policy::{Alert, AlertKind};
use outguard_store::{Store, StoreError, StoredWebhook};
use outguard_types::config::WebhookConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Delays before the 2nd, 3rd, … attempt.
pub const RETRY_SCHEDULE: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
];
/// Deliveries waiting (queued or between retries) before new ones are dropped.
pub const MAX_PENDING: usize = 10_000;
/// Attempts running at once.
pub const MAX_INFLIGHT: usize = 8;
const CHANNEL: usize = 1024;
/// Connect + write + read of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_STATUS_LINE: usize = 8 * 1024;
/// How often each node polls the store's webhook version.
pub const STORE_POLL: Duration = Duration::from_secs(1);

/// A parsed `http://host[:port]/path` target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("webhook {url}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("webhook {url}: bad IPv6 host"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("webhook {url}: bad port `{p}`"))?,
            None => 80,
        };
        let bad = |c: char| c.is_whitespace() || c.is_control();
        if host.is_empty() || host.contains(bad) || path.contains(bad) || authority.contains('@') {
            return Err(format!("webhook {url}: bad host or path"));
        }
        Ok(Target { host, port, path })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Whether `url` is one the sender can post to (`http://host[:port][/path]`); the error says
/// why not. The API checks subscriptions with it before storing them.
pub fn check_url(url: &str) -> Result<(), String> {
    let t = Target::parse(url)?;
    let host_ok = t.host.parse::<std::net::IpAddr>().is_ok()
        || t.host.eq_ignore_ascii_case("localhost")
        || outguard_types::config::valid_dns_name(&t.host);
    if host_ok && t.port != 0 {
        Ok(())
    } else {
        Err(format!(
            "webhook {url}: `{}` is not a valid host name or IP address",
            t.host
        ))
    }
}

struct Hook {
    url: String,
    target: Target,
    secret: Vec<u8>,
    /// Empty: every kind.
    kinds: Vec<String>,
    /// `Some`: only this tenant's alerts (stored subscriptions); `None`: every alert.
    tenant: Option<String>,
}

impl Hook {
    fn parse(url: &str, secret: &str, kinds: &[String], tenant: Option<&str>) -> Option<Hook> {
        match Target::parse(url) {
            Ok(target) => Some(Hook {
                url: url.to_string(),
                target,
                secret: secret.as_bytes().to_vec(),
                kinds: kinds.to_vec(),
                tenant: tenant.map(str::to_string),
            }),
            Err(e) => {
                tracing::error!(error = %e, "webhook skipped");
                None
            }
        }
    }

    fn wants(&self, alert: &Alert) -> bool {
        let kind_ok = self.kinds.is_empty() || self.kinds.iter().any(|k| k == alert.kind.as_str());
        let tenant_ok = self.tenant.is_none() || self.tenant.as_deref() == alert.tenant.as_deref();
        kind_ok && tenant_ok
    }
}

/// `sha256=<hex>` of HMAC-SHA256(secret, body).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret) else {
        return String::new(); // HMAC takes keys of any length; not reached.
    };
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

struct Job {
    hook: Arc<Hook>,
    body: Arc<Vec<u8>>,
    kind: AlertKind,
    /// Attempts made so far.
    attempts: usize,
}

/// Handle to the webhook sender task. Cheap to keep in the relay; [`Webhooks::send`] is sync.
pub struct Webhooks {
    tx: Option<mpsc::Sender<Job>>,
    hooks: Vec<Arc<Hook>>,
    stored: Option<Arc<StoredHooks>>,
    stop: watch::Sender<bool>,
}

/// The store's subscriptions as last loaded, and the version they were loaded at.
struct StoredHooks {
    store: Store,
    /// Held across a reload so two reloads do not interleave.
    version: tokio::sync::Mutex<Option<i64>>,
    hooks: std::sync::RwLock<Arc<Vec<Arc<Hook>>>>,
}

impl StoredHooks {
    fn snapshot(&self) -> Arc<Vec<Arc<Hook>>> {
        self.hooks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reloads the list when the version moved (or always, with `force`).
    async fn refresh(&self, force: bool) -> Result<(), StoreError> {
        let mut seen = self.version.lock().await;
        let now = self.store.webhooks_version().await?;
        if !force && *seen == Some(now) {
            return Ok(());
        }
        let list: Vec<StoredWebhook> = self.store.list_webhooks(None).await?;
        let hooks: Vec<Arc<Hook>> = list
            .iter()
            .filter_map(|w| Hook::parse(&w.url, &w.secret, &w.kinds, w.tenant.as_deref()))
            .map(Arc::new)
            .collect();
        tracing::debug!(version = now, count = hooks.len(), "stored webhooks loaded");
        *self.hooks.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(hooks);
        *seen = Some(now);
        Ok(())
    }
}

/// Polls the store's webhook version until stopped.
async fn poll_store(stored: Arc<StoredHooks>, mut stopped: watch::Receiver<bool>) {
    loop {
        if let Err(e) = stored.refresh(false).await {
            tracing::warn!(error = %e, "cannot reload stored webhooks; keeping the last list");
        }
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(STORE_POLL) => {}
        }
    }
}

impl Webhooks {
    /// Webhooks from the config only (no store), with the standard retry schedule. Starts the
    /// sender task on the current tokio runtime when at least one usable webhook is configured.
    #[cfg(test)]
    pub fn new(configs: &[WebhookConfig]) -> Webhooks {
        Webhooks::build(configs, None, RETRY_SCHEDULE.to_vec())
    }

    /// Config webhooks plus the store's subscriptions (kept in step with the store). The sender
    /// task always starts, since subscriptions can be added at any time.
    pub fn with_store(configs: &[WebhookConfig], store: Store) -> Webhooks {
        Webhooks::build(configs, Some(store), RETRY_SCHEDULE.to_vec())
    }

    /// Like [`Webhooks::new`] with another retry schedule (tests use milliseconds).
    #[cfg(test)]
    pub fn with_schedule(configs: &[WebhookConfig], schedule: Vec<Duration>) -> Webhooks {
        Webhooks::build(configs, None, schedule)
    }

    fn build(configs: &[WebhookConfig], store: Option<Store>, schedule: Vec<Duration>) -> Webhooks {
        let hooks: Vec<Arc<Hook>> = configs
            .iter()
            .filter_map(|c| Hook::parse(&c.url, &c.secret, &c.kinds, None))
            .map(Arc::new)
            .collect();
        let stored = store.map(|store| {
            Arc::new(StoredHooks {
                store,
                version: tokio::sync::Mutex::new(None),
                hooks: std::sync::RwLock::new(Arc::new(Vec::new())),
            })
        });
        let (stop, stopped) = watch::channel(false);
        let mut tx = None;
        if !hooks.is_empty() || stored.is_some() {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let (sender, rx) = mpsc::channel(CHANNEL);
                    rt.spawn(run(rx, stopped.clone(), schedule));
                    if let Some(stored) = &stored {
                        rt.spawn(poll_store(stored.clone(), stopped));
                    }
                    tx = Some(sender);
                }
                Err(_) => tracing::error!("webhooks configured but no async runtime: disabled"),
            }
        }
        Webhooks {
            tx,
            hooks,
            stored,
            stop,
        }
    }

    /// Reloads the stored subscriptions now (after a change through this node's API, so the
    /// change holds here before the call returns; other nodes follow on their next poll).
    pub async fn reload(&self) -> Result<(), StoreError> {
        match &self.stored {
            Some(stored) => stored.refresh(true).await,
            None => Ok(()),
        }
    }

    /// Queue `alert` for every webhook that wants its kind. Never blocks; a full queue drops
    /// the delivery with a warning (the alert stays in the store).
    pub fn send(&self, alert: &Alert) {
        let Some(tx) = &self.tx else { return };
        let body = match serde_json::to_vec(alert) {
            Ok(b) => Arc::new(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode alert for webhooks");
                return;
            }
        };
        let stored = self.stored.as_ref().map(|s| s.snapshot());
        let all = self
            .hooks
            .iter()
            .chain(stored.iter().flat_map(|s| s.iter()));
        for hook in all {
            if !hook.wants(alert) {
                continue;
            }
            let job = Job {
                hook: hook.clone(),
                body: body.clone(),
                kind: alert.kind,
                attempts: 0,
            };
            if tx.try_send(job).is_err() {
                tracing::warn!(url = %hook.url, kind = alert.kind.as_str(), "webhook queue full or closed; delivery dropped");
            }
        }
    }

    /// Stop the sender task (pending retries are abandoned). Idempotent.
    pub fn close(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.close();
    }
}

/// A delivery waiting for its time; ordered by due time, then arrival.
struct Pending {
    due: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

/// The sender task: a timer heap of due deliveries, a bounded set of running attempts.
async fn run(
    mut rx: mpsc::Receiver<Job>,
    mut stopped: watch::Receiver<bool>,
    schedule: Vec<Duration>,
) {
    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut running: JoinSet<(Job, Result<u16, String>)> = JoinSet::new();
    let mut seq = 0u64;
    let mut open = true;
    loop {
        // Start whatever is due, up to the concurrency bound.
        let now = Instant::now();
        while running.len() < MAX_INFLIGHT && heap.peek().is_some_and(|Reverse(p)| p.due <= now) {
            let Some(Reverse(p)) = heap.pop() else { break };
            running.spawn(async move {
                let result = attempt(&p.job.hook, &p.job).await;
                (p.job, result)
            });
        }
        if !open && heap.is_empty() && running.is_empty() {
            return;
        }
        let next_due = heap
            .peek()
            .filter(|_| running.len() < MAX_INFLIGHT)
            .map(|Reverse(p)| p.due);
        tokio::select! {
            _ = stopped.wait_for(|s| *s) => return,
            job = rx.recv(), if open => match job {
                Some(job) if heap.len() + running.len() < MAX_PENDING => {
                    seq += 1;
                    heap.push(Reverse(Pending { due: Instant::now(), seq, job }));
                }
                Some(job) => tracing::warn!(url = %job.hook.url, "webhook backlog full; delivery dropped"),
                None => open = false,
            },
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now)), if next_due.is_some() => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                let Ok((mut job, result)) = done else { continue };
                let hook = job.hook.clone();
                job.attempts += 1;
                match result {
                    Ok(status) => tracing::info!(url = %hook.url, kind = job.kind.as_str(), status, attempts = job.attempts, "webhook delivered"),
                    Err(e) => match schedule.get(job.attempts - 1) {
                        Some(delay) => {
                            tracing::warn!(url = %hook.url, kind = job.kind.as_str(), error = %e, retry_in = ?delay, "webhook attempt failed");
                            seq += 1;
                            heap.push(Reverse(Pending { due: Instant::now() + *delay, seq, job }));
                        }
                        None => tracing::error!(url = %hook.url, kind = job.kind.as_str(), error = %e, attempts = job.attempts, "webhook given up"),
                    },
                }
            }
        }
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One POST; Ok(status) for a 2xx answer.
async fn attempt(hook: &Hook, job: &Job) -> Result<u16, String> {
    match tokio::time::timeout(ATTEMPT_TIMEOUT, post(hook, job)).await {
        Ok(Ok(status)) if (200..300).contains(&status) => Ok(status),
        Ok(Ok(status)) => Err(format!("HTTP {status}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
    }
}

async fn post(hook: &Hook, job: &Job) -> std::io::Result<u16> {
    let t = &hook.target;
    let mut stream = TcpStream::connect((t.host.as_str(), t.port)).await?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: outguard/{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nX-Outguard-Event: {}\r\nX-Outguard-Signature: {}\r\n\
         X-Outguard-Timestamp: {}\r\nConnection: close\r\n\r\n",
        t.path,
        t.host_header(),
        env!("CARGO_PKG_VERSION"),
        job.body.len(),
        job.kind.as_str(),
        signature(&hook.secret, &job.body),
        unix_secs(),
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&job.body).await?;
    stream.flush().await?;
    read_status(&mut stream).await
}

/// Reads up to the end of the status line and returns the status code.
async fn read_status(stream: &mut TcpStream) -> std::io::Result<u16> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use outguard_harness::http::{HttpRequest as Seen, read_request};
    use outguard_policy::{Measure, Subject};
    use tokio::net::TcpListener;

    #[test]
    fn hmac_sha256_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:8080/hooks/a?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8080, "/hooks/a?x=1")
        );
        assert_eq!(t.host_header(), "127.0.0.1:8080");
        let t = Target::parse("http://hooks.example").unwrap();
        assert_eq!(
            (t.port, t.path.as_str(), t.host_header()),
            (80, "/", "hooks.example".to_string())
        );
        let t = Target::parse("http://[::1]:9/p").unwrap();
        assert_eq!(
            (t.host.as_str(), t.host_header()),
            ("::1", "[::1]:9".to_string())
        );
        assert_eq!(Target::parse("http://h?q").unwrap().path, "/?q");
        for bad in [
            "https://h/",
            "ftp://h",
            "http://h:99999/",
            "http://u@h/",
            "http://h/a b",
            "http:///x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    /// A loopback HTTP server answering each request with the next status of `statuses`
    /// (then 200), reporting what it saw.
    async fn server(statuses: Vec<u16>) -> (String, mpsc::UnboundedReceiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut statuses = statuses.into_iter();
            while let Ok((mut s, _)) = listener.accept().await {
                let Some(seen) = read_request(&mut s).await else {
                    continue;
                };
                let status = statuses.next().unwrap_or(200);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = tx.send(seen);
            }
        });
        (format!("http://{addr}"), rx)
    }

    fn hook(url: String, secret: &str, kinds: &[&str]) -> WebhookConfig {
        WebhookConfig {
            url,
            secret: secret.into(),
            kinds: kinds.iter().map(|k| k.to_string()).collect(),
        }
    }

    fn alert(kind: AlertKind) -> Alert {
        Alert::new(
            kind,
            Some("acme"),
            Some(Subject::Account("bulk@acme.example".into())),
            "bulk@acme.example blocked".into(),
            vec![Measure::new("external recipients in last hour", 501, 500)],
            1_795_456_800_000,
        )
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a webhook request in time")
            .expect("server alive")
    }

    #[tokio::test]
    async fn signed_post_retried_after_500_and_filtered_by_kind() {
        let (base, mut rx) = server(vec![500]).await;
        let hooks = Webhooks::with_schedule(
            &[
                hook(format!("{base}/all"), "s3cret", &[]),
                hook(format!("{base}/ip"), "other", &["ip_listed"]),
            ],
            vec![Duration::from_millis(200), Duration::from_millis(200)],
        );
        hooks.send(&alert(AlertKind::UserRestricted));
        let first = next(&mut rx).await;
        let second = next(&mut rx).await;
        assert_eq!(
            (first.path.as_str(), second.path.as_str()),
            ("/all", "/all"),
            "only the hook that wants every kind"
        );
        assert!(
            second.at.duration_since(first.at) >= Duration::from_millis(180),
            "retried after the backoff"
        );
        assert_eq!(first.body, second.body);
        for seen in [&first, &second] {
            assert_eq!(
                seen.header("X-Outguard-Signature"),
                Some(signature(b"s3cret", &seen.body).as_str())
            );
            let ts: u64 = seen
                .header("X-Outguard-Timestamp")
                .unwrap()
                .parse()
                .unwrap();
            assert!(ts.abs_diff(unix_secs()) < 60);
            assert_eq!(seen.header("Content-Type"), Some("application/json"));
        }
        let j: serde_json::Value = serde_json::from_slice(&second.body).unwrap();
        assert_eq!(j["kind"], "user_restricted");
        assert_eq!(j["severity"], "high");
        assert_eq!(j["tenant"], "acme");
        assert_eq!(j["subject"]["id"], "bulk@acme.example");
        assert_eq!(j["measures"][0]["count"], 501);
        assert_eq!(j["created_at"], 1_795_456_800_000i64);
        assert!(j["summary"].is_string());

        hooks.send(&alert(AlertKind::IpListed));
        let mut paths = [next(&mut rx).await, next(&mut rx).await];
        paths.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(paths[0].path, "/all");
        assert_eq!(paths[1].path, "/ip");
        assert_eq!(
            paths[1].header("X-Outguard-Signature"),
            Some(signature(b"other", &paths[1].body).as_str())
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            rx.try_recv().is_err(),
            "nothing more: delivered ones are not repeated"
        );
    }

    #[tokio::test]
    async fn gives_up_after_the_schedule_and_stops_on_close() {
        let (base, mut rx) = server(vec![500; 100]).await;
        let hooks = Webhooks::with_schedule(
            &[hook(base.clone(), "k", &[])],
            vec![Duration::from_millis(20), Duration::from_millis(20)],
        );
        hooks.send(&alert(AlertKind::SendingLimitExceeded));
        for _ in 0..3 {
            next(&mut rx).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            rx.try_recv().is_err(),
            "1 attempt + 2 retries, then given up"
        );

        // A connection refused is a failure too, retried the same way.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let dead_hooks =
            Webhooks::with_schedule(&[hook(dead, "k", &[])], vec![Duration::from_millis(10)]);
        dead_hooks.send(&alert(AlertKind::UserRestricted));

        hooks.close();
        tokio::time::sleep(Duration::from_millis(50)).await;
        hooks.send(&alert(AlertKind::UserRestricted));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(rx.try_recv().is_err(), "a closed sender posts nothing");
    }

    /// The paths of the next `n` requests (sorted), each checked for the test secret's signature.
    async fn paths(rx: &mut mpsc::UnboundedReceiver<Seen>, n: usize) -> Vec<String> {
        let mut v = Vec::new();
        for _ in 0..n {
            let seen = next(rx).await;
            assert_eq!(
                seen.header("X-Outguard-Signature"),
                Some(signature(b"0123456789abcdef", &seen.body).as_str())
            );
            v.push(seen.path);
        }
        v.sort();
        v
    }

    /// Store subscriptions: a tenant's get only its alerts, a tenant-less one every alert; a
    /// change made on another handle is picked up by the poll, one made here by `reload`.
    #[tokio::test]
    async fn stored_subscriptions_filter_by_tenant_and_follow_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/r.db", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        for t in ["acme", "globex"] {
            store.add_tenant(t, 1).await.unwrap();
        }
        let (base, mut rx) = server(vec![]).await;
        let mk = |tenant: Option<&'static str>, path: &'static str| {
            let (store, base) = (store.clone(), base.clone());
            async move {
                store
                    .create_webhook(
                        tenant,
                        &format!("{base}{path}"),
                        "0123456789abcdef",
                        &[],
                        "t",
                        1,
                    )
                    .await
                    .unwrap()
            }
        };
        let acme = mk(Some("acme"), "/acme").await;
        mk(None, "/all").await;
        let hooks = Webhooks::with_store(&[], store.clone());
        hooks.reload().await.unwrap();
        hooks.send(&alert(AlertKind::UserRestricted)); // tenant acme
        assert_eq!(paths(&mut rx, 2).await, ["/acme", "/all"]);
        let mut globex = alert(AlertKind::UserRestricted);
        globex.tenant = Some("globex".into());
        hooks.send(&globex);
        assert_eq!(paths(&mut rx, 1).await, ["/all"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(rx.try_recv().is_err(), "acme's hook got nothing of globex");

        // Another node deletes acme's and adds globex's: the poll follows within a few seconds.
        let other = Store::open(&url).await.unwrap();
        other.delete_webhook(&acme.id).await.unwrap();
        other
            .create_webhook(
                Some("globex"),
                &format!("{base}/globex"),
                "0123456789abcdef",
                &[],
                "t",
                2,
            )
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while hooks
            .stored
            .as_ref()
            .unwrap()
            .snapshot()
            .iter()
            .all(|h| !h.url.ends_with("/globex"))
        {
            assert!(
                Instant::now() < deadline,
                "the poll never picked the change up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        hooks.send(&globex);
        assert_eq!(paths(&mut rx, 2).await, ["/all", "/globex"]);
        hooks.send(&alert(AlertKind::IpListed));
        assert_eq!(paths(&mut rx, 1).await, ["/all"]);
        hooks.close();
    }

    #[tokio::test]
    async fn no_hooks_no_task() {
        let hooks = Webhooks::new(&[]);
        assert!(hooks.tx.is_none());
        hooks.send(&alert(AlertKind::UserRestricted));
        let https = Webhooks::new(&[hook("https://hooks.example/x".into(), "k", &[])]);
        assert!(https.tx.is_none(), "https is skipped for now");
    }
}
