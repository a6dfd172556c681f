//! Restore: a whole snapshot to a new folder, in place (snapshot the current library
//! first, stage, swap), or one file. Every object is re-hashed as it is restored; a
//! snapshot that fails is refused (and nothing is left behind) unless `partial`.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use rayon::prelude::*;
use serde::Serialize;

use super::verify::problems_for;
use super::{CancelToken, DATA_FILES, DATA_FOLDERS, Entry, Problem, ProgressFn, Repo, Source, report, sync_filesystem};
use crate::error::{Error, Result};
use crate::fsio;
use crate::library::Library;

#[derive(Clone, Default)]
pub struct RestoreOptions<'a> {
    /// Restore what is intact even if the snapshot fails verification.
    pub partial: bool,
    pub progress: Option<ProgressFn<'a>>,
    pub cancel: CancelToken,
}

#[derive(Clone, Debug, Serialize)]
pub struct RestoreReport {
    pub id: String,
    pub to: String,
    pub files: u64,
    pub bytes: u64,
    /// What could not be restored (only with `partial`).
    pub not_restored: Vec<Problem>,
    /// For an in-place restore: the snapshot of the library taken just before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    pub millis: u64,
}

impl Repo {
    /// Restore snapshot `id` into `dir`, which must not exist or be empty. Entries of
    /// the private area (trash, versions) go to `data_area` when given, else are left out.
    pub fn restore_to(
        &self,
        id: &str,
        dir: &Path,
        data_area: Option<&Path>,
        opts: &RestoreOptions<'_>,
    ) -> Result<RestoreReport> {
        let start = Instant::now();
        let (manifest, checksum_ok) = self.load_manifest(id)?;
        let mut not_restored = Vec::new();
        if !checksum_ok {
            let why = if manifest.damaged_chunks.is_empty() {
                "its manifest is damaged (checksum mismatch)".to_owned()
            } else {
                let files: u64 = manifest.damaged_chunks.iter().map(|(c, _)| c.files).sum();
                format!("part of its file list is damaged ({files} files cannot be named)")
            };
            if !opts.partial {
                return Err(Error::Corrupt(format!(
                    "snapshot {id} fails verification: {why}. Nothing was restored; `bpv verify {id}` shows the details, `--partial` restores what is intact"
                )));
            }
            if manifest.damaged_chunks.is_empty() {
                not_restored.push(Problem {
                    kind: "manifest",
                    hash: None,
                    message: "the manifest's checksum does not match: restored files whose content checks out; names, dates or modes may be wrong".into(),
                    paths: Vec::new(),
                });
            } else {
                not_restored.extend(super::verify::manifest_problems(&manifest, checksum_ok));
            }
        }
        // A snapshot is untrusted: an entry whose path could leave its folder, or a
        // private-area entry other than the known data files, is refused and reported.
        let (entries, refused): (Vec<&Entry>, Vec<&Entry>) = manifest.entries.iter().partition(|e| match e.source {
            Source::Library => safe_rel(&e.path).is_ok(),
            Source::Data => allowed_data_path(&e.path),
        });
        let (empty_dirs, refused_dirs): (Vec<&String>, Vec<&String>) =
            manifest.empty_dirs.iter().partition(|d| safe_rel(d).is_ok());
        let refused_paths: Vec<String> =
            refused.iter().map(|e| e.path.clone()).chain(refused_dirs.iter().map(|d| (*d).clone())).collect();
        if !refused_paths.is_empty() {
            not_restored.push(Problem {
                kind: "refused",
                hash: None,
                message: format!(
                    "the snapshot names {} path(s) a restore never writes (outside the library or its trash and history): {}",
                    refused_paths.len(),
                    shorten(&refused_paths)
                ),
                paths: refused_paths,
            });
        }
        let created = prepare_empty_dir(dir)?;
        let result = self.write_entries(&entries, dir, data_area, opts);
        let (bad, files, bytes) = match result {
            Ok(x) => x,
            Err(e) => {
                undo_dir(dir, created);
                return Err(e);
            }
        };
        if !bad.is_empty() && !opts.partial {
            undo_dir(dir, created);
            let problems = problems_for(&manifest.entries, &bad);
            let paths: Vec<String> = problems.iter().flat_map(|p| p.paths.iter().cloned()).collect();
            return Err(Error::Corrupt(format!(
                "snapshot {id} fails verification: {} damaged object(s) affecting {}. Nothing was restored; `--partial` restores the rest",
                bad.len(),
                shorten(&paths)
            )));
        }
        not_restored.extend(problems_for(&manifest.entries, &bad));
        for rel in empty_dirs {
            let folder = dir.join(safe_rel(rel)?);
            fsio::create_dir_all(&folder).map_err(|e| Error::io("cannot create folder", &folder, e))?;
        }
        sync_filesystem(dir)?;
        if let Some(area) = data_area.filter(|a| a.is_dir()) {
            sync_filesystem(area)?;
        }
        Ok(RestoreReport {
            id: id.to_owned(),
            to: dir.to_string_lossy().into_owned(),
            files,
            bytes,
            not_restored,
            before: None,
            millis: start.elapsed().as_millis() as u64,
        })
    }

