//! Progress bars on a terminal, plain messages otherwise, and machine-readable output.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// How results are printed on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum OutputFormat {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// The user interface of one command run: messages, bars, results.
#[derive(Clone)]
pub struct Ui {
    format: OutputFormat,
    quiet: bool,
    bars: bool,
    multi: MultiProgress,
}

impl Ui {
    /// A UI that draws bars only when standard error is a terminal and not quiet.
    pub fn new(format: OutputFormat, quiet: bool) -> Ui {
        let bars = !quiet && std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if bars {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        });
        Ui {
            format,
            quiet,
            bars,
            multi,
        }
    }

    /// The output format.
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// A status line on standard error (suppressed by `-q`), drawn above any bars.
    pub fn status(&self, message: impl AsRef<str>) {
        if self.quiet {
            return;
        }
        if self.bars {
            self.multi.suspend(|| eprintln!("{}", message.as_ref()));
        } else {
            eprintln!("{}", message.as_ref());
        }
    }

    /// A warning on standard error; shown even with `-q`.
    pub fn warn(&self, message: impl AsRef<str>) {
        self.multi
            .suspend(|| eprintln!("warning: {}", message.as_ref()));
    }

    /// A byte-counting bar with rate and time remaining (hidden off a terminal).
    pub fn bytes_bar(&self, total: u64, message: impl Into<String>) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(250));
        bar
    }

    /// A counting bar for items.
    pub fn items_bar(&self, total: u64, message: impl Into<String>) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {wide_msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(message.into());
        bar
    }

    /// Prints a result: `text` for people, the value as JSON for scripts.
    pub fn result<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        match self.format {
            OutputFormat::Json => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(value).expect("results always serialise")
                );
            }
            OutputFormat::Text => {
                let t = text();
                if !t.is_empty() {
                    print!("{t}");
                    if !t.ends_with('\n') {
                        println!();
                    }
                }
            }
        }
    }
}

/// Bytes in binary units for people: `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}
