//! End-to-end: apt packages. A real apt repository made here (`dpkg-deb --build`, signed by a
//! throwaway gpg key, served on loopback), built into a bundle, imported into a mirror signed
//! with the site key, and checked with the real `apt-get`, `gpgv` and `sqv`; then the bad
//! paths (tampered InRelease, a Packages file that does not match Release, a wrong .deb, a
//! foreign keyring, an unsatisfiable request); and one comparison with `apt-get` against the
//! Debian archive this machine's apt uses.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::apt_repo::{build_deb, gpg, gpg_key, gzip};
use common::ferry::{Env, fails, json, ok};
use common::static_server::StaticServer;
use common::{run, run_unchecked, sha256_hex};

/// Suite, name, version, architecture, extra control fields.
const PACKAGES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "stable",
        "tool",
        "1",
        "amd64",
        "Depends: app, editor-a | editor-b\n",
    ),
    (
        "stable",
        "app",
        "1.0",
        "amd64",
        "Pre-Depends: base\nDepends: libfoo (>= 2), mta | mail-transport-agent, data\n",
    ),
    ("stable", "base", "1", "amd64", ""),
    ("stable", "libfoo", "1.5", "amd64", ""),
    (
        "updates",
        "libfoo",
        "2.1",
        "amd64",
        "Depends: base (>= 1)\n",
    ),
    (
        "stable",
        "postfix-lite",
        "1",
        "amd64",
        "Provides: mail-transport-agent\n",
    ),
    ("stable", "data", "2", "all", ""),
    ("stable", "editor-a", "1", "amd64", ""),
    ("stable", "editor-b", "1", "amd64", ""),
    ("stable", "unrelated", "1", "amd64", ""),
];

/// What `tool` and `libfoo (>= 2)` resolve to.
const EXPECTED: &[&str] = &[
    "app=1.0",
    "base=1",
    "data=2",
    "editor-a=1",
    "libfoo=2.1",
    "postfix-lite=1",
    "tool=1",
];

/// A signed apt repository under `<root>/good`, and the keys around it.
struct Repo {
    root: PathBuf,
    gnupg: PathBuf,
    keyring: PathBuf,
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.gnupg)
            .args(["--kill", "all"])
            .output();
    }
}

