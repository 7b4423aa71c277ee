//! The release's bill of materials: a CycloneDX 1.6 JSON document of everything the bundle
//! carries, written by `build` as an artifact entry of the bundle (kind `sbom`), printed by
//! `ferry sbom`.
//!
//! It is a pure function of the lock, so the same lock gives the same SBOM (and the same
//! `index.json`): no timestamp, and a serial number derived from the lock's digest.

use std::collections::BTreeMap;

use serde_cyclonedx::cyclonedx::v_1_6 as cdx;

use crate::digest::Digest;
use crate::layout::artifact::{empty_config, index_entry, write_manifest};
use crate::layout::oci::Descriptor;
use crate::layout::{Layout, LayoutError};
use crate::manifest::lock::Lock;

/// The kind (`dev.ferry.kind`) of the SBOM entry.
pub const KIND: &str = "sbom";
/// The SBOM's media type (its layer's, and the artifact type of its manifest).
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// The CycloneDX version written.
pub const SPEC_VERSION: &str = "1.6";

fn sha256(digest: &Digest) -> cdx::Hash {
    cdx::Hash {
        alg: cdx::HashAlg::Sha256,
        content: digest
            .as_str()
            .strip_prefix("sha256:")
            .unwrap_or(digest.as_str())
            .to_string(),
    }
}

fn property(name: &str, value: impl Into<String>) -> cdx::Property {
    cdx::Property {
        name: format!("dev.ferry:{name}"),
        value: Some(value.into()),
    }
}

fn component(kind: &str, bom_ref: String, name: String) -> cdx::Component {
    cdx::ComponentBuilder::default()
        .type_(kind)
        .bom_ref(bom_ref)
        .name(name)
        .build()
        .expect("type and name are the only required fields")
}

