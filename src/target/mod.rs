//! Targets: transports that take content from the store to a site's systems.

pub mod registry;
