//! Waiting and retrying, shared by every network client (registries on pull and push, plain
//! HTTP downloads, Harbor's API): how long a server may stay silent, how many attempts a
//! request gets, how long to wait between them (`Retry-After` when the server says, within a
//! cap), and the line that says so.
//!
//! The settings come from the global `--timeout` and `--retries` flags (or `FERRY_TIMEOUT`,
//! `FERRY_RETRIES`) and `FERRY_MAX_RETRY_WAIT`; `main` sets them once with [`configure`].

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Seconds a server may stay silent (no connection, no byte) before an attempt is given up,
/// unless `--timeout` says otherwise.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// Retries after a failed attempt, unless `--retries` says otherwise (5 attempts in all).
pub const DEFAULT_RETRIES: u32 = 4;
/// The longest wait a `Retry-After` is followed for, unless `FERRY_MAX_RETRY_WAIT` says
/// otherwise; a longer one is cut to this, and the retry line says so.
pub const DEFAULT_MAX_RETRY_WAIT_SECS: u64 = 60;

/// How patient ferry is with servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// How long a server may stay silent: while connecting, before its answer's head, and
    /// between two reads of its body.
    pub timeout: Duration,
    /// Attempts per request (1 + retries), at least 1.
    pub attempts: u32,
    /// The longest wait a `Retry-After` is followed for.
    pub max_wait: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            attempts: DEFAULT_RETRIES + 1,
            max_wait: Duration::from_secs(DEFAULT_MAX_RETRY_WAIT_SECS),
        }
    }
}

impl Patience {
    /// The time allowed to open a connection: the timeout, at most 15 s (a host that does not
    /// take a connection in 15 s is down or filtered).
    pub fn connect_timeout(&self) -> Duration {
        self.timeout.min(Duration::from_secs(15))
    }

    /// "60 s", as the timeout is said in errors.
    pub fn timeout_text(&self) -> String {
        seconds_text(self.timeout)
    }
}

static PATIENCE: OnceLock<Patience> = OnceLock::new();

