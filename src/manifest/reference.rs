//! Container image references, normalized the way Docker and containerd normalize them.
//!
//! The grammar and the normalization rules follow `github.com/distribution/reference`
//! (`ParseNormalizedNamed` plus `TagNameOnly`), so that a reference written in a manifest
//! names exactly the image that `docker pull` or `ctr pull` would fetch for the same text:
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ registry "/" ] path
//! registry         := host [ ":" port ]
//! host             := domain-name | "[" ipv6 "]"
//! path             := path-component [ "/" path-component ]*
//! path-component   := [a-z0-9]+ ( ( [._] | "__" | [-]+ ) [a-z0-9]+ )*
//! tag              := [\w][\w.-]{0,127}
//! digest           := "sha256:" [a-f0-9]{64}
//! ```
//!
//! Deliberate differences from upstream, each stricter:
//! - only `sha256` digests are accepted, because every digest ferry pins is checked with
//!   SHA-256 and a bundle must not carry content it cannot verify;
//! - the 255-character limit applies to the whole name (`registry/path`), not only to the
//!   path, because on import the whole name becomes the repository path in the target
//!   registry (`quay.io/cilium/cilium` lands at `<registry>/quay.io/cilium/cilium`);
//! - a first component is a registry only if it contains `.` or `:` or is `localhost`; newer
//!   upstream versions also treat an upper-case first component as a registry, which turns
//!   a typo such as `Bitnami/redis` into a pull from a host named `Bitnami`. Here it is an
//!   error that says the repository name must be lowercase.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Registry that names without a registry component (`redis`, `user/app`) resolve to.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// Tag given to a reference that names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

/// Longest accepted name (`registry/path`), in characters.
pub const NAME_MAX_LEN: usize = 255;

/// Docker Hub's historical name; it is the same registry as [`DEFAULT_REGISTRY`].
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";

/// Namespace of Docker Hub's official images (`redis` is `library/redis`).
const OFFICIAL_REPO_PREFIX: &str = "library/";

/// Longest tag the distribution spec allows.
const TAG_MAX_LEN: usize = 128;

/// The only digest algorithm ferry accepts.
const SHA256: &str = "sha256";

/// A fully normalized image reference: registry, repository path, and a tag, a digest or both.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The string is empty.
    #[error("reference is empty")]
    Empty,
    /// The string is a bare image ID, which names no repository to pull from.
    #[error(
        "a bare 64-character hex string is an image ID, not a reference; \
         write it as <repository>@sha256:<hex>"
    )]
    ImageId,
    /// The repository part is empty (`quay.io/`, `@sha256:...`, `:tag`).
    #[error("repository name is missing")]
    MissingRepository,
    /// The repository path contains upper-case letters.
    #[error("repository name must be lowercase")]
    Uppercase,
    /// The registry part is not a host name, IPv4 or bracketed IPv6 address with optional port.
    #[error(
        "invalid registry {registry:?}: expected a host name or IP address \
         (IPv6 in brackets), optionally followed by :port"
    )]
    InvalidRegistry {
        /// The registry part as written.
        registry: String,
    },
    /// The repository path has an empty component (`a//b`, trailing `/`).
    #[error("repository path has an empty component; remove the doubled or trailing '/'")]
    EmptyPathComponent,
    /// A repository path component breaks the path-component grammar.
    #[error(
        "invalid repository path component {component:?}: use lowercase letters and digits, \
         separated by '.', '_', '__' or dashes"
    )]
    InvalidPathComponent {
        /// The offending component.
        component: String,
    },
    /// The tag breaks the tag grammar.
    #[error(
        "invalid tag {tag:?}: a tag is 1 to 128 letters, digits, '_', '.' or '-' \
         and must not start with '.' or '-'"
    )]
    InvalidTag {
        /// The tag as written.
        tag: String,
    },
    /// The digest is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest {digest:?}: expected sha256: followed by 64 lowercase hex digits")]
    InvalidDigest {
        /// The digest as written.
        digest: String,
    },
    /// The digest uses a well-formed algorithm other than sha256.
    #[error("unsupported digest algorithm {algorithm:?}: only sha256 digests are supported")]
    UnsupportedDigestAlgorithm {
        /// The algorithm as written.
        algorithm: String,
    },
    /// The normalized name is longer than [`NAME_MAX_LEN`].
    #[error("name is {length} characters long after normalization; the limit is 255")]
    NameTooLong {
        /// Length of `registry/path` after normalization.
        length: usize,
    },
}

