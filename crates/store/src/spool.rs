//! The durable message spool (SPEC §2.6): one file per message, written so that a message the
//! relay answered `250` for survives `kill -9` and power loss, and a half-written one is never
//! delivered.
//!
//! Layout under the spool directory:
//! - `lock` — held with an exclusive `File::try_lock` for the life of the [`Spool`], so two
//!   processes never share a spool;
//! - `tmp/` — files being written; anything left here at start is a crash leftover and removed;
//! - `queue/<id>.msg` — immutable: one JSON line (the [`Envelope`]) then the raw message bytes;
//! - `queue/<id>.state` — small mutable sidecar ([`State`]) rewritten atomically (tmp + rename)
//!   only when delivery state changes. No sidecar means "fresh, nothing attempted yet".
//! - `queue/<id>.done` — append-only: one JSON string (a recipient) per line, appended by
//!   [`Spool::record_delivered`] the moment the next hop's `250` arrives, before any trace or
//!   state write. The queue reads it ([`Spool::read_done`]) before every attempt and folds it
//!   into the state, so a recipient recorded here is never delivered again, after a retry or a
//!   `kill -9` and restart
//!   (issue 17: the sidecar is written only once the whole round is over, which left every
//!   recipient accepted in the meantime to be sent again). Not fsync'd: the page cache survives
//!   `kill -9`; a power loss may still repeat a delivery, as with `remove` below.
//!
//! `accept` = write tmp → `sync_all` → rename into `queue/` → fsync `queue/`. The directory fsync
//! is group-committed ([`dirsync::GroupSync`]): concurrent accepts share one directory fsync, so
//! throughput under concurrency is bounded by the per-file fsyncs (which the kernel overlaps),
//! not by a serial chain of two fsyncs per message.
//!
//! Removal (`remove`) unlinks without a directory fsync: after `kill -9` the unlink is still in
//! the kernel; only a power loss right after a delivery could resurrect (and re-deliver) it,
//! which is the usual at-least-once trade-off of MTAs.

mod dirsync;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use outguard_types::model::Submitter;
use outguard_types::verdict::Class;
use serde::{Deserialize, Serialize};

use dirsync::GroupSync;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spool {0} is locked by another process")]
    Locked(PathBuf),
    #[error("message {0} is not in the spool")]
    NotFound(String),
    #[error("invalid message id `{0}`")]
    BadId(String),
    #[error("corrupt spool file {path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("spool task failed: {0}")]
    Task(String),
}

/// The immutable facts of a queued message, written once at accept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    /// Empty for DSNs (null reverse path).
    pub mail_from: String,
    pub rcpts: Vec<String>,
    pub tenant: Option<String>,
    pub submitter: Submitter,
    /// `regular`, `high-risk`, `relay`, …
    pub pool: String,
    /// Unix milliseconds.
    pub received_at: i64,
    pub class: Option<Class>,
    pub score: Option<f64>,
    pub held: bool,
    pub quarantined: bool,
    /// Headers to prepend at delivery (e.g. `X-Outguard-Verdict`).
    #[serde(default)]
    pub extra_headers: Vec<(String, String)>,
    /// The recipients `extra_headers` go to; `None`: every recipient (`[delivery]
    /// verdict_header = "internal"` gives only the tenant's own recipients the verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_headers_to: Option<Vec<String>>,
}

/// Delivery status of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RcptStatus {
    /// Not delivered yet (never tried, or deferred).
    Pending,
    Delivered,
    /// Permanent failure (a DSN was or will be sent).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcptState {
    pub status: RcptStatus,
    /// Last remote reply (or local reason) for this recipient.
    pub reply: Option<String>,
    /// Remote MTA that gave it.
    pub remote: Option<String>,
}

/// Mutable delivery state kept in the sidecar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Delivery attempts made so far (whole-message rounds).
    pub attempts: u32,
    /// Unix ms of the next attempt; 0 = as soon as possible.
    pub next_attempt_at: i64,
    pub held: bool,
    pub quarantined: bool,
    /// Per recipient; a recipient missing here is pending.
    #[serde(default)]
    pub rcpts: BTreeMap<String, RcptState>,
    /// Failed recipients whose DSN could not be spooled yet (a full disk): the message stays
    /// queued until the DSN is written, so the sender's bounce is never lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dsn_owed: Vec<String>,
}

impl State {
    /// The state of a message that has no sidecar yet.
    pub fn initial(env: &Envelope) -> State {
        State {
            held: env.held,
            quarantined: env.quarantined,
            ..State::default()
        }
    }

    pub fn status(&self, rcpt: &str) -> RcptStatus {
        self.rcpts
            .get(rcpt)
            .map_or(RcptStatus::Pending, |r| r.status)
    }

