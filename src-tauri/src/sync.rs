//! The shell side of team libraries (issue 9): one sync at a time with progress events and
//! a cancel switch, the `sync-status` event after every run, and the periodic sync while a
//! linked library is open — a timer thread per library (interval from the link, longer
//! after failures via `bpv_sync::sync::next_interval`, with jitter), woken early by a change
//! saved in the app (debounced), stopped when the library closes or another one opens.
//! Linking, status and the sync itself are bpv-sync's (`link`, `Syncer`); nothing here
//! decides what is synced.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bpv_engine::library::Library;
use bpv_sync::config::{self, Credentials};
use bpv_sync::link::{self, LinkKeys, LinkRequest};
use bpv_sync::{SyncError, Syncer};
use tauri::{AppHandle, Emitter, Manager};

use crate::dto::{IpcError, LIBRARY_CHANGED, LibraryEvent, LibraryEventKind};
use crate::dto_sync::*;
use crate::state::AppState;

/// A change saved in the app is synced after this much quiet (several saves, one sync).
const DEBOUNCE: Duration = Duration::from_secs(2);
/// Notices right after a sync are mostly the sync's own writes, seen by the watcher.
const QUIET_AFTER_SYNC: Duration = Duration::from_secs(2);
/// The first sync after a linked library opens (others' changes arrive soon after start).
const FIRST_SYNC_AFTER: Duration = Duration::from_secs(3);
/// Progress events at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(80);
/// How long "Sync now" waits for a sync already running (the timer's) to finish.
const WAIT_FOR_RUNNING: Duration = Duration::from_secs(120);

/// The sync side of the open library: its timer and the running sync's cancel switch.
#[derive(Default)]
pub struct SyncSlot {
    timer: Mutex<Option<Timer>>,
    running: Mutex<Option<Arc<AtomicBool>>>,
}

struct Timer {
    root: PathBuf,
    signal: Arc<Signal>,
}

#[derive(Default)]
struct Signal {
    wake: Mutex<Wake>,
    cv: Condvar,
}

#[derive(Default)]
struct Wake {
    stop: bool,
    poked_at: Option<Instant>,
    quiet_until: Option<Instant>,
}

impl Signal {
    fn stop(&self) {
        if let Ok(mut w) = self.wake.lock() {
            w.stop = true;
        }
        self.cv.notify_all();
    }
}

/// Marks a sync as running until dropped.
struct Running<'a>(&'a SyncSlot);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.0.running.lock() {
            r.take();
        }
    }
}

impl SyncSlot {
    /// Stop the periodic sync and ask a running sync to stop (library closed or switched).
    pub fn stop(&self) {
        if let Ok(mut t) = self.timer.lock()
            && let Some(timer) = t.take()
        {
            timer.signal.stop();
        }
        self.cancel();
    }

