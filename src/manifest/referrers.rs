//! What a manifest says about an image's referrers (signatures, attestations, SBOMs):
//! which to carry (`referrers:`) and which keys must have signed which images (`spec.verify`).
//!
//! ```yaml
//! spec:
//!   referrers: signatures            # the default for every image: all | signatures | none
//!   verify:
//!     - key: keys/cilium.pub         # a cosign public key (PEM), relative to the manifest
//!       repositories: [quay.io/cilium/*]
//!   images:
//!     - {ref: quay.io/cilium/cilium:v1.16.5, referrers: all}
//! ```

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::apt::ManifestFile;
use super::{Location, ManifestError, Validator};

/// Which upstream referrers of an image `lock` records and `build` carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferrersMode {
    /// Signatures, attestations, SBOMs and any other artifact that refers to the image.
    All,
    /// Signatures only (cosign `.sig` tags, cosign, Notary and sigstore-bundle artifacts): small,
    /// and what admission policies and Harbor's content trust need on site.
    #[default]
    Signatures,
    /// Nothing: the image alone.
    None,
}

impl ReferrersMode {
    /// Parses `all`, `signatures` or `none`.
    pub fn parse(text: &str) -> Option<ReferrersMode> {
        match text {
            "all" => Some(ReferrersMode::All),
            "signatures" => Some(ReferrersMode::Signatures),
            "none" => Some(ReferrersMode::None),
            _ => None,
        }
    }

    /// The word the manifest uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferrersMode::All => "all",
            ReferrersMode::Signatures => "signatures",
            ReferrersMode::None => "none",
        }
    }
}

/// One entry of `spec.verify`: a cosign public key and the image repositories it must sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// The public key file (PEM, `cosign.pub`).
    pub key: ManifestFile,
    /// Repository patterns (`quay.io/cilium/*`): `*` matches within one path segment, `**`
    /// across segments; compared with the normalized repository (`docker.io/library/redis`).
    pub repositories: Vec<String>,
    /// Position of the entry.
    pub location: Location,
}

impl VerifyPolicy {
    /// The first pattern that covers `repository` (`host/path`, no tag), if any.
    pub fn covers(&self, repository: &str) -> Option<&str> {
        self.repositories
            .iter()
            .find(|p| glob(p.as_bytes(), repository.as_bytes()))
            .map(String::as_str)
    }
}

/// Matches `*` (not across `/`) and `**` (anything).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        [b'*', rest @ ..] => {
            let segment = text.iter().position(|&c| c == b'/').unwrap_or(text.len());
            (0..=segment).any(|i| glob(rest, &text[i..]))
        }
        [c, rest @ ..] => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

pub(super) mod raw {
    use serde::Deserialize;
    use serde_saphyr::Spanned;

    /// An entry of `spec.verify`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(in crate::manifest) struct Verify {
        pub key: Option<Spanned<String>>,
        pub repositories: Option<super::super::raw::SpannedList>,
    }
}

impl Validator<'_> {
    /// Validates a `referrers:` value.
    pub(super) fn referrers_mode(
        &self,
        value: Spanned<String>,
    ) -> Result<ReferrersMode, ManifestError> {
        ReferrersMode::parse(&value.value).ok_or_else(|| ManifestError::Structure {
            path: self.path.to_owned(),
            location: self.loc(&value.referenced),
            message: format!(
                "referrers: {:?} is not one of all, signatures, none",
                value.value
            ),
        })
    }

    /// Validates `spec.verify`.
    pub(super) fn verify(
        &self,
        entries: Vec<Spanned<raw::Verify>>,
    ) -> Result<Vec<VerifyPolicy>, ManifestError> {
        let mut out = Vec::new();
        for entry in entries {
            let location = self.loc(&entry.referenced);
            let key = self.required(
                entry.value.key,
                location,
                "key",
                "add the cosign public key that signs these images, e.g. `key: keys/cosign.pub`"
                    .to_owned(),
            )?;
            let repositories = self.required(
                entry.value.repositories,
                location,
                "repositories",
                "add the image repositories this key must have signed, e.g. `repositories: [quay.io/cilium/*]`"
                    .to_owned(),
            )?;
            if repositories.value.is_empty() {
                return Err(ManifestError::Structure {
                    path: self.path.to_owned(),
                    location: self.loc(&repositories.referenced),
                    message:
                        "repositories is empty; name at least one pattern, e.g. `quay.io/cilium/*`"
                            .to_owned(),
                });
            }
            let base = self.path.parent().unwrap_or(std::path::Path::new(""));
            out.push(VerifyPolicy {
                key: ManifestFile {
                    path: base.join(&key.value),
                    location: self.loc(&key.referenced),
                    written: key.value,
                },
                repositories: repositories.value.into_iter().map(|r| r.value).collect(),
                location,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = |pattern: &str, text: &str| glob(pattern.as_bytes(), text.as_bytes());
        assert!(p("quay.io/cilium/*", "quay.io/cilium/cilium"));
        assert!(!p("quay.io/cilium/*", "quay.io/cilium/x/y"));
        assert!(p("quay.io/**", "quay.io/cilium/x/y"));
        assert!(p("docker.io/library/redis", "docker.io/library/redis"));
        assert!(!p("docker.io/library/redis", "docker.io/library/redis2"));
        assert!(p("*/app/*", "127.0.0.1:5000/app/web"));
    }
}