    fn write_entries(
        &self,
        entries: &[&Entry],
        dir: &Path,
        data_area: Option<&Path>,
        opts: &RestoreOptions<'_>,
    ) -> Result<(HashMap<String, String>, u64, u64)> {
        let total = entries.len() as u64;
        let done = AtomicU64::new(0);
        let files = AtomicU64::new(0);
        let bytes = AtomicU64::new(0);
        let bad: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
        let mut ordered: Vec<&Entry> = entries.to_vec();
        self.read_order(&mut ordered, |e| e.hash.as_str());
        ordered.par_iter().try_for_each_init(super::BlockCache::default, |cache, e| -> Result<()> {
            opts.cancel.check()?;
            let base = match (e.source, data_area) {
                (Source::Library, _) => dir,
                (Source::Data, Some(a)) => a,
                (Source::Data, None) => return Ok(()),
            };
            let target = base.join(safe_rel(&e.path)?);
            match self.read_object_with(&e.hash, cache) {
                Ok(data) if data.len() as u64 == e.size => {
                    write_restored(&target, &data, e)?;
                    files.fetch_add(1, Ordering::Relaxed);
                    bytes.fetch_add(e.size, Ordering::Relaxed);
                }
                Ok(data) => {
                    let why = format!("object holds {} bytes where the manifest says {}", data.len(), e.size);
                    bad.lock().unwrap_or_else(|p| p.into_inner()).insert(e.hash.clone(), why);
                }
                Err(why) => {
                    bad.lock().unwrap_or_else(|p| p.into_inner()).insert(e.hash.clone(), why);
                }
            }
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(64) || n == total {
                report(opts.progress, "restore", n, total);
            }
            Ok(())
        })?;
        Ok((bad.into_inner().unwrap_or_else(|p| p.into_inner()), files.into_inner(), bytes.into_inner()))
    }

    /// One file of a snapshot (library path `path`), written durably to `dest`.
    pub fn restore_file(&self, id: &str, path: &str, dest: &Path) -> Result<Entry> {
        let entry = self.find_entry(id, path)?;
        let data = self
            .read_object(&entry.hash)
            .map_err(|why| Error::Corrupt(format!("{path} in snapshot {id} cannot be restored: {why}")))?;
        fsio::write_atomic(dest, &data)?;
        set_mode_and_mtime(dest, &entry)?;
        Ok(entry)
    }

    /// One file's content (checked) and entry, e.g. for a preview.
    pub fn read_file(&self, id: &str, path: &str) -> Result<(Entry, Vec<u8>)> {
        let entry = self.find_entry(id, path)?;
        let data = self
            .read_object(&entry.hash)
            .map_err(|why| Error::Corrupt(format!("{path} in snapshot {id} cannot be read: {why}")))?;
        Ok((entry, data))
    }

    fn find_entry(&self, id: &str, path: &str) -> Result<Entry> {
        let (manifest, checksum_ok) = self.load_manifest(id)?;
        if !checksum_ok {
            return Err(Error::Corrupt(format!(
                "snapshot {id} fails verification: its manifest is damaged; `bpv verify {id}` for details"
            )));
        }
        let wanted = path.trim_start_matches("./");
        let entry = manifest
            .entries
            .into_iter()
            .find(|e| e.source == Source::Library && e.path == wanted)
            .ok_or_else(|| Error::NotFound(format!("{path} is not in snapshot {id}")))?;
        safe_rel(&entry.path)?;
        Ok(entry)
    }
}

