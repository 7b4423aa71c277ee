//! End-to-end: release files from an HTTP server the test starts — lock (pinned and from a
//! checksum file), build, verify, `import files` (modes, SHA256SUMS checked with the real
//! `sha256sum -c`, a K3s airgap_dir layout, a second import that skips everything), `/files/`
//! in `ferry serve`; and the bad paths: a wrong checksum, a missing checksum line, a 404, a
//! truncated download, unpinned files, hostile names, tampered bundles.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::ferry::{Env, blob_files, fails, json, ok};
use common::fileserver::{FileServer, http_request};
use common::*;
use serde_json::Value;

/// Where the fake K3s release lives on the test server (`+` percent-encoded, as on GitHub).
const K3S: &str = "/k3s-io/k3s/releases/download/v1.31.4%2Bk3s1";
const CILIUM: &str = "/cilium/cilium-cli/releases/download/v0.16.22/cilium-linux-amd64.tar.gz";
const INSTALL: &str = "/install/";

/// Deterministic bytes that do not compress (xorshift).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A K3s-like release on a test server: the binary, the airgap images, the install script,
/// the release's `sha256sum-amd64.txt`, and a Cilium CLI archive.
struct Release {
    server: FileServer,
    k3s: Vec<u8>,
    images: Vec<u8>,
    script: Vec<u8>,
    cilium: Vec<u8>,
}

impl Release {
    fn start() -> Release {
        let server = FileServer::start();
        let mut k3s = b"\x7fELF\x02\x01\x01".to_vec();
        k3s.extend(noise(1, 3 << 20));
        let images = noise(2, 1 << 20);
        let script = b"#!/bin/sh\n# k3s install script\nexit 0\n".to_vec();
        let cilium = noise(3, 200_000);
        server.put(&format!("{K3S}/k3s"), k3s.clone());
        server.put(
            &format!("{K3S}/k3s-airgap-images-amd64.tar.zst"),
            images.clone(),
        );
        server.put(
            &format!("{K3S}/sha256sum-amd64.txt"),
            format!(
                "{}  k3s\n{}  k3s-airgap-images-amd64.tar.gz\n{}  k3s-airgap-images-amd64.tar.zst\n",
                sha256_hex(&k3s),
                sha256_hex(b"other"),
                sha256_hex(&images)
            ),
        );
        server.put(INSTALL, script.clone());
        server.put(CILIUM, cilium.clone());
        Release {
            server,
            k3s,
            images,
            script,
            cilium,
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// The manifest's `files:` entries for the whole release.
    fn entries(&self) -> String {
        let sums = self.url(&format!("{K3S}/sha256sum-amd64.txt"));
        format!(
            "    - url: {k3s}\n      checksums: {sums}\n      mode: \"0755\"\n\
             \x20   - url: {images}\n      checksums: {sums}\n\
             \x20   - url: {install}\n      sha256: {script}\n      name: install.sh\n      mode: \"0755\"\n\
             \x20   - url: {cilium}\n      sha256: {cilium_sha}\n",
            k3s = self.url(&format!("{K3S}/k3s")),
            images = self.url(&format!("{K3S}/k3s-airgap-images-amd64.tar.zst")),
            install = self.url(INSTALL),
            script = sha256_hex(&self.script),
            cilium = self.url(CILIUM),
            cilium_sha = sha256_hex(&self.cilium),
        )
    }
}

/// A manifest with these `files:` entries (the first entry is on line 6).
fn manifest(entries: &str) -> String {
    format!(
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: platform, version: \"1.0.0\"}}\nspec:\n  files:\n{entries}"
    )
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn sha256sum_check(dir: &Path) {
    let out = run(Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(dir));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("FAILED"), "{text}");
}

fn index_of(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("index.json")).unwrap()).unwrap()
}

