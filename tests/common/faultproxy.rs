//! A small HTTP/1.1 proxy that injects faults in front of a real server: 503 answers (or 500,
//! 429, with or without `Retry-After`), stalls (a request held before it is forwarded),
//! connections dropped in the middle of a blob, extra request headers (Prism's `Prefer: code=N`
//! picks the status a mock answers) and canned answers for statuses the server cannot produce.
//! One request per connection, so every fault is precise; `Connection: close` is forced both ways.
//! Every request head is recorded, so tests can check what a client sent.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Which faults to inject.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer 503 to every Nth request (1-based count over all requests).
    pub fail_every: Option<usize>,
    /// The status `fail_every` answers with instead of 503 (500, 429, ...).
    pub fail_status: Option<u16>,
    /// A `Retry-After` value (seconds) sent with the `fail_every` and `fail_matching` answers.
    pub retry_after: Option<u64>,
    /// A `Retry-After` HTTP-date this far ahead of the moment the answer is sent, instead of
    /// `retry_after` (the date has whole seconds: the client may wait up to 1 s less).
    pub retry_after_in: Option<Duration>,
    /// Answer (with `fail_status`, 503 by default) the first `.1` requests whose request line
    /// contains every one of `.0` (["PUT ", "/manifests/"], say).
    pub fail_matching: Option<(Vec<&'static str>, usize)>,
    /// Blob GETs larger than `drop_min_size`: send the head and this many body bytes (the
    /// first such answer; later ones none), then nothing more, holding the connection open
    /// until the client hangs up (a stall mid-body). All of them, unless `stalls` says how many.
    pub stall_blob_after: Option<u64>,
    /// With `stall_blob_after`: stall only this many blob answers, forward the rest whole
    /// (0: stall all of them).
    pub stalls: usize,
    /// Hold every Nth request (1-based, over all requests) this long before forwarding it: a
    /// stall, then the answer.
    pub stall_every: Option<(usize, Duration)>,
    /// Drop the connection after this many body bytes of a blob GET response...
    pub drop_blob_after: Option<u64>,
    /// ...for this many responses, then stop dropping.
    pub drops: usize,
    /// Only drop blob responses larger than this (so small configs pass).
    pub drop_min_size: u64,
    /// Cut the connection after this many request-body bytes of an upload (PUT/PATCH)...
    pub drop_upload_after: Option<u64>,
    /// ...for this many uploads...
    pub upload_drops: usize,
    /// ...after letting this many of them through whole (0: cut the first).
    pub upload_drops_after: usize,
    /// Hold every request this long before forwarding it (a slow link).
    pub delay: Option<Duration>,
    /// Hold the answer to every blob GET (`GET .../blobs/sha256:...`) larger than
    /// `drop_min_size` this long before sending it: slow downloads, so that concurrent
    /// clients overlap (small configs, read when a lock is made, pass at once).
    pub delay_blob_gets: Option<Duration>,
    /// Flip one byte in the body of this many blob GET responses (larger than drop_min_size).
    pub corrupt_blobs: usize,
    /// Flip the first byte of the body of this many uploads (PUT/PATCH larger than
    /// drop_min_size): bytes changed on the way to the registry.
    pub corrupt_uploads: usize,
    /// Headers added to matching requests before they are forwarded.
    pub add_request_headers: Vec<AddHeader>,
    /// Answer matching requests with this instead of forwarding them.
    pub answer: Option<CannedAnswer>,
}

/// A header the proxy adds to requests, all or those of one method.
#[derive(Debug, Clone)]
pub struct AddHeader {
    /// Only requests with this method ("HEAD", "POST"); `None` for all.
    pub method: Option<String>,
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

impl AddHeader {
    /// Adds `name: value` to every `method` request.
    pub fn on(method: &str, name: &str, value: &str) -> AddHeader {
        AddHeader {
            method: Some(method.to_string()),
            name: name.to_string(),
            value: value.to_string(),
        }
    }

