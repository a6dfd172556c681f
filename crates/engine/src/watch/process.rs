//! Turning a batch of raw file events into index updates and change events.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use rayon::prelude::*;

use super::{ChangeEvent, ChangeKind, Origin, own, rel_of};
use crate::error::{Error, Result};
use crate::fsio;
use crate::index::{IndexDoc, ListQuery};
use crate::item::{BLUEPRINT_SUFFIX, COMPANION_SUFFIX};
use crate::library::{Library, ReconcileReport, scan};

/// More distinct paths than this in one batch: reconcile the whole library instead.
const MAX_PATHS: usize = 200_000;
/// How long a reported state is remembered to drop duplicate notifications.
const SEEN_TTL: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Default)]
pub(super) struct Hint {
    /// Created or moved in: if it is a folder, walk it.
    walk: bool,
    /// Removed or moved away: if it was a folder, drop what the index had under it.
    gone: bool,
}

#[derive(Default)]
pub(super) struct Pending {
    paths: HashMap<PathBuf, Hint>,
    /// Renames the kernel paired (from, to).
    pairs: Vec<(PathBuf, PathBuf)>,
    pub rescan: Option<String>,
    pub limit_hit: Option<notify::Error>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.rescan.is_none()
    }

    pub fn add(&mut self, res: notify::Result<notify::Event>) {
        let ev = match res {
            Ok(ev) => ev,
            Err(e) => {
                let limit = matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
                    || matches!(&e.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::ENOSPC));
                self.rescan.get_or_insert_with(|| format!("the file watcher reported an error ({e})"));
                if limit {
                    self.limit_hit = Some(e);
                }
                return;
            }
        };
        if ev.need_rescan() {
            self.rescan.get_or_insert_with(|| "the system dropped file events (event queue overflow)".into());
        }
        let (walk, gone) = match ev.kind {
            // Reads (ours included) say nothing about content; a close after writing does.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => (false, false),
            EventKind::Access(_) => return,
            EventKind::Create(_) => (true, false),
            EventKind::Remove(_) => (false, true),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => (false, true),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => (true, false),
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
                if let [from, to] = ev.paths.as_slice() {
                    self.pairs.push((from.clone(), to.clone()));
                    self.paths.entry(from.clone()).or_default().gone = true;
                    self.paths.entry(to.clone()).or_default().walk = true;
                }
                return;
            }
            EventKind::Modify(ModifyKind::Name(_)) | EventKind::Any | EventKind::Other => (true, true),
            EventKind::Modify(_) => (false, false),
        };
        for p in ev.paths {
            let h = self.paths.entry(p).or_default();
            h.walk |= walk;
            h.gone |= gone;
        }
        if self.paths.len() > MAX_PATHS {
            self.paths.clear();
            self.pairs.clear();
            self.rescan.get_or_insert_with(|| "too many changes at once".into());
        }
    }
}

/// What the watcher last reported per path, to drop duplicate notifications of a change
/// it already handled: path → (fingerprint or `None` when removed, when).
#[derive(Default)]
pub(super) struct Seen {
    map: HashMap<String, (Option<String>, Instant)>,
}

impl Seen {
    fn get(&self, rel: &str) -> Option<&Option<String>> {
        self.map.get(rel).filter(|(_, at)| at.elapsed() < SEEN_TTL).map(|(fp, _)| fp)
    }

    fn put(&mut self, rel: String, fp: Option<String>) {
        if self.map.len() > 20_000 {
            self.map.retain(|_, (_, at)| at.elapsed() < SEEN_TTL);
        }
        self.map.insert(rel, (fp, Instant::now()));
    }
}

fn fingerprint(doc: &IndexDoc) -> String {
    format!("{}|{}|{}", doc.item.hash, doc.item.modified, doc.item.size)
}

fn fingerprint_item(item: &crate::Item) -> String {
    format!("{}|{}|{}", item.hash, item.modified, item.size)
}

fn is_hidden_dir_path(rel: &str) -> bool {
    let mut parts: Vec<&str> = rel.split('/').collect();
    parts.pop();
    parts.iter().any(|p| p.starts_with('.'))
}

/// Blueprint paths under `dir` on disk (never following symlinks, skipping hidden folders).
fn walk_subtree(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    let walker = walkdir::WalkDir::new(dir).follow_links(false).into_iter().filter_entry(|e| {
        e.depth() == 0 || !(e.file_type().is_dir() && e.file_name().to_str().is_some_and(|n| n.starts_with('.')))
    });
    for entry in walker.flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        if let Some(rel) = rel_of(root, entry.path()) {
            add_file(&rel, out);
        }
    }
}

