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

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::chunks::{ChunkRef, Fingerprint};
use super::{
    BlockCache, CancelToken, DATA_FOLDERS, Digest32, Entry, FastMap, FastSet, FileAt, MANIFEST_FORMAT, Manifest,
    ProgressFn, Repo, Scratch, Source, Stat, now_rfc3339, read_stable, report,
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
    /// The caller verifies the whole snapshot right after (re-reading, decoding and
    /// re-hashing every object from disk, as the app does): each new frame is then not
    /// also decoded in memory as it is written. Off, the backup checks every frame it
    /// writes and stores nothing that does not decode to what it read.
    pub verified_after: bool,
}

/// What a backup did. `{id, files, bytes, new_bytes, millis}` is the CLI contract.
#[derive(Clone, Debug, Serialize)]
pub struct BackupReport {
    pub id: String,
    pub files: u64,
    pub bytes: u64,
    /// Compressed bytes of the file contents this backup added (what the snapshot list
    /// shows as new; as with format 1's inline list, the list itself is not counted here).
    pub new_bytes: u64,
    /// Compressed bytes of the file-list chunks this backup added (`chunks`): one per
    /// chunk whose files changed, a few KB each.
    pub list_bytes: u64,
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
    /// The library folder was not walked: the running watcher's journal named what
    /// changed since the parent (see `journal`).
    pub journal: bool,
}

/// A scanned file. Kept for every file of the library during a backup, so it is small:
/// its path is `rel` under the library (or its private area for `Source::Data`).
struct Candidate {
    source: Source,
    rel: String,
    /// `lstat` taken by the walk (relative to the open folder: no path lookup).
    stat: Stat,
    /// Already read by the walk (the first snapshot): its entry, `None` if it vanished.
    read: Option<Option<Entry>>,
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
    repo.check_frames(!opts.verified_after);
    opts.cancel.check()?;
    super::report(opts.progress, "scan", 0, 0);

    let repo_canon = fs::canonicalize(repo.root()).unwrap_or_else(|_| repo.root().to_path_buf());
    let library = lib.root().to_string_lossy().into_owned();
    let parent = latest_of(&repo, &library);
    let journal = lib.backup_journal();
    let taken = journal.begin(&repo_canon, parent.as_ref().map(|m| m.id.as_str()));
    // The journal names paths, so it needs a chunked parent to splice them into.
    let dirty = taken
        .usable
        .clone()
        .filter(|paths| parent.as_ref().is_some_and(|p| !p.chunks.is_empty()) && !paths.iter().any(String::is_empty));
    let job = Snapshot { lib, opts, sealed, repo: &repo, repo_canon: &repo_canon, started };
    let result = workers()?.install(|| match dirty {
        // A journal run that cannot read a parent chunk it must splice into walks instead.
        Some(paths) => match job.run(parent.clone(), Some(paths)) {
            Err(Error::Corrupt(_)) => job.run(parent, None),
            r => r,
        },
        None => job.run(parent, None),
    });
    if result.is_err() {
        repo.abandon_pack();
    }
    journal.finish(taken, result.as_ref().ok().map(|r| r.id.as_str()));
    let mut report = result?;
    report.millis = start.elapsed().as_millis() as u64;
    Ok(report)
}

/// The backup's own workers: one more than cores. A worker reading a file that is not
/// in the page cache waits for the disk, and another one uses the core meanwhile: from
/// a cold cache (2 cores, 100k files) 3 workers took 6.9 s where 2 took 9.0 (4: 5.8 s,
/// 8: 4.5 s, but each worker keeps ~4 MB of buffers and zstd state, and 4 went past the
/// 150 MB memory target; `tar --zstd -cf`: 12.3 s). From a warm cache they are as fast.
fn workers() -> Result<rayon::ThreadPool> {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    rayon::ThreadPoolBuilder::new()
        .num_threads((cores + 1).clamp(2, 16))
        .thread_name(|i| format!("bpv-backup-{i}"))
        .build()
        .map_err(|e| Error::Io {
            context: "cannot start the backup's threads".into(),
            source: std::io::Error::other(e),
        })
}

struct Snapshot<'a, 'o> {
    lib: &'a Library,
    opts: &'a BackupOptions<'o>,
    sealed: Option<&'a super::credentials::SealedSecrets>,
    repo: &'a Repo,
    repo_canon: &'a Path,
    started: i64,
}

