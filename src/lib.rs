//! ferry: carry a Kubernetes platform across an air gap in one signed OCI bundle.
//!
//! Layout follows DESIGN.md: sources and destinations are transports around one store
//! ([`layout`]); the manifest and lock say what a release holds ([`manifest`]).

pub mod archive;
pub mod auth;
pub mod bundle;
pub mod cli;
pub mod commands;
pub mod destination;
pub mod digest;
pub mod distribution;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod git_cli;
pub mod import;
pub mod layout;
pub mod manifest;
pub mod mapping;
pub mod openpgp;
pub mod progress;
pub mod retry;
pub mod s3;
pub mod sbom;
pub mod serve;
pub mod sign;
pub mod site;
pub mod source;
pub mod time;
