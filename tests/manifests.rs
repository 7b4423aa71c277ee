//! The shipped manifests: `manifests/platform.yaml` and every example under
//! `manifests/examples/` must stay valid, and the platform release must keep every component
//! the platform is made of.
//!
//! `ferry check` reads the manifest first (every schema error with its line and column), then
//! the lock, which only `ferry lock` on a connected machine can write. Offline, without a
//! lock, it checks the manifest alone and passes, saying the charts' images wait for the lock:
//! that is what these tests assert, together with a copy carrying an unknown field failing at
//! its position.

mod common;

use std::path::{Path, PathBuf};

use common::ferry::{Env, fails, ok};

/// The repository's `manifests/` directory.
fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

/// `ferry check PATH` from a fresh environment succeeds; returns what it printed.
///
/// Asserts that the manifest validated and that check says the lock is still to come.
fn check_validates(env: &Env, manifest: &Path) -> String {
    assert!(manifest.exists(), "{} is missing", manifest.display());
    let stdout = ok(env.ferry().arg("check").arg(manifest));
    let lock = manifest.with_extension("lock");
    assert!(
        !lock.exists(),
        "{} exists; this test expects the manifests to be shipped without locks",
        lock.display()
    );
    assert!(
        stdout.contains("valid") && stdout.contains("not locked yet"),
        "ferry check {} should pass and say the lock is to come:\n{stdout}",
        manifest.display()
    );
    stdout
}

#[test]
fn platform_manifest_validates() {
    let env = Env::new();
    check_validates(&env, &manifests_dir().join("platform.yaml"));
}

#[test]
fn every_example_manifest_validates() {
    let env = Env::new();
    let dir = manifests_dir().join("examples");
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    found.sort();
    for kind in ["apt.yaml", "charts.yaml", "files.yaml", "images.yaml"] {
        assert!(
            found.iter().any(|f| f == kind),
            "manifests/examples/{kind} is missing (found {found:?})"
        );
    }
    for name in &found {
        check_validates(&env, &dir.join(name));
    }
    // The example the top-level README's quick start uses.
    check_validates(&env, &manifests_dir().join("example.yaml"));
}

#[test]
fn platform_manifest_with_an_unknown_field_fails_at_its_position() {
    let env = Env::new();
    let text = std::fs::read_to_string(manifests_dir().join("platform.yaml")).unwrap();
    // Add a misspelled key to the first chart entry, right after its `version:` line.
    let anchor = "      version: 1.20.0\n";
    let at = text
        .find(anchor)
        .expect("platform.yaml pins the cilium chart at 1.20.0; update this test's anchor")
        + anchor.len();
    let mut broken = text[..at].to_string();
    broken.push_str("      verison: 1.20.0\n");
    broken.push_str(&text[at..]);
    let line = broken[..at].lines().count() + 1;
    let copy = env.manifest("platform.yaml", &broken);

    let stderr = fails(env.ferry().arg("check").arg(&copy));
    let position = format!("{}:{line}:7:", copy.display());
    assert!(
        stderr.contains(&position) && stderr.contains("unknown field \"verison\""),
        "expected an unknown-field error at {position}:\n{stderr}"
    );
    assert!(
        !stderr.contains("not locked yet"),
        "the manifest error must come before the lock is looked for:\n{stderr}"
    );
}

