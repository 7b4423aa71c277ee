//! Targets: where an import puts a bundle's content. Nothing outside this module knows Harbor.

pub mod apt;
pub mod chart_repo;
pub mod files;
pub mod harbor;
pub mod registry;
pub mod site_config;
