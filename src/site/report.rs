//! Step 6 of a site import and what people see: the summary, the rendered site
//! configuration, the dry-run plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::pass::PassReport;
use super::prepare::Prepared;
use crate::destination::site_config::{
    self, ANSIBLE_VARS, APT_KEYRING, APT_SOURCES, HELM_REPOSITORIES, REGISTRIES_YAML, SITE_JSON,
};
use crate::distribution::Scheme;
use crate::progress::human_bytes;
use crate::site::Site;

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
    /// What the one pass over the bundle read.
    #[serde(flatten)]
    pub pass: PassReport,
    /// Total time.
    pub seconds: f64,
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
    if site.git.as_ref().is_some_and(|g| g.base_url.is_some()) {
        names.push(crate::destination::git::ARGOCD_REPOSITORIES);
    }
    if site.apt.as_ref().is_some_and(|a| a.url.is_some()) {
        names.push(crate::destination::gpu_operator::REPO_CONFIG_FILE);
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
        let upstream = crate::import::registries_config::upstream_of(&p.entries);
        let yaml = crate::import::registries_config::render(
            &r.target,
            &upstream,
            p.scheme().unwrap_or(Scheme::Https).as_str(),
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
    // Issue 16: ArgoCD's repository Secrets for the imported Git repositories, and the GPU
    // operator's driver repository (a ConfigMap naming the apt mirror).
    if let Some(g) = &site.git
        && let Some(base_url) = &g.base_url
    {
        let names: Vec<String> = p
            .entries
            .iter()
            .filter(|e| e.kind == crate::layout::git::KIND)
            .filter_map(|e| crate::layout::git::read(&p.layout, e).ok())
            .map(|r| r.config.name)
            .collect();
        if !names.is_empty() {
            write(
                crate::destination::git::ARGOCD_REPOSITORIES,
                crate::destination::git::argocd_repository_secrets(&site.name, base_url, &names)
                    .as_bytes(),
            )?;
        }
    }
    if let Some(a) = &site.apt
        && a.url.is_some()
        && let Ok(Some(yaml)) = crate::destination::gpu_operator::repo_config_map(&a.dir)
    {
        write(
            crate::destination::gpu_operator::REPO_CONFIG_FILE,
            yaml.as_bytes(),
        )?;
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
        "{}. check the signature and read the manifests\n",
        next()
    ));
    for t in &plan.targets {
        out.push_str(&format!(
            "{}. plan {} into {} ({} bundle item(s)): what is there, what is needed\n",
            next(),
            t.target,
            t.to,
            t.items
        ));
    }
    out.push_str(&format!(
        "{}. read each volume once, each blob checked as it streams to every target that needs it\n",
        next()
    ));
    for t in &plan.targets {
        out.push_str(&format!("{}. publish {} ({})\n", next(), t.target, t.to));
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
    let p = &s.pass;
    let ratio = if p.bundle_bytes > 0 {
        format!(
            " ({:.2}x the bundle's {})",
            p.bytes_read as f64 / p.bundle_bytes as f64,
            human_bytes(p.bundle_bytes)
        )
    } else {
        String::new()
    };
    out.push_str(&format!(
        "read {}{ratio} from {} volume(s), {} insertion(s)\n",
        human_bytes(p.bytes_read),
        p.volumes_read,
        p.insertions
    ));
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
