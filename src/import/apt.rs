//! `ferry import apt`: verify the bundle, then write (or add to) a signed apt mirror.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::ImportAptArgs;
use crate::destination::apt::{self, KEYRING_FILE, SOURCES_FILE, WriteReport};
use crate::layout::graph::walk;
use crate::layout::verify::read_verified_index;
use crate::openpgp::SiteKey;
use crate::progress::Ui;

/// What `ferry import apt` did.
#[derive(Serialize)]
pub struct Imported {
    /// The mirror directory.
    pub mirror: String,
    /// Its suites.
    pub suites: Vec<String>,
    /// Packages and pool files.
    #[serde(flatten)]
    pub report: WriteReport,
    /// The ferry.sources written beside the mirror.
    pub sources_file: String,
    /// The keyring written beside the mirror.
    pub keyring: String,
    /// The site key's fingerprint.
    pub fingerprint: String,
    /// Time taken.
    pub seconds: f64,
}

/// Loads the site's apt signing key, with the password from the environment.
pub fn load_site_key(path: &Path) -> anyhow::Result<SiteKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read apt signing key {}", path.display()))?;
    let password = crate::bundle::key_password()?;
    Ok(SiteKey::from_armored(
        &text,
        &password,
        &path.display().to_string(),
    )?)
}

/// Checks a suite name given on the command line (it becomes a directory name).
pub fn check_suite(suite: Option<&str>) -> anyhow::Result<()> {
    if let Some(s) = suite
        && (s.is_empty()
            || s.starts_with('.')
            || !s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'~')
            }))
    {
        bail!("invalid suite name {s:?}: use letters, digits, '.', '_', '-', '+' or '~'");
    }
    Ok(())
}

/// Where and how to write the mirror, for [`import`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The mirror directory.
    pub to: std::path::PathBuf,
    /// One suite for everything.
    pub suite: Option<String>,
    /// The URL hosts reach the mirror at [default: file://DIR].
    pub url: Option<String>,
}

/// Writes (or adds to) the apt mirror from a verified bundle, signed with `site`.
pub fn import(
    ui: &Ui,
    layout: &crate::layout::Layout,
    key: Option<&crate::sign::VerifyingKey>,
    site: &SiteKey,
    options: &Options,
    source: &Path,
) -> anyhow::Result<Imported> {
    let started = Instant::now();
    let (_, index) = read_verified_index(layout, key)?;
    let walked = walk(layout, &index);
    let new = apt::from_bundle(layout, &walked.entries, options.suite.as_deref())
        .with_context(|| format!("cannot read the apt packages of {}", source.display()))?;
    if new.packages.is_empty() {
        bail!(
            "{} carries no apt packages (its manifest had no spec.apt); nothing was written",
            source.display()
        );
    }
    let root = &options.to;
    // A delta's packages left to its base must already be in the mirror's pool.
    let missing: Vec<String> = new
        .packages
        .iter()
        .filter(|p| !layout.has_blob(&p.digest))
        .filter(|p| !crate::layout::delta::file_holds(&root.join(&p.pool_path), &p.digest, p.size))
        .map(|p| format!("{} {} ({})", p.package, p.version, p.pool_path))
        .collect();
    if !missing.is_empty() {
        bail!(crate::layout::delta::missing_base_message(root, &missing));
    }
    // The packages not in the pool yet, and room for the indexes beside them.
    let needed: u64 = new
        .packages
        .iter()
        .filter(|p| {
            std::fs::metadata(root.join(&p.pool_path))
                .map(|m| m.len())
                .ok()
                != Some(p.size)
        })
        .map(|p| p.size)
        .sum();
    if needed > 0 {
        crate::fsutil::ensure_space(
            root,
            needed,
            &format!("the apt packages for the mirror {}", root.display()),
        )?;
    }
    apt::prepare(root)
        .with_context(|| format!("cannot create mirror directory {}", root.display()))?;
    let old = apt::from_directory(root)
        .with_context(|| format!("cannot merge with what {} holds", root.display()))?;
    let kept = old.packages.len();
    let merged = apt::merge(old, new.clone())
        .with_context(|| format!("cannot merge the bundle into {}", root.display()))?;
    let mut report = WriteReport::default();
    apt::copy_pool(layout, root, &new, &mut report)
        .with_context(|| format!("cannot fill the pool of {}", root.display()))?;
    let rendered = apt::render(&merged, site, crate::time::now_secs())?;
    apt::write_indexes(root, &rendered)
        .with_context(|| format!("cannot write the indexes of {}", root.display()))?;
    report.packages = merged.packages.len();

    let absolute = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
    let url = options
        .url
        .clone()
        .unwrap_or_else(|| format!("file://{}", absolute.display()));
    let keyring = root.join(KEYRING_FILE);
    apt::write_public(&keyring, &site.public_binary()?)?;
    let sources = root.join(SOURCES_FILE);
    apt::write_public(
        &sources,
        apt::sources_file(&url, &rendered.suites).as_bytes(),
    )?;
    if kept > 0 {
        ui.status(format!(
            "merged with the {kept} package entries {} already held",
            root.display()
        ));
    }
    Ok(Imported {
        mirror: root.display().to_string(),
        suites: rendered.suites.keys().cloned().collect(),
        report,
        sources_file: sources.display().to_string(),
        keyring: keyring.display().to_string(),
        fingerprint: site.fingerprint(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `ferry import apt` whole: the suite and the site key checked (a wrong password fails before
/// the bundle is read), the bundle opened and verified, the mirror written.
pub fn run(ui: &Ui, args: &ImportAptArgs) -> anyhow::Result<Imported> {
    check_suite(args.suite.as_deref())?;
    let site = load_site_key(&args.signing_key)?;
    let (layout, key) = crate::bundle::open_verified(ui, &args.source, &args.volumes, &args.trust)?;
    import(
        ui,
        &layout,
        key.as_ref(),
        &site,
        &Options {
            to: args.to.clone(),
            suite: args.suite.clone(),
            url: args.url.clone(),
        },
        &args.source,
    )
}
