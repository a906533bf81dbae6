//! Types shared by the server, the CLI and the tests: the configuration file, the domain
//! records (tenants, accounts, connectors, trace events), policy settings and spam verdicts.
//! No I/O lives here, but for one read-only check: `check-config` and `serve` read the files a
//! configuration names (`config::files`) so that a missing one is refused before start.

pub mod api;
pub mod ceilings;
pub mod config;
pub mod exit;
pub mod model;
pub mod policy;
pub mod text;
pub mod time;
pub mod verdict;
pub mod webhook_url;
