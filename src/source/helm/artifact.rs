//! The Helm OCI artifact of a chart, byte for byte as `helm push` (Helm v4) writes it.
//!
//! `helm push` marshals an OCI image manifest without a `mediaType` field:
//! `{"schemaVersion":2,"config":{...},"layers":[{...}],"annotations":{...}}`, the config
//! being the chart's metadata as JSON and the one layer the `.tgz` itself. The only input
//! that is not in the archive is the `created` annotation, for which `helm push` takes the
//! archive file's modification time; ferry takes the time Chart.yaml carries inside the
//! archive (when the chart was packaged), so the same archive always gives the same manifest.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::gojson;
use super::metadata::Metadata;
use crate::digest::Digest;

/// Media type of a Helm chart's config blob.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// Media type of the chart archive layer.
pub const CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The chart layer's media type of early Helm 3 pushes, which Helm still reads.
pub const LEGACY_CHART_LAYER_MEDIA_TYPE: &str = "application/tar+gzip";
/// Media type of a provenance layer.
pub const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";

/// Whether a layer media type is a chart archive.
pub fn is_chart_layer(media_type: &str) -> bool {
    media_type == CHART_LAYER_MEDIA_TYPE || media_type == LEGACY_CHART_LAYER_MEDIA_TYPE
}

/// The blobs of a chart's artifact, as `helm push` makes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmArtifact {
    /// The config blob.
    pub config: Vec<u8>,
    /// The manifest.
    pub manifest: Vec<u8>,
}

impl HelmArtifact {
    /// The artifact of an archive with digest `digest` and `size` bytes.
    pub fn new(metadata: &Metadata, digest: &Digest, size: u64, created: &str) -> HelmArtifact {
        let config = metadata.config_bytes();
        let descriptor = |media_type: &str, digest: &str, size: u64| json!({"mediaType": media_type, "digest": digest, "size": size});
        let annotations: BTreeMap<String, String> = metadata.push_annotations(created);
        let mut manifest = Map::new();
        manifest.insert("schemaVersion".into(), json!(2));
        manifest.insert(
            "config".into(),
            descriptor(
                CONFIG_MEDIA_TYPE,
                Digest::of_bytes(&config).as_str(),
                config.len() as u64,
            ),
        );
        manifest.insert(
            "layers".into(),
            Value::Array(vec![descriptor(
                CHART_LAYER_MEDIA_TYPE,
                digest.as_str(),
                size,
            )]),
        );
        if !annotations.is_empty() {
            manifest.insert("annotations".into(), json!(annotations));
        }
        HelmArtifact {
            manifest: gojson::to_vec(&Value::Object(manifest)),
            config,
        }
    }

    /// The manifest's digest.
    pub fn manifest_digest(&self) -> Digest {
        Digest::of_bytes(&self.manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_as_helm_push_writes_it() {
        // Seen from Helm v4.2.3 pushing the scaffold chart `helm create demo` made.
        let md = Metadata::parse(
            b"apiVersion: v2\nname: demo\ndescription: A Helm chart for Kubernetes\ntype: application\nversion: 0.1.0\nappVersion: \"1.16.0\"\n",
            None,
        )
        .unwrap();
        let layer = Digest::parse(
            "sha256:38c1360bd6bef7cc1635b540787ccac4d02455eab90e8badbc6d8f0a494a536c",
        )
        .unwrap();
        let a = HelmArtifact::new(&md, &layer, 4918, "2026-11-25T15:31:41Z");
        assert_eq!(
            String::from_utf8(a.config.clone()).unwrap(),
            r#"{"name":"demo","version":"0.1.0","description":"A Helm chart for Kubernetes","apiVersion":"v2","appVersion":"1.16.0","type":"application"}"#
        );
        assert_eq!(
            Digest::of_bytes(&a.config).as_str(),
            "sha256:ff1a5b6b030beb6d80ed19ee6573edf7de40803ef73c8502cffb6f2a10ba39d7"
        );
        assert_eq!(
            String::from_utf8(a.manifest.clone()).unwrap(),
            r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"sha256:ff1a5b6b030beb6d80ed19ee6573edf7de40803ef73c8502cffb6f2a10ba39d7","size":138},"layers":[{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"sha256:38c1360bd6bef7cc1635b540787ccac4d02455eab90e8badbc6d8f0a494a536c","size":4918}],"annotations":{"org.opencontainers.image.created":"2026-11-25T15:31:41Z","org.opencontainers.image.description":"A Helm chart for Kubernetes","org.opencontainers.image.title":"demo","org.opencontainers.image.version":"0.1.0"}}"#
        );
        assert_eq!(
            a.manifest_digest().as_str(),
            "sha256:1de580c5eaabdcdf25293f5f636b73d52bfcbc8ea563ba06124f5cc8015d0ce6"
        );
    }
}
