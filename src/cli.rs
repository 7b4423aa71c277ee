//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::progress::OutputFormat;

/// ferry's version and the commit it was built from (build.rs): `0.1.0 (1a2b3c4d5e6f)`,
/// `-dirty` after the hash when built with uncommitted changes.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FERRY_COMMIT"), ")");

/// ferry carries a Kubernetes platform across an air gap: it pulls a release's images into one
/// signed, content-addressed OCI bundle, and verifies it on the other side.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version = VERSION,
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
    /// Seconds a server (registry, HTTP, apt, Harbor, S3) may stay silent, while connecting,
    /// before answering or in the middle of a download, before that attempt is given up
    /// [default: 60].
    #[arg(long, global = true, value_name = "SECONDS", env = "FERRY_TIMEOUT",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Times a failed request is tried again (after a dropped connection, a timeout, 429 or
    /// 5xx), waiting what the server's Retry-After asks (an S3 store's is not followed) or a
    /// doubling backoff from 250 ms [default: 4].
    #[arg(long, global = true, value_name = "N", env = "FERRY_RETRIES")]
    pub retries: Option<u32>,
    /// S3 endpoint for `s3://BUCKET/PREFIX` bundles and caches (Ceph RGW, MinIO: addressed
    /// path-style); overrides AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL and the profile's
    /// endpoint_url.
    #[arg(long, global = true, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// A CA certificate (PEM) the S3 endpoint's certificate may chain to, besides the
    /// system's roots (repeatable).
    #[arg(long, global = true, value_name = "FILE")]
    pub s3_ca_file: Vec<PathBuf>,
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
    /// Print the bill of materials of a bundle (CycloneDX 1.6 JSON), after checking its signature.
    Sbom(SbomArgs),
    /// Import a verified bundle into a site's targets: every target of a site file
    /// (`ferry import SOURCE --site site.yaml`), or one target (`ferry import registry ...`).
    Import(ImportArgs),
    /// Import everything into the site (`import --site`), check it is ready, then run the
    /// site's install command.
    Install(InstallArgs),
    /// Print a K3s registries.yaml that mirrors every upstream registry of a bundle to a target.
    RegistriesConfig(RegistriesConfigArgs),
    /// Store credentials for a registry in the auth file, as `docker login` does.
    Login(LoginArgs),
    /// Serve a bundle read-only as an OCI registry (bootstrap before Harbor runs).
    Serve(ServeArgs),
    /// Pack a bundle into tar volumes for USB media (FAT32: --volume-size fat32).
    Pack(PackArgs),
    /// Restore a bundle directory from its tar volumes.
    Unpack(UnpackArgs),
    /// What changed between two releases: entries added, removed and changed, bytes new.
    Diff(DiffArgs),
    /// List the images the manifest's charts would pull that the manifest does not carry.
    Check(CheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on standard output.
    Completions(CompletionsArgs),
    /// Write ferry's man pages, one per command (ferry.1, ferry-pack.1, ...).
    Man(ManArgs),
}

/// Arguments of `ferry completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `ferry man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory to write the pages into (created when missing), e.g.
    /// /usr/local/share/man/man1.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// Arguments of `ferry diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier bundle: a directory, or its packed volumes (a volume file or the directory
    /// holding them).
    pub old: PathBuf,
    /// The later bundle: a directory, or its packed volumes (a volume file or the directory
    /// holding them).
    pub new: PathBuf,
}

/// Arguments of `ferry pack`.
#[derive(Debug, Args)]
pub struct PackArgs {
    /// The bundle directory.
    pub dir: PathBuf,
    /// Output path and name: OUT.tar, or OUT.001.tar, OUT.002.tar, ... with --volume-size.
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub out: PathBuf,
    /// Largest volume: bytes with K/M/G/T suffix (4G, 4000M) or `fat32` (4 GiB - 1 byte).
    #[arg(long, value_name = "SIZE")]
    pub volume_size: Option<String>,
    /// Compress each volume with zstd (.tar.zst).
    #[arg(long)]
    pub zstd: bool,
    /// Sign SHA256SUMS into SHA256SUMS.sig with this cosign.key, the release key (password
    /// from FERRY_KEY_PASSWORD or COSIGN_PASSWORD). Without it SHA256SUMS is unsigned and
    /// nothing on the media proves where its ferry binary came from.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The ferry binary to write beside the volumes as `ferry` [default: this ferry].
    #[arg(long, value_name = "PATH")]
    pub ferry_binary: Option<PathBuf>,
}

