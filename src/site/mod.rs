//! `ferry install` and `ferry import --site`: one site, every destination, one pass over the
//! bundle. The steps, as README's "ferry install / import --site" tells them:
//!
//! 1. check the whole site first (the site file, keys, directories, the registry probed once);
//! 2. open the bundle: the signature, then the small blobs (index walked once, every manifest
//!    checked and kept);
//! 3. every destination plans: what it holds already, which blobs it still needs, every
//!    conflict found before a byte is read;
//! 4. one pass reads those blobs in the volumes' order (each volume asked for once, only those
//!    with work), checks each digest as it streams, and hands it to every destination that
//!    needs it ([`pass`]);
//! 5. each destination publishes, in order: registry manifests, chart index, SHA256SUMS, apt
//!    Release, git refs, trees swapped into place; nothing names a blob that did not check;
//! 6. the site configuration is rendered;
//! 7. (`install`) the site is checked ready, reusing what the import saw, and the install
//!    command runs.

mod file;
pub mod git_trees;
pub mod pass;
pub mod prepare;
pub mod ready;
pub mod report;
pub mod targets;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

pub use file::*;
pub use prepare::{ORDER, Prepared, prepare};
pub use ready::Check;
pub use report::{Plan, RenderedFile, Summary, TargetSummary, shell_words};

use crate::cli::SiteRunArgs;
use crate::digest::Digest;
use crate::progress::{OutputFormat, Ui, human_bytes};

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

/// `ferry import SOURCE --site site.yaml --dry-run` / `ferry install --dry-run`: steps 1 and
/// 2, then what would be done.
pub async fn dry_run(
    ui: &Ui,
    source: &Path,
    site: &Path,
    run: &SiteRunArgs,
    install: bool,
) -> anyhow::Result<Plan> {
    let p = prepare(ui, source, site, run, install).await?;
    Ok(report::plan(&p, install))
}

/// `ferry import SOURCE --site site.yaml`: steps 1 to 6.
pub async fn import(
    ui: &Ui,
    source: &Path,
    site: &Path,
    run: &SiteRunArgs,
) -> anyhow::Result<Summary> {
    let p = prepare(ui, source, site, run, false).await?;
    let seen = Arc::new(targets::Seen::default());
    import_prepared(ui, &p, &seen, run.jobs as usize).await
}

/// `ferry install SOURCE --site site.yaml`: steps 1 to 7. The summary of the import goes to
/// standard error in text mode before the install command runs.
pub async fn install(
    ui: &Ui,
    source: &Path,
    site: &Path,
    run: &SiteRunArgs,
) -> anyhow::Result<Installed> {
    let jobs = run.jobs as usize;
    let p = prepare(ui, source, site, run, true).await?;
    let seen = Arc::new(targets::Seen::default());
    let summary = import_prepared(ui, &p, &seen, jobs).await?;
    if ui.format() == OutputFormat::Text {
        eprint!("{}", report::summary_text(&summary));
    }
    let checks = ready::readiness(ui, &p, &seen, jobs).await?;
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
    run_install_command(ui, &p, summary, checks)
}

/// Before the pass: the bytes every destination will write, summed per file system, fit in
/// what is free there; otherwise nothing is read and the error says how much is missing.
fn check_disk_space(
    destinations: &[Arc<dyn pass::Destination>],
    sizes: &BTreeMap<Digest, u64>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // Keyed by device: two destinations on one disk share its free space.
    let mut by_device: BTreeMap<u64, (std::path::PathBuf, u64)> = BTreeMap::new();
    for destination in destinations {
        for (path, bytes) in destination.disk_needs(sizes) {
            let Some((_, existing)) = crate::fsutil::free_space(&path) else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&existing) else {
                continue;
            };
            let slot = by_device.entry(meta.dev()).or_insert((path, 0));
            slot.1 += bytes;
        }
    }
    for (path, bytes) in by_device.values() {
        crate::fsutil::ensure_space(path, *bytes, "the site's files and packages")?;
    }
    Ok(())
}

