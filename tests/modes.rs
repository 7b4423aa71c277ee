//! What ferry writes is readable by whoever uses it, and a killed run leaves no stray file.
//!
//! One release (images, a chart, K3s-like files, apt packages) goes through keys, build, pack,
//! unpack and `import --site` under umask 022, 027 and 077; every file and directory ferry
//! wrote must have exactly the mode the umask gives (secrets 0600 whatever it is). Under 022
//! the results are then used as on site, by users other than root: nginx with its workers as
//! `www-data` serves the chart repository, the apt mirror, the files directory and the bundle
//! (`helm pull` through the Helm SDK and curl fetch through it); apt-get updates and downloads
//! from the mirror with its default sandbox (`_apt`), the keyring copied with plain `cp`; and
//! `nobody` reads the bundle with skopeo and `ferry verify`.
//!
//! Then every step (lock, build, pack, unpack, import files, charts, apt, the rendered site
//! files of `import --site`) is killed with SIGKILL right before each of its renames in turn
//! (the `FERRY_FAULT_BEFORE_RENAME` test hook) and run again: the result must hold exactly the
//! files of an uninterrupted run, and no temporary file may be left anywhere.
//!
//! The temp dirs the servers and `_apt`, `www-data` and `nobody` read are made 0755: tempfile
//! makes them 0700, which no other user can traverse (a site's /srv is 0755).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::ferry::{Env, ok};
use common::helm::HelmSdk;
use common::nginx::Nginx;
use common::static_server::StaticServer;
use common::upstream;
use common::{Registry, push, run, run_unchecked, sha256_hex, standard_layout};

/// Names of the files ferry must write with their declared mode 0755.
/// Executables: release files declared 0755, and the ferry binary pack puts on the stick.
const EXECUTABLES: [&str; 4] = ["k3s", "install.sh", "k3s-install.sh", "ferry"];
/// Names of the secrets among what ferry writes (always 0600).
const SECRETS: [&str; 2] = ["cosign.key", "ferry-apt-secret.asc"];

/// Upstream servers and a release manifest naming images, a chart, files and apt packages.
struct Fixture {
    env: Env,
    _source: Registry,
    _http: StaticServer,
    manifest: PathBuf,
}

fn fixture() -> Fixture {
    let env = Env::new();
    // Other users (nginx's workers, _apt, nobody) must traverse it; tempfile makes it 0700.
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let source = Registry::start_plain();
    let layout = standard_layout();
    push(&layout.dir, "web", &source, "app/web:1");

    let mut k3s = b"\x7fELF\x02\x01\x01".to_vec();
    k3s.extend((0..200_000u32).map(|i| (i * 7 % 251) as u8));
    let (http, upstream) = upstream::serve_release(&env, &k3s);
    let addr = source.addr();
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: platform, version: \"1\"}}\nspec:\n  images:\n    - {addr}/app/web:1\n{upstream}"
        ),
    );
    Fixture {
        env,
        _source: source,
        _http: http,
        manifest,
    }
}

/// `ferry` run with this umask (set in the child before exec, as a shell's `umask` would).
fn ferry(env: &Env, umask: u32) -> Command {
    let mut cmd = env.ferry();
    // SAFETY: umask(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(umask as libc::mode_t);
            Ok(())
        });
    }
    cmd
}

/// What one run of the whole flow wrote, relative to the fixture's directory.
const OUTPUTS: [&str; 8] = [
    "keys",
    "bundle",
    "usb",
    "unpacked",
    "site/mirror",
    "site/airgap",
    "site/ferry-site",
    "release.lock",
];

