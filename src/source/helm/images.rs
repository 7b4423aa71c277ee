//! Image references in YAML trees: a chart's values files (the guess made when no Helm can
//! render the chart) and the objects Helm rendered that an operator reads.
//!
//! Charts and operators name images in a few shapes, all found here wherever they sit:
//! - a block with `repository` and optionally `registry`, `tag`, `digest` (Bitnami, Cilium,
//!   the `helm create` scaffold, most others); an empty tag means the chart's appVersion, as
//!   the scaffold's templates do; `useDigest: false` drops the digest; Cilium's operator
//!   block (`genericDigest`) names `<repository>-generic<suffix>`;
//! - NVIDIA's `repository` (registry and path) + `image` (name) + `version` (tag);
//! - a block with `name` (and `tag`) under an image key, the registry and namespace coming
//!   from an enclosing `imageRegistry` / `containerRegistry` / `imageNamespace` (cert-manager,
//!   StackGres) or `global.imageRegistry`;
//! - a plain `image: repo:tag` string, or any `*Image` key;
//! - in rendered objects: container `args` (`--acme-http01-solver-image=REF`, or any flag
//!   whose value is a fully qualified reference) and `env` (`*_IMAGE`, `RELATED_IMAGE_*`);
//! - the `artifacthub.io/images` annotation of Chart.yaml (a YAML list of `{name, image}`).
//!
//! A mapping with `enabled: false` is skipped: the component is off. Anything that does not
//! parse as an image reference (templated values, URLs) is skipped.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::manifest::lock::{ChartImage, Found, PulledBy};
use crate::manifest::reference::Reference;

/// The annotation Artifact Hub reads a chart's images from.
pub const ARTIFACTHUB_IMAGES: &str = "artifacthub.io/images";

/// Where found images go, and what is recorded with each.
pub(crate) struct Sink<'a> {
    /// The file (values file or template).
    pub from: &'a str,
    /// The rendered object (`Kind/name`).
    pub object: Option<&'a str>,
    /// How they are found.
    pub found: Found,
    /// Who pulls them (rendered objects only).
    pub pulled_by: Option<PulledBy>,
    /// The set they go into.
    pub out: &'a mut BTreeSet<ChartImage>,
}

impl Sink<'_> {
    /// Records `image` named at `path`.
    pub fn add(&mut self, image: String, path: &[String]) {
        self.out.insert(ChartImage {
            image,
            from: self.from.to_string(),
            object: self.object.map(str::to_string),
            field: (!path.is_empty()).then(|| field_path(path)),
            found: self.found,
            pulled_by: self.pulled_by,
        });
    }
}

/// A dotted path; list positions and names (`[0]`, `[manager]`) join without a dot.
pub(crate) fn field_path(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if !out.is_empty() && !part.starts_with('[') {
            out.push('.');
        }
        out.push_str(part);
    }
    out
}

/// What differs between reading values files and reading rendered objects.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// Fills an empty tag (values files: the chart's appVersion, as templates default it).
    pub app_version: Option<&'a str>,
    /// Rendered objects: a reference needs a tag or a digest (an operator pulls nothing
    /// else), and container `args` and `env` are read.
    pub rendered: bool,
}

/// Registry and namespace that enclosing mappings give to `name`-style image blocks.
#[derive(Debug, Clone, Default)]
struct Inherited {
    registry: Option<String>,
    namespace: Option<String>,
}

/// Images in a values document; `from` names the file, `app_version` fills empty tags.
pub fn from_values(values: &Value, from: &str, app_version: &str, out: &mut BTreeSet<ChartImage>) {
    let mut sink = Sink {
        from,
        object: None,
        found: Found::Values,
        pulled_by: None,
        out,
    };
    let rules = Rules {
        app_version: Some(app_version).filter(|v| !v.is_empty()),
        rendered: false,
    };
    walk(
        values,
        &mut Vec::new(),
        &Inherited::default(),
        rules,
        &mut sink,
    );
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
                from: from.to_string(),
                object: None,
                field: Some(format!("annotation {ARTIFACTHUB_IMAGES}")),
                found: Found::Annotation,
                pulled_by: None,
            });
        }
    }
}

