//! Pushing layouts into a test registry and inspecting it with the real `skopeo`.

use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::images::{ImageSet, StandardLayout, describe_layout_ref, write_standard_layout};
use super::registry::Registry;
use super::util::{run, run_unchecked, sha256_hex};

/// An image or index pushed to a registry: where it went and every digest in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// Full reference "127.0.0.1:PORT/repo:tag".
    pub reference: String,
    /// Repository, e.g. "app/web".
    pub repo: String,
    /// Tag, e.g. "1".
    pub tag: String,
    /// Top-level digest, child manifests with platforms, configs and layers.
    pub set: ImageSet,
}

impl Pushed {
    /// "127.0.0.1:PORT/repo@sha256:..." (the top-level digest).
    pub fn by_digest(&self) -> String {
        let registry = self.reference.split('/').next().unwrap_or_default();
        format!("{registry}/{}@{}", self.repo, self.set.top.digest)
    }

    /// "repo:tag" without the registry address.
    pub fn repo_tag(&self) -> String {
        format!("{}:{}", self.repo, self.tag)
    }
}

impl Deref for Pushed {
    type Target = ImageSet;

    fn deref(&self) -> &ImageSet {
        &self.set
    }
}

/// Splits "repo:tag" (the tag is required).
fn split_repo_tag(repo_tag: &str) -> (String, String) {
    match repo_tag.rsplit_once(':') {
        Some((repo, tag)) if !repo.is_empty() && !tag.is_empty() && !tag.contains('/') => {
            (repo.to_owned(), tag.to_owned())
        }
        _ => panic!("want repo:tag, got {repo_tag:?}"),
    }
}

/// Copies `layout_ref` of the OCI layout at `layout_dir` to `registry` as `repo_tag`, with
/// `skopeo copy --all --preserve-digests`; returns the pushed digests (checked against skopeo's digest file).
pub fn push(layout_dir: &Path, layout_ref: &str, registry: &Registry, repo_tag: &str) -> Pushed {
    let (repo, tag) = split_repo_tag(repo_tag);
    let set = describe_layout_ref(layout_dir, layout_ref);
    let reference = registry.reference(repo_tag);
    let digest_file = tempfile::NamedTempFile::new_in(registry.root().join("client/tmp"))
        .expect("cannot create digest file");
    run(registry
        .skopeo()
        .args(["copy", "--all", "--preserve-digests", "--retry-times", "2"])
        .args(registry.skopeo_flags("dest-"))
        .arg("--digestfile")
        .arg(digest_file.path())
        .arg(format!("oci:{}:{layout_ref}", layout_dir.display()))
        .arg(format!("docker://{reference}")));
    let pushed = fs::read_to_string(digest_file.path()).expect("cannot read skopeo digest file");
    assert_eq!(
        pushed.trim(),
        set.top.digest,
        "skopeo pushed {reference} with a different digest than the layout's {layout_ref}"
    );
    Pushed {
        reference,
        repo,
        tag,
        set,
    }
}

/// A `skopeo inspect` command for `reference` ("repo:tag", "repo@digest" or full) with explicit credentials.
pub fn skopeo_inspect_cmd(
    reference: &str,
    registry: &Registry,
    creds: Option<(&str, &str)>,
) -> Command {
    let mut cmd = registry.skopeo();
    cmd.arg("inspect")
        .args(registry.skopeo_flags_with("", creds))
        .arg(format!("docker://{}", registry.reference(reference)));
    cmd
}

/// The exact manifest/index bytes the registry serves for `reference` (`skopeo inspect --raw`).
pub fn skopeo_inspect_raw(reference: &str, registry: &Registry) -> Vec<u8> {
    let mut cmd = skopeo_inspect_cmd(reference, registry, registry.credentials());
    run(cmd.arg("--raw")).stdout
}

/// The exact config blob bytes of the image at `reference` (`skopeo inspect --config --raw`; must be a single image).
pub fn skopeo_inspect_config_raw(reference: &str, registry: &Registry) -> Vec<u8> {
    let mut cmd = skopeo_inspect_cmd(reference, registry, registry.credentials());
    run(cmd.args(["--config", "--raw"])).stdout
}

/// Runs `skopeo inspect --raw` with the given credentials and returns the output, success or not.
pub fn skopeo_inspect_raw_as(
    reference: &str,
    registry: &Registry,
    creds: Option<(&str, &str)>,
) -> Output {
    let mut cmd = skopeo_inspect_cmd(reference, registry, creds);
    run_unchecked(cmd.arg("--raw"))
}