    /// Mark `rcpts` (from [`Spool::read_done`]) delivered where they are recipients of `env`
    /// still pending; returns the ones that changed.
    pub fn mark_delivered(&mut self, env: &Envelope, rcpts: &[String]) -> Vec<String> {
        let mut changed = Vec::new();
        for r in rcpts {
            if env.rcpts.contains(r) && self.status(r) == RcptStatus::Pending {
                let prev = self.rcpts.remove(r);
                self.rcpts.insert(
                    r.clone(),
                    RcptState {
                        status: RcptStatus::Delivered,
                        reply: Some("250 accepted (recorded at the reply to the dot)".into()),
                        remote: prev.and_then(|p| p.remote),
                    },
                );
                changed.push(r.clone());
            }
        }
        changed
    }

    /// Recipients of `env` still to deliver.
    pub fn pending<'a>(&self, env: &'a Envelope) -> Vec<&'a str> {
        env.rcpts
            .iter()
            .filter(|r| self.status(r) == RcptStatus::Pending)
            .map(String::as_str)
            .collect()
    }
}

struct Inner {
    root: PathBuf,
    queue: PathBuf,
    tmp: PathBuf,
    _lock: File,
    sync: GroupSync,
}

/// Handle to an open spool; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A new sortable message id: UUIDv7 as 32 lowercase hex digits.
pub fn new_message_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn check_id(id: &str) -> Result<(), SpoolError> {
    let ok = !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(SpoolError::BadId(id.to_string()))
    }
}

