//! The release manifest: what a release carries, as written by release engineers.
//!
//! A manifest is one YAML document:
//!
//! ```yaml
//! apiVersion: ferry.dev/v1
//! kind: Release
//! metadata: {name: platform, version: "2026.11.0"}
//! spec:
//!   platforms: [linux/amd64]          # default for every image; linux/amd64 when absent
//!   images:
//!     - quay.io/cilium/cilium:v1.16.5
//!     - ref: docker.io/library/redis:7.4
//!       platforms: [linux/amd64, linux/arm64]
//! ```
//!
//! Loading takes three steps, so that every error names the file, line and column of the
//! node at fault:
//! 1. a syntax pass over the whole document, so a YAML syntax error is reported as such even
//!    when a schema error comes earlier in the file;
//! 2. a typed pass into the private `raw` types: serde-derived, unknown fields denied, and
//!    every value that is checked later wrapped in `serde_saphyr::Spanned` to keep its position;
//! 3. validation of the raw values into the public types below.
//!
//! Adding a content kind (charts, files, apt) means one field in `raw::Spec`, one public
//! type with its `Spec` field, and one `Validator` method, as images have.

pub mod apt;
pub mod files;
pub mod git;
pub mod helm_chart;
pub mod lock;
pub mod platform;
pub mod reference;
pub mod referrers;
pub mod trees;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::{MessageFormatter, Spanned};

pub use apt::{AptPackage, AptSource, AptSpec};
pub use files::{FilePin, FileSpec};
pub use platform::{Platform, PlatformError};
pub use reference::{Reference, ReferenceError};
pub use referrers::{ReferrersMode, VerifyPolicy};

/// The only `apiVersion` this version of ferry reads.
pub const API_VERSION: &str = "ferry.dev/v1";

/// The only `kind` a manifest may have.
pub const KIND: &str = "Release";

/// Longest accepted `metadata.name` or `metadata.version`.
const METADATA_MAX_LEN: usize = 128;

/// A validated release manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The file it was read from, as given; error messages name it.
    pub path: PathBuf,
    /// Release name and version.
    pub metadata: Metadata,
    /// What the release carries.
    pub spec: Spec,
}

/// Release identity, carried in the bundle's annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Release name, e.g. `platform`.
    pub name: String,
    /// Release version, e.g. `2026.11.0`.
    pub version: String,
}

/// The content of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Platforms of images that name none themselves.
    pub platforms: Vec<Platform>,
    /// Container images, in manifest order.
    pub images: Vec<ImageSpec>,
    /// Release files (binaries, archives, scripts), in manifest order.
    pub files: Vec<FileSpec>,
    /// Helm charts, in manifest order.
    pub charts: Vec<ChartSpec>,
    /// apt packages and their sources (`spec.apt`), if any.
    pub apt: Option<AptSpec>,
    /// The cluster the charts are rendered for (`spec.kubernetes`).
    pub kubernetes: KubernetesSpec,
    /// Which referrers images carry unless they say otherwise (`spec.referrers`).
    pub referrers: ReferrersMode,
    /// Keys that must have signed images (`spec.verify`), checked by `lock`.
    pub verify: Vec<VerifyPolicy>,
    /// Git repositories (`spec.git`), in manifest order.
    pub git: Vec<git::GitSpec>,
    /// Directory trees (`spec.trees`), in manifest order.
    pub trees: Vec<trees::TreeSpec>,
}

/// The Kubernetes version used when rendering charts when the manifest names none: the one
/// of the K3s release the platform carries (kept in step with `manifests/platform.yaml`).
pub const DEFAULT_KUBE_VERSION: &str = "1.36.0";

/// The cluster charts are rendered for: what `.Capabilities` tells their templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSpec {
    /// `spec.kubernetes.version` (`MAJOR.MINOR.PATCH`, no `v`), or [`DEFAULT_KUBE_VERSION`].
    pub version: String,
    /// `spec.kubernetes.apiVersions`: extra API versions (`monitoring.coreos.com/v1`, or
    /// `group/version/Kind`) the cluster will serve.
    pub api_versions: Vec<String>,
}

impl Default for KubernetesSpec {
    fn default() -> Self {
        KubernetesSpec {
            version: DEFAULT_KUBE_VERSION.to_string(),
            api_versions: Vec::new(),
        }
    }
}

/// One container image to carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The normalized reference.
    pub reference: Reference,
    /// Platforms to carry: the entry's own, or else the spec's default.
    pub platforms: Vec<Platform>,
    /// Position of the reference in the manifest, for later errors about this image.
    pub location: Location,
    /// Which of its referrers (signatures, attestations, SBOMs) to carry.
    pub referrers: ReferrersMode,
}

/// One Helm chart to carry (`spec.charts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartSpec {
    /// Where the chart comes from.
    pub source: ChartSource,
    /// The chart's name.
    pub name: String,
    /// The version: exact, or a range by Helm's rules, as written.
    pub version: String,
    /// The Helm release name it is rendered as (`releaseName`; default: the chart's name).
    pub release_name: String,
    /// The namespace it is rendered for (`namespace`; default: `default`, as Helm's).
    pub namespace: String,
    /// The values the site installs it with: each of `valuesFiles` (read when the manifest
    /// is loaded), then `values`, in the order Helm applies them.
    pub values: Vec<lock::ChartValues>,
    /// Position of the entry in the manifest.
    pub location: Location,
}

/// The namespace charts are rendered for when the manifest names none (Helm's default).
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where a chart comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChartSource {
    /// An HTTP chart repository (with an `index.yaml`): its URL, without a trailing `/`.
    Repo(String),
    /// An OCI registry: `host[:port]/path/name`, without `oci://` and without a tag.
    Oci(String),
}

impl ChartSpec {
    /// The chart's identity, version aside: `oci://host/path/name`, or `<repo URL>/<name>`.
    pub fn key(&self) -> String {
        match &self.source {
            ChartSource::Repo(repo) => format!("{repo}/{}", self.name),
            ChartSource::Oci(reference) => format!("oci://{reference}"),
        }
    }
}

/// A 1-based line and column (in characters) in the manifest file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Location {
    /// 1-based line; 0 only if the parser could not tell.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl Location {
    /// Converts serde-saphyr's location, whose line and column are already 1-based.
    pub(crate) fn from_yaml(location: &serde_saphyr::Location) -> Location {
        Location {
            line: usize::try_from(location.line()).unwrap_or(usize::MAX),
            column: usize::try_from(location.column()).unwrap_or(usize::MAX),
        }
    }
}

