//! Garbage collection of a team library: content blobs no change still names, log
//! objects a snapshot of their own device covers, and devices' older snapshots.
//!
//! Safe without compare-and-swap and with devices that are behind or offline:
//! - *referenced* is everything any present log object names (every change, not only
//!   heads), every head of every present snapshot, and what this device's own queued
//!   batches name; logs are read before snapshots, so content whose log is compacted
//!   away meanwhile is in the snapshot written before that log was deleted;
//! - an object is only deleted when it has been unreferenced for a grace period: each
//!   device records when it first saw a candidate unreferenced in its own object
//!   (`gc/<device>.json`, written only by that device), and the store's modification
//!   time must be older than the grace period too (a device that pushes a content
//!   again rewrites the blob, which renews it);
//! - every device's newest snapshot and newest log object stay, and a log is only
//!   deleted when both its own device's newest snapshot and the newest snapshot of all
//!   (the one a device that is behind reads) cover it;
//! - a device that comes back after a long time re-sends the content of every change
//!   it queued (edits and moves alike), so what its changes name exists again.
//!
//! Anything else under the prefix (`devices/`, `gc/`, the storage contract's `kv/`, …)
//! is never touched. A run that sees the team library change under it (an object
//! listed and then gone) deletes nothing and says to try again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use bpv_engine::fsio;
use bpv_engine::library::Library;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::config;
use crate::error::{Result, SyncError};
use crate::model::Change;
use crate::remote::{Limited, ObjectInfo, Remote};
use crate::state;
use crate::sync::{Snapshot, Syncer};
use crate::validate::{self, Checked, Refused};

/// Default grace period: an object must stay unreferenced this long before it goes.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

const GC_FORMAT: u32 = 1;

#[derive(Clone, Debug)]
pub struct GcOptions {
    /// How long an object must have been unreferenced (and unwritten) before it is deleted.
    pub grace: Duration,
    /// Report what would be deleted; write and delete nothing.
    pub dry_run: bool,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions { grace: DEFAULT_GRACE, dry_run: false }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GcReport {
    /// Objects seen: content blobs, log objects, snapshots.
    pub blobs: usize,
    pub logs: usize,
    pub snapshots: usize,
    /// Objects that are garbage now (deleted, or waiting for their grace period).
    pub unreferenced: usize,
    /// Unreferenced objects kept until their grace period has passed.
    pub waiting: usize,
    /// Deleted by this run (with `dry_run`: would be deleted).
    pub deleted_blobs: usize,
    pub deleted_logs: usize,
    pub deleted_snapshots: usize,
    pub freed_bytes: u64,
    pub dry_run: bool,
    /// Objects refused as unsafe or malformed (`validate`): they name no content, as for
    /// every device's sync, which never uses them.
    pub errors: Vec<Refused>,
    pub requests: u64,
    pub millis: u64,
}

/// This device's record of candidates: object key → when it was first seen unreferenced
/// (ms since the epoch, this device's clock).
#[derive(Debug, Default, Serialize, Deserialize)]
struct GcRecord {
    format: u32,
    device: String,
    time: i64,
    candidates: BTreeMap<String, i64>,
}

fn record_key(device: &str) -> String {
    format!("gc/{device}.json")
}

/// The team library's objects relevant to collection, as listed.
struct Listing {
    blobs: Vec<ObjectInfo>,
    logs: Vec<ObjectInfo>,
    snapshots: Vec<ObjectInfo>,
}

/// `logs/<device>/<seq>.json` → (device, seq), for keys `validate` accepts.
fn parse_log_key(key: &str) -> Option<(String, u64)> {
    validate::log_key(key)?.ok()
}

/// `snapshots/<time>-<device>.json` → device, for keys `validate` accepts.
fn parse_snapshot_key(key: &str) -> Option<String> {
    validate::snapshot_key(key).ok()
}

/// `blobs/<xx>/<hash>` → hash.
fn parse_blob_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("blobs/")?;
    let (_, hash) = rest.split_once('/')?;
    (!hash.is_empty() && !hash.contains('/')).then_some(hash)
}

