//! End-to-end: `ferry install --site` and `ferry import --site` with one bundle holding images,
//! a chart, K3s-like files and apt packages, into a real docker-registry and mirror directories;
//! a re-run skips everything; `--dry-run` changes nothing; site files with mistakes fail before
//! any work; a failing target is named and the next is not started.

mod common;

use std::path::{Path, PathBuf};

use common::ferry::{Env, fails, json, ok};
use common::static_server::StaticServer;
use common::upstream;
use common::util::base64;
use common::{Registry, push, standard_layout};

struct Fixture {
    env: Env,
    _source: Registry,
    _http: StaticServer,
    bundle: PathBuf,
    public: PathBuf,
    /// The site registry (docker-registry standing in for Harbor).
    site: Registry,
    k3s: Vec<u8>,
}

fn fixture() -> Fixture {
    let env = Env::new();
    let (_, public) = env.keys();
    ok(env
        .ferry()
        .args(["key", "generate", "--apt", "--output-dir"])
        .arg(env.path().join("keys")));
    let source = Registry::start_plain();
    let layout = standard_layout();
    push(&layout.dir, "web", &source, "app/web:1");
    push(&layout.dir, "worker", &source, "app/worker:1");

    let mut k3s = b"\x7fELF\x02\x01\x01".to_vec();
    k3s.extend((0..200_000u32).map(|i| (i * 7 % 251) as u8));
    let (http, upstream) = upstream::serve_release(&env, &k3s);
    let addr = source.addr();
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: platform, version: \"1\"}}\nspec:\n  images:\n    - {addr}/app/web:1\n    - {addr}/app/worker:1\n{upstream}"
        ),
    );
    let bundle = env.build_signed(&manifest, "bundle");
    Fixture {
        env,
        _source: source,
        _http: http,
        bundle,
        public,
        site: Registry::start_plain(),
        k3s,
    }
}

impl Fixture {
    /// Writes site.yaml with this spec body (indented under `spec:`).
    fn site(&self, spec: &str) -> PathBuf {
        let path = self.env.path().join("site/site.yaml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            format!(
                "apiVersion: ferry.dev/v1\nkind: Site\nmetadata:\n  name: plant-a\nspec:\n{spec}"
            ),
        )
        .unwrap();
        path
    }

    fn full_spec(&self) -> String {
        format!(
            "  registry:\n    host: {}/platform\n    systemDefaultRegistry: true\n  apt:\n    dir: mirror/apt\n    signingKey: ../keys/ferry-apt-secret.asc\n    suite: ferry\n    url: http://mirror.plant-a.lan/apt\n  charts:\n    dir: mirror/charts\n    baseUrl: http://mirror.plant-a.lan/charts\n  files:\n    dir: mirror/files\n    k3sAirgapDir: airgap\n  install:\n    command: [\"sh\", \"-c\", \"env | grep ^FERRY_ | sort > env.txt; echo installed\"]\n    workdir: ansible\n",
            self.site.addr()
        )
    }

    fn run(&self, command: &str, site: &Path, extra: &[&str]) -> std::process::Command {
        let mut c = self.env.ferry();
        c.args(["--output", "json", command])
            .arg(&self.bundle)
            .arg("--site")
            .arg(site)
            .arg("--key")
            .arg(&self.public)
            .args(extra);
        c
    }

    fn catalog(&self) -> String {
        self.site.get("/v2/_catalog").text()
    }
}

/// Every file under `dir` (relative), for before/after comparisons.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if p.is_dir() {
                    walk(base, &p, out);
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn empty_catalog(f: &Fixture) {
    let catalog = f.catalog();
    assert!(
        catalog.contains("\"repositories\":[]"),
        "the site registry was touched: {catalog}"
    );
}

