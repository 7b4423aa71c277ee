//! `ferry serve`: a bundle as a read-only OCI registry until Harbor runs.

use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use crate::cli::ServeArgs;
use crate::progress::Ui;
use crate::serve::server::{self, ServeListener};
use crate::serve::{Bundle, ServeError};

/// What `--output json` prints once the server listens.
#[derive(Debug, Serialize)]
struct Listening {
    bundle: String,
    url: String,
    address: String,
    repositories: usize,
    tags: usize,
    files: usize,
    signed_by: Option<String>,
}

/// Runs the command: checks the bundle, listens, serves until Ctrl-C or SIGTERM.
pub async fn run(ui: &Ui, args: &ServeArgs) -> anyhow::Result<()> {
    let key = args
        .key
        .as_deref()
        .map(super::load_verifying_key)
        .transpose()?;
    let fingerprint = key.as_ref().map(|k| k.fingerprint());
    // The apt key's password is checked before the bundle is read.
    let apt_key = args
        .apt_signing_key
        .as_deref()
        .map(crate::import::apt::load_site_key)
        .transpose()?;
    crate::import::apt::check_suite(args.apt_suite.as_deref())?;
    // A certificate that cannot be used fails before the bundle is read.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(server::tls_config(cert, key)?),
        _ => None,
    };
    let bundle_name = args.source.display().to_string();
    // Opening reads and hashes every manifest: blocking file work, kept off the runtime.
    let source = args.source.clone();
    let volumes = args.volumes.clone();
    let apt_suite = args.apt_suite.clone();
    let opener = ui.clone();
    let git_dir = args.git_dir.clone();
    let (mut bundle, apt, git, git_notes) = tokio::task::spawn_blocking(move || {
        let layout = super::open_bundle(&source, &volumes, &opener, true)?;
        let bundle = Bundle::open(&layout, key.as_ref())?;
        let apt = match &apt_key {
            Some(site) => {
                super::serve_apt::open(&layout, key.as_ref(), site, apt_suite.as_deref())?
            }
            None => None,
        };
        let (git, git_notes) = git_root(&layout, key.as_ref(), git_dir.as_deref())?;
        anyhow::Ok((bundle, apt, git, git_notes))
    })
    .await
    .context("checking the bundle stopped unexpectedly")??;
    match &fingerprint {
        Some(f) => ui.status(format!("signature OK: index.json signed by key {f}")),
        None => ui.warn(format!(
            "the signature of {bundle_name} was not checked (no --key): nothing proves who made what is served; give --key cosign.pub to check it"
        )),
    }
    for note in bundle.notes.iter().chain(&git_notes) {
        ui.warn(note);
    }
    if let Some(git) = &git {
        ui.status(format!(
            "serving {} git repositor{} under /git/ (clone and fetch): {}",
            git.names().len(),
            if git.names().len() == 1 { "y" } else { "ies" },
            git.names()
                .iter()
                .map(|n| format!("/git/{n}.git"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    bundle
        .registry
        .set_referrers_page_size(args.referrers_page_size as usize);
    let catalog = bundle.registry.catalog();
    if !bundle.charts.is_empty() {
        ui.status(format!(
            "serving {} chart(s) as a Helm repository at /charts/ (index.yaml)",
            bundle.charts.len()
        ));
    }
    for (kind, count) in catalog.other_kinds() {
        if kind == crate::layout::files::KIND
            || kind == crate::source::helm::KIND
            || kind == crate::layout::git::KIND
        {
            continue;
        }
        if kind == crate::source::apt::KIND {
            super::serve_apt::report(ui, apt.as_deref(), *count);
            continue;
        }
        ui.status(format!(
            "{count} {kind} entr{} not served (the registry serves images)",
            if *count == 1 { "y is" } else { "ies are" }
        ));
    }
    if catalog.is_empty() {
        ui.warn(format!("{bundle_name} has no images to serve"));
    }
    let (repositories, tags) = (catalog.len(), catalog.tag_count());
    let files = bundle.files.len();

    let listener = ServeListener::bind(&args.listen, tls, ui).await?;
    let scheme = if listener.is_tls() { "https" } else { "http" };
    let address = listener.local_addr().to_string();
    let url = format!("{scheme}://{address}");
    let listening = Listening {
        bundle: bundle_name.clone(),
        url: url.clone(),
        address,
        repositories,
        tags,
        files,
        signed_by: fingerprint,
    };
    ui.result(&listening, || {
        // One line: scripts read the address from the first line.
        let files = match files {
            0 => String::new(),
            n => format!(", {n} files under /files/"),
        };
        format!("serving {bundle_name} on {url} ({repositories} repositories, {tags} tags{files})")
    });

    let mirrors = Arc::new(bundle.charts)
        .routes()
        .merge(crate::serve::files::router(Arc::new(bundle.files)));
    let mirrors = match apt {
        Some(mirror) => mirrors.merge(crate::serve::apt::routes(mirror)),
        None => mirrors,
    };
    let mirrors = match git {
        Some(root) => mirrors.merge(crate::serve::git::routes(Arc::new(root))),
        None => mirrors,
    };
    let app = server::router_with(Arc::new(bundle.registry), mirrors, ui.clone());
    server::run(listener, app, ui, server::shutdown_signal())
        .await
        .map_err(|reason| ServeError::Bind {
            addr: args.listen.clone(),
            reason,
        })?;
    ui.status("stopped");
    Ok(())
}

/// The git repositories to serve: those of `--git-dir`, else the bundle's own, imported into
/// a scratch directory (a delta's repositories lack their base there, so they are noted and
/// not served). None when there are none.
fn git_root(
    layout: &crate::layout::Layout,
    key: Option<&crate::sign::VerifyingKey>,
    dir: Option<&std::path::Path>,
) -> anyhow::Result<(Option<crate::serve::git::GitRoot>, Vec<String>)> {
    use crate::serve::git::GitRoot;
    if let Some(dir) = dir {
        let root = GitRoot::from_dir(dir)
            .with_context(|| format!("cannot read the git directory {}", dir.display()))?;
        return Ok((Some(root), Vec::new()));
    }
    let repos = crate::import::git::read_repos(layout, key)?;
    if repos.is_empty() {
        return Ok((None, Vec::new()));
    }
    let scratch = crate::fsutil::ScratchDir::new("serve-git")
        .context("cannot make a scratch directory for the git repositories")?;
    let mut notes = Vec::new();
    for repo in &repos {
        if let Err(e) = crate::destination::git::import_repo(layout, repo, scratch.path(), true) {
            notes.push(format!(
                "git repository {} is not served: {e}",
                repo.config.name
            ));
        }
    }
    let root = GitRoot::from_scratch(scratch).context("cannot list the git repositories")?;
    Ok((Some(root), notes))
}
