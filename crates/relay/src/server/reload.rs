//! SIGHUP: reload without dropping a session. The configuration is read again and checked as
//! `serve` checks it at start; a bad file is refused (every problem logged) and the relay goes on
//! with what it has. The TLS certificate and key are reloaded (renewed files in place, or new
//! paths in `[tls]`): sessions that start TLS afterwards get the new certificate, sessions
//! already encrypted keep theirs. Every other changed section is named in the log as needing a
//! restart — the relay does not half-apply it.

use std::sync::Arc;

use outguard_types::config::Config;

use super::Relay;

/// How the configuration is read again (the same file and command-line overrides as at start).
pub type Loader = Box<dyn Fn() -> anyhow::Result<Config> + Send + Sync>;

/// What one reload did.
#[derive(Debug, PartialEq, Eq)]
pub struct Reloaded {
    /// Top-level sections that differ from the running configuration and need a restart.
    pub needs_restart: Vec<String>,
}

/// Wait for SIGHUP until the relay stops; reload on each. The handler is installed when this is
/// called, before the returned future first runs, so a SIGHUP right after `serve` says it is
/// ready reloads instead of killing the process (the default action).
pub fn on_hangup(relay: Arc<Relay>, load: Loader) -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let hup = signal(SignalKind::hangup());
    async move {
        let mut hup = match hup {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP; reload needs a restart");
                return;
            }
        };
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() {
                        return;
                    }
                }
                () = relay.shutdown.stopped() => return,
            }
            match reload(&relay, &load) {
                Ok(r) if r.needs_restart.is_empty() => {
                    tracing::info!("reloaded: configuration checked, TLS certificate reloaded");
                }
                Ok(r) => tracing::warn!(
                    sections = ?r.needs_restart,
                    "reloaded the TLS certificate; these changed sections take effect after a restart"
                ),
                Err(e) => tracing::error!("reload refused, running on as before: {e:#}"),
            }
        }
    }
}

/// Read and check the configuration, put the TLS certificate in force, and name what else
/// changed.
pub fn reload(relay: &Relay, load: &Loader) -> anyhow::Result<Reloaded> {
    let new = load()?;
    relay.tls.reload(&new)?;
    Ok(Reloaded {
        needs_restart: changed_sections(&relay.cfg, &new)
            .into_iter()
            .filter(|s| s != "tls")
            .collect(),
    })
}

/// The top-level keys whose values differ.
fn changed_sections(old: &Config, new: &Config) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return vec!["(configuration)".into()];
    };
    let mut keys: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(b.keys().filter(|k| !a.contains_key(*k)).cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_changed_sections_only() {
        let old = Config::default();
        let mut new = Config::default();
        assert!(changed_sections(&old, &new).is_empty());
        new.limits.max_recipients_per_message += 1;
        new.tls.cert = Some("/etc/outguard/new.pem".into());
        assert_eq!(changed_sections(&old, &new), vec!["limits", "tls"]);
    }
}