fn name_contents(change: &Change, into: &mut BTreeSet<String>) {
    into.extend(change.yaml.iter().cloned());
    into.extend(change.meta.iter().cloned());
}

/// Collect the garbage of the team library `syncer` is linked to. Holds the library's
/// sync lock (no sync of this library runs meanwhile); other devices may sync freely.
pub fn collect_garbage(syncer: &Syncer, lib: &Library, options: &GcOptions) -> Result<GcReport> {
    let dir = config::sync_dir(lib.area());
    fsio::ensure_dir(&dir)?;
    let _lock = fsio::lock_exclusive(&dir.join("sync.lock"))?;
    let device = syncer.link().device_id.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| bpv_engine::Error::Io { context: "starting the gc runtime".into(), source: e })?;
    runtime.block_on(collect(syncer.remote(), &device, &dir, options))
}

/// The collection itself, over any remote (tests use an in-memory one). `sync_dir`
/// holds this device's sync state (its queued batches are protected).
pub async fn collect(remote: &Remote, device: &str, sync_dir: &Path, options: &GcOptions) -> Result<GcReport> {
    let start = Instant::now();
    let requests = remote.requests();
    let mut report = GcReport { dry_run: options.dry_run, ..GcReport::default() };
    let st = state::load(sync_dir, device)?;
    let mut protected: BTreeSet<String> = BTreeSet::new();
    for batch in &st.pending {
        batch.changes.iter().for_each(|c| name_contents(c, &mut protected));
        protected.extend(state::read_pack(sync_dir, batch.seq)?.into_keys());
    }

    let (listing, referenced, snapshot_info, refused) = read_team_library(remote).await?;
    report.errors = refused;
    report.blobs = listing.blobs.len();
    report.logs = listing.logs.len();
    report.snapshots = listing.snapshots.len();

    // What is garbage now.
    let mut garbage: Vec<&ObjectInfo> = Vec::new();
    for blob in &listing.blobs {
        match parse_blob_key(&blob.key) {
            Some(hash) if !referenced.contains(hash) && !protected.contains(hash) => garbage.push(blob),
            _ => {}
        }
    }
    let newest_overall = snapshot_info.newest_overall.as_ref();
    let mut newest_log: BTreeMap<String, u64> = BTreeMap::new();
    for (d, seq) in listing.logs.iter().filter_map(|l| parse_log_key(&l.key)) {
        let newest = newest_log.entry(d).or_insert(0);
        *newest = (*newest).max(seq);
    }
    for log in &listing.logs {
        let Some((d, seq)) = parse_log_key(&log.key) else { continue };
        let own_cover = snapshot_info.newest_by_device.get(&d).and_then(|s| s.cursors.get(&d)).copied().unwrap_or(0);
        let overall_cover = newest_overall.and_then(|s| s.cursors.get(&d)).copied().unwrap_or(0);
        let newest = newest_log.get(d.as_str()).copied().unwrap_or(0);
        if seq < own_cover && seq <= overall_cover && seq != newest {
            garbage.push(log);
        }
    }
    for snap in &listing.snapshots {
        let Some(d) = parse_snapshot_key(&snap.key) else { continue };
        if snapshot_info.newest_key_by_device.get(&d) != Some(&snap.key) {
            garbage.push(snap);
        }
    }
    report.unreferenced = garbage.len();

    // Old enough to go: unreferenced since at least `grace` by our own record, and not
    // written within `grace` by the store's clock.
    let previous = read_record(remote, device).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let grace_ms = i64::try_from(options.grace.as_millis()).unwrap_or(i64::MAX);
    let mut record = GcRecord { format: GC_FORMAT, device: device.to_owned(), time: now, candidates: BTreeMap::new() };
    let mut doomed: Vec<&ObjectInfo> = Vec::new();
    for object in garbage {
        let first_seen = previous.candidates.get(&object.key).copied().unwrap_or(now);
        let old_enough =
            now.saturating_sub(first_seen) >= grace_ms && now.saturating_sub(object.modified_ms) >= grace_ms;
        if old_enough {
            doomed.push(object);
        } else {
            record.candidates.insert(object.key.clone(), first_seen);
        }
    }
    report.waiting = record.candidates.len();
    let deleted: Vec<&ObjectInfo> = if options.dry_run {
        doomed
    } else {
        // The record first: an interrupted run forgets no candidate's first sighting.
        let body = serde_json::to_vec(&record).map_err(|e| SyncError::Remote(e.to_string()))?;
        remote.put(&record_key(device), Bytes::from(body)).await?;
        let outcomes: Vec<Option<&ObjectInfo>> = futures::stream::iter(doomed.into_iter().map(|object| async move {
            // Checked again right before deleting: a device may just have sent this
            // content again (an edit back to an old version), which renews it.
            let now = chrono::Utc::now().timestamp_millis();
            match remote.modified_ms(&object.key).await? {
                Some(modified) if now.saturating_sub(modified) >= grace_ms => {
                    remote.delete(&object.key).await?;
                    Ok::<_, SyncError>(Some(object))
                }
                _ => Ok(None),
            }
        }))
        .buffer_unordered(remote.concurrency)
        .try_collect()
        .await?;
        outcomes.into_iter().flatten().collect()
    };
    for object in deleted {
        report.freed_bytes += object.size;
        if object.key.starts_with("blobs/") {
            report.deleted_blobs += 1;
        } else if object.key.starts_with("logs/") {
            report.deleted_logs += 1;
        } else {
            report.deleted_snapshots += 1;
        }
    }
    report.requests = remote.requests() - requests;
    report.millis = start.elapsed().as_millis() as u64;
    Ok(report)
}

