//! Sources: transports that bring content from upstream into the store.

pub mod apt;
pub mod cache;
pub mod file;
pub mod git;
pub mod helm;
pub mod http;
pub mod image;
pub mod referrers;
pub mod registry;
pub mod signatures;
pub mod tree;
