//! A chart's Chart.yaml as Helm reads it (`chart.Metadata`), and what `helm push` derives from
//! it: the config blob (the metadata as Go's JSON) and the manifest annotations.
//!
//! Helm reads Chart.yaml with sigs.k8s.io/yaml (YAML 1.1 scalars, converted through JSON), so
//! an unquoted number in a string field becomes a string the way Go formats it
//! (`appVersion: 1.10` is `"1.1"`), and `sanitizeString` turns white space into spaces and drops
//! unprintable characters in most text fields. Both are reproduced here.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::{Map, Value, json};

use super::gojson;

/// `org.opencontainers.image.*` annotation keys `helm push` sets.
const ANNOTATION_DESCRIPTION: &str = "org.opencontainers.image.description";
const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";
const ANNOTATION_URL: &str = "org.opencontainers.image.url";
/// When the chart was created: `helm push` writes the archive's modification time.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
const ANNOTATION_AUTHORS: &str = "org.opencontainers.image.authors";

/// Chart.yaml, as Helm's `chart.Metadata`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// `name`.
    pub name: String,
    /// `home`.
    pub home: String,
    /// `sources`.
    pub sources: Vec<String>,
    /// `version`.
    pub version: String,
    /// `description`.
    pub description: String,
    /// `keywords`.
    pub keywords: Vec<String>,
    /// `maintainers`.
    pub maintainers: Vec<Maintainer>,
    /// `icon`.
    pub icon: String,
    /// `apiVersion` (`v1` when absent, as Helm assumes).
    pub api_version: String,
    /// `condition`.
    pub condition: String,
    /// `tags`.
    pub tags: String,
    /// `appVersion`.
    pub app_version: String,
    /// `deprecated`.
    pub deprecated: bool,
    /// `annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `kubeVersion`.
    pub kube_version: String,
    /// `dependencies` (from requirements.yaml for apiVersion v1 charts).
    pub dependencies: Vec<Dependency>,
    /// `type`.
    pub chart_type: String,
}

/// A maintainer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Maintainer {
    /// Name.
    pub name: GoString,
    /// Email.
    pub email: GoString,
    /// URL.
    pub url: GoString,
}

/// A declared dependency.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Dependency {
    /// Name.
    pub name: GoString,
    /// Version or range.
    pub version: GoString,
    /// Repository URL.
    pub repository: GoString,
    /// Condition.
    pub condition: GoString,
    /// Tags.
    pub tags: Vec<GoString>,
    /// Enabled.
    pub enabled: GoBool,
    /// Values imported from the dependency.
    #[serde(rename = "import-values")]
    pub import_values: Vec<Value>,
    /// Alias.
    pub alias: GoString,
}

/// A string field as sigs.k8s.io/yaml fills it: numbers and booleans become their Go text,
/// null becomes empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoString(pub String);

