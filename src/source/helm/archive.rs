//! Reading a chart archive (`.tgz`) as a stream: its Chart.yaml, the charts packed under
//! `charts/` (directories or nested archives), and the images their values name.
//!
//! Nothing is unpacked to disk and only the small files ferry needs are held in memory
//! (each at most [`MAX_FILE`], Helm's own limit).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use flate2::read::GzDecoder;
use serde_json::Value;

use super::metadata::{Metadata, MetadataError};
use super::{images, values};
use crate::manifest::lock::{ChartImage, LockedChartDependency};

/// Largest Chart.yaml, values.yaml or requirements.yaml read (Helm's MaxDecompressedFileSize).
const MAX_FILE: u64 = 5 << 20;
/// How deep archives may nest inside `charts/`.
const MAX_DEPTH: usize = 8;

/// Why an archive cannot be read as a chart.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not a gzip'd tar, or truncated.
    #[error("not a readable chart archive (.tgz): {0}")]
    Unreadable(String),
    /// No Chart.yaml at the top.
    #[error("the archive holds no Chart.yaml: it is not a Helm chart")]
    NoChart,
    /// A file too large for its kind.
    #[error("{path} is larger than {limit} bytes, Helm's limit for a chart file")]
    TooLarge {
        /// The file in the archive.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// A path that leaves the chart directory.
    #[error(
        "the archive holds {0:?}, a path outside the chart directory; Helm refuses such a chart"
    )]
    UnsafePath(String),
    /// Chart.yaml of the chart or a packed chart is not valid.
    #[error("{path}: {source}")]
    Metadata {
        /// Which chart in the archive.
        path: String,
        /// What is wrong.
        source: MetadataError,
    },
    /// Archives nested too deep.
    #[error("charts are nested more than {MAX_DEPTH} levels deep in charts/")]
    TooDeep,
}

/// What ferry needs from a chart archive.
#[derive(Debug, Clone)]
pub struct ChartArchive {
    /// The chart's metadata.
    pub metadata: Metadata,
    /// Modification time of Chart.yaml in the archive (seconds since the epoch): when the
    /// chart was packaged.
    pub packaged_at: Option<u64>,
    /// Charts packed under `charts/`.
    pub dependencies: Vec<LockedChartDependency>,
    /// Dependencies Chart.yaml declares that the archive does not carry (`helm install`
    /// refuses the chart then).
    pub missing_dependencies: Vec<String>,
    /// Images its values and annotations name (its packed charts' too).
    pub images: Vec<ChartImage>,
    /// values.yaml files that could not be read (the image list is incomplete for them).
    pub unreadable_values: Vec<String>,
}

/// The files of one chart directory in the archive, and the charts packed in it.
#[derive(Debug, Default)]
struct Node {
    chart_yaml: Option<Vec<u8>>,
    mtime: Option<u64>,
    values: Option<Vec<u8>>,
    requirements: Option<Vec<u8>>,
    /// Archives under `charts/`, read.
    nested: Vec<(String, Tree)>,
}

/// Every chart directory of an archive, keyed by its path below the top directory
/// (`""` for the chart itself, `charts/redis`, `charts/redis/charts/common`).
#[derive(Debug, Default)]
struct Tree {
    nodes: BTreeMap<String, Node>,
}

/// Reads a chart archive from a stream.
pub fn read(mut reader: impl Read) -> Result<ChartArchive, ArchiveError> {
    let tree = read_tree(&mut reader, 0)?;
    let top = tree.nodes.get("").ok_or(ArchiveError::NoChart)?;
    let metadata = chart_metadata(top, "Chart.yaml")?;
    let mut images = BTreeSet::new();
    let mut unreadable = Vec::new();
    let dependencies = collect(&tree, "", "", &metadata, None, &mut images, &mut unreadable)?;
    let packed: BTreeSet<&str> = dependencies.iter().map(|d| d.name.as_str()).collect();
    let missing_dependencies = metadata
        .dependencies
        .iter()
        .map(|d| d.name.0.clone())
        .filter(|n| !packed.contains(n.as_str()))
        .collect();
    Ok(ChartArchive {
        packaged_at: top.mtime,
        metadata,
        dependencies,
        missing_dependencies,
        images: images.into_iter().collect(),
        unreadable_values: unreadable,
    })
}

