//! Helm v4 through helm-python-sdk (Helm's official Go SDK as a library), driven by
//! tests/tools/helm_sdk.py in the project-local virtualenv scripts/test.sh installs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::util::run;

/// The Helm SDK, when it can run here.
pub struct HelmSdk {
    python: PathBuf,
    script: PathBuf,
}

impl HelmSdk {
    /// The SDK from `FERRY_HELM_PYTHON` (a Python with helm_python installed) or
    /// tests/tools/venv; `Err` says why it cannot be used. Under CI a missing SDK is an error
    /// for the caller to report, never a silent pass.
    pub fn find() -> Result<HelmSdk, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = std::env::var_os("FERRY_HELM_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("tests/tools/venv/bin/python"));
        let script = root.join("tests/tools/helm_sdk.py");
        if !python.exists() {
            return Err(format!(
                "{} does not exist; run scripts/test.sh (it installs helm-python-sdk into tests/tools/venv)",
                python.display()
            ));
        }
        let probe = Command::new(&python)
            .arg(&script)
            .arg("version")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
        if !probe.status.success() {
            return Err(format!(
                "{} cannot import helm_python: {}",
                python.display(),
                String::from_utf8_lossy(&probe.stderr).trim()
            ));
        }
        Ok(HelmSdk { python, script })
    }

    /// The SDK, or `None` after printing why the caller skips (panics under CI, where the
    /// SDK must be there).
    pub fn or_skip(test: &str) -> Option<HelmSdk> {
        match HelmSdk::find() {
            Ok(sdk) => Some(sdk),
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("{test}: helm-python-sdk is required under CI: {why}")
            }
            Err(why) => {
                eprintln!("SKIPPED {test}: helm-python-sdk is not usable: {why}");
                None
            }
        }
    }

    /// Runs a helm_sdk.py command and parses its JSON output.
    pub fn call(&self, args: &[&str]) -> Value {
        let out = run(Command::new(&self.python).arg(&self.script).args(args));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "helm_sdk.py {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs a command expected to fail; returns its stderr.
    pub fn call_fails(&self, args: &[&str]) -> String {
        let out = super::util::run_expect_failure(
            Command::new(&self.python).arg(&self.script).args(args),
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}
