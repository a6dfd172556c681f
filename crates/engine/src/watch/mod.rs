//! The live library: a watcher over the whole library folder that keeps the index up to
//! date with changes made by any tool, and reports them as [`ChangeEvent`]s.
//!
//! - Recursive `notify` watch (inotify on Linux), never following symlinks; a debouncer of
//!   our own gathers events until the folder is quiet for [`WatchOptions::debounce`] (or
//!   [`WatchOptions::max_batch_delay`] passed), then applies the whole batch in one
//!   [`Index::apply`](crate::index::Index::apply) transaction and only then delivers the
//!   events — so a listener that reacts to an event reads an index that already has it.
//! - Editors' save dances (temp + rename, `~` backups, `.swp`, `4913`, `.#` locks, our own
//!   `.bpv-tmp-` files) touch only names that are not blueprints: the blueprint itself is
//!   re-read and reported once, as `modified`. A companion `.blueprint.meta.json` change
//!   updates its blueprint's item. New or moved-in folders are walked; removed or moved-out
//!   folders drop what the index had under them.
//! - Lost events are never lost changes: the kernel's overflow flag, a watcher error, and a
//!   periodic safety net ([`WatchOptions::rescan_interval`]) each run a full reconcile (size
//!   + mtime, then content), which emits events for what it finds.
//! - On a network/FUSE filesystem, or when the inotify watch limit is reached, the watcher
//!   falls back to polling and says why in its [`WatcherState`].
//! - Own writes: a change the engine itself made (a save, a metadata edit, a delete, in
//!   this process) is already in the index; it is reported with [`Origin::SelfWrite`]
//!   (`"self"`) so other windows refresh without calling it an outside edit. Everything
//!   else — other tools, other `bpv` processes — is [`Origin::Outside`].
//! - While running, the watcher records its state in `<area>/watcher.json` (pid, state,
//!   heartbeat), which [`read_status`] validates for `bpv info`.

mod conflict;
pub(crate) mod own;
mod process;
mod status;

use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{Config, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher as _};
use serde::{Deserialize, Serialize};

use crate::backup::ChangeJournal;
use crate::error::{Error, Result};
use crate::key::Key;
use crate::library::{Library, ReconcileReport};
use crate::store::Store;
use crate::store::cached::Cached;

pub use conflict::ConflictCheck;
pub use status::{STATUS_FILE, WatcherStatus, fs_kind, read_status, remote_filesystem};

/// What happened to a blueprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Created,
    Modified,
    Removed,
    Renamed,
}

/// Who made a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// The engine in this process (its saves update the index themselves).
    #[serde(rename = "self")]
    SelfWrite,
    /// Anything else: editors, scripts, sync tools, other `bpv` processes.
    #[serde(rename = "outside")]
    Outside,
}

/// One change to one blueprint, delivered after the index has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub kind: ChangeKind,
    /// The blueprint's path, relative to the library root (`/`-separated).
    pub path: String,
    /// For `renamed`: where it was before.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub old_path: Option<String>,
    pub origin: Origin,
    /// The blueprint file's content hash now (absent for `removed`): compare it with the
    /// hash an open editor loaded to tell whether it is stale.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hash: Option<String>,
}

impl ChangeEvent {
    /// The store keys this event makes stale (the path, and the old path of a rename).
    pub fn keys(&self) -> Vec<Key> {
        [Some(&self.path), self.old_path.as_ref()].into_iter().flatten().filter_map(|p| Key::new(p).ok()).collect()
    }