impl<'de> Deserialize<'de> for GoString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GoString;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GoString, E> {
                Ok(GoString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<GoString, E> {
                Ok(GoString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GoString, E> {
                // Above int64, Go's YAML reads a float.
                if v > i64::MAX as u64 {
                    return Ok(GoString(gojson::go_float32_g(v as f64)));
                }
                Ok(GoString(v.to_string()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<GoString, E> {
                Ok(GoString(gojson::go_float32_g(v as f64)))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<GoString, E> {
                Ok(GoString(gojson::go_float32_g(v as f64)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<GoString, E> {
                Ok(GoString(gojson::go_float32_g(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<GoString, E> {
                Ok(GoString(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<GoString, E> {
                Ok(GoString::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<GoString, E> {
                Ok(GoString::default())
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A boolean field: YAML booleans (including YAML 1.1's yes/no/on/off); anything else is false.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoBool(pub bool);

impl<'de> Deserialize<'de> for GoBool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(GoBool(matches!(
            Value::deserialize(deserializer)?,
            Value::Bool(true)
        )))
    }
}

/// Chart.yaml as written; every field optional, unknown fields ignored (as Helm does).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawMetadata {
    name: GoString,
    home: GoString,
    sources: Option<Vec<GoString>>,
    version: GoString,
    description: GoString,
    keywords: Option<Vec<GoString>>,
    maintainers: Option<Vec<Option<Maintainer>>>,
    icon: GoString,
    api_version: GoString,
    condition: GoString,
    tags: GoString,
    app_version: GoString,
    deprecated: GoBool,
    annotations: Option<BTreeMap<GoString, GoString>>,
    kube_version: GoString,
    dependencies: Option<Vec<Option<Dependency>>>,
    #[serde(rename = "type")]
    chart_type: GoString,
}

/// requirements.yaml (apiVersion v1 charts).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawRequirements {
    dependencies: Option<Vec<Option<Dependency>>>,
}

/// Why a Chart.yaml cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Not YAML of the expected shape.
    #[error("{file} is not valid: {reason}")]
    Invalid {
        /// Chart.yaml or requirements.yaml.
        file: &'static str,
        /// The parser's words.
        reason: String,
    },
    /// A required field is missing (Helm refuses such a chart too).
    #[error("Chart.yaml has no {0}; Helm refuses such a chart")]
    Missing(&'static str),
}

/// How chart YAML (Chart.yaml, values files, rendered objects) is read.
pub(crate) fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // Go's YAML 1.1: 0755 is octal.
    options.legacy_octal_numbers = true;
    // Comments are not read; buffering them fails on the long comment blocks real charts
    // document their values with (node-feature-discovery's 30-45 line blocks).
    options.emit_comments = false;
    options
}

impl Metadata {
    /// Reads Chart.yaml (and requirements.yaml, whose dependencies replace Chart.yaml's as in
    /// Helm), then sanitizes as Helm's `Validate` does.
    pub fn parse(
        chart_yaml: &[u8],
        requirements: Option<&[u8]>,
    ) -> Result<Metadata, MetadataError> {
        let text = String::from_utf8_lossy(chart_yaml);
        let raw: Option<RawMetadata> = serde_saphyr::from_str_with_options(&text, yaml_options())
            .map_err(|e| MetadataError::Invalid {
            file: "Chart.yaml",
            reason: e.to_string(),
        })?;
        let raw = raw.unwrap_or_default();
        let mut dependencies = raw.dependencies;
        if let Some(requirements) = requirements {
            let text = String::from_utf8_lossy(requirements);
            let req: Option<RawRequirements> =
                serde_saphyr::from_str_with_options(&text, yaml_options()).map_err(|e| {
                    MetadataError::Invalid {
                        file: "requirements.yaml",
                        reason: e.to_string(),
                    }
                })?;
            if let Some(deps) = req.and_then(|r| r.dependencies) {
                dependencies = Some(deps);
            }
        }
        let s = |g: GoString| sanitize(&g.0);
        let mut api_version = raw.api_version.0;
        if api_version.is_empty() {
            api_version = "v1".to_string();
        }
        let md = Metadata {
            name: s(raw.name),
            home: s(raw.home),
            sources: raw.sources.unwrap_or_default().into_iter().map(s).collect(),
            version: raw.version.0,
            description: s(raw.description),
            keywords: raw
                .keywords
                .unwrap_or_default()
                .into_iter()
                .map(s)
                .collect(),
            maintainers: raw
                .maintainers
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .map(|m| Maintainer {
                    name: GoString(sanitize(&m.name.0)),
                    email: GoString(sanitize(&m.email.0)),
                    url: GoString(sanitize(&m.url.0)),
                })
                .collect(),
            icon: s(raw.icon),
            api_version,
            condition: s(raw.condition),
            tags: s(raw.tags),
            app_version: s(raw.app_version),
            deprecated: raw.deprecated.0,
            annotations: raw
                .annotations
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.0, v.0))
                .collect(),
            kube_version: s(raw.kube_version),
            dependencies: dependencies
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .map(|d| Dependency {
                    name: GoString(sanitize(&d.name.0)),
                    version: GoString(sanitize(&d.version.0)),
                    repository: GoString(sanitize(&d.repository.0)),
                    condition: GoString(sanitize(&d.condition.0)),
                    tags: d.tags.iter().map(|t| GoString(sanitize(&t.0))).collect(),
                    ..d
                })
                .collect(),
            chart_type: raw.chart_type.0,
        };
        if md.name.is_empty() {
            return Err(MetadataError::Missing("name"));
        }
        if md.version.is_empty() {
            return Err(MetadataError::Missing("version"));
        }
        Ok(md)
    }

    /// The metadata as a JSON object in `chart.Metadata`'s field order, empty fields left out
    /// (`omitempty`), as Go marshals it.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let text = |m: &mut Map<String, Value>, k: &str, v: &str| {
            if !v.is_empty() {
                m.insert(k.to_string(), Value::String(v.to_string()));
            }
        };
        text(&mut m, "name", &self.name);
        text(&mut m, "home", &self.home);
        if !self.sources.is_empty() {
            m.insert("sources".into(), json!(self.sources));
        }
        text(&mut m, "version", &self.version);
        text(&mut m, "description", &self.description);
        if !self.keywords.is_empty() {
            m.insert("keywords".into(), json!(self.keywords));
        }
        if !self.maintainers.is_empty() {
            let list = self
                .maintainers
                .iter()
                .map(|x| {
                    let mut o = Map::new();
                    text(&mut o, "name", &x.name.0);
                    text(&mut o, "email", &x.email.0);
                    text(&mut o, "url", &x.url.0);
                    Value::Object(o)
                })
                .collect();
            m.insert("maintainers".into(), Value::Array(list));
        }
        text(&mut m, "icon", &self.icon);
        text(&mut m, "apiVersion", &self.api_version);
        text(&mut m, "condition", &self.condition);
        text(&mut m, "tags", &self.tags);
        text(&mut m, "appVersion", &self.app_version);
        if self.deprecated {
            m.insert("deprecated".into(), Value::Bool(true));
        }
        if !self.annotations.is_empty() {
            m.insert("annotations".into(), json!(self.annotations));
        }
        text(&mut m, "kubeVersion", &self.kube_version);
        if !self.dependencies.is_empty() {
            let list = self
                .dependencies
                .iter()
                .map(|d| {
                    let mut o = Map::new();
                    o.insert("name".into(), Value::String(d.name.0.clone()));
                    text(&mut o, "version", &d.version.0);
                    o.insert("repository".into(), Value::String(d.repository.0.clone()));
                    text(&mut o, "condition", &d.condition.0);
                    if !d.tags.is_empty() {
                        o.insert(
                            "tags".into(),
                            Value::Array(d.tags.iter().map(|t| json!(t.0)).collect()),
                        );
                    }
                    if d.enabled.0 {
                        o.insert("enabled".into(), Value::Bool(true));
                    }
                    if !d.import_values.is_empty() {
                        o.insert(
                            "import-values".into(),
                            Value::Array(d.import_values.iter().map(sorted).collect()),
                        );
                    }
                    text(&mut o, "alias", &d.alias.0);
                    Value::Object(o)
                })
                .collect();
            m.insert("dependencies".into(), Value::Array(list));
        }
        text(&mut m, "type", &self.chart_type);
        m
    }

    /// The Helm config blob: `json.Marshal(metadata)`.
    pub fn config_bytes(&self) -> Vec<u8> {
        gojson::to_vec(&Value::Object(self.to_json()))
    }

    /// The annotations `helm push` puts on the manifest (`generateOCIAnnotations`).
    pub fn push_annotations(&self, created: &str) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        let add = |a: &mut BTreeMap<String, String>, k: &str, v: &str| {
            if !v.trim().is_empty() {
                a.insert(k.to_string(), v.to_string());
            }
        };
        add(&mut a, ANNOTATION_DESCRIPTION, &self.description);
        add(&mut a, ANNOTATION_TITLE, &self.name);
        add(&mut a, ANNOTATION_VERSION, &self.version);
        add(&mut a, ANNOTATION_URL, &self.home);
        add(&mut a, ANNOTATION_CREATED, created);
        if let Some(source) = self.sources.first() {
            add(&mut a, ANNOTATION_SOURCE, source);
        }
        if !self.maintainers.is_empty() {
            let authors: Vec<String> = self
                .maintainers
                .iter()
                .map(|m| {
                    let mut s = m.name.0.clone();
                    if !m.email.0.is_empty() {
                        s.push_str(&format!(" ({})", m.email.0));
                    }
                    s
                })
                .collect();
            add(&mut a, ANNOTATION_AUTHORS, &authors.join(", "));
        }
        for (k, v) in &self.annotations {
            if k != ANNOTATION_TITLE && k != ANNOTATION_VERSION {
                a.insert(k.clone(), v.clone());
            }
        }
        a
    }
}

/// A YAML value converted for Go's JSON: map keys sorted.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Helm's `sanitizeString`: white space becomes a space, unprintable characters go.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if is_printable(c) {
                Some(c)
            } else {
                None
            }
        })
        .collect()
}

/// Close to Go's `unicode.IsPrint` for non-space characters: no controls, no format or
/// private-use characters.
fn is_printable(c: char) -> bool {
    let u = c as u32;
    !(c.is_control()
        || u == 0xAD
        || (0x600..=0x605).contains(&u)
        || (0x200B..=0x200F).contains(&u)
        || (0x202A..=0x202E).contains(&u)
        || (0x2060..=0x206F).contains(&u)
        || u == 0xFEFF
        || (0xFFF9..=0xFFFB).contains(&u)
        || (0xE000..=0xF8FF).contains(&u)
        || (0xD800..=0xDFFF).contains(&u)
        || u >= 0xF0000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Chart.yaml of a test chart pushed with Helm v4.2.3 (helm-python-sdk 0.2.2), and
    /// the config blob Helm wrote for it.
    #[test]
    fn config_as_helm_push_writes_it() {
        let chart_yaml = br#"apiVersion: v2
name: num
version: 1.0.0
appVersion: 1.10
description: "a <b> & \u2028 x\ty"
kubeVersion: 1000000
keywords: [1e6, 0.000001, 123456789, true, 1.5e-7, 12345678.9]
annotations:
  b: yes
  big: 100000000000000000000
home: ~
dependencies:
  - name: dep
    version: 1.0.0
    repository: ""
    import-values: [1.5, {a: 1}, "x"]
    enabled: true
"#;
        let md = Metadata::parse(chart_yaml, None).unwrap();
        assert_eq!(
            String::from_utf8(md.config_bytes()).unwrap(),
            r#"{"name":"num","version":"1.0.0","description":"a \u003cb\u003e \u0026   x y","keywords":["1e+06","1e-06","123456789","true","1.5e-07","1.2345679e+07"],"apiVersion":"v2","appVersion":"1.1","annotations":{"b":"true","big":"1e+20"},"kubeVersion":"1000000","dependencies":[{"name":"dep","version":"1.0.0","repository":"","enabled":true,"import-values":[1.5,{"a":1},"x"]}]}"#
        );
        let a = md.push_annotations("2026-11-25T15:44:52Z");
        assert_eq!(a[ANNOTATION_TITLE], "num");
        assert_eq!(a[ANNOTATION_CREATED], "2026-11-25T15:44:52Z");
        assert_eq!(a["big"], "1e+20");
        assert!(!a.contains_key(ANNOTATION_URL));
    }

    #[test]
    fn defaults_and_requirements() {
        let md = Metadata::parse(
            b"name: old\nversion: 0.1.0\nmaintainers: [{name: A, email: a@x}, {name: B}]\nsources: [https://s]\n",
            Some(b"dependencies:\n- name: db\n  version: ~1\n  repository: https://r\n"),
        )
        .unwrap();
        assert_eq!(md.api_version, "v1");
        assert_eq!(md.dependencies.len(), 1);
        assert_eq!(md.dependencies[0].name.0, "db");
        let a = md.push_annotations("t");
        assert_eq!(a[ANNOTATION_AUTHORS], "A (a@x), B");
        assert_eq!(a[ANNOTATION_SOURCE], "https://s");
        assert!(matches!(
            Metadata::parse(b"version: 1.0.0\n", None),
            Err(MetadataError::Missing("name"))
        ));
        assert!(Metadata::parse(b"name: [", None).is_err());
    }
}
