//! Taking a snapshot: scan, hash (reusing the parent snapshot's hash for files whose
//! size, mtime, inode and ctime are unchanged), store new contents once (each checked
//! as it is compressed and as it reads back), flush, and only then write the manifest.
//!
//! The unchanged-file test is restic's: a file whose size, mtime, inode number and
//! ctime all equal the parent snapshot's entry is not read again. Trade-off: content
//! is trusted from metadata. A same-size rewrite that resets the mtime (`touch -d`)
//! is still caught, since only the kernel sets ctime (and a replaced file has a new
//! inode); what slips through is a change made while the clock was set back to the
//! same nanosecond, or a filesystem without a ctime. Files changed within
//! `RACY_WINDOW_NS` of the parent's scan are always read again (coarse timestamps).
//! `bpv verify` and restore still re-hash everything they read.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    CancelToken, DATA_FOLDERS, Entry, MANIFEST_FORMAT, Manifest, ProgressFn, Repo, Source, by_path, mode_of,
    now_rfc3339, read_stable, report,
};
use crate::error::{Error, Result};
use crate::fsio;
use crate::library::Library;

/// Options for [`backup`].
#[derive(Clone, Default)]
pub struct BackupOptions<'a> {
    /// The repository; default `Repo::default_location(lib)`.
    pub repo: Option<PathBuf>,
    pub progress: Option<ProgressFn<'a>>,
    pub cancel: CancelToken,
}

/// What a backup did. `{id, files, bytes, new_bytes, millis}` is the CLI contract.
#[derive(Clone, Debug, Serialize)]
pub struct BackupReport {
    pub id: String,
    pub files: u64,
    pub bytes: u64,
    /// Compressed bytes of the objects this backup added.
    pub new_bytes: u64,
    pub millis: u64,
    /// Objects added (distinct new contents).
    pub new_objects: u64,
    /// Files whose content was read (the rest reused the previous snapshot's hash).
    pub read_files: u64,
    /// The snapshot this one was compared with.
    pub parent: Option<String>,
    pub repository: String,
    /// Files that could not be backed up (names that are not UTF-8), with why.
    pub skipped: Vec<String>,
}

struct Candidate {
    source: Source,
    rel: String,
    abs: PathBuf,
    /// `lstat` taken by the walk (relative to the open folder: no path lookup).
    meta: fs::Metadata,
}

/// Take a snapshot of `lib` (library folder + trash + version history + credential names).
pub fn backup(lib: &Library, opts: &BackupOptions<'_>) -> Result<BackupReport> {
    backup_impl(lib, opts, None)
}

/// [`backup`], with the credential values sealed by [`super::seal_secrets`] in the
/// snapshot (`secrets/backup-secrets.sealed`; only this snapshot: they are not on disk).
pub fn backup_with_secrets(
    lib: &Library,
    opts: &BackupOptions<'_>,
    sealed: &super::credentials::SealedSecrets,
) -> Result<BackupReport> {
    backup_impl(lib, opts, Some(sealed))
}