/// Restore one file of a snapshot into the library, at its own path. A blueprint
/// goes through the library's save (the current content is kept as a version).
pub fn restore_file_into_library(lib: &Library, repo: &Repo, id: &str, path: &str) -> Result<Entry> {
    let (entry, data) = repo.read_file(id, path)?;
    if entry.path.ends_with(crate::item::BLUEPRINT_SUFFIX) {
        lib.save_blueprint(
            &entry.path,
            &data,
            &crate::library::BlueprintSave { allow_invalid: true, ..Default::default() },
        )?;
    } else {
        let target = lib.root().join(safe_rel(&entry.path)?);
        fsio::write_atomic(&target, &data)?;
        lib.refresh(std::slice::from_ref(&entry.path))?;
    }
    Ok(entry)
}

/// Restore snapshot `id` over the library, all or nothing even across a crash.
///
/// Under the library's write lock (taken first, so no save falls between the snapshot
/// of the current library and the swap): the current library is snapshotted (into the
/// same repository), the restore is staged beside it (the library in a sibling folder,
/// trash and history in the private area) and flushed, each staged folder gets a
/// marker, a restore journal is written durably, then each staged folder is swapped
/// with the live one by one atomic exchange. From the journal on, the restore only goes
/// forward: [`recover_restore`] (run by every `Library::open`) finishes it, telling a
/// swapped pair from an unswapped one by where its marker is.
pub fn restore_in_place(lib: &Library, repo_path: &Path, id: &str, opts: &RestoreOptions<'_>) -> Result<RestoreReport> {
    let start = Instant::now();
    let repo = Repo::open(repo_path)?;
    let repo_canon = fs::canonicalize(repo.root()).unwrap_or_else(|_| repo.root().to_path_buf());
    if repo_canon.starts_with(lib.root()) {
        return Err(Error::InvalidArgument(
            "the backup repository is inside the library: restore to a new folder (--to DIR) instead".into(),
        ));
    }
    // Refuse a damaged snapshot before touching anything.
    let (manifest, checksum_ok) = repo.load_manifest(id)?;
    if !checksum_ok && !opts.partial {
        return Err(Error::Corrupt(format!(
            "snapshot {id} fails verification: its manifest is damaged. Nothing was changed; `--partial` restores what is intact"
        )));
    }
    drop(manifest);
    let _lock = lib.write_lock()?;
    let before = super::backup(
        lib,
        &super::create::BackupOptions {
            repo: Some(repo.root().to_path_buf()),
            progress: None,
            cancel: opts.cancel.clone(),
            verified_after: false,
        },
    )?;

    let tag = format!("{:08x}", rand::random::<u32>());
    let swap = Swap::new(lib.root(), lib.area(), &tag)?;
    let staged = (|| -> Result<RestoreReport> {
        let rep = repo.restore_to(id, &swap.staging, Some(&swap.staging_area), opts)?;
        for folder in DATA_FOLDERS {
            fsio::ensure_dir(&lib.area().join(folder))?;
            fsio::ensure_dir(&swap.staging_area.join(folder))?;
        }
        for (_, other) in swap.pairs() {
            fsio::write_atomic(&other.join(&swap.marker), b"")?;
        }
        opts.cancel.check()?;
        Ok(rep)
    })();
    let mut rep = match staged {
        Ok(r) => r,
        Err(e) => {
            // Nothing was swapped: the staged copy goes (or, after a crash, at the next open).
            let _ = remove_tree(&swap.staging);
            let _ = remove_tree(&swap.staging_area);
            return Err(e);
        }
    };
    let journal = RestoreJournal { format: 1, tag, snapshot: id.to_owned() };
    let body = serde_json::to_vec(&journal).map_err(|e| Error::Corrupt(format!("restore journal: {e}")))?;
    if let Err(e) = fsio::write_atomic(&lib.area().join(RESTORE_JOURNAL), &body) {
        let _ = remove_tree(&swap.staging);
        let _ = remove_tree(&swap.staging_area);
        return Err(e);
    }
    // Committed: from here the restore is finished, now or at the next open.
    let finished = swap
        .finish(lib.area(), id)
        .and_then(|()| lib.reindex(None).map(drop))
        .and_then(|()| fsio::remove_durable(&lib.area().join(RESTORE_JOURNAL)));
    if let Err(e) = finished {
        // One more go (a passing failure); else the next open finishes it.
        let again = finish_pending(lib.root(), lib.area()).and_then(|_| lib.reindex(None).map(drop));
        if again.is_err() {
            let later =
                format!("the restore of snapshot {id} is recorded and is finished when the library is next opened");
            return Err(match e {
                Error::Io { context, source } => Error::Io { context: format!("{context} ({later})"), source },
                other => other,
            });
        }
    }
    rep.to = lib.root().to_string_lossy().into_owned();
    rep.before = Some(before.id);
    rep.millis = start.elapsed().as_millis() as u64;
    Ok(rep)
}