/// Builds the packages with dpkg-deb, writes Packages and Release per suite, clearsigns.
fn make_repo(root: &Path) -> Repo {
    let gnupg = root.join("gnupg");
    let keyring = root.join("archive-keyring.gpg");
    gpg_key(&gnupg, "archive", &keyring);
    let repo = root.join("good");
    let build = root.join("build");
    let mut lists: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for (suite, name, version, arch, extra) in PACKAGES {
        let control = format!(
            "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: ferry tests <tests@ferry.invalid>\nPriority: optional\nSection: misc\n{extra}Description: ferry test package {name}\n Made by ferry's apt tests.\n"
        );
        let readme = (
            format!("usr/share/doc/{name}/README"),
            format!("{name} {version}\n"),
        );
        lists
            .entry(suite)
            .or_default()
            .push(build_deb(&build, &repo, &control, &[readme]));
    }
    for (suite, stanzas) in lists {
        let dists = repo.join(format!("dists/{suite}"));
        let list_dir = dists.join("main/binary-amd64");
        std::fs::create_dir_all(&list_dir).unwrap();
        let packages = format!("{}\n", stanzas.join("\n\n"));
        let gz = gzip(packages.as_bytes());
        std::fs::write(list_dir.join("Packages"), &packages).unwrap();
        std::fs::write(list_dir.join("Packages.gz"), &gz).unwrap();
        let release = format!(
            "Origin: ferry-tests\nLabel: ferry-tests\nSuite: {suite}\nCodename: {suite}\nDate: Mon, 02 Jun 2025 10:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n {} {} main/binary-amd64/Packages.gz\n",
            sha256_hex(packages.as_bytes()),
            packages.len(),
            sha256_hex(&gz),
            gz.len()
        );
        std::fs::write(dists.join("Release"), &release).unwrap();
        run(gpg(&gnupg)
            .args(["--digest-algo", "SHA512", "--clearsign", "-o"])
            .arg(dists.join("InRelease"))
            .arg(dists.join("Release")));
    }
    Repo {
        root: root.to_path_buf(),
        gnupg,
        keyring,
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A test environment: ferry keys, the repository, a server over the repository's root.
struct Fixture {
    env: Env,
    repo: Repo,
    server: StaticServer,
}

impl Fixture {
    fn new() -> Fixture {
        let env = Env::new();
        let repo = make_repo(&env.path().join("upstream"));
        let server = StaticServer::start(&repo.root);
        env.keys();
        ok(env
            .ferry()
            .args(["key", "generate", "--apt", "--output-dir"])
            .arg(env.path().join("keys")));
        Fixture { env, repo, server }
    }

    /// A copy of the good repository under another name, to damage.
    fn variant(&self, name: &str) -> PathBuf {
        let dir = self.repo.root.join(name);
        copy_tree(&self.repo.root.join("good"), &dir);
        dir
    }

    fn manifest(&self, name: &str, repo: &str, packages: &str, keyring: &Path) -> PathBuf {
        self.env.manifest(
            name,
            &format!(
                "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: t, version: \"1\"}}\nspec:\n  apt:\n    sources:\n      - url: {}/{repo}\n        suites: [stable, updates]\n        components: [main]\n        architectures: [amd64]\n        keyring: {}\n    packages: {packages}\n",
                self.server.url(),
                keyring.display()
            ),
        )
    }

    fn build(&self, manifest: &Path, out: &str) -> Command {
        let mut c = self.env.ferry();
        c.arg("build")
            .arg(manifest)
            .arg("-o")
            .arg(self.env.path().join(out))
            .arg("--key")
            .arg(self.env.path().join("keys/cosign.key"));
        c
    }

    fn import(&self, bundle: &str, mirror: &Path, extra: &[&str]) -> serde_json::Value {
        json(
            self.env
                .ferry()
                .args(["--output", "json", "import", "apt"])
                .arg(self.env.path().join(bundle))
                .arg("--key")
                .arg(self.env.path().join("keys/cosign.pub"))
                .arg("--to")
                .arg(mirror)
                .arg("--signing-key")
                .arg(self.env.path().join("keys/ferry-apt-secret.asc"))
                .args(extra),
        )
    }
}

/// Runs the real apt-get against a sources file (its keyring at `keyring`) as root; returns
/// the names of the .deb files it downloaded.
fn apt_get_download(work: &Path, sources: &str, keyring: &Path, packages: &[&str]) -> Vec<String> {
    let etc = work.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let sources = sources.replace(
        "Signed-By: /etc/apt/keyrings/ferry-apt.gpg",
        &format!("Signed-By: {}", keyring.display()),
    );
    let list = etc.join("ferry.sources");
    std::fs::write(&list, sources).unwrap();
    common::apt_repo::apt_get_download(work, &list, common::apt_repo::AptUser::Root, packages)
}

fn deb_names(files: &[String]) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            let parts: Vec<&str> = f.trim_end_matches(".deb").split('_').collect();
            format!("{}={}", parts[0], parts[1].replace("%3a", ":"))
        })
        .collect()
}

