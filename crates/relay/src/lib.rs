//! The relay: the message path from the listeners to the queue. `smtp` (listeners and the
//! session's I/O) → `pipeline` (scan → policy → spool) → `outguard_delivery`, with enforcement
//! (`enforce`), the DNSBL monitor (`dnsbl`), complaint and bounce reports (`fbl`), SRS (`srs`),
//! webhooks and metrics. The side effects of enforcement (held mail, alerts, notices,
//! webhooks) run in the `outbox` task, after the command that caused them is answered. [`server::Relay`] holds the shared parts; `Relay::build` makes them once.

pub mod added_headers;
pub mod dnsbl;
pub mod enforce;
pub mod fbl;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod postfix;
pub mod retention;
pub mod server;
pub mod smtp;
pub mod srs;
pub mod tls;
pub mod webhooks;

/// What only loading the config's files can tell, for `check-config` and `serve` before they
/// create anything (issue 20): the TLS certificate and key (parse, and match each other) and
/// every DKIM key (parses as a key mail-auth can sign with). `(config key, what is wrong)`.
pub fn load_checks(cfg: &outguard_types::config::Config) -> Vec<(String, String)> {
    let mut out = tls::check(cfg);
    for (i, d) in cfg.dkim.iter().enumerate() {
        if let Err(why) = outguard_delivery::dkim::check_key(d) {
            out.push((
                format!("dkim[{i}].key"),
                format!("{} cannot be used to sign: {why}", d.key.display()),
            ));
        }
    }
    // The file's presence and readability are config checks; whether it is a model only the
    // engine can tell (a truncated or foreign file used to pass check-config and fail serve).
    if let Some(path) = &cfg.spam.model
        && let Ok(bytes) = std::fs::read(path)
        && let Err(why) = outguard_spam::Engine::from_model_bytes(&bytes)
    {
        out.push((
            "spam.model".to_string(),
            format!("{} is not a spam model: {why}", path.display()),
        ));
    }
    out
}
