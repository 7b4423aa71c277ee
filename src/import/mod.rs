//! The imports of a bundle into one destination each (`ferry import registry|charts|files|apt|
//! git|trees`, `ferry registries-config`): open and verify the bundle, then fill the
//! destination. The site import ([`crate::site`]) reuses their plans and reports.

pub mod apt;
pub mod charts;
pub mod files;
pub mod git;
pub mod registries_config;
pub mod registry;
pub mod trees;
