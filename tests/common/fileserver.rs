//! A small HTTP/1.1 server on 127.0.0.1 for release-file tests: serves bytes by path and can
//! be told to answer a status (404), or a truncated body under a lying Content-Length, for
//! any path; it counts the requests per path. Also a raw HTTP client for checking servers.
//!
//! ```text
//! let server = FileServer::start();
//! server.put("/releases/v1/k3s", bytes);
//! let url = server.url("/releases/v1/k3s");      // http://127.0.0.1:PORT/releases/v1/k3s
//! server.truncate("/releases/v1/k3s", 1000);     // Content-Length: full size, 1000 bytes sent
//! server.status("/releases/v1/k3s", 404);
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::registry::HttpResponse;

/// How the server answers one path.
#[derive(Clone, Debug)]
enum Reply {
    /// 200 with these bytes.
    Body(Vec<u8>),
    /// 200 with `Content-Length` of the whole body but only the first `sent` bytes, then the
    /// connection is closed.
    Truncated { body: Vec<u8>, sent: usize },
    /// This status and a short text.
    Status(u16),
}

#[derive(Default)]
struct State {
    replies: HashMap<String, Reply>,
    hits: HashMap<String, usize>,
}

/// A running file server; stopped on drop.
pub struct FileServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Starts on a random loopback port. Unknown paths get 404.
    pub fn start() -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &s);
                });
            }
        });
        FileServer {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` + `path` (which starts with `/`; percent-escapes kept as given).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `body` at `path` (the request path exactly as the client sends it).
    pub fn put(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.set(path, Reply::Body(body.into()));
    }

    /// From now on sends only the first `sent` bytes of what `path` serves, under the full
    /// Content-Length.
    pub fn truncate(&self, path: &str, sent: usize) {
        let body = match self.state.lock().unwrap().replies.get(path) {
            Some(Reply::Body(b)) => b.clone(),
            other => panic!("truncate {path}: serves {other:?}, not a body"),
        };
        self.set(path, Reply::Truncated { body, sent });
    }

    /// Answers `status` at `path`.
    pub fn status(&self, path: &str, status: u16) {
        self.set(path, Reply::Status(status));
    }

    /// How many requests `path` got.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    fn set(&self, path: &str, reply: Reply) {
        assert!(path.starts_with('/'), "{path}");
        self.state
            .lock()
            .unwrap()
            .replies
            .insert(path.to_string(), reply);
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_string();
    let reply = {
        let mut state = state.lock().unwrap();
        *state.hits.entry(path.clone()).or_default() += 1;
        state
            .replies
            .get(&path)
            .cloned()
            .unwrap_or(Reply::Status(404))
    };
    let mut out = stream;
    let head = method == "HEAD";
    match reply {
        Reply::Body(body) => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            if !head {
                out.write_all(&body)?;
            }
        }
        Reply::Truncated { body, sent } => {
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            if !head {
                out.write_all(&body[..sent.min(body.len())])?;
            }
        }
        Reply::Status(code) => {
            let text = format!("status {code}\n");
            write!(
                out,
                "HTTP/1.1 {code} Status\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                text.len(),
                if head { "" } else { &text }
            )?;
        }
    }
    out.flush()?;
    out.shutdown(Shutdown::Both)
}

/// A minimal HTTP/1.0 client, so the headers checked are exactly what a server sent.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += "\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap();
    HttpResponse {
        status,
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect(),
        body: raw[split + 4..].to_vec(),
    }
}
