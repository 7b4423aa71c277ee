//! `ferry import files`: parse, call [`crate::import::files`], print.

use crate::cli::ImportFilesArgs;
use crate::import::files::{DirReport, Imported};
use crate::progress::{Ui, human_bytes};

/// Runs `ferry import files`.
pub fn run(ui: &Ui, args: &ImportFilesArgs) -> anyhow::Result<()> {
    if let Some(result) = crate::import::files::run(ui, args)? {
        ui.result(&result, || text(&result));
    }
    Ok(())
}

/// The result for people.
pub fn text(r: &Imported) -> String {
    let mut out = String::new();
    out.push_str(&format!("files of {} into {}:\n", r.bundle, r.to.dir));
    dir_text(&mut out, &r.to);
    if let Some(k3s) = &r.k3s_airgap_dir {
        out.push_str(&format!(
            "k3s-ansible airgap_dir {} ({}):\n",
            k3s.dir,
            r.k3s_arches.join(", ")
        ));
        dir_text(&mut out, k3s);
    }
    out
}

fn dir_text(out: &mut String, r: &DirReport) {
    for row in &r.files {
        let from = match &row.from {
            Some(f) => format!(" (from {f})"),
            None => String::new(),
        };
        out.push_str(&format!(
            "  {}  {}  {:>10}  {}{from}\n",
            row.mode,
            if row.written { "written" } else { "skipped" },
            human_bytes(row.size),
            row.name
        ));
    }
    let written_bytes: u64 = r.files.iter().filter(|f| f.written).map(|f| f.size).sum();
    out.push_str(&format!(
        "{}: {} written ({}), {} skipped (already there with the right content); checksums in {}\n",
        r.dir,
        r.written,
        human_bytes(written_bytes),
        r.skipped,
        r.sums
    ));
}
