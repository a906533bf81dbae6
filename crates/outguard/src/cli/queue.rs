//! `outguard queue`: list held, quarantined and deferred messages (from the store's mirror of
//! the spool), and release / hold / delete / retry them. Changing the queue needs the spool, which
//! a running server holds locked: then the command says so (exit 69) and the API is the way.

use clap::Subcommand;
use outguard_store::Store;
use outguard_store::spool::{Spool, SpoolError};
use outguard_types::config::Config;
use outguard_types::model::{MessageFilter, MessageState};

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
        QueueCmd::Release { ids } => change(cfg, store, &ids, Change::Release).await,
        QueueCmd::Hold { ids } => change(cfg, store, &ids, Change::Hold).await,
        QueueCmd::Delete { ids } => change(cfg, store, &ids, Change::Delete).await,
        QueueCmd::Retry { ids } => change(cfg, store, &ids, Change::Retry).await,
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

#[derive(Clone, Copy)]
enum Change {
    Release,
    Hold,
    Delete,
    Retry,
}

async fn change(cfg: &Config, store: &Store, ids: &[String], what: Change) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Err(UsageError("give at least one message id".into()).into());
    }
    let spool = match Spool::open(cfg.server.data_dir.join("spool")) {
        Ok(s) => s,
        Err(SpoolError::Locked(_)) => {
            return Err(Unavailable("the server is running and holds the spool; use the admin API (--server URL --token T)".into()).into());
        }
        Err(e) => return Err(e.into()),
    };
    for id in ids {
        let (state, label) = match what {
            Change::Release => {
                spool.set_held(id, false)?;
                (MessageState::Queued, "released")
            }
            Change::Hold => {
                spool.set_held(id, true)?;
                (MessageState::Held, "held")
            }
            Change::Delete => {
                spool.remove(id)?;
                (MessageState::Deleted, "deleted")
            }
            Change::Retry => {
                spool.read_envelope(id)?;
                (MessageState::Queued, "will be retried at the next start")
            }
        };
        store.set_message_state(id, state, None).await?;
        out!("{id}: {label}");
    }
    Ok(())
}
