//! What an OCI distribution API path asks for: `/v2/<name>/manifests/<reference>` and friends.
//!
//! Repository names have any number of `/` segments, so the name cannot be matched with a
//! router pattern; the endpoint is recognised from the end of the path instead, as the
//! distribution router does with its name grammar.

use crate::digest::Digest;

/// A recognised `/v2/` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`: every repository.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags {
        /// Repository name as asked.
        name: &'a str,
    },
    /// `/v2/<name>/manifests/<reference>`.
    Manifest {
        /// Repository name as asked.
        name: &'a str,
        /// Tag or digest.
        reference: ManifestRef<'a>,
    },
    /// `/v2/<name>/blobs/<digest>`.
    Blob {
        /// Repository name as asked.
        name: &'a str,
        /// The blob's digest.
        digest: Digest,
    },
    /// `/v2/<name>/referrers/<digest>`: the OCI 1.1 referrers listing.
    Referrers {
        /// Repository name as asked.
        name: &'a str,
        /// The subject's digest.
        digest: Digest,
    },
    /// `/v2/<name>/blobs/uploads/...`: only for pushing, which this registry never accepts.
    Upload {
        /// Repository name as asked.
        name: &'a str,
    },
}

/// How a manifest is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef<'a> {
    /// By tag.
    Tag(&'a str),
    /// By digest.
    Digest(Digest),
}

/// Why a path is not a request this registry can answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// Not an endpoint of the distribution API (or one ferry does not offer).
    #[error("no such endpoint")]
    NotFound,
    /// The repository name breaks the name grammar.
    #[error("invalid repository name {0:?}")]
    NameInvalid(String),
    /// A digest that is not `sha256:<64 lowercase hex>`.
    #[error("{0}")]
    DigestInvalid(String),
    /// A tag that breaks the tag grammar.
    #[error("invalid tag {0:?}")]
    TagInvalid(String),
    /// A well-formed digest of another algorithm (`sha512:`): nothing here has it.
    #[error("{digest} is not in this registry")]
    Absent {
        /// Whether a manifest (else a blob) was asked for.
        manifest: bool,
        /// The digest as asked.
        digest: String,
    },
}

/// Parses a request path (without query). Paths outside `/v2` are [`RouteError::NotFound`].
pub fn parse(path: &str) -> Result<Route<'_>, RouteError> {
    let rest = match path {
        "/v2" | "/v2/" => return Ok(Route::Base),
        _ => path.strip_prefix("/v2/").ok_or(RouteError::NotFound)?,
    };
    if rest == "_catalog" {
        return Ok(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Ok(Route::Tags {
            name: valid_name(name)?,
        });
    }
    let (head, last) = rest.rsplit_once('/').ok_or(RouteError::NotFound)?;
    // Uploads are `<name>/blobs/uploads/` (start) or `<name>/blobs/uploads/<session>`.
    if let Some(name) = head.strip_suffix("/blobs/uploads") {
        return Ok(Route::Upload {
            name: valid_name(name)?,
        });
    }
    let (name, kind) = head.rsplit_once('/').ok_or(RouteError::NotFound)?;
    match kind {
        "manifests" => {
            let name = valid_name(name)?;
            let reference = if last.contains(':') {
                ManifestRef::Digest(digest(last, true)?)
            } else if is_tag(last) {
                ManifestRef::Tag(last)
            } else {
                return Err(RouteError::TagInvalid(last.to_string()));
            };
            Ok(Route::Manifest { name, reference })
        }
        "blobs" => {
            let name = valid_name(name)?;
            let digest = digest(last, false)?;
            Ok(Route::Blob { name, digest })
        }
        "referrers" => {
            let name = valid_name(name)?;
            let digest = digest(last, true)?;
            Ok(Route::Referrers { name, digest })
        }
        _ => Err(RouteError::NotFound),
    }
}

/// A sha256 digest; a well-formed sha512 one is [`RouteError::Absent`] (ferry stores only
/// sha256), anything else [`RouteError::DigestInvalid`].
fn digest(text: &str, manifest: bool) -> Result<Digest, RouteError> {
    Digest::parse(text).map_err(|e| {
        let sha512 = text.strip_prefix("sha512:").is_some_and(|hex| {
            hex.len() == 128
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if sha512 {
            RouteError::Absent {
                manifest,
                digest: text.to_string(),
            }
        } else {
            RouteError::DigestInvalid(e.to_string())
        }
    })
}

/// Checks the distribution name grammar: components of `[a-z0-9]+` joined by `.`, `_`, `__` or
/// runs of `-`, separated by `/`.
fn valid_name(name: &str) -> Result<&str, RouteError> {
    let ok = !name.is_empty() && name.len() <= 255 && name.split('/').all(is_component);
    if ok {
        Ok(name)
    } else {
        Err(RouteError::NameInvalid(name.to_string()))
    }
}

fn is_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return false;
    }
    // Separators: one '.', one or two '_', or any run of '-'; never mixed, never adjacent.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let valid = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
    true
}

