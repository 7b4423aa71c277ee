//! Step 1 and 2 of a site import: check the whole site before any work, then open the bundle,
//! check its signature and read its small blobs (the index walked once: every manifest and
//! index, digests checked, kept for everyone after).

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::cli::SiteRunArgs;
use crate::distribution::{Probe, Scheme};
use crate::layout::Layout;
use crate::layout::graph::Entry;
use crate::openpgp::SiteKey;
use crate::progress::Ui;
use crate::site::Site;

/// The destinations, in the order they are published.
pub const ORDER: [&str; 6] = ["registry", "charts", "files", "apt", "git", "trees"];

/// A site checked and a bundle opened: everything an import needs, nothing done yet.
pub struct Prepared {
    /// The site file.
    pub site: Site,
    /// The bundle as given.
    pub source: PathBuf,
    /// The bundle.
    pub layout: Layout,
    /// The key it must be signed with (None: `--no-signature`).
    pub key: Option<crate::sign::VerifyingKey>,
    /// The apt signing key, loaded.
    pub apt_key: Option<std::sync::Arc<SiteKey>>,
    /// How the registry answered its one probe.
    pub probe: Option<Probe>,
    /// Where the configuration is rendered.
    pub out: PathBuf,
    /// The bundle's entries (its index walked once, signature checked).
    pub entries: Vec<Entry>,
    /// The index (for the delta list).
    pub index: crate::layout::oci::Index,
}

impl Prepared {
    fn count(&self, kind: &str) -> usize {
        self.entries.iter().filter(|e| e.kind == kind).count()
    }

    /// The scheme the registry answered on.
    pub fn scheme(&self) -> Option<Scheme> {
        self.probe.as_ref().map(|p| p.scheme)
    }

    /// The bundle entries a destination takes.
    pub fn items_for(&self, target: &str) -> usize {
        match target {
            "registry" => self.count("image") + self.count(crate::source::helm::KIND),
            "charts" => self.count(crate::source::helm::KIND),
            "files" => self.count(crate::layout::files::KIND),
            "apt" => self.count(crate::source::apt::KIND),
            "git" => self.count(crate::layout::git::KIND),
            "trees" => self.count(crate::layout::tree::KIND),
            _ => 0,
        }
    }

    /// Where a destination writes, for people.
    pub fn destination(&self, target: &str) -> Option<String> {
        let s = &self.site;
        match target {
            "registry" => s.registry.as_ref().map(|r| r.target.to_string()),
            "charts" => s.charts.as_ref().map(|c| c.dir.display().to_string()),
            "files" => s.files.as_ref().map(|f| match &f.k3s_airgap_dir {
                Some(a) => format!("{} (airgap_dir {})", f.dir.display(), a.display()),
                None => f.dir.display().to_string(),
            }),
            "apt" => s.apt.as_ref().map(|a| a.dir.display().to_string()),
            "git" => s.git.as_ref().map(|g| g.dir.display().to_string()),
            "trees" => s.trees.as_ref().map(|t| t.dir.display().to_string()),
            _ => None,
        }
    }

    /// The destinations the site names, in order.
    pub fn targets(&self) -> Vec<&'static str> {
        ORDER
            .into_iter()
            .filter(|t| self.destination(t).is_some())
            .collect()
    }
}

/// Checks the site file and everything it names (the registry probed, once), then opens the
/// bundle, checks its signature and walks its index: every problem found before any work is
/// listed in one error. `install`: the install step is checked too.
pub async fn prepare(
    ui: &Ui,
    source: &Path,
    site_path: &Path,
    run: &SiteRunArgs,
    install: bool,
) -> anyhow::Result<Prepared> {
    let site = Site::load(site_path)?;
    let key = crate::bundle::trust_key(&run.trust)?;
    let out = match &run.out {
        Some(o) => std::path::absolute(o).unwrap_or_else(|_| o.clone()),
        None => site.output.clone(),
    };
    let mut problems: Vec<String> = Vec::new();
    if install {
        match &site.install {
            None => problems.push(
                "spec.install is missing: `ferry install` runs its command; add `install: {command: [...]}` or use `ferry import --site`".into(),
            ),
            Some(i) => {
                if let Some(w) = &i.workdir
                    && !w.is_dir()
                {
                    problems.push(format!(
                        "spec.install.workdir: {} is not a directory",
                        w.display()
                    ));
                }
            }
        }
    }
    let mut apt_key = None;
    if let Some(apt) = &site.apt {
        if !apt.signing_key.is_file() {
            problems.push(format!(
                "spec.apt.signingKey: {} does not exist; give the secret key `ferry key generate --apt` wrote (ferry-apt-secret.asc)",
                apt.signing_key.display()
            ));
        } else {
            match crate::import::apt::load_site_key(&apt.signing_key) {
                Ok(k) => apt_key = Some(std::sync::Arc::new(k)),
                Err(e) => problems.push(format!("spec.apt.signingKey: {e:#}")),
            }
        }
    }
    if let Some(r) = &site.registry
        && let Some(ca) = &r.ca_file
        && !ca.is_file()
    {
        problems.push(format!(
            "spec.registry.caFile: {} does not exist",
            ca.display()
        ));
    }
    let mut dirs = site.directories();
    dirs.push((
        if run.out.is_some() {
            "--out"
        } else {
            "spec.output"
        },
        &out,
    ));
    for (field, dir) in dirs {
        if let Err(e) = crate::site::check_writable(dir) {
            problems.push(format!("{field}: {e}"));
        }
    }
    // The registry's one probe: its answer (scheme, how it wants requests authorized) is
    // what the import's connection and the readiness check use.
    let mut probe = None;
    if let Some(r) = &site.registry
        && r.ca_file.as_ref().is_none_or(|c| c.is_file())
    {
        let host = &r.target.host;
        match crate::distribution::read_ca_files(r.ca_file.as_slice()) {
            Err(e) => problems.push(format!("spec.registry.caFile: {e}")),
            Ok(certs) => {
                let plain_http_allowed = r.insecure || crate::distribution::is_loopback(host);
                match crate::distribution::probe(host, &certs, plain_http_allowed).await {
                    Ok(p) => probe = Some(p),
                    Err(e) => problems.push(format!(
                        "spec.registry.host: registry {host} does not answer: {e}. Check the host and port, that the registry runs, and caFile / insecure"
                    )),
                }
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} cannot be used, so nothing was done:\n  - {}",
            site.path.display(),
            problems.join("\n  - ")
        );
    }
    // Volumes are asked for later, each when the pass needs it: only volume 1 now.
    let layout = crate::bundle::open_bundle(source, &run.volumes, ui, false)?;
    let (index, entries) = crate::bundle::verified_entries(ui, &layout, key.as_ref())?;
    Ok(Prepared {
        site,
        source: source.to_path_buf(),
        layout,
        key,
        apt_key,
        probe,
        out,
        entries,
        index,
    })
}
