//! The release's bill of materials: everything the bundle carries, as a CycloneDX 1.6 JSON
//! document and as an SPDX 2.3 JSON document of the same content, written by `build` as one
//! artifact entry of the bundle (kind `sbom`, a layer per format), printed by `ferry sbom`.
//!
//! Both are pure functions of the lock, so the same lock gives the same SBOMs (and the same
//! `index.json`): no clock time (SPDX requires a creation time: it is the Unix epoch), and a
//! serial number and document namespace derived from the lock's digest.

use std::collections::BTreeMap;

use serde_cyclonedx::cyclonedx::v_1_6 as cdx;
use serde_spdx::spdx::v_2_3 as spdx;

use crate::digest::Digest;
use crate::layout::artifact::{empty_config, index_entry, write_manifest};
use crate::layout::oci::Descriptor;
use crate::layout::{Layout, LayoutError};
use crate::manifest::lock::Lock;

/// The kind (`dev.ferry.kind`) of the SBOM entry.
pub const KIND: &str = "sbom";
/// The CycloneDX SBOM's media type (its layer's, and the artifact type of the manifest).
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// The SPDX SBOM's media type (its layer's).
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// The CycloneDX version written.
pub const SPEC_VERSION: &str = "1.6";
/// The SPDX version written.
pub const SPDX_VERSION: &str = "SPDX-2.3";

/// The formats of the release SBOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CycloneDX 1.6 JSON.
    CycloneDx,
    /// SPDX 2.3 JSON.
    Spdx,
}

impl Format {
    /// The media type of the layer that holds this format.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::CycloneDx => MEDIA_TYPE,
            Format::Spdx => SPDX_MEDIA_TYPE,
        }
    }
}

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

/// `NOASSERTION`: SPDX's word for a field ferry does not state.
const NOASSERTION: &str = "NOASSERTION";

fn spdx_sha256(digest: &Digest) -> spdx::SpdxItemPackagesItemChecksums {
    spdx::SpdxItemPackagesItemChecksums {
        algorithm: "SHA256".to_string(),
        checksum_value: digest
            .as_str()
            .strip_prefix("sha256:")
            .unwrap_or(digest.as_str())
            .to_string(),
    }
}

fn spdx_purl(purl: String) -> spdx::SpdxItemPackagesItemExternalRefs {
    spdx::SpdxItemPackagesItemExternalRefs {
        comment: None,
        reference_category: "PACKAGE-MANAGER".to_string(),
        reference_locator: purl,
        reference_type: "purl".to_string(),
    }
}

/// A package with the fields every ferry package has; the caller fills in the rest. Where a
/// thing was downloaded from goes into `sourceInfo`, not `downloadLocation`: SPDX tools
/// accept only URLs whose host has a top-level domain there, and air-gap upstreams are often
/// internal hosts (`http://nexus:8081/...`) or IP addresses.
fn spdx_package(id: String, name: String) -> spdx::SpdxItemPackages {
    spdx::SpdxItemPackagesBuilder::default()
        .spdxid(id)
        .name(name)
        .download_location(NOASSERTION)
        .files_analyzed(false)
        .build()
        .expect("SPDXID, name and downloadLocation are the only required fields")
}

fn relationship(
    from: &str,
    kind: &str,
    to: &str,
    comment: Option<String>,
) -> spdx::SpdxItemRelationships {
    spdx::SpdxItemRelationships {
        comment,
        related_spdx_element: to.to_string(),
        relationship_type: kind.to_string(),
        spdx_element_id: from.to_string(),
    }
}