/// Arguments of `ferry unpack`.
#[derive(Debug, Args)]
pub struct UnpackArgs {
    /// The volumes, in any order.
    #[arg(required = true)]
    pub volumes: Vec<PathBuf>,
    /// The bundle directory to restore into.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: PathBuf,
}

/// Arguments of `ferry check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The release manifest (YAML).
    pub manifest: PathBuf,
    /// The lock file [default: the manifest's path with extension .lock].
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
}

/// Arguments of `ferry import`: a site file, or a subcommand for one target.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ImportArgs {
    /// One target only.
    #[command(subcommand)]
    pub command: Option<ImportCommand>,
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    pub source: Option<PathBuf>,
    /// The site file (site.yaml) naming every target.
    #[arg(long, value_name = "FILE")]
    pub site: Option<PathBuf>,
    /// Everything else of a site import.
    #[command(flatten)]
    pub run: SiteRunArgs,
}

/// Arguments of `ferry install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    pub source: PathBuf,
    /// The site file (site.yaml) naming every target and the install command.
    #[arg(long, value_name = "FILE")]
    pub site: PathBuf,
    /// Everything else of a site import.
    #[command(flatten)]
    pub run: SiteRunArgs,
}

/// What `import --site` and `install` share.
#[derive(Debug, Args, Clone)]
pub struct SiteRunArgs {
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// Signature check.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Where the rendered configuration goes [default: spec.output, else ferry-site beside
    /// the site file].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print every step (targets, files rendered, checks, the command) without doing any.
    #[arg(long)]
    pub dry_run: bool,
    /// Registry uploads at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
}

/// Where to import.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Push every image and chart of a bundle into Harbor or any OCI registry.
    Registry(ImportRegistryArgs),
    /// Write every release file of a bundle into a directory (and a K3s airgap_dir layout).
    Files(ImportFilesArgs),
    /// Write the bundle's charts into a classic Helm chart repository directory.
    Charts(ImportChartsArgs),
    /// Write (or add to) a signed apt mirror directory from a bundle's apt packages.
    Apt(ImportAptArgs),
    /// Write the bundle's Git repositories as bare repositories into a directory
    /// (refs move only by fast-forward).
    Git(ImportGitArgs),
    /// Write the bundle's directory trees (model stores) into a directory, each atomically.
    Trees(ImportTreesArgs),
}

/// Arguments of `ferry import trees`.
#[derive(Debug, Args)]
pub struct ImportTreesArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    pub source: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// The directory the trees go into (`DIR/<name>`, created when missing).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Signature check.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Give every file, directory and link to this numeric owner, e.g. 1000:2000 for NIM's
    /// model cache (needs root).
    #[arg(long, value_name = "UID:GID")]
    pub owner: Option<String>,
}

/// Arguments of `ferry import git`.
#[derive(Debug, Args)]
pub struct ImportGitArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    pub source: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// The directory of bare repositories (`DIR/<name>.git`, created when missing).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Signature check.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Move refs also when the new history does not contain the old one (a rewrite
    /// upstream); without it such a ref stops the import.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `ferry import files`.
#[derive(Debug, Args)]
pub struct ImportFilesArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    pub source: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// The directory to write the files into (created when missing), with a SHA256SUMS.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Signature check.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Also lay out the directory k3s-ansible's `airgap_dir` expects: k3s or k3s-<arch>,
    /// k3s-install.sh, k3s-airgap-images-<arch>.tar.zst.
    #[arg(long, value_name = "DIR")]
    pub k3s_airgap_dir: Option<PathBuf>,
}