/// The restore journal in the library's private area: present from just before the
/// first swap until the restore is finished.
const RESTORE_JOURNAL: &str = "restore-journal.json";
const STAGING_MARK: &str = ".bpv-restore-";
const AREA_STAGING_MARK: &str = ".restore-";

#[derive(Serialize, serde::Deserialize)]
struct RestoreJournal {
    format: u32,
    tag: String,
    snapshot: String,
}

/// The folders of one in-place restore, all named from its tag (never from paths in
/// the journal, which is read back from disk).
struct Swap {
    root: PathBuf,
    area: PathBuf,
    staging: PathBuf,
    staging_area: PathBuf,
    marker: String,
}

impl Swap {
    fn new(root: &Path, area: &Path, tag: &str) -> Result<Swap> {
        let parent = root.parent().ok_or_else(|| Error::InvalidArgument("the library has no parent folder".into()))?;
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Swap {
            root: root.to_path_buf(),
            area: area.to_path_buf(),
            staging: parent.join(format!(".{name}{STAGING_MARK}{tag}")),
            staging_area: area.join(format!("{AREA_STAGING_MARK}{tag}")),
            marker: format!("{STAGING_MARK}{tag}"),
        })
    }

    /// (live, staged) folder pairs: the library, then each of `DATA_FOLDERS`.
    fn pairs(&self) -> Vec<(PathBuf, PathBuf)> {
        let mut out = vec![(self.root.clone(), self.staging.clone())];
        for folder in DATA_FOLDERS {
            out.push((self.area.join(folder), self.staging_area.join(folder)));
        }
        out
    }

    /// Swap every pair not swapped yet, merge the credential names, remove the old
    /// copies and then the markers. Each step can be cut and run again.
    fn finish(&self, area: &Path, snapshot: &str) -> Result<()> {
        for (live, other) in self.pairs() {
            if live.join(&self.marker).exists() || !other.join(&self.marker).exists() {
                continue; // swapped already (or finished and cleaned up)
            }
            fsio::exchange(&other, &live).map_err(|e| Error::io("cannot swap in the restored copy at", &live, e))?;
            // The live side's folder first: once that is durable the pair counts as swapped.
            if let Some(dir) = live.parent() {
                fsio::fsync_dir(dir)?;
            }
            if let Some(dir) = other.parent().filter(|d| Some(*d) != live.parent()) {
                fsio::fsync_dir(dir)?;
            }
        }
        // Credential names and the audit log: merged, never put back over the current ones.
        if self.staging_area.is_dir() {
            super::credentials::merge_restored(area, &self.staging_area, snapshot)?;
        }
        remove_tree(&self.staging)?;
        remove_tree(&self.staging_area)?;
        for (live, _) in self.pairs() {
            let marker = live.join(&self.marker);
            if marker.exists() {
                fsio::remove_durable(&marker)?;
            }
        }
        Ok(())
    }
}

fn remove_tree(dir: &Path) -> Result<()> {
    if fs::symlink_metadata(dir).is_err() {
        return Ok(());
    }
    fsio::remove_dir_all(dir).map_err(|e| Error::io("cannot remove", dir, e))?;
    match dir.parent() {
        Some(parent) => fsio::fsync_dir(parent),
        None => Ok(()),
    }
}