fn chart_metadata(node: &Node, path: &str) -> Result<Metadata, ArchiveError> {
    let yaml = node.chart_yaml.as_deref().ok_or(ArchiveError::NoChart)?;
    Metadata::parse(yaml, node.requirements.as_deref()).map_err(|source| ArchiveError::Metadata {
        path: path.to_string(),
        source,
    })
}

/// Images of the chart at `dir` of `tree` (shown as `shown`), and its packed charts.
///
/// `overrides` are the values its parent gives it (the parent's section for it, and
/// `global`), merged over its own values.yaml as Helm does; a packed chart whose condition or
/// tags are false in the result is not read for images (it is not installed).
fn collect(
    tree: &Tree,
    dir: &str,
    shown: &str,
    metadata: &Metadata,
    overrides: Option<&Value>,
    images_out: &mut BTreeSet<ChartImage>,
    unreadable: &mut Vec<String>,
) -> Result<Vec<LockedChartDependency>, ArchiveError> {
    let node = &tree.nodes[dir];
    let join = |file: &str| {
        if shown.is_empty() {
            file.to_string()
        } else {
            format!("{shown}/{file}")
        }
    };
    let mut effective = Value::Object(Default::default());
    if let Some(bytes) = &node.values {
        match values::parse_values(&String::from_utf8_lossy(bytes)) {
            Ok(v) => effective = v,
            Err(e) => unreadable.push(format!("{}: {e}", join("values.yaml"))),
        }
    }
    if let Some(overrides) = overrides {
        values::merge(&mut effective, overrides);
    }
    let scanned = overrides.is_none_or(|_| effective.get("enabled") != Some(&Value::Bool(false)));
    if scanned {
        images::from_values(
            &effective,
            &join("values.yaml"),
            &metadata.app_version,
            images_out,
        );
        if let Some(annotation) = metadata.annotations.get(images::ARTIFACTHUB_IMAGES) {
            images::from_annotation(annotation, &join("Chart.yaml"), images_out);
        }
    }
    let mut dependencies = Vec::new();
    // Directories directly under <dir>/charts/, then archives there.
    let prefix = if dir.is_empty() {
        "charts/".to_string()
    } else {
        format!("{dir}/charts/")
    };
    let mut packed: Vec<(&Tree, &str, String)> = Vec::new();
    for (path, child) in tree.range_children(&prefix) {
        let name = &path[prefix.len()..];
        if name.starts_with(['_', '.']) || child.chart_yaml.is_none() {
            continue;
        }
        packed.push((tree, path.as_str(), join(&format!("charts/{name}"))));
    }
    for (file, nested) in &node.nested {
        if nested.nodes.contains_key("") {
            packed.push((nested, "", join(&format!("charts/{file}"))));
        }
    }
    for (child_tree, child_dir, child_shown) in packed {
        let md = chart_metadata(
            &child_tree.nodes[child_dir],
            &format!("{child_shown}/Chart.yaml"),
        )?;
        let mut deps = Vec::new();
        for key in value_keys(metadata, &md.name) {
            let child_overrides = scanned
                .then(|| enabled(metadata, &md.name, &key, &effective))
                .filter(|on| *on)
                .map(|_| section(&effective, &key));
            // A chart that is off is still walked for the charts it packs (the lock lists
            // them), with nothing read for images.
            let child_overrides = match child_overrides {
                Some(o) => o,
                None => serde_json::json!({"enabled": false}),
            };
            deps = collect(
                child_tree,
                child_dir,
                &child_shown,
                &md,
                Some(&child_overrides),
                images_out,
                unreadable,
            )?;
        }
        dependencies.push(LockedChartDependency {
            name: md.name.clone(),
            version: md.version.clone(),
            dependencies: deps,
        });
    }
    dependencies.sort_by(|a, b| a.name.cmp(&b.name).then(a.version.cmp(&b.version)));
    Ok(dependencies)
}

