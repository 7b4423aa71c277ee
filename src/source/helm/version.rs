//! Helm's version rules: Masterminds/semver v3 (the library Helm uses), ported faithfully.
//!
//! What Helm does with a chart version string, and so what this module does:
//! - a version is parsed leniently (`NewVersion`): an optional `v`, one to three numeric parts
//!   (`1.2` is `1.2.0`), a prerelease after `-`, build metadata after `+`;
//! - a constraint is a list of OR groups (`||`), each an AND of comparisons separated by spaces
//!   or commas; operators `=`, `!=`, `>`, `<`, `>=`, `<=` (and `=>`, `=<`), `~` (`~>`), `^`;
//!   `x`, `X` and `*` are wildcards; `1.2 - 1.4.5` is a hyphen range (`>= 1.2, <= 1.4.5`);
//!   a bare version is an exact match unless it has a wildcard or fewer than three parts, in
//!   which case it means the same as `~`;
//! - prereleases match only an AND group that names a prerelease itself;
//! - when picking from a list, Helm first looks for an entry whose version string is exactly
//!   the one asked for, then takes the highest version the constraint accepts
//!   ([`select`]).

use std::cmp::Ordering;
use std::fmt;
use std::sync::OnceLock;

use regex::Regex;

/// A version that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a version: {reason}")]
pub struct VersionError {
    /// The text.
    pub input: String,
    /// Why.
    pub reason: &'static str,
}

/// A constraint that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a Helm version constraint ({reason}); write an exact version (1.16.5) or a range such as \">=1.16.0 <1.17.0\", \"~1.16\", \"^1.16\", \"1.16.x\""
)]
pub struct ConstraintError {
    /// The constraint as written.
    pub input: String,
    /// Why.
    pub reason: String,
}

/// A parsed version (Masterminds `Version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    metadata: String,
    original: String,
}

/// `[\t\n\f\r ]`: Go's `\s` (ASCII only).
const S: &str = r"[\t\n\x0C\r ]";
/// Masterminds' `looseSemVerRegex`.
const LOOSE: &str = r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
/// Masterminds' `cvRegex` (the `|` inside the classes is literal there too).
const CV: &str = r"v?([0-9|x|X|\*]+)(\.[0-9|x|X|\*]+)?(\.[0-9|x|X|\*]+)?(-([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?(\+([0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*))?";
/// The operators, in Masterminds' order (leftmost-first alternation, as in Go).
const OPS: &str = r"=||!=|>|<|>=|=>|<=|=<|~|~>|\^";

struct Patterns {
    loose: Regex,
    constraint: Regex,
    range: Regex,
    find: Regex,
    valid: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| {
        let re = |s: String| Regex::new(&s).expect("static pattern");
        Patterns {
            loose: re(format!("^{LOOSE}$")),
            constraint: re(format!(r"^{S}*({OPS}){S}*({CV}){S}*$")),
            range: re(format!(r"{S}*({CV}){S}+-{S}+({CV}){S}*")),
            find: re(format!(r"({OPS}){S}*({CV})")),
            valid: re(format!(
                r"^({S}*({OPS}){S}*({CV}){S}*)((?:{S}+|,{S}*)({OPS}){S}*({CV}){S}*)*$"
            )),
        }
    })
}

const ALLOWED: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789";

fn only(s: &str, set: &str) -> bool {
    s.chars().all(|c| set.contains(c))
}

fn valid_prerelease(p: &str) -> Result<(), &'static str> {
    for part in p.split('.') {
        if part.is_empty() {
            return Err("empty prerelease identifier");
        } else if only(part, "0123456789") {
            if part.len() > 1 && part.starts_with('0') {
                return Err("numeric prerelease identifier starts with 0");
            }
        } else if !only(part, ALLOWED) {
            return Err("invalid characters in the prerelease");
        }
    }
    Ok(())
}

fn valid_metadata(m: &str) -> Result<(), &'static str> {
    for part in m.split('.') {
        if part.is_empty() || !only(part, ALLOWED) {
            return Err("invalid build metadata");
        }
    }
    Ok(())
}

