//! End-to-end: registries with bearer-token auth, as Docker Hub, Quay and Harbor do it — a real
//! registry started with `auth: token:` and the harness's token server (tests/common/token.rs).
//! Lock and build pull through tokens with the auth file's credentials, import pushes through
//! tokens with push scope, and `ferry login --verify` checks a password at the token realm.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::ferry::{Env, fails, json, ok};
use common::*;
use serde_json::Value;

/// The token server's user and password (a colon in the password on purpose).
const USER: &str = "ferry";
const PASS: &str = "t0ken:s3cret";
/// A wrong password distinctive enough to search the output for.
const WRONG: &str = "not-the-pw-4711";

fn manifest_text(entries: &[String]) -> String {
    let mut text = String::from(
        "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: token, version: \"1\"}\nspec:\n  platforms: [linux/amd64]\n  images:\n",
    );
    for e in entries {
        text += &format!("    - {e}\n");
    }
    text
}

/// Runs a ferry command and returns its output, success or not.
fn output(cmd: &mut std::process::Command) -> Output {
    cmd.output().expect("run ferry")
}

fn all_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the output shows neither the password nor a token (JWTs start with "eyJ").
fn assert_no_secrets(text: &str, password: &str) {
    assert!(!text.contains(password), "the password leaked:\n{text}");
    assert!(!text.contains("eyJ"), "a token leaked:\n{text}");
}

/// `ferry -v build MANIFEST -o bundle` in `env`, which must succeed without printing the
/// password, and verify; returns the bundle.
fn build_with_tokens(env: &Env, manifest: &Path) -> std::path::PathBuf {
    let bundle = env.path().join("bundle");
    let out = output(
        env.ferry()
            .arg("-v")
            .arg("build")
            .arg(manifest)
            .arg("-o")
            .arg(&bundle),
    );
    assert!(out.status.success(), "{}", all_text(&out));
    assert_no_secrets(&all_text(&out), PASS);
    ok(env.ferry().arg("verify").arg(&bundle).arg("--no-signature"));
    bundle
}

/// Asserts that every layer of `image` is in `bundle`.
fn assert_has_layers(bundle: &Path, image: &ImageSet) {
    let blobs = bundle.join("blobs/sha256");
    for layer in &image.image().layers {
        assert!(blobs.join(layer.hex()).is_file(), "{}", layer.digest);
    }
}

#[test]
fn lock_and_build_from_a_token_registry_with_the_auth_file() {
    let registry = Registry::start_token(USER, PASS);
    let seeded = seed_registry(&registry);
    let server = registry.token_server().unwrap();
    let addr = registry.addr();
    let env = Env::new();
    let manifest = env.manifest(
        "release.yaml",
        &manifest_text(&[
            format!("{addr}/app/web:1"),
            format!("{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64]}}"),
        ]),
    );

    // No credentials: refused at the token realm, and ferry says what to do, at once.
    server.clear_requests();
    let err = fails(env.ferry().arg("lock").arg(&manifest));
    assert!(
        err.contains("unauthorized") && err.contains(&addr) && err.contains("ferry login"),
        "{err}"
    );
    let anonymous = server.requests();
    assert!(
        !anonymous.is_empty()
            && anonymous
                .iter()
                .all(|r| r.status == 401 && r.user.is_none()),
        "{anonymous:#?}"
    );
    // At most one refused request per image (lock resolves them in parallel), never retried.
    assert!(anonymous.len() <= 2, "retried a refusal: {anonymous:#?}");

    // Wrong password: the same clear error, without the password.
    env.login(&addr, USER, WRONG);
    server.clear_requests();
    let out = output(env.ferry().arg("-v").arg("lock").arg(&manifest));
    assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unauthorized") && err.contains(&addr) && err.contains("ferry login"),
        "{err}"
    );
    assert_no_secrets(&all_text(&out), WRONG);
    let refused = server.requests();
    assert!(
        !refused.is_empty()
            && refused
                .iter()
                .all(|r| r.status == 401 && r.user.as_deref() == Some(USER)),
        "{refused:#?}"
    );
    assert!(refused.len() <= 2, "retried a refusal: {refused:#?}");

    // The right password in the auth file: build (which locks first) pulls through tokens.
    env.login(&addr, USER, PASS);
    server.clear_requests();
    let bundle = build_with_tokens(&env, &manifest);
    let index: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("index.json")).unwrap()).unwrap();
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert!(digests.contains(&seeded.web.digest()), "{index:#}");
    assert_has_layers(&bundle, &seeded.web);

    // Pulling asks for pull scope on the repositories it reads, and gets only that.
    let requests = server.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.status, 200, "{r:#?}");
        assert!(r.scopes.iter().all(|s| s.ends_with(":pull")), "{r:#?}");
        assert!(r.granted.iter().all(|g| g.actions == ["pull"]), "{r:#?}");
    }
    let names: std::collections::BTreeSet<&str> = requests
        .iter()
        .flat_map(|r| r.granted.iter().map(|g| g.name.as_str()))
        .collect();
    assert!(
        names.contains("app/web") && names.contains("library/alpine"),
        "{names:?}"
    );
}

