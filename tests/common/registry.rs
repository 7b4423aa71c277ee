//! A real CNCF distribution registry (`docker-registry serve`) per test: plain, htpasswd or
//! bearer-token auth, with or without TLS.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::token::TokenServer;
use super::util::{base64, describe, free_port, run, run_with};

/// The registry binary (Debian's `docker-registry` package).
pub const REGISTRY_BIN: &str = "docker-registry";
/// How long to wait for a registry to answer `/v2/`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How many ports to try when another process takes the chosen one first.
const PORT_ATTEMPTS: usize = 8;
/// Set this environment variable to keep registry temp dirs (storage, config, log) after a test.
pub const KEEP_ENV: &str = "FERRY_TEST_KEEP";
/// The `service` of token-auth registries (the tokens' audience).
pub const TOKEN_SERVICE: &str = "ferry-test-registry";
/// The `issuer` of token-auth registries' tokens.
pub const TOKEN_ISSUER: &str = "ferry-test-token-issuer";

/// How to configure a test registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Require HTTP basic auth with this `(user, password)` (bcrypt htpasswd file).
    pub auth: Option<(String, String)>,
    /// Serve HTTPS with a certificate for 127.0.0.1/localhost signed by a fresh test CA.
    pub tls: bool,
    /// Require bearer tokens (`auth: token:`) from a [`TokenServer`] started beside the registry,
    /// which issues them to this `(user, password)`. Excludes `auth`.
    pub token: Option<(String, String)>,
}

/// An HTTP response from [`Registry::http`].
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Header lines as `(name, value)`, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for HEAD).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A running `docker-registry` on 127.0.0.1:PORT with its own temp dir; killed and removed on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    dir: Option<TempDir>,
    root: PathBuf,
    port: u16,
    options: RegistryOptions,
    token: Option<TokenServer>,
}

impl Registry {
    /// Starts a plain-HTTP registry without auth.
    pub fn start_plain() -> Self {
        Self::start(RegistryOptions::default())
    }

    /// Starts a plain-HTTP registry requiring basic auth as `user`/`pass`.
    pub fn start_htpasswd(user: &str, pass: &str) -> Self {
        Self::start(RegistryOptions {
            auth: Some((user.to_owned(), pass.to_owned())),
            ..Default::default()
        })
    }

    /// Starts a plain-HTTP registry requiring bearer tokens, which its token server issues to `user`/`pass`.
    pub fn start_token(user: &str, pass: &str) -> Self {
        Self::start(RegistryOptions {
            token: Some((user.to_owned(), pass.to_owned())),
            ..Default::default()
        })
    }

    /// Starts an HTTPS registry without auth (see [`Registry::ca_cert_path`]).
    pub fn start_tls() -> Self {
        Self::start(RegistryOptions {
            tls: true,
            ..Default::default()
        })
    }

