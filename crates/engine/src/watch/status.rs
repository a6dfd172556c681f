//! The watcher's state file (`<area>/watcher.json`), and telling network/FUSE
//! filesystems apart (where kernel notifications do not see other machines' changes).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{WatchMode, WatcherState};
use crate::error::Result;
use crate::fsio;

pub const STATUS_FILE: &str = "watcher.json";
/// A heartbeat older than this means the watcher is gone (it beats every 10 s).
const STALE_SECS: i64 = 45;

/// What `bpv info` (and the app's status bar) says about watching this library.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatcherStatus {
    /// `watching`, `polling`, `degraded`, or `not running`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub advice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub started: Option<String>,
    /// RFC 3339: when the running watcher last confirmed it is alive.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub heartbeat: Option<String>,
}

impl WatcherStatus {
    pub fn not_running() -> WatcherStatus {
        WatcherStatus {
            state: "not running".into(),
            pid: None,
            reason: None,
            advice: None,
            started: None,
            heartbeat: None,
        }
    }
}

fn mode_name(m: WatchMode) -> &'static str {
    match m {
        WatchMode::Watching => "watching",
        WatchMode::Polling => "polling",
        WatchMode::Degraded => "degraded",
        WatchMode::Stopped => "not running",
    }
}

pub(super) fn write(area: &Path, state: &WatcherState, started: &str) -> Result<()> {
    let status = WatcherStatus {
        state: mode_name(state.mode).into(),
        pid: Some(std::process::id()),
        reason: state.reason.clone(),
        advice: state.advice.clone(),
        started: Some(started.to_owned()),
        heartbeat: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    };
    let body = serde_json::to_vec_pretty(&status).map_err(|e| crate::Error::Corrupt(e.to_string()))?;
    fsio::write_atomic(&area.join(STATUS_FILE), &body)
}

/// Remove the state file if it is ours (another process may have taken over).
pub(super) fn remove(area: &Path) {
    let path = area.join(STATUS_FILE);
    let ours = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<WatcherStatus>(&b).ok())
        .is_some_and(|s| s.pid == Some(std::process::id()));
    if ours {
        let _ = fsio::remove_durable(&path);
    }
}

/// The state of the watcher running on the library whose private area is `area`:
/// `not running` unless the state file names a live process with a fresh heartbeat.
pub fn read_status(area: &Path) -> WatcherStatus {
    let Ok(bytes) = std::fs::read(area.join(STATUS_FILE)) else { return WatcherStatus::not_running() };
    let Ok(status) = serde_json::from_slice::<WatcherStatus>(&bytes) else { return WatcherStatus::not_running() };
    let alive = status.pid.is_some_and(process_alive);
    let fresh = status
        .heartbeat
        .as_deref()
        .and_then(|h| chrono::DateTime::parse_from_rfc3339(h).ok())
        .is_some_and(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds() < STALE_SECS);
    if alive && fresh { status } else { WatcherStatus::not_running() }
}

fn process_alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(fsio::process_alive)
}

/// The kind of network or FUSE filesystem `path` is on, if it is one.
#[cfg(target_os = "linux")]
pub fn remote_filesystem(path: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-buffer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)]
    let magic = (st.f_type as i64 as u64 & 0xffff_ffff) as u32;
    fs_kind(magic)
}

#[cfg(not(target_os = "linux"))]
pub fn remote_filesystem(_path: &Path) -> Option<&'static str> {
    None
}

/// Filesystem magic numbers (statfs `f_type`) where inotify misses remote changes.
pub fn fs_kind(magic: u32) -> Option<&'static str> {
    Some(match magic {
        0x6969 => "NFS",
        0x517B => "SMB",
        0xFF53_4D42 => "CIFS/SMB",
        0xFE53_4D42 => "SMB2",
        0x6573_5546 => "FUSE",
        0x0102_1997 => "9P",
        0x00C3_6400 => "Ceph",
        0x7375_7245 => "Coda",
        0x5346_414F => "AFS",
        0x6B41_4653 => "AFS",
        0x0BD0_0BD0 => "Lustre",
        0x4750_4653 => "GPFS",
        0x1373 => "devfs",
        _ => return None,
    })
}