#[test]
fn build_import_then_apt_get_installs_everything() {
    let f = Fixture::new();
    let manifest = f.manifest(
        "release.yaml",
        "good",
        "[tool, \"libfoo (>= 2)\"]",
        &f.repo.keyring,
    );
    ok(&mut f.build(&manifest, "bundle"));
    // The same lock gives the same index.json, also when nothing is left to reuse.
    ok(f.build(&manifest, "rebuilt").arg("--locked"));
    assert_eq!(
        std::fs::read(f.env.path().join("bundle/index.json")).unwrap(),
        std::fs::read(f.env.path().join("rebuilt/index.json")).unwrap()
    );

    // The lock records every package exactly.
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.env.path().join("release.lock")).unwrap()).unwrap();
    let source = &lock["apt"]["sources"][0];
    let mut locked: Vec<String> = source["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{}={}",
                p["package"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect();
    locked.sort();
    assert_eq!(locked, EXPECTED);
    let libfoo = source["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["package"] == "libfoo")
        .unwrap();
    assert_eq!(
        libfoo["suite"], "updates",
        "the highest version across suites: {libfoo}"
    );
    assert_eq!(libfoo["component"], "main");
    assert_eq!(libfoo["architecture"], "amd64");
    assert_eq!(libfoo["filename"], "pool/main/libfoo_2.1_amd64.deb");
    let deb = std::fs::read(f.repo.root.join("good/pool/main/libfoo_2.1_amd64.deb")).unwrap();
    assert_eq!(libfoo["size"].as_u64().unwrap(), deb.len() as u64);
    assert_eq!(libfoo["sha256"].as_str().unwrap(), sha256_hex(&deb));
    assert!(
        libfoo["stanza"]
            .as_str()
            .unwrap()
            .starts_with("Package: libfoo\nVersion: 2.1\n")
    );
    assert_eq!(source["releases"].as_array().unwrap().len(), 2);

    // The release SBOM lists every package with its version, architecture and sha256.
    let sbom = common::sbom::checked(
        &f.env,
        &f.env.path().join("bundle"),
        &f.env.path().join("keys/cosign.pub"),
    );
    let debs = common::sbom::components(&sbom, "apt");
    assert_eq!(debs.len(), EXPECTED.len());
    let sbom_libfoo = debs.iter().find(|c| c["name"] == "libfoo").unwrap();
    assert_eq!(sbom_libfoo["version"], "2.1");
    assert_eq!(sbom_libfoo["purl"], "pkg:deb/libfoo@2.1?arch=amd64");
    assert_eq!(sbom_libfoo["hashes"][0]["content"], sha256_hex(&deb));

    // The bundle: one apt artifact, verbatim stanzas and the upstream InRelease inside.
    let bundle = f.env.path().join("bundle");
    ok(f.env
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--key")
        .arg(f.env.path().join("keys/cosign.pub")));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(entry["annotations"]["dev.ferry.kind"], "apt");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        format!("{}/good", f.server.url())
    );
    assert_eq!(entry["artifactType"], "application/vnd.ferry.apt.v1");
    let hex = entry["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("blobs/sha256").join(hex)).unwrap())
            .unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let of = |mt: &str| {
        layers
            .iter()
            .filter(|l| l["mediaType"] == mt)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("application/vnd.debian.binary-package").len(),
        EXPECTED.len()
    );
    assert_eq!(of("application/vnd.ferry.apt.inrelease.v1").len(), 2);
    let upstream_in_release =
        std::fs::read(f.repo.root.join("good/dists/stable/InRelease")).unwrap();
    assert!(
        of("application/vnd.ferry.apt.inrelease.v1")
            .iter()
            .any(|l| {
                l["digest"].as_str().unwrap()
                    == format!("sha256:{}", sha256_hex(&upstream_in_release))
            })
    );
    let upstream = std::fs::read_to_string(
        f.repo
            .root
            .join("good/dists/stable/main/binary-amd64/Packages"),
    )
    .unwrap();
    for list in of("application/vnd.ferry.apt.packages.v1") {
        let hex = list["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        let text = std::fs::read_to_string(bundle.join("blobs/sha256").join(hex)).unwrap();
        for stanza in text.trim_end().split("\n\n") {
            let upstream_all = format!(
                "{upstream}\n{}",
                std::fs::read_to_string(
                    f.repo
                        .root
                        .join("good/dists/updates/main/binary-amd64/Packages")
                )
                .unwrap()
            );
            assert!(
                upstream_all.contains(stanza),
                "stanza not verbatim:\n{stanza}"
            );
        }
    }

    // Import, then the real tools.
    // The mirror is served over HTTP, as on site (apt uses file: mirrors in place).
    let mirror = f.env.path().join("mirror");
    let site = StaticServer::start(f.env.path());
    let site_url = format!("{}/mirror", site.url());
    let imported = f.import("bundle", &mirror, &["--url", &site_url]);
    assert_eq!(imported["copied"], EXPECTED.len());
    for suite in ["stable", "updates"] {
        let dists = mirror.join("dists").join(suite);
        run(Command::new("gpgv")
            .arg("--keyring")
            .arg(mirror.join("ferry-apt.gpg"))
            .arg(dists.join("InRelease")));
        run(Command::new("gpgv")
            .arg("--keyring")
            .arg(mirror.join("ferry-apt.gpg"))
            .arg(dists.join("Release.gpg"))
            .arg(dists.join("Release")));
        if Command::new("sqv").arg("--version").output().is_ok() {
            run(Command::new("sqv")
                .arg("--keyring")
                .arg(mirror.join("ferry-apt.gpg"))
                .arg(dists.join("Release.gpg"))
                .arg(dists.join("Release")));
        }
        let release = std::fs::read_to_string(dists.join("Release")).unwrap();
        assert!(release.contains("Acquire-By-Hash: yes"), "{release}");
        assert!(!release.contains("Valid-Until"), "{release}");
        assert!(
            release.contains("Date: Mon, 02 Jun 2025 10:00:00 UTC"),
            "the upstream date, in the past:\n{release}"
        );
        for line in release
            .lines()
            .filter(|l| l.contains("main/binary-amd64/Packages"))
        {
            let hash = line.split_whitespace().next().unwrap();
            assert!(
                dists
                    .join("main/binary-amd64/by-hash/SHA256")
                    .join(hash)
                    .is_file(),
                "{line}"
            );
        }
    }
    let sources = std::fs::read_to_string(mirror.join("ferry.sources")).unwrap();
    assert!(
        sources.contains("Signed-By: /etc/apt/keyrings/ferry-apt.gpg"),
        "{sources}"
    );
    assert!(sources.contains("Suites: stable updates"), "{sources}");
    assert!(
        sources.contains(&format!("URIs: {site_url}\n")),
        "{sources}"
    );
    let packages =
        std::fs::read_to_string(mirror.join("dists/stable/main/binary-amd64/Packages")).unwrap();
    assert!(
        packages.contains("Filename: pool/main/a/app/app_1.0_amd64.deb"),
        "{packages}"
    );
    assert!(!packages.contains("unrelated"), "{packages}");

    let downloaded = apt_get_download(
        &f.env.path().join("apt1"),
        &sources,
        &mirror.join("ferry-apt.gpg"),
        &["tool"],
    );
    assert_eq!(
        deb_names(&downloaded),
        EXPECTED,
        "apt-get must find every dependency in the mirror"
    );

    // A second bundle adds a package: the mirror keeps the first import's packages.
    let second = f.manifest("second.yaml", "good", "[unrelated]", &f.repo.keyring);
    ok(&mut f.build(&second, "bundle2"));
    let imported = f.import("bundle2", &mirror, &["--url", &site_url]);
    assert_eq!(imported["copied"], 1, "{imported}");
    let again = f.import("bundle", &mirror, &["--url", &site_url]);
    assert_eq!(again["copied"], 0, "{again}");
    assert_eq!(again["present"], EXPECTED.len(), "{again}");
    let downloaded = apt_get_download(
        &f.env.path().join("apt2"),
        &sources,
        &mirror.join("ferry-apt.gpg"),
        &["tool", "unrelated"],
    );
    assert_eq!(downloaded.len(), EXPECTED.len() + 1, "{downloaded:?}");

    // One suite for everything.
    let single = f.env.path().join("single");
    f.import(
        "bundle",
        &single,
        &[
            "--suite",
            "ferry",
            "--url",
            "http://mirror.site.invalid/apt",
        ],
    );
    let sources = std::fs::read_to_string(single.join("ferry.sources")).unwrap();
    assert!(
        sources.contains("URIs: http://mirror.site.invalid/apt\nSuites: ferry\n"),
        "{sources}"
    );
    let list =
        std::fs::read_to_string(single.join("dists/ferry/main/binary-amd64/Packages")).unwrap();
    assert!(
        list.contains("Package: libfoo\nVersion: 2.1") && list.contains("Package: tool"),
        "{list}"
    );
}

#[test]
fn serve_answers_apt_from_the_bundle() {
    let f = Fixture::new();
    let manifest = f.manifest("release.yaml", "good", "[tool]", &f.repo.keyring);
    ok(&mut f.build(&manifest, "bundle"));
    let mut child = f
        .env
        .ferry()
        .args(["--output", "json", "serve"])
        .arg(f.env.path().join("bundle"))
        .args(["--listen", "127.0.0.1:0", "--key"])
        .arg(f.env.path().join("keys/cosign.pub"))
        .arg("--apt-signing-key")
        .arg(f.env.path().join("keys/ferry-apt-secret.asc"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut text = String::new();
    use std::io::BufRead;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        text.push_str(&line);
        if line == "}" {
            break;
        }
    }
    let listening: serde_json::Value = serde_json::from_str(&text).unwrap();
    let url = listening["url"].as_str().unwrap().to_string();
    let get = |path: &str| run(Command::new("curl").args(["-sf", &format!("{url}{path}")])).stdout;
    let keyring = f.env.path().join("served.gpg");
    std::fs::write(&keyring, get("/apt/ferry-apt.gpg")).unwrap();
    let sources = String::from_utf8(get("/apt/ferry.sources")).unwrap();
    assert!(sources.contains(&format!("URIs: {url}/apt\n")), "{sources}");
    let in_release = f.env.path().join("InRelease");
    std::fs::write(&in_release, get("/apt/dists/stable/InRelease")).unwrap();
    run(Command::new("gpgv")
        .arg("--keyring")
        .arg(&keyring)
        .arg(&in_release));
    let status = run(Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{url}/apt/pool/main/x/x/x_1_amd64.deb"),
    ]))
    .stdout;
    assert_eq!(String::from_utf8_lossy(&status), "404");
    let downloaded = apt_get_download(&f.env.path().join("apt"), &sources, &keyring, &["tool"]);
    let _ = child.kill();
    let _ = child.wait();
    // Only `tool` was asked for: libfoo comes in through app's `libfoo (>= 2)`.
    assert_eq!(deb_names(&downloaded), EXPECTED);
}

#[test]
fn tampered_release_files_stop_the_build() {
    let f = Fixture::new();
    // InRelease with one changed byte of signed text.
    let dir = f.variant("tampered");
    let path = dir.join("dists/stable/InRelease");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("Label: ferry-tests", "Label: ferry-tesTs");
    std::fs::write(&path, text).unwrap();
    let manifest = f.manifest("tampered.yaml", "tampered", "[tool]", &f.repo.keyring);
    let e = fails(&mut f.build(&manifest, "b1"));
    assert!(
        e.contains("/tampered/dists/stable/InRelease: the signature does not verify"),
        "{e}"
    );
    assert!(e.contains("not valid for this content"), "{e}");
    assert!(!f.env.path().join("b1/index.json").exists());

    // A Packages file that is not the one the signed Release names.
    let dir = f.variant("badindex");
    let list = dir.join("dists/updates/main/binary-amd64/Packages.gz");
    let mut text =
        std::fs::read_to_string(dir.join("dists/updates/main/binary-amd64/Packages")).unwrap();
    text.push_str("\nPackage: evil\nVersion: 1\nArchitecture: amd64\nFilename: pool/main/evil.deb\nSize: 1\nSHA256: 00\n");
    std::fs::write(&list, gzip(text.as_bytes())).unwrap();
    let manifest = f.manifest("badindex.yaml", "badindex", "[tool]", &f.repo.keyring);
    let e = fails(&mut f.build(&manifest, "b2"));
    assert!(
        e.contains(
            "badindex/dists/updates/main/binary-amd64/Packages.gz does not match the signed Release"
        ),
        "{e}"
    );

    // Another distribution's keyring.
    let other = f.repo.root.join("other-keyring.gpg");
    gpg_key(&f.repo.root.join("gnupg-other"), "other", &other);
    let _kill = Repo {
        root: f.repo.root.clone(),
        gnupg: f.repo.root.join("gnupg-other"),
        keyring: other.clone(),
    };
    let manifest = f.manifest("other.yaml", "good", "[tool]", &other);
    let e = fails(&mut f.build(&manifest, "b3"));
    assert!(e.contains("which is not in the keyring"), "{e}");

    // A keyring file that is not a keyring.
    let junk = f.env.path().join("junk.gpg");
    std::fs::write(&junk, "not a key").unwrap();
    let manifest = f.manifest("junk.yaml", "good", "[tool]", &junk);
    let e = fails(&mut f.build(&manifest, "b4"));
    assert!(
        e.contains("junk.yaml:") && e.contains("cannot use keyring"),
        "{e}"
    );
}

#[test]
fn wrong_debs_stop_the_build() {
    let f = Fixture::new();
    // Same size, other content.
    let dir = f.variant("badhash");
    let deb = dir.join("pool/main/base_1_amd64.deb");
    let mut bytes = std::fs::read(&deb).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&deb, &bytes).unwrap();
    let manifest = f.manifest("badhash.yaml", "badhash", "[tool]", &f.repo.keyring);
    let e = fails(&mut f.build(&manifest, "b1"));
    assert!(e.contains("cannot fetch base 1"), "{e}");
    assert!(
        e.contains("base_1_amd64.deb: the download hashes to sha256:"),
        "{e}"
    );
    // Nothing of it was stored.
    let expected =
        sha256_hex(&std::fs::read(f.repo.root.join("good/pool/main/base_1_amd64.deb")).unwrap());
    assert!(!f.env.path().join("b1/blobs/sha256").join(expected).exists());

    // Another size.
    let dir = f.variant("badsize");
    let deb = dir.join("pool/main/data_2_all.deb");
    let mut bytes = std::fs::read(&deb).unwrap();
    bytes.extend_from_slice(b"trailing garbage");
    std::fs::write(&deb, &bytes).unwrap();
    let manifest = f.manifest("badsize.yaml", "badsize", "[tool]", &f.repo.keyring);
    let e = fails(&mut f.build(&manifest, "b2"));
    assert!(
        e.contains("cannot fetch data 2") && e.contains("data_2_all.deb: received"),
        "{e}"
    );

    // A package missing from the pool.
    let dir = f.variant("missing");
    std::fs::remove_file(dir.join("pool/main/app_1.0_amd64.deb")).unwrap();
    let manifest = f.manifest("missing.yaml", "missing", "[tool]", &f.repo.keyring);
    let e = fails(&mut f.build(&manifest, "b3"));
    assert!(
        e.contains("cannot fetch app 1.0") && e.contains("404"),
        "{e}"
    );
}

#[test]
fn unsatisfiable_request_prints_the_chain() {
    let f = Fixture::new();
    let dir = f.variant("broken");
    let list = dir.join("dists/updates/main/binary-amd64");
    // Drop libfoo 2.1: app's `libfoo (>= 2)` can no longer be met. Re-sign the change.
    std::fs::write(list.join("Packages"), "").unwrap();
    let gz = gzip(b"");
    std::fs::write(list.join("Packages.gz"), &gz).unwrap();
    let release = format!(
        "Origin: ferry-tests\nSuite: updates\nCodename: updates\nDate: Mon, 02 Jun 2025 10:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} 0 main/binary-amd64/Packages\n {} {} main/binary-amd64/Packages.gz\n",
        sha256_hex(b""),
        sha256_hex(&gz),
        gz.len()
    );
    std::fs::write(dir.join("dists/updates/Release"), release).unwrap();
    run(gpg(&f.repo.gnupg)
        .args(["--digest-algo", "SHA512", "--clearsign", "-o"])
        .arg(dir.join("dists/updates/InRelease"))
        .arg(dir.join("dists/updates/Release")));
    let manifest = f.manifest("broken.yaml", "broken", "[tool]", &f.repo.keyring);
    let e = fails(&mut f.build(&manifest, "b"));
    assert!(e.contains("cannot resolve \"tool\": libfoo (>= 2) cannot be satisfied: the versions available are 1.5"), "{e}");
    assert!(
        e.contains("-> tool 1 (amd64) Depends: app\n    -> app 1.0 (amd64) Depends: libfoo (>= 2)"),
        "{e}"
    );
    let manifest = f.manifest("none.yaml", "good", "[no-such-package]", &f.repo.keyring);
    let e = fails(&mut f.build(&manifest, "b2"));
    assert!(e.contains("no package no-such-package"), "{e}");
}

/// The Debian archive this machine's apt points at, from /etc/apt/sources.list.d.
fn debian_sources() -> Option<(String, String)> {
    let dir = std::fs::read_dir("/etc/apt/sources.list.d").ok()?;
    let mut main = None;
    let mut security = None;
    for entry in dir.filter_map(|e| e.ok()) {
        if entry.path().extension().and_then(|e| e.to_str()) != Some("sources") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).ok()?;
        for stanza in text.split("\n\n") {
            let field = |name: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .map(str::trim)
                    .map(str::to_string)
            };
            let (Some(uri), Some(suites)) = (field("URIs"), field("Suites")) else {
                continue;
            };
            let uri = uri
                .split_whitespace()
                .next()?
                .trim_end_matches('/')
                .to_string();
            if suites.split_whitespace().any(|s| s == "bookworm") {
                main = Some(uri);
            } else if suites.split_whitespace().any(|s| s == "bookworm-security") {
                security = Some(uri);
            }
        }
    }
    Some((main?, security?))
}

