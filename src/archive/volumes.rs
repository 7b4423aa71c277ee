//! Reading a bundle straight from the tar volumes `ferry pack` wrote, without unpacking.
//!
//! Each volume is indexed once by walking its tar headers (seeking over the data). Only the
//! names `pack` writes are accepted (`oci-layout`, `index.json`, `index.json.sig`, the plan and
//! label, `blobs/sha256/<hex>`, `chunks/<hex>.NNN`), only as regular files, each once.
//! Volume 1's table of contents gives the index, its signature and the plan (which blob, or
//! which chunk of it, is in which volume); every other volume must carry the same label and
//! exactly the blobs and chunks the plan puts in it. Blob bytes are then read in place; the
//! layout's blob reader checks every digest on the way. `verify`, `inspect`, `import`,
//! `serve` and `unpack` all read volumes through this. Volumes may sit on different USB
//! sticks: a volume that is not there is waited for (when asked to) or reported with every
//! other missing volume.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::archive::ArchiveError;
use crate::archive::plan::{
    CHUNK_DIR, LABEL_FILE, PLAN_FILE, VolumeFileName, VolumeLabel, VolumePlan, is_chunk_path,
    volume_file_name,
};
use crate::digest::Digest;
use crate::layout::blob_reader::{PackedLocation, PackedPart, PackedStore};
use crate::layout::{INDEX_FILE, MAX_MANIFEST_SIZE, SIGNATURE_FILE};

/// zstd frame magic, to read compressed volumes without being told.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// What a volume's entry is, by its name.
enum Name {
    OciLayout,
    Index,
    Signature,
    Plan,
    Label,
    Blob(Digest),
    Chunk,
    Directory,
}

