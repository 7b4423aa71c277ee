//! Targets: where an import puts a bundle's content. Nothing outside this module knows Harbor.

pub mod apt;
pub mod harbor;
pub mod registry;
