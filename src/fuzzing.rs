//! Entry points for the fuzz targets (`fuzz/`): one function per target, each feeding bytes
//! from outside to the parsers that meet them; and wrappers for parsers that are private to
//! their modules, reached here without changing what they do. `tests/fuzz_seeds.rs` runs every
//! committed seed and every crash kept as a regression (`fuzz/seeds/`, `fuzz/regressions/`)
//! through the same functions on stable. Not a stable API.

use std::path::Path;

use crate::auth::{AuthError, Credentials};

/// A `WWW-Authenticate` header's Bearer challenge, as `(realm, service)`.
pub fn bearer_challenge(header: &str) -> Option<(String, Option<String>)> {
    crate::distribution::parse_bearer_challenge(header).map(|c| (c.realm, c.service))
}

/// The message ferry shows for a Harbor API error body.
pub fn harbor_error_message(body: &[u8]) -> Option<String> {
    crate::destination::harbor::message_from_body(body)
}

/// Whether a registry error body is the distribution spec's envelope (`{"errors": [...]}`), as
/// the pull side reads it.
pub fn registry_error_envelope(body: &[u8]) -> bool {
    serde_json::from_slice::<oci_client::errors::OciEnvelope>(body).is_ok()
}

/// Every credential the `auths` of a Docker/Podman auth file hold (helpers are not run).
pub fn docker_auth_file(text: &str) -> Result<Vec<Credentials>, AuthError> {
    crate::auth::decode_file(text, Path::new("config.json"))
}

/// A fuzz target's function: takes one input, must not panic whatever it is.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, each with the function that takes one input.
pub const TARGETS: &[(&str, Target)] = &[
    ("apt_packages", apt_packages),
    ("apt_release", apt_release),
    ("chart", chart),
    ("docker_auth", docker_auth),
    ("helm_index", helm_index),
    ("helm_version", helm_version),
    ("lock", lock),
    ("manifest", manifest),
    ("names", names),
    ("oci_json", oci_json),
    ("openpgp", openpgp),
    ("registry_answers", registry_answers),
    ("site", site),
    ("volume", volume),
];

/// apt `Packages` and dpkg `status`: stanzas, versions, relations, provides.
pub fn apt_packages(data: &[u8]) {
    use crate::source::apt::control::{parse_provides, parse_relations, parse_version, stanzas};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(list) = stanzas(text) {
        for stanza in &list {
            let _ = stanza.get("Version").map(parse_version);
            for field in ["Depends", "Pre-Depends", "Recommends"] {
                let _ = stanza.get(field).map(parse_relations);
            }
            let _ = stanza.get("Provides").map(parse_provides);
        }
    }
    let _ = crate::source::apt::resolve::Installed::parse(text);
    let _ = parse_version(text);
    let _ = parse_relations(text);
}

/// apt `InRelease` / `Release`: the cleartext frame, the fields, dates.
pub fn apt_release(data: &[u8]) {
    use crate::source::apt::release::{Release, parse_date};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::openpgp::cleartext_body(text);
    let _ = Release::parse(text);
    let _ = parse_date(text);
}

/// A chart: `Chart.yaml` (+ `requirements.yaml`), values, the images annotation, and the chart archive itself (`.tgz`).
pub fn chart(data: &[u8]) {
    use crate::source::helm::{archive, images, metadata::Metadata, values};
    if data.starts_with(&[0x1f, 0x8b]) {
        let _ = archive::read(data);
        return;
    }
    // Chart.yaml, then optionally requirements.yaml after a `\0`.
    let (chart, requirements) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let _ = Metadata::parse(chart, requirements);
    if let Ok(text) = std::str::from_utf8(chart) {
        let _ = values::parse_values(text);
        let mut out = Default::default();
        images::from_annotation(text, "fuzz", &mut out);
    }
}

/// Docker/Podman auth files (`config.json`, `auth.json`): `auths` entries, base64 `auth`.
pub fn docker_auth(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::fuzzing::docker_auth_file(text);
    }
}

/// A chart repository's `index.yaml`.
pub fn helm_index(data: &[u8]) {
    let names = ["web".to_string(), "cilium".to_string(), "a".to_string()];
    if let Ok(index) = crate::source::helm::repo::parse_index(data, &names) {
        for name in &names {
            let _ = index.entries(name).map(|e| e.len());
        }
    }
}

