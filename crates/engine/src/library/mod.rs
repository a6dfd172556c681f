//! The filesystem blueprint library: the real backend. Files in the library folder
//! are the truth; the SQLite index in the library's private area (see `paths`) is a
//! cache rebuilt from them whenever it is missing, corrupt or out of date.

mod batch;
mod history;
mod rename;
pub mod scan;
mod store_impl;
mod trash;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::blueprint::{self, Companion};
use crate::error::{Error, Result};
use crate::fsio;
use crate::index::{Index, IndexStats, ItemPage, ListQuery, SearchPage, SearchQuery};
use crate::item::{BLUEPRINT_SUFFIX, Item, companion_path};
use crate::key::Key;
use crate::paths;
use crate::store::content_hash;

pub use history::Version;
pub use scan::{InvalidFile, ReconcileReport, ReindexReport};
pub use trash::TrashEntry;

const INDEX_FILE: &str = "index.sqlite";
const STATE_FULL_SCAN: &str = "last_full_scan";

#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub root: PathBuf,
    /// Data dir holding every library's private area; default `paths::default_data_dir()`.
    pub data_dir: Option<PathBuf>,
    /// Create the library layout if missing.
    pub create: bool,
    /// Reconcile the index with the files at open (finds changes made while closed).
    pub reconcile: bool,
}

impl OpenOptions {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        OpenOptions { root: root.into(), data_dir: None, create: false, reconcile: true }
    }
}

/// Options for saving a blueprint's YAML.
#[derive(Clone, Debug, Default)]
pub struct BlueprintSave {
    /// Replace the companion's tags.
    pub tags: Option<Vec<String>>,
    /// Set the companion's description.
    pub description: Option<String>,
    /// The hash the caller last read; `Conflict` if the file changed since.
    pub if_match: Option<String>,
    pub create_only: bool,
    /// Save even if the YAML is not a valid blueprint (it will be listed as invalid).
    pub allow_invalid: bool,
    /// Where the blueprint came from (import), recorded in the companion.
    pub provenance: Option<Value>,
    /// Extra companion fields to set.
    pub metadata: serde_json::Map<String, Value>,
    /// Replace the companion's extra fields with `metadata` instead of merging.
    pub replace_metadata: bool,
    /// Set the companion's `encrypted` flag (`secrets` clears it when a blueprint is
    /// stored in plain text again).
    pub encrypted: Option<bool>,
}

/// A metadata edit: written to the companion file, never to the user's YAML.
#[derive(Clone, Debug, Default)]
pub struct MetaUpdate {
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
    /// The blueprint hash the caller last read; `Conflict` if the file changed since.
    pub if_match: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LibraryInfo {
    pub library: String,
    pub data_dir: String,
    pub index: String,
    #[serde(flatten)]
    pub stats: IndexStats,
    pub trash: usize,
    pub backend: &'static str,
    pub capabilities: crate::store::Capabilities,
    /// Whether a watcher keeps this library's index live (`bpv watch`, the app).
    pub watcher: crate::watch::WatcherStatus,
}

pub struct Library {
    root: PathBuf,
    area: PathBuf,
    index: Index,
    /// What changed since the last snapshot, fed by a running watcher (backups use it).
    journal: std::sync::Arc<crate::backup::ChangeJournal>,
}

impl Library {
    pub fn open(opts: OpenOptions) -> Result<Library> {
        let root = absolute(&opts.root)?;
        if !root.exists()
            && let Some(aside) = crate::backup::library_set_aside(&root)
        {
            // An interrupted restore (by an earlier version) moved the library aside:
            // creating an empty one here would hide it.
            return Err(Error::Conflict(format!(
                "no library at {}, but an interrupted restore left it at {}: move that folder back to {} (nothing was created)",
                root.display(),
                aside.display(),
                root.display()
            )));
        }
        if opts.create {
            init_layout(&root)?;
        } else if !root.is_dir() {
            return Err(Error::NotFound(format!(
                "no library at {} (create one with `bpv init`, or pass --library)",
                root.display()
            )));
        }
        let root = fs::canonicalize(&root).map_err(|e| Error::io("cannot open library", &root, e))?;
        let data_dir = match opts.data_dir {
            Some(d) => absolute(&d)?,
            None => paths::default_data_dir()
                .ok_or_else(|| Error::InvalidArgument("no data dir: set BPV_DATA_DIR".into()))?,
        };
        let area = paths::library_area(&data_dir, &root);
        fsio::ensure_dir(&area)?;
        let marker = area.join("library.json");
        if !marker.exists() {
            let body = serde_json::json!({ "library": root.to_string_lossy() });
            fsio::write_atomic(&marker, body.to_string().as_bytes())?;
        }
        // An in-place restore a crash interrupted is finished before anything reads the files.
        let restored = crate::backup::recover_restore(&root, &area)?;
        let index_path = area.join(INDEX_FILE);
        let (index, fresh) = match Index::open(&index_path) {
            Ok(ix) => (ix, false),
            Err(Error::Corrupt(_)) => {
                // The index is only a cache: throw it away and rebuild from the files.
                for suffix in ["", "-wal", "-shm"] {
                    let p = PathBuf::from(format!("{}{suffix}", index_path.display()));
                    let _ = fs::remove_file(p);
                }
                (Index::open(&index_path)?, true)
            }
            Err(e) => return Err(e),
        };
        let journal = std::sync::Arc::new(crate::backup::ChangeJournal::new(&root));
        let lib = Library { root, area, index, journal };
        lib.recover_batches()?;
        if fresh || restored || lib.index.get_state(STATE_FULL_SCAN)?.is_none() {
            lib.reindex(None)?;
        } else if opts.reconcile && !lib.kept_current_by_watcher() {
            lib.reconcile()?;
        }
        Ok(lib)
    }

