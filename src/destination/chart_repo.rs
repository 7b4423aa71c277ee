//! A classic Helm chart repository: a directory of `<name>-<version>.tgz` files and an
//! `index.yaml`, as `helm repo index` writes it, filled from a bundle's charts.
//!
//! Entries carry the chart's Chart.yaml fields (as Helm reads them), `urls` (relative to the
//! repository, or under a base URL), `created` and `digest` (the archive's SHA-256, hex). An
//! existing index.yaml is merged: its entries stay, a chart version the bundle also has is
//! kept when it is the same archive and refused when it is another one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::digest::{Digest, HashingWriter};
use crate::fsutil::{Access, TempFile};
use crate::layout::graph::Entry;
use crate::layout::oci::{Descriptor, Manifest as OciManifest};
use crate::layout::{Layout, LayoutError, write_atomic};
use crate::manifest::helm_chart::{chart_name, chart_version};
use crate::source::helm::archive;
use crate::source::helm::metadata::{ANNOTATION_CREATED, Metadata};
use crate::source::helm::version::sort_descending;
use crate::source::helm::{KIND, chart_layer};
use crate::time::rfc3339;

/// The index file of a chart repository.
pub const INDEX_FILE: &str = "index.yaml";
/// Largest existing index.yaml read for merging.
const MAX_EXISTING_INDEX: u64 = 64 << 20;

/// Errors writing a chart repository; each names the file or chart and the next step.
#[derive(Debug, thiserror::Error)]
pub enum ChartRepoError {
    /// A delta bundle whose base charts are not in the repository.
    #[error("{message}")]
    MissingBase {
        /// What is missing and what to do.
        message: String,
    },
    /// The bundle's store failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A chart entry of the bundle is not a readable chart.
    #[error("bundle entry {reference}: {reason}")]
    BadEntry {
        /// The entry's reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// File system trouble in the target directory.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The existing index.yaml cannot be read.
    #[error(
        "{path} is not a Helm repository index ({reason}); move it away or fix it, then run the import again"
    )]
    BadIndex {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The directory already holds another archive under the same name and version.
    #[error(
        "{path} already holds {name} {version} with digest {existing}, but the bundle's is {incoming}; a chart version must not change: remove the old one from the repository first, or publish the chart under a new version"
    )]
    Conflict {
        /// The file or index.
        path: PathBuf,
        /// Chart name.
        name: String,
        /// Chart version.
        version: String,
        /// Digest of what is there.
        existing: String,
        /// Digest of what the bundle has.
        incoming: String,
    },
    /// An archive changed while it was copied.
    #[error(
        "{path}: the copied archive hashes to {actual}, not {expected}; nothing was kept. Verify the bundle again"
    )]
    CopyMismatch {
        /// The target file.
        path: PathBuf,
        /// What it should be.
        expected: Digest,
        /// What was copied.
        actual: Digest,
    },
}

/// index.yaml's `entries`: chart name to its versions.
type Entries = BTreeMap<String, Vec<Value>>;

/// A chart of a bundle, as a chart repository lists it.
#[derive(Debug, Clone)]
pub struct BundleChart {
    /// The entry's reference in the bundle.
    pub reference: String,
    /// The chart archive's blob.
    pub archive: Descriptor,
    /// Its Chart.yaml.
    pub metadata: Metadata,
    /// When it was created (the manifest's annotation, else when it was packaged).
    pub created: String,
}

impl BundleChart {
    /// `<name>-<version>.tgz`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.metadata.name, self.metadata.version)
    }

    /// The archive's digest as index.yaml writes it (hex).
    pub fn index_digest(&self) -> &str {
        self.archive.digest.hex()
    }

    /// The index.yaml entry: Chart.yaml's fields with `urls`, `created` and `digest`, keys
    /// sorted as Helm writes them.
    pub fn index_entry(&self, base_url: Option<&str>) -> Value {
        let mut fields: BTreeMap<String, Value> = self.metadata.to_json().into_iter().collect();
        let url = match base_url {
            Some(base) => format!("{}/{}", base.trim_end_matches('/'), self.file_name()),
            None => self.file_name(),
        };
        fields.insert("urls".into(), json!([url]));
        fields.insert("created".into(), json!(self.created));
        fields.insert("digest".into(), json!(self.index_digest()));
        Value::Object(fields.into_iter().collect())
    }
}

