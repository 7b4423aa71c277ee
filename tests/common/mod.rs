//! Test harness for ferry's integration tests: real registries, generated OCI images, skopeo helpers.
//!
//! Use from a `tests/*.rs` file with `mod common;` and `use common::*;`.
//! Needs `docker-registry`, `skopeo`, `openssl` (also for token-auth keys), `htpasswd` and `containerd`/`ctr` on PATH, and
//! Stoplight Prism for the Harbor API tests (see [`prism`]); scripts/test.sh installs them.
//! Set `FERRY_TEST_KEEP=1` to keep each registry's (and Prism's) temp dir (config, log, storage)
//! for debugging.
//!
//! ```text
//! let reg = Registry::start_htpasswd("user", "pass");   // or start_plain / start_tls / start_token / start(opts)
//! let seeded = seed_registry(&reg);                      // library/alpine:3.20, app/{base,web,worker,big}:1
//! // run ferry against reg.addr() (reg.ca_cert_path() for TLS, reg.credentials() for auth),
//! // then compare what it wrote with seeded.alpine.digest(), seeded.web.image().layers, ...
//! let raw = skopeo_inspect_raw("app/web:1", &reg);
//! assert_eq!(digest_bytes(&raw), seeded.web.digest());
//! ```
//!
//! Custom images: `OciLayout::create(dir)` + `add_tagged_image` / `add_tagged_index`
//! with `ImageSpec`/`LayerSpec`, then `push(dir, "ref", &reg, "repo:tag")`.

#![allow(dead_code, unused_imports)]

pub mod apt_repo;
pub mod ceph;
pub mod containerd;
pub mod faultproxy;
pub mod ferry;
pub mod fileserver;
pub mod fixture;
pub mod git_server;
pub mod helm;
pub mod images;
pub mod nginx;
pub mod prism;
pub mod referrers;
pub mod registry;
pub mod sbom;
pub mod served;
pub mod skopeo;
pub mod static_server;
pub mod token;
pub mod upstream;
pub mod util;

pub use containerd::{Containerd, tar_layout};
pub use images::{
    Blob, ImageDigests, ImageSet, ImageSpec, Layer, LayerSpec, MT_CONFIG, MT_INDEX, MT_LAYER_GZIP,
    MT_MANIFEST, OciLayout, Platform, StandardLayout, describe_layout_ref, write_standard_layout,
};
pub use registry::{HttpResponse, Registry, RegistryOptions};
pub use skopeo::{
    Pushed, SeededImages, push, seed_registry, skopeo_inspect_config_raw, skopeo_inspect_raw,
    skopeo_inspect_raw_as, standard_layout,
};
pub use token::{Grant, TokenRequest, TokenServer};
pub use util::{
    digest_bytes, digest_file, free_port, run, run_expect_failure, run_unchecked, run_with,
    sha256_file, sha256_hex,
};