/// `curl` for bookworm amd64 from the real Debian archive, against an empty status file:
/// ferry's lock must hold exactly the packages (and versions) that `apt-get install
/// --simulate` would install on an empty system. Needs the archive this machine's apt uses;
/// without it (no /etc/apt/sources.list.d/*.sources for bookworm, or the mirror does not
/// answer) the test says so and passes.
#[test]
fn real_debian_archive_resolves_like_apt_get() {
    let keyring = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
    let Some((main, security)) = debian_sources().filter(|_| keyring.is_file()) else {
        eprintln!("SKIPPED: no bookworm sources in /etc/apt/sources.list.d, or no Debian keyring");
        return;
    };
    let probe = run_unchecked(
        Command::new("curl")
            .args(["-sfI", "--max-time", "10"])
            .arg(format!("{main}/dists/bookworm/InRelease")),
    );
    if !probe.status.success() {
        eprintln!("SKIPPED: {main} does not answer from here");
        return;
    }
    let env = Env::new();
    let manifest = env.manifest(
        "debian.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: debian, version: \"1\"}}\nspec:\n  apt:\n    sources:\n      - url: {main}\n        suites: [bookworm, bookworm-updates]\n        components: [main]\n        architectures: [amd64]\n        keyring: {k}\n      - url: {security}\n        suites: [bookworm-security]\n        components: [main]\n        architectures: [amd64]\n        keyring: {k}\n    packages: [curl]\n",
            k = keyring.display()
        ),
    );
    ok(env.ferry().arg("lock").arg(&manifest));
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path().join("debian.lock")).unwrap()).unwrap();
    let ferry: BTreeSet<String> = lock["apt"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["packages"].as_array().unwrap().iter())
        .map(|p| {
            format!(
                "{}={}",
                p["package"].as_str().unwrap(),
                p["version"].as_str().unwrap()
            )
        })
        .collect();

    // apt-get on an empty system with the same sources, in its own state directory.
    let work = env.path().join("apt");
    let parts = work.join("empty.d");
    for d in [
        parts.clone(),
        work.join("state/lists/partial"),
        work.join("cache/archives/partial"),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(work.join("status"), "").unwrap();
    let list = work.join("debian.sources");
    std::fs::write(
        &list,
        format!(
            "Types: deb\nURIs: {main}\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: {k}\n\nTypes: deb\nURIs: {security}\nSuites: bookworm-security\nComponents: main\nSigned-By: {k}\n",
            k = keyring.display()
        ),
    )
    .unwrap();
    let apt = |args: &[&str]| {
        let mut c = Command::new("apt-get");
        for (k, v) in [
            ("Dir::Etc::SourceList", list.display().to_string()),
            ("Dir::Etc::SourceParts", parts.display().to_string()),
            ("Dir::Etc::PreferencesParts", parts.display().to_string()),
            ("Dir::State", work.join("state").display().to_string()),
            (
                "Dir::State::status",
                work.join("status").display().to_string(),
            ),
            ("Dir::Cache", work.join("cache").display().to_string()),
            ("Debug::NoLocking", "1".into()),
            ("APT::Sandbox::User", "root".into()),
            ("APT::Architecture", "amd64".into()),
            ("APT::Architectures::", "amd64".into()),
            ("Acquire::Languages", "none".into()),
        ] {
            c.arg("-o").arg(format!("{k}={v}"));
        }
        run(c.args(args))
    };
    apt(&["update"]);
    let out = apt(&["install", "--simulate", "--no-install-recommends", "curl"]);
    let apt_set: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next().unwrap();
            let version = parts.next().unwrap().trim_start_matches('(');
            format!("{name}={version}")
        })
        .collect();
    assert!(
        apt_set.iter().any(|p| p.starts_with("curl=")),
        "{apt_set:?}"
    );
    // Differences would come from apt and ferry choosing differently between alternatives or
    // providers, or from the mirror changing between the two reads (a new upload in between).
    assert_eq!(
        ferry.difference(&apt_set).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "ferry takes packages apt-get would not install"
    );
    assert_eq!(
        apt_set.difference(&ferry).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "apt-get installs packages ferry did not take"
    );
}

