#[derive(Debug, clap::Subcommand)] pub enum SpamCmd { Scan }
pub fn run(_c: SpamCmd, _j: bool, _m: Option<&std::path::Path>) -> anyhow::Result<i32> { Ok(0) }
