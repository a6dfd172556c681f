//! Per-library sync state in the private area (`<area>/sync/`): `state.json` (cursors
//! into every device's log, what is known, what the local files were at the last
//! sync, the queue of batches not yet sent) and `pending/<seq>.blobs` (the contents
//! a queued batch needs, captured when the change was recorded, so a later edit of
//! the file cannot change what is sent). Written atomically through `fsio`, so
//! queued changes survive a crash or restart.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bpv_engine::fsio;
use serde::{Deserialize, Serialize};

use crate::error::{Result, SyncError};
use crate::model::{Known, LogBatch};
use crate::validate::Refused;

const STATE_FILE: &str = "state.json";
const PENDING_DIR: &str = "pending";

/// A local blueprint as it was on disk after the last sync (or last recorded change).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseEntry {
    pub path: String,
    pub yaml: String,
    pub meta: Option<String>,
    /// The changes this local state corresponds to: the parents of the next local change.
    pub heads: Vec<String>,
    /// The change that introduced this content (see `model::Change::origin`).
    #[serde(default)]
    pub origin: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncState {
    pub device: String,
    /// The next sequence number of this device's log.
    pub next_seq: u64,
    /// Per other device: the last log sequence read (every one before it read too).
    pub cursors: BTreeMap<String, u64>,
    /// Whether the team library was read once (later reads skip the snapshot listing
    /// unless a log has a gap).
    pub bootstrapped: bool,
    pub known: Known,
    pub base: BTreeMap<String, BaseEntry>,
    /// Batches recorded but not yet in the team library, oldest first.
    pub pending: Vec<LogBatch>,
    /// The highest own log sequence covered by our latest snapshot.
    pub compacted_to: u64,
    pub last_sync: Option<String>,
    pub last_error: Option<String>,
    /// Failed syncs in a row (drives the periodic sync's backoff).
    pub failures: u32,
    /// Entries of the team library refused as unsafe or malformed, oldest first (at most
    /// [`MAX_REFUSED`]); the ones marked `retry` are dropped at the start of each sync and
    /// found again if still there.
    #[serde(default)]
    pub refused: Vec<Refused>,
}

/// Refused entries kept for the status (the newest).
pub const MAX_REFUSED: usize = 200;

impl SyncState {
    /// Remember a refused entry once (the same object, path and reason again is not new).
    pub fn note_refused(&mut self, r: &Refused) {
        self.refused.retain(|o| !(o.object == r.object && o.path == r.path && o.reason == r.reason));
        self.refused.push(r.clone());
        let extra = self.refused.len().saturating_sub(MAX_REFUSED);
        self.refused.drain(..extra);
    }
}

pub fn load(dir: &Path, device: &str) -> Result<SyncState> {
    let path = dir.join(STATE_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let state: SyncState = serde_json::from_slice(&bytes).map_err(|e| {
                bpv_engine::Error::Corrupt(format!("{}: {e} (unlink and link the library again)", path.display()))
            })?;
            if state.device != device {
                return Err(SyncError::Config(format!(
                    "{} belongs to device {}, not {device}: unlink and link again",
                    path.display(),
                    state.device
                )));
            }
            Ok(state)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(SyncState { device: device.to_owned(), next_seq: 1, ..SyncState::default() })
        }
        Err(e) => Err(bpv_engine::Error::io("cannot read", &path, e).into()),
    }
}

pub fn save(dir: &Path, state: &SyncState) -> Result<()> {
    let body = serde_json::to_vec(state).map_err(|e| bpv_engine::Error::Corrupt(e.to_string()))?;
    fsio::write_atomic(&dir.join(STATE_FILE), &body)?;
    Ok(())
}

fn pack_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(PENDING_DIR).join(format!("{seq:012}.blobs"))
}

/// Store the contents a queued batch needs: `HASH LEN\n` then the bytes, per blob.
pub fn write_pack(dir: &Path, seq: u64, blobs: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let mut body = Vec::with_capacity(blobs.values().map(|b| b.len() + 80).sum());
    for (hash, bytes) in blobs {
        body.extend_from_slice(format!("{hash} {}\n", bytes.len()).as_bytes());
        body.extend_from_slice(bytes);
    }
    fsio::write_atomic(&pack_path(dir, seq), &body)?;
    Ok(())
}

pub fn read_pack(dir: &Path, seq: u64) -> Result<BTreeMap<String, Vec<u8>>> {
    let path = pack_path(dir, seq);
    let body = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(bpv_engine::Error::io("cannot read", &path, e).into()),
    };
    let corrupt = || bpv_engine::Error::Corrupt(format!("{} is damaged", path.display()));
    let mut out = BTreeMap::new();
    let mut rest = body.as_slice();
    while !rest.is_empty() {
        let nl = rest.iter().position(|b| *b == b'\n').ok_or_else(corrupt)?;
        let header = std::str::from_utf8(&rest[..nl]).map_err(|_| corrupt())?;
        let (hash, len) = header.split_once(' ').ok_or_else(corrupt)?;
        let len: usize = len.parse().map_err(|_| corrupt())?;
        let start = nl + 1;
        let bytes = rest.get(start..start + len).ok_or_else(corrupt)?;
        out.insert(hash.to_owned(), bytes.to_vec());
        rest = &rest[start + len..];
    }
    Ok(out)
}

pub fn remove_pack(dir: &Path, seq: u64) {
    let _ = fs::remove_file(pack_path(dir, seq));
}