/// A run of the new file list: a parent chunk kept as it is, or entries to chunk anew.
enum Segment {
    Reuse(ChunkRef),
    Fresh(Vec<Entry>),
}

type Key<'k> = (Source, &'k str);

/// The contents this backup stores, in shards by digest: one lock for all had both
/// workers taking turns on it for every file (its unlock was half of `one_file`'s own
/// time). A content always falls in the same shard, so claiming it stays one decision.
#[derive(Default)]
struct Written([Mutex<FastSet<Digest32>>; 16]);

impl Written {
    fn shard(&self, digest: &Digest32) -> std::sync::MutexGuard<'_, FastSet<Digest32>> {
        self.0[usize::from(digest[0] & 15)].lock().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.0.iter().map(|m| m.lock().unwrap_or_else(|p| p.into_inner()).len()).sum()
    }
}

impl Snapshot<'_, '_> {
    fn run(&self, parent: Option<Manifest>, dirty: Option<Vec<String>>) -> Result<BackupReport> {
        let (lib, opts, repo) = (self.lib, self.opts, self.repo);
        let new_bytes = AtomicU64::new(0);
        let read_files = AtomicU64::new(0);
        // Keyed by the raw digest: a third of the memory of hex strings, no allocation each.
        let written = Written::default();
        let checked: Mutex<FastMap<Digest32, bool>> = Mutex::default();
        // The first snapshot reads every file anyway: the walk reads each folder's files
        // while it lists the next folders, instead of only after the whole walk.
        let (no_entries, no_hashes) = (FastMap::default(), FastSet::default());
        let eager = (parent.is_none() && dirty.is_none()).then_some(FileCtx {
            repo,
            lib_root: lib.root(),
            area: lib.area(),
            parent: &no_entries,
            trusted_before: 0,
            parent_hashes: &no_hashes,
            written: &written,
            checked: &checked,
            new_bytes: &new_bytes,
            read_files: &read_files,
        });
        let walk = Walk {
            exclude: self.repo_canon,
            skipped: Mutex::new(Vec::new()),
            empty_dirs: Mutex::new(Vec::new()),
            eager: eager.as_ref(),
            cancel: &opts.cancel,
        };
        // Library files: every one, or only those under the paths the journal names.
        let mut files = match &dirty {
            Some(paths) => walk.paths(lib.root(), paths)?,
            None => walk.folder(lib.root(), lib.root(), Source::Library)?,
        };
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
                files.push(Candidate {
                    source: Source::Data,
                    rel: (*rel).to_owned(),
                    stat: Stat::of(&meta),
                    read: None,
                });
            }
        }
        // Unstable: no buffer of half the list (equal keys are duplicates, dropped next);
        // on all cores: with one, the other sat idle for ~50 ms at 100k files.
        files.par_sort_unstable_by(|a, b| (a.source, &a.rel).cmp(&(b.source, &b.rel)));
        files.dedup_by(|a, b| a.source == b.source && a.rel == b.rel);
        let skipped = walk.skipped.into_inner().unwrap_or_else(|p| p.into_inner());
        let found_empty = walk.empty_dirs.into_inner().unwrap_or_else(|p| p.into_inner());
        let empty_dirs = match (&dirty, &parent) {
            // The journal walked only the changed paths: the parent's empty folders stand
            // where nothing changed at, under or above them.
            (Some(paths), Some(parent)) => merge_empty_dirs(&parent.empty_dirs, paths, found_empty),
            _ => merge_empty_dirs(&[], &[], found_empty),
        };
        opts.cancel.check()?;

        // Only entries that were already old when the parent's scan began are trusted.
        let trusted_before = parent.as_ref().map(|m| m.started.saturating_sub(super::RACY_WINDOW_NS)).unwrap_or(0);
        let chunks: Vec<ChunkRef> = parent.as_ref().map(|m| m.chunks.clone()).unwrap_or_default();
        let dirty_set: HashSet<&str> = dirty.iter().flatten().map(String::as_str).collect();
        let under_dirty = |path: &str| {
            dirty_set.contains(path) || path.match_indices('/').any(|(i, _)| dirty_set.contains(&path[..i]))
        };

        // Which candidates fall in which parent chunk's range (the first chunk's range
        // starts at the beginning; a parent without chunks is one range).
        let groups = group_by_chunk(&files, &chunks);
        let affected: Vec<bool> = (0..groups.len())
            .into_par_iter()
            .map(|i| {
                let Some(chunk) = chunks.get(i) else { return true };
                let cands = &files[groups[i].clone()];
                if self.sealed.is_some() && chunk.source == Source::Data {
                    return true; // the sealed values join the data entries
                }
                if dirty.is_some() && chunk.source == Source::Library {
                    // The first chunk's range starts before everything.
                    let start = (i > 0).then(|| chunk.key());
                    let end = chunks.get(i + 1).map(ChunkRef::key);
                    let hit = dirty_set.iter().any(|p| range_meets(start, end, p));
                    return hit || cands.iter().any(|c| c.source == Source::Data);
                }
                let mut fp = Fingerprint::default();
                for c in cands {
                    let m = &c.stat;
                    fp.add(c.source, &c.rel, m.len, m.mtime, m.mode, m.ino, m.ctime);
                }
                !(chunk.max_mtime < trusted_before && fp.finish() == chunk.fp)
            })
            .collect();

        // The parent's entries where something changed: format 1 has them inline.
        let old: Vec<std::result::Result<Vec<Entry>, String>> = (0..groups.len())
            .into_par_iter()
            .map(|i| match (chunks.get(i), affected[i]) {
                (Some(chunk), true) => repo.load_chunk(chunk),
                (Some(_), false) => Ok(Vec::new()),
                (None, _) => Ok(parent.as_ref().map(|m| m.entries.clone()).unwrap_or_default()),
            })
            .collect();
        // A damaged parent chunk only costs re-reading its files; in journal mode its
        // untouched entries are unknown, so that chunk's range is walked instead.
        let mut old_entries = Vec::with_capacity(old.len());
        let mut lost = Vec::new();
        for (i, r) in old.into_iter().enumerate() {
            match r {
                Ok(e) => old_entries.push(e),
                Err(_) => {
                    lost.push(i);
                    old_entries.push(Vec::new());
                }
            }
        }
        if dirty.is_some() && !lost.is_empty() {
            return Err(Error::Corrupt("a chunk of the previous snapshot cannot be read".into()));
        }
        let parent_entries: FastMap<Key<'_>, &Entry> =
            old_entries.iter().flatten().map(|e| ((e.source, e.path.as_str()), e)).collect();
        // Contents a kept snapshot already has, trusted without reading them back.
        let parent_hashes: FastSet<&str> = old_entries.iter().flatten().map(|e| e.hash.as_str()).collect();

        let mut in_work = vec![false; files.len()];
        for (g, _) in groups.iter().zip(&affected).filter(|(_, a)| **a) {
            in_work[g.clone()].fill(true);
        }
        let work: Vec<&mut Candidate> =
            files.iter_mut().zip(in_work).filter_map(|(c, in_work)| in_work.then_some(c)).collect();
        let total = work.len() as u64;
        let done = AtomicU64::new(0);
        let ctx = FileCtx {
            repo,
            lib_root: lib.root(),
            area: lib.area(),
            parent: &parent_entries,
            trusted_before,
            parent_hashes: &parent_hashes,
            written: &written,
            checked: &checked,
            new_bytes: &new_bytes,
            read_files: &read_files,
        };
        let fresh: Vec<Option<Entry>> = work
            .into_par_iter()
            .map_init(Scratch::default, |scratch, c| {
                opts.cancel.check()?;
                let r = match c.read.take() {
                    Some(e) => Ok(e),
                    None => ctx.one_file(c, None, scratch),
                };
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(64) || n == total {
                    report(opts.progress, "backup", n, total);
                }
                r
            })
            .collect::<Result<_>>()?;
        // The scan's list is not needed past here: its memory goes before the file list
        // is built (the peak of a first backup).
        drop(files);
        // In the order of `work`: the affected groups' files, group by group.
        let mut fresh = fresh.into_iter();
        opts.cancel.check()?;

        // The new file list, chunk by chunk.
        let mut segments = Vec::with_capacity(groups.len());
        for (i, range) in groups.iter().enumerate() {
            if !affected[i]
                && let Some(chunk) = chunks.get(i)
            {
                segments.push(Segment::Reuse(chunk.clone()));
                continue;
            }
            let mut entries: Vec<Entry> = Vec::with_capacity(range.len());
            if dirty.is_some() {
                // Journal: what did not change is the parent's, as it was.
                entries.extend(
                    old_entries[i].iter().filter(|e| e.source == Source::Library && !under_dirty(&e.path)).cloned(),
                );
            }
            entries.extend(fresh.by_ref().take(range.len()).flatten());
            segments.push(Segment::Fresh(entries));
        }
        if let Some(sealed) = self.sealed {
            let data = &sealed.bytes;
            let digest: Digest32 = Sha256::digest(data).into();
            let hash = hex::encode(digest);
            new_bytes.fetch_add(repo.write_object(&hash, data)?, Ordering::Relaxed);
            written.shard(&digest).insert(digest);
            let (size, mtime, mode) = (data.len() as u64, self.started, 0o600);
            let path = super::credentials::SEALED_SECRETS.to_owned();
            segments.push(Segment::Fresh(vec![Entry {
                path,
                source: Source::Data,
                size,
                mtime,
                mode,
                hash,
                ino: 0,
                ctime: 0,
            }]));
        }
        let (refs, list_bytes) = self.store_segments(segments)?;
        // Objects reach the disk (packs and loose objects are fsynced, and read back, as
        // they are completed) before the manifest that names them.
        new_bytes.fetch_add(repo.flush_packs()?, Ordering::Relaxed);
        let new_objects = written.len() as u64;
        opts.cancel.check()?;

        let id = new_id();
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            id: id.clone(),
            created: now_rfc3339(),
            library: lib.root().to_string_lossy().into_owned(),
            started: self.started,
            files: refs.iter().map(|c| c.files).sum(),
            bytes: refs.iter().map(|c| c.bytes).sum(),
            new_bytes: new_bytes.load(Ordering::Relaxed),
            entries: Vec::new(),
            chunks: refs,
            empty_dirs,
            damaged_chunks: Vec::new(),
        };
        repo.write_manifest(&manifest)?;
        Ok(BackupReport {
            id,
            files: manifest.files,
            bytes: manifest.bytes,
            new_bytes: manifest.new_bytes,
            list_bytes,
            millis: 0,
            new_objects,
            read_files: read_files.load(Ordering::Relaxed),
            parent: parent.map(|p| p.id),
            repository: repo.root().to_string_lossy().into_owned(),
            skipped,
            journal: dirty.is_some(),
        })
    }

    /// Chunk the fresh runs (neighbouring runs together, so boundaries stay
    /// content-defined) and store the chunks. Returns the references and bytes added.
    fn store_segments(&self, segments: Vec<Segment>) -> Result<(Vec<ChunkRef>, u64)> {
        // A chunk is a range of one run of fresh entries: the entries are not copied
        // into a list per chunk.
        enum Piece {
            Reuse(ChunkRef),
            New(usize, std::ops::Range<usize>),
        }
        let mut runs: Vec<Vec<Entry>> = Vec::new();
        let mut pieces = Vec::new();
        let mut run: Vec<Entry> = Vec::new();
        let mut end_run = |run: Vec<Entry>, pieces: &mut Vec<Piece>| {
            if run.is_empty() {
                return;
            }
            let run = sorted(run);
            pieces.extend(super::chunks::split_ranges(&run).into_iter().map(|r| Piece::New(runs.len(), r)));
            runs.push(run);
        };
        for seg in segments {
            match seg {
                Segment::Fresh(entries) if run.is_empty() => run = entries,
                Segment::Fresh(entries) => run.extend(entries),
                Segment::Reuse(chunk) => {
                    end_run(std::mem::take(&mut run), &mut pieces);
                    pieces.push(Piece::Reuse(chunk));
                }
            }
        }
        end_run(run, &mut pieces);
        let stored: Vec<Result<(ChunkRef, u64)>> = pieces
            .into_par_iter()
            .map(|p| match p {
                Piece::Reuse(c) => Ok((c, 0)),
                Piece::New(run, range) => self.repo.store_chunk(&runs[run][range]),
            })
            .collect();
        // The entries are stored: freed on another thread while this one finishes the
        // last pack and writes the manifest (~30 ms of small frees at 100k files).
        super::drop_in_background(runs);
        let mut refs = Vec::with_capacity(stored.len());
        let mut added = 0;
        for r in stored {
            let (c, n) = r?;
            added += n;
            refs.push(c);
        }
        Ok((refs, added))
    }
}