    /// Drop the cached entries this event makes stale.
    pub fn invalidate<S: Store>(&self, cache: &Cached<S>) {
        for k in self.keys() {
            cache.invalidate(&k);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// Kernel notifications (inotify): changes arrive within milliseconds.
    Watching,
    /// Polling the folder (network/FUSE filesystem, or the watch limit was reached).
    Polling,
    /// Running, but the last attempt to bring the index up to date failed; it is retried.
    Degraded,
    Stopped,
}

/// The watcher's state, for a status bar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherState {
    pub mode: WatchMode,
    /// Why the mode is not `watching`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// What a person can do about it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub advice: Option<String>,
}

/// What the watcher tells its listener.
#[derive(Clone, Debug)]
pub enum WatchNotice {
    Change(ChangeEvent),
    /// The watcher's state changed (e.g. it fell back to polling, or recovered).
    State(WatcherState),
    /// A full reconcile ran (overflow, watcher error, the periodic safety net, or on request).
    Resynced {
        reason: String,
        report: ReconcileReport,
    },
}

#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Apply a batch once no event arrived for this long.
    pub debounce: Duration,
    /// …or once the oldest event of the batch is this old, even if events keep coming.
    pub max_batch_delay: Duration,
    /// Safety-net full reconcile this often (`None`: never).
    pub rescan_interval: Option<Duration>,
    /// How often the polling fallback looks at the folder.
    pub poll_interval: Duration,
    /// How often `watcher.json`'s heartbeat is refreshed.
    pub heartbeat: Duration,
    /// Poll instead of using kernel notifications, with this reason (a setting, or tests).
    pub force_polling: Option<String>,
    /// Record the state in `<area>/watcher.json` for `bpv info`.
    pub state_file: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            debounce: Duration::from_millis(30),
            max_batch_delay: Duration::from_millis(400),
            rescan_interval: Some(Duration::from_secs(300)),
            poll_interval: Duration::from_secs(3),
            heartbeat: Duration::from_secs(10),
            force_polling: None,
            state_file: true,
        }
    }
}

pub(crate) enum Msg {
    Fs(notify::Result<notify::Event>),
    Rescan(String),
    Stop,
}

