//! The `ferry` command: parse, run, map errors to exit codes.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use ferry::cli::{Cli, Command, ImportArgs, ImportCommand, KeyCommand};
use ferry::commands;
use ferry::progress::Ui;

/// Large buffers (an upload's 8 MiB chunks) get pages of their own, given back when freed.
/// Left to itself glibc raises its mmap threshold to the size of the first such buffer freed,
/// so later chunks come from the heaps of whichever threads free them and stay resident: a
/// registry upload's peak memory then grew with the blob (67 MiB for a 40 MiB layer, 74 MiB
/// for 640 MiB; flat at 65-66 MiB with the threshold fixed, scripts/bench_upload_memory.sh).
fn map_large_allocations() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

fn main() -> ExitCode {
    // Before any thread starts: every file ferry writes takes its mode from the umask.
    ferry::fsutil::init();
    map_large_allocations();
    let cli = Cli::parse();
    check_usage(&cli);
    init_logging(cli.verbose, cli.quiet);
    ferry::retry::configure(cli.timeout, cli.retries);
    ferry::s3::set_default_options(ferry::s3::S3Options {
        endpoint: cli.s3_endpoint.clone(),
        ca_files: cli.s3_ca_file.clone(),
    });
    let ui = Ui::new(cli.output, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Key(KeyCommand::Generate {
                output_dir,
                force,
                apt,
            }) => {
                if *apt {
                    commands::key::generate_apt(&ui, output_dir, *force)
                } else {
                    commands::key::generate(&ui, output_dir, *force)
                }
            }
            Command::Lock(args) => commands::lock::run(&ui, args).await,
            Command::Build(args) => commands::build::run(&ui, args).await,
            Command::Sign(args) => commands::sign::run(&ui, args),
            Command::Verify(args) => commands::verify::run(&ui, args),
            Command::Inspect(args) => commands::inspect::run(&ui, args),
            Command::Sbom(args) => commands::sbom::run(&ui, args),
            Command::Import(ImportArgs {
                command: Some(ImportCommand::Registry(args)),
                ..
            }) => commands::import_registry::run(&ui, args).await,
            Command::Import(ImportArgs {
                command: Some(ImportCommand::Files(args)),
                ..
            }) => commands::import_files::run(&ui, args),
            Command::Import(ImportArgs {
                command: Some(ImportCommand::Apt(args)),
                ..
            }) => commands::import_apt::run(&ui, args),
            Command::Import(ImportArgs {
                command: Some(ImportCommand::Git(args)),
                ..
            }) => commands::import_git::run(&ui, args),
            Command::Import(ImportArgs {
                command: Some(ImportCommand::Trees(args)),
                ..
            }) => commands::import_trees::run(&ui, args),
            Command::Import(args @ ImportArgs { command: None, .. }) => {
                commands::site::run_import(&ui, args).await
            }
            Command::Install(args) => commands::install::run(&ui, args).await,
            Command::RegistriesConfig(args) => commands::registries_config::run(&ui, args),
            Command::Login(args) => commands::login::run(&ui, args).await,
            Command::Serve(args) => commands::serve::run(&ui, args).await,
            Command::Pack(args) => commands::pack::run(&ui, args),
            Command::Unpack(args) => commands::pack::run_unpack(&ui, args),
            Command::Diff(args) => commands::diff::run(&ui, args),
            Command::Check(args) => commands::check::run(&ui, args),
            Command::Completions(args) => commands::docs::completions(args),
            Command::Man(args) => commands::docs::man(&ui, args),
            Command::Import(ImportArgs {
                command: Some(ImportCommand::Charts(args)),
                ..
            }) => commands::import_charts::run(&ui, args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            if let Some(hint) = ferry::fsutil::explain_full_disk(&e) {
                eprintln!("  {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes in one line, as `{:#}` writes them, except that a cause whose text
/// its parent's message already holds (thiserror types that print `{source}`) is not repeated.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

/// Usage rules clap cannot say well; these exit with code 2 like any usage error.
fn check_usage(cli: &Cli) {
    let (key, no_signature) = match &cli.command {
        Command::Verify(args) => (args.key.is_some(), args.no_signature),
        Command::Import(ImportArgs {
            command: Some(ImportCommand::Registry(args)),
            ..
        }) => (args.trust.key.is_some(), args.trust.no_signature),
        Command::Import(ImportArgs {
            command: Some(ImportCommand::Files(args)),
            ..
        }) => (args.trust.key.is_some(), args.trust.no_signature),
        Command::Import(ImportArgs {
            command: Some(ImportCommand::Apt(args)),
            ..
        }) => (args.trust.key.is_some(), args.trust.no_signature),
        Command::Import(ImportArgs {
            command: Some(ImportCommand::Charts(args)),
            ..
        }) => (args.trust.key.is_some(), args.trust.no_signature),
        Command::Import(ImportArgs {
            command: Some(ImportCommand::Git(args)),
            ..
        }) => (args.trust.key.is_some(), args.trust.no_signature),
        Command::Import(ImportArgs {
            command: Some(ImportCommand::Trees(args)),
            ..
        }) => (args.trust.key.is_some(), args.trust.no_signature),
        Command::Import(ImportArgs {
            command: None,
            source,
            site,
            run,
        }) => {
            if source.is_none() || site.is_none() {
                Cli::command()
                    .error(
                        ErrorKind::MissingRequiredArgument,
                        "give the bundle and the site file: ferry import SOURCE --site site.yaml\n  (or one target: ferry import registry|files|charts|apt|git|trees ...)",
                    )
                    .exit();
            }
            (run.trust.key.is_some(), run.trust.no_signature)
        }
        Command::Install(args) => (args.run.trust.key.is_some(), args.run.trust.no_signature),
        _ => (true, false),
    };
    if !key && !no_signature {
        Cli::command()
            .error(
                ErrorKind::MissingRequiredArgument,
                "the public key the bundle must be signed with is required: --key cosign.pub\n  (or --no-signature to check blobs only, which proves nothing about who made the bundle)",
            )
            .exit();
    }
}

/// Logs go to standard error: warnings by default, more with -v, none with -q.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| {
        // rpgp warns about packet details that are no concern of ferry's users.
        tracing_subscriber::EnvFilter::new(format!("ferry={level},warn,pgp=error"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