impl Reference {
    /// Parses and normalizes a reference; adds the tag `latest` when it has neither tag nor digest.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        // Upstream refuses these because `docker pull <id>` would be ambiguous with a local ID.
        if s.len() == 64 && s.bytes().all(is_lower_hex) {
            return Err(ReferenceError::ImageId);
        }

        // No name or tag character can be '@', so the first '@' starts the digest.
        let (name_and_tag, digest) = match s.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (s, None),
        };
        let (registry, remainder) = split_registry(name_and_tag);
        // The registry (which may hold a ':port') is split off, so a ':' left is the tag's.
        let (path, tag) = match remainder.split_once(':') {
            Some((path, tag)) => (path, Some(tag)),
            None => (remainder, None),
        };

        if path.is_empty() {
            return Err(ReferenceError::MissingRepository);
        }
        // Checked before the component grammar so that `Redis` gets the helpful message
        // rather than "invalid path component".
        if path.to_lowercase() != path {
            return Err(ReferenceError::Uppercase);
        }
        for component in path.split('/') {
            validate_path_component(component)?;
        }
        let registry = match registry {
            Some(registry) => {
                validate_registry(registry)?;
                if registry == LEGACY_DEFAULT_REGISTRY {
                    DEFAULT_REGISTRY
                } else {
                    registry
                }
            }
            None => DEFAULT_REGISTRY,
        };
        if let Some(tag) = tag {
            validate_tag(tag)?;
        }
        if let Some(digest) = digest {
            validate_digest(digest)?;
        }

        // Official images live under `library/`, but only on Docker Hub.
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{path}")
        } else {
            path.to_owned()
        };
        let length = registry.len() + 1 + repository.len();
        if length > NAME_MAX_LEN {
            return Err(ReferenceError::NameTooLong { length });
        }

        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(Reference {
            registry: registry.to_owned(),
            repository,
            tag,
            digest: digest.map(str::to_owned),
        })
    }

    /// Registry host, with port if any (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path inside the registry (`library/redis`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Digest (`sha256:<hex>`), if the reference has one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same reference pinned to `digest`, keeping its tag (`name:tag@digest`).
    ///
    /// `digest` must be `sha256:<64 lowercase hex>`; it comes from content ferry hashed
    /// itself, so it is checked only in debug builds.
    pub fn with_digest(&self, digest: &str) -> Reference {
        debug_assert!(
            validate_digest(digest).is_ok(),
            "with_digest called with invalid digest {digest:?}"
        );
        Reference {
            digest: Some(digest.to_owned()),
            ..self.clone()
        }
    }

    /// Registry and repository without tag or digest (`docker.io/library/redis`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Reference::parse(&s).map_err(|e| {
            serde::de::Error::custom(format_args!("invalid image reference {s:?}: {e}"))
        })
    }
}

/// Splits off the registry the way `splitDockerDomain` does; `None` means Docker Hub.
fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        // A first component is a host only if it cannot be a Docker Hub namespace:
        // namespaces never contain '.' or ':', and `localhost` is reserved.
        Some((first, rest))
            if first == "localhost" || first.contains('.') || first.contains(':') =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