fn blob(bundle: &Path, digest: &str) -> Vec<u8> {
    std::fs::read(
        bundle
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
}

/// `ferry serve BUNDLE` on a free loopback port; killed on drop.
struct Served {
    child: Child,
    addr: String,
}

impl Served {
    /// Starts `ferry serve BUNDLE [--key KEY]`; its standard error goes to `serve.log`.
    fn start(env: &Env, bundle: &Path, key: Option<&Path>) -> Served {
        let log = std::fs::File::create(env.path().join("serve.log")).unwrap();
        let mut cmd = env.ferry();
        cmd.arg("serve")
            .arg(bundle)
            .args(["--listen", "127.0.0.1:0"]);
        if let Some(key) = key {
            cmd.arg("--key").arg(key);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Keep reading: a closed pipe would fail the server's next write.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        assert!(line.contains("files under /files/"), "{line}");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| {
                panic!(
                    "ferry serve printed {line:?}; log:\n{}",
                    std::fs::read_to_string(env.path().join("serve.log")).unwrap()
                )
            })
            .to_string();
        Served { child, addr }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn lock_build_verify_import_and_serve_release_files() {
    let release = Release::start();
    let env = Env::new();
    let (key, public) = env.keys();
    let path = env.manifest("platform.yaml", &manifest(&release.entries()));

    // Lock: every file with its sha256 and size; the checksum file is recorded.
    let locked = json(env.ferry().args(["--output", "json", "lock"]).arg(&path));
    let files = locked["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    let k3s = &files[0];
    assert_eq!(k3s["name"], "k3s");
    assert_eq!(k3s["mode"], "0755");
    assert_eq!(k3s["size"], release.k3s.len());
    assert_eq!(k3s["sha256"], sha256_hex(&release.k3s));
    assert_eq!(
        k3s["checksums"],
        release.url(&format!("{K3S}/sha256sum-amd64.txt"))
    );
    assert!(k3s.get("unpinned").is_none());
    assert_eq!(files[1]["name"], "k3s-airgap-images-amd64.tar.zst");
    assert_eq!(files[1]["mode"], "0644");
    assert_eq!(files[1]["sha256"], sha256_hex(&release.images));
    assert_eq!(files[2]["name"], "install.sh");
    assert!(files[2].get("checksums").is_none());
    assert_eq!(files[3]["name"], "cilium-linux-amd64.tar.gz");
    let lock_file: Value =
        serde_json::from_slice(&std::fs::read(env.path().join("platform.lock")).unwrap()).unwrap();
    assert_eq!(&lock_file["files"], &locked["files"]);
    // The checksum file is fetched once for both files that use it.
    assert_eq!(
        release.server.hits(&format!("{K3S}/sha256sum-amd64.txt")),
        1
    );

    // Build: one artifact per file, as DESIGN.md describes.
    let bundle = env.path().join("bundle");
    let built = json(
        env.ferry()
            .args(["--output", "json", "build", "--locked"])
            .arg(&path)
            .arg("-o")
            .arg(&bundle)
            .arg("--key")
            .arg(&key),
    );
    // Four files and the release SBOM, which lists each file with its sha256.
    assert_eq!(built["entries"], 5);
    let index = index_of(&bundle);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[4]["annotations"]["dev.ferry.kind"], "sbom");
    let sbom = common::sbom::checked(&env, &bundle, &public);
    let listed = common::sbom::components(&sbom, "file");
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0]["name"], "k3s");
    assert_eq!(listed[0]["hashes"][0]["content"], sha256_hex(&release.k3s));
    let entry = &entries[0];
    assert_eq!(entry["annotations"]["dev.ferry.kind"], "file");
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        release.url(&format!("{K3S}/k3s"))
    );
    assert_eq!(entry["artifactType"], "application/vnd.ferry.file.v1");
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let artifact: Value =
        serde_json::from_slice(&blob(&bundle, entry["digest"].as_str().unwrap())).unwrap();
    assert_eq!(artifact["artifactType"], "application/vnd.ferry.file.v1");
    assert_eq!(
        artifact["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        blob(&bundle, artifact["config"]["digest"].as_str().unwrap()),
        b"{}"
    );
    let layers = artifact["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/octet-stream");
    assert_eq!(
        layers[0]["annotations"]["org.opencontainers.image.title"],
        "k3s"
    );
    assert_eq!(layers[0]["annotations"]["dev.ferry.file.mode"], "0755");
    assert_eq!(
        blob(&bundle, layers[0]["digest"].as_str().unwrap()),
        release.k3s
    );

    // Same lock, same index.json bytes; a second build into the same bundle downloads nothing.
    let again = env.path().join("again");
    ok(env
        .ferry()
        .args(["build", "--locked"])
        .arg(&path)
        .arg("-o")
        .arg(&again));
    assert_eq!(
        std::fs::read(bundle.join("index.json")).unwrap(),
        std::fs::read(again.join("index.json")).unwrap()
    );
    let k3s_hits = release.server.hits(&format!("{K3S}/k3s"));
    let rebuilt = env
        .ferry()
        .args(["build", "--locked"])
        .arg(&path)
        .arg("-o")
        .arg(&bundle)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(rebuilt.status.success());
    assert!(
        String::from_utf8_lossy(&rebuilt.stderr)
            .contains("files: 0 downloaded (0 B), 4 already present"),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert_eq!(release.server.hits(&format!("{K3S}/k3s")), k3s_hits);

    ok(env
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--key")
        .arg(&public));
    let inspected = ok(env.ferry().arg("inspect").arg(&bundle));
    assert!(
        inspected
            .lines()
            .any(|l| l.starts_with("file ") && l.contains("k3s (0755)")),
        "{inspected}"
    );
    let inspected = json(
        env.ferry()
            .args(["--output", "json", "inspect"])
            .arg(&bundle),
    );
    assert_eq!(inspected["entries"][2]["file"]["name"], "install.sh");
    assert_eq!(
        inspected["entries"][2]["file"]["size"],
        release.script.len()
    );

    // Import: every file with its name and mode, a SHA256SUMS that sha256sum accepts, and the
    // airgap_dir the k3s-ansible airgap role reads.
    let site = env.path().join("site/files");
    let airgap = env.path().join("site/airgap");
    let imported = json(
        env.ferry()
            .args(["--output", "json", "import", "files"])
            .arg(&bundle)
            .arg("--to")
            .arg(&site)
            .arg("--key")
            .arg(&public)
            .arg("--k3s-airgap-dir")
            .arg(&airgap),
    );
    assert_eq!(imported["written"], 4);
    assert_eq!(imported["skipped"], 0);
    assert_eq!(
        dir_names(&site),
        [
            "SHA256SUMS",
            "cilium-linux-amd64.tar.gz",
            "install.sh",
            "k3s",
            "k3s-airgap-images-amd64.tar.zst"
        ]
    );
    assert_eq!(std::fs::read(site.join("k3s")).unwrap(), release.k3s);
    assert_eq!(
        std::fs::read(site.join("install.sh")).unwrap(),
        release.script
    );
    assert_eq!(
        std::fs::read(site.join("cilium-linux-amd64.tar.gz")).unwrap(),
        release.cilium
    );
    assert_eq!(mode_of(&site.join("k3s")), 0o755);
    assert_eq!(mode_of(&site.join("install.sh")), 0o755);
    assert_eq!(mode_of(&site.join("cilium-linux-amd64.tar.gz")), 0o644);
    assert_eq!(
        mode_of(&site.join("k3s-airgap-images-amd64.tar.zst")),
        0o644
    );
    sha256sum_check(&site);
    assert_eq!(mode_of(&site.join("SHA256SUMS")), 0o644);
    assert_eq!(
        std::fs::read_to_string(site.join("SHA256SUMS"))
            .unwrap()
            .lines()
            .count(),
        4
    );

    assert_eq!(
        dir_names(&airgap),
        [
            "SHA256SUMS",
            "k3s",
            "k3s-airgap-images-amd64.tar.zst",
            "k3s-install.sh"
        ]
    );
    assert_eq!(
        std::fs::read(airgap.join("k3s-install.sh")).unwrap(),
        release.script
    );
    assert_eq!(mode_of(&airgap.join("k3s-install.sh")), 0o755);
    assert_eq!(mode_of(&airgap.join("k3s")), 0o755);
    assert_eq!(
        std::fs::read(airgap.join("k3s-airgap-images-amd64.tar.zst")).unwrap(),
        release.images
    );
    sha256sum_check(&airgap);
    assert_eq!(imported["k3s_airgap_dir"]["written"], 3);
    assert_eq!(imported["k3s_arches"], serde_json::json!(["amd64"]));

    // A second import finds everything in place and says so; nothing is rewritten.
    let inode = std::fs::metadata(site.join("k3s")).unwrap().ino();
    let text = ok(env
        .ferry()
        .args(["import", "files"])
        .arg(&bundle)
        .arg("--to")
        .arg(&site)
        .arg("--key")
        .arg(&public)
        .arg("--k3s-airgap-dir")
        .arg(&airgap));
    assert!(
        text.contains(&format!(
            "{}: 0 written (0 B), 4 skipped (already there with the right content)",
            site.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{}: 0 written (0 B), 3 skipped", airgap.display())),
        "{text}"
    );
    assert_eq!(std::fs::metadata(site.join("k3s")).unwrap().ino(), inode);
    sha256sum_check(&site);

    // A damaged file on site is written again; its mode is put back.
    std::fs::write(site.join("install.sh"), b"#!/bin/sh\nrm -rf /\n").unwrap();
    std::fs::set_permissions(site.join("k3s"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let imported = json(
        env.ferry()
            .args(["--output", "json", "import", "files"])
            .arg(&bundle)
            .arg("--to")
            .arg(&site)
            .arg("--key")
            .arg(&public),
    );
    assert_eq!(imported["written"], 1);
    assert_eq!(imported["skipped"], 3);
    assert_eq!(
        std::fs::read(site.join("install.sh")).unwrap(),
        release.script
    );
    assert_eq!(mode_of(&site.join("k3s")), 0o755);
    assert!(
        !dir_names(&site).iter().any(|n| n.starts_with('.')),
        "temporary files left: {:?}",
        dir_names(&site)
    );

    // ferry serve answers /files/ from the bundle.
    let served = Served::start(&env, &bundle, Some(&public));
    let listing = http_request(&served.addr, "GET", "/files/", &[]);
    assert_eq!(listing.status, 200);
    assert_eq!(
        listing.text(),
        "cilium-linux-amd64.tar.gz\ninstall.sh\nk3s\nk3s-airgap-images-amd64.tar.zst\nSHA256SUMS\n"
    );
    let got = http_request(&served.addr, "GET", "/files/k3s", &[]);
    assert_eq!(got.status, 200);
    assert_eq!(
        got.header("content-length"),
        Some(release.k3s.len().to_string().as_str())
    );
    assert_eq!(got.header("content-type"), Some("application/octet-stream"));
    assert!(got.body == release.k3s, "k3s served with other bytes");
    let part = http_request(
        &served.addr,
        "GET",
        "/files/k3s",
        &[("Range", "bytes=1000-1999")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, release.k3s[1000..2000]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 1000-1999/{}", release.k3s.len()).as_str())
    );
    let head = http_request(&served.addr, "HEAD", "/files/install.sh", &[]);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(release.script.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    let sums = http_request(&served.addr, "GET", "/files/SHA256SUMS", &[]);
    assert_eq!(
        sums.text(),
        std::fs::read_to_string(site.join("SHA256SUMS")).unwrap()
    );
    for path in ["/files/nope", "/files/..%2F..%2Foci-layout", "/files/.."] {
        let missing = http_request(&served.addr, "GET", path, &[]);
        assert_eq!(missing.status, 404, "{path}: {}", missing.text());
    }
    assert_eq!(
        http_request(&served.addr, "PUT", "/files/k3s", &[]).status,
        405
    );
    assert_eq!(http_request(&served.addr, "GET", "/v2/", &[]).status, 200);
}

#[test]
fn lock_refuses_a_wrong_checksum_a_missing_checksum_line_and_a_404() {
    let release = Release::start();
    let env = Env::new();
    let k3s_url = release.url(&format!("{K3S}/k3s"));
    let sums = release.url(&format!("{K3S}/sha256sum-amd64.txt"));
    let lock = env.path().join("platform.lock");

    let wrong = sha256_hex(b"not k3s");
    let path = env.manifest(
        "platform.yaml",
        &manifest(&format!("    - url: {k3s_url}\n      sha256: {wrong}\n")),
    );
    let e = fails(env.ferry().arg("lock").arg(&path));
    assert!(
        e.contains("platform.yaml:6:12: cannot lock file k3s"),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "{k3s_url}: the download hashes to sha256:{} ({} bytes) but the manifest's sha256 says sha256:{wrong}",
            sha256_hex(&release.k3s),
            release.k3s.len()
        )),
        "{e}"
    );
    assert!(!lock.exists());

    release
        .server
        .put(&format!("{K3S}/k3s-arm64"), b"arm".to_vec());
    let path = env.manifest(
        "platform.yaml",
        &manifest(&format!(
            "    - url: {}\n      checksums: {sums}\n",
            release.url(&format!("{K3S}/k3s-arm64"))
        )),
    );
    let e = fails(env.ferry().arg("lock").arg(&path));
    assert!(
        e.contains(&format!(
            "checksum file {sums} has no line for \"k3s-arm64\""
        )),
        "{e}"
    );
    assert!(!lock.exists());

    let path = env.manifest(
        "platform.yaml",
        &manifest(&format!(
            "    - url: {}\n      sha256: {wrong}\n",
            release.url("/no/such/file")
        )),
    );
    let e = fails(env.ferry().arg("lock").arg(&path));
    assert!(
        e.contains(&format!(
            "cannot download {}: the server answered HTTP 404",
            release.url("/no/such/file")
        )),
        "{e}"
    );
    // A checksum file that is not there is named as well.
    let path = env.manifest(
        "platform.yaml",
        &manifest(&format!(
            "    - url: {k3s_url}\n      checksums: {}\n",
            release.url("/no/sums.txt")
        )),
    );
    let e = fails(env.ferry().arg("lock").arg(&path));
    assert!(
        e.contains(&format!(
            "cannot download {}: the server answered HTTP 404",
            release.url("/no/sums.txt")
        )),
        "{e}"
    );
    assert!(!lock.exists());
}

/// The hex names of the blobs in a bundle (none when it has no blobs directory yet).
fn blobs(bundle: &Path) -> Vec<String> {
    if bundle.join("blobs/sha256").is_dir() {
        blob_files(bundle)
    } else {
        Vec::new()
    }
}

#[test]
fn build_stores_nothing_when_a_download_is_wrong_404_or_truncated() {
    let release = Release::start();
    let env = Env::new();
    let k3s_path = format!("{K3S}/k3s");
    let sums = release.url(&format!("{K3S}/sha256sum-amd64.txt"));
    let path = env.manifest(
        "platform.yaml",
        &manifest(&format!(
            "    - url: {}\n      checksums: {sums}\n      mode: \"0755\"\n",
            release.url(&k3s_path)
        )),
    );
    ok(env.ferry().arg("lock").arg(&path));
    let good = sha256_hex(&release.k3s);
    let build = |dir: &Path| {
        let mut cmd = env.ferry();
        cmd.args(["build", "--locked"])
            .arg(&path)
            .arg("-o")
            .arg(dir);
        cmd
    };

    // The file changed upstream after locking: the digest check refuses it as it streams.
    let mut changed = release.k3s.clone();
    changed[100] ^= 0xff;
    release.server.put(&k3s_path, changed.clone());
    let bundle = env.path().join("b1");
    let e = fails(&mut build(&bundle));
    assert!(
        e.contains(&format!(
            "the download hashes to sha256:{} ({} bytes) but sha256:{good} was expected; nothing was stored",
            sha256_hex(&changed),
            changed.len()
        )),
        "{e}"
    );
    assert!(e.contains("resume: release file k3s: http://"), "{e}");
    let stored = blobs(&bundle);
    assert!(!stored.contains(&good) && !stored.contains(&sha256_hex(&changed)));
    assert!(!bundle.join("index.json").exists());

    // 404.
    release.server.status(&k3s_path, 404);
    let e = fails(&mut build(&bundle));
    assert!(
        e.contains(&format!(
            "cannot download {}: the server answered HTTP 404",
            release.url(&k3s_path)
        )),
        "{e}"
    );
    assert!(!blobs(&bundle).contains(&good));

    // Truncated under a lying Content-Length: retried, then refused; nothing stored.
    release.server.put(&k3s_path, release.k3s.clone());
    release.server.truncate(&k3s_path, 100_000);
    let before = release.server.hits(&k3s_path);
    let e = fails(&mut build(&bundle));
    assert!(
        e.contains(&format!("cannot download {}", release.url(&k3s_path))),
        "{e}"
    );
    assert!(e.contains("gave up after 5 attempts"), "{e}");
    assert_eq!(release.server.hits(&k3s_path) - before, 5);
    assert!(!blobs(&bundle).contains(&good));
    assert!(!bundle.join("index.json").exists());

    // Once the server is right again, the same command finishes the bundle.
    release.server.put(&k3s_path, release.k3s.clone());
    ok(&mut build(&bundle));
    assert!(blobs(&bundle).contains(&good));
    ok(env.ferry().args(["verify", "--no-signature"]).arg(&bundle));
    assert!(!bundle.join(".ferry-tmp").exists());
}

#[test]
fn unpinned_files_are_refused_unless_allowed() {
    let release = Release::start();
    let env = Env::new();
    let cilium = release.url(CILIUM);
    let path = env.manifest(
        "platform.yaml",
        &manifest(&format!(
            "    - url: {}\n      sha256: {}\n      name: install.sh\n    - url: {cilium}\n",
            release.url(INSTALL),
            sha256_hex(&release.script)
        )),
    );
    // Refused before anything is downloaded, by lock and by build (which would lock).
    let e = fails(env.ferry().arg("lock").arg(&path));
    assert!(
        e.contains(&format!(
            "platform.yaml:9:12: {cilium} has neither sha256 nor checksums"
        )),
        "{e}"
    );
    assert!(e.contains("--allow-unpinned"), "{e}");
    let e = fails(
        env.ferry()
            .arg("build")
            .arg(&path)
            .arg("-o")
            .arg(env.path().join("bundle")),
    );
    assert!(e.contains("has neither sha256 nor checksums"), "{e}");
    assert_eq!(release.server.hits(CILIUM), 0);
    assert_eq!(release.server.hits(INSTALL), 0);

    // Accepted with --allow-unpinned: the lock records the hash seen, marked unpinned.
    let out = env
        .ferry()
        .args(["--output", "json", "lock", "--allow-unpinned"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{cilium} is not pinned")),
        "{stderr}"
    );
    let locked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(locked["files"][1]["unpinned"], true);
    assert_eq!(locked["files"][1]["sha256"], sha256_hex(&release.cilium));
    assert!(locked["files"][0].get("unpinned").is_none());
    let bundle = env.path().join("bundle");
    ok(env
        .ferry()
        .args(["build", "--locked"])
        .arg(&path)
        .arg("-o")
        .arg(&bundle));
    let index = index_of(&bundle);
    // Two files and the release SBOM.
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);
    // `build --allow-unpinned` locks by itself too.
    std::fs::remove_file(env.path().join("platform.lock")).unwrap();
    ok(env
        .ferry()
        .args(["build", "--allow-unpinned"])
        .arg(&path)
        .arg("-o")
        .arg(&bundle));

    // Pinning it in the manifest makes the lock out of date.
    let path = env.manifest(
        "platform.yaml",
        &manifest(&format!(
            "    - url: {}\n      sha256: {}\n      name: install.sh\n    - url: {cilium}\n      sha256: {}\n",
            release.url(INSTALL),
            sha256_hex(&release.script),
            sha256_hex(&release.cilium)
        )),
    );
    let e = fails(
        env.ferry()
            .args(["build", "--locked"])
            .arg(&path)
            .arg("-o")
            .arg(&bundle),
    );
    assert!(
        e.contains(&format!(
            "file {cilium} is pinned by unpinned in the lock but by sha256 {} in the manifest",
            sha256_hex(&release.cilium)
        )),
        "{e}"
    );
}

/// Copies a bundle directory.
fn copy_dir(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to));
}

/// Imports `bundle` into `env/site` with extra flags; expects failure and that nothing was
/// written. Returns the error output.
fn import_fails(env: &Env, bundle: &Path, flags: &[&str]) -> String {
    let site = env.path().join("site");
    let e = fails(
        env.ferry()
            .args(["import", "files"])
            .arg(bundle)
            .arg("--to")
            .arg(&site)
            .args(flags),
    );
    assert!(!site.exists(), "{} was created", site.display());
    e
}

#[test]
fn hostile_names_tampered_bundles_and_incomplete_layouts_are_refused() {
    let release = Release::start();
    let env = Env::new();
    let (key, public) = env.keys();
    let public_s = public.display().to_string();

    // In the manifest: a name given, or one taken from the URL, that leaves the directory.
    let k3s_url = release.url(&format!("{K3S}/k3s"));
    let sha = sha256_hex(&release.k3s);
    for (entry, expected) in [
        (
            format!("    - url: {k3s_url}\n      sha256: {sha}\n      name: ../x\n"),
            "platform.yaml:8:13: invalid name \"../x\": it contains a path separator",
        ),
        (
            format!("    - url: {k3s_url}\n      sha256: {sha}\n      name: /etc/x\n"),
            "platform.yaml:8:13: invalid name \"/etc/x\": it contains a path separator",
        ),
        (
            format!(
                "    - url: {}\n      sha256: {sha}\n",
                release.url("/a/..%2F..%2Fetc%2Fcron.d%2Fx")
            ),
            "platform.yaml:6:12: the URL's last segment \"../../etc/cron.d/x\" cannot be the file's name",
        ),
    ] {
        let path = env.manifest("hostile.yaml", &manifest(&entry));
        let e = fails(env.ferry().arg("lock").arg(&path));
        assert!(
            e.contains(&expected.replace("platform.yaml", "hostile.yaml")),
            "{e}"
        );
    }
    assert_eq!(release.server.hits(&format!("{K3S}/k3s")), 0);

    // A good, signed bundle of the whole release.
    let path = env.manifest("platform.yaml", &manifest(&release.entries()));
    let bundle = env.path().join("bundle");
    ok(env
        .ferry()
        .arg("build")
        .arg(&path)
        .arg("-o")
        .arg(&bundle)
        .arg("--key")
        .arg(&key));
    let index = index_of(&bundle);
    let k3s_entry = index["manifests"][0].clone();
    let artifact: Value =
        serde_json::from_slice(&blob(&bundle, k3s_entry["digest"].as_str().unwrap())).unwrap();
    let k3s_blob = artifact["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // A file's content changed in the bundle: verification fails, nothing is written.
    let tampered = env.path().join("tampered");
    copy_dir(&bundle, &tampered);
    let blob_path = tampered
        .join("blobs/sha256")
        .join(k3s_blob.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&blob_path).unwrap();
    bytes[5000] ^= 1;
    std::fs::write(&blob_path, bytes).unwrap();
    let e = import_fails(&env, &tampered, &["--key", &public_s]);
    assert!(e.contains(&format!("{k3s_blob} corrupt")), "{e}");
    assert!(e.contains("nothing was imported"), "{e}");

    // index.json changed after signing: the signature check fails, nothing is written.
    let resigned = env.path().join("reindexed");
    copy_dir(&bundle, &resigned);
    let mut text = std::fs::read_to_string(resigned.join("index.json")).unwrap();
    text.push('\n');
    std::fs::write(resigned.join("index.json"), text).unwrap();
    let e = import_fails(&env, &resigned, &["--key", &public_s]);
    assert!(e.contains("signature check failed"), "{e}");

    // A bundle whose file artifact names "../escape" (consistent digests, no signature):
    // refused on import, with nothing written anywhere.
    let hostile = env.path().join("hostile");
    copy_dir(&bundle, &hostile);
    let mut evil = artifact.clone();
    evil["layers"][0]["annotations"]["org.opencontainers.image.title"] =
        Value::String("../escape".into());
    let evil_bytes = serde_json::to_vec(&evil).unwrap();
    let evil_digest = digest_bytes(&evil_bytes);
    std::fs::write(
        hostile
            .join("blobs/sha256")
            .join(evil_digest.trim_start_matches("sha256:")),
        &evil_bytes,
    )
    .unwrap();
    let mut index = index_of(&hostile);
    index["manifests"][0]["digest"] = Value::String(evil_digest.clone());
    index["manifests"][0]["size"] = Value::from(evil_bytes.len());
    std::fs::write(
        hostile.join("index.json"),
        serde_json::to_vec_pretty(&index).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(hostile.join("index.json.sig")).unwrap();
    let e = import_fails(&env, &hostile, &["--no-signature"]);
    assert!(
        e.contains("refusing the name \"../escape\" the bundle gives it"),
        "{e}"
    );
    assert!(!env.path().join("escape").exists());
    // ferry serve leaves it out of /files/ as well, with a note.
    let served = Served::start(&env, &hostile, None);
    let listing = http_request(&served.addr, "GET", "/files/", &[]);
    assert_eq!(
        listing.text(),
        "cilium-linux-amd64.tar.gz\ninstall.sh\nk3s-airgap-images-amd64.tar.zst\nSHA256SUMS\n"
    );
    assert_eq!(
        http_request(&served.addr, "GET", "/files/..%2Fescape", &[]).status,
        404
    );
    drop(served);
    let log = std::fs::read_to_string(env.path().join("serve.log")).unwrap();
    assert!(
        log.contains("not served under /files/: file ")
            && log.contains("refusing the name \"../escape\""),
        "{log}"
    );

    // A bundle without the install script and images cannot make an airgap_dir: the missing
    // pieces are named, and nothing is written (not even --to).
    let partial = env.manifest(
        "partial.yaml",
        &manifest(&format!(
            "    - url: {k3s_url}\n      sha256: {sha}\n      mode: \"0755\"\n"
        )),
    );
    let small = env.path().join("small");
    ok(env
        .ferry()
        .arg("build")
        .arg(&partial)
        .arg("-o")
        .arg(&small)
        .arg("--key")
        .arg(&key));
    let airgap = env.path().join("airgap");
    let e = import_fails(
        &env,
        &small,
        &[
            "--key",
            &public_s,
            "--k3s-airgap-dir",
            airgap.to_str().unwrap(),
        ],
    );
    assert!(
        e.contains("the bundle lacks what k3s-ansible's airgap_dir needs"),
        "{e}"
    );
    assert!(
        e.contains("  - k3s-install.sh: carry https://get.k3s.io/"),
        "{e}"
    );
    assert!(
        e.contains("  - the K3s airgap images: k3s-airgap-images-<arch>.tar.zst"),
        "{e}"
    );
    assert!(!airgap.exists());
    // Without a key, import refuses to start at all.
    let out = env
        .ferry()
        .args(["import", "files"])
        .arg(&small)
        .arg("--to")
        .arg(env.path().join("site"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.path().join("site").exists());
}

#[test]
fn a_delta_of_files_imports_only_on_top_of_its_base() {
    let release = Release::start();
    let env = Env::new();
    let (key, public) = env.keys();
    // Release 1: K3s alone. Release 2: the same K3s and the Cilium CLI, as a delta of 1.
    let sums = release.url(&format!("{K3S}/sha256sum-amd64.txt"));
    let k3s_entry = format!(
        "    - url: {}\n      checksums: {sums}\n      mode: \"0755\"\n",
        release.url(&format!("{K3S}/k3s"))
    );
    let cilium_entry = format!(
        "    - url: {}\n      sha256: {}\n",
        release.url(CILIUM),
        sha256_hex(&release.cilium)
    );
    let one = env.manifest("one.yaml", &manifest(&k3s_entry));
    let two = env.manifest("two.yaml", &manifest(&format!("{k3s_entry}{cilium_entry}")));
    let (b1, b2) = (env.path().join("b1"), env.path().join("b2"));
    ok(env
        .ferry()
        .arg("build")
        .arg(&one)
        .arg("-o")
        .arg(&b1)
        .arg("--key")
        .arg(&key));
    let built = json(
        env.ferry()
            .args(["--output", "json", "build"])
            .arg(&two)
            .arg("-o")
            .arg(&b2)
            .arg("--key")
            .arg(&key)
            .arg("--since")
            .arg(&b1),
    );
    assert_eq!(built["omitted_blobs"], 1, "{built}");

    // Into an empty directory the delta is refused, naming the file, and nothing is written.
    let site = env.path().join("site");
    let err = fails(
        env.ferry()
            .args(["import", "files"])
            .arg(&b2)
            .arg("--to")
            .arg(&site)
            .arg("--key")
            .arg(&public),
    );
    assert!(err.contains("base release") && err.contains("k3s"), "{err}");
    assert!(!site.join("cilium-linux-amd64.tar.gz").exists());

    // On top of release 1 it completes; release 1 comes from packed volumes (K3s, 3 MiB, is
    // split into chunks across them), read in place.
    let usb = env.path().join("usb");
    ok(env
        .ferry()
        .arg("pack")
        .arg(&b1)
        .arg("-o")
        .arg(usb.join("r1"))
        .args(["--volume-size", "1M"]));
    let first = usb.join("r1.001.tar");
    for bundle in [&first, &b2] {
        ok(env
            .ferry()
            .args(["import", "files"])
            .arg(bundle)
            .arg("--to")
            .arg(&site)
            .arg("--key")
            .arg(&public));
    }
    assert_eq!(std::fs::read(site.join("k3s")).unwrap(), release.k3s);
    assert_eq!(
        std::fs::read(site.join("cilium-linux-amd64.tar.gz")).unwrap(),
        release.cilium
    );
}