fn backup_impl(
    lib: &Library,
    opts: &BackupOptions<'_>,
    sealed: Option<&super::credentials::SealedSecrets>,
) -> Result<BackupReport> {
    let start = Instant::now();
    let started = fsio::system_time_ns(std::time::SystemTime::now());
    let repo_path = opts.repo.clone().unwrap_or_else(|| Repo::default_location(lib));
    let repo = Repo::open_or_create(&repo_path)?;
    let _lock = repo.lock()?;
    // What the repository holds now that no prune can run (it takes the same lock).
    repo.reload_packs();
    opts.cancel.check()?;
    super::report(opts.progress, "scan", 0, 0);

    let mut skipped = Vec::new();
    let repo_canon = fs::canonicalize(repo.root()).unwrap_or_else(|_| repo.root().to_path_buf());
    let walk = Walk { exclude: &repo_canon, skipped: Mutex::new(Vec::new()) };
    let mut files = walk.folder(lib.root(), lib.root(), Source::Library)?;
    for folder in DATA_FOLDERS {
        let dir = lib.area().join(folder);
        if dir.is_dir() {
            files.extend(walk.folder(lib.area(), &dir, Source::Data)?);
        }
    }
    for rel in super::DATA_FILES {
        let abs = lib.area().join(rel);
        if let Ok(meta) = fs::symlink_metadata(&abs)
            && meta.is_file()
        {
            files.push(Candidate { source: Source::Data, rel: (*rel).to_owned(), abs, meta });
        }
    }
    skipped.extend(walk.skipped.into_inner().unwrap_or_else(|p| p.into_inner()));
    opts.cancel.check()?;

    let library = lib.root().to_string_lossy().into_owned();
    let parent = latest_of(&repo, &library);
    let parent_entries = parent.as_ref().map(|m| by_path(&m.entries)).unwrap_or_default();
    // Only entries that were already old when the parent's scan began are trusted.
    let trusted_before = parent.as_ref().map(|m| m.started.saturating_sub(super::RACY_WINDOW_NS)).unwrap_or(0);
    // Built on the first file that has to be read (an unchanged backup never needs it).
    let parent_hashes: OnceLock<HashSet<&str>> = OnceLock::new();
    let parent_hash_set = || {
        parent_hashes.get_or_init(|| {
            parent.as_ref().map(|m| m.entries.iter().map(|e| e.hash.as_str()).collect()).unwrap_or_default()
        })
    };

    let total = files.len() as u64;
    let done = AtomicU64::new(0);
    let new_bytes = AtomicU64::new(0);
    let read_files = AtomicU64::new(0);
    let written: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    let checked: Mutex<HashMap<String, bool>> = Mutex::new(HashMap::new());

    let results: Vec<Result<Option<Entry>>> = files
        .par_iter()
        .map(|c| {
            opts.cancel.check()?;
            let r = one_file(
                &repo,
                c,
                &parent_entries,
                trusted_before,
                &parent_hash_set,
                &written,
                &checked,
                &new_bytes,
                &read_files,
            );
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(64) || n == total {
                report(opts.progress, "backup", n, total);
            }
            r
        })
        .collect();
    let mut entries = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(Some(e)) => entries.push(e),
            Ok(None) => {}
            Err(e) => {
                repo.abandon_pack();
                return Err(e);
            }
        }
    }
    if let Err(e) = opts.cancel.check() {
        repo.abandon_pack();
        return Err(e);
    }
    if let Some(sealed) = sealed {
        let data = &sealed.bytes;
        let hash = hex::encode(Sha256::digest(data));
        let stored = match repo.write_object(&hash, data) {
            Ok(n) => n,
            Err(e) => {
                repo.abandon_pack();
                return Err(e);
            }
        };
        new_bytes.fetch_add(stored, Ordering::Relaxed);
        written.lock().unwrap_or_else(|p| p.into_inner()).insert(hash.clone());
        let (size, mtime, mode) = (data.len() as u64, started, 0o600);
        let path = super::credentials::SEALED_SECRETS.to_owned();
        entries.push(Entry { path, source: Source::Data, size, mtime, mode, hash, ino: 0, ctime: 0 });
    }
    // Objects reach the disk (packs and loose objects are fsynced, and read back, as
    // they are completed) before the manifest that names them.
    repo.flush_packs()?;
    entries.sort_by(|a, b| (a.source, &a.path).cmp(&(b.source, &b.path)));
    let new_objects = written.into_inner().unwrap_or_else(|p| p.into_inner()).len() as u64;
    opts.cancel.check()?;

    let id = new_id();
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        id: id.clone(),
        created: now_rfc3339(),
        library,
        started,
        files: entries.len() as u64,
        bytes: entries.iter().map(|e| e.size).sum(),
        new_bytes: new_bytes.load(Ordering::Relaxed),
        entries,
    };
    repo.write_manifest(&manifest)?;
    Ok(BackupReport {
        id,
        files: manifest.files,
        bytes: manifest.bytes,
        new_bytes: manifest.new_bytes,
        millis: start.elapsed().as_millis() as u64,
        new_objects,
        read_files: read_files.load(Ordering::Relaxed),
        parent: parent.map(|p| p.id),
        repository: repo.root().to_string_lossy().into_owned(),
        skipped,
    })
}

