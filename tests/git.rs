//! End-to-end: Git repositories from a `git daemon` the test starts — lock, build, verify,
//! `import git` (every ref as upstream), real `git clone` / `git fetch` against `ferry serve`
//! (the bundle's repositories, and an imported directory with `--git-dir`); a delta carrying
//! only the new objects that imports on top of its base and is refused without it; a history
//! rewritten upstream refused on site without `--force`; refs that do not exist upstream.

mod common;

use std::path::{Path, PathBuf};

use common::ferry::{Env, fails, json, ok};
use common::git_server::{GitServer, Work, git, git_cmd, refs};
use common::served::Served;
use serde_json::Value;

fn manifest(env: &Env, name: &str, repos: &[String]) -> PathBuf {
    let mut text = String::from(
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: t, version: \"1\"}\nspec:\n  git:\n",
    );
    for r in repos {
        text.push_str(&format!("    - {r}\n"));
    }
    env.manifest(name, &text)
}

/// `ferry lock` then `ferry build` (signed) into OUT, optionally as a delta.
fn build(env: &Env, manifest: &Path, out: &str, since: Option<&Path>) -> PathBuf {
    let (key, _) = env.keys();
    ok(env.ferry().arg("lock").arg(manifest));
    let bundle = env.path().join(out);
    let mut cmd = env.ferry();
    cmd.arg("build")
        .arg(manifest)
        .arg("-o")
        .arg(&bundle)
        .arg("--key")
        .arg(&key);
    if let Some(base) = since {
        cmd.arg("--since").arg(base);
    }
    ok(&mut cmd);
    bundle
}

fn import(env: &Env, bundle: &Path, to: &Path, extra: &[&str]) -> std::process::Command {
    let (_, public) = env.keys();
    let mut cmd = env.ferry();
    cmd.args(["import", "git"])
        .arg(bundle)
        .arg("--to")
        .arg(to)
        .arg("--key")
        .arg(&public)
        .args(extra);
    cmd
}

