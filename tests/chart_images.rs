//! End-to-end: the images of a chart as Helm renders it. Charts written here, one per shape
//! that real charts use (global registry/namespace/name, NVIDIA's repository/image/version
//! custom resource, `printf "v%s" .Chart.AppVersion`, a repository suffix with a digest
//! chosen in the template, a kubectl tagged with the cluster's version, a subchart the parent
//! overrides, components that are off, an operator naming its operands in args, env and a
//! custom resource, 40-line comment blocks, a chart that names no image, a chart that needs
//! a value), packaged with Helm's own engine and served as a chart repository; `ferry lock`
//! renders them through tests/tools/helm (Helm v4's engine via helm-python-sdk).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::ferry::{Env, fails, ok};
use common::helm::HelmSdk;
use common::static_server::StaticServer;
use serde_json::Value;

const GENERIC: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const AWS: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// The test `helm`: Helm's engine behind the command line ferry runs.
fn helm_tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/helm")
}

/// Writes a chart directory: Chart.yaml from the arguments, then `files`.
fn chart(dir: &Path, name: &str, app_version: &str, extra: &str, files: &[(&str, &str)]) {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("templates")).unwrap();
    std::fs::write(
        root.join("Chart.yaml"),
        format!(
            "apiVersion: v2\nname: {name}\nversion: 1.0.0\nappVersion: \"{app_version}\"\n{extra}"
        ),
    )
    .unwrap();
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// `ferry lock MANIFEST`, rendering with the test `helm`.
fn lock_cmd(env: &Env, manifest: &Path) -> std::process::Command {
    let mut cmd = env.ferry();
    cmd.arg("lock").arg(manifest).env("FERRY_HELM", helm_tool());
    cmd
}

