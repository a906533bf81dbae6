//! Outbound delivery (SPEC §2.7): routing (`mx`), IP pools (`pools`), one SMTP attempt
//! (`client`, `wire`, `tls`, `dkim`; DANE in `dane` over `dnssec`), idle connections kept for the next message (`reuse`), one round over a message's domains (`attempt`), the queue
//! manager with retries and expiry (`queue`, `schedule`) and DSNs (`bounce`). `glue` wires it
//! into `serve`; `shutdown` is the drain/stop signal every long-running task of the process
//! watches.

pub mod attempt;
pub mod bounce;
pub mod client;
pub mod dane;
pub mod dkim;
pub mod dnssec;
pub mod events;
mod glue;
pub mod mta_sts;
pub mod mx;
pub mod pools;
pub mod queue;
pub mod reuse;
pub mod schedule;
pub mod shaping;
pub mod shutdown;
pub mod tls;
pub mod wire;

#[cfg(test)]
mod tests;