impl Spool {
    /// Open (creating if needed) the spool at `dir`, lock it, and clean crash leftovers.
    pub fn open(dir: impl AsRef<Path>) -> Result<Spool, SpoolError> {
        let root = dir.as_ref().to_path_buf();
        let queue = root.join("queue");
        let tmp = root.join("tmp");
        for d in [&root, &queue, &tmp] {
            crate::files::create_private_dir_all(d).map_err(io_err(d))?;
        }
        let lock_path = root.join("lock");
        let lock = crate::files::private_options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Locked(root)),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        // Leftovers in tmp/ are writes that never reached their rename: never delivered.
        for entry in fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let entry = entry.map_err(io_err(&tmp))?;
            let _ = fs::remove_file(entry.path());
        }
        let dir_file = File::open(&queue).map_err(io_err(&queue))?;
        let sync = GroupSync::new(dir_file);
        Ok(Spool {
            inner: Arc::new(Inner {
                root,
                queue,
                tmp,
                _lock: lock,
                sync,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.root
    }

    fn msg_path(&self, id: &str) -> PathBuf {
        self.inner.queue.join(format!("{id}.msg"))
    }

    fn state_path(&self, id: &str) -> PathBuf {
        self.inner.queue.join(format!("{id}.state"))
    }

    fn done_path(&self, id: &str) -> PathBuf {
        self.inner.queue.join(format!("{id}.done"))
    }

    /// Record that the next hop accepted `rcpts` of message `id`: one small append (no fsync,
    /// no rename), cheap enough to run inline right after the reply to the dot.
    pub fn record_delivered(&self, id: &str, rcpts: &[&str]) -> Result<(), SpoolError> {
        check_id(id)?;
        if rcpts.is_empty() {
            return Ok(());
        }
        let mut line = Vec::with_capacity(rcpts.len() * 32);
        for r in rcpts {
            // JSON strings: a recipient can never break the one-per-line format.
            serde_json::to_writer(&mut line, r).map_err(|e| SpoolError::Corrupt {
                path: self.done_path(id),
                message: e.to_string(),
            })?;
            line.push(b'\n');
        }
        let path = self.done_path(id);
        let mut f = crate::files::private_options()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err(&path))?;
        // One write call: a kill leaves the whole record or none of it.
        f.write_all(&line).map_err(io_err(&path))
    }

    /// Recipients recorded by [`Spool::record_delivered`] (empty when none). A line that does
    /// not parse (a torn write after a power loss) is skipped: at worst that recipient is
    /// delivered again, never lost.
    pub fn read_done(&self, id: &str) -> Result<Vec<String>, SpoolError> {
        check_id(id)?;
        let path = self.done_path(id);
        match fs::read(&path) {
            Ok(bytes) => Ok(bytes
                .split(|b| *b == b'\n')
                .filter_map(|l| serde_json::from_slice::<String>(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Write `env` + `body` durably. Returns only when the message survives a crash; the caller
    /// answers `250` after this. Blocking: call from a blocking context or use [`Spool::accept`].
    pub fn accept_blocking(&self, env: &Envelope, body: &[u8]) -> Result<(), SpoolError> {
        check_id(&env.id)?;
        let mut header = serde_json::to_vec(env).map_err(|e| SpoolError::Corrupt {
            path: self.msg_path(&env.id),
            message: e.to_string(),
        })?;
        header.push(b'\n');
        let tmp = self.inner.tmp.join(format!("{}.msg", env.id));
        let write = |path: &Path| -> std::io::Result<()> {
            let mut f = crate::files::private_options()
                .write(true)
                .create_new(true)
                .open(path)?;
            f.write_all(&header)?;
            f.write_all(body)?;
            f.sync_all()
        };
        if let Err(e) = write(&tmp) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        let dest = self.msg_path(&env.id);
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        self.inner.sync.sync().map_err(io_err(&self.inner.queue))
    }

    /// Async form of [`Spool::accept_blocking`] (runs on the blocking pool).
    pub async fn accept(&self, env: &Envelope, body: &[u8]) -> Result<(), SpoolError> {
        let (spool, env, body) = (self.clone(), env.clone(), body.to_vec());
        tokio::task::spawn_blocking(move || spool.accept_blocking(&env, &body))
            .await
            .map_err(|e| SpoolError::Task(e.to_string()))?
    }

    /// Every message in the spool with its state, oldest id first (ids sort by time).
    pub fn load_all(&self) -> Result<Vec<(Envelope, State)>, SpoolError> {
        let q = &self.inner.queue;
        let mut ids = Vec::new();
        for entry in fs::read_dir(q).map_err(io_err(q))? {
            let entry = entry.map_err(io_err(q))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name.strip_suffix(".msg") {
                if check_id(id).is_ok() {
                    ids.push(id.to_string());
                }
            } else if let Some(id) = name
                .strip_suffix(".state")
                .or_else(|| name.strip_suffix(".done"))
            {
                // A sidecar whose message is gone (removed mid-way): drop it.
                if !self.msg_path(id).exists() {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.load_one(&id) {
                Ok(pair) => out.push(pair),
                Err(SpoolError::Corrupt { path, message }) => {
                    tracing::warn!(path = %path.display(), %message, "skipping corrupt spool file");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// One message's envelope and state (the `.done` record is folded in by the queue before
    /// each attempt, with [`Spool::read_done`] and [`State::mark_delivered`]).
    pub fn load_one(&self, id: &str) -> Result<(Envelope, State), SpoolError> {
        check_id(id)?;
        let env = self.read_envelope(id)?;
        let state = self.read_state(id)?.unwrap_or_else(|| State::initial(&env));
        Ok((env, state))
    }

    fn open_msg(&self, id: &str) -> Result<BufReader<File>, SpoolError> {
        let path = self.msg_path(id);
        match File::open(&path) {
            Ok(f) => Ok(BufReader::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(SpoolError::NotFound(id.into()))
            }
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn read_header(&self, id: &str, r: &mut BufReader<File>) -> Result<Envelope, SpoolError> {
        let path = self.msg_path(id);
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line).map_err(io_err(&path))?;
        serde_json::from_slice(&line).map_err(|e| SpoolError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    pub fn read_envelope(&self, id: &str) -> Result<Envelope, SpoolError> {
        check_id(id)?;
        let mut r = self.open_msg(id)?;
        self.read_header(id, &mut r)
    }

    /// The message bytes as received (without the envelope line).
    pub fn read_body(&self, id: &str) -> Result<Vec<u8>, SpoolError> {
        check_id(id)?;
        let mut r = self.open_msg(id)?;
        self.read_header(id, &mut r)?;
        let mut body = Vec::new();
        r.read_to_end(&mut body)
            .map_err(io_err(&self.msg_path(id)))?;
        Ok(body)
    }

    fn read_state(&self, id: &str) -> Result<Option<State>, SpoolError> {
        let path = self.state_path(id);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| SpoolError::Corrupt {
                        path,
                        message: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Atomically replace the message's state sidecar (tmp + fsync + rename + dir fsync).
    pub fn update_state(&self, id: &str, state: &State) -> Result<(), SpoolError> {
        check_id(id)?;
        if !self.msg_path(id).exists() {
            return Err(SpoolError::NotFound(id.into()));
        }
        let bytes = serde_json::to_vec(state).map_err(|e| SpoolError::Corrupt {
            path: self.state_path(id),
            message: e.to_string(),
        })?;
        let tmp = self
            .inner
            .tmp
            .join(format!("{id}.state.{}", uuid::Uuid::now_v7().simple()));
        let write = |path: &Path| -> std::io::Result<()> {
            let mut f = crate::files::private_options()
                .write(true)
                .create_new(true)
                .open(path)?;
            f.write_all(&bytes)?;
            f.sync_all()
        };
        if let Err(e) = write(&tmp) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&tmp)(e));
        }
        let dest = self.state_path(id);
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        self.inner.sync.sync().map_err(io_err(&self.inner.queue))
    }

    /// Hold or un-hold a message (a hold survives restarts).
    pub fn set_held(&self, id: &str, held: bool) -> Result<State, SpoolError> {
        let (_, mut state) = self.load_one(id)?;
        state.held = held;
        self.update_state(id, &state)?;
        Ok(state)
    }

    /// Drop a message (delivered, bounced or deleted). Missing is not an error.
    pub fn remove(&self, id: &str) -> Result<(), SpoolError> {
        check_id(id)?;
        // The message first: a crash part-way leaves only sidecars, which `load_all` drops.
        for path in [self.msg_path(id), self.state_path(id), self.done_path(id)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
