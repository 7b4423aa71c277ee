//! `Release` files: which index files a suite has, with their sizes and SHA256 sums, and the
//! dates apt checks.

use std::collections::BTreeMap;

use super::control::{ControlError, stanzas};

/// One index file a `Release` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA256, lowercase hex.
    pub sha256: String,
}

/// The parts of a `Release` ferry uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Release {
    /// `Suite`.
    pub suite: Option<String>,
    /// `Codename`.
    pub codename: Option<String>,
    /// `Date`, as written.
    pub date: Option<String>,
    /// `Valid-Until`, as written.
    pub valid_until: Option<String>,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// Path (relative to the suite directory) to its SHA256 entry.
    pub sha256: BTreeMap<String, IndexFile>,
    /// `No-Support-for-Architecture-all: Packages`: `all` packages are in every
    /// architecture's `Packages`, and `binary-all` need not be read.
    pub all_in_every_architecture: bool,
}

/// Why a `Release` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Not control data.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// No stanza, or a malformed SHA256 line.
    #[error("{0}")]
    Invalid(String),
}

impl Release {
    /// Parses the text of a `Release` (the verified text of an `InRelease`).
    pub fn parse(text: &str) -> Result<Release, ReleaseError> {
        let all = stanzas(text)?;
        let stanza = all
            .first()
            .ok_or_else(|| ReleaseError::Invalid("the Release file is empty".into()))?;
        let words = |name: &str| -> Vec<String> {
            stanza
                .get(name)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let mut sha256 = BTreeMap::new();
        if let Some(list) = stanza.get("SHA256") {
            for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let [hash, size, path] = parts[..] else {
                    return Err(ReleaseError::Invalid(format!(
                        "malformed SHA256 line {line:?} (expected: <sha256> <size> <path>)"
                    )));
                };
                let size = size.parse().map_err(|_| {
                    ReleaseError::Invalid(format!("malformed size in SHA256 line {line:?}"))
                })?;
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(ReleaseError::Invalid(format!(
                        "malformed hash in SHA256 line {line:?}"
                    )));
                }
                sha256.insert(
                    path.to_string(),
                    IndexFile {
                        size,
                        sha256: hash.to_ascii_lowercase(),
                    },
                );
            }
        }
        Ok(Release {
            suite: stanza.get("Suite").map(str::to_string),
            codename: stanza.get("Codename").map(str::to_string),
            date: stanza.get("Date").map(str::to_string),
            valid_until: stanza.get("Valid-Until").map(str::to_string),
            architectures: words("Architectures"),
            components: words("Components"),
            sha256,
            all_in_every_architecture: stanza.get("No-Support-for-Architecture-all").is_some(),
        })
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// Parses an RFC 2822 date as `Release` files write it (`Sat, 10 Aug 2024 09:41:00 UTC`,
/// or with a numeric zone) into seconds since the epoch.
pub fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = text.split_once(',').map(|(_, rest)| rest).unwrap_or(text);
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [day, month, year, time, rest @ ..] = &parts[..] else {
        return None;
    };
    let day: i64 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as i64 + 1;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<i64>());
    let (h, m, s) = (
        hms.next()?.ok()?,
        hms.next()?.ok()?,
        hms.next().unwrap_or(Ok(0)).ok()?,
    );
    let offset = match rest.first().copied() {
        None | Some("UTC" | "GMT" | "Z" | "UT") => 0,
        Some(zone) if zone.len() == 5 && (zone.starts_with('+') || zone.starts_with('-')) => {
            let hours: i64 = zone[1..3].parse().ok()?;
            let minutes: i64 = zone[3..5].parse().ok()?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        Some(_) => return None,
    };
    Some(crate::time::days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + s - offset)
}

/// Formats seconds since the epoch as `Release` files write dates (UTC).
pub fn format_date(secs: u64) -> String {
    let secs = secs as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = crate::time::civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} UTC",
        WEEKDAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let t = parse_date("Sat, 10 Aug 2024 09:41:00 UTC").unwrap();
        assert_eq!(t, 1723282860);
        assert_eq!(format_date(t as u64), "Sat, 10 Aug 2024 09:41:00 UTC");
        assert_eq!(parse_date("Sat, 10 Aug 2024 11:41:00 +0200"), Some(t));
        assert_eq!(format_date(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn release_fields() {
        let r = Release::parse(
            "Origin: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 10 Aug 2024 09:41:00 UTC\nArchitectures: all amd64 arm64\nComponents: main contrib\nMD5Sum:\n 0123 12 main/binary-amd64/Packages\nSHA256:\n 0000000000000000000000000000000000000000000000000000000000000000 12 main/binary-amd64/Packages\n 1111111111111111111111111111111111111111111111111111111111111111     7 main/binary-amd64/Packages.xz\n",
        )
        .unwrap();
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        assert_eq!(r.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(r.sha256.len(), 2);
        assert_eq!(r.sha256["main/binary-amd64/Packages.xz"].size, 7);
        assert!(Release::parse("SHA256:\n zz 1 x\n").is_err());
        assert!(Release::parse("").is_err());
    }
}
