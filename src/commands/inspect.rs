//! `ferry inspect`.

use std::collections::BTreeMap;

use anyhow::bail;
use serde::Serialize;

use crate::cli::InspectArgs;
use crate::digest::Digest;
use crate::layout::graph::walk;
use crate::layout::oci::{
    ANNOTATION_LOCK_DIGEST, ANNOTATION_RELEASE_NAME, ANNOTATION_RELEASE_VERSION, Index,
};
use crate::progress::{Ui, human_bytes};

#[derive(Serialize)]
struct EntryRow {
    kind: String,
    reference: String,
    digest: Digest,
    platforms: Vec<String>,
    size: u64,
    shared_size: u64,
    /// A file's name on site and its mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<FileRow>,
    /// A referrer's subject and artifact type.
    #[serde(skip_serializing_if = "Option::is_none")]
    referrer: Option<ReferrerRow>,
}

#[derive(Serialize)]
struct ReferrerRow {
    subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
}

/// A referrer entry's subject (from its annotation) and artifact type.
fn referrer_row(entry: &crate::layout::graph::Entry) -> Option<ReferrerRow> {
    if entry.kind != crate::source::referrers::KIND {
        return None;
    }
    Some(ReferrerRow {
        subject: entry
            .descriptor
            .annotations
            .get(crate::source::referrers::ANNOTATION_SUBJECT)
            .cloned()
            .unwrap_or_default(),
        artifact_type: entry.descriptor.artifact_type.clone(),
    })
}

#[derive(Serialize)]
struct FileRow {
    name: String,
    mode: String,
    size: u64,
}

/// A file entry's name, mode and size, from its layer's annotations (not checked here:
/// inspect only shows; import checks).
fn file_row(entry: &crate::layout::graph::Entry) -> Option<FileRow> {
    if entry.kind != crate::layout::files::KIND {
        return None;
    }
    let layer = entry.blobs.iter().find(|b| {
        b.annotations
            .contains_key(crate::layout::artifact::ANNOTATION_TITLE)
    })?;
    Some(FileRow {
        name: layer.annotations[crate::layout::artifact::ANNOTATION_TITLE].clone(),
        mode: layer
            .annotations
            .get(crate::layout::files::ANNOTATION_MODE)
            .cloned()
            .unwrap_or_default(),
        size: layer.size,
    })
}

#[derive(Serialize)]
struct Totals {
    entries: usize,
    blobs: usize,
    /// Bytes on disk: every distinct blob once.
    unique_size: u64,
    /// Sum of the entries' sizes, counting shared blobs once per entry.
    total_size: u64,
}

#[derive(Serialize)]
struct Inspection {
    bundle: String,
    /// For a delta bundle: the index digest of its base release.
    #[serde(skip_serializing_if = "Option::is_none")]
    delta_base: Option<Digest>,
    /// For a delta bundle: blobs (and their bytes) left to the base.
    #[serde(skip_serializing_if = "Option::is_none")]
    left_to_base: Option<(usize, u64)>,
    release: Option<String>,
    version: Option<String>,
    lock_digest: Option<String>,
    signed: bool,
    entries: Vec<EntryRow>,
    totals: Totals,
}

