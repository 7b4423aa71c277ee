//! The images in what `helm template` rendered: what the cluster will pull.
//!
//! - Workloads (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController,
//!   Job, CronJob): the image of every container, init container and ephemeral container is
//!   pulled when the chart is installed (a missing tag means `latest`, as the kubelet reads
//!   it). Their containers' `args` and `env` name what the workload, an operator, deploys.
//! - Every other object but Secrets (custom resources an operator reads, such as NVIDIA's
//!   ClusterPolicy, Rook's CephCluster, StackGres's SGConfig or a Prometheus): the image
//!   shapes of [`super::images`], with a tag or a digest.
//! - ConfigMaps: values that are fully qualified references, or that sit under a key saying
//!   "image", and YAML documents held in a value, read as above.
//!
//! CustomResourceDefinitions are skipped unparsed: they are large and name no image to pull.

use std::collections::BTreeSet;

use serde_json::Value;

use super::images::{self, Rules, Sink};
use super::render::documents;
use crate::manifest::lock::{ChartImage, Found, PulledBy};

/// Where each workload kind keeps its pod spec.
const POD_SPECS: &[(&str, &[&str])] = &[
    ("Pod", &["spec"]),
    ("Deployment", &["spec", "template", "spec"]),
    ("StatefulSet", &["spec", "template", "spec"]),
    ("DaemonSet", &["spec", "template", "spec"]),
    ("ReplicaSet", &["spec", "template", "spec"]),
    ("ReplicationController", &["spec", "template", "spec"]),
    ("Job", &["spec", "template", "spec"]),
    (
        "CronJob",
        &["spec", "jobTemplate", "spec", "template", "spec"],
    ),
];

/// The container lists of a pod spec.
const CONTAINER_LISTS: &[&str] = &["initContainers", "containers", "ephemeralContainers"];

/// What the scan of one rendering found.
#[derive(Debug, Default)]
pub struct RenderedImages {
    /// The images, with where each is named.
    pub images: BTreeSet<ChartImage>,
    /// Objects rendered, CRDs aside.
    pub objects: usize,
    /// Documents that do not parse as YAML (their images are not known).
    pub unreadable: Vec<String>,
}

/// Finds the images in `helm template` output.
pub fn scan(output: &str) -> RenderedImages {
    let mut found = RenderedImages::default();
    for doc in documents(output) {
        let from = doc.source.unwrap_or("(template without a # Source line)");
        if is_crd(doc.text) {
            continue;
        }
        let value: Value = match serde_saphyr::from_str_with_options::<Option<Value>>(
            doc.text,
            super::metadata::yaml_options(),
        ) {
            Ok(Some(v)) => v,
            Ok(None) => continue,
            Err(e) => {
                found.unreadable.push(format!("{from}: {e}"));
                continue;
            }
        };
        scan_object(&value, from, &mut found);
    }
    found
}

/// Whether a document is a CustomResourceDefinition (a top-level `kind:` line says so).
fn is_crd(text: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix("kind:")
            .is_some_and(|k| k.trim().trim_matches(['"', '\'']) == "CustomResourceDefinition")
    })
}

fn scan_object(value: &Value, from: &str, found: &mut RenderedImages) {
    let Some(kind) = value.get("kind").and_then(Value::as_str) else {
        return;
    };
    if kind == "List" {
        for item in value
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            scan_object(item, from, found);
        }
        return;
    }
    found.objects += 1;
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let object = format!("{kind}/{name}");
    let mut operator = Sink {
        from,
        object: Some(&object),
        found: Found::Rendered,
        pulled_by: Some(PulledBy::Operator),
        out: &mut found.images,
    };
    let rendered = Rules {
        app_version: None,
        rendered: true,
    };
    if let Some((_, at)) = POD_SPECS.iter().find(|(k, _)| *k == kind) {
        let mut path: Vec<String> = at.iter().map(|s| s.to_string()).collect();
        if let Some(spec) = at.iter().try_fold(value, |v, key| v.get(*key)) {
            containers(spec, &mut path, &mut operator);
        }
        return;
    }
    match kind {
        "Secret" => {}
        "ConfigMap" => config_map(value, &mut operator),
        _ => images::walk_tree(value, &mut Vec::new(), rendered, &mut operator),
    }
}

/// The containers of a pod spec: their images (pulled by the workload), and the images
/// their args and env name (deployed by it).
fn containers(spec: &Value, path: &mut Vec<String>, operator: &mut Sink) {
    for list in CONTAINER_LISTS {
        let Some(items) = spec.get(*list).and_then(Value::as_array) else {
            continue;
        };
        path.push(list.to_string());
        for (i, container) in items.iter().enumerate() {
            let label = container
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| i.to_string());
            path.push(format!("[{label}]"));
            if let Some(image) = container
                .get("image")
                .and_then(Value::as_str)
                .and_then(images::container_image)
            {
                path.push("image".to_string());
                let mut workload = Sink {
                    from: operator.from,
                    object: operator.object,
                    found: Found::Rendered,
                    pulled_by: Some(PulledBy::Workload),
                    out: operator.out,
                };
                workload.add(image, path);
                path.pop();
            }
            for key in ["command", "args"] {
                if let Some(args) = container.get(key).and_then(Value::as_array) {
                    path.push(key.to_string());
                    images::from_args(args, path, operator);
                    path.pop();
                }
            }
            if let Some(env) = container.get("env").and_then(Value::as_array) {
                path.push("env".to_string());
                images::from_env(env, path, operator);
                path.pop();
            }
            path.pop();
        }
        path.pop();
    }
}

