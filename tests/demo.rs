//! End-to-end: `scripts/demo.sh`, the whole flow offline on this machine, exactly as a user runs
//! it: the setup step, generated upstream content (registry, chart repository, release files,
//! signed apt repository), key generate, lock, build, verify, pack into volumes (with the ferry
//! binary and a signed SHA256SUMS), the air gap, the stick checked with openssl and
//! `sha256sum -c` and its own ferry run from then on, verify from the volumes,
//! `ferry install --site`, serve, and pulls with containerd, Helm and apt-get. The script prints
//! one report line per step; every step must say `ok`.
//!
//! A new machine: the demo starts on a PATH without the tools its setup installs (containerd,
//! ctr, skopeo, docker-registry), the way a machine looks before their packages are installed.
//! The packages stay installed on this machine (other tests use them at the same time); the
//! test only hides their commands, and an `apt-get` in front on PATH stands in for the real
//! one: `apt-get install containerd` makes that package's commands appear, offline. So the demo
//! passes only when it installs what is missing and looks each tool up after installing it (a
//! lookup at start once made `ctr` a function that called itself until memory ran out:
//! FUNCNEST bounds that here, so such a bug fails in seconds). As root only (setup runs
//! `sudo apt-get` otherwise, which a PATH cannot redirect); elsewhere the tools stay visible.
//!
//! The other tools come from scripts/test.sh. While `ferry install` is missing (`ferry install
//! --help` fails), the demo's install step alone is skipped, with the per-target imports filling
//! the site's targets in its place, and this test says so.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The steps of the report, as the script names them, in order.
const STEPS: &[&str] = &[
    "setup: tools (scripts/lib/setup.sh)",
    "build ferry and the image generator (cargo)",
    "upstream: docker-registry with 40 images (multi-arch, shared layers)",
    "upstream: Helm chart repository (helm-python-sdk)",
    "upstream: K3s-like release files and sha256sum file",
    "upstream: apt repository signed with a throwaway key",
    "upstream: web server for charts, files and apt",
    "ferry key generate",
    "release manifest (images, charts, files, apt)",
    "ferry lock",
    "ferry build --locked",
    "ferry verify (bundle)",
    "ferry pack --volume-size 2M",
    "air gap: upstream servers stopped",
    "on site: check the stick (SHA256SUMS.sig, sha256sum -c) and run its ferry",
    "on site: ferry verify (the volumes)",
    "on site: ferry key generate --apt",
    "on site: site registry (Harbor stand-in), web server, site.yaml",
    INSTALL,
    "on site: ferry serve (the volumes)",
    "pull: start containerd",
    "pull: ctr pull from the site registry",
    "pull: ctr pull through ferry serve as a mirror",
    "pull: helm pull from the site chart repository",
    "pull: helm pull from ferry serve /charts/",
    "pull: apt-get --download-only from the site mirror",
    "pull: apt-get --download-only from ferry serve /apt/",
    "pull: files from ferry serve /files/ and the airgap dir",
];

const INSTALL: &str = "on site: ferry install --site";
const INSTEAD_OF_INSTALL: &str =
    "on site: ferry import registry|charts|files|apt (in place of install)";

