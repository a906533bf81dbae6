//! The file-descriptor budget (SPEC §9: exhausting one listener never stops the others).
//!
//! Every listener caps its own connections; a flood on one fills only its own cap. For that to
//! protect the others, the caps together must fit under the process's open-file limit with a
//! reserve left for the store, the spool, logs, DNS and delivery. At start `serve` raises the
//! soft `RLIMIT_NOFILE` to the hard limit (an unprivileged process may; through `rustix`, whose
//! call is safe code, as the workspace forbids `unsafe`) and warns when the caps do not fit.
//! It warns rather than refuses: the operator may know better (a test box with a low limit),
//! and the accept loops back off on `EMFILE` anyway.

use outguard_types::config::Config;

/// Descriptors kept for everything that is not a client connection.
pub const RESERVE: u64 = 256;

/// Descriptors the configured caps may hold at once, reserve included.
pub fn budget(cfg: &Config) -> u64 {
    let l = &cfg.listeners;
    let smtp = [
        l.submission,
        l.submissions,
        l.connector,
        l.fbl,
        l.policy,
        l.milter,
    ]
    .iter()
    .filter(|a| a.is_some())
    .count() as u64;
    let http = if l.http.is_some() {
        l.http_max_connections as u64
    } else {
        0
    };
    smtp * l.max_connections as u64 + http + cfg.delivery.max_connections as u64 + RESERVE
}

/// Raise the soft limit to the hard one; returns the soft limit in force afterwards (`None`
/// when unlimited or unknown).
pub fn raise_nofile() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        let raised = rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::info!(from = ?lim.current, to = ?lim.maximum, "raised the open-file limit");
            }
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Raise the limit and warn when the caps do not fit under it.
pub fn check(cfg: &Config) {
    let need = budget(cfg);
    match raise_nofile() {
        Some(limit) if need > limit => tracing::warn!(
            limit,
            need,
            "the connection caps (listeners.max_connections per SMTP listener, \
             listeners.http_max_connections, delivery.max_connections, plus a reserve of \
             {RESERVE}) exceed the open-file limit: a flood on one listener could starve the \
             others; lower the caps or raise the limit"
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_caps_and_the_budget() {
        let cfg = Config::default();
        assert_eq!(budget(&cfg), 4 * 1000 + 1024 + 200 + RESERVE);
    }
}
