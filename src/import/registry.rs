//! `ferry import registry`: verify the bundle, then push its images to a registry.

use std::sync::Arc;
use std::time::Instant;

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::{HarborArgs, ImportRegistryArgs, RegistryArgs};
use crate::destination::harbor::{HarborClient, ProjectOutcome, ProjectSettings};
use crate::destination::registry::{ByteCounter, PushPlan, PushReport, RegistryTarget};
use crate::distribution::RegistryOptions;
use crate::layout::Layout;
use crate::manifest::helm_chart::registry_reference;
use crate::manifest::reference::Reference;
use crate::mapping::Target;
use crate::progress::Ui;
use crate::source::helm::KIND as CHART;
use crate::source::referrers::KIND as REFERRER;

/// What `ferry import registry` did.
#[derive(Serialize)]
pub struct Imported {
    /// The target registry.
    pub target: String,
    /// Harbor projects and whether each was created or existed (`--harbor`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<HarborProject>,
    /// Image entries.
    pub images: usize,
    /// Blobs read from the bundle and uploaded, each digest checked as it streamed.
    pub verified_blobs: usize,
    /// Signatures, attestations and SBOMs pushed after their images.
    #[serde(skip_serializing_if = "is_zero")]
    pub referrers: usize,
    /// Helm charts pushed as OCI artifacts (as `helm push` would).
    #[serde(skip_serializing_if = "is_zero")]
    pub charts: usize,
    /// Blobs and manifests.
    #[serde(flatten)]
    pub push: PushReport,
    /// Bytes read from the bundle (its volumes or blob files); left out in a site import,
    /// whose summary counts them for every destination.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub bytes_read: u64,
    /// Time taken.
    pub seconds: f64,
}

/// Where and how to import, for [`import`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The target registry.
    pub target: Target,
    /// Harbor projects.
    pub harbor: HarborArgs,
    /// Uploads at once.
    pub jobs: usize,
    /// Registry access.
    pub registry: RegistryArgs,
    /// Every blob of the bundle was already hashed (`ferry import --site`): do not again.
    pub blobs_verified: bool,
}