/// A release manifest: `spec_lines` go under `spec:` (each line indented two spaces).
fn release(spec_lines: &str) -> String {
    format!(
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: r, version: \"1\"}}\nspec:\n{spec_lines}"
    )
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  template:\n    spec:\n      containers:\n";

/// The charts of the render test, in a chart repository.
struct Charts {
    sdk: HelmSdk,
    src: PathBuf,
    repo: PathBuf,
}

impl Charts {
    fn new(sdk: HelmSdk, env: &Env) -> Charts {
        let src = env.path().join("src");
        let repo = env.path().join("repo");
        std::fs::create_dir_all(&src).unwrap();
        Charts { sdk, src, repo }
    }

    fn package(&self, name: &str) {
        self.sdk
            .call(&["package", &s(&self.src.join(name)), &s(&self.repo)]);
    }

    /// Packages `sub` into `parent/charts/`.
    fn pack_into(&self, sub: &str, parent: &str) {
        self.sdk.call(&[
            "package",
            &s(&self.src.join(sub)),
            &s(&self.src.join(parent).join("charts")),
        ]);
    }

    fn index(&self) -> StaticServer {
        self.sdk.call(&["index", &s(&self.repo)]);
        StaticServer::start(&self.repo)
    }

    /// cert-manager's shape: global registry + namespace + `image.name`, the solver's image
    /// passed to the controller as an argument.
    fn certs(&self) {
        chart(
            &self.src,
            "certs",
            "v1.21.1",
            "",
            &[
                (
                    "values.yaml",
                    "global:\n  imageRegistry: \"\"\nimageRegistry: quay.io\nimageNamespace: jetstack\nimage:\n  name: cert-manager-controller\n  tag: \"\"\nwebhook:\n  image:\n    name: cert-manager-webhook\nacmesolver:\n  image:\n    name: cert-manager-acmesolver\n",
                ),
                (
                    "templates/_helpers.tpl",
                    "{{- define \"certs.image\" -}}\n{{- $registry := .root.Values.global.imageRegistry | default .root.Values.imageRegistry -}}\n{{- printf \"%s/%s/%s:%s\" $registry .root.Values.imageNamespace .image.name (.image.tag | default .root.Chart.AppVersion) -}}\n{{- end -}}\n",
                ),
                (
                    "templates/controller.yaml",
                    &format!(
                        "{DEPLOYMENT}        - name: controller\n          image: {{{{ include \"certs.image\" (dict \"root\" . \"image\" .Values.image) | quote }}}}\n          args:\n            - --v=2\n            - --acme-http01-solver-image={{{{ include \"certs.image\" (dict \"root\" . \"image\" .Values.acmesolver.image) }}}}\n"
                    ),
                ),
                (
                    "templates/webhook.yaml",
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-webhook\nspec:\n  template:\n    spec:\n      containers:\n        - name: webhook\n          image: {{ include \"certs.image\" (dict \"root\" . \"image\" .Values.webhook.image) | quote }}\n",
                ),
            ],
        );
        self.package("certs");
    }

    /// NVIDIA's shape: an operator and a ClusterPolicy whose components are
    /// repository/image/version blocks, one of them off by default.
    fn gpu(&self) {
        chart(
            &self.src,
            "gpu",
            "v26.7.0",
            "",
            &[
                (
                    "values.yaml",
                    "operator:\n  repository: nvcr.io/nvidia\n  image: gpu-operator\n  version: \"\"\ndriver:\n  enabled: true\n  repository: nvcr.io/nvidia\n  image: driver\n  version: \"595.91.07\"\ntoolkit:\n  enabled: true\n  repository: nvcr.io/nvidia/k8s\n  image: container-toolkit\n  version: v1.20.0\nmigManager:\n  enabled: false\n  repository: nvcr.io/nvidia/cloud-native\n  image: k8s-mig-manager\n  version: v0.15.0\n",
                ),
                (
                    "templates/operator.yaml",
                    &format!(
                        "{DEPLOYMENT}        - name: gpu-operator\n          image: \"{{{{ .Values.operator.repository }}}}/{{{{ .Values.operator.image }}}}:{{{{ .Values.operator.version | default .Chart.AppVersion }}}}\"\n"
                    ),
                ),
                (
                    "templates/clusterpolicy.yaml",
                    "apiVersion: nvidia.com/v1\nkind: ClusterPolicy\nmetadata:\n  name: cluster-policy\nspec:\n  driver:\n    {{- toYaml .Values.driver | nindent 4 }}\n  toolkit:\n    {{- toYaml .Values.toolkit | nindent 4 }}\n  migManager:\n    {{- toYaml .Values.migManager | nindent 4 }}\n",
                ),
            ],
        );
        self.package("gpu");
    }

    /// node-exporter's shape: the tag is `v` + appVersion + `-distroless`, made in the template.
    fn exporter(&self) {
        chart(
            &self.src,
            "exporter",
            "1.12.1",
            "",
            &[
                (
                    "values.yaml",
                    "image:\n  repository: quay.io/prometheus/node-exporter\n  tag: \"\"\n",
                ),
                (
                    "templates/daemonset.yaml",
                    "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  template:\n    spec:\n      containers:\n        - name: node-exporter\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag | default (printf \"v%s\" .Chart.AppVersion) }}-distroless\"\n",
                ),
            ],
        );
        self.package("exporter");
    }

    /// Cilium operator's shape: `<repository>-<variant><suffix>:<tag>@<digest of the variant>`.
    fn netop(&self) {
        chart(
            &self.src,
            "netop",
            "1.20.0",
            "",
            &[
                (
                    "values.yaml",
                    &format!(
                        "operator:\n  cloud: \"\"\n  image:\n    repository: quay.io/cilium/operator\n    tag: v1.20.0\n    genericDigest: \"{GENERIC}\"\n    awsDigest: \"{AWS}\"\n    useDigest: true\n    suffix: \"\"\n"
                    ),
                ),
                (
                    "templates/operator.yaml",
                    &format!(
                        "{{{{- $v := .Values.operator.image -}}}}\n{{{{- $variant := ternary \"aws\" \"generic\" (eq .Values.operator.cloud \"aws\") -}}}}\n{{{{- $digest := ternary $v.awsDigest $v.genericDigest (eq $variant \"aws\") -}}}}\n{DEPLOYMENT}        - name: operator\n          image: \"{{{{ $v.repository }}}}-{{{{ $variant }}}}{{{{ $v.suffix }}}}:{{{{ $v.tag }}}}{{{{ if $v.useDigest }}}}@{{{{ $digest }}}}{{{{ end }}}}\"\n"
                    ),
                ),
            ],
        );
        self.package("netop");
    }

    /// A hook Job running kubectl tagged with the cluster's version, and a sidecar only when
    /// the cluster serves the Prometheus operator's API.
    fn kubectl(&self) {
        chart(
            &self.src,
            "kubectl",
            "1.0.0",
            "",
            &[
                (
                    "templates/job.yaml",
                    "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-upgrade-crds\n  annotations:\n    helm.sh/hook: pre-upgrade\nspec:\n  template:\n    spec:\n      containers:\n        - name: kubectl\n          image: \"registry.k8s.io/kubectl:{{ .Capabilities.KubeVersion.Version }}\"\n        {{- if .Capabilities.APIVersions.Has \"monitoring.coreos.com/v1\" }}\n        - name: metrics\n          image: quay.io/x/metrics-sidecar:1\n        {{- end }}\n",
                ),
                (
                    "templates/tests/test-connection.yaml",
                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    \"helm.sh/hook\": test\nspec:\n  containers:\n    - name: wget\n      image: busybox\n",
                ),
            ],
        );
        self.package("kubectl");
    }

    /// A parent that overrides its subchart's image tag, and has a component of its own.
    fn cache(&self) {
        chart(
            &self.src,
            "redis",
            "7.2.0",
            "",
            &[
                (
                    "values.yaml",
                    "image:\n  repository: docker.io/library/redis\n  tag: \"7.2\"\n",
                ),
                (
                    "templates/statefulset.yaml",
                    "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {{ .Release.Name }}-redis\nspec:\n  template:\n    spec:\n      containers:\n        - name: redis\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
                ),
            ],
        );
        chart(
            &self.src,
            "cache",
            "2.0.0",
            "dependencies:\n  - name: redis\n    version: 1.0.0\n    repository: file://../redis\n    condition: redis.enabled\n",
            &[
                (
                    "values.yaml",
                    "image:\n  repository: ghcr.io/x/cache\nredis:\n  enabled: true\n  image:\n    tag: \"7.4.1\"\n",
                ),
                (
                    "templates/deployment.yaml",
                    &format!(
                        "{DEPLOYMENT}        - name: cache\n          image: \"{{{{ .Values.image.repository }}}}:{{{{ .Chart.AppVersion }}}}\"\n"
                    ),
                ),
            ],
        );
        self.pack_into("redis", "cache");
        self.package("cache");
    }

    /// A component and a subchart, both off by default.
    fn dashboard(&self) {
        chart(
            &self.src,
            "extra",
            "1.0.0",
            "",
            &[
                ("values.yaml", "image: quay.io/x/extra:1\n"),
                (
                    "templates/deployment.yaml",
                    &format!(
                        "{DEPLOYMENT}        - name: extra\n          image: {{{{ .Values.image }}}}\n"
                    ),
                ),
            ],
        );
        chart(
            &self.src,
            "dashboard",
            "3",
            "dependencies:\n  - name: extra\n    version: 1.0.0\n    repository: file://../extra\n    condition: extra.enabled\n",
            &[
                (
                    "values.yaml",
                    "image:\n  repository: quay.io/x/dashboard\n  tag: \"\"\nextra:\n  enabled: false\nmetrics:\n  enabled: false\n  image:\n    repository: quay.io/x/metrics\n    tag: \"1\"\n",
                ),
                (
                    "templates/deployment.yaml",
                    &format!(
                        "{DEPLOYMENT}        - name: dashboard\n          image: \"{{{{ .Values.image.repository }}}}:{{{{ .Values.image.tag | default .Chart.AppVersion }}}}\"\n        {{{{- if .Values.metrics.enabled }}}}\n        - name: metrics\n          image: \"{{{{ .Values.metrics.image.repository }}}}:{{{{ .Values.metrics.image.tag }}}}\"\n        {{{{- end }}}}\n"
                    ),
                ),
            ],
        );
        self.pack_into("extra", "dashboard");
        self.package("dashboard");
    }

    /// StackGres's shape: `containerRegistry` + `{name, tag}`; the operator names its
    /// operands in env and in its SGConfig.
    fn sgop(&self) {
        chart(
            &self.src,
            "sgop",
            "1.18.6",
            "",
            &[
                (
                    "values.yaml",
                    "containerRegistry: quay.io\noperator:\n  image:\n    name: stackgres/operator\n    tag: \"1.18.6\"\nrestapi:\n  image:\n    name: stackgres/restapi\n    tag: \"1.18.6\"\nadminui:\n  image:\n    name: stackgres/admin-ui\n    tag: \"1.18.6\"\n",
                ),
                (
                    "templates/operator.yaml",
                    &format!(
                        "{DEPLOYMENT}        - name: operator\n          image: \"{{{{ .Values.containerRegistry }}}}/{{{{ .Values.operator.image.name }}}}:{{{{ .Values.operator.image.tag }}}}\"\n          env:\n            - name: RESTAPI_IMAGE\n              value: \"{{{{ .Values.containerRegistry }}}}/{{{{ .Values.restapi.image.name }}}}:{{{{ .Values.restapi.image.tag }}}}\"\n            - name: IMAGE_PULL_POLICY\n              value: IfNotPresent\n"
                    ),
                ),
                (
                    "templates/sgconfig.yaml",
                    "apiVersion: stackgres.io/v1\nkind: SGConfig\nmetadata:\n  name: stackgres-operator\nspec:\n  containerRegistry: {{ .Values.containerRegistry }}\n  adminui:\n    image:\n      {{- toYaml .Values.adminui.image | nindent 6 }}\n",
                ),
            ],
        );
        self.package("sgop");
    }

    /// node-feature-discovery's values.yaml: 40-line comment blocks.
    fn nfd(&self) {
        let mut values = String::new();
        for i in 0..40 {
            values.push_str(&format!(
                "# {i}: a long explanation of the values that follow\n"
            ));
        }
        values.push_str("image:\n");
        for i in 0..40 {
            values.push_str(&format!("  # {i}: which image, and why\n"));
        }
        values.push_str("  repository: registry.k8s.io/nfd/node-feature-discovery\n  # the tag\n  tag: v0.19.0\n");
        chart(
            &self.src,
            "nfd",
            "v0.19.0",
            "",
            &[
                ("values.yaml", &values),
                (
                    "templates/master.yaml",
                    &format!(
                        "{DEPLOYMENT}        - name: master\n          image: \"{{{{ .Values.image.repository }}}}:{{{{ .Values.image.tag }}}}\"\n"
                    ),
                ),
            ],
        );
        self.package("nfd");
    }

    /// A chart that runs nothing.
    fn noimages(&self) {
        chart(
            &self.src,
            "noimages",
            "1.0.0",
            "",
            &[(
                "templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  level: info\n",
            )],
        );
        self.package("noimages");
    }

    /// A chart made for older clusters (Chart.yaml `kubeVersion`).
    fn old(&self) {
        chart(
            &self.src,
            "old",
            "1.0.0",
            "kubeVersion: \">=1.18.0-0 <1.30.0-0\"\n",
            &[(
                "templates/pod.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: old\nspec:\n  containers:\n    - {name: old, image: quay.io/x/old:1}\n",
            )],
        );
        self.package("old");
    }

    /// Loki's shape: refuses to render without a bucket name.
    fn needs(&self) {
        chart(
            &self.src,
            "needs",
            "3.7.6",
            "",
            &[
                ("values.yaml", "storage:\n  bucketNames: {}\n"),
                (
                    "templates/statefulset.yaml",
                    "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {{ .Release.Name }}\n  annotations:\n    bucket: {{ required \"Please define storage.bucketNames.chunks\" .Values.storage.bucketNames.chunks }}\nspec:\n  template:\n    spec:\n      containers:\n        - name: loki\n          image: docker.io/grafana/loki:{{ .Chart.AppVersion }}\n",
                ),
            ],
        );
        self.package("needs");
    }
}

/// The lock's images of one chart: (image, where, found, pulledBy).
fn chart_images(lock: &Value, name: &str) -> BTreeSet<(String, String, String, String)> {
    let chart = lock["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no chart {name} in the lock"));
    chart["images"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|i| {
                    let mut at = i["from"].as_str().unwrap().to_string();
                    for key in ["object", "field"] {
                        if let Some(v) = i[key].as_str() {
                            at.push(' ');
                            at.push_str(v);
                        }
                    }
                    (
                        i["image"].as_str().unwrap().to_string(),
                        at,
                        i["found"].as_str().unwrap().to_string(),
                        i["pulledBy"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn set(items: &[(&str, &str, &str, &str)]) -> BTreeSet<(String, String, String, String)> {
    items
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect()
}

fn images_only(lock: &Value, name: &str) -> BTreeSet<String> {
    chart_images(lock, name).into_iter().map(|i| i.0).collect()
}

/// The lock `ferry lock` wrote for release.yaml.
fn read_lock(env: &Env) -> Value {
    serde_json::from_slice(&std::fs::read(env.path().join("release.lock")).unwrap()).unwrap()
}

fn strings(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn lock_renders_each_chart_and_finds_what_the_cluster_pulls() {
    let Some(sdk) = HelmSdk::or_skip("lock_renders_each_chart_and_finds_what_the_cluster_pulls")
    else {
        return;
    };
    let env = Env::new();
    let charts = Charts::new(sdk, &env);
    charts.certs();
    charts.gpu();
    charts.exporter();
    charts.netop();
    charts.kubectl();
    charts.cache();
    charts.dashboard();
    charts.sgop();
    charts.nfd();
    charts.noimages();
    let http = charts.index();
    let url = http.url();

    std::fs::create_dir_all(env.path().join("values")).unwrap();
    std::fs::write(
        env.path().join("values/gpu.yaml"),
        "# the site runs MIG\nmigManager:\n  enabled: true\ndriver:\n  version: \"599.0\"\n",
    )
    .unwrap();
    let mut text = String::from(
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: render, version: \"1\"}\nspec:\n  kubernetes:\n    version: v1.36.4\n    apiVersions: [monitoring.coreos.com/v1]\n  charts:\n",
    );
    for name in [
        "certs",
        "exporter",
        "netop",
        "kubectl",
        "cache",
        "dashboard",
        "sgop",
        "nfd",
        "noimages",
    ] {
        text.push_str(&format!(
            "    - {{name: {name}, repo: \"{url}\", version: 1.0.0}}\n"
        ));
    }
    text.push_str(&format!(
        "    - name: gpu\n      repo: \"{url}\"\n      version: 1.0.0\n      releaseName: gpu-operator\n      namespace: gpu-operator\n      valuesFiles: [values/gpu.yaml]\n      values:\n        driver:\n          version: \"600.10\"\n"
    ));
    let manifest = env.manifest("release.yaml", &text);
    let out = lock_cmd(&env, &manifest).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "lock failed:\n{stderr}");
    let lock: Value = read_lock(&env);
    assert!(
        lock["helm"].as_str().unwrap().starts_with("v4."),
        "{}",
        lock["helm"]
    );
    assert_eq!(lock["kubernetes"]["version"], "1.36.4");
    for c in lock["charts"].as_array().unwrap() {
        assert_eq!(c["imagesFoundBy"], "rendered", "{}", c["name"]);
    }
    // The index was fetched once for the ten charts.
    assert_eq!(
        http.requests().get("/index.yaml"),
        Some(&1),
        "{:?}",
        http.requests()
    );

    assert_eq!(
        chart_images(&lock, "certs"),
        set(&[
            (
                "quay.io/jetstack/cert-manager-acmesolver:v1.21.1",
                "certs/templates/controller.yaml Deployment/certs spec.template.spec.containers[controller].args[1]",
                "rendered",
                "operator"
            ),
            (
                "quay.io/jetstack/cert-manager-controller:v1.21.1",
                "certs/templates/controller.yaml Deployment/certs spec.template.spec.containers[controller].image",
                "rendered",
                "workload"
            ),
            (
                "quay.io/jetstack/cert-manager-webhook:v1.21.1",
                "certs/templates/webhook.yaml Deployment/certs-webhook spec.template.spec.containers[webhook].image",
                "rendered",
                "workload"
            ),
        ])
    );
    // valuesFiles then values: the file turns MIG on, the inline value wins for the driver.
    assert_eq!(
        chart_images(&lock, "gpu"),
        set(&[
            (
                "nvcr.io/nvidia/cloud-native/k8s-mig-manager:v0.15.0",
                "gpu/templates/clusterpolicy.yaml ClusterPolicy/cluster-policy spec.migManager",
                "rendered",
                "operator"
            ),
            (
                "nvcr.io/nvidia/driver:600.10",
                "gpu/templates/clusterpolicy.yaml ClusterPolicy/cluster-policy spec.driver",
                "rendered",
                "operator"
            ),
            (
                "nvcr.io/nvidia/gpu-operator:v26.7.0",
                "gpu/templates/operator.yaml Deployment/gpu-operator spec.template.spec.containers[gpu-operator].image",
                "rendered",
                "workload"
            ),
            (
                "nvcr.io/nvidia/k8s/container-toolkit:v1.20.0",
                "gpu/templates/clusterpolicy.yaml ClusterPolicy/cluster-policy spec.toolkit",
                "rendered",
                "operator"
            ),
        ])
    );
    let gpu = lock["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gpu")
        .unwrap();
    assert_eq!(gpu["releaseName"], "gpu-operator");
    assert_eq!(gpu["namespace"], "gpu-operator");
    assert_eq!(gpu["values"][0]["source"], "values/gpu.yaml");
    assert_eq!(gpu["values"][1]["values"]["driver"]["version"], "600.10");

    assert_eq!(
        images_only(&lock, "exporter"),
        strings(&["quay.io/prometheus/node-exporter:v1.12.1-distroless"])
    );
    assert_eq!(
        images_only(&lock, "netop"),
        strings(&[&format!(
            "quay.io/cilium/operator-generic:v1.20.0@{GENERIC}"
        )])
    );
    // The cluster's version from spec.kubernetes, the sidecar from its API versions; the
    // test hook's busybox is not pulled on install.
    assert_eq!(
        images_only(&lock, "kubectl"),
        strings(&[
            "quay.io/x/metrics-sidecar:1",
            "registry.k8s.io/kubectl:v1.36.4"
        ])
    );
    assert_eq!(
        images_only(&lock, "cache"),
        strings(&["docker.io/library/redis:7.4.1", "ghcr.io/x/cache:2.0.0"])
    );
    assert_eq!(
        images_only(&lock, "dashboard"),
        strings(&["quay.io/x/dashboard:3"])
    );
    assert_eq!(
        chart_images(&lock, "sgop"),
        set(&[
            (
                "quay.io/stackgres/admin-ui:1.18.6",
                "sgop/templates/sgconfig.yaml SGConfig/stackgres-operator spec.adminui.image",
                "rendered",
                "operator"
            ),
            (
                "quay.io/stackgres/operator:1.18.6",
                "sgop/templates/operator.yaml Deployment/sgop spec.template.spec.containers[operator].image",
                "rendered",
                "workload"
            ),
            (
                "quay.io/stackgres/restapi:1.18.6",
                "sgop/templates/operator.yaml Deployment/sgop spec.template.spec.containers[operator].env[RESTAPI_IMAGE]",
                "rendered",
                "operator"
            ),
        ])
    );
    assert_eq!(
        images_only(&lock, "nfd"),
        strings(&["registry.k8s.io/nfd/node-feature-discovery:v0.19.0"])
    );
    assert!(images_only(&lock, "noimages").is_empty());
    assert!(
        stderr.contains("noimages 1.0.0: Helm rendered 1 object(s) naming no image"),
        "{stderr}"
    );

    // check: per chart, in text and JSON; every image is missing (the release carries none).
    let report = env
        .ferry()
        .args(["--output", "json", "check"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(report.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(report["not_rendered"], serde_json::json!([]));
    let gpu = report["by_chart"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chart"].as_str().unwrap().contains("/gpu 1.0.0"))
        .unwrap();
    assert_eq!(gpu["rendered"], true);
    assert_eq!(gpu["images"], 4);
    assert_eq!(gpu["workload_images"], 1);
    assert_eq!(gpu["operator_images"], 3);
    assert_eq!(gpu["missing"].as_array().unwrap().len(), 4);
    assert_eq!(gpu["missing"][0]["found"], "rendered");
    let noimages = report["by_chart"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["chart"].as_str().unwrap().contains("/noimages"))
        .unwrap();
    assert_eq!(
        noimages["note"],
        "Helm rendered no object that names an image"
    );
    let text = env.ferry().arg("check").arg(&manifest).output().unwrap();
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(
        stdout.contains(&format!("chart {url}/certs 1.0.0 (rendered with Helm v4"))
            && stdout.contains(
                "3 image(s) (2 pulled by workloads, 1 deployed by operators), 3 not carried"
            ),
        "{stdout}"
    );
    assert!(
        stdout.contains("quay.io/jetstack/cert-manager-acmesolver:v1.21.1  (certs/templates/controller.yaml: Deployment/certs spec.template.spec.containers[controller].args[1]; rendered, deployed by an operator)"),
        "{stdout}"
    );

    // Changing a values file makes the lock out of date.
    std::fs::write(
        env.path().join("values/gpu.yaml"),
        "migManager:\n  enabled: false\n",
    )
    .unwrap();
    let stale = fails(env.ferry().arg("check").arg(&manifest));
    assert!(
        stale
            .contains("gpu: its values (values/gpu.yaml, values) differ from the ones in the lock"),
        "{stale}"
    );
}

#[test]
fn a_chart_helm_refuses_names_the_chart_and_the_values_to_set() {
    let Some(sdk) = HelmSdk::or_skip("a_chart_helm_refuses_names_the_chart_and_the_values_to_set")
    else {
        return;
    };
    let env = Env::new();
    let charts = Charts::new(sdk, &env);
    charts.needs();
    charts.old();
    let http = charts.index();
    let manifest = env.manifest(
        "release.yaml",
        &release(&format!(
            "  charts:\n    - {{name: needs, repo: \"{}\", version: 1.0.0}}\n",
            http.url()
        )),
    );
    let stderr = fails(&mut lock_cmd(&env, &manifest));
    assert!(
        stderr.contains("Helm cannot render chart")
            && stderr.contains("needs 1.0.0")
            && stderr.contains("Please define storage.bucketNames.chunks")
            && stderr.contains("`values:`"),
        "{stderr}"
    );
    assert!(!env.path().join("release.lock").exists());

    // With the value set in the manifest, it renders.
    let manifest = env.manifest(
        "release.yaml",
        &release(&format!(
            "  charts:\n    - name: needs\n      repo: \"{}\"\n      version: 1.0.0\n      values: {{storage: {{bucketNames: {{chunks: loki-chunks}}}}}}\n",
            http.url()
        )),
    );
    ok(&mut lock_cmd(&env, &manifest));
    let lock: Value = read_lock(&env);
    assert_eq!(
        images_only(&lock, "needs"),
        strings(&["docker.io/grafana/loki:3.7.6"])
    );

    // A --helm that does not run is an error, never a silent guess.
    let stderr = fails(
        env.ferry()
            .arg("lock")
            .arg(&manifest)
            .arg("--helm")
            .arg(env.path().join("no-such-helm")),
    );
    assert!(stderr.contains("cannot run helm at"), "{stderr}");

    // A chart whose kubeVersion excludes the cluster: refused as `helm install` would.
    let manifest = env.manifest(
        "old.yaml",
        &release(&format!(
            "  kubernetes: {{version: \"1.36\"}}\n  charts:\n    - {{name: old, repo: \"{}\", version: 1.0.0}}\n",
            http.url()
        )),
    );
    let stderr = fails(&mut lock_cmd(&env, &manifest));
    assert!(
        stderr.contains("old 1.0.0: its Chart.yaml requires Kubernetes \">=1.18.0-0 <1.30.0-0\", but spec.kubernetes.version is 1.36.0"),
        "{stderr}"
    );
}

#[test]
fn without_helm_lock_and_check_say_they_guessed_and_still_read_the_values() {
    let Some(sdk) =
        HelmSdk::or_skip("without_helm_lock_and_check_say_they_guessed_and_still_read_the_values")
    else {
        return;
    };
    let env = Env::new();
    let charts = Charts::new(sdk, &env);
    charts.certs();
    charts.gpu();
    charts.sgop();
    charts.nfd();
    charts.cache();
    charts.dashboard();
    charts.noimages();
    let http = charts.index();
    let mut text = String::from(
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: guess, version: \"1\"}\nspec:\n  charts:\n",
    );
    for name in [
        "certs",
        "gpu",
        "sgop",
        "nfd",
        "cache",
        "dashboard",
        "noimages",
    ] {
        text.push_str(&format!(
            "    - {{name: {name}, repo: \"{}\", version: 1.0.0}}\n",
            http.url()
        ));
    }
    let manifest = env.manifest("release.yaml", &text);
    // No helm anywhere: PATH without one, FERRY_HELM unset.
    let bin = env.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = env
        .ferry()
        .arg("lock")
        .arg(&manifest)
        .env_remove("FERRY_HELM")
        .env("PATH", &path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("were NOT rendered")
            && stderr.contains("/certs")
            && stderr.contains("/noimages"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "noimages 1.0.0: no image found in its values or annotations, and it was not rendered"
        ),
        "{stderr}"
    );
    let lock: Value = read_lock(&env);
    assert!(lock.get("helm").is_none(), "{}", lock["helm"]);
    assert_eq!(
        images_only(&lock, "certs"),
        strings(&[
            "quay.io/jetstack/cert-manager-acmesolver:v1.21.1",
            "quay.io/jetstack/cert-manager-controller:v1.21.1",
            "quay.io/jetstack/cert-manager-webhook:v1.21.1",
        ])
    );
    assert_eq!(
        images_only(&lock, "gpu"),
        strings(&[
            "nvcr.io/nvidia/driver:595.91.07",
            "nvcr.io/nvidia/gpu-operator:v26.7.0",
            "nvcr.io/nvidia/k8s/container-toolkit:v1.20.0",
        ])
    );
    assert_eq!(
        images_only(&lock, "sgop"),
        strings(&[
            "quay.io/stackgres/admin-ui:1.18.6",
            "quay.io/stackgres/operator:1.18.6",
            "quay.io/stackgres/restapi:1.18.6",
        ])
    );
    assert_eq!(
        images_only(&lock, "nfd"),
        strings(&["registry.k8s.io/nfd/node-feature-discovery:v0.19.0"])
    );
    // The parent's override and the subchart's condition, applied as Helm would.
    assert_eq!(
        images_only(&lock, "cache"),
        strings(&["docker.io/library/redis:7.4.1", "ghcr.io/x/cache:2.0.0"])
    );
    assert_eq!(
        images_only(&lock, "dashboard"),
        strings(&["quay.io/x/dashboard:3"])
    );
    for (image, _, found, pulled) in chart_images(&lock, "certs") {
        assert_eq!((found.as_str(), pulled.as_str()), ("values", ""), "{image}");
    }

    let out = env.ferry().arg("check").arg(&manifest).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("7 chart(s) were not rendered when")
            && stderr.contains("Their images are a guess"),
        "{stderr}"
    );
    assert!(
        stdout
            .contains("/gpu 1.0.0 (NOT rendered, guessed from values): 3 image(s), 3 not carried")
            && stdout
                .contains("nvcr.io/nvidia/driver:595.91.07  (values.yaml: driver; from values)")
            && stdout.contains("note: not rendered when locked (no Helm)"),
        "{stdout}"
    );
}
