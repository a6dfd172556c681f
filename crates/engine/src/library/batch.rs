//! All-or-nothing batches over the library, across crashes too, with a redo journal:
//!
//! 1. check every operation (keys, content, preconditions) under the write lock;
//! 2. write every new file as a durable temp file beside its target, and prepare a
//!    trash folder for every delete;
//! 3. commit: write the journal (the list of renames and deletes) durably;
//! 4. apply: rename temps over targets, move deleted files to the trash;
//! 5. remove the journal.
//!
//! A crash before 3 leaves only temp files (removed later, never mistaken for
//! blueprints); a crash after 3 is rolled forward by the next `Library::open`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Library, blueprint_key, check_preconditions, clean_tags, read_if_exists};
use crate::blueprint::{self, Companion};
use crate::error::{Error, Result};
use crate::fsio;
use crate::item::companion_path;
use crate::store::{BatchOp, Format};

mod raw;

/// Part of the temp-file name of batch files: the walker leaves them to recovery.
pub(crate) const BATCH_MARKER: &str = "-batch-";

#[derive(Serialize, Deserialize)]
enum Step {
    Put {
        target: String,
        temp: String,
    },
    Delete {
        target: String,
        trash: String,
    },
    /// A rename inside the library (`Library::rename`); done once `from` is gone.
    Move {
        from: String,
        to: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Journal {
    id: String,
    steps: Vec<Step>,
}

/// After a failed journal write: make sure no journal is left (the write can fail after
/// its rename, in the folder's fsync). Returns whether it is durably gone.
pub(super) fn drop_journal(jpath: &Path) -> bool {
    match fsio::remove_durable(jpath) {
        Ok(()) | Err(Error::NotFound(_)) => true,
        Err(_) => false,
    }
}

impl Library {
    fn journal_dir(&self) -> PathBuf {
        self.area.join("journal")
    }

    pub fn apply_batch(&self, ops: &[BatchOp]) -> Result<()> {
        let _lock = self.write_lock()?;
        let id = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let mut steps: Vec<Step> = Vec::new();
        let mut temps: Vec<PathBuf> = Vec::new();
        let mut prepared_trash: Vec<PathBuf> = Vec::new();
        let mut touched: Vec<String> = Vec::new();
        let result = self.prepare(ops, &id, &mut steps, &mut temps, &mut prepared_trash, &mut touched);
        if let Err(e) = result {
            temps.iter().for_each(|t| drop(fsio::remove_file(t)));
            prepared_trash.iter().for_each(|d| drop(fsio::remove_dir_all(d)));
            return Err(e);
        }
        let journal = Journal { id: id.clone(), steps };
        let body = serde_json::to_vec(&journal).map_err(|e| Error::Corrupt(e.to_string()))?;
        let jpath = self.journal_dir().join(format!("{id}.json"));
        if let Err(e) = fsio::write_atomic(&jpath, &body) {
            // Only without a journal may the staged files go: else the next open would
            // roll forward a batch whose files are gone (all or nothing).
            if drop_journal(&jpath) {
                temps.iter().for_each(|t| drop(fsio::remove_file(t)));
                prepared_trash.iter().for_each(|d| drop(fsio::remove_dir_all(d)));
            }
            return Err(e);
        }
        // Committed: from here on the batch happens, now or at the next open.
        self.roll_forward(&journal)?;
        fsio::remove_durable(&jpath)?;
        drop(_lock);
        self.refresh(&touched)
    }

    /// Renames inside the library as one journalled step: after a crash the next open
    /// finishes them, so a blueprint and its companion never end up split. The caller
    /// holds the write lock and has checked every target is free.
    pub(super) fn move_journalled(&self, moves: &[(String, String)]) -> Result<()> {
        let id = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let steps = moves.iter().map(|(from, to)| Step::Move { from: from.clone(), to: to.clone() }).collect();
        let journal = Journal { id: id.clone(), steps };
        let body = serde_json::to_vec(&journal).map_err(|e| Error::Corrupt(e.to_string()))?;
        let jpath = self.journal_dir().join(format!("{id}.json"));
        fsio::write_atomic(&jpath, &body)?;
        self.roll_forward(&journal)?;
        fsio::remove_durable(&jpath)
    }

    fn prepare(
        &self,
        ops: &[BatchOp],
        id: &str,
        steps: &mut Vec<Step>,
        temps: &mut Vec<PathBuf>,
        prepared_trash: &mut Vec<PathBuf>,
        touched: &mut Vec<String>,
    ) -> Result<()> {
        // Operations apply in order: what earlier operations of this batch will have
        // done to a key (Some(bytes): written; None: deleted) is checked, not the disk.
        let mut pending: std::collections::HashMap<String, Option<Vec<u8>>> = std::collections::HashMap::new();
        for (n, op) in ops.iter().enumerate() {
            match op {
                BatchOp::Put { key, data, options } => {
                    let rel = blueprint_key(key.as_str())?.into_string();
                    if matches!(options.format, Some(Format::Binary | Format::Json)) || options.compress {
                        return Err(Error::Unsupported("the library stores blueprints as plain YAML".into()));
                    }
                    if options.expiration.is_some() {
                        return Err(Error::Unsupported("blueprints do not expire".into()));
                    }
                    blueprint::validate(data).map_err(|e| Error::InvalidBlueprint(format!("{rel}: {e}")))?;
                    let abs = self.root.join(&rel);
                    let current = match pending.get(&rel) {
                        Some(p) => p.clone(),
                        None => {
                            let on_disk = read_if_exists(&abs)?;
                            if let Some(old) = &on_disk {
                                self.keep_version(&rel, old)?;
                            }
                            on_disk
                        }
                    };
                    check_preconditions(&rel, current.as_deref(), options.if_match.as_deref(), options.create_only)?;
                    pending.insert(rel.clone(), Some(data.clone()));
                    let temp = self.stage(&abs, data, id, n, temps)?;
                    steps.push(Step::Put { target: rel.clone(), temp });
                    if !options.tags.is_empty() || !options.metadata.is_empty() {
                        let crel = companion_path(&rel).unwrap_or_default();
                        let cabs = self.root.join(&crel);
                        let mut companion = match read_if_exists(&cabs)? {
                            Some(b) => {
                                blueprint::parse_companion(&b).map_err(|e| Error::Corrupt(format!("{crel}: {e}")))?
                            }
                            None => Companion::default(),
                        };
                        if !options.tags.is_empty() {
                            companion.tags = clean_tags(&options.tags);
                        }
                        for (k, v) in &options.metadata {
                            companion.extra.insert(k.clone(), v.clone());
                        }
                        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                        companion.created.get_or_insert_with(|| now.clone());
                        companion.modified = Some(now);
                        let temp = self.stage(&cabs, &blueprint::companion_to_json(&companion), id, n, temps)?;
                        steps.push(Step::Put { target: crel, temp });
                    }
                    touched.push(rel);
                }
                BatchOp::Delete { key } => {
                    let rel = self.existing_rel(key.as_str())?;
                    let abs = self.root.join(&rel);
                    let exists = match pending.get(&rel) {
                        Some(p) => p.is_some(),
                        None => abs.is_file(),
                    };
                    if !exists {
                        return Err(Error::NotFound(rel));
                    }
                    pending.insert(rel.clone(), None);
                    let trash_id = format!("{}-{id}-{n}", chrono::Utc::now().format("%Y%m%dT%H%M%S%3f"));
                    let dir = self.area.join("trash").join(&trash_id);
                    prepared_trash.push(dir.clone());
                    self.prepare_trash_entry(&rel, &trash_id)?;
                    steps.push(Step::Delete { target: rel.clone(), trash: trash_id });
                    touched.push(rel);
                }
            }
        }
        Ok(())
    }

    /// Write `data` durably to a batch temp file beside `target`; return its name.
    fn stage(&self, target: &Path, data: &[u8], id: &str, n: usize, temps: &mut Vec<PathBuf>) -> Result<String> {
        let dir = target.parent().ok_or_else(|| Error::InvalidArgument("no parent folder".into()))?;
        fsio::ensure_dir(dir)?;
        let file = target.file_name().map(|f| f.to_string_lossy()).unwrap_or_default();
        let short: String = file.chars().take(60).collect();
        let name = format!(".{short}.bpv-tmp-{}{BATCH_MARKER}{id}-{n}", std::process::id());
        let temp = dir.join(&name);
        temps.push(temp.clone());
        let mut f = fsio::create_new(&temp).map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
        fsio::write_all(&mut f, &temp, data).map_err(|e| Error::io("cannot write", &temp, e))?;
        fsio::sync_file(&f, &temp).map_err(|e| Error::io("cannot flush to disk", &temp, e))?;
        fsio::fsync_dir(dir)?;
        Ok(name)
    }

    fn roll_forward(&self, journal: &Journal) -> Result<()> {
        for step in &journal.steps {
            match step {
                Step::Put { target, temp } => {
                    let abs = self.root.join(target);
                    let dir = abs.parent().ok_or_else(|| Error::InvalidArgument("no parent folder".into()))?;
                    let temp_abs = dir.join(temp);
                    if temp_abs.exists() {
                        fsio::rename(&temp_abs, &abs).map_err(|e| Error::io("cannot replace", &abs, e))?;
                        fsio::fsync_dir(dir)?;
                    }
                }
                Step::Delete { target, trash } => {
                    let abs = self.root.join(target);
                    let dir = self.area.join("trash").join(trash);
                    if let Some(crel) = companion_path(target) {
                        let cabs = self.root.join(crel);
                        if cabs.is_file() {
                            fsio::move_durable(&cabs, &dir.join("meta.json"))?;
                        }
                    }
                    if abs.is_file() {
                        fsio::move_durable(&abs, &dir.join("blueprint.yaml"))?;
                    }
                }
                Step::Move { from, to } => {
                    let (from_abs, to_abs) = (self.root.join(from), self.root.join(to));
                    // Never over an existing file: the rename checked `to` was free under
                    // the write lock, so something there now is someone else's.
                    if from_abs.is_file() && fs::symlink_metadata(&to_abs).is_err() {
                        fsio::move_durable(&from_abs, &to_abs)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Finish batches that were committed when a process died.
    pub(super) fn recover_batches(&self) -> Result<()> {
        let dir = self.journal_dir();
        let Ok(rd) = fs::read_dir(&dir) else { return Ok(()) };
        let pending: Vec<PathBuf> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let _lock = self.write_lock()?;
        for jpath in pending {
            let Ok(body) = fs::read(&jpath) else { continue };
            match serde_json::from_slice::<Journal>(&body) {
                Ok(journal) => {
                    self.roll_forward(&journal)?;
                    let touched: Vec<String> = journal
                        .steps
                        .iter()
                        .flat_map(|s| match s {
                            Step::Put { target, .. } | Step::Delete { target, .. } => vec![target.clone()],
                            Step::Move { from, to } => vec![from.clone(), to.clone()],
                        })
                        .filter(|t| t.ends_with(crate::item::BLUEPRINT_SUFFIX))
                        .collect();
                    fsio::remove_durable(&jpath)?;
                    self.refresh(&touched)?;
                }
                // A journal is written atomically, so a torn one cannot exist; an
                // unreadable one is kept for a person to look at, never guessed at.
                Err(e) => return Err(Error::Corrupt(format!("batch journal {}: {e}", jpath.display()))),
            }
        }
        Ok(())
    }

    /// Whether a batch temp file belongs to no committed journal (debris of a batch
    /// that failed or crashed before committing).
    pub(crate) fn batch_temp_is_orphan(&self, name: &str) -> bool {
        let Some(rest) = name.split(BATCH_MARKER).nth(1) else { return false };
        // rest = "<pid>-<rand>-<n>": the journal id is the first two parts.
        let mut parts = rest.splitn(3, '-');
        let (Some(pid), Some(rand)) = (parts.next(), parts.next()) else { return false };
        !self.journal_dir().join(format!("{pid}-{rand}.json")).exists()
    }
}

/// Used by batches' deletes: write the trash entry before the journal commits.
impl Library {
    fn prepare_trash_entry(&self, rel: &str, trash_id: &str) -> Result<()> {
        let abs = self.root.join(rel);
        // The file may only come into being earlier in the same batch.
        let size = fs::metadata(&abs).map(|m| m.len()).unwrap_or(0);
        let item = self.index.get(rel)?;
        let entry = super::TrashEntry {
            id: trash_id.to_owned(),
            path: rel.to_owned(),
            name: item.as_ref().map(|i| i.name.clone()).unwrap_or_else(|| crate::item::stem_of(rel).to_owned()),
            deleted: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            size,
            hash: item.map(|i| i.hash).unwrap_or_default(),
        };
        let dir = self.area.join("trash").join(trash_id);
        fsio::ensure_dir(&dir)?;
        let body = serde_json::to_vec_pretty(&entry).map_err(|e| Error::Corrupt(e.to_string()))?;
        fsio::write_atomic(&dir.join("entry.json"), &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Key;
    use crate::library::{BlueprintSave, OpenOptions};
    use crate::store::SaveOptions;

    fn open(root: &Path, data: &Path) -> Library {
        let mut o = OpenOptions::new(root);
        o.data_dir = Some(data.to_path_buf());
        o.create = true;
        Library::open(o).unwrap()
    }

    /// A process that dies after the journal committed but before the renames:
    /// the next open finishes the batch.
    #[test]
    fn a_committed_batch_is_rolled_forward_at_the_next_open() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, data) = (tmp.path().join("lib"), tmp.path().join("data"));
        let lib = open(&root, &data);
        lib.save_blueprint("Blueprints/personal/gone.blueprint.yaml", b"name: Gone\n", &BlueprintSave::default())
            .unwrap();
        let ops = vec![
            BatchOp::Put {
                key: Key::new("Blueprints/shared/new.blueprint.yaml").unwrap(),
                data: b"name: New\n".to_vec(),
                options: SaveOptions::default(),
            },
            BatchOp::Delete { key: Key::new("Blueprints/personal/gone.blueprint.yaml").unwrap() },
        ];
        let id = "4242-00000000000000aa";
        let (mut steps, mut temps, mut trash, mut touched) = (vec![], vec![], vec![], vec![]);
        lib.prepare(&ops, id, &mut steps, &mut temps, &mut trash, &mut touched).unwrap();
        let body = serde_json::to_vec(&Journal { id: id.into(), steps }).unwrap();
        fsio::write_atomic(&lib.journal_dir().join(format!("{id}.json")), &body).unwrap();
        // Crash here: nothing applied yet, and a scan must not take the temps for debris.
        assert!(!root.join("Blueprints/shared/new.blueprint.yaml").exists());
        lib.reconcile().unwrap();
        assert!(temps.iter().all(|t| t.exists()));
        drop(lib);

        let lib = open(&root, &data);
        assert_eq!(fs::read(root.join("Blueprints/shared/new.blueprint.yaml")).unwrap(), b"name: New\n");
        assert!(!root.join("Blueprints/personal/gone.blueprint.yaml").exists());
        assert!(lib.item("Blueprints/shared/new.blueprint.yaml").is_ok());
        assert!(lib.item("Blueprints/personal/gone.blueprint.yaml").is_err());
        assert_eq!(lib.trash_list().unwrap().len(), 1);
        assert!(fs::read_dir(lib.journal_dir()).unwrap().next().is_none());
    }

    /// A rename that died between moving the blueprint and its companion is finished
    /// by the next open: the two are never left split.
    #[test]
    fn an_interrupted_rename_is_finished_at_the_next_open() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, data) = (tmp.path().join("lib"), tmp.path().join("data"));
        let lib = open(&root, &data);
        let save = BlueprintSave { tags: Some(vec!["kept".into()]), ..Default::default() };
        lib.save_blueprint("Blueprints/personal/a.blueprint.yaml", b"name: A\n", &save).unwrap();
        let moves = [
            ("Blueprints/personal/a.blueprint.yaml", "Blueprints/shared/b.blueprint.yaml"),
            ("Blueprints/personal/a.blueprint.meta.json", "Blueprints/shared/b.blueprint.meta.json"),
        ];
        let steps = moves.iter().map(|(f, t)| Step::Move { from: (*f).into(), to: (*t).into() }).collect();
        let id = "4242-00000000000000cc";
        let body = serde_json::to_vec(&Journal { id: id.into(), steps }).unwrap();
        fsio::write_atomic(&lib.journal_dir().join(format!("{id}.json")), &body).unwrap();
        // Crash after the first move only.
        fsio::move_durable(&root.join(moves[0].0), &root.join(moves[0].1)).unwrap();
        drop(lib);

        let lib = open(&root, &data);
        assert!(root.join(moves[1].1).is_file(), "the companion followed its blueprint");
        assert!(!root.join(moves[1].0).exists());
        assert_eq!(lib.item("Blueprints/shared/b.blueprint.yaml").unwrap().tags, vec!["kept".to_string()]);
        assert!(lib.item("Blueprints/personal/a.blueprint.yaml").is_err());
        assert!(fs::read_dir(lib.journal_dir()).unwrap().next().is_none());
    }

    /// A process that dies before the journal commits leaves only debris, which is
    /// cleaned up and never applied.
    #[test]
    fn an_uncommitted_batch_is_never_applied_and_its_temps_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let (root, data) = (tmp.path().join("lib"), tmp.path().join("data"));
        let lib = open(&root, &data);
        let ops = vec![BatchOp::Put {
            key: Key::new("Blueprints/shared/new.blueprint.yaml").unwrap(),
            data: b"name: New\n".to_vec(),
            options: SaveOptions::default(),
        }];
        // PID 2147483632 is never alive, as if the writer had died.
        let id = "2147483632-00000000000000bb";
        let (mut steps, mut temps, mut trash, mut touched) = (vec![], vec![], vec![], vec![]);
        lib.prepare(&ops, id, &mut steps, &mut temps, &mut trash, &mut touched).unwrap();
        for t in &temps {
            let name = t
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .replace(&format!("-{}-batch", std::process::id()), "-2147483632-batch");
            fs::rename(t, t.with_file_name(name)).unwrap();
        }
        drop(lib);
        let lib = open(&root, &data);
        assert!(!root.join("Blueprints/shared/new.blueprint.yaml").exists());
        assert!(lib.item("Blueprints/shared/new.blueprint.yaml").is_err());
        let left: Vec<_> = fs::read_dir(root.join("Blueprints/shared")).unwrap().collect();
        assert!(left.is_empty(), "debris left: {left:?}");
    }
}