/// Pushes the images and charts of an opened bundle; the signature is checked first.
pub async fn import(
    ui: &Ui,
    layout: &Layout,
    key: Option<&crate::sign::VerifyingKey>,
    options: &Options,
) -> anyhow::Result<Imported> {
    let layout = layout.clone();
    let target = options.target.clone();
    let started = Instant::now();
    let (index, entries) = crate::bundle::verified_entries(ui, &layout, key)?;
    let omitted: BTreeSet<crate::digest::Digest> =
        crate::layout::delta::read_omitted(&layout, &index)?
            .map(|o| o.blobs.into_keys().collect())
            .unwrap_or_default();
    let plans = plans(&target, entries)?;

    let projects = if options.harbor.harbor {
        ensure_harbor_projects(ui, &options.harbor, &options.registry, &target, &plans).await?
    } else {
        Vec::new()
    };

    let mut registry =
        RegistryTarget::connect(target.clone(), RegistryOptions::from(&options.registry))
            .await
            .with_context(|| format!("cannot prepare access to {}", target.host))?;

    // Ask the target what it holds; only the blobs it lacks are read from the bundle. Before
    // the first upload, each of them must be in the bundle with its size (a short copy is the
    // common damage). Their digests are checked as they stream: by the blob reader for
    // volumes, and by the target for a directory (a registry refuses a blob that does not hash
    // to its digest, DIGEST_INVALID; ferry then hashes its copy to say which side is wrong).
    // A second pass over a directory to hash it first would cost a tenth of the import on a
    // machine the registry keeps busy. No manifest is pushed until every upload has passed,
    // so a damaged bundle leaves no image behind.
    let survey = registry
        .survey(&plans, &omitted)
        .await
        .with_context(|| format!("cannot check what {target} already holds; nothing was pushed"))?;
    let to_upload: Vec<(crate::digest::Digest, u64)> = survey
        .to_upload()
        .into_iter()
        .filter(|(d, _)| !omitted.contains(d))
        .collect();
    let upload_bytes: u64 = to_upload.iter().map(|b| b.1).sum();
    if !options.blobs_verified {
        let (faults, _) = crate::layout::verify::check_sizes(&layout, to_upload.clone())?;
        let faults: Vec<String> = faults
            .into_iter()
            .map(|(digest, fault)| format!("  {digest}: {fault}"))
            .collect();
        if !faults.is_empty() {
            bail!(
                "{} blob(s) of {} are missing or cut short, so nothing was pushed:\n{}\nRun `ferry verify` for the entries that use them, and copy the bundle again",
                faults.len(),
                layout.root().display(),
                faults.join("\n")
            );
        }
    }
    // Blobs larger than one chunk are spooled while they upload: a session the registry
    // loses starts again from the copy, not the bundle.
    if to_upload
        .iter()
        .any(|(_, size)| *size > crate::destination::registry::UPLOAD_CHUNK as u64)
        && let Err(e) = registry.spool_uploads()
    {
        tracing::warn!(
            "cannot make a spool directory for uploads ({e}); an upload the registry loses is read again from the bundle"
        );
    }
    let bar = ui.bytes_bar(upload_bytes, "push");
    let counter_bar = bar.clone();
    let on_bytes: ByteCounter = Arc::new(move |n| counter_bar.inc(n));
    let report = registry
        .push(&layout, &plans, &survey, options.jobs, &on_bytes)
        .await
        .with_context(|| {
            format!(
                "import into {target} stopped; what was pushed stays, run the same command again to finish"
            )
        })?;
    bar.finish_and_clear();
    if options.harbor.harbor {
        content_trust_for_existing(
            ui,
            &options.harbor,
            &options.registry,
            &target,
            &plans,
            &projects,
        )
        .await?;
    }
    let result = Imported {
        target: target.to_string(),
        projects,
        images: plans.iter().filter(|p| p.entry.kind == "image").count(),
        referrers: plans.iter().filter(|p| p.entry.kind == REFERRER).count(),
        charts: plans.iter().filter(|p| p.entry.kind == CHART).count(),
        verified_blobs: report.uploaded_blobs,
        push: report,
        bytes_read: layout.bytes_read(),
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(result)
}

/// A Harbor project the import needed.
#[derive(Serialize)]
pub struct HarborProject {
    /// Its name.
    pub name: String,
    /// Created now (else it existed).
    pub created: bool,
}

/// Creates the Harbor projects the plans need, before the first push (Harbor refuses pushes
/// into projects that do not exist).
pub async fn ensure_harbor_projects(
    ui: &Ui,
    harbor: &HarborArgs,
    registry: &RegistryArgs,
    target: &Target,
    plans: &[PushPlan],
) -> anyhow::Result<Vec<HarborProject>> {
    let names: BTreeSet<String> = plans
        .iter()
        .map(|p| target.project_for(&p.reference))
        .collect();
    let client = harbor_client(harbor, registry, target)?;
    let settings = ProjectSettings {
        public: harbor.harbor_public,
        content_trust_cosign: harbor.harbor_content_trust_cosign,
    };
    if settings.content_trust_cosign {
        // Harbor then serves only images that have a cosign signature tag
        // (`<repo>:sha256-<hex>.sig`); say which images of the bundle have none.
        let unsigned = unsigned_images(plans).len();
        if unsigned > 0 {
            ui.warn(format!(
                "--harbor-content-trust-cosign: {unsigned} image(s) of this bundle have no cosign signature; Harbor will refuse to serve them from new projects until they are signed there"
            ));
        }
    }
    let outcomes = client
        .ensure_projects(&names, &settings)
        .await
        .with_context(|| {
            format!(
                "cannot prepare Harbor projects at {}; nothing was pushed",
                client.api_base()
            )
        })?;
    let projects: Vec<HarborProject> = outcomes
        .into_iter()
        .map(|(name, outcome)| HarborProject {
            created: matches!(outcome, ProjectOutcome::Created),
            name,
        })
        .collect();
    for p in &projects {
        ui.status(format!(
            "Harbor project {}: {}",
            p.name,
            if p.created { "created" } else { "exists" }
        ));
    }
    Ok(projects)
}

/// The image plans with no cosign signature tag (`<repo>:sha256-<hex>.sig`) among the plans.
/// The Harbor API client of a target: `--harbor-api`, else the target host's `/api/v2.0`, with
/// the target's credentials.
fn harbor_client(
    harbor: &HarborArgs,
    registry: &RegistryArgs,
    target: &Target,
) -> anyhow::Result<HarborClient> {
    let api = harbor
        .harbor_api
        .clone()
        .unwrap_or_else(|| format!("https://{}/api/v2.0", target.host));
    let credentials = crate::auth::lookup_target(&target.host)?;
    Ok(HarborClient::new(&api, credentials, &registry.ca_files)?)
}

fn unsigned_images(plans: &[PushPlan]) -> Vec<&PushPlan> {
    let signed: BTreeSet<(String, String)> = plans
        .iter()
        .filter_map(|p| {
            let tag = p.reference.tag()?;
            let hex = tag.strip_prefix("sha256-")?.strip_suffix(".sig")?;
            Some((p.repository.clone(), format!("sha256:{hex}")))
        })
        .collect();
    plans
        .iter()
        .filter(|p| p.entry.kind == "image")
        .filter(|p| {
            !signed.contains(&(p.repository.clone(), p.entry.descriptor.digest.to_string()))
        })
        .collect()
}

/// After the push: cosign content trust for the Harbor projects that existed before (new
/// ones were created with it), once their images and signatures are there; a project with an
/// unsigned image of the bundle is left as it is, with a warning (Harbor would refuse to serve
/// that image).
pub async fn content_trust_for_existing(
    ui: &Ui,
    harbor: &HarborArgs,
    registry: &RegistryArgs,
    target: &Target,
    plans: &[PushPlan],
    projects: &[HarborProject],
) -> anyhow::Result<()> {
    let existing: Vec<&str> = projects
        .iter()
        .filter(|p| !p.created)
        .map(|p| p.name.as_str())
        .collect();
    if !harbor.harbor_content_trust_cosign || existing.is_empty() {
        return Ok(());
    }
    let unsigned: BTreeSet<String> = unsigned_images(plans)
        .into_iter()
        .map(|p| target.project_for(&p.reference))
        .collect();
    let client = harbor_client(harbor, registry, target)?;
    for name in existing {
        if unsigned.contains(name) {
            ui.warn(format!(
                "Harbor project {name}: cosign content trust left off, since images of this bundle in it have no cosign signature; sign them upstream (and carry them with `referrers:`), or turn it on in Harbor yourself"
            ));
            continue;
        }
        client
            .enable_content_trust_cosign(name)
            .await
            .with_context(|| {
                format!("the images are imported, but cosign content trust for Harbor project {name} is not on; run the import again, or turn it on in Harbor")
            })?;
        ui.status(format!("Harbor project {name}: cosign content trust on"));
    }
    Ok(())
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Where each image and chart entry goes; other kinds are left to their own importers.
///
/// A chart goes where `helm push` would put it for the mapped path:
/// `[PREFIX/]<upstream host>/<path>/<name>:<version, + as _>`.
pub fn plans(
    target: &Target,
    entries: Vec<crate::layout::graph::Entry>,
) -> anyhow::Result<Vec<PushPlan>> {
    let mut plans = Vec::new();
    for entry in entries {
        let reference = if entry.kind == CHART {
            registry_reference(&entry.reference).map_err(|e| {
                anyhow::anyhow!(
                    "bundle entry {} has no valid chart reference in its annotations: {e}",
                    entry.descriptor.digest
                )
            })?
        } else if entry.kind == "image" || entry.kind == REFERRER {
            Reference::parse(&entry.reference).with_context(|| {
                format!(
                    "bundle entry {} has no valid upstream reference in its annotations",
                    entry.descriptor.digest
                )
            })?
        } else {
            continue;
        };
        plans.push(PushPlan {
            repository: target.repository_for(&reference),
            reference,
            entry,
        });
    }
    Ok(plans)
}

/// `ferry import registry` whole: the target parsed, the bundle opened (every volume there),
/// its signature checked, the images and charts pushed.
pub async fn run(ui: &Ui, args: &ImportRegistryArgs) -> anyhow::Result<Imported> {
    let target = Target::parse(&args.to)?;
    let key = crate::bundle::trust_key(&args.trust)?;
    let layout = crate::bundle::open_bundle(&args.source, &args.volumes, ui, true)?;
    let options = Options {
        target,
        harbor: args.harbor.clone(),
        jobs: args.jobs as usize,
        registry: args.registry.clone(),
        blobs_verified: false,
    };
    import(ui, &layout, key.as_ref(), &options).await
}