/// Arguments of `ferry import charts`.
#[derive(Debug, Args)]
pub struct ImportChartsArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    pub source: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// The chart repository directory (created when missing; its index.yaml is merged).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Absolute URL the repository is served under; index.yaml's urls are relative without it.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Signature check.
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// Arguments of `ferry import apt`.
#[derive(Debug, Args)]
pub struct ImportAptArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    pub source: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// The mirror directory to write; what it already holds is kept and merged.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Signature check.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The site's apt signing key (`ferry key generate --apt`; password from FERRY_KEY_PASSWORD).
    #[arg(long, value_name = "KEY")]
    pub signing_key: PathBuf,
    /// Put every package into this one suite [default: keep the upstream suite names].
    #[arg(long, value_name = "NAME")]
    pub suite: Option<String>,
    /// The URL hosts reach the mirror at, for ferry.sources [default: file://DIR].
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// Where the volumes of a packed bundle are, when SOURCE is a volume or a USB mount point.
#[derive(Debug, Args, Clone, Default)]
pub struct VolumeArgs {
    /// Where the other volumes appear (e.g. the USB mount point) [default: beside SOURCE].
    #[arg(long, value_name = "DIR")]
    pub volumes_dir: Option<PathBuf>,
    /// Wait for a missing volume to be inserted, also when not on a terminal (on a terminal
    /// ferry always asks for it and waits).
    #[arg(long)]
    pub wait: bool,
}

/// How the bundle's signature is checked before anything is taken from it.
#[derive(Debug, Args, Clone)]
pub struct TrustArgs {
    /// The public key (cosign.pub) the bundle must be signed with.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Take the bundle without checking its signature (nothing proves who made it).
    #[arg(long, conflicts_with = "key")]
    pub no_signature: bool,
}

/// Harbor project settings for `--harbor`.
#[derive(Debug, Args, Clone, Default)]
pub struct HarborArgs {
    /// Create the Harbor projects the mapping needs (first path segment) before pushing.
    #[arg(long)]
    pub harbor: bool,
    /// Harbor API base URL [default: https://HOST/api/v2.0].
    #[arg(long, value_name = "URL", requires = "harbor")]
    pub harbor_api: Option<String>,
    /// Make created projects public (anonymous pull).
    #[arg(long, requires = "harbor")]
    pub harbor_public: bool,
    /// Turn on cosign content trust for created projects (Harbor then serves only signed images).
    #[arg(long, requires = "harbor")]
    pub harbor_content_trust_cosign: bool,
}

/// Arguments of `ferry import registry`.
#[derive(Debug, Args)]
pub struct ImportRegistryArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    pub source: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// The target registry: HOST[:PORT][/PREFIX].
    #[arg(long, value_name = "HOST[/PREFIX]")]
    pub to: String,
    /// Signature check.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Harbor projects.
    #[command(flatten)]
    pub harbor: HarborArgs,
    /// Uploads at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `ferry registries-config`.
#[derive(Debug, Args)]
pub struct RegistriesConfigArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    pub source: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// The site registry the mirrors point at: HOST[:PORT][/PREFIX].
    #[arg(long, value_name = "HOST[/PREFIX]")]
    pub to: String,
    /// CA file for the site registry, as the cluster nodes see it (written to `configs`).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Endpoint scheme of the site registry.
    #[arg(long, default_value = "https", value_parser = ["https", "http"])]
    pub scheme: String,
    /// Write `configs.<host>.auth` from FERRY_REGISTRY_USERNAME / FERRY_REGISTRY_PASSWORD.
    #[arg(long)]
    pub auth_from_env: bool,
}