/// Sets the process's settings from the command line (`None`: the default); the first call
/// wins. `FERRY_MAX_RETRY_WAIT` (seconds) is read here.
pub fn configure(timeout_secs: Option<u64>, retries: Option<u32>) {
    let defaults = Patience::default();
    let max_wait = std::env::var("FERRY_MAX_RETRY_WAIT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(defaults.max_wait);
    let _ = PATIENCE.set(Patience {
        timeout: timeout_secs
            .map(|s| Duration::from_secs(s.max(1)))
            .unwrap_or(defaults.timeout),
        attempts: retries
            .map(|r| r.saturating_add(1))
            .unwrap_or(defaults.attempts),
        max_wait,
    });
}

/// The process's settings (the defaults when [`configure`] was not called, as in library use).
pub fn patience() -> Patience {
    PATIENCE.get().copied().unwrap_or_default()
}

/// A `Retry-After` header's wait: delay-seconds (`120`) or an HTTP-date
/// (`Wed, 21 Oct 2026 07:28:00 GMT`, counted from `now`; a date passed is no wait).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // A number too large for u64 is as good as forever: the cap cuts it.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of an answer, if it has a valid one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// Whether a status is one a `Retry-After` is honoured on (429 Too Many Requests, 503
/// Service Unavailable).
pub fn honours_retry_after(status: u16) -> bool {
    status == 429 || status == 503
}

/// The wait before attempt `attempt + 1`: what the server asked for (at most `max_wait`), else
/// `backoff` doubled per attempt (from attempt 1, at most 64 times). Also says, when the server
/// asked for more than the cap, what it asked for.
pub fn delay(
    attempt: u32,
    backoff: Duration,
    asked: Option<Duration>,
    max_wait: Duration,
) -> (Duration, Option<Duration>) {
    match asked {
        Some(asked) if asked > max_wait => (max_wait, Some(asked)),
        Some(asked) => (asked, None),
        None => (
            backoff * 2u32.saturating_pow(attempt.saturating_sub(1).min(6)),
            None,
        ),
    }
}

/// The line said before a retry: `what: reason, retrying in 3 s (attempt 2 of 5)`, with the
/// server's `Retry-After` when it set the wait, and the cut when it asked for more than the cap.
pub fn retry_line(
    what: &str,
    reason: &str,
    attempt: u32,
    attempts: u32,
    wait: Duration,
    asked: Option<Duration>,
    clamped_from: Option<Duration>,
) -> String {
    let mut line = format!(
        "{what}: {reason}, retrying in {} (attempt {} of {attempts})",
        seconds_text(wait),
        attempt + 1
    );
    if let Some(asked) = clamped_from {
        line.push_str(&format!(
            "; the server asked to wait {} (Retry-After), cut to ferry's longest wait of {} (FERRY_MAX_RETRY_WAIT)",
            seconds_text(asked),
            seconds_text(wait)
        ));
    } else if asked.is_some() {
        line.push_str(", as its Retry-After asks");
    }
    line
}

/// Says a retry is coming (a warning) and waits for it: the server's `Retry-After` (`asked`,
/// capped) or the doubling `backoff`.
pub async fn pause(
    what: &str,
    reason: &str,
    attempt: u32,
    attempts: u32,
    backoff: Duration,
    asked: Option<Duration>,
) {
    let (wait, clamped_from) = delay(attempt, backoff, asked, patience().max_wait);
    tracing::warn!(
        "{}",
        retry_line(what, reason, attempt, attempts, wait, asked, clamped_from)
    );
    tokio::time::sleep(wait).await;
}

/// "3 s", "250 ms", "1.5 s".
pub fn seconds_text(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Whether an error from reqwest (or one of its causes) is a timeout: the server stayed
/// silent longer than allowed.
pub fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<reqwest::Error>()
            && r.is_timeout()
        {
            return true;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Mon, 07 Dec 2026 06:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 06:00:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        // RFC 850 and asctime forms are HTTP-dates too.
        assert_eq!(
            parse_retry_after("Monday, 07-Dec-26 06:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        // A date passed: no wait.
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 05:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "3 s"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn delays_follow_retry_after_within_the_cap() {
        let backoff = Duration::from_millis(250);
        let cap = Duration::from_secs(60);
        assert_eq!(delay(1, backoff, None, cap), (backoff, None));
        assert_eq!(delay(3, backoff, None, cap), (backoff * 4, None));
        assert_eq!(delay(40, backoff, None, cap), (backoff * 64, None));
        assert_eq!(
            delay(1, backoff, Some(Duration::from_secs(3)), cap),
            (Duration::from_secs(3), None)
        );
        assert_eq!(
            delay(1, backoff, Some(Duration::from_secs(3600)), cap),
            (cap, Some(Duration::from_secs(3600)))
        );
    }

    #[test]
    fn retry_lines_say_what_they_do() {
        assert_eq!(
            retry_line(
                "registry.example",
                "429 Too Many Requests",
                1,
                5,
                Duration::from_secs(3),
                Some(Duration::from_secs(3)),
                None
            ),
            "registry.example: 429 Too Many Requests, retrying in 3 s (attempt 2 of 5), as its Retry-After asks"
        );
        assert_eq!(
            retry_line(
                "r",
                "HTTP 500",
                2,
                5,
                Duration::from_millis(500),
                None,
                None
            ),
            "r: HTTP 500, retrying in 500 ms (attempt 3 of 5)"
        );
        let clamped = retry_line(
            "r",
            "HTTP 503",
            1,
            3,
            Duration::from_secs(60),
            Some(Duration::from_secs(3600)),
            Some(Duration::from_secs(3600)),
        );
        assert!(clamped.contains("asked to wait 3600 s"), "{clamped}");
        assert!(
            clamped.contains("cut to ferry's longest wait of 60 s"),
            "{clamped}"
        );
    }
}