    /// Adds `name: value` to every request.
    pub fn all(name: &str, value: &str) -> AddHeader {
        AddHeader {
            method: None,
            name: name.to_string(),
            value: value.to_string(),
        }
    }
}

/// A response the proxy sends itself instead of forwarding the request (counted as injected).
#[derive(Debug, Clone)]
pub struct CannedAnswer {
    /// Only requests with this method; `None` for all.
    pub method: Option<String>,
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// `application/json` body.
    pub body: String,
}

/// A running proxy; stops when dropped.
pub struct FaultProxy {
    addr: String,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    injected: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    failed: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl FaultProxy {
    /// Starts a proxy on a random loopback port in front of `upstream` ("127.0.0.1:PORT").
    pub fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault proxy");
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let injected = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let lines: Arc<Mutex<Vec<(Instant, String)>>> = Default::default();
        let failed: Arc<Mutex<Vec<(Instant, String)>>> = Default::default();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            drops_left: AtomicUsize::new(faults.drops),
            upload_drops_left: AtomicUsize::new(faults.upload_drops),
            upload_spared_left: AtomicUsize::new(faults.upload_drops_after),
            corrupt_left: AtomicUsize::new(faults.corrupt_blobs),
            corrupt_uploads_left: AtomicUsize::new(faults.corrupt_uploads),
            stalled_once: AtomicBool::new(false),
            stalls_left: AtomicUsize::new(faults.stalls),
            fail_matching_left: AtomicUsize::new(
                faults.fail_matching.as_ref().map_or(0, |(_, n)| *n),
            ),
            faults,
            injected: injected.clone(),
            heads: heads.clone(),
            lines: lines.clone(),
            failed: failed.clone(),
        });
        {
            let (stop, requests) = (stop.clone(), requests.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            let _ = client.set_nonblocking(false);
                            let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
                            let shared = shared.clone();
                            thread::spawn(move || {
                                let _ = handle(client, n, &shared);
                            });
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        FaultProxy {
            addr,
            stop,
            requests,
            injected,
            heads,
            lines,
            failed,
        }
    }

    /// For each request answered with the injected failure status: its request line and how
    /// long the client waited before sending the same request line again (`None`: never).
    pub fn waits_after_failures(&self) -> Vec<(String, Option<Duration>)> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        failed
            .into_iter()
            .map(|(at, line)| {
                let again = lines
                    .iter()
                    .find(|(t, l)| *t > at && *l == line)
                    .map(|(t, _)| t.duration_since(at));
                (line, again)
            })
            .collect()
    }

