//! `ferry import registry`: parse, call [`crate::import::registry`], print.

use crate::cli::ImportRegistryArgs;
use crate::import::registry::Imported;
use crate::progress::{Ui, human_bytes};

/// Runs `ferry import registry`.
pub async fn run(ui: &Ui, args: &ImportRegistryArgs) -> anyhow::Result<()> {
    let result = crate::import::registry::run(ui, args).await?;
    ui.result(&result, || text(&result));
    Ok(())
}

/// The result for people.
pub fn text(r: &Imported) -> String {
    let p = &r.push;
    let mut charts = match r.charts {
        0 => String::new(),
        n => format!(" and {n} chart{}", if n == 1 { "" } else { "s" }),
    };
    if r.referrers > 0 {
        charts.push_str(&format!(
            " (with {} signature/attestation/SBOM referrers)",
            r.referrers
        ));
    }
    if p.uploaded_blobs == 0 && p.mounted_blobs == 0 && p.pushed_manifests == 0 {
        return format!(
            "nothing to upload: all {} images{charts} ({} blobs, {}) are already on {}\n",
            r.images,
            p.skipped_blobs,
            human_bytes(p.skipped_bytes),
            r.target
        );
    }
    format!(
        "imported {} images{charts} into {} in {:.1}s\n  blobs: {} uploaded ({}), {} mounted, {} already present ({})\n  manifests: {} pushed, {} already present\n",
        r.images,
        r.target,
        r.seconds,
        p.uploaded_blobs,
        human_bytes(p.uploaded_bytes),
        p.mounted_blobs,
        p.skipped_blobs,
        human_bytes(p.skipped_bytes),
        p.pushed_manifests,
        p.skipped_manifests
    )
}
