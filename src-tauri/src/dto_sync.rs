//! What crosses IPC for team libraries (issue 9): bpv-sync's status and report mirrored
//! as ts-rs shapes (bpv-sync stays free of ts-rs), the link form, and the two window
//! events of sync (`sync-progress` while one runs, `sync-status` after each).

use bpv_sync::{SyncError, SyncReport, SyncStatus};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::dto::IpcError;

impl From<SyncError> for IpcError {
    fn from(e: SyncError) -> Self {
        IpcError { code: e.code().to_owned(), message: e.to_string() }
    }
}

/// The link form (and "Test connection"): where the team library is and the keys.
#[derive(Clone, Debug, Deserialize, TS)]
pub struct SyncLinkArgs {
    /// S3 endpoints, http(s)://host:port; several nodes of one cluster are tried in turn.
    pub endpoints: Vec<String>,
    pub bucket: String,
    pub prefix: String,
    /// The store's region (Garage: its `s3_region`); empty for `us-east-1`.
    pub region: String,
    /// Path-style requests (Garage, MinIO, Ceph); false for AWS S3's virtual-hosted style.
    pub path_style: bool,
    /// Shown in conflict copies' names; null for the host name.
    pub device_name: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Seconds between periodic syncs while the app runs; null for 30.
    pub interval_secs: Option<u32>,
}

/// One blueprint that is not simply synced.
#[derive(Clone, Debug, Serialize, TS)]
pub struct SyncItemState {
    pub path: String,
    /// `pending` (changed here, not sent yet), `conflict` (a copy kept from a concurrent
    /// edit) or `error` (pending, and the last sync failed: `reason` says why).
    pub state: String,
    pub reason: Option<String>,
    /// For a conflict copy: the blueprint it was split from (open both to compare).
    pub original: Option<String>,
}

/// An entry of the team library refused as unsafe or malformed (a path out of the library,
/// a forged content, a malformed log…): never written; the device it came from is named.
#[derive(Clone, Debug, Serialize, TS)]
pub struct SyncRefused {
    /// The device id it came from.
    pub device: String,
    /// The object in the team library (empty when refused while writing a file).
    pub object: String,
    /// The path it named, with control characters escaped.
    pub path: Option<String>,
    pub reason: String,
    /// Checked again at every sync (it may clear itself).
    pub retry: bool,
}

impl From<bpv_sync::Refused> for SyncRefused {
    fn from(r: bpv_sync::Refused) -> Self {
        SyncRefused { device: r.device, object: r.object, path: r.path, reason: r.reason, retry: r.retry }
    }
}

/// The team library link of the open library and its state.
#[derive(Clone, Debug, Serialize, TS)]
pub struct SyncStatusView {
    pub linked: bool,
    pub endpoints: Vec<String>,
    pub bucket: String,
    pub prefix: String,
    pub region: String,
    pub path_style: bool,
    pub device_name: String,
    /// The keys are in the OS keychain (else the library's owner-only file, or the
    /// environment).
    pub keys_in_keychain: bool,
    pub last_sync: Option<String>,
    /// Why the last sync failed (cleared by a successful one).
    pub last_error: Option<String>,
    /// `unlinked`, `synced`, `pending`, `conflict`, `error` or `offline` (the store could
    /// not be reached).
    pub state: String,
    pub pending_changes: u64,
    pub synced: u64,
    pub items: Vec<SyncItemState>,
    /// Entries of the team library refused (never written), oldest first.
    pub refused: Vec<SyncRefused>,
    /// Seconds between periodic syncs now (longer after failures).
    pub next_sync_in_secs: u64,
    /// A sync is running now.
    pub running: bool,
}

impl SyncStatusView {
    pub fn of(s: SyncStatus, region: String, path_style: bool, keys_in_keychain: bool, running: bool) -> Self {
        let failed = s.last_error.clone();
        let items = s
            .items
            .into_iter()
            .map(|i| {
                let original = (i.state == "conflict").then(|| conflict_original(&i.path)).flatten();
                match (&failed, i.state.as_str()) {
                    (Some(e), "pending") => SyncItemState {
                        reason: Some(match i.reason {
                            Some(r) => format!("{r}; not sent: {e}"),
                            None => format!("not sent: {e}"),
                        }),
                        path: i.path,
                        state: "error".into(),
                        original,
                    },
                    _ => SyncItemState { path: i.path, state: i.state, reason: i.reason, original },
                }
            })
            .collect();
        let offline = failed.as_deref().is_some_and(|e| e.starts_with("team library unreachable"));
        SyncStatusView {
            linked: s.linked,
            endpoints: s.endpoints,
            bucket: s.bucket,
            prefix: s.prefix,
            region,
            path_style,
            device_name: s.device_name,
            keys_in_keychain,
            last_sync: s.last_sync,
            last_error: s.last_error,
            state: if offline { "offline".into() } else { s.state },
            pending_changes: s.pending_changes as u64,
            synced: s.synced as u64,
            items,
            refused: s.refused.into_iter().map(SyncRefused::from).collect(),
            next_sync_in_secs: s.next_sync_in_secs,
            running,
        }
    }
}

