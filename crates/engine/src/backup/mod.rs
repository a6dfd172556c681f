//! Backups: snapshots of a library in a content-addressed, deduplicated repository,
//! verified after every backup, restorable byte-for-byte, with retention and prune.
//!
//! API (synchronous; the app calls it on blocking threads):
//! - [`backup`] — take a snapshot of a library (`Repo::default_location` or any folder);
//!   scheduler-friendly: one call, a [`BackupOptions`] with a progress callback and a
//!   [`CancelToken`]; returns a [`BackupReport`].
//! - [`Repo::snapshots`] — the snapshot list (date, files, size, new bytes), newest first;
//!   [`Repo::contents`] — one snapshot's entries (path, size, mtime, mode, hash).
//! - [`Repo::verify`] — re-read and re-hash every object a snapshot references.
//! - [`Repo::restore_to`] (new folder), [`restore_in_place`], [`Repo::restore_file`].
//! - [`Repo::prune`] with a [`Retention`] policy.
//!
//! Repository layout (format [`REPO_FORMAT`]):
//!
//! ```text
//! REPO/config.json                 {"format": 1, "created": …}
//! REPO/objects/ab/abcdef….zst      one zstd frame per distinct content; name = SHA-256 of the content
//! REPO/snapshots/<id>.json         one manifest per snapshot, with its own checksum
//! REPO/lock                        serialises writers (backup, prune) across processes
//! ```
//!
//! Crash safety: objects reach the disk (packs: temp file, fsync, rename, folder fsync;
//! loose objects likewise) before the manifest that names them is written atomically
//! (`fsio`). A crash
//! or a full disk before that leaves only orphan objects, never a manifest that names a
//! missing object; orphans are reused (after re-hashing) or removed by `prune`.

mod chunks;
mod create;
mod credentials;
mod journal;
mod pack;
mod prune;
pub(crate) mod restore;
mod schedule;
mod verify;

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsio;
use crate::library::Library;

pub use chunks::ChunkRef;
pub use create::{BackupOptions, BackupReport, backup, backup_with_secrets};
pub use credentials::{
    DATA_FILES, SEALED_SECRETS, SealedSecrets, UnsealedSecrets, restore_secrets, seal_secrets, unseal_secrets,
};
pub use journal::ChangeJournal;
pub use prune::{PrunePreview, PruneReport, Retention};
pub use restore::{
    RestoreOptions, RestoreReport, check_restore_target, library_set_aside, recover_restore, restore_file_into_library,
    restore_in_place,
};
pub use schedule::{ScheduleState, ScheduleTimer, backup_due};
pub use verify::backup_verified;
pub use verify::{Problem, VerifyReport};

/// The repository format this build writes and reads. A repository with a higher
/// number was written by a newer Blueprint Vault and is refused.
pub const REPO_FORMAT: u32 = 1;
/// The manifest format: 2 keeps the file list in chunk objects (see `chunks`);
/// 1 (entries inline) is still read.
pub const MANIFEST_FORMAT: u32 = 2;
/// zstd level for objects. 1, not zstd's default 3: measured on the 100k corpus, level 3
/// spent a quarter of a full backup's CPU in the compressor, for ~10 % smaller objects.
const ZSTD_LEVEL: i32 = 1;

/// See [`Manifest::started`]: 2 s covers coarse clocks (ext4 ticks, FAT's 2 s dates).
pub const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// Folders of the library's private area that a snapshot carries (the index is not:
/// it is rebuilt from the files). Credential names, metadata and the audit log are
/// [`DATA_FILES`]; secret values never are.
pub const DATA_FOLDERS: &[&str] = &["trash", "versions"];

/// Where an entry lives: the library folder, or the library's private area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Library,
    Data,
}

impl Source {
    fn is_library(&self) -> bool {
        *self == Source::Library
    }
}

/// One file in a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `/`-separated, relative to the library root (or to the private area for `data`).
    pub path: String,
    #[serde(default, skip_serializing_if = "Source::is_library")]
    pub source: Source,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime: i64,
    /// Unix permission bits.
    pub mode: u32,
    /// SHA-256 of the content (hex); also the object's name.
    pub hash: String,
    /// Inode number and status-change time (ns) when the content was read. With size
    /// and mtime they let the next backup skip an unchanged file without reading it
    /// (restic's test); 0 in manifests written before they were recorded.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ino: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ctime: i64,
}

fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A snapshot's manifest (the part its checksum covers).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    /// RFC 3339.
    pub created: String,
    /// The library folder this is a snapshot of.
    pub library: String,
    /// When the scan began (ns since the epoch). Files modified within
    /// [`RACY_WINDOW_NS`] of it are re-read by the next backup even if their size and
    /// mtime look unchanged (a coarse mtime cannot tell two writes in one tick apart).
    #[serde(default)]
    pub started: i64,
    pub files: u64,
    pub bytes: u64,
    /// Compressed bytes of file contents this snapshot added to the repository (its
    /// file-list chunks not included).
    pub new_bytes: u64,
    /// Format 1: the file list. Format 2: filled in from `chunks` when loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<Entry>,
    /// Format 2: the file list's chunks, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<ChunkRef>,
    /// Library folders with nothing to back up in them (library-relative, sorted): a
    /// restore creates them, so the restored tree has every folder the library had.
    /// Older builds ignore the field and restore without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub empty_dirs: Vec<String>,
    /// Chunks that could not be read when the manifest was loaded, with why (their
    /// entries are missing from `entries`).
    #[serde(skip)]
    pub damaged_chunks: Vec<(ChunkRef, String)>,
}

/// A line of the snapshot list.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotInfo {
    pub id: String,
    pub created: String,
    pub library: String,
    pub files: u64,
    pub bytes: u64,
    pub new_bytes: u64,
}

/// Progress of a long operation, for progress bars.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Progress {
    /// `scan`, `backup`, `verify`, `restore`, `prune`.
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
}

pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Sync);

/// Cancels a running backup, verify or restore (which then fails with `cancelled`
/// and leaves everything as it was). Cheap to clone; share it with the UI.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    fn check(&self) -> Result<()> {
        if self.is_cancelled() { Err(Error::Cancelled) } else { Ok(()) }
    }
}

fn report(progress: Option<ProgressFn<'_>>, phase: &'static str, done: u64, total: u64) {
    if let Some(p) = progress {
        p(Progress { phase, done, total })
    }
}

#[derive(Serialize, Deserialize)]
struct Config {
    format: u32,
    created: String,
}

/// Maps and sets keyed by object hashes and paths. foldhash (seeded per process) rather
/// than SipHash: SipHash was 3 % of a full backup's CPU at 100k files.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

/// An object's name (its content's SHA-256) as raw bytes.
pub(crate) type Digest32 = [u8; 32];

/// The raw digest an object's name spells, if it is one (64 hex digits).
pub(crate) fn digest_of_hex(hash: &str) -> Option<Digest32> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hash, &mut out).ok().map(|()| out)
}

