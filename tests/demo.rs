//! End-to-end: `scripts/demo.sh`, the whole flow offline on this machine, exactly as a user runs
//! it: generated upstream content (registry, chart repository, release files, signed apt
//! repository), key generate, lock, build, verify, pack into volumes, the air gap, verify from
//! the volumes, `ferry install --site`, serve, and pulls with containerd, Helm and apt-get.
//! The script prints one report line per step; every step must say `ok`.
//!
//! The tools come from scripts/test.sh (the script installs nothing here). While `ferry install`
//! is missing (`ferry install --help` fails), the demo's install step alone is skipped, with
//! the per-target imports filling the site's targets in its place, and this test says so.

use std::path::Path;
use std::process::Command;

/// The steps of the report, as the script names them, in order.
const STEPS: &[&str] = &[
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
    "on site: sha256sum -c SHA256SUMS (volumes)",
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
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("scripts/demo.sh"))
        .env("FERRY_DEMO_SKIP_SETUP", "1")
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
    // The setup step is skipped here: scripts/test.sh installed the tools.
    assert!(
        line_of("setup: tools").trim_start().starts_with("skipped"),
        "{stdout}"
    );
}