/// The SBOM of a lock, as SPDX 2.3 JSON bytes: the same content as [`cyclonedx`]. The release
/// is the package the document describes; it CONTAINS every image, chart, file and apt
/// package; an image index CONTAINS its platform manifests; each signature, attestation or
/// SBOM carried is a package that is METAFILE_OF its subject (the comment says which).
pub fn spdx(lock: &Lock, lock_digest: &Digest) -> Vec<u8> {
    const RELEASE_ID: &str = "SPDXRef-Release";
    let mut packages: Vec<spdx::SpdxItemPackages> = Vec::new();
    let mut relationships = vec![relationship(
        "SPDXRef-DOCUMENT",
        "DESCRIBES",
        RELEASE_ID,
        None,
    )];
    let mut release = spdx_package(RELEASE_ID.to_string(), lock.release.name.clone());
    release.version_info = Some(lock.release.version.clone());
    release.primary_package_purpose = Some("APPLICATION".to_string());
    release.comment = Some(format!("built from lock {lock_digest}"));
    packages.push(release);

    for (i, image) in lock.images.iter().enumerate() {
        let id = format!("SPDXRef-Image-{}", i + 1);
        let mut p = spdx_package(id.clone(), image.repository());
        p.version_info = Some(
            image
                .reference
                .parse::<crate::manifest::Reference>()
                .ok()
                .and_then(|r| r.tag().map(str::to_string))
                .unwrap_or_else(|| image.digest.to_string()),
        );
        p.primary_package_purpose = Some("CONTAINER".to_string());
        p.checksums = Some(vec![spdx_sha256(&image.digest)]);
        p.external_refs = oci_purl(&image.reference, &image.digest).map(|u| vec![spdx_purl(u)]);
        let platforms: Vec<&str> = image
            .manifests
            .iter()
            .filter(|m| m.platform != "unknown/unknown")
            .map(|m| m.platform.as_str())
            .collect();
        p.comment = Some(format!(
            "image {} ({}); platforms: {}",
            image.reference,
            image.digest,
            if platforms.is_empty() {
                "none stated".to_string()
            } else {
                platforms.join(", ")
            }
        ));
        packages.push(p);
        relationships.push(relationship(RELEASE_ID, "CONTAINS", &id, None));
        // An index's platform manifests are packages of their own, with their digests.
        for (j, m) in image
            .manifests
            .iter()
            .filter(|m| m.platform != "unknown/unknown" && m.digest != image.digest)
            .enumerate()
        {
            let pid = format!("{id}-Platform-{}", j + 1);
            let mut pp = spdx_package(
                pid.clone(),
                format!("{} {}", image.repository(), m.platform),
            );
            pp.version_info = Some(m.platform.clone());
            pp.primary_package_purpose = Some("CONTAINER".to_string());
            pp.checksums = Some(vec![spdx_sha256(&m.digest)]);
            pp.comment = Some(format!("platform {} of {}", m.platform, image.reference));
            packages.push(pp);
            relationships.push(relationship(&id, "CONTAINS", &pid, None));
        }
        for (j, r) in image.referrers.iter().enumerate() {
            let rid = format!("{id}-Referrer-{}", j + 1);
            let mut rp = spdx_package(rid.clone(), image.referrer_reference(r));
            rp.checksums = Some(vec![spdx_sha256(&r.digest)]);
            let role = if crate::source::referrers::is_signature(r) {
                "signature".to_string()
            } else {
                match &r.artifact_type {
                    Some(t) => format!("attestation or SBOM ({t})"),
                    None => "referrer".to_string(),
                }
            };
            let subject_id = if r.subject == image.digest {
                id.clone()
            } else {
                image
                    .manifests
                    .iter()
                    .filter(|m| m.platform != "unknown/unknown" && m.digest != image.digest)
                    .position(|m| m.digest == r.subject)
                    .map(|k| format!("{id}-Platform-{}", k + 1))
                    .unwrap_or_else(|| id.clone())
            };
            rp.comment = Some(format!(
                "{role} of {}@{}{}",
                image.repository(),
                r.subject,
                r.tag
                    .as_deref()
                    .map(|t| format!(", under cosign's tag {t}"))
                    .unwrap_or_default()
            ));
            packages.push(rp);
            relationships.push(relationship(
                &rid,
                "METAFILE_OF",
                &subject_id,
                Some(format!("{role} of {}", r.subject)),
            ));
        }
    }
    for (i, chart) in lock.charts.iter().enumerate() {
        let id = format!("SPDXRef-Chart-{}", i + 1);
        let mut p = spdx_package(id.clone(), chart.name.clone());
        p.version_info = Some(chart.version.clone());
        p.checksums = Some(vec![spdx_sha256(&chart.digest)]);
        p.source_info = Some(match &chart.url {
            Some(url) => format!("Helm chart {}, downloaded from {url}", chart.key()),
            None => format!("Helm chart {}", chart.key()),
        });
        p.comment = Some(format!("OCI manifest {}", chart.manifest));
        packages.push(p);
        relationships.push(relationship(RELEASE_ID, "CONTAINS", &id, None));
    }
    for (i, file) in lock.files.iter().enumerate() {
        // A package, not an SPDX file: SPDX 2.3 files must have a SHA1, and ferry has SHA256.
        let id = format!("SPDXRef-File-{}", i + 1);
        let mut p = spdx_package(id.clone(), file.name.clone());
        p.checksums = Some(vec![spdx_sha256(&file.digest())]);
        p.source_info = Some(format!("downloaded from {}", file.url));
        p.package_file_name = Some(file.name.clone());
        p.primary_package_purpose = Some("FILE".to_string());
        p.comment = Some(format!("mode {}", file.mode));
        packages.push(p);
        relationships.push(relationship(RELEASE_ID, "CONTAINS", &id, None));
    }
    if let Some(apt) = &lock.apt {
        let mut n = 0;
        for source in &apt.sources {
            for deb in &source.packages {
                n += 1;
                let id = format!("SPDXRef-Deb-{n}");
                let mut p = spdx_package(id.clone(), deb.package.clone());
                p.version_info = Some(deb.version.clone());
                p.checksums = Some(vec![spdx::SpdxItemPackagesItemChecksums {
                    algorithm: "SHA256".to_string(),
                    checksum_value: deb.sha256.clone(),
                }]);
                p.external_refs = Some(vec![spdx_purl(format!(
                    "pkg:deb/{}@{}?arch={}",
                    deb.package,
                    deb.version.replace(':', "%3A"),
                    deb.architecture
                ))]);
                p.primary_package_purpose = Some("INSTALL".to_string());
                p.source_info = Some(format!("apt source {}", source.url));
                p.comment = Some(format!("architecture {}", deb.architecture));
                packages.push(p);
                relationships.push(relationship(RELEASE_ID, "CONTAINS", &id, None));
            }
        }
    }
    let uuid = serial_number(lock_digest);
    let document = spdx::SpdxBuilder::default()
        .spdxid("SPDXRef-DOCUMENT")
        .spdx_version(SPDX_VERSION)
        .data_license("CC0-1.0")
        .name(format!("{}-{}", lock.release.name, lock.release.version))
        .document_namespace(format!(
            "https://spdx.org/spdxdocs/ferry-{}-{}-{}",
            url_safe(&lock.release.name),
            url_safe(&lock.release.version),
            uuid.trim_start_matches("urn:uuid:")
        ))
        .creation_info(spdx::SpdxCreationInfo {
            comment: Some(format!(
                "Written by ferry from lock {lock_digest}; no clock time, so the same lock gives the same document."
            )),
            created: "1970-01-01T00:00:00Z".to_string(),
            creators: vec![format!("Tool: ferry-{}", env!("CARGO_PKG_VERSION"))],
            license_list_version: None,
        })
        .document_describes(vec![RELEASE_ID.to_string()])
        .packages(packages)
        .relationships(relationships)
        .build()
        .expect("every required field is set");
    let mut bytes = serde_json::to_vec_pretty(&document).expect("an SBOM always serialises");
    bytes.push(b'\n');
    bytes
}