/// Keys, lock + build (signed), pack into volumes, unpack, and `import --site` into an apt
/// mirror, a chart repository, a files directory and a K3s airgap directory; all with `umask`.
/// `mirror_url` is where the site's web server serves `site/mirror`.
fn release_and_site(f: &Fixture, umask: u32, mirror_url: &str) {
    let env = &f.env;
    let keys = env.path().join("keys");
    ok(ferry(env, umask)
        .args(["key", "generate", "--output-dir"])
        .arg(&keys));
    ok(ferry(env, umask)
        .args(["key", "generate", "--apt", "--output-dir"])
        .arg(&keys));
    let bundle = env.path().join("bundle");
    ok(ferry(env, umask)
        .arg("build")
        .arg(&f.manifest)
        .arg("-o")
        .arg(&bundle)
        .arg("--key")
        .arg(keys.join("cosign.key")));
    ok(ferry(env, umask)
        .arg("pack")
        .arg(&bundle)
        .arg("-o")
        .arg(env.path().join("usb/bundle"))
        .args(["--volume-size", "300K"]));
    let volumes = volumes(&env.path().join("usb"));
    assert!(volumes.len() > 1, "{volumes:?}");
    ok(ferry(env, umask)
        .arg("unpack")
        .args(&volumes)
        .arg("-o")
        .arg(env.path().join("unpacked")));
    let site = env.path().join("site/site.yaml");
    std::fs::create_dir_all(site.parent().unwrap()).unwrap();
    std::fs::set_permissions(
        site.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        &site,
        format!(
            "apiVersion: ferry.dev/v1\nkind: Site\nmetadata:\n  name: plant-a\nspec:\n  apt:\n    dir: mirror/apt\n    signingKey: ../keys/ferry-apt-secret.asc\n    suite: ferry\n    url: {mirror_url}/apt\n  charts:\n    dir: mirror/charts\n    baseUrl: {mirror_url}/charts\n  files:\n    dir: mirror/files\n    k3sAirgapDir: airgap\n"
        ),
    )
    .unwrap();
    ok(ferry(env, umask)
        .arg("import")
        .arg(env.path().join("unpacked"))
        .arg("--site")
        .arg(&site)
        .arg("--key")
        .arg(keys.join("cosign.pub")));
}

/// The volumes in `dir`, sorted.
fn volumes(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    v.sort();
    v
}

/// Every path under `root` (itself included) with its permission bits and whether it is a
/// directory.
fn modes(root: &Path) -> BTreeMap<PathBuf, (u32, bool)> {
    let mut out = BTreeMap::new();
    fn walk(path: &Path, out: &mut BTreeMap<PathBuf, (u32, bool)>) {
        let m = std::fs::symlink_metadata(path).unwrap();
        out.insert(
            path.to_path_buf(),
            (m.permissions().mode() & 0o7777, m.is_dir()),
        );
        if m.is_dir() {
            for e in std::fs::read_dir(path).unwrap() {
                walk(&e.unwrap().path(), out);
            }
        }
    }
    walk(root, &mut out);
    out
}

