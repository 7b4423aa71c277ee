//! `ferry login` (not yet implemented).

use crate::cli::LoginArgs;
use crate::progress::Ui;

/// Runs the command.
pub async fn run(_ui: &Ui, _args: &LoginArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
