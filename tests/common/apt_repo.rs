//! A signed apt repository for the tests: throwaway gpg keys, `dpkg-deb` packages, `Packages`
//! and a clearsigned `InRelease`.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use super::{run, sha256_hex};

/// `gpg` in its own home, batch mode, no passphrase.
pub fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.env("GNUPGHOME", home).args([
        "--batch",
        "--yes",
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
    ]);
    c
}

/// Makes a throwaway signing key in `home` and exports it as a binary keyring.
pub fn gpg_key(home: &Path, name: &str, keyring: &Path) {
    std::fs::create_dir_all(home).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).unwrap();
    run(gpg(home).args([
        "--quick-gen-key",
        &format!("{name} <{name}@ferry.invalid>"),
        "ed25519",
        "sign",
        "0",
    ]));
    run(gpg(home).arg("--export").arg("-o").arg(keyring));
}

/// Gzip, as apt indexes are compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Builds a package with `dpkg-deb` from `control` (and `files`: path in the package, contents)
/// in a directory under `build`, into `repo/pool/main/`; returns its `Packages` stanza.
pub fn build_deb(build: &Path, repo: &Path, control: &str, files: &[(String, String)]) -> String {
    let field = |name: &str| {
        control
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .unwrap_or_else(|| panic!("no {name} in {control}"))
    };
    let (name, version, arch) = (field("Package"), field("Version"), field("Architecture"));
    let dir = build.join(format!("{name}_{version}"));
    std::fs::create_dir_all(dir.join("DEBIAN")).unwrap();
    std::fs::write(dir.join("DEBIAN/control"), control).unwrap();
    for (path, contents) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    let filename = format!("pool/main/{name}_{version}_{arch}.deb");
    let deb = repo.join(&filename);
    std::fs::create_dir_all(deb.parent().unwrap()).unwrap();
    run(Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group", "-Zgzip"])
        .arg(&dir)
        .arg(&deb));
    let bytes = std::fs::read(&deb).unwrap();
    format!(
        "{control}Filename: {filename}\nSize: {}\nSHA256: {}",
        bytes.len(),
        sha256_hex(&bytes)
    )
}

/// A repository at `repo` with one suite `stable`, component `main`, amd64, holding
/// `packages` (name, version); signed by a new key in `gnupg`, exported to `keyring`.
pub fn simple_repo(repo: &Path, gnupg: &Path, keyring: &Path, packages: &[(&str, &str)]) {
    gpg_key(gnupg, "archive", keyring);
    let build = repo.join("../build");
    let mut stanzas = Vec::new();
    for (name, version) in packages {
        let control = format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: ferry tests <tests@ferry.invalid>\nPriority: optional\nSection: misc\nDescription: ferry test package {name}\n"
        );
        stanzas.push(build_deb(&build, repo, &control, &[]));
    }
    let dists = repo.join("dists/stable");
    let list_dir = dists.join("main/binary-amd64");
    std::fs::create_dir_all(&list_dir).unwrap();
    let packages = format!("{}\n", stanzas.join("\n\n"));
    std::fs::write(list_dir.join("Packages"), &packages).unwrap();
    let release = format!(
        "Origin: ferry-tests\nSuite: stable\nCodename: stable\nDate: Mon, 02 Jun 2025 10:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n",
        sha256_hex(packages.as_bytes()),
        packages.len()
    );
    std::fs::write(dists.join("Release"), &release).unwrap();
    run(gpg(gnupg)
        .args(["--digest-algo", "SHA512", "--clearsign", "-o"])
        .arg(dists.join("InRelease"))
        .arg(dists.join("Release")));
}

/// Whom apt-get runs its downloads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AptUser {
    /// Root (`APT::Sandbox::User=root`).
    Root,
    /// Its `_apt` sandbox user, as on site: keyrings and mirrors must be readable by it.
    Sandbox,
}

/// Runs the real apt-get (`update`, then `install --download-only`) with `list` as its only
/// source, in `work`'s own state and cache (no root changes) with an empty status file;
/// asserts it did not complain and returns the names of the .deb files it downloaded.
pub fn apt_get_download(work: &Path, list: &Path, user: AptUser, packages: &[&str]) -> Vec<String> {
    use std::process::Command;
    let parts = work.join("empty.d");
    for d in [
        parts.clone(),
        work.join("state/lists/partial"),
        work.join("cache/archives/partial"),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(work.join("status"), "").unwrap();
    let mut settings = vec![
        ("Dir::Etc::SourceList", list.display().to_string()),
        ("Dir::Etc::SourceParts", parts.display().to_string()),
        (
            "Dir::Etc::Preferences",
            parts.join("none").display().to_string(),
        ),
        ("Dir::Etc::PreferencesParts", parts.display().to_string()),
        ("Dir::Etc::TrustedParts", parts.display().to_string()),
        (
            "Dir::Etc::Trusted",
            parts.join("none.gpg").display().to_string(),
        ),
        ("Dir::State", work.join("state").display().to_string()),
        (
            "Dir::State::status",
            work.join("status").display().to_string(),
        ),
        ("Dir::Cache", work.join("cache").display().to_string()),
        ("Debug::NoLocking", "1".into()),
        ("APT::Architecture", "amd64".into()),
        ("Acquire::Languages", "none".into()),
    ];
    if user == AptUser::Root {
        settings.push(("APT::Sandbox::User", "root".into()));
    }
    let apt_get = || {
        let mut c = Command::new("apt-get");
        for (k, v) in &settings {
            c.arg("-o").arg(format!("{k}={v}"));
        }
        c
    };
    let out = super::util::run(apt_get().arg("update"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("W:") && !text.contains("E:"),
        "apt-get update complained:\n{text}"
    );
    let out = super::util::run(
        apt_get()
            .args([
                "install",
                "-y",
                "--download-only",
                "--no-install-recommends",
            ])
            .args(packages),
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("E:"), "apt-get install complained:\n{text}");
    let mut debs: Vec<String> = std::fs::read_dir(work.join("cache/archives"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".deb"))
        .collect();
    debs.sort();
    debs
}
