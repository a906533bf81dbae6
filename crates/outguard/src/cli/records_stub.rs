use clap::Subcommand;
use outguard_store::Store;
#[derive(Debug, Subcommand)] pub enum TenantCmd { List }
#[derive(Debug, Subcommand)] pub enum DomainCmd { List }
#[derive(Debug, Subcommand)] pub enum AccountCmd { List }
#[derive(Debug, Subcommand)] pub enum ConnectorCmd { List }
#[derive(Debug, Subcommand)] pub enum AdminCmd { List }
pub async fn run_tenant(_c: TenantCmd, _s: &Store, _j: bool) -> anyhow::Result<()> { Ok(()) }
pub async fn run_domain(_c: DomainCmd, _s: &Store, _j: bool) -> anyhow::Result<()> { Ok(()) }
pub async fn run_account(_c: AccountCmd, _s: &Store, _j: bool) -> anyhow::Result<()> { Ok(()) }
pub async fn run_connector(_c: ConnectorCmd, _s: &Store, _j: bool) -> anyhow::Result<()> { Ok(()) }
pub async fn run_admin(_c: AdminCmd, _s: &Store, _j: bool) -> anyhow::Result<()> { Ok(()) }
