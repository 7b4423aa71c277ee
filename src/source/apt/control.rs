//! Debian control data (deb822): the stanzas of `Packages`, `Release` and dpkg `status` files,
//! and dependency relations (`a (>= 1) | b, c`).
//!
//! Hand-written rather than a lossless syntax tree: a `Packages` file is tens of megabytes, it
//! is read once, and only byte ranges are kept: each stanza stays a slice of the file exactly
//! as upstream wrote it, which is what the bundle must carry.

use std::fmt;

use debversion::Version;

/// Why control data could not be read; each names what it was reading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// A line that is neither `Field: value`, a continuation, nor a blank separator.
    #[error("line {line}: not a `Field: value` line: {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line, shortened.
        text: String,
    },
    /// A relation field that does not parse.
    #[error("invalid relation {text:?}: {reason}")]
    BadRelation {
        /// The relation as written.
        text: String,
        /// Why.
        reason: String,
    },
    /// A version that does not parse.
    #[error("invalid version {text:?}: {reason}")]
    BadVersion {
        /// The version as written.
        text: String,
        /// Why.
        reason: String,
    },
}

/// One stanza: its verbatim text and its fields.
#[derive(Debug, Clone)]
pub struct Stanza<'a> {
    /// The stanza exactly as written, without the blank line that ends it.
    pub text: &'a str,
    /// 1-based line of its first field, for messages.
    pub line: usize,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Stanza<'a> {
    /// The value of a field (names are case-insensitive): the first line trimmed, continuation
    /// lines kept as written.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    /// Fields in order, as `(name, value)`.
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.fields.iter().map(|(n, v)| (*n, v.trim()))
    }
}

/// A stanza being read: where it starts and ends, its first line, its fields so far.
struct Open<'a> {
    start: usize,
    end: usize,
    line: usize,
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> Open<'a> {
    fn close(self, text: &'a str) -> Stanza<'a> {
        Stanza {
            text: &text[self.start..self.end],
            line: self.line,
            fields: self.fields,
        }
    }
}

/// Splits control data into stanzas. Comment lines (`#`) are skipped, as dpkg does.
pub fn stanzas(text: &str) -> Result<Vec<Stanza<'_>>, ControlError> {
    let mut out = Vec::new();
    let mut current: Option<Open<'_>> = None;
    let mut offset = 0;
    for (index, raw_line) in text.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            if let Some(open) = current.take() {
                out.push(open.close(text));
            }
            continue;
        }
        if line.starts_with('#') && current.is_none() {
            continue;
        }
        let line_end = line_start + line.len();
        let bad = || ControlError::BadLine {
            line: index + 1,
            text: shorten(line),
        };
        if line.starts_with([' ', '\t']) {
            let open = current.as_mut().ok_or_else(bad)?;
            open.end = line_end;
            let last = open.fields.last_mut().ok_or_else(bad)?;
            // The value is a slice of `text`: extend it over this line.
            let value_start = last.1.as_ptr() as usize - text.as_ptr() as usize;
            last.1 = &text[value_start..line_end];
            continue;
        }
        let colon = line.find(':').ok_or_else(bad)?;
        let name = &line[..colon];
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(bad());
        }
        let value = &text[line_start + colon + 1..line_end];
        match current.as_mut() {
            Some(open) => {
                open.end = line_end;
                open.fields.push((name, value));
            }
            None => {
                current = Some(Open {
                    start: line_start,
                    end: line_end,
                    line: index + 1,
                    fields: vec![(name, value)],
                })
            }
        }
    }
    if let Some(open) = current.take() {
        out.push(open.close(text));
    }
    Ok(out)
}

fn shorten(line: &str) -> String {
    line.chars().take(80).collect()
}

/// A version relation operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (and the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (and the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// Whether `version` satisfies `op wanted`.
    pub fn admits(self, version: &Version, wanted: &Version) -> bool {
        let order = version.cmp(wanted);
        match self {
            Op::Lt => order.is_lt(),
            Op::Le => order.is_le(),
            Op::Eq => order.is_eq(),
            Op::Ge => order.is_ge(),
            Op::Gt => order.is_gt(),
        }
    }
}

