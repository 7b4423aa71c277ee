//! `ferry import apt`: parse, call [`crate::import::apt`], print.

use crate::cli::ImportAptArgs;
use crate::import::apt::Imported;
use crate::progress::{Ui, human_bytes};

/// Runs `ferry import apt`.
pub fn run(ui: &Ui, args: &ImportAptArgs) -> anyhow::Result<()> {
    let result = crate::import::apt::run(ui, args)?;
    ui.result(&result, || text(&result));
    Ok(())
}

/// The result for people.
pub fn text(result: &Imported) -> String {
    format!(
        "apt mirror {} (suites {}): {} package entries; {} .deb files copied ({}), {} already there\nsigned by {}\nfor hosts: {} and {}\n",
        result.mirror,
        result.suites.join(", "),
        result.report.packages,
        result.report.copied,
        human_bytes(result.report.copied_bytes),
        result.report.present,
        result.fingerprint,
        result.sources_file,
        result.keyring
    )
}