/// Why a manifest could not be loaded. Every message starts with `FILE:LINE:COLUMN:`.
///
/// Messages are complete on their own (they include the underlying cause), so no variant
/// exposes a `source()`: printing an error chain would otherwise repeat the cause.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{}: cannot read manifest: {error}", path.display())]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// The file is not well-formed YAML.
    #[error("{}: invalid YAML: {message}", at(path, location))]
    Syntax {
        /// The manifest file.
        path: PathBuf,
        /// Where the parser stopped.
        location: Location,
        /// The parser's description.
        message: String,
    },
    /// A node has the wrong shape or type (a list where a mapping belongs, and so on).
    #[error("{}: {message}", at(path, location))]
    Structure {
        /// The manifest file.
        path: PathBuf,
        /// The offending node.
        location: Location,
        /// What was expected.
        message: String,
    },
    /// The file holds no manifest at all.
    #[error(
        "{}: manifest is empty; it needs apiVersion, kind, metadata and spec",
        at(path, location)
    )]
    Empty {
        /// The manifest file.
        path: PathBuf,
        /// Always 1:1, the start of the file.
        location: Location,
    },
    /// A mapping has a key the schema does not know.
    #[error("{}: unknown field \"{field}\"; {} (allowed here: {})",
        at(path, location),
        match suggestion {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => "remove it".to_owned(),
        },
        allowed.join(", "))]
    UnknownField {
        /// The manifest file.
        path: PathBuf,
        /// The unknown key.
        location: Location,
        /// The unknown key as written.
        field: String,
        /// The keys allowed in this mapping.
        allowed: Vec<String>,
        /// The allowed key closest to the one written, if one is close.
        suggestion: Option<String>,
    },
    /// A required field is absent.
    #[error("{}: {field} is missing; {hint}", at(path, location))]
    MissingField {
        /// The manifest file.
        path: PathBuf,
        /// The mapping that lacks the field.
        location: Location,
        /// Dotted path of the field, e.g. `metadata.version`.
        field: String,
        /// What to add.
        hint: String,
    },
    /// `apiVersion` is not [`API_VERSION`].
    #[error(
        "{}: unsupported apiVersion {found:?}; this ferry reads only \"{API_VERSION}\"",
        at(path, location)
    )]
    UnsupportedApiVersion {
        /// The manifest file.
        path: PathBuf,
        /// The apiVersion value.
        location: Location,
        /// The value as written.
        found: String,
    },
    /// `kind` is not [`KIND`].
    #[error(
        "{}: unsupported kind {found:?}; a ferry manifest has kind \"{KIND}\"",
        at(path, location)
    )]
    UnsupportedKind {
        /// The manifest file.
        path: PathBuf,
        /// The kind value.
        location: Location,
        /// The value as written.
        found: String,
    },
    /// `metadata.name` or `metadata.version` is empty or has characters unfit for file names.
    #[error(
        "{}: invalid {field} {value:?}: use 1 to 128 letters, digits, '.', '_', '+' or '-', \
         starting with a letter or digit",
        at(path, location)
    )]
    InvalidMetadata {
        /// The manifest file.
        path: PathBuf,
        /// The value.
        location: Location,
        /// `metadata.name` or `metadata.version`.
        field: &'static str,
        /// The value as written.
        value: String,
    },
    /// An image reference does not parse.
    #[error("{}: invalid image reference {input:?}: {error}", at(path, location))]
    InvalidReference {
        /// The manifest file.
        path: PathBuf,
        /// The reference.
        location: Location,
        /// The reference as written.
        input: String,
        /// Why it does not parse.
        error: ReferenceError,
    },
    /// A platform does not parse.
    #[error("{}: invalid platform {input:?}: {error}", at(path, location))]
    InvalidPlatform {
        /// The manifest file.
        path: PathBuf,
        /// The platform.
        location: Location,
        /// The platform as written.
        input: String,
        /// Why it does not parse.
        error: PlatformError,
    },
    /// A platform list is empty, which would select nothing.
    #[error(
        "{}: {field} is empty; list at least one platform, or remove {field} to use {default}",
        at(path, location)
    )]
    EmptyPlatforms {
        /// The manifest file.
        path: PathBuf,
        /// The list.
        location: Location,
        /// `spec.platforms` or `platforms` (of an image).
        field: &'static str,
        /// What removing the field selects.
        default: &'static str,
    },
    /// A platform list names one platform twice (possibly through an alias).
    #[error(
        "{}: platform {input:?}{} is already listed at {}; remove one",
        at(path, location),
        normalized_note(input, platform),
        earlier(first, location)
    )]
    DuplicatePlatform {
        /// The manifest file.
        path: PathBuf,
        /// The second occurrence.
        location: Location,
        /// The second occurrence as written.
        input: String,
        /// The normalized platform (boxed to keep the error small).
        platform: Box<Platform>,
        /// The first occurrence.
        first: Location,
    },
    /// Two image entries normalize to the same reference.
    #[error(
        "{}: duplicate image {input:?}{}, first listed at {}; \
         remove one entry, or merge their platforms into one",
        at(path, location),
        normalized_note(input, reference),
        earlier(first, location)
    )]
    DuplicateImage {
        /// The manifest file.
        path: PathBuf,
        /// The second occurrence.
        location: Location,
        /// The second occurrence as written.
        input: String,
        /// The normalized reference (boxed to keep the error small).
        reference: Box<Reference>,
        /// The first occurrence.
        first: Location,
    },
    /// A `spec.files` entry is invalid: its URL, checksum, name or mode, or a duplicate.
    #[error("{}: {message}", at(path, location))]
    InvalidFile {
        /// The manifest file.
        path: PathBuf,
        /// The offending value.
        location: Location,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// A `spec.git` entry is invalid: its URL, name or refs, or a duplicate.
    #[error("{}: {message}", at(path, location))]
    InvalidGit {
        /// The manifest file.
        path: PathBuf,
        /// The offending value.
        location: Location,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// A `spec.trees` entry is invalid: its path or name, or a duplicate.
    #[error("{}: {message}", at(path, location))]
    InvalidTree {
        /// The manifest file.
        path: PathBuf,
        /// The offending value.
        location: Location,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// A chart entry is not valid (source, name, version) or is listed twice.
    #[error("{}: {message}", at(path, location))]
    InvalidChart {
        /// The manifest file.
        path: PathBuf,
        /// The offending value.
        location: Location,
        /// What is wrong and what to do.
        message: String,
    },
}

impl ManifestError {
    /// The manifest file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ManifestError::Read { path, .. }
            | ManifestError::Syntax { path, .. }
            | ManifestError::Structure { path, .. }
            | ManifestError::Empty { path, .. }
            | ManifestError::UnknownField { path, .. }
            | ManifestError::MissingField { path, .. }
            | ManifestError::UnsupportedApiVersion { path, .. }
            | ManifestError::UnsupportedKind { path, .. }
            | ManifestError::InvalidMetadata { path, .. }
            | ManifestError::InvalidReference { path, .. }
            | ManifestError::InvalidPlatform { path, .. }
            | ManifestError::EmptyPlatforms { path, .. }
            | ManifestError::DuplicatePlatform { path, .. }
            | ManifestError::DuplicateImage { path, .. }
            | ManifestError::InvalidFile { path, .. }
            | ManifestError::InvalidChart { path, .. }
            | ManifestError::InvalidGit { path, .. }
            | ManifestError::InvalidTree { path, .. } => path,
        }
    }

    /// Where in the file the error is; `None` when the file could not be read.
    pub fn location(&self) -> Option<Location> {
        match self {
            ManifestError::Read { .. } => None,
            ManifestError::Syntax { location, .. }
            | ManifestError::Structure { location, .. }
            | ManifestError::Empty { location, .. }
            | ManifestError::UnknownField { location, .. }
            | ManifestError::MissingField { location, .. }
            | ManifestError::UnsupportedApiVersion { location, .. }
            | ManifestError::UnsupportedKind { location, .. }
            | ManifestError::InvalidMetadata { location, .. }
            | ManifestError::InvalidReference { location, .. }
            | ManifestError::InvalidPlatform { location, .. }
            | ManifestError::EmptyPlatforms { location, .. }
            | ManifestError::DuplicatePlatform { location, .. }
            | ManifestError::DuplicateImage { location, .. }
            | ManifestError::InvalidFile { location, .. }
            | ManifestError::InvalidChart { location, .. }
            | ManifestError::InvalidGit { location, .. }
            | ManifestError::InvalidTree { location, .. } => Some(*location),
        }
    }
}