/// Finish an in-place restore a crash or a failure interrupted (its journal is in
/// `area`), or clear away the staging of one that never wrote its journal (nothing was
/// swapped then). Run by `Library::open` before anything reads the library; skipped
/// while another process holds the library's write lock (a restore may be running
/// there). Returns whether the library's files changed (the index must be rebuilt).
pub fn recover_restore(root: &Path, area: &Path) -> Result<bool> {
    if !area.is_dir() {
        return Ok(false);
    }
    let lock_path = area.join("write.lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io("cannot open lock file", &lock_path, e))?;
    if lock.try_lock().is_err() {
        return Ok(false);
    }
    finish_pending(root, area)
}

/// [`recover_restore`] for a caller that holds the write lock.
fn finish_pending(root: &Path, area: &Path) -> Result<bool> {
    let jpath = area.join(RESTORE_JOURNAL);
    let Some(bytes) = crate::library::read_if_exists(&jpath)? else {
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut debris = names_with_tag(area, AREA_STAGING_MARK);
        if let Some(parent) = root.parent() {
            debris.extend(names_with_tag(parent, &format!(".{name}{STAGING_MARK}")));
        }
        for dir in debris {
            remove_tree(&dir)?;
        }
        return Ok(false);
    };
    let unknown = || {
        Error::Corrupt(format!(
            "the restore journal {} is unreadable or names no restore this version knows; the library was left as it is",
            jpath.display()
        ))
    };
    let journal: RestoreJournal = serde_json::from_slice(&bytes).map_err(|_| unknown())?;
    if journal.format != 1 || !is_tag(&journal.tag) {
        return Err(unknown());
    }
    let snapshot = if super::check_id(&journal.snapshot).is_ok() { journal.snapshot } else { "?".into() };
    Swap::new(root, area, &journal.tag)?.finish(area, &snapshot)?;
    fsio::remove_durable(&jpath)?;
    Ok(true)
}

fn is_tag(tag: &str) -> bool {
    tag.len() == 8 && tag.chars().all(|c| c.is_ascii_hexdigit())
}

/// Folders in `dir` named `PREFIX` + a restore tag.
fn names_with_tag(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else { return Vec::new() };
    rd.flatten()
        .filter(|e| e.file_name().to_str().and_then(|n| n.strip_prefix(prefix)).is_some_and(is_tag))
        .map(|e| e.path())
        .collect()
}

/// Where a restore by an earlier version (before the restore journal) left the library
/// aside, when the library itself is missing: no empty library may be created there.
pub fn library_set_aside(root: &Path) -> Option<PathBuf> {
    let parent = root.parent()?;
    let prefix = format!(".{}.bpv-old-", root.file_name()?.to_string_lossy());
    fs::read_dir(parent)
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix) && e.path().is_dir())
        .map(|e| e.path())
}

/// The folder a whole snapshot may be restored into (`bpv restore --to`, the app's
/// restore to a folder): refused inside the library or inside the data dir that holds
/// the private areas, whether it exists yet or not. Returns the resolved folder.
pub fn check_restore_target(target: &Path, library: &Path, data_dir: &Path) -> Result<PathBuf> {
    let resolved = resolve(target)?;
    for (what, outer) in [("the library", library), ("the app's data folder", data_dir)] {
        let outer = resolve(outer)?;
        if resolved.starts_with(&outer) {
            return Err(Error::InvalidArgument(format!(
                "cannot restore into {}: it is inside {what} ({}). Choose a new, empty folder outside it",
                target.display(),
                outer.display()
            )));
        }
    }
    Ok(resolved)
}

/// `path` made absolute with every symbolic link resolved, also when its last parts do
/// not exist yet (the nearest existing folder is resolved and the rest appended).
fn resolve(path: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(path).map_err(|e| Error::io("cannot resolve", path, e))?;
    if abs.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(Error::InvalidArgument(format!("give {} without `..`", path.display())));
    }
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if fs::symlink_metadata(cur).is_ok() {
            let mut out = fs::canonicalize(cur).map_err(|e| Error::io("cannot resolve", cur, e))?;
            out.extend(rest.iter().rev());
            return Ok(out);
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return Err(Error::InvalidArgument(format!("{} cannot be resolved", path.display()))),
        }
    }
}