    /// Starts a registry as `options` say and waits until `/v2/` answers (panics with its log otherwise).
    pub fn start(options: RegistryOptions) -> Self {
        assert!(
            options.auth.is_none() || options.token.is_none(),
            "a registry takes htpasswd or token auth, not both: {options:?}"
        );
        let dir = tempfile::Builder::new()
            .prefix("ferry-registry-")
            .tempdir()
            .expect("cannot create registry temp dir");
        let root = dir.path().to_path_buf();
        for sub in [
            "storage",
            "client/registries.d",
            "client/tmp",
            "client/docker",
        ] {
            fs::create_dir_all(root.join(sub)).expect("cannot create registry dirs");
        }
        write_client_files(&root);
        if options.tls {
            generate_tls(&root);
        }
        if let Some((user, pass)) = &options.auth {
            let out = run(Command::new("htpasswd").args(["-Bbn", user, pass]));
            fs::write(root.join("htpasswd"), out.stdout).expect("cannot write htpasswd");
        }
        let mut token = options.token.as_ref().map(|(user, pass)| {
            TokenServer::start(&root.join("token"), TOKEN_SERVICE, TOKEN_ISSUER, user, pass)
        });

        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            fs::write(
                root.join("config.yml"),
                config_yaml(&root, port, &options, token.as_ref()),
            )
            .expect("cannot write config.yml");
            let log = File::create(root.join("registry.log")).expect("cannot create registry.log");
            let mut cmd = Command::new(REGISTRY_BIN);
            cmd.arg("serve")
                .arg(root.join("config.yml"))
                .current_dir(&root)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("cannot clone log handle"))
                .stderr(log);
            // REGISTRY_* variables override config.yml keys: keep the caller's out.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("REGISTRY_") {
                    cmd.env_remove(key);
                }
            }
            let child = cmd.spawn().unwrap_or_else(|e| {
                panic!("cannot spawn {} (is it installed?): {e}", describe(&cmd))
            });
            // The TempDir joins the Registry only once it is up, so a failed
            // attempt's drop kills just the process and keeps the dir.
            let mut registry = Registry {
                child,
                dir: None,
                root: root.clone(),
                port,
                options: options.clone(),
                token: None,
            };
            match registry.wait_ready() {
                Ok(()) => {
                    registry.dir = Some(dir);
                    registry.token = token.take();
                    return registry;
                }
                Err(Retry::PortTaken(log)) => last_log = log,
                Err(Retry::Fatal(msg)) => panic!("{msg}"),
            }
        }
        panic!(
            "{REGISTRY_BIN} could not bind a free port in {PORT_ATTEMPTS} attempts\n--- last registry log ---\n{}",
            last_log.trim_end()
        );
    }

    /// Polls until `/v2/` answers 200/401, the process dies, or [`START_TIMEOUT`] passes.
    fn wait_ready(&mut self) -> Result<(), Retry> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot poll registry process") {
                let log = self.log();
                if log.contains("address already in use") {
                    return Err(Retry::PortTaken(log));
                }
                return Err(Retry::Fatal(format!(
                    "{REGISTRY_BIN} exited ({status}) before answering /v2/ on {}\n--- config.yml ---\n{}\n--- registry log ---\n{}",
                    self.addr(),
                    fs::read_to_string(self.root.join("config.yml")).unwrap_or_default(),
                    log.trim_end()
                )));
            }
            // The log line comes after a successful bind: from then on the
            // port is ours and whatever answers there is this registry.
            let mut probe_error = String::from("no \"listening on\" line in the log yet");
            if self.log().contains("listening on") {
                match self.try_http("GET", "/v2/", None) {
                    Ok(r) if r.status == 200 || r.status == 401 => return Ok(()),
                    Ok(r) => probe_error = format!("/v2/ answered {}: {}", r.status, r.text()),
                    Err(e) => probe_error = e,
                }
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(Retry::Fatal(format!(
                    "{REGISTRY_BIN} on {} did not answer /v2/ within {START_TIMEOUT:?} (last probe: {probe_error})\n--- registry log ---\n{}",
                    self.addr(),
                    self.log().trim_end()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.is_tls() { "https" } else { "http" },
            self.addr()
        )
    }

    /// Whether the registry serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.options.tls
    }

    /// The options it was started with.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    /// The `(user, password)` it requires, if any (htpasswd, or the token server's user).
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.options
            .auth
            .as_ref()
            .or(self.options.token.as_ref())
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The token server of a token-auth registry.
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    /// "user:password" for `--creds`-style flags, if auth is on.
    pub fn creds_string(&self) -> Option<String> {
        self.credentials().map(|(u, p)| format!("{u}:{p}"))
    }

    /// The test CA certificate (PEM) that signed the server certificate; panics without TLS.
    pub fn ca_cert_path(&self) -> PathBuf {
        assert!(self.is_tls(), "registry {} has no TLS", self.addr());
        self.root.join("tls/ca.crt")
    }

    /// A directory holding only the CA as `ca.crt` (for skopeo's `--cert-dir`), if TLS is on.
    pub fn cert_dir(&self) -> Option<PathBuf> {
        self.is_tls().then(|| self.root.join("client/certs"))
    }

    /// The registry's temp dir (config.yml, registry.log, storage/, tls/, client/).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The registry's storage root.
    pub fn storage_dir(&self) -> PathBuf {
        self.root.join("storage")
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.root.join("registry.log")).unwrap_or_default()
    }

    /// "127.0.0.1:PORT/<repo_ref>" (e.g. `repo:tag` or `repo@sha256:...`); full references pass through.
    pub fn reference(&self, repo_ref: &str) -> String {
        let r = repo_ref.strip_prefix("docker://").unwrap_or(repo_ref);
        if r.starts_with(&format!("{}/", self.addr())) {
            r.to_owned()
        } else {
            format!("{}/{r}", self.addr())
        }
    }

    /// Sends an HTTP/1.0 request (`creds` for basic auth, or to get a bearer token from a token
    /// registry's token server, as a client would); panics on transport errors.
    pub fn http(&self, method: &str, path: &str, creds: Option<(&str, &str)>) -> HttpResponse {
        self.try_http(method, path, creds)
            .unwrap_or_else(|e| panic!("{method} {}{path} failed: {e}", self.url()))
    }

    /// GETs `path` with the registry's own credentials (if any).
    pub fn get(&self, path: &str) -> HttpResponse {
        self.http("GET", path, self.credentials())
    }

    /// Sends an HTTP/1.0 request; TLS goes through `openssl s_client` verifying against the test CA.
    pub fn try_http(
        &self,
        method: &str,
        path: &str,
        creds: Option<(&str, &str)>,
    ) -> Result<HttpResponse, String> {
        let authorization = match (creds, &self.token) {
            (Some(creds), Some(server)) => {
                // The scope a client would ask for this request; refused credentials get no token.
                let scope = scope_for(method, path);
                let scopes: Vec<&str> = Some(scope.as_str())
                    .filter(|s| !s.is_empty())
                    .into_iter()
                    .collect();
                server
                    .request_token(Some(creds), &scopes)
                    .ok()
                    .map(|token| format!("Bearer {token}"))
            }
            (Some((user, pass)), None) => Some(format!(
                "Basic {}",
                base64(format!("{user}:{pass}").as_bytes())
            )),
            (None, _) => None,
        };
        self.try_http_authorized(method, path, authorization.as_deref())
    }

    /// Sends an HTTP/1.0 request with a bearer token as it is (e.g. from [`TokenServer::mint`]).
    pub fn http_bearer(&self, method: &str, path: &str, token: &str) -> HttpResponse {
        self.try_http_authorized(method, path, Some(&format!("Bearer {token}")))
            .unwrap_or_else(|e| panic!("{method} {}{path} failed: {e}", self.url()))
    }

    /// Sends an HTTP/1.0 request with this `Authorization` header value, if any.
    fn try_http_authorized(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<HttpResponse, String> {
        let mut request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: ferry-test-harness\r\nAccept: {}\r\nConnection: close\r\n",
            self.addr(),
            [
                super::images::MT_INDEX,
                super::images::MT_MANIFEST,
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.docker.distribution.manifest.v2+json",
                "*/*",
            ]
            .join(", ")
        );
        if let Some(value) = authorization {
            request += &format!("Authorization: {value}\r\n");
        }
        request += "\r\n";
        let raw = if self.is_tls() {
            let mut cmd = Command::new("openssl");
            cmd.args(["s_client", "-quiet", "-verify_return_error", "-connect"])
                .arg(self.addr())
                .args(["-verify_ip", "127.0.0.1", "-CAfile"])
                .arg(self.ca_cert_path());
            let out = run_with(&mut cmd, Some(request.as_bytes()), Duration::from_secs(30));
            if !out.status.success() && out.stdout.is_empty() {
                return Err(format!(
                    "openssl s_client failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim_end()
                ));
            }
            out.stdout
        } else {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port))
                .map_err(|e| format!("connect {}: {e}", self.addr()))?;
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
            stream
                .write_all(request.as_bytes())
                .map_err(|e| format!("send: {e}"))?;
            let mut raw = Vec::new();
            stream
                .read_to_end(&mut raw)
                .map_err(|e| format!("receive: {e}"))?;
            raw
        };
        parse_response(&raw)
    }

    /// A `skopeo` command isolated from the host: temp policy, empty auth file and registries.conf.
    pub fn skopeo(&self) -> Command {
        let client = self.root.join("client");
        let mut cmd = Command::new("skopeo");
        cmd.arg("--policy")
            .arg(client.join("policy.json"))
            .arg("--registries.d")
            .arg(client.join("registries.d"))
            .arg("--tmpdir")
            .arg(client.join("tmp"))
            .args(["--command-timeout", "300s"])
            .env("REGISTRY_AUTH_FILE", client.join("auth.json"))
            .env("CONTAINERS_REGISTRIES_CONF", client.join("registries.conf"))
            .env("DOCKER_CONFIG", client.join("docker"));
        cmd
    }

    /// skopeo transport flags for this registry with its own credentials; `prefix` is "", "src-" or "dest-".
    pub fn skopeo_flags(&self, prefix: &str) -> Vec<String> {
        self.skopeo_flags_with(prefix, self.credentials())
    }

    /// skopeo transport flags with explicit credentials (`None`: anonymous).
    pub fn skopeo_flags_with(&self, prefix: &str, creds: Option<(&str, &str)>) -> Vec<String> {
        let client = self.root.join("client");
        let mut flags = vec![format!(
            "--{prefix}authfile={}",
            client.join("auth.json").display()
        )];
        match creds {
            Some((user, pass)) => flags.push(format!("--{prefix}creds={user}:{pass}")),
            None => flags.push(format!("--{prefix}no-creds")),
        }
        match self.cert_dir() {
            Some(dir) => flags.push(format!("--{prefix}cert-dir={}", dir.display())),
            None => flags.push(format!("--{prefix}tls-verify=false")),
        }
        flags
    }

    /// Kills the registry now (also done on drop).
    pub fn stop(mut self) {
        self.kill();
    }

    /// Kills and reaps the registry process.
    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = self.dir.take()
            && std::env::var_os(KEEP_ENV).is_some()
        {
            eprintln!("keeping registry dir {}", dir.keep().display());
        }
    }
}

