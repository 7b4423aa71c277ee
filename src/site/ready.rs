//! Step 7 of `ferry install`: the site is ready when every image and chart answers on the
//! registry, every chart is in the repository index, every apt suite verifies with the site
//! key, the airgap directory holds the bundle's K3s files, every git repository has the
//! bundle's refs naming the bundle's objects and every tree has the bundle's paths, kinds,
//! links and sizes (each file's digest was checked as the import wrote or found it). It
//! reuses what the import saw: the registry connection (probed once), the charts' Chart.yaml,
//! the bundle's files, repositories and trees.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use serde::Serialize;

use super::prepare::Prepared;
use super::targets::Seen;
use crate::destination::registry::RegistryTarget;
use crate::layout::files::{self, BundleFile};
use crate::progress::Ui;

/// One readiness check.
#[derive(Serialize)]
pub struct Check {
    /// `registry`, `charts`, `apt`, `files`, `git` or `trees`.
    pub target: String,
    /// What was checked.
    pub checked: usize,
    /// What is missing or wrong (empty: ready).
    pub problems: Vec<String>,
}

/// Checks every target the site names against the bundle.
pub async fn readiness(
    ui: &Ui,
    p: &Prepared,
    seen: &Seen,
    jobs: usize,
) -> anyhow::Result<Vec<Check>> {
    let entries = &p.entries;
    let mut checks = Vec::new();
    if let Some(options) = super::targets::registry_options(p, jobs) {
        ui.status("checking the registry");
        let plans = crate::import::registry::plans(&options.target, entries.clone())?;
        let known = seen
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let registry = match known {
            Some(r) => r,
            None => std::sync::Arc::new(
                RegistryTarget::connect(
                    options.target.clone(),
                    crate::distribution::RegistryOptions::from(&options.registry),
                )
                .await
                .with_context(|| format!("cannot reach {}", options.target))?,
            ),
        };
        let mut problems = Vec::new();
        for plan in &plans {
            let want = plan.entry.descriptor.digest.to_string();
            let at = plan
                .reference
                .tag()
                .map(str::to_string)
                .unwrap_or_else(|| want.clone());
            let name = format!("{}/{}:{at}", options.target.host, plan.repository);
            match registry.manifest_digest(&plan.repository, &at).await {
                Ok(d) if d == want => {}
                Ok(d) => problems.push(format!("{name} is {d}, the bundle has {want}")),
                Err(e) => problems.push(format!("{name} does not answer: {e}")),
            }
        }
        checks.push(Check {
            target: "registry".into(),
            checked: plans.len(),
            problems,
        });
    }
    if let Some(c) = &p.site.charts {
        use crate::destination::chart_repo;
        // A delta's charts left to its base are read from the repository itself.
        let mut problems = Vec::new();
        let known = seen.charts.lock().unwrap_or_else(|e| e.into_inner()).take();
        let charts = match known {
            Some(charts) => charts,
            None => {
                chart_repo::bundle_charts_over(&p.layout, entries, Some(&c.dir), &mut problems)?
            }
        };
        for missing in &mut problems {
            *missing = format!("{missing} is neither in the bundle nor in the repository");
        }
        let path = c.dir.join(chart_repo::INDEX_FILE);
        let listed_versions = match chart_repo::read_index(&path) {
            Ok((listed, _)) => listed,
            Err(e) => {
                problems.push(e.to_string());
                Default::default()
            }
        };
        if problems.is_empty() {
            for chart in &charts {
                let listed = listed_versions
                    .get(&chart.metadata.name)
                    .is_some_and(|versions| {
                        versions.iter().any(|v| {
                            v["version"] == chart.metadata.version.as_str()
                                && v["digest"] == chart.index_digest()
                        })
                    });
                if !listed {
                    problems.push(format!(
                        "{} {} is not in {}",
                        chart.metadata.name,
                        chart.metadata.version,
                        path.display()
                    ));
                }
            }
        }
        checks.push(Check {
            target: "charts".into(),
            checked: charts.len(),
            problems,
        });
    }
    if let (Some(a), Some(key)) = (&p.site.apt, &p.apt_key)
        && p.items_for("apt") > 0
    {
        checks.push(check_apt(&a.dir, key)?);
    }
    if let Some(f) = &p.site.files
        && let Some(dir) = &f.k3s_airgap_dir
    {
        let known = seen.files.lock().unwrap_or_else(|e| e.into_inner()).take();
        let bundle_files: Vec<BundleFile> = match known {
            Some(files) => files,
            None => entries
                .iter()
                .filter(|e| e.kind == files::KIND)
                .map(|e| files::read(&p.layout, e))
                .collect::<Result<_, _>>()?,
        };
        if !bundle_files.is_empty() {
            let layout = crate::destination::files::k3s_airgap(&bundle_files)?;
            let mut problems = Vec::new();
            for placement in &layout.placements {
                let path = dir.join(&placement.name);
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_file() && m.len() == placement.file.size => {}
                    Ok(m) => problems.push(format!(
                        "{} has {} bytes, the bundle's {} has {}",
                        path.display(),
                        m.len(),
                        placement.file.name,
                        placement.file.size
                    )),
                    Err(e) => problems.push(format!("{}: {e}", path.display())),
                }
            }
            checks.push(Check {
                target: "files".into(),
                checked: layout.placements.len(),
                problems,
            });
        }
    }
    if let Some(g) = &p.site.git
        && p.items_for("git") > 0
    {
        let known = seen.git.lock().unwrap_or_else(|e| e.into_inner()).take();
        let repos = match known {
            Some(repos) => repos,
            None => entries
                .iter()
                .filter(|e| e.kind == crate::layout::git::KIND)
                .map(|e| crate::layout::git::read(&p.layout, e))
                .collect::<Result<_, _>>()?,
        };
        let mut problems = Vec::new();
        for repo in &repos {
            problems.extend(crate::destination::git::ref_problems(repo, &g.dir));
        }
        checks.push(Check {
            target: "git".into(),
            checked: repos.iter().map(|r| r.config.refs.len()).sum(),
            problems,
        });
    }
    if let Some(t) = &p.site.trees
        && p.items_for("trees") > 0
    {
        let known = seen.trees.lock().unwrap_or_else(|e| e.into_inner()).take();
        let trees = match known {
            Some(trees) => trees,
            None => entries
                .iter()
                .filter(|e| e.kind == crate::layout::tree::KIND)
                .map(|e| crate::layout::tree::read(&p.layout, e))
                .collect::<Result<_, _>>()?,
        };
        let mut problems = Vec::new();
        for tree in &trees {
            let root = t.dir.join(&tree.config.name);
            problems.extend(crate::destination::trees::tree_problems(&root, tree));
        }
        checks.push(Check {
            target: "trees".into(),
            checked: trees.iter().map(|t| t.files.len()).sum(),
            problems,
        });
    }
    Ok(checks)
}

