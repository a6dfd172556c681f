//! Restore: a whole snapshot to a new folder, in place (snapshot the current library
//! first, stage, swap), or one file. Every object is re-hashed as it is restored; a
//! snapshot that fails is refused (and nothing is left behind) unless `partial`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use rayon::prelude::*;
use serde::Serialize;

use super::verify::problems_for;
use super::{CancelToken, DATA_FOLDERS, Entry, Problem, ProgressFn, Repo, Source, report, sync_filesystem};
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
        let created = prepare_empty_dir(dir)?;
        let result = self.write_entries(&manifest.entries, dir, data_area, opts);
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
        for rel in &manifest.empty_dirs {
            let folder = dir.join(safe_rel(rel)?);
            fs::create_dir_all(&folder).map_err(|e| Error::io("cannot create folder", &folder, e))?;
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
        entries: &[Entry],
        dir: &Path,
        data_area: Option<&Path>,
        opts: &RestoreOptions<'_>,
    ) -> Result<(HashMap<String, String>, u64, u64)> {
        let total = entries.len() as u64;
        let done = AtomicU64::new(0);
        let files = AtomicU64::new(0);
        let bytes = AtomicU64::new(0);
        let bad: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
        let mut ordered: Vec<&Entry> = entries.iter().collect();
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
        manifest
            .entries
            .into_iter()
            .find(|e| e.source == Source::Library && e.path == wanted)
            .ok_or_else(|| Error::NotFound(format!("{path} is not in snapshot {id}")))
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

/// Restore snapshot `id` over the library: the current library is snapshotted first
/// (into the same repository), the restore is staged in a sibling folder, then swapped
/// in; the index is rebuilt.
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
    let before = super::backup(
        lib,
        &super::create::BackupOptions {
            repo: Some(repo.root().to_path_buf()),
            progress: None,
            cancel: opts.cancel.clone(),
            verified_after: false,
        },
    )?;

    let root = lib.root();
    let parent = root.parent().ok_or_else(|| Error::InvalidArgument("the library has no parent folder".into()))?;
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tag = format!("{:08x}", rand::random::<u32>());
    let staging = parent.join(format!(".{name}.bpv-restore-{tag}"));
    let staging_area = lib.area().join(format!(".restore-{tag}"));
    let mut rep = match repo.restore_to(id, &staging, Some(&staging_area), opts) {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging_area);
            return Err(e);
        }
    };

    // The swap, under the library's write lock so no save lands in between.
    let lock = library_write_lock(lib.area())?;
    let old = parent.join(format!(".{name}.bpv-old-{tag}"));
    fs::rename(root, &old).map_err(|e| Error::io("cannot move aside", root, e))?;
    if let Err(e) = fs::rename(&staging, root) {
        let _ = fs::rename(&old, root);
        return Err(Error::io("cannot swap in the restored library at", root, e));
    }
    fsio::fsync_dir(parent)?;
    let old_area = lib.area().join(format!(".old-{tag}"));
    fsio::ensure_dir(&old_area)?;
    for folder in DATA_FOLDERS {
        let current = lib.area().join(folder);
        if current.exists() {
            fs::rename(&current, old_area.join(folder)).map_err(|e| Error::io("cannot move aside", &current, e))?;
        }
        let staged = staging_area.join(folder);
        if staged.exists() {
            fs::rename(&staged, &current).map_err(|e| Error::io("cannot swap in", &current, e))?;
        }
    }
    fsio::fsync_dir(lib.area())?;
    // Credential names and the audit log: merged, never put back over the current ones.
    let merged = super::credentials::merge_restored(lib.area(), &staging_area, id);
    drop(lock);
    let _ = fs::remove_dir_all(&old);
    let _ = fs::remove_dir_all(&old_area);
    let _ = fs::remove_dir_all(&staging_area);
    merged?;
    lib.reindex(None)?;
    rep.to = root.to_string_lossy().into_owned();
    rep.before = Some(before.id);
    rep.millis = start.elapsed().as_millis() as u64;
    Ok(rep)
}

fn library_write_lock(area: &Path) -> Result<File> {
    let path = area.join("write.lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("cannot open lock file", &path, e))?;
    f.lock().map_err(|e| Error::io("cannot lock", &path, e))?;
    Ok(f)
}

/// A manifest path as a relative path that cannot leave the restore folder.
pub(crate) fn safe_rel(path: &str) -> Result<PathBuf> {
    let p = Path::new(path);
    let ok = !path.is_empty() && !path.contains('\0') && p.components().all(|c| matches!(c, Component::Normal(_)));
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
        let _ = fs::remove_dir_all(dir);
    } else if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            let _ = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
        }
    }
}

fn write_restored(target: &Path, data: &[u8], e: &Entry) -> Result<()> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(|err| Error::io("cannot create folder", parent, err))?;
    }
    let mut f = File::create(target).map_err(|err| Error::io("cannot create", target, err))?;
    f.write_all(data).map_err(|err| Error::io("cannot write", target, err))?;
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
