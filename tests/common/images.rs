//! Deterministic generator of OCI image layouts (real gzip'd tar layers, configs, manifests, indexes).
//!
//! Same specs give byte-identical blobs and therefore the same digests:
//! tar headers have fixed mtimes/owners, gzip headers carry no name or time,
//! and JSON objects are written with their keys in sorted order (so the
//! output is the same whether or not serde_json's `preserve_order` is on).

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use super::util::{digest_bytes, sha256_hex};

/// OCI image manifest media type.
pub const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip-compressed tar layer media type.
pub const MT_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Annotation holding a tag/reference name in a layout's index.json.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
/// The mtime of every tar entry (2024-01-01T00:00:00Z).
pub const FIXED_MTIME: u64 = 1_704_067_200;
/// The `created` timestamp written into image configs.
pub const FIXED_CREATED: &str = "2024-01-01T00:00:00Z";

/// A content-addressed blob: digest, size and media type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Blob {
    /// `sha256:<hex>` digest of the bytes.
    pub digest: String,
    /// Length in bytes.
    pub size: u64,
    /// OCI media type.
    pub media_type: String,
}

impl Blob {
    /// Describes `bytes` as a blob of `media_type`.
    pub fn of(bytes: &[u8], media_type: &str) -> Self {
        Blob {
            digest: digest_bytes(bytes),
            size: bytes.len() as u64,
            media_type: media_type.to_owned(),
        }
    }

    /// The hex part of the digest (what names the file under blobs/sha256/).
    pub fn hex(&self) -> &str {
        self.digest.strip_prefix("sha256:").unwrap_or(&self.digest)
    }

    /// The blob as an OCI descriptor object.
    pub fn descriptor(&self) -> Value {
        json!({"digest": self.digest, "mediaType": self.media_type, "size": self.size})
    }
}

/// An OCI platform, e.g. `linux/arm/v7`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in Go/OCI spelling, e.g. `amd64`, `arm64`, `arm`.
    pub architecture: String,
    /// Optional CPU variant, e.g. `v7`.
    pub variant: Option<String>,
}

impl Platform {
    /// Parses `os/arch[/variant]`; panics on anything else.
    pub fn parse(s: &str) -> Self {
        let parts: Vec<&str> = s.split('/').collect();
        match parts[..] {
            [os, arch] => Platform::new(os, arch, None),
            [os, arch, variant] => Platform::new(os, arch, Some(variant)),
            _ => panic!("bad platform {s:?}: want os/arch[/variant]"),
        }
    }

    /// Builds a platform from its parts.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// linux/amd64.
    pub fn linux_amd64() -> Self {
        Platform::parse("linux/amd64")
    }

    /// linux/arm64.
    pub fn linux_arm64() -> Self {
        Platform::parse("linux/arm64")
    }

    /// linux/arm/v7.
    pub fn linux_arm_v7() -> Self {
        Platform::parse("linux/arm/v7")
    }

    /// The platform as an OCI `platform` object (keys sorted).
    pub fn to_json(&self) -> Value {
        let mut v = json!({"architecture": self.architecture, "os": self.os});
        if let Some(variant) = &self.variant {
            v["variant"] = json!(variant);
        }
        v
    }

    /// Reads a platform from an index entry's `platform` or an image config.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Platform {
            os: v.get("os")?.as_str()?.to_owned(),
            architecture: v.get("architecture")?.as_str()?.to_owned(),
            variant: v.get("variant").and_then(Value::as_str).map(str::to_owned),
        })
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

/// What goes into one layer: content derived from `seed`, about `size` bytes of file data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LayerSpec {
    /// Seed of the pseudo-random content (and of the file names).
    pub seed: u64,
    /// Approximate uncompressed payload in bytes (the tar adds headers).
    pub size: usize,
    /// Fraction (0..=100) of each chunk that is compressible text rather than random bytes.
    pub text_percent: u8,
}

impl LayerSpec {
    /// A layer of about `size` bytes, half compressible text, half random bytes.
    pub fn new(seed: u64, size: usize) -> Self {
        LayerSpec {
            seed,
            size,
            text_percent: 50,
        }
    }

