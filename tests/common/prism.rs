//! Stoplight Prism as a validating mock of Harbor's API, built from Harbor's own API description
//! (`tests/specs/harbor/swagger.yaml`).
//!
//! Prism checks every request against the spec. A request the spec rejects (a missing query
//! parameter, a body property of the wrong type, ...) gets `400` (or `422` where the operation
//! defines no 400) with an `sl-violations` header, and a `Violation: request...` line in Prism's
//! log. [`Prism::assert_no_request_violations`] fails a test on any such line, so ferry is held to
//! the spec even where a client might shrug off the 400.
//!
//! Prism answers with the spec's examples: the lowest 2xx by default, any status the operation
//! defines when the request carries `Prefer: code=N` (put it in front with the fault proxy's
//! `add_request_headers`). A status the operation does not define is answered 404 by Prism
//! itself ("Requested status code N is not defined in the document").
//!
//! Prism ignores `basePath`, so [`Prism::start_harbor`] serves a copy of the spec whose paths carry
//! the `/api/v2.0` prefix: clients use [`Prism::api_base`], `http://127.0.0.1:PORT/api/v2.0`,
//! exactly as they would a real Harbor's.
//!
//! Prism runs without `--errors`: request violations are answered 400/422 either way (see above);
//! `--errors` only adds turning violations in Prism's *own* mock responses into 500s, and Prism
//! has one on every `HEAD` whose answer declares a body schema (Harbor's `HEAD /projects` 404: an
//! empty body is "not an object"), which would make "project missing" untestable.
//!
//! Finding Prism: `$FERRY_PRISM`, else `tests/tools/node_modules/.bin/prism` (what
//! `scripts/test.sh` installs with `npm ci --prefix tests/tools`, pinned by
//! `tests/tools/package-lock.json`), else `prism` on `PATH`. Without one the test fails and says
//! how to install it: a silently skipped contract test would prove nothing.

use std::fs::{self, File};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::registry::KEEP_ENV;
use super::util::free_port;

/// Environment variable naming the prism binary to use.
pub const PRISM_ENV: &str = "FERRY_PRISM";
/// Harbor's API description, as published by Harbor (v2.16.0).
pub const HARBOR_SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/specs/harbor/swagger.yaml"
);
/// Harbor's API base path (the spec's `basePath`).
pub const HARBOR_BASE_PATH: &str = "/api/v2.0";
/// Where `scripts/test.sh` installs Prism.
const LOCAL_PRISM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/tools/node_modules/.bin/prism"
);
/// How long Prism may take to start (Node parses a 10,000-line spec; CI machines are busy).
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How many ports to try when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 5;

/// A running Prism mock server; killed when dropped.
pub struct Prism {
    child: Child,
    dir: Option<TempDir>,
    root: PathBuf,
    port: u16,
    base_path: String,
}

/// The prism binary: `$FERRY_PRISM`, the project-local install, or `prism` on `PATH`.
pub fn prism_binary() -> PathBuf {
    if let Some(path) = std::env::var_os(PRISM_ENV) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{PRISM_ENV}={} does not name a file; unset it or point it at a prism binary",
            path.display()
        );
        return path;
    }
    if Path::new(LOCAL_PRISM).is_file() {
        return PathBuf::from(LOCAL_PRISM);
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("prism"))
            .find(|p| p.is_file())
    }) {
        return found;
    }
    panic!(
        "Stoplight Prism (the validating mock of Harbor's API) is not installed: no ${PRISM_ENV}, \
         no {LOCAL_PRISM}, no prism on PATH. Install the pinned version with \
         `npm ci --prefix tests/tools` (scripts/test.sh does this; needs Node.js >= 18.20 and npm), \
         or set {PRISM_ENV} to a prism binary"
    );
}

