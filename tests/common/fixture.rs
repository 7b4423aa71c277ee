//! The bundle most end-to-end tests start from: images seeded into a registry, a manifest
//! naming some of them, a signed build.

use std::path::PathBuf;

use super::ferry::Env;
use super::registry::Registry;
use super::skopeo::{SeededImages, seed_registry};

/// A signed bundle built from a seeded source registry.
pub struct SeededBundle {
    /// The environment (keys, HOME) it was built in.
    pub env: Env,
    /// The source registry, still running.
    pub source: Registry,
    /// What the source holds.
    pub seeded: SeededImages,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The public key it is signed with.
    pub public: PathBuf,
}

impl SeededBundle {
    /// Seeds a registry, writes a manifest with the images `images(source_addr, seeded)`
    /// returns, and builds it signed.
    pub fn build(images: impl FnOnce(&str, &SeededImages) -> Vec<String>) -> SeededBundle {
        let source = Registry::start_plain();
        let seeded = seed_registry(&source);
        let env = Env::new();
        let (_, public) = env.keys();
        let manifest = env.images_manifest("release.yaml", &images(&source.addr(), &seeded));
        let bundle = env.build_signed(&manifest, "bundle");
        SeededBundle {
            env,
            source,
            seeded,
            bundle,
            public,
        }
    }

    /// A copy of the bundle in `dir` whose index names another release (`"1"` becomes `"2"`):
    /// the same blobs under another table of contents, as a foreign bundle's volumes have.
    pub fn copy_as_other_release(&self, dir: &std::path::Path) {
        std::fs::create_dir_all(dir).unwrap();
        super::run(
            std::process::Command::new("cp")
                .arg("-r")
                .arg(self.bundle.join("."))
                .arg(dir),
        );
        let index = std::fs::read_to_string(dir.join("index.json")).unwrap();
        std::fs::write(dir.join("index.json"), index.replace("\"1\"", "\"2\"")).unwrap();
    }

    /// The source registry as a repository path segment at the target (`127.0.0.1_PORT`).
    pub fn mapped(&self) -> String {
        self.source.addr().replace(':', "_")
    }
}