fn classify(volume: &str, path: &str, kind: tar::EntryType) -> Result<Name, ArchiveError> {
    let hostile = |reason: &str| ArchiveError::Hostile {
        volume: volume.to_string(),
        entry: path.to_string(),
        reason: reason.to_string(),
    };
    if path.starts_with('/') {
        return Err(hostile("absolute path"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(hostile("path goes up with `..`"));
    }
    let trimmed = path.trim_start_matches("./");
    if kind.is_dir() {
        return match trimmed.trim_end_matches('/') {
            "" | "blobs" | "blobs/sha256" | CHUNK_DIR => Ok(Name::Directory),
            _ => Err(hostile("unexpected directory")),
        };
    }
    if kind.is_symlink() || kind.is_hard_link() {
        return Err(hostile("links are never part of a bundle"));
    }
    if !(kind == tar::EntryType::Regular || kind == tar::EntryType::Continuous) {
        return Err(hostile(
            "only regular files are part of a bundle (devices, fifos and other types are refused)",
        ));
    }
    match trimmed {
        "oci-layout" => return Ok(Name::OciLayout),
        INDEX_FILE => return Ok(Name::Index),
        SIGNATURE_FILE => return Ok(Name::Signature),
        PLAN_FILE => return Ok(Name::Plan),
        LABEL_FILE => return Ok(Name::Label),
        _ => {}
    }
    if let Some(hex) = trimmed.strip_prefix("blobs/sha256/") {
        return Digest::parse(&format!("sha256:{hex}"))
            .map(Name::Blob)
            .map_err(|_| hostile("not a sha256 blob name"));
    }
    if let Some(rest) = trimmed.strip_prefix("chunks/")
        && let Some((hex, number)) = rest.split_once('.')
        && number.len() == 3
        && number.bytes().all(|b| b.is_ascii_digit())
        && Digest::parse(&format!("sha256:{hex}")).is_ok()
    {
        return Ok(Name::Chunk);
    }
    Err(hostile("not a file ferry writes into a bundle"))
}

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

/// Where an entry's data is in its volume file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    /// Plain: offset of the data. Compressed: offset of the entry's zstd frame.
    offset: u64,
    /// Bytes of data.
    size: u64,
    /// Compressed: decompressed bytes of the frame before the data.
    zstd_skip: Option<u64>,
}

/// One volume's tar index.
#[derive(Debug)]
struct Scanned {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    /// Entry name -> (offset of its data, size).
    entries: HashMap<String, Place>,
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

fn io_error(path: &Path) -> impl Fn(io::Error) -> ArchiveError + Copy + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn damaged_error(volume: &str) -> impl Fn(io::Error) -> ArchiveError + Copy + '_ {
    move |e| ArchiveError::Damaged {
        volume: volume.to_string(),
        reason: e.to_string(),
    }
}

/// Walks a volume's tar headers, refusing anything `pack` never writes.
fn scan(path: &Path) -> Result<Scanned, ArchiveError> {
    let volume = path.display().to_string();
    let (io_err, damaged) = (io_error(path), damaged_error(&volume));
    let mut file = File::open(path).map_err(io_err)?;
    let (len, modified) = stamp(path).map_err(io_err)?;
    let mut magic = [0u8; 4];
    let got = file.read(&mut magic).map_err(io_err)?;
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
    if got == 4 && magic == ZSTD_MAGIC {
        scan_zstd(path, len, &mut scanned)?;
        return Ok(scanned);
    }
    let file = File::open(path).map_err(io_err)?;
    let mut archive = tar::Archive::new(file);
    let mut end = 0u64;
    for entry in archive.entries_with_seek().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        let offset = entry.raw_file_position();
        let size = entry.size();
        if offset.checked_add(size).is_none_or(|e| e > len) {
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            return Err(ArchiveError::Damaged {
                volume,
                reason: format!(
                    "{name} needs {size} bytes from offset {offset}, but the file has {len}: it is truncated"
                ),
            });
        }
        end = end.max(offset + size);
        let place = Place {
            offset,
            size,
            zstd_skip: None,
        };
        record(&volume, &mut entry, place, &mut scanned)?;
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

/// Indexes a compressed volume: one zstd frame per tar entry, each frame's tar header read by
/// decompressing only the start of the frame.
fn scan_zstd(path: &Path, len: u64, scanned: &mut Scanned) -> Result<(), ArchiveError> {
    let volume = path.display().to_string();
    let (io_err, damaged) = (io_error(path), damaged_error(&volume));
    let mut file = File::open(path).map_err(io_err)?;
    let frames = crate::archive::zstd_frames::frames(&mut file, len).map_err(damaged)?;
    let mut ended = false;
    for frame in frames.iter().filter(|f| !f.skippable) {
        if ended {
            return Err(ArchiveError::Damaged {
                volume,
                reason: "data after the end of the archive".to_string(),
            });
        }
        file.seek(SeekFrom::Start(frame.offset)).map_err(io_err)?;
        let decoder = zstd::stream::read::Decoder::new((&mut file).take(frame.length))
            .map_err(io_err)?
            .single_frame();
        let mut archive = tar::Archive::new(decoder);
        let mut entries = archive.entries().map_err(damaged)?;
        let Some(entry) = entries.next() else {
            // The end-of-archive blocks.
            ended = true;
            continue;
        };
        let mut entry = entry.map_err(damaged)?;
        let place = Place {
            offset: frame.offset,
            size: entry.size(),
            zstd_skip: Some(entry.raw_file_position()),
        };
        record(&volume, &mut entry, place, scanned)?;
    }
    if !ended {
        let one_stream = frames.iter().rfind(|f| !f.skippable).is_some_and(|last| {
            file.seek(SeekFrom::Start(last.offset)).is_ok()
                && zstd::stream::read::Decoder::new((&mut file).take(last.length))
                    .map(|d| tar::Archive::new(d.single_frame()))
                    .is_ok_and(|mut a| {
                        a.entries()
                            .is_ok_and(|mut e| matches!(e.nth(1), Some(Ok(_))))
                    })
        });
        let reason = if one_stream {
            "its entries are compressed as one zstd stream, not one frame each as `ferry pack --zstd` writes them; decompress it (`zstd -d`) and give the .tar"
        } else {
            "the end-of-archive blocks are missing: it is truncated"
        };
        return Err(ArchiveError::Damaged {
            volume,
            reason: reason.to_string(),
        });
    }
    Ok(())
}

/// Adds one tar entry to a volume's index, reading the small table-of-contents files.
fn record<R: Read>(
    volume: &str,
    entry: &mut tar::Entry<'_, R>,
    place: Place,
    scanned: &mut Scanned,
) -> Result<(), ArchiveError> {
    let damaged = damaged_error(volume);
    let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let kind = classify(volume, &name, entry.header().entry_type())?;
    if matches!(kind, Name::Directory) {
        return Ok(());
    }
    let trimmed = name.trim_start_matches("./").to_string();
    let size = place.size;
    if scanned.entries.insert(trimmed.clone(), place).is_some() {
        return Err(ArchiveError::Hostile {
            volume: volume.to_string(),
            entry: name,
            reason: "the same name twice in one volume".to_string(),
        });
    }
    {
        let volume = volume.to_string();
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
            Name::OciLayout | Name::Chunk | Name::Directory => {}
        }
    }
    Ok(())
}

/// A volume ferry has indexed, and what it was when indexed.
#[derive(Debug, Clone)]
struct Indexed {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    entries: Arc<HashMap<String, Place>>,
}

/// A packed bundle read in place from its volumes.
#[derive(Debug)]
pub struct VolumeSet {
    describe: String,
    name: String,
    count: u32,
    dir: PathBuf,
    /// The volume files given one by one (`unpack`): only these are read, by number.
    given: Option<BTreeMap<u32, PathBuf>>,
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
    /// Whether the volumes are compressed (their names end in `.tar.zst`).
    zstd: bool,
    /// Volumes whose reading was announced.
    announced: Mutex<BTreeSet<u32>>,
    /// Volumes indexed, one per medium inserted.
    insertions: std::sync::atomic::AtomicU32,
    /// Volumes blob bytes were read from.
    read_from: Mutex<BTreeSet<u32>>,
}

struct ObserverBox(VolumeObserver);

impl std::fmt::Debug for ObserverBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("observer")
    }
}

