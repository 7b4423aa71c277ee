//! A bundle as the commands are given it: opened (a layout directory, or packed volumes read in
//! place), the key it must be signed with, its signature checked and its index walked.

use anyhow::Context;

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
