//! A one-node Ceph cluster with an S3 gateway (RGW) on 127.0.0.1, started by
//! `scripts/lib/ceph.sh` once per test binary (about 13 s) and shared by its tests, each in a
//! bucket of its own ([`Ceph::bucket`]).
//!
//! The daemons detach from the test process, and a static is never dropped, so a watchdog
//! (`setsid sh`, started before the cluster) waits for the test process to end, then stops the
//! daemons by their pid files and removes the directory: nothing is left behind, also when a
//! test panics or the binary is interrupted. `FERRY_TEST_KEEP=1` keeps the directory (logs).
//!
//! [`Ceph::curl`] reads and writes the bucket with `curl --aws-sigv4`, independently of ferry's
//! own client, to check what ferry wrote and to tamper with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::registry::KEEP_ENV;

/// The S3 user's keys (scripts/lib/ceph.sh creates them).
pub const ACCESS_KEY: &str = "FERRYTESTACCESS";
/// Its secret.
pub const SECRET_KEY: &str = "ferrytestsecret";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/ceph.sh");

/// The running cluster.
pub struct Ceph {
    dir: PathBuf,
    endpoint: String,
}

static CEPH: OnceLock<Ceph> = OnceLock::new();
static BUCKETS: AtomicU32 = AtomicU32::new(0);

