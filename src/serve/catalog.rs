//! The repositories a bundle serves: names, tags, and which digests belong to which repository.
//!
//! A real registry answers a digest only in the repository that holds it, and clients rely
//! on that (a pull of `a@sha256:x` must not succeed because `b` has `x`), so every repository
//! keeps its own set of manifests and blobs, taken from the walk of its entries.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::digest::Digest;
use crate::layout::graph::Entry;
use crate::layout::oci::{is_index, is_manifest};
use crate::manifest::reference::Reference;
use crate::mapping::{Target, mapped_registry};

/// The `dev.ferry.kind` of entries served as image repositories.
const IMAGE_KIND: &str = "image";
/// Signatures, attestations and SBOMs: served in their image's repository.
const REFERRER_KIND: &str = crate::source::referrers::KIND;

/// One repository: its tags and every document and blob its entries need.
#[derive(Debug, Clone, Default)]
pub struct Repository {
    /// Full name: the upstream registry mapped into a path, then the upstream repository.
    pub name: String,
    /// Tag to the entry's digest.
    tags: BTreeMap<String, Digest>,
    /// Manifests and indexes reachable by digest, with their media types.
    manifests: HashMap<Digest, String>,
    /// Every blob of the repository's entries (manifests included, as registries do), with
    /// the size its descriptor states.
    blobs: HashMap<Digest, u64>,
    /// Tags that came from digest-pinned references (`name:tag@digest`); a plain tag wins.
    pinned_tags: BTreeSet<String>,
    /// Referrers linked by `subject`, by subject digest: the referrers API's listings.
    referrers: BTreeMap<Digest, Vec<crate::layout::oci::Descriptor>>,
}

impl Repository {
    /// The manifest a tag or digest names here, with its media type.
    pub fn manifest_by_tag(&self, tag: &str) -> Option<(&Digest, &str)> {
        let digest = self.tags.get(tag)?;
        self.manifests
            .get_key_value(digest)
            .map(|(d, mt)| (d, mt.as_str()))
    }

    /// The media type of a manifest of this repository.
    pub fn manifest_by_digest(&self, digest: &Digest) -> Option<&str> {
        self.manifests.get(digest).map(String::as_str)
    }

    /// Whether the blob belongs to this repository.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blobs.contains_key(digest)
    }

    /// The referrer manifests (with `subject`) of `subject`, in bundle order.
    pub fn referrers(&self, subject: &Digest) -> &[crate::layout::oci::Descriptor] {
        self.referrers
            .get(subject)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Tags in lexical order, as registries list them.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.tags.keys().map(String::as_str)
    }

    /// Every blob of the repository with its descriptor size.
    pub fn blobs(&self) -> impl Iterator<Item = (&Digest, u64)> {
        self.blobs.iter().map(|(d, s)| (d, *s))
    }
}

/// Every repository of a bundle, by full name, with short names (no upstream host) as aliases.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    repositories: BTreeMap<String, Repository>,
    /// Upstream repository path (`cilium/cilium`) to the full names that end in it.
    short_names: BTreeMap<String, BTreeSet<String>>,
    /// Entries of other kinds (charts, files, apt), by kind: not images, not served here.
    other_kinds: BTreeMap<String, usize>,
}