/// Reads every chart entry of a bundle: its manifest, and Chart.yaml from its archive (names
/// checked before they become file names).
pub fn bundle_charts(
    layout: &Layout,
    entries: &[Entry],
) -> Result<Vec<BundleChart>, ChartRepoError> {
    let mut missing = Vec::new();
    let charts = bundle_charts_over(layout, entries, None, &mut missing)?;
    match missing.first() {
        Some(first) => Err(ChartRepoError::BadEntry {
            reference: first.clone(),
            reason: "its chart archive is not in the bundle (a delta leaves it to its base)"
                .to_string(),
        }),
        None => Ok(charts),
    }
}

/// As [`bundle_charts`], for a delta bundle imported into `repo`: a chart archive the delta
/// left to its base is read from the repository when its index.yaml lists it with the same
/// digest; otherwise the chart is named in `missing`.
pub fn bundle_charts_over(
    layout: &Layout,
    entries: &[Entry],
    repo: Option<&Path>,
    missing: &mut Vec<String>,
) -> Result<Vec<BundleChart>, ChartRepoError> {
    let on_site = match repo {
        Some(dir) => read_index(&dir.join("index.yaml"))?.0,
        None => Default::default(),
    };
    let mut charts = Vec::new();
    for entry in entries.iter().filter(|e| e.kind == KIND) {
        let bad = |reason: String| ChartRepoError::BadEntry {
            reference: entry.reference.clone(),
            reason,
        };
        let bytes = layout.read_document(&entry.descriptor.digest)?;
        let manifest: OciManifest =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("manifest: {e}")))?;
        let layer = chart_layer(&manifest, &entry.reference)
            .map_err(|e| bad(e.to_string()))?
            .clone();
        // Read once: from memory when the import kept it, else from the repository when it
        // holds the archive (a re-run, or a delta that left it to its base), else the bundle.
        let held = || repo.and_then(|dir| held_in(&on_site, dir, &layer.digest, layer.size));
        let read = if layout.is_kept(&layer.digest) {
            let file = layout.open_blob(&layer.digest)?;
            archive::read(BufReader::new(file)).map_err(|e| bad(e.to_string()))?
        } else if let Some(path) = held() {
            let file = File::open(&path).map_err(|source| ChartRepoError::Io {
                path: path.clone(),
                source,
            })?;
            archive::read(BufReader::new(file)).map_err(|e| bad(e.to_string()))?
        } else if layout.has_blob(&layer.digest) {
            let file = layout.open_blob(&layer.digest)?;
            archive::read(BufReader::new(file)).map_err(|e| bad(e.to_string()))?
        } else {
            missing.push(format!("{} ({})", entry.reference, layer.digest));
            continue;
        };
        chart_name(&read.metadata.name).map_err(&bad)?;
        chart_version(&read.metadata.version).map_err(&bad)?;
        let annotated: Option<String> =
            serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
                v.get("annotations")?
                    .get(ANNOTATION_CREATED)?
                    .as_str()
                    .map(str::to_string)
            });
        let created = annotated.unwrap_or_else(|| rfc3339(read.packaged_at.unwrap_or(0)));
        charts.push(BundleChart {
            reference: entry.reference.clone(),
            archive: layer,
            metadata: read.metadata,
            created,
        });
    }
    Ok(charts)
}

/// The file of the repository `dir` that holds an archive, when its index lists the digest
/// and the file holds exactly it.
fn held_in(on_site: &Entries, dir: &Path, digest: &Digest, size: u64) -> Option<PathBuf> {
    on_site
        .values()
        .flatten()
        .filter(|v| v.get("digest").and_then(Value::as_str) == Some(digest.hex()))
        .filter_map(|v| v.get("urls")?.get(0)?.as_str()?.rsplit('/').next())
        .map(|name| dir.join(name))
        .find(|path| crate::layout::delta::file_holds(path, digest, size))
}