    /// Whether a live watcher (the app, or `bpv watch`) keeps the index current, so
    /// an open need not walk the whole library to find outside changes.
    pub fn kept_current_by_watcher(&self) -> bool {
        crate::watch::read_status(&self.area).state == "watching"
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The change journal a running watcher feeds (see `backup::journal`).
    pub fn backup_journal(&self) -> &std::sync::Arc<crate::backup::ChangeJournal> {
        &self.journal
    }

    /// The library's private area in the data dir.
    pub fn area(&self) -> &Path {
        &self.area
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Rebuild the index from the files.
    pub fn reindex(&self, progress: Option<scan::Progress<'_>>) -> Result<ReindexReport> {
        let start = std::time::Instant::now();
        let mut indexed = 0;
        let mut invalid: Vec<InvalidFile> = Vec::new();
        scan::stream_full_scan(&self.root, &|n| self.batch_temp_is_orphan(n), progress, |chunks| {
            let counted = chunks.inspect(|chunk| {
                if let Ok(docs) = chunk {
                    indexed += docs.len();
                    invalid.extend(docs.iter().filter(|d| !d.item.valid).map(|d| InvalidFile {
                        path: d.item.path.clone(),
                        error: d.item.error.clone().unwrap_or_default(),
                    }));
                }
            });
            self.index.rebuild_stream(counted)
        })?;
        self.index.set_state(STATE_FULL_SCAN, &chrono::Utc::now().to_rfc3339())?;
        invalid.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(ReindexReport { indexed, invalid, millis: start.elapsed().as_millis() as u64 })
    }

    /// Bring the index up to date with changes made while nothing was watching.
    pub fn reconcile(&self) -> Result<ReconcileReport> {
        let start = std::time::Instant::now();
        // The index's file states and the walk of the library are independent: read
        // both at once (at 100k files each is a good part of an open).
        let (known, found) =
            rayon::join(|| self.index.file_states(), || scan::walk(&self.root, &|n| self.batch_temp_is_orphan(n)));
        let (known, found) = (known?, found?);
        let mut report = ReconcileReport::default();
        let (docs, removals) = scan::diff_found(&self.root, &known, &found, &mut report)?;
        if !docs.is_empty() || !removals.is_empty() {
            self.index.apply(&docs, &removals)?;
        }
        report.millis = start.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// Re-read the given paths (which may have been created, changed or removed).
    pub fn refresh(&self, rels: &[String]) -> Result<()> {
        let mut docs = Vec::new();
        let mut removals = Vec::new();
        for rel in rels {
            match scan::build_doc(&self.root, rel) {
                Ok(doc) => docs.push(doc),
                Err(Error::NotFound(_)) => removals.push(rel.clone()),
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    removals.push(rel.clone())
                }
                Err(e) => return Err(e),
            }
        }
        self.index.apply(&docs, &removals)
    }

    pub fn list(&self, q: &ListQuery) -> Result<ItemPage> {
        self.index.list(q)
    }

    pub fn search(&self, q: &SearchQuery) -> Result<SearchPage> {
        self.index.search(q)
    }

    /// The item for a path, straight from the index.
    pub fn item(&self, path: &str) -> Result<Item> {
        let rel = self.existing_rel(path)?;
        self.index.get(&rel)?.ok_or(Error::NotFound(rel))
    }

    /// The blueprint file's bytes.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let rel = self.existing_rel(path)?;
        let abs = self.root.join(&rel);
        match fs::read(&abs) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound(rel)),
            Err(e) => Err(Error::io("cannot read", &abs, e)),
        }
    }

