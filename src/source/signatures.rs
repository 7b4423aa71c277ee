//! `spec.verify` at lock: an image a policy covers must carry a cosign signature by the
//! policy's key whose simple-signing payload names the locked digest and the image's
//! repository.
//!
//! A cosign signature is a manifest (tag `sha256-<hex>.sig`, or an OCI 1.1 referrer of
//! artifact type `application/vnd.dev.cosign.artifact.sig.v1+json`) with one layer per
//! signature: the payload (media type `application/vnd.dev.cosign.simplesigning.v1+json`)
//! and its base64 signature in the `dev.cosignproject.cosign/signature` annotation. Keyless
//! signatures (Fulcio certificates, Rekor entries) need the internet to check and are not
//! checked here; they are carried all the same.

use crate::digest::Digest;
use crate::manifest::VerifyPolicy;
use crate::manifest::lock::LockedVerification;
use crate::manifest::reference::Reference;
use crate::sign::{SignError, VerifyingKey};
use crate::source::referrers::{COSIGN_SIGNATURE_TYPE, Found};
use crate::source::registry::{RegistryError, RegistrySource};

/// The media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a layer's base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// Errors checking an image against `spec.verify`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A registry call failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The key file could not be read.
    #[error(
        "{path}: cannot use it as a spec.verify key: {reason}. Give the cosign public key (cosign.pub, PEM) the images are signed with"
    )]
    Key {
        /// The key file.
        path: String,
        /// Why.
        reason: String,
    },
    /// No valid signature.
    #[error(
        "image {image} is not signed as spec.verify requires: key {key} ({fingerprint}) covers it by pattern {pattern:?}, and {why}. Sign the image with that key (cosign sign --key), fix the pattern, or take the image out of the release"
    )]
    Unsigned {
        /// The image.
        image: String,
        /// The key file as the manifest names it.
        key: String,
        /// Its fingerprint.
        fingerprint: String,
        /// The pattern that covers the image.
        pattern: String,
        /// What was found instead.
        why: String,
    },
}

/// A policy with its key read.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// The policy.
    pub policy: VerifyPolicy,
    /// Its key.
    pub key: VerifyingKey,
}

/// Reads the keys of `spec.verify`.
pub fn load(policies: &[VerifyPolicy]) -> Result<Vec<LoadedPolicy>, PolicyError> {
    policies
        .iter()
        .map(|policy| {
            let key_error = |reason: String| PolicyError::Key {
                path: format!(
                    "{} (spec.verify, line {})",
                    policy.key.path.display(),
                    policy.key.location.line
                ),
                reason,
            };
            let pem =
                std::fs::read_to_string(&policy.key.path).map_err(|e| key_error(e.to_string()))?;
            let key = VerifyingKey::from_pem(&pem).map_err(|e| key_error(e.to_string()))?;
            Ok(LoadedPolicy {
                policy: policy.clone(),
                key,
            })
        })
        .collect()
}

/// `docker-reference` as cosign writes it, normalized as ferry names repositories.
fn normalize_repository(name: &str) -> String {
    let name = name
        .strip_prefix("index.docker.io/")
        .map_or_else(|| name.to_string(), |rest| format!("docker.io/{rest}"));
    match name.parse::<Reference>() {
        Ok(r) => r.name(),
        Err(_) => name,
    }
}