/// A bundle (unsigned) of alpine (its whole index), web and worker from a plain registry.
fn unsigned_bundle(env: &Env) -> (Registry, SeededImages, std::path::PathBuf) {
    let source = Registry::start_plain();
    let seeded = seed_registry(&source);
    let addr = source.addr();
    let manifest = env.manifest(
        "release.yaml",
        &manifest_text(&[
            format!(
                "{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64, linux/arm/v7]}}"
            ),
            format!("{addr}/app/web:1"),
            format!("{addr}/app/worker:1"),
        ]),
    );
    let bundle = env.path().join("bundle");
    ok(env
        .ferry()
        .arg("build")
        .arg(&manifest)
        .arg("-o")
        .arg(&bundle));
    (source, seeded, bundle)
}

fn import(
    env: &Env,
    bundle: &Path,
    to: &str,
    creds: Option<(&str, &str)>,
) -> std::process::Command {
    let mut cmd = env.ferry();
    cmd.args(["--output", "json", "import", "registry"])
        .arg(bundle)
        .arg("--to")
        .arg(to)
        .arg("--no-signature");
    if let Some((user, pass)) = creds {
        cmd.env("FERRY_REGISTRY_USERNAME", user)
            .env("FERRY_REGISTRY_PASSWORD", pass);
    }
    cmd
}

#[test]
fn import_into_a_token_registry_pushes_with_push_scope() {
    let env = Env::new();
    let (source, seeded, bundle) = unsigned_bundle(&env);
    let mapped = source.addr().replace(':', "_");
    let target = Registry::start_token(USER, PASS);
    let server = target.token_server().unwrap();
    let to = format!("{}/site", target.addr());

    // No credentials, then a wrong password: refused clearly, once, before any blob is tried.
    server.clear_requests();
    let err = fails(&mut import(&env, &bundle, &to, None));
    assert!(
        err.contains("unauthorized") && err.contains(&target.addr()) && err.contains("login"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1, "{:#?}", server.requests());
    server.clear_requests();
    let out = output(&mut import(&env, &bundle, &to, Some((USER, WRONG))));
    assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unauthorized") && err.contains(&target.addr()),
        "{err}"
    );
    assert_no_secrets(&all_text(&out), WRONG);
    let refused = server.requests();
    assert!(refused.iter().all(|r| r.status == 401), "{refused:#?}");
    // One refusal, not one per blob: an LDAP-backed registry may lock the account.
    assert_eq!(
        refused.len(),
        1,
        "a refused password was tried again: {refused:#?}"
    );

    // A user who may only pull: the push is refused clearly, and not retried.
    server.set_allowed_actions(&["pull"]);
    server.clear_requests();
    let err = fails(&mut import(&env, &bundle, &to, Some((USER, PASS))));
    assert!(
        err.contains("unauthorized") && err.contains(&target.addr()),
        "{err}"
    );
    // The refused push is not retried (a few blobs may race for the first token of a
    // repository), and no token grants push.
    let read_only = server.requests();
    assert!(read_only.len() <= 40, "{read_only:#?}");
    assert!(
        read_only
            .iter()
            .all(|r| r.granted.iter().all(|g| g.actions == ["pull"])),
        "{read_only:#?}"
    );
    server.set_allowed_actions(&["pull", "push"]);

    // The right credentials: every image lands digest for digest.
    server.clear_requests();
    let out = output(&mut import(&env, &bundle, &to, Some((USER, PASS))));
    assert!(out.status.success(), "{}", all_text(&out));
    assert_no_secrets(&all_text(&out), PASS);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["uploaded_blobs"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["mounted_blobs"].as_u64().unwrap() > 0,
        "web and worker share base's layers: they should be mounted, not uploaded twice: {report}"
    );
    for (path, digest) in [
        (
            format!("site/{mapped}/library/alpine:3.20"),
            seeded.alpine.digest(),
        ),
        (format!("site/{mapped}/app/web:1"), seeded.web.digest()),
        (
            format!("site/{mapped}/app/worker:1"),
            seeded.worker.digest(),
        ),
    ] {
        assert_eq!(
            digest_bytes(&skopeo_inspect_raw(&path, &target)),
            digest,
            "{path}"
        );
    }
    let requests = server.requests();
    let web = format!("site/{mapped}/app/web");
    assert!(
        requests.iter().any(|r| r.status == 200
            && r.scopes.contains(&format!("repository:{web}:pull,push"))
            && r.granted
                .iter()
                .any(|g| g.name == web && g.actions == ["pull", "push"])),
        "no push token for {web}: {requests:#?}"
    );
    assert!(requests.iter().all(|r| r.status == 200), "{requests:#?}");
    // A cross-repository mount needs one token for both repositories, and got it.
    assert!(
        requests.iter().any(|r| r.granted.len() == 2
            && r.granted[0].actions == ["pull", "push"]
            && r.granted[1].actions == ["pull"]),
        "no mount token: {requests:#?}"
    );

    // Again: nothing to upload.
    let again = json(&mut import(&env, &bundle, &to, Some((USER, PASS))));
    assert_eq!(again["uploaded_blobs"], 0, "{again}");
    assert_eq!(again["pushed_manifests"], 0, "{again}");
}

