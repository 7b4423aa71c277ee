//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::progress::OutputFormat;

/// ferry carries a Kubernetes platform across an air gap: it pulls a release's images into one
/// signed, content-addressed OCI bundle, and verifies it on the other side.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// How results are printed on standard output.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Print only results and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log more detail on standard error (-v: info, -vv: debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// ferry's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage cosign-format signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Resolve every tag of a manifest to digests and write the lock file.
    Lock(LockArgs),
    /// Pull everything in the lock into a bundle directory (OCI image layout), and sign it.
    Build(BuildArgs),
    /// Sign an existing bundle's index.json.
    Sign(SignArgs),
    /// Check a bundle's signature and every blob's digest.
    Verify(VerifyArgs),
    /// List a bundle's entries, their sizes and what they share.
    Inspect(InspectArgs),
}

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new key pair, cosign.key (encrypted) and cosign.pub.
    ///
    /// The password comes from FERRY_KEY_PASSWORD, else COSIGN_PASSWORD.
    Generate {
        /// Directory to write the key pair into.
        #[arg(long, default_value = ".")]
        output_dir: PathBuf,
        /// Replace existing key files.
        #[arg(long)]
        force: bool,
    },
}

/// How to reach registries.
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryArgs {
    /// Trust this CA certificate (PEM) for registry TLS, beside the system roots. Repeatable.
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,
    /// Allow plain HTTP to this registry host (host[:port]) when HTTPS fails. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

/// Arguments of `ferry lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// The release manifest (YAML).
    pub manifest: PathBuf,
    /// Where to write the lock file [default: the manifest's path with extension .lock].
    #[arg(short = 'o', long = "out", value_name = "LOCK")]
    pub out: Option<PathBuf>,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `ferry build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The release manifest (YAML).
    pub manifest: PathBuf,
    /// The bundle directory to write (created, or completed when it exists).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
    /// Sign index.json with this cosign.key (password from FERRY_KEY_PASSWORD or COSIGN_PASSWORD).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Use the lock file as it is; fail if it is missing or out of date with the manifest.
    #[arg(long)]
    pub locked: bool,
    /// The lock file [default: the manifest's path with extension .lock].
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// Blobs downloaded at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `ferry sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The private key (cosign.key).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

/// Arguments of `ferry verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The public key (cosign.pub) the bundle must be signed with.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Check blobs only, without a signature (nothing proves who made the bundle).
    #[arg(long, conflicts_with = "key")]
    pub no_signature: bool,
    /// Hashing threads [default: the number of CPUs].
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// Arguments of `ferry inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle directory.
    pub dir: PathBuf,
}