/// Walks a tree for image references (see the module documentation).
pub(crate) fn walk_tree(value: &Value, path: &mut Vec<String>, rules: Rules, sink: &mut Sink) {
    walk(value, path, &Inherited::default(), rules, sink);
}

fn walk(
    value: &Value,
    path: &mut Vec<String>,
    inherited: &Inherited,
    rules: Rules,
    sink: &mut Sink,
) {
    match value {
        Value::Object(map) => {
            if map.get("enabled") == Some(&Value::Bool(false)) {
                return;
            }
            let inherited = inherit(map, inherited);
            let own_key = path.last().map(String::as_str).unwrap_or("");
            let block = image_block(map, own_key, &inherited, rules);
            if let Some(image) = &block {
                sink.add(image.clone(), path);
            }
            for (key, child) in map {
                path.push(key.clone());
                match child {
                    Value::String(text) if block.is_none() && is_image_key(key) => {
                        if let Some(image) = reference(text, rules) {
                            sink.add(image, path);
                        }
                    }
                    Value::Array(items)
                        if rules.rendered && (key == "args" || key == "command") =>
                    {
                        from_args(items, path, sink);
                    }
                    Value::Array(items) if rules.rendered && key == "env" => {
                        from_env(items, path, sink);
                    }
                    _ => {}
                }
                walk(child, path, &inherited, rules, sink);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                walk(item, path, inherited, rules, sink);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The registry and namespace a mapping passes down.
fn inherit(map: &Map<String, Value>, outer: &Inherited) -> Inherited {
    let mut inherited = outer.clone();
    let global = map.get("global").and_then(Value::as_object);
    let registry = ["imageRegistry", "containerRegistry"]
        .iter()
        .find_map(|k| text(map.get(*k)))
        .or_else(|| global.and_then(|g| text(g.get("imageRegistry"))));
    if let Some(registry) = registry {
        inherited.registry = Some(registry);
    }
    let namespace = text(map.get("imageNamespace"))
        .or_else(|| global.and_then(|g| text(g.get("imageNamespace"))));
    if let Some(namespace) = namespace {
        inherited.namespace = Some(namespace);
    }
    inherited
}

/// Whether a key names an image by itself: `image`, `*Image`, `*_IMAGE`, `RELATED_IMAGE_*`.
pub(crate) fn is_image_key(key: &str) -> bool {
    key == "image"
        || (key.len() > 5 && key.ends_with("Image"))
        || key.ends_with("_IMAGE")
        || key.starts_with("RELATED_IMAGE_")
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
fn image_block(
    map: &Map<String, Value>,
    own_key: &str,
    inherited: &Inherited,
    rules: Rules,
) -> Option<String> {
    let get = |k: &str| text(map.get(k));
    let use_digest = !matches!(map.get("useDigest"), Some(Value::Bool(false)));
    let digest = get("digest").filter(|d| use_digest && d.starts_with("sha256:"));
    let tag = get("tag");
    let has_parts = ["tag", "digest", "registry", "version"]
        .iter()
        .any(|k| map.contains_key(*k));
    // NVIDIA: repository (registry and path) + image (name) + version.
    if let (Some(repository), Some(image)) = (get("repository"), get("image")) {
        let name = if image.contains('/') && has_registry_host(&image) {
            image
        } else {
            format!("{}/{image}", repository.trim_end_matches('/'))
        };
        return compose(&name, tag.or_else(|| get("version")), digest, rules);
    }
    if let Some(repository) = get("repository") {
        let mut name = match get("registry") {
            Some(registry) if !repository.starts_with(&format!("{registry}/")) => {
                format!("{}/{repository}", registry.trim_end_matches('/'))
            }
            _ => repository,
        };
        // Cilium's operator: the template picks `<repository>-generic<suffix>` and its
        // `genericDigest` when no cloud provider is set, the default.
        let mut digest = digest;
        if let Some(generic) = get("genericDigest") {
            name = format!("{name}-generic{}", get("suffix").unwrap_or_default());
            digest = Some(generic).filter(|d| use_digest && d.starts_with("sha256:"));
        }
        return compose(&name, tag, digest, rules);
    }
    if has_parts && let Some(image) = get("image") {
        let name = match get("registry") {
            Some(registry) if !image.starts_with(&format!("{registry}/")) => {
                format!("{}/{image}", registry.trim_end_matches('/'))
            }
            _ => image,
        };
        return compose(&name, tag.or_else(|| get("version")), digest, rules);
    }
    // `image: {name: cert-manager-controller}` under `imageRegistry` + `imageNamespace`,
    // or StackGres's `image: {name: stackgres/operator, tag: ...}` under `containerRegistry`.
    if is_image_key(own_key)
        && let Some(name) = get("name")
    {
        let registry = get("registry").or_else(|| inherited.registry.clone());
        let full = if has_registry_host(&name) {
            name
        } else {
            [registry, inherited.namespace.clone(), Some(name)]
                .into_iter()
                .flatten()
                .map(|p| p.trim_matches('/').to_string())
                .collect::<Vec<_>>()
                .join("/")
        };
        return compose(&full, tag, digest, rules);
    }
    None
}

/// `name[:tag][@digest]`, normalized; the appVersion fills a missing tag in values files.
fn compose(
    name: &str,
    tag: Option<String>,
    digest: Option<String>,
    rules: Rules,
) -> Option<String> {
    if name.contains("{{") || name.contains("://") || name.contains(char::is_whitespace) {
        return None;
    }
    let mut full = name.to_string();
    let has_tag_in_name = name
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    if !has_tag_in_name && !name.contains('@') {
        match tag {
            Some(tag) => full = format!("{full}:{tag}"),
            None => {
                if let (Some(app_version), None) = (rules.app_version, &digest) {
                    full = format!("{full}:{app_version}");
                }
            }
        }
    }
    if let Some(digest) = digest
        && !full.contains('@')
    {
        full = format!("{full}@{digest}");
    }
    reference(&full, rules)
}

/// The normalized reference in `text`, under the rules' demands.
fn reference(text: &str, rules: Rules) -> Option<String> {
    let parsed = parse(text)?;
    if rules.rendered && !names_tag_or_digest(text) {
        return None;
    }
    Some(parsed.to_string())
}

/// Whether a reference as written names a tag or a digest (parsing adds `latest`).
fn names_tag_or_digest(text: &str) -> bool {
    let text = text.trim();
    text.contains('@')
        || text
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

fn parse(text: &str) -> Option<Reference> {
    let text = text.trim();
    if text.is_empty() || text.contains("{{") || text.contains("://") || text.contains(' ') {
        return None;
    }
    Reference::parse(text).ok()
}

/// The normalized reference, when the text is one.
pub(crate) fn normalize(text: &str) -> Option<String> {
    parse(text).map(|r| r.to_string())
}

/// The normalized reference in `text` if it carries a tag or a digest.
pub(crate) fn tagged_reference(text: &str) -> Option<String> {
    reference(
        text,
        Rules {
            app_version: None,
            rendered: true,
        },
    )
}

/// A container image as the kubelet pulls it: no tag means `latest` (as parsing reads it).
pub(crate) fn container_image(text: &str) -> Option<String> {
    normalize(text)
}

/// Whether the first path component is a registry host (`quay.io`, `host:5000`, `localhost`).
fn has_registry_host(text: &str) -> bool {
    match text.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// A fully qualified reference with a tag or digest (`quay.io/org/x:v1`), the only kind
/// taken from places that do not say "image" (a flag's value, a ConfigMap value).
pub(crate) fn qualified_reference(text: &str) -> Option<String> {
    let text = text.trim();
    if !has_registry_host(text) {
        return None;
    }
    let parsed = parse(text)?;
    names_tag_or_digest(text).then(|| parsed.to_string())
}

/// Images a container's `args` or `command` name: `--x-image=REF`, `--x-image REF`, or any
/// flag whose value is a fully qualified reference.
pub(crate) fn from_args(items: &[Value], path: &mut Vec<String>, sink: &mut Sink) {
    let strict = Rules {
        app_version: None,
        rendered: true,
    };
    for (i, item) in items.iter().enumerate() {
        let Some(arg) = item.as_str() else { continue };
        let arg = arg.trim();
        if !arg.starts_with('-') {
            continue;
        }
        let image = match arg.split_once('=') {
            Some((flag, value)) if flag.to_ascii_lowercase().contains("image") => {
                reference(value, strict)
            }
            Some((_, value)) => qualified_reference(value),
            None if arg.to_ascii_lowercase().contains("image") => items
                .get(i + 1)
                .and_then(Value::as_str)
                .filter(|next| !next.starts_with('-'))
                .and_then(|next| reference(next, strict)),
            None => None,
        };
        if let Some(image) = image {
            path.push(format!("[{i}]"));
            sink.add(image, path);
            path.pop();
        }
    }
}

/// Images a container's `env` names: variables whose name says IMAGE (`*_IMAGE`,
/// `RELATED_IMAGE_*`).
pub(crate) fn from_env(items: &[Value], path: &mut Vec<String>, sink: &mut Sink) {
    let strict = Rules {
        app_version: None,
        rendered: true,
    };
    for item in items {
        let (Some(name), Some(value)) = (
            item.get("name").and_then(Value::as_str),
            item.get("value").and_then(Value::as_str),
        ) else {
            continue;
        };
        if !name.to_ascii_uppercase().contains("IMAGE") {
            continue;
        }
        if let Some(image) = reference(value, strict) {
            path.push(format!("[{name}]"));
            sink.add(image, path);
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(yaml: &str, app_version: &str) -> Vec<(String, String)> {
        let values: Value = serde_saphyr::from_str(yaml).unwrap();
        let mut out = BTreeSet::new();
        from_values(&values, "values.yaml", app_version, &mut out);
        out.into_iter()
            .map(|i| (i.location(), i.image))
            .map(|(l, i)| (i, l))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
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
      genericDigest: sha256:f7884848483bbcd7b1e0ccfd34ba4546f258b460cb4b7e2f06a1bcc96ef88039
      useDigest: true
      suffix: ""
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
kubectlImage: docker.io/bitnami/kubectl:1.31
relay:
  enabled: false
  image: {repository: quay.io/cilium/hubble-relay, tag: v1.16.5}
"#,
            "1.27.0",
        );
        assert_eq!(
            found,
            pairs(&[
                (
                    "docker.io/bitnami/kubectl:1.31",
                    "values.yaml: kubectlImage"
                ),
                ("docker.io/bitnami/redis:7.4", "values.yaml: master.image"),
                (
                    "docker.io/library/busybox:1.36",
                    "values.yaml: sidecars[0].image"
                ),
                ("docker.io/library/nginx:1.27.0", "values.yaml: image"),
                (
                    "quay.io/cilium/cilium:v1.16.5@sha256:758ca0793f5995bb938a2fa219dcce63dc0b3fa7fc4ce5cc851125281fb7361d",
                    "values.yaml: cilium.image"
                ),
                (
                    "quay.io/cilium/operator-generic:v1.16.5@sha256:f7884848483bbcd7b1e0ccfd34ba4546f258b460cb4b7e2f06a1bcc96ef88039",
                    "values.yaml: cilium.operator.image"
                ),
            ])
        );
    }

    #[test]
    fn registry_namespace_name_blocks() {
        // cert-manager: top-level registry and namespace, `image.name`, tag = appVersion.
        let found = images(
            "imageRegistry: quay.io\nimageNamespace: jetstack\nimage:\n  name: cert-manager-controller\n  pullPolicy: IfNotPresent\nwebhook:\n  image:\n    name: cert-manager-webhook\nacmesolver:\n  image:\n    name: cert-manager-acmesolver\n    tag: v1.21.0\n",
            "v1.21.1",
        );
        assert_eq!(
            found,
            pairs(&[
                (
                    "quay.io/jetstack/cert-manager-acmesolver:v1.21.0",
                    "values.yaml: acmesolver.image"
                ),
                (
                    "quay.io/jetstack/cert-manager-controller:v1.21.1",
                    "values.yaml: image"
                ),
                (
                    "quay.io/jetstack/cert-manager-webhook:v1.21.1",
                    "values.yaml: webhook.image"
                ),
            ])
        );
        // StackGres: containerRegistry + {name, tag}.
        let found = images(
            "containerRegistry: quay.io\noperator:\n  image:\n    name: stackgres/operator\n    tag: 1.18.6\nrestapi:\n  image:\n    name: stackgres/restapi\n    tag: 1.18.6\n",
            "1.18.6",
        );
        assert_eq!(
            found,
            pairs(&[
                (
                    "quay.io/stackgres/operator:1.18.6",
                    "values.yaml: operator.image"
                ),
                (
                    "quay.io/stackgres/restapi:1.18.6",
                    "values.yaml: restapi.image"
                ),
            ])
        );
    }

    #[test]
    fn nvidia_blocks() {
        let found = images(
            "operator:\n  repository: nvcr.io/nvidia\n  image: gpu-operator\n  version: ''\ndriver:\n  repository: nvcr.io/nvidia\n  image: driver\n  version: \"595.91.07\"\nmig:\n  strategy: single\nmigManager:\n  enabled: false\n  repository: nvcr.io/nvidia/cloud-native\n  image: k8s-mig-manager\n  version: v0.15.0\n",
            "v26.7.0",
        );
        assert_eq!(
            found,
            pairs(&[
                ("nvcr.io/nvidia/driver:595.91.07", "values.yaml: driver"),
                (
                    "nvcr.io/nvidia/gpu-operator:v26.7.0",
                    "values.yaml: operator"
                ),
            ])
        );
    }

    #[test]
    fn rendered_rules_need_a_tag_and_read_args_and_env() {
        let object: Value = serde_saphyr::from_str(
            "spec:\n  image: quay.io/x/untagged\n  sidecarImage: quay.io/x/side:1\n  args:\n    - --acme-http01-solver-image=quay.io/jetstack/cert-manager-acmesolver:v1.21.1\n    - --prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1\n    - --base-image\n    - quay.io/x/base:2\n    - --server=svc.ns:443\n  env:\n    - {name: RELATED_IMAGE_DRIVER, value: 'nvcr.io/nvidia/driver@sha256:758ca0793f5995bb938a2fa219dcce63dc0b3fa7fc4ce5cc851125281fb7361d'}\n    - {name: IMAGE_PULL_POLICY, value: IfNotPresent}\n    - {name: LOG_LEVEL, value: 'quay.io/not/an:image'}\n",
        )
        .unwrap();
        let mut out = BTreeSet::new();
        let mut sink = Sink {
            from: "t.yaml",
            object: Some("Issuer/x"),
            found: Found::Rendered,
            pulled_by: Some(PulledBy::Operator),
            out: &mut out,
        };
        walk_tree(
            &object,
            &mut Vec::new(),
            Rules {
                app_version: None,
                rendered: true,
            },
            &mut sink,
        );
        let found: Vec<(String, String)> = out
            .into_iter()
            .map(|i| (i.location(), i.image))
            .map(|(l, i)| (i, l))
            .collect();
        assert_eq!(
            found,
            pairs(&[
                (
                    "nvcr.io/nvidia/driver@sha256:758ca0793f5995bb938a2fa219dcce63dc0b3fa7fc4ce5cc851125281fb7361d",
                    "t.yaml: Issuer/x spec.env[RELATED_IMAGE_DRIVER]"
                ),
                (
                    "quay.io/jetstack/cert-manager-acmesolver:v1.21.1",
                    "t.yaml: Issuer/x spec.args[0]"
                ),
                (
                    "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1",
                    "t.yaml: Issuer/x spec.args[1]"
                ),
                ("quay.io/x/base:2", "t.yaml: Issuer/x spec.args[2]"),
                ("quay.io/x/side:1", "t.yaml: Issuer/x spec.sidecarImage"),
            ])
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
        let found: Vec<_> = out.into_iter().map(|i| (i.image, i.found)).collect();
        assert_eq!(
            found,
            [("ghcr.io/org/app:1.2.3".to_string(), Found::Annotation)]
        );
    }
}
