//! Where an upstream reference lands in a site registry, and back.
//!
//! Collision-free and in line with K3s's mirror rewrites: `quay.io/cilium/cilium` maps to
//! `[PREFIX/]quay.io/cilium/cilium`, `localhost:5000/app` to `[PREFIX/]localhost_5000/app`
//! (`:` is not allowed in a repository path). The first path segment is the Harbor project.

use crate::manifest::reference::Reference;

/// A target registry and an optional path prefix: `HOST[:PORT][/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]`.
    pub host: String,
    /// Path prefix without leading or trailing `/`, possibly empty.
    pub prefix: String,
}

/// A malformed `--to` value.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid target {value:?}: {reason}; write it as HOST[:PORT][/PREFIX], e.g. harbor.site.local/platform"
)]
pub struct TargetError {
    value: String,
    reason: &'static str,
}

impl Target {
    /// Parses `HOST[:PORT][/PREFIX]`; a scheme (`https://`) is accepted and dropped.
    pub fn parse(value: &str) -> Result<Target, TargetError> {
        let err = |reason| TargetError {
            value: value.to_string(),
            reason,
        };
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .unwrap_or(value)
            .trim_end_matches('/');
        let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(err("the host is empty"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(err("the host has characters a host name cannot have"));
        }
        for segment in prefix.split('/').filter(|s| !s.is_empty()) {
            if !segment.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
            }) {
                return Err(err(
                    "a prefix segment may hold only lowercase letters, digits, '.', '_' and '-'",
                ));
            }
        }
        Ok(Target {
            host: host.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The repository path (without host) an upstream reference maps to.
    pub fn repository_for(&self, reference: &Reference) -> String {
        let mapped = format!(
            "{}/{}",
            mapped_registry(reference.registry()),
            reference.repository()
        );
        if self.prefix.is_empty() {
            mapped
        } else {
            format!("{}/{mapped}", self.prefix)
        }
    }

    /// The path prefix that a K3s mirror for `registry` rewrites to (`[PREFIX/]<mapped>`).
    pub fn rewrite_prefix_for(&self, registry: &str) -> String {
        let mapped = mapped_registry(registry);
        if self.prefix.is_empty() {
            mapped
        } else {
            format!("{}/{mapped}", self.prefix)
        }
    }

    /// The first path segment of mapped repositories: the Harbor project.
    pub fn project_for(&self, reference: &Reference) -> String {
        self.repository_for(reference)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            f.write_str(&self.host)
        } else {
            write!(f, "{}/{}", self.host, self.prefix)
        }
    }
}

/// An upstream registry host as a repository path segment: `:` becomes `_`, lowercase.
pub fn mapped_registry(registry: &str) -> String {
    registry
        .to_ascii_lowercase()
        .replace(['[', ']'], "")
        .replace(':', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn maps_as_documented() {
        let t = Target::parse("harbor.local").unwrap();
        assert_eq!(
            t.repository_for(&r("quay.io/cilium/cilium:v1.16.5")),
            "quay.io/cilium/cilium"
        );
        assert_eq!(t.repository_for(&r("redis:7.4")), "docker.io/library/redis");
        assert_eq!(
            t.repository_for(&r("localhost:5000/app")),
            "localhost_5000/app"
        );
        assert_eq!(t.project_for(&r("redis")), "docker.io");
        let p = Target::parse("https://harbor.local:8443/platform/").unwrap();
        assert_eq!(p.host, "harbor.local:8443");
        assert_eq!(p.prefix, "platform");
        assert_eq!(p.to_string(), "harbor.local:8443/platform");
        assert_eq!(p.repository_for(&r("quay.io/x/y")), "platform/quay.io/x/y");
        assert_eq!(p.project_for(&r("quay.io/x/y")), "platform");
        assert_eq!(
            p.rewrite_prefix_for("localhost:5000"),
            "platform/localhost_5000"
        );
        assert!(Target::parse("").is_err());
        assert!(Target::parse("host/UPPER").is_err());
        assert!(Target::parse("ho st").is_err());
    }
}
