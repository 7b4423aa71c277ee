//! End-to-end: Helm charts from an HTTP chart repository (served on loopback) and from a real
//! OCI registry, made and checked with Helm v4 itself (helm-python-sdk: Helm's Go SDK as a
//! library): lock, build, verify, `import charts`, `import registry`, `ferry serve`, `check`,
//! and the bad paths (a digest that differs from index.yaml, no matching version, 404, a
//! tampered bundle, a conflicting chart repository).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::ferry::{Env, assert_blobs_match_names, blob_files, fails, json, ok};
use common::helm::HelmSdk;
use common::static_server::StaticServer;
use common::*;
use serde_json::Value;

/// Charts made with Helm, an HTTP repository serving some of them, an OCI registry holding
/// others, and a manifest that takes one version of each.
struct Fixture {
    sdk: HelmSdk,
    env: Env,
    registry: Registry,
    http: StaticServer,
    repo_dir: PathBuf,
    image: String,
    manifest: PathBuf,
    key: PathBuf,
    public: PathBuf,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    write(path, &text.replacen(from, to, 1));
}

impl Fixture {
    fn new(sdk: HelmSdk) -> Fixture {
        let env = Env::new();
        let (key, public) = env.keys();
        let registry = Registry::start_plain();
        let addr = registry.addr();
        push(&standard_layout().dir, "web", &registry, "app/web:1");
        let image = format!("{addr}/app/web:1");

        let src = env.path().join("src");
        let repo_dir = env.path().join("repo");
        let dist = env.path().join("dist");
        let s = |p: &Path| p.to_str().unwrap().to_string();

        // web: its image is in the release; three versions, one a prerelease.
        sdk.call(&["create", "web", &s(&src)]);
        let values = src.join("web/values.yaml");
        edit(
            &values,
            "repository: nginx",
            &format!("repository: {addr}/app/web"),
        );
        edit(&values, "tag: \"\"", "tag: \"1\"");
        for v in ["1.2.0", "1.3.0", "2.0.0-rc.1"] {
            sdk.call(&["package", &s(&src.join("web")), &s(&repo_dir), v]);
        }
        // app: packs its dependency `common` in charts/.
        sdk.call(&["create", "common", &s(&src)]);
        sdk.call(&["create", "app", &s(&src)]);
        sdk.call(&[
            "package",
            &s(&src.join("common")),
            &s(&src.join("app/charts")),
        ]);
        let chart_yaml = src.join("app/Chart.yaml");
        let text = std::fs::read_to_string(&chart_yaml).unwrap();
        write(
            &chart_yaml,
            &format!(
                "{text}\ndependencies:\n- name: common\n  version: 0.1.0\n  repository: file://../common\n"
            ),
        );
        sdk.call(&["package", &s(&src.join("app")), &s(&repo_dir), "0.5.0"]);
        sdk.call(&["index", &s(&repo_dir)]);
        let http = StaticServer::start(&repo_dir);

        // cache: in the OCI registry, with a build-metadata version (tag 3.2.0_build.1).
        sdk.call(&["create", "cache", &s(&src)]);
        for v in ["3.1.0", "3.2.0+build.1"] {
            let tgz = sdk.call(&["package", &s(&src.join("cache")), &s(&dist), v]);
            sdk.call(&[
                "push",
                tgz["path"].as_str().unwrap(),
                &format!("oci://{addr}/charts"),
            ]);
        }

        let manifest = env.manifest(
            "release.yaml",
            &format!(
                "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: charts, version: \"1\"}}\nspec:\n  images:\n    - {image}\n  charts:\n    - {{name: web, repo: \"{url}\", version: \">=1.2.0 <2\"}}\n    - {{name: app, repo: \"{url}/\", version: 0.5.0}}\n    - {{ref: \"oci://{addr}/charts/cache\", version: \"^3\"}}\n",
                url = http.url()
            ),
        );
        Fixture {
            sdk,
            env,
            registry,
            http,
            repo_dir,
            image,
            manifest,
            key,
            public,
        }
    }

    fn build(&self, out: &str) -> PathBuf {
        let bundle = self.env.path().join(out);
        ok(self
            .env
            .ferry()
            .arg("build")
            .arg(&self.manifest)
            .arg("-o")
            .arg(&bundle)
            .arg("--key")
            .arg(&self.key));
        bundle
    }

    fn import_charts(&self, bundle: &Path, to: &Path) -> std::process::Command {
        let mut cmd = self.env.ferry();
        cmd.args(["--output", "json", "import", "charts"])
            .arg(bundle)
            .arg("--to")
            .arg(to)
            .arg("--key")
            .arg(&self.public);
        cmd
    }
}