/// Every suite's InRelease (and Release with Release.gpg) verifies with the site key.
fn check_apt(root: &Path, key: &crate::openpgp::SiteKey) -> anyhow::Result<Check> {
    let keyring = crate::openpgp::Keyring::from_bytes(&key.public_binary()?, "the site key")?;
    let dists = root.join("dists");
    let mut problems = Vec::new();
    let mut checked = 0;
    let suites =
        std::fs::read_dir(&dists).with_context(|| format!("cannot read {}", dists.display()))?;
    for suite in suites {
        let suite = suite?.path();
        if !suite.is_dir() {
            continue;
        }
        checked += 1;
        let inrelease = suite.join("InRelease");
        match std::fs::read(&inrelease) {
            Ok(bytes) => {
                if let Err(e) = keyring.verify_cleartext(
                    &bytes,
                    &inrelease.display().to_string(),
                    SystemTime::now(),
                ) {
                    problems.push(format!("{}: {e}", inrelease.display()));
                }
            }
            Err(e) => problems.push(format!("{}: {e}", inrelease.display())),
        }
        let release = suite.join("Release");
        match (
            std::fs::read(&release),
            std::fs::read(suite.join("Release.gpg")),
        ) {
            (Ok(data), Ok(sig)) => {
                if let Err(e) = keyring.verify_detached(
                    &data,
                    &sig,
                    &release.display().to_string(),
                    SystemTime::now(),
                ) {
                    problems.push(format!("{}: {e}", release.display()));
                }
            }
            (Err(e), _) | (_, Err(e)) => problems.push(format!("{}(.gpg): {e}", release.display())),
        }
    }
    if checked == 0 {
        problems.push(format!("{} holds no suites", dists.display()));
    }
    Ok(Check {
        target: "apt".into(),
        checked,
        problems,
    })
}
