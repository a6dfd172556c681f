//! Raw all-or-nothing writes for import (`crate::transfer`): blueprint and companion
//! files written exactly as given (no companion merging, no timestamps added), through
//! the same journal as [`Library::apply_batch`], so a failure, a crash or a cancel before
//! the journal commits leaves the library as it was, and a crash after it is rolled
//! forward by the next open.
//!
//! Imports can hold tens of thousands of files, so durability is batched: every temp
//! file is written first, then made durable with one `syncfs` (Linux; elsewhere an
//! fsync per file and per folder), then the journal commits, then all the renames
//! happen and are made durable the same way. The crash-safety argument is the batch's:
//! nothing is renamed before the journal is durable, and the journal is only written
//! once every temp file is.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::{BATCH_MARKER, Journal, Library, Step};
use crate::error::{Error, Result};
use crate::fsio;
use crate::item::BLUEPRINT_SUFFIX;
use crate::library::read_if_exists;
use crate::store::content_hash;
use crate::transfer::{Expect, RawPut};

impl Library {
    /// Write `puts` all-or-nothing. Each put's expectation (absent / this hash) is checked
    /// under the write lock before anything is staged; `tick(n)` is called after each
    /// staged file and may stop the batch by returning an error (a cancel).
    pub(crate) fn apply_raw(&self, puts: &[RawPut], tick: &mut dyn FnMut(usize) -> Result<()>) -> Result<()> {
        let lock = self.write_lock()?;
        let id = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let mut steps: Vec<Step> = Vec::new();
        let mut temps: Vec<PathBuf> = Vec::new();
        let mut dirs: HashSet<PathBuf> = HashSet::new();
        let jpath = self.journal_dir().join(format!("{id}.json"));
        let staged = self
            .stage_raw(puts, &id, &mut steps, &mut temps, &mut dirs, tick)
            .and_then(|()| {
                make_durable(&self.root, &temps, &dirs)?;
                let journal = Journal { id: id.clone(), steps: std::mem::take(&mut steps) };
                let body = serde_json::to_vec(&journal).map_err(|e| Error::Corrupt(e.to_string()))?;
                Ok((journal, body))
            })
            .map_err(|e| (e, None))
            .and_then(|(journal, body)| match fsio::write_atomic(&jpath, &body) {
                Ok(()) => Ok((journal, jpath.clone())),
                Err(e) => Err((e, Some(jpath.clone()))),
            });
        let (journal, jpath) = match staged {
            Ok(j) => j,
            Err((e, journal)) => {
                // Staged files go only once no journal names them (see `drop_journal`).
                if journal.as_deref().is_none_or(super::drop_journal) {
                    temps.iter().for_each(|t| drop(fsio::remove_file(t)));
                }
                return Err(e);
            }
        };
        // Committed: from here on the import happens, now or at the next open.
        for step in &journal.steps {
            if let Step::Put { target, temp } = step {
                let abs = self.root.join(target);
                let dir = abs.parent().ok_or_else(|| Error::InvalidArgument("no parent folder".into()))?;
                fsio::rename(&dir.join(temp), &abs).map_err(|e| Error::io("cannot replace", &abs, e))?;
            }
        }
        make_durable(&self.root, &[], &dirs)?;
        fsio::remove_durable(&jpath)?;
        drop(lock);
        let touched: Vec<String> =
            puts.iter().filter(|p| p.rel.ends_with(BLUEPRINT_SUFFIX)).map(|p| p.rel.clone()).collect();
        // Every touched path exists now: index them, reading and parsing in parallel.
        let docs = crate::library::scan::build_docs(&self.root, &touched, None);
        if docs.len() == touched.len() { self.index.apply(&docs, &[]) } else { self.refresh(&touched) }
    }