    /// A layer of about `size` bytes of incompressible random data.
    pub fn random(seed: u64, size: usize) -> Self {
        LayerSpec {
            seed,
            size,
            text_percent: 0,
        }
    }

    /// The directory (inside the layer) holding this layer's files.
    pub fn dir(&self) -> String {
        format!("ferry-test/layer-{:016x}", self.seed)
    }

    /// The uncompressed tar archive of this layer.
    pub fn tar(&self) -> Vec<u8> {
        layer_tar(self)
    }
}

/// An image to generate: its platform, layers (bottom first) and `config.Cmd`.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// Platform written into the config (and the index entry, inside an index).
    pub platform: Platform,
    /// Layers, base first.
    pub layers: Vec<LayerSpec>,
    /// The config's `Cmd`.
    pub cmd: Vec<String>,
    /// Extra `config.Labels` (sorted by key when written).
    pub labels: Vec<(String, String)>,
}

impl ImageSpec {
    /// A linux/amd64 image with `layers` and `Cmd ["/bin/sh"]`.
    pub fn new(layers: Vec<LayerSpec>) -> Self {
        ImageSpec {
            platform: Platform::linux_amd64(),
            layers,
            cmd: vec!["/bin/sh".to_owned()],
            labels: Vec::new(),
        }
    }

    /// Sets the platform.
    pub fn platform(mut self, platform: Platform) -> Self {
        self.platform = platform;
        self
    }

    /// Sets `config.Cmd`.
    pub fn cmd(mut self, cmd: &[&str]) -> Self {
        self.cmd = cmd.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Adds a `config.Labels` entry.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// A generated layer: the compressed blob plus the uncompressed tar's digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    /// The gzip'd blob as stored and pushed.
    pub blob: Blob,
    /// `sha256:` digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
}

/// The digests of one image manifest and everything it references.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageDigests {
    /// The manifest blob.
    pub manifest: Blob,
    /// The platform (from the index entry or the config).
    pub platform: Platform,
    /// The config blob.
    pub config: Blob,
    /// The layer blobs, base first.
    pub layers: Vec<Blob>,
    /// The config's `rootfs.diff_ids`, base first.
    pub diff_ids: Vec<String>,
}

impl ImageDigests {
    /// Config and layer blobs (not the manifest).
    pub fn blobs(&self) -> Vec<Blob> {
        let mut blobs = vec![self.config.clone()];
        blobs.extend(self.layers.iter().cloned());
        blobs
    }
}

/// What a layout reference (or a pushed tag) points at: one manifest or an index of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// The top-level manifest or index blob.
    pub top: Blob,
    /// The image manifests: exactly one for a plain image, the children for an index.
    pub images: Vec<ImageDigests>,
}

impl ImageSet {
    /// The top-level digest (`sha256:...`).
    pub fn digest(&self) -> &str {
        &self.top.digest
    }

    /// Whether the top level is an image index.
    pub fn is_index(&self) -> bool {
        self.top.media_type == MT_INDEX
            || self.top.media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
    }

    /// The single image of a non-index set; panics for an index.
    pub fn image(&self) -> &ImageDigests {
        assert!(
            !self.is_index() && self.images.len() == 1,
            "{} is an index of {} images, not one image",
            self.top.digest,
            self.images.len()
        );
        &self.images[0]
    }

    /// The child for `platform` (e.g. "linux/arm64"); panics if absent.
    pub fn child(&self, platform: &str) -> &ImageDigests {
        let want = Platform::parse(platform);
        self.images
            .iter()
            .find(|i| i.platform == want)
            .unwrap_or_else(|| {
                panic!(
                    "{} has no {platform} image (has {:?})",
                    self.top.digest,
                    self.platforms()
                )
            })
    }

    /// The platforms of the images, in order.
    pub fn platforms(&self) -> Vec<String> {
        self.images.iter().map(|i| i.platform.to_string()).collect()
    }

    /// Every distinct blob reachable from the top (top, child manifests, configs, layers), sorted by digest.
    pub fn all_blobs(&self) -> Vec<Blob> {
        let mut blobs = vec![self.top.clone()];
        for image in &self.images {
            if image.manifest != self.top {
                blobs.push(image.manifest.clone());
            }
            blobs.extend(image.blobs());
        }
        blobs.sort();
        blobs.dedup();
        blobs
    }