    /// Ask the running sync to stop; false when none runs.
    pub fn cancel(&self) -> bool {
        match self.running.lock().ok().and_then(|r| r.clone()) {
            Some(c) => {
                c.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// A change was saved: sync soon (after a quiet moment), if the library is linked.
    pub fn poke(&self) {
        let Some(signal) = self.timer.lock().ok().and_then(|t| t.as_ref().map(|t| t.signal.clone())) else { return };
        if let Ok(mut w) = signal.wake.lock() {
            if w.quiet_until.is_some_and(|q| Instant::now() < q) {
                return;
            }
            w.poked_at = Some(Instant::now());
        }
        signal.cv.notify_all();
    }

    fn is_running(&self) -> bool {
        self.running.lock().map(|r| r.is_some()).unwrap_or(false)
    }

    fn begin(&self, cancel: Arc<AtomicBool>) -> Option<Running<'_>> {
        let mut r = self.running.lock().ok()?;
        if r.is_some() {
            return None;
        }
        *r = Some(cancel);
        Some(Running(self))
    }

    /// Wait (up to `WAIT_FOR_RUNNING`) for a running sync to end, then take the slot.
    fn begin_waiting(&self, cancel: Arc<AtomicBool>) -> Result<Running<'_>, IpcError> {
        let start = Instant::now();
        loop {
            if let Some(r) = self.begin(cancel.clone()) {
                return Ok(r);
            }
            if start.elapsed() > WAIT_FOR_RUNNING {
                return Err(IpcError::new("busy", "a sync is already running: wait for it to finish, or cancel it"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn slot(app: &AppHandle) -> &SyncSlot {
    &app.state::<AppState>().inner().sync
}

fn request_of(args: &SyncLinkArgs) -> LinkRequest {
    LinkRequest {
        endpoints: args
            .endpoints
            .iter()
            .map(|e| e.trim().trim_end_matches('/').to_owned())
            .filter(|e| !e.is_empty())
            .collect(),
        bucket: args.bucket.trim().to_owned(),
        prefix: args.prefix.trim().to_owned(),
        region: args.region.trim().to_owned(),
        path_style: args.path_style,
        device_name: args.device_name.clone().map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()),
        interval_secs: u64::from(args.interval_secs.unwrap_or(30)),
    }
}

fn creds_of(args: &SyncLinkArgs) -> Credentials {
    Credentials {
        access_key_id: args.access_key_id.trim().to_owned(),
        secret_access_key: args.secret_access_key.trim().to_owned(),
    }
}

/// The link's state and every blueprint's that is not synced. Blocking, no network.
pub fn status(app: &AppHandle, lib: &Library) -> Result<SyncStatusView, IpcError> {
    let status = link::status_of(lib)?;
    let link = config::load_link(lib.area())?;
    let in_keychain = link.as_ref().is_some_and(|l| l.credential.is_some())
        && std::env::var_os("BPV_SYNC_ACCESS_KEY_ID").is_none()
        && std::env::var_os("AWS_ACCESS_KEY_ID").is_none();
    let (region, path_style) = link.map(|l| (l.region, l.path_style)).unwrap_or_else(|| (String::new(), true));
    Ok(SyncStatusView::of(status, region, path_style, in_keychain, slot(app).is_running()))
}

/// Send the `sync-status` event (the Team view and the status bar refresh from it).
pub fn emit_status(app: &AppHandle, lib: &Library) {
    match status(app, lib) {
        Ok(view) => {
            if let Err(e) = app.emit(SYNC_STATUS, view) {
                tracing::warn!("cannot emit {SYNC_STATUS}: {e}");
            }
        }
        Err(e) => tracing::warn!(code = %e.code, "cannot read the sync status: {}", e.message),
    }
}

/// Check a team library answers and accepts the keys; links nothing. Blocking.
pub fn test(args: &SyncLinkArgs) -> Result<(), IpcError> {
    Ok(link::test_connection(&request_of(args), &creds_of(args))?)
}

/// Link the open library (keys into the OS keychain when a store works), then start the
/// periodic sync. Blocking.
pub fn link_open_library(app: &AppHandle, lib: &Library, args: &SyncLinkArgs) -> Result<SyncStatusView, IpcError> {
    link::link_library(lib, &request_of(args), LinkKeys::Keychain(creds_of(args)))?;
    tracing::info!(bucket = %args.bucket, prefix = %args.prefix, "library linked to a team library");
    start_timer(app);
    emit_status(app, lib);
    status(app, lib)
}

/// Stop syncing and forget the link (the files and the team library stay). Blocking.
pub fn unlink_open_library(app: &AppHandle, lib: &Library) -> Result<SyncStatusView, IpcError> {
    slot(app).stop();
    // A sync that was just cancelled must finish before its state folder goes.
    let _running = slot(app).begin_waiting(Arc::new(AtomicBool::new(false)))?;
    link::unlink_library(lib)?;
    drop(_running);
    tracing::info!("library unlinked from its team library");
    emit_status(app, lib);
    status(app, lib)
}

/// One sync now, with `sync-progress` events; `sync_cancel` stops it. `wait`: when one is
/// already running, wait for it and then sync (the button); else skip (the timer).
/// Blocking.
pub fn run(app: &AppHandle, lib: &Library, wait: bool) -> Result<Option<SyncDone>, IpcError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let running = if wait {
        slot(app).begin_waiting(cancel.clone())?
    } else {
        match slot(app).begin(cancel.clone()) {
            Some(r) => r,
            None => return Ok(None),
        }
    };
    let result = sync_once(app, lib, cancel);
    drop(running);
    if let Ok(r) = &result
        && (r.applied > 0 || !r.conflicts.is_empty())
    {
        let event = LibraryEvent { kind: LibraryEventKind::Changed, paths: Vec::new() };
        if let Err(e) = app.emit(LIBRARY_CHANGED, event) {
            tracing::warn!("cannot emit {LIBRARY_CHANGED}: {e}");
        }
    }
    emit_status(app, lib);
    match result {
        Ok(r) => {
            tracing::info!(sent = r.sent, received = r.received, applied = r.applied, millis = r.millis, "synced");
            Ok(Some(r.into()))
        }
        Err(e) => Err(e.into()),
    }
}

fn sync_once(app: &AppHandle, lib: &Library, cancel: Arc<AtomicBool>) -> Result<bpv_sync::SyncReport, SyncError> {
    let mut syncer = Syncer::open(lib)?;
    syncer.set_cancel(cancel);
    syncer.set_progress(progress(app));
    syncer.sync(lib)
}

/// Check every blueprint is in the team library and here, byte for byte. Blocking.
pub fn verify(app: &AppHandle, lib: &Library) -> Result<u64, IpcError> {
    let _running = slot(app).begin_waiting(Arc::new(AtomicBool::new(false)))?;
    let mut syncer = Syncer::open(lib)?;
    syncer.set_progress(progress(app));
    Ok(syncer.verify(lib)? as u64)
}

fn progress(app: &AppHandle) -> Box<bpv_sync::sync::ProgressFn> {
    let app = app.clone();
    let last = Mutex::new(None::<Instant>);
    Box::new(move |phase, done, total| {
        if let Ok(mut last) = last.lock() {
            if done < total && last.is_some_and(|l| l.elapsed() < PROGRESS_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let event = SyncProgress { phase: phase.to_owned(), done: done as u64, total: total as u64 };
        if let Err(e) = app.emit(SYNC_PROGRESS, event) {
            tracing::warn!("cannot emit {SYNC_PROGRESS}: {e}");
        }
    })
}

/// Start the periodic sync of the open library if it is linked (and not already running
/// for it). Called after a library opens and after linking.
pub fn start_timer(app: &AppHandle) {
    let Some(opened) = app.state::<AppState>().current_opt() else { return };
    if !bpv_sync::sync::is_linked(opened.lib.area()).unwrap_or(false) {
        return;
    }
    let root = opened.lib.root().to_path_buf();
    drop(opened);
    let signal = Arc::new(Signal::default());
    {
        let Ok(mut timer) = slot(app).timer.lock() else { return };
        if timer.as_ref().is_some_and(|t| t.root == root) {
            return;
        }
        if let Some(old) = timer.take() {
            old.signal.stop();
        }
        *timer = Some(Timer { root: root.clone(), signal: signal.clone() });
    }
    let app = app.clone();
    let spawned = std::thread::Builder::new().name("team-sync".into()).spawn(move || timer_loop(&app, &root, &signal));
    if let Err(e) = spawned {
        tracing::warn!("cannot start the periodic sync: {e}");
    }
}

fn timer_loop(app: &AppHandle, root: &std::path::Path, signal: &Signal) {
    tracing::info!(library = %root.display(), "periodic sync started");
    let mut deadline = Instant::now() + FIRST_SYNC_AFTER;
    loop {
        {
            let Ok(mut wake) = signal.wake.lock() else { return };
            loop {
                if wake.stop {
                    tracing::info!(library = %root.display(), "periodic sync stopped");
                    return;
                }
                let due = wake.poked_at.map_or(deadline, |p| deadline.min(p + DEBOUNCE));
                let now = Instant::now();
                if now >= due {
                    break;
                }
                wake = match signal.cv.wait_timeout(wake, due - now) {
                    Ok((w, _)) => w,
                    Err(_) => return,
                };
            }
            wake.poked_at = None;
        }
        let Some(opened) = app.state::<AppState>().current_opt().filter(|o| o.lib.root() == root) else { return };
        if let Err(e) = run(app, &opened.lib, false) {
            tracing::warn!(code = %e.code, "periodic sync failed: {}", e.message);
        }
        if let Ok(mut wake) = signal.wake.lock() {
            wake.quiet_until = Some(Instant::now() + QUIET_AFTER_SYNC);
            wake.poked_at = None;
        }
        let secs = status(app, &opened.lib).map(|s| s.next_sync_in_secs).unwrap_or(30).max(1);
        drop(opened);
        deadline = Instant::now() + jittered(Duration::from_secs(secs));
    }
}

/// ±20 %, so devices that failed together do not retry together.
fn jittered(d: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    d.mul_f64(0.8 + 0.4 * f64::from(nanos % 1000) / 1000.0)
}
