//! End-to-end: `ferry install --site` and `ferry import --site` with one bundle holding images,
//! a chart, K3s-like files and apt packages, into a real docker-registry and mirror directories;
//! a re-run skips everything; `--dry-run` changes nothing; site files with mistakes fail before
//! any work; a target that cannot be filled is named before anything is imported.

mod common;

use std::path::{Path, PathBuf};

use common::ferry::{Env, fails, json, ok};
use common::git_server::{GitServer, Work, refs};
use common::static_server::StaticServer;
use common::upstream;
use common::util::base64;
use common::{Registry, push, standard_layout};

struct Fixture {
    env: Env,
    _source: Registry,
    /// The upstream git server (the bundle carries a repository and a tree too).
    git: Option<GitServer>,
    _http: StaticServer,
    bundle: PathBuf,
    public: PathBuf,
    /// The site registry (docker-registry standing in for Harbor).
    site: Registry,
    k3s: Vec<u8>,
}

fn fixture() -> Fixture {
    fixture_with(false)
}

/// A small tree (model store): nested directories, an empty directory, two files with the
/// same bytes, an executable, a link, and a file large enough to span volumes.
fn make_tree(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("hub/models/blobs")).unwrap();
    std::fs::create_dir_all(root.join("hub/models/snapshots/v1")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("hub/models/blobs/config"), b"{\"layers\": 2}\n").unwrap();
    std::fs::write(
        root.join("hub/models/blobs/config-copy"),
        b"{\"layers\": 2}\n",
    )
    .unwrap();
    let weights: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 241) as u8).collect();
    std::fs::write(root.join("hub/models/blobs/weights"), weights).unwrap();
    std::fs::write(root.join("run.sh"), b"#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(
        "../../blobs/weights",
        root.join("hub/models/snapshots/v1/weights"),
    )
    .unwrap();
}