    fn stage_raw(
        &self,
        puts: &[RawPut],
        id: &str,
        steps: &mut Vec<Step>,
        temps: &mut Vec<PathBuf>,
        dirs: &mut HashSet<PathBuf>,
        tick: &mut dyn FnMut(usize) -> Result<()>,
    ) -> Result<()> {
        let mut seen: HashSet<&str> = HashSet::new();
        // Folded names per folder, read once: new names must not look like existing ones.
        let mut folded_dirs: HashMap<PathBuf, HashMap<String, String>> = HashMap::new();
        for (n, put) in puts.iter().enumerate() {
            if !seen.insert(put.rel.as_str()) {
                return Err(Error::InvalidArgument(format!("{} is written twice in one import", put.rel)));
            }
            let abs = self.root.join(&put.rel);
            let dir = abs.parent().ok_or_else(|| Error::InvalidArgument("no parent folder".into()))?.to_path_buf();
            let current = read_if_exists(&abs)?;
            match (&put.expect, &current) {
                (Expect::Absent, Some(_)) => {
                    return Err(Error::Conflict(format!(
                        "{} was created since the dry run; run the import again to see it",
                        put.rel
                    )));
                }
                (Expect::Hash(h), cur) if cur.as_deref().map(content_hash).as_deref() != Some(h.as_str()) => {
                    return Err(Error::Conflict(format!(
                        "{} changed since the dry run; run the import again to see it",
                        put.rel
                    )));
                }
                _ => {}
            }
            let file = abs.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            if current.is_none() {
                let names = folded_dirs.entry(dir.clone()).or_insert_with(|| folded_names(&dir));
                if let Some(other) = names.get(&crate::transfer::bundle::fold(&file)).filter(|o| **o != file) {
                    return Err(Error::AlreadyExists(format!(
                        "{}: a file that looks the same already exists ({other}); use a clearly different name",
                        put.rel
                    )));
                }
            }
            if let Some(old) = current.as_deref().filter(|old| put.rel.ends_with(BLUEPRINT_SUFFIX) && *old != put.data)
            {
                self.keep_version(&put.rel, old)?;
            }
            if !dirs.contains(&dir) {
                create_dirs(&dir)?;
                dirs.insert(dir.clone());
            }
            let short: String = file.chars().take(60).collect();
            let name = format!(".{short}.bpv-tmp-{}{BATCH_MARKER}{id}-{n}", std::process::id());
            let temp = dir.join(&name);
            temps.push(temp.clone());
            let mut f = fsio::create_new(&temp).map_err(|e| Error::io("cannot create a temporary file in", &dir, e))?;
            fsio::write_all(&mut f, &temp, &put.data).map_err(|e| Error::io("cannot write", &temp, e))?;
            steps.push(Step::Put { target: put.rel.clone(), temp: name });
            tick(n)?;
        }
        Ok(())
    }
}

/// New folders for the import. On Linux their entries become durable with the `syncfs`
/// that precedes the journal (before any file is renamed into them), so no per-folder
/// fsync is needed; elsewhere each new folder's parent is fsynced.
#[cfg(target_os = "linux")]
fn create_dirs(dir: &Path) -> Result<()> {
    fsio::create_dir_all(dir).map_err(|e| Error::io("cannot create folder", dir, e))
}

#[cfg(not(target_os = "linux"))]
fn create_dirs(dir: &Path) -> Result<()> {
    fsio::ensure_dir(dir)
}

fn folded_names(dir: &Path) -> HashMap<String, String> {
    let Ok(rd) = fs::read_dir(dir) else { return HashMap::new() };
    rd.flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|n| (crate::transfer::bundle::fold(&n), n))
        .collect()
}

/// Make the written files and the folders' entries durable.
#[cfg(target_os = "linux")]
fn make_durable(root: &Path, _files: &[PathBuf], _dirs: &HashSet<PathBuf>) -> Result<()> {
    fsio::syncfs(root).map_err(|e| Error::io("cannot flush to disk", root, e))
}

#[cfg(not(target_os = "linux"))]
fn make_durable(_root: &Path, files: &[PathBuf], dirs: &HashSet<PathBuf>) -> Result<()> {
    for f in files {
        let file = fs::File::open(f).map_err(|e| Error::io("cannot open", f, e))?;
        file.sync_all().map_err(|e| Error::io("cannot flush to disk", f, e))?;
    }
    for d in dirs {
        fsio::fsync_dir(d)?;
    }
    Ok(())
}
