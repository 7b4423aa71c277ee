//! `ferry registries config` (not yet implemented).

use crate::cli::RegistriesConfigArgs;
use crate::progress::Ui;

/// Runs the command.
pub fn run(_ui: &Ui, _args: &RegistriesConfigArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
