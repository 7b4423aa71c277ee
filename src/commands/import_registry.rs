//! `ferry import registry` (not yet implemented).

use crate::cli::ImportRegistryArgs;
use crate::progress::Ui;

/// Runs the command.
pub async fn run(_ui: &Ui, _args: &ImportRegistryArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
