//! A bundle as the commands are given it: opened (a layout directory, or packed volumes read in
//! place), the key it must be signed with, its signature checked and its index walked.

use anyhow::{Context, bail};

use crate::layout::Layout;
use crate::layout::verify::{BlobFault, VerifyReport, verify};
use crate::progress::{Ui, human_bytes};

/// The key a bundle must be signed with, from `--key` / `--no-signature` (None: not checked).
pub fn trust_key(
    trust: &crate::cli::TrustArgs,
) -> anyhow::Result<Option<crate::sign::VerifyingKey>> {
    match (&trust.key, trust.no_signature) {
        (Some(path), false) => Ok(Some(load_verifying_key(path)?)),
        (None, true) => Ok(None),
        (Some(_), true) => anyhow::bail!("give either --key or --no-signature, not both"),
        (None, false) => anyhow::bail!(
            "give the public key the bundle must be signed with (--key cosign.pub), or --no-signature"
        ),
    }
}

/// Loads a cosign.pub.
pub fn load_verifying_key(path: &std::path::Path) -> anyhow::Result<crate::sign::VerifyingKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read public key {}", path.display()))?;
    crate::sign::VerifyingKey::from_pem(&pem)
        .with_context(|| format!("cannot use public key {}", path.display()))
}

/// Checks a bundle's signature (said on the status line, or warned when `--no-signature`) and
/// walks its index; the first broken entry is an error, as nothing may be imported from a
/// bundle that does not hold together. For the imports (`import registry`, `import --site`).
pub fn verified_entries(
    ui: &crate::progress::Ui,
    layout: &crate::layout::Layout,
    key: Option<&crate::sign::VerifyingKey>,
) -> anyhow::Result<(crate::layout::oci::Index, Vec<crate::layout::graph::Entry>)> {
    // The signature first: index.json is the root of every digest that follows, and every
    // manifest is checked against it as it is read.
    let (_, index) = crate::layout::verify::read_verified_index(layout, key)?;
    match key {
        Some(k) => ui.status(format!(
            "signature OK: {} signed by {}",
            layout.root().join("index.json").display(),
            k.fingerprint()
        )),
        None => ui.warn(format!(
            "{}: signature NOT checked (--no-signature)",
            layout.root().display()
        )),
    }
    let walked = crate::layout::graph::walk(layout, &index);
    if let Some(broken) = walked.broken.into_iter().next() {
        anyhow::bail!(
            "{}: {} ({}); nothing was imported. Run `ferry verify` for a full report and copy the bundle again",
            layout.root().display(),
            broken.error,
            broken.reference
        );
    }
    Ok((index, walked.entries))
}

/// Opens a bundle given on the command line: a layout directory, or packed volumes read in
/// place. `all_volumes`: the command reads blobs, so without `--wait` (or a terminal) every
/// volume must be there before anything starts, and a missing one is named up front.
pub fn open_bundle(
    source: &std::path::Path,
    volumes: &crate::cli::VolumeArgs,
    ui: &crate::progress::Ui,
    all_volumes: bool,
) -> anyhow::Result<crate::layout::Layout> {
    use crate::archive::volumes::{VolumeEvent, VolumeOptions, VolumeSet, is_packed_source};
    use std::io::IsTerminal;
    if crate::layout::s3_location(source)?.is_some() {
        return Ok(crate::layout::Layout::open(source)?);
    }
    if !source.exists() {
        anyhow::bail!(
            "{}: no such bundle directory or volume; give the directory `ferry build` wrote, or a volume `ferry pack` wrote",
            source.display()
        );
    }
    if !is_packed_source(source) {
        return Ok(crate::layout::Layout::open(source)?);
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let status = ui.clone();
    let options = VolumeOptions {
        dir: volumes.volumes_dir.clone(),
        wait: volumes.wait || interactive,
        observer: Some(std::sync::Arc::new(
            move |event: &VolumeEvent| match event {
                VolumeEvent::Waiting {
                    number,
                    count,
                    file,
                    dir,
                } => {
                    let of = if *count > 0 {
                        format!(" of {count}")
                    } else {
                        String::new()
                    };
                    status.warn(format!(
                    "volume {number}{of} is needed: insert the medium holding {file} (looking in {}); waiting, Ctrl-C to stop",
                    dir.display()
                ));
                }
                VolumeEvent::Reading {
                    number,
                    count,
                    path,
                } => status.status(format!(
                    "reading volume {number} of {count}: {}",
                    path.display()
                )),
            },
        )),
        poll: None,
    };
    let set = VolumeSet::open(source, options)
        .with_context(|| format!("cannot read the packed bundle {}", source.display()))?;
    if all_volumes {
        set.require_all()?;
    }
    Ok(crate::layout::Layout::packed(std::sync::Arc::new(set)))
}

/// Reads the password for a private key from the environment.
pub fn key_password() -> anyhow::Result<String> {
    crate::sign::password_from_env().ok_or_else(|| {
        anyhow::anyhow!(
            "no key password: set FERRY_KEY_PASSWORD (or COSIGN_PASSWORD) to the password of cosign.key"
        )
    })
}

/// Loads and decrypts a cosign.key.
pub fn load_signing_key(path: &std::path::Path) -> anyhow::Result<crate::sign::SigningKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read private key {}", path.display()))?;
    let password = key_password()?;
    crate::sign::SigningKey::from_encrypted_pem(&pem, password.as_bytes())
        .with_context(|| format!("cannot use private key {}", path.display()))
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

/// Opens the bundle a per-target import names and verifies it whole (`--key` or
/// `--no-signature` as given) before anything is taken from it: the layout and the key.
pub fn open_verified(
    ui: &Ui,
    source: &std::path::Path,
    volumes: &crate::cli::VolumeArgs,
    trust: &crate::cli::TrustArgs,
) -> anyhow::Result<(Layout, Option<crate::sign::VerifyingKey>)> {
    let key = trust_key(trust)?;
    let layout = open_bundle(source, volumes, ui, true)?;
    require_verified(ui, &layout, key.as_ref())?;
    Ok((layout, key))
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
            report_text(&report, &layout.root().display().to_string()),
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

/// A verify report for people: the signature, every damaged blob and what uses it.
pub fn report_text(report: &VerifyReport, dir: &str) -> String {
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

/// `ferry verify` whole: the key from `--key` / `--no-signature`, the bundle opened (every
/// volume there), every blob checked; the report lists any damage (not an error here).
pub fn verify_bundle(ui: &Ui, args: &crate::cli::VerifyArgs) -> anyhow::Result<VerifyReport> {
    let key = match (&args.key, args.no_signature) {
        (Some(path), false) => Some(load_verifying_key(path)?),
        (None, true) => None,
        (Some(_), true) => bail!("give either --key or --no-signature, not both"),
        (None, false) => bail!(
            "give the public key with --key cosign.pub, or --no-signature to check blobs only"
        ),
    };
    let layout = open_bundle(&args.dir, &args.volumes, ui, true)?;
    check(ui, &layout, key.as_ref(), args.jobs)
}
