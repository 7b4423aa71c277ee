//! `ferry import git`: parse, call [`crate::import::git`], print.

use crate::cli::ImportGitArgs;
use crate::import::git::Imported;
use crate::progress::Ui;

/// Runs `ferry import git`.
pub fn run(ui: &Ui, args: &ImportGitArgs) -> anyhow::Result<()> {
    match crate::import::git::run(ui, args)? {
        Some(result) => ui.result(&result, || text(&result)),
        None => ui.warn(format!(
            "{} holds no git repositories (spec.git of its manifest was empty); nothing to write",
            args.source.display()
        )),
    }
    Ok(())
}

/// The result for people.
pub fn text(r: &Imported) -> String {
    let mut out = format!("git repositories of {} into {}:\n", r.bundle, r.dir);
    for repo in &r.repositories {
        out.push_str(&format!(
            "  {}{}: {} ref(s) updated, {} unchanged\n",
            repo.path,
            if repo.created { " (new)" } else { "" },
            repo.changed.len(),
            repo.unchanged
        ));
        for c in &repo.changed {
            let old = c
                .old
                .as_deref()
                .map_or("new".to_string(), |o| o[..12.min(o.len())].to_string());
            out.push_str(&format!(
                "    {}  {} -> {}{}\n",
                c.name,
                old,
                &c.new[..12.min(c.new.len())],
                if c.forced { " (forced)" } else { "" }
            ));
        }
        if !repo.extra_refs.is_empty() {
            out.push_str(&format!(
                "    kept {} ref(s) this release does not carry: {}\n",
                repo.extra_refs.len(),
                repo.extra_refs.join(", ")
            ));
        }
    }
    out
}