/// A backup repository: any folder.
#[derive(Clone)]
pub struct Repo {
    root: PathBuf,
    /// Where each packed object is (from the packs' trailers).
    /// Keyed by the raw digest: at 100k objects a third smaller than by hex strings,
    /// and growing it copies no strings.
    packs: Arc<RwLock<pack::ObjectMap>>,
    /// Packs whose trailer cannot be read: (name, why).
    damaged_packs: Arc<RwLock<Vec<(String, String)>>>,
    /// Loose objects (listed once, not one `stat` per file backed up).
    loose: Arc<RwLock<FastSet<String>>>,
    writer: Arc<Mutex<Option<pack::PackWriter>>>,
    /// Small objects gathered until they make a block (see `pack`).
    block: Arc<Mutex<Block>>,
    /// Buffers of stored blocks, for the next blocks: a block's buffer is neither grown
    /// from empty nor returned to the allocator each time (less memory churn).
    spare_blocks: Arc<Mutex<Vec<Vec<u8>>>>,
    /// The write buffer of the last finished pack, for the next one.
    spare_write_buffer: Arc<Mutex<Vec<u8>>>,
    /// The thread finishing full packs, while a backup runs (see `Finisher`).
    finisher: Arc<Mutex<Option<Finisher>>>,
    /// Held while a finished pack's objects go into `packs` (by the finisher, and by
    /// the flush of the last pack) and while a load replaces it: one at a time, so a
    /// map grown aside is never stale. Taken after `loaded`, never before.
    packs_growth: Arc<Mutex<()>>,
    /// Whether the three maps above reflect the disk. They are read on first use: an
    /// unchanged backup, or a listing, never needs them (reading every pack's index was
    /// most of an unchanged backup of 100k files).
    loaded: Arc<Mutex<bool>>,
    /// The packs folder's mtime when the object map was last read from it: a pack
    /// added since (by another process, or another handle) changes it.
    loaded_stamp: Arc<Mutex<Option<std::time::SystemTime>>>,
    /// Objects stored in more than one pack: the places the object map does not name.
    /// Empty but after a damaged object was stored again.
    other_copies: Arc<RwLock<pack::OtherCopies>>,
    /// Whether each frame written is decoded and compared first (`BackupOptions::verified_after`
    /// turns it off for a backup its caller verifies whole).
    skip_frame_check: Arc<std::sync::atomic::AtomicBool>,
}

/// The block a pass over objects decoded last: ((pack, offset), content). One per
/// worker and pass, so nothing outlives the pass that read it.
#[derive(Default)]
pub(crate) struct BlockCache(Option<(BlockKey, Vec<u8>)>);

/// A block's frame: (pack, offset).
type BlockKey = (Arc<str>, u64);

/// Objects smaller than this go into blocks; bigger ones get a frame of their own.
const BLOCK_OBJECT_MAX: usize = 64 * 1024;
/// A block is compressed and stored once its content reaches this size.
const BLOCK_TARGET: usize = 256 * 1024;
/// Block buffers kept for reuse: one per worker is enough.
const SPARE_BLOCKS: usize = 4;

/// Full packs on their way to disk: one thread finishes them (fsync, rename, folder
/// fsync, read back) while the workers fill the next pack. Finished by the worker that
/// filled it, a pack held that worker for the fsync's wait; at 100k files, 24 packs.
/// The queue holds one pack: a disk slower than the workers holds them back, not
/// their memory.
struct Finisher {
    queue: std::sync::mpsc::SyncSender<pack::PackWriter>,
    thread: std::thread::JoinHandle<Result<()>>,
}

#[derive(Default)]
struct Block {
    data: Vec<u8>,
    /// (hash, start, size) of each object in `data`.
    objects: Vec<(String, u64, u64)>,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo").field("root", &self.root).finish()
    }
}

impl Repo {
    /// The default repository of a library: `<private area>/backups`.
    pub fn default_location(lib: &Library) -> PathBuf {
        lib.area().join("backups")
    }

