//! `ferry import charts`: verify the bundle, then write its charts into a classic Helm chart
//! repository directory (`.tgz` files and a merged `index.yaml`).

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::cli::ImportChartsArgs;
use crate::destination::chart_repo::{self, ChartRepoReport};
use crate::layout::graph::walk;
use crate::layout::verify::read_verified_index;
use crate::progress::Ui;

/// What `ferry import charts` did.
#[derive(Serialize)]
pub struct Imported {
    /// The repository directory.
    pub target: String,
    /// Charts of the bundle.
    pub charts: usize,
    /// Archives and index.
    #[serde(flatten)]
    pub report: ChartRepoReport,
    /// Time taken.
    pub seconds: f64,
}

/// Checks `--base-url`: an absolute http(s) URL, returned without a trailing `/`.
pub fn check_base_url(base_url: Option<&str>) -> anyhow::Result<Option<String>> {
    base_url
        .map(|url| {
            crate::destination::absolute_http_url(url).ok_or_else(|| {
                anyhow::anyhow!(
                    "--base-url {url:?} is not an absolute http(s) URL; give the URL the repository directory will be served under, e.g. https://charts.site.local"
                )
            })
        })
        .transpose()
}

/// Writes the charts of a verified bundle into the repository directory `to`.
pub async fn import(
    ui: &Ui,
    layout: &crate::layout::Layout,
    key: Option<&crate::sign::VerifyingKey>,
    to: &std::path::Path,
    base_url: Option<&str>,
    source: &std::path::Path,
) -> anyhow::Result<Imported> {
    let started = Instant::now();
    let (_, index) = read_verified_index(layout, key)?;
    let walked = walk(layout, &index);
    let layout = layout.clone();
    let base_url = base_url.map(str::to_string);
    let to = to.to_path_buf();
    let target = to.clone();
    let generated = crate::time::now_rfc3339();
    let (charts, report) = tokio::task::spawn_blocking(move || {
        let mut missing = Vec::new();
        let charts =
            chart_repo::bundle_charts_over(&layout, &walked.entries, Some(&to), &mut missing)?;
        if !missing.is_empty() {
            return Err(chart_repo::ChartRepoError::MissingBase {
                message: crate::layout::delta::missing_base_message(&to, &missing),
            });
        }
        let report = chart_repo::import(&layout, &charts, &to, base_url.as_deref(), &generated)?;
        Ok::<_, chart_repo::ChartRepoError>((charts.len(), report))
    })
    .await
    .context("the import stopped unexpectedly")?
    .with_context(|| {
        format!(
            "cannot import the charts into {}; archives already written stay, the index was not changed",
            target.display()
        )
    })?;
    if charts == 0 {
        ui.warn(format!("{} has no charts", source.display()));
    }
    Ok(Imported {
        target: target.display().to_string(),
        charts,
        report,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `ferry import charts` whole: `--base-url` checked, the bundle opened and verified (nothing
/// is written, not even the target directory, before), the charts written.
pub async fn run(ui: &Ui, args: &ImportChartsArgs) -> anyhow::Result<Imported> {
    let base_url = check_base_url(args.base_url.as_deref())?;
    let (layout, key) = crate::bundle::open_verified(ui, &args.source, &args.volumes, &args.trust)?;
    import(
        ui,
        &layout,
        key.as_ref(),
        &args.to,
        base_url.as_deref(),
        &args.source,
    )
    .await
}
