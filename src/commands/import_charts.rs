//! `ferry import charts`: parse, call [`crate::import::charts`], print.

use crate::cli::ImportChartsArgs;
use crate::import::charts::Imported;
use crate::progress::Ui;

/// Runs `ferry import charts`.
pub async fn run(ui: &Ui, args: &ImportChartsArgs) -> anyhow::Result<()> {
    let result = crate::import::charts::run(ui, args).await?;
    ui.result(&result, || text(&result));
    Ok(())
}

/// The result for people.
pub fn text(result: &Imported) -> String {
    format!(
        "imported {} chart(s) into {}: {} written, {} already there; index.yaml lists {} chart version(s)\n",
        result.charts,
        result.target,
        result.report.written.len(),
        result.report.present.len(),
        result.report.index_entries
    )
}