    /// "127.0.0.1:PORT" of the proxy.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Requests seen.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Faults injected (503s, drops, corruptions and canned answers).
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// The heads (request line and headers) of the requests seen so far, as clients sent them.
    pub fn request_heads(&self) -> Vec<String> {
        self.heads.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Blob GETs through the proxy so far, per digest (`sha256:<hex>`).
    pub fn blob_gets(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for head in self.request_heads() {
            let line = head.lines().next().unwrap_or_default();
            if let Some(rest) = line
                .strip_prefix("GET ")
                .and_then(|l| l.split_once("/blobs/"))
                .map(|(_, r)| r)
            {
                let digest = rest.split([' ', '?']).next().unwrap_or_default();
                *counts.entry(digest.to_string()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Blob uploads finished through the proxy so far (`PUT .../blobs/uploads/...`).
    pub fn blob_uploads(&self) -> usize {
        self.request_heads()
            .iter()
            .filter(|h| h.starts_with("PUT ") && h.contains("/blobs/uploads/"))
            .count()
    }

    /// Runs `cmd` (output discarded) and kills it once `uploads` blobs went up through the
    /// proxy, or after `within`: an import stopped half-way. Returns the uploads seen.
    pub fn kill_after_uploads(
        &self,
        cmd: &mut std::process::Command,
        uploads: usize,
        within: Duration,
    ) -> usize {
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the command");
        let deadline = std::time::Instant::now() + within;
        while self.blob_uploads() < uploads && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        self.blob_uploads()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads up to the end of the head (`\r\n\r\n`); returns head and any extra bytes read.
fn read_head(stream: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(pos + 4);
            return Ok((buf, rest));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Replaces any Connection header with `Connection: close`.
fn force_close(head: &[u8]) -> Vec<u8> {
    with_headers(head, &[])
}

/// Replaces any Connection header with `Connection: close` and appends `extra` headers.
fn with_headers(head: &[u8], extra: &[&AddHeader]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.trim_end_matches("\r\n").split("\r\n") {
        if line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    for header in extra {
        out.push_str(&format!("{}: {}\r\n", header.name, header.value));
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// The Content-Length of a request or response head, 0 without one.
fn content_length(head: &[u8]) -> u64 {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|l| {
            let l = l.to_ascii_lowercase();
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Whether a fault restricted to `method` applies to a request line.
fn method_matches(method: &Option<String>, request_line: &str) -> bool {
    method
        .as_deref()
        .is_none_or(|m| request_line.split(' ').next() == Some(m))
}

/// Takes one from a shared budget; true when there was one.
fn take(budget: &AtomicUsize) -> bool {
    budget
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// What every connection handler shares: the faults, their budgets and the records.
struct Shared {
    upstream: String,
    faults: Faults,
    injected: Arc<AtomicUsize>,
    drops_left: AtomicUsize,
    upload_drops_left: AtomicUsize,
    upload_spared_left: AtomicUsize,
    corrupt_left: AtomicUsize,
    corrupt_uploads_left: AtomicUsize,
    fail_matching_left: AtomicUsize,
    stalled_once: AtomicBool,
    stalls_left: AtomicUsize,
    heads: Arc<Mutex<Vec<String>>>,
    /// Every request line, when it arrived.
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    /// The request lines answered with `fail_status`, when.
    failed: Arc<Mutex<Vec<(Instant, String)>>>,
}

fn handle(mut client: TcpStream, n: usize, shared: &Shared) -> std::io::Result<()> {
    let (upstream, faults, injected) =
        (shared.upstream.as_str(), &shared.faults, &*shared.injected);
    let (drops_left, upload_drops_left, corrupt_left, heads) = (
        &shared.drops_left,
        &shared.upload_drops_left,
        &shared.corrupt_left,
        &*shared.heads,
    );
    // Not HTTP (a TLS handshake starts with 0x16): hang up at once, as a plain server would.
    let mut first = [0u8; 1];
    if client.peek(&mut first)? == 1 && !first[0].is_ascii_uppercase() {
        return Ok(());
    }
    let (head, rest) = read_head(&mut client)?;
    let request_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    heads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(String::from_utf8_lossy(&head).into_owned());
    shared
        .lines
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((Instant::now(), request_line.clone()));
    let matched = faults
        .fail_matching
        .as_ref()
        .is_some_and(|(parts, _)| parts.iter().all(|p| request_line.contains(p)))
        && take(&shared.fail_matching_left);
    if matched || faults.fail_every.is_some_and(|k| n.is_multiple_of(k)) {
        injected.fetch_add(1, Ordering::SeqCst);
        let status = faults.fail_status.unwrap_or(503);
        let reason = match status {
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            502 => "Bad Gateway",
            _ => "Service Unavailable",
        };
        shared
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((Instant::now(), request_line.clone()));
        let retry_after = match (faults.retry_after_in, faults.retry_after) {
            (Some(ahead), _) => format!(
                "Retry-After: {}\r\n",
                http_date(std::time::SystemTime::now() + ahead)
            ),
            (None, Some(s)) => format!("Retry-After: {s}\r\n"),
            (None, None) => String::new(),
        };
        client.write_all(
            format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n{retry_after}Content-Length: 21\r\nConnection: close\r\n\r\ninjected by the test\n"
            )
            .as_bytes(),
        )?;
        return Ok(());
    }
    if let Some((_, pause)) = faults.stall_every.filter(|(k, _)| n.is_multiple_of(*k)) {
        injected.fetch_add(1, Ordering::SeqCst);
        thread::sleep(pause);
    }
    if let Some(answer) = faults
        .answer
        .as_ref()
        .filter(|a| method_matches(&a.method, &request_line))
    {
        injected.fetch_add(1, Ordering::SeqCst);
        // Read the request body first: closing a socket with unread data sends a reset, which
        // the client may see instead of the answer.
        let mut unread = content_length(&head).saturating_sub(rest.len() as u64);
        let mut sink = [0u8; 4096];
        while unread > 0 {
            let n = client.read(&mut sink)?;
            if n == 0 {
                break;
            }
            unread = unread.saturating_sub(n as u64);
        }
        let body = if request_line.starts_with("HEAD ") {
            ""
        } else {
            answer.body.as_str()
        };
        client.write_all(
            format!(
                "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                answer.status,
                answer.reason,
                body.len()
            )
            .as_bytes(),
        )?;
        return Ok(());
    }
    let extra: Vec<&AddHeader> = faults
        .add_request_headers
        .iter()
        .filter(|h| method_matches(&h.method, &request_line))
        .collect();
    if let Some(delay) = faults.delay {
        thread::sleep(delay);
    }
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(&with_headers(&head, &extra))?;
    let is_upload = request_line.starts_with("PUT ") || request_line.starts_with("PATCH ");
    let cut_upload = match faults.drop_upload_after {
        // Only bodies longer than the cut: a shorter one would leave both sides waiting.
        Some(after)
            if is_upload
                && content_length(&head) > after
                && !take(&shared.upload_spared_left)
                && take(upload_drops_left) =>
        {
            Some(after)
        }
        _ => None,
    };
    if let Some(after) = cut_upload {
        // Forward only the first `after` body bytes, then hang up on both sides.
        let mut budget = after;
        let take_now = (rest.len() as u64).min(budget) as usize;
        server.write_all(&rest[..take_now])?;
        budget -= take_now as u64;
        let mut buf = vec![0u8; 64 * 1024];
        while budget > 0 {
            let n = client.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let k = (n as u64).min(budget) as usize;
            server.write_all(&buf[..k])?;
            budget -= k as u64;
        }
        injected.fetch_add(1, Ordering::SeqCst);
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
        return Ok(());
    }
    let mut flip_upload = is_upload
        && content_length(&head) > faults.drop_min_size
        && take(&shared.corrupt_uploads_left);
    if flip_upload {
        injected.fetch_add(1, Ordering::SeqCst);
    }
    let mut rest = rest;
    if flip_upload && !rest.is_empty() {
        rest[0] ^= 0x55;
        flip_upload = false;
    }
    server.write_all(&rest)?;
    // Request bodies (uploads) flow through, untouched unless one is to be corrupted.
    let mut client_reader = client.try_clone()?;
    let mut server_writer = server.try_clone()?;
    thread::spawn(move || {
        if flip_upload {
            let mut first = [0u8; 1];
            if client_reader.read_exact(&mut first).is_err() {
                return;
            }
            first[0] ^= 0x55;
            if server_writer.write_all(&first).is_err() {
                return;
            }
        }
        let _ = std::io::copy(&mut client_reader, &mut server_writer);
    });
    let (resp_head, resp_rest) = read_head(&mut server)?;
    // HTTP/1.0 or 1.1, 200 or 206.
    let status_ok = resp_head.starts_with(b"HTTP/1.")
        && (resp_head.get(8..13) == Some(b" 200 ") || resp_head.get(8..13) == Some(b" 206 "));
    let length = content_length(&resp_head);
    // A registry's blob (`/v2/NAME/blobs/sha256:HEX`) or a bundle's blob object on S3
    // (`/BUCKET/PREFIX/blobs/sha256/HEX`).
    let is_blob_get = request_line.starts_with("GET ")
        && (request_line.contains("/blobs/sha256:") || request_line.contains("/blobs/sha256/"));
    let drop_after = match faults.drop_blob_after {
        Some(after)
            if is_blob_get
                && status_ok
                && length > faults.drop_min_size.max(after)
                && take(drops_left) =>
        {
            Some(after)
        }
        _ => None,
    };
    if let Some(delay) = faults
        .delay_blob_gets
        .filter(|_| is_blob_get && status_ok && length > faults.drop_min_size)
    {
        thread::sleep(delay);
    }
    client.write_all(&force_close(&resp_head))?;
    if let Some(after) = faults
        .stall_blob_after
        .filter(|_| is_blob_get && status_ok && length > faults.drop_min_size)
        .filter(|_| faults.stalls == 0 || take(&shared.stalls_left))
    {
        injected.fetch_add(1, Ordering::SeqCst);
        let mut budget = if shared.stalled_once.swap(true, Ordering::SeqCst) {
            0
        } else {
            after
        };
        let take_now = (resp_rest.len() as u64).min(budget) as usize;
        client.write_all(&resp_rest[..take_now])?;
        budget -= take_now as u64;
        let mut buf = vec![0u8; 64 * 1024];
        while budget > 0 {
            let n = server.read(&mut buf)?;
            if n == 0 {
                break;
            }
            let k = (n as u64).min(budget) as usize;
            client.write_all(&buf[..k])?;
            budget -= k as u64;
        }
        let _ = server.shutdown(Shutdown::Both);
        // Silence: wait for the client to give up and hang up.
        while client.read(&mut buf).is_ok_and(|n| n > 0) {}
        return Ok(());
    }
    let mut corrupt =
        is_blob_get && status_ok && length > faults.drop_min_size && take(corrupt_left);
    if corrupt {
        injected.fetch_add(1, Ordering::SeqCst);
    }
    let mut budget = drop_after.unwrap_or(u64::MAX);
    let mut send =
        |client: &mut TcpStream, bytes: &[u8], budget: &mut u64| -> std::io::Result<bool> {
            let take = (bytes.len() as u64).min(*budget) as usize;
            if corrupt && take > 0 {
                let mut changed = bytes[..take].to_vec();
                changed[take / 2] ^= 0x55;
                corrupt = false;
                client.write_all(&changed)?;
            } else {
                client.write_all(&bytes[..take])?;
            }
            *budget -= take as u64;
            Ok(*budget == 0)
        };
    let mut cut = send(&mut client, &resp_rest, &mut budget)?;
    let mut buf = vec![0u8; 64 * 1024];
    while !cut {
        let n = server.read(&mut buf)?;
        if n == 0 {
            break;
        }
        cut = send(&mut client, &buf[..n], &mut budget)?;
    }
    if cut && drop_after.is_some() {
        injected.fetch_add(1, Ordering::SeqCst);
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = server.shutdown(Shutdown::Both);
    Ok(())
}

/// An HTTP-date (IMF-fixdate) for a `Retry-After`: `Mon, 07 Dec 2026 06:00:07 GMT`.
pub fn http_date(at: std::time::SystemTime) -> String {
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}
