//! Reading a bundle straight from the tar volumes `ferry pack` wrote, without unpacking.
//!
//! Each volume is indexed once by walking its tar headers (seeking over the data), with the
//! same name rules as `unpack`: only the names `pack` writes, only regular files, each once.
//! Volume 1's table of contents gives the index, its signature and the plan (which blob, or
//! which chunk of it, is in which volume). Blob bytes are then read in place; the layout's
//! blob reader checks every digest on the way. Volumes may sit on different USB sticks: a
//! volume that is not there is waited for (when asked to) or reported with every other
//! missing volume.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::archive::ArchiveError;
use crate::archive::plan::{LABEL_FILE, PLAN_FILE, VolumeLabel, VolumePlan, volume_file_name};
use crate::archive::unpack::{Name, ZSTD_MAGIC, classify};
use crate::digest::Digest;
use crate::layout::MAX_MANIFEST_SIZE;
use crate::layout::blob_reader::{PackedPart, PackedStore};

/// What happened to a volume, for progress output.
#[derive(Debug, Clone)]
pub enum VolumeEvent {
    /// A volume is needed and not there; ferry waits for it.
    Waiting {
        /// Its number.
        number: u32,
        /// How many volumes the pack has.
        count: u32,
        /// The file name ferry looks for.
        file: String,
        /// Where it looks.
        dir: PathBuf,
    },
    /// A volume was found and indexed; reading it starts.
    Reading {
        /// Its number.
        number: u32,
        /// How many volumes the pack has.
        count: u32,
        /// Its path.
        path: PathBuf,
    },
}

/// Callback for [`VolumeEvent`]s.
pub type VolumeObserver = Arc<dyn Fn(&VolumeEvent) + Send + Sync>;

/// How to find and wait for volumes.
#[derive(Clone, Default)]
pub struct VolumeOptions {
    /// Where volumes appear (e.g. the USB mount point) [default: beside the volume given].
    pub dir: Option<PathBuf>,
    /// Wait for a missing volume to appear instead of failing.
    pub wait: bool,
    /// Told when a volume is waited for or starts being read.
    pub observer: Option<VolumeObserver>,
    /// How often to look for a volume that is waited for.
    pub poll: Option<Duration>,
}

impl std::fmt::Debug for VolumeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VolumeOptions")
            .field("dir", &self.dir)
            .field("wait", &self.wait)
            .finish()
    }
}

/// Whether `path` should be read as packed volumes: a file, or a directory without an
/// `oci-layout` (a USB stick holding volumes).
pub fn is_packed_source(path: &Path) -> bool {
    path.is_file() || (path.is_dir() && !path.join("oci-layout").exists())
}

/// One volume's tar index.
#[derive(Debug)]
struct Scanned {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    /// Entry name -> (offset of its data, size).
    entries: HashMap<String, (u64, u64)>,
    label: Option<VolumeLabel>,
    plan: Option<VolumePlan>,
    index: Option<Vec<u8>>,
    signature: Option<String>,
    blobs: Vec<(Digest, String, u64)>,
}

fn stamp(path: &Path) -> io::Result<(u64, Option<SystemTime>)> {
    let m = fs::metadata(path)?;
    Ok((m.len(), m.modified().ok()))
}

