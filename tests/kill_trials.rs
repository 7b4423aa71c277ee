//! Kill trials: ferry is killed with SIGKILL at a random moment and run again.
//!
//! One release (an image, a chart, K3s-like files with a 3 MB blob split across volumes, apt
//! packages, a git repository, a directory tree with a 3 MB file) is built once; then each
//! command (`build`, `pack`, `unpack`, `import registry` from the volumes, `import --site`,
//! `import apt`, `import files`, `import git`, `import trees`) is run uninterrupted for
//! the reference result, and in each trial killed (SIGKILL to its process group) after a random
//! delay between 0 and 1.1 times the latest uninterrupted run's duration, then run again; trials
//! go on until N runs were killed mid-run (a run that finished first is checked too, and
//! counted apart). Each trial checks:
//!
//! - while killed: every blob file of a bundle hashes to its name, every file of an output tree
//!   with its final name is already the reference file (nothing half-written under a real name),
//!   every blob the registry holds hashes to its digest, and a git repository either has no
//!   refs yet or all of them, with every object they need (`git fsck`);
//! - the rerun succeeds, and its result is byte-identical to the reference: every file of the
//!   output trees by hash (so the bundle's `index.json` digest too), and for a registry its
//!   blobs, tags and manifest links by digest, and for a git repository its refs;
//! - no temporary file is left anywhere under the test's directory (HOME included).
//!
//! Environment: `FERRY_KILL_TRIALS` (runs killed mid-run per command, default 3), `FERRY_KILL_SEED` (the
//! random seed, printed; default from the clock), `FERRY_KILL_COMMANDS` (a comma-separated
//! subset of the names above). `scripts/soak.sh --trials N [--seed S]` runs many.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng, rngs::StdRng};

use common::ferry::{Env, ok};
use common::git_server::{GitServer, Work, git_cmd, refs};
use common::static_server::StaticServer;
use common::upstream;
use common::{Registry, push, sha256_hex, standard_layout};

/// The commands the trials kill, in the order they run.
const COMMANDS: [&str; 9] = [
    "build",
    "pack",
    "unpack",
    "import registry",
    "import --site",
    "import apt",
    "import files",
    "import git",
    "import trees",
];

/// Upstream servers, keys, a release manifest, and the bundle, volumes and unpacked bundle
/// made from it (the inputs of the later commands).
struct Fixture {
    env: Env,
    _source: Registry,
    _http: StaticServer,
    _git: GitServer,
    manifest: PathBuf,
}

impl Fixture {
    fn base(&self) -> &Path {
        self.env.path()
    }
}