/// `Blueprints/a (conflict laptop).blueprint.yaml` → `Blueprints/a.blueprint.yaml`.
fn conflict_original(path: &str) -> Option<String> {
    let start = path.rfind(" (conflict ")?;
    let end = start + path[start..].find(')')?;
    Some(format!("{}{}", &path[..start], &path[end + 1..]))
}

/// What one sync did.
#[derive(Clone, Debug, Serialize, TS)]
pub struct SyncDone {
    /// Local changes recorded and sent.
    pub recorded: u64,
    pub sent: u64,
    /// Changes received from other devices, and local files updated to match.
    pub received: u64,
    pub applied: u64,
    /// Conflict copies this sync made (paths).
    pub conflicts: Vec<String>,
    /// Local files not updated because they changed during the sync (next sync).
    pub deferred: Vec<String>,
    /// Entries of the team library this sync refused (never written).
    pub errors: Vec<SyncRefused>,
    pub requests: u64,
    pub millis: u64,
}

impl From<SyncReport> for SyncDone {
    fn from(r: SyncReport) -> Self {
        SyncDone {
            recorded: r.recorded as u64,
            sent: r.sent as u64,
            received: r.received as u64,
            applied: r.applied as u64,
            conflicts: r.conflicts,
            deferred: r.deferred,
            errors: r.errors.into_iter().map(SyncRefused::from).collect(),
            requests: r.requests,
            millis: r.millis,
        }
    }
}

/// Emitted as the `sync-progress` window event while a sync or verification runs.
#[derive(Clone, Debug, Serialize, TS)]
pub struct SyncProgress {
    /// `upload`, `send`, `receive`, `download`, `verify`, …
    pub phase: String,
    pub done: u64,
    pub total: u64,
}

pub const SYNC_PROGRESS: &str = "sync-progress";
/// Emitted after every sync (the button's or the timer's), link and unlink, with a
/// [`SyncStatusView`]: the Team view and the status bar refresh from it.
pub const SYNC_STATUS: &str = "sync-status";

/// "Copy this library to another backend": where to (a folder path, `file:///DIR` or
/// `s3://BUCKET[/PREFIX]`), and for a bucket how to reach it. The keys are used for this
/// call only (empty: the environment's `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`).
#[derive(Clone, Debug, Deserialize, TS)]
pub struct MigrateArgs {
    pub target: String,
    /// For a bucket: S3 endpoints, http(s)://host:port (several nodes of one cluster).
    pub endpoints: Vec<String>,
    /// Empty for `us-east-1`.
    pub region: String,
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Back the library up (to its backup folder) before copying.
    pub backup_first: bool,
    /// Only check: what would be copied, or why the target is refused; writes nothing.
    pub dry_run: bool,
}

/// What a migration (or its check) found and did.
#[derive(Clone, Debug, Serialize, TS)]
pub struct MigrateDone {
    /// `file:///DIR` or `s3://BUCKET[/PREFIX]`.
    pub target: String,
    pub blueprints: u64,
    /// Blueprints that do not parse (copied as they are).
    pub invalid: u64,
    /// An earlier, interrupted attempt of this migration was found and continued.
    pub resumed: bool,
    /// Files (folder) or changes (bucket) written by this run.
    pub copied: u64,
    /// Files already in place from an earlier attempt (folder).
    pub skipped: u64,
    pub bytes: u64,
    /// Blueprints checked byte for byte at the end (0 for a check).
    pub verified: u64,
    pub dry_run: bool,
    /// The snapshot taken first, when asked.
    pub backup: Option<String>,
    pub millis: u64,
}

impl MigrateDone {
    pub fn of(r: bpv_sync::migrate::MigrateToReport, backup: Option<String>) -> Self {
        MigrateDone {
            target: r.target,
            blueprints: r.blueprints as u64,
            invalid: r.invalid as u64,
            resumed: r.resumed,
            copied: r.copied as u64,
            skipped: r.skipped as u64,
            bytes: r.bytes,
            verified: r.verified as u64,
            dry_run: r.dry_run,
            backup,
            millis: r.millis,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conflict_copies_name_their_original() {
        assert_eq!(
            super::conflict_original("Blueprints/a (conflict laptop).blueprint.yaml").as_deref(),
            Some("Blueprints/a.blueprint.yaml")
        );
        assert_eq!(super::conflict_original("Blueprints/a.blueprint.yaml"), None);
    }
}