/// " (normalized)" when the normalized form differs from what was written, else nothing.
fn normalized_note(input: &str, normalized: &impl fmt::Display) -> String {
    let normalized = normalized.to_string();
    if normalized == input {
        String::new()
    } else {
        format!(" ({normalized})")
    }
}

/// "line L" for an earlier occurrence, with the column when both are on one line
/// (flow lists such as `[a, b]`), where the line alone would not tell them apart.
fn earlier(first: &Location, here: &Location) -> String {
    if first.line == here.line {
        format!("line {}, column {}", first.line, first.column)
    } else {
        format!("line {}", first.line)
    }
}

/// `FILE:LINE:COLUMN`, or just `FILE` in the unlikely case the parser gave no position.
fn at<'a>(path: &'a Path, location: &'a Location) -> impl fmt::Display + 'a {
    struct At<'a>(&'a Path, &'a Location);
    impl fmt::Display for At<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if self.1.line == 0 {
                write!(f, "{}", self.0.display())
            } else {
                write!(f, "{}:{}", self.0.display(), self.1)
            }
        }
    }
    At(path, location)
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|error| ManifestError::Read {
            path: path.to_owned(),
            error,
        })?;
        Manifest::parse(&text, path)
    }

    /// Validates manifest `text`; `path` names the file in errors and in [`Manifest::path`].
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let validator = Validator { path };
        let mut options = serde_saphyr::Options::default();
        // Errors are rendered here as FILE:LINE:COLUMN, so the snippet copy is wasted work.
        options.with_snippet = false;
        // Comments are not read; buffering them fails on long comment blocks.
        options.emit_comments = false;
        // The syntax pass reads every scalar untyped; `.nan` or `1e999` must not fail it
        // (the typed pass reads them as the strings they are).
        options.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::PassThrough;

        serde_saphyr::from_str_with_options::<serde::de::IgnoredAny>(text, options.clone())
            .map_err(|e| validator.yaml_error(&e, true))?;
        let document: Spanned<raw::Document> = serde_saphyr::from_str_with_options(text, options)
            .map_err(|e| validator.yaml_error(&e, false))?;
        validator.document(document)
    }
}

/// The manifest as written: every field optional and every checked value with its position,
/// so that validation, not serde, decides what is missing and says so with a position.
mod raw {
    use serde::Deserialize;
    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use serde_saphyr::Spanned;

    /// A list whose items keep their positions, itself with a position.
    pub(super) type SpannedList = Spanned<Vec<Spanned<String>>>;

    /// The whole document.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Document {
        pub api_version: Option<Spanned<String>>,
        pub kind: Option<Spanned<String>>,
        pub metadata: Option<Spanned<Metadata>>,
        pub spec: Option<Spanned<Spec>>,
    }

    /// `metadata`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Metadata {
        pub name: Option<Spanned<String>>,
        pub version: Option<Spanned<String>>,
    }

    /// `spec`; charts, files and apt lists slot in as further `Option<Vec<Spanned<_>>>` fields.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Spec {
        pub platforms: Option<SpannedList>,
        pub images: Option<Vec<Spanned<Image>>>,
        pub files: Option<Vec<Spanned<super::files::RawFile>>>,
        pub charts: Option<Vec<Spanned<Chart>>>,
        pub apt: Option<Spanned<super::apt::raw::Apt>>,
        pub kubernetes: Option<Spanned<Kubernetes>>,
        pub referrers: Option<Spanned<String>>,
        pub verify: Option<Vec<Spanned<super::referrers::raw::Verify>>>,
        pub git: Option<Vec<Spanned<super::git::RawGit>>>,
        pub trees: Option<Vec<Spanned<super::trees::RawTree>>>,
    }

    /// `spec.kubernetes`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub(super) struct Kubernetes {
        pub version: Option<Spanned<String>>,
        pub api_versions: Option<SpannedList>,
    }

    /// An entry of `spec.images`: a plain reference or a mapping.
    pub(super) enum Image {
        Short(String),
        Long(Box<ImageMapping>),
    }

    /// The mapping form of an image entry.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct ImageMapping {
        #[serde(rename = "ref")]
        pub reference: Option<Spanned<String>>,
        pub platforms: Option<SpannedList>,
        pub referrers: Option<Spanned<String>>,
    }

    /// An entry of `spec.charts`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct ChartMapping {
        pub name: Option<Spanned<String>>,
        pub repo: Option<Spanned<String>>,
        #[serde(rename = "ref")]
        pub reference: Option<Spanned<String>>,
        pub version: Option<Spanned<String>>,
        #[serde(rename = "releaseName")]
        pub release_name: Option<Spanned<String>>,
        pub namespace: Option<Spanned<String>>,
        pub values: Option<Spanned<serde_json::Value>>,
        #[serde(rename = "valuesFiles")]
        pub values_files: Option<SpannedList>,
    }

    /// An entry of `spec.charts`; a wrapper so that a non-mapping gets a helpful message.
    pub(super) struct Chart(pub ChartMapping);

    impl<'de> Deserialize<'de> for Chart {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct ChartVisitor;

            impl<'de> Visitor<'de> for ChartVisitor {
                type Value = Chart;

                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str(
                        "a mapping with `name` and `repo` (HTTP chart repository) or `ref` (oci://...), and `version`",
                    )
                }

                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Chart, A::Error> {
                    ChartMapping::deserialize(de::value::MapAccessDeserializer::new(map)).map(Chart)
                }
            }

            deserializer.deserialize_any(ChartVisitor)
        }
    }

    // Hand-written rather than `#[serde(untagged)]`: untagged enums buffer their input,
    // which loses every position inside the entry and replaces the real error (an unknown
    // field, say) with "data did not match any variant".
    impl<'de> Deserialize<'de> for Image {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct ImageVisitor;

            impl<'de> Visitor<'de> for ImageVisitor {
                type Value = Image;

                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an image reference, or a mapping with `ref` and `platforms`")
                }

                fn visit_str<E: de::Error>(self, value: &str) -> Result<Image, E> {
                    Ok(Image::Short(value.to_owned()))
                }

                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Image, A::Error> {
                    // The map access stays serde-saphyr's, so positions inside survive.
                    ImageMapping::deserialize(de::value::MapAccessDeserializer::new(map))
                        .map(|m| Image::Long(Box::new(m)))
                }
            }

            deserializer.deserialize_any(ImageVisitor)
        }
    }
}

/// Turns raw values into the public types; knows the file name for error messages.
struct Validator<'a> {
    path: &'a Path,
}