/// Held only to keep the source of events alive: dropping it stops watching.
enum Backend {
    Native(#[allow(dead_code)] RecommendedWatcher),
    Poll(#[allow(dead_code)] PollWatcher),
}

struct Shared {
    state: Mutex<WatcherState>,
    backend: Mutex<Option<Backend>>,
}

/// A running watcher. Stops (and clears its state file) when stopped or dropped.
pub struct Watcher {
    journal: Arc<ChangeJournal>,
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    worker: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Start watching `lib`'s folder. `sink` receives every notice, on the watcher's thread,
    /// after the index has been updated.
    pub fn start<F>(lib: Arc<Library>, opts: WatchOptions, sink: F) -> Result<Watcher>
    where
        F: Fn(WatchNotice) + Send + 'static,
    {
        let (tx, rx) = mpsc::channel();
        let journal = Arc::clone(lib.backup_journal());
        let (backend, state) = start_backend(lib.root(), &opts, &tx, &journal)?;
        let started = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if opts.state_file {
            // Written before returning, so `bpv info` sees the watcher as soon as it runs.
            let _ = status::write(lib.area(), &state, &started);
        }
        let shared = Arc::new(Shared { state: Mutex::new(state), backend: Mutex::new(Some(backend)) });
        own::activate(lib.index().path());
        // Catch up with anything changed between the library's open (which reconciled)
        // and the watch being in place: nothing may fall into that gap.
        let _ = tx.send(Msg::Rescan("catching up with changes made before watching started".into()));
        let worker = {
            let shared = Arc::clone(&shared);
            let tx = tx.clone();
            std::thread::Builder::new()
                .name("bpv-watch".into())
                .spawn(move || {
                    let mut w = Worker::new(lib, opts, shared, tx, Box::new(sink), started);
                    w.run(rx);
                })
                .map_err(|e| Error::Io { context: "cannot start the watcher thread".into(), source: e })?
        };
        Ok(Watcher { journal, shared, tx, worker: Some(worker) })
    }

    pub fn state(&self) -> WatcherState {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Behave exactly as if the kernel had dropped events (inotify queue overflow): the
    /// same code path as a real overflow, for tests and diagnostics.
    pub fn inject_overflow(&self) {
        let ev = notify::Event::new(notify::EventKind::Other).set_flag(notify::event::Flag::Rescan);
        let _ = self.tx.send(Msg::Fs(Ok(ev)));
    }

    /// Behave exactly as if the kernel refused another inotify watch (ENOSPC: the
    /// `fs.inotify.max_user_watches` limit), as notify reports it when a new folder cannot
    /// be watched: the same code path, for tests and diagnostics.
    pub fn inject_watch_limit(&self) {
        let _ = self.tx.send(Msg::Fs(Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch))));
    }

    /// Run a full reconcile now.
    pub fn rescan(&self, reason: &str) {
        let _ = self.tx.send(Msg::Rescan(reason.to_owned()));
    }

    /// Stop watching; waits for the current batch to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.journal.stop_feeding();
        // Stop the source of events first, then the worker.
        self.shared.backend.lock().unwrap_or_else(PoisonError::into_inner).take();
        let _ = self.tx.send(Msg::Stop);
        if let Some(h) = self.worker.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Forwards events to the worker; with kernel notifications, also feeds the backup
/// journal here, on notify's thread, in the order the kernel queued them.
fn handler(tx: &Sender<Msg>, journal: Option<Arc<ChangeJournal>>) -> impl notify::EventHandler {
    let tx = tx.clone();
    move |res: notify::Result<notify::Event>| {
        if let Some(j) = &journal {
            match &res {
                Ok(ev) if ev.need_rescan() => j.invalidate(),
                // Opening and reading change nothing (and the backup's own reads would
                // otherwise name every file).
                Ok(ev) if is_read_only(&ev.kind) => {}
                Ok(ev) => j.note(&ev.paths),
                Err(_) => j.invalidate(),
            }
        }
        let _ = tx.send(Msg::Fs(res));
    }
}

fn is_read_only(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    matches!(kind, EventKind::Access(a) if !matches!(a, AccessKind::Close(AccessMode::Write)))
}

fn start_backend(
    root: &Path,
    opts: &WatchOptions,
    tx: &Sender<Msg>,
    journal: &Arc<ChangeJournal>,
) -> Result<(Backend, WatcherState)> {
    if let Some(reason) = &opts.force_polling {
        return start_polling(root, opts, tx, reason.clone(), None);
    }
    if let Some(fs) = remote_filesystem(root) {
        return start_polling(
            root,
            opts,
            tx,
            format!("the library is on a {fs} filesystem, which does not report changes"),
            Some(
                "nothing to do: changes are found by polling; keep the library on a local disk for instant updates"
                    .into(),
            ),
        );
    }
    let config = Config::default().with_follow_symlinks(false);
    let mut native =
        RecommendedWatcher::new(handler(tx, Some(Arc::clone(journal))), config).map_err(|e| notify_err(root, e))?;
    match native.watch(root, RecursiveMode::Recursive) {
        Ok(()) => {
            journal.start_feeding();
            Ok((Backend::Native(native), WatcherState { mode: WatchMode::Watching, reason: None, advice: None }))
        }
        Err(e) => {
            drop(native);
            if let notify::ErrorKind::Io(io) = &e.kind
                && io.kind() == std::io::ErrorKind::NotFound
            {
                return Err(notify_err(root, e));
            }
            let (reason, advice) = fallback_reason(&e);
            start_polling(root, opts, tx, reason, Some(advice))
        }
    }
}

fn start_polling(
    root: &Path,
    opts: &WatchOptions,
    tx: &Sender<Msg>,
    reason: String,
    advice: Option<String>,
) -> Result<(Backend, WatcherState)> {
    let config = Config::default().with_poll_interval(opts.poll_interval).with_follow_symlinks(false);
    let mut poll = PollWatcher::new(handler(tx, None), config).map_err(|e| notify_err(root, e))?;
    poll.watch(root, RecursiveMode::Recursive).map_err(|e| notify_err(root, e))?;
    let advice = advice.or_else(|| Some(format!("changes are found every {} s", opts.poll_interval.as_secs_f32())));
    Ok((Backend::Poll(poll), WatcherState { mode: WatchMode::Polling, reason: Some(reason), advice }))
}

/// Why kernel notifications could not be used, and what to do about it.
pub fn fallback_reason(e: &notify::Error) -> (String, String) {
    let limit_hit = matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
        || matches!(&e.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::ENOSPC));
    if limit_hit {
        let current = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
            .map(|s| format!(" (fs.inotify.max_user_watches = {})", s.trim()))
            .unwrap_or_default();
        (
            format!("the system limit on watched folders is reached{current}"),
            "raise it, e.g. `sudo sysctl fs.inotify.max_user_watches=524288` (add it to /etc/sysctl.d/ to keep it), then restart watching".into(),
        )
    } else if matches!(&e.kind, notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE)) {
        (
            format!("the system refused another file watcher ({e})"),
            "raise fs.inotify.max_user_instances (e.g. `sudo sysctl fs.inotify.max_user_instances=512`) or close other watching programs, then restart watching".into(),
        )
    } else {
        (format!("file notifications are unavailable ({e})"), "restart watching; if it persists, report it".into())
    }
}