#[allow(clippy::too_many_arguments)]
fn one_file<'p>(
    repo: &Repo,
    c: &Candidate,
    parent: &std::collections::BTreeMap<(Source, &str), &Entry>,
    trusted_before: i64,
    parent_hashes: &dyn Fn() -> &'p HashSet<&'p str>,
    written: &Mutex<HashSet<String>>,
    checked: &Mutex<HashMap<String, bool>>,
    new_bytes: &AtomicU64,
    read_files: &AtomicU64,
) -> Result<Option<Entry>> {
    let meta = &c.meta;
    let (size, mtime, mode, ino, ctime) = (meta.len(), fsio::mtime_ns(meta), mode_of(meta), meta.ino(), ctime_ns(meta));
    if let Some(prev) = parent.get(&(c.source, c.rel.as_str()))
        && prev.size == size
        && prev.mtime == mtime
        // Manifests from before inode and ctime were recorded have 0: size and mtime decide.
        && (prev.ino == 0 || prev.ino == ino)
        && (prev.ctime == 0 || prev.ctime == ctime)
        // (A change after the parent read the file in the same coarse tick keeps the
        // mtime equal: only files already old at the parent's scan are trusted.)
        && mtime < trusted_before
    {
        let hash = prev.hash.clone();
        return Ok(Some(Entry { path: c.rel.clone(), source: c.source, size, mtime, mode, hash, ino, ctime }));
    }
    read_files.fetch_add(1, Ordering::Relaxed);
    let (data, meta) = match read_stable(&c.abs) {
        Ok(x) => x,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("cannot back up", &c.abs, e)),
    };
    let hash = hex::encode(Sha256::digest(&data));
    let entry = Entry {
        path: c.rel.clone(),
        source: c.source,
        size: data.len() as u64,
        mtime: fsio::mtime_ns(&meta),
        mode: mode_of(&meta),
        hash: hash.clone(),
        ino: meta.ino(),
        ctime: ctime_ns(&meta),
    };
    if parent_hashes().contains(hash.as_str()) {
        return Ok(Some(entry));
    }
    {
        let mut w = written.lock().unwrap_or_else(|p| p.into_inner());
        if w.contains(&hash) {
            return Ok(Some(entry));
        }
        // An object left by an interrupted backup (or named by an older snapshot) is
        // reused only if it checks out; a damaged one is rewritten.
        let known_good = {
            let mut ch = checked.lock().unwrap_or_else(|p| p.into_inner());
            *ch.entry(hash.clone()).or_insert_with(|| repo.has_object(&hash) && repo.read_object(&hash).is_ok())
        };
        if known_good {
            return Ok(Some(entry));
        }
        w.insert(hash.clone());
    }
    let n = repo.write_object(&hash, &data)?;
    new_bytes.fetch_add(n, Ordering::Relaxed);
    Ok(Some(entry))
}

fn ctime_ns(meta: &fs::Metadata) -> i64 {
    meta.ctime().saturating_mul(1_000_000_000).saturating_add(meta.ctime_nsec())
}

/// The scan: every regular file (no symlinks followed) with its `lstat`, folders in
/// parallel. `fs::read_dir` entries are stat'ed relative to their open folder, which
/// spares the full path lookup per file that dominated an unchanged backup.
struct Walk<'a> {
    /// The repository, when it is inside the library.
    exclude: &'a Path,
    skipped: Mutex<Vec<String>>,
}

impl Walk<'_> {
    /// Files under `dir`, named relative to `base`.
    fn folder(&self, base: &Path, dir: &Path, source: Source) -> Result<Vec<Candidate>> {
        let read = fs::read_dir(dir).map_err(|e| Error::io("cannot read", dir, e))?;
        let mut files = Vec::new();
        let mut folders = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| Error::io("cannot read", dir, e))?;
            let kind = entry.file_type().map_err(|e| Error::io("cannot read", &entry.path(), e))?;
            let abs = entry.path();
            if kind.is_dir() {
                let is_repo = abs == self.exclude
                    || (Some(entry.file_name().as_os_str()) == self.exclude.file_name()
                        && fs::canonicalize(&abs).is_ok_and(|c| c == self.exclude));
                if !is_repo {
                    folders.push(abs);
                }
                continue;
            }
            if !kind.is_file() || fsio::is_temp_name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // deleted meanwhile
                Err(e) => return Err(Error::io("cannot read", &abs, e)),
            };
            let Ok(rel) = abs.strip_prefix(base) else { continue };
            let Some(rel) = rel.to_str() else {
                let why = format!("{}: the name is not valid UTF-8", abs.display());
                self.skipped.lock().unwrap_or_else(|p| p.into_inner()).push(why);
                continue;
            };
            files.push(Candidate { source, rel: rel.replace('\\', "/"), abs, meta });
        }
        let nested: Vec<Vec<Candidate>> =
            folders.par_iter().map(|sub| self.folder(base, sub, source)).collect::<Result<_>>()?;
        files.extend(nested.into_iter().flatten());
        Ok(files)
    }
}

/// The newest readable, intact snapshot of this library.
fn latest_of(repo: &Repo, library: &str) -> Option<Manifest> {
    let ids = repo.snapshot_ids().ok()?;
    for id in ids.iter().rev() {
        if let Ok((m, true)) = repo.load_manifest(id)
            && m.library == library
        {
            return Some(m);
        }
    }
    None
}

fn new_id() -> String {
    let now = chrono::Utc::now();
    format!("{}-{:06x}", now.format("%Y%m%dT%H%M%S%3fZ"), rand::random::<u32>() & 0xff_ffff)
}