/// `urn:uuid:` made from the lock digest (version 5 and variant bits set, as the schema asks).
fn serial_number(lock_digest: &Digest) -> String {
    let hex = lock_digest
        .as_str()
        .strip_prefix("sha256:")
        .unwrap_or(lock_digest.as_str());
    let mut h: Vec<char> = hex.chars().take(32).collect();
    h[12] = '5';
    h[16] = match h[16] {
        '0' | '4' | '8' | 'c' => '8',
        '1' | '5' | '9' | 'd' => '9',
        '2' | '6' | 'a' | 'e' => 'a',
        _ => 'b',
    };
    let h: String = h.into_iter().collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `pkg:oci/<last path segment>@<digest>?repository_url=<host/path>[&tag=<tag>]`.
fn oci_purl(reference: &str, digest: &Digest) -> Option<String> {
    let r: crate::manifest::Reference = reference.parse().ok()?;
    let name = r.repository().rsplit('/').next()?.to_string();
    let mut purl = format!(
        "pkg:oci/{name}@{}?repository_url={}",
        digest.as_str().replace(':', "%3A"),
        r.name()
    );
    if let Some(tag) = r.tag() {
        purl.push_str(&format!("&tag={tag}"));
    }
    Some(purl)
}

/// The SBOM of a lock, as CycloneDX 1.6 JSON bytes.
pub fn cyclonedx(lock: &Lock, lock_digest: &Digest) -> Vec<u8> {
    let mut components: Vec<cdx::Component> = Vec::new();
    for image in &lock.images {
        let mut c = component("container", image.reference.clone(), image.repository());
        c.version = Some(
            image
                .reference
                .parse::<crate::manifest::Reference>()
                .ok()
                .and_then(|r| r.tag().map(str::to_string))
                .unwrap_or_else(|| image.digest.to_string()),
        );
        c.purl = oci_purl(&image.reference, &image.digest);
        c.hashes = Some(vec![sha256(&image.digest)]);
        let mut properties = vec![property("kind", "image")];
        properties.extend(
            image
                .manifests
                .iter()
                .filter(|m| m.platform != "unknown/unknown")
                .map(|m| property("platform", format!("{} {}", m.platform, m.digest))),
        );
        c.properties = Some(properties);
        let referrers: Vec<cdx::Component> = image
            .referrers
            .iter()
            .map(|r| {
                let reference = image.referrer_reference(r);
                let mut rc = component("data", reference.clone(), reference);
                rc.hashes = Some(vec![sha256(&r.digest)]);
                let mut properties = vec![
                    property("kind", "referrer"),
                    property("subject", r.subject.to_string()),
                ];
                if let Some(t) = &r.artifact_type {
                    properties.push(property("artifactType", t.clone()));
                }
                if crate::source::referrers::is_signature(r) {
                    properties.push(property("signature", "true"));
                }
                rc.properties = Some(properties);
                rc
            })
            .collect();
        if !referrers.is_empty() {
            c.components = Some(referrers);
        }
        components.push(c);
    }
    for chart in &lock.charts {
        let mut c = component(
            "application",
            format!("chart:{}", chart.key()),
            chart.name.clone(),
        );
        c.version = Some(chart.version.clone());
        c.hashes = Some(vec![sha256(&chart.digest)]);
        let mut properties = vec![property("kind", "chart"), property("source", chart.key())];
        properties.push(property("manifest", chart.manifest.to_string()));
        c.properties = Some(properties);
        components.push(c);
    }
    for file in &lock.files {
        let mut c = component("file", format!("file:{}", file.name), file.name.clone());
        c.hashes = Some(vec![sha256(&file.digest())]);
        c.properties = Some(vec![
            property("kind", "file"),
            property("url", file.url.clone()),
            property("mode", file.mode.clone()),
        ]);
        components.push(c);
    }
    if let Some(apt) = &lock.apt {
        for source in &apt.sources {
            for deb in &source.packages {
                let mut c = component(
                    "library",
                    format!("deb:{}:{}:{}", deb.package, deb.version, deb.architecture),
                    deb.package.clone(),
                );
                c.version = Some(deb.version.clone());
                c.purl = Some(format!(
                    "pkg:deb/{}@{}?arch={}",
                    deb.package,
                    deb.version.replace(':', "%3A"),
                    deb.architecture
                ));
                c.hashes = Some(vec![cdx::Hash {
                    alg: cdx::HashAlg::Sha256,
                    content: deb.sha256.clone(),
                }]);
                c.properties = Some(vec![
                    property("kind", crate::source::apt::KIND),
                    property("architecture", deb.architecture.clone()),
                    property("source", source.url.clone()),
                ]);
                components.push(c);
            }
        }
    }
    let release_ref = format!("release:{}", lock.release.name);
    let mut release = component(
        "application",
        release_ref.clone(),
        lock.release.name.clone(),
    );
    release.version = Some(lock.release.version.clone());
    let mut tool = component("application", "tool:ferry".to_string(), "ferry".to_string());
    tool.version = Some(env!("CARGO_PKG_VERSION").to_string());
    let depends_on: Vec<String> = components
        .iter()
        .filter_map(|c| c.bom_ref.clone())
        .collect();
    let bom = cdx::CycloneDxBuilder::default()
        .bom_format("CycloneDX")
        .spec_version(SPEC_VERSION)
        .version(1)
        .serial_number(serial_number(lock_digest))
        .metadata(cdx::Metadata {
            component: Some(release),
            tools: Some(cdx::MetadataTools::Variant0(cdx::MetadataToolsVariant0 {
                components: Some(vec![tool]),
                services: None,
            })),
            properties: Some(vec![property("lock", lock_digest.to_string())]),
            ..Default::default()
        })
        .dependencies(vec![cdx::Dependency {
            ref_: release_ref,
            depends_on: Some(depends_on),
            provides: None,
        }])
        .components(components)
        .build()
        .expect("bomFormat and specVersion are the only required fields");
    let mut bytes = serde_json::to_vec_pretty(&bom).expect("an SBOM always serialises");
    bytes.push(b'\n');
    bytes
}

/// Writes the SBOM of `lock` into the bundle as an artifact (one layer) and returns its
/// index entry.
pub fn write(
    layout: &Layout,
    lock: &Lock,
    lock_digest: &Digest,
) -> Result<Descriptor, LayoutError> {
    let bytes = cyclonedx(lock, lock_digest);
    let mut layer = crate::layout::artifact::small_blob(layout, MEDIA_TYPE, &bytes)?;
    layer.annotations.insert(
        crate::layout::artifact::ANNOTATION_TITLE.to_string(),
        "sbom.cdx.json".to_string(),
    );
    let config = empty_config(layout)?;
    let manifest = write_manifest(
        layout,
        Some(MEDIA_TYPE),
        &config,
        &[layer],
        &BTreeMap::new(),
    )?;
    let reference = format!("{}:{}", lock.release.name, lock.release.version);
    Ok(index_entry(&manifest, KIND, &format!("sbom/{reference}")))
}

/// The SBOM bytes of a bundle: the layer of its `sbom` entry.
pub fn read(
    layout: &Layout,
    entries: &[crate::layout::graph::Entry],
) -> Result<Option<Vec<u8>>, LayoutError> {
    let Some(entry) = entries.iter().find(|e| e.kind == KIND) else {
        return Ok(None);
    };
    let Some(layer) = entry.blobs.iter().find(|b| b.media_type == MEDIA_TYPE) else {
        return Ok(None);
    };
    layout.read_document(&layer.digest).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_are_uuids() {
        let s = serial_number(&Digest::of_bytes(b"lock"));
        let re = regex::Regex::new(
            "^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
        )
        .unwrap();
        assert!(re.is_match(&s), "{s}");
        assert_eq!(
            oci_purl("quay.io/cilium/cilium:v1.16.5", &Digest::of_bytes(b"x")).unwrap(),
            format!(
                "pkg:oci/cilium@{}?repository_url=quay.io/cilium/cilium&tag=v1.16.5",
                Digest::of_bytes(b"x").as_str().replace(':', "%3A")
            )
        );
    }
}