/// The keys a packed chart's values sit under in its parent's values: each alias the
/// parent's dependencies give it, else its name.
fn value_keys(parent: &Metadata, name: &str) -> Vec<String> {
    let keys: Vec<String> = parent
        .dependencies
        .iter()
        .filter(|d| d.name.0 == name)
        .map(|d| {
            if d.alias.0.is_empty() {
                d.name.0.clone()
            } else {
                d.alias.0.clone()
            }
        })
        .collect();
    if keys.is_empty() {
        vec![name.to_string()]
    } else {
        keys
    }
}

/// Whether Helm installs the packed chart `name` (as `key`): its condition (the first path
/// of it that is a boolean in the parent's values), else its tags (on when any is true).
fn enabled(parent: &Metadata, name: &str, key: &str, values: &Value) -> bool {
    let Some(dependency) = parent
        .dependencies
        .iter()
        .find(|d| d.name.0 == name && (d.alias.0.is_empty() || d.alias.0 == key))
    else {
        return true;
    };
    for path in dependency.condition.0.split(',').map(str::trim) {
        if let Some(Value::Bool(on)) = values::lookup(values, path) {
            return *on;
        }
    }
    let tags: Vec<bool> = dependency
        .tags
        .iter()
        .filter_map(|t| values::lookup(values, &format!("tags.{}", t.0))?.as_bool())
        .collect();
    tags.is_empty() || tags.contains(&true)
}

/// The values a parent gives a packed chart: its section, and `global`.
fn section(values: &Value, key: &str) -> Value {
    let mut out = match values.get(key) {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => Value::Object(Default::default()),
    };
    if let (Some(global), Some(map)) = (values.get("global"), out.as_object_mut()) {
        let mut merged = map
            .get("global")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        values::merge(&mut merged, global);
        map.insert("global".to_string(), merged);
    }
    out
}

impl Tree {
    /// Chart directories exactly one level below `prefix` (which ends in `charts/`).
    fn range_children<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Node)> {
        self.nodes.iter().filter(move |(path, _)| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
        })
    }
}