/// Asserts every file and directory the flow wrote has exactly the mode `umask` gives it.
fn assert_modes(base: &Path, umask: u32) {
    let mut wrong = Vec::new();
    let mut counted = 0;
    for output in OUTPUTS {
        for (path, (mode, dir)) in modes(&base.join(output)) {
            let name = path.file_name().unwrap().to_str().unwrap();
            let want = if dir {
                0o777 & !umask
            } else if SECRETS.contains(&name) {
                0o600
            } else if EXECUTABLES.contains(&name) {
                0o755 & !umask
            } else {
                0o666 & !umask
            };
            counted += 1;
            if mode != want || name.contains(".ferry-tmp") {
                wrong.push(format!(
                    "{:04o} (want {want:04o}) {}",
                    mode,
                    path.strip_prefix(base).unwrap().display()
                ));
            }
        }
    }
    assert!(counted > 60, "only {counted} paths were checked");
    assert!(
        wrong.is_empty(),
        "umask {umask:03o}: {} of {counted} paths have other modes:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The first image reference the bundle's index names.
fn image_ref(bundle: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["annotations"]["dev.ferry.kind"] == "image")
        .find_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .expect("an image entry")
        .to_string()
}

#[test]
fn at_umask_022_www_data_apt_and_nobody_read_what_ferry_wrote() {
    let f = fixture();
    let base = f.env.path();
    let nginx = Nginx::serve(base);
    release_and_site(&f, 0o022, &format!("{}/site/mirror", nginx.url()));
    assert_modes(base, 0o022);
    for (secret, public) in [
        ("keys/cosign.key", "keys/cosign.pub"),
        ("keys/ferry-apt-secret.asc", "keys/ferry-apt-public.asc"),
    ] {
        let mode = |p: &str| {
            std::fs::metadata(base.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!((mode(secret), mode(public)), (0o600, 0o644));
    }

    // nginx, its workers as www-data: the bundle, the volumes, the mirrors, the site files.
    let index = std::fs::read(base.join("bundle/index.json")).unwrap();
    assert_eq!(nginx.get("/bundle/index.json"), index);
    let manifest: serde_json::Value = serde_json::from_slice(&index).unwrap();
    for m in manifest["manifests"].as_array().unwrap() {
        let hex = m["digest"].as_str().unwrap().trim_start_matches("sha256:");
        assert_eq!(
            sha256_hex(&nginx.get(&format!("/bundle/blobs/sha256/{hex}"))),
            hex
        );
    }
    for path in [
        "bundle/oci-layout",
        "bundle/index.json.sig",
        "usb/SHA256SUMS",
        "usb/bundle.001.tar",
        "release.lock",
        "keys/cosign.pub",
        "site/mirror/files/SHA256SUMS",
        "site/mirror/files/k3s",
        "site/airgap/k3s-install.sh",
        "site/mirror/charts/index.yaml",
        "site/mirror/charts/web-1.0.0.tgz",
        "site/mirror/apt/ferry-apt.gpg",
        "site/mirror/apt/dists/ferry/InRelease",
        "site/ferry-site/ferry-apt.gpg",
        "site/ferry-site/ferry.sources",
        "site/ferry-site/ansible-vars.yaml",
        "site/ferry-site/site.json",
    ] {
        assert_eq!(
            nginx.get(&format!("/{path}")),
            std::fs::read(base.join(path)).unwrap(),
            "{path}"
        );
    }
    // A secret is not served (the check can fail: the server does refuse what it cannot read).
    assert_eq!(nginx.status("/keys/cosign.key"), 403, "{}", nginx.log());

    // helm pull (Helm's engine) from the chart repository, through nginx.
    if let Some(helm) =
        HelmSdk::or_skip("at_umask_022_www_data_apt_and_nobody_read_what_ferry_wrote")
    {
        let dest = base.join("helm-pull");
        std::fs::create_dir_all(&dest).unwrap();
        helm.call(&[
            "pull-http",
            "web",
            &format!("{}/site/mirror/charts", nginx.url()),
            "1.0.0",
            dest.to_str().unwrap(),
        ]);
        assert_eq!(
            std::fs::read(dest.join("web-1.0.0.tgz")).unwrap(),
            std::fs::read(base.join("site/mirror/charts/web-1.0.0.tgz")).unwrap()
        );
    }

    // apt-get with its default sandbox (_apt), the keyring copied with plain cp.
    let debs = apt_get_download(
        &base.join("apt-client"),
        &base.join("site/ferry-site"),
        &["hello", "world"],
    );
    assert_eq!(debs, ["hello_1.0_amd64.deb", "world_2.0_amd64.deb"]);

    // nobody reads the bundle: skopeo (oci: transport) and ferry verify.
    let bin = base.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_ferry"), bin.join("ferry")).unwrap();
    let reference = image_ref(&base.join("bundle"));
    let out = run(Command::new("runuser")
        .args(["-u", "nobody", "--", "skopeo", "inspect", "--raw"])
        .arg(format!("oci:{}:{reference}", base.join("bundle").display())));
    let raw = out.stdout;
    assert!(!raw.is_empty());
    let digest = manifest["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference.as_str())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(format!("sha256:{}", sha256_hex(&raw)), digest);
    for source in [base.join("bundle"), base.join("usb")] {
        let out = run(Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(bin.join("ferry"))
            .arg("verify")
            .arg(&source)
            .arg("--key")
            .arg(base.join("keys/cosign.pub")));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("signed by key"), "{text}");
    }
}

/// Runs the real apt-get against the rendered `ferry.sources`, with apt's own sandbox: it
/// fetches and checks signatures as `_apt`. The keyring goes into place with plain `cp`, as
/// the README says. Its state, cache and status file are its own (no change to the host);
/// returns the names of the .deb files downloaded.
fn apt_get_download(work: &Path, site_dir: &Path, packages: &[&str]) -> Vec<String> {
    let etc = work.join("etc");
    let keyrings = work.join("keyrings");
    for d in [etc.clone(), keyrings.clone()] {
        std::fs::create_dir_all(d).unwrap();
    }
    let keyring = keyrings.join("ferry-apt.gpg");
    run(Command::new("cp")
        .arg(site_dir.join("ferry-apt.gpg"))
        .arg(&keyring));
    let sources = std::fs::read_to_string(site_dir.join("ferry.sources")).unwrap();
    assert!(
        sources.contains("Signed-By: /etc/apt/keyrings/ferry-apt.gpg"),
        "{sources}"
    );
    let list = etc.join("ferry.sources");
    std::fs::write(
        &list,
        sources.replace(
            "Signed-By: /etc/apt/keyrings/ferry-apt.gpg",
            &format!("Signed-By: {}", keyring.display()),
        ),
    )
    .unwrap();
    common::apt_repo::apt_get_download(work, &list, common::apt_repo::AptUser::Sandbox, packages)
}

#[test]
fn at_umask_027_modes_follow_it() {
    let f = fixture();
    release_and_site(&f, 0o027, "http://mirror.plant-a.lan");
    assert_modes(f.env.path(), 0o027);
}

#[test]
fn at_umask_077_modes_follow_it() {
    let f = fixture();
    release_and_site(&f, 0o077, "http://mirror.plant-a.lan");
    assert_modes(f.env.path(), 0o077);
}

/// The paths under `dir` (relative; one level when not `deep`), for comparing results.
fn listing(dir: &Path, deep: bool) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, deep: bool, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries {
                let p = e.unwrap().path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if deep && p.is_dir() {
                    walk(base, &p, deep, out);
                }
            }
        }
    }
    walk(dir, dir, deep, &mut out);
    out.sort();
    out
}

