//! The release SBOM, checked with CycloneDX's own Python library (cyclonedx-python-lib,
//! installed by scripts/test.sh into tests/tools/venv), independent of ferry.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::ferry::{Env, ok};
use super::util::run;

/// The python that has cyclonedx-python-lib: FERRY_SBOM_PYTHON, else tests/tools/venv's;
/// `None` (outside CI only) when it has none.
pub fn python() -> Option<PathBuf> {
    let python = std::env::var_os("FERRY_SBOM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/venv/bin/python")
        });
    let found = Command::new(&python)
        .args(["-c", "import cyclonedx.validation.json"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} has no cyclonedx-python-lib: run scripts/test.sh",
            python.display()
        );
        eprintln!(
            "skipping the SBOM schema check: {} has no cyclonedx-python-lib",
            python.display()
        );
    }
    found.then_some(python)
}

/// `ferry sbom BUNDLE --key PUBLIC`, validated against the CycloneDX 1.6 schema; the document.
pub fn checked(env: &Env, bundle: &Path, public: &Path) -> Value {
    let text = ok(env.ferry().arg("sbom").arg(bundle).arg("--key").arg(public));
    if let Some(python) = python() {
        let file = env.path().join("sbom.cdx.json");
        std::fs::write(&file, &text).unwrap();
        run(Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/cyclonedx_validate.py"))
            .arg(&file));
    }
    let sbom: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(sbom["specVersion"], "1.6");
    sbom
}

/// The top-level components whose `dev.ferry:kind` property is `kind`.
pub fn components<'a>(sbom: &'a Value, kind: &str) -> Vec<&'a Value> {
    sbom["components"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|c| {
                    c["properties"].as_array().is_some_and(|p| {
                        p.iter()
                            .any(|p| p["name"] == "dev.ferry:kind" && p["value"] == kind)
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}