/// With `git_trees`, the bundle also carries a git repository (two branches, a tag) and a
/// directory tree.
fn fixture_with(git_trees: bool) -> Fixture {
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
    let mut extra = String::new();
    let git = git_trees.then(|| {
        let server = GitServer::start();
        let work = Work::new(&server.create("gitops"));
        work.commit("README.md", "platform");
        work.commit("apps/values.yaml", "replicas: 1");
        work.git(&["tag", "-a", "v1.0.0", "-m", "release 1.0.0"]);
        work.git(&["checkout", "-q", "-b", "dev"]);
        work.commit("apps/extra.yaml", "dev only");
        work.git(&["checkout", "-q", "main"]);
        work.push_all();
        make_tree(&env.path().join("models/small"));
        extra = format!(
            "  git:\n    - url: {}\n  trees:\n    - path: models/small\n      name: small\n",
            server.url("gitops")
        );
        server
    });
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: platform, version: \"1\"}}\nspec:\n  images:\n    - {addr}/app/web:1\n    - {addr}/app/worker:1\n{upstream}{extra}"
        ),
    );
    let bundle = env.build_signed(&manifest, "bundle");
    Fixture {
        env,
        _source: source,
        git,
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
fn a_target_that_cannot_be_filled_is_named_before_anything_is_imported() {
    let f = fixture();
    let site_dir = f.env.path().join("site");
    // A directory where the file `k3s` should go: every target plans before the one pass
    // reads a byte, so files fails there, and nothing of any target is imported.
    let spec = f.full_spec();
    let site = f.site(&spec);
    std::fs::create_dir_all(site_dir.join("mirror/files/k3s")).unwrap();
    let e = fails(&mut f.run("import", &site, &[]));
    assert!(e.contains("target files"), "{e}");
    assert!(e.contains("nothing was imported"), "{e}");
    assert!(e.contains("k3s exists and is not a file"), "{e}");
    empty_catalog(&f);
    assert!(
        !site_dir.join("mirror/apt").exists(),
        "apt was started: {e}"
    );
    // Fixed, a re-run fills every target.
    std::fs::remove_dir(site_dir.join("mirror/files/k3s")).unwrap();
    let out = json(&mut f.run("import", &site, &[]));
    for t in out["targets"].as_array().unwrap() {
        assert!(t["written"].as_u64().unwrap() > 0, "{out}");
    }
    // From a bundle directory, every blob is read once: the pass reads what the targets
    // need and checks the small rest, documents read once before it.
    assert_eq!(out["bytes_read"], out["bundle_bytes"], "{out}");
    assert!(site_dir.join("mirror/apt/dists/ferry/InRelease").is_file());
}

/// The sticks of a packed bundle and one "USB port": a directory that holds one volume at a
/// time, the one ferry asked for last.
struct OneUsbPort {
    /// Where every volume is (the "shelf").
    volumes: PathBuf,
    /// `--volumes-dir`: one volume at a time.
    port: PathBuf,
    name: String,
}

/// What one run behind the USB port did.
struct PortRun {
    /// The volumes ferry asked for, in order (volume 1 is in the port at the start).
    prompts: Vec<u32>,
    /// Its JSON summary (None when killed).
    summary: Option<serde_json::Value>,
    stderr: String,
}

impl OneUsbPort {
    /// Packs the fixture's bundle into exactly `count` volumes.
    fn pack(f: &Fixture, count: usize) -> OneUsbPort {
        let (key, _) = f.env.keys();
        let volumes = f.env.path().join("shelf");
        // The smallest volume size (in 8 KiB steps from 96 KiB) that gives `count` volumes.
        for kib in (96..2048).step_by(8) {
            let _ = std::fs::remove_dir_all(&volumes);
            std::fs::create_dir_all(&volumes).unwrap();
            let out = json(
                f.env
                    .ferry()
                    .args(["--output", "json", "pack"])
                    .arg(&f.bundle)
                    .arg("-o")
                    .arg(volumes.join("platform"))
                    .args(["--volume-size", &format!("{kib}K"), "--key"])
                    .arg(&key),
            );
            if out["volumes"].as_array().unwrap().len() == count {
                let port = f.env.path().join("usb");
                std::fs::create_dir_all(&port).unwrap();
                let port = OneUsbPort {
                    volumes,
                    port,
                    name: "platform".into(),
                };
                return port;
            }
        }
        panic!("no volume size gives {count} volumes");
    }

    fn file(&self, n: u32) -> String {
        format!("{}.{n:03}.tar", self.name)
    }

    /// Takes out whatever is in the port and puts in volume `file` (copied under another
    /// name and renamed, as a mount appears whole).
    fn insert(&self, file: &str) {
        for e in std::fs::read_dir(&self.port).unwrap().flatten() {
            std::fs::remove_file(e.path()).unwrap();
        }
        let part = self.port.join(".inserting");
        std::fs::copy(self.volumes.join(file), &part).unwrap();
        std::fs::rename(&part, self.port.join(file)).unwrap();
    }

    /// Runs `ferry import --site` from the port with `--wait`, answering every "insert
    /// volume N" prompt by putting volume N alone in the port; with `kill_at`, kills the run
    /// (SIGKILL) when it asks for that volume.
    fn import(&self, f: &Fixture, site: &Path, kill_at: Option<u32>) -> PortRun {
        use std::io::BufRead;
        self.insert(&self.file(1));
        let mut child = f
            .env
            .ferry()
            .args(["--output", "json", "import"])
            .arg(&self.port)
            .arg("--site")
            .arg(site)
            .arg("--key")
            .arg(&f.public)
            .arg("--volumes-dir")
            .arg(&self.port)
            .arg("--wait")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The bundle given is the port itself (the stick's mount point).
        let stderr = child.stderr.take().unwrap();
        let mut prompts = Vec::new();
        let mut text = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            text.push_str(&line);
            text.push('\n');
            let Some(rest) = line.split("warning: volume ").nth(1) else {
                continue;
            };
            let Some((number, rest)) = rest.split_once(" of ") else {
                continue;
            };
            let Some(file) = rest
                .split("insert the medium holding ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
            else {
                continue;
            };
            let n: u32 = number.parse().unwrap();
            prompts.push(n);
            if kill_at == Some(n) {
                child.kill().unwrap(); // SIGKILL
                break;
            }
            self.insert(file);
        }
        let out = child.wait_with_output().unwrap();
        let summary = (kill_at.is_none() || out.status.success()).then(|| {
            assert!(out.status.success(), "ferry failed:\n{text}");
            serde_json::from_slice(&out.stdout).unwrap()
        });
        PortRun {
            prompts,
            summary,
            stderr: text,
        }
    }
}

/// Bytes of every blob of a bundle directory.
fn bundle_size(bundle: &Path) -> u64 {
    std::fs::read_dir(bundle.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// What a site holds, to compare two imports: the registry's repositories with each tag's
/// digest, and every file under the site directory but those stamped with the time (apt's
/// release files, the chart index, the rendered configuration) with its content's hash.
fn site_state(registry: &Registry, site_dir: &Path) -> Vec<String> {
    let catalog: serde_json::Value =
        serde_json::from_str(&registry.get("/v2/_catalog").text()).unwrap();
    let mut state = Vec::new();
    for repo in catalog["repositories"].as_array().unwrap() {
        let repo = repo.as_str().unwrap();
        let tags: serde_json::Value =
            serde_json::from_str(&registry.get(&format!("/v2/{repo}/tags/list")).text()).unwrap();
        let mut tags: Vec<String> = tags["tags"]
            .as_array()
            .map(|t| t.iter().map(|t| t.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        tags.sort();
        state.push(format!("{repo}: {}", tags.join(", ")));
    }
    for path in tree(site_dir) {
        let full = site_dir.join(&path);
        // A bare repository by its refs (git's own files, such as its config, differ).
        if path.starts_with("git/") {
            if path.ends_with(".git") && full.join("HEAD").is_file() {
                state.push(format!("{path}: {}", refs(&full)));
            }
            continue;
        }
        let stamped = path.contains("dists/")
            || path.ends_with("index.yaml")
            || path.starts_with("ferry-site")
            || path.starts_with("site.yaml");
        if full.is_file() && !stamped {
            let bytes = std::fs::read(&full).unwrap();
            state.push(format!("{path} {}", common::util::sha256_hex(&bytes)));
        } else {
            state.push(path);
        }
    }
    state
}

#[test]
fn five_volumes_through_one_usb_port_are_each_inserted_once_and_read_once() {
    let f = fixture_with(true);
    let usb = OneUsbPort::pack(&f, 5);
    let spec = f.full_spec();
    let spec = format!(
        "{}  git:\n    dir: git\n  trees:\n    dir: models\n",
        &spec[..spec.find("  install:").unwrap()]
    );
    let site = f.site(&spec);
    let site_dir = site.parent().unwrap().to_path_buf();

    // Uninterrupted: each volume asked for once, in order; every byte read once.
    let run = usb.import(&f, &site, None);
    let out = run.summary.unwrap();
    assert_eq!(run.prompts, [2, 3, 4, 5], "{}", run.stderr);
    assert_eq!(out["insertions"], 5, "{out}");
    assert_eq!(out["volumes_read"], 5, "{out}");
    assert_eq!(out["bytes_read"], bundle_size(&f.bundle), "{out}");
    assert_eq!(out["bundle_bytes"], bundle_size(&f.bundle), "{out}");
    let names: Vec<&str> = out["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["registry", "charts", "files", "apt", "git", "trees"],
        "{out}"
    );
    for t in out["targets"].as_array().unwrap() {
        assert!(t["written"].as_u64().unwrap() > 0, "{out}");
    }
    // The repository has upstream's refs; the tree is upstream's, file by file, link and mode.
    let upstream = f.git.as_ref().unwrap().path("gitops");
    assert_eq!(refs(&site_dir.join("git/gitops.git")), refs(&upstream));
    let (theirs, ours) = (
        f.env.path().join("models/small"),
        site_dir.join("models/small"),
    );
    assert_eq!(tree(&ours), tree(&theirs));
    for path in tree(&theirs) {
        let (a, b) = (theirs.join(&path), ours.join(&path));
        let (ma, mb) = (
            std::fs::symlink_metadata(&a).unwrap(),
            std::fs::symlink_metadata(&b).unwrap(),
        );
        if ma.is_symlink() {
            assert_eq!(
                std::fs::read_link(&a).unwrap(),
                std::fs::read_link(&b).unwrap()
            );
        } else if ma.is_file() {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::read(&a).unwrap(),
                std::fs::read(&b).unwrap(),
                "{path}"
            );
            assert_eq!(
                ma.permissions().mode() & 0o111,
                mb.permissions().mode() & 0o111,
                "{path}"
            );
        }
    }
    assert!(!site_dir.join("git/.ferry-git-bundles").exists());
    let uninterrupted = site_state(&f.site, &site_dir);

    // The same into a second site, killed (SIGKILL) when it asks for volume 4; the re-run
    // asks only for the volumes that still hold work, and ends where the first run did.
    let second = Registry::start_plain();
    let spec2 = spec.replace(&f.site.addr(), &second.addr());
    let site2 = f.env.path().join("site2/site.yaml");
    std::fs::create_dir_all(site2.parent().unwrap()).unwrap();
    std::fs::write(
        &site2,
        format!("apiVersion: ferry.dev/v1\nkind: Site\nmetadata:\n  name: plant-a\nspec:\n{spec2}"),
    )
    .unwrap();
    let killed = usb.import(&f, &site2, Some(4));
    assert_eq!(killed.prompts, [2, 3, 4], "{}", killed.stderr);
    let rerun = usb.import(&f, &site2, None);
    let out = rerun.summary.unwrap();
    assert!(
        rerun.prompts.windows(2).all(|w| w[0] < w[1]),
        "a volume asked for twice or out of order: {:?}\n{}",
        rerun.prompts,
        rerun.stderr
    );
    assert!(
        rerun.prompts.ends_with(&[4, 5]) && rerun.prompts.len() < 4,
        "the re-run asked for volumes with nothing left to do: {:?}\n{}",
        rerun.prompts,
        rerun.stderr
    );
    assert_eq!(
        out["insertions"].as_u64().unwrap(),
        1 + rerun.prompts.len() as u64,
        "{out}"
    );
    assert!(
        out["bytes_read"].as_u64().unwrap() < bundle_size(&f.bundle),
        "{out}"
    );
    let mut resumed = site_state(&second, site2.parent().unwrap());
    let mut expected = uninterrupted.clone();
    resumed.retain(|l| !l.starts_with("site.yaml"));
    expected.retain(|l| !l.starts_with("site.yaml"));
    assert_eq!(resumed, expected);
}

#[test]
fn a_corrupt_blob_in_volume_3_publishes_nothing_that_names_it() {
    let f = fixture();
    let usb = OneUsbPort::pack(&f, 5);
    let spec = f.full_spec();
    let spec = spec[..spec.find("  install:").unwrap()].to_string();
    let site = f.site(&spec);
    let site_dir = site.parent().unwrap().to_path_buf();

    // One byte of the first blob (or chunk) of volume 3, in the middle of its data.
    let volume = usb.volumes.join(usb.file(3));
    let (entry, offset, size) = {
        let mut archive = tar::Archive::new(std::fs::File::open(&volume).unwrap());
        archive
            .entries_with_seek()
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let name = e.path().unwrap().display().to_string();
                (name, e.raw_file_position(), e.size())
            })
            .find(|(name, _, size)| {
                (name.starts_with("blobs/") || name.starts_with("chunks/")) && *size > 0
            })
            .expect("volume 3 holds a blob")
    };
    let mut bytes = std::fs::read(&volume).unwrap();
    bytes[(offset + size / 2) as usize] ^= 0xff;
    std::fs::write(&volume, bytes).unwrap();
    let hex = entry
        .trim_start_matches("blobs/sha256/")
        .trim_start_matches("chunks/")
        .split('.')
        .next()
        .unwrap()
        .to_string();

    let mut child = f
        .env
        .ferry()
        .args(["--output", "json", "import"])
        .arg(&usb.volumes)
        .arg("--site")
        .arg(&site)
        .arg("--key")
        .arg(&f.public)
        .output()
        .unwrap();
    assert!(!child.status.success());
    let e = String::from_utf8(std::mem::take(&mut child.stderr)).unwrap();
    eprintln!("{e}");
    assert!(
        e.contains(&format!("sha256:{hex}")),
        "the blob is not named:\n{e}"
    );
    assert!(e.contains("volume 3"), "the volume is not named:\n{e}");
    assert!(e.contains("used by"), "the entries are not named:\n{e}");
    assert!(e.contains("nothing was published"), "{e}");
    // Nothing names it: no tag, no chart index, no SHA256SUMS, no apt release.
    let catalog: serde_json::Value =
        serde_json::from_str(&f.site.get("/v2/_catalog").text()).unwrap();
    for repo in catalog["repositories"].as_array().unwrap() {
        let tags = f
            .site
            .get(&format!("/v2/{}/tags/list", repo.as_str().unwrap()))
            .text();
        assert!(!tags.contains("\"tags\":[\""), "{repo} has tags: {tags}");
    }
    for unpublished in [
        "mirror/charts/index.yaml",
        "mirror/files/SHA256SUMS",
        "airgap/SHA256SUMS",
        "mirror/apt/dists",
    ] {
        assert!(
            !site_dir.join(unpublished).exists(),
            "{unpublished} was published:\n{e}"
        );
    }
}

/// Runs `command` and returns its output and peak resident memory (bytes): its `VmHWM`,
/// read every few milliseconds while it runs (the exit's resource usage would count the test
/// process, which it was forked from).
fn run_measured(command: &mut std::process::Command) -> (std::process::Output, u64) {
    use std::io::Read;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            from.read_to_end(&mut v).unwrap();
            v
        })
    };
    let (stdout, stderr) = (read(Box::new(out)), read(Box::new(err)));
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib * 1024);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    (
        std::process::Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        },
        peak,
    )
}