impl Validator<'_> {
    fn document(&self, document: Spanned<raw::Document>) -> Result<Manifest, ManifestError> {
        let root = self.loc(&document.referenced);
        let document = document.value;
        if document.api_version.is_none()
            && document.kind.is_none()
            && document.metadata.is_none()
            && document.spec.is_none()
        {
            // The parser places an empty document after any comments; the file's start
            // is the clearer place to point at.
            return Err(ManifestError::Empty {
                path: self.path.to_owned(),
                location: Location { line: 1, column: 1 },
            });
        }

        // apiVersion first: under another version every other error could be a false alarm.
        let api_version = self.required(
            document.api_version,
            root,
            "apiVersion",
            format!("add `apiVersion: {API_VERSION}` at the top"),
        )?;
        if api_version.value != API_VERSION {
            return Err(ManifestError::UnsupportedApiVersion {
                path: self.path.to_owned(),
                location: self.loc(&api_version.referenced),
                found: api_version.value,
            });
        }
        let kind = self.required(document.kind, root, "kind", format!("add `kind: {KIND}`"))?;
        if kind.value != KIND {
            return Err(ManifestError::UnsupportedKind {
                path: self.path.to_owned(),
                location: self.loc(&kind.referenced),
                found: kind.value,
            });
        }

        let metadata = self.metadata(document.metadata, root)?;
        let spec = self.spec(document.spec, root)?;
        Ok(Manifest {
            path: self.path.to_owned(),
            metadata,
            spec,
        })
    }

    fn metadata(
        &self,
        metadata: Option<Spanned<raw::Metadata>>,
        root: Location,
    ) -> Result<Metadata, ManifestError> {
        let metadata = self.required(
            metadata,
            root,
            "metadata",
            "add `metadata: {name: <release name>, version: <release version>}`".to_owned(),
        )?;
        let at = self.loc(&metadata.referenced);
        let name = self.required(
            metadata.value.name,
            at,
            "metadata.name",
            "add the release name, e.g. `name: platform`".to_owned(),
        )?;
        let version = self.required(
            metadata.value.version,
            at,
            "metadata.version",
            "add the release version, e.g. `version: \"2026.11.0\"`".to_owned(),
        )?;
        Ok(Metadata {
            name: self.metadata_value(name, "metadata.name")?,
            version: self.metadata_value(version, "metadata.version")?,
        })
    }

    /// Name and version end up in file names and OCI annotations, so keep them plain.
    fn metadata_value(
        &self,
        value: Spanned<String>,
        field: &'static str,
    ) -> Result<String, ManifestError> {
        let bytes = value.value.as_bytes();
        let ok = bytes.len() <= METADATA_MAX_LEN
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'));
        if ok {
            Ok(value.value)
        } else {
            Err(ManifestError::InvalidMetadata {
                path: self.path.to_owned(),
                location: self.loc(&value.referenced),
                field,
                value: value.value,
            })
        }
    }

    fn spec(
        &self,
        spec: Option<Spanned<raw::Spec>>,
        root: Location,
    ) -> Result<Spec, ManifestError> {
        let spec = self.required(
            spec,
            root,
            "spec",
            "add `spec:` with the content of the release, e.g. `images: [...]`".to_owned(),
        )?;
        let spec = spec.value;
        let platforms = match spec.platforms {
            Some(list) => self.platforms(list, "spec.platforms", "linux/amd64")?,
            None => vec![default_platform()],
        };
        let referrers = match spec.referrers {
            Some(value) => self.referrers_mode(value)?,
            None => ReferrersMode::default(),
        };
        let verify = self.verify(spec.verify.unwrap_or_default())?;
        let images = self.images(spec.images.unwrap_or_default(), &platforms, referrers)?;
        let files = self.files(spec.files.unwrap_or_default())?;
        let charts = self.charts(spec.charts.unwrap_or_default())?;
        let apt = spec.apt.map(|a| self.apt(a)).transpose()?;
        let git = self.git(spec.git.unwrap_or_default())?;
        let trees = self.trees(spec.trees.unwrap_or_default())?;
        let kubernetes = match spec.kubernetes {
            Some(k) => self.kubernetes(k)?,
            None => KubernetesSpec::default(),
        };
        Ok(Spec {
            platforms,
            images,
            files,
            charts,
            apt,
            kubernetes,
            referrers,
            verify,
            git,
            trees,
        })
    }

    fn images(
        &self,
        entries: Vec<Spanned<raw::Image>>,
        default_platforms: &[Platform],
        default_referrers: ReferrersMode,
    ) -> Result<Vec<ImageSpec>, ManifestError> {
        let mut images = Vec::with_capacity(entries.len());
        let mut first_seen: HashMap<Reference, Location> = HashMap::new();
        for entry in entries {
            let entry_location = self.loc(&entry.referenced);
            let (input, location, platforms, referrers) = match entry.value {
                raw::Image::Short(input) => (input, entry_location, None, None),
                raw::Image::Long(mapping) => {
                    let reference = self.required(
                        mapping.reference,
                        entry_location,
                        "ref",
                        "add the image reference, e.g. `ref: docker.io/library/redis:7.4`"
                            .to_owned(),
                    )?;
                    let location = self.loc(&reference.referenced);
                    (
                        reference.value,
                        location,
                        mapping.platforms,
                        mapping.referrers,
                    )
                }
            };
            let reference =
                Reference::parse(&input).map_err(|error| ManifestError::InvalidReference {
                    path: self.path.to_owned(),
                    location,
                    input: input.clone(),
                    error,
                })?;
            if let Some(first) = first_seen.get(&reference) {
                return Err(ManifestError::DuplicateImage {
                    path: self.path.to_owned(),
                    location,
                    input,
                    reference: Box::new(reference),
                    first: *first,
                });
            }
            first_seen.insert(reference.clone(), location);
            let platforms = match platforms {
                Some(list) => self.platforms(list, "platforms", "spec.platforms")?,
                None => default_platforms.to_vec(),
            };
            let referrers = match referrers {
                Some(value) => self.referrers_mode(value)?,
                None => default_referrers,
            };
            images.push(ImageSpec {
                reference,
                platforms,
                location,
                referrers,
            });
        }
        Ok(images)
    }

    fn charts(&self, entries: Vec<Spanned<raw::Chart>>) -> Result<Vec<ChartSpec>, ManifestError> {
        let mut charts = Vec::with_capacity(entries.len());
        let mut first_seen: HashMap<String, Location> = HashMap::new();
        for entry in entries {
            let location = self.loc(&entry.referenced);
            let raw::Chart(mapping) = entry.value;
            let fail = |location: Location, message: String| ManifestError::InvalidChart {
                path: self.path.to_owned(),
                location,
                message,
            };
            let (source, name) = match (mapping.repo, mapping.reference) {
                (Some(_), Some(reference)) => {
                    return Err(fail(
                        self.loc(&reference.referenced),
                        "give either `repo` (an HTTP chart repository) or `ref` (oci://...), not both".to_owned(),
                    ));
                }
                (None, None) => {
                    return Err(ManifestError::MissingField {
                        path: self.path.to_owned(),
                        location,
                        field: "repo".to_owned(),
                        hint: "add `repo: https://...` (an HTTP chart repository) with `name`, or `ref: oci://host/path/name`".to_owned(),
                    });
                }
                (Some(repo), None) => {
                    let repo_at = self.loc(&repo.referenced);
                    let repo = helm_chart::repo_url(&repo.value).map_err(|m| fail(repo_at, m))?;
                    let name = self.required(
                        mapping.name,
                        location,
                        "name",
                        "add the chart's name in the repository, e.g. `name: cilium`".to_owned(),
                    )?;
                    let name_at = self.loc(&name.referenced);
                    helm_chart::chart_name(&name.value).map_err(|m| fail(name_at, m))?;
                    helm_chart::registry_path(&repo, &name.value).map_err(|m| fail(repo_at, m))?;
                    (ChartSource::Repo(repo), name.value)
                }
                (None, Some(reference)) => {
                    let at = self.loc(&reference.referenced);
                    if let Some(name) = mapping.name {
                        return Err(fail(
                            self.loc(&name.referenced),
                            "`name` is not used with `ref`: the chart's name is the last part of the oci:// reference; remove `name`".to_owned(),
                        ));
                    }
                    let (reference, name) =
                        helm_chart::oci_reference(&reference.value).map_err(|m| fail(at, m))?;
                    (ChartSource::Oci(reference), name)
                }
            };
            let version = self.required(
                mapping.version,
                location,
                "version",
                "add the chart version: exact (`version: 1.16.5`) or a Helm range (`version: \"~1.16\"`)".to_owned(),
            )?;
            let version_at = self.loc(&version.referenced);
            crate::source::helm::version::Constraint::parse(version.value.trim())
                .map_err(|e| fail(version_at, e.to_string()))?;
            let release_name = match mapping.release_name {
                Some(r) => {
                    let at = self.loc(&r.referenced);
                    helm_chart::release_name(r.value.trim()).map_err(|m| fail(at, m))?;
                    r.value.trim().to_owned()
                }
                None => name.clone(),
            };
            let namespace = match mapping.namespace {
                Some(n) => {
                    let at = self.loc(&n.referenced);
                    helm_chart::namespace(n.value.trim()).map_err(|m| fail(at, m))?;
                    n.value.trim().to_owned()
                }
                None => DEFAULT_NAMESPACE.to_owned(),
            };
            let mut values = Vec::new();
            for file in mapping.values_files.map(|l| l.value).unwrap_or_default() {
                let at = self.loc(&file.referenced);
                values.push(self.values_file(&file.value).map_err(|m| fail(at, m))?);
            }
            if let Some(inline) = mapping.values {
                let at = self.loc(&inline.referenced);
                let value = match inline.value {
                    serde_json::Value::Null => serde_json::Value::Object(Default::default()),
                    v @ serde_json::Value::Object(_) => v,
                    _ => {
                        return Err(fail(
                            at,
                            "`values` must be a mapping of chart values, as in a values.yaml file"
                                .to_owned(),
                        ));
                    }
                };
                values.push(lock::ChartValues {
                    source: "values".to_owned(),
                    values: value,
                });
            }
            let spec = ChartSpec {
                source,
                name,
                version: version.value.trim().to_owned(),
                release_name,
                namespace,
                values,
                location,
            };
            let key = spec.key();
            if let Some(first) = first_seen.get(&key) {
                return Err(fail(
                    location,
                    format!(
                        "duplicate chart {key}, first listed at {}; a release carries one version of a chart: remove one entry",
                        earlier(first, &location)
                    ),
                ));
            }
            first_seen.insert(key, location);
            charts.push(spec);
        }
        Ok(charts)
    }

    /// Reads a `valuesFiles` entry, relative to the manifest's directory.
    fn values_file(&self, written: &str) -> Result<lock::ChartValues, String> {
        let written = written.trim();
        if written.is_empty() {
            return Err(
                "a `valuesFiles` entry is empty; give a path relative to the manifest".to_owned(),
            );
        }
        let dir = self.path.parent().unwrap_or(Path::new(""));
        let path = dir.join(written);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read values file {} ({e}); paths in `valuesFiles` are relative to the manifest",
                path.display()
            )
        })?;
        let values = crate::source::helm::values::parse_values(&text)
            .map_err(|e| format!("values file {} is not valid: {e}", path.display()))?;
        Ok(lock::ChartValues {
            source: written.to_owned(),
            values,
        })
    }

    fn kubernetes(&self, k: Spanned<raw::Kubernetes>) -> Result<KubernetesSpec, ManifestError> {
        let fail = |location: Location, message: String| ManifestError::InvalidChart {
            path: self.path.to_owned(),
            location,
            message,
        };
        let mut spec = KubernetesSpec::default();
        if let Some(version) = k.value.version {
            let at = self.loc(&version.referenced);
            spec.version = helm_chart::kube_version(&version.value).map_err(|m| fail(at, m))?;
        }
        for api in k.value.api_versions.map(|l| l.value).unwrap_or_default() {
            let at = self.loc(&api.referenced);
            let value = api.value.trim();
            if value.is_empty() || value.contains(char::is_whitespace) || !value.contains('/') {
                return Err(fail(
                    at,
                    format!(
                        "invalid API version {value:?} in spec.kubernetes.apiVersions: write group/version, e.g. monitoring.coreos.com/v1"
                    ),
                ));
            }
            spec.api_versions.push(value.to_owned());
        }
        Ok(spec)
    }

    fn platforms(
        &self,
        list: raw::SpannedList,
        field: &'static str,
        default: &'static str,
    ) -> Result<Vec<Platform>, ManifestError> {
        if list.value.is_empty() {
            return Err(ManifestError::EmptyPlatforms {
                path: self.path.to_owned(),
                location: self.loc(&list.referenced),
                field,
                default,
            });
        }
        let mut platforms = Vec::with_capacity(list.value.len());
        let mut first_seen: HashMap<Platform, Location> = HashMap::new();
        for item in list.value {
            let location = self.loc(&item.referenced);
            let platform =
                Platform::parse(&item.value).map_err(|error| ManifestError::InvalidPlatform {
                    path: self.path.to_owned(),
                    location,
                    input: item.value.clone(),
                    error,
                })?;
            if let Some(first) = first_seen.get(&platform) {
                return Err(ManifestError::DuplicatePlatform {
                    path: self.path.to_owned(),
                    location,
                    input: item.value,
                    platform: Box::new(platform),
                    first: *first,
                });
            }
            first_seen.insert(platform.clone(), location);
            platforms.push(platform);
        }
        Ok(platforms)
    }

    /// The value of a required field, or an error pointing at the mapping that lacks it.
    fn required<T>(
        &self,
        value: Option<T>,
        parent: Location,
        field: &str,
        hint: String,
    ) -> Result<T, ManifestError> {
        value.ok_or_else(|| ManifestError::MissingField {
            path: self.path.to_owned(),
            location: parent,
            field: field.to_owned(),
            hint,
        })
    }

    fn loc(&self, location: &serde_saphyr::Location) -> Location {
        Location::from_yaml(location)
    }

    /// Maps a serde-saphyr error to ours, keeping its position.
    fn yaml_error(&self, error: &serde_saphyr::Error, syntax_pass: bool) -> ManifestError {
        let location = error
            .location()
            .map(|l| Location::from_yaml(&l))
            .unwrap_or_default();
        let path = self.path.to_owned();
        let inner = innermost(error);
        if let serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } = inner
        {
            return ManifestError::UnknownField {
                path,
                location,
                suggestion: closest(field, expected).map(str::to_owned),
                field: field.clone(),
                allowed: expected.iter().map(|s| (*s).to_owned()).collect(),
            };
        }
        let message = match inner {
            // The parser names events; users think in lists and mappings.
            serde_saphyr::Error::Unexpected {
                expected: "sequence start",
                ..
            } => "expected a list here".to_owned(),
            serde_saphyr::Error::Unexpected {
                expected: "mapping start",
                ..
            } => "expected a mapping (key: value pairs) here".to_owned(),
            serde_saphyr::Error::Unexpected {
                expected: "string scalar" | "scalar",
                ..
            } => "expected a single value (a string) here".to_owned(),
            other => serde_saphyr::UserMessageFormatter
                .format_message(other)
                .into_owned(),
        };
        if syntax_pass {
            ManifestError::Syntax {
                path,
                location,
                message,
            }
        } else {
            ManifestError::Structure {
                path,
                location,
                message,
            }
        }
    }
}