impl Ceph {
    /// The cluster of this test binary, started on first use.
    pub fn shared() -> &'static Ceph {
        CEPH.get_or_init(Ceph::start)
    }

    fn start() -> Ceph {
        let dir = std::env::temp_dir().join(format!("ferry-ceph-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let keep = std::env::var_os(KEEP_ENV).is_some();
        let cleanup = if keep {
            String::new()
        } else {
            format!("rm -rf '{}'", dir.display())
        };
        // The watchdog: in its own session, so an interrupt of the test run does not stop it
        // before it has stopped the daemons.
        let watchdog = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             for f in '{run}'/*.pid; do [ -f \"$f\" ] && kill \"$(cat \"$f\")\" 2>/dev/null; done; \
             sleep 3; for f in '{run}'/*.pid; do [ -f \"$f\" ] && kill -9 \"$(cat \"$f\")\" 2>/dev/null; done; {cleanup}",
            pid = std::process::id(),
            run = dir.join("run").display(),
        );
        let forked = Command::new("setsid")
            .args(["--fork", "sh", "-c", &watchdog])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("setsid (util-linux) runs the Ceph watchdog");
        assert!(forked.success(), "setsid --fork sh: {forked}");
        for tool in [
            "ceph-mon",
            "ceph-mgr",
            "ceph-osd",
            "radosgw",
            "radosgw-admin",
        ] {
            assert!(
                super::util::have_command(tool),
                "{tool} is missing: run scripts/test.sh once (it installs Debian's ceph-mon, ceph-mgr, ceph-osd, radosgw, ceph-common), or apt-get install --no-install-recommends them"
            );
        }
        let out = Command::new("bash")
            .arg(SCRIPT)
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs scripts/lib/ceph.sh");
        assert!(
            out.status.success(),
            "scripts/lib/ceph.sh failed ({}); logs in {}/log (set {KEEP_ENV}=1 to keep them)\n{}\n{}",
            out.status,
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(dir.join("env")).expect("ceph.sh wrote env");
        let endpoint = env
            .lines()
            .find_map(|l| l.strip_prefix("AWS_ENDPOINT_URL="))
            .expect("AWS_ENDPOINT_URL in env")
            .to_string();
        Ceph { dir, endpoint }
    }

    /// The RGW's URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The cluster's directory (config, logs, pid files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets the endpoint and keys on a command (as a user's environment would), and removes
    /// any profile settings.
    pub fn env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_ENDPOINT_URL_S3")
    }

    /// Writes `HOME/.aws/credentials` and `HOME/.aws/config` (profile `default`: the keys, the
    /// endpoint, a region), as a user configures the AWS CLI for RGW: for ferry processes a
    /// test cannot set variables on (`ferry serve` through tests/common/served.rs).
    pub fn write_profile(&self, home: &Path) {
        let aws = home.join(".aws");
        std::fs::create_dir_all(&aws).unwrap();
        std::fs::write(
            aws.join("credentials"),
            format!("[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"),
        )
        .unwrap();
        std::fs::write(
            aws.join("config"),
            format!(
                "[default]\nregion = us-east-1\nendpoint_url = {}\n",
                self.endpoint
            ),
        )
        .unwrap();
    }

    /// A new, empty bucket, named after `hint` and unique in this run.
    pub fn bucket(&self, hint: &str) -> String {
        let n = BUCKETS.fetch_add(1, Ordering::SeqCst);
        let hint: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(40)
            .collect();
        let name = format!("{hint}-{}-{n}", std::process::id());
        let (status, body) = self.curl(&["-X", "PUT"], &name);
        assert_eq!(
            status,
            200,
            "creating bucket {name}: {}",
            String::from_utf8_lossy(&body)
        );
        name
    }

    /// `curl --aws-sigv4` on `path` (`BUCKET/KEY`, or `BUCKET?query`) with extra arguments;
    /// the HTTP status and the body.
    pub fn curl(&self, args: &[&str], path: &str) -> (u16, Vec<u8>) {
        let out = Command::new("curl")
            .args(["-sS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user"])
            .arg(format!("{ACCESS_KEY}:{SECRET_KEY}"))
            .args([
                "-H",
                "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                "-w",
                "\n%{http_code}",
            ])
            .args(args)
            .arg(format!("{}/{path}", self.endpoint))
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "curl {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut body = out.stdout;
        let split = body.iter().rposition(|&b| b == b'\n').expect("status line");
        let status = String::from_utf8_lossy(&body[split + 1..])
            .trim()
            .parse()
            .unwrap();
        body.truncate(split);
        (status, body)
    }

    /// The bytes of an object (panics unless it is there).
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let (status, body) = self.curl(&[], &format!("{bucket}/{key}"));
        assert_eq!(
            status,
            200,
            "GET {bucket}/{key}: {}",
            String::from_utf8_lossy(&body)
        );
        body
    }

    /// Whether an object exists.
    pub fn exists(&self, bucket: &str, key: &str) -> bool {
        let (status, _) = self.curl(&["-I"], &format!("{bucket}/{key}"));
        status == 200
    }

    /// Writes an object (replacing it).
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        let (status, body) = self.curl(
            &["-T", file.path().to_str().unwrap()],
            &format!("{bucket}/{key}"),
        );
        assert_eq!(
            status,
            200,
            "PUT {bucket}/{key}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// Deletes an object.
    pub fn delete(&self, bucket: &str, key: &str) {
        let (status, _) = self.curl(&["-X", "DELETE"], &format!("{bucket}/{key}"));
        assert!(
            status == 204 || status == 200,
            "DELETE {bucket}/{key}: {status}"
        );
    }

    /// The keys and sizes under `prefix` (all pages), sorted.
    pub fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let encode = |s: &str| percent_encode(s);
            let mut query = format!("{bucket}?prefix={}", encode(prefix));
            if !marker.is_empty() {
                query = format!(
                    "{bucket}?marker={}&prefix={}",
                    encode(&marker),
                    encode(prefix)
                );
            }
            let (status, body) = self.curl(&[], &query);
            let text = String::from_utf8_lossy(&body).to_string();
            assert_eq!(status, 200, "list {bucket}/{prefix}: {text}");
            for contents in text.split("<Contents>").skip(1) {
                let key = between(contents, "<Key>", "</Key>").to_string();
                let size = between(contents, "<Size>", "</Size>").parse().unwrap();
                marker = key.clone();
                out.push((key, size));
            }
            if !text.contains("<IsTruncated>true</IsTruncated>") {
                break;
            }
        }
        out.sort();
        out
    }

    /// Multipart uploads in progress (not completed nor aborted) under `prefix`: their keys.
    pub fn uploads_in_progress(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (status, body) = self.curl(
            &[],
            &format!("{bucket}?prefix={}&uploads=", percent_encode(prefix)),
        );
        let text = String::from_utf8_lossy(&body).to_string();
        assert_eq!(status, 200, "list uploads of {bucket}: {text}");
        text.split("<Upload>")
            .skip(1)
            .map(|u| between(u, "<Key>", "</Key>").to_string())
            .collect()
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).map(|i| i + start.len()).unwrap_or(0);
    let to = text[from..].find(end).map(|i| i + from).unwrap_or(from);
    &text[from..to]
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