/// The git artifacts of a bundle: (repository name, config JSON, bundle layer path if any).
fn git_entries(bundle: &Path) -> Vec<(String, Value, Option<PathBuf>)> {
    let blob = |digest: &str| {
        bundle
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("index.json")).unwrap()).unwrap();
    let mut out = Vec::new();
    for entry in index["manifests"].as_array().unwrap() {
        if entry["annotations"]["dev.ferry.kind"] != "git" {
            continue;
        }
        let manifest: Value = serde_json::from_slice(
            &std::fs::read(blob(entry["digest"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["artifactType"], "application/vnd.ferry.git.v1");
        let config: Value = serde_json::from_slice(
            &std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap(),
        )
        .unwrap();
        let layer = manifest["layers"]
            .as_array()
            .unwrap()
            .first()
            .map(|l| blob(l["digest"].as_str().unwrap()));
        out.push((config["name"].as_str().unwrap().to_string(), config, layer));
    }
    out
}

/// The number of objects in a bundle file's pack (its header: `PACK`, version, count).
fn pack_objects(bundle_file: &Path) -> u32 {
    let bytes = std::fs::read(bundle_file).unwrap();
    let start = bytes.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    assert_eq!(&bytes[start..start + 4], b"PACK");
    u32::from_be_bytes(bytes[start + 8..start + 12].try_into().unwrap())
}

/// A repository with two branches, an annotated and a lightweight tag, nested files.
fn seed(server: &GitServer, name: &str) -> Work {
    let upstream = server.create(name);
    let work = Work::new(&upstream);
    work.commit("README.md", "platform");
    work.commit("apps/argocd/values.yaml", "replicas: 1");
    work.git(&["tag", "-a", "v1.0.0", "-m", "release 1.0.0"]);
    work.git(&["checkout", "-q", "-b", "dev"]);
    work.commit("apps/extra.yaml", "dev only");
    work.git(&["tag", "light"]);
    work.git(&["checkout", "-q", "main"]);
    work.push_all();
    work
}

#[test]
fn carried_repository_equals_upstream_cloned_through_serve() {
    let server = GitServer::start();
    let env = Env::new();
    let _work = seed(&server, "platform");
    let upstream = server.path("platform");
    let m = manifest(
        &env,
        "m.yaml",
        &[
            format!("url: {}", server.url("platform")),
            format!(
                "{{url: {}, name: only-main, refs: [main, v1.0.0]}}",
                server.url("platform")
            ),
        ],
    );
    let bundle = build(&env, &m, "b1", None);
    let (_, public) = env.keys();
    ok(env
        .ferry()
        .arg("verify")
        .arg(&bundle)
        .arg("--key")
        .arg(&public));
    let entries = git_entries(&bundle);
    assert_eq!(entries.len(), 2);
    assert!(
        entries
            .iter()
            .all(|(_, c, l)| c["prerequisites"].is_null() && l.is_some())
    );

    // Imported: every ref as upstream; the subset only what it asked for.
    let site = env.path().join("site/git");
    let report = json(
        import(&env, &bundle, &site, &[])
            .arg("--output")
            .arg("json"),
    );
    assert_eq!(
        report["repositories"].as_array().unwrap().len(),
        2,
        "{report}"
    );
    assert_eq!(refs(&site.join("platform.git")), refs(&upstream));
    assert_eq!(
        refs(&site.join("only-main.git")),
        refs(&upstream)
            .lines()
            .filter(|l| l.ends_with("refs/heads/main") || l.ends_with("refs/tags/v1.0.0"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(
        git(&site.join("platform.git"), &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
    git(&site.join("platform.git"), &["fsck", "--strict"]);
    // A second import changes nothing.
    let again = json(
        import(&env, &bundle, &site, &[])
            .arg("--output")
            .arg("json"),
    );
    assert!(
        again["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["changed"].as_array().unwrap().is_empty() && r["created"] == false),
        "{again}"
    );

    // `git clone` against `ferry serve` (the bundle's repositories), every ref as upstream.
    let served = Served::start(&env, &bundle, &["--key", public.to_str().unwrap()]);
    served.wait_log("/git/platform.git");
    let clones = tempfile::tempdir().unwrap();
    let url = format!("http://{}/git/platform.git", served.addr);
    git(
        clones.path(),
        &["clone", "-q", "--mirror", &url, "served.git"],
    );
    assert_eq!(refs(&clones.path().join("served.git")), refs(&upstream));
    git(clones.path(), &["clone", "-q", &url, "checkout"]);
    assert_eq!(
        std::fs::read_to_string(clones.path().join("checkout/apps/argocd/values.yaml")).unwrap(),
        "replicas: 1"
    );
    // Read-only: a push is refused, and an unknown repository is a 404.
    let push = git_cmd(&clones.path().join("checkout"))
        .args(["push", "origin", "HEAD:refs/heads/pushed"])
        .output()
        .unwrap();
    assert!(!push.status.success());
    let missing = git_cmd(clones.path())
        .args(["ls-remote", &format!("http://{}/git/nope.git", served.addr)])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    drop(served);

    // The imported directory served the same way (`--git-dir`): clone, then fetch after a
    // second release moved main on.
    let served = Served::start(
        &env,
        &bundle,
        &[
            "--key",
            public.to_str().unwrap(),
            "--git-dir",
            site.to_str().unwrap(),
        ],
    );
    let url = format!("http://{}/git/platform.git", served.addr);
    git(clones.path(), &["clone", "-q", &url, "site-clone"]);
    let work = Work::new(&upstream);
    work.git(&["fetch", "-q", "origin"]);
    work.git(&["checkout", "-q", "-b", "main", "origin/main"]);
    let new_main = work.commit("apps/new.yaml", "second release");
    work.push_all();
    let bundle2 = build(&env, &m, "b2", None);
    ok(&mut import(&env, &bundle2, &site, &[]));
    let site_clone = clones.path().join("site-clone");
    git(&site_clone, &["fetch", "-q", "origin"]);
    assert_eq!(git(&site_clone, &["rev-parse", "origin/main"]), new_main);
}

#[test]
fn delta_carries_only_new_objects_and_needs_its_base() {
    let server = GitServer::start();
    let env = Env::new();
    let work = seed(&server, "platform");
    let upstream = server.path("platform");
    let m = manifest(
        &env,
        "m.yaml",
        &[format!("url: {}", server.url("platform"))],
    );
    let base = build(&env, &m, "base", None);
    let base_main = git(&upstream, &["rev-parse", "refs/heads/main"]);

    // Release 2: two commits on main, a new tag.
    work.commit("apps/a.yaml", &"a".repeat(5000));
    work.commit("apps/b.yaml", &"b".repeat(5000));
    work.git(&["tag", "-a", "v2.0.0", "-m", "release 2"]);
    work.push_all();
    let full = build(&env, &m, "full2", None);
    let delta = build(&env, &m, "delta2", Some(&base));

    let (_, config, layer) = git_entries(&delta).remove(0);
    let layer = layer.expect("the delta has new objects");
    let prerequisites: Vec<&str> = config["prerequisites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(prerequisites, [base_main.as_str()]);
    // Exactly the objects the base lacks: 2 commits, their trees and blobs, 1 tag.
    let new_objects = git(
        &upstream,
        &[
            "rev-list",
            "--objects",
            "--all",
            "--not",
            &base_main,
            "refs/heads/dev",
            "refs/tags/v1.0.0",
            "refs/tags/light",
        ],
    )
    .lines()
    .count() as u32;
    assert_eq!(pack_objects(&layer), new_objects);
    let full_layer = git_entries(&full).remove(0).2.unwrap();
    assert!(pack_objects(&full_layer) > new_objects);
    let (delta_size, full_size) = (
        std::fs::metadata(&layer).unwrap().len(),
        std::fs::metadata(&full_layer).unwrap().len(),
    );
    assert!(
        delta_size < full_size,
        "delta {delta_size} B, full {full_size} B"
    );

    // Without its base: refused, nothing written.
    let empty_site = env.path().join("empty-site");
    let e = fails(&mut import(&env, &delta, &empty_site, &[]));
    assert!(
        e.contains("git repository platform") && e.contains("base release"),
        "{e}"
    );
    assert!(!empty_site.join("platform.git").exists());

    // On top of its base: every ref as upstream.
    let site = env.path().join("site");
    ok(&mut import(&env, &base, &site, &[]));
    ok(&mut import(&env, &delta, &site, &[]));
    assert_eq!(refs(&site.join("platform.git")), refs(&upstream));
    git(&site.join("platform.git"), &["fsck", "--strict"]);

    // A delta with nothing new carries no bundle and still imports.
    let same = build(&env, &m, "delta3", Some(&full));
    assert!(git_entries(&same)[0].2.is_none());
    ok(&mut import(&env, &same, &site, &[]));
    assert_eq!(refs(&site.join("platform.git")), refs(&upstream));
}

#[test]
fn rewritten_history_is_refused_without_force() {
    let server = GitServer::start();
    let env = Env::new();
    let work = seed(&server, "platform");
    let upstream = server.path("platform");
    let m = manifest(
        &env,
        "m.yaml",
        &[format!("url: {}", server.url("platform"))],
    );
    let first = build(&env, &m, "b1", None);
    let site = env.path().join("site");
    ok(&mut import(&env, &first, &site, &[]));
    let before = refs(&site.join("platform.git"));

    // A force-push upstream: main loses its last commit and gets another.
    work.git(&["reset", "-q", "--hard", "HEAD~1"]);
    work.commit("rewritten.txt", "history rewritten");
    work.push_all();
    let second = build(&env, &m, "b2", None);
    let e = fails(&mut import(&env, &second, &site, &[]));
    assert!(
        e.contains("refs/heads/main") && e.contains("--force") && !e.contains("refs/heads/dev"),
        "{e}"
    );
    assert_eq!(
        refs(&site.join("platform.git")),
        before,
        "nothing may change"
    );
    assert!(
        git(
            &site.join("platform.git"),
            &["for-each-ref", "refs/ferry-incoming/"]
        )
        .is_empty()
    );
    ok(&mut import(&env, &second, &site, &["--force"]));
    assert_eq!(refs(&site.join("platform.git")), refs(&upstream));
}

#[test]
fn refs_missing_upstream_and_bad_entries_are_named() {
    let server = GitServer::start();
    let env = Env::new();
    let _work = seed(&server, "platform");
    let m = manifest(
        &env,
        "m.yaml",
        &[format!(
            "{{url: {}, refs: [main, v9]}}",
            server.url("platform")
        )],
    );
    let e = fails(env.ferry().arg("lock").arg(&m));
    assert!(e.contains("v9") && e.contains("m.yaml:6"), "{e}");
    let m = manifest(
        &env,
        "bad.yaml",
        &["{url: https://user:pw@example.com/x.git}".into()],
    );
    let e = fails(env.ferry().arg("lock").arg(&m));
    assert!(e.contains("credentials"), "{e}");
    let m = manifest(
        &env,
        "dup.yaml",
        &[
            format!("url: {}", server.url("platform")),
            format!("url: {}", server.url("platform")),
        ],
    );
    let e = fails(env.ferry().arg("lock").arg(&m));
    assert!(e.contains("duplicate repository name"), "{e}");
}

#[test]
fn site_import_fills_git_and_trees_and_renders_argocd_secrets() {
    let server = GitServer::start();
    let env = Env::new();
    let _work = seed(&server, "platform");
    let tree = env.path().join("models/small");
    std::fs::create_dir_all(tree.join("weights")).unwrap();
    std::fs::write(tree.join("weights/w.bin"), b"weights").unwrap();
    let m = env.manifest(
        "m.yaml",
        &format!(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {{name: t, version: \"1\"}}\nspec:\n  git:\n    - url: {}\n  trees:\n    - path: models/small\n",
            server.url("platform")
        ),
    );
    let bundle = build(&env, &m, "bundle", None);
    std::fs::create_dir_all(env.path().join("site")).unwrap();
    let site = env.manifest(
        "site/site.yaml",
        "apiVersion: ferry.dev/v1\nkind: Site\nmetadata: {name: plant-a}\nspec:\n  git: {dir: git, baseUrl: http://mirror.plant-a.lan/git}\n  trees: {dir: models}\n",
    );
    let (_, public) = env.keys();
    let out = json(
        env.ferry()
            .args(["--output", "json", "import"])
            .arg(&bundle)
            .arg("--site")
            .arg(&site)
            .arg("--key")
            .arg(&public),
    );
    let targets: Vec<&str> = out["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["git", "trees"], "{out}");
    let site_dir = env.path().join("site");
    assert_eq!(
        refs(&site_dir.join("git/platform.git")),
        refs(&server.path("platform"))
    );
    assert_eq!(
        std::fs::read(site_dir.join("models/small/weights/w.bin")).unwrap(),
        b"weights"
    );
    let secrets =
        std::fs::read_to_string(site_dir.join("ferry-site/argocd-repositories.yaml")).unwrap();
    let docs: Vec<Value> = secrets
        .split("---\n")
        .skip(1)
        .map(|d| serde_saphyr::from_str(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 1, "{secrets}");
    assert_eq!(
        docs[0]["metadata"]["labels"]["argocd.argoproj.io/secret-type"],
        "repository"
    );
    assert_eq!(docs[0]["stringData"]["type"], "git");
    assert_eq!(
        docs[0]["stringData"]["url"],
        "http://mirror.plant-a.lan/git/platform.git"
    );

    // `ferry install` on the filled site: nothing to write, and the readiness check covers
    // the repository's refs and the tree.
    std::fs::write(
        &site,
        "apiVersion: ferry.dev/v1\nkind: Site\nmetadata: {name: plant-a}\nspec:\n  git: {dir: git, baseUrl: http://mirror.plant-a.lan/git}\n  trees: {dir: models}\n  install:\n    command: [\"true\"]\n",
    )
    .unwrap();
    let out = json(
        env.ferry()
            .args(["--output", "json", "install"])
            .arg(&bundle)
            .arg("--site")
            .arg(&site)
            .arg("--key")
            .arg(&public),
    );
    let checks = out["checks"].as_array().unwrap();
    let check = |target: &str| {
        checks
            .iter()
            .find(|c| c["target"] == target)
            .unwrap_or_else(|| panic!("no {target} check: {out}"))
    };
    let upstream_refs = refs(&server.path("platform")).lines().count() as u64;
    assert_eq!(check("git")["checked"], upstream_refs, "{out}");
    assert_eq!(check("git")["problems"], serde_json::json!([]), "{out}");
    assert_eq!(check("trees")["checked"], 1, "{out}");
    assert_eq!(check("trees")["problems"], serde_json::json!([]), "{out}");
    for t in out["import"]["targets"].as_array().unwrap() {
        assert_eq!(t["written"], 0, "{out}");
    }
    assert_eq!(out["exit_code"], 0, "{out}");
}