impl Version {
    /// Parses leniently, as Helm does (`NewVersion` with coercion: `1.2` is `1.2.0`, leading
    /// zeros are accepted, a `v` prefix is dropped).
    pub fn parse(input: &str) -> Result<Version, VersionError> {
        let err = |reason| VersionError {
            input: input.to_string(),
            reason,
        };
        let m = patterns()
            .loose
            .captures(input)
            .ok_or_else(|| err("expected MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]"))?;
        let number = |i: usize| -> Result<u64, VersionError> {
            match m.get(i) {
                None => Ok(0),
                Some(g) => g
                    .as_str()
                    .trim_start_matches('.')
                    .parse()
                    .map_err(|_| err("a number is too large")),
            }
        };
        let version = Version {
            major: number(1)?,
            minor: number(2)?,
            patch: number(3)?,
            pre: m.get(5).map(|g| g.as_str().to_string()).unwrap_or_default(),
            metadata: m.get(8).map(|g| g.as_str().to_string()).unwrap_or_default(),
            original: input.to_string(),
        };
        if !version.pre.is_empty() {
            valid_prerelease(&version.pre).map_err(err)?;
        }
        if !version.metadata.is_empty() {
            valid_metadata(&version.metadata).map_err(err)?;
        }
        Ok(version)
    }

    /// Parses a strict semantic version (`StrictNewVersion`): exactly three parts, no leading
    /// zeros, no `v`. Helm lists OCI tags through this.
    pub fn parse_strict(input: &str) -> Result<Version, VersionError> {
        let err = |reason| VersionError {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(err("empty"));
        }
        let mut parts: Vec<&str> = input.splitn(3, '.').collect();
        if parts.len() != 3 {
            return Err(err("expected MAJOR.MINOR.PATCH"));
        }
        let mut metadata = "";
        let mut pre = "";
        if let Some((rest, m)) = parts[2].split_once('+') {
            metadata = m;
            parts[2] = rest;
            valid_metadata(metadata).map_err(err)?;
        }
        if let Some((rest, p)) = parts[2].split_once('-') {
            pre = p;
            parts[2] = rest;
            valid_prerelease(pre).map_err(err)?;
        }
        for p in &parts {
            if !only(p, "0123456789") || p.is_empty() {
                return Err(err("invalid characters in a version number"));
            }
            if p.len() > 1 && p.starts_with('0') {
                return Err(err("a version number starts with 0"));
            }
        }
        let n = |s: &str| s.parse::<u64>().map_err(|_| err("a number is too large"));
        Ok(Version {
            major: n(parts[0])?,
            minor: n(parts[1])?,
            patch: n(parts[2])?,
            pre: pre.to_string(),
            metadata: metadata.to_string(),
            original: input.to_string(),
        })
    }

    /// The prerelease part (after `-`), empty when there is none.
    pub fn prerelease(&self) -> &str {
        &self.pre
    }

    /// The text it was parsed from.
    pub fn original(&self) -> &str {
        &self.original
    }

    /// Precedence, as Masterminds compares (build metadata is ignored).
    pub fn compare(&self, other: &Version) -> Ordering {
        self.major
            .cmp(&other.major)
            .then(self.minor.cmp(&other.minor))
            .then(self.patch.cmp(&other.patch))
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => compare_prerelease(&self.pre, &other.pre),
            })
    }

    fn less_than(&self, other: &Version) -> bool {
        self.compare(other) == Ordering::Less
    }
}

impl fmt::Display for Version {
    /// The normalized form (`String()`): no `v`, three parts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.metadata.is_empty() {
            write!(f, "+{}", self.metadata)?;
        }
        Ok(())
    }
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let a: Vec<&str> = a.split('.').collect();
    let b: Vec<&str> = b.split('.').collect();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or("");
        let y = b.get(i).copied().unwrap_or("");
        let d = compare_pre_part(x, y);
        if d != Ordering::Equal {
            return d;
        }
    }
    Ordering::Equal
}

