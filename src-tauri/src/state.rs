//! The app's state: which library is open, and the lock that keeps one running app per
//! library. Opening is the engine's job (`Library::open`); this only chooses the folder
//! and remembers the choice.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bpv_engine::library::{Library, OpenOptions};
use bpv_engine::paths;
use bpv_engine::watch::{WatchNotice, WatchOptions, Watcher};

use crate::dto::{IpcError, LibraryState};

/// An open library, its folder watcher, and the lock file that marks it as in use by
/// this process.
pub struct Opened {
    pub lib: Arc<Library>,
    pub open_millis: u64,
    /// Keeps the index up to date with outside edits and reports them (None if it could
    /// not start: then the UI refreshes when the window gets focus).
    pub watcher: Option<Watcher>,
    _lock: File,
}

pub struct AppState {
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    current: RwLock<Option<Arc<Opened>>>,
    /// Serialises opens (the first-start open and a settings change can race).
    opening: Mutex<()>,
    /// The open library's team-library sync: periodic timer and running sync.
    pub sync: crate::sync::SyncSlot,
}

const SETTINGS_FILE: &str = "app-settings.json";
const APP_LOCK: &str = "app.lock";

impl AppState {
    pub fn new(data_dir: PathBuf, log_dir: PathBuf) -> Self {
        AppState {
            data_dir,
            log_dir,
            current: RwLock::new(None),
            opening: Mutex::new(()),
            sync: crate::sync::SyncSlot::default(),
        }
    }

    /// The open library, or `no_library`.
    pub fn current(&self) -> Result<Arc<Opened>, IpcError> {
        self.current
            .read()
            .map_err(IpcError::internal)?
            .clone()
            .ok_or_else(|| IpcError::new("no_library", "no library is open yet: choose one in Settings"))
    }

    /// Close the open library (for a restore that swaps its folder): its watcher stops and
    /// its app lock is released as soon as no command is using it any more.
    pub fn close(&self) -> Result<(), IpcError> {
        let _opening = self.opening.lock().map_err(IpcError::internal)?;
        self.sync.stop();
        self.current.write().map_err(IpcError::internal)?.take();
        Ok(())
    }

    pub fn current_opt(&self) -> Option<Arc<Opened>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// The library to open at start: `$BPV_LIBRARY`, else the last one opened, else the
    /// default (`<Documents>/Blueprint Vault`).
    pub fn startup_library(&self) -> Result<PathBuf, IpcError> {
        if let Some(dir) = std::env::var_os("BPV_LIBRARY").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        if let Some(dir) = self.remembered() {
            return Ok(dir);
        }
        paths::default_library_dir()
            .ok_or_else(|| IpcError::new("no_library", "no home folder to put the default library in: choose one"))
    }

    fn remembered(&self) -> Option<PathBuf> {
        let bytes = std::fs::read(self.data_dir.join(SETTINGS_FILE)).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        v.get("library")?.as_str().filter(|s| !s.is_empty()).map(PathBuf::from)
    }

    fn remember(&self, root: &Path) {
        let body = serde_json::json!({ "library": root.to_string_lossy() }).to_string();
        if let Err(e) = bpv_engine::fsio::ensure_dir(&self.data_dir)
            .and_then(|()| bpv_engine::fsio::write_atomic(&self.data_dir.join(SETTINGS_FILE), body.as_bytes()))
        {
            tracing::warn!("cannot remember the library choice: {e}");
        }
    }

    /// Open (creating its folders if needed) the library at `root`, start watching it
    /// (`notify` receives what the watcher reports), and make it current.
    /// Blocking: call from a blocking thread.
    pub fn open(&self, root: &Path, notify: impl Fn(WatchNotice) + Send + 'static) -> Result<Arc<Opened>, IpcError> {
        let _opening = self.opening.lock().map_err(IpcError::internal)?;
        if let Some(cur) = self.current_opt()
            && std::fs::canonicalize(root).ok().as_deref() == Some(cur.lib.root())
        {
            return Ok(cur);
        }
        // Another library: the current one's periodic sync stops with it.
        self.sync.stop();
        let start = Instant::now();
        // No reconcile here: the watcher started below catches up with outside changes in
        // its first rescan and reports them, so the first page shows from the index at once
        // (a full walk is most of an open at 100k). Without a watcher we reconcile below.
        let lib = Library::open(OpenOptions {
            root: root.to_path_buf(),
            data_dir: Some(self.data_dir.clone()),
            create: true,
            reconcile: false,
        })?;
        let lock_path = lib.area().join(APP_LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| bpv_engine::Error::io("cannot open", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(IpcError::new(
                    "library_in_use",
                    format!(
                        "{} is already open in another Blueprint Vault window: switch to that window, or choose another library",
                        lib.root().display()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(bpv_engine::Error::io("cannot lock", &lock_path, e).into()),
        }
        let lib = Arc::new(lib);
        let open_millis = start.elapsed().as_millis() as u64;
        let watcher = match Watcher::start(lib.clone(), WatchOptions::default(), notify) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("cannot watch the library folder: {e}");
                lib.reconcile()?;
                None
            }
        };
        // The previous library (if any) stops being watched when its last user drops it.
        let opened = Arc::new(Opened { lib, open_millis, watcher, _lock: lock });
        tracing::info!(library = %opened.lib.root().display(), millis = opened.open_millis, "library opened");
        self.remember(opened.lib.root());
        *self.current.write().map_err(IpcError::internal)? = Some(opened.clone());
        Ok(opened)
    }

    /// The status of an open library. Blocking.
    pub fn describe(&self, opened: &Opened) -> Result<LibraryState, IpcError> {
        let lib = &opened.lib;
        let root = lib.root();
        Ok(LibraryState {
            path: root.to_string_lossy().into_owned(),
            name: root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            data_dir: lib.area().to_string_lossy().into_owned(),
            log_dir: self.log_dir.to_string_lossy().into_owned(),
            stats: lib.index().stats()?,
            trash: lib.trash_list()?.len() as u64,
            open_millis: opened.open_millis,
            watch: opened.watcher.as_ref().map(|w| mode_name(w.state().mode)).unwrap_or("off").to_owned(),
        })
    }
}

fn mode_name(mode: bpv_engine::watch::WatchMode) -> &'static str {
    use bpv_engine::watch::WatchMode;
    match mode {
        WatchMode::Watching => "watching",
        WatchMode::Polling => "polling",
        WatchMode::Degraded => "degraded",
        WatchMode::Stopped => "stopped",
    }
}