    /// Open an existing repository (refusing one from a newer format).
    pub fn open(path: &Path) -> Result<Repo> {
        let config = path.join("config.json");
        let bytes = match fs::read(&config) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let why = if path.exists() {
                    "it is not a backup repository (no config.json)"
                } else {
                    "the folder does not exist (is the drive connected?)"
                };
                return Err(Error::NotFound(format!("no backup repository at {}: {why}", path.display())));
            }
            Err(e) => return Err(Error::io("cannot read backup repository", &config, e)),
        };
        let cfg: Config = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt(format!("{}: not a valid repository config ({e})", config.display())))?;
        if cfg.format > REPO_FORMAT {
            return Err(Error::Unsupported(format!(
                "the backup repository at {} has format {}, written by a newer Blueprint Vault; this version reads format {REPO_FORMAT} and older: update Blueprint Vault to use it",
                path.display(),
                cfg.format
            )));
        }
        Ok(Repo::at(path))
    }

    fn at(path: &Path) -> Repo {
        Repo {
            root: path.to_path_buf(),
            packs: Arc::default(),
            damaged_packs: Arc::default(),
            loose: Arc::default(),
            writer: Arc::default(),
            block: Arc::default(),
            spare_blocks: Arc::default(),
            spare_write_buffer: Arc::default(),
            finisher: Arc::default(),
            packs_growth: Arc::default(),
            loaded: Arc::default(),
            loaded_stamp: Arc::default(),
            other_copies: Arc::default(),
            skip_frame_check: Arc::default(),
        }
    }

    /// Decode and compare every frame before it is stored (the default), or not.
    pub(crate) fn check_frames(&self, check: bool) {
        self.skip_frame_check.store(!check, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forget what is known of the packs and loose objects: read again on next use.
    pub(crate) fn reload_packs(&self) {
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = false;
    }

    /// Read the packs' indexes and the list of loose objects, unless already done.
    fn ensure_loaded(&self) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if *loaded {
            return;
        }
        // Taken before the listing: a pack named while it is read moves the stamp.
        let stamp = self.packs_stamp();
        let (map, others, damaged) = pack::load_all(&self.packs_dir());
        // Not while a finished pack's objects go in (a copy grown aside would be stale).
        let _growth = self.packs_growth.lock().unwrap_or_else(|p| p.into_inner());
        *self.packs.write().unwrap_or_else(|p| p.into_inner()) = map;
        *self.other_copies.write().unwrap_or_else(|p| p.into_inner()) = others;
        *self.damaged_packs.write().unwrap_or_else(|p| p.into_inner()) = damaged;
        *self.loose.write().unwrap_or_else(|p| p.into_inner()) = self.loose_hashes().into_iter().collect();
        *self.loaded_stamp.lock().unwrap_or_else(|p| p.into_inner()) = stamp;
        *loaded = true;
    }

    fn packs_stamp(&self) -> Option<std::time::SystemTime> {
        fs::metadata(self.packs_dir()).and_then(|m| m.modified()).ok()
    }

    /// Whether packs were added or removed since the object map was read (a handle
    /// kept open while another one backs up must still find the new objects).
    fn packs_changed_since_load(&self) -> bool {
        *self.loaded_stamp.lock().unwrap_or_else(|p| p.into_inner()) != self.packs_stamp()
    }

    fn loose_hashes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for dir in fs::read_dir(self.root.join("objects")).into_iter().flatten().flatten() {
            let prefix = dir.file_name().to_string_lossy().into_owned();
            for f in fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if let Some(rest) = name.strip_suffix(".zst").filter(|_| !fsio::is_temp_name(&name)) {
                    out.push(format!("{prefix}{rest}"));
                }
            }
        }
        out
    }

    fn packs_dir(&self) -> PathBuf {
        self.root.join("packs")
    }

    /// Open a repository, creating it (an empty or missing folder) if needed.
    pub fn open_or_create(path: &Path) -> Result<Repo> {
        if path.join("config.json").exists() {
            return Repo::open(path);
        }
        if path.is_dir() {
            let rd = fs::read_dir(path).map_err(|e| Error::io("cannot read", path, e))?;
            // A creation that was interrupted (a crash before `config.json`) left only
            // empty layout folders and maybe a temp file: finish it instead of refusing.
            let unfinished_layout = |e: &fs::DirEntry| {
                let name = e.file_name().to_string_lossy().into_owned();
                let empty_dir = || fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_none());
                fsio::is_temp_name(&name) || (matches!(name.as_str(), "objects" | "snapshots" | "packs") && empty_dir())
            };
            if rd.flatten().any(|e| !unfinished_layout(&e)) {
                return Err(Error::InvalidArgument(format!(
                    "{} is not empty and not a backup repository: pick an empty folder",
                    path.display()
                )));
            }
        } else if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(Error::NotFound(format!(
                "cannot create a backup repository at {}: {} does not exist (is the drive connected?)",
                path.display(),
                parent.display()
            )));
        }
        fsio::ensure_dir(&path.join("objects"))?;
        fsio::ensure_dir(&path.join("snapshots"))?;
        fsio::ensure_dir(&path.join("packs"))?;
        let cfg = Config { format: REPO_FORMAT, created: now_rfc3339() };
        let body = serde_json::to_vec_pretty(&cfg).map_err(|e| Error::Corrupt(e.to_string()))?;
        fsio::write_atomic(&path.join("config.json"), &body)?;
        Ok(Repo::at(path))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn object_path(&self, hash: &str) -> PathBuf {
        let (a, b) = hash.split_at(2.min(hash.len()));
        self.root.join("objects").join(a).join(format!("{b}.zst"))
    }

    fn manifest_path(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(format!("{id}.json"))
    }

    /// Exclusive writer lock (backup, prune, in-place restore's pre-snapshot).
    fn lock(&self) -> Result<File> {
        fsio::lock_exclusive(&self.root.join("lock"))
    }

    /// Snapshot ids, oldest first.
    pub fn snapshot_ids(&self) -> Result<Vec<String>> {
        let dir = self.root.join("snapshots");
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("cannot read", &dir, e)),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !fsio::is_temp_name(n))
            .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Every snapshot, newest first. A damaged manifest is listed with what can be
    /// read of it (its id) and zeros; `verify` says what is wrong.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for id in self.snapshot_ids()?.into_iter().rev() {
            let info = match self.load_root(&id) {
                Ok((m, _)) => SnapshotInfo {
                    id: m.id,
                    created: m.created,
                    library: m.library,
                    files: m.files,
                    bytes: m.bytes,
                    new_bytes: m.new_bytes,
                },
                Err(Error::NotFound(_)) => continue,
                Err(_) => SnapshotInfo {
                    id: id.clone(),
                    created: String::new(),
                    library: String::new(),
                    files: 0,
                    bytes: 0,
                    new_bytes: 0,
                },
            };
            out.push(info);
        }
        Ok(out)
    }

    /// A snapshot's manifest, its checksum checked.
    pub fn manifest(&self, id: &str) -> Result<Manifest> {
        let (m, checksum_ok) = self.load_manifest(id)?;
        if !checksum_ok {
            let what = if m.damaged_chunks.is_empty() { "its manifest" } else { "part of its file list" };
            return Err(Error::Corrupt(format!("snapshot {id}: {what} is damaged; run `bpv verify {id}`")));
        }
        Ok(m)
    }

    /// A snapshot's entries (for browsing), sorted by path.
    pub fn contents(&self, id: &str) -> Result<Vec<Entry>> {
        Ok(self.manifest(id)?.entries)
    }

    /// Read a manifest without its chunks (format 2: `entries` stays empty); returns it
    /// and whether its checksum matched. Errors if it cannot be read or parsed at all.
    pub(crate) fn load_root(&self, id: &str) -> Result<(Manifest, bool)> {
        check_id(id)?;
        let path = self.manifest_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!("no snapshot {id} in {}", self.root.display())));
            }
            Err(e) => return Err(Error::io("cannot read", &path, e)),
        };
        parse_manifest(id, &bytes)
    }

    /// [`Repo::load_root`], with the file list read from its chunks (in parallel). A
    /// chunk that cannot be read makes the result not intact and is named in
    /// `damaged_chunks`; the entries of the other chunks are there.
    pub(crate) fn load_manifest(&self, id: &str) -> Result<(Manifest, bool)> {
        let (mut m, mut ok) = self.load_root(id)?;
        if m.chunks.is_empty() {
            return Ok((m, ok));
        }
        use rayon::prelude::*;
        let loaded: Vec<std::result::Result<Vec<Entry>, String>> =
            m.chunks.par_iter().map(|c| self.load_chunk(c)).collect();
        let mut entries = Vec::with_capacity(m.files as usize);
        for (chunk, r) in m.chunks.iter().zip(loaded) {
            match r {
                Ok(e) => entries.extend(e),
                Err(why) => {
                    ok = false;
                    m.damaged_chunks.push((chunk.clone(), why));
                }
            }
        }
        m.entries = entries;
        Ok((m, ok))
    }

    /// Write a manifest, last, atomically and durably.
    fn write_manifest(&self, m: &Manifest) -> Result<()> {
        // The struct's own serialization is the canonical form `parse_manifest` checks
        // (serde_json keeps field order), without building a `Value` tree of every entry.
        let canonical = serde_json::to_vec(m).map_err(|e| Error::Corrupt(e.to_string()))?;
        let checksum = hex::encode(Sha256::digest(&canonical));
        let mut out = Vec::with_capacity(canonical.len() + 100);
        out.extend_from_slice(b"{\"checksum\":\"");
        out.extend_from_slice(checksum.as_bytes());
        out.extend_from_slice(b"\",\"snapshot\":");
        out.extend_from_slice(&canonical);
        out.extend_from_slice(b"}\n");
        fsio::write_atomic(&self.manifest_path(&m.id), &out)
    }

    /// Read an object and return its content, checked against its name.
    pub(crate) fn read_object(&self, hash: &str) -> std::result::Result<Vec<u8>, String> {
        self.read_object_with(hash, &mut BlockCache::default())
    }

    /// [`Repo::read_object`], keeping the last decoded block in `cache` for the next
    /// reads of one pass (a verify or restore in `read_order`).
    pub(crate) fn read_object_with(&self, hash: &str, cache: &mut BlockCache) -> std::result::Result<Vec<u8>, String> {
        self.read_object_or_reload(hash, cache, true)
    }

    fn read_object_or_reload(
        &self,
        hash: &str,
        cache: &mut BlockCache,
        may_reload: bool,
    ) -> std::result::Result<Vec<u8>, String> {
        self.ensure_loaded();
        let data = match self.pack_loc(hash) {
            Some(loc) => self.read_packed(&loc, cache),
            None => {
                let path = self.object_path(hash);
                match fs::read(&path) {
                    Ok(b) => Self::decode(&b),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        if may_reload && self.packs_changed_since_load() {
                            self.reload_packs();
                            return self.read_object_or_reload(hash, cache, false);
                        }
                        let damaged = self.damaged_packs.read().unwrap_or_else(|p| p.into_inner());
                        let mut why = String::from("object missing");
                        for (name, reason) in damaged.iter() {
                            why.push_str(&format!(" (pack {name} cannot be read: {reason})"));
                        }
                        return Err(why);
                    }
                    Err(e) => return Err(format!("cannot read object: {e}")),
                }
            }
        };
        let why = match data {
            Ok(data) if hex_of(&Sha256::digest(&data)) == hash => return Ok(data),
            Ok(_) => "object damaged (content does not match its hash)".to_owned(),
            Err(why) => why,
        };
        // A damaged object is stored again by the next backup that meets its content:
        // the other copies are tried before the damage is reported.
        for alt in self.other_copies(hash) {
            if let Ok(data) = self.read_packed(&alt, cache)
                && hex_of(&Sha256::digest(&data)) == hash
            {
                return Ok(data);
            }
        }
        Err(why)
    }

    /// The decoded bytes of a packed object (unchecked: the caller hashes them).
    fn read_packed(&self, loc: &pack::Loc, cache: &mut BlockCache) -> std::result::Result<Vec<u8>, String> {
        match loc.slice {
            Some(_) => self.read_from_block(loc, cache),
            None => Self::decode(&pack::read_frame(&self.packs_dir(), loc)?),
        }
    }

    /// Where else in the packs the object `hash` is (a copy stored again after the first
    /// was found damaged), besides the place the object map names.
    fn other_copies(&self, hash: &str) -> Vec<pack::Loc> {
        let Some(digest) = digest_of_hex(hash) else { return Vec::new() };
        self.other_copies.read().unwrap_or_else(|p| p.into_inner()).get(&digest).cloned().unwrap_or_default()
    }

    /// Where in the packs the object `hash` is, if it is packed.
    fn pack_loc(&self, hash: &str) -> Option<pack::Loc> {
        let digest = digest_of_hex(hash)?;
        self.packs.read().unwrap_or_else(|p| p.into_inner()).get(&digest).cloned()
    }

    fn decode(raw: &[u8]) -> std::result::Result<Vec<u8>, String> {
        decompress(raw).map_err(|e| format!("object damaged (cannot decompress: {e})"))
    }

    /// An object's bytes in a block (unchecked: the caller hashes them). The block is
    /// decoded once and kept in `cache` while the following reads take their objects from it.
    fn read_from_block(&self, loc: &pack::Loc, cache: &mut BlockCache) -> std::result::Result<Vec<u8>, String> {
        let (start, size) = loc.slice.unwrap_or_default();
        let key = (loc.pack.clone(), loc.offset);
        let block = match &cache.0 {
            Some((k, block)) if *k == key => block,
            _ => {
                cache.0 = None;
                let raw = pack::read_frame(&self.packs_dir(), loc)?;
                &cache.0.insert((key, Self::decode(&raw)?)).1
            }
        };
        match start.checked_add(size).filter(|e| *e <= block.len() as u64) {
            Some(end) => Ok(block[start as usize..end as usize].to_vec()),
            None => Err("object damaged (outside its block)".into()),
        }
    }

    /// Sort object hashes into the order they are stored (pack, offset; loose last), so
    /// a parallel pass over them reads each block once per thread.
    pub(crate) fn read_order<T>(&self, items: &mut [T], hash: impl Fn(&T) -> &str) {
        self.ensure_loaded();
        let packs = self.packs.read().unwrap_or_else(|p| p.into_inner());
        items.sort_by_cached_key(|it| match digest_of_hex(hash(it)).and_then(|d| packs.get(&d)) {
            Some(loc) => (false, loc.pack.clone(), loc.offset),
            None => (true, Arc::from(""), 0),
        });
    }

    /// Where an object's stored bytes are: (file, offset, length). For tools and
    /// tests that inspect the repository.
    pub fn object_location(&self, hash: &str) -> Option<(PathBuf, u64, u64)> {
        self.ensure_loaded();
        if let Some(loc) = self.pack_loc(hash) {
            return Some((self.packs_dir().join(&*loc.pack), loc.offset, loc.len));
        }
        let path = self.object_path(hash);
        let len = fs::metadata(&path).ok()?.len();
        Some((path, 0, len))
    }

    /// The objects snapshot `id` needs: its file list's chunks and its files' contents.
    pub fn referenced_objects(&self, id: &str) -> Result<Vec<String>> {
        let m = self.manifest(id)?;
        let mut out: Vec<String> = m.chunks.into_iter().map(|c| c.hash).collect();
        out.extend(m.entries.into_iter().map(|e| e.hash));
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Every stored object's hash (packed and loose).
    pub fn object_hashes(&self) -> Vec<String> {
        self.ensure_loaded();
        let mut out: Vec<String> =
            self.packs.read().unwrap_or_else(|p| p.into_inner()).keys().map(|d| hex_of(d)).collect();
        out.extend(self.loose_hashes());
        out.sort();
        out.dedup();
        out
    }

    /// Whether the repository (as of the last `reload_packs`, plus what this process
    /// wrote) holds the object.
    pub(crate) fn has_object(&self, hash: &str) -> bool {
        self.ensure_loaded();
        digest_of_hex(hash).is_some_and(|d| self.packs.read().unwrap_or_else(|p| p.into_inner()).contains_key(&d))
            || self.loose.read().unwrap_or_else(|p| p.into_inner()).contains(hash)
    }

    /// Store an object: small ones are appended to the open pack (fsynced, named and
    /// read back when it is full or the caller calls `flush_packs`), big ones written
    /// loose (temp file, fsync, rename, folder fsync, read back). Returns the compressed size.
    ///
    /// The frame is decoded and compared with `data` before it is stored, and the
    /// stored bytes are compared with the frame after they are durable: together the
    /// check after every backup that re-reading, decompressing and re-hashing each new
    /// object did, without decoding or hashing the content a second time.
    fn write_object(&self, hash: &str, data: &[u8]) -> Result<u64> {
        if data.len() < BLOCK_OBJECT_MAX {
            let full = {
                let mut b = self.block.lock().unwrap_or_else(|p| p.into_inner());
                let start = b.data.len() as u64;
                b.data.extend_from_slice(data);
                b.objects.push((hash.to_owned(), start, data.len() as u64));
                (b.data.len() >= BLOCK_TARGET).then(|| {
                    let data = self.spare_block();
                    std::mem::replace(&mut *b, Block { data, objects: Vec::new() })
                })
            };
            // Compressed by the worker that filled it, outside the lock.
            return match full {
                Some(block) => self.store_block(block),
                None => Ok(0),
            };
        }
        self.write_frame(hash, data)
    }

    /// Store a block of small objects as one frame in the open pack; the compressed size.
    fn store_block(&self, block: Block) -> Result<u64> {
        if block.objects.is_empty() {
            return Ok(0);
        }
        let stored = self.checked_compress(
            &block.data,
            || "a block of small objects".into(),
            |packed| self.append_to_pack(|w| w.add_block(packed, &block.objects)).map(|()| packed.len() as u64),
        )?;
        let mut spare = self.spare_blocks.lock().unwrap_or_else(|p| p.into_inner());
        if spare.len() < SPARE_BLOCKS {
            let mut data = block.data;
            data.clear();
            spare.push(data);
        }
        Ok(stored)
    }

    /// A buffer for the next block: a spare one, else one with room for a full block.
    fn spare_block(&self) -> Vec<u8> {
        let spare = self.spare_blocks.lock().unwrap_or_else(|p| p.into_inner()).pop();
        spare.unwrap_or_else(|| Vec::with_capacity(BLOCK_TARGET + BLOCK_OBJECT_MAX))
    }

    /// Compress into this thread's frame buffer, decode the result again, and only then
    /// hand the frame to `store`. The buffer is reused: a fresh one per block was
    /// ~400 MB of allocations (and their page faults) at 100k files.
    fn checked_compress<T>(
        &self,
        data: &[u8],
        what: impl FnOnce() -> String,
        store: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        FRAME_BUF.with(|buf| {
            let mut packed = buf.borrow_mut();
            compress_into(data, &mut packed).map_err(|e| Error::Io { context: "cannot compress".into(), source: e })?;
            #[cfg(feature = "fault-injection")]
            crate::fault::compressed(&self.root, &mut packed);
            let check = !self.skip_frame_check.load(std::sync::atomic::Ordering::Relaxed);
            if check && !decodes_to(&packed, data) {
                return Err(Error::Corrupt(format!(
                    "{}: the compressed copy does not decode to the content (nothing was stored)",
                    what()
                )));
            }
            let stored = store(&packed);
            if packed.capacity() > SCRATCH_KEEP {
                *packed = Vec::new();
            }
            stored
        })
    }

    /// Append to the open pack (creating one), finishing it when it is full.
    fn append_to_pack(&self, add: impl FnOnce(&mut pack::PackWriter) -> Result<()>) -> Result<()> {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        if w.is_none() {
            let buffer = std::mem::take(&mut *self.spare_write_buffer.lock().unwrap_or_else(|p| p.into_inner()));
            *w = Some(pack::PackWriter::create(&self.packs_dir(), buffer)?);
        }
        let Some(writer) = w.as_mut() else { return Err(Error::Corrupt("pack writer unavailable".into())) };
        if let Err(e) = add(writer) {
            if let Some(writer) = w.take() {
                writer.abandon();
            }
            return Err(e);
        }
        if writer.size() >= pack::PACK_TARGET
            && let Some(full) = w.take()
        {
            // Finished by the finisher thread: this worker and the others go on
            // filling a new pack meanwhile.
            drop(w);
            self.send_to_finisher(full)?;
        }
        Ok(())
    }

    /// An object in a frame of its own: in the open pack, or loose when big.
    fn write_frame(&self, hash: &str, data: &[u8]) -> Result<u64> {
        self.checked_compress(
            data,
            || format!("object {hash}"),
            |packed| {
                if packed.len() < pack::LOOSE_MIN {
                    self.append_to_pack(|w| w.add(hash, packed))?;
                } else {
                    self.write_loose(hash, packed)?;
                }
                Ok(packed.len() as u64)
            },
        )
    }

    /// A big object's frame as a file of its own (temp file, fsync, rename, folder
    /// fsync, read back).
    fn write_loose(&self, hash: &str, packed: &[u8]) -> Result<()> {
        let path = self.object_path(hash);
        let dir = path.parent().unwrap_or(&self.root);
        fsio::ensure_dir(dir)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = dir.join(format!(".{name}.bpv-tmp-{}-{:016x}", std::process::id(), rand::random::<u64>()));
        let result = (|| {
            let mut f = fsio::create_new(&temp).map_err(|e| Error::io("cannot create a file in", dir, e))?;
            fsio::write_all(&mut f, &temp, packed).map_err(|e| Error::io("cannot write", &temp, e))?;
            fsio::sync_file(&f, &temp).map_err(|e| Error::io("cannot flush to disk", &temp, e))?;
            drop(f);
            fsio::rename(&temp, &path).map_err(|e| Error::io("cannot write", &path, e))?;
            fsio::fsync_dir(dir)?;
            if fs::read(&path).map_err(|e| Error::io("cannot read back", &path, e))? != *packed {
                return Err(Error::Corrupt(format!(
                    "{}: what was written reads back differently; check the backup disk",
                    path.display()
                )));
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fsio::remove_file(&temp);
        } else {
            self.ensure_loaded();
            self.loose.write().unwrap_or_else(|p| p.into_inner()).insert(hash.to_owned());
        }
        result
    }

    /// Hand a full pack to the finisher thread (started on first use). An error of an
    /// earlier pack is returned here, so the backup stops soon after.
    fn send_to_finisher(&self, writer: pack::PackWriter) -> Result<()> {
        let mut slot = self.finisher.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            let (queue, packs) = std::sync::mpsc::sync_channel::<pack::PackWriter>(1);
            // A repository of its own slot: the thread must not keep its own queue open.
            let repo = Repo { finisher: Arc::default(), ..self.clone() };
            let thread = std::thread::Builder::new()
                .name("bpv-pack-finisher".into())
                .spawn(move || {
                    for writer in packs.iter() {
                        if let Err(e) = repo.finish_pack(writer) {
                            // The packs still queued are given up (their temp files removed).
                            packs.try_iter().for_each(pack::PackWriter::abandon);
                            return Err(e);
                        }
                    }
                    Ok(())
                })
                .map_err(|e| Error::Io { context: "cannot start a thread".into(), source: e })?;
            *slot = Some(Finisher { queue, thread });
        }
        let Some(queue) = slot.as_ref().map(|f| f.queue.clone()) else {
            writer.abandon();
            return Err(Error::Corrupt("the pack writer stopped".into()));
        };
        drop(slot);
        // A finisher stopped by an error has dropped its end of the queue: the send fails.
        if let Err(std::sync::mpsc::SendError(writer)) = queue.send(writer) {
            // The thread stopped on an error: that error is the one to report.
            writer.abandon();
            return self.join_finisher().and(Err(Error::Corrupt("the pack writer stopped".into())));
        }
        Ok(())
    }

    /// Wait for every pack handed to the finisher: their objects are on disk (or the
    /// first error is returned).
    fn join_finisher(&self) -> Result<()> {
        let Some(Finisher { queue, thread }) = self.finisher.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        drop(queue);
        thread.join().unwrap_or_else(|_| Err(Error::Corrupt("the pack writer failed".into())))
    }

    fn finish_pack(&self, writer: pack::PackWriter) -> Result<()> {
        let (name, entries, buffer) = writer.finish()?;
        *self.spare_write_buffer.lock().unwrap_or_else(|p| p.into_inner()) = buffer;
        // Loaded first: a load listing the folder before this pack had its name must not
        // replace the map after the pack's entries went in.
        self.ensure_loaded();
        let pack: Arc<str> = Arc::from(name.as_str());
        let _one_at_a_time = self.packs_growth.lock().unwrap_or_else(|p| p.into_inner());
        let grown = self.packs_with_room(entries.len());
        let mut map = self.packs.write().unwrap_or_else(|p| p.into_inner());
        let replaced = grown.map(|grown| std::mem::replace(&mut *map, grown));
        map.reserve(entries.len());
        // The writer named every object by its hex digest: none is left out here. An
        // object already in the map is only stored again when its copy was found damaged
        // (or missing): the new copy, just read back, is the one to read from now on.
        let mut replaced_copies = Vec::new();
        for (digest, loc) in entries.iter().filter_map(|e| e.to_loc(&pack)) {
            if let Some(old) = map.insert(digest, loc) {
                replaced_copies.push((digest, old));
            }
        }
        drop(map);
        drop(replaced);
        if !replaced_copies.is_empty() {
            let mut others = self.other_copies.write().unwrap_or_else(|p| p.into_inner());
            for (digest, old) in replaced_copies {
                others.entry(digest).or_default().push(old);
            }
        }
        Ok(())
    }

    /// A copy of the object map with room for `more` entries, if the map itself has no
    /// room for them. Made under the read lock, so the
    /// workers' lookups go on meanwhile: growing the map in place rehashes every entry
    /// under the write lock, which stopped both workers of a first backup for ~30 ms
    /// at 64k objects.
    fn packs_with_room(&self, more: usize) -> Option<pack::ObjectMap> {
        let map = self.packs.read().unwrap_or_else(|p| p.into_inner());
        if map.capacity() - map.len() >= more {
            return None;
        }
        // Twice the room, as growing in place would.
        let room = (map.capacity() + 1).max(map.len() + more);
        let mut grown = FastMap::with_capacity_and_hasher(room, map.hasher().clone());
        grown.extend(map.iter().map(|(digest, loc)| (*digest, loc.clone())));
        Some(grown)
    }

    /// Store the last block and close the open pack (if any), so their objects can be
    /// named by a manifest. Returns the compressed bytes of that last block.
    fn flush_packs(&self) -> Result<u64> {
        let block = std::mem::take(&mut *self.block.lock().unwrap_or_else(|p| p.into_inner()));
        let added = self.store_block(block)?;
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        // The last pack here, while the finisher may still be on the one before.
        let last = w.map_or(Ok(()), |w| self.finish_pack(w));
        let queued = self.join_finisher();
        last.and(queued)?;
        Ok(added)
    }

    /// Drop the open block and pack after an error or a cancel (removes its temp file).
    /// Packs already full are finished: they are whole, and a later backup reuses them.
    fn abandon_pack(&self) {
        *self.block.lock().unwrap_or_else(|p| p.into_inner()) = Block::default();
        if let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            w.abandon();
        }
        let _ = self.join_finisher();
    }
}