/// The token scope a request needs: `repository:NAME:pull` (reads) or `pull,push` (writes).
fn scope_for(method: &str, path: &str) -> String {
    let path = path.split('?').next().unwrap_or_default();
    let name = path.strip_prefix("/v2/").and_then(|rest| {
        ["/manifests/", "/blobs/", "/tags/"]
            .iter()
            .filter_map(|marker| rest.rfind(marker).map(|i| &rest[..i]))
            .max_by_key(|name| name.len())
    });
    match name {
        Some(name) => {
            let actions = if matches!(method, "GET" | "HEAD") {
                "pull"
            } else {
                "pull,push"
            };
            format!("repository:{name}:{actions}")
        }
        None if path.starts_with("/v2/_catalog") => "registry:catalog:*".to_owned(),
        None => String::new(),
    }
}

/// Why a start attempt failed.
enum Retry {
    /// Another process bound the port first: try another.
    PortTaken(String),
    /// Anything else: panic with this message.
    Fatal(String),
}

/// Parses a raw HTTP/1.x response.
fn parse_response(raw: &[u8]) -> Result<HttpResponse, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "incomplete HTTP response: {:?}",
                String::from_utf8_lossy(raw)
            )
        })?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// Writes the skopeo isolation files: insecureAcceptAnything policy, empty auth file, empty registries.conf.
