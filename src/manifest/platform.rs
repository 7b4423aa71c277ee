//! Platforms (`os/arch[/variant]`), normalized the way containerd normalizes them.
//!
//! Parsing follows `github.com/containerd/platforms`: components are lower-cased, aliases are
//! mapped to their canonical names (`x86_64` is `amd64`, `aarch64` is `arm64`, `armhf` is
//! `arm/v7`, `macos` is `darwin`), and default variants are made explicit or dropped exactly
//! as containerd's `Normalize` does (`arm` means `arm/v7`; `arm64/v8` and `amd64/v1` are the
//! baselines and are written without a variant). So two spellings of one platform compare
//! equal, and a platform compares equal to the normalized platform of an image index entry.
//!
//! Unlike containerd, parsing is strict, because a platform in a release manifest decides
//! what is carried across the air gap and a typo must not silently select nothing:
//! both os and architecture are required (containerd would default to the host's),
//! they must be known, and a variant must be one that exists for the architecture.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Operating systems accepted, as in containerd's `isKnownOS` (Go's `GOOS` list).
pub const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "windows",
    "zos",
];

/// Architectures accepted, as in containerd's `isKnownArch` (Go's `GOARCH` list).
pub const KNOWN_ARCHITECTURES: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

/// Architecture spellings that are mapped to a canonical architecture.
const ARCH_ALIASES: &[&str] = &["aarch64", "armel", "armhf", "i386", "x86-64", "x86_64"];

/// Variants that exist, after normalization, per architecture. Baseline variants
/// (`arm64/v8`, `amd64/v1`) normalize to "no variant" and are accepted as input.
const ARM_VARIANTS: &[&str] = &["v5", "v6", "v7", "v8"];
const ARM64_VARIANTS: &[&str] = &[
    "v8", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9", "v9", "v9.1",
    "v9.2", "v9.3", "v9.4", "v9.5", "v9.6", "v9.7",
];
const AMD64_VARIANTS: &[&str] = &["v1", "v2", "v3", "v4"];
const RISCV64_VARIANTS: &[&str] = &["rva20u64", "rva22u64", "rva23u64"];

/// A normalized platform: operating system, architecture and optional variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture, e.g. `amd64`.
    pub architecture: String,
    /// CPU variant, e.g. `v7`; `None` for the architecture's baseline.
    pub variant: Option<String>,
}

/// Why a string is not a valid platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// The string is empty.
    #[error("platform is empty; write os/arch, e.g. linux/amd64")]
    Empty,
    /// The string does not have two or three `/`-separated components.
    #[error("expected os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7")]
    Format,
    /// A component contains characters other than letters, digits, `_`, `.` and `-`.
    #[error("invalid component {component:?}: use only letters, digits, '_', '.' and '-'")]
    InvalidComponent {
        /// The offending component.
        component: String,
    },
    /// The operating system is not one containerd knows.
    #[error("unknown operating system {os:?}; known: {}", KNOWN_OS.join(", "))]
    UnknownOs {
        /// The operating system as written (lower-cased).
        os: String,
    },
    /// The architecture is not one containerd knows.
    #[error(
        "unknown architecture {architecture:?}; known: {} (aliases: {})",
        KNOWN_ARCHITECTURES.join(", "),
        ARCH_ALIASES.join(", ")
    )]
    UnknownArchitecture {
        /// The architecture as written (lower-cased).
        architecture: String,
    },
    /// The variant does not exist for the architecture.
    #[error(
        "unknown variant {variant:?} for architecture {architecture}; known: {}",
        allowed_variants(architecture).join(", ")
    )]
    UnknownVariant {
        /// Canonical architecture.
        architecture: String,
        /// The variant as written (lower-cased).
        variant: String,
    },
    /// A variant was given for an architecture that has none, or contradicts an alias.
    #[error("architecture {alias} takes no variant; remove \"/{variant}\"")]
    UnexpectedVariant {
        /// The architecture as written.
        alias: String,
        /// The variant as written (lower-cased).
        variant: String,
    },
}

