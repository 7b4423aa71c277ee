//! Running the ferry binary in tests, isolated from the user's environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// The password the tests' keys are encrypted with.
pub const KEY_PASSWORD: &str = "test-password";

/// A ferry invocation environment: its own HOME, auth file and keys.
pub struct Env {
    /// Temp dir holding home/, keys/ and whatever a test puts there.
    pub dir: TempDir,
}

impl Env {
    /// A fresh environment with no credentials.
    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home/.docker")).unwrap();
        Env { dir }
    }

    /// The temp dir.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `ferry ARGS` with HOME, DOCKER_CONFIG and the key password set to this environment's.
    pub fn ferry(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        let home = self.path().join("home");
        cmd.env("HOME", &home)
            .env("DOCKER_CONFIG", home.join(".docker"))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("COSIGN_PASSWORD")
            .env_remove("FERRY_LOG")
            .env("FERRY_KEY_PASSWORD", KEY_PASSWORD)
            .env("NO_COLOR", "1")
            .current_dir(self.path());
        cmd
    }

    /// Writes `~/.docker/config.json` with basic credentials for `host`.
    pub fn login(&self, host: &str, user: &str, password: &str) {
        use base64::Engine;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        std::fs::write(
            self.path().join("home/.docker/config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
    }

    /// Generates keys/cosign.key and keys/cosign.pub (once per environment).
    pub fn keys(&self) -> (PathBuf, PathBuf) {
        let dir = self.path().join("keys");
        if !dir.join("cosign.pub").exists() {
            ok(self
                .ferry()
                .args(["key", "generate", "--output-dir"])
                .arg(&dir));
        }
        (dir.join("cosign.key"), dir.join("cosign.pub"))
    }

    /// Writes a manifest file and returns its path.
    pub fn manifest(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes a release manifest with these `spec.images` items (each a YAML flow value: a
    /// reference, or `{ref: ..., platforms: [...]}`) and returns its path.
    pub fn images_manifest(&self, name: &str, images: &[String]) -> PathBuf {
        self.manifest(name, &images_manifest_text(images))
    }

    /// `ferry build MANIFEST -o OUT --key keys/cosign.key`, signed with this environment's key;
    /// returns OUT.
    pub fn build_signed(&self, manifest: &Path, out: &str) -> PathBuf {
        let (key, _) = self.keys();
        let bundle = self.path().join(out);
        ok(self
            .ferry()
            .arg("build")
            .arg(manifest)
            .arg("-o")
            .arg(&bundle)
            .arg("--key")
            .arg(&key));
        bundle
    }
}

/// A release manifest (`name: t, version: "1"`) with these `spec.images` items.
pub fn images_manifest_text(images: &[String]) -> String {
    let mut text = String::from(
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: t, version: \"1\"}\nspec:\n  images:\n",
    );
    for image in images {
        text.push_str(&format!("    - {image}\n"));
    }
    text
}

/// Runs and requires success; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run ferry");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and requires failure (exit code 1); returns stderr.
pub fn fails(cmd: &mut Command) -> String {
    let out: Output = cmd.output().expect("run ferry");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{cmd:?} should have failed with exit code 1:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Runs `ferry --output json ...` successfully and parses stdout.
pub fn json(cmd: &mut Command) -> serde_json::Value {
    let text = ok(cmd);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// Every file under blobs/sha256 of a bundle, by hex name.
pub fn blob_files(bundle: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(bundle.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts no blob file of a bundle has content that differs from its name.
pub fn assert_blobs_match_names(bundle: &Path) {
    for name in blob_files(bundle) {
        let actual = super::sha256_file(bundle.join("blobs/sha256").join(&name));
        assert!(
            actual.ends_with(&name),
            "blob {name} in {} hashes to {actual}",
            bundle.display()
        );
    }
}
