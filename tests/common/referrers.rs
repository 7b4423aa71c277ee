//! Upstream signatures, attestations and SBOMs made without ferry: cosign's formats built
//! with openssl, pushed to a registry with raw HTTP (curl), as cosign and oras would.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use super::registry::Registry;
use super::util::{digest_bytes, run};

/// cosign's simple-signing payload media type.
pub const MT_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The OCI empty config.
pub const MT_EMPTY: &str = "application/vnd.oci.empty.v1+json";
use super::images::{MT_INDEX, MT_MANIFEST};

/// An ECDSA P-256 key pair made by openssl: (private PEM, public PEM).
pub fn openssl_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    run(Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&private));
    run(Command::new("openssl")
        .args(["ec", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    (private, public)
}

/// `openssl dgst -sha256 -sign KEY` over `data`, base64 (cosign's signature annotation).
pub fn openssl_sign(key: &Path, data: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("payload");
    std::fs::write(&input, data).unwrap();
    let out = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&input));
    super::util::base64(&out.stdout)
}

/// Whether openssl verifies `signature_b64` over `data` with the public key `public`.
pub fn openssl_verify(public: &Path, data: &[u8], signature_b64: &str) -> bool {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("payload");
    let sig = dir.path().join("sig");
    std::fs::write(&input, data).unwrap();
    std::fs::write(
        &sig,
        base64::engine::general_purpose::STANDARD
            .decode(signature_b64)
            .unwrap(),
    )
    .unwrap();
    Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&sig)
        .arg(&input)
        .output()
        .unwrap()
        .status
        .success()
}

/// cosign's simple-signing payload for `digest` of repository `reference`.
pub fn payload(reference: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .unwrap()
}

/// Uploads a blob into `repo` (POST, then PUT with the digest); returns its descriptor.
pub fn put_blob(registry: &Registry, repo: &str, bytes: &[u8], media_type: &str) -> Value {
    let digest = digest_bytes(bytes);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("blob");
    std::fs::write(&file, bytes).unwrap();
    let out = run(Command::new("curl")
        .args(["-sS", "-f", "-o", "/dev/null", "-D", "-", "-X", "POST"])
        .arg(format!("{}/v2/{repo}/blobs/uploads/", registry.url())));
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    let location = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Location in {head}"));
    let location = if location.starts_with('/') {
        format!("{}{location}", registry.url())
    } else {
        location
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    run(Command::new("curl")
        .args([
            "-sS",
            "-f",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!("{location}{separator}digest={digest}")));
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// Puts a manifest byte for byte at `repo:reference`; returns its descriptor.
pub fn put_manifest(
    registry: &Registry,
    repo: &str,
    reference: &str,
    bytes: &[u8],
    media_type: &str,
) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest");
    std::fs::write(&file, bytes).unwrap();
    run(Command::new("curl")
        .args(["-sS", "-f", "-X", "PUT", "-H"])
        .arg(format!("Content-Type: {media_type}"))
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!(
            "{}/v2/{repo}/manifests/{reference}",
            registry.url()
        )));
    json!({"mediaType": media_type, "digest": digest_bytes(bytes), "size": bytes.len()})
}

/// `sha256-<hex>` for `sha256:<hex>`, with `.suffix` when given.
pub fn cosign_tag(digest: &str, suffix: &str) -> String {
    let base = digest.replacen(':', "-", 1);
    if suffix.is_empty() {
        base
    } else {
        format!("{base}.{suffix}")
    }
}

/// Pushes a cosign signature of `digest` (payload naming `signed_digest` and `reference`,
/// signed with `key`) at `repo:sha256-<hex>.sig`, as `cosign sign` does; returns the manifest.
pub fn push_cosign_signature(
    registry: &Registry,
    repo: &str,
    digest: &str,
    reference: &str,
    signed_digest: &str,
    key: &Path,
) -> Vec<u8> {
    let payload = payload(reference, signed_digest);
    let signature = openssl_sign(key, &payload);
    let mut layer = put_blob(registry, repo, &payload, MT_SIMPLE_SIGNING);
    layer["annotations"] = json!({"dev.cosignproject.cosign/signature": signature});
    let config = serde_json::to_vec(&json!({
        "architecture": "", "config": {}, "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}
    }))
    .unwrap();
    let config = put_blob(
        registry,
        repo,
        &config,
        "application/vnd.oci.image.config.v1+json",
    );
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MT_MANIFEST, "config": config, "layers": [layer]
    }))
    .unwrap();
    put_manifest(
        registry,
        repo,
        &cosign_tag(digest, "sig"),
        &manifest,
        MT_MANIFEST,
    );
    manifest
}

/// Pushes an OCI 1.1 artifact of `artifact_type` whose `subject` is `subject` (a descriptor)
/// by digest; returns the manifest bytes.
pub fn push_artifact(
    registry: &Registry,
    repo: &str,
    subject: &Value,
    artifact_type: &str,
    content: &[u8],
) -> Vec<u8> {
    let config = put_blob(registry, repo, b"{}", MT_EMPTY);
    let layer = put_blob(registry, repo, content, artifact_type);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MT_MANIFEST, "artifactType": artifact_type,
        "config": config, "layers": [layer], "subject": subject,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}
    }))
    .unwrap();
    let digest = digest_bytes(&manifest);
    put_manifest(registry, repo, &digest, &manifest, MT_MANIFEST);
    manifest
}

/// Puts the referrers tag schema index (`sha256-<hex>` of `subject`) listing `referrers`
/// (manifest bytes), as oras does on a registry without the referrers API.
pub fn push_tag_schema(registry: &Registry, repo: &str, subject: &str, referrers: &[&[u8]]) {
    let manifests: Vec<Value> = referrers
        .iter()
        .map(|bytes| {
            let m: Value = serde_json::from_slice(bytes).unwrap();
            json!({"mediaType": MT_MANIFEST, "digest": digest_bytes(bytes), "size": bytes.len(),
                   "artifactType": m["artifactType"], "annotations": m["annotations"]})
        })
        .collect();
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": manifests}),
    )
    .unwrap();
    put_manifest(registry, repo, &cosign_tag(subject, ""), &index, MT_INDEX);
}