struct SnapshotInfo {
    newest_by_device: BTreeMap<String, Snapshot>,
    newest_key_by_device: BTreeMap<String, String>,
    /// The snapshot a device that is behind reads (the newest key of all).
    newest_overall: Option<Snapshot>,
}

/// List and read everything that names content. Retried when an object disappears
/// between listing and reading (a compaction ran meanwhile); deleting nothing after
/// a reading that may have missed something.
type Reading = (Listing, BTreeSet<String>, SnapshotInfo, Vec<Refused>);

async fn read_team_library(remote: &Remote) -> Result<Reading> {
    for _ in 0..3 {
        if let Some(found) = read_once(remote).await? {
            return Ok(found);
        }
    }
    Err(SyncError::Unreachable(
        "the team library kept changing while it was read (other devices compacting): try the collection again".into(),
    ))
}

/// One object read for collection, with the size cap.
enum Got {
    /// Gone since the listing: the reading is retried.
    Gone,
    Refused(Refused),
    Body(Bytes),
}

async fn read_capped(remote: &Remote, object: &ObjectInfo, device: &str, limit: u64) -> Result<Got> {
    let too_large = |size: u64| Refused::new(device, &object.key, None, format!("{size} bytes, more than {limit}"));
    if object.size > limit {
        return Ok(Got::Refused(too_large(object.size)));
    }
    Ok(match remote.get_limited(&object.key, limit).await? {
        None => Got::Gone,
        Some(Limited::TooLarge(size)) => Got::Refused(too_large(size)),
        Some(Limited::Body(b)) => Got::Body(b),
    })
}

fn newer_format(r: Refused) -> SyncError {
    SyncError::Remote(format!(
        "{} ({}) {}; nothing is collected until this Blueprint Vault is updated",
        r.object, r.device, r.reason
    ))
}

