//! Names the commit ferry is built from, for `ferry --version`: `FERRY_COMMIT` is the short
//! hash of HEAD with `-dirty` when the work tree has changes, taken from the environment
//! variable of that name when set (a build from a tarball can pass it), else from git, else
//! "unknown commit" (no git, or no repository).

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=FERRY_COMMIT");
    // Sources changed without a commit make the build dirty.
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = match std::env::var("FERRY_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => from_git().unwrap_or_else(|| "unknown commit".to_string()),
    };
    println!("cargo:rustc-env=FERRY_COMMIT={commit}");
}

fn from_git() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").ok()?);
    // Only this crate's own repository: not one that merely contains an unpacked tarball.
    let top = git(&["-C", manifest_dir.to_str()?, "rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != manifest_dir.canonicalize().ok()? {
        return None;
    }
    let dir = manifest_dir.to_str()?;
    // Rebuild when HEAD moves: HEAD itself, the branch it names, packed refs, the index.
    for name in ["HEAD", "index", "packed-refs"] {
        if let Some(path) = git(&["-C", dir, "rev-parse", "--git-path", name]) {
            let path = manifest_dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    if let Some(reference) = git(&["-C", dir, "symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["-C", dir, "rev-parse", "--git-path", &reference])
    {
        println!(
            "cargo:rerun-if-changed={}",
            manifest_dir.join(path).display()
        );
    }
    let hash = git(&["-C", dir, "rev-parse", "--short=12", "HEAD"])?;
    let dirty = git(&["-C", dir, "status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}
