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

/// Reads the password for a private key from the environment.
pub fn key_password() -> anyhow::Result<String> {
    crate::sign::password_from_env().ok_or_else(|| {
        anyhow::anyhow!(
            "no key password: set FERRY_KEY_PASSWORD (or COSIGN_PASSWORD) to the password of cosign.key"
        )
    })
}

/// Loads and decrypts a cosign.key.
pub fn load_signing_key(path: &std::path::Path) -> anyhow::Result<crate::sign::SigningKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read private key {}", path.display()))?;
    let password = key_password()?;
    crate::sign::SigningKey::from_encrypted_pem(&pem, password.as_bytes())
        .with_context(|| format!("cannot use private key {}", path.display()))
}

/// The key a bundle must be signed with, from `--key` / `--no-signature` (None: not checked).
pub fn trust_key(
    trust: &crate::cli::TrustArgs,
) -> anyhow::Result<Option<crate::sign::VerifyingKey>> {
    match (&trust.key, trust.no_signature) {
        (Some(path), false) => Ok(Some(load_verifying_key(path)?)),
        (None, true) => Ok(None),
        (Some(_), true) => anyhow::bail!("give either --key or --no-signature, not both"),
        (None, false) => anyhow::bail!(
            "give the public key the bundle must be signed with (--key cosign.pub), or --no-signature"
        ),
    }
}

/// Loads a cosign.pub.
pub fn load_verifying_key(path: &std::path::Path) -> anyhow::Result<crate::sign::VerifyingKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read public key {}", path.display()))?;
    crate::sign::VerifyingKey::from_pem(&pem)
        .with_context(|| format!("cannot use public key {}", path.display()))
}

/// Checks a bundle's signature (said on the status line, or warned when `--no-signature`) and
/// walks its index; the first broken entry is an error, as nothing may be imported from a
/// bundle that does not hold together. For the imports (`import registry`, `import --site`).
pub fn verified_entries(
    ui: &crate::progress::Ui,
    layout: &crate::layout::Layout,
    key: Option<&crate::sign::VerifyingKey>,
) -> anyhow::Result<(crate::layout::oci::Index, Vec<crate::layout::graph::Entry>)> {
    // The signature first: index.json is the root of every digest that follows, and every
    // manifest is checked against it as it is read.
    let (_, index) = crate::layout::verify::read_verified_index(layout, key)?;
    match key {
        Some(k) => ui.status(format!(
            "signature OK: {} signed by {}",
            layout.root().join("index.json").display(),
            k.fingerprint()
        )),
        None => ui.warn(format!(
            "{}: signature NOT checked (--no-signature)",
            layout.root().display()
        )),
    }
    let walked = crate::layout::graph::walk(layout, &index);
    if let Some(broken) = walked.broken.into_iter().next() {
        anyhow::bail!(
            "{}: {} ({}); nothing was imported. Run `ferry verify` for a full report and copy the bundle again",
            layout.root().display(),
            broken.error,
            broken.reference
        );
    }
    Ok((index, walked.entries))
}

/// Opens a bundle given on the command line: a layout directory, or packed volumes read in
/// place. `all_volumes`: the command reads blobs, so without `--wait` (or a terminal) every
/// volume must be there before anything starts, and a missing one is named up front.
pub fn open_bundle(
    source: &std::path::Path,
    volumes: &crate::cli::VolumeArgs,
    ui: &crate::progress::Ui,
    all_volumes: bool,
) -> anyhow::Result<crate::layout::Layout> {
    use crate::archive::volumes::{VolumeEvent, VolumeOptions, VolumeSet, is_packed_source};
    use std::io::IsTerminal;
    if crate::layout::s3_location(source)?.is_some() {
        return Ok(crate::layout::Layout::open(source)?);
    }
    if !source.exists() {
        anyhow::bail!(
            "{}: no such bundle directory or volume; give the directory `ferry build` wrote, or a volume `ferry pack` wrote",
            source.display()
        );
    }
    if !is_packed_source(source) {
        return Ok(crate::layout::Layout::open(source)?);
    }
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let status = ui.clone();
    let options = VolumeOptions {
        dir: volumes.volumes_dir.clone(),
        wait: volumes.wait || interactive,
        observer: Some(std::sync::Arc::new(
            move |event: &VolumeEvent| match event {
                VolumeEvent::Waiting {
                    number,
                    count,
                    file,
                    dir,
                } => {
                    let of = if *count > 0 {
                        format!(" of {count}")
                    } else {
                        String::new()
                    };
                    status.warn(format!(
                    "volume {number}{of} is needed: insert the medium holding {file} (looking in {}); waiting, Ctrl-C to stop",
                    dir.display()
                ));
                }
                VolumeEvent::Reading {
                    number,
                    count,
                    path,
                } => status.status(format!(
                    "reading volume {number} of {count}: {}",
                    path.display()
                )),
            },
        )),
        poll: None,
    };
    let set = VolumeSet::open(source, options)
        .with_context(|| format!("cannot read the packed bundle {}", source.display()))?;
    if all_volumes {
        set.require_all()?;
    }
    Ok(crate::layout::Layout::packed(std::sync::Arc::new(set)))
}
