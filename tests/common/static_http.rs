//! A static file server on 127.0.0.1 (a random port) for chart repositories and downloads:
//! GET and HEAD of files under one directory, 404 for anything else; stops on drop.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

/// A running server over a directory.
pub struct StaticHttp {
    addr: String,
    stop: Arc<AtomicBool>,
}

impl StaticHttp {
    /// Serves `root` until dropped.
    pub fn start(root: &Path) -> StaticHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_path_buf();
        let stopping = stop.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let root = root.clone();
                    thread::spawn(move || serve(stream, &root));
                }
            }
        });
        StaticHttp { addr, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for StaticHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve(stream: TcpStream, root: &Path) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut close = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line.to_ascii_lowercase().starts_with("connection: close") {
                close = true;
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let path = target.split('?').next().unwrap_or("/");
        let file: Option<PathBuf> = {
            let rel = path.trim_start_matches('/');
            if rel.split('/').any(|c| c == "..") {
                None
            } else {
                Some(root.join(rel))
            }
        };
        let body = file
            .filter(|f| f.is_file())
            .and_then(|f| std::fs::read(f).ok());
        let mut out = stream.try_clone().unwrap();
        let result = match body {
            Some(bytes) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                    bytes.len()
                );
                out.write_all(head.as_bytes()).and_then(|_| {
                    if method == "HEAD" {
                        Ok(())
                    } else {
                        out.write_all(&bytes)
                    }
                })
            }
            None => {
                out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n")
            }
        };
        if result.is_err() || close {
            return;
        }
    }
}