#[test]
fn login_verify_checks_the_password_at_the_token_realm() {
    let registry = Registry::start_token(USER, PASS);
    let server = registry.token_server().unwrap();
    let env = Env::new();
    let auth_file = env.path().join("home/.docker/config.json");
    let login = |password: &str| {
        let mut cmd = env.ferry();
        cmd.args(["login", "--verify", "-u", USER])
            .arg(registry.addr());
        run_with(
            &mut cmd,
            Some(format!("{password}\n").as_bytes()),
            Duration::from_secs(120),
        )
    };

    let out = login(WRONG);
    assert_eq!(out.status.code(), Some(1), "{}", all_text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unauthorized") && err.contains(&registry.addr()),
        "{err}"
    );
    assert_no_secrets(&all_text(&out), WRONG);
    assert!(!auth_file.exists(), "a refused password was saved");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.status == 401 && r.user.as_deref() == Some(USER)),
        "{:#?}",
        server.requests()
    );

    server.clear_requests();
    let out = login(PASS);
    assert!(out.status.success(), "{}", all_text(&out));
    assert_no_secrets(&all_text(&out), PASS);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("checked with the registry"),
        "{}",
        all_text(&out)
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.status == 200 && r.user.as_deref() == Some(USER)),
        "{:#?}",
        server.requests()
    );
    let saved = std::fs::read_to_string(&auth_file).unwrap();
    assert!(
        saved.contains(&registry.addr()) && !saved.contains(PASS),
        "{saved}"
    );
}

#[test]
fn build_from_a_token_registry_asks_v2_once_and_tokens_per_repository() {
    use common::faultproxy::{FaultProxy, Faults};
    let registry = Registry::start_token(USER, PASS);
    let seeded = seed_registry(&registry);
    let server = registry.token_server().unwrap();
    let proxy = FaultProxy::start(&registry.addr(), Faults::default());
    let addr = proxy.addr().to_string();
    let env = Env::new();
    env.login(&addr, USER, PASS);
    let manifest = env.manifest(
        "release.yaml",
        &manifest_text(&[
            format!("{addr}/app/web:1"),
            format!("{addr}/app/big:1"),
            format!("{{ref: {addr}/library/alpine:3.20, platforms: [linux/amd64, linux/arm64]}}"),
        ]),
    );
    server.clear_requests();
    let bundle = build_with_tokens(&env, &manifest);
    assert_has_layers(&bundle, &seeded.web);

    let heads = proxy.request_heads();
    let probes = heads.iter().filter(|h| h.starts_with("GET /v2/ ")).count();
    let tokens = server.requests();
    eprintln!(
        "build: {} registry requests ({probes} GET /v2/), {} token requests",
        heads.len(),
        tokens.len()
    );
    assert_eq!(probes, 1, "{heads:#?}");
    // Every request but the probe carries a token, and none was refused.
    assert!(
        heads
            .iter()
            .filter(|h| !h.starts_with("GET /v2/ "))
            .all(|h| h.contains("authorization: Bearer ") || h.contains("Authorization: Bearer ")),
        "{heads:#?}"
    );
    for r in &tokens {
        assert_eq!(r.status, 200, "{r:#?}");
        assert_eq!(r.scopes.len(), 1, "{r:#?}");
        assert!(r.scopes[0].ends_with(":pull"), "{r:#?}");
    }
    let scopes: std::collections::BTreeSet<&str> =
        tokens.iter().map(|r| r.scopes[0].as_str()).collect();
    assert_eq!(
        scopes,
        [
            "repository:app/big:pull",
            "repository:app/web:pull",
            "repository:library/alpine:pull"
        ]
        .into(),
        "{tokens:#?}"
    );
}