/// Helm chart versions and version ranges (`>=1.2 <2`, `~1.3`, `^0.4 || 1.x`).
pub fn helm_version(data: &[u8]) {
    use crate::source::helm::version::{Constraint, Version};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A range and a version, split at the first newline.
    let (range, version) = text.split_once('\n').unwrap_or((text, "1.2.3"));
    let version = Version::parse(version);
    let _ = Version::parse_strict(range);
    if let (Ok(c), Ok(v)) = (Constraint::parse(range), version) {
        let _ = c.matches(&v);
    }
}

/// The lock file (JSON).
pub fn lock(data: &[u8]) {
    let _ = crate::manifest::lock::Lock::parse(data, std::path::Path::new("release.lock"));
}

/// The release manifest (YAML): schema, positions, validation.
pub fn manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::manifest::Manifest::parse(text, std::path::Path::new("release.yaml"));
    }
}

/// Short strings from outside: image references, platforms, digests, registry targets, volume sizes, file modes, URLs and sums, checksum files, apt `Filename`s, serve routes and ranges.
pub fn names(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::manifest::reference::Reference::parse(text).map(|r| r.to_string());
    let _ = crate::manifest::platform::Platform::parse(text);
    let _ = crate::digest::Digest::parse(text);
    let _ = crate::mapping::Target::parse(text);
    let _ = crate::archive::parse_volume_size(text);
    let _ = crate::manifest::files::parse_mode(text);
    let _ = crate::manifest::files::parse_url(text);
    let _ = crate::manifest::files::parse_sha256(text);
    let _ = crate::source::file::parse_checksums(text);
    let _ = crate::source::apt::check_filename(text);
    let _ = crate::serve::route::parse(text);
    let _ = crate::serve::registry::parse_range(text, 1 << 20);
    let _ = crate::serve::registry::parse_range(text, 0);
}

/// OCI index and manifest JSON (index.json, upstream manifests), and media type sniffing.
pub fn oci_json(data: &[u8]) {
    use crate::layout::oci::{Index, Manifest, sniff_media_type};
    if let Ok(index) = serde_json::from_slice::<Index>(data) {
        let _ = serde_json::to_vec(&index);
    }
    if let Ok(manifest) = serde_json::from_slice::<Manifest>(data) {
        let _ = manifest.blobs().count();
    }
    let _ = sniff_media_type(data);
}

/// OpenPGP packets: keyrings (binary or armored), cleartext signatures (`InRelease`), detached signatures (`Release.gpg`), checked against a real key.
pub fn openpgp(data: &[u8]) {
    use crate::openpgp::Keyring;
    use std::sync::OnceLock;
    use std::time::SystemTime;
    /// The key the `inrelease` and `release-gpg` seeds are signed with (the `keyring` seed,
    /// after its mode byte): mutated seeds reach the signature check itself. (A key made
    /// per process cost 8 s in the unoptimised build, where it timed out the first input.)
    fn keyring() -> &'static Keyring {
        static KEYRING: OnceLock<Keyring> = OnceLock::new();
        KEYRING.get_or_init(|| {
            let seed = include_bytes!("../fuzz/seeds/openpgp/keyring");
            Keyring::from_bytes(&seed[1..], "fuzz keyring").unwrap()
        })
    }
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    match mode % 3 {
        0 => {
            let _ = Keyring::from_bytes(rest, "fuzz").map(|k| k.fingerprints());
        }
        1 => {
            let _ = keyring().verify_cleartext(rest, "InRelease", now);
        }
        _ => {
            // Release text, `\0`, then the detached signature.
            let (text, signature) = match rest.iter().position(|&b| b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            let _ = keyring().verify_detached(text, signature, "Release", now);
        }
    }
}

/// What registries answer besides content: `WWW-Authenticate` challenges, error envelopes, Harbor error bodies.
pub fn registry_answers(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = bearer_challenge(text);
    }
    let _ = registry_error_envelope(data);
    let _ = harbor_error_message(data);
}

/// The site file (YAML).
pub fn site(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::site::Site::parse(text, std::path::Path::new("/srv/site/site.yaml"));
    }
}

/// A packed volume (tar, or tar in zstd frames) as import meets it on a stick: its entries, names, label and plan (`ferry-volumes.json`); and the plan and label JSON on their own.
pub fn volume(data: &[u8]) {
    use crate::archive::plan::{VolumeLabel, VolumePlan};
    use crate::archive::volumes::VolumeSet;
    let _ = serde_json::from_slice::<VolumePlan>(data);
    let _ = serde_json::from_slice::<VolumeLabel>(data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.001.tar");
    std::fs::write(&path, data).unwrap();
    if let Ok(set) = VolumeSet::open_files(&[path]) {
        let _ = set.require_all();
        let _ = set.blobs().count();
    }
}
