//! The upstream side of a whole release, as the site tests (modes, site, kill trials) use it:
//! a chart repository with `web` 1.0.0, K3s-like release files and a signed apt repository,
//! served over HTTP, and the manifest lines that take them.

use std::io::Write;
use std::path::Path;

use super::apt_repo::simple_repo;
use super::ferry::Env;
use super::static_server::StaticServer;
use super::util::sha256_hex;

/// A chart archive: `<name>/Chart.yaml` in a gzipped tar.
pub fn chart_tgz(name: &str, version: &str) -> Vec<u8> {
    let chart = format!("apiVersion: v2\nname: {name}\nversion: {version}\ntype: application\n");
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(chart.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(1_700_000_000);
    header.set_cksum();
    tar.append_data(&mut header, format!("{name}/Chart.yaml"), chart.as_bytes())
        .unwrap();
    let bytes = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    gz.finish().unwrap()
}

/// Writes the upstream content under `env`'s `upstream/` (the release file `k3s` holding
/// `k3s`), serves it, and returns the server and the manifest's `charts`, `files` and `apt`
/// lines (indented for `spec:`).
pub fn serve_release(env: &Env, k3s: &[u8]) -> (StaticServer, String) {
    let up = env.path().join("upstream");
    std::fs::create_dir_all(up.join("charts")).unwrap();
    std::fs::create_dir_all(up.join("files")).unwrap();
    let tgz = chart_tgz("web", "1.0.0");
    std::fs::write(up.join("charts/web-1.0.0.tgz"), &tgz).unwrap();
    std::fs::write(
        up.join("charts/index.yaml"),
        format!(
            "apiVersion: v1\nentries:\n  web:\n  - apiVersion: v2\n    name: web\n    version: 1.0.0\n    created: \"2025-01-01T00:00:00Z\"\n    digest: {}\n    urls: [web-1.0.0.tgz]\ngenerated: \"2025-01-01T00:00:00Z\"\n",
            sha256_hex(&tgz)
        ),
    )
    .unwrap();
    let images = (0..100_000u32)
        .map(|i| (i * 13 % 253) as u8)
        .collect::<Vec<u8>>();
    let script = b"#!/bin/sh\nexit 0\n".to_vec();
    let release = up.join("files/k3s-io/k3s/releases/download/v1.31.4-k3s1");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::write(release.join("k3s"), k3s).unwrap();
    std::fs::write(up.join("files/k3s-airgap-images-amd64.tar.zst"), &images).unwrap();
    std::fs::write(up.join("files/install.sh"), &script).unwrap();
    let keyring = env.path().join("archive-keyring.gpg");
    simple_repo(
        &up.join("apt"),
        &env.path().join("gnupg"),
        &keyring,
        &[("hello", "1.0"), ("world", "2.0")],
    );
    let http = StaticServer::start(&up);
    let url = http.url();
    let lines = format!(
        "  charts:\n    - {{name: web, repo: \"{url}/charts\", version: 1.0.0}}\n  files:\n    - url: {url}/files/k3s-io/k3s/releases/download/v1.31.4-k3s1/k3s\n      sha256: {k3s_sha}\n      mode: \"0755\"\n    - url: {url}/files/k3s-airgap-images-amd64.tar.zst\n      sha256: {images_sha}\n    - url: {url}/files/install.sh\n      sha256: {script_sha}\n      mode: \"0755\"\n  apt:\n    sources:\n      - url: {url}/apt\n        suites: [stable]\n        components: [main]\n        architectures: [amd64]\n        keyring: {keyring}\n    packages: [hello, world]\n",
        k3s_sha = sha256_hex(k3s),
        images_sha = sha256_hex(&images),
        script_sha = sha256_hex(&script),
        keyring = keyring.display(),
    );
    (http, lines)
}
