//! `ferry registries-config`: parse, call [`crate::import::registries_config`], print.

use anyhow::Context;

use crate::cli::RegistriesConfigArgs;
use crate::mapping::Target;
use crate::progress::Ui;

/// Runs `ferry registries-config`.
pub fn run(ui: &Ui, args: &RegistriesConfigArgs) -> anyhow::Result<()> {
    let yaml = crate::import::registries_config::run(ui, args)?;
    let target = Target::parse(&args.to)?;
    let text = serde_saphyr::to_string(&yaml).context("cannot write registries.yaml")?;
    print!(
        "# K3s registries.yaml for {target}, written by ferry from {}\n{text}",
        args.source.display()
    );
    Ok(())
}
