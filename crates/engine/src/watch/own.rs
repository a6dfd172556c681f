//! Recognising the engine's own writes. Every engine write ends in
//! [`Index::apply`](crate::index::Index::apply), which calls [`note_apply`]; while a watcher
//! runs on that index, the paths and content hashes written are remembered for a short
//! while, so the watcher can tell "the engine in this process did this" (origin `self`)
//! from an outside edit when the file notification arrives.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::index::{Index, IndexDoc};

/// Own writes not seen by the watcher within this long are forgotten.
const TTL: Duration = Duration::from_secs(60);
const MAX_ENTRIES: usize = 200_000;
/// Above this many upserts in one apply, don't look up whether each existed.
const MAX_LOOKUPS: usize = 256;

#[derive(Clone, Debug)]
pub(crate) struct OwnWrite {
    /// The content hash written, `None` for a removal.
    pub hash: Option<String>,
    /// The path was not in the index before.
    pub created: bool,
    at: Instant,
}

#[derive(Default)]
struct Registry {
    /// Index files with a running watcher, and how many.
    active: HashMap<PathBuf, usize>,
    writes: HashMap<(PathBuf, String), OwnWrite>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);

thread_local! {
    static SUPPRESS: Cell<bool> = const { Cell::new(false) };
}

fn with<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut g = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    f(g.get_or_insert_with(Registry::default))
}

pub(crate) fn activate(index: &Path) {
    with(|r| *r.active.entry(index.to_path_buf()).or_default() += 1);
}

pub(crate) fn deactivate(index: &Path) {
    with(|r| {
        if let Some(n) = r.active.get_mut(index) {
            *n -= 1;
            if *n == 0 {
                r.active.remove(index);
                r.writes.retain(|(ix, _), _| ix != index);
            }
        }
    });
}

/// Run `f` (the watcher's own index updates) without recording it as an own write.
pub(crate) fn suppressed<R>(f: impl FnOnce() -> R) -> R {
    SUPPRESS.with(|s| s.set(true));
    let r = f();
    SUPPRESS.with(|s| s.set(false));
    r
}

/// Called by `Index::apply` before it writes. Cheap when no watcher runs on `index`.
pub(crate) fn note_apply(index: &Index, upserts: &[IndexDoc], removals: &[String]) {
    if SUPPRESS.with(Cell::get) {
        return;
    }
    let path = index.path();
    if !with(|r| r.active.contains_key(path)) {
        return;
    }
    let lookup = upserts.len() <= MAX_LOOKUPS;
    let now = Instant::now();
    let mut entries: Vec<(String, OwnWrite)> = Vec::with_capacity(upserts.len() + removals.len());
    for d in upserts {
        let created = lookup && matches!(index.get(&d.item.path), Ok(None));
        entries.push((d.item.path.clone(), OwnWrite { hash: Some(d.item.hash.clone()), created, at: now }));
    }
    for rel in removals {
        entries.push((rel.clone(), OwnWrite { hash: None, created: false, at: now }));
    }
    with(|r| {
        if r.writes.len() + entries.len() > MAX_ENTRIES {
            r.writes.retain(|_, w| w.at.elapsed() < TTL);
        }
        for (rel, w) in entries {
            if r.writes.len() >= MAX_ENTRIES {
                break;
            }
            // A create followed by a save before the watcher looked is still a create.
            let created = w.created || r.writes.get(&(path.to_path_buf(), rel.clone())).is_some_and(|o| o.created);
            r.writes.insert((path.to_path_buf(), rel), OwnWrite { created, ..w });
        }
    });
}

/// If the engine in this process recently wrote `rel` with exactly `hash` (or removed it,
/// for `None`), forget and return that write.
pub(crate) fn take(index: &Path, rel: &str, hash: Option<&str>) -> Option<OwnWrite> {
    with(|r| {
        let key = (index.to_path_buf(), rel.to_owned());
        let w = r.writes.get(&key)?;
        if w.at.elapsed() > TTL || w.hash.as_deref() != hash {
            return None;
        }
        r.writes.remove(&key)
    })
}
