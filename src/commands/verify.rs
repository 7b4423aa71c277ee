//! `ferry verify`.

use anyhow::bail;

use crate::cli::VerifyArgs;
use crate::progress::Ui;

/// Runs `ferry verify`; exits non-zero when anything is wrong.
pub fn run(ui: &Ui, args: &VerifyArgs) -> anyhow::Result<()> {
    let report = crate::bundle::verify_bundle(ui, args)?;
    ui.result(&report, || {
        crate::bundle::report_text(&report, &args.dir.display().to_string())
    });
    if !report.is_ok() {
        bail!(
            "{} is damaged: {} blob(s) missing or corrupt (listed above). Do not import it; copy the bundle again from the source, or rebuild it with `ferry build`",
            args.dir.display(),
            report.problems.len()
        );
    }
    Ok(())
}
