//! `ferry sbom`: the bill of materials a bundle carries, printed after the signature check.

use std::io::Write;

use anyhow::{Context, bail};

use crate::cli::{SbomArgs, SbomFormat};
use crate::layout::graph::walk;
use crate::layout::verify::read_verified_index;
use crate::progress::Ui;

/// Runs `ferry sbom`: prints the SBOM (JSON) on standard output.
pub fn run(ui: &Ui, args: &SbomArgs) -> anyhow::Result<()> {
    let key = super::trust_key(&args.trust)?;
    let layout = super::open_bundle(&args.dir, &args.volumes, ui, false)?;
    let (_, index) = read_verified_index(&layout, key.as_ref())?;
    if key.is_none() {
        ui.warn(format!(
            "{}: signature NOT checked (--no-signature)",
            args.dir.display()
        ));
    }
    let walked = walk(&layout, &index);
    let (format, name) = match args.format {
        SbomFormat::Cyclonedx => (crate::sbom::Format::CycloneDx, "CycloneDX"),
        SbomFormat::Spdx => (crate::sbom::Format::Spdx, "SPDX"),
    };
    let Some(bytes) = crate::sbom::read(&layout, &walked.entries, format)
        .with_context(|| format!("cannot read the SBOM of {}", args.dir.display()))?
    else {
        bail!(
            "{} carries no {name} SBOM (bundles built before this ferry wrote one); rebuild it with `ferry build`",
            args.dir.display()
        );
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(())
}
