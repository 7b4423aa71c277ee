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