/// Walks a volume's tar headers, refusing anything `pack` never writes.
fn scan(path: &Path) -> Result<Scanned, ArchiveError> {
    let volume = path.display().to_string();
    let io_err = |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let damaged = |e: io::Error| ArchiveError::Damaged {
        volume: volume.clone(),
        reason: e.to_string(),
    };
    let mut file = File::open(path).map_err(io_err)?;
    let (len, modified) = stamp(path).map_err(io_err)?;
    let mut magic = [0u8; 4];
    let got = file.read(&mut magic).map_err(io_err)?;
    if got == 4 && magic == ZSTD_MAGIC {
        return Err(ArchiveError::Compressed { volume });
    }
    let file = File::open(path).map_err(io_err)?;
    let mut archive = tar::Archive::new(file);
    let mut scanned = Scanned {
        path: path.to_path_buf(),
        len,
        modified,
        entries: HashMap::new(),
        label: None,
        plan: None,
        index: None,
        signature: None,
        blobs: Vec::new(),
    };
    let mut end = 0u64;
    for entry in archive.entries_with_seek().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = classify(&volume, &name, entry.header().entry_type())?;
        if matches!(kind, Name::Directory) {
            continue;
        }
        let trimmed = name.trim_start_matches("./").to_string();
        let offset = entry.raw_file_position();
        let size = entry.size();
        if offset.checked_add(size).is_none_or(|e| e > len) {
            return Err(ArchiveError::Damaged {
                volume,
                reason: format!(
                    "{trimmed} needs {size} bytes from offset {offset}, but the file has {len}: it is truncated"
                ),
            });
        }
        end = end.max(offset + size);
        if scanned
            .entries
            .insert(trimmed.clone(), (offset, size))
            .is_some()
        {
            return Err(ArchiveError::Hostile {
                volume,
                entry: name,
                reason: "the same name twice in one volume".to_string(),
            });
        }
        let mut small = || -> Result<Vec<u8>, ArchiveError> {
            if size > MAX_MANIFEST_SIZE {
                return Err(ArchiveError::Hostile {
                    volume: volume.clone(),
                    entry: name.clone(),
                    reason: "far larger than such a file can be".to_string(),
                });
            }
            let mut buf = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut buf).map_err(damaged)?;
            Ok(buf)
        };
        match kind {
            Name::Index => scanned.index = Some(small()?),
            Name::Signature => {
                scanned.signature = Some(String::from_utf8_lossy(&small()?).into_owned())
            }
            Name::Plan => {
                let bytes = small()?;
                scanned.plan =
                    Some(
                        serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Damaged {
                            volume: volume.clone(),
                            reason: format!("{PLAN_FILE}: {e}"),
                        })?,
                    );
            }
            Name::Label => {
                let bytes = small()?;
                scanned.label =
                    Some(
                        serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Damaged {
                            volume: volume.clone(),
                            reason: format!("{LABEL_FILE}: {e}"),
                        })?,
                    );
            }
            Name::Blob(digest) => scanned.blobs.push((digest, trimmed, size)),
            Name::OciLayout | Name::Chunk(..) | Name::Directory => {}
        }
    }
    // A tar ends with two zero blocks; a volume cut right after its last entry lost them.
    if len < end.div_ceil(512) * 512 + 1024 {
        return Err(ArchiveError::Damaged {
            volume,
            reason: "the end-of-archive blocks are missing: it is truncated".to_string(),
        });
    }
    Ok(scanned)
}

/// A volume ferry has indexed, and what it was when indexed.
#[derive(Debug, Clone)]
struct Indexed {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    entries: Arc<HashMap<String, (u64, u64)>>,
}

/// A packed bundle read in place from its volumes.
#[derive(Debug)]
pub struct VolumeSet {
    describe: String,
    name: String,
    count: u32,
    dir: PathBuf,
    /// The one file of a pack without a volume size (it has no label or plan).
    single: Option<PathBuf>,
    index: Vec<u8>,
    signature: Option<String>,
    blobs: BTreeMap<Digest, Vec<PackedPart>>,
    /// Order of each blob's first piece within its volume.
    order: HashMap<Digest, (u32, u64)>,
    index_digest: Digest,
    wait: bool,
    poll: Duration,
    observer: Option<ObserverBox>,
    volumes: Mutex<BTreeMap<u32, Indexed>>,
}

struct ObserverBox(VolumeObserver);

impl std::fmt::Debug for ObserverBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("observer")
    }
}