    /// Distinct config and layer blobs, sorted by digest.
    pub fn content_blobs(&self) -> Vec<Blob> {
        let mut blobs: Vec<Blob> = self.images.iter().flat_map(ImageDigests::blobs).collect();
        blobs.sort();
        blobs.dedup();
        blobs
    }
}

/// SplitMix64: a tiny deterministic PRNG.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fills `buf` with pseudo-random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Deterministic file content: `len` bytes mixing text lines and random bytes.
fn content(rng: &mut SplitMix64, len: usize, text_percent: u8) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "ferry",
        "carries",
        "images",
        "across",
        "the",
        "air",
        "gap",
        "layer",
        "blob",
        "digest",
        "manifest",
        "index",
        "registry",
        "signed",
        "bundle",
        "kubernetes",
    ];
    let mut out = Vec::with_capacity(len);
    let block = 4096;
    let text_len = block * usize::from(text_percent.min(100)) / 100;
    while out.len() < len {
        let mut text = Vec::with_capacity(text_len);
        while text.len() < text_len {
            let word = WORDS[(rng.next_u64() % WORDS.len() as u64) as usize];
            text.extend_from_slice(word.as_bytes());
            text.push(if rng.next_u64().is_multiple_of(8) {
                b'\n'
            } else {
                b' '
            });
        }
        text.truncate(text_len);
        out.extend_from_slice(&text);
        let mut random = vec![0u8; block - text_len];
        rng.fill(&mut random);
        out.extend_from_slice(&random);
    }
    out.truncate(len);
    out
}

/// Appends one tar entry with fixed metadata.
fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    kind: tar::EntryType,
    path: &str,
    mode: u32,
    data: &[u8],
    link: Option<&str>,
) {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_mtime(FIXED_MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header
        .set_username("root")
        .and_then(|()| header.set_groupname("root"))
        .expect("short user/group names");
    header.set_size(data.len() as u64);
    let result = match link {
        Some(target) => builder.append_link(&mut header, path, target),
        None => builder.append_data(&mut header, path, data),
    };
    result.unwrap_or_else(|e| panic!("cannot append {path} to tar: {e}"));
}

/// Builds a layer's uncompressed tar: directories, a text file, a symlink and seeded data files (≤ 1 MiB each).
pub fn layer_tar(spec: &LayerSpec) -> Vec<u8> {
    let mut rng = SplitMix64::new(spec.seed);
    let dir = spec.dir();
    let mut builder = tar::Builder::new(Vec::with_capacity(spec.size + 16 * 1024));
    append(
        &mut builder,
        tar::EntryType::Directory,
        "ferry-test/",
        0o755,
        b"",
        None,
    );
    append(
        &mut builder,
        tar::EntryType::Directory,
        &format!("{dir}/"),
        0o755,
        b"",
        None,
    );
    let readme = format!(
        "ferry test layer\nseed: {}\nsize: {}\n",
        spec.seed, spec.size
    );
    append(
        &mut builder,
        tar::EntryType::Regular,
        &format!("{dir}/README"),
        0o644,
        readme.as_bytes(),
        None,
    );
    append(
        &mut builder,
        tar::EntryType::Symlink,
        &format!("{dir}/README.link"),
        0o777,
        b"",
        Some("README"),
    );
    const CHUNK: usize = 1024 * 1024;
    let mut left = spec.size;
    let mut index = 0;
    while left > 0 {
        let len = left.min(CHUNK);
        let data = content(&mut rng, len, spec.text_percent);
        let mode = if index % 3 == 2 { 0o755 } else { 0o644 };
        append(
            &mut builder,
            tar::EntryType::Regular,
            &format!("{dir}/data-{index:03}.bin"),
            mode,
            &data,
            None,
        );
        left -= len;
        index += 1;
    }
    builder.into_inner().expect("tar into Vec cannot fail")
}

/// Gzip-compresses `bytes` with a fixed header (no name, mtime 0) at the default level.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(bytes.len() / 2 + 64),
        Compression::default(),
    );
    encoder.write_all(bytes).expect("gzip into Vec cannot fail");
    encoder.finish().expect("gzip into Vec cannot fail")
}