thread_local! {
    // zstd contexts are costly to create (hundreds of KB); one per worker thread.
    static CCTX: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
    /// Where `decodes_to` decodes: reused, not a fresh buffer (and its page faults) per block.
    static CHECK_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Where `checked_compress` compresses: reused likewise.
    static FRAME_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether the frame `packed` decodes to exactly `data`.
fn decodes_to(packed: &[u8], data: &[u8]) -> bool {
    CHECK_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        // Room for exactly `data`: a frame that decodes to more fails.
        buf.reserve_exact(data.len());
        let decoded = DCTX.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = zstd::bulk::Decompressor::new().ok();
            }
            match d.as_mut() {
                Some(dctx) => dctx.decompress_to_buffer(packed, &mut *buf).is_ok(),
                None => false,
            }
        });
        let same = decoded && buf.as_slice() == data;
        if buf.capacity() > SCRATCH_KEEP {
            *buf = Vec::new();
        }
        same
    })
}

/// Compress `data` into `out` (cleared first; grown only when too small).
fn compress_into(data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(data.len()));
    CCTX.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(zstd::bulk::Compressor::new(ZSTD_LEVEL)?);
        }
        match c.as_mut() {
            Some(cctx) => cctx.compress_to_buffer(data, out).map(|_| ()),
            None => Err(io::Error::other("no zstd compressor")),
        }
    })
}