/// Volume files in a directory, by pack name: (number or 0 for a single-volume pack, path).
fn volume_files(dir: &Path) -> BTreeMap<String, Vec<(u32, PathBuf)>> {
    let mut found: BTreeMap<String, Vec<(u32, PathBuf)>> = BTreeMap::new();
    let Ok(read) = fs::read_dir(dir) else {
        return found;
    };
    for entry in read.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file_name.strip_suffix(".tar") else {
            continue;
        };
        if !entry.path().is_file() {
            continue;
        }
        let (name, number) = match stem.rsplit_once('.') {
            Some((name, n)) if n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()) => {
                (name.to_string(), n.parse().unwrap_or(0))
            }
            _ => (stem.to_string(), 0),
        };
        found.entry(name).or_default().push((number, entry.path()));
    }
    for files in found.values_mut() {
        files.sort();
    }
    found
}

impl VolumeSet {
    /// Opens a pack from one of its volume files, or from a directory holding its volumes.
    pub fn open(source: &Path, options: VolumeOptions) -> Result<VolumeSet, ArchiveError> {
        let poll = options.poll.unwrap_or(Duration::from_secs(1));
        let first_file = if source.is_dir() {
            Self::pick_in_dir(source, &options, poll)?
        } else {
            source.to_path_buf()
        };
        let dir = options.dir.clone().unwrap_or_else(|| {
            if source.is_dir() {
                source.to_path_buf()
            } else {
                source
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf()
            }
        });
        let first = scan(&first_file)?;
        let first_label = first.label.clone();
        let mut set = VolumeSet {
            describe: source.display().to_string(),
            name: String::new(),
            count: 1,
            dir,
            single: None,
            index: Vec::new(),
            signature: None,
            blobs: BTreeMap::new(),
            order: HashMap::new(),
            index_digest: Digest::of_bytes(b""),
            wait: options.wait,
            poll,
            observer: options.observer.clone().map(ObserverBox),
            volumes: Mutex::new(BTreeMap::new()),
        };
        let volume_one = match &first.label {
            None => {
                // A pack without a volume size: one tar, exactly the bundle directory.
                set.single = Some(first_file.clone());
                set.name = first_file
                    .file_name()
                    .map(|n| n.to_string_lossy().trim_end_matches(".tar").to_string())
                    .unwrap_or_default();
                first
            }
            Some(label) => {
                set.name = label.name.clone();
                set.count = label.count;
                set.index_digest = label.index_digest.clone();
                if label.number == 1 {
                    first
                } else {
                    set.remember(label.number, &first);
                    let path = set.find_or_wait(1)?;
                    scan(&path)?
                }
            }
        };
        let volume_path = volume_one.path.display().to_string();
        let index = volume_one
            .index
            .clone()
            .ok_or_else(|| ArchiveError::Damaged {
                volume: volume_path.clone(),
                reason: "it has no index.json; the table of contents is always in volume 1".into(),
            })?;
        let index_digest = Digest::of_bytes(&index);
        if set.single.is_none() {
            set.check_label(1, &volume_one)?;
            let plan = volume_one
                .plan
                .clone()
                .ok_or_else(|| ArchiveError::Damaged {
                    volume: volume_path.clone(),
                    reason: format!("volume 1 has no {PLAN_FILE}"),
                })?;
            if plan.index_digest != index_digest {
                return Err(ArchiveError::ForeignVolume {
                    volume: volume_path,
                    found: index_digest.to_string(),
                    expected: plan.index_digest.to_string(),
                });
            }
            set.count = plan.volume_count;
            for (digest, parts) in plan.blobs {
                let mut packed = Vec::with_capacity(parts.len());
                for part in parts {
                    // The plan is not signed: its names obey the same rules as tar entries.
                    classify("the plan", &part.path, tar::EntryType::Regular)?;
                    if part.volume == 0 || part.volume > set.count {
                        return Err(ArchiveError::Damaged {
                            volume: volume_path.clone(),
                            reason: format!(
                                "{PLAN_FILE} puts {digest} in volume {} of {}",
                                part.volume, set.count
                            ),
                        });
                    }
                    packed.push(PackedPart {
                        volume: part.volume,
                        entry: part.path,
                        size: part.size,
                    });
                }
                set.blobs.insert(digest, packed);
            }
        } else {
            for (digest, entry, size) in &volume_one.blobs {
                set.blobs.insert(
                    digest.clone(),
                    vec![PackedPart {
                        volume: 1,
                        entry: entry.clone(),
                        size: *size,
                    }],
                );
            }
        }
        if let Some(label) = &first_label
            && label.index_digest != index_digest
        {
            return Err(ArchiveError::ForeignVolume {
                volume: first_file.display().to_string(),
                found: label.index_digest.to_string(),
                expected: index_digest.to_string(),
            });
        }
        set.index_digest = index_digest;
        set.index = index;
        set.signature = volume_one.signature.clone();
        set.remember(1, &volume_one);
        // Blobs in the order the media holds them; offsets of volumes not yet seen are
        // unknown, and the plan's order (pack's order) stands in for them.
        for (i, (digest, parts)) in set.blobs.iter().enumerate() {
            let first = &parts[0];
            let offset = if first.volume == 1 {
                volume_one
                    .entries
                    .get(&first.entry)
                    .map(|e| e.0)
                    .unwrap_or(i as u64)
            } else {
                i as u64
            };
            set.order.insert(digest.clone(), (first.volume, offset));
        }
        Ok(set)
    }