/// The test `helm`: Helm's engine behind the command line ferry runs.
fn helm_tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/helm")
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// `helm pull` of a chart into `dir`, returning the archive's digest.
fn pulled_digest(dir: &Path, file: &str) -> String {
    digest_file(dir.join(file))
}

/// A `ferry serve` child; killed on drop.
struct Served(Child, String);

impl Served {
    fn start(env: &Env, bundle: &Path, public: &Path) -> Served {
        let mut child = env
            .ferry()
            .args(["--output", "json", "serve"])
            .arg(bundle)
            .args(["--listen", "127.0.0.1:0", "--key"])
            .arg(public)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ferry serve");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // The JSON document may span lines: read until it parses.
        let mut text = String::new();
        let v: Value = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("ferry serve printed no address");
            text.push_str(&line);
            if let Ok(v) = serde_json::from_str(&text) {
                break v;
            }
        };
        Served(child, v["url"].as_str().unwrap().to_string())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request (`METHOD PATH`) on a fresh connection; the response head and body as text.
fn raw_http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{request} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn charts_lock_build_import_serve_with_helm() {
    let Some(sdk) = HelmSdk::or_skip("charts_lock_build_import_serve_with_helm") else {
        return;
    };
    let f = Fixture::new(sdk);
    let addr = f.registry.addr();

    // --- lock: Helm's version choice, digests, packed dependencies, image warnings.
    let out = f
        .env
        .ferry()
        .args(["--output", "json", "lock"])
        .arg(&f.manifest)
        .env("FERRY_HELM", helm_tool())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let locked: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let charts = locked["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 3, "{locked}");
    let (web, app, cache) = (&charts[0], &charts[1], &charts[2]);
    assert_eq!(
        web["version"], "1.3.0",
        "the prerelease 2.0.0-rc.1 is not in >=1.2.0 <2"
    );
    assert_eq!(web["digest"], digest_file(f.repo_dir.join("web-1.3.0.tgz")));
    assert_eq!(web["url"], format!("{}/web-1.3.0.tgz", f.http.url()));
    assert_eq!(app["version"], "0.5.0");
    assert_eq!(app["repo"], f.http.url(), "the trailing / is normalized");
    assert_eq!(
        app["dependencies"],
        serde_json::json!([{"name": "common", "version": "0.1.0"}])
    );
    assert_eq!(cache["version"], "3.2.0+build.1");
    assert_eq!(cache["tag"], "3.2.0_build.1");
    let upstream = f.sdk.call(&[
        "resolve",
        &format!("oci://{addr}/charts/cache:3.2.0_build.1"),
    ]);
    assert_eq!(cache["manifest"], upstream["digest"], "{upstream}");
    // The lock's images: web's is carried, the scaffold's nginx (app, common, cache) is not.
    assert!(
        stderr.contains("would pull docker.io/library/nginx:1.16.0"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("would pull {}", f.image)),
        "{stderr}"
    );
    let text = ok(f
        .env
        .ferry()
        .arg("lock")
        .arg(&f.manifest)
        .env("FERRY_HELM", helm_tool()));
    assert!(text.contains("packs common 0.1.0"), "{text}");
    assert!(text.contains("locked 1 images and 3 charts"), "{text}");

    // --- check: fails, naming each missing image and where the chart names it.
    let out = f
        .env
        .ferry()
        .arg("check")
        .arg(&f.manifest)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("app 0.5.0 would pull images"), "{listed}");
    // Rendered by Helm: the packed chart's Deployment, as the release installs it.
    assert!(
        listed.contains("docker.io/library/nginx:1.16.0  (app/charts/common/templates/deployment.yaml: Deployment/app-common spec.template.spec.containers[common].image; rendered, pulled by a workload, and 1 more place(s))"),
        "{listed}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("add them to spec.images"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A release that carries what its chart names passes the check.
    let carried = f.env.manifest(
        "carried.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: ok, version: \"1\"}}\nspec:\n  images: [\"{}\"]\n  charts:\n    - {{name: web, repo: \"{}\", version: 1.2.0}}\n",
            f.image,
            f.http.url()
        ),
    );
    ok(f.env.ferry().arg("lock").arg(&carried));
    let passed = ok(f.env.ferry().arg("check").arg(&carried));
    assert!(passed.contains("(1 found) is in the release"), "{passed}");

    // --- the artifact of an HTTP chart is what `helm push` makes of the same archive.
    let web_tgz = f.repo_dir.join("web-1.3.0.tgz");
    f.sdk.call(&["touch-as-packaged", &s(&web_tgz)]);
    f.sdk
        .call(&["push", &s(&web_tgz), &format!("oci://{addr}/exact")]);
    let pushed = f
        .sdk
        .call(&["resolve", &format!("oci://{addr}/exact/web:1.3.0")]);
    assert_eq!(
        web["manifest"], pushed["digest"],
        "ferry's manifest differs from helm push's"
    );

    // --- build twice: same lock, same index.json; verify.
    let bundle = f.build("bundle");
    let again = f.build("bundle-again");
    assert_eq!(
        std::fs::read(bundle.join("index.json")).unwrap(),
        std::fs::read(again.join("index.json")).unwrap()
    );
    ok(f.env
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--key")
        .arg(&f.public));
    assert_blobs_match_names(&bundle);
    let index: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("index.json")).unwrap()).unwrap();
    let refs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["annotations"]["dev.ferry.kind"] == "chart")
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        refs,
        [
            format!("{}/web:1.3.0", f.http.url()),
            format!("{}/app:0.5.0", f.http.url()),
            format!("oci://{addr}/charts/cache:3.2.0+build.1"),
        ]
    );
    // The release SBOM lists each chart with its version and archive digest.
    let sbom = common::sbom::checked(&f.env, &bundle, &f.public);
    let charts = common::sbom::components(&sbom, "chart");
    let versions: Vec<&str> = charts
        .iter()
        .map(|c| c["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["1.3.0", "0.5.0", "3.2.0+build.1"]);
    assert!(
        charts
            .iter()
            .all(|c| c["hashes"][0]["content"].as_str().unwrap().len() == 64)
    );

    // --- import charts: merged with what the directory holds; Helm pulls every chart back.
    let site = f.env.path().join("site");
    f.sdk
        .call(&["create", "other", &s(&f.env.path().join("src"))]);
    f.sdk
        .call(&["package", &s(&f.env.path().join("src/other")), &s(&site)]);
    f.sdk.call(&["index", &s(&site)]);
    let first = json(&mut f.import_charts(&bundle, &site));
    assert_eq!(first["written"].as_array().unwrap().len(), 3, "{first}");
    assert_eq!(first["index_entries"], 4, "{first}");
    let site_http = StaticServer::start(&site);
    let pulled = f.env.path().join("pulled-http");
    for (name, version, digest) in [
        ("web", "1.3.0", &web["digest"]),
        ("app", "0.5.0", &app["digest"]),
        ("cache", "3.2.0+build.1", &cache["digest"]),
        ("other", "0.1.0", &Value::Null),
    ] {
        f.sdk
            .call(&["pull-http", name, &site_http.url(), version, &s(&pulled)]);
        if !digest.is_null() {
            assert_eq!(
                pulled_digest(&pulled, &format!("{name}-{version}.tgz")),
                *digest,
                "{name}"
            );
        }
    }
    let second = json(&mut f.import_charts(&bundle, &site));
    assert_eq!(second["written"].as_array().unwrap().len(), 0, "{second}");
    assert_eq!(second["present"].as_array().unwrap().len(), 3, "{second}");
    // Under a base URL, the index names absolute URLs.
    let based = f.env.path().join("based");
    ok(f.import_charts(&bundle, &based)
        .args(["--base-url", "https://charts.site.example/platform/"]));
    let index_yaml = std::fs::read_to_string(based.join("index.yaml")).unwrap();
    assert!(
        index_yaml.contains("- https://charts.site.example/platform/web-1.3.0.tgz"),
        "{index_yaml}"
    );

    // --- import registry: charts land where helm push would put them; Helm pulls them.
    let target = Registry::start_plain();
    let to = format!("{}/site", target.addr());
    let imported = json(
        f.env
            .ferry()
            .args(["--output", "json", "import", "registry"])
            .arg(&bundle)
            .args(["--to", &to, "--key"])
            .arg(&f.public),
    );
    assert_eq!(imported["charts"], 3, "{imported}");
    assert_eq!(imported["images"], 1, "{imported}");
    let http_path = f.http.addr().replace(':', "_");
    let src_path = addr.replace(':', "_");
    let pulled = f.env.path().join("pulled-oci");
    for (reference, version, file, digest) in [
        (
            format!("oci://{to}/{http_path}/web"),
            "1.3.0",
            "web-1.3.0.tgz",
            &web["digest"],
        ),
        (
            format!("oci://{to}/{http_path}/app"),
            "0.5.0",
            "app-0.5.0.tgz",
            &app["digest"],
        ),
        (
            format!("oci://{to}/{src_path}/charts/cache"),
            "3.2.0+build.1",
            "cache-3.2.0+build.1.tgz",
            &cache["digest"],
        ),
    ] {
        f.sdk.call(&["pull-oci", &reference, version, &s(&pulled)]);
        assert_eq!(pulled_digest(&pulled, file), *digest, "{reference}");
    }
    // The OCI chart is byte-identical, the HTTP one is helm push's artifact.
    let on_target = f.sdk.call(&[
        "resolve",
        &format!("oci://{to}/{src_path}/charts/cache:3.2.0_build.1"),
    ]);
    assert_eq!(on_target["digest"], cache["manifest"]);
    let on_target = f
        .sdk
        .call(&["resolve", &format!("oci://{to}/{http_path}/web:1.3.0")]);
    assert_eq!(on_target["digest"], web["manifest"]);
    let tags = f
        .sdk
        .call(&["tags", &format!("oci://{to}/{src_path}/charts/cache")]);
    assert_eq!(tags, serde_json::json!(["3.2.0+build.1"]));

    // --- ferry serve: /charts/ is a Helm repository.
    let served = Served::start(&f.env, &bundle, &f.public);
    let pulled = f.env.path().join("pulled-serve");
    let repo = format!("{}/charts", served.1);
    for (name, version, digest) in [
        ("web", "1.3.0", &web["digest"]),
        ("app", "0.5.0", &app["digest"]),
        ("cache", "3.2.0+build.1", &cache["digest"]),
    ] {
        f.sdk
            .call(&["pull-http", name, &repo, version, &s(&pulled)]);
        assert_eq!(
            pulled_digest(&pulled, &format!("{name}-{version}.tgz")),
            *digest,
            "{name}"
        );
    }
    let listed = f.sdk.call(&["repo-index", &repo]);
    assert_eq!(
        listed["entries"]["app"][0]["dependencies"][0]["name"], "common",
        "{listed}"
    );
    let addr = served.1.trim_start_matches("http://");
    assert!(raw_http(addr, "GET /charts/nothing-1.0.0.tgz").starts_with("HTTP/1.1 404"));
    assert!(raw_http(addr, "POST /charts/index.yaml").starts_with("HTTP/1.1 405"));
    assert!(raw_http(addr, "HEAD /charts/web-1.3.0.tgz").starts_with("HTTP/1.1 200"));
    drop(served);
}

#[test]
fn chart_bad_paths() {
    let Some(sdk) = HelmSdk::or_skip("chart_bad_paths") else {
        return;
    };
    let f = Fixture::new(sdk);
    let addr = f.registry.addr();
    let url = f.http.url();
    let manifest = |name: &str, charts: &str| {
        f.env.manifest(
            name,
            &format!(
                "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: bad, version: \"1\"}}\nspec:\n  charts:\n{charts}"
            ),
        )
    };

    // No version satisfies the range: the error lists what there is.
    let m = manifest(
        "none.yaml",
        &format!("    - {{name: web, repo: \"{url}\", version: \">=9\"}}\n"),
    );
    let e = fails(f.env.ferry().arg("lock").arg(&m));
    assert!(e.contains("none.yaml:6:7"), "{e}");
    assert!(
        e.contains("no version of") && e.contains("available: 2.0.0-rc.1, 1.3.0, 1.2.0"),
        "{e}"
    );
    let m = manifest(
        "none-oci.yaml",
        &format!("    - {{ref: \"oci://{addr}/charts/cache\", version: \"~3.5\"}}\n"),
    );
    let e = fails(f.env.ferry().arg("lock").arg(&m));
    assert!(e.contains("available: 3.2.0+build.1, 3.1.0"), "{e}");
    // An exact version that is not there, from a registry: same message.
    let m = manifest(
        "none-exact.yaml",
        &format!("    - {{ref: \"oci://{addr}/charts/cache\", version: 3.0.0}}\n"),
    );
    let e = fails(f.env.ferry().arg("lock").arg(&m));
    assert!(e.contains("available: 3.2.0+build.1, 3.1.0"), "{e}");
    // No such chart.
    let m = manifest(
        "nochart.yaml",
        &format!("    - {{name: webb, repo: \"{url}\", version: 1.2.0}}\n"),
    );
    let e = fails(f.env.ferry().arg("lock").arg(&m));
    assert!(e.contains("has no chart named \"webb\"; it has"), "{e}");

    // A repository without index.yaml: 404, named.
    let m = manifest(
        "noindex.yaml",
        &format!("    - {{name: web, repo: \"{url}/nothing\", version: 1.2.0}}\n"),
    );
    let e = fails(f.env.ferry().arg("lock").arg(&m));
    assert!(
        e.contains(&format!("{url}/nothing/index.yaml")) && e.contains("HTTP 404"),
        "{e}"
    );

    // The index names an archive that is not there: 404.
    let broken = f.env.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::copy(f.repo_dir.join("index.yaml"), broken.join("index.yaml")).unwrap();
    std::fs::copy(
        f.repo_dir.join("web-1.2.0.tgz"),
        broken.join("web-1.2.0.tgz"),
    )
    .unwrap();
    let broken_http = StaticServer::start(&broken);
    let m = manifest(
        "missing.yaml",
        &format!(
            "    - {{name: web, repo: \"{}\", version: 1.3.0}}\n",
            broken_http.url()
        ),
    );
    let e = fails(f.env.ferry().arg("lock").arg(&m));
    assert!(e.contains("web-1.3.0.tgz") && e.contains("HTTP 404"), "{e}");

    // An archive whose digest differs from index.yaml's: refused, named.
    std::fs::copy(
        f.repo_dir.join("web-1.3.0.tgz"),
        broken.join("web-1.2.0.tgz"),
    )
    .unwrap();
    let m = manifest(
        "digest.yaml",
        &format!(
            "    - {{name: web, repo: \"{}\", version: 1.2.0}}\n",
            broken_http.url()
        ),
    );
    let e = fails(f.env.ferry().arg("lock").arg(&m));
    assert!(
        e.contains("web-1.2.0.tgz: the download hashes to")
            && e.contains(&digest_file(f.repo_dir.join("web-1.3.0.tgz")))
            && e.contains("nothing was stored"),
        "{e}"
    );

    // Build from a good lock after the archive changed upstream: refused, nothing stored.
    std::fs::copy(
        f.repo_dir.join("web-1.2.0.tgz"),
        broken.join("web-1.2.0.tgz"),
    )
    .unwrap();
    ok(f.env.ferry().arg("lock").arg(&m));
    std::fs::copy(
        f.repo_dir.join("web-1.3.0.tgz"),
        broken.join("web-1.2.0.tgz"),
    )
    .unwrap();
    let bundle = f.env.path().join("changed");
    let e = fails(
        f.env
            .ferry()
            .arg("build")
            .arg(&m)
            .arg("-o")
            .arg(&bundle)
            .arg("--locked"),
    );
    assert!(
        e.contains("hashes to") && e.contains("nothing was stored"),
        "{e}"
    );
    let changed = digest_file(f.repo_dir.join("web-1.3.0.tgz"));
    assert!(
        !blob_files(&bundle).contains(&changed.trim_start_matches("sha256:").to_string()),
        "the changed archive must not be stored"
    );

    // A tampered bundle: import charts refuses it and writes nothing.
    let good = manifest(
        "good.yaml",
        &format!("    - {{name: web, repo: \"{url}\", version: 1.2.0}}\n"),
    );
    let bundle = f.env.path().join("tampered");
    ok(f.env
        .ferry()
        .arg("build")
        .arg(&good)
        .arg("-o")
        .arg(&bundle)
        .arg("--key")
        .arg(&f.key));
    let archive = bundle
        .join("blobs/sha256")
        .join(digest_file(f.repo_dir.join("web-1.2.0.tgz")).trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&archive).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    let site = f.env.path().join("site-tampered");
    let e = fails(&mut f.import_charts(&bundle, &site));
    assert!(
        e.contains("is damaged") && e.contains("nothing was imported"),
        "{e}"
    );
    assert!(
        !site.exists(),
        "nothing may be written from a tampered bundle"
    );

    // A repository directory that holds another archive under the same name and version.
    let bundle = f.env.path().join("clean");
    ok(f.env
        .ferry()
        .arg("build")
        .arg(&good)
        .arg("-o")
        .arg(&bundle)
        .arg("--key")
        .arg(&f.key));
    let site = f.env.path().join("site-conflict");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::copy(f.repo_dir.join("web-1.3.0.tgz"), site.join("web-1.2.0.tgz")).unwrap();
    let e = fails(&mut f.import_charts(&bundle, &site));
    assert!(
        e.contains("already holds web 1.2.0") && e.contains("must not change"),
        "{e}"
    );
    assert!(!site.join("index.yaml").exists());
}