/// Objects larger than this are decoded by streaming (no up-front allocation from
/// a size a damaged header could claim).
const BULK_DECODE_MAX: u64 = 256 * 1024 * 1024;

fn decompress(raw: &[u8]) -> io::Result<Vec<u8>> {
    let size = match zstd::zstd_safe::get_frame_content_size(raw) {
        Ok(Some(n)) if n <= BULK_DECODE_MAX => n as usize,
        _ => return zstd::stream::decode_all(raw),
    };
    DCTX.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new()?);
        }
        let out = match d.as_mut() {
            Some(dctx) => dctx.decompress(raw, size)?,
            None => zstd::bulk::decompress(raw, size)?,
        };
        if out.len() != size {
            return Err(io::Error::other("decoded size differs from the frame header"));
        }
        Ok(out)
    })
}

/// Drop `value` on a short-lived thread of its own, so that freeing a big structure
/// overlaps the work that follows instead of delaying it. If no thread can be started,
/// it is dropped here.
pub(crate) fn drop_in_background<T: Send + 'static>(value: T) {
    let _ = std::thread::Builder::new().name("bpv-drop".into()).spawn(move || drop(value));
}

/// Lower-case hex of `bytes`. `hex::encode` goes through a char iterator: 0.4 % of a
/// first backup's CPU for one digest per file.
pub(crate) fn hex_of(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 15)]);
    }
    // Only ASCII digits were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// `syncfs` the filesystem holding `dir` (one flush for many files).