async fn read_once(remote: &Remote) -> Result<Option<Reading>> {
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    let mut refused: Vec<Refused> = Vec::new();
    // Blobs are listed first: a blob written after this listing is not a candidate at all.
    let blobs = remote.list_meta("blobs").await?;
    let mut logs: Vec<ObjectInfo> = Vec::new();
    for o in remote.list_meta("logs").await? {
        match validate::log_key(&o.key) {
            Some(Ok(_)) => logs.push(o),
            Some(Err(r)) => refused.push(r),
            None => {}
        }
    }
    // What every sync refuses names nothing: its content is never used anywhere.
    let keyed: Vec<(String, u64, &ObjectInfo)> =
        logs.iter().filter_map(|o| parse_log_key(&o.key).map(|(d, s)| (d, s, o))).collect();
    let bodies: Vec<Got> =
        futures::stream::iter(keyed.iter().map(|(d, _, o)| read_capped(remote, o, d, validate::MAX_LOG_BYTES)))
            .buffered(remote.concurrency)
            .try_collect()
            .await?;
    for ((device, seq, object), got) in keyed.iter().zip(bodies) {
        let body = match got {
            Got::Gone => return Ok(None),
            Got::Refused(r) => {
                refused.push(r);
                continue;
            }
            Got::Body(b) => b,
        };
        match validate::log_batch(device, *seq, &object.key, &body) {
            Checked::Read { value, refused: dropped } => {
                refused.extend(dropped);
                value.iter().for_each(|c| name_contents(c, &mut referenced));
            }
            Checked::Refused(r) => refused.push(r),
            // A newer app's log may name content in ways this one cannot see.
            Checked::Newer(r) => return Err(newer_format(r)),
        }
    }
    // Snapshots after logs: one written by a compaction that removed a log read above
    // was written before that removal, so this listing has it.
    let mut snapshots: Vec<ObjectInfo> = Vec::new();
    for o in remote.list_meta("snapshots").await? {
        match validate::snapshot_key(&o.key) {
            Ok(_) => snapshots.push(o),
            Err(r) => refused.push(r),
        }
    }
    let mut info =
        SnapshotInfo { newest_by_device: BTreeMap::new(), newest_key_by_device: BTreeMap::new(), newest_overall: None };
    let devices: Vec<String> = snapshots.iter().map(|o| parse_snapshot_key(&o.key).unwrap_or_default()).collect();
    let bodies: Vec<Got> = futures::stream::iter(
        snapshots.iter().zip(&devices).map(|(o, d)| read_capped(remote, o, d, validate::MAX_SNAPSHOT_BYTES)),
    )
    .buffered(remote.concurrency)
    .try_collect()
    .await?;
    // Sorted by key, so later ones are newer (keys start with the time).
    for ((object, device), got) in snapshots.iter().zip(devices).zip(bodies) {
        let body = match got {
            Got::Gone => return Ok(None),
            Got::Refused(r) => {
                refused.push(r);
                continue;
            }
            Got::Body(b) => b,
        };
        let snap: Snapshot = match validate::snapshot(&device, &object.key, &body) {
            Checked::Read { value, refused: dropped } => {
                refused.extend(dropped);
                value
            }
            Checked::Refused(r) => {
                refused.push(r);
                continue;
            }
            Checked::Newer(r) => return Err(newer_format(r)),
        };
        for history in snap.known.ids.values() {
            history.heads.values().for_each(|c| name_contents(c, &mut referenced));
        }
        info.newest_key_by_device.insert(device.clone(), object.key.clone());
        info.newest_overall = Some(snap.clone());
        info.newest_by_device.insert(device, snap);
    }
    Ok(Some((Listing { blobs, logs, snapshots }, referenced, info, refused)))
}

async fn read_record(remote: &Remote, device: &str) -> Result<GcRecord> {
    let key = record_key(device);
    match remote.get(&key).await? {
        None => Ok(GcRecord::default()),
        Some(body) => serde_json::from_slice(&body)
            .map_err(|e| SyncError::Remote(format!("{key}: {e} (delete it to start over)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse() {
        assert_eq!(parse_log_key("logs/abc/000000000012.json"), Some(("abc".into(), 12)));
        assert_eq!(parse_log_key("logs/abc/x/000000000012.json"), None);
        assert_eq!(parse_log_key("logs/a b/000000000012.json"), None);
        assert_eq!(parse_snapshot_key("snapshots/0001700000000000-abc.json"), Some("abc".into()));
        assert_eq!(parse_snapshot_key("snapshots/readme.txt"), None);
        assert_eq!(parse_blob_key("blobs/ab/abcdef"), Some("abcdef"));
        assert_eq!(parse_blob_key("blobs/ab"), None);
    }
}