/// A version constraint: `(>= 1.2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The operator.
    pub op: Op,
    /// The version.
    pub version: Version,
}

impl Constraint {
    /// Whether `version` satisfies the constraint.
    pub fn admits(&self, version: &Version) -> bool {
        self.op.admits(version, &self.version)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.symbol(), self.version)
    }
}

/// One alternative of a relation: `name[:arch] [(op version)] [[arch list]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// Package name.
    pub name: String,
    /// Architecture qualifier (`any`, `native`, or an architecture), if given.
    pub qualifier: Option<String>,
    /// Version constraint, if given.
    pub constraint: Option<Constraint>,
    /// Architecture restriction (`[amd64 !i386]`), if given (source packages mostly).
    pub architectures: Vec<String>,
}

impl Dependency {
    /// Whether the architecture restriction lets this alternative apply on `arch`.
    pub fn applies_to(&self, arch: &str) -> bool {
        if self.architectures.is_empty() {
            return true;
        }
        let negated = self.architectures.iter().all(|a| a.starts_with('!'));
        if negated {
            !self.architectures.iter().any(|a| &a[1..] == arch)
        } else {
            self.architectures.iter().any(|a| a == arch)
        }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(q) = &self.qualifier {
            write!(f, ":{q}")?;
        }
        if let Some(c) = &self.constraint {
            write!(f, " ({c})")?;
        }
        Ok(())
    }
}

/// A relation: alternatives separated by `|`, any one of which satisfies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The alternatives, in preference order.
    pub alternatives: Vec<Dependency>,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Parses a version, naming it in the error.
pub fn parse_version(text: &str) -> Result<Version, ControlError> {
    text.trim()
        .parse::<Version>()
        .map_err(|e| ControlError::BadVersion {
            text: text.to_string(),
            reason: format!("{e:?}"),
        })
}

/// Parses a relation field (`Depends`, `Pre-Depends`, ...): comma-separated relations.
pub fn parse_relations(field: &str) -> Result<Vec<Relation>, ControlError> {
    let mut out = Vec::new();
    for item in field.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        out.push(parse_relation(item)?);
    }
    Ok(out)
}

/// Parses one relation (`a (>= 1) | b`).
pub fn parse_relation(text: &str) -> Result<Relation, ControlError> {
    let bad = |reason: &str| ControlError::BadRelation {
        text: text.trim().to_string(),
        reason: reason.to_string(),
    };
    let mut alternatives = Vec::new();
    for alt in text.split('|') {
        let mut rest = alt.trim();
        if rest.is_empty() {
            return Err(bad("empty alternative"));
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '(' | '[' | '<'))
            .unwrap_or(rest.len());
        let (full_name, after) = rest.split_at(name_end);
        rest = after.trim_start();
        let (name, qualifier) = match full_name.split_once(':') {
            Some((n, q)) => (n, Some(q.to_string())),
            None => (full_name, None),
        };
        if !valid_package_name(name) {
            return Err(bad(&format!(
                "{name:?} is not a package name (lowercase letters, digits, '+', '-', '.')"
            )));
        }
        let mut constraint = None;
        if let Some(inner) = rest.strip_prefix('(') {
            let close = inner.find(')').ok_or_else(|| bad("missing ')'"))?;
            let spec = inner[..close].trim();
            rest = inner[close + 1..].trim_start();
            let op_len = spec
                .find(|c: char| !matches!(c, '<' | '>' | '='))
                .unwrap_or(spec.len());
            let op = match &spec[..op_len] {
                "<<" => Op::Lt,
                "<=" | "<" => Op::Le,
                "=" => Op::Eq,
                ">=" | ">" => Op::Ge,
                ">>" => Op::Gt,
                other => {
                    return Err(bad(&format!(
                        "unknown operator {other:?} (use <<, <=, =, >= or >>)"
                    )));
                }
            };
            let version_text = spec[op_len..].trim();
            if version_text.is_empty() {
                return Err(bad("a version is missing after the operator"));
            }
            let version = parse_version(version_text)?;
            constraint = Some(Constraint { op, version });
        }
        let mut architectures = Vec::new();
        if let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(|| bad("missing ']'"))?;
            architectures = inner[..close]
                .split_whitespace()
                .map(str::to_string)
                .collect();
            rest = inner[close + 1..].trim_start();
        }
        // Build profiles (`<!nocheck>`) only matter when building from source.
        while let Some(inner) = rest.strip_prefix('<') {
            let close = inner.find('>').ok_or_else(|| bad("missing '>'"))?;
            rest = inner[close + 1..].trim_start();
        }
        if !rest.is_empty() {
            return Err(bad(&format!("unexpected {rest:?}")));
        }
        alternatives.push(Dependency {
            name: name.to_string(),
            qualifier,
            constraint,
            architectures,
        });
    }
    Ok(Relation { alternatives })
}