/// Clearsigns every suite's Release of `repo` again with the key in `home`.
fn resign(home: &Path, repo: &Path, extra: &[&str]) {
    for suite in ["stable", "updates"] {
        let dists = repo.join("dists").join(suite);
        run(gpg(home)
            .args(extra)
            .args(["--clearsign", "-o"])
            .arg(dists.join("InRelease"))
            .arg(dists.join("Release")));
    }
}

#[test]
fn weak_and_expired_signatures_are_refused() {
    let f = Fixture::new();
    // SHA-1 signatures do not count, even by a key of the keyring.
    let home = f.repo.root.join("gnupg-rsa");
    let rsa_keyring = f.repo.root.join("rsa-keyring.gpg");
    std::fs::create_dir_all(&home).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let _kill = Repo {
        root: f.repo.root.clone(),
        gnupg: home.clone(),
        keyring: rsa_keyring.clone(),
    };
    run(gpg(&home).args([
        "--quick-gen-key",
        "rsa <rsa@ferry.invalid>",
        "rsa2048",
        "sign",
        "0",
    ]));
    run(gpg(&home).arg("--export").arg("-o").arg(&rsa_keyring));
    let dir = f.variant("sha1");
    resign(&home, &dir, &["--digest-algo", "SHA1"]);
    let manifest = f.manifest("sha1.yaml", "sha1", "[tool]", &rsa_keyring);
    let e = fails(&mut f.build(&manifest, "b1"));
    assert!(e.contains("uses SHA1, which is too weak"), "{e}");
    // The same key with SHA-256 is fine: it was the hash that was refused.
    let dir = f.variant("sha256");
    resign(&home, &dir, &["--digest-algo", "SHA256"]);
    let manifest = f.manifest("sha256.yaml", "sha256", "[tool]", &rsa_keyring);
    ok(&mut f.build(&manifest, "b2"));

    // A key that expired (made and used in 2020, valid for a day).
    let home = f.repo.root.join("gnupg-old");
    let old_keyring = f.repo.root.join("old-keyring.gpg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let _kill_old = Repo {
        root: f.repo.root.clone(),
        gnupg: home.clone(),
        keyring: old_keyring.clone(),
    };
    run(gpg(&home).args([
        "--faked-system-time",
        "20200101T000000!",
        "--quick-gen-key",
        "old <old@ferry.invalid>",
        "ed25519",
        "sign",
        "1d",
    ]));
    run(gpg(&home).arg("--export").arg("-o").arg(&old_keyring));
    let dir = f.variant("expired");
    resign(&home, &dir, &["--faked-system-time", "20200101T120000!"]);
    let manifest = f.manifest("expired.yaml", "expired", "[tool]", &old_keyring);
    let e = fails(&mut f.build(&manifest, "b3"));
    assert!(e.contains("the key expired on"), "{e}");
}

