//! `ferry install SOURCE --site site.yaml`: `import --site`, then check that the site is
//! ready (every image, chart, apt suite and K3s file where the cluster will look for it),
//! then run the site's install command with the rendered files in its environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde::Serialize;

use super::site::{Prepared, Summary, install_env, install_workdir, shell_words};
use crate::cli::InstallArgs;
use crate::destination::registry::RegistryTarget;
use crate::layout::files::{self, BundleFile};
use crate::progress::{OutputFormat, Ui};

/// One readiness check.
#[derive(Serialize)]
pub struct Check {
    /// `registry`, `charts`, `apt` or `files`.
    pub target: String,
    /// What was checked.
    pub checked: usize,
    /// What is missing or wrong (empty: ready).
    pub problems: Vec<String>,
}

/// What `ferry install` did.
#[derive(Serialize)]
pub struct Installed {
    /// The import.
    pub import: Summary,
    /// The readiness checks.
    pub checks: Vec<Check>,
    /// The command run.
    pub command: Vec<String>,
    /// Where.
    pub workdir: String,
    /// Its environment (the FERRY_* variables).
    pub env: BTreeMap<String, String>,
    /// Its exit code (None: killed by a signal).
    pub exit_code: Option<i32>,
}

/// Runs `ferry install`.
pub async fn run(ui: &Ui, args: &InstallArgs) -> anyhow::Result<()> {
    let p = super::site::prepare(ui, &args.source, &args.site, &args.run, true).await?;
    if args.run.dry_run {
        let plan = super::site::plan(&p, true);
        ui.result(&plan, || super::site::plan_text(&plan));
        return Ok(());
    }
    let summary = super::site::import_all(ui, &p, args.run.jobs as usize).await?;
    if ui.format() == OutputFormat::Text {
        eprint!("{}", super::site::summary_text(&summary));
    }
    let checks = readiness(ui, &p, args.run.jobs as usize).await?;
    let failed: Vec<String> = checks
        .iter()
        .flat_map(|c| c.problems.iter().map(move |m| format!("{}: {m}", c.target)))
        .collect();
    if !failed.is_empty() {
        bail!(
            "the site is not ready, so the install command was not run:\n  - {}",
            failed.join("\n  - ")
        );
    }
    for c in &checks {
        ui.status(format!("ready: {} ({} checked)", c.target, c.checked));
    }
    let install = p.site.install.as_ref().expect("checked by prepare");
    let rendered: Vec<&str> = summary.rendered.iter().map(|r| r.name.as_str()).collect();
    let env = install_env(&p, &rendered);
    let workdir = install_workdir(&p);
    let mut program = std::path::PathBuf::from(&install.command[0]);
    if program.is_relative() && program.components().count() > 1 {
        program = workdir.join(program);
    }
    ui.status(format!(
        "running {} in {}",
        shell_words(&install.command),
        workdir.display()
    ));
    let mut command = std::process::Command::new(&program);
    command
        .args(&install.command[1..])
        .current_dir(&workdir)
        .envs(&env)
        .stdin(Stdio::inherit());
    if ui.format() == OutputFormat::Json {
        // Standard output carries the one JSON document; the command's goes to stderr.
        use std::os::fd::AsFd;
        let err = std::io::stderr().as_fd().try_clone_to_owned()?;
        command.stdout(Stdio::from(err));
    }
    let status = command.status().with_context(|| {
        format!(
            "cannot run the install command {} in {}",
            shell_words(&install.command),
            workdir.display()
        )
    })?;
    let result = Installed {
        import: summary,
        checks,
        command: install.command.clone(),
        workdir: workdir.display().to_string(),
        env,
        exit_code: status.code(),
    };
    let exit = match status.code() {
        Some(c) => c.to_string(),
        None => format!("no code ({status})"),
    };
    ui.result(&result, || {
        format!(
            "install command {} exited with {exit}\n",
            shell_words(&result.command)
        )
    });
    if !status.success() {
        bail!(
            "the install command {} (in {}) failed: exit code {exit}; the site's targets are filled, so after fixing it run the same command again",
            shell_words(&install.command),
            workdir.display()
        );
    }
    Ok(())
}

/// Checks every target the site names against the bundle.
pub async fn readiness(ui: &Ui, p: &Prepared, jobs: usize) -> anyhow::Result<Vec<Check>> {
    let entries = &p.entries;
    let mut checks = Vec::new();
    if let Some(options) = super::site::registry_options(p, jobs) {
        ui.status("checking the registry");
        let plans = super::import_registry::plans(&options.target, entries.clone())?;
        let registry = RegistryTarget::connect(
            options.target.clone(),
            crate::distribution::RegistryOptions::from(&options.registry),
        )
        .await
        .with_context(|| format!("cannot reach {}", options.target))?;
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
        let charts =
            chart_repo::bundle_charts_over(&p.layout, entries, Some(&c.dir), &mut problems)?;
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
        let bundle_files: Vec<BundleFile> = entries
            .iter()
            .filter(|e| e.kind == files::KIND)
            .map(|e| files::read(&p.layout, e))
            .collect::<Result<_, _>>()?;
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