/// Checks `host[:port]`, where host is a domain name, IPv4 address or `[ipv6]`.
fn validate_registry(registry: &str) -> Result<(), ReferenceError> {
    let invalid = || ReferenceError::InvalidRegistry {
        registry: registry.to_owned(),
    };
    let (host_ok, port) = if let Some(bracketed) = registry.strip_prefix('[') {
        let (inner, after) = bracketed.split_once(']').ok_or_else(invalid)?;
        let ok = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(invalid)?),
        };
        (ok, port)
    } else {
        let (host, port) = match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        (host.split('.').all(is_domain_component), port)
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`: a DNS label, case kept as written.
fn is_domain_component(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

/// `[a-z0-9]+((?:[._]|__|[-]+)[a-z0-9]+)*`.
fn validate_path_component(component: &str) -> Result<(), ReferenceError> {
    if component.is_empty() {
        return Err(ReferenceError::EmptyPathComponent);
    }
    let invalid = || ReferenceError::InvalidPathComponent {
        component: component.to_owned(),
    };
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        // An alphanumeric run is required at the start and after every separator.
        let start = i;
        while i < bytes.len() && is_lower_alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return Err(invalid());
        }
        if i == bytes.len() {
            return Ok(());
        }
        let separator_start = i;
        while i < bytes.len() && !is_lower_alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[separator_start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return Err(invalid());
        }
    }
}

/// `[\w][\w.-]{0,127}` with `\w` being ASCII letters, digits and '_'.
fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = bytes.len() <= TAG_MAX_LEN
        && bytes.first().is_some_and(|b| is_word(*b))
        && bytes
            .iter()
            .all(|b| is_word(*b) || *b == b'.' || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::InvalidTag {
            tag: tag.to_owned(),
        })
    }
}

/// Accepts `sha256:<64 lowercase hex>`; tells apart other well-formed algorithms.
fn validate_digest(digest: &str) -> Result<(), ReferenceError> {
    let invalid = || ReferenceError::InvalidDigest {
        digest: digest.to_owned(),
    };
    let (algorithm, hex) = digest.split_once(':').ok_or_else(invalid)?;
    if algorithm == SHA256 {
        if hex.len() == 64 && hex.bytes().all(is_lower_hex) {
            return Ok(());
        }
        return Err(invalid());
    }
    // Upstream's algorithm grammar: [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*.
    // Only a well-formed algorithm with a plausible hex part earns the "unsupported"
    // message; anything else is plain malformed. `SHA256` is malformed, not unsupported.
    let well_formed = algorithm.split(['-', '_', '+', '.']).all(|part| {
        part.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
    }) && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if well_formed && !algorithm.eq_ignore_ascii_case(SHA256) {
        Err(ReferenceError::UnsupportedDigestAlgorithm {
            algorithm: algorithm.to_owned(),
        })
    } else {
        Err(invalid())
    }
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn normalize(input: &str) -> Result<String, ReferenceError> {
        Reference::parse(input).map(|r| r.to_string())
    }

    #[test]
    fn normalization_table() {
        let d = format!("sha256:{HEX}");
        // With a '/' so that no "library/" is added: exactly at and one past the limit.
        let long_path = format!("u/{}", "a".repeat(NAME_MAX_LEN - "docker.io/u/".len()));
        let too_long_path = format!("{long_path}a");
        let long_tag = "t".repeat(TAG_MAX_LEN);
        let too_long_tag = "t".repeat(TAG_MAX_LEN + 1);
        let ok = |s: &str| Ok::<String, ReferenceError>(s.to_owned());
        let cases: Vec<(String, Result<String, ReferenceError>)> = vec![
            // Docker Hub short names.
            ("redis".into(), ok("docker.io/library/redis:latest")),
            ("redis:7.4".into(), ok("docker.io/library/redis:7.4")),
            ("user/app".into(), ok("docker.io/user/app:latest")),
            ("user/app:v1".into(), ok("docker.io/user/app:v1")),
            (
                "docker.io/redis".into(),
                ok("docker.io/library/redis:latest"),
            ),
            (
                "index.docker.io/redis:7".into(),
                ok("docker.io/library/redis:7"),
            ),
            (
                "index.docker.io/user/app".into(),
                ok("docker.io/user/app:latest"),
            ),
            (
                "docker.io/library/redis:7.4".into(),
                ok("docker.io/library/redis:7.4"),
            ),
            ("a/b/c/d".into(), ok("docker.io/a/b/c/d:latest")),
            // Other registries: no library/ prefix, host case kept, ports and IPs.
            (
                "quay.io/cilium/cilium:v1.16.5".into(),
                ok("quay.io/cilium/cilium:v1.16.5"),
            ),
            (
                "registry.k8s.io/pause".into(),
                ok("registry.k8s.io/pause:latest"),
            ),
            ("localhost/app".into(), ok("localhost/app:latest")),
            (
                "localhost:5000/app:1.0".into(),
                ok("localhost:5000/app:1.0"),
            ),
            ("myhost:5000/app".into(), ok("myhost:5000/app:latest")),
            (
                "Quay.IO/cilium/cilium".into(),
                ok("Quay.IO/cilium/cilium:latest"),
            ),
            ("127.0.0.1:5000/app".into(), ok("127.0.0.1:5000/app:latest")),
            ("[::1]:5000/app".into(), ok("[::1]:5000/app:latest")),
            ("[2001:db8::1]/app".into(), ok("[2001:db8::1]/app:latest")),
            // A bare "localhost" or "host:port" is a Docker Hub name with a tag, as upstream.
            (
                "localhost:5000".into(),
                ok("docker.io/library/localhost:5000"),
            ),
            // Digests, with and without tag.
            (
                format!("registry.k8s.io/pause@{d}"),
                ok(&format!("registry.k8s.io/pause@{d}")),
            ),
            (
                format!("redis:7.4@{d}"),
                ok(&format!("docker.io/library/redis:7.4@{d}")),
            ),
            (
                format!("redis@{d}"),
                ok(&format!("docker.io/library/redis@{d}")),
            ),
            // Separators and tag characters.
            (
                "x/a_b__c.d-e---f".into(),
                ok("docker.io/x/a_b__c.d-e---f:latest"),
            ),
            // A first component with a dot is a registry, even if it looks like a namespace.
            ("my.ns/app".into(), ok("my.ns/app:latest")),
            (
                "redis:Latest_1.2-rc".into(),
                ok("docker.io/library/redis:Latest_1.2-rc"),
            ),
            ("redis:_x".into(), ok("docker.io/library/redis:_x")),
            (
                format!("redis:{long_tag}"),
                ok(&format!("docker.io/library/redis:{long_tag}")),
            ),
            (
                long_path.clone(),
                ok(&format!("docker.io/{long_path}:latest")),
            ),
            // Invalid.
            ("".into(), Err(ReferenceError::Empty)),
            (HEX.into(), Err(ReferenceError::ImageId)),
            ("Redis:7".into(), Err(ReferenceError::Uppercase)),
            (
                "quay.io/Cilium/cilium".into(),
                Err(ReferenceError::Uppercase),
            ),
            // Not a host (no '.', ':' or localhost), so it is an upper-case namespace.
            ("Bitnami/redis".into(), Err(ReferenceError::Uppercase)),
            ("quay.io/".into(), Err(ReferenceError::MissingRepository)),
            (format!("@{d}"), Err(ReferenceError::MissingRepository)),
            (":7".into(), Err(ReferenceError::MissingRepository)),
            ("a//b".into(), Err(ReferenceError::EmptyPathComponent)),
            ("quay.io/a/".into(), Err(ReferenceError::EmptyPathComponent)),
            (
                "-redis".into(),
                Err(ReferenceError::InvalidPathComponent {
                    component: "-redis".into(),
                }),
            ),
            (
                "a..b".into(),
                Err(ReferenceError::InvalidPathComponent {
                    component: "a..b".into(),
                }),
            ),
            (
                "a___b".into(),
                Err(ReferenceError::InvalidPathComponent {
                    component: "a___b".into(),
                }),
            ),
            (
                "redis_".into(),
                Err(ReferenceError::InvalidPathComponent {
                    component: "redis_".into(),
                }),
            ),
            (
                "re dis".into(),
                Err(ReferenceError::InvalidPathComponent {
                    component: "re dis".into(),
                }),
            ),
            (
                "-bad.io/app".into(),
                Err(ReferenceError::InvalidRegistry {
                    registry: "-bad.io".into(),
                }),
            ),
            (
                "host:port/app".into(),
                Err(ReferenceError::InvalidRegistry {
                    registry: "host:port".into(),
                }),
            ),
            (
                "[::1/app".into(),
                Err(ReferenceError::InvalidRegistry {
                    registry: "[::1".into(),
                }),
            ),
            (
                "[zz]:5000/app".into(),
                Err(ReferenceError::InvalidRegistry {
                    registry: "[zz]:5000".into(),
                }),
            ),
            (
                "redis:".into(),
                Err(ReferenceError::InvalidTag { tag: "".into() }),
            ),
            (
                "redis:-x".into(),
                Err(ReferenceError::InvalidTag { tag: "-x".into() }),
            ),
            (
                "redis:7:4".into(),
                Err(ReferenceError::InvalidTag { tag: "7:4".into() }),
            ),
            (
                format!("redis:{too_long_tag}"),
                Err(ReferenceError::InvalidTag { tag: too_long_tag }),
            ),
            (
                "redis@sha256:abc".into(),
                Err(ReferenceError::InvalidDigest {
                    digest: "sha256:abc".into(),
                }),
            ),
            (
                format!("redis@sha256:{}", HEX.to_uppercase()),
                Err(ReferenceError::InvalidDigest {
                    digest: format!("sha256:{}", HEX.to_uppercase()),
                }),
            ),
            (
                format!("redis@SHA256:{HEX}"),
                Err(ReferenceError::InvalidDigest {
                    digest: format!("SHA256:{HEX}"),
                }),
            ),
            (
                "redis@latest".into(),
                Err(ReferenceError::InvalidDigest {
                    digest: "latest".into(),
                }),
            ),
            (
                format!("redis@sha512:{HEX}{HEX}"),
                Err(ReferenceError::UnsupportedDigestAlgorithm {
                    algorithm: "sha512".into(),
                }),
            ),
            (
                too_long_path.clone(),
                Err(ReferenceError::NameTooLong {
                    length: NAME_MAX_LEN + 1,
                }),
            ),
        ];
        assert!(cases.len() >= 25);
        for (input, expected) in cases {
            assert_eq!(normalize(&input), expected, "input: {input:?}");
        }
    }

    #[test]
    fn accessors() {
        let r = Reference::parse("redis:7.4").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/redis");
        assert_eq!(r.tag(), Some("7.4"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.name(), "docker.io/library/redis");

        let pinned = r.with_digest(&format!("sha256:{HEX}"));
        assert_eq!(pinned.tag(), Some("7.4"));
        assert_eq!(
            pinned.to_string(),
            format!("docker.io/library/redis:7.4@sha256:{HEX}")
        );

        let by_digest = Reference::parse(&format!("quay.io/x/y@sha256:{HEX}")).unwrap();
        assert_eq!(by_digest.tag(), None);
        assert_eq!(by_digest.digest(), Some(format!("sha256:{HEX}").as_str()));
    }

    #[test]
    fn normalized_form_is_a_fixed_point() {
        for input in ["redis", "user/app:v1", "localhost:5000/a/b", "[::1]/x:y"] {
            let once = Reference::parse(input).unwrap();
            let twice = Reference::parse(&once.to_string()).unwrap();
            assert_eq!(once, twice, "input: {input:?}");
        }
    }

    #[test]
    fn equal_after_normalization() {
        let a: Reference = "redis".parse().unwrap();
        let b: Reference = "index.docker.io/library/redis:latest".parse().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn serde_round_trip_as_string() {
        let r = Reference::parse("quay.io/cilium/cilium:v1.16.5").unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"quay.io/cilium/cilium:v1.16.5\"");
        let back: Reference = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);

        let err = serde_json::from_str::<Reference>("\"Redis:7\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid image reference \"Redis:7\": repository name must be lowercase"
        );
    }

    #[test]
    fn error_messages() {
        let err = Reference::parse("redis@sha512:abcdefabcdefabcdefabcdefabcdefab").unwrap_err();
        insta::assert_snapshot!(err.to_string(), @r#"unsupported digest algorithm "sha512": only sha256 digests are supported"#);
        let err = Reference::parse("quay.io/a..b").unwrap_err();
        insta::assert_snapshot!(err.to_string(), @r#"invalid repository path component "a..b": use lowercase letters and digits, separated by '.', '_', '__' or dashes"#);
    }
}