#[test]
fn installed_packages_are_not_carried_and_a_changed_status_file_outdates_the_lock() {
    let f = Fixture::new();
    let status = f.env.path().join("base.status");
    std::fs::write(
        &status,
        "Package: base\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\nPackage: editor-b\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\nPackage: data\nStatus: deinstall ok config-files\nVersion: 2\nArchitecture: all\n",
    )
    .unwrap();
    let manifest = f.env.manifest(
        "release.yaml",
        &std::fs::read_to_string(f.manifest("x.yaml", "good", "[tool]", &f.repo.keyring))
            .unwrap()
            .replace(
                "    packages: [tool]\n",
                "    packages: [tool]\n    exclude-installed: base.status\n",
            ),
    );
    ok(f.env.ferry().arg("lock").arg(&manifest));
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.env.path().join("release.lock")).unwrap()).unwrap();
    let mut names: Vec<&str> = lock["apt"]["sources"][0]["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["package"].as_str().unwrap())
        .collect();
    names.sort();
    // base is installed; editor-b (installed) satisfies `editor-a | editor-b`; data is only
    // configured, not installed, so it is carried.
    assert_eq!(names, ["app", "data", "libfoo", "postfix-lite", "tool"]);
    assert_eq!(lock["apt"]["excludeInstalled"]["path"], "base.status");

    std::fs::write(&status, "").unwrap();
    let e = fails(f.build(&manifest, "b").arg("--locked"));
    assert!(
        e.contains("apt exclude-installed file base.status changed since the lock"),
        "{e}"
    );
}