/// Harbor's spec with every path under `base_path`: Prism matches paths literally.
pub fn with_base_path(spec: &str, base_path: &str) -> String {
    let base_path = base_path.trim_end_matches('/');
    let mut out = String::with_capacity(spec.len() + 8192);
    let mut in_paths = false;
    let mut rewritten = 0;
    for line in spec.lines() {
        // A top-level key starts a section; only keys directly under `paths:` are paths.
        if !line.is_empty() && !line.starts_with([' ', '#']) {
            in_paths = line.trim_end() == "paths:";
        }
        let line = if in_paths {
            if let Some(rest) = line.strip_prefix("  /") {
                rewritten += 1;
                format!("  {base_path}/{rest}")
            } else if let Some(rest) = line.strip_prefix("  '/") {
                rewritten += 1;
                format!("  '{base_path}/{rest}")
            } else {
                line.to_string()
            }
        } else if line.starts_with("basePath:") {
            "basePath: /".to_string()
        } else {
            line.to_string()
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert!(rewritten > 0, "no paths found under `paths:` in the spec");
    out
}

impl Prism {
    /// Serves Harbor's API description at `http://127.0.0.1:PORT/api/v2.0`.
    pub fn start_harbor() -> Prism {
        let spec = fs::read_to_string(HARBOR_SPEC)
            .unwrap_or_else(|e| panic!("cannot read {HARBOR_SPEC}: {e}"));
        Prism::start(&with_base_path(&spec, HARBOR_BASE_PATH), HARBOR_BASE_PATH)
    }

    /// Serves the Swagger/OpenAPI document `spec` (whose paths already carry `base_path`) on a
    /// random loopback port and waits until it listens; panics with Prism's log otherwise.
    pub fn start(spec: &str, base_path: &str) -> Prism {
        let binary = prism_binary();
        let dir = tempfile::Builder::new()
            .prefix("ferry-prism-")
            .tempdir()
            .expect("cannot create Prism temp dir");
        let root = dir.path().to_path_buf();
        fs::write(root.join("spec.yaml"), spec).expect("cannot write spec.yaml");
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let log = File::create(root.join("prism.log")).expect("cannot create prism.log");
            let mut cmd = Command::new(&binary);
            cmd.args(["mock", "--host", "127.0.0.1", "--port"])
                .arg(port.to_string())
                .arg(root.join("spec.yaml"))
                .current_dir(&root)
                // Plain log lines, whatever the terminal.
                .env("NO_COLOR", "1")
                .env("FORCE_COLOR", "0")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cannot clone log handle"))
                .stderr(log);
            let child = cmd.spawn().unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}); Prism needs Node.js on PATH. Reinstall with `npm ci --prefix tests/tools`",
                    binary.display()
                )
            });
            // The TempDir joins once Prism is up, so a failed attempt's drop only kills it.
            let mut prism = Prism {
                child,
                dir: None,
                root: root.clone(),
                port,
                base_path: base_path.trim_end_matches('/').to_string(),
            };
            match prism.wait_ready() {
                Ok(()) => {
                    prism.dir = Some(dir);
                    return prism;
                }
                Err(log) => last_log = log,
            }
        }
        panic!(
            "Prism could not bind a free port in {PORT_ATTEMPTS} attempts\n--- last Prism log ---\n{}",
            last_log.trim_end()
        );
    }

    /// Waits for "Prism is listening" and a TCP connect; `Err(log)` when the port was taken.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot poll Prism") {
                let log = self.log();
                if log.contains("EADDRINUSE") {
                    return Err(log);
                }
                panic!(
                    "Prism exited ({status}) before listening on {}\n--- Prism log ---\n{}",
                    self.addr(),
                    log.trim_end()
                );
            }
            if self.log().contains("Prism is listening") && TcpStream::connect(self.addr()).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "Prism did not listen on {} within {START_TIMEOUT:?}\n--- Prism log ---\n{}",
                    self.addr(),
                    self.log().trim_end()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// "http://127.0.0.1:PORT".
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The API base clients use: "http://127.0.0.1:PORT/api/v2.0" for Harbor.
    pub fn api_base(&self) -> String {
        format!("{}{}", self.url(), self.base_path)
    }

    /// The API base as reached through a proxy at `addr` ("127.0.0.1:PORT").
    pub fn api_base_via(&self, addr: &str) -> String {
        format!("http://{addr}{}", self.base_path)
    }

    /// Prism's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("prism.log")).unwrap_or_default()
    }

    /// The requests Prism received, as "method /path" (lower-case method, no query).
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("Request received"))
            .filter_map(|l| {
                let after = l.split("[HTTP SERVER] ").nth(1)?;
                let mut words = after.split_whitespace();
                Some(format!("{} {}", words.next()?, words.next()?))
            })
            .collect()
    }

    /// The lines in which Prism reported a request that breaks the spec.
    pub fn request_violations(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("Violation: request") || l.contains("Request did not pass"))
            .map(|l| l.trim().to_string())
            .collect()
    }

    /// Panics (with Prism's log) if any request broke the spec.
    pub fn assert_no_request_violations(&self) {
        let violations = self.request_violations();
        assert!(
            violations.is_empty(),
            "requests broke Harbor's API description:\n{}\n--- Prism log ---\n{}",
            violations.join("\n"),
            self.log().trim_end()
        );
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.dir.take()
            && std::env::var_os(KEEP_ENV).is_some()
        {
            eprintln!("keeping Prism dir {}", dir.keep().display());
        }
    }
}
