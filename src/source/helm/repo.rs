//! HTTP chart repositories: reading `index.yaml` for the charts a release takes from it, and
//! resolving chart URLs.
//!
//! An index names every version of every chart of a repository and can be tens of
//! megabytes; it is fetched once per repository and parsed once, as a stream that keeps only
//! the entries of the charts asked for (and some other charts' names, for error messages).

use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::metadata::GoString;

/// Largest index.yaml read.
pub const MAX_INDEX_SIZE: u64 = 64 << 20;
/// Other chart names remembered for "no such chart" messages.
const NAMES_KEPT: usize = 40;

/// One version of a chart in an index.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IndexEntry {
    /// The version.
    pub version: GoString,
    /// Where the archive is (absolute, or relative to the repository URL).
    pub urls: Vec<String>,
    /// SHA-256 of the archive, hex (Helm writes it without `sha256:`).
    pub digest: Option<String>,
}

/// What an index says about the charts asked for.
#[derive(Debug, Default)]
pub struct ChartIndex {
    /// The versions of each chart asked for that the index has, as listed.
    pub charts: std::collections::BTreeMap<String, Vec<IndexEntry>>,
    /// Some other chart names of the repository.
    pub other_names: Vec<String>,
    /// How many charts the repository has.
    pub chart_count: usize,
}

impl ChartIndex {
    /// The versions of `name`; `None` when the index has no chart of that name.
    pub fn entries(&self, name: &str) -> Option<&[IndexEntry]> {
        self.charts.get(name).map(Vec::as_slice)
    }
}

/// Parses `index.yaml` bytes, keeping the entries of `names`.
pub fn parse_index(bytes: &[u8], names: &[String]) -> Result<ChartIndex, String> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.legacy_octal_numbers = true;
    let mut budget = serde_saphyr::Budget::default();
    // A large repository's index has millions of nodes; the size cap bounds the work.
    budget.max_events = 50_000_000;
    budget.max_nodes = 25_000_000;
    budget.max_total_scalar_bytes = 2 * MAX_INDEX_SIZE as usize;
    options.budget = Some(budget);
    serde_saphyr::with_deserializer_from_slice_with_options(bytes, options, |de| {
        IndexSeed { names }.deserialize(de)
    })
    .map_err(|e| e.to_string())
}

struct IndexSeed<'a> {
    names: &'a [String],
}

impl<'de> DeserializeSeed<'de> for IndexSeed<'_> {
    type Value = ChartIndex;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ChartIndex, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IndexSeed<'_> {
    type Value = ChartIndex;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Helm repository index (apiVersion, entries)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChartIndex, A::Error> {
        let mut index = ChartIndex::default();
        while let Some(key) = map.next_key::<String>()? {
            if key == "entries" {
                index = map.next_value_seed(EntriesSeed { names: self.names })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(index)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<ChartIndex, E> {
        Ok(ChartIndex::default())
    }
}

struct EntriesSeed<'a> {
    names: &'a [String],
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = ChartIndex;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ChartIndex, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = ChartIndex;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of chart names to their versions")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChartIndex, A::Error> {
        let mut index = ChartIndex::default();
        while let Some(key) = map.next_key::<String>()? {
            index.chart_count += 1;
            if self.names.contains(&key) {
                let entries: Option<Vec<Option<IndexEntry>>> = map.next_value()?;
                let entries = entries.unwrap_or_default().into_iter().flatten().collect();
                index.charts.insert(key, entries);
            } else {
                map.next_value::<IgnoredAny>()?;
                if index.other_names.len() < NAMES_KEPT {
                    index.other_names.push(key);
                }
            }
        }
        Ok(index)
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<ChartIndex, E> {
        Ok(ChartIndex::default())
    }
}

/// The index URL of a repository (`<repo>/index.yaml`).
pub fn index_url(repo: &str) -> String {
    format!("{}/index.yaml", repo.trim_end_matches('/'))
}

/// A chart URL from an index resolved as Helm does: absolute as is, relative to the
/// repository URL (as a directory).
pub fn resolve_url(repo: &str, url: &str) -> Result<String, String> {
    if let Ok(absolute) = reqwest::Url::parse(url) {
        return Ok(absolute.to_string());
    }
    let base = reqwest::Url::parse(&format!("{}/", repo.trim_end_matches('/')))
        .map_err(|e| format!("{repo}: {e}"))?;
    base.join(url)
        .map(|u| u.to_string())
        .map_err(|e| format!("{url:?} relative to {repo}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"apiVersion: v1
entries:
  cilium:
  - apiVersion: v2
    name: cilium
    version: 1.16.5
    digest: 0123abcd
    urls:
    - https://helm.cilium.io/cilium-1.16.5.tgz
    created: "2024-12-17T10:00:00Z"
  - name: cilium
    version: 1.16.4
    urls: [cilium-1.16.4.tgz]
  tetragon:
  - name: tetragon
    version: 1.0.0
    urls: [tetragon-1.0.0.tgz]
    annotations: {a: {b: [1, 2]}}
generated: "2024-12-17T10:00:00Z"
"#;

    #[test]
    fn keeps_one_chart() {
        let index = parse_index(INDEX.as_bytes(), &["cilium".to_string()]).unwrap();
        let entries = index.entries("cilium").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].version.0, "1.16.5");
        assert_eq!(entries[0].digest.as_deref(), Some("0123abcd"));
        assert_eq!(entries[1].urls, ["cilium-1.16.4.tgz"]);
        assert_eq!(index.other_names, ["tetragon"]);
        assert_eq!(index.chart_count, 2);

        let none = parse_index(INDEX.as_bytes(), &["hubble".to_string()]).unwrap();
        assert!(none.entries("hubble").is_none());
        assert_eq!(none.other_names, ["cilium", "tetragon"]);
        let both = parse_index(
            INDEX.as_bytes(),
            &["cilium".to_string(), "tetragon".to_string()],
        )
        .unwrap();
        assert_eq!(both.entries("tetragon").unwrap().len(), 1);
        assert_eq!(both.entries("cilium").unwrap().len(), 2);
        let x = ["x".to_string()];
        assert!(parse_index(b"entries: [", &x).is_err());
        assert!(parse_index(b"", &x).unwrap().entries("x").is_none());
    }

    #[test]
    fn urls() {
        assert_eq!(
            resolve_url("https://h.io/charts", "a-1.0.0.tgz").unwrap(),
            "https://h.io/charts/a-1.0.0.tgz"
        );
        assert_eq!(
            resolve_url("https://h.io/charts", "/other/a.tgz").unwrap(),
            "https://h.io/other/a.tgz"
        );
        assert_eq!(
            resolve_url("https://h.io", "https://cdn.io/a.tgz").unwrap(),
            "https://cdn.io/a.tgz"
        );
        assert_eq!(
            index_url("https://h.io/charts"),
            "https://h.io/charts/index.yaml"
        );
    }
}
