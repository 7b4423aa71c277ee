//! `ferry install SOURCE --site site.yaml`: parse, call [`crate::site::install`], print.

use anyhow::bail;

use crate::cli::InstallArgs;
use crate::progress::Ui;
use crate::site::shell_words;

/// Runs `ferry install`.
pub async fn run(ui: &Ui, args: &InstallArgs) -> anyhow::Result<()> {
    if args.run.dry_run {
        let plan = crate::site::dry_run(ui, &args.source, &args.site, &args.run, true).await?;
        ui.result(&plan, || crate::site::plan_text(&plan));
        return Ok(());
    }
    let result = crate::site::install(ui, &args.source, &args.site, &args.run).await?;
    let exit = crate::site::exit_text(&result);
    ui.result(&result, || {
        format!(
            "install command {} exited with {exit}\n",
            shell_words(&result.command)
        )
    });
    if result.exit_code != Some(0) {
        bail!(
            "the install command {} (in {}) failed: exit code {exit}; the site's targets are filled, so after fixing it run the same command again",
            shell_words(&result.command),
            result.workdir
        );
    }
    Ok(())
}
