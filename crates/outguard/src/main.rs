//! `outguard`: the command-line interface, `serve` (the relay and the admin listener wired
//! together) and the demo. The message path reads top to bottom in `outguard_relay`:
//! `smtp::conn` (session) → `pipeline` (scan → policy → spool) → `outguard_delivery`.

mod cli;
mod demo;
mod serve;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