/// The blueprint a file name concerns, if any.
fn add_file(rel: &str, out: &mut BTreeSet<String>) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if fsio::is_temp_name(name) {
        return true;
    }
    if name.ends_with(BLUEPRINT_SUFFIX) {
        out.insert(rel.to_owned());
        true
    } else if let Some(stem) = rel.strip_suffix(COMPANION_SUFFIX) {
        out.insert(format!("{stem}{BLUEPRINT_SUFFIX}"));
        true
    } else {
        false
    }
}

fn indexed_under(lib: &Library, folder: &str) -> Result<Vec<String>> {
    let page =
        lib.index().list(&ListQuery { folder: Some(folder.to_owned()), limit: 100_000_000, ..Default::default() })?;
    Ok(page.items.into_iter().map(|i| i.path).collect())
}

/// Serialise with every other writer of the library (the same lock the library's saves
/// hold), so a save in progress finishes — index included — before we look.
pub(super) fn lock_writes(area: &Path) -> Result<fs::File> {
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

enum Outcome {
    Present(Box<IndexDoc>),
    Gone,
}

/// Apply one batch: re-read every blueprint it concerns, update the index in one
/// transaction, and return the events to deliver.
pub(super) fn process(lib: &Library, pending: Pending, seen: &mut Seen) -> Result<Vec<ChangeEvent>> {
    let root = lib.root();
    let mut candidates = BTreeSet::new();
    for (path, hint) in &pending.paths {
        let Some(rel) = rel_of(root, path) else { continue };
        if is_hidden_dir_path(&rel) || add_file(&rel, &mut candidates) {
            continue;
        }
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                if hint.walk && !name.starts_with('.') {
                    walk_subtree(root, path, &mut candidates);
                }
                if hint.gone {
                    candidates.extend(indexed_under(lib, &rel)?);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && hint.gone => {
                candidates.extend(indexed_under(lib, &rel)?);
            }
            _ => {}
        }
    }
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let _lock = lock_writes(lib.area())?;
    let rels: Vec<String> = candidates.into_iter().collect();
    let outcomes: Vec<(String, Option<Outcome>)> = rels
        .into_par_iter()
        .map(|rel| {
            let o = match scan::build_doc(root, &rel) {
                Ok(doc) => Some(Outcome::Present(Box::new(doc))),
                Err(Error::NotFound(_)) => Some(Outcome::Gone),
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Some(Outcome::Gone),
                // Unreadable right now (permissions, a racing writer): the next reconcile sees it.
                Err(_) => None,
            };
            (rel, o)
        })
        .collect();

    let index = lib.index();
    let mut upserts: Vec<IndexDoc> = Vec::new();
    let mut removals: Vec<String> = Vec::new();
    let mut events: Vec<ChangeEvent> = Vec::new();
    let mut seen_updates: Vec<(String, Option<String>)> = Vec::new();
    for (rel, outcome) in outcomes {
        let Some(outcome) = outcome else { continue };
        let current = index.get(&rel)?;
        let now_fp = match &outcome {
            Outcome::Present(d) => Some(fingerprint(d)),
            Outcome::Gone => None,
        };
        let consistent = now_fp == current.as_ref().map(fingerprint_item);
        let hash = match &outcome {
            Outcome::Present(d) => Some(d.item.hash.clone()),
            Outcome::Gone => None,
        };
        if !consistent {
            let kind = match (&outcome, &current) {
                (Outcome::Gone, _) => ChangeKind::Removed,
                (Outcome::Present(_), None) => ChangeKind::Created,
                (Outcome::Present(_), Some(_)) => ChangeKind::Modified,
            };
            match outcome {
                Outcome::Present(d) => upserts.push(*d),
                Outcome::Gone => removals.push(rel.clone()),
            }
            events.push(ChangeEvent { kind, path: rel.clone(), old_path: None, origin: Origin::Outside, hash });
            seen_updates.push((rel, now_fp));
            continue;
        }
        // The index already has it: a writer that updates the index made this change.
        if let Some(own) = own::take(index.path(), &rel, hash.as_deref()) {
            let kind = match (&hash, own.created) {
                (None, _) => ChangeKind::Removed,
                (Some(_), true) => ChangeKind::Created,
                (Some(_), false) => ChangeKind::Modified,
            };
            events.push(ChangeEvent { kind, path: rel.clone(), old_path: None, origin: Origin::SelfWrite, hash });
            seen_updates.push((rel, now_fp));
            continue;
        }
        match seen.get(&rel) {
            // Already reported (a second notification of the same change).
            Some(fp) if *fp == now_fp => {}
            // Unknown before (nothing reported yet) and nothing there: nothing to say.
            None if now_fp.is_none() => {}
            prev => {
                // Another process using the engine (e.g. `bpv save`) made it.
                let kind = match (&hash, prev) {
                    (None, _) => ChangeKind::Removed,
                    (Some(_), Some(None)) => ChangeKind::Created,
                    (Some(_), _) => ChangeKind::Modified,
                };
                events.push(ChangeEvent { kind, path: rel.clone(), old_path: None, origin: Origin::Outside, hash });
                seen_updates.push((rel, now_fp));
            }
        }
    }
    if !upserts.is_empty() || !removals.is_empty() {
        own::suppressed(|| index.apply(&upserts, &removals))?;
    }
    for (rel, fp) in seen_updates {
        seen.put(rel, fp);
    }
    pair_renames(root, &pending.pairs, &mut events);
    Ok(events)
}

/// Turn a `removed` + `created` pair the kernel reported as one rename into `renamed`.
fn pair_renames(root: &Path, pairs: &[(PathBuf, PathBuf)], events: &mut Vec<ChangeEvent>) {
    if pairs.is_empty() {
        return;
    }
    let mut removed: HashMap<String, usize> = HashMap::new();
    let mut created: HashMap<String, usize> = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        match e.kind {
            ChangeKind::Removed => {
                removed.insert(e.path.clone(), i);
            }
            ChangeKind::Created => {
                created.insert(e.path.clone(), i);
            }
            _ => {}
        }
    }
    if removed.is_empty() || created.is_empty() {
        return;
    }
    let mut merged: Vec<(usize, usize)> = Vec::new(); // (created idx, removed idx)
    let mut dir_pairs = 0;
    for (from, to) in pairs {
        let (Some(from), Some(to)) = (rel_of(root, from), rel_of(root, to)) else { continue };
        if from.ends_with(BLUEPRINT_SUFFIX) {
            if let (Some(&r), Some(&c)) = (removed.get(&from), created.get(&to)) {
                merged.push((c, r));
            }
        } else if dir_pairs < 100 {
            dir_pairs += 1;
            let prefix = format!("{from}/");
            for (path, &r) in &removed {
                if let Some(rest) = path.strip_prefix(&prefix)
                    && let Some(&c) = created.get(&format!("{to}/{rest}"))
                {
                    merged.push((c, r));
                }
            }
        }
    }
    if merged.is_empty() {
        return;
    }
    let mut drop = vec![false; events.len()];
    for (c, r) in merged {
        if drop[r] {
            continue;
        }
        let old = events[r].path.clone();
        let ev = &mut events[c];
        ev.kind = ChangeKind::Renamed;
        ev.old_path = Some(old);
        drop[r] = true;
    }
    let mut i = 0;
    events.retain(|_| {
        let keep = !drop[i];
        i += 1;
        keep
    });
}

