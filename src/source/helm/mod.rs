//! Helm charts: HTTP chart repositories and OCI registries, resolved by Helm's version rules,
//! stored as Helm OCI artifacts exactly as `helm push` makes them.

pub mod version;
pub mod archive;
pub mod artifact;
pub mod gojson;
pub mod images;
pub mod metadata;
