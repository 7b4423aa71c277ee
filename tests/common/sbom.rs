//! The release SBOM, checked with independent validators installed by scripts/test.sh into
//! tests/tools/venv: CycloneDX's own Python library (cyclonedx-python-lib) for the CycloneDX
//! document, the SPDX project's spdx-tools (`pyspdxtools -i FILE`) for the SPDX one.

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
        .args(["-c", "import cyclonedx.validation.json, spdx_tools"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} has no cyclonedx-python-lib or spdx-tools: run scripts/test.sh",
            python.display()
        );
        eprintln!(
            "skipping the SBOM schema checks: {} has no cyclonedx-python-lib or spdx-tools",
            python.display()
        );
    }
    found.then_some(python)
}

/// `ferry sbom BUNDLE --key PUBLIC`, validated against the CycloneDX 1.6 schema; the document.
/// Its SPDX twin (`--format spdx`, see [`spdx_checked`]) must list the same things.
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
    let spdx = spdx_checked(env, bundle, public);
    // The same content: every CycloneDX component (referrers nested in their image included)
    // is an SPDX package of the same name and sha256.
    let packages: Vec<(String, String)> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let sum = p["checksums"]
                .as_array()?
                .iter()
                .find(|c| c["algorithm"] == "SHA256")?;
            Some((
                p["name"].as_str()?.to_string(),
                sum["checksumValue"].as_str()?.to_string(),
            ))
        })
        .collect();
    let mut stack: Vec<&Value> = sbom["components"].as_array().unwrap().iter().collect();
    let mut listed = 0;
    while let Some(c) = stack.pop() {
        if let Some(nested) = c["components"].as_array() {
            stack.extend(nested);
        }
        let pair = (
            c["name"].as_str().unwrap().to_string(),
            c["hashes"][0]["content"].as_str().unwrap().to_string(),
        );
        assert!(
            packages.contains(&pair),
            "{pair:?} is in the CycloneDX SBOM and not in the SPDX one: {spdx:#}"
        );
        listed += 1;
    }
    assert!(listed > 0 && packages.len() >= listed, "{spdx:#}");
    sbom
}

/// `ferry sbom BUNDLE --key PUBLIC --format spdx`, validated by spdx-tools (`pyspdxtools -i`);
/// the document.
pub fn spdx_checked(env: &Env, bundle: &Path, public: &Path) -> Value {
    let text = ok(env
        .ferry()
        .arg("sbom")
        .arg(bundle)
        .arg("--key")
        .arg(public)
        .args(["--format", "spdx"]));
    if let Some(python) = python() {
        let file = env.path().join("sbom.spdx.json");
        std::fs::write(&file, &text).unwrap();
        run(Command::new(python.with_file_name("pyspdxtools"))
            .arg("-i")
            .arg(&file));
    }
    let spdx: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    // Deterministic: printed twice, the same bytes.
    assert_eq!(
        ok(env
            .ferry()
            .arg("sbom")
            .arg(bundle)
            .arg("--key")
            .arg(public)
            .args(["--format", "spdx"])),
        text
    );
    spdx
}

/// The SPDX package whose SHA256 is `hex`.
pub fn spdx_package<'a>(spdx: &'a Value, hex: &str) -> &'a Value {
    spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["checksums"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["checksumValue"] == hex))
        })
        .unwrap_or_else(|| panic!("no SPDX package with sha256 {hex}: {spdx:#}"))
}

/// The SPDX relationships from `id` of `kind`: the ids they point at.
pub fn spdx_related<'a>(spdx: &'a Value, id: &str, kind: &str) -> Vec<&'a str> {
    spdx["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["spdxElementId"] == id && r["relationshipType"] == kind)
        .filter_map(|r| r["relatedSpdxElement"].as_str())
        .collect()
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
