//! The images a chart would pull, read from its values and annotations.
//!
//! Charts name their images in values.yaml in a few common shapes, all found here wherever
//! they sit in the tree:
//! - a block with `repository` (or `image`) and optionally `registry`, `tag`, `digest`
//!   (Bitnami, Cilium, the `helm create` scaffold, most others); an empty tag means the
//!   chart's appVersion, as the scaffold's templates do; `useDigest: false` drops the digest
//!   (Cilium);
//! - a plain `image: repo:tag` string;
//! - the `artifacthub.io/images` annotation of Chart.yaml (a YAML list of `{name, image}`).
//!
//! Anything that does not parse as an image reference (templated values, URLs) is skipped:
//! this is a check that catches the common case, not a template renderer.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::manifest::lock::ChartImage;
use crate::manifest::reference::Reference;

/// The annotation Artifact Hub reads a chart's images from.
pub const ARTIFACTHUB_IMAGES: &str = "artifacthub.io/images";

/// Images in a values document; `from` names the file, `app_version` fills empty tags.
pub fn from_values(values: &Value, from: &str, app_version: &str, out: &mut BTreeSet<ChartImage>) {
    walk(values, &mut Vec::new(), from, app_version, out);
}

/// Images in the `artifacthub.io/images` annotation's YAML.
pub fn from_annotation(yaml: &str, from: &str, out: &mut BTreeSet<ChartImage>) {
    let Ok(Value::Array(items)) = serde_saphyr::from_str::<Value>(yaml) else {
        return;
    };
    for item in items {
        if let Some(image) = item.get("image").and_then(Value::as_str)
            && let Some(reference) = normalize(image)
        {
            out.insert(ChartImage {
                image: reference,
                from: format!("{from}: annotation {ARTIFACTHUB_IMAGES}"),
            });
        }
    }
}

fn walk(
    value: &Value,
    path: &mut Vec<String>,
    from: &str,
    app_version: &str,
    out: &mut BTreeSet<ChartImage>,
) {
    match value {
        Value::Object(map) => {
            let block = image_block(map, app_version);
            if let Some(image) = &block {
                out.insert(ChartImage {
                    image: image.clone(),
                    from: location(from, path),
                });
            }
            for (key, child) in map {
                // `image: repo:tag` names an image by itself, unless it is part of the block.
                if key == "image"
                    && block.is_none()
                    && let Value::String(text) = child
                    && let Some(image) = normalize(text)
                {
                    path.push(key.clone());
                    out.insert(ChartImage {
                        image,
                        from: location(from, path),
                    });
                    path.pop();
                }
                path.push(key.clone());
                walk(child, path, from, app_version, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(item, path, from, app_version, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn location(from: &str, path: &[String]) -> String {
    if path.is_empty() {
        from.to_string()
    } else {
        format!("{from}: {}", path.join("."))
    }
}

/// A scalar as text (YAML numbers become strings: `tag: 7.4`).
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

/// The image an image block names, if the mapping is one.
fn image_block(map: &serde_json::Map<String, Value>, app_version: &str) -> Option<String> {
    let has_parts = ["tag", "digest", "registry"]
        .iter()
        .any(|k| map.contains_key(*k));
    let repository = match text(map.get("repository")) {
        Some(r) => r,
        None if has_parts => text(map.get("image"))?,
        None => return None,
    };
    if repository.contains("://") || repository.contains("{{") {
        return None;
    }
    let mut name = match text(map.get("registry")) {
        Some(registry) if !repository.starts_with(&format!("{registry}/")) => {
            format!("{}/{repository}", registry.trim_end_matches('/'))
        }
        _ => repository,
    };
    let use_digest = !matches!(map.get("useDigest"), Some(Value::Bool(false)));
    let digest = text(map.get("digest")).filter(|d| use_digest && d.starts_with("sha256:"));
    let has_tag_in_name = name
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    if !has_tag_in_name {
        match text(map.get("tag")) {
            Some(tag) => name = format!("{name}:{tag}"),
            None if !app_version.is_empty() && digest.is_none() => {
                name = format!("{name}:{app_version}")
            }
            None => {}
        }
    }
    if let Some(digest) = digest {
        name = format!("{name}@{digest}");
    }
    normalize(&name)
}

/// The normalized reference, when the text is one.
fn normalize(text: &str) -> Option<String> {
    if text.contains("{{") || text.contains("://") || text.contains(' ') {
        return None;
    }
    Reference::parse(text.trim()).ok().map(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(yaml: &str, app_version: &str) -> Vec<(String, String)> {
        let values: Value = serde_saphyr::from_str(yaml).unwrap();
        let mut out = BTreeSet::new();
        from_values(&values, "values.yaml", app_version, &mut out);
        out.into_iter().map(|i| (i.image, i.from)).collect()
    }

    #[test]
    fn common_shapes() {
        let found = images(
            r#"
image:
  repository: nginx
  pullPolicy: IfNotPresent
  tag: ""
cilium:
  image:
    override: ~
    repository: "quay.io/cilium/cilium"
    tag: "v1.16.5"
    digest: "sha256:758ca0793f5995bb938a2fa219dcce63dc0b3fa7fc4ce5cc851125281fb7361d"
    useDigest: true
  operator:
    image:
      repository: quay.io/cilium/operator
      tag: v1.16.5
      digest: sha256:f7884848483bbcd7b1e0ccfd34ba4546f258b460cb4b7e2f06a1bcc96ef88039
      useDigest: false
master:
  image:
    registry: docker.io
    repository: bitnami/redis
    tag: 7.4
sidecars:
  - name: x
    image: busybox:1.36
chart:
  repository: https://charts.example.com
templated:
  image: "{{ .Values.x }}"
"#,
            "1.27.0",
        );
        assert_eq!(
            found,
            vec![
                (
                    "docker.io/bitnami/redis:7.4".to_string(),
                    "values.yaml: master.image".to_string()
                ),
                (
                    "docker.io/library/busybox:1.36".to_string(),
                    "values.yaml: sidecars.0.image".to_string()
                ),
                (
                    "docker.io/library/nginx:1.27.0".to_string(),
                    "values.yaml: image".to_string()
                ),
                (
                    "quay.io/cilium/cilium:v1.16.5@sha256:758ca0793f5995bb938a2fa219dcce63dc0b3fa7fc4ce5cc851125281fb7361d"
                        .to_string(),
                    "values.yaml: cilium.image".to_string()
                ),
                (
                    "quay.io/cilium/operator:v1.16.5".to_string(),
                    "values.yaml: cilium.operator.image".to_string()
                ),
            ]
        );
    }

    #[test]
    fn annotation() {
        let mut out = BTreeSet::new();
        from_annotation(
            "- name: app\n  image: ghcr.io/org/app:1.2.3\n- name: bad\n  image: '{{ x }}'\n",
            "Chart.yaml",
            &mut out,
        );
        let found: Vec<_> = out.into_iter().map(|i| i.image).collect();
        assert_eq!(found, ["ghcr.io/org/app:1.2.3"]);
    }
}
