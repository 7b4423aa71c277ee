//! TEMPORARY STUB until the manifest module lands.
pub mod lock;
pub mod platform;
pub mod reference;
use std::path::{Path, PathBuf};
pub const API_VERSION: &str = "ferry.dev/v1";
pub struct Manifest { pub path: PathBuf, pub metadata: Metadata, pub spec: Spec }
pub struct Metadata { pub name: String, pub version: String }
pub struct Spec { pub platforms: Vec<platform::Platform>, pub images: Vec<ImageSpec> }
pub struct ImageSpec { pub reference: reference::Reference, pub platforms: Vec<platform::Platform>, pub location: Location }
pub struct Location { pub line: usize, pub column: usize }
#[derive(Debug, thiserror::Error)] #[error("stub")] pub struct ManifestError;
impl Manifest { pub fn load(_path: &Path) -> Result<Manifest, ManifestError> { Err(ManifestError) } }