/// The error itself, without the snippet and alias wrappers serde-saphyr may add.
pub(crate) fn innermost(error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    match error {
        serde_saphyr::Error::WithSnippet { error, .. }
        | serde_saphyr::Error::AliasError { error, .. } => innermost(error),
        other => other,
    }
}

/// The allowed field closest to `field`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(field: &str, allowed: &[&'a str]) -> Option<&'a str> {
    let field = field.to_ascii_lowercase();
    allowed
        .iter()
        .map(|candidate| {
            (
                edit_distance(&field, &candidate.to_ascii_lowercase()),
                *candidate,
            )
        })
        .filter(|(distance, candidate)| *distance <= 2 && *distance < candidate.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// The platform of images when the manifest names none: what most clusters run.
fn default_platform() -> Platform {
    Platform {
        os: "linux".to_owned(),
        architecture: "amd64".to_owned(),
        variant: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use insta::assert_snapshot;

    /// Lines 1 to 3 of every test manifest, so `spec:` is always line 4.
    const HEAD: &str = "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: platform, version: \"2026.11.0\"}\n";

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("platform.yaml"))
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(manifest) => panic!("expected an error, got {manifest:#?}"),
            Err(error) => error.to_string(),
        }
    }

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parses_the_example() {
        let text = format!(
            "{HEAD}spec:
  platforms: [linux/amd64]
  images:
    - quay.io/cilium/cilium:v1.16.5
    - ref: docker.io/library/redis:7.4
      platforms: [linux/amd64, linux/arm64]
    - ref: registry.k8s.io/pause@{DIGEST}
"
        );
        let manifest = parse(&text).unwrap();
        assert_eq!(manifest.path, Path::new("platform.yaml"));
        assert_eq!(
            manifest.metadata,
            Metadata {
                name: "platform".into(),
                version: "2026.11.0".into()
            }
        );
        assert_eq!(manifest.spec.platforms, vec![p("linux/amd64")]);
        let images: Vec<(String, Vec<Platform>, Location)> = manifest
            .spec
            .images
            .into_iter()
            .map(|i| (i.reference.to_string(), i.platforms, i.location))
            .collect();
        assert_eq!(
            images,
            vec![
                (
                    "quay.io/cilium/cilium:v1.16.5".to_owned(),
                    vec![p("linux/amd64")],
                    Location { line: 7, column: 7 }
                ),
                (
                    "docker.io/library/redis:7.4".to_owned(),
                    vec![p("linux/amd64"), p("linux/arm64")],
                    Location {
                        line: 8,
                        column: 12
                    }
                ),
                (
                    format!("registry.k8s.io/pause@{DIGEST}"),
                    vec![p("linux/amd64")],
                    Location {
                        line: 10,
                        column: 12
                    }
                ),
            ]
        );
    }

    #[test]
    fn defaults() {
        let manifest = parse(&format!("{HEAD}spec: {{}}\n")).unwrap();
        assert_eq!(manifest.spec.platforms, vec![p("linux/amd64")]);
        assert!(manifest.spec.images.is_empty());

        let manifest = parse(&format!("{HEAD}spec:\n  images: []\n")).unwrap();
        assert!(manifest.spec.images.is_empty());

        // The spec default applies to entries without platforms of their own.
        let manifest = parse(&format!(
            "{HEAD}spec:\n  platforms: [linux/arm64, linux/armhf]\n  images: [redis]\n"
        ))
        .unwrap();
        assert_eq!(
            manifest.spec.images[0].platforms,
            vec![p("linux/arm64"), p("linux/arm/v7")]
        );
    }

    #[test]
    fn unquoted_numbers_stay_as_written() {
        let text = "apiVersion: ferry.dev/v1\nkind: Release\nmetadata:\n  name: platform\n  version: 2026.10\nspec: {}\n";
        assert_eq!(parse(text).unwrap().metadata.version, "2026.10");
    }

    #[test]
    fn load_reads_the_file_and_names_it() {
        let dir = std::env::temp_dir().join(format!("ferry-manifest-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("platform.yaml");
        std::fs::write(&file, format!("{HEAD}spec:\n  images: [redis]\n")).unwrap();
        let manifest = Manifest::load(&file).unwrap();
        assert_eq!(manifest.path, file);
        assert_eq!(manifest.spec.images.len(), 1);

        let missing = dir.join("missing.yaml");
        let error = Manifest::load(&missing).unwrap_err();
        assert!(matches!(error, ManifestError::Read { .. }));
        assert_eq!(error.location(), None);
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}: cannot read manifest: ", missing.display()))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_field_at_top_level() {
        let e = err(&format!("{HEAD}spec: {{}}\nimages: []\n"));
        assert_snapshot!(e, @r#"platform.yaml:5:1: unknown field "images"; remove it (allowed here: apiVersion, kind, metadata, spec)"#);
        let e = err("apiVersion: ferry.dev/v1\nkinds: Release\n");
        assert_snapshot!(e, @r#"platform.yaml:2:1: unknown field "kinds"; did you mean "kind"? (allowed here: apiVersion, kind, metadata, spec)"#);
    }

    #[test]
    fn unknown_field_in_metadata_and_spec() {
        let e = err(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata:\n  name: platform\n  labels: {}\n",
        );
        assert_snapshot!(e, @r#"platform.yaml:5:3: unknown field "labels"; remove it (allowed here: name, version)"#);
        let e = err(&format!("{HEAD}spec:\n  image: []\n"));
        assert_snapshot!(e, @r#"platform.yaml:5:3: unknown field "image"; did you mean "images"? (allowed here: platforms, images, files, charts, apt, kubernetes, referrers, verify, git, trees)"#);
    }

    #[test]
    fn unknown_field_in_an_image_entry() {
        let e = err(&format!(
            "{HEAD}spec:\n  images:\n    - ref: redis\n      platform: [linux/arm64]\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:7:7: unknown field "platform"; did you mean "platforms"? (allowed here: ref, platforms, referrers)"#);
        let e = err(&format!(
            "{HEAD}spec:\n  images:\n    - {{ref: redis, pull: always}}\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:6:20: unknown field "pull"; remove it (allowed here: ref, platforms, referrers)"#);
    }

    #[test]
    fn bad_reference() {
        let e = err(&format!(
            "{HEAD}spec:\n  images:\n    - quay.io/cilium/cilium:v1.16.5\n    - Redis:7\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:7:7: invalid image reference "Redis:7": repository name must be lowercase"#);
        let e = err(&format!(
            "{HEAD}spec:\n  images:\n    - ref: \"redis@sha512:{}\"\n",
            "ab".repeat(64)
        ));
        assert_snapshot!(e, @r#"platform.yaml:6:12: invalid image reference "redis@sha512:abababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababababab": unsupported digest algorithm "sha512": only sha256 digests are supported"#);
    }

    #[test]
    fn bad_platform_in_spec() {
        let e = err(&format!(
            "{HEAD}spec:\n  platforms: [linux/amd64, linx/arm64]\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:5:28: invalid platform "linx/arm64": unknown operating system "linx"; known: aix, android, darwin, dragonfly, freebsd, hurd, illumos, ios, js, linux, nacl, netbsd, openbsd, plan9, solaris, windows, zos"#);
        let e = err(&format!(
            "{HEAD}spec:\n  platforms:\n    - linux/amd64\n    - amd64\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:7:7: invalid platform "amd64": expected os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7"#);
    }

    #[test]
    fn bad_platform_in_an_entry() {
        let e = err(&format!(
            "{HEAD}spec:\n  images:\n    - ref: redis\n      platforms: [linux/arm/v9]\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:7:19: invalid platform "linux/arm/v9": unknown variant "v9" for architecture arm; known: v5, v6, v7, v8"#);
    }

    #[test]
    fn empty_and_duplicate_platforms() {
        let e = err(&format!("{HEAD}spec:\n  platforms: []\n"));
        assert_snapshot!(e, @"platform.yaml:5:14: spec.platforms is empty; list at least one platform, or remove spec.platforms to use linux/amd64");
        let e = err(&format!(
            "{HEAD}spec:\n  images:\n    - ref: redis\n      platforms: []\n"
        ));
        assert_snapshot!(e, @"platform.yaml:7:18: platforms is empty; list at least one platform, or remove platforms to use spec.platforms");
        let e = err(&format!(
            "{HEAD}spec:\n  platforms: [linux/amd64, linux/x86_64]\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:5:28: platform "linux/x86_64" (linux/amd64) is already listed at line 5, column 15; remove one"#);
    }

    #[test]
    fn yaml_syntax_error() {
        let e = err(&format!(
            "{HEAD}spec:\n  images:\n    - ref: redis\n      platforms: [linux/amd64\n"
        ));
        assert_snapshot!(e, @"platform.yaml:7:18: invalid YAML: unclosed bracket '['");
        // Reported as a syntax error even though an unknown field comes first.
        let e = err("apiVersion: ferry.dev/v1\nkindx: Release\nmetadata: {name: x\n");
        assert_snapshot!(e, @"platform.yaml:3:11: invalid YAML: unclosed bracket '{'");
        let e = err(&format!("{HEAD}spec:\n  images: []\n  images: []\n"));
        assert_snapshot!(e, @"platform.yaml:6:3: invalid YAML: duplicate mapping key `images` is not allowed here");
    }

    #[test]
    fn duplicate_image() {
        let e = err(&format!(
            "{HEAD}spec:\n  images:\n    - redis:7.4\n    - quay.io/cilium/cilium:v1.16.5\n    - ref: docker.io/library/redis:7.4\n      platforms: [linux/arm64]\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:8:12: duplicate image "docker.io/library/redis:7.4", first listed at line 6; remove one entry, or merge their platforms into one"#);
        // Tag `latest` is implied, so these are the same image.
        let e = err(&format!(
            "{HEAD}spec:\n  images: [redis, \"index.docker.io/library/redis:latest\"]\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:5:19: duplicate image "index.docker.io/library/redis:latest" (docker.io/library/redis:latest), first listed at line 5, column 12; remove one entry, or merge their platforms into one"#);
    }

    #[test]
    fn wrong_api_version_and_kind() {
        let e = err(
            "apiVersion: ferry.dev/v1\nkind: Bundle\nmetadata: {name: platform, version: \"1\"}\nspec: {}\n",
        );
        assert_snapshot!(e, @r#"platform.yaml:2:7: unsupported kind "Bundle"; a ferry manifest has kind "Release""#);
        let e = err("apiVersion: ferry.dev/v2\nkind: Release\n");
        assert_snapshot!(e, @r#"platform.yaml:1:13: unsupported apiVersion "ferry.dev/v2"; this ferry reads only "ferry.dev/v1""#);
        let e = err("kind: Release\n");
        assert_snapshot!(e, @"platform.yaml:1:1: apiVersion is missing; add `apiVersion: ferry.dev/v1` at the top");
    }

    #[test]
    fn missing_metadata_fields() {
        let e =
            err("apiVersion: ferry.dev/v1\nkind: Release\nmetadata:\n  name: platform\nspec: {}\n");
        assert_snapshot!(e, @r#"platform.yaml:4:3: metadata.version is missing; add the release version, e.g. `version: "2026.11.0"`"#);
        let e =
            err("apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {version: \"1\"}\nspec: {}\n");
        assert_snapshot!(e, @"platform.yaml:3:11: metadata.name is missing; add the release name, e.g. `name: platform`");
        let e = err("apiVersion: ferry.dev/v1\nkind: Release\nspec: {}\n");
        assert_snapshot!(e, @"platform.yaml:1:1: metadata is missing; add `metadata: {name: <release name>, version: <release version>}`");
        let e = err(
            "apiVersion: ferry.dev/v1\nkind: Release\nmetadata: {name: my release, version: \"1\"}\nspec: {}\n",
        );
        assert_snapshot!(e, @r#"platform.yaml:3:18: invalid metadata.name "my release": use 1 to 128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"#);
        let e = err(HEAD);
        assert_snapshot!(e, @"platform.yaml:1:1: spec is missing; add `spec:` with the content of the release, e.g. `images: [...]`");
    }

    #[test]
    fn missing_ref_and_wrong_shapes() {
        let e = err(&format!(
            "{HEAD}spec:\n  images:\n    - platforms: [linux/amd64]\n"
        ));
        assert_snapshot!(e, @"platform.yaml:6:7: ref is missing; add the image reference, e.g. `ref: docker.io/library/redis:7.4`");
        let e = err(&format!("{HEAD}spec:\n  images: redis\n"));
        assert_snapshot!(e, @"platform.yaml:5:11: expected a list here");
        let e = err(&format!("{HEAD}spec:\n  images:\n    - [redis]\n"));
        assert_snapshot!(e, @"platform.yaml:6:7: invalid type: sequence, expected an image reference, or a mapping with `ref` and `platforms`");
        let e = err("- redis\n");
        assert_snapshot!(e, @"platform.yaml:1:1: expected a mapping (key: value pairs) here");
    }

    #[test]
    fn empty_document() {
        assert_snapshot!(err(""), @"platform.yaml:1:1: manifest is empty; it needs apiVersion, kind, metadata and spec");
        assert_snapshot!(err("# nothing yet\n"), @"platform.yaml:1:1: manifest is empty; it needs apiVersion, kind, metadata and spec");
    }

    #[test]
    fn charts() {
        let manifest = parse(&format!(
            "{HEAD}spec:
  charts:
    - name: cilium
      repo: https://helm.cilium.io/
      version: 1.16.5
    - ref: oci://registry-1.docker.io/bitnamicharts/redis
      version: \">=20.6.0 <21\"
    - {{name: demo, repo: \"http://127.0.0.1:8080/charts\", version: ~1.2}}
"
        ))
        .unwrap();
        let charts: Vec<(ChartSource, &str, &str, Location, String)> = manifest
            .spec
            .charts
            .iter()
            .map(|c| {
                (
                    c.source.clone(),
                    c.name.as_str(),
                    c.version.as_str(),
                    c.location,
                    c.key(),
                )
            })
            .collect();
        assert_eq!(
            charts,
            vec![
                (
                    ChartSource::Repo("https://helm.cilium.io".into()),
                    "cilium",
                    "1.16.5",
                    Location { line: 6, column: 7 },
                    "https://helm.cilium.io/cilium".into()
                ),
                (
                    ChartSource::Oci("registry-1.docker.io/bitnamicharts/redis".into()),
                    "redis",
                    ">=20.6.0 <21",
                    Location { line: 9, column: 7 },
                    "oci://registry-1.docker.io/bitnamicharts/redis".into()
                ),
                (
                    ChartSource::Repo("http://127.0.0.1:8080/charts".into()),
                    "demo",
                    "~1.2",
                    Location {
                        line: 11,
                        column: 7
                    },
                    "http://127.0.0.1:8080/charts/demo".into()
                ),
            ]
        );
    }

    #[test]
    fn chart_render_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("values")).unwrap();
        std::fs::write(
            dir.path().join("values/a.yaml"),
            "# comment\nimage:\n  tag: \"1.2\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("values/list.yaml"), "- a\n").unwrap();
        let path = dir.path().join("m.yaml");
        let parse = |charts: &str| {
            Manifest::parse(
                &format!("{HEAD}spec:\n  kubernetes: {{version: v1.36.4}}\n  charts:\n{charts}"),
                &path,
            )
        };
        let m = parse("    - {name: app, repo: https://x.io, version: 1.0.0, releaseName: web, namespace: apps, valuesFiles: [values/a.yaml], values: {replicas: 2}}\n").unwrap();
        let chart = &m.spec.charts[0];
        assert_eq!(
            (chart.release_name.as_str(), chart.namespace.as_str()),
            ("web", "apps")
        );
        assert_eq!(m.spec.kubernetes.version, "1.36.4");
        assert_eq!(chart.values.len(), 2);
        assert_eq!(chart.values[0].source, "values/a.yaml");
        assert_eq!(
            chart.values[0].values,
            serde_json::json!({"image": {"tag": "1.2"}})
        );
        assert_eq!(chart.values[1].source, "values");
        let m = parse("    - {name: app, repo: https://x.io, version: 1.0.0}\n").unwrap();
        assert_eq!(m.spec.charts[0].release_name, "app");
        assert_eq!(m.spec.charts[0].namespace, DEFAULT_NAMESPACE);

        let e = |charts: &str| {
            parse(charts)
                .unwrap_err()
                .to_string()
                .replace(&path.display().to_string(), "m.yaml")
        };
        assert!(e("    - {name: app, repo: https://x.io, version: 1.0.0, valuesFiles: [values/none.yaml]}\n")
            .contains("cannot read values file"));
        assert!(e("    - {name: app, repo: https://x.io, version: 1.0.0, valuesFiles: [values/list.yaml]}\n")
            .contains("values/list.yaml is not valid: it is not a mapping of values"));
        assert!(
            e("    - {name: app, repo: https://x.io, version: 1.0.0, values: [1]}\n")
                .starts_with("m.yaml:7:")
        );
        assert!(
            e("    - {name: app, repo: https://x.io, version: 1.0.0, releaseName: Web}\n")
                .contains("invalid releaseName \"Web\"")
        );
        let bad_kube = Manifest::parse(
            &format!("{HEAD}spec:\n  kubernetes: {{version: \"1.36.4+k3s1\"}}\n"),
            &path,
        )
        .unwrap_err()
        .to_string();
        assert!(bad_kube.contains("without +k3s1"), "{bad_kube}");
    }

    #[test]
    fn bad_charts() {
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - {{name: cilium, repo: https://helm.cilium.io, version: 1.16.5, ref: oci://a.io/b/c}}\n"
        ));
        assert_snapshot!(e, @"platform.yaml:6:74: give either `repo` (an HTTP chart repository) or `ref` (oci://...), not both");
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - name: cilium\n      version: 1.16.5\n"
        ));
        assert_snapshot!(e, @"platform.yaml:6:7: repo is missing; add `repo: https://...` (an HTTP chart repository) with `name`, or `ref: oci://host/path/name`");
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - repo: https://helm.cilium.io\n      version: 1.16.5\n"
        ));
        assert_snapshot!(e, @"platform.yaml:6:7: name is missing; add the chart's name in the repository, e.g. `name: cilium`");
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - repo: https://helm.cilium.io\n      name: cilium\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:6:7: version is missing; add the chart version: exact (`version: 1.16.5`) or a Helm range (`version: "~1.16"`)"#);
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - repo: https://helm.cilium.io\n      name: cilium\n      version: \">= 1.16 junk\"\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:8:16: ">= 1.16 junk" is not a Helm version constraint (improper constraint ">= 1.16 junk"); write an exact version (1.16.5) or a range such as ">=1.16.0 <1.17.0", "~1.16", "^1.16", "1.16.x""#);
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - ref: oci://ghcr.io/x/redis:1.0\n      version: 1.0\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:6:12: chart reference "oci://ghcr.io/x/redis:1.0" has a tag; write the version in `version`, e.g. `ref: oci://ghcr.io/x/redis` and `version: 1.0`"#);
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - repo: ftp://x.io\n      name: a\n      version: 1.0.0\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:6:13: chart repository "ftp://x.io" is not http(s); for an OCI registry write `ref: oci://host/path/name` instead of `repo`"#);
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - repo: https://x.io\n      name: ../a\n      version: 1.0.0\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:7:13: invalid chart name "../a": use 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit"#);
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - {{repo: https://x.io, name: a, version: 1.0.0}}\n    - {{repo: \"https://x.io/\", name: a, version: 2.0.0}}\n"
        ));
        assert_snapshot!(e, @"platform.yaml:7:7: duplicate chart https://x.io/a, first listed at line 6; a release carries one version of a chart: remove one entry");
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - {{repo: https://x.io, name: a, versions: 1.0.0}}\n"
        ));
        assert_snapshot!(e, @r#"platform.yaml:6:37: unknown field "versions"; did you mean "version"? (allowed here: name, repo, ref, version, releaseName, namespace, values, valuesFiles)"#);
        let e = err(&format!("{HEAD}spec:\n  charts:\n    - cilium\n"));
        assert_snapshot!(e, @r#"platform.yaml:6:7: invalid type: string "cilium", expected a mapping with `name` and `repo` (HTTP chart repository) or `ref` (oci://...), and `version`"#);
        let e = err(&format!(
            "{HEAD}spec:\n  charts:\n    - {{ref: oci://a.io/b/c, name: c, version: 1.0.0}}\n"
        ));
        assert_snapshot!(e, @"platform.yaml:6:35: `name` is not used with `ref`: the chart's name is the last part of the oci:// reference; remove `name`");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("plattforms", &["ref", "platforms"]),
            Some("platforms")
        );
        assert_eq!(
            closest("APIVERSION", &["apiVersion", "kind"]),
            Some("apiVersion")
        );
        assert_eq!(closest("zzz", &["ref", "platforms"]), None);
        assert_eq!(closest("x", &["ref"]), None);
    }
}