/// Runs `ferry inspect`.
pub fn run(ui: &Ui, args: &InspectArgs) -> anyhow::Result<()> {
    // The table of contents (volume 1) is all inspect reads.
    let layout = super::open_bundle(&args.dir, &args.volumes, ui, false)?;
    let Some(bytes) = layout.read_index_bytes()? else {
        bail!(
            "{} has no index.json: it is not a complete bundle (run `ferry build` again)",
            args.dir.display()
        );
    };
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "{}/index.json is not a valid OCI index: {e}",
            args.dir.display()
        )
    })?;
    let walked = walk(&layout, &index);
    if let Some(broken) = walked.broken.first() {
        bail!(
            "{}: {} (run `ferry verify` for a full report)",
            broken.reference,
            broken.error
        );
    }
    let mut users: BTreeMap<&Digest, (u64, usize)> = BTreeMap::new();
    for entry in &walked.entries {
        for blob in &entry.blobs {
            let slot = users.entry(&blob.digest).or_insert((blob.size, 0));
            slot.1 += 1;
        }
    }
    let rows: Vec<EntryRow> = walked
        .entries
        .iter()
        .map(|e| EntryRow {
            kind: e.kind.clone(),
            reference: e.reference.clone(),
            digest: e.descriptor.digest.clone(),
            platforms: e.platforms.clone(),
            size: e.size(),
            shared_size: e
                .blobs
                .iter()
                .filter(|b| users.get(&b.digest).is_some_and(|u| u.1 > 1))
                .map(|b| b.size)
                .sum(),
            file: file_row(e),
            referrer: referrer_row(e),
        })
        .collect();
    let totals = Totals {
        entries: rows.len(),
        blobs: users.len(),
        unique_size: users.values().map(|u| u.0).sum(),
        total_size: rows.iter().map(|r| r.size).sum(),
    };
    let omitted = crate::layout::delta::read_omitted(&layout, &index)?;
    let result = Inspection {
        bundle: args.dir.display().to_string(),
        left_to_base: omitted
            .as_ref()
            .map(|o| (o.blobs.len(), o.blobs.values().sum())),
        delta_base: omitted.map(|o| o.base),
        release: index.annotations.get(ANNOTATION_RELEASE_NAME).cloned(),
        version: index.annotations.get(ANNOTATION_RELEASE_VERSION).cloned(),
        lock_digest: index.annotations.get(ANNOTATION_LOCK_DIGEST).cloned(),
        signed: layout.read_signature()?.is_some(),
        entries: rows,
        totals,
    };
    ui.result(&result, || text(&result));
    Ok(())
}

fn text(r: &Inspection) -> String {
    let mut out = String::new();
    if let (Some(name), Some(version)) = (&r.release, &r.version) {
        out.push_str(&format!("release {name} {version}"));
        out.push_str(if r.signed {
            " (signed)\n"
        } else {
            " (not signed)\n"
        });
    }
    if let (Some(base), Some((blobs, bytes))) = (&r.delta_base, r.left_to_base) {
        out.push_str(&format!(
            "delta of base release {base}: {blobs} blobs ({}) are left to the base\n",
            human_bytes(bytes)
        ));
    }
    let width = r
        .entries
        .iter()
        .map(|e| e.reference.len())
        .max()
        .unwrap_or(9)
        .max(9);
    // A file has no platforms: its name and mode on site go in that column.
    let details: Vec<String> = r
        .entries
        .iter()
        .map(|e| match (&e.file, &e.referrer) {
            (Some(f), _) => format!("{} ({})", f.name, f.mode),
            // A referrer has no platforms: what it refers to, and what it is.
            (None, Some(r)) => format!(
                "of {}{}",
                r.subject.get(..19).unwrap_or(&r.subject),
                r.artifact_type
                    .as_deref()
                    .map(|t| format!(" {t}"))
                    .unwrap_or_default()
            ),
            (None, None) => e.platforms.join(","),
        })
        .collect();
    let details_width = details.iter().map(|d| d.len()).max().unwrap_or(0).max(28);
    out.push_str(&format!(
        "{:<8} {:<width$} {:<19} {:<details_width$} {:>10} {:>10}\n",
        "KIND", "REFERENCE", "DIGEST", "PLATFORMS", "SIZE", "SHARED"
    ));
    for (e, details) in r.entries.iter().zip(&details) {
        out.push_str(&format!(
            "{:<8} {:<width$} {:<19} {:<details_width$} {:>10} {:>10}\n",
            e.kind,
            e.reference,
            e.digest.short(),
            details,
            human_bytes(e.size),
            human_bytes(e.shared_size)
        ));
    }
    out.push_str(&format!(
        "{} entries, {} blobs, {} on disk ({} if nothing were shared)\n",
        r.totals.entries,
        r.totals.blobs,
        human_bytes(r.totals.unique_size),
        human_bytes(r.totals.total_size)
    ));
    out
}