/// A run of entries in (source, path) order: chunk ranges are found by that order (the
/// sealed secrets entry is added out of place). Paths are unique, so an unstable sort
/// (no buffer of half the run) gives the same order.
fn sorted(mut run: Vec<Entry>) -> Vec<Entry> {
    run.sort_unstable_by(|a, b| (a.source, &a.path).cmp(&(b.source, &b.path)));
    run
}

/// The index range of `files` (sorted) that falls in each chunk's key range.
fn group_by_chunk(files: &[Candidate], chunks: &[ChunkRef]) -> Vec<std::ops::Range<usize>> {
    if chunks.is_empty() {
        return std::iter::once(0..files.len()).collect();
    }
    let mut out = Vec::with_capacity(chunks.len());
    let mut at = 0;
    for i in 0..chunks.len() {
        let end = match chunks.get(i + 1) {
            Some(next) => at + files[at..].partition_point(|c| (c.source, c.rel.as_str()) < next.key()),
            None => files.len(),
        };
        out.push(at..end);
        at = end;
    }
    out
}

/// The empty folders of a snapshot: `found` (the walk's), plus those of `parent` that no
/// path of `dirty` is at, under or above (a folder's emptiness changes only with an event
/// for something in it, and the journal walk checked every folder above a changed path).
fn merge_empty_dirs(parent: &[String], dirty: &[String], found: Vec<String>) -> Vec<String> {
    let related = |a: &str, b: &str| a == b || is_under(a, b) || is_under(b, a);
    let mut out: Vec<String> =
        parent.iter().filter(|d| !dirty.iter().any(|p| related(d, p))).cloned().chain(found).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether `path` is strictly below the folder `dir`.
fn is_under(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// Whether the library paths at or under `dirty` can fall in `[start, end)`.
fn range_meets(start: Option<Key<'_>>, end: Option<Key<'_>>, dirty: &str) -> bool {
    // Everything at or under `dirty` sorts in [dirty, dirty + "0"): '0' follows '/'.
    let hi = format!("{dirty}0");
    let below_end = end.is_none_or(|e| (Source::Library, dirty) < e);
    let after_start = start.is_none_or(|s| (Source::Library, hi.as_str()) > s);
    below_end && after_start
}

struct FileCtx<'a> {
    repo: &'a Repo,
    /// Where `Source::Library` and `Source::Data` paths are.
    lib_root: &'a Path,
    area: &'a Path,
    parent: &'a FastMap<Key<'a>, &'a Entry>,
    trusted_before: i64,
    parent_hashes: &'a FastSet<&'a str>,
    written: &'a Written,
    checked: &'a Mutex<FastMap<Digest32, bool>>,
    new_bytes: &'a AtomicU64,
    read_files: &'a AtomicU64,
}

impl FileCtx<'_> {
    /// The entry of one scanned file (`None` if it is gone), storing its content if new.
    /// `folder` is the file's folder when the walk has it open.
    fn one_file(&self, c: &Candidate, folder: Option<&fs::File>, scratch: &mut Scratch) -> Result<Option<Entry>> {
        let r = self.read_file(c, folder, scratch);
        scratch.release_big();
        r
    }

    fn read_file(&self, c: &Candidate, folder: Option<&fs::File>, scratch: &mut Scratch) -> Result<Option<Entry>> {
        let (repo, parent, trusted_before) = (self.repo, self.parent, self.trusted_before);
        let (new_bytes, read_files) = (self.new_bytes, self.read_files);
        let Stat { len: size, mtime, mode, ino, ctime, .. } = c.stat;
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
        let abs = match c.source {
            Source::Library => self.lib_root.join(&c.rel),
            Source::Data => self.area.join(&c.rel),
        };
        let at = FileAt { path: &abs, folder };
        let (data, stat) = match read_stable(&at, Some(&c.stat), &mut scratch.read) {
            Ok(x) => x,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot back up", &abs, e)),
        };
        let digest: Digest32 = Sha256::digest(data).into();
        let hash = super::hex_of(&digest);
        if !self.parent_hashes.contains(hash.as_str()) && self.claim(&digest, &hash, &mut scratch.cache) {
            new_bytes.fetch_add(repo.write_object(&hash, data)?, Ordering::Relaxed);
        }
        Ok(Some(Entry {
            path: c.rel.clone(),
            source: c.source,
            size: data.len() as u64,
            mtime: stat.mtime,
            mode: stat.mode,
            hash,
            ino: stat.ino,
            ctime: stat.ctime,
        }))
    }

    /// Whether this worker is to store the content `digest` (`hash` in hex): not written
    /// by this backup yet, nor already in the repository and intact.
    fn claim(&self, digest: &Digest32, hash: &str, cache: &mut BlockCache) -> bool {
        let mut w = self.written.shard(digest);
        if w.contains(digest) {
            return false;
        }
        // An object left by an interrupted backup (or named by an older snapshot) is
        // reused only if it checks out; a damaged one is rewritten.
        let repo = self.repo;
        let known_good = repo.has_object(hash) && {
            let mut ch = self.checked.lock().unwrap_or_else(|p| p.into_inner());
            *ch.entry(*digest).or_insert_with(|| repo.read_object_with(hash, cache).is_ok())
        };
        if !known_good {
            w.insert(*digest);
        }
        !known_good
    }
}