fn fixture() -> Fixture {
    let env = Env::new();
    let source = Registry::start_plain();
    let layout = standard_layout();
    push(&layout.dir, "web", &source, "app/web:1");

    let mut k3s = b"\x7fELF\x02\x01\x01".to_vec();
    k3s.extend((0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let (http, upstream) = upstream::serve_release(&env, &k3s);
    let addr = source.addr();
    // A repository with a branch and an annotated tag, and a model-like tree with a 3 MB file.
    let git_server = GitServer::start();
    let work = Work::new(&git_server.create("platform"));
    work.commit("README.md", "platform");
    work.commit("apps/argocd/values.yaml", "replicas: 1");
    work.git(&["tag", "-a", "v1.0.0", "-m", "release 1.0.0"]);
    work.push_all();
    let model = env.path().join("models/small");
    std::fs::create_dir_all(model.join("tokenizer")).unwrap();
    std::fs::write(model.join("config.json"), b"{\"layers\": 2}\n").unwrap();
    std::fs::write(model.join("tokenizer/vocab.txt"), b"a\nb\nc\n").unwrap();
    std::fs::write(
        model.join("weights.bin"),
        (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2_246_822_519) >> 11) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let git_url = git_server.url("platform");
    let manifest = env.manifest(
        "release.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: platform, version: \"1\"}}\nspec:\n  images:\n    - {addr}/app/web:1\n  git:\n    - url: {git_url}\n  trees:\n    - path: models/small\n{upstream}"
        ),
    );
    std::fs::write(
        env.path().join("ferry-binary"),
        b"\x7fELF stand-in for pack\n",
    )
    .unwrap();
    let keys = env.path().join("keys");
    ok(env
        .ferry()
        .args(["key", "generate", "--output-dir"])
        .arg(&keys));
    ok(env
        .ferry()
        .args(["key", "generate", "--apt", "--output-dir"])
        .arg(&keys));
    let f = Fixture {
        env,
        _source: source,
        _http: http,
        _git: git_server,
        manifest,
    };
    // The inputs of pack, unpack and the imports.
    for name in ["build", "pack", "unpack"] {
        ok(&mut command(&f, name, None));
    }
    f
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

/// The directories command `name` writes (relative to the fixture's directory).
fn outputs(name: &str) -> &'static [&'static str] {
    match name {
        "build" => &["bundle"],
        "pack" => &["usb"],
        "unpack" => &["unpacked"],
        "import registry" => &[],
        "import --site" => &["site/mirror", "site/airgap", "site/ferry-site"],
        "import apt" => &["out/apt"],
        "import files" => &["out/files", "out/airgap"],
        "import git" => &["out/git"],
        "import trees" => &["out/trees"],
        other => panic!("unknown command {other}"),
    }
}

/// The command line of `name`; `registry` is the target registry of the registry imports.
fn command(f: &Fixture, name: &str, registry: Option<&Registry>) -> Command {
    let base = f.base();
    let keys = base.join("keys");
    let public = keys.join("cosign.pub");
    let unpacked = base.join("unpacked");
    let mut c = f.env.ferry();
    match name {
        "build" => {
            c.arg("build")
                .arg(&f.manifest)
                .arg("-o")
                .arg(base.join("bundle"))
                .arg("--key")
                .arg(keys.join("cosign.key"));
        }
        "pack" => {
            c.arg("pack")
                .arg(base.join("bundle"))
                .arg("-o")
                .arg(base.join("usb/bundle"))
                .args(["--volume-size", "1M"])
                // A small stand-in: the debug build of ferry is hundreds of megabytes.
                .arg("--ferry-binary")
                .arg(base.join("ferry-binary"));
        }
        "unpack" => {
            c.arg("unpack")
                .args(volumes(&base.join("usb")))
                .arg("-o")
                .arg(&unpacked);
        }
        "import registry" => {
            c.args(["import", "registry"])
                .arg(base.join("usb/bundle.001.tar"))
                .arg("--to")
                .arg(format!("{}/platform", registry.unwrap().addr()))
                .arg("--key")
                .arg(&public);
        }
        "import --site" => {
            let site = base.join("site/site.yaml");
            std::fs::create_dir_all(site.parent().unwrap()).unwrap();
            std::fs::write(
                &site,
                format!(
                    "apiVersion: ferry.dev/v1\nkind: Site\nmetadata:\n  name: plant-a\nspec:\n  registry:\n    host: {}/platform\n    systemDefaultRegistry: true\n  apt:\n    dir: mirror/apt\n    signingKey: ../keys/ferry-apt-secret.asc\n    suite: ferry\n    url: http://mirror.plant-a.lan/apt\n  charts:\n    dir: mirror/charts\n    baseUrl: http://mirror.plant-a.lan/charts\n  files:\n    dir: mirror/files\n    k3sAirgapDir: airgap\n  git:\n    dir: mirror/git\n    baseUrl: http://mirror.plant-a.lan/git\n  trees:\n    dir: mirror/models\n",
                    registry.unwrap().addr()
                ),
            )
            .unwrap();
            c.arg("import")
                .arg(&unpacked)
                .arg("--site")
                .arg(&site)
                .arg("--key")
                .arg(&public);
        }
        "import apt" => {
            c.args(["import", "apt"])
                .arg(&unpacked)
                .arg("--key")
                .arg(&public)
                .arg("--to")
                .arg(base.join("out/apt"))
                .arg("--signing-key")
                .arg(keys.join("ferry-apt-secret.asc"))
                .args(["--suite", "ferry"]);
        }
        "import files" => {
            c.args(["import", "files"])
                .arg(&unpacked)
                .arg("--key")
                .arg(&public)
                .arg("--to")
                .arg(base.join("out/files"))
                .arg("--k3s-airgap-dir")
                .arg(base.join("out/airgap"));
        }
        "import git" | "import trees" => {
            let kind = name.trim_start_matches("import ");
            c.args(["import", kind])
                .arg(&unpacked)
                .arg("--key")
                .arg(&public)
                .arg("--to")
                .arg(base.join("out").join(kind));
        }
        other => panic!("unknown command {other}"),
    }
    c
}

/// Whether a command pushes to a registry (a fresh one per run).
fn uses_registry(name: &str) -> bool {
    name == "import registry" || name == "import --site"
}

/// What a run left: every path of the output trees (relative to the fixture's directory) with
/// the hash of its content (the registry address replaced, as it differs per run), and the
/// registry's content by digest.
type Fingerprint = BTreeMap<String, String>;

fn fingerprint(f: &Fixture, name: &str, registry: Option<&Registry>) -> Fingerprint {
    let mut out = Fingerprint::new();
    for dir in outputs(name) {
        tree(f.base(), &f.base().join(dir), registry, &mut out);
    }
    if let Some(registry) = registry.filter(|_| uses_registry(name)) {
        registry_content(registry, &mut out);
    }
    out
}

/// Adds every path under `dir` to `out`: files by content hash, directories, symlinks.
fn tree(base: &Path, dir: &Path, registry: Option<&Registry>, out: &mut Fingerprint) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        let rel = path.strip_prefix(base).unwrap().display().to_string();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() && is_bare_repository(&path) {
            // A repository's files (packs, logs) differ run to run; what it holds does not.
            out.insert(rel, git_content(&path));
        } else if meta.is_dir() {
            out.insert(rel, "dir".into());
            tree(base, &path, registry, out);
        } else if meta.is_symlink() {
            let target = std::fs::read_link(&path).unwrap();
            out.insert(rel, format!("link {}", target.display()));
        } else {
            let name = path.file_name().unwrap().to_string_lossy();
            if name.ends_with(".sig") {
                // ECDSA signatures differ run to run (random nonce): checked by `ferry verify`.
                out.insert(rel, "signature".into());
                continue;
            }
            let mut bytes = std::fs::read(&path).unwrap();
            if let Some(r) = registry {
                bytes = replace(&bytes, r.addr().as_bytes(), b"REGISTRY");
            }
            if name.ends_with(".yaml") {
                // A Helm index says when it was written (`generated:`), as Helm's own does.
                bytes = without_generated(&bytes);
            }
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            out.insert(rel, format!("{:o} {}", mode, sha256_hex(&bytes)));
        }
    }
}

