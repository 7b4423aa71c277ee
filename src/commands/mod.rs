//! One module per command: parse nothing, print results through [`crate::progress::Ui`].

pub mod apt;
pub mod build;
pub mod charts;
pub mod check;
pub mod diff;
pub mod docs;
pub mod files;
pub mod git;
pub mod import_apt;
pub mod import_charts;
pub mod import_files;
pub mod import_git;
pub mod import_registry;
pub mod import_trees;
pub mod inspect;
pub mod install;
pub mod key;
pub mod lock;
pub mod login;
pub mod pack;
pub mod registries_config;
pub mod sbom;
pub mod serve;
pub mod serve_apt;
pub mod sign;
pub mod site;
pub mod trees;
pub mod verify;

use std::collections::BTreeSet;

use anyhow::Context;

use crate::cli::RegistryArgs;
use crate::manifest::{ChartSource, Manifest};
use crate::source::registry::{RegistryOptions, RegistrySource};

/// The registries a command pulls from, connected on first use and shared from then on: each
/// host is asked `GET /v2/` once per command, whether lock, build or charts ask first.
pub struct Registries<'a> {
    hosts: BTreeSet<String>,
    args: &'a RegistryArgs,
    source: tokio::sync::OnceCell<RegistrySource>,
}

impl<'a> Registries<'a> {
    /// The registries of the manifest's images and `oci://` charts.
    pub fn for_manifest(manifest: &Manifest, args: &'a RegistryArgs) -> Registries<'a> {
        let images = manifest
            .spec
            .images
            .iter()
            .map(|spec| spec.reference.registry());
        let charts = manifest.spec.charts.iter().filter_map(|c| match &c.source {
            ChartSource::Oci(r) => Some(charts::oci_host(r)),
            ChartSource::Repo(_) => None,
        });
        Registries {
            hosts: images.chain(charts).map(str::to_string).collect(),
            args,
            source: tokio::sync::OnceCell::new(),
        }
    }

    /// The command line's registry options.
    pub fn args(&self) -> &'a RegistryArgs {
        self.args
    }

    /// The connection, made on the first call.
    pub async fn source(&self) -> anyhow::Result<&RegistrySource> {
        self.source
            .get_or_try_init(|| async {
                RegistrySource::connect(&self.hosts, RegistryOptions::from(self.args))
                    .await
                    .context("cannot prepare registry access")
            })
            .await
    }
}

pub use crate::bundle::{
    key_password, load_signing_key, load_verifying_key, open_bundle, trust_key, verified_entries,
};