#[test]
fn an_upload_cut_mid_blob_goes_on_without_reading_the_bundle_again() {
    use common::faultproxy::{FaultProxy, Faults};
    use common::images::{ImageSpec, LayerSpec, OciLayout};
    let env = Env::new();
    let source = Registry::start_plain();
    // One image with a 40 MiB layer: five 8 MiB chunks of a chunked upload.
    let dir = env.path().join("layout");
    let mut layout = OciLayout::create(&dir);
    layout.add_tagged_image(
        "huge",
        &ImageSpec::new(vec![
            LayerSpec::new(0x5eed_0001, 16 * 1024),
            LayerSpec::random(0x5eed_0002, 40 << 20),
        ]),
    );
    let pushed = push(&dir, "huge", &source, "app/huge:1");
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: huge, version: \"1\"}}\nspec:\n  images:\n    - {}/app/huge:1\n",
            source.addr()
        ),
    );
    let bundle = env.build_signed(&manifest, "bundle");
    let (_, public) = env.keys();

    // The site registry behind a proxy that lets the first large upload request through and
    // cuts the second (the layer's second chunk) after 3 MiB of its body.
    let site = Registry::start_plain();
    let proxy = FaultProxy::start(
        &site.addr(),
        Faults {
            drop_upload_after: Some(3 << 20),
            upload_drops: 1,
            upload_drops_after: 1,
            ..Default::default()
        },
    );
    let site_file = env.path().join("site/site.yaml");
    std::fs::create_dir_all(site_file.parent().unwrap()).unwrap();
    std::fs::write(
        &site_file,
        format!(
            "apiVersion: ferry.dev/v1\nkind: Site\nmetadata:\n  name: plant-a\nspec:\n  registry:\n    host: {}/platform\n",
            proxy.addr()
        ),
    )
    .unwrap();
    let (out, peak) = run_measured(
        env.ferry()
            .args(["--output", "json", "import"])
            .arg(&bundle)
            .arg("--site")
            .arg(&site_file)
            .arg("--key")
            .arg(&public),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(proxy.injected(), 1, "no cut was injected:\n{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Every blob read once: the cut chunk went on from the session, or started again from
    // the spooled copy, never from the bundle.
    assert_eq!(
        summary["bytes_read"],
        bundle_size(&bundle),
        "{summary}\n{stderr}"
    );
    assert!(
        stderr.contains("going on from there") || stderr.contains("spooled"),
        "nothing says how the upload went on:\n{stderr}"
    );
    assert!(!stderr.contains("read again from the bundle"), "{stderr}");
    // Uploaded in chunks: PATCH requests with their ranges.
    let patches = proxy
        .request_heads()
        .iter()
        .filter(|h| h.starts_with("PATCH ") && h.to_ascii_lowercase().contains("content-range: "))
        .count();
    assert!(patches >= 4, "{patches} PATCH requests");
    // Memory: a few chunks per upload, whatever the blob (about 69 MiB here; flat from 40 to
    // 640 MiB in scripts/bench_upload_memory.sh, BENCHMARKS.md), not the blob held whole,
    // let alone several times.
    eprintln!("peak RSS of the import: {} MiB", peak >> 20);
    assert!(peak < 128 << 20, "peak RSS {} MiB", peak >> 20);
    // The image is whole: skopeo copies it from the site registry, every blob checked.
    let mapped = source.addr().replace(':', "_");
    let reference = site.reference(&format!("platform/{mapped}/app/huge:1"));
    common::skopeo::copy_checked(
        &site,
        &reference,
        &env.path().join("copied"),
        pushed.digest(),
    );
    // No spool left behind.
    assert!(
        !env.path()
            .join("site/ferry-site/.ferry-upload-spool")
            .exists()
    );

    // `ferry import registry` uploads the same way: from packed volumes, the same cut, every
    // byte read once (the cut chunk goes on from the session or from its spooled copy).
    let (key, _) = env.keys();
    let shelf = env.path().join("shelf");
    std::fs::create_dir_all(&shelf).unwrap();
    ok(env
        .ferry()
        .arg("pack")
        .arg(&bundle)
        .arg("-o")
        .arg(shelf.join("platform"))
        .args(["--volume-size", "200M", "--key"])
        .arg(&key));
    let site = Registry::start_plain();
    let proxy = FaultProxy::start(
        &site.addr(),
        Faults {
            drop_upload_after: Some(3 << 20),
            upload_drops: 1,
            upload_drops_after: 1,
            ..Default::default()
        },
    );
    let out = env
        .ferry()
        .args(["--output", "json", "import", "registry"])
        .arg(&shelf)
        .arg("--to")
        .arg(format!("{}/platform", proxy.addr()))
        .arg("--key")
        .arg(&public)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(proxy.injected(), 1, "no cut was injected:\n{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // What it needs read once: the uploaded blobs and the manifest, no more than the bundle
    // (which also holds the release's own documents); a layer read twice would add 40 MiB.
    let read = summary["bytes_read"].as_u64().unwrap();
    let uploaded = summary["uploaded_bytes"].as_u64().unwrap();
    assert!(
        read >= uploaded && read <= bundle_size(&bundle),
        "{summary}\n{stderr}"
    );
    assert!(
        stderr.contains("going on from there") || stderr.contains("spooled"),
        "nothing says how the upload went on:\n{stderr}"
    );
    assert!(!stderr.contains("read again from the bundle"), "{stderr}");
    let patches = proxy
        .request_heads()
        .iter()
        .filter(|h| h.starts_with("PATCH ") && h.to_ascii_lowercase().contains("content-range: "))
        .count();
    assert!(patches >= 4, "{patches} PATCH requests");
    let reference = site.reference(&format!("platform/{mapped}/app/huge:1"));
    common::skopeo::copy_checked(
        &site,
        &reference,
        &env.path().join("copied-registry"),
        pushed.digest(),
    );
}

/// A registry that refuses chunked uploads (every `PATCH` answered 405): the site import
/// says so once and sends each large blob in one streamed request, still reading the bundle
/// once.
#[test]
fn a_registry_refusing_chunks_gets_one_streamed_upload_per_blob() {
    use common::faultproxy::{CannedAnswer, FaultProxy, Faults};
    use common::images::{ImageSpec, LayerSpec, OciLayout};
    let env = Env::new();
    let source = Registry::start_plain();
    // Two layers larger than one chunk: the second upload goes straight to one request.
    let dir = env.path().join("layout");
    let mut layout = OciLayout::create(&dir);
    layout.add_tagged_image(
        "big",
        &ImageSpec::new(vec![
            LayerSpec::random(0x5eed_0011, 20 << 20),
            LayerSpec::random(0x5eed_0012, 12 << 20),
        ]),
    );
    let pushed = push(&dir, "big", &source, "app/big:1");
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: big, version: \"1\"}}\nspec:\n  images:\n    - {}/app/big:1\n",
            source.addr()
        ),
    );
    let bundle = env.build_signed(&manifest, "bundle");
    let (_, public) = env.keys();

    let site = Registry::start_plain();
    let proxy = FaultProxy::start(
        &site.addr(),
        Faults {
            answer: Some(CannedAnswer {
                method: Some("PATCH".into()),
                status: 405,
                reason: "Method Not Allowed".into(),
                body: r#"{"errors":[{"code":"UNSUPPORTED","message":"chunked uploads are not supported"}]}"#.into(),
            }),
            ..Default::default()
        },
    );
    let site_file = env.path().join("site/site.yaml");
    std::fs::create_dir_all(site_file.parent().unwrap()).unwrap();
    std::fs::write(
        &site_file,
        format!(
            "apiVersion: ferry.dev/v1\nkind: Site\nmetadata:\n  name: plant-a\nspec:\n  registry:\n    host: {}/platform\n",
            proxy.addr()
        ),
    )
    .unwrap();
    let out = env
        .ferry()
        .args(["--output", "json", "import"])
        .arg(&bundle)
        .arg("--site")
        .arg(&site_file)
        .arg("--key")
        .arg(&public)
        .args(["--jobs", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(proxy.injected() >= 1, "no PATCH was refused:\n{stderr}");
    assert_eq!(
        stderr.matches("refuses chunked uploads").count(),
        1,
        "the fallback is said once:\n{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["bytes_read"],
        bundle_size(&bundle),
        "{summary}\n{stderr}"
    );
    // Remembered for the run: one refused PATCH, not one per blob (one upload at a time).
    let patches = proxy
        .request_heads()
        .iter()
        .filter(|h| h.starts_with("PATCH "))
        .count();
    assert_eq!(patches, 1, "{patches} PATCH requests");
    let mapped = source.addr().replace(':', "_");
    let reference = site.reference(&format!("platform/{mapped}/app/big:1"));
    let blobs = common::skopeo::copy_checked(
        &site,
        &reference,
        &env.path().join("copied"),
        pushed.digest(),
    );
    assert_eq!(blobs, 3, "config and two layers");
}