/// Whether `dir` is a bare git repository (an import's result, not a directory to walk).
fn is_bare_repository(dir: &Path) -> bool {
    dir.join("HEAD").is_file() && dir.join("objects").is_dir() && dir.join("refs").is_dir()
}

/// A git repository by what it holds: its refs and the objects they name, after `git fsck`
/// finds every object they need (a killed import must not leave a ref to a missing object).
fn git_content(repo: &Path) -> String {
    let fsck =
        common::run_unchecked(git_cmd(repo).args(["fsck", "--no-dangling", "--connectivity-only"]));
    assert!(
        fsck.status.success(),
        "{}: git fsck fails:\n{}",
        repo.display(),
        String::from_utf8_lossy(&fsck.stderr)
    );
    format!("git {}", sha256_hex(refs(repo).as_bytes()))
}

/// YAML text without its top-level `generated: "<time>"` line.
fn without_generated(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    text.split_inclusive('\n')
        .filter(|l| !l.starts_with("generated: "))
        .collect::<String>()
        .into_bytes()
}

/// `bytes` with every `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Adds the registry's blobs (each checked against its digest: no corrupt blob was accepted)
/// and its repositories' links (tags, manifest revisions, layers) to `out`; the registry's
/// own upload sessions (`_uploads`) are left out.
fn registry_content(registry: &Registry, out: &mut Fingerprint) {
    let v2 = registry.storage_dir().join("docker/registry/v2");
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, files);
                } else {
                    files.push(p);
                }
            }
        }
    }
    let mut files = Vec::new();
    walk(&v2, &mut files);
    for path in files {
        let rel = path.strip_prefix(&v2).unwrap().display().to_string();
        if rel.contains("/_uploads/") {
            continue;
        }
        if rel.starts_with("blobs/") && rel.ends_with("/data") {
            let hex = path
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap();
            let actual = common::sha256_file(&path);
            assert_eq!(actual, hex, "the registry holds a corrupt blob {rel}");
            out.insert(format!("registry {rel}"), "blob".into());
        } else {
            out.insert(
                format!("registry {rel}"),
                std::fs::read_to_string(&path).unwrap(),
            );
        }
    }
}