/// A full reconcile (what [`Library::reconcile`] does, under the write lock), reporting
/// each change it finds as an event.
pub(super) fn resync(lib: &Library, seen: &mut Seen) -> Result<(Vec<ChangeEvent>, ReconcileReport)> {
    let start = Instant::now();
    let _lock = lock_writes(lib.area())?;
    let index = lib.index();
    let known = index.file_states()?;
    let mut report = ReconcileReport::default();
    let (docs, removals) = scan::diff(lib.root(), &known, &|n| lib.batch_temp_is_orphan(n), &mut report)?;
    if !docs.is_empty() || !removals.is_empty() {
        own::suppressed(|| index.apply(&docs, &removals))?;
    }
    let mut events = Vec::with_capacity(docs.len() + removals.len());
    for d in &docs {
        let kind = if known.contains_key(&d.item.path) { ChangeKind::Modified } else { ChangeKind::Created };
        seen.put(d.item.path.clone(), Some(fingerprint(d)));
        events.push(ChangeEvent {
            kind,
            path: d.item.path.clone(),
            old_path: None,
            origin: Origin::Outside,
            hash: Some(d.item.hash.clone()),
        });
    }
    for r in removals {
        seen.put(r.clone(), None);
        events.push(ChangeEvent {
            kind: ChangeKind::Removed,
            path: r,
            old_path: None,
            origin: Origin::Outside,
            hash: None,
        });
    }
    report.millis = start.elapsed().as_millis() as u64;
    Ok((events, report))
}
