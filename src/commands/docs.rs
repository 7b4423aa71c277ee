//! `ferry completions` and `ferry man`: shell completion scripts and man pages from the
//! command-line definitions.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use serde::Serialize;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::progress::Ui;

/// Runs `ferry completions SHELL`: the script on standard output.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut out = Vec::new();
    completion_script(args.shell, &mut out);
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .context("cannot write the completion script to standard output")
}

/// The completion script for `shell`.
pub fn completion_script(shell: clap_complete::Shell, out: &mut Vec<u8>) {
    clap_complete::generate(shell, &mut Cli::command(), "ferry", out);
}

/// What `ferry man` wrote.
#[derive(Debug, Serialize)]
pub struct ManReport {
    /// The directory.
    pub dir: PathBuf,
    /// The pages, in the order written.
    pub pages: Vec<PathBuf>,
}

/// Runs `ferry man --out DIR`.
pub fn man(ui: &Ui, args: &ManArgs) -> anyhow::Result<()> {
    let report = write_man_pages(&args.out)?;
    ui.result(&report, || {
        format!(
            "wrote {} man pages into {} (ferry.1, ferry-pack.1, ...); read one with `man {}`\n",
            report.pages.len(),
            report.dir.display(),
            report.dir.join("ferry.1").display()
        )
    });
    Ok(())
}

/// Writes one man page per command and subcommand into `dir`: `ferry.1`, `ferry-pack.1`,
/// `ferry-import-registry.1`, ...
pub fn write_man_pages(dir: &Path) -> anyhow::Result<ManReport> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create the man page directory {}; give a writable directory with --out",
            dir.display()
        )
    })?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    write_pages(&cmd, dir, &mut pages)?;
    Ok(ManReport {
        dir: dir.to_path_buf(),
        pages,
    })
}

fn write_pages(cmd: &clap::Command, dir: &Path, pages: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    let mut bytes = Vec::new();
    man.render(&mut bytes)
        .with_context(|| format!("cannot render {}", path.display()))?;
    crate::layout::write_atomic(&path, &bytes).with_context(|| {
        format!(
            "cannot write {}; give a writable directory with --out",
            path.display()
        )
    })?;
    pages.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, pages)?;
    }
    Ok(())
}