/// The chart archives of `entries` the repository `dir` does not hold yet (by its index.yaml
/// and the files' content): what an import must read from the bundle.
pub fn archives_needed(
    layout: &Layout,
    entries: &[Entry],
    dir: &Path,
) -> Result<Vec<Descriptor>, ChartRepoError> {
    let on_site = read_index(&dir.join(INDEX_FILE))?.0;
    let mut needed = Vec::new();
    for entry in entries.iter().filter(|e| e.kind == KIND) {
        let bytes = layout.read_document(&entry.descriptor.digest)?;
        let manifest: OciManifest =
            serde_json::from_slice(&bytes).map_err(|e| ChartRepoError::BadEntry {
                reference: entry.reference.clone(),
                reason: format!("manifest: {e}"),
            })?;
        let layer = chart_layer(&manifest, &entry.reference)
            .map_err(|e| ChartRepoError::BadEntry {
                reference: entry.reference.clone(),
                reason: e.to_string(),
            })?
            .clone();
        if layout.has_blob(&layer.digest)
            && held_in(&on_site, dir, &layer.digest, layer.size).is_none()
        {
            needed.push(layer);
        }
    }
    Ok(needed)
}

/// A fresh index of `charts` (what `ferry serve` answers), entries newest first.
pub fn new_index(charts: &[BundleChart], base_url: Option<&str>, generated: &str) -> Value {
    let mut entries: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for chart in charts {
        entries
            .entry(chart.metadata.name.clone())
            .or_default()
            .push(chart.index_entry(base_url));
    }
    index_value(entries, Map::new(), generated)
}

fn index_value(
    mut entries: BTreeMap<String, Vec<Value>>,
    mut rest: Map<String, Value>,
    generated: &str,
) -> Value {
    for list in entries.values_mut() {
        sort_entries(list);
    }
    let mut top = Map::new();
    top.insert("apiVersion".into(), json!("v1"));
    top.insert(
        "entries".into(),
        Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k, Value::Array(v)))
                .collect(),
        ),
    );
    top.insert("generated".into(), json!(generated));
    rest.remove("apiVersion");
    rest.remove("entries");
    rest.remove("generated");
    top.extend(rest);
    Value::Object(top)
}

/// Newest version first, as Helm sorts an index (stable for equal versions).
fn sort_entries(list: &mut [Value]) {
    let version = |v: &Value| {
        v.get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut order: Vec<String> = list.iter().map(version).collect();
    sort_descending(&mut order);
    order.dedup();
    list.sort_by_key(|v| order.iter().position(|o| *o == version(v)));
}

/// Serialises an index as YAML (quoting what Go's YAML 1.1 parser would misread).
pub fn to_yaml(index: &Value) -> Vec<u8> {
    serde_saphyr::to_string(index)
        .expect("a JSON value always serialises")
        .into_bytes()
}

/// What an import into a chart repository did.
#[derive(Debug, Default, serde::Serialize)]
pub struct ChartRepoReport {
    /// Archives written.
    pub written: Vec<String>,
    /// Archives that were already there (same digest).
    pub present: Vec<String>,
    /// Chart versions the index now lists.
    pub index_entries: usize,
}

/// Writes `charts` into the repository directory `dir` (created if missing) and merges its
/// index.yaml. Every conflict is found before anything is written; archives are written
/// atomically (hashed while copied), the index last, so it never names a missing file.
pub fn import(
    layout: &Layout,
    charts: &[BundleChart],
    dir: &Path,
    base_url: Option<&str>,
    generated: &str,
) -> Result<ChartRepoReport, ChartRepoError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ChartRepoError::Io { path, source }
    };
    crate::fsutil::prepare_dir(dir).map_err(io(dir))?;
    let index_path = dir.join(INDEX_FILE);
    let (mut entries, rest) = read_index(&index_path)?;

    // Plan: which archives to write, and no conflict anywhere.
    let mut to_write = Vec::new();
    let mut report = ChartRepoReport::default();
    for chart in charts {
        let file = dir.join(chart.file_name());
        let list = entries.entry(chart.metadata.name.clone()).or_default();
        let listed = list.iter().position(|e| {
            e.get("version").and_then(Value::as_str) == Some(chart.metadata.version.as_str())
        });
        if let Some(i) = listed {
            let existing = list[i]
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim_start_matches("sha256:")
                .to_string();
            if !existing.is_empty() && existing != chart.index_digest() {
                return Err(ChartRepoError::Conflict {
                    path: index_path.clone(),
                    name: chart.metadata.name.clone(),
                    version: chart.metadata.version.clone(),
                    existing,
                    incoming: chart.index_digest().to_string(),
                });
            }
        }
        let present = match fs::metadata(&file) {
            // A delta's archive left to its base: bundle_charts_over hashed it already.
            Ok(_) if !layout.has_blob(&chart.archive.digest) => true,
            Ok(_) => {
                let (actual, _) = crate::digest::hash_file(&file, |_| {}).map_err(io(&file))?;
                if actual != chart.archive.digest {
                    return Err(ChartRepoError::Conflict {
                        path: file.clone(),
                        name: chart.metadata.name.clone(),
                        version: chart.metadata.version.clone(),
                        existing: actual.hex().to_string(),
                        incoming: chart.index_digest().to_string(),
                    });
                }
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io(&file)(e)),
        };
        if present {
            report.present.push(chart.file_name());
        } else {
            to_write.push((chart, file));
        }
        // Keep an entry the index already has for this archive; add one otherwise.
        if listed.is_none() {
            list.push(chart.index_entry(base_url));
        }
    }

    for (chart, file) in &to_write {
        copy_checked(layout, &chart.archive.digest, file, dir)?;
        report.written.push(chart.file_name());
    }
    report.index_entries = entries.values().map(Vec::len).sum();
    let index = index_value(entries, rest, generated);
    write_atomic(&index_path, &to_yaml(&index))?;
    Ok(report)
}