/// A name as a URI path segment: anything but `[A-Za-z0-9._-]` becomes `-`.
fn url_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Writes the SBOMs of `lock` into the bundle as one artifact (a CycloneDX layer, then an
/// SPDX layer) and returns its index entry.
pub fn write(
    layout: &Layout,
    lock: &Lock,
    lock_digest: &Digest,
) -> Result<Descriptor, LayoutError> {
    let mut layers = Vec::new();
    for (format, bytes, title) in [
        (
            Format::CycloneDx,
            cyclonedx(lock, lock_digest),
            "sbom.cdx.json",
        ),
        (Format::Spdx, spdx(lock, lock_digest), "sbom.spdx.json"),
    ] {
        let mut layer = crate::layout::artifact::small_blob(layout, format.media_type(), &bytes)?;
        layer.annotations.insert(
            crate::layout::artifact::ANNOTATION_TITLE.to_string(),
            title.to_string(),
        );
        layers.push(layer);
    }
    let config = empty_config(layout)?;
    let manifest = write_manifest(layout, Some(MEDIA_TYPE), &config, &layers, &BTreeMap::new())?;
    let reference = format!("{}:{}", lock.release.name, lock.release.version);
    Ok(index_entry(&manifest, KIND, &format!("sbom/{reference}")))
}

/// The SBOM bytes of a bundle in `format`: that layer of its `sbom` entry (`None` when the
/// bundle has no SBOM, or none in that format: bundles built before ferry wrote SPDX).
pub fn read(
    layout: &Layout,
    entries: &[crate::layout::graph::Entry],
    format: Format,
) -> Result<Option<Vec<u8>>, LayoutError> {
    let Some(entry) = entries.iter().find(|e| e.kind == KIND) else {
        return Ok(None);
    };
    let Some(layer) = entry
        .blobs
        .iter()
        .find(|b| b.media_type == format.media_type())
    else {
        return Ok(None);
    };
    layout.read_document(&layer.digest).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-platform index with a cosign signature of the index and an SPDX SBOM of its
    /// amd64 manifest (the lock `scripts/conformance.sh` makes).
    const LOCK: &str = r#"{"lockVersion": 1, "release": {"name": "r", "version": "1"}, "images": [{"reference": "reg.example/app/web:v1", "platforms": ["linux/amd64", "linux/arm64"], "resolved": "sha256:3564152088b56456066df69b8a09c723bacb9e08a7f7482695442af53dffbcd7", "resolvedMediaType": "application/vnd.oci.image.index.v1+json", "selection": "whole", "digest": "sha256:3564152088b56456066df69b8a09c723bacb9e08a7f7482695442af53dffbcd7", "mediaType": "application/vnd.oci.image.index.v1+json", "size": 491, "manifests": [{"platform": "linux/amd64", "digest": "sha256:ea8742bb87ce0fb008520c5eb03493a608675d267175da641248ac15728425b3", "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 401}, {"platform": "linux/arm64", "digest": "sha256:6c65e7a7f1a2b86544747fe16980bfc702624f50365f32fd8f669153eacf5e60", "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 401}], "referrerMode": "all", "referrers": [{"subject": "sha256:3564152088b56456066df69b8a09c723bacb9e08a7f7482695442af53dffbcd7", "digest": "sha256:66af1c1db91694d75e6c0c57287b96d703fac532af76eb04666ff0986c30be51", "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 558, "tag": "sha256-3564152088b56456066df69b8a09c723bacb9e08a7f7482695442af53dffbcd7.sig"}, {"subject": "sha256:ea8742bb87ce0fb008520c5eb03493a608675d267175da641248ac15728425b3", "digest": "sha256:0c6fa0584ebed0220680bea5128e48c08ce3035282f7980bd593fcbc45841360", "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 645, "artifactType": "application/spdx+json"}]}]}"#;

    #[test]
    fn spdx_relates_each_referrer_to_its_own_subject() {
        let lock = Lock::parse(LOCK.as_bytes(), std::path::Path::new("r.lock")).unwrap();
        let digest = Digest::of_bytes(LOCK.as_bytes());
        let bytes = spdx(&lock, &digest);
        assert_eq!(bytes, spdx(&lock, &digest), "the same lock, the same bytes");
        let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let ids: Vec<&str> = doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["SPDXID"].as_str().unwrap())
            .collect();
        let edges: Vec<(&str, &str, &str)> = doc["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["spdxElementId"].as_str().unwrap(),
                    r["relationshipType"].as_str().unwrap(),
                    r["relatedSpdxElement"].as_str().unwrap(),
                )
            })
            .collect();
        for (from, _, to) in &edges {
            assert!(*from == "SPDXRef-DOCUMENT" || ids.contains(from), "{from}");
            assert!(ids.contains(to), "{to}");
        }
        let by_sum = |hex: &str| {
            doc["packages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["checksums"][0]["checksumValue"] == hex)
                .map(|p| p["SPDXID"].as_str().unwrap())
                .unwrap()
        };
        let index = by_sum("3564152088b56456066df69b8a09c723bacb9e08a7f7482695442af53dffbcd7");
        let amd64 = by_sum("ea8742bb87ce0fb008520c5eb03493a608675d267175da641248ac15728425b3");
        let sig = by_sum("66af1c1db91694d75e6c0c57287b96d703fac532af76eb04666ff0986c30be51");
        let sbom = by_sum("0c6fa0584ebed0220680bea5128e48c08ce3035282f7980bd593fcbc45841360");
        assert!(edges.contains(&("SPDXRef-Release", "CONTAINS", index)));
        assert!(edges.contains(&(index, "CONTAINS", amd64)));
        assert!(edges.contains(&(sig, "METAFILE_OF", index)));
        assert!(edges.contains(&(sbom, "METAFILE_OF", amd64)));
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
    }

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