/// The image config JSON for `spec` with the given diff_ids (keys sorted).
pub fn image_config(spec: &ImageSpec, diff_ids: &[String]) -> Value {
    let mut labels = serde_json::Map::new();
    let mut sorted = spec.labels.clone();
    sorted.sort();
    for (k, v) in sorted {
        labels.insert(k, json!(v));
    }
    let history: Vec<Value> = spec
        .layers
        .iter()
        .map(|l| {
            json!({
                "created": FIXED_CREATED,
                "created_by": format!("ferry-test-harness layer seed={} size={}", l.seed, l.size),
            })
        })
        .collect();
    let mut config = json!({
        "architecture": spec.platform.architecture,
        "config": {
            "Cmd": spec.cmd,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Labels": labels,
            "WorkingDir": "/",
        },
        "created": FIXED_CREATED,
        "history": history,
        "os": spec.platform.os,
        "rootfs": {"diff_ids": diff_ids, "type": "layers"},
    });
    if let Some(variant) = &spec.platform.variant {
        config["variant"] = json!(variant);
    }
    config
}

/// An OCI image-layout directory being written (oci-layout, index.json, blobs/sha256/).
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    refs: Vec<(String, Value)>,
}

impl OciLayout {
    /// Creates (or reuses) the layout at `dir`, writing `oci-layout` and an empty index.json.
    pub fn create(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(dir.join("blobs/sha256"))
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("cannot write oci-layout");
        let layout = OciLayout {
            dir,
            refs: Vec::new(),
        };
        layout.write_index();
        layout
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `oci:DIR:REF` reference skopeo understands.
    pub fn skopeo_ref(&self, name: &str) -> String {
        format!("oci:{}:{name}", self.dir.display())
    }

    /// Path of a blob's file inside the layout.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join("blobs/sha256").join(hex)
    }

    /// Stores `bytes` as a blob (idempotent) and describes it.
    pub fn add_blob(&mut self, bytes: &[u8], media_type: &str) -> Blob {
        let blob = Blob::of(bytes, media_type);
        let path = self.blob_path(&blob.digest);
        if !path.exists() {
            let tmp = path.with_extension("partial");
            fs::write(&tmp, bytes)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
            fs::rename(&tmp, &path).expect("cannot rename blob into place");
        }
        blob
    }

    /// Stores a JSON document as a blob (compact, object keys sorted).
    pub fn add_json(&mut self, value: &Value, media_type: &str) -> Blob {
        let bytes =
            serde_json::to_vec(&sort_keys(value.clone())).expect("JSON serialization cannot fail");
        self.add_blob(&bytes, media_type)
    }

    /// Generates and stores a gzip'd tar layer.
    pub fn add_layer(&mut self, spec: &LayerSpec) -> Layer {
        let tar = layer_tar(spec);
        let diff_id = format!("sha256:{}", sha256_hex(&tar));
        let blob = self.add_blob(&gzip(&tar), MT_LAYER_GZIP);
        Layer { blob, diff_id }
    }

    /// Generates and stores an image's layers, config and manifest.
    pub fn add_image(&mut self, spec: &ImageSpec) -> ImageDigests {
        let layers: Vec<Layer> = spec.layers.iter().map(|l| self.add_layer(l)).collect();
        let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let config = self.add_json(&image_config(spec, &diff_ids), MT_CONFIG);
        let manifest = json!({
            "config": config.descriptor(),
            "layers": layers.iter().map(|l| l.blob.descriptor()).collect::<Vec<_>>(),
            "mediaType": MT_MANIFEST,
            "schemaVersion": 2,
        });
        let manifest = self.add_json(&manifest, MT_MANIFEST);
        ImageDigests {
            manifest,
            platform: spec.platform.clone(),
            config,
            layers: layers.into_iter().map(|l| l.blob).collect(),
            diff_ids,
        }
    }