/// The entries and other top-level fields of an existing index.yaml (empty when none).
pub(crate) fn read_index(path: &Path) -> Result<(Entries, Map<String, Value>), ChartRepoError> {
    let bad = |reason: String| ChartRepoError::BadIndex {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = match fs::metadata(path) {
        Ok(m) if m.len() > MAX_EXISTING_INDEX => {
            return Err(bad(format!("larger than {MAX_EXISTING_INDEX} bytes")));
        }
        Ok(_) => fs::read(path).map_err(|source| ChartRepoError::Io {
            path: path.to_path_buf(),
            source,
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(source) => {
            return Err(ChartRepoError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".to_string()))?;
    let value: Option<Value> = serde_saphyr::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let mut top = match value {
        None => return Ok(Default::default()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(bad("not a mapping".to_string())),
    };
    let entries = match top.remove("entries") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(name, list)| match list {
                Value::Array(items) => Ok((name, items)),
                Value::Null => Ok((name, Vec::new())),
                _ => Err(bad(format!("entries.{name} is not a list"))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad("entries is not a mapping".to_string())),
    };
    Ok((entries, top))
}

/// Copies a blob to `target` through a temporary file in `dir`, hashing as it goes.
fn copy_checked(
    layout: &Layout,
    digest: &Digest,
    target: &Path,
    dir: &Path,
) -> Result<(), ChartRepoError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ChartRepoError::Io { path, source }
    };
    // Checked while copied (below).
    let mut source = layout.open_blob_unchecked(digest)?;
    let tmp = TempFile::in_dir(dir, Access::Public).map_err(io(dir))?;
    let mut writer = HashingWriter::new(tmp);
    io::copy(&mut source, &mut writer).map_err(io(target))?;
    let (tmp, actual, _) = writer.finish();
    if &actual != digest {
        return Err(ChartRepoError::CopyMismatch {
            path: target.to_path_buf(),
            expected: digest.clone(),
            actual,
        });
    }
    tmp.commit(target).map_err(io(target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_sorted_newest_first_and_yaml_quotes_what_go_would_misread() {
        let mut list = vec![
            json!({"version": "1.2.0"}),
            json!({"version": "1.10.0"}),
            json!({"version": "1.9.0-rc.1"}),
        ];
        sort_entries(&mut list);
        let versions: Vec<&str> = list
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["1.10.0", "1.9.0-rc.1", "1.2.0"]);
        let yaml = String::from_utf8(to_yaml(
            &json!({"a": "on", "b": "1.10", "c": "y", "d": "1.2.3"}),
        ))
        .unwrap();
        let back: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back["a"], "on");
        assert_eq!(back["b"], "1.10");
        assert!(yaml.contains("\"on\"") || yaml.contains("'on'"), "{yaml}");
        assert!(yaml.contains("\"y\"") || yaml.contains("'y'"), "{yaml}");
    }
}