impl Platform {
    /// Parses `os/arch[/variant]` strictly and normalizes it (see the module documentation).
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        if s.is_empty() {
            return Err(PlatformError::Empty);
        }
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(PlatformError::Format);
        }
        for part in &parts {
            let ok = !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !ok {
                return Err(PlatformError::InvalidComponent {
                    component: (*part).to_owned(),
                });
            }
        }

        let os = normalize_os(parts[0]);
        if !KNOWN_OS.contains(&os.as_str()) {
            return Err(PlatformError::UnknownOs { os });
        }
        let arch_as_written = parts[1].to_ascii_lowercase();
        let variant_as_written = parts.get(2).map(|v| v.to_ascii_lowercase());

        // Aliases that pin a variant (armhf is arm/v7) or have none (i386) must not be
        // combined with another variant: containerd would silently drop it, hiding a mistake.
        if let Some(variant) = &variant_as_written
            && matches!(arch_as_written.as_str(), "armhf" | "armel" | "i386")
        {
            return Err(PlatformError::UnexpectedVariant {
                alias: arch_as_written,
                variant: variant.clone(),
            });
        }

        let (architecture, variant) = normalize_arch(
            &arch_as_written,
            variant_as_written.as_deref().unwrap_or(""),
        );
        if !KNOWN_ARCHITECTURES.contains(&architecture.as_str()) {
            return Err(PlatformError::UnknownArchitecture {
                architecture: arch_as_written,
            });
        }
        if let Some(written) = variant_as_written {
            let allowed = allowed_variants(&architecture);
            if allowed.is_empty() {
                return Err(PlatformError::UnexpectedVariant {
                    alias: arch_as_written,
                    variant: written,
                });
            }
            // The normalized variant is empty for baselines; those are in the list as input.
            if !variant.is_empty() && !allowed.contains(&variant.as_str()) {
                return Err(PlatformError::UnknownVariant {
                    architecture,
                    variant: written,
                });
            }
        }

        Ok(Platform {
            os,
            architecture,
            variant: (!variant.is_empty()).then_some(variant),
        })
    }

    /// Whether an image index entry with this os, architecture and variant is this platform.
    ///
    /// The entry's values are normalized as containerd normalizes them, then compared
    /// exactly, as containerd's default `Matcher` does. So:
    /// - `linux/arm64` matches `arm64` with variant `v8` or none (both are the baseline);
    /// - `linux/arm/v7` (also written `linux/arm`) matches `arm` with variant `v7` or none,
    ///   since containerd treats a missing arm variant as v7;
    /// - a platform never matches a different variant: `linux/amd64` does not match
    ///   `amd64/v3`, and `linux/arm/v7` does not match `arm/v6`. Selecting "anything that
    ///   runs here" (containerd's `Only`) would carry several near-identical manifests of
    ///   one architecture; a bundle should carry exactly what the manifest names.
    ///
    /// `os.version` and `os.features` are not compared: ferry selects by os/arch/variant.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let (arch, var) = normalize_arch(architecture, variant.unwrap_or(""));
        self.os == normalize_os(os)
            && self.architecture == arch
            && self.variant.as_deref().unwrap_or("") == var
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Platform {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Platform::parse(&s)
            .map_err(|e| serde::de::Error::custom(format_args!("invalid platform {s:?}: {e}")))
    }
}

/// containerd's `normalizeOS`, minus the host default: lower-case, `macos` is `darwin`.
fn normalize_os(os: &str) -> String {
    let os = os.to_ascii_lowercase();
    if os == "macos" {
        "darwin".to_owned()
    } else {
        os
    }
}