/// What a repository name asked for resolves to.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// Exactly one repository.
    Found(&'a Repository),
    /// No repository by that name.
    Unknown,
    /// A short name that several upstream registries share: the full names to use instead.
    Ambiguous(Vec<&'a str>),
}

impl Catalog {
    /// Builds the catalog from a walk's entries; returns notes on entries it had to skip or
    /// tags that two entries claim.
    pub fn build(entries: &[Entry]) -> (Catalog, Vec<String>) {
        let mapping = Target {
            host: String::new(),
            prefix: String::new(),
        };
        let mut catalog = Catalog::default();
        let mut notes = Vec::new();
        for entry in entries {
            // Charts, files and apt sources get their own endpoints, not image repositories.
            if entry.kind != IMAGE_KIND && entry.kind != REFERRER_KIND {
                *catalog.other_kinds.entry(entry.kind.clone()).or_default() += 1;
                continue;
            }
            let reference = match Reference::parse(&entry.reference) {
                Ok(r) => r,
                Err(e) => {
                    notes.push(format!(
                        "entry {} ({}) is not served: its name is not an image reference ({e})",
                        entry.descriptor.digest, entry.reference
                    ));
                    continue;
                }
            };
            let name = mapping.repository_for(&reference);
            catalog
                .short_names
                .entry(reference.repository().to_string())
                .or_default()
                .insert(name.clone());
            let repo = catalog
                .repositories
                .entry(name.clone())
                .or_insert_with(|| Repository {
                    name,
                    ..Repository::default()
                });
            let top = &entry.descriptor;
            // The entry itself is a manifest whatever its media type says (it is in index.json).
            repo.manifests
                .entry(top.digest.clone())
                .or_insert_with(|| top.media_type.clone());
            repo.blobs.entry(top.digest.clone()).or_insert(top.size);
            for blob in &entry.blobs {
                if is_index(&blob.media_type) || is_manifest(&blob.media_type) {
                    repo.manifests
                        .entry(blob.digest.clone())
                        .or_insert_with(|| blob.media_type.clone());
                }
                repo.blobs.entry(blob.digest.clone()).or_insert(blob.size);
            }
            if entry.kind == REFERRER_KIND
                && reference.tag().is_none()
                && let Some(subject) = entry
                    .descriptor
                    .annotations
                    .get(crate::source::referrers::ANNOTATION_SUBJECT)
                    .and_then(|s| Digest::parse(s).ok())
            {
                let list = repo.referrers.entry(subject).or_default();
                if !list.iter().any(|d| d.digest == top.digest) {
                    list.push(top.clone());
                }
            }
            if let Some(tag) = reference.tag() {
                let pinned = reference.digest().is_some();
                match repo.tags.get(tag) {
                    None => {
                        repo.tags.insert(tag.to_string(), top.digest.clone());
                        if pinned {
                            repo.pinned_tags.insert(tag.to_string());
                        }
                    }
                    Some(existing) if *existing == top.digest => {
                        if !pinned {
                            repo.pinned_tags.remove(tag);
                        }
                    }
                    // A plain `name:tag` says what the tag is now; a pinned one only what it was.
                    Some(_) if !pinned && repo.pinned_tags.remove(tag) => {
                        repo.tags.insert(tag.to_string(), top.digest.clone());
                    }
                    Some(existing) => notes.push(format!(
                        "{}:{tag} is claimed by two entries; serving {existing}, not {}",
                        repo.name, top.digest
                    )),
                }
            }
        }
        (catalog, notes)
    }

    /// Finds a repository by full name, or by the upstream path alone when that is unambiguous.
    ///
    /// `namespace` is the upstream registry a mirroring client names in the `ns` query
    /// parameter (containerd does, K3s too); with it a short name means that registry's
    /// repository and no other.
    pub fn lookup(&self, name: &str, namespace: Option<&str>) -> Lookup<'_> {
        if let Some(repo) = self.repositories.get(name) {
            return Lookup::Found(repo);
        }
        if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
            let full = format!("{}/{name}", mapped_registry(ns));
            return match self.repositories.get(&full) {
                Some(repo) => Lookup::Found(repo),
                None => Lookup::Unknown,
            };
        }
        match self.short_names.get(name) {
            Some(full) if full.len() == 1 => {
                let only = full.iter().next().expect("one name");
                Lookup::Found(&self.repositories[only])
            }
            Some(full) => Lookup::Ambiguous(full.iter().map(String::as_str).collect()),
            None => Lookup::Unknown,
        }
    }

    /// Full repository names in lexical order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.repositories.keys().map(String::as_str)
    }

    /// The repositories.
    pub fn repositories(&self) -> impl Iterator<Item = &Repository> {
        self.repositories.values()
    }

    /// Number of repositories.
    pub fn len(&self) -> usize {
        self.repositories.len()
    }

    /// Whether the bundle serves nothing.
    pub fn is_empty(&self) -> bool {
        self.repositories.is_empty()
    }

    /// Entries that are not images, counted by kind.
    pub fn other_kinds(&self) -> &BTreeMap<String, usize> {
        &self.other_kinds
    }

    /// Number of tags over all repositories.
    pub fn tag_count(&self) -> usize {
        self.repositories.values().map(|r| r.tags.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::oci::{DOCKER_MANIFEST, Descriptor, OCI_INDEX, OCI_MANIFEST};

    fn digest(n: u8) -> Digest {
        Digest::of_bytes(&[n])
    }

    fn desc(n: u8, media_type: &str) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: digest(n),
            size: u64::from(n) * 10,
            platform: None,
            annotations: Default::default(),
            artifact_type: None,
        }
    }

    /// An entry whose top document is `top`, needing blobs `blobs` (documents first).
    fn entry(reference: &str, top: Descriptor, blobs: Vec<Descriptor>) -> Entry {
        let mut all = vec![top.clone()];
        all.extend(blobs);
        Entry {
            kind: "image".into(),
            reference: reference.into(),
            descriptor: top,
            platforms: vec![],
            blobs: all,
        }
    }

    fn found<'a>(lookup: Lookup<'a>) -> &'a Repository {
        match lookup {
            Lookup::Found(r) => r,
            other => panic!("expected a repository, got {other:?}"),
        }
    }

    #[test]
    fn full_and_short_names_tags_and_digests() {
        let (catalog, notes) = Catalog::build(&[
            entry(
                "quay.io/cilium/cilium:v1.16.5",
                desc(1, OCI_INDEX),
                vec![
                    desc(2, OCI_MANIFEST),
                    desc(3, "application/vnd.oci.image.config.v1+json"),
                    desc(4, "application/vnd.oci.image.layer.v1.tar+gzip"),
                ],
            ),
            entry(
                "docker.io/library/redis:7.4",
                desc(5, DOCKER_MANIFEST),
                vec![desc(6, "application/vnd.docker.container.image.v1+json")],
            ),
            entry(
                &format!("localhost:5000/app@{}", digest(7)),
                desc(7, OCI_MANIFEST),
                vec![desc(8, "application/vnd.oci.image.config.v1+json")],
            ),
        ]);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            catalog.names().collect::<Vec<_>>(),
            [
                "docker.io/library/redis",
                "localhost_5000/app",
                "quay.io/cilium/cilium"
            ]
        );
        assert_eq!(catalog.len(), 3);
        assert_eq!(catalog.tag_count(), 2);

        let cilium = found(catalog.lookup("quay.io/cilium/cilium", None));
        assert_eq!(
            cilium.manifest_by_tag("v1.16.5"),
            Some((&digest(1), OCI_INDEX))
        );
        // The child manifest of the index is reachable by digest; the config is a blob only.
        assert_eq!(cilium.manifest_by_digest(&digest(2)), Some(OCI_MANIFEST));
        assert_eq!(cilium.manifest_by_digest(&digest(3)), None);
        assert!(cilium.has_blob(&digest(3)) && cilium.has_blob(&digest(4)));
        // Nothing of another repository.
        assert!(!cilium.has_blob(&digest(6)));
        assert_eq!(cilium.manifest_by_digest(&digest(5)), None);

        // Short names, and the `ns` a mirroring containerd sends.
        assert_eq!(
            found(catalog.lookup("cilium/cilium", None)).name,
            "quay.io/cilium/cilium"
        );
        assert_eq!(
            found(catalog.lookup("library/redis", Some("docker.io"))).name,
            "docker.io/library/redis"
        );
        assert!(matches!(
            catalog.lookup("library/redis", Some("quay.io")),
            Lookup::Unknown
        ));
        let app = found(catalog.lookup("app", Some("localhost:5000")));
        assert_eq!(app.tags().count(), 0);
        assert_eq!(app.manifest_by_digest(&digest(7)), Some(OCI_MANIFEST));
        assert!(matches!(catalog.lookup("redis", None), Lookup::Unknown));
        assert!(matches!(catalog.lookup("cilium", None), Lookup::Unknown));
    }

    #[test]
    fn a_short_name_two_registries_share_is_ambiguous() {
        let (catalog, _) = Catalog::build(&[
            entry("quay.io/app/web:1", desc(1, OCI_MANIFEST), vec![]),
            entry("ghcr.io/app/web:1", desc(2, OCI_MANIFEST), vec![]),
        ]);
        match catalog.lookup("app/web", None) {
            Lookup::Ambiguous(names) => assert_eq!(names, ["ghcr.io/app/web", "quay.io/app/web"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            found(catalog.lookup("app/web", Some("ghcr.io"))).name,
            "ghcr.io/app/web"
        );
        assert_eq!(
            found(catalog.lookup("quay.io/app/web", None))
                .manifest_by_tag("1")
                .unwrap()
                .0,
            &digest(1)
        );
    }

    #[test]
    fn tags_from_pinned_references_give_way_to_plain_tags() {
        let pinned = format!("quay.io/x/y:1@{}", digest(1));
        let (catalog, notes) = Catalog::build(&[
            entry(&pinned, desc(1, OCI_MANIFEST), vec![]),
            entry("quay.io/x/y:1", desc(2, OCI_MANIFEST), vec![]),
            entry("quay.io/x/y:2", desc(3, OCI_MANIFEST), vec![]),
            entry("quay.io/x/y:2", desc(4, OCI_MANIFEST), vec![]),
            entry("not a reference", desc(5, OCI_MANIFEST), vec![]),
            Entry {
                kind: "chart".into(),
                ..entry("quay.io/x/chart:1", desc(6, OCI_MANIFEST), vec![])
            },
        ]);
        assert_eq!(catalog.other_kinds().get("chart"), Some(&1));
        assert!(matches!(
            catalog.lookup("quay.io/x/chart", None),
            Lookup::Unknown
        ));
        let repo = found(catalog.lookup("quay.io/x/y", None));
        assert_eq!(repo.manifest_by_tag("1").unwrap().0, &digest(2));
        assert_eq!(repo.manifest_by_digest(&digest(1)), Some(OCI_MANIFEST));
        assert_eq!(repo.manifest_by_tag("2").unwrap().0, &digest(3));
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("claimed by two entries"), "{notes:?}");
        assert!(notes[1].contains("not a reference"), "{notes:?}");
    }
}
