//! `ferry import SOURCE --site site.yaml`: parse, call [`crate::site`], print.

use anyhow::bail;

use crate::cli::ImportArgs;
use crate::progress::Ui;

/// Runs `ferry import SOURCE --site site.yaml`.
pub async fn run_import(ui: &Ui, args: &ImportArgs) -> anyhow::Result<()> {
    let (Some(source), Some(site)) = (&args.source, &args.site) else {
        bail!("give the bundle and the site file: ferry import SOURCE --site site.yaml");
    };
    if args.run.dry_run {
        let plan = crate::site::dry_run(ui, source, site, &args.run, false).await?;
        ui.result(&plan, || crate::site::plan_text(&plan));
        return Ok(());
    }
    let summary = crate::site::import(ui, source, site, &args.run).await?;
    ui.result(&summary, || crate::site::summary_text(&summary));
    Ok(())
}