/// What the platform release is made of: one reference per component the release promises.
/// A component dropped from platform.yaml fails here, not on site.
const PLATFORM_COMPONENTS: &[&str] = &[
    // K3s: binary, airgap images, install script pinned to the K3s source tree.
    "github.com/k3s-io/k3s/releases/download/",
    "/k3s\n",
    "k3s-airgap-images-amd64.tar.zst",
    "sha256sum-amd64.txt",
    "https://raw.githubusercontent.com/k3s-io/k3s/",
    "/install.sh\n",
    // Cilium: chart, images, CLI.
    "https://helm.cilium.io",
    "quay.io/cilium/cilium:",
    "quay.io/cilium/operator-generic:",
    "quay.io/cilium/hubble-relay:",
    "quay.io/cilium/hubble-ui:",
    "quay.io/cilium/hubble-ui-backend:",
    "quay.io/cilium/cilium-envoy:",
    "cilium/cilium-cli/releases/download/",
    "cilium-linux-amd64.tar.gz.sha256sum",
    // cert-manager.
    "https://charts.jetstack.io",
    "quay.io/jetstack/cert-manager-controller:",
    "quay.io/jetstack/cert-manager-webhook:",
    "quay.io/jetstack/cert-manager-cainjector:",
    // Argo CD.
    "https://argoproj.github.io/argo-helm",
    "quay.io/argoproj/argocd:",
    "dexidp/dex:",
    "library/redis:",
    // Kong ingress controller and gateway.
    "https://charts.konghq.com",
    "kong/kubernetes-ingress-controller:",
    "docker.io/library/kong:",
    // kube-prometheus-stack.
    "name: kube-prometheus-stack",
    "quay.io/prometheus/prometheus:",
    "quay.io/prometheus/alertmanager:",
    "quay.io/prometheus-operator/prometheus-operator:",
    "quay.io/prometheus/node-exporter:",
    "kube-state-metrics/kube-state-metrics:",
    "grafana/grafana:",
    // Loki.
    "name: loki",
    "grafana/loki:",
    // Reloader, External Secrets.
    "stakater-charts",
    "ghcr.io/stakater/reloader:",
    "https://charts.external-secrets.io",
    "ghcr.io/external-secrets/external-secrets:",
    // Rook Ceph.
    "https://charts.rook.io/release",
    "name: rook-ceph\n",
    "name: rook-ceph-cluster",
    "docker.io/rook/ceph:",
    "quay.io/ceph/ceph:",
    "quay.io/cephcsi/cephcsi:",
    "registry.k8s.io/sig-storage/csi-provisioner:",
    "registry.k8s.io/sig-storage/csi-node-driver-registrar:",
    // StackGres operator.
    "name: stackgres-operator",
    "quay.io/stackgres/operator:",
    // RabbitMQ cluster operator.
    "rabbitmq/cluster-operator/releases/download/",
    "rabbitmqoperator/cluster-operator:",
    // Harbor.
    "https://helm.goharbor.io",
    "goharbor/harbor-core:",
    "goharbor/registry-photon:",
    // NVIDIA GPU operator and NIM operator.
    "https://helm.ngc.nvidia.com/nvidia",
    "name: gpu-operator",
    "nvcr.io/nvidia/gpu-operator:",
    "name: k8s-nim-operator",
    "nvcr.io/nvidia/cloud-native/k8s-nim-operator:",
    // LiteLLM.
    "oci://ghcr.io/berriai/litellm-helm",
    "ghcr.io/berriai/litellm:",
    // apt for Ubuntu 22.04 hosts.
    "http://archive.ubuntu.com/ubuntu",
    "jammy",
    "keyring: keys/ubuntu-archive-keyring.gpg",
    "policycoreutils",
    "open-iscsi",
    "nfs-common",
    "lvm2",
    "curl",
    "vim",
];

#[test]
fn platform_manifest_carries_every_component() {
    let text = std::fs::read_to_string(manifests_dir().join("platform.yaml")).unwrap();
    // Only what ferry reads counts: drop comments (a YAML comment starts a line or follows a
    // space), so a component left only in a comment is missing.
    let content: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .map(|line| match line.find(" #") {
            Some(at) => &line[..at],
            None => line,
        })
        .map(|line| format!("{}\n", line.trim_end()))
        .collect();
    let missing: Vec<&str> = PLATFORM_COMPONENTS
        .iter()
        .copied()
        .filter(|component| !content.contains(component))
        .collect();
    assert!(
        missing.is_empty(),
        "manifests/platform.yaml lost components: {missing:?}"
    );
}