/// Paths anywhere under `dir` whose names say they are temporary files.
fn temporaries(dir: &Path) -> Vec<String> {
    listing(dir, true)
        .into_iter()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap();
            name.starts_with(".ferry") || name.ends_with(".partial") || name.ends_with(".tmp")
        })
        .collect()
}

/// One step of the flow, its output, and how to run it.
struct Step {
    name: &'static str,
    /// What it writes: a directory, or (for the lock) a file in the fixture's directory.
    output: PathBuf,
    args: Vec<std::ffi::OsString>,
}

fn step_command(env: &Env, step: &Step) -> Command {
    let mut c = env.ferry();
    c.args(&step.args);
    c
}

#[test]
fn a_kill_at_any_rename_then_a_rerun_leaves_exactly_the_result() {
    let f = fixture();
    let base = f.env.path().to_path_buf();
    release_and_site(&f, 0o022, "http://mirror.plant-a.lan");
    let keys = base.join("keys");
    let env = &f.env;
    let os = |items: &[&dyn AsRef<std::ffi::OsStr>]| -> Vec<std::ffi::OsString> {
        items.iter().map(|i| i.as_ref().to_os_string()).collect()
    };
    let volumes = volumes(&base.join("usb"));
    let unpack: Vec<std::ffi::OsString> = std::iter::once("unpack".into())
        .chain(volumes.iter().map(|v| v.clone().into_os_string()))
        .chain(["-o".into(), base.join("unpacked").into_os_string()])
        .collect();
    let (bundle, unpacked, public) = (
        base.join("bundle"),
        base.join("unpacked"),
        keys.join("cosign.pub"),
    );
    let steps = [
        Step {
            name: "lock",
            output: base.join("release.lock"),
            args: os(&[&"lock", &f.manifest]),
        },
        Step {
            name: "build",
            output: bundle.clone(),
            args: os(&[
                &"build",
                &f.manifest,
                &"-o",
                &bundle,
                &"--key",
                &keys.join("cosign.key"),
            ]),
        },
        Step {
            name: "pack",
            output: base.join("usb"),
            args: os(&[
                &"pack",
                &bundle,
                &"-o",
                &base.join("usb/bundle"),
                &"--volume-size",
                &"300K",
            ]),
        },
        Step {
            name: "unpack",
            output: unpacked.clone(),
            args: unpack,
        },
        Step {
            name: "import files",
            output: base.join("site/mirror/files"),
            args: os(&[
                &"import",
                &"files",
                &unpacked,
                &"--key",
                &public,
                &"--to",
                &base.join("site/mirror/files"),
            ]),
        },
        Step {
            name: "import charts",
            output: base.join("site/mirror/charts"),
            args: os(&[
                &"import",
                &"charts",
                &unpacked,
                &"--key",
                &public,
                &"--to",
                &base.join("site/mirror/charts"),
            ]),
        },
        Step {
            name: "import apt",
            output: base.join("site/mirror/apt"),
            args: os(&[
                &"import",
                &"apt",
                &unpacked,
                &"--key",
                &public,
                &"--to",
                &base.join("site/mirror/apt"),
                &"--signing-key",
                &keys.join("ferry-apt-secret.asc"),
                &"--suite",
                &"ferry",
            ]),
        },
        Step {
            name: "import --site (rendered site files)",
            output: base.join("site/ferry-site"),
            args: os(&[
                &"import",
                &unpacked,
                &"--site",
                &base.join("site/site.yaml"),
                &"--key",
                &public,
            ]),
        },
    ];
    for step in &steps {
        let is_file = step.output.is_file();
        let (dir, deep) = if is_file {
            (base.clone(), false)
        } else {
            (step.output.clone(), true)
        };
        let reset = || {
            if is_file {
                let _ = std::fs::remove_file(&step.output);
            } else {
                let _ = std::fs::remove_dir_all(&step.output);
            }
        };
        // The result of an uninterrupted run.
        reset();
        ok(&mut step_command(env, step));
        let result = listing(&dir, deep);
        let mut kills = 0;
        for n in 1.. {
            reset();
            let mut killed = step_command(env, step);
            killed.env("FERRY_FAULT_BEFORE_RENAME", n.to_string());
            let out = run_unchecked(&mut killed);
            if out.status.success() {
                break;
            }
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGKILL),
                "{}: the run with the hook at rename {n} failed otherwise: {}",
                step.name,
                String::from_utf8_lossy(&out.stderr)
            );
            kills += 1;
            ok(&mut step_command(env, step));
            assert_eq!(
                listing(&dir, deep),
                result,
                "{}: killed before rename {n}, then run again",
                step.name
            );
            let left = temporaries(&base);
            assert!(
                left.is_empty(),
                "{}: killed before rename {n}, then run again, left {left:?}",
                step.name
            );
        }
        assert!(kills > 0, "{}: the hook never fired", step.name);
        eprintln!("{}: killed at each of its {kills} renames", step.name);
        if step.name == "build" || step.name == "unpack" {
            ok(env
                .ferry()
                .arg("verify")
                .arg(&step.output)
                .arg("--key")
                .arg(&public));
        }
    }
}
