//! Snapshots of what people read (insta, as uv does): the `--help` of every command and
//! subcommand, and the main error messages (a bad manifest, a missing volume, a wrong key, a
//! registry that does not answer), with temporary paths, ports and digests redacted, so that
//! a change of wording shows in review. `cargo insta review` (or `INSTA_UPDATE=always`)
//! accepts a change on purpose.

mod common;

use std::path::Path;

use clap::CommandFactory;
use common::ferry::{Env, fails, ok};

/// Temporary directories, ports and digests in `text`, redacted.
fn redact(text: &str, env: &Env) -> String {
    let mut out = text.replace(&env.path().display().to_string(), "[TMP]");
    for (pattern, with) in [
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"),
        (r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]"),
    ] {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

/// Every command path: `[]`, `["build"]`, `["import", "registry"]`, ...
fn command_paths(command: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let mut path = prefix.clone();
        path.push(sub.get_name().to_string());
        command_paths(sub, path, out);
    }
}

#[test]
fn help_of_every_command() {
    let env = Env::new();
    let mut paths = Vec::new();
    command_paths(&ferry::cli::Cli::command(), Vec::new(), &mut paths);
    assert!(paths.len() > 20, "{paths:?}");
    for path in paths {
        // Not a terminal, no COLUMNS: clap's default width, the same on every machine; no
        // FERRY_* settings, whose values help would show after `[env: ...]`.
        let mut command = env.ferry();
        command.env_remove("COLUMNS");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("FERRY_") {
                command.env_remove(name);
            }
        }
        let help = ok(command.args(&path).arg("--help"));
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help-{}", path.join("-"))
        };
        insta::assert_snapshot!(name, help);
    }
}

/// A small signed bundle, packed into volumes.
fn signed_bundle(env: &Env) -> std::path::PathBuf {
    let (key, _) = env.keys();
    let bundle = env.path().join("bundle");
    copy_dir(&common::standard_layout().dir, &bundle);
    ok(env.ferry().arg("sign").arg(&bundle).arg("--key").arg(&key));
    bundle
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn error_a_bad_manifest() {
    let env = Env::new();
    let manifest = env.manifest(
        "release.yaml",
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: platform, version: \"1\"}\nspec:\n  imagez:\n    - quay.io/cilium/cilium:v1.16.5\n",
    );
    let e = fails(env.ferry().arg("lock").arg(&manifest));
    insta::assert_snapshot!(redact(&e, &env));
}

#[test]
fn error_a_missing_volume() {
    let env = Env::new();
    let bundle = signed_bundle(&env);
    let (_, public) = env.keys();
    let usb = env.path().join("usb");
    std::fs::create_dir_all(&usb).unwrap();
    // The smallest volume size that packs the bundle (into several volumes).
    let packed = ["128K", "256K", "512K", "1M", "2M"].iter().any(|size| {
        env.ferry()
            .arg("pack")
            .arg(&bundle)
            .arg("-o")
            .arg(usb.join("platform"))
            .args(["--volume-size", size])
            .output()
            .unwrap()
            .status
            .success()
    });
    let second = usb.join("platform.002.tar");
    assert!(packed && second.is_file(), "no pack of several volumes");
    std::fs::remove_file(second).unwrap();
    let e = fails(
        env.ferry()
            .arg("verify")
            .arg(&usb)
            .arg("--key")
            .arg(&public),
    );
    insta::assert_snapshot!(redact(&e, &env));
}

#[test]
fn error_a_wrong_key() {
    let env = Env::new();
    let bundle = signed_bundle(&env);
    let other = env.path().join("other");
    ok(env
        .ferry()
        .args(["key", "generate", "--output-dir"])
        .arg(&other));
    let e = fails(
        env.ferry()
            .arg("verify")
            .arg(&bundle)
            .arg("--key")
            .arg(other.join("cosign.pub")),
    );
    insta::assert_snapshot!(redact(&e, &env));
}

#[test]
fn error_a_dead_registry() {
    let env = Env::new();
    let bundle = signed_bundle(&env);
    let (_, public) = env.keys();
    let port = common::free_port();
    let e = fails(
        env.ferry()
            .args(["import", "registry"])
            .arg(&bundle)
            .arg("--to")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--key")
            .arg(&public),
    );
    insta::assert_snapshot!(redact(&e, &env));
}