/// A ConfigMap's values: references by themselves, or YAML documents holding them.
fn config_map(value: &Value, sink: &mut Sink) {
    let Some(data) = value.get("data").and_then(Value::as_object) else {
        return;
    };
    let rendered = Rules {
        app_version: None,
        rendered: true,
    };
    for (key, item) in data {
        let Some(text) = item.as_str() else { continue };
        let mut path = vec!["data".to_string(), key.clone()];
        if !text.trim().contains('\n') {
            let image = if key.to_ascii_lowercase().contains("image") {
                images::tagged_reference(text)
            } else {
                images::qualified_reference(text)
            };
            if let Some(image) = image {
                sink.add(image, &path);
            }
            continue;
        }
        // A configuration file: read it as YAML when it is some, else line by line.
        match serde_saphyr::from_str_with_options::<Option<Value>>(
            text,
            super::metadata::yaml_options(),
        ) {
            Ok(Some(doc @ (Value::Object(_) | Value::Array(_)))) => {
                images::walk_tree(&doc, &mut path, rendered, sink);
            }
            _ => {
                for (n, line) in text.lines().enumerate() {
                    let Some((k, v)) = line.split_once(['=', ':']) else {
                        continue;
                    };
                    if k.to_ascii_lowercase().contains("image")
                        && let Some(image) =
                            images::qualified_reference(v.trim().trim_matches(['"', '\'']))
                    {
                        path.push(format!("[line {}]", n + 1));
                        sink.add(image, &path);
                        path.pop();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_operators_and_config_maps() {
        let out = r#"---
# Source: op/crds/crd.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.x.io}
spec: {image: quay.io/never/read:1}
---
# Source: op/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rel-op
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: busybox
      containers:
        - name: manager
          image: "quay.io/x/operator:v1"
          args: ["--acme-http01-solver-image=quay.io/x/solver:v1", "--v=2"]
          env:
            - name: RELATED_IMAGE_AGENT
              value: quay.io/x/agent:v1
---
# Source: op/templates/cronjob.yaml
apiVersion: batch/v1
kind: CronJob
metadata: {name: rel-kubectl}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
            - {name: kubectl, image: "registry.k8s.io/kubectl:v1.36.4"}
---
# Source: op/templates/policy.yaml
apiVersion: nvidia.com/v1
kind: ClusterPolicy
metadata: {name: cluster-policy}
spec:
  driver:
    enabled: true
    repository: nvcr.io/nvidia
    image: driver
    version: "595.91.07"
  migManager:
    enabled: false
    repository: nvcr.io/nvidia/cloud-native
    image: k8s-mig-manager
    version: v0.15.0
---
# Source: op/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata: {name: rel-images}
data:
  defaultImage: "quay.io/x/default:3"
  level: info
  endpoint: "svc.ns:8080"
  config.yaml: |
    sidecar:
      image: quay.io/x/sidecar:4
---
# Source: op/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {image: quay.io/x/secret:1}
"#;
        let found = scan(out);
        assert_eq!(found.objects, 5);
        let list: Vec<(String, String, Option<PulledBy>)> = found
            .images
            .into_iter()
            .map(|i| (i.image.clone(), i.location(), i.pulled_by))
            .collect();
        let w = Some(PulledBy::Workload);
        let o = Some(PulledBy::Operator);
        let expected: Vec<(String, String, Option<PulledBy>)> = [
            ("docker.io/library/busybox:latest", "op/templates/deployment.yaml: Deployment/rel-op spec.template.spec.initContainers[init].image", w),
            ("nvcr.io/nvidia/driver:595.91.07", "op/templates/policy.yaml: ClusterPolicy/cluster-policy spec.driver", o),
            ("quay.io/x/agent:v1", "op/templates/deployment.yaml: Deployment/rel-op spec.template.spec.containers[manager].env[RELATED_IMAGE_AGENT]", o),
            ("quay.io/x/default:3", "op/templates/cm.yaml: ConfigMap/rel-images data.defaultImage", o),
            ("quay.io/x/operator:v1", "op/templates/deployment.yaml: Deployment/rel-op spec.template.spec.containers[manager].image", w),
            ("quay.io/x/sidecar:4", "op/templates/cm.yaml: ConfigMap/rel-images data.config.yaml.sidecar.image", o),
            ("quay.io/x/solver:v1", "op/templates/deployment.yaml: Deployment/rel-op spec.template.spec.containers[manager].args[0]", o),
            ("registry.k8s.io/kubectl:v1.36.4", "op/templates/cronjob.yaml: CronJob/rel-kubectl spec.jobTemplate.spec.template.spec.containers[kubectl].image", w),
        ]
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c))
        .collect();
        assert_eq!(list, expected);
    }

    #[test]
    fn unreadable_documents_are_reported() {
        let found = scan("---\n# Source: c/templates/bad.yaml\nkind: [\n");
        assert_eq!(found.unreadable.len(), 1);
        assert!(found.unreadable[0].starts_with("c/templates/bad.yaml: "));
    }
}
