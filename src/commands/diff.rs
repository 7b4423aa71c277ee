//! `ferry diff OLD NEW`: what changed between two releases.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::DiffArgs;
use crate::digest::Digest;
use crate::layout::graph::{Entry, walk};
use crate::layout::oci::Index;
use crate::progress::{Ui, human_bytes};

#[derive(Serialize)]
struct Changed {
    kind: String,
    reference: String,
    old: Digest,
    new: Digest,
}

#[derive(Serialize)]
struct Listed {
    kind: String,
    reference: String,
    digest: Digest,
}

#[derive(Serialize)]
struct Diff {
    added: Vec<Listed>,
    removed: Vec<Listed>,
    changed: Vec<Changed>,
    unchanged: usize,
    /// Bytes of blobs NEW has that OLD does not.
    bytes_new: u64,
    /// Bytes of NEW's blobs that OLD has too.
    bytes_shared: u64,
    blobs_new: usize,
}

fn entries(ui: &Ui, path: &std::path::Path) -> anyhow::Result<Vec<Entry>> {
    let layout = super::open_bundle(path, &Default::default(), ui, false)?;
    let bytes = layout
        .read_index_bytes()?
        .with_context(|| format!("{} has no index.json", path.display()))?;
    let index: Index = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}/index.json is not a valid OCI index", path.display()))?;
    let walked = walk(&layout, &index);
    if let Some(broken) = walked.broken.first() {
        bail!(
            "{}: {} (run `ferry verify` on it)",
            path.display(),
            broken.error
        );
    }
    Ok(walked.entries)
}

/// Runs `ferry diff`.
pub fn run(ui: &Ui, args: &DiffArgs) -> anyhow::Result<()> {
    let old = entries(ui, &args.old)?;
    let new = entries(ui, &args.new)?;
    let key = |e: &Entry| (e.kind.clone(), e.reference.clone());
    let old_by: BTreeMap<_, &Entry> = old.iter().map(|e| (key(e), e)).collect();
    let new_by: BTreeMap<_, &Entry> = new.iter().map(|e| (key(e), e)).collect();
    let listed = |e: &Entry| Listed {
        kind: e.kind.clone(),
        reference: e.reference.clone(),
        digest: e.descriptor.digest.clone(),
    };
    let mut diff = Diff {
        added: new_by
            .iter()
            .filter(|(k, _)| !old_by.contains_key(*k))
            .map(|(_, e)| listed(e))
            .collect(),
        removed: old_by
            .iter()
            .filter(|(k, _)| !new_by.contains_key(*k))
            .map(|(_, e)| listed(e))
            .collect(),
        changed: Vec::new(),
        unchanged: 0,
        bytes_new: 0,
        bytes_shared: 0,
        blobs_new: 0,
    };
    for (k, n) in &new_by {
        if let Some(o) = old_by.get(k) {
            if o.descriptor.digest == n.descriptor.digest {
                diff.unchanged += 1;
            } else {
                diff.changed.push(Changed {
                    kind: n.kind.clone(),
                    reference: n.reference.clone(),
                    old: o.descriptor.digest.clone(),
                    new: n.descriptor.digest.clone(),
                });
            }
        }
    }
    let old_blobs: BTreeSet<&Digest> = old
        .iter()
        .flat_map(|e| e.blobs.iter().map(|b| &b.digest))
        .collect();
    let mut seen = BTreeSet::new();
    for blob in new.iter().flat_map(|e| e.blobs.iter()) {
        if !seen.insert(&blob.digest) {
            continue;
        }
        if old_blobs.contains(&blob.digest) {
            diff.bytes_shared += blob.size;
        } else {
            diff.bytes_new += blob.size;
            diff.blobs_new += 1;
        }
    }
    ui.result(&diff, || {
        let mut t = String::new();
        for a in &diff.added {
            t.push_str(&format!("+ {:<6} {}  {}\n", a.kind, a.reference, a.digest.short()));
        }
        for r in &diff.removed {
            t.push_str(&format!("- {:<6} {}  {}\n", r.kind, r.reference, r.digest.short()));
        }
        for c in &diff.changed {
            t.push_str(&format!(
                "~ {:<6} {}  {} -> {}\n",
                c.kind,
                c.reference,
                c.old.short(),
                c.new.short()
            ));
        }
        t.push_str(&format!(
            "{} added, {} removed, {} changed, {} unchanged; {} new in {} blobs, {} shared with {}\n",
            diff.added.len(),
            diff.removed.len(),
            diff.changed.len(),
            diff.unchanged,
            human_bytes(diff.bytes_new),
            diff.blobs_new,
            human_bytes(diff.bytes_shared),
            args.old.display()
        ));
        t
    });
    Ok(())
}
