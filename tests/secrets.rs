//! Registry passwords never show: with `-vv` and `--output json`, across `login` (right and
//! wrong password), `lock`, `build` and `import registry` (right and wrong password), no output
//! and no file ferry wrote holds the password or the base64 of `user:password`, except the
//! auth file `login` writes for that purpose (which must be private, 0600).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::ferry::Env;
use common::util::base64;
use common::*;

const USER: &str = "site-user";
const PASSWORD: &str = "Pw-7f3a9c-secret";
const WRONG: &str = "Wrong-5e1d2b-guess";

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(files(&p));
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out
}

/// The secrets to look for: both passwords, and base64 of `user:password` for each.
fn secrets() -> Vec<String> {
    let mut out = Vec::new();
    for password in [PASSWORD, WRONG] {
        out.push(password.to_string());
        out.push(base64(format!("{USER}:{password}").as_bytes()));
        // The same without padding, and URL-safe: some encoders write it so.
        let b64 = base64(format!("{USER}:{password}").as_bytes());
        out.push(
            b64.trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_"),
        );
    }
    out
}

/// Asserts none of the secrets is in `bytes`.
fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for secret in secrets() {
        assert!(
            !text.contains(&secret),
            "{what} holds a secret ({secret}):\n{text}"
        );
    }
}

/// Runs `cmd` with `stdin`; checks both streams for secrets; returns the output.
fn checked(what: &str, cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    let out = run_with(cmd, stdin, Duration::from_secs(120));
    assert_clean(&format!("{what}: stdout"), &out.stdout);
    assert_clean(&format!("{what}: stderr"), &out.stderr);
    out
}

#[test]
fn passwords_never_show_in_output_or_written_files() {
    let registry = Registry::start_htpasswd(USER, PASSWORD);
    seed_registry(&registry);
    let env = Env::new();
    let (_, public) = env.keys();
    let host = registry.addr();
    let ferry = |args: &[&str]| {
        let mut c = env.ferry();
        c.args(["-vv", "--output", "json"]).args(args);
        c
    };

    // login: wrong password (checked against the registry), then the right one.
    let out = checked(
        "login, wrong password",
        ferry(&["login", &host, "-u", USER, "--verify"]).env("FERRY_REGISTRY_PASSWORD", WRONG),
        Some(format!("{WRONG}\n").as_bytes()),
    );
    assert!(!out.status.success(), "a wrong password was accepted");
    let out = checked(
        "login",
        &mut ferry(&["login", &host, "-u", USER, "--verify"]),
        Some(format!("{PASSWORD}\n").as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let auth_file = env.path().join("home/.docker/config.json");
    let mode = std::fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the auth file is readable by others");
    // The check does find a secret where there is one: the auth file holds base64(user:pw).
    let stored = std::fs::read_to_string(&auth_file).unwrap();
    assert!(
        secrets().iter().any(|s| stored.contains(s)),
        "the auth file holds no credential the check would see:\n{stored}"
    );

    // lock and build with the stored credentials.
    let manifest = env.images_manifest(
        "release.yaml",
        &[
            format!("{host}/app/web:1"),
            format!("{host}/library/alpine:3.20"),
        ],
    );
    let manifest = manifest.to_str().unwrap();
    let out = checked("lock", &mut ferry(&["lock", manifest]), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = env.path().join("bundle");
    let key = env.path().join("keys/cosign.key");
    let out = checked(
        "build",
        &mut ferry(&[
            "build",
            manifest,
            "-o",
            bundle.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ]),
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // import with credentials from the environment: wrong, then right (a login file for
    // another host only, so the environment's are the ones used).
    std::fs::remove_file(&auth_file).unwrap();
    let import = |password: &str| {
        let mut c = ferry(&[
            "import",
            "registry",
            bundle.to_str().unwrap(),
            "--to",
            &format!("{host}/platform"),
            "--key",
            public.to_str().unwrap(),
        ]);
        c.env("FERRY_REGISTRY_USERNAME", USER)
            .env("FERRY_REGISTRY_PASSWORD", password);
        c
    };
    let out = checked("import, wrong password", &mut import(WRONG), None);
    assert!(
        !out.status.success(),
        "an import with a wrong password worked"
    );
    let out = checked("import", &mut import(PASSWORD), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Nothing ferry wrote holds a secret (the auth file was removed above).
    let written = files(env.path());
    assert!(written.len() > 10, "{written:?}");
    for file in written {
        assert_clean(&file.display().to_string(), &std::fs::read(&file).unwrap());
    }
}
