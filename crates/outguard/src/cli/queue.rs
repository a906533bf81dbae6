//! `outguard queue`: list held, quarantined and deferred messages (from the store's mirror of
//! the spool), and release / hold / delete / retry them through `outguard_admin::ops::queue` (the
//! API's audit entry, actor `cli`). Changing the queue needs the spool, which a running server
//! holds locked: then the command says so (exit 69) and the API is the way.

use clap::Subcommand;
use outguard_admin::ops::queue::{Action, Queue};
use outguard_admin::ops::{self, Actor, OpsError};
use outguard_policy::Subject;
use outguard_relay::enforce::lift::belongs_to;
use outguard_store::spool::{Spool, SpoolError};
use outguard_store::{Store, StoreError};
use outguard_types::config::Config;
use outguard_types::model::{MessageFilter, MessageState};

use super::output::ops_error;
use super::{Unavailable, UsageError};

#[derive(Debug, Subcommand)]
pub enum QueueCmd {
    /// List queued messages (default: everything not yet delivered).
    List {
        #[arg(long)]
        state: Option<String>,
    },
    /// Release held or quarantined messages for delivery.
    Release { ids: Vec<String> },
    /// Hold messages (they stay in the queue, undelivered).
    Hold { ids: Vec<String> },
    /// Delete messages from the queue.
    Delete { ids: Vec<String> },
    /// Retry deferred messages now (at the server's next start when it is stopped).
    Retry { ids: Vec<String> },
}

pub async fn run(cmd: QueueCmd, cfg: &Config, store: &Store, json: bool) -> anyhow::Result<()> {
    match cmd {
        QueueCmd::List { state } => list(store, state.as_deref(), json).await,
        QueueCmd::Release { ids } => change(cfg, store, &ids, Action::Release).await,
        QueueCmd::Hold { ids } => change(cfg, store, &ids, Action::Hold).await,
        QueueCmd::Delete { ids } => change(cfg, store, &ids, Action::Delete).await,
        QueueCmd::Retry { ids } => change(cfg, store, &ids, Action::Retry).await,
    }
}

/// `--state`: one of the states a queued message can be in.
pub(super) fn parse_state(s: &str) -> Result<MessageState, UsageError> {
    match MessageState::parse(s) {
        Some(
            st @ (MessageState::Held
            | MessageState::Quarantined
            | MessageState::Deferred
            | MessageState::Queued),
        ) => Ok(st),
        _ => Err(UsageError(format!(
            "--state: `{s}` is not one of held, quarantined, deferred, queued"
        ))),
    }
}

async fn list(store: &Store, state: Option<&str>, json: bool) -> anyhow::Result<()> {
    let states: Vec<MessageState> = match state {
        Some(s) => vec![parse_state(s)?],
        None => vec![
            MessageState::Queued,
            MessageState::Deferred,
            MessageState::Held,
            MessageState::Quarantined,
        ],
    };
    let mut all = Vec::new();
    for st in states {
        let f = MessageFilter {
            state: Some(st),
            limit: Some(1000),
            ..MessageFilter::default()
        };
        all.extend(store.search_messages(&f).await?);
    }
    all.sort_by(|a, b| a.id.cmp(&b.id));
    if json {
        out!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        super::trace::print_messages(&all);
    }
    Ok(())
}

/// The spool as the management layer reaches it while no server runs (`ops::queue::Queue`);
/// each change is mirrored in the store's message record.
pub(super) struct SpoolQueue<'a> {
    spool: Spool,
    store: &'a Store,
}

impl<'a> SpoolQueue<'a> {
    /// Takes the spool; a running server holds it, and then the API is the way (exit 69).
    pub(super) fn open(cfg: &Config, store: &'a Store, what: &str) -> anyhow::Result<Self> {
        match Spool::open(cfg.server.data_dir.join("spool")) {
            Ok(spool) => Ok(SpoolQueue { spool, store }),
            Err(SpoolError::Locked(_)) => Err(Unavailable(format!(
                "the server is running and holds the spool; {what} through the admin API (--server URL --token T)"
            ))
            .into()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Queue for SpoolQueue<'_> {
    async fn tenant_of(&self, id: &str) -> Result<Option<String>, OpsError> {
        Ok(self.spool.read_envelope(id)?.tenant)
    }

    async fn apply(&self, id: &str, action: Action) -> Result<(), OpsError> {
        let state = match action {
            Action::Release => {
                let st = self.spool.set_held(id, false)?;
                if st.quarantined {
                    MessageState::Quarantined
                } else {
                    MessageState::Queued
                }
            }
            Action::Hold => {
                self.spool.set_held(id, true)?;
                MessageState::Held
            }
            Action::Delete => {
                self.spool.remove(id)?;
                MessageState::Deleted
            }
            // Nothing runs the queue now; the next start tries it at once.
            Action::Retry => {
                self.spool.read_envelope(id)?;
                MessageState::Queued
            }
        };
        match self.store.set_message_state(id, state, None).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn held_of(&self, subject: &Subject) -> Result<Vec<String>, OpsError> {
        Ok(self
            .spool
            .load_all()?
            .into_iter()
            .filter(|(env, state)| state.held && belongs_to(env, subject))
            .map(|(env, _)| env.id)
            .collect())
    }
}

async fn change(cfg: &Config, store: &Store, ids: &[String], action: Action) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Err(UsageError("give at least one message id".into()).into());
    }
    let queue = SpoolQueue::open(cfg, store, "use it")?;
    let actor = Actor::cli();
    for id in ids {
        ops::queue::act(store, &actor, &queue, id, action)
            .await
            .map_err(ops_error)?;
        let label = match action {
            Action::Release => "released",
            Action::Hold => "held",
            Action::Delete => "deleted",
            Action::Retry => "will be retried at the next start",
        };
        out!("{id}: {label}");
    }
    Ok(())
}