/// Paths anywhere under `dir` whose names say they are temporary files.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy();
                if is_temporary(&name) {
                    out.push(p.strip_prefix(base).unwrap().display().to_string());
                }
                if p.is_dir() && !p.is_symlink() {
                    walk(base, &p, out);
                }
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Whether a path of an output tree is, or is inside, a temporary file or directory (a scratch
/// directory and its lock are, too: the next run removes those of a killed one).
fn is_temporary(path: &str) -> bool {
    path.split('/').any(|name| {
        name.starts_with(".ferry")
            || name.starts_with("ferry-scratch-")
            || name.ends_with(".partial")
            || name.ends_with(".tmp")
    })
}

/// What a killed run left must already be correct: blob files hash to their names, and every
/// file under its final name is the reference's file.
fn check_killed_state(
    f: &Fixture,
    name: &str,
    registry: Option<&Registry>,
    reference: &Fingerprint,
    what: &str,
) {
    let state = fingerprint(f, name, registry);
    for (path, value) in &state {
        if is_temporary(path) || value == "dir" {
            continue;
        }
        if let Some(hex) = path.rsplit_once("/blobs/sha256/").map(|(_, h)| h)
            && !hex.contains('/')
        {
            let actual = common::sha256_file(f.base().join(path));
            assert_eq!(actual, hex, "{what}: the blob file {path} is corrupt");
        }
        if path.starts_with("registry ") {
            // Blobs are checked by registry_content; links may name what a later run adds.
            continue;
        }
        if value.starts_with("git ") && *value == format!("git {}", sha256_hex(b"")) {
            // A repository made but no ref moved yet (git_content ran fsck on it).
            continue;
        }
        assert!(
            Some(value) == reference.get(path),
            "{what}: {path} exists under its final name but is not the finished file:\n{}",
            differences(
                f.base(),
                &Fingerprint::from([(
                    path.clone(),
                    reference.get(path).cloned().unwrap_or_default()
                )]),
                &Fingerprint::from([(path.clone(), value.clone())]),
            )
        );
    }
}

/// The differences between two fingerprints, for a failure message; small differing files
/// are shown as `diff -u` against the reference copy kept in `reference/`.
fn differences(base: &Path, want: &Fingerprint, got: &Fingerprint) -> String {
    let mut lines = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => lines.push(format!("missing: {k}")),
            Some(g) if g != v => {
                lines.push(format!("differs: {k}: {v} -> {g}"));
                let (old, new) = (base.join("reference").join(k), base.join(k));
                if std::fs::metadata(&new).is_ok_and(|m| m.len() < 4096) {
                    let out = Command::new("diff").arg("-u").arg(&old).arg(&new).output();
                    if let Ok(out) = out {
                        lines.push(String::from_utf8_lossy(&out.stdout).into_owned());
                    }
                }
            }
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        lines.push(format!("extra: {k}"));
    }
    lines.join("\n")
}

/// Copies what command `name` wrote to `reference/`, for showing differences.
fn keep_reference(base: &Path, name: &str) {
    for dir in outputs(name) {
        let to = base.join("reference").join(dir);
        let _ = std::fs::remove_dir_all(&to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        common::run(Command::new("cp").arg("-a").arg(base.join(dir)).arg(&to));
    }
}

/// Removes what command `name` writes.
fn reset(f: &Fixture, name: &str) {
    for dir in outputs(name) {
        let _ = std::fs::remove_dir_all(f.base().join(dir));
    }
}

/// Trial settings from the environment.
struct Settings {
    trials: usize,
    seed: u64,
    commands: Vec<String>,
}

fn settings() -> Settings {
    let trials = std::env::var("FERRY_KILL_TRIALS")
        .ok()
        .map(|t| t.parse().expect("FERRY_KILL_TRIALS: a number"))
        .unwrap_or(3);
    let seed = std::env::var("FERRY_KILL_SEED")
        .ok()
        .map(|s| s.parse().expect("FERRY_KILL_SEED: a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000_000
        });
    let commands: Vec<String> = std::env::var("FERRY_KILL_COMMANDS")
        .ok()
        .map(|c| c.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_else(|| COMMANDS.iter().map(|s| s.to_string()).collect());
    for c in &commands {
        assert!(
            COMMANDS.contains(&c.as_str()),
            "FERRY_KILL_COMMANDS: unknown command {c:?}; one of {COMMANDS:?}"
        );
    }
    Settings {
        trials,
        seed,
        commands,
    }
}

/// Runs `cmd` in its own process group and kills the group with SIGKILL after `delay`;
/// returns `None` when it was killed, or how long it took when it finished first (successfully).
fn run_and_kill(cmd: &mut Command, delay: Duration, what: &str) -> Option<Duration> {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn ferry");
    let deadline = started + delay;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        let now = Instant::now();
        if now >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(1).min(deadline - now));
    };
    if let Some(status) = status {
        let took = started.elapsed();
        let mut stderr = String::new();
        use std::io::Read;
        let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
        assert!(status.success(), "{what}: failed without a kill:\n{stderr}");
        return Some(took);
    }
    // SAFETY: kill(2) on the child's own process group.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let status = child.wait().unwrap();
    if status.success() {
        return Some(started.elapsed());
    }
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{what}: {status}");
    None
}