/// Arguments of `ferry login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry host[:port].
    pub host: String,
    /// User name [default: FERRY_REGISTRY_USERNAME].
    #[arg(short, long)]
    pub username: Option<String>,
    /// Check the credentials against the registry before saving them.
    #[arg(long)]
    pub verify: bool,
    /// Registry access (for --verify).
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Arguments of `ferry serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    pub source: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000", value_name = "ADDR")]
    pub listen: String,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Check the bundle's signature with this public key before serving.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Serve the bundle's apt packages under /apt/ as a mirror signed with this key
    /// (`ferry key generate --apt`; password from FERRY_KEY_PASSWORD).
    #[arg(long, value_name = "KEY")]
    pub apt_signing_key: Option<PathBuf>,
    /// Put every apt package into this one suite [default: keep the upstream suite names].
    #[arg(long, value_name = "NAME", requires = "apt_signing_key")]
    pub apt_suite: Option<String>,
    /// Also serve the bare repositories of this directory (what `ferry import git` wrote)
    /// under /git/, instead of the bundle's own.
    #[arg(long, value_name = "DIR")]
    pub git_dir: Option<PathBuf>,
    /// Most descriptors per page of a referrers listing (`GET /v2/<name>/referrers/<digest>`)
    /// when the client gives no `n`; the rest follows through `Link: <...>; rel="next"`.
    #[arg(long, default_value_t = crate::serve::referrers::DEFAULT_PAGE_SIZE as u32, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub referrers_page_size: u32,
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
        /// Make the site's apt signing key instead (OpenPGP Ed25519): ferry-apt-secret.asc
        /// (protected by the password), ferry-apt-public.asc and the keyring ferry-apt.gpg.
        #[arg(long)]
        apt: bool,
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

impl From<&RegistryArgs> for crate::distribution::RegistryOptions {
    fn from(args: &RegistryArgs) -> Self {
        Self::new(args.ca_files.clone(), args.insecure_registries.clone())
    }
}

/// How release files may be pinned, for `lock` and `build`.
#[derive(Debug, Args, Clone, Default)]
pub struct FileArgs {
    /// Accept files with neither sha256 nor checksums in the manifest; the lock records the
    /// sha256 seen when locking and marks them unpinned.
    #[arg(long)]
    pub allow_unpinned: bool,
}

/// The Helm that renders charts at lock time, for `lock` and `build`.
#[derive(Debug, Args, Clone, Default)]
pub struct HelmArgs {
    /// The helm binary that renders the charts to find their images (Helm 3.8+ or 4)
    /// [default: $FERRY_HELM, else `helm` on PATH; without one, images are guessed from the
    /// charts' values and lock says so].
    #[arg(long = "helm", value_name = "PATH")]
    pub helm: Option<PathBuf>,
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
    /// Release files.
    #[command(flatten)]
    pub files: FileArgs,
    /// Chart rendering.
    #[command(flatten)]
    pub helm: HelmArgs,
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
    /// Build a delta: leave out the blobs this earlier bundle has (its directory, its packed
    /// volumes, or its index.json).
    #[arg(long, value_name = "OLD")]
    pub since: Option<PathBuf>,
    /// A blob cache shared by builds (s3://BUCKET/PREFIX): image blobs and release files are
    /// taken from it when it has them, and added to it when fetched, each fetched from upstream once between
    /// builds running at the same time (endpoint and credentials as for any s3:// location).
    #[arg(long, value_name = "S3_LOCATION")]
    pub cache: Option<String>,
    /// Registry access.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Release files.
    #[command(flatten)]
    pub files: FileArgs,
    /// Chart rendering (when the lock is made or updated).
    #[command(flatten)]
    pub helm: HelmArgs,
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
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    #[arg(value_name = "SOURCE")]
    pub dir: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
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

/// Arguments of `ferry sbom`.
#[derive(Debug, Args)]
pub struct SbomArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    #[arg(value_name = "SOURCE")]
    pub dir: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
    /// The bundle's signature.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// The SBOM format (the bundle carries both, made from the same lock).
    #[arg(long, value_enum, default_value = "cyclonedx")]
    pub format: SbomFormat,
}

/// SBOM formats `ferry sbom` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    /// CycloneDX 1.6 JSON, as `build` wrote it.
    Cyclonedx,
    /// SPDX 2.3 JSON, as `build` wrote it.
    Spdx,
}

/// Arguments of `ferry inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bundle: a directory, a packed volume (NAME.tar, NAME.001.tar) or the directory
    /// (USB mount point) holding the volumes.
    #[arg(value_name = "SOURCE")]
    pub dir: PathBuf,
    /// Packed volumes.
    #[command(flatten)]
    pub volumes: VolumeArgs,
}
