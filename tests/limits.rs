//! Hostile servers that never stop sending: an endless chart repository `index.yaml`, an
//! endless apt `InRelease`, an endless image manifest, an endless token answer. `ferry lock`
//! must stop reading at its limit, say which limit it hit, and keep its memory bounded (peak
//! RSS well below what the server sent).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use common::ferry::Env;

/// What the hostile server sends past its first bytes, until the client hangs up or `CAP`.
const CAP: u64 = 1 << 30;

/// A server answering every request by its path; endless answers stream filler after their
/// prefix until the client hangs up (or [`CAP`] bytes).
struct Hostile {
    addr: String,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
}

/// One route: path prefix, status line, headers, body prefix, and whether the body never ends.
type Route = (
    &'static str,
    &'static str,
    String,
    Vec<u8>,
    Option<&'static [u8]>,
);

impl Hostile {
    /// Starts the server with the routes `routes(its address)` gives.
    fn start(routes: impl FnOnce(&str) -> Vec<Route>) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let routes = routes(&addr);
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let routes = Arc::new(routes);
        let (flag, counter) = (stop.clone(), sent.clone());
        thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (routes, counter) = (routes.clone(), counter.clone());
                        thread::spawn(move || {
                            let _ = serve(stream, &routes, &counter);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hostile { addr, stop, sent }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut stream: TcpStream, routes: &[Route], sent: &AtomicU64) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or("/");
    let Some((_, status, headers, prefix, filler)) =
        routes.iter().find(|(p, ..)| path.starts_with(p))
    else {
        stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    };
    let length = match filler {
        Some(_) => String::new(),
        None => format!("Content-Length: {}\r\n", prefix.len()),
    };
    stream.write_all(
        format!("HTTP/1.1 {status}\r\n{headers}{length}Connection: close\r\n\r\n").as_bytes(),
    )?;
    stream.write_all(prefix)?;
    if let Some(filler) = filler {
        let chunk: Vec<u8> = filler.iter().copied().cycle().take(64 * 1024).collect();
        let mut total = 0u64;
        while total < CAP {
            stream.write_all(&chunk)?;
            total += chunk.len() as u64;
            sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Runs `ferry lock` on `manifest`; returns (exit success, stderr, peak RSS in MiB).
fn lock(env: &Env, manifest: &std::path::Path) -> (bool, String, u64) {
    let mut cmd = env.ferry();
    cmd.arg("lock")
        .arg(manifest)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    // Reaped by wait4 below, which also gives the peak RSS.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, stderr, usage.ru_maxrss as u64 / 1024)
}

/// The release manifest header with `spec` below it.
fn manifest(env: &Env, spec: &str) -> std::path::PathBuf {
    env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: t, version: \"1\"}}\nspec:\n{spec}"
        ),
    )
}

/// Asserts the lock failed, naming `limit`, with peak memory below `max_mib`, and that the
/// server sent more than the limit (so the limit, not the server, ended it).
fn assert_limited(what: &str, result: (bool, String, u64), limit: &str, max_mib: u64) {
    let (ok, stderr, rss) = result;
    assert!(!ok, "{what}: lock succeeded");
    assert!(
        stderr.contains(limit),
        "{what}: the error does not name the limit ({limit}):\n{stderr}"
    );
    assert!(
        rss < max_mib,
        "{what}: peak RSS {rss} MiB, more than {max_mib} MiB"
    );
    eprintln!("{what}: stopped at the limit, peak RSS {rss} MiB");
}

#[test]
fn an_endless_chart_index_stops_at_its_limit() {
    let server = Hostile::start(|_| {
        vec![(
            "/charts/index.yaml",
            "200 OK",
            "Content-Type: text/yaml\r\n".into(),
            b"apiVersion: v1\nentries:\n".to_vec(),
            Some(b"# filler filler filler filler filler filler filler filler\n"),
        )]
    });
    let env = Env::new();
    let m = manifest(
        &env,
        &format!(
            "  charts:\n    - {{name: web, repo: \"http://{}/charts\", version: 1.0.0}}\n",
            server.addr
        ),
    );
    assert_limited("index.yaml", lock(&env, &m), "67108864", 400);
    assert!(server.sent.load(Ordering::Relaxed) > 64 << 20);
}

#[test]
fn an_endless_image_manifest_stops_at_its_limit() {
    let server = Hostile::start(|_| {
        vec![
        ("/v2/app/web/manifests/", "200 OK", "Content-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: sha256:0000000000000000000000000000000000000000000000000000000000000000\r\n".into(), b"{\"schemaVersion\":2,\"layers\":[".to_vec(), Some(b"{\"a\":1},")),
        ("/v2/", "200 OK", "Content-Type: application/json\r\n".into(), b"{}".to_vec(), None),
    ]
    });
    let env = Env::new();
    let m = manifest(
        &env,
        &format!("  images:\n    - {}/app/web:1\n", server.addr),
    );
    assert_limited("manifest", lock(&env, &m), "4 MiB", 200);
}

#[test]
fn an_endless_token_answer_stops_at_its_limit() {
    let server = Hostile::start(|addr| {
        vec![
            (
                "/token",
                "200 OK",
                "Content-Type: application/json\r\n".into(),
                b"{\"token\":\"".to_vec(),
                Some(b"abcdefghijklmnopqrstuvwxyz0123456789"),
            ),
            (
                "/v2/",
                "401 Unauthorized",
                format!(
                    "Content-Type: application/json\r\nWWW-Authenticate: Bearer realm=\"http://{addr}/token\",service=\"hostile\"\r\n"
                ),
                b"{}".to_vec(),
                None,
            ),
        ]
    });
    let env = Env::new();
    let m = manifest(
        &env,
        &format!("  images:\n    - {}/app/web:1\n", server.addr),
    );
    assert_limited(
        "token",
        lock(&env, &m),
        "1024 KiB, the limit for a token answer",
        200,
    );
}

/// A manifest asking for one apt package from the repository at `url`, trusting `keyring`.
fn apt_manifest(env: &Env, url: &str, keyring: &std::path::Path) -> std::path::PathBuf {
    manifest(
        env,
        &format!(
            "  apt:\n    sources:\n      - url: {url}\n        suites: [stable]\n        components: [main]\n        architectures: [amd64]\n        keyring: {}\n    packages: [hello]\n",
            keyring.display()
        ),
    )
}

/// A clearsigned `InRelease` for `dists/stable` listing `entries` (SHA256 line bodies:
/// "HASH SIZE PATH"), signed by a new key whose keyring is written to `keyring`.
fn signed_in_release(env: &Env, keyring: &std::path::Path, entries: &[String]) -> Vec<u8> {
    let gnupg = env.path().join("gnupg");
    common::apt_repo::gpg_key(&gnupg, "archive", keyring);
    let release = env.path().join("Release");
    let mut text = String::from(
        "Origin: hostile\nSuite: stable\nCodename: stable\nDate: Mon, 02 Jun 2025 10:00:00 UTC\nArchitectures: amd64\nComponents: main bomb\nSHA256:\n",
    );
    for entry in entries {
        text.push_str(&format!(" {entry}\n"));
    }
    std::fs::write(&release, text).unwrap();
    let signed = env.path().join("InRelease");
    common::run(
        common::apt_repo::gpg(&gnupg)
            .args(["--digest-algo", "SHA512", "--clearsign", "-o"])
            .arg(&signed)
            .arg(&release),
    );
    std::fs::read(signed).unwrap()
}

#[test]
fn an_endless_apt_in_release_stops_at_its_limit() {
    let server = Hostile::start(|_| {
        vec![(
            "/debian/dists/stable/InRelease",
            "200 OK",
            "Content-Type: text/plain\r\n".into(),
            b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: hostile\n".to_vec(),
            Some(b"Description: filler filler filler filler filler filler\n"),
        )]
    });
    let env = Env::new();
    let keyring = env.path().join("archive.gpg");
    common::apt_repo::gpg_key(&env.path().join("gnupg"), "archive", &keyring);
    let url = format!("http://{}/debian", server.addr);
    let m = apt_manifest(&env, &url, &keyring);
    let result = lock(&env, &m);
    assert!(
        result.1.contains(&format!("{url}/dists/stable/InRelease")),
        "the error does not name the URL:\n{}",
        result.1
    );
    assert_limited(
        "InRelease",
        result,
        "larger than 32 MiB, the limit for an apt InRelease / Release",
        200,
    );
    assert!(server.sent.load(Ordering::Relaxed) > 32 << 20);
}

#[test]
fn an_endless_apt_packages_index_stops_at_its_limit() {
    let env = Env::new();
    let keyring = env.path().join("archive.gpg");
    // An index that never ends where the signed Release gives it 1 MiB; and a small gzip that
    // unpacks to more than the 256 MiB limit, listed with its true size and hash.
    let bomb = {
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                "yes 'Description: filler filler filler filler' | head -c 300M | gzip -1",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    let in_release = signed_in_release(
        &env,
        &keyring,
        &[
            format!("{} 1048576 main/binary-amd64/Packages.gz", "0".repeat(64)),
            format!(
                "{} {} bomb/binary-amd64/Packages.gz",
                common::sha256_hex(&bomb),
                bomb.len()
            ),
        ],
    );
    let in_release_bomb = in_release.clone();
    let server = Hostile::start(move |_| {
        vec![
            (
                "/endless/dists/stable/InRelease",
                "200 OK",
                "Content-Type: text/plain\r\n".into(),
                in_release,
                None,
            ),
            (
                "/endless/dists/stable/main/binary-amd64/Packages.gz",
                "200 OK",
                "Content-Type: application/gzip\r\n".into(),
                b"\x1f\x8b\x08\x00".to_vec(),
                Some(b"\x00\x01\x02\x03\x04\x05\x06\x07"),
            ),
            (
                "/bomb/dists/stable/InRelease",
                "200 OK",
                "Content-Type: text/plain\r\n".into(),
                in_release_bomb,
                None,
            ),
            (
                "/bomb/dists/stable/bomb/binary-amd64/Packages.gz",
                "200 OK",
                "Content-Type: application/gzip\r\n".into(),
                bomb,
                None,
            ),
        ]
    });

    // The download stops at the size the signed Release gives.
    let url = format!("http://{}/endless", server.addr);
    let result = lock(&env, &apt_manifest(&env, &url, &keyring));
    assert!(
        result
            .1
            .contains(&format!("{url}/dists/stable/main/binary-amd64/Packages.gz")),
        "the error does not name the URL:\n{}",
        result.1
    );
    assert_limited(
        "endless Packages.gz",
        result,
        "larger than the 1048576 bytes Release states",
        200,
    );

    // Decompression stops at the limit.
    let url = format!("http://{}/bomb", server.addr);
    let m = env.manifest(
        "bomb.yaml",
        &std::fs::read_to_string(apt_manifest(&env, &url, &keyring))
            .unwrap()
            .replace("components: [main]", "components: [bomb]"),
    );
    let result = lock(&env, &m);
    assert!(
        result
            .1
            .contains(&format!("{url}/dists/stable/bomb/binary-amd64/Packages.gz")),
        "the error does not name the URL:\n{}",
        result.1
    );
    assert_limited(
        "Packages.gz unpacking past the limit",
        result,
        "decompressed, it is larger than 256 MiB, the limit for an apt Packages index",
        450,
    );
}