/// Tally of one command's trials.
#[derive(Default)]
struct Tally {
    trials: usize,
    killed: usize,
    finished_first: usize,
    reference_ms: u128,
}

#[test]
fn killed_at_random_then_rerun_gives_the_uninterrupted_result() {
    let s = settings();
    eprintln!(
        "kill trials: FERRY_KILL_SEED={} FERRY_KILL_TRIALS={} FERRY_KILL_COMMANDS={}",
        s.seed,
        s.trials,
        s.commands.join(",")
    );
    let started = Instant::now();
    let f = fixture();
    let mut tallies: Vec<(String, Tally)> = Vec::new();
    for (ci, name) in s.commands.iter().enumerate() {
        let name = name.as_str();
        let mut rng = StdRng::seed_from_u64(s.seed.wrapping_add(ci as u64 * 0x9e37_79b9));
        // The reference: an uninterrupted run from nothing.
        reset(&f, name);
        let registry = uses_registry(name).then(Registry::start_plain);
        let t = Instant::now();
        ok(&mut command(&f, name, registry.as_ref()));
        let reference_time = t.elapsed();
        let reference = fingerprint(&f, name, registry.as_ref());
        assert!(!reference.is_empty(), "{name}: wrote nothing");
        let left = temporaries(f.base());
        assert!(
            left.is_empty(),
            "{name}: an uninterrupted run left {left:?}"
        );
        keep_reference(f.base(), name);
        drop(registry);
        let mut tally = Tally {
            reference_ms: reference_time.as_millis(),
            ..Tally::default()
        };
        // Kill delays are drawn up to 1.1 times the latest uninterrupted duration (machine load
        // changes it), until `trials` runs were killed mid-run (at most 3 times as many tries).
        let mut estimate = reference_time;
        let mut trial = 0;
        while tally.killed < s.trials && trial < 3 * s.trials {
            trial += 1;
            let max = estimate.as_micros() as u64 * 11 / 10 + 1;
            let delay = Duration::from_micros(rng.gen_range(0..max));
            let what = format!(
                "{name}, trial {trial} (FERRY_KILL_SEED={} FERRY_KILL_COMMANDS='{name}'), killed after {delay:?}",
                s.seed
            );
            reset(&f, name);
            let registry = uses_registry(name).then(Registry::start_plain);
            let finished = run_and_kill(&mut command(&f, name, registry.as_ref()), delay, &what);
            tally.trials += 1;
            if let Some(took) = finished {
                tally.finished_first += 1;
                estimate = took;
            } else {
                tally.killed += 1;
                check_killed_state(&f, name, registry.as_ref(), &reference, &what);
                ok(&mut command(&f, name, registry.as_ref()));
            }
            let result = fingerprint(&f, name, registry.as_ref());
            assert!(
                result == reference,
                "{what}, then run again: the result differs from an uninterrupted run:\n{}",
                differences(f.base(), &reference, &result)
            );
            let left = temporaries(f.base());
            assert!(
                left.is_empty(),
                "{what}, then run again: temporary files left: {left:?}"
            );
            // The signatures (left out of the comparison) still verify.
            if let Some(dir) = ["build", "pack", "unpack"]
                .contains(&name)
                .then(|| outputs(name)[0])
            {
                ok(f.env
                    .ferry()
                    .arg("verify")
                    .arg(f.base().join(dir))
                    .arg("--key")
                    .arg(f.base().join("keys/cosign.pub")));
            }
        }
        eprintln!(
            "kill trials: {name}: {} runs, {} killed mid-run, {} finished before the kill (uninterrupted run {} ms)",
            tally.trials, tally.killed, tally.finished_first, tally.reference_ms
        );
        tallies.push((name.to_string(), tally));
    }
    eprintln!("kill trials: summary (seed {}):", s.seed);
    eprintln!(
        "| command | runs | killed mid-run, then rerun | finished before the kill | uninterrupted run |"
    );
    eprintln!("| --- | --- | --- | --- | --- |");
    for (name, t) in &tallies {
        eprintln!(
            "| `{name}` | {} | {} | {} | {} ms |",
            t.trials, t.killed, t.finished_first, t.reference_ms
        );
    }
    eprintln!(
        "kill trials: all passed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