pub(crate) fn sync_filesystem(dir: &Path) -> Result<()> {
    fsio::syncfs(dir).map_err(|e| Error::io("cannot flush to disk", dir, e))
}

pub(crate) fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !id.starts_with('-');
    if ok { Ok(()) } else { Err(Error::InvalidArgument(format!("{id:?} is not a snapshot id (see `bpv backups`)"))) }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Per-worker buffers of a pass over files: the last decoded block, and the buffer files
/// are read into (reused, so a backup does not allocate and fault in a buffer per file).
#[derive(Default)]
pub(crate) struct Scratch {
    pub cache: BlockCache,
    pub read: Vec<u8>,
}

/// A read buffer bigger than this is given back after the file, so one big file does not
/// keep its size allocated per worker for the rest of the backup.
const SCRATCH_KEEP: usize = 1024 * 1024 + 64 * 1024;

impl Scratch {
    pub fn release_big(&mut self) {
        if self.read.capacity() > SCRATCH_KEEP {
            self.read = Vec::new();
        }
    }
}

/// Where a file to read is: its path, and (when the walk has it open) its folder, so the
/// file is opened by name relative to it without a lookup of every path component
/// (path lookups were ~8 % of a full backup's CPU at 100k files).
pub(crate) struct FileAt<'a> {
    pub path: &'a Path,
    pub folder: Option<&'a File>,
}

