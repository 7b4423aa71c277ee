//! `ferry verify`.

use anyhow::bail;

use crate::cli::VerifyArgs;
use crate::layout::Layout;
use crate::layout::verify::{BlobFault, VerifyReport, verify};
use crate::progress::{Ui, human_bytes};

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
    let report = check(ui, &layout, key.as_ref(), args.jobs)?;
    ui.result(&report, || text(&report, &args.dir.display().to_string()));
    if !report.is_ok() {
        bail!(
            "{} is damaged: {} blob(s) missing or corrupt (listed above). Do not import it; copy the bundle again from the source, or rebuild it with `ferry build`",
            args.dir.display(),
            report.problems.len()
        );
    }
    Ok(())
}

/// Verifies a layout with a progress bar; the report lists any damage (not an error here).
pub fn check(
    ui: &Ui,
    layout: &Layout,
    key: Option<&crate::sign::VerifyingKey>,
    jobs: Option<usize>,
) -> anyhow::Result<VerifyReport> {
    let threads = jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    let bar = ui.bytes_bar(blob_bytes_on_disk(layout), "verify");
    let on_bytes = |n: u64| bar.inc(n);
    let report = verify(layout, key, threads, &on_bytes)?;
    bar.finish_and_clear();
    Ok(report)
}

/// Verifies a bundle before anything is taken from it; any damage is an error listing it.
pub fn require_verified(
    ui: &Ui,
    layout: &Layout,
    key: Option<&crate::sign::VerifyingKey>,
) -> anyhow::Result<VerifyReport> {
    // Packed volumes are read once by the import, every digest checked on the way.
    let report = if layout.is_packed() {
        crate::layout::verify::verify_structure(layout, key)?
    } else {
        check(ui, layout, key, None)?
    };
    if !report.is_ok() {
        bail!(
            "{}{} is damaged: {} blob(s) missing or corrupt, so nothing was imported. Copy the bundle again from the source",
            text(&report, &layout.root().display().to_string()),
            layout.root().display(),
            report.problems.len()
        );
    }
    match &report.signed_by {
        Some(f) if layout.is_packed() => ui.status(format!(
            "verified {}: signed by {f}, {} blobs listed in its volumes ({}); each digest is checked as it is read",
            layout.root().display(),
            report.blobs,
            human_bytes(report.bytes)
        )),
        Some(f) => ui.status(format!(
            "verified {}: signed by {f}, {} blobs, {} checked",
            layout.root().display(),
            report.blobs,
            human_bytes(report.bytes)
        )),
        None => ui.warn(format!(
            "{}: signature NOT checked (--no-signature); {} blobs checked",
            layout.root().display(),
            report.blobs
        )),
    }
    Ok(report)
}

fn blob_bytes_on_disk(layout: &Layout) -> u64 {
    // Packed volumes: unknown until the index is walked; the bar then counts without a total.
    layout.stored_blob_bytes()
}

fn text(report: &VerifyReport, dir: &str) -> String {
    let mut out = String::new();
    match &report.signed_by {
        Some(f) => out.push_str(&format!("signature OK: index.json signed by key {f}\n")),
        None => out.push_str("signature NOT checked (--no-signature)\n"),
    }
    for p in &report.problems {
        let what = match &p.fault {
            BlobFault::Missing => "missing".to_string(),
            BlobFault::Corrupt { actual } => format!("corrupt (content hashes to {actual})"),
            BlobFault::WrongSize { expected, actual } => {
                format!("wrong size ({actual} bytes, expected {expected})")
            }
            BlobFault::Unreadable { reason } => format!("unreadable: {reason}"),
            BlobFault::Io { reason } => format!("cannot be read: {reason}"),
        };
        out.push_str(&format!(
            "{} {what}\n    used by: {}\n",
            p.digest,
            if p.used_by.is_empty() {
                "-".to_string()
            } else {
                p.used_by.join(", ")
            }
        ));
        if crate::s3::is_s3(dir) {
            // The object to look at (or to copy again) in the bucket.
            out.push_str(&format!(
                "    object: {dir}/blobs/sha256/{}\n",
                p.digest.hex()
            ));
        }
    }
    if let Some(base) = &report.delta_base {
        out.push_str(&format!(
            "delta bundle: {} blobs are left to the base release (index {base}) and must already be on site\n",
            report.left_to_base
        ));
    }
    if report.is_ok() {
        out.push_str(&format!(
            "{dir}: {} entries, {} blobs, {} checked, all digests match\n",
            report.entries,
            report.blobs,
            human_bytes(report.bytes)
        ));
    }
    out
}
