//! The relay: the message path from the listeners to the queue. `smtp` (listeners and the
//! session's I/O) → `pipeline` (scan → policy → spool) → `outguard_delivery`, with enforcement
//! (`enforce`), the DNSBL monitor (`dnsbl`), complaint and bounce reports (`fbl`), SRS (`srs`),
//! webhooks and metrics. The side effects of enforcement (held mail, alerts, notices,
//! webhooks) run in the `outbox` task, after the command that caused them is answered. [`server::Relay`] holds the shared parts; `Relay::build` makes them once.

pub mod dnsbl;
pub mod enforce;
pub mod fbl;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod retention;
pub mod server;
pub mod smtp;
pub mod srs;
pub mod tls;
pub mod webhooks;
