//! A `ferry serve` child process for the tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::ferry::Env;
use super::run;
use super::util::wait_for;

/// A `ferry serve` child process on a free loopback port; killed on drop.
pub struct Served {
    child: Child,
    /// `HOST:PORT` it listens on.
    pub addr: String,
    /// Everything the server wrote on standard error so far (request logs, warnings).
    stderr: Arc<Mutex<String>>,
}

impl Served {
    /// Starts `ferry serve BUNDLE --listen 127.0.0.1:0 EXTRA...` and waits for its address.
    pub fn start(env: &Env, bundle: &Path, extra: &[&str]) -> Served {
        let mut cmd = env.ferry();
        cmd.arg("serve")
            .arg(bundle)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ferry serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while matches!(pipe.read_line(&mut line), Ok(n) if n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut served = Served {
            child,
            addr: String::new(),
            stderr,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!("ferry serve printed no address; stderr:\n{}", served.log())
            });
        // "serving BUNDLE on http://ADDR (N repositories, M tags)"
        let url = line
            .split(" on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        served.addr = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .unwrap()
            .to_string();
        assert!(line.starts_with("serving "), "{line}");
        served
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The file descriptors it holds open now (sockets included).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// What it wrote on standard error so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The log once it contains `needle` (standard error is read on its own thread, so a
    /// line may arrive a little after the address); panics after 10 s.
    pub fn wait_log(&self, needle: &str) -> String {
        wait_for(Duration::from_secs(10), Duration::from_millis(10), || {
            let log = self.log();
            log.contains(needle).then_some(log)
        })
        .unwrap_or_else(|| panic!("{needle:?} not in the log:\n{}", self.log()))
    }

    /// SIGTERM, and the exit status once it has stopped.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        run(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let status = wait_for(Duration::from_secs(15), Duration::from_millis(20), || {
            self.child.try_wait().unwrap()
        })
        .expect("ferry serve did not stop within 15 s of SIGTERM");
        // The log thread sees EOF once the process is gone.
        std::thread::sleep(Duration::from_millis(100));
        (status, self.log())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
