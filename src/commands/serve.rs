//! `ferry serve` (not yet implemented).

use crate::cli::ServeArgs;
use crate::progress::Ui;

/// Runs the command.
pub async fn run(_ui: &Ui, _args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