/// Debian policy 5.6.7: lowercase letters, digits, `+`, `-`, `.`, starting with a letter or
/// digit (policy also asks for two characters; one is accepted, as dpkg does).
pub fn valid_package_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
        })
}

/// A `Provides` entry: a name and, when versioned, the version provided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provided {
    /// The virtual (or real) package name provided.
    pub name: String,
    /// `(= version)`, when given.
    pub version: Option<Version>,
}

/// Parses a `Provides` field.
pub fn parse_provides(field: &str) -> Result<Vec<Provided>, ControlError> {
    let mut out = Vec::new();
    for relation in parse_relations(field)? {
        for d in relation.alternatives {
            out.push(Provided {
                name: d.name,
                version: d.constraint.map(|c| c.version),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_keep_their_bytes() {
        let text = "Package: a\nVersion: 1\nDescription: short\n long line\n .\n more\n\n\nPackage: b\r\nVersion: 2\r\n";
        let s = stanzas(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0].text,
            "Package: a\nVersion: 1\nDescription: short\n long line\n .\n more"
        );
        assert_eq!(s[0].get("package"), Some("a"));
        assert_eq!(
            s[0].get("Description"),
            Some("short\n long line\n .\n more")
        );
        assert_eq!(s[1].text, "Package: b\r\nVersion: 2");
        assert_eq!(s[1].get("Version"), Some("2"));
        assert_eq!(s[1].line, 9);
    }

    #[test]
    fn bad_lines() {
        assert!(matches!(
            stanzas("Package: a\nnot a field\n"),
            Err(ControlError::BadLine { line: 2, .. })
        ));
        assert!(matches!(
            stanzas(" continuation first\n"),
            Err(ControlError::BadLine { line: 1, .. })
        ));
    }

    #[test]
    fn relations() {
        let r = parse_relations(
            "libc6 (>= 2.34), default-mta | mail-transport-agent, python3:any (<< 3.12~) [amd64], x (>2) <!nocheck>",
        )
        .unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].to_string(), "libc6 (>= 2.34)");
        assert_eq!(r[1].alternatives.len(), 2);
        assert_eq!(r[2].alternatives[0].qualifier.as_deref(), Some("any"));
        assert!(r[2].alternatives[0].applies_to("amd64"));
        assert!(!r[2].alternatives[0].applies_to("arm64"));
        assert_eq!(r[3].alternatives[0].constraint.as_ref().unwrap().op, Op::Ge);
        let c = &r[0].alternatives[0].constraint.as_ref().unwrap();
        assert!(c.admits(&"2.35-0ubuntu3".parse().unwrap()));
        assert!(!c.admits(&"2.33".parse().unwrap()));
        assert!(c.admits(&"1:1.0".parse().unwrap()));
    }

    #[test]
    fn bad_relations() {
        for bad in ["a (>= )", "a (~ 1)", "A", "a (>= 1", "a | ", "a b", "-x"] {
            assert!(parse_relation(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn provides() {
        let p = parse_provides("mail-transport-agent, libfoo-abi (= 2.1)").unwrap();
        assert_eq!(p[0].version, None);
        assert_eq!(p[1].version, Some("2.1".parse().unwrap()));
    }
}