/// The scan: every regular file (no symlinks followed) with its `lstat`, folders in
/// parallel. `fs::read_dir` entries are stat'ed relative to their open folder, which
/// spares the full path lookup per file that dominated an unchanged backup.
struct Walk<'a> {
    /// The repository, when it is inside the library.
    exclude: &'a Path,
    skipped: Mutex<Vec<String>>,
    /// Library folders (relative) with neither a file to back up nor a folder in them.
    empty_dirs: Mutex<Vec<String>>,
    /// Read each folder's files as soon as it is listed (the first snapshot).
    eager: Option<&'a FileCtx<'a>>,
    cancel: &'a CancelToken,
}

impl Walk<'_> {
    /// The files at or under each of `paths` (relative to `root`; the journal's), as
    /// the full walk would list them: nothing under a symlinked folder, no temp files.
    fn paths(&self, root: &Path, paths: &[String]) -> Result<Vec<Candidate>> {
        let mut out = Vec::new();
        let mut seen_folders: HashSet<PathBuf> = HashSet::new();
        'paths: for rel in paths {
            let abs = root.join(rel);
            if abs.starts_with(self.exclude) {
                continue;
            }
            // Every folder between the root and the path must be a real folder. Each one
            // may have become empty (the path was removed or moved out).
            let mut dir = abs.parent();
            while let Some(d) = dir
                && d != root
            {
                if !fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()) {
                    continue 'paths;
                }
                if d != self.exclude && seen_folders.insert(d.to_path_buf()) && self.nothing_to_back_up_in(d)? {
                    self.note_empty(root, d);
                }
                dir = d.parent();
            }
            let meta = match fs::symlink_metadata(&abs) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // removed
                Err(e) => return Err(Error::io("cannot read", &abs, e)),
            };
            if meta.is_dir() {
                out.extend(self.folder(root, &abs, Source::Library)?);
            } else if meta.is_file() && !abs.file_name().is_some_and(|n| fsio::is_temp_name(&n.to_string_lossy())) {
                out.push(Candidate { source: Source::Library, rel: rel.clone(), stat: Stat::of(&meta), read: None });
            }
        }
        Ok(out)
    }

    /// Whether the folder `dir` holds neither a folder nor a file the walk would list.
    fn nothing_to_back_up_in(&self, dir: &Path) -> Result<bool> {
        let read = match fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("cannot read", dir, e)),
        };
        for entry in read {
            let entry = entry.map_err(|e| Error::io("cannot read", dir, e))?;
            let kind = entry.file_type().map_err(|e| Error::io("cannot read", &entry.path(), e))?;
            let name = entry.file_name();
            // As `folder_into` counts: the repository's folder is not one of the library's.
            let folder = kind.is_dir() && entry.path() != self.exclude;
            if folder || (kind.is_file() && name.to_str().is_some_and(|n| !fsio::is_temp_name(n))) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Keep `dir` (under `base`) as an empty library folder.
    fn note_empty(&self, base: &Path, dir: &Path) {
        if let Ok(rel) = dir.strip_prefix(base)
            && let Some(rel) = rel.to_str()
            && !rel.is_empty()
        {
            self.empty_dirs.lock().unwrap_or_else(|p| p.into_inner()).push(rel.replace('\\', "/"));
        }
    }

    /// Files under `dir`, named relative to `base` (in no particular order).
    fn folder(&self, base: &Path, dir: &Path, source: Source) -> Result<Vec<Candidate>> {
        // Each folder's files are put aside and joined once, at their exact size: joining
        // them level by level copied every file's candidate once per level and doubled
        // the list's memory at the top (tens of MB at 100k files).
        let parts = Mutex::new(Vec::new());
        self.folder_into(base, dir, source, &parts)?;
        let parts: Vec<Vec<Candidate>> = parts.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut files = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for part in parts {
            files.extend(part);
        }
        Ok(files)
    }

    fn folder_into(&self, base: &Path, dir: &Path, source: Source, parts: &Mutex<Vec<Vec<Candidate>>>) -> Result<()> {
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
            if !kind.is_file() {
                // Links are not followed (what they point at may be outside the library,
                // or in it twice); sockets and pipes have no content. Said, not silent.
                let what = if kind.is_symlink() { "a symbolic link" } else { "not a regular file" };
                let why = format!("{}: {what}, not backed up", abs.display());
                self.skipped.lock().unwrap_or_else(|p| p.into_inner()).push(why);
                continue;
            }
            if fsio::is_temp_name(&entry.file_name().to_string_lossy()) {
                continue;
            }
            // The first snapshot reads every file at once and takes its stat from the
            // open file (`read_stable`): an `lstat` here, with its name lookup, would
            // be a second one per file that nothing uses.
            let stat = match self.eager {
                Some(_) => Stat::UNKNOWN,
                None => match entry.metadata() {
                    Ok(m) => Stat::of(&m),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // deleted meanwhile
                    Err(e) => return Err(Error::io("cannot read", &abs, e)),
                },
            };
            let Ok(rel) = abs.strip_prefix(base) else { continue };
            let Some(rel) = rel.to_str() else {
                let why = format!("{}: the name is not valid UTF-8", abs.display());
                self.skipped.lock().unwrap_or_else(|p| p.into_inner()).push(why);
                continue;
            };
            files.push(Candidate { source, rel: rel.replace('\\', "/"), stat, read: None });
        }
        let walk_on = || folders.par_iter().try_for_each(|sub| self.folder_into(base, sub, source, parts));
        match self.eager {
            Some(ctx) => {
                // Files are opened relative to the folder (no full path lookup each);
                // by path if the folder cannot be opened a second time.
                let open = {
                    use std::os::unix::fs::OpenOptionsExt;
                    let flags = libc::O_DIRECTORY | libc::O_NOFOLLOW;
                    fs::OpenOptions::new().read(true).custom_flags(flags).open(dir).ok()
                };
                let (read, nested) = rayon::join(|| self.read_now(ctx, open.as_ref(), &mut files), walk_on);
                read?;
                nested?;
            }
            None => walk_on()?,
        }
        if files.is_empty() && folders.is_empty() && source == Source::Library {
            self.note_empty(base, dir);
        }
        if !files.is_empty() {
            files.shrink_to_fit();
            parts.lock().unwrap_or_else(|p| p.into_inner()).push(files);
        }
        Ok(())
    }

    fn read_now(&self, ctx: &FileCtx<'_>, folder: Option<&fs::File>, files: &mut [Candidate]) -> Result<()> {
        files.par_iter_mut().try_for_each_init(Scratch::default, |scratch, c| {
            self.cancel.check()?;
            c.read = Some(ctx.one_file(c, folder, scratch)?);
            Ok(())
        })
    }
}

/// The newest readable, intact snapshot of this library.
fn latest_of(repo: &Repo, library: &str) -> Option<Manifest> {
    let ids = repo.snapshot_ids().ok()?;
    for id in ids.iter().rev() {
        if let Ok((m, true)) = repo.load_root(id)
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