    /// Validate and durably write a blueprint; update its companion when asked;
    /// keep the previous version; update the index. Returns the new item.
    pub fn save_blueprint(&self, path: &str, yaml: &[u8], opts: &BlueprintSave) -> Result<Item> {
        let key = blueprint_key(path)?;
        if !opts.allow_invalid {
            blueprint::validate(yaml).map_err(|e| Error::InvalidBlueprint(e.to_string()))?;
        }
        let rel = key.as_str().to_owned();
        let abs = self.root.join(&rel);
        let _lock = self.write_lock()?;
        let current = read_if_exists(&abs)?;
        check_preconditions(&rel, current.as_deref(), opts.if_match.as_deref(), opts.create_only)?;
        if current.is_none() {
            refuse_lookalike(&abs, &rel)?;
        }
        let unchanged = current.as_deref() == Some(yaml);
        if let Some(old) = current.as_deref().filter(|_| !unchanged) {
            self.keep_version(&rel, old)?;
        }
        let wants_companion = opts.tags.is_some()
            || opts.description.is_some()
            || opts.provenance.is_some()
            || !opts.metadata.is_empty()
            || opts.replace_metadata
            || opts.encrypted.is_some();
        if !wants_companion {
            if !unchanged && let Err(e) = fsio::write_atomic(&abs, yaml) {
                // The failure may come after the rename (the folder's fsync): put the old
                // content back so a failed save changes nothing.
                let _ = put_back(&abs, current.as_deref());
                return Err(e);
            }
            return self.item_after_write(&rel);
        }
        let companion = companion_path(&rel).map(|crel| self.root.join(crel));
        let old_companion = match &companion {
            Some(c) => read_if_exists(c)?,
            None => None,
        };
        let written = (|| {
            if !unchanged {
                fsio::write_atomic(&abs, yaml)?;
            }
            self.edit_companion(&rel, |c| {
                if opts.replace_metadata {
                    c.extra.clear();
                }
                if let Some(tags) = &opts.tags {
                    c.tags = clean_tags(tags);
                }
                if let Some(d) = &opts.description {
                    c.description = Some(d.clone());
                }
                if let Some(p) = &opts.provenance {
                    c.provenance = Some(p.clone());
                }
                for (k, v) in &opts.metadata {
                    c.extra.insert(k.clone(), v.clone());
                }
                if let Some(encrypted) = opts.encrypted {
                    c.encrypted = encrypted;
                }
            })
        })();
        if let Err(e) = written {
            // All or nothing: the YAML and its companion go back to what they were
            // (a failure can come after a rename, in its folder's fsync).
            let _ = put_back(&abs, current.as_deref());
            if let Some(c) = &companion {
                let _ = put_back(c, old_companion.as_deref());
            }
            return Err(e);
        }
        self.item_after_write(&rel)
    }

    /// Edit tags/description in the companion file; the YAML is never rewritten.
    pub fn update_meta(&self, path: &str, update: &MetaUpdate) -> Result<Item> {
        let rel = self.existing_rel(path)?;
        let abs = self.root.join(&rel);
        let _lock = self.write_lock()?;
        let current = read_if_exists(&abs)?.ok_or_else(|| Error::NotFound(rel.clone()))?;
        check_preconditions(&rel, Some(&current), update.if_match.as_deref(), false)?;
        self.edit_companion(&rel, |c| {
            if let Some(tags) = &update.tags {
                c.tags = clean_tags(tags);
            }
            if let Some(d) = &update.description {
                c.description = if d.trim().is_empty() { None } else { Some(d.clone()) };
            }
        })?;
        self.item_after_write(&rel)
    }

    pub fn info(&self) -> Result<LibraryInfo> {
        Ok(LibraryInfo {
            library: self.root.to_string_lossy().into_owned(),
            data_dir: self.area.to_string_lossy().into_owned(),
            index: self.area.join(INDEX_FILE).to_string_lossy().into_owned(),
            stats: self.index.stats()?,
            trash: self.trash_list()?.len(),
            backend: "filesystem",
            capabilities: store_impl::library_capabilities(),
            watcher: crate::watch::read_status(&self.area),
        })
    }

