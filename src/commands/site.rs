//! `ferry import SOURCE --site site.yaml`: check the whole site first, verify the bundle once,
//! then fill every target the site names (registry, charts, files, apt, in that order) and
//! render the site configuration. Each target is the per-target import (`ferry import
//! registry|charts|files|apt`), which skips what is already in place, so a re-run resumes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::{HarborArgs, ImportArgs, RegistryArgs, SiteRunArgs};
use crate::destination::site_config::{
    self, ANSIBLE_VARS, APT_KEYRING, APT_SOURCES, HELM_REPOSITORIES, REGISTRIES_YAML, SITE_JSON,
};
use crate::distribution::Scheme;
use crate::layout::Layout;
use crate::layout::graph::walk;
use crate::layout::verify::read_verified_index;
use crate::openpgp::SiteKey;
use crate::progress::{Ui, human_bytes};
use crate::site::Site;

/// The targets, in the order they are filled.
pub const ORDER: [&str; 4] = ["registry", "charts", "files", "apt"];

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
    pub apt_key: Option<SiteKey>,
    /// How the registry answered.
    pub scheme: Option<Scheme>,
    /// Where the configuration is rendered.
    pub out: PathBuf,
    /// The bundle's entries (its index walked once, signature checked).
    pub entries: Vec<crate::layout::graph::Entry>,
}

impl Prepared {
    fn count(&self, kind: &str) -> usize {
        self.entries.iter().filter(|e| e.kind == kind).count()
    }

    /// The bundle entries a target takes.
    pub fn items_for(&self, target: &str) -> usize {
        match target {
            "registry" => self.count("image") + self.count(crate::source::helm::KIND),
            "charts" => self.count(crate::source::helm::KIND),
            "files" => self.count(crate::layout::files::KIND),
            "apt" => self.count(crate::source::apt::KIND),
            _ => 0,
        }
    }

    /// Where a target writes, for people.
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
            _ => None,
        }
    }

    /// The targets the site names, in order.
    pub fn targets(&self) -> Vec<&'static str> {
        ORDER
            .into_iter()
            .filter(|t| self.destination(t).is_some())
            .collect()
    }
}

