//! `ferry serve`: a bundle as a read-only OCI registry, for bootstrapping a site before Harbor
//! runs.
//!
//! Repositories are named as `import` names them (`quay.io/cilium/cilium`,
//! `localhost_5000/app`), and also by the upstream path alone (`cilium/cilium`) when only one
//! upstream registry has it, so a K3s mirror works with or without a rewrite rule.

pub mod apt;
pub mod catalog;
pub mod charts;
pub mod files;
pub mod git;
pub mod referrers;
pub mod registry;
pub mod route;
pub mod server;

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;

use crate::layout::graph::walk;
use crate::layout::verify::{VerifyError, read_verified_index};
use crate::layout::{Layout, LayoutError};
use crate::sign::VerifyingKey;

pub use catalog::Catalog;
pub use files::FileTree;
pub use registry::Registry;

/// Why a bundle cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The layout could not be opened or read.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// index.json is missing, unreadable, or its signature does not verify.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// Documents or blobs the index needs are missing or damaged.
    #[error(
        "cannot serve {bundle}: content its index names is missing or damaged:\n{}\nrun `ferry verify {bundle}` for a full report, then build the bundle again or copy it again",
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    Incomplete {
        /// The bundle directory.
        bundle: String,
        /// One line per problem.
        problems: Vec<String>,
    },
    /// The TLS certificate or key could not be used.
    #[error("cannot use {path} for TLS: {reason}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The error.
        reason: io::Error,
    },
}

/// A bundle checked and ready to serve.
#[derive(Debug)]
pub struct Bundle {
    /// What the registry serves.
    pub registry: Registry,
    /// The release files served under `/files/`.
    pub files: FileTree,
    /// Entries that are not served, and tags two entries claim.
    pub notes: Vec<String>,
    /// The charts served under `/charts/`.
    pub charts: charts::ChartRepo,
}

impl Bundle {
    /// Opens a bundle: checks the signature when a key is given, reads every manifest and
    /// index (each hashed against its digest), and checks that every blob file is there with
    /// the size its descriptor says. Blobs are not hashed (that is `ferry verify`'s work;
    /// clients check every digest they pull).
    pub fn open(layout: &Layout, key: Option<&VerifyingKey>) -> Result<Bundle, ServeError> {
        let root = layout.root();
        let (_, index) = read_verified_index(layout, key)?;
        let walked = walk(layout, &index);
        let mut problems: Vec<String> = walked
            .broken
            .iter()
            .map(|b| format!("{}: {}", b.reference, describe(&b.error)))
            .collect();
        let mut seen = BTreeSet::new();
        for entry in &walked.entries {
            for blob in &entry.blobs {
                if !seen.insert(blob.digest.clone())
                    || walked.checked_documents.contains(&blob.digest)
                {
                    continue;
                }
                let problem = match layout.blob_size(&blob.digest) {
                    Ok(Some(size)) if size == blob.size => continue,
                    Ok(Some(size)) => format!(
                        "blob {} has {size} bytes, its descriptor says {}",
                        blob.digest, blob.size
                    ),
                    Ok(None) => format!("blob {} is missing", blob.digest),
                    Err(e) => format!("blob {} cannot be read: {e}", blob.digest),
                };
                // A document already reported broken is not reported twice.
                if !problems.iter().any(|p| p.contains(blob.digest.as_str())) {
                    problems.push(format!("{}: {problem}", entry.reference));
                }
            }
        }
        if !problems.is_empty() {
            return Err(ServeError::Incomplete {
                bundle: root.display().to_string(),
                problems,
            });
        }
        let (catalog, mut notes) = Catalog::build(&walked.entries);
        let (files, file_notes) = FileTree::build(layout, &walked.entries);
        notes.extend(file_notes);
        let (charts, chart_notes) =
            charts::ChartRepo::build(layout, &walked.entries).map_err(|e| {
                ServeError::Incomplete {
                    bundle: root.display().to_string(),
                    problems: vec![e.to_string()],
                }
            })?;
        notes.extend(chart_notes);
        Ok(Bundle {
            registry: Registry::new(layout.clone(), catalog),
            files,
            notes,
            charts,
        })
    }
}

/// A broken document in words that fit serving (the layout's messages speak of downloads).
fn describe(error: &LayoutError) -> String {
    match error {
        LayoutError::MissingBlob { digest, .. } => format!("manifest {digest} is missing"),
        LayoutError::DigestMismatch {
            expected, actual, ..
        } => format!("manifest {expected} is corrupt (its bytes hash to {actual})"),
        other => other.to_string(),
    }
}
