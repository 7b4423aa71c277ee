//! A Docker token server on 127.0.0.1 for registries started with `auth: token:` — the
//! bearer-token scheme of Docker Hub, Quay and Harbor.
//!
//! The registry answers a request without a token with
//! `WWW-Authenticate: Bearer realm="http://127.0.0.1:PORT/token",service="...",scope="repository:NAME:pull"`;
//! the client asks `GET /token?service=...&scope=repository:NAME:pull,push` with HTTP basic
//! credentials, and this server answers
//! `{"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at": "..."}` for the one
//! user it knows (401 for anyone else). The JWT is what distribution's `registry/auth/token`
//! verifies: ES256 over `base64url(header).base64url(claims)` with the raw `r||s` signature;
//! the header names the key by `x5c` (the self-signed signing certificate, base64 DER, which is
//! also the registry's `rootcertbundle`) or, after [`TokenServer::use_kid`], by `kid` (libtrust's
//! fingerprint of the public key); the claims are `iss`, `sub`, `aud` (= the service), `exp`,
//! `nbf`, `iat`, `jti` and `access`, which grants only the requested actions that the server
//! allows (pull and push unless [`TokenServer::set_allowed_actions`] says otherwise).
//!
//! The key and certificate come from the `openssl` CLI; signing uses aws-lc-rs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::util::run;

/// Lifetime of an issued token, in seconds (`expires_in`).
pub const TOKEN_LIFETIME_SECS: u64 = 300;

/// One resource a token grants: `{"type": "repository", "name": ..., "actions": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Resource type, e.g. "repository".
    pub kind: String,
    /// Repository name, e.g. "app/web".
    pub name: String,
    /// Granted actions, in the order asked, e.g. ["pull", "push"].
    pub actions: Vec<String>,
}

impl Grant {
    /// The scope string `TYPE:NAME:ACTIONS`.
    pub fn scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// A request the server answered (passwords are never recorded).
#[derive(Clone, Debug)]
pub struct TokenRequest {
    /// The basic-auth user name, if any was sent.
    pub user: Option<String>,
    /// The `service` parameter.
    pub service: Option<String>,
    /// Every requested scope, as sent.
    pub scopes: Vec<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// What the issued token grants (empty when refused).
    pub granted: Vec<Grant>,
}

/// Signing material and configuration shared with the server thread.
struct State {
    user: String,
    password: String,
    service: String,
    issuer: String,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    cert_der_b64: String,
    kid: String,
    use_kid: AtomicBool,
    allowed: Mutex<Vec<String>>,
    requests: Mutex<Vec<TokenRequest>>,
    serial: AtomicU64,
}

/// A running token server; stopped on drop.
pub struct TokenServer {
    addr: SocketAddr,
    dir: PathBuf,
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("addr", &self.addr)
            .field("service", &self.state.service)
            .field("user", &self.state.user)
            .finish_non_exhaustive()
    }
}