/// The error for a volume without a label beside others.
fn unlabelled(path: &Path) -> ArchiveError {
    ArchiveError::Damaged {
        volume: path.display().to_string(),
        reason: format!("it has no {LABEL_FILE}; every volume of a multi-volume pack has one"),
    }
}

/// The directory a file is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// Volume files in a directory, by pack name: (number or 0 for a single-volume pack, path).
fn volume_files(dir: &Path) -> BTreeMap<String, Vec<(u32, PathBuf)>> {
    let mut found: BTreeMap<String, Vec<(u32, PathBuf)>> = BTreeMap::new();
    let Ok(read) = fs::read_dir(dir) else {
        return found;
    };
    for entry in read.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(parsed) = VolumeFileName::parse(&file_name) else {
            continue;
        };
        if !entry.path().is_file() {
            continue;
        }
        found
            .entry(parsed.name)
            .or_default()
            .push((parsed.number.unwrap_or(0), entry.path()));
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
                parent_dir(source)
            }
        });
        let first = scan(&first_file)?;
        Self::assemble(
            source.display().to_string(),
            dir,
            None,
            vec![first],
            options,
        )
    }

    /// Opens a pack from exactly the volume files given, in any order (`ferry unpack`): every
    /// one is indexed and checked now, no other place is looked in, and volumes not among
    /// them are named as missing.
    pub fn open_files(paths: &[PathBuf]) -> Result<VolumeSet, ArchiveError> {
        let Some(first) = paths.first() else {
            return Err(ArchiveError::NoVolumes {
                dir: PathBuf::from("."),
            });
        };
        let scanned = paths
            .iter()
            .map(|path| scan(path))
            .collect::<Result<Vec<_>, _>>()?;
        let mut given = BTreeMap::new();
        for volume in &scanned {
            let Some(label) = &volume.label else {
                if scanned.len() == 1 {
                    break; // a pack without a volume size: one tar, no label
                }
                return Err(unlabelled(&volume.path));
            };
            if let Some(other) = given.insert(label.number, volume.path.clone()) {
                return Err(ArchiveError::SameVolume {
                    number: label.number,
                    first: other,
                    second: volume.path.clone(),
                });
            }
        }
        let dir = parent_dir(first);
        let describe = if paths.len() == 1 {
            first.display().to_string()
        } else if paths.iter().all(|p| parent_dir(p) == dir) {
            dir.display().to_string()
        } else {
            "the volumes given".to_string()
        };
        Self::assemble(
            describe,
            dir,
            Some(given),
            scanned,
            VolumeOptions::default(),
        )
    }

    /// Builds the set from volumes already indexed: volume 1 among them (or found and waited
    /// for by the others' label), its table of contents and plan, then every volume checked
    /// against them.
    fn assemble(
        describe: String,
        dir: PathBuf,
        given: Option<BTreeMap<u32, PathBuf>>,
        mut scanned: Vec<Scanned>,
        options: VolumeOptions,
    ) -> Result<VolumeSet, ArchiveError> {
        let at = scanned
            .iter()
            .position(|s| s.label.as_ref().is_some_and(|l| l.number == 1))
            .unwrap_or(0);
        let first = scanned.remove(at);
        let mut set = VolumeSet {
            describe,
            name: String::new(),
            count: 1,
            dir,
            given,
            single: None,
            index: Vec::new(),
            signature: None,
            blobs: BTreeMap::new(),
            order: HashMap::new(),
            index_digest: Digest::of_bytes(b""),
            wait: options.wait,
            poll: options.poll.unwrap_or(Duration::from_secs(1)),
            observer: options.observer.clone().map(ObserverBox),
            volumes: Mutex::new(BTreeMap::new()),
            announced: Mutex::new(BTreeSet::new()),
            insertions: std::sync::atomic::AtomicU32::new(0),
            read_from: Mutex::new(BTreeSet::new()),
            zstd: first.path.to_string_lossy().ends_with(".zst"),
        };
        let volume_one = match first
            .label
            .as_ref()
            .map(|l| (l.number, l.name.clone(), l.count))
        {
            None => {
                // A pack without a volume size: one tar, exactly the bundle directory.
                set.single = Some(first.path.clone());
                set.name = VolumeFileName::pack_name(&first.path);
                first
            }
            Some((number, name, count)) => {
                set.name = name;
                set.count = count;
                if number == 1 {
                    first
                } else {
                    let path = set.find_or_wait(1)?;
                    scanned.push(first);
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
                        digest: part.digest,
                    });
                }
                if packed.is_empty() {
                    return Err(ArchiveError::Damaged {
                        volume: volume_path.clone(),
                        reason: format!("{PLAN_FILE} puts {digest} in no volume"),
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
                        digest: digest.clone(),
                    }],
                );
            }
        }
        set.index_digest = index_digest;
        set.index = index;
        set.signature = volume_one.signature.clone();
        set.check_volume(1, &volume_one)?;
        set.remember(1, &volume_one);
        set.insertions.store(
            1 + scanned.len() as u32,
            std::sync::atomic::Ordering::Relaxed,
        );
        for volume in scanned {
            let number = volume.label.as_ref().map_or(0, |l| l.number);
            set.check_volume(number, &volume)?;
            set.remember(number, &volume);
        }
        // Blobs in the order the media holds them. Offsets in volumes not yet seen are
        // unknown; digest order stands in for them (each volume is still needed once, only
        // the reads within it are not in file order).
        let volumes = set.volumes.lock().expect("volume state");
        for (i, (digest, parts)) in set.blobs.iter().enumerate() {
            let first = &parts[0];
            let offset = volumes
                .get(&first.volume)
                .and_then(|v| v.entries.get(&first.entry))
                .map_or(i as u64, |e| e.offset);
            set.order.insert(digest.clone(), (first.volume, offset));
        }
        drop(volumes);
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

    /// Numbers of the volumes that are not where ferry looks for them now.
    pub fn missing(&self) -> Vec<u32> {
        (1..=self.count)
            .filter(|n| self.candidate(*n).is_none())
            .collect()
    }

    /// Checks every volume that is present (its tar index and its label: a volume of another
    /// bundle is refused now, not half-way), and fails naming every missing volume unless
    /// ferry may wait for them.
    pub fn require_all(&self) -> Result<(), ArchiveError> {
        for number in 1..=self.count {
            if self.candidate(number).is_some() {
                self.volume(number)?;
            }
        }
        let missing = self.missing();
        if missing.is_empty() || self.wait {
            return Ok(());
        }
        Err(self.missing_error(&missing))
    }

    fn missing_error(&self, missing: &[u32]) -> ArchiveError {
        let file = |n: &u32| volume_file_name(&self.name, *n, self.zstd);
        let missing = match &self.given {
            Some(_) => format!(
                "{} ({}; not among the volumes given, add {} to the command line)",
                missing
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                missing.iter().map(file).collect::<Vec<_>>().join(", "),
                if missing.len() == 1 { "it" } else { "them" }
            ),
            None => format!(
                "{} (looked in {}; pass --volumes-dir for another place, or --wait to wait for them)",
                missing.iter().map(file).collect::<Vec<_>>().join(", "),
                self.dir.display()
            ),
        };
        ArchiveError::MissingVolumes {
            name: self.name.clone(),
            missing,
            count: self.count,
        }
    }

    fn candidate(&self, number: u32) -> Option<PathBuf> {
        if let Some(single) = &self.single {
            return single.is_file().then(|| single.clone());
        }
        if let Some(given) = &self.given {
            return given.get(&number).filter(|p| p.is_file()).cloned();
        }
        [false, true]
            .into_iter()
            .map(|zstd| self.dir.join(volume_file_name(&self.name, number, zstd)))
            .find(|path| path.is_file())
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

    /// Checks a volume against the pack: its label (a volume of another bundle or pack is
    /// refused), the table of contents in volume 1 only, and exactly the blobs and chunks the
    /// plan puts in it, at the sizes it says. So no blob or chunk is read from two volumes,
    /// and none is there that the plan does not name.
    fn check_volume(&self, number: u32, scanned: &Scanned) -> Result<(), ArchiveError> {
        let volume = scanned.path.display().to_string();
        let hostile = |entry: &str, reason: &str| ArchiveError::Hostile {
            volume: volume.clone(),
            entry: entry.to_string(),
            reason: reason.to_string(),
        };
        if self.single.is_some() {
            if scanned.index.as_deref().map(Digest::of_bytes).as_ref() != Some(&self.index_digest) {
                return Err(ArchiveError::ForeignVolume {
                    volume,
                    found: "another index".to_string(),
                    expected: self.index_digest.to_string(),
                });
            }
            if let Some(chunk) = scanned.entries.keys().filter(|e| is_chunk_path(e)).min() {
                return Err(hostile(
                    chunk,
                    "a chunk in a pack without a volume plan (volume 1 of a multi-volume pack has one)",
                ));
            }
            return Ok(());
        }
        self.check_label(number, scanned)?;
        if number != 1 {
            for (present, entry) in [
                (scanned.index.is_some(), INDEX_FILE),
                (scanned.signature.is_some(), SIGNATURE_FILE),
                (scanned.plan.is_some(), PLAN_FILE),
            ] {
                if present {
                    return Err(hostile(
                        entry,
                        "a second copy in another volume (only volume 1 holds the table of contents)",
                    ));
                }
            }
        }
        let planned: HashMap<&str, u64> = self
            .blobs
            .values()
            .flatten()
            .filter(|p| p.volume == number)
            .map(|p| (p.entry.as_str(), p.size))
            .collect();
        let mut content: Vec<(&String, &Place)> = scanned
            .entries
            .iter()
            .filter(|(name, _)| name.starts_with("blobs/") || is_chunk_path(name))
            .collect();
        content.sort_by_key(|(name, _)| *name);
        for (entry, place) in content {
            match planned.get(entry.as_str()) {
                None => {
                    return Err(hostile(
                        entry,
                        "the plan does not put it in this volume (a blob or chunk that is in another volume too, or one the plan does not name)",
                    ));
                }
                Some(&size) if size != place.size => {
                    return Err(ArchiveError::Damaged {
                        volume,
                        reason: format!("{entry} has {} bytes, the plan says {size}", place.size),
                    });
                }
                Some(_) => {}
            }
        }
        if let Some(entry) = planned
            .keys()
            .filter(|e| !scanned.entries.contains_key(**e))
            .min()
        {
            return Err(ArchiveError::Damaged {
                volume,
                reason: format!("it has no {entry}, which the plan puts there"),
            });
        }
        Ok(())
    }

    fn check_label(&self, number: u32, scanned: &Scanned) -> Result<(), ArchiveError> {
        let volume = scanned.path.display().to_string();
        let Some(label) = &scanned.label else {
            return Err(unlabelled(&scanned.path));
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
                        file: volume_file_name(&self.name, number, self.zstd),
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
        self.check_volume(number, &scanned)?;
        self.insertions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let indexed = Indexed {
            path: scanned.path.clone(),
            len: scanned.len,
            modified: scanned.modified,
            entries: Arc::new(scanned.entries),
        };
        volumes.insert(number, indexed.clone());
        // A volume indexed again (a stick inserted again) is announced again when read.
        self.announced.lock().expect("volume state").remove(&number);
        Ok(indexed)
    }

    /// Every blob of the pack with its pieces, by digest.
    pub fn blobs(&self) -> impl Iterator<Item = (&Digest, &[PackedPart])> {
        self.blobs.iter().map(|(d, parts)| (d, parts.as_slice()))
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

    fn locate(&self, part: &PackedPart) -> io::Result<PackedLocation> {
        let volume = self.volume(part.volume).map_err(io::Error::other)?;
        self.read_from
            .lock()
            .expect("volume state")
            .insert(part.volume);
        if self.count > 1
            && self
                .announced
                .lock()
                .expect("volume state")
                .insert(part.volume)
            && let Some(observer) = &self.observer
        {
            (observer.0)(&VolumeEvent::Reading {
                number: part.volume,
                count: self.count,
                path: volume.path.clone(),
            });
        }
        match volume.entries.get(&part.entry) {
            Some(place) if place.size == part.size => Ok(PackedLocation {
                path: volume.path,
                offset: place.offset,
                zstd_skip: place.zstd_skip,
            }),
            Some(place) => Err(io::Error::other(ArchiveError::Damaged {
                volume: volume.path.display().to_string(),
                reason: format!(
                    "{} has {} bytes, the plan says {}",
                    part.entry, place.size, part.size
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

    fn missing_volumes(&self) -> Vec<u32> {
        self.missing()
    }

    fn require_volumes(&self, numbers: &[u32]) -> io::Result<()> {
        for &number in numbers {
            if self.candidate(number).is_some() {
                self.volume(number).map_err(io::Error::other)?;
            }
        }
        let missing: Vec<u32> = numbers
            .iter()
            .copied()
            .filter(|n| self.candidate(*n).is_none())
            .collect();
        if missing.is_empty() || self.wait {
            return Ok(());
        }
        Err(io::Error::other(self.missing_error(&missing)))
    }

    fn insertions(&self) -> u32 {
        self.insertions.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn volumes_read(&self) -> Vec<u32> {
        self.read_from
            .lock()
            .expect("volume state")
            .iter()
            .copied()
            .collect()
    }
}
