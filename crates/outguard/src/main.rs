//! `outguard`: the relay server and its command-line interface. The message path reads top to
//! bottom in `smtp::conn` (session) → `pipeline` (scan → policy → spool) → `delivery`.

mod api;
mod cli;
mod delivery;
mod demo;
mod dnsbl;
mod enforce;
mod fbl;
mod metrics;
mod ops;
mod pipeline;
mod server;
mod smtp;
mod tls;
mod trace;
mod ui;
mod webhooks;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
