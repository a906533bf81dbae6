//! Types shared by the server, the CLI and the tests: the configuration file, the domain
//! records (tenants, accounts, connectors, trace events), policy settings and spam verdicts.
//! No I/O lives here.

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