#[test]
fn install_fills_every_target_renders_and_runs_the_command() {
    let f = fixture();
    let spec = f.full_spec();
    let site = f.site(&spec);
    let site_dir = site.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(site_dir.join("ansible")).unwrap();

    // --dry-run: every step, nothing done.
    let before = tree(f.env.path());
    let plan = json(&mut f.run("install", &site, &["--dry-run"]));
    assert_eq!(plan["dry_run"], true);
    let targets: Vec<&str> = plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["registry", "charts", "files", "apt"]);
    assert_eq!(plan["command"][0], "sh");
    assert!(plan["env"]["FERRY_ANSIBLE_VARS"].is_string(), "{plan}");
    assert_eq!(tree(f.env.path()), before, "--dry-run changed files");
    empty_catalog(&f);
    let text = ok(f
        .env
        .ferry()
        .arg("install")
        .arg(&f.bundle)
        .arg("--site")
        .arg(&site)
        .arg("--key")
        .arg(&f.public)
        .arg("--dry-run"));
    assert!(text.contains("run sh -c"), "{text}");
    assert!(text.contains("render "), "{text}");

    // The real run.
    let out = json(&mut f.run("install", &site, &[]));
    assert_eq!(out["exit_code"], 0, "{out}");
    let summary = &out["import"]["targets"];
    for (i, name) in ["registry", "charts", "files", "apt"].iter().enumerate() {
        assert_eq!(summary[i]["target"], *name, "{out}");
        assert!(summary[i]["items"].as_u64().unwrap() > 0, "{out}");
        assert!(summary[i]["written"].as_u64().unwrap() > 0, "{out}");
    }
    for check in out["checks"].as_array().unwrap() {
        assert_eq!(check["problems"], serde_json::json!([]), "{out}");
    }
    let catalog = f.catalog();
    assert!(catalog.contains("platform/127.0.0.1_"), "{catalog}");
    assert_eq!(
        std::fs::read(site_dir.join("airgap/k3s")).unwrap(),
        f.k3s,
        "the airgap dir holds the K3s binary"
    );
    assert!(site_dir.join("mirror/charts/index.yaml").is_file());
    assert!(site_dir.join("mirror/apt/dists/ferry/InRelease").is_file());

    // Rendered files exist and parse.
    let out_dir = site_dir.join("ferry-site");
    for name in [
        "registries.yaml",
        "helm-repositories.yaml",
        "ansible-vars.yaml",
    ] {
        let text = std::fs::read_to_string(out_dir.join(name)).unwrap();
        let _: serde_json::Value = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}\n{text}"));
    }
    let vars: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(out_dir.join("ansible-vars.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        vars["airgap_dir"],
        site_dir.join("airgap").display().to_string()
    );
    assert!(
        vars["registries_config_yaml"]
            .as_str()
            .unwrap()
            .contains("mirrors:")
    );
    assert_eq!(
        vars["server_config_yaml"],
        format!("system-default-registry: {}\n", f.site.addr())
    );
    assert_eq!(vars["extra_manifests"], serde_json::json!([]));
    assert_eq!(vars["k3s_version"], "v1.31.4-k3s1");
    let helm: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(out_dir.join("helm-repositories.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(helm["repositories"][0]["name"], "plant-a");
    assert_eq!(
        helm["repositories"][0]["url"],
        "http://mirror.plant-a.lan/charts"
    );
    let sources = std::fs::read_to_string(out_dir.join("ferry.sources")).unwrap();
    assert!(
        sources.contains("URIs: http://mirror.plant-a.lan/apt"),
        "{sources}"
    );
    assert!(out_dir.join("ferry-apt.gpg").is_file());
    // The GPU operator's driver repository: the mirror's list and keyring in a ConfigMap.
    let gpu: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(out_dir.join("gpu-operator-repo-config.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(gpu["kind"], "ConfigMap");
    assert_eq!(gpu["metadata"]["name"], "ferry-apt-repo");
    assert!(
        gpu["data"]["ferry.list"].as_str().unwrap().contains(
            "deb [signed-by=/etc/apt/sources.list.d/ferry-apt.gpg] http://mirror.plant-a.lan/apt ferry "
        ),
        "{gpu}"
    );
    assert_eq!(
        gpu["binaryData"]["ferry-apt.gpg"].as_str().unwrap(),
        base64(&std::fs::read(out_dir.join("ferry-apt.gpg")).unwrap())
    );
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("site.json")).unwrap()).unwrap();
    assert_eq!(listed["rendered"].as_array().unwrap().len(), 7, "{listed}");

    // The command ran in its workdir with the variables.
    let env = std::fs::read_to_string(site_dir.join("ansible/env.txt")).unwrap();
    for var in [
        "FERRY_SITE_DIR=",
        "FERRY_REGISTRIES_YAML=",
        "FERRY_ANSIBLE_VARS=",
        "FERRY_APT_SOURCES=",
        "FERRY_HELM_REPOSITORIES=",
        "FERRY_AIRGAP_DIR=",
    ] {
        assert!(env.contains(var), "{var} missing:\n{env}");
    }

    // A second run skips everything.
    let again = json(&mut f.run("import", &site, &[]));
    for t in again["targets"].as_array().unwrap() {
        assert_eq!(t["written"], 0, "{again}");
        assert_eq!(t["bytes"], 0, "{again}");
        assert!(t["skipped"].as_u64().unwrap() > 0, "{again}");
    }

    // A delta of the same release leaves its chart, files and packages to the base, which
    // the site holds now: it installs, readiness included (the chart is read from the site's
    // chart repository).
    let delta = f.env.path().join("delta");
    let (key, _) = f.env.keys();
    let built = json(
        f.env
            .ferry()
            .args(["--output", "json", "build"])
            .arg(f.env.path().join("release.yaml"))
            .arg("-o")
            .arg(&delta)
            .arg("--key")
            .arg(&key)
            .arg("--since")
            .arg(&f.bundle),
    );
    assert!(built["omitted_blobs"].as_u64().unwrap() > 0, "{built}");
    let mut cmd = f.env.ferry();
    cmd.args(["--output", "json", "install"])
        .arg(&delta)
        .arg("--site")
        .arg(&site)
        .arg("--key")
        .arg(&f.public);
    json(&mut cmd);

    // A failing install command is named, with its exit code.
    let failing = spec.replace(
        "[\"sh\", \"-c\", \"env | grep ^FERRY_ | sort > env.txt; echo installed\"]",
        "[\"sh\", \"-c\", \"exit 3\"]",
    );
    let site = f.site(&failing);
    let e = fails(&mut f.run("install", &site, &[]));
    assert!(e.contains("exit code 3") && e.contains("sh -c"), "{e}");
}

#[test]
fn site_files_with_mistakes_fail_before_any_work() {
    let f = fixture();
    let spec = f.full_spec();
    let site_dir = f.env.path().join("site");
    let check = |spec: &str, expect: &[&str]| {
        let site = f.site(spec);
        let before = tree(&site_dir);
        let e = fails(&mut f.run("import", &site, &[]));
        for part in expect {
            assert!(e.contains(part), "expected {part:?} in:\n{e}");
        }
        assert_eq!(tree(&site_dir), before, "{e}");
        empty_catalog(&f);
        e
    };
    // Unknown field, with its position.
    check(
        &spec.replace("    suite: ferry\n", "    suite: ferry\n    sute: x\n"),
        &[
            "site.yaml:13:5: unknown field \"sute\"",
            "did you mean \"suite\"",
        ],
    );
    // A signing key that is not there.
    check(
        &spec.replace("ferry-apt-secret.asc", "nothing.asc"),
        &["spec.apt.signingKey", "nothing.asc does not exist"],
    );
    // A registry nobody answers at.
    let port = common::free_port();
    check(
        &spec.replace(&f.site.addr(), &format!("127.0.0.1:{port}")),
        &[
            "spec.registry.host",
            &format!("127.0.0.1:{port} does not answer"),
        ],
    );
    // A target directory this user may not write.
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        eprintln!("running as root, which ignores permissions: unwritable directory case skipped");
    } else {
        use std::os::unix::fs::PermissionsExt;
        let locked = site_dir.join("locked");
        std::fs::create_dir_all(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        check(
            &spec.replace("dir: mirror/charts", "dir: locked/charts"),
            &["spec.charts.dir", "locked is not writable"],
        );
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Usage: no --key / --no-signature is exit code 2.
    let site = f.site(&spec);
    let out = f
        .env
        .ferry()
        .arg("import")
        .arg(&f.bundle)
        .arg("--site")
        .arg(&site)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_failing_target_is_named_and_the_next_is_not_started() {
    let f = fixture();
    let site_dir = f.env.path().join("site");
    // The files directory is a regular file where `k3s` should go: files fails, apt waits.
    let spec = f.full_spec();
    let site = f.site(&spec);
    std::fs::create_dir_all(site_dir.join("mirror/files/k3s")).unwrap();
    let e = fails(&mut f.run("import", &site, &[]));
    assert!(e.contains("target files"), "{e}");
    assert!(e.contains("registry, charts done"), "{e}");
    assert!(e.contains("apt not started"), "{e}");
    assert!(
        !site_dir.join("mirror/apt").exists(),
        "apt was started: {e}"
    );
    // Fixed, a re-run finishes (registry and charts skip what is there).
    std::fs::remove_dir(site_dir.join("mirror/files/k3s")).unwrap();
    let out = json(&mut f.run("import", &site, &[]));
    assert_eq!(out["targets"][0]["bytes"], 0, "{out}");
    assert!(site_dir.join("mirror/apt/dists/ferry/InRelease").is_file());
}