/// The standard images as pushed by [`seed_registry`].
#[derive(Clone, Debug)]
pub struct SeededImages {
    /// Layout the images were pushed from (the shared cache of [`standard_layout`]: do not modify).
    pub layout_dir: PathBuf,
    /// `library/alpine:3.20`: index of linux/amd64, linux/arm64, linux/arm/v7.
    pub alpine: Pushed,
    /// `app/base:1`: single-arch, two layers.
    pub base: Pushed,
    /// `app/web:1`: base's layers plus one.
    pub web: Pushed,
    /// `app/worker:1`: base's layers plus two.
    pub worker: Pushed,
    /// `app/big:1`: has a ~8 MiB layer.
    pub big: Pushed,
}

impl SeededImages {
    /// The big image's ~8 MiB layer (split into chunks by 3 MiB volumes).
    pub fn big_layer(&self) -> &super::images::Blob {
        self.big
            .image()
            .layers
            .iter()
            .max_by_key(|l| l.size)
            .expect("app/big has layers")
    }

    /// All five, in the order above.
    pub fn all(&self) -> [&Pushed; 5] {
        [&self.alpine, &self.base, &self.web, &self.worker, &self.big]
    }

    /// Every distinct blob (manifests, indexes, configs, layers) across the set, sorted by digest.
    pub fn all_blobs(&self) -> Vec<super::images::Blob> {
        let mut blobs: Vec<_> = self.all().iter().flat_map(|p| p.all_blobs()).collect();
        blobs.sort();
        blobs.dedup();
        blobs
    }
}

/// The standard layout, generated once and cached under `CARGO_TARGET_TMPDIR` (read-only: do not modify it).
///
/// Generation is deterministic and takes a couple of seconds in a debug build
/// (gzip of the ~8 MiB layer), so the result is kept in a directory named by a
/// hash of the generator's source (images.rs); a changed generator makes a new
/// one and older ones are swept. Concurrent processes build in private
/// directories and publish with an atomic rename, so they never see a half-written layout.
pub fn standard_layout() -> &'static StandardLayout {
    static LAYOUT: OnceLock<StandardLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ferry-standard-layout");
        fs::create_dir_all(&base).expect("cannot create standard layout cache dir");
        let key = sha256_hex(include_str!("images.rs").as_bytes())[..16].to_owned();
        let dir = base.join(&key);
        if !dir.join("index.json").exists() {
            let building = base.join(format!("building-{}", std::process::id()));
            let _ = fs::remove_dir_all(&building);
            write_standard_layout(&building);
            if let Err(e) = fs::rename(&building, &dir) {
                let _ = fs::remove_dir_all(&building);
                // Losing the race to another process is fine; anything else is not.
                assert!(
                    dir.join("index.json").exists(),
                    "cannot publish standard layout at {}: {e}",
                    dir.display()
                );
            }
        }
        sweep_stale_layouts(&base, &key);
        StandardLayout {
            alpine: describe_layout_ref(&dir, "alpine"),
            base: describe_layout_ref(&dir, "base"),
            web: describe_layout_ref(&dir, "web"),
            worker: describe_layout_ref(&dir, "worker"),
            big: describe_layout_ref(&dir, "big"),
            dir,
        }
    })
}

/// Removes cached layouts of other generator versions and build dirs of dead processes.
fn sweep_stale_layouts(base: &Path, key: &str) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let in_use = name == key
            || name
                .strip_prefix("building-")
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !in_use {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Pushes the standard set: library/alpine:3.20 (amd64+arm64+arm/v7), app/base:1, app/web:1, app/worker:1, app/big:1.
pub fn seed_registry(registry: &Registry) -> SeededImages {
    let layout = standard_layout();
    let dir = &layout.dir;
    SeededImages {
        layout_dir: dir.clone(),
        alpine: push(dir, "alpine", registry, "library/alpine:3.20"),
        base: push(dir, "base", registry, "app/base:1"),
        web: push(dir, "web", registry, "app/web:1"),
        worker: push(dir, "worker", registry, "app/worker:1"),
        big: push(dir, "big", registry, "app/big:1"),
    }
}

/// Copies `reference` (full, plain HTTP, no credentials) with skopeo into a `dir:` copy at `dir`
/// and checks it as a client would: skopeo succeeded, the manifest has `digest`, every blob
/// file hashes to its name. Returns the number of blob files.
pub fn copy_checked(registry: &Registry, reference: &str, dir: &Path, digest: &str) -> usize {
    let pulled = run_unchecked(
        registry
            .skopeo()
            .args(["copy", "--src-tls-verify=false", "--src-no-creds"])
            .arg(format!("docker://{reference}"))
            .arg(format!("dir:{}", dir.display())),
    );
    assert!(
        pulled.status.success(),
        "skopeo copy {reference}: {}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let manifest = fs::read(dir.join("manifest.json")).unwrap();
    assert_eq!(super::util::digest_bytes(&manifest), digest, "{reference}");
    let mut blobs = 0;
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() == 64 {
            let bytes = fs::read(entry.path()).unwrap();
            assert_eq!(sha256_hex(&bytes), name, "{reference}: blob {name}");
            blobs += 1;
        }
    }
    blobs
}
