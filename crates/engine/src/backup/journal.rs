//! The change journal: what changed in the library folder since the last snapshot, as
//! the running watcher saw it, so a backup while the app runs re-reads only those paths
//! instead of walking and `stat`-ing every file (the walk alone is most of an unchanged
//! backup of 100k blueprints).
//!
//! Trust rules, each a reason to fall back to the full walk:
//! - only kernel notifications feed it (the polling fallback can lag a change by its
//!   interval: a snapshot would miss it);
//! - it is continuous since that repository's previous snapshot was taken by this
//!   process (any overflow, watcher error or restart starts a new epoch and forgets);
//! - the events up to the backup's start have all arrived: the backup writes a barrier
//!   file into the library and waits until the watcher reports it (inotify keeps one
//!   ordered queue, so every earlier event has been noted by then).
//!
//! A new folder is noted as a path: the backup walks it, which covers files created in
//! it before its own watch was in place. The trash, version history and settings are
//! not in the library folder and are always walked.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::fsio;

/// Name prefix of the barrier file (a temp name: the index and backups skip it).
const BARRIER_PREFIX: &str = ".journal-barrier.bpv-tmp-";
/// How long a backup waits for its barrier before walking instead.
const BARRIER_WAIT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct RepoTrack {
    /// The snapshot the dirty set is relative to (`None` while a backup runs, or
    /// before the first one of this epoch).
    snapshot: Option<String>,
    /// Paths (relative to the library root, `/`-separated) changed since `snapshot`.
    dirty: HashSet<String>,
}

#[derive(Default)]
struct State {
    feeding: bool,
    epoch: u64,
    repos: HashMap<PathBuf, RepoTrack>,
    /// Barrier files a backup waits for; removed when the watcher reports them.
    awaited: HashSet<String>,
}

/// See the module doc. One per open library; fed by its watcher.
#[derive(Default)]
pub struct ChangeJournal {
    root: PathBuf,
    state: Mutex<State>,
    arrived: Condvar,
}

/// What a backup took from the journal at its start.
pub(crate) struct Taken {
    epoch: u64,
    repo: PathBuf,
    previous: Option<String>,
    taken: HashSet<String>,
    /// The paths changed since `parent`, when the journal can be trusted for it.
    pub usable: Option<Vec<String>>,
}

impl ChangeJournal {
    pub(crate) fn new(root: &Path) -> ChangeJournal {
        ChangeJournal { root: root.to_path_buf(), ..ChangeJournal::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Kernel notifications now cover the whole library folder: a new epoch begins.
    pub(crate) fn start_feeding(&self) {
        let mut s = self.lock();
        s.feeding = true;
        s.epoch += 1;
        s.repos.clear();
    }

    /// The watcher stopped or fell back to polling: nothing it says can be trusted now.
    pub(crate) fn stop_feeding(&self) {
        let mut s = self.lock();
        s.feeding = false;
        s.epoch += 1;
        s.repos.clear();
    }

    /// Events were lost (queue overflow, a watcher error): forget everything.
    pub(crate) fn invalidate(&self) {
        let mut s = self.lock();
        s.epoch += 1;
        s.repos.clear();
    }

    /// Paths from one notification, in the order the kernel reported them.
    pub(crate) fn note(&self, paths: &[PathBuf]) {
        let mut s = self.lock();
        if !s.feeding {
            return;
        }
        let mut barrier = false;
        for p in paths {
            let Ok(rel) = p.strip_prefix(&self.root) else { continue };
            let Some(rel) = rel.to_str() else {
                // A name that is not UTF-8 cannot be re-read by path: walk everything.
                s.epoch += 1;
                s.repos.clear();
                return;
            };
            let rel = rel.replace('\\', "/");
            if rel.is_empty() {
                // The library folder itself was moved, deleted or changed: whether the
                // watch still covers what is at its path now is unknown until the watcher
                // starts again, so nothing it says is trusted until then.
                s.feeding = false;
                s.epoch += 1;
                s.repos.clear();
                return;
            }
            if rel.starts_with(BARRIER_PREFIX) {
                barrier |= s.awaited.remove(&rel);
                continue;
            }
            for t in s.repos.values_mut() {
                t.dirty.insert(rel.clone());
            }
        }
        if barrier {
            self.arrived.notify_all();
        }
    }

    /// Start of a backup to `repo` whose newest snapshot is `parent`. Waits for the
    /// watcher to catch up (the barrier), then takes the changed paths.
    pub(crate) fn begin(&self, repo: &Path, parent: Option<&str>) -> Taken {
        let feeding = self.lock().feeding;
        let caught_up = feeding && self.barrier();
        let mut s = self.lock();
        let epoch = s.epoch;
        if !s.feeding {
            return Taken { epoch, repo: repo.to_path_buf(), previous: None, taken: HashSet::new(), usable: None };
        }
        let t = s.repos.entry(repo.to_path_buf()).or_default();
        let previous = t.snapshot.take();
        let taken = std::mem::take(&mut t.dirty);
        let usable =
            (caught_up && previous.is_some() && previous.as_deref() == parent).then(|| taken.iter().cloned().collect());
        Taken { epoch, repo: repo.to_path_buf(), previous, taken, usable }
    }

    /// End of that backup: on success the repository's dirty set is relative to
    /// `snapshot`; on failure the paths taken go back, still relative to the old one.
    pub(crate) fn finish(&self, taken: Taken, snapshot: Option<&str>) {
        let mut s = self.lock();
        if !s.feeding || s.epoch != taken.epoch {
            return;
        }
        let t = s.repos.entry(taken.repo).or_default();
        match snapshot {
            Some(id) => t.snapshot = Some(id.to_owned()),
            None => {
                t.dirty.extend(taken.taken);
                t.snapshot = taken.previous;
            }
        }
    }

    /// Write a barrier file and wait until the watcher reports it. False if it cannot
    /// be written (a read-only library) or does not arrive in time.
    fn barrier(&self) -> bool {
        let name = format!("{BARRIER_PREFIX}{}-{:016x}", std::process::id(), rand::random::<u64>());
        let path = self.root.join(&name);
        self.lock().awaited.insert(name.clone());
        if fsio::create_new(&path).is_err() {
            self.lock().awaited.remove(&name);
            return false;
        }
        let deadline = Instant::now() + BARRIER_WAIT;
        let mut s = self.lock();
        let arrived = loop {
            if !s.awaited.contains(&name) {
                break true;
            }
            let now = Instant::now();
            if now >= deadline || !s.feeding {
                s.awaited.remove(&name);
                break false;
            }
            s = self.arrived.wait_timeout(s, deadline - now).unwrap_or_else(PoisonError::into_inner).0;
        };
        drop(s);
        let _ = fsio::remove_file(&path);
        arrived
    }
}