/// Whether a snapshot's private-area entry is one a restore may write: a file inside
/// one of `DATA_FOLDERS`, or one of `DATA_FILES`. Anything else a crafted snapshot might
/// name (a sync link, the settings, the sealed secrets) is refused.
fn allowed_data_path(path: &str) -> bool {
    safe_rel(path).is_ok()
        && (DATA_FILES.contains(&path)
            || path.split_once('/').is_some_and(|(first, rest)| DATA_FOLDERS.contains(&first) && !rest.is_empty()))
}

/// A manifest path as a relative path that cannot leave the restore folder.
pub(crate) fn safe_rel(path: &str) -> Result<PathBuf> {
    let p = Path::new(path);
    // Untrusted (a snapshot's manifest): relative, no `..`, no control characters.
    let ok = !path.is_empty()
        && !path.chars().any(char::is_control)
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(p.to_path_buf())
    } else {
        Err(Error::Corrupt(format!("the snapshot names an unsafe path {path:?}; refusing to restore it")))
    }
}

/// `dir` must not exist or be empty; creates it. Returns whether it was created.
fn prepare_empty_dir(dir: &Path) -> Result<bool> {
    if dir.exists() {
        let mut rd = fs::read_dir(dir).map_err(|e| Error::io("cannot read", dir, e))?;
        if rd.next().is_some() {
            return Err(Error::AlreadyExists(format!(
                "{} is not empty: restore into a new or empty folder (or use --in-place)",
                dir.display()
            )));
        }
        Ok(false)
    } else {
        fsio::ensure_dir(dir)?;
        Ok(true)
    }
}

/// Put `dir` back as it was (missing or empty) after a refused or failed restore.
fn undo_dir(dir: &Path, created: bool) {
    if created {
        let _ = fsio::remove_dir_all(dir);
    } else if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let _ = if p.is_dir() { fsio::remove_dir_all(&p) } else { fsio::remove_file(&p) };
        }
    }
}

fn write_restored(target: &Path, data: &[u8], e: &Entry) -> Result<()> {
    if let Some(parent) = target.parent() {
        fsio::create_dir_all(parent).map_err(|err| Error::io("cannot create folder", parent, err))?;
    }
    // Through the seam (flushed by one syncfs once every file is written).
    let mut f = fsio::create_new(target).map_err(|err| Error::io("cannot create", target, err))?;
    fsio::write_all(&mut f, target, data).map_err(|err| Error::io("cannot write", target, err))?;
    f.set_modified(mtime_of(e)).map_err(|err| Error::io("cannot set the date of", target, err))?;
    if e.mode != 0 {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(e.mode))
            .map_err(|err| Error::io("cannot set permissions of", target, err))?;
    }
    Ok(())
}

fn set_mode_and_mtime(target: &Path, e: &Entry) -> Result<()> {
    let f = fs::OpenOptions::new().write(true).open(target).map_err(|err| Error::io("cannot open", target, err))?;
    f.set_modified(mtime_of(e)).map_err(|err| Error::io("cannot set the date of", target, err))?;
    drop(f);
    set_mode(target, e)
}

fn set_mode(target: &Path, e: &Entry) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if e.mode != 0 {
        fs::set_permissions(target, fs::Permissions::from_mode(e.mode))
            .map_err(|err| Error::io("cannot set permissions of", target, err))?;
    }
    Ok(())
}

