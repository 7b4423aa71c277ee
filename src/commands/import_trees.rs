//! `ferry import trees`: parse, call [`crate::import::trees`], print.

use crate::cli::ImportTreesArgs;
use crate::import::trees::Imported;
use crate::progress::{Ui, human_bytes};

/// Runs `ferry import trees`.
pub fn run(ui: &Ui, args: &ImportTreesArgs) -> anyhow::Result<()> {
    match crate::import::trees::run(ui, args)? {
        Some(result) => ui.result(&result, || text(&result)),
        None => ui.warn(format!(
            "{} holds no trees (spec.trees of its manifest was empty); nothing to write",
            args.source.display()
        )),
    }
    Ok(())
}

/// The result for people.
pub fn text(r: &Imported) -> String {
    let mut out = format!("trees of {} into {}:\n", r.bundle, r.dir);
    for t in &r.trees {
        out.push_str(&format!(
            "  {}  {}: {} files, {} ({} written{})\n",
            t.outcome,
            t.path,
            t.files,
            human_bytes(t.size),
            human_bytes(t.written),
            if t.resumed > 0 {
                format!(", {} files resumed", t.resumed)
            } else {
                String::new()
            }
        ));
    }
    out
}