impl FileAt<'_> {
    /// Open for reading, never following a symlink that replaced the file since the scan,
    /// nor waiting on a FIFO put in its place (non-blocking: its stat then refuses it;
    /// reads of a regular file ignore the flag).
    fn open(&self) -> io::Result<File> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::io::{AsRawFd, FromRawFd};
        if let (Some(folder), Some(name)) = (self.folder, self.path.file_name()) {
            let name = std::ffi::CString::new(name.as_bytes()).map_err(io::Error::other)?;
            // SAFETY: `name` is a NUL-terminated string and `folder` an open descriptor,
            // both alive for the call; a non-negative result is a new descriptor we own.
            let fd = unsafe {
                libc::openat(
                    folder.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just returned by `openat` and nothing else owns it.
            return Ok(unsafe { File::from_raw_fd(fd) });
        }
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(self.path)
    }
}

/// What a backup keeps of a file's `stat`, per scanned file: a quarter of the size of
/// `fs::Metadata` (which the scan of a 100k-file library kept 100k of).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime: i64,
    pub ctime: i64,
    pub mode: u32,
    pub is_file: bool,
}

impl Stat {
    /// Not taken (yet): not a regular file as far as `read_stable` knows, so it takes
    /// its own stat of the open file before reading.
    pub const UNKNOWN: Stat = Stat { dev: 0, ino: 0, len: 0, mtime: 0, ctime: 0, mode: 0, is_file: false };

    pub fn of(meta: &fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: fsio::mtime_ns(meta),
            ctime: meta.ctime().saturating_mul(1_000_000_000).saturating_add(meta.ctime_nsec()),
            mode: mode_of(meta),
            is_file: meta.is_file(),
        }
    }

    /// Whether the two stats say it is the same file with the same content: device,
    /// inode, size, mtime and ctime (any write or metadata change moves ctime).
    fn same_version(&self, other: &Stat) -> bool {
        (self.dev, self.ino, self.len, self.mtime, self.ctime)
            == (other.dev, other.ino, other.len, other.mtime, other.ctime)
    }
}

/// Read a whole file that stays the same while it is read, into `buf`; returns its bytes
/// and its metadata. "The same": a stat before and an `fstat` of the open file after the
/// read agree (see [`same_version`]); else it is read again. The stat before is the
/// scan's (`scanned`) when there is one: it was taken before the file was opened, so
/// agreeing with it brackets the read too, and spares one `fstat` per file. `fstat`
/// rather than `stat` on the path: no path lookup per check, and a file replaced by a
/// rename meanwhile is still read whole, as one version.
fn read_stable<'b>(at: &FileAt<'_>, scanned: Option<&Stat>, buf: &'b mut Vec<u8>) -> io::Result<(&'b [u8], Stat)> {
    let mut scanned = scanned.filter(|m| m.is_file);
    let mut last_err = None;
    for _ in 0..8 {
        let mut f = at.open()?;
        let before = match scanned {
            Some(m) => *m,
            None => Stat::of(&f.metadata()?),
        };
        if !before.is_file {
            return Err(io::Error::other(format!("{} is no longer a regular file", at.path.display())));
        }
        let got = read_expecting(&mut f, before.len, buf)?;
        let after = Stat::of(&f.metadata()?);
        if got as u64 == after.len && before.same_version(&after) {
            return Ok((&buf[..got], after));
        }
        last_err = Some(io::Error::other(format!("{} kept changing while it was read", at.path.display())));
        // Changed since the scan: read again at once, with a stat of its own. Changed
        // while it was read: give the writer a moment first.
        if scanned.take().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("file kept changing")))
}

