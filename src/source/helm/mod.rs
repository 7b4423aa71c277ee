//! Helm charts: HTTP chart repositories and OCI registries, resolved by Helm's version rules,
//! stored as Helm OCI artifacts exactly as `helm push` makes them.

pub mod version;