    fn pick_in_dir(
        dir: &Path,
        options: &VolumeOptions,
        poll: Duration,
    ) -> Result<PathBuf, ArchiveError> {
        let mut announced = false;
        loop {
            let found = volume_files(dir);
            if found.len() > 1 {
                return Err(ArchiveError::Ambiguous {
                    dir: dir.to_path_buf(),
                    names: found.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
            if let Some((_, files)) = found.into_iter().next() {
                return Ok(files[0].1.clone());
            }
            if !options.wait {
                return Err(ArchiveError::NoVolumes {
                    dir: dir.to_path_buf(),
                });
            }
            if !announced {
                announced = true;
                if let Some(observer) = &options.observer {
                    observer(&VolumeEvent::Waiting {
                        number: 1,
                        count: 0,
                        file: "NAME.001.tar".to_string(),
                        dir: dir.to_path_buf(),
                    });
                }
            }
            std::thread::sleep(poll);
        }
    }

    /// The pack's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many volumes the pack has.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Numbers of the volumes that are not where ferry looks for them now.
    pub fn missing(&self) -> Vec<u32> {
        (1..=self.count)
            .filter(|n| self.candidate(*n).is_none())
            .collect()
    }

    /// Fails, naming every missing volume, unless all are present or ferry may wait.
    pub fn require_all(&self) -> Result<(), ArchiveError> {
        let missing = self.missing();
        if missing.is_empty() || self.wait {
            return Ok(());
        }
        Err(self.missing_error(&missing))
    }

    fn missing_error(&self, missing: &[u32]) -> ArchiveError {
        ArchiveError::MissingVolumes {
            name: self.name.clone(),
            missing: format!(
                "{} (looked in {}; pass --volumes-dir for another place, or --wait to wait for them)",
                missing
                    .iter()
                    .map(|n| volume_file_name(&self.name, *n, false))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.dir.display()
            ),
            count: self.count,
        }
    }

    fn candidate(&self, number: u32) -> Option<PathBuf> {
        if let Some(single) = &self.single {
            return single.is_file().then(|| single.clone());
        }
        let path = self.dir.join(volume_file_name(&self.name, number, false));
        path.is_file().then_some(path)
    }

    fn remember(&self, number: u32, scanned: &Scanned) {
        self.volumes.lock().expect("volume state").insert(
            number,
            Indexed {
                path: scanned.path.clone(),
                len: scanned.len,
                modified: scanned.modified,
                entries: Arc::new(scanned.entries.clone()),
            },
        );
    }

    fn check_label(&self, number: u32, scanned: &Scanned) -> Result<(), ArchiveError> {
        let volume = scanned.path.display().to_string();
        let Some(label) = &scanned.label else {
            return Err(ArchiveError::Damaged {
                volume,
                reason: format!(
                    "it has no {LABEL_FILE}; every volume of a multi-volume pack has one"
                ),
            });
        };
        if label.index_digest != self.index_digest || label.name != self.name {
            return Err(ArchiveError::ForeignVolume {
                volume,
                found: label.index_digest.to_string(),
                expected: self.index_digest.to_string(),
            });
        }
        if label.number != number {
            return Err(ArchiveError::Damaged {
                volume,
                reason: format!(
                    "its label says volume {} but its file name says {number}; rename it back",
                    label.number
                ),
            });
        }
        Ok(())
    }

    /// The path of volume `number`, waiting for it when allowed.
    fn find_or_wait(&self, number: u32) -> Result<PathBuf, ArchiveError> {
        let mut announced = false;
        loop {
            if let Some(path) = self.candidate(number) {
                return Ok(path);
            }
            if !self.wait {
                return Err(self.missing_error(&self.missing()));
            }
            if !announced {
                announced = true;
                if let Some(observer) = &self.observer {
                    (observer.0)(&VolumeEvent::Waiting {
                        number,
                        count: self.count,
                        file: volume_file_name(&self.name, number, false),
                        dir: self.dir.clone(),
                    });
                }
            }
            std::thread::sleep(self.poll);
        }
    }

    /// Volume `number`, indexed and unchanged since (a stick swapped for another is indexed
    /// again and its label checked).
    fn volume(&self, number: u32) -> Result<Indexed, ArchiveError> {
        let mut volumes = self.volumes.lock().expect("volume state");
        if let Some(known) = volumes.get(&number)
            && let Ok((len, modified)) = stamp(&known.path)
            && len == known.len
            && modified == known.modified
        {
            return Ok(known.clone());
        }
        // Held while waiting: one prompt at a time, and other readers wait with it.
        let path = self.find_or_wait(number)?;
        let scanned = scan(&path)?;
        if self.single.is_none() {
            self.check_label(number, &scanned)?;
        } else if scanned.index.as_deref().map(Digest::of_bytes).as_ref()
            != Some(&self.index_digest)
        {
            return Err(ArchiveError::ForeignVolume {
                volume: path.display().to_string(),
                found: "another index".to_string(),
                expected: self.index_digest.to_string(),
            });
        }
        let indexed = Indexed {
            path: scanned.path.clone(),
            len: scanned.len,
            modified: scanned.modified,
            entries: Arc::new(scanned.entries),
        };
        volumes.insert(number, indexed.clone());
        if let Some(observer) = &self.observer {
            (observer.0)(&VolumeEvent::Reading {
                number,
                count: self.count,
                path,
            });
        }
        Ok(indexed)
    }

    /// Volume numbers in which the given blobs have pieces.
    pub fn volumes_of<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) -> BTreeSet<u32> {
        digests
            .into_iter()
            .filter_map(|d| self.blobs.get(d))
            .flatten()
            .map(|p| p.volume)
            .collect()
    }
}

impl PackedStore for VolumeSet {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn index_bytes(&self) -> &[u8] {
        &self.index
    }

    fn signature(&self) -> Option<&str> {
        self.signature.as_deref()
    }

    fn parts(&self, digest: &Digest) -> Option<Vec<PackedPart>> {
        self.blobs.get(digest).cloned()
    }

    fn locate(&self, part: &PackedPart) -> io::Result<(PathBuf, u64)> {
        let volume = self.volume(part.volume).map_err(io::Error::other)?;
        match volume.entries.get(&part.entry) {
            Some((offset, size)) if *size == part.size => Ok((volume.path, *offset)),
            Some((_, size)) => Err(io::Error::other(ArchiveError::Damaged {
                volume: volume.path.display().to_string(),
                reason: format!(
                    "{} has {size} bytes, the plan says {}",
                    part.entry, part.size
                ),
            })),
            None => Err(io::Error::other(ArchiveError::Damaged {
                volume: volume.path.display().to_string(),
                reason: format!("it has no {}, which the plan puts there", part.entry),
            })),
        }
    }

    fn order_key(&self, digest: &Digest) -> Option<(u32, u64)> {
        self.order.get(digest).copied()
    }
}
