//! Errors that carry their exit status (SPEC §5): the CLI maps them to 64 and 69 wherever in the
//! process they were raised (a bad zone found by the DNSBL monitor at start is a usage error of
//! `serve`, an unreachable Redis is an unavailable service).

/// Bad usage or configuration found after parsing (exit 64).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A service the command needs cannot be reached (exit 69).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);
