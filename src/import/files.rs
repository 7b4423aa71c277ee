//! `ferry import files`: verify the bundle, then write its release files into a directory
//! (and, with `--k3s-airgap-dir`, the directory k3s-ansible's airgap role reads).

use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::ImportFilesArgs;
use crate::destination::files::{
    Outcome, Placement, foreign_archives, k3s_airgap, place, plan, prepare, write_sums,
};
use crate::layout::Layout;
use crate::layout::files::{self, BundleFile};
use crate::layout::graph::walk;
use crate::layout::verify::read_verified_index;
use crate::manifest::files::format_mode;
use crate::progress::Ui;

/// One file written (or found in place).
#[derive(Serialize)]
pub struct Row {
    /// Its name in the directory.
    pub name: String,
    /// The bundle's file it holds, when its name differs (airgap layout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Bytes.
    pub size: u64,
    /// Content digest (hex).
    pub sha256: String,
    /// Mode, as `0755`.
    pub mode: String,
    /// Written now (else it was in place).
    pub written: bool,
}

/// One directory written.
#[derive(Serialize)]
pub struct DirReport {
    /// The directory.
    pub dir: String,
    /// Its files.
    pub files: Vec<Row>,
    /// Files written.
    pub written: usize,
    /// Files in place already.
    pub skipped: usize,
    /// The SHA256SUMS file.
    pub sums: String,
}

/// What `ferry import files` did.
#[derive(Serialize)]
pub struct Imported {
    /// The bundle.
    pub bundle: String,
    /// The files directory.
    #[serde(flatten)]
    pub to: DirReport,
    /// The K3s airgap directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k3s_airgap_dir: Option<DirReport>,
    /// Architectures laid out there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub k3s_arches: Vec<String>,
}

/// Writes the release files of a verified bundle into `to` (and the airgap directory);
/// `None` when the bundle holds no files.
pub fn import(
    ui: &Ui,
    layout: &Layout,
    key: Option<&crate::sign::VerifyingKey>,
    to: &Path,
    k3s_airgap_dir: Option<&Path>,
    source: &Path,
) -> anyhow::Result<Option<Imported>> {
    // The index was verified by the caller; read it again with the same check, since it is
    // the root of every digest and name that follows.
    let (_, index) = read_verified_index(layout, key)?;
    let walked = walk(layout, &index);
    let bundle_files: Vec<BundleFile> = walked
        .entries
        .iter()
        .filter(|e| e.kind == files::KIND)
        .map(|e| files::read(layout, e))
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "refusing the files of {}; nothing was written",
                source.display()
            )
        })?;

    // Everything is planned and checked before the first byte is written.
    let placements = plan(&bundle_files).context("nothing was written")?;
    let airgap = match k3s_airgap_dir {
        Some(dir) => Some((
            dir,
            k3s_airgap(&bundle_files).with_context(|| {
                format!(
                    "cannot lay out {} for k3s-ansible's airgap_dir",
                    dir.display()
                )
            })?,
        )),
        None => None,
    };
    if bundle_files.is_empty() {
        ui.warn(format!(
            "{} holds no files (spec.files of its manifest was empty); nothing to write",
            source.display()
        ));
        return Ok(None);
    }

    // A delta's files left to its base must already be in place, in every directory.
    let mut missing = Vec::new();
    for (dir, list) in std::iter::once((to, &placements))
        .chain(airgap.as_ref().map(|(dir, k3s)| (*dir, &k3s.placements)))
    {
        for p in list.iter().filter(|p| !layout.has_blob(&p.file.digest)) {
            if !crate::layout::delta::file_holds(&dir.join(&p.name), &p.file.digest, p.file.size) {
                missing.push(format!(
                    "{} ({})",
                    dir.join(&p.name).display(),
                    p.file.digest
                ));
            }
        }
    }
    if !missing.is_empty() {
        bail!(crate::layout::delta::missing_base_message(to, &missing));
    }
    let to = write_dir(ui, layout, to, &placements)?;
    let (k3s_airgap_dir, k3s_arches) = match airgap {
        Some((dir, k3s)) => {
            for note in &k3s.notes {
                ui.warn(note);
            }
            let report = write_dir(ui, layout, dir, &k3s.placements)?;
            for name in foreign_archives(dir, &k3s.placements) {
                ui.warn(format!(
                    "{} also holds {name}, which the airgap role copies to every node as an image archive; remove it if it does not belong to this release",
                    dir.display()
                ));
            }
            (Some(report), k3s.arches)
        }
        None => (None, Vec::new()),
    };
    Ok(Some(Imported {
        bundle: source.display().to_string(),
        to,
        k3s_airgap_dir,
        k3s_arches,
    }))
}

/// Writes the placements into `dir` and its SHA256SUMS.
fn write_dir(
    ui: &Ui,
    layout: &Layout,
    dir: &Path,
    placements: &[Placement],
) -> anyhow::Result<DirReport> {
    let total: u64 = placements.iter().map(|p| p.file.size).sum();
    // The files not in place yet (by size: a file of another content is replaced).
    let needed: u64 = placements
        .iter()
        .filter(|p| std::fs::metadata(dir.join(&p.name)).map(|m| m.len()).ok() != Some(p.file.size))
        .map(|p| p.file.size)
        .sum();
    crate::fsutil::ensure_space(
        dir,
        needed,
        &format!("the release files for {}", dir.display()),
    )?;
    prepare(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let bar = ui.bytes_bar(total, "write");
    let mut rows = Vec::new();
    // In the order the media holds them (packed volumes: each stick once).
    let mut ordered: Vec<&Placement> = placements.iter().collect();
    ordered.sort_by_key(|p| layout.blob_order_key(&p.file.digest));
    for p in ordered {
        // A delta's file left to its base was hashed in place before anything was written.
        let outcome = if layout.has_blob(&p.file.digest) {
            place(layout, dir, p)
        } else {
            Ok(Outcome::Skipped)
        }
        .with_context(|| {
            format!(
                "cannot write {} into {}; files written so far stay, run the same command again to finish",
                p.name,
                dir.display()
            )
        })?;
        bar.inc(p.file.size);
        rows.push(Row {
            name: p.name.clone(),
            from: (p.name != p.file.name).then(|| p.file.name.clone()),
            size: p.file.size,
            sha256: p.file.digest.hex().to_string(),
            mode: format_mode(p.mode),
            written: outcome == Outcome::Written,
        });
    }
    bar.finish_and_clear();
    let sums = write_sums(dir, placements)
        .with_context(|| format!("cannot write the SHA256SUMS of {}", dir.display()))?;
    // Reported in the bundle's order, whatever order the media needed.
    rows.sort_by_key(|r| placements.iter().position(|p| p.name == r.name));
    let written = rows.iter().filter(|r| r.written).count();
    Ok(DirReport {
        dir: dir.display().to_string(),
        skipped: rows.len() - written,
        written,
        files: rows,
        sums: sums.display().to_string(),
    })
}

/// `ferry import files` whole: the bundle opened and verified, its files written; `None` when
/// it holds none.
pub fn run(ui: &Ui, args: &ImportFilesArgs) -> anyhow::Result<Option<Imported>> {
    let (layout, key) = crate::bundle::open_verified(ui, &args.source, &args.volumes, &args.trust)?;
    import(
        ui,
        &layout,
        key.as_ref(),
        &args.to,
        args.k3s_airgap_dir.as_deref(),
        &args.source,
    )
}