/// containerd's `normalizeArch`: canonical architecture and variant ("" for none).
fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant.to_ascii_lowercase();
    let (arch, variant) = match arch.as_str() {
        "i386" => ("386", String::new()),
        "x86_64" | "x86-64" | "amd64" => {
            let variant = if variant == "v1" {
                String::new()
            } else {
                variant
            };
            ("amd64", variant)
        }
        "aarch64" | "arm64" => {
            let variant = match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".to_owned(),
                _ => variant,
            };
            ("arm64", variant)
        }
        "armhf" => ("arm", "v7".to_owned()),
        "armel" => ("arm", "v6".to_owned()),
        "arm" => {
            let variant = match variant.as_str() {
                "" | "7" => "v7".to_owned(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            };
            ("arm", variant)
        }
        other => return (other.to_owned(), variant),
    };
    (arch.to_owned(), variant)
}

/// Variants that exist for a canonical architecture; empty when it has none.
fn allowed_variants(architecture: &str) -> &'static [&'static str] {
    match architecture {
        "arm" => ARM_VARIANTS,
        "arm64" => ARM64_VARIANTS,
        "amd64" => AMD64_VARIANTS,
        "riscv64" => RISCV64_VARIANTS,
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        }
    }

    #[test]
    fn parse_and_normalize() {
        let cases = [
            ("linux/amd64", p("linux", "amd64", None)),
            ("linux/arm64", p("linux", "arm64", None)),
            ("Linux/AMD64", p("linux", "amd64", None)),
            ("linux/x86_64", p("linux", "amd64", None)),
            ("linux/x86-64", p("linux", "amd64", None)),
            ("linux/amd64/v1", p("linux", "amd64", None)),
            ("linux/amd64/v3", p("linux", "amd64", Some("v3"))),
            ("linux/aarch64", p("linux", "arm64", None)),
            ("linux/arm64/v8", p("linux", "arm64", None)),
            ("linux/arm64/8", p("linux", "arm64", None)),
            ("linux/arm64/v9.0", p("linux", "arm64", Some("v9"))),
            ("linux/arm64/v8.2", p("linux", "arm64", Some("v8.2"))),
            ("linux/arm", p("linux", "arm", Some("v7"))),
            ("linux/arm/7", p("linux", "arm", Some("v7"))),
            ("linux/arm/v6", p("linux", "arm", Some("v6"))),
            ("linux/armhf", p("linux", "arm", Some("v7"))),
            ("linux/armel", p("linux", "arm", Some("v6"))),
            ("linux/i386", p("linux", "386", None)),
            ("linux/386", p("linux", "386", None)),
            ("linux/ppc64le", p("linux", "ppc64le", None)),
            ("linux/s390x", p("linux", "s390x", None)),
            ("linux/riscv64", p("linux", "riscv64", None)),
            (
                "linux/riscv64/rva22u64",
                p("linux", "riscv64", Some("rva22u64")),
            ),
            ("linux/mips64le", p("linux", "mips64le", None)),
            ("linux/loong64", p("linux", "loong64", None)),
            ("windows/amd64", p("windows", "amd64", None)),
            ("macos/arm64", p("darwin", "arm64", None)),
            ("freebsd/amd64", p("freebsd", "amd64", None)),
        ];
        for (input, expected) in cases {
            assert_eq!(Platform::parse(input), Ok(expected), "input: {input:?}");
        }
    }

    #[test]
    fn display_is_normalized_and_round_trips() {
        for (input, shown) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/aarch64/v8", "linux/arm64"),
            ("linux/arm64/v8.2", "linux/arm64/v8.2"),
        ] {
            let platform = Platform::parse(input).unwrap();
            assert_eq!(platform.to_string(), shown);
            assert_eq!(Platform::parse(shown).unwrap(), platform);
        }
    }

    #[test]
    fn invalid() {
        let cases = [
            ("", PlatformError::Empty),
            ("linux", PlatformError::Format),
            ("amd64", PlatformError::Format),
            ("linux/arm/v7/x", PlatformError::Format),
            (
                "linux/",
                PlatformError::InvalidComponent {
                    component: "".into(),
                },
            ),
            (
                "linux/*",
                PlatformError::InvalidComponent {
                    component: "*".into(),
                },
            ),
            (
                "linux /amd64",
                PlatformError::InvalidComponent {
                    component: "linux ".into(),
                },
            ),
            ("linx/amd64", PlatformError::UnknownOs { os: "linx".into() }),
            (
                "linux/amd46",
                PlatformError::UnknownArchitecture {
                    architecture: "amd46".into(),
                },
            ),
            (
                "linux/arm/v77",
                PlatformError::UnknownVariant {
                    architecture: "arm".into(),
                    variant: "v77".into(),
                },
            ),
            (
                "linux/amd64/v5",
                PlatformError::UnknownVariant {
                    architecture: "amd64".into(),
                    variant: "v5".into(),
                },
            ),
            (
                "linux/s390x/v2",
                PlatformError::UnexpectedVariant {
                    alias: "s390x".into(),
                    variant: "v2".into(),
                },
            ),
            (
                "linux/armhf/v6",
                PlatformError::UnexpectedVariant {
                    alias: "armhf".into(),
                    variant: "v6".into(),
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Platform::parse(input), Err(expected), "input: {input:?}");
        }
    }

    #[test]
    fn error_messages() {
        let err = Platform::parse("linx/amd64").unwrap_err();
        insta::assert_snapshot!(err.to_string(), @r#"unknown operating system "linx"; known: aix, android, darwin, dragonfly, freebsd, hurd, illumos, ios, js, linux, nacl, netbsd, openbsd, plan9, solaris, windows, zos"#);
        let err = Platform::parse("linux/amd46").unwrap_err();
        insta::assert_snapshot!(err.to_string(), @r#"unknown architecture "amd46"; known: 386, amd64, amd64p32, arm, armbe, arm64, arm64be, loong64, mips, mipsle, mips64, mips64le, mips64p32, mips64p32le, ppc, ppc64, ppc64le, riscv, riscv64, s390, s390x, sparc, sparc64, wasm (aliases: aarch64, armel, armhf, i386, x86-64, x86_64)"#);
        let err = Platform::parse("linux/arm/v77").unwrap_err();
        insta::assert_snapshot!(err.to_string(), @r#"unknown variant "v77" for architecture arm; known: v5, v6, v7, v8"#);
    }

    #[test]
    fn matches_like_containerd() {
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert!(amd64.matches("linux", "amd64", None));
        assert!(amd64.matches("linux", "amd64", Some("v1")));
        assert!(amd64.matches("Linux", "x86_64", None));
        assert!(!amd64.matches("linux", "amd64", Some("v3")));
        assert!(!amd64.matches("windows", "amd64", None));
        assert!(!amd64.matches("linux", "arm64", None));

        let arm64 = Platform::parse("linux/arm64").unwrap();
        assert!(arm64.matches("linux", "arm64", None));
        assert!(arm64.matches("linux", "arm64", Some("v8")));
        assert!(arm64.matches("linux", "aarch64", None));
        assert!(!arm64.matches("linux", "arm64", Some("v9")));

        let arm = Platform::parse("linux/arm").unwrap();
        assert!(arm.matches("linux", "arm", Some("v7")));
        assert!(arm.matches("linux", "arm", None));
        assert!(!arm.matches("linux", "arm", Some("v6")));
        let armv6 = Platform::parse("linux/arm/v6").unwrap();
        assert!(armv6.matches("linux", "arm", Some("v6")));
        assert!(!armv6.matches("linux", "arm", None));
    }

    #[test]
    fn serde_round_trip_as_string() {
        let platform = Platform::parse("linux/arm/v7").unwrap();
        let json = serde_json::to_string(&platform).unwrap();
        assert_eq!(json, "\"linux/arm/v7\"");
        assert_eq!(serde_json::from_str::<Platform>(&json).unwrap(), platform);
        let err = serde_json::from_str::<Platform>("\"linux\"").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid platform \"linux\": expected os/arch")
        );
    }
}