fn mtime_of(e: &Entry) -> std::time::SystemTime {
    if e.mtime >= 0 {
        UNIX_EPOCH + Duration::from_nanos(e.mtime as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(e.mtime.unsigned_abs())
    }
}

fn shorten(paths: &[String]) -> String {
    if paths.len() <= 10 {
        paths.join(", ")
    } else {
        format!("{} and {} more", paths[..10].join(", "), paths.len() - 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::{BlueprintSave, OpenOptions};

    /// A snapshot is untrusted: one crafted to name a sync link, the settings, a path
    /// out of the folder or one with a control character gets those entries refused and
    /// reported, never written; the rest is restored.
    #[test]
    fn a_crafted_snapshot_cannot_write_outside_the_library_or_its_data_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fs::canonicalize(tmp.path()).unwrap();
        let mut o = OpenOptions::new(dir.join("lib"));
        o.data_dir = Some(dir.join("data"));
        o.create = true;
        let lib = Library::open(o).unwrap();
        lib.save_blueprint("Blueprints/a.blueprint.yaml", b"name: a\nnodes: []\n", &BlueprintSave::default()).unwrap();
        let report = super::super::backup(
            &lib,
            &super::super::create::BackupOptions { repo: Some(dir.join("repo")), ..Default::default() },
        )
        .unwrap();
        let repo = Repo::open(&dir.join("repo")).unwrap();
        let (mut m, ok) = repo.load_manifest(&report.id).unwrap();
        assert!(ok);
        let good = m.entries.iter().find(|e| e.path == "Blueprints/a.blueprint.yaml").unwrap().clone();
        let crafted = |path: &str, source: Source| Entry { path: path.into(), source, ..good.clone() };
        let bad = [
            crafted("sync/link.json", Source::Data),
            crafted("settings.json", Source::Data),
            crafted("secrets/sealed.bin", Source::Data),
            crafted("trash/../../../escaped.txt", Source::Data),
            crafted("trash", Source::Data),
            crafted("../escaped.blueprint.yaml", Source::Library),
            crafted("/tmp/absolute.blueprint.yaml", Source::Library),
            crafted("Blueprints/bell\u{7}.blueprint.yaml", Source::Library),
        ];
        m.entries.extend(bad.iter().cloned());
        m.entries.push(crafted("trash/x/blueprint.yaml", Source::Data));
        m.empty_dirs.push("../outside-folder".into());
        m.chunks.clear();
        repo.write_manifest(&m).unwrap();

        let out = dir.join("out/restored");
        let area = dir.join("out/area");
        let rep = repo.restore_to(&report.id, &out, Some(&area), &RestoreOptions::default()).unwrap();
        let refused: Vec<&Problem> = rep.not_restored.iter().filter(|p| p.kind == "refused").collect();
        assert_eq!(refused.len(), 1, "{:?}", rep.not_restored);
        for e in &bad {
            assert!(refused[0].paths.contains(&e.path), "{} not reported: {:?}", e.path, refused[0].paths);
        }
        assert!(refused[0].paths.contains(&"../outside-folder".to_string()));
        // Written: the library's files and the trash entry; nothing else anywhere.
        let written: Vec<String> = walkdir::WalkDir::new(&dir)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file() && !e.path().starts_with(dir.join("repo")))
            .filter(|e| !e.path().starts_with(dir.join("data")) && !e.path().starts_with(dir.join("lib")))
            .map(|e| e.path().strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect();
        let mut written = written;
        written.sort();
        let mut want: Vec<String> = m
            .entries
            .iter()
            .filter(|e| !bad.contains(e))
            .map(|e| match e.source {
                Source::Library => format!("out/restored/{}", e.path),
                Source::Data => format!("out/area/{}", e.path),
            })
            .collect();
        want.sort();
        assert_eq!(written, want);
        assert!(!dir.join("escaped.txt").exists() && !dir.join("out/outside-folder").exists());
    }

    #[test]
    fn a_restore_target_inside_the_library_or_the_data_dir_is_refused_even_before_it_exists() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fs::canonicalize(tmp.path()).unwrap();
        let (lib, data) = (dir.join("lib"), dir.join("data"));
        fs::create_dir_all(lib.join("Exports")).unwrap();
        fs::create_dir_all(&data).unwrap();
        std::os::unix::fs::symlink(&lib, dir.join("link")).unwrap();
        for inside in [
            lib.clone(),
            lib.join("Exports"),
            lib.join("not/yet"),
            data.join("libraries/x"),
            dir.join("link/new"),
            dir.join("elsewhere/../lib/new"),
        ] {
            let err = check_restore_target(&inside, &lib, &data).unwrap_err();
            assert_eq!(err.code(), "invalid_argument", "{}: {err}", inside.display());
        }
        assert_eq!(check_restore_target(&dir.join("out/new"), &lib, &data).unwrap(), dir.join("out/new"));
        // A library that does not exist yet is resolved the same way.
        assert!(check_restore_target(&dir.join("gone/x"), &dir.join("gone"), &data).is_err());
    }
}
