//! `outguard`: the relay server and its command-line interface. The message path reads top to
//! bottom in `smtp::conn` (session) → `pipeline` (scan → policy → spool) → `delivery`.

mod cli;
mod delivery;
mod pipeline;
mod server;
mod smtp;
mod tls;
mod trace;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