/// Checks the tag grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    bytes.first().is_some_and(word)
        && bytes.len() <= 128
        && bytes[1..]
            .iter()
            .all(|b| word(b) || *b == b'.' || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn digest() -> Digest {
        Digest::parse(&format!("sha256:{HEX}")).unwrap()
    }

    #[test]
    fn base_and_catalog() {
        assert_eq!(parse("/v2/"), Ok(Route::Base));
        assert_eq!(parse("/v2"), Ok(Route::Base));
        assert_eq!(parse("/v2/_catalog"), Ok(Route::Catalog));
        assert_eq!(parse("/"), Err(RouteError::NotFound));
        assert_eq!(parse("/v1/x"), Err(RouteError::NotFound));
        assert_eq!(parse("/v2x/a/manifests/1"), Err(RouteError::NotFound));
    }

    #[test]
    fn names_with_several_segments() {
        assert_eq!(
            parse("/v2/quay.io/cilium/cilium/manifests/v1.16.5"),
            Ok(Route::Manifest {
                name: "quay.io/cilium/cilium",
                reference: ManifestRef::Tag("v1.16.5"),
            })
        );
        assert_eq!(
            parse("/v2/localhost_5000/a/b/c/d/manifests/latest"),
            Ok(Route::Manifest {
                name: "localhost_5000/a/b/c/d",
                reference: ManifestRef::Tag("latest"),
            })
        );
        assert_eq!(
            parse("/v2/redis/manifests/7.4"),
            Ok(Route::Manifest {
                name: "redis",
                reference: ManifestRef::Tag("7.4"),
            })
        );
        // A component may itself be called `manifests` or `blobs`: the endpoint is at the end.
        assert_eq!(
            parse("/v2/org/manifests/manifests/1"),
            Ok(Route::Manifest {
                name: "org/manifests",
                reference: ManifestRef::Tag("1"),
            })
        );
        assert_eq!(
            parse(&format!("/v2/blobs/blobs/sha256:{HEX}")),
            Ok(Route::Blob {
                name: "blobs",
                digest: digest(),
            })
        );
    }

    #[test]
    fn manifests_by_digest_and_blobs() {
        assert_eq!(
            parse(&format!(
                "/v2/docker.io/library/redis/manifests/sha256:{HEX}"
            )),
            Ok(Route::Manifest {
                name: "docker.io/library/redis",
                reference: ManifestRef::Digest(digest()),
            })
        );
        assert_eq!(
            parse(&format!("/v2/library/redis/blobs/sha256:{HEX}")),
            Ok(Route::Blob {
                name: "library/redis",
                digest: digest(),
            })
        );
        assert!(matches!(
            parse("/v2/library/redis/blobs/sha512:abcd"),
            Err(RouteError::DigestInvalid(_))
        ));
        assert!(matches!(
            parse("/v2/library/redis/manifests/sha256:ABC"),
            Err(RouteError::DigestInvalid(_))
        ));
        assert!(matches!(
            parse("/v2/library/redis/blobs/latest"),
            Err(RouteError::DigestInvalid(_))
        ));
    }

    #[test]
    fn tags_list_and_uploads() {
        assert_eq!(
            parse("/v2/quay.io/cilium/cilium/tags/list"),
            Ok(Route::Tags {
                name: "quay.io/cilium/cilium"
            })
        );
        assert_eq!(
            parse("/v2/a/blobs/uploads/"),
            Ok(Route::Upload { name: "a" })
        );
        assert_eq!(
            parse("/v2/a/b/blobs/uploads/3f2a-11"),
            Ok(Route::Upload { name: "a/b" })
        );
        assert_eq!(parse("/v2/a/tags"), Err(RouteError::NotFound));
        assert!(matches!(
            parse("/v2/a/referrers/x"),
            Err(RouteError::DigestInvalid(_))
        ));
        assert!(matches!(
            parse(&format!("/v2/a/referrers/sha256:{}", "a".repeat(64))),
            Ok(Route::Referrers { name: "a", .. })
        ));
        assert_eq!(
            parse(&format!("/v2/a/blobs/sha512:{}", "b".repeat(128))),
            Err(RouteError::Absent {
                manifest: false,
                digest: format!("sha512:{}", "b".repeat(128))
            })
        );
        assert_eq!(parse("/v2/a"), Err(RouteError::NotFound));
    }

    #[test]
    fn invalid_names_and_tags() {
        for name in [
            "Quay.io/x",
            "a//b",
            "/a",
            "a/",
            "a..b",
            "a._b",
            "a___b",
            "-a",
            "a-",
            "a/../b",
            "",
        ] {
            let path = format!("/v2/{name}/manifests/1");
            assert!(
                matches!(parse(&path), Err(RouteError::NameInvalid(_))),
                "{path}: {:?}",
                parse(&path)
            );
        }
        for name in ["a__b", "a--b", "a.b", "a_b", "127.0.0.1_5000/x"] {
            assert!(
                parse(&format!("/v2/{name}/tags/list")).is_ok(),
                "{name} should be valid"
            );
        }
        assert!(matches!(
            parse("/v2/a/manifests/.hidden"),
            Err(RouteError::TagInvalid(_))
        ));
        assert!(matches!(
            parse(&format!("/v2/a/manifests/{}", "t".repeat(129))),
            Err(RouteError::TagInvalid(_))
        ));
        assert!(is_tag("v1.16.5_rc-1"));
        assert!(is_tag("_x"));
        assert!(!is_tag(""));
    }
}