/// Steps 3 to 6 for a prepared site.
async fn import_prepared(
    ui: &Ui,
    p: &Prepared,
    seen: &Arc<targets::Seen>,
    jobs: usize,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let names = p.targets();
    // 3. Every destination plans; one that cannot be filled fails the run before any read.
    let mut planned: Vec<Option<Arc<dyn pass::Destination>>> = Vec::new();
    for target in &names {
        let to = p.destination(target).unwrap_or_default();
        if p.items_for(target) == 0 {
            ui.warn(format!(
                "{target}: the bundle carries nothing for it; {to} left as it is"
            ));
            planned.push(None);
            continue;
        }
        ui.status(format!("{target}: planning the import into {to}"));
        let destination = targets::plan(ui, p, target, jobs, seen)
            .await
            .with_context(|| {
                format!(
                    "target {target} ({to}) cannot be filled; nothing was imported. Fix it and run the same command again"
                )
            })?;
        planned.push(Some(destination));
    }
    // 4. The one pass.
    let destinations: Vec<Arc<dyn pass::Destination>> = planned.iter().flatten().cloned().collect();
    let mut used_by: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    let mut sizes: BTreeMap<Digest, u64> = BTreeMap::new();
    for entry in &p.entries {
        for blob in &entry.blobs {
            if !p.layout.has_blob(&blob.digest) {
                continue; // a delta's, left to its base
            }
            sizes.insert(blob.digest.clone(), blob.size);
            let users = used_by.entry(blob.digest.clone()).or_default();
            if !users.contains(&entry.reference) {
                users.push(entry.reference.clone());
            }
        }
    }
    if let Some(lock) = p
        .index
        .annotations
        .get(crate::layout::oci::ANNOTATION_LOCK_DIGEST)
        .and_then(|d| Digest::parse(d).ok())
        && let Ok(Some(size)) = p.layout.blob_size(&lock)
    {
        sizes.insert(lock, size);
    }
    check_disk_space(&destinations, &sizes)?;
    let pass = pass::run(ui, &p.layout, &destinations, &used_by, &sizes, jobs)
        .await
        .context("the pass over the bundle stopped, so nothing was published (no manifest pushed, no index.yaml, SHA256SUMS or Release written; what is in place is skipped when the same command runs again)")?;
    // 5. Publish, in order.
    let mut done = Vec::new();
    for (i, (target, destination)) in names.iter().zip(&planned).enumerate() {
        let to = p.destination(target).unwrap_or_default();
        let Some(destination) = destination else {
            done.push(TargetSummary {
                target: target.to_string(),
                to,
                items: 0,
                written: 0,
                bytes: 0,
                skipped: 0,
                seconds: 0.0,
                detail: serde_json::Value::Null,
            });
            continue;
        };
        let t = Instant::now();
        let mut summary = destination.publish(ui).await.with_context(|| {
            let before = names[..i].join(", ");
            let left = names[i + 1..].join(", ");
            format!(
                "target {target} ({to}) failed{}{}; fix it and run the same command again: what is in place is skipped",
                if before.is_empty() { String::new() } else { format!("; {before} done") },
                if left.is_empty() { String::new() } else { format!("; {left} not started") }
            )
        })?;
        summary.seconds = t.elapsed().as_secs_f64();
        ui.status(format!(
            "{target}: {} item(s), {} written ({}), {} skipped",
            summary.items,
            summary.written,
            human_bytes(summary.bytes),
            summary.skipped
        ));
        done.push(summary);
    }
    // 6. The site configuration.
    let rendered = report::render(p).with_context(|| {
        format!(
            "every target is filled, but the configuration could not be written into {}",
            p.out.display()
        )
    })?;
    Ok(Summary {
        site: p.site.name.clone(),
        bundle: p.source.display().to_string(),
        targets: done,
        out: p.out.display().to_string(),
        rendered,
        pass,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Step 7's end: the site's install command, with the rendered files in its environment.
fn run_install_command(
    ui: &Ui,
    p: &Prepared,
    summary: Summary,
    checks: Vec<Check>,
) -> anyhow::Result<Installed> {
    let install = p.site.install.as_ref().expect("checked by prepare");
    let rendered: Vec<&str> = summary.rendered.iter().map(|r| r.name.as_str()).collect();
    let env = report::install_env(p, &rendered);
    let workdir = report::install_workdir(p);
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
    Ok(Installed {
        import: summary,
        checks,
        command: install.command.clone(),
        workdir: workdir.display().to_string(),
        env,
        exit_code: status.code(),
    })
}

/// The install command's exit, for people.
pub fn exit_text(installed: &Installed) -> String {
    match installed.exit_code {
        Some(c) => c.to_string(),
        None => "no code (killed by a signal)".to_string(),
    }
}

pub use report::{plan_text, summary_text};