fn write_client_files(root: &Path) {
    let client = root.join("client");
    fs::write(
        client.join("policy.json"),
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .expect("cannot write policy.json");
    fs::write(client.join("auth.json"), r#"{"auths":{}}"#).expect("cannot write auth.json");
    fs::write(client.join("registries.conf"), "").expect("cannot write registries.conf");
    fs::write(client.join("docker/config.json"), r#"{"auths":{}}"#)
        .expect("cannot write docker config");
}

/// Generates a test CA and a server certificate for 127.0.0.1/localhost under `root/tls`.
fn generate_tls(root: &Path) {
    let tls = root.join("tls");
    fs::create_dir_all(&tls).expect("cannot create tls dir");
    fs::write(
        tls.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         subjectKeyIdentifier=hash\n\
         authorityKeyIdentifier=keyid,issuer\n",
    )
    .expect("cannot write server.ext");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let openssl = || {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(&tls);
        cmd
    };
    run(openssl()
        .args(["req", "-x509", "-sha256", "-days", "30"])
        .args(ec)
        .args(["-keyout", "ca.key", "-out", "ca.crt"])
        .args(["-subj", "/CN=ferry test CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
    run(openssl()
        .args(["req", "-new", "-sha256"])
        .args(ec)
        .args(["-keyout", "server.key", "-out", "server.csr"])
        .args(["-subj", "/CN=localhost"]));
    run(openssl()
        .args([
            "x509",
            "-req",
            "-sha256",
            "-days",
            "30",
            "-in",
            "server.csr",
        ])
        .args(["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"])
        .args(["-extfile", "server.ext", "-out", "server.crt"]));
    let certs = root.join("client/certs");
    fs::create_dir_all(&certs).expect("cannot create cert dir");
    fs::copy(tls.join("ca.crt"), certs.join("ca.crt")).expect("cannot copy ca.crt");
}

/// Quotes a string for YAML (a JSON string is a valid YAML double-quoted scalar).
fn yaml_str(s: impl AsRef<str>) -> String {
    serde_json::to_string(s.as_ref()).expect("string serialization cannot fail")
}

/// The registry's config.yml.
fn config_yaml(
    root: &Path,
    port: u16,
    options: &RegistryOptions,
    token: Option<&TokenServer>,
) -> String {
    let path = |p: &str| yaml_str(root.join(p).to_string_lossy());
    let mut yaml = format!(
        "version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: false
http:
  addr: {addr}
  secret: ferry-test-secret
  headers:
    X-Content-Type-Options: [nosniff]
",
        storage = path("storage"),
        addr = yaml_str(format!("127.0.0.1:{port}")),
    );
    if options.tls {
        yaml += &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            path("tls/server.crt"),
            path("tls/server.key")
        );
    }
    if options.auth.is_some() {
        yaml += &format!(
            "auth:\n  htpasswd:\n    realm: ferry-test\n    path: {}\n",
            path("htpasswd")
        );
    }
    if let Some(server) = token {
        yaml += &format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            yaml_str(server.realm()),
            yaml_str(server.service()),
            yaml_str(server.issuer()),
            yaml_str(server.cert_path().to_string_lossy())
        );
    }
    yaml
}