    fn edit_companion(&self, rel: &str, edit: impl FnOnce(&mut Companion)) -> Result<()> {
        let Some(crel) = companion_path(rel) else {
            return Err(Error::invalid_key(rel, "not a blueprint path"));
        };
        let cabs = self.root.join(&crel);
        let existing = read_if_exists(&cabs)?;
        let mut companion = match &existing {
            Some(bytes) => blueprint::parse_companion(bytes)
                .map_err(|e| Error::Corrupt(format!("{crel}: {e} (fix or remove the file, then retry)")))?,
            None => Companion::default(),
        };
        edit(&mut companion);
        if existing.is_none() && companion == Companion::default() {
            // Nothing to record: a plain YAML needs no companion.
            return Ok(());
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if companion.created.is_none() {
            companion.created = Some(now.clone());
        }
        companion.modified = Some(now);
        let written = fsio::write_atomic(&cabs, &blueprint::companion_to_json(&companion));
        if written.is_err() {
            // As for the YAML: a failed edit leaves the old companion (or none).
            let _ = put_back(&cabs, existing.as_deref());
        }
        written
    }

    fn item_after_write(&self, rel: &str) -> Result<Item> {
        let doc = scan::build_doc(&self.root, rel)?;
        let item = doc.item.clone();
        self.index.apply(&[doc], &[])?;
        Ok(item)
    }

    /// Serialises writers across processes (the app, `bpv` runs) so a precondition
    /// check and the write it guards cannot interleave with another writer's.
    pub(crate) fn write_lock(&self) -> Result<File> {
        fsio::lock_exclusive(&self.area.join("write.lock"))
    }

    /// Resolve a path the caller names for reading or deleting. Existing files may
    /// have names we would not create (made by other tools), so this only refuses
    /// what could leave the library.
    fn existing_rel(&self, path: &str) -> Result<String> {
        if let Ok(k) = Key::new(path) {
            // A file another tool named in decomposed form (NFD) is found by its own name.
            if k.as_str() != path && !self.root.join(k.as_str()).exists() && self.root.join(path).exists() {
                return Ok(path.to_owned());
            }
            return Ok(k.into_string());
        }
        let ok = !path.is_empty()
            && !path.starts_with('/')
            && !path.contains('\0')
            && !path.contains('\\')
            && path.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
        if ok { Ok(path.to_owned()) } else { Key::new(path).map(Key::into_string) }
    }
}

/// A blueprint path for a new save: validated, NFC, ending in `.blueprint.yaml`
/// (`x`, `x.yaml` and `x.yml` become `x.blueprint.yaml`).
pub fn blueprint_key(path: &str) -> Result<Key> {
    let key = Key::new(path)?;
    if key.as_str().ends_with(BLUEPRINT_SUFFIX) {
        if key.file_name() == BLUEPRINT_SUFFIX.trim_start_matches('.') {
            return Err(Error::invalid_key(path, "the blueprint needs a name before `.blueprint.yaml`"));
        }
        return Ok(key);
    }
    if key.as_str().ends_with(crate::item::COMPANION_SUFFIX) {
        return Err(Error::invalid_key(path, "that is a companion metadata file, not a blueprint"));
    }
    let s = key.as_str();
    let stem = s.strip_suffix(".yaml").or_else(|| s.strip_suffix(".yml")).unwrap_or(s);
    Key::new(&format!("{stem}{BLUEPRINT_SUFFIX}"))
}

/// Refuse to create a file whose name looks the same as an existing sibling's
/// (another Unicode normalisation, or another letter case): such pairs are one
/// file on macOS and Windows and two here, and a synced library would lose one.
fn refuse_lookalike(abs: &Path, rel: &str) -> Result<()> {
    use unicode_normalization::UnicodeNormalization;
    let (Some(dir), Some(name)) = (abs.parent(), abs.file_name().and_then(|n| n.to_str())) else { return Ok(()) };
    let fold = |s: &str| s.nfc().collect::<String>().to_lowercase();
    let wanted = fold(name);
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        if let Some(other) = entry.file_name().to_str()
            && other != name
            && fold(other) == wanted
        {
            return Err(Error::AlreadyExists(format!(
                "{rel}: a file that looks the same already exists ({other}); use that name or a clearly different one"
            )));
        }
    }
    Ok(())
}

fn check_preconditions(rel: &str, current: Option<&[u8]>, if_match: Option<&str>, create_only: bool) -> Result<()> {
    if create_only && current.is_some() {
        return Err(Error::AlreadyExists(rel.to_owned()));
    }
    if let Some(expected) = if_match {
        match current {
            None => return Err(Error::Conflict(format!("{rel} was deleted since you loaded it"))),
            Some(bytes) if !content_hash(bytes).eq_ignore_ascii_case(expected) => {
                return Err(Error::Conflict(format!(
                    "{rel} changed on disk since you loaded it; reload it (or save under another name) so no change is lost"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

fn clean_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if !t.is_empty() && !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    out
}

/// Undo a failed write: make `path` hold `old` again (`None`: not exist). A no-op when
/// it already does, e.g. when the write failed before its rename.
fn put_back(path: &Path, old: Option<&[u8]>) -> Result<()> {
    match old {
        _ if read_if_exists(path).ok().flatten().as_deref() == old => Ok(()),
        Some(bytes) => fsio::write_atomic(path, bytes),
        None => fsio::remove_durable(path),
    }
}

pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("cannot read", path, e)),
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Error::io("cannot resolve", p, e))
}

/// Create the library folders (idempotent).
pub fn init_layout(root: &Path) -> Result<()> {
    for folder in paths::LIBRARY_FOLDERS {
        fsio::ensure_dir(&root.join(folder))?;
    }
    Ok(())
}