#[test]
fn demo_script_runs_the_whole_flow() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ferry = env!("CARGO_BIN_EXE_ferry");
    let helm_python = std::env::var_os("FERRY_HELM_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("tests/tools/venv/bin/python"));
    if !helm_python.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the demo needs helm-python-sdk under CI: {} is missing (scripts/test.sh installs it)",
            helm_python.display()
        );
        eprintln!(
            "SKIPPED demo_script_runs_the_whole_flow: {} is missing; run scripts/test.sh (it installs helm-python-sdk)",
            helm_python.display()
        );
        return;
    }

    // `ferry install` is the contract; until this ferry has it, only that step is skipped.
    let has_install = Command::new(ferry)
        .args(["install", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    let machine = tempfile::tempdir().expect("cannot make a temporary directory");
    let new_machine = if unsafe { libc::geteuid() } == 0 {
        Some(NewMachine::new(machine.path()))
    } else {
        eprintln!(
            "not root: the demo's setup would run `sudo apt-get`, which this test cannot stand in \
             for, so the tools it installs stay visible (run as root to test a new machine)"
        );
        None
    };
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("scripts/demo.sh"))
        .env_remove("FERRY_DEMO_SKIP_SETUP")
        // A function that calls itself fails after 200 levels instead of eating all memory.
        .env("FUNCNEST", "200")
        .env("FERRY_BIN", ferry)
        .env("FERRY_HELM_PYTHON", &helm_python)
        .env_remove("FERRY_KEY_PASSWORD")
        .env_remove("REGISTRY_AUTH_FILE")
        .current_dir(root);
    if !has_install {
        eprintln!(
            "SKIPPED the demo's `ferry install --site` step: `ferry install --help` fails in this build \
             (the command is not there yet); the per-target imports fill the site's targets in its place \
             and every other step runs"
        );
        cmd.env("FERRY_DEMO_SKIP_INSTALL", "1");
    }
    if let Some(m) = &new_machine {
        cmd.env("PATH", &m.path);
    }
    let out = cmd.output().expect("cannot run bash scripts/demo.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/demo.sh failed ({}):\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );

    // The report: one line per step, `ok` (or `skipped` for install, when told), seconds, name.
    let report: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("ferry demo: ") || !l.contains(" steps ok in "))
        .collect();
    assert!(
        report.last() == Some(&"ferry demo: all steps ok"),
        "no final verdict:\n{stdout}"
    );
    let line_of = |name: &str| -> &str {
        report
            .iter()
            .find(|l| l.ends_with(name) || l.contains(&format!("{name} (")))
            .unwrap_or_else(|| panic!("no report line for {name:?}:\n{stdout}"))
    };
    let mut expected: Vec<&str> = STEPS.to_vec();
    if !has_install {
        let at = expected.iter().position(|s| *s == INSTALL).unwrap();
        expected.insert(at + 1, INSTEAD_OF_INSTALL);
    }
    for name in &expected {
        let line = line_of(name).trim_start();
        let want = if *name == INSTALL && !has_install {
            "skipped"
        } else {
            "ok"
        };
        assert!(
            line.starts_with(want),
            "step {name:?} is not {want}: {line}\n{stdout}"
        );
        if want == "ok" {
            // `ok`, then seconds with one decimal.
            let secs = line.split_whitespace().nth(1).unwrap_or_default();
            assert!(
                secs.ends_with('s') && secs.trim_end_matches('s').parse::<f64>().is_ok(),
                "no seconds in {line}"
            );
        }
    }
    assert!(
        !stdout.contains("FAILED"),
        "a step failed:\n{stdout}\n{stderr}"
    );
    // The setup step installed every hidden tool's package, through the stand-in apt-get.
    if let Some(m) = &new_machine {
        let installed = std::fs::read_to_string(&m.log).unwrap_or_default();
        for package in HIDDEN_PACKAGES {
            assert!(
                installed.lines().any(|l| l == *package),
                "the setup step did not install {package} (installed: {installed:?}):\n{stdout}"
            );
        }
    }
}

/// The Debian packages whose commands the demo's setup installs and this test hides.
const HIDDEN_PACKAGES: &[&str] = &["containerd", "skopeo", "docker-registry"];

/// A PATH as on a machine where [`HIDDEN_PACKAGES`] are not installed yet, with an `apt-get`
/// in front that installs them by making their commands appear.
struct NewMachine {
    /// The PATH to run the demo with.
    path: OsString,
    /// One line per package the stand-in apt-get was asked to install.
    log: PathBuf,
}