fn notify_err(root: &Path, e: notify::Error) -> Error {
    match e.kind {
        notify::ErrorKind::Io(io) => Error::io("cannot watch", root, io),
        notify::ErrorKind::PathNotFound => Error::NotFound(format!("{} (cannot watch it)", root.display())),
        other => Error::Io {
            context: format!("cannot watch {}", root.display()),
            source: std::io::Error::other(format!("{other:?}")),
        },
    }
}

struct Worker {
    lib: Arc<Library>,
    opts: WatchOptions,
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    sink: Box<dyn Fn(WatchNotice) + Send>,
    seen: process::Seen,
    started: String,
    retry_at: Option<Instant>,
    /// The state to return to when a degraded spell ends.
    healthy: Option<WatcherState>,
}

impl Worker {
    fn new(
        lib: Arc<Library>,
        opts: WatchOptions,
        shared: Arc<Shared>,
        tx: Sender<Msg>,
        sink: Box<dyn Fn(WatchNotice) + Send>,
        started: String,
    ) -> Worker {
        Worker { lib, opts, shared, tx, sink, seen: process::Seen::default(), started, retry_at: None, healthy: None }
    }

    fn state(&self) -> WatcherState {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_state(&self, s: WatcherState) {
        let changed = {
            let mut cur = self.shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            let changed = *cur != s;
            *cur = s.clone();
            changed
        };
        if changed {
            self.write_status();
            (self.sink)(WatchNotice::State(s));
        }
    }

    fn write_status(&self) {
        if self.opts.state_file {
            // The state file is advisory: failing to write it must not stop the watcher.
            let _ = status::write(self.lib.area(), &self.state(), &self.started);
        }
    }

    fn run(&mut self, rx: Receiver<Msg>) {
        self.write_status();
        let mut next_rescan = self.opts.rescan_interval.map(|d| Instant::now() + d);
        let mut next_beat = Instant::now() + self.opts.heartbeat;
        loop {
            let now = Instant::now();
            let mut deadline = next_beat;
            if let Some(r) = next_rescan {
                deadline = deadline.min(r);
            }
            if let Some(r) = self.retry_at {
                deadline = deadline.min(r);
            }
            let msg = match rx.recv_timeout(deadline.saturating_duration_since(now)) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut pending = process::Pending::default();
            let mut stop = false;
            match msg {
                Some(Msg::Stop) => break,
                Some(Msg::Rescan(reason)) => pending.rescan = Some(reason),
                Some(Msg::Fs(res)) => {
                    pending.add(res);
                    stop = self.gather(&rx, &mut pending);
                }
                None => {
                    let now = Instant::now();
                    if now >= next_beat {
                        self.write_status();
                        next_beat = now + self.opts.heartbeat;
                    }
                    if next_rescan.is_some_and(|r| now >= r) {
                        pending.rescan = Some("periodic safety-net rescan".into());
                    }
                    if self.retry_at.is_some_and(|r| now >= r) {
                        pending.rescan = Some("retrying after an error".into());
                    }
                }
            }
            if let Some(limit) = pending.limit_hit.take() {
                self.switch_to_polling(&limit);
            }
            if pending.rescan.is_some() {
                // A full reconcile also resets the safety-net clock.
                next_rescan = self.opts.rescan_interval.map(|d| Instant::now() + d);
            }
            if !pending.is_empty() {
                self.apply(pending);
            }
            if stop {
                break;
            }
        }
        if self.opts.state_file {
            status::remove(self.lib.area());
        }
        own::deactivate(self.lib.index().path());
    }

    /// Collect more events until the folder is quiet (or the batch is old enough).
    /// Returns whether a stop was requested meanwhile.
    fn gather(&self, rx: &Receiver<Msg>, pending: &mut process::Pending) -> bool {
        let first = Instant::now();
        loop {
            let left = self.opts.max_batch_delay.saturating_sub(first.elapsed());
            if left.is_zero() {
                return false;
            }
            match rx.recv_timeout(self.opts.debounce.min(left)) {
                Ok(Msg::Fs(res)) => pending.add(res),
                Ok(Msg::Rescan(reason)) => pending.rescan = Some(reason),
                Ok(Msg::Stop) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => return true,
            }
        }
    }

    fn apply(&mut self, mut pending: process::Pending) {
        let result = match pending.rescan.take() {
            // The reconcile finds every difference between the files and the index; the
            // batch's own paths still go through `process`, which reports the changes the
            // index already had (own writes, other `bpv` processes) and skips the ones
            // the reconcile just reported.
            Some(reason) => process::resync(&self.lib, &mut self.seen).and_then(|(mut events, report)| {
                events.extend(process::process(&self.lib, pending, &mut self.seen)?);
                Ok((events, Some(WatchNotice::Resynced { reason, report })))
            }),
            None => process::process(&self.lib, pending, &mut self.seen).map(|events| (events, None)),
        };
        match result {
            Ok((events, resynced)) => {
                self.retry_at = None;
                let st = self.state();
                if st.mode == WatchMode::Degraded {
                    let healthy = self.healthy_state();
                    self.set_state(healthy);
                }
                for ev in events {
                    (self.sink)(WatchNotice::Change(ev));
                }
                if let Some(n) = resynced {
                    (self.sink)(n);
                }
            }
            Err(e) => {
                // Nothing was applied (one transaction); try a full reconcile shortly.
                self.retry_at = Some(Instant::now() + Duration::from_secs(2));
                let prev = self.state();
                if prev.mode != WatchMode::Degraded {
                    self.healthy = Some(prev);
                }
                self.set_state(WatcherState {
                    mode: WatchMode::Degraded,
                    reason: Some(format!("cannot update the index: {e}")),
                    advice: Some("retrying every 2 s; if it persists, run `bpv reindex`".into()),
                });
            }
        }
    }

    fn healthy_state(&mut self) -> WatcherState {
        self.healthy.take().unwrap_or(WatcherState { mode: WatchMode::Watching, reason: None, advice: None })
    }

    fn switch_to_polling(&mut self, why: &notify::Error) {
        if self.state().mode == WatchMode::Polling {
            return;
        }
        let (reason, advice) = fallback_reason(why);
        // Polling can lag a change by its interval: backups walk the folder again.
        self.lib.backup_journal().stop_feeding();
        let mut backend = self.shared.backend.lock().unwrap_or_else(PoisonError::into_inner);
        if backend.is_none() {
            return; // stopping
        }
        backend.take();
        match start_polling(self.lib.root(), &self.opts, &self.tx, reason.clone(), Some(advice.clone())) {
            Ok((b, st)) => {
                *backend = Some(b);
                drop(backend);
                self.set_state(st);
            }
            Err(e) => {
                drop(backend);
                self.set_state(WatcherState {
                    mode: WatchMode::Degraded,
                    reason: Some(format!("{reason}; polling failed too: {e}")),
                    advice: Some(advice),
                });
            }
        }
    }
}

/// Paths of the library's files as the watcher names them.
pub(crate) fn rel_of(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for part in rel.components() {
        let s = part.as_os_str().to_str()?;
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(s);
    }
    (!out.is_empty()).then_some(out)
}