// `dyn`: archives nest, and a generic reader would instantiate without end.
fn read_tree(reader: &mut dyn Read, depth: usize) -> Result<Tree, ArchiveError> {
    if depth > MAX_DEPTH {
        return Err(ArchiveError::TooDeep);
    }
    let unreadable = |e: std::io::Error| ArchiveError::Unreadable(e.to_string());
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    let mut tree = Tree::default();
    let mut top: Option<String> = None;
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        let parts: Vec<&str> = raw_path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if raw_path.starts_with('/') || parts.contains(&"..") {
            return Err(ArchiveError::UnsafePath(raw_path));
        }
        if kind.is_dir() || parts.len() < 2 {
            continue;
        }
        // Helm takes the first path element as the chart directory, whatever its name.
        match &top {
            None => top = Some(parts[0].to_string()),
            Some(t) if t != parts[0] => continue,
            Some(_) => {}
        }
        // <top>/(charts/<name>/)*<rest>
        let mut dir: Vec<&str> = Vec::new();
        let mut i = 1;
        while i + 2 < parts.len() && parts[i] == "charts" {
            dir.push("charts");
            dir.push(parts[i + 1]);
            i += 2;
        }
        let rest = &parts[i..];
        let key = dir.join("/");
        let file = match rest {
            ["Chart.yaml"] | ["values.yaml"] | ["requirements.yaml"] => rest[0],
            ["charts", archive_name] if archive_name.ends_with(".tgz") => {
                let nested = read_tree(&mut entry, depth + 1).map_err(|e| match e {
                    ArchiveError::Unreadable(r) => {
                        ArchiveError::Unreadable(format!("{raw_path}: {r}"))
                    }
                    other => other,
                })?;
                tree.nodes
                    .entry(key)
                    .or_default()
                    .nested
                    .push((archive_name.to_string(), nested));
                continue;
            }
            _ => continue,
        };
        if entry.size() > MAX_FILE {
            return Err(ArchiveError::TooLarge {
                path: raw_path,
                limit: MAX_FILE,
            });
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        (&mut entry)
            .take(MAX_FILE)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        let mtime = entry.header().mtime().ok();
        let node = tree.nodes.entry(key).or_default();
        match file {
            "Chart.yaml" => {
                node.chart_yaml = Some(bytes);
                node.mtime = mtime;
            }
            "values.yaml" => node.values = Some(bytes),
            _ => node.requirements = Some(bytes),
        }
    }
    // Reading to the end checks the gzip trailer (its CRC and length): a truncated or
    // damaged archive fails here rather than passing as a shorter chart.
    let mut rest = archive.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(unreadable)?;
    Ok(tree)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A .tgz with the given (path, content) files, Chart.yaml mtimes 1700000000.
    pub(crate) fn tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(1_700_000_000);
            header.set_cksum();
            builder.append_data(&mut header, path, *content).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn chart_with_packed_dependencies() {
        let sub = tgz(&[
            (
                "common/Chart.yaml",
                b"apiVersion: v2\nname: common\nversion: 2.0.0\n",
            ),
            (
                "common/values.yaml",
                b"image: {repository: ghcr.io/x/common, tag: '2'}\n",
            ),
        ]);
        let archive = tgz(&[
            (
                "app/Chart.yaml",
                b"apiVersion: v2\nname: app\nversion: 1.0.0\nappVersion: 3.1.0\ndependencies:\n- {name: redis, version: ~7, repository: https://r}\n- {name: common, version: 2.x, repository: https://r}\n- {name: absent, version: 1.0.0, repository: https://r}\nannotations:\n  artifacthub.io/images: |\n    - name: app\n      image: ghcr.io/x/app:3.1.0\n",
            ),
            ("app/values.yaml", b"image: {repository: ghcr.io/x/app, tag: ''}\nredis: {image: {tag: '7.4.1'}}\n"),
            ("app/templates/deployment.yaml", b"kind: Deployment\n"),
            ("app/charts/redis/Chart.yaml", b"apiVersion: v2\nname: redis\nversion: 7.4.0\nappVersion: 7.4.0\n"),
            ("app/charts/redis/values.yaml", b"image:\n  registry: docker.io\n  repository: bitnami/redis\n  tag: 7.4.0\n"),
            ("app/charts/common-2.0.0.tgz", &sub),
            ("app/charts/_ignored/Chart.yaml", b"name: x\nversion: 1.0.0\n"),
        ]);
        let chart = read(&archive[..]).unwrap();
        assert_eq!(chart.metadata.name, "app");
        assert_eq!(chart.packaged_at, Some(1_700_000_000));
        let deps: Vec<(&str, &str)> = chart
            .dependencies
            .iter()
            .map(|d| (d.name.as_str(), d.version.as_str()))
            .collect();
        assert_eq!(deps, [("common", "2.0.0"), ("redis", "7.4.0")]);
        assert_eq!(chart.missing_dependencies, ["absent"]);
        let images: Vec<String> = chart
            .images
            .iter()
            .map(|i| format!("{}  {}", i.image, i.location()))
            .collect();
        assert_eq!(
            images,
            [
                // The parent's `redis.image.tag` overrides the packed chart's own.
                "docker.io/bitnami/redis:7.4.1  charts/redis/values.yaml: image",
                "ghcr.io/x/app:3.1.0  Chart.yaml: annotation artifacthub.io/images",
                "ghcr.io/x/app:3.1.0  values.yaml: image",
                "ghcr.io/x/common:2  charts/common-2.0.0.tgz/values.yaml: image",
            ]
        );
    }

    #[test]
    fn bad_archives() {
        assert!(matches!(
            read(&b"not gzip"[..]),
            Err(ArchiveError::Unreadable(_))
        ));
        let no_chart = tgz(&[("x/values.yaml", b"{}")]);
        assert!(matches!(read(&no_chart[..]), Err(ArchiveError::NoChart)));
        let good = tgz(&[("x/Chart.yaml", b"name: x\nversion: 1.0.0\n")]);
        let truncated = &good[..good.len() - 10];
        assert!(matches!(read(truncated), Err(ArchiveError::Unreadable(_))));
        let bad_yaml = tgz(&[("x/Chart.yaml", b"name: [\n")]);
        assert!(
            read(&bad_yaml[..])
                .unwrap_err()
                .to_string()
                .starts_with("Chart.yaml: Chart.yaml is not valid")
        );
    }
}
