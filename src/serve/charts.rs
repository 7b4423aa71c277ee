//! `/charts/`: the bundle's charts as a classic Helm chart repository (`index.yaml` and
//! `<name>-<version>.tgz`), so `helm repo add` and `helm pull` work against `ferry serve`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use crate::destination::chart_repo::{self, BundleChart, ChartRepoError};
use crate::digest::Digest;
use crate::layout::Layout;
use crate::layout::graph::Entry;

/// Content type of chart archives.
const ARCHIVE_TYPE: &str = "application/gzip";

/// The chart repository a bundle serves.
#[derive(Debug)]
pub struct ChartRepo {
    layout: Layout,
    index_yaml: Vec<u8>,
    /// `<name>-<version>.tgz` to the archive's blob.
    files: BTreeMap<String, Digest>,
}

impl ChartRepo {
    /// Reads the bundle's chart entries (each archive's Chart.yaml) into an index. Returns
    /// notes on charts it cannot serve (two entries with one name and version).
    pub fn build(
        layout: &Layout,
        entries: &[Entry],
    ) -> Result<(ChartRepo, Vec<String>), ChartRepoError> {
        let charts = chart_repo::bundle_charts(layout, entries)?;
        let mut notes = Vec::new();
        let mut files = BTreeMap::new();
        let mut served: Vec<BundleChart> = Vec::new();
        for chart in charts {
            match files.get(&chart.file_name()) {
                Some(digest) if *digest != chart.archive.digest => notes.push(format!(
                    "/charts/{} is claimed by two entries; serving the first, not {}",
                    chart.file_name(),
                    chart.reference
                )),
                Some(_) => {}
                None => {
                    files.insert(chart.file_name(), chart.archive.digest.clone());
                    served.push(chart);
                }
            }
        }
        let index = chart_repo::new_index(&served, None, &crate::time::now_rfc3339());
        Ok((
            ChartRepo {
                layout: layout.clone(),
                index_yaml: chart_repo::to_yaml(&index),
                files,
            },
            notes,
        ))
    }

    /// Number of chart archives served.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether no chart is served.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The `/charts/` routes.
    pub fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/charts/{file}", any(handle))
            .with_state(self)
    }
}

async fn handle(
    State(repo): State<Arc<ChartRepo>>,
    Path(file): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let head = method == Method::HEAD;
    if method != Method::GET && !head {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "this chart repository is read-only\n",
        )
            .into_response();
    }
    if file == chart_repo::INDEX_FILE {
        let length = repo.index_yaml.len();
        let body = if head {
            axum::body::Body::empty()
        } else {
            axum::body::Body::from(repo.index_yaml.clone())
        };
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/yaml".to_string()),
                (header::CONTENT_LENGTH, length.to_string()),
            ],
            body,
        )
            .into_response();
    }
    match repo.files.get(&file) {
        Some(digest) => {
            match crate::serve::registry::serve_file(
                &repo.layout,
                digest,
                ARCHIVE_TYPE,
                &headers,
                head,
                true,
            )
            .await
            {
                Ok(response) => response,
                Err(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot read the archive of {file}\n"),
                )
                    .into_response(),
            }
        }
        None => (
            StatusCode::NOT_FOUND,
            format!("no chart archive {file} in this bundle; see /charts/index.yaml\n"),
        )
            .into_response(),
    }
}