impl TokenServer {
    /// Generates a signing key and certificate under `dir` (created if needed) and serves
    /// tokens for `service`, signed as `issuer`, to `user`/`password`.
    pub fn start(dir: &Path, service: &str, issuer: &str, user: &str, password: &str) -> Self {
        std::fs::create_dir_all(dir).expect("cannot create token dir");
        let openssl = || {
            let mut cmd = Command::new("openssl");
            cmd.current_dir(dir);
            cmd
        };
        // A self-signed P-256 certificate: the registry's rootcertbundle and the tokens' x5c.
        run(openssl()
            .args(["req", "-x509", "-sha256", "-days", "30"])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .args(["-nodes", "-keyout", "token.key", "-out", "token.crt"])
            .args(["-subj", "/CN=ferry test token issuer"]));
        run(openssl().args([
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "token.key",
            "-outform",
            "DER",
            "-out",
            "token.key.der",
        ]));
        run(openssl().args([
            "x509",
            "-in",
            "token.crt",
            "-outform",
            "DER",
            "-out",
            "token.crt.der",
        ]));
        run(openssl().args([
            "pkey",
            "-in",
            "token.key",
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "token.pub.der",
        ]));
        let read = |name: &str| {
            std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("cannot read {name}: {e}"))
        };
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &read("token.key.der"))
                .expect("openssl wrote a P-256 PKCS#8 key aws-lc-rs cannot load");
        let state = Arc::new(State {
            user: user.to_owned(),
            password: password.to_owned(),
            service: service.to_owned(),
            issuer: issuer.to_owned(),
            key,
            rng: SystemRandom::new(),
            cert_der_b64: STANDARD.encode(read("token.crt.der")),
            kid: libtrust_key_id(&read("token.pub.der")),
            use_kid: AtomicBool::new(false),
            allowed: Mutex::new(vec!["pull".to_owned(), "push".to_owned()]),
            requests: Mutex::new(Vec::new()),
            serial: AtomicU64::new(0),
        });

        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind token server");
        let addr = listener.local_addr().expect("token server address");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = conn else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || {
                        // A client that hangs up half-way is its own problem.
                        let _ = serve(&state, stream);
                    });
                }
            })
        };
        TokenServer {
            addr,
            dir: dir.to_path_buf(),
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// "http://127.0.0.1:PORT/token": the registry's `realm`.
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The `service` (the tokens' audience).
    pub fn service(&self) -> &str {
        &self.state.service
    }

    /// The `issuer` (the tokens' `iss`).
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The signing certificate (PEM): the registry's `rootcertbundle`.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("token.crt")
    }

    /// libtrust's key ID of the signing key, as sent in `kid`.
    pub fn kid(&self) -> &str {
        &self.state.kid
    }

    /// Names the signing key by `kid` (true) or by the `x5c` certificate chain (false, the default).
    pub fn use_kid(&self, on: bool) {
        self.state.use_kid.store(on, Ordering::SeqCst);
    }

    /// The actions tokens may grant (default pull and push), e.g. `&["pull"]` for a read-only user.
    pub fn set_allowed_actions(&self, actions: &[&str]) {
        *self.state.allowed.lock().unwrap() = actions.iter().map(|a| a.to_string()).collect();
    }

    /// Every request answered so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.state.requests.lock().unwrap().clear();
    }

    /// Issues a token as the server would, without HTTP (for crafting requests in tests).
    pub fn mint(&self, scopes: &[&str]) -> String {
        let granted = self.state.grant(scopes.iter().map(|s| s.to_string()));
        self.state.sign(&self.state.user, &granted)
    }

    /// Asks the server for a token over HTTP as a client would: `Err((status, body))` when refused.
    pub fn request_token(
        &self,
        creds: Option<(&str, &str)>,
        scopes: &[&str],
    ) -> Result<String, (u16, String)> {
        let mut query = format!("service={}", percent_encode(&self.state.service));
        for s in scopes {
            query += &format!("&scope={}", percent_encode(s));
        }
        let mut request = format!(
            "GET /token?{query} HTTP/1.0\r\nHost: {}\r\nUser-Agent: ferry-test-harness\r\n",
            self.addr
        );
        if let Some((user, pass)) = creds {
            request += &format!(
                "Authorization: Basic {}\r\n",
                STANDARD.encode(format!("{user}:{pass}"))
            );
        }
        request += "\r\n";
        let fail = |e: std::io::Error| (0, format!("token request to {}: {e}", self.addr));
        let mut stream = TcpStream::connect(self.addr).map_err(fail)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(fail)?;
        stream.write_all(request.as_bytes()).map_err(fail)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map_err(fail)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if status != 200 {
            return Err((status, body.to_owned()));
        }
        let answer: Value = serde_json::from_str(body).map_err(|e| (status, e.to_string()))?;
        answer["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or((status, body.to_owned()))
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl State {
    /// Grants the requested repository actions this server allows; anything else is left out.
    fn grant(&self, scopes: impl Iterator<Item = String>) -> Vec<Grant> {
        let allowed = self.allowed.lock().unwrap().clone();
        let mut granted: Vec<Grant> = Vec::new();
        for scope in scopes {
            // TYPE:NAME:ACTIONS; a name may itself hold colons, so split at both ends.
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            if kind != "repository" || name.is_empty() {
                continue;
            }
            let mut actions: Vec<String> = actions
                .split(',')
                .filter(|a| allowed.iter().any(|x| x == a))
                .map(str::to_owned)
                .collect();
            actions.dedup();
            if actions.is_empty() {
                continue;
            }
            match granted.iter_mut().find(|g| g.name == name) {
                Some(g) => {
                    for a in actions {
                        if !g.actions.contains(&a) {
                            g.actions.push(a);
                        }
                    }
                }
                None => granted.push(Grant {
                    kind: kind.to_owned(),
                    name: name.to_owned(),
                    actions,
                }),
            }
        }
        granted
    }

    /// A signed ES256 JWT for `subject` granting `granted`.
    fn sign(&self, subject: &str, granted: &[Grant]) -> String {
        let now = ferry::time::now_secs();
        let mut header = json!({"typ": "JWT", "alg": "ES256"});
        if self.use_kid.load(Ordering::SeqCst) {
            header["kid"] = json!(self.kid);
        } else {
            header["x5c"] = json!([self.cert_der_b64]);
        }
        let access: Vec<Value> = granted
            .iter()
            .map(|g| json!({"type": g.kind, "name": g.name, "actions": g.actions}))
            .collect();
        let claims = json!({
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + TOKEN_LIFETIME_SECS,
            "nbf": now,
            "iat": now,
            "jti": format!(
                "{:x}-{}",
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos(),
                self.serial.fetch_add(1, Ordering::SeqCst)
            ),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("ES256 signing failed");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

/// Answers one HTTP request on `stream`.
fn serve(state: &State, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 || raw.len() > 64 * 1024 {
            return Ok(());
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authorization = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_owned());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" || path != "/token" {
        return respond(
            &mut stream,
            404,
            "Not Found",
            &[],
            r#"{"errors":[{"code":"NOT_FOUND","message":"only GET /token is served here"}]}"#,
        );
    }

    let mut service = None;
    let mut scopes = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match percent_decode(k).as_str() {
            "service" => service = Some(v),
            // Docker allows several scope parameters and several scopes in one, space-separated.
            "scope" => scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned)),
            _ => {}
        }
    }
    let basic = authorization
        .as_deref()
        .and_then(|a| {
            a.strip_prefix("Basic ")
                .or_else(|| a.strip_prefix("basic "))
        })
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())));
    let user = basic.as_ref().map(|(u, _)| u.clone());
    let record = |status: u16, granted: Vec<Grant>| {
        state.requests.lock().unwrap().push(TokenRequest {
            user: user.clone(),
            service: service.clone(),
            scopes: scopes.clone(),
            status,
            granted,
        });
    };

    if service.as_deref() != Some(state.service.as_str()) {
        record(400, Vec::new());
        return respond(
            &mut stream,
            400,
            "Bad Request",
            &[],
            r#"{"errors":[{"code":"UNSUPPORTED","message":"unknown service"}]}"#,
        );
    }
    let authenticated = matches!(&basic, Some((u, p)) if *u == state.user && *p == state.password);
    if !authenticated {
        record(401, Vec::new());
        return respond(
            &mut stream,
            401,
            "Unauthorized",
            &[("WWW-Authenticate", "Basic realm=\"ferry-test-token\"")],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required: wrong user name or password"}]}"#,
        );
    }
    let granted = state.grant(scopes.iter().cloned());
    let token = state.sign(&state.user, &granted);
    record(200, granted);
    let body = json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_LIFETIME_SECS,
        "issued_at": ferry::time::now_rfc3339(),
    })
    .to_string();
    respond(&mut stream, 200, "OK", &[], &body)
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (n, v) in headers {
        head += &format!("{n}: {v}\r\n");
    }
    head += "\r\n";
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// libtrust's key ID: the first 240 bits of SHA-256 of the DER SubjectPublicKeyInfo, in
/// unpadded base32, in groups of four joined by ':'.
fn libtrust_key_id(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let encoded = base32(&digest[..30]);
    let groups: Vec<&str> = encoded
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    groups.join(":")
}

/// RFC 4648 base32 (upper case) without padding.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = || std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok();
        match (bytes[i], hex().and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