/// Read a file expected to hold `len` bytes into `buf` (whose length is only ever
/// grown, so a reused buffer is not cleared per file); returns how many bytes it holds.
/// Asks for one byte more, so a file of the expected size is read in one call without
/// the extra call that finds the end. A short read is taken as the end; the caller's
/// size and time checks catch any other cause.
fn read_expecting(f: &mut File, len: u64, buf: &mut Vec<u8>) -> io::Result<usize> {
    let want = usize::try_from(len).map_err(io::Error::other)?.saturating_add(1);
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut got = 0;
    while got < want {
        let asked = want - got;
        match f.read(&mut buf[got..want]) {
            Ok(n) => {
                got += n;
                if n < asked {
                    break; // short read: the end of the file
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if got == want {
        // Longer than its size said: read the rest the plain way.
        buf.truncate(got);
        f.read_to_end(buf)?;
        return Ok(buf.len());
    }
    Ok(got)
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// Parse a manifest's bytes as snapshot `id`; returns it and whether its checksum
/// matched (and it names `id`). Errors if it cannot be parsed at all.
pub(crate) fn parse_manifest(id: &str, bytes: &[u8]) -> Result<(Manifest, bool)> {
    let damaged = |why: String| Error::Corrupt(format!("snapshot {id}: its manifest is damaged ({why})"));
    // Fast path: the exact layout `write_manifest` produces. The checksum is over the
    // body's bytes as they are, so the body is parsed once, straight into a `Manifest`.
    if let Some(m) = parse_manifest_as_written(id, bytes) {
        if m.format > MANIFEST_FORMAT {
            return Err(newer_manifest(id, m.format));
        }
        return Ok((m, true));
    }
    let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
    let checksum = v.get("checksum").and_then(|c| c.as_str()).map(str::to_owned).unwrap_or_default();
    let body = v.get_mut("snapshot").map(serde_json::Value::take).ok_or_else(|| damaged("no snapshot".into()))?;
    let canonical = serde_json::to_vec(&body).map_err(|e| damaged(e.to_string()))?;
    let ok = hex::encode(Sha256::digest(&canonical)) == checksum;
    let m: Manifest = serde_json::from_value(body).map_err(|e| damaged(e.to_string()))?;
    if m.format > MANIFEST_FORMAT {
        return Err(newer_manifest(id, m.format));
    }
    let ok = ok && m.id == id;
    Ok((m, ok))
}

fn newer_manifest(id: &str, format: u32) -> Error {
    Error::Unsupported(format!(
        "snapshot {id} was written by a newer Blueprint Vault (manifest format {format}): update to restore it"
    ))
}

/// A manifest laid out exactly as `write_manifest` writes it, whose checksum matches
/// and which names `id`; `None` for anything else (the slow path then says what is wrong).
fn parse_manifest_as_written(id: &str, bytes: &[u8]) -> Option<Manifest> {
    const HEAD: &[u8] = b"{\"checksum\":\"";
    const MID: &[u8] = b"\",\"snapshot\":";
    const TAIL: &[u8] = b"}\n";
    let rest = bytes.strip_prefix(HEAD)?;
    let (checksum, rest) = (rest.get(..64)?, rest.get(64..)?);
    let body = rest.strip_prefix(MID)?.strip_suffix(TAIL)?;
    if hex::encode(Sha256::digest(body)).as_bytes() != checksum {
        return None;
    }
    let m: Manifest = serde_json::from_slice(body).ok()?;
    (m.id == id).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_of_is_hex_encode() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        assert_eq!(hex_of(&bytes), hex::encode(&bytes));
        assert_eq!(hex_of(&[]), "");
    }

    #[test]
    fn objects_of_packs_finished_during_a_backup_are_found_before_any_reload() {
        // 12,000 small incompressible objects: six 4 MB packs, finished on the
        // finisher thread, so the object map grows (aside, then swapped in) many times.
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::open_or_create(&dir.path().join("repo")).unwrap();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let objects: Vec<(String, Vec<u8>)> = (0..12_000)
            .map(|_| {
                let data: Vec<u8> = (0..2_000)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                (hex_of(&Sha256::digest(&data)), data)
            })
            .collect();
        for (hash, data) in &objects {
            repo.write_object(hash, data).unwrap();
        }
        repo.flush_packs().unwrap();
        let packs = fs::read_dir(repo.packs_dir()).unwrap().count();
        assert!(packs >= 3, "several packs: {packs}");
        for (hash, data) in &objects {
            assert!(repo.has_object(hash), "{hash} is not known");
            assert_eq!(&repo.read_object(hash).unwrap(), data);
        }
        // And the same from the disk alone.
        let reopened = Repo::open_or_create(&dir.path().join("repo")).unwrap();
        assert!(objects.iter().all(|(hash, _)| reopened.has_object(hash)));
    }

    #[test]
    fn an_object_in_two_packs_reads_from_whichever_copy_is_intact() {
        // Pack names come from their content, so which copy the object map names after a
        // load is arbitrary: both orders are tried (a damaged first copy, then second).
        let data: Vec<u8> = (0..5_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let hash = hex_of(&Sha256::digest(&data));
        for damaged in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            let repo_dir = dir.path().join("repo");
            let repo = Repo::open_or_create(&repo_dir).unwrap();
            let mut names = Vec::new();
            for copy in 0..2 {
                let mut frame = Vec::new();
                compress_into(&data, &mut frame).unwrap();
                if copy == damaged {
                    let last = frame.len() - 1;
                    frame[last] ^= 0x5a;
                }
                // Another filler object per pack: a pack's name is its index's hash.
                let mut w = pack::PackWriter::create(&repo.packs_dir(), Vec::new()).unwrap();
                let mut filler = Vec::new();
                compress_into(format!("filler {copy}").as_bytes(), &mut filler).unwrap();
                w.add(&format!("{copy:02x}").repeat(32), &filler).unwrap();
                w.add(&hash, &frame).unwrap();
                names.push(w.finish().unwrap().0);
            }
            assert_ne!(names[0], names[1]);
            let fresh = Repo::open(&repo_dir).unwrap();
            assert_eq!(fresh.read_object(&hash).unwrap(), data, "damaged copy {damaged}");
            assert_eq!(fresh.other_copies(&hash).len(), 1);
        }
    }

    #[test]
    fn decodes_to_accepts_only_the_exact_content() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 97) as u8).collect();
        let mut packed = Vec::new();
        compress_into(&data, &mut packed).unwrap();
        assert!(decodes_to(&packed, &data));
        let mut other = data.clone();
        other[123_456] ^= 1;
        assert!(!decodes_to(&packed, &other), "a different byte");
        assert!(!decodes_to(&packed, &data[..data.len() - 1]), "the frame decodes to more");
        assert!(!decodes_to(&packed, &[data.as_slice(), b"x"].concat()), "the frame decodes to less");
        let mut damaged = packed.clone();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0x55;
        assert!(!decodes_to(&damaged, &data), "a damaged frame");
        assert!(decodes_to(&packed, &data), "the buffer is reused cleanly");
    }

    #[test]
    fn read_stable_rereads_a_file_changed_since_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.blueprint.yaml");
        fs::write(&path, b"name: old\n").unwrap();
        let scanned = Stat::of(&fs::symlink_metadata(&path).unwrap());
        // Rewritten after the scan (same size), and replaced by a rename: both are read
        // as they are now, with their own metadata, by path and relative to the folder.
        fs::write(&path, b"name: new\n").unwrap();
        let folder = File::open(dir.path()).unwrap();
        let mut buf = Vec::new();
        for at in [FileAt { path: &path, folder: None }, FileAt { path: &path, folder: Some(&folder) }] {
            let (data, stat) = read_stable(&at, Some(&scanned), &mut buf).unwrap();
            assert_eq!(data, b"name: new\n");
            assert_eq!(stat.len, 10);
            assert!(stat.same_version(&Stat::of(&fs::metadata(&path).unwrap())));
        }
        let other = dir.path().join("b");
        fs::write(&other, b"replaced by a rename, longer").unwrap();
        fs::rename(&other, &path).unwrap();
        let at = FileAt { path: &path, folder: Some(&folder) };
        let (data, stat) = read_stable(&at, Some(&scanned), &mut buf).unwrap();
        assert_eq!(data, b"replaced by a rename, longer");
        assert_ne!(stat.ino, scanned.ino);
        // A symlink in its place is refused, not followed.
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&other, &path).unwrap();
        assert!(read_stable(&at, Some(&scanned), &mut buf).is_err());
    }

    #[test]
    fn read_expecting_reads_whole_files_whatever_the_size_said() {
        let dir = tempfile::tempdir().unwrap();
        // One buffer for all: what a bigger file left in it must not show in the next.
        let mut buf = Vec::new();
        for (len, claimed) in [(300_000usize, 300_000u64), (0, 0), (1, 1), (5000, 5000), (5000, 10), (10, 5000)] {
            let path = dir.path().join(format!("f{len}-{claimed}"));
            let body: Vec<u8> = (0..len).map(|i| ((i + len) % 251) as u8).collect();
            fs::write(&path, &body).unwrap();
            let mut f = File::open(&path).unwrap();
            let got = read_expecting(&mut f, claimed, &mut buf).unwrap();
            assert_eq!(&buf[..got], &body[..], "{len} bytes, {claimed} claimed");
        }
    }
}