    /// Generates and stores the images and an index over them (entries carry `platform`).
    pub fn add_index(&mut self, specs: &[ImageSpec]) -> ImageSet {
        let images: Vec<ImageDigests> = specs.iter().map(|s| self.add_image(s)).collect();
        let entries: Vec<Value> = images
            .iter()
            .map(|i| {
                let mut d = i.manifest.descriptor();
                d["platform"] = i.platform.to_json();
                d
            })
            .collect();
        let index = json!({
            "manifests": entries,
            "mediaType": MT_INDEX,
            "schemaVersion": 2,
        });
        let top = self.add_json(&index, MT_INDEX);
        ImageSet { top, images }
    }

    /// Generates an image and tags it `name` in index.json.
    pub fn add_tagged_image(&mut self, name: &str, spec: &ImageSpec) -> ImageSet {
        let image = self.add_image(spec);
        let set = ImageSet {
            top: image.manifest.clone(),
            images: vec![image],
        };
        self.tag(name, &set.top);
        set
    }

    /// Generates an index over `specs` and tags it `name` in index.json.
    pub fn add_tagged_index(&mut self, name: &str, specs: &[ImageSpec]) -> ImageSet {
        let set = self.add_index(specs);
        self.tag(name, &set.top);
        set
    }

    /// Points reference `name` at `blob` (replacing an earlier one) and rewrites index.json.
    pub fn tag(&mut self, name: &str, blob: &Blob) {
        let mut d = blob.descriptor();
        d["annotations"] = json!({ REF_NAME_ANNOTATION: name });
        match self.refs.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = d,
            None => self.refs.push((name.to_owned(), d)),
        }
        self.write_index();
    }

    /// Writes index.json from the current references.
    fn write_index(&self) {
        let index = json!({
            "manifests": self.refs.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
            "mediaType": MT_INDEX,
            "schemaVersion": 2,
        });
        let bytes =
            serde_json::to_vec_pretty(&sort_keys(index)).expect("JSON serialization cannot fail");
        fs::write(self.dir.join("index.json"), bytes).expect("cannot write index.json");
    }
}

/// Rebuilds a JSON value with every object's keys in sorted order.
pub fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

