//! Process, hashing and port helpers shared by the integration tests.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Timeout applied by [`run`], [`run_unchecked`] and [`run_expect_failure`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `cmd` (stdin closed) and returns its output; panics with stdout/stderr unless it exits 0.
pub fn run(cmd: &mut Command) -> Output {
    let out = run_with(cmd, None, DEFAULT_TIMEOUT);
    if !out.status.success() {
        panic!("{}", failure_message("command failed", cmd, &out));
    }
    out
}

/// Runs `cmd` (stdin closed) and returns its output whatever its exit status.
pub fn run_unchecked(cmd: &mut Command) -> Output {
    run_with(cmd, None, DEFAULT_TIMEOUT)
}

/// Runs `cmd` expecting a non-zero exit; panics with stdout/stderr if it succeeds.
pub fn run_expect_failure(cmd: &mut Command) -> Output {
    let out = run_with(cmd, None, DEFAULT_TIMEOUT);
    if out.status.success() {
        panic!(
            "{}",
            failure_message("command unexpectedly succeeded", cmd, &out)
        );
    }
    out
}

/// Runs `cmd` feeding it `stdin` (or a closed stdin); kills it and panics after `timeout`.
pub fn run_with(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        let hint = if e.kind() == io::ErrorKind::NotFound {
            " (not installed? scripts/test.sh installs the test tools)"
        } else {
            ""
        };
        panic!("cannot spawn {}: {e}{hint}", describe(cmd))
    });
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin was piped");
        let bytes = bytes.to_vec();
        // A child that exits without reading its input makes this fail: ignore.
        thread::spawn(move || drop(pipe.write_all(&bytes)))
    });
    let stdout = reader(child.stdout.take().expect("stdout was piped"));
    let stderr = reader(child.stderr.take().expect("stderr was piped"));
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let status = child.wait().ok();
                let out = Output {
                    status: status.unwrap_or_else(exit_status_unknown),
                    stdout: stdout.join().unwrap_or_default(),
                    stderr: stderr.join().unwrap_or_default(),
                };
                panic!(
                    "{}",
                    failure_message(&format!("command timed out after {timeout:?}"), cmd, &out)
                );
            }
            Ok(None) => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot wait for {}: {e}", describe(cmd)),
        }
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    Output {
        status,
        stdout: stdout.join().expect("stdout reader panicked"),
        stderr: stderr.join().expect("stderr reader panicked"),
    }
}

/// Reads a pipe to its end on a separate thread.
fn reader(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// The status reported when a killed child could not be reaped.
fn exit_status_unknown() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(-1)
}

/// A panic message naming the command, its status and both output streams.
pub fn failure_message(what: &str, cmd: &Command, out: &Output) -> String {
    format!(
        "{what}: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
        describe(cmd),
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end(),
    )
}

/// Renders a command line (with its explicit environment changes) for messages.
pub fn describe(cmd: &Command) -> String {
    let quote = |s: &OsStr| {
        let s = s.to_string_lossy();
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
        {
            s.into_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let mut parts: Vec<String> = cmd
        .get_envs()
        .map(|(k, v)| match v {
            Some(v) => format!("{}={}", k.to_string_lossy(), quote(v)),
            None => format!("-u {}", k.to_string_lossy()),
        })
        .collect();
    if !parts.is_empty() {
        parts.insert(0, "env".to_owned());
    }
    parts.push(quote(cmd.get_program()));
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

/// Hex SHA-256 of a file's contents (like `sha256sum`, without the `sha256:` prefix).
pub fn sha256_file(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    let mut file =
        File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    hex(&hasher.finalize())
}

/// Hex SHA-256 of bytes (without the `sha256:` prefix).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// OCI digest (`sha256:<hex>`) of bytes.
pub fn digest_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// OCI digest (`sha256:<hex>`) of a file's contents.
pub fn digest_file(path: impl AsRef<Path>) -> String {
    format!("sha256:{}", sha256_file(path))
}

/// Lower-case hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 (with padding), e.g. for `Authorization: Basic` headers.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Ports this process has already handed out, so two callers never get the same one.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A currently free TCP port on 127.0.0.1 (from binding port 0), never repeated within this process.
///
/// Another process may still grab it before the caller binds it: callers that
/// spawn servers must detect "address already in use" and retry (as
/// [`crate::common::Registry`] does).
pub fn free_port() -> u16 {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("bound listener has an address")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// Whether a command is found on `PATH`.
pub fn have_command(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            use std::os::unix::fs::PermissionsExt;
            dir.join(name)
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Polls `ready` every `interval` until it returns `Some` or `timeout` elapses.
pub fn wait_for<T>(
    timeout: Duration,
    interval: Duration,
    mut ready: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = ready() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(interval);
    }
}
