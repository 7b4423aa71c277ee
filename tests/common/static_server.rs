//! A static file server on a random loopback port, for tests that need a plain HTTP mirror
//! (apt repositories, chart repositories, release files). GET and HEAD; one thread per
//! connection; stops when dropped. Counts requests per path, so tests can tell what was
//! fetched.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// A running static file server.
pub struct StaticServer {
    addr: String,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl StaticServer {
    /// Serves the files under `root` at `http://127.0.0.1:PORT/`.
    pub fn start(root: &Path) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(BTreeMap::new()));
        let (root, flag, counts) = (root.to_path_buf(), stop.clone(), requests.clone());
        thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (root, counts) = (root.clone(), counts.clone());
                        thread::spawn(move || {
                            let _ = serve(stream, &root, &counts);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        StaticServer {
            addr,
            stop,
            requests,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// "127.0.0.1:PORT".
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// How often each path was asked for.
    pub fn requests(&self) -> BTreeMap<String, usize> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(
    stream: TcpStream,
    root: &Path,
    counts: &Mutex<BTreeMap<String, usize>>,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
                break;
            }
            if header.to_ascii_lowercase().starts_with("connection: close") {
                close = true;
            }
        }
        let path = target.split('?').next().unwrap_or("/").to_string();
        *counts.lock().unwrap().entry(path.clone()).or_default() += 1;
        let file = resolve(root, &path);
        match file.and_then(|f| std::fs::read(f).ok()) {
            Some(body) => {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                    body.len()
                )?;
                if method != "HEAD" {
                    stream.write_all(&body)?;
                }
            }
            None => {
                stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nnot found\n",
                )?;
            }
        }
        stream.flush()?;
        if close {
            return Ok(());
        }
    }
}

/// The file a request path names under `root`; paths with `..` are refused.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let relative = path.trim_start_matches('/');
    if relative.split('/').any(|p| p == "..") {
        return None;
    }
    let file = root.join(relative);
    file.is_file().then_some(file)
}