impl NewMachine {
    fn new(dir: &Path) -> NewMachine {
        // The commands of the hidden packages, from dpkg's file lists.
        let shim = shim_dir(dir);
        std::fs::create_dir_all(&shim).unwrap();
        let mut hidden: Vec<(String, PathBuf)> = Vec::new();
        let mut links = String::new();
        for package in HIDDEN_PACKAGES {
            let out = Command::new("dpkg-query")
                .args(["-L", package])
                .output()
                .expect("cannot run dpkg-query");
            assert!(
                out.status.success(),
                "{package} is not installed: scripts/test.sh installs it"
            );
            let mut commands = Vec::new();
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let path = Path::new(line);
                let in_bin = path
                    .parent()
                    .and_then(Path::file_name)
                    .is_some_and(|d| d == "bin" || d == "sbin");
                if in_bin && path.is_file() {
                    commands.push(path.to_path_buf());
                }
            }
            links.push_str(&format!("        {package})"));
            for path in commands {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                links.push_str(&format!(
                    " ln -sf {} {}/{name};",
                    path.display(),
                    shim.display()
                ));
                hidden.push((name, path));
            }
            links.push_str(" ;;\n");
        }
        assert!(hidden.iter().any(|(n, _)| n == "ctr"), "{hidden:?}");

        // Every PATH directory that holds one of them is replaced by a copy (of symlinks)
        // without them; the others stay as they are.
        let mut dirs = vec![shim.clone()];
        let original = std::env::var_os("PATH").unwrap_or_default();
        for (i, d) in std::env::split_paths(&original).enumerate() {
            let holds_hidden = hidden.iter().any(|(name, _)| d.join(name).exists());
            if !holds_hidden {
                dirs.push(d);
                continue;
            }
            let copy = dir.join(format!("path-{i}"));
            std::fs::create_dir_all(&copy).unwrap();
            for entry in std::fs::read_dir(&d).unwrap().flatten() {
                let name = entry.file_name();
                if hidden
                    .iter()
                    .any(|(n, _)| name.to_str() == Some(n.as_str()))
                {
                    continue;
                }
                std::os::unix::fs::symlink(entry.path(), copy.join(&name)).unwrap();
            }
            dirs.push(copy);
        }
        let path = std::env::join_paths(&dirs).unwrap();

        // apt-get: `update` does nothing (offline); `install` makes a hidden package's
        // commands appear in the first PATH directory and records it; any other package must
        // be installed already. Anything else goes to the real apt-get (the demo's own
        // `apt-get --download-only` runs).
        let real = which("apt-get", &original).expect("no apt-get on PATH");
        let log = dir.join("installed.log");
        let script = format!(
            r#"#!/bin/bash
# apt-get on a machine without {packages} (tests/demo.rs): offline stand-in.
set -euo pipefail
case "${{1:-}}" in
update) exit 0 ;;
install)
    shift
    for arg in "$@"; do
        [[ "$arg" == -* ]] && continue
        echo "$arg" >>{log}
        case " {packages} " in
        *" $arg "*)
            case "$arg" in
{links}            esac
            ;;
        *)
            dpkg-query -W -f='${{Status}}' "$arg" 2>/dev/null | grep -q 'ok installed' || {{
                echo "apt-get (tests/demo.rs): $arg is not installed on this machine; the test cannot install it offline" >&2
                exit 100
            }}
            ;;
        esac
    done
    exit 0
    ;;
esac
exec {real} "$@"
"#,
            packages = HIDDEN_PACKAGES.join(" "),
            log = log.display(),
            real = real.display(),
        );
        let apt_get = shim.join("apt-get");
        std::fs::write(&apt_get, script).unwrap();
        std::fs::set_permissions(&apt_get, std::fs::Permissions::from_mode(0o755)).unwrap();

        // As the demo would see it: none of the hidden commands.
        for (name, _) in &hidden {
            assert!(
                which(name, &path).is_none(),
                "{name} is still on the new machine's PATH"
            );
        }
        NewMachine { path, log }
    }
}

/// Where the stand-in apt-get lives and puts the commands it installs: first on PATH.
fn shim_dir(dir: &Path) -> PathBuf {
    dir.join("bin")
}

/// The file `name` resolves to on `path`.
fn which(name: &str, path: &OsString) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
