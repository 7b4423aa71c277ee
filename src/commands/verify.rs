//! `ferry verify`.

use anyhow::bail;

use crate::cli::VerifyArgs;
use crate::progress::Ui;

/// Runs `ferry verify`; exits non-zero when anything is wrong.
pub fn run(ui: &Ui, args: &VerifyArgs) -> anyhow::Result<()> {
    let key = match (&args.key, args.no_signature) {
        (Some(path), false) => Some(super::load_verifying_key(path)?),
        (None, true) => None,
        (Some(_), true) => bail!("give either --key or --no-signature, not both"),
        (None, false) => bail!(
            "give the public key with --key cosign.pub, or --no-signature to check blobs only"
        ),
    };
    let layout = super::open_bundle(&args.dir, &args.volumes, ui, true)?;
    let report = crate::bundle::check(ui, &layout, key.as_ref(), args.jobs)?;
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