fn compare_pre_part(s: &str, o: &str) -> Ordering {
    if s == o {
        return Ordering::Equal;
    }
    if s.is_empty() {
        return Ordering::Less;
    }
    if o.is_empty() {
        return Ordering::Greater;
    }
    match (s.parse::<u64>(), o.parse::<u64>()) {
        (Err(_), Err(_)) => {
            if s > o {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        // A number sorts before a string.
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Ok(x), Ok(y)) => {
            if x > y {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "" | "=" => Op::TildeOrEqual,
            "!=" => Op::NotEqual,
            ">" => Op::Greater,
            "<" => Op::Less,
            ">=" | "=>" => Op::GreaterEqual,
            "<=" | "=<" => Op::LessEqual,
            "~" | "~>" => Op::Tilde,
            "^" => Op::Caret,
            _ => return None,
        })
    }
}

/// One comparison of a constraint.
#[derive(Debug, Clone)]
struct Comparison {
    op: Op,
    con: Version,
    minor_dirty: bool,
    patch_dirty: bool,
    dirty: bool,
}

/// A parsed constraint (Masterminds `Constraints`).
#[derive(Debug, Clone)]
pub struct Constraint {
    groups: Vec<Vec<Comparison>>,
    group_has_pre: Vec<bool>,
    text: String,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

fn parse_comparison(c: &str) -> Result<Comparison, String> {
    if c.is_empty() {
        return Ok(Comparison {
            op: Op::TildeOrEqual,
            con: Version::parse("0.0.0").expect("static"),
            minor_dirty: false,
            patch_dirty: false,
            dirty: true,
        });
    }
    let m = patterns()
        .constraint
        .captures(c)
        .ok_or_else(|| format!("improper constraint {c:?}"))?;
    let g = |i: usize| m.get(i).map(|x| x.as_str()).unwrap_or("");
    let op = Op::parse(g(1)).ok_or_else(|| format!("unknown operator {:?}", g(1)))?;
    let (major, minor, patch, pre) = (g(3), g(4), g(5), g(6));
    let (mut minor_dirty, mut patch_dirty, mut dirty) = (false, false, false);
    let text = if is_x(major) || major.is_empty() {
        dirty = true;
        format!("0.0.0{pre}")
    } else if is_x(minor.trim_start_matches('.')) || minor.is_empty() {
        minor_dirty = true;
        dirty = true;
        format!("{major}.0.0{pre}")
    } else if is_x(patch.trim_start_matches('.')) || patch.is_empty() {
        dirty = true;
        patch_dirty = true;
        format!("{major}{minor}.0{pre}")
    } else {
        g(2).to_string()
    };
    let con = Version::parse(&text).map_err(|e| e.reason.to_string())?;
    Ok(Comparison {
        op,
        con,
        minor_dirty,
        patch_dirty,
        dirty,
    })
}

/// `a - b` becomes `>= a, <= b`.
fn rewrite_range(input: &str) -> String {
    let mut out = input.to_string();
    for m in patterns().range.captures_iter(input) {
        let whole = m.get(0).expect("match").as_str();
        let from = m.get(1).map(|x| x.as_str()).unwrap_or("");
        let to = m.get(11).map(|x| x.as_str()).unwrap_or("");
        out = out.replacen(whole, &format!(">= {from}, <= {to} "), 1);
    }
    out
}

impl Constraint {
    /// Parses a constraint as Helm does (`semver.NewConstraint`).
    pub fn parse(input: &str) -> Result<Constraint, ConstraintError> {
        let err = |reason: String| ConstraintError {
            input: input.to_string(),
            reason,
        };
        let rewritten = rewrite_range(input);
        let mut groups = Vec::new();
        let mut group_has_pre = Vec::new();
        for part in rewritten.split("||") {
            if !patterns().valid.is_match(part) {
                return Err(err(format!("improper constraint {:?}", part.trim())));
            }
            let mut found: Vec<&str> = patterns()
                .find
                .find_iter(part)
                .map(|m| m.as_str())
                .collect();
            if found.is_empty() {
                found.push(part);
            }
            let mut group = Vec::new();
            let mut has_pre = false;
            for text in found {
                let c = parse_comparison(text).map_err(err)?;
                has_pre |= !c.con.pre.is_empty();
                group.push(c);
            }
            groups.push(group);
            group_has_pre.push(has_pre);
        }
        Ok(Constraint {
            groups,
            group_has_pre,
            text: input.to_string(),
        })
    }

    /// Whether the constraint is a plain version (no operator, no wildcard, all three parts):
    /// an exact pin.
    pub fn is_exact(&self) -> bool {
        self.groups.len() == 1
            && self.groups[0].len() == 1
            && self.groups[0][0].op == Op::TildeOrEqual
            && !self.groups[0][0].dirty
    }

    /// Whether `v` satisfies the constraint.
    pub fn matches(&self, v: &Version) -> bool {
        self.groups
            .iter()
            .zip(&self.group_has_pre)
            .any(|(group, has_pre)| group.iter().all(|c| c.check(v, *has_pre)))
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Comparison {
    fn check(&self, v: &Version, include_pre: bool) -> bool {
        if !v.pre.is_empty() && !include_pre {
            return false;
        }
        let c = &self.con;
        match self.op {
            Op::NotEqual => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    } else if self.minor_dirty {
                        return false;
                    } else if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    } else if self.patch_dirty {
                        if !v.pre.is_empty() || !c.pre.is_empty() {
                            return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                        }
                        return false;
                    }
                }
                v.compare(c) != Ordering::Equal
            }
            Op::Greater => {
                if !self.dirty {
                    return v.compare(c) == Ordering::Greater;
                }
                if v.major > c.major {
                    true
                } else if v.major < c.major || self.minor_dirty {
                    false
                } else if self.patch_dirty {
                    v.minor > c.minor
                } else {
                    v.compare(c) == Ordering::Greater
                }
            }
            Op::Less => v.compare(c) == Ordering::Less,
            Op::GreaterEqual => v.compare(c) != Ordering::Less,
            Op::LessEqual => {
                if !self.dirty {
                    return v.compare(c) != Ordering::Greater;
                }
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::Tilde => self.tilde(v),
            Op::TildeOrEqual => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v.compare(c) == Ordering::Equal
                }
            }
            Op::Caret => {
                if v.less_than(c) {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                c.patch == v.patch
            }
        }
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.con;
        if v.less_than(c) {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }
}

/// Picks what Helm would pick from `candidates` (version strings, any order) for `wanted`: the
/// candidate equal to `wanted` as written, else the highest version the constraint accepts
/// (candidates that are not versions are skipped). Returns its index.
pub fn select(candidates: &[&str], wanted: &Constraint) -> Option<usize> {
    if let Some(i) = candidates.iter().position(|c| *c == wanted.text) {
        return Some(i);
    }
    let mut best: Option<(usize, Version)> = None;
    for (i, candidate) in candidates.iter().enumerate() {
        let Ok(v) = Version::parse(candidate) else {
            continue;
        };
        if !wanted.matches(&v) {
            continue;
        }
        // Ties (same precedence, other build metadata) keep the first listed.
        if best
            .as_ref()
            .is_none_or(|(_, b)| v.compare(b) == Ordering::Greater)
        {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// Sorts version strings newest first, as Helm sorts a repository index (strings that are
/// not versions go last).
pub fn sort_descending(versions: &mut [String]) {
    versions.sort_by(|a, b| match (Version::parse(a), Version::parse(b)) {
        (Ok(x), Ok(y)) => y.compare(&x),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => Ordering::Equal,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Masterminds/semver's own table (TestConstraintsCheck), which Helm relies on, plus the
    /// cases the manifest documents.
    const CHECK: &[(&str, &str, bool)] = &[
        ("*", "1.2.3", true),
        ("~0.0.0", "1.2.3", true),
        ("0.x.x", "1.2.3", false),
        ("0.0.x", "1.2.3", false),
        ("0.0.0", "1.2.3", false),
        ("^0.0.0", "1.2.3", false),
        ("= 2.0", "1.2.3", false),
        ("= 2.0", "2.0.0", true),
        ("4.1", "4.1.0", true),
        ("4.1.x", "4.1.3", true),
        ("1.x", "1.4", true),
        ("!=4.1", "4.1.0", false),
        ("!=4.1-alpha", "4.1.0-alpha", false),
        ("!=4.1-alpha", "4.1.1-alpha", false),
        ("!=4.1-alpha", "4.1.0", true),
        ("!=4.1", "5.1.0", true),
        ("!=4.x", "5.1.0", true),
        ("!=4.x", "4.1.0", false),
        ("!=4.1.x", "4.2.0", true),
        ("!=4.2.x", "4.2.3", false),
        (">1.1", "4.1.0", true),
        (">1.1", "1.1.0", false),
        ("<1.1", "0.1.0", true),
        ("<1.1", "1.1.0", false),
        ("<1.1", "1.1.1", false),
        ("<1.x", "1.1.1", false),
        ("<1.x", "0.1.1", true),
        ("<1.x", "2.0.0", false),
        ("<1.1.x", "1.2.1", false),
        ("<1.1.x", "1.1.500", false),
        ("<1.1.x", "1.0.500", true),
        ("<1.2.x", "1.1.1", true),
        (">=1.1", "4.1.0", true),
        (">=1.1", "4.1.0-beta", false),
        (">=1.1", "1.1.0", true),
        (">=1.1", "0.0.9", false),
        ("<=1.1", "0.1.0", true),
        ("<=1.1", "0.1.0-alpha", false),
        ("<=1.1-a", "0.1.0-alpha", true),
        ("<=1.1", "1.1.0", true),
        ("<=1.x", "1.1.0", true),
        ("<=2.x", "3.0.0", false),
        ("<=1.1", "1.1.1", true),
        ("<=1.1.x", "1.2.500", false),
        ("<=4.5", "3.4.0", true),
        ("<=4.5", "3.7.0", true),
        ("<=4.5", "4.6.3", false),
        (">1.1, <2", "1.1.1", false),
        (">1.1, <2", "1.2.1", true),
        (">1.1, <3", "4.3.2", false),
        (">=1.1, <2, !=1.2.3", "1.2.3", false),
        (">1.1 <2", "1.1.1", false),
        (">1.1 <2", "1.2.1", true),
        (">1.1    <3", "4.3.2", false),
        (">=1.1    <2    !=1.2.3", "1.2.3", false),
        (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
        (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false),
        (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true),
        (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
        (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", false),
        (">=1.1 <2 !=1.2.3 || > 3", "4.1.2", true),
        ("> 1.1, <     2", "1.1.1", false),
        (">   1.1, <2", "1.2.1", true),
        (">= 1.1 <2 != 1.2.3 || >= 3", "3.0.0", true),
        (">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", true),
        (">= 1.0.0  <= 2.0.0-beta", "1.0.1", true),
        (">= 1.0.0  <= 2.0.0-beta", "3.0.0", false),
        (">= 1.0.0  <= 2.0.0-beta || > 3", "1.0.1-beta", true),
        (">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", false),
        (
            ">= 1.0.0  <= 2.0.0-beta != 1.0.1 || > 3",
            "1.0.1-beta",
            true,
        ),
        (
            ">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3",
            "1.0.1-beta",
            false,
        ),
        (">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", true),
        ("1.1 - 2", "1.1.1", true),
        ("1.5.0 - 4.5", "3.7.0", true),
        ("1.1-3", "4.3.2", false),
        ("^1.1", "1.1.1", true),
        ("^1.1", "4.3.2", false),
        ("^1.x", "1.1.1", true),
        ("^2.x", "1.1.1", false),
        ("^1.x", "2.1.1", false),
        ("^1.x", "1.1.1-beta1", false),
        ("^1.1.2-alpha", "1.2.1-beta1", true),
        ("^1.2.x-alpha", "1.1.1-beta1", false),
        ("^0.0.1", "0.0.1", true),
        ("^0.0.1", "0.3.1", false),
        ("~*", "2.1.1", true),
        ("~1", "2.1.1", false),
        ("~1", "1.3.5", true),
        ("~1", "1.4", true),
        ("~1.x", "2.1.1", false),
        ("~1.x", "1.3.5", true),
        ("~1.1", "1.1.1", true),
        ("~1.1", "1.1.1-alpha", false),
        ("~1.1-alpha", "1.1.1-beta", true),
        ("~1.1.1-beta", "1.1.1-alpha", false),
        ("~1.1.1-beta", "1.1.1", true),
        ("~1.2.3", "1.2.5", true),
        ("~1.2.3", "1.2.2", false),
        ("~1.2.3", "1.3.2", false),
        ("~1.1", "1.2.3", false),
        ("~1.3", "2.4.5", false),
        ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true),
        ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", true),
        // Caret details (Masterminds' comments).
        ("^0.2.3", "0.2.9", true),
        ("^0.2.3", "0.3.0", false),
        ("^0.0", "0.0.9", true),
        ("^0.0", "0.1.0", false),
        ("^0", "0.9.9", true),
        ("^0", "1.0.0", false),
        ("^1.16", "1.99.0", true),
        ("^1.16", "2.0.0", false),
        // The manifest's examples.
        ("1.16.5", "1.16.5", true),
        ("1.16.5", "1.16.6", false),
        (">=1.16.0 <1.17.0", "1.16.9", true),
        (">=1.16.0 <1.17.0", "1.17.0", false),
        ("~1.16", "1.16.5", true),
        ("~1.16", "1.17.0", false),
        ("1.16.x", "1.16.5", true),
        ("1.16.*", "1.17.0", false),
        ("v1.16.5", "1.16.5", true),
        // Build metadata does not count for precedence.
        ("1.16.5", "1.16.5+build.1", true),
    ];

    #[test]
    fn masterminds_table() {
        for (constraint, version, want) in CHECK {
            let c = Constraint::parse(constraint)
                .unwrap_or_else(|e| panic!("{constraint:?} should parse: {e}"));
            let v = Version::parse(version).unwrap();
            assert_eq!(
                c.matches(&v),
                *want,
                "constraint {constraint:?} with {version:?}"
            );
        }
    }

    #[test]
    fn bad_constraints_and_versions() {
        for bad in [
            "abc",
            ">= 1.0 junk",
            "1.2.3.4",
            "> > 1",
            "1.0.0-",
            "~1.01a",
            "=>=1",
        ] {
            assert!(Constraint::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let e = Constraint::parse("latest!").unwrap_err();
        assert!(e.to_string().contains("\"latest!\""), "{e}");
        for bad in ["", "x", "1.2.3-01", "1.2.3+", "1..2"] {
            assert!(Version::parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(Version::parse_strict("1.2").is_err());
        assert!(Version::parse_strict("v1.2.3").is_err());
        assert!(Version::parse_strict("01.2.3").is_err());
        assert_eq!(
            Version::parse_strict("1.2.3-rc.1+b.2").unwrap().to_string(),
            "1.2.3-rc.1+b.2"
        );
        assert_eq!(Version::parse("v1.2").unwrap().to_string(), "1.2.0");
        assert_eq!(Version::parse("01.2.3").unwrap().to_string(), "1.2.3");
    }

    #[test]
    fn exactness() {
        assert!(Constraint::parse("1.16.5").unwrap().is_exact());
        assert!(Constraint::parse("=1.16.5").unwrap().is_exact());
        assert!(!Constraint::parse("1.16").unwrap().is_exact());
        assert!(!Constraint::parse("1.16.x").unwrap().is_exact());
        assert!(!Constraint::parse("~1.16.5").unwrap().is_exact());
        assert!(!Constraint::parse("1.16.5 || 1.16.6").unwrap().is_exact());
    }

    #[test]
    fn precedence() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "2.0.0",
        ];
        for w in order.windows(2) {
            let (a, b) = (Version::parse(w[0]).unwrap(), Version::parse(w[1]).unwrap());
            assert_eq!(a.compare(&b), Ordering::Less, "{} < {}", w[0], w[1]);
        }
        let mut list: Vec<String> = ["1.0.0", "junk", "2.0.0-rc.1", "1.10.0", "1.9.0"]
            .map(String::from)
            .to_vec();
        sort_descending(&mut list);
        assert_eq!(list, ["2.0.0-rc.1", "1.10.0", "1.9.0", "1.0.0", "junk"]);
    }

    #[test]
    fn selection_as_helm_does() {
        let versions = [
            "1.17.0",
            "1.16.5",
            "1.16.10",
            "1.16.2",
            "1.17.0-rc.1",
            "junk",
        ];
        let pick = |c: &str| select(&versions, &Constraint::parse(c).unwrap()).map(|i| versions[i]);
        assert_eq!(pick("~1.16"), Some("1.16.10"));
        assert_eq!(pick("^1.16"), Some("1.17.0"));
        assert_eq!(pick(">=1.16.0 <1.17.0"), Some("1.16.10"));
        assert_eq!(pick("1.16.2"), Some("1.16.2"));
        assert_eq!(pick("*"), Some("1.17.0"));
        assert_eq!(pick(">=1.17.0-0"), Some("1.17.0"));
        assert_eq!(pick("1.17.0-rc.1"), Some("1.17.0-rc.1"));
        assert_eq!(pick("2.x"), None);
        // An exact string wins even when another entry has the same precedence.
        let tagged = ["1.0.0+b", "1.0.0+a"];
        assert_eq!(
            select(&tagged, &Constraint::parse("1.0.0+a").unwrap()),
            Some(1)
        );
        assert_eq!(
            select(&tagged, &Constraint::parse("1.0.0").unwrap()),
            Some(0)
        );
    }
}