/// Reads a JSON blob from a layout.
fn read_json_blob(layout_dir: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let path = layout_dir.join("blobs/sha256").join(hex);
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Reads a descriptor object into a [`Blob`].
pub fn blob_from_descriptor(d: &Value) -> Blob {
    Blob {
        digest: d["digest"].as_str().expect("descriptor digest").to_owned(),
        size: d["size"].as_u64().expect("descriptor size"),
        media_type: d["mediaType"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Describes one image manifest stored in a layout.
fn describe_image(layout_dir: &Path, manifest: Blob, platform: Option<Platform>) -> ImageDigests {
    let m = read_json_blob(layout_dir, &manifest.digest);
    let config = blob_from_descriptor(&m["config"]);
    let config_json = read_json_blob(layout_dir, &config.digest);
    let layers = m["layers"]
        .as_array()
        .expect("manifest has layers")
        .iter()
        .map(blob_from_descriptor)
        .collect();
    let diff_ids = config_json["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let platform = platform
        .or_else(|| Platform::from_json(&config_json))
        .expect("image config has os and architecture");
    ImageDigests {
        manifest,
        platform,
        config,
        layers,
        diff_ids,
    }
}

/// Describes what reference `name` points at in the layout at `layout_dir` (reads index.json and blobs).
pub fn describe_layout_ref(layout_dir: &Path, name: &str) -> ImageSet {
    let index_path = layout_dir.join("index.json");
    let index: Value = serde_json::from_slice(
        &fs::read(&index_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", index_path.display())),
    )
    .expect("index.json is JSON");
    let entry = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["annotations"][REF_NAME_ANNOTATION].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no reference {name:?} in {}", index_path.display()));
    let top = blob_from_descriptor(entry);
    let top_json = read_json_blob(layout_dir, &top.digest);
    let media_type = top_json["mediaType"].as_str().unwrap_or(&top.media_type);
    let is_index = media_type == MT_INDEX || top_json.get("manifests").is_some();
    let images = if is_index {
        top_json["manifests"]
            .as_array()
            .expect("index has manifests")
            .iter()
            .map(|d| {
                describe_image(
                    layout_dir,
                    blob_from_descriptor(d),
                    d.get("platform").and_then(Platform::from_json),
                )
            })
            .collect()
    } else {
        vec![describe_image(layout_dir, top.clone(), None)]
    };
    ImageSet { top, images }
}

/// Names of the references in the standard layout, as written by [`write_standard_layout`].
pub const STANDARD_REFS: [&str; 5] = ["alpine", "base", "web", "worker", "big"];

/// The layer specs used by the standard image set (shared so tests can recompute them).
pub mod standard {
    use super::{ImageSpec, LayerSpec, Platform};

    /// The base layers shared by `base`, `web` and `worker`.
    pub fn base_layers() -> Vec<LayerSpec> {
        vec![
            LayerSpec::new(0xba5e_0001, 192 * 1024),
            LayerSpec::new(0xba5e_0002, 48 * 1024),
        ]
    }

    /// The multi-arch "alpine" images: linux/amd64, linux/arm64, linux/arm/v7.
    pub fn alpine() -> Vec<ImageSpec> {
        [
            (Platform::linux_amd64(), 0xa1_0001),
            (Platform::linux_arm64(), 0xa1_0002),
            (Platform::linux_arm_v7(), 0xa1_0003),
        ]
        .into_iter()
        .map(|(platform, seed)| {
            ImageSpec::new(vec![LayerSpec::new(seed, 96 * 1024)])
                .platform(platform)
                .label("org.opencontainers.image.title", "alpine")
        })
        .collect()
    }

    /// `app/base`: two base layers.
    pub fn base() -> ImageSpec {
        ImageSpec::new(base_layers()).label("org.opencontainers.image.title", "base")
    }

    /// `app/web`: the base layers plus its own.
    pub fn web() -> ImageSpec {
        let mut layers = base_layers();
        layers.push(LayerSpec::new(0x00e6_0001, 128 * 1024));
        ImageSpec::new(layers)
            .cmd(&["/usr/bin/web", "--port", "8080"])
            .label("org.opencontainers.image.title", "web")
    }

    /// `app/worker`: the base layers plus two of its own.
    pub fn worker() -> ImageSpec {
        let mut layers = base_layers();
        layers.push(LayerSpec::new(0x3043_0001, 64 * 1024));
        layers.push(LayerSpec::new(0x3043_0002, 16 * 1024));
        ImageSpec::new(layers)
            .cmd(&["/usr/bin/worker"])
            .label("org.opencontainers.image.title", "worker")
    }

    /// `app/big`: one ~8 MiB incompressible layer on top of a small one.
    pub fn big() -> ImageSpec {
        ImageSpec::new(vec![
            LayerSpec::new(0xb16_0001, 32 * 1024),
            LayerSpec::random(0xb16_0002, 8 * 1024 * 1024),
        ])
        .label("org.opencontainers.image.title", "big")
    }
}

/// The standard image set as stored in a layout, one [`ImageSet`] per reference.
#[derive(Clone, Debug)]
pub struct StandardLayout {
    /// The layout directory.
    pub dir: PathBuf,
    /// Ref `alpine`: index of linux/amd64, linux/arm64, linux/arm/v7.
    pub alpine: ImageSet,
    /// Ref `base`: single-arch, two layers.
    pub base: ImageSet,
    /// Ref `web`: base layers + one.
    pub web: ImageSet,
    /// Ref `worker`: base layers + two.
    pub worker: ImageSet,
    /// Ref `big`: has a ~8 MiB layer.
    pub big: ImageSet,
}

/// Writes the standard image set into a layout at `dir` (refs: [`STANDARD_REFS`]).
pub fn write_standard_layout(dir: impl AsRef<Path>) -> StandardLayout {
    let mut layout = OciLayout::create(dir);
    StandardLayout {
        alpine: layout.add_tagged_index("alpine", &standard::alpine()),
        base: layout.add_tagged_image("base", &standard::base()),
        web: layout.add_tagged_image("web", &standard::web()),
        worker: layout.add_tagged_image("worker", &standard::worker()),
        big: layout.add_tagged_image("big", &standard::big()),
        dir: layout.dir().to_path_buf(),
    }
}