/// A keyring file as gpg writes it itself (pubring.gpg format, as distributions ship
/// `ubuntu-archive-keyring.gpg`): the archive key imported with `--keyring gnupg-ring:FILE`
/// and given ultimate ownertrust, so the file carries GnuPG trust packets (tag 12). ferry locks
/// with it as apt and gpgv do: the trust packets are skipped, and trust nothing.
#[test]
fn a_keyring_with_gpg_trust_packets_verifies() {
    let f = Fixture::new();
    let ring = f.env.path().join("trusted-keyring.gpg");
    let home = f.env.path().join("gnupg-ring");
    std::fs::create_dir_all(&home).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let keyring_arg = format!("gnupg-ring:{}", ring.display());
    run(gpg(&home)
        .args([
            "--no-default-keyring",
            "--keyring",
            &keyring_arg,
            "--import",
        ])
        .arg(&f.repo.keyring));
    let fingerprint =
        String::from_utf8(run(gpg(&f.repo.gnupg).args(["--list-keys", "--with-colons"])).stdout)
            .unwrap()
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("no fingerprint");
    let mut import = gpg(&home);
    import
        .args([
            "--no-default-keyring",
            "--keyring",
            &keyring_arg,
            "--import-ownertrust",
        ])
        .stdin(std::process::Stdio::piped());
    let mut child = import.spawn().unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{fingerprint}:6:").unwrap();
    assert!(child.wait().unwrap().success());
    run(gpg(&home).args([
        "--no-default-keyring",
        "--keyring",
        &keyring_arg,
        "--check-trustdb",
    ]));
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "all"])
        .output();
    // gpg wrote trust packets into the file: after the key, the user ID and the signature.
    let packets = String::from_utf8(
        run(Command::new("gpg")
            .env("GNUPGHOME", &home)
            .arg("--list-packets")
            .arg(&ring))
        .stdout,
    )
    .unwrap();
    assert!(
        packets.matches(":trust packet:").count() >= 3,
        "no trust packets in {}:\n{packets}",
        ring.display()
    );
    assert_ne!(
        std::fs::read(&ring).unwrap(),
        std::fs::read(&f.repo.keyring).unwrap()
    );

    let manifest = f.manifest("trusted.yaml", "good", "[tool]", &ring);
    ok(f.env.ferry().arg("lock").arg(&manifest));
    let lock = std::fs::read_to_string(manifest.with_extension("lock")).unwrap();
    assert!(lock.contains("tool"), "{lock}");
    // The same keyring file is what apt's gpgv accepts as it is.
    let inrelease = f.repo.root.join("good/dists/stable/InRelease");
    run(Command::new("gpgv")
        .arg("--keyring")
        .arg(&ring)
        .arg(&inrelease));
}