/// Checks `image` (repository `repository`) against every policy that covers it; `digests`
/// are the digests a payload may name (the locked entry, and what the tag resolved to), and
/// `found` the referrers discovered for them.
pub async fn check(
    source: &RegistrySource,
    policies: &[LoadedPolicy],
    image: &Reference,
    digests: &[Digest],
    found: &[Found],
) -> Result<Vec<LockedVerification>, PolicyError> {
    let repository = image.name();
    let mut out = Vec::new();
    for loaded in policies {
        let Some(pattern) = loaded.policy.covers(&repository) else {
            continue;
        };
        let mut reasons: Vec<String> = Vec::new();
        let mut vouched: Option<Digest> = None;
        'signatures: for f in found.iter().filter(|f| {
            f.locked.tag.as_deref().is_some_and(|t| t.ends_with(".sig"))
                || f.locked.artifact_type.as_deref() == Some(COSIGN_SIGNATURE_TYPE)
        }) {
            for layer in &f.manifest.layers {
                if layer.media_type != SIMPLE_SIGNING {
                    continue;
                }
                let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
                    reasons.push(format!(
                        "signature {} has a payload without a signature annotation",
                        f.locked.digest
                    ));
                    continue;
                };
                if layer.size > crate::layout::MAX_MANIFEST_SIZE {
                    reasons.push(format!(
                        "signature {} has a payload larger than 4 MiB",
                        f.locked.digest
                    ));
                    continue;
                }
                let payload = source.fetch_small_blob(image, &layer.digest).await?;
                match loaded.key.verify(&payload, signature) {
                    Ok(()) => {}
                    Err(SignError::Mismatch) => {
                        reasons.push(format!(
                            "signature {} is by another key (or not over its payload)",
                            f.locked.digest
                        ));
                        continue;
                    }
                    Err(e) => {
                        reasons.push(format!("signature {} is malformed: {e}", f.locked.digest));
                        continue;
                    }
                }
                match payload_claims(&payload) {
                    Err(e) => reasons.push(format!(
                        "signature {} has a payload that is not simple signing: {e}",
                        f.locked.digest
                    )),
                    Ok((digest, _)) if !digests.iter().any(|d| d.as_str() == digest) => reasons
                        .push(format!(
                            "signature {} names digest {digest}, not the locked {}",
                            f.locked.digest,
                            digests
                                .iter()
                                .map(Digest::to_string)
                                .collect::<Vec<_>>()
                                .join(" or ")
                        )),
                    Ok((_, reference)) if normalize_repository(&reference) != repository => reasons
                        .push(format!(
                            "signature {} names repository {reference}, not {repository}",
                            f.locked.digest
                        )),
                    Ok(_) => {
                        vouched = Some(f.locked.digest.clone());
                        break 'signatures;
                    }
                }
            }
        }
        match vouched {
            Some(signature) => out.push(LockedVerification {
                key: loaded.policy.key.written.clone(),
                fingerprint: loaded.key.fingerprint(),
                signature,
            }),
            None => {
                return Err(PolicyError::Unsigned {
                    image: image.to_string(),
                    key: loaded.policy.key.written.clone(),
                    fingerprint: loaded.key.fingerprint(),
                    pattern: pattern.to_string(),
                    why: if reasons.is_empty() {
                        "it has no cosign signature (no sha256-<hex>.sig tag, no signature referrer)"
                            .to_string()
                    } else {
                        format!("none of its signatures is valid: {}", reasons.join("; "))
                    },
                });
            }
        }
    }
    Ok(out)
}

/// `critical.image.docker-manifest-digest` and `critical.identity.docker-reference`.
fn payload_claims(payload: &[u8]) -> Result<(String, String), String> {
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let critical = &v["critical"];
    let digest = critical["image"]["docker-manifest-digest"]
        .as_str()
        .ok_or("no critical.image.docker-manifest-digest")?;
    let reference = critical["identity"]["docker-reference"]
        .as_str()
        .ok_or("no critical.identity.docker-reference")?;
    Ok((digest.to_string(), reference.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_and_names() {
        let p = br#"{"critical":{"identity":{"docker-reference":"index.docker.io/library/redis"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":null}"#;
        let (d, r) = payload_claims(p).unwrap();
        assert_eq!(d, "sha256:ab");
        assert_eq!(normalize_repository(&r), "docker.io/library/redis");
        assert_eq!(
            normalize_repository("127.0.0.1:5000/app/web"),
            "127.0.0.1:5000/app/web"
        );
        assert!(payload_claims(b"{}").is_err());
    }
}