/// Checks the site file and everything it names, and opens the bundle, before any work:
/// every problem found is listed in one error. `install`: the install step is checked too.
pub async fn prepare(
    ui: &Ui,
    source: &Path,
    site_path: &Path,
    run: &SiteRunArgs,
    install: bool,
) -> anyhow::Result<Prepared> {
    let site = Site::load(site_path)?;
    let key = super::trust_key(&run.trust)?;
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
            match super::import_apt::load_site_key(&apt.signing_key) {
                Ok(k) => apt_key = Some(k),
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
    let mut scheme = None;
    if let Some(r) = &site.registry
        && r.ca_file.as_ref().is_none_or(|c| c.is_file())
    {
        let host = &r.target.host;
        match crate::distribution::read_ca_files(r.ca_file.as_slice()) {
            Err(e) => problems.push(format!("spec.registry.caFile: {e}")),
            Ok(certs) => {
                let plain_http_allowed = r.insecure || crate::distribution::is_loopback(host);
                match crate::distribution::probe(host, &certs, plain_http_allowed).await {
                    Ok(p) => scheme = Some(p.scheme),
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
    let layout = super::open_bundle(source, &run.volumes, ui, !run.dry_run)?;
    let (_, index) = read_verified_index(&layout, key.as_ref())?;
    let entries = walk(&layout, &index).entries;
    Ok(Prepared {
        site,
        source: source.to_path_buf(),
        layout,
        key,
        apt_key,
        scheme,
        out,
        entries,
    })
}

/// One target's part of the summary.
#[derive(Serialize)]
pub struct TargetSummary {
    /// `registry`, `charts`, `files` or `apt`.
    pub target: String,
    /// Where it went.
    pub to: String,
    /// Bundle items it took (images and charts, charts, files, apt packages).
    pub items: usize,
    /// Things written or uploaded now.
    pub written: usize,
    /// Bytes written or uploaded now.
    pub bytes: u64,
    /// Things already in place, skipped.
    pub skipped: usize,
    /// Time taken.
    pub seconds: f64,
    /// The per-target import's own report.
    pub detail: serde_json::Value,
}

/// A rendered configuration file.
#[derive(Serialize, Clone)]
pub struct RenderedFile {
    /// Its name.
    pub name: String,
    /// Its path.
    pub path: String,
}

/// What `ferry import --site` did.
#[derive(Serialize)]
pub struct Summary {
    /// The site's name.
    pub site: String,
    /// The bundle.
    pub bundle: String,
    /// Per target, in order.
    pub targets: Vec<TargetSummary>,
    /// The output directory.
    pub out: String,
    /// What was rendered into it.
    pub rendered: Vec<RenderedFile>,
    /// Total time.
    pub seconds: f64,
}

/// Runs `ferry import SOURCE --site site.yaml`.
pub async fn run_import(ui: &Ui, args: &ImportArgs) -> anyhow::Result<()> {
    let (Some(source), Some(site)) = (&args.source, &args.site) else {
        bail!("give the bundle and the site file: ferry import SOURCE --site site.yaml");
    };
    let prepared = prepare(ui, source, site, &args.run, false).await?;
    if args.run.dry_run {
        let plan = plan(&prepared, false);
        ui.result(&plan, || plan_text(&plan));
        return Ok(());
    }
    let summary = import_all(ui, &prepared, args.run.jobs as usize).await?;
    ui.result(&summary, || summary_text(&summary));
    Ok(())
}

/// Verifies the bundle once, fills every target in order, renders the configuration.
pub async fn import_all(ui: &Ui, p: &Prepared, jobs: usize) -> anyhow::Result<Summary> {
    let started = Instant::now();
    super::verify::require_verified(ui, &p.layout, p.key.as_ref())?;
    let targets = p.targets();
    let missing = p.layout.missing_volumes();
    if !missing.is_empty() && targets.len() > 1 {
        // Each target reads its own blobs in media order; across targets a stick can be
        // asked for again.
        ui.warn(format!(
            "volumes {} are not here yet: ferry asks for each when a target needs it, and a later target may ask for a stick again. Copying every volume into one directory (--volumes-dir) avoids the swapping",
            missing
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut done = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let to = p.destination(target).unwrap_or_default();
        let left: Vec<&str> = targets[i + 1..].to_vec();
        if p.items_for(target) == 0 {
            ui.warn(format!(
                "{target}: the bundle carries nothing for it; {to} left as it is"
            ));
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
        }
        ui.status(format!("{target}: importing into {to}"));
        let t = Instant::now();
        let result = import_one(ui, p, target, jobs).await.with_context(|| {
            let before: Vec<&str> = targets[..i].to_vec();
            format!(
                "target {target} ({to}) failed{}{}; fix it and run the same command again: what is in place is skipped",
                if before.is_empty() {
                    String::new()
                } else {
                    format!("; {} done", before.join(", "))
                },
                if left.is_empty() {
                    String::new()
                } else {
                    format!("; {} not started", left.join(", "))
                }
            )
        })?;
        let mut summary = result;
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
    let rendered = render(p).with_context(|| {
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
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn detail<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

/// The registry import's options for the site.
pub fn registry_options(p: &Prepared, jobs: usize) -> Option<super::import_registry::Options> {
    let r = p.site.registry.as_ref()?;
    Some(super::import_registry::Options {
        target: r.target.clone(),
        harbor: match &r.harbor {
            None => HarborArgs::default(),
            Some(h) => HarborArgs {
                harbor: true,
                harbor_api: h.api.clone(),
                harbor_public: h.public,
                harbor_content_trust_cosign: h.content_trust_cosign,
            },
        },
        jobs,
        registry: RegistryArgs {
            ca_files: r.ca_file.iter().cloned().collect(),
            insecure_registries: if r.insecure {
                vec![r.target.host.clone()]
            } else {
                Vec::new()
            },
        },
        blobs_verified: true,
    })
}

async fn import_one(
    ui: &Ui,
    p: &Prepared,
    target: &str,
    jobs: usize,
) -> anyhow::Result<TargetSummary> {
    let key = p.key.as_ref();
    let to = p.destination(target).unwrap_or_default();
    let summary = |items, written, bytes, skipped, detail| TargetSummary {
        target: target.to_string(),
        to: to.clone(),
        items,
        written,
        bytes,
        skipped,
        seconds: 0.0,
        detail,
    };
    match target {
        "registry" => {
            let options = registry_options(p, jobs).expect("the site names a registry");
            let r = super::import_registry::import(ui, &p.layout, key, &options).await?;
            let push = &r.push;
            Ok(summary(
                r.images + r.charts,
                push.uploaded_blobs + push.mounted_blobs + push.pushed_manifests,
                push.uploaded_bytes,
                push.skipped_blobs + push.skipped_manifests,
                detail(&r),
            ))
        }
        "charts" => {
            let c = p.site.charts.as_ref().expect("the site names charts");
            let r = super::import_charts::import(
                ui,
                &p.layout,
                key,
                &c.dir,
                c.base_url.as_deref(),
                &p.source,
            )
            .await?;
            let bytes = r
                .report
                .written
                .iter()
                .filter_map(|name| std::fs::metadata(c.dir.join(name)).ok())
                .map(|m| m.len())
                .sum();
            Ok(summary(
                r.charts,
                r.report.written.len(),
                bytes,
                r.report.present.len(),
                detail(&r),
            ))
        }
        "files" => {
            let f = p.site.files.as_ref().expect("the site names files");
            let r = super::import_files::import(
                ui,
                &p.layout,
                key,
                &f.dir,
                f.k3s_airgap_dir.as_deref(),
                &p.source,
            )?;
            let Some(r) = r else {
                return Ok(summary(0, 0, 0, 0, serde_json::Value::Null));
            };
            let dirs: Vec<&super::import_files::DirReport> = std::iter::once(&r.to)
                .chain(r.k3s_airgap_dir.iter())
                .collect();
            let bytes = dirs
                .iter()
                .flat_map(|d| d.files.iter())
                .filter(|f| f.written)
                .map(|f| f.size)
                .sum();
            Ok(summary(
                r.to.files.len(),
                dirs.iter().map(|d| d.written).sum(),
                bytes,
                dirs.iter().map(|d| d.skipped).sum(),
                detail(&r),
            ))
        }
        "apt" => {
            let a = p.site.apt.as_ref().expect("the site names apt");
            let site_key = p
                .apt_key
                .as_ref()
                .expect("loaded when the site was checked");
            let r = super::import_apt::import(
                ui,
                &p.layout,
                key,
                site_key,
                &super::import_apt::Options {
                    to: a.dir.clone(),
                    suite: a.suite.clone(),
                    url: a.url.clone(),
                },
                &p.source,
            )?;
            Ok(summary(
                r.report.packages,
                r.report.copied,
                r.report.copied_bytes,
                r.report.present,
                detail(&r),
            ))
        }
        other => bail!("unknown target {other}"),
    }
}

/// The files the site's configuration consists of, given what the site names.
pub fn planned_files(site: &Site) -> Vec<&'static str> {
    let mut names = Vec::new();
    if site.registry.is_some() {
        names.push(REGISTRIES_YAML);
    }
    if site.apt.is_some() {
        names.extend([APT_SOURCES, APT_KEYRING]);
    }
    if site.charts.is_some() {
        names.push(HELM_REPOSITORIES);
    }
    names.extend([ANSIBLE_VARS, SITE_JSON]);
    names
}

/// Renders the site configuration into the output directory.
pub fn render(p: &Prepared) -> anyhow::Result<Vec<RenderedFile>> {
    let out = &p.out;
    // Rendered files are public (no secret is rendered); a killed run's temporaries go.
    crate::fsutil::prepare_dir(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut rendered = Vec::new();
    fn put(
        out: &Path,
        rendered: &mut Vec<RenderedFile>,
        name: &str,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let path = out.join(name);
        crate::layout::write_atomic(&path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        rendered.push(RenderedFile {
            name: name.to_string(),
            path: path.display().to_string(),
        });
        Ok(())
    }
    let mut write = |name: &str, bytes: &[u8]| put(out, &mut rendered, name, bytes);
    let site = &p.site;
    let mut vars = site_config::AnsibleVars {
        // The K3s version from the bundle's K3s binary, when it carries one.
        k3s_version: p
            .entries
            .iter()
            .filter(|e| e.kind == crate::layout::files::KIND)
            .filter_map(|e| crate::layout::files::read(&p.layout, e).ok())
            .filter(|f| f.name == "k3s" || f.name.starts_with("k3s-"))
            .find_map(|f| site_config::k3s_version_from_url(&f.url)),
        ..Default::default()
    };
    if let Some(r) = &site.registry {
        let upstream = super::registries_config::upstream_of(&p.entries);
        let yaml = super::registries_config::render(
            &r.target,
            &upstream,
            p.scheme.unwrap_or(Scheme::Https).as_str(),
            r.ca_file.as_ref().map(|c| c.display().to_string()),
            None,
        );
        let text = serde_saphyr::to_string(&yaml).context("cannot write registries.yaml")?;
        write(
            REGISTRIES_YAML,
            format!(
                "# K3s registries.yaml for site {} ({}), written by ferry\n{text}",
                site.name, r.target
            )
            .as_bytes(),
        )?;
        vars.registries_config_yaml = Some(text);
        if r.system_default_registry {
            vars.server_config_yaml = Some(site_config::server_config(&r.target.host));
        }
    }
    if let Some(a) = &site.apt {
        for name in [APT_SOURCES, APT_KEYRING] {
            let from = a.dir.join(name);
            if let Ok(bytes) = std::fs::read(&from) {
                write(name, &bytes)?;
            }
        }
    }
    if let Some(c) = &site.charts {
        let url = match &c.base_url {
            Some(u) => u.clone(),
            None => format!("file://{}", c.dir.display()),
        };
        write(
            HELM_REPOSITORIES,
            site_config::helm_repositories(&site.name, &url, &crate::time::now_rfc3339())
                .as_bytes(),
        )?;
    }
    if let Some(f) = &site.files
        && let Some(a) = &f.k3s_airgap_dir
    {
        vars.airgap_dir = Some(a.display().to_string());
    }
    write(
        ANSIBLE_VARS,
        site_config::ansible_vars(&site.name, &vars).as_bytes(),
    )?;
    let mut listed = rendered.clone();
    listed.push(RenderedFile {
        name: SITE_JSON.into(),
        path: out.join(SITE_JSON).display().to_string(),
    });
    let json = serde_json::json!({
        "site": site.name,
        "siteFile": site.path.display().to_string(),
        "bundle": p.source.display().to_string(),
        "rendered": listed,
    });
    put(
        out,
        &mut rendered,
        SITE_JSON,
        format!("{}\n", serde_json::to_string_pretty(&json)?).as_bytes(),
    )?;
    Ok(rendered)
}

/// The environment the install command gets, for the files rendered (or to be rendered).
pub fn install_env(p: &Prepared, rendered: &[&str]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let path = |name: &str| p.out.join(name).display().to_string();
    env.insert("FERRY_SITE_DIR".into(), p.out.display().to_string());
    for (name, var) in [
        (REGISTRIES_YAML, "FERRY_REGISTRIES_YAML"),
        (ANSIBLE_VARS, "FERRY_ANSIBLE_VARS"),
        (APT_SOURCES, "FERRY_APT_SOURCES"),
        (HELM_REPOSITORIES, "FERRY_HELM_REPOSITORIES"),
    ] {
        if rendered.contains(&name) {
            env.insert(var.into(), path(name));
        }
    }
    if let Some(f) = &p.site.files
        && let Some(a) = &f.k3s_airgap_dir
    {
        env.insert("FERRY_AIRGAP_DIR".into(), a.display().to_string());
    }
    env
}

/// What a dry run would do.
#[derive(Serialize)]
pub struct Plan {
    /// Always true.
    pub dry_run: bool,
    /// The site.
    pub site: String,
    /// The bundle.
    pub bundle: String,
    /// Targets in order: where, and how many bundle items.
    pub targets: Vec<PlannedTarget>,
    /// Files that would be rendered.
    pub rendered: Vec<RenderedFile>,
    /// Readiness checks (install).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// The install command (install).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Its working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Its environment.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// A target in a dry run.
#[derive(Serialize)]
pub struct PlannedTarget {
    /// Its name.
    pub target: String,
    /// Where.
    pub to: String,
    /// Bundle items for it.
    pub items: usize,
}

/// The readiness checks `ferry install` runs, for people.
pub fn check_descriptions(p: &Prepared) -> Vec<String> {
    let mut checks = Vec::new();
    if let Some(r) = &p.site.registry {
        checks.push(format!(
            "registry: every image and chart of the bundle answers HEAD on {}",
            r.target
        ));
    }
    if let Some(c) = &p.site.charts {
        checks.push(format!(
            "charts: every chart of the bundle is in {}",
            c.dir.join("index.yaml").display()
        ));
    }
    if let Some(a) = &p.site.apt {
        checks.push(format!(
            "apt: every InRelease under {} verifies with the site key",
            a.dir.join("dists").display()
        ));
    }
    if let Some(f) = &p.site.files
        && let Some(a) = &f.k3s_airgap_dir
    {
        checks.push(format!(
            "files: {} holds the K3s files of the bundle",
            a.display()
        ));
    }
    checks
}

/// The dry-run plan; `install` adds the checks and the command.
pub fn plan(p: &Prepared, install: bool) -> Plan {
    let names = planned_files(&p.site);
    let (command, workdir, env, checks) = match (&p.site.install, install) {
        (Some(i), true) => (
            Some(i.command.clone()),
            Some(install_workdir(p).display().to_string()),
            install_env(p, &names),
            check_descriptions(p),
        ),
        _ => (None, None, BTreeMap::new(), Vec::new()),
    };
    Plan {
        dry_run: true,
        site: p.site.name.clone(),
        bundle: p.source.display().to_string(),
        targets: p
            .targets()
            .into_iter()
            .map(|t| PlannedTarget {
                target: t.to_string(),
                to: p.destination(t).unwrap_or_default(),
                items: p.items_for(t),
            })
            .collect(),
        rendered: names
            .iter()
            .map(|n| RenderedFile {
                name: n.to_string(),
                path: p.out.join(n).display().to_string(),
            })
            .collect(),
        checks,
        command,
        workdir,
        env,
    }
}

/// Where the install command runs: spec.install.workdir, else the site file's directory.
pub fn install_workdir(p: &Prepared) -> PathBuf {
    p.site
        .install
        .as_ref()
        .and_then(|i| i.workdir.clone())
        .unwrap_or_else(|| {
            p.site
                .path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf()))
                .unwrap_or_else(|| PathBuf::from("."))
        })
}

/// The plan for people.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = format!(
        "dry run for site {} from {} (nothing is done):\n",
        plan.site, plan.bundle
    );
    let mut step = 0;
    let mut next = || {
        step += 1;
        step
    };
    out.push_str(&format!(
        "{}. verify the bundle (signature, then every blob)\n",
        next()
    ));
    for t in &plan.targets {
        out.push_str(&format!(
            "{}. import {} into {} ({} bundle item(s))\n",
            next(),
            t.target,
            t.to,
            t.items
        ));
    }
    for r in &plan.rendered {
        out.push_str(&format!("{}. render {}\n", next(), r.path));
    }
    for c in &plan.checks {
        out.push_str(&format!("{}. check {c}\n", next()));
    }
    if let Some(command) = &plan.command {
        let env: Vec<String> = plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "{}. run {} in {}\n   with {}\n",
            next(),
            shell_words(command),
            plan.workdir.as_deref().unwrap_or("."),
            env.join("\n        ")
        ));
    }
    out
}

/// A command line for people, arguments quoted where a shell would need it.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The summary for people.
pub fn summary_text(s: &Summary) -> String {
    let mut out = format!("site {} from {}:\n", s.site, s.bundle);
    out.push_str(&format!(
        "  {:<9} {:>7} {:>8} {:>11} {:>8} {:>8}\n",
        "target", "items", "written", "bytes", "skipped", "seconds"
    ));
    for t in &s.targets {
        out.push_str(&format!(
            "  {:<9} {:>7} {:>8} {:>11} {:>8} {:>8.1}  {}\n",
            t.target,
            t.items,
            t.written,
            human_bytes(t.bytes),
            t.skipped,
            t.seconds,
            t.to
        ));
    }
    out.push_str(&format!(
        "configuration in {}: {}\n",
        s.out,
        s.rendered
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}
