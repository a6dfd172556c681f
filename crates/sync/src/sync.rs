//! One sync of a local library with its team library:
//!
//! 1. record local changes since the last sync (against `state.base`) as a batch of
//!    this device's log, with their contents captured, and queue it durably;
//! 2. send queued batches: contents first (`blobs/<sha256>`, immutable), then the log
//!    object (`logs/<device>/<seq>.json`, a key only this device ever writes);
//! 3. read what other devices wrote since our cursors (a snapshot first when their
//!    logs were compacted away);
//! 4. settle conflicts deterministically (conflict copies, separate paths);
//! 5. make the local files match the merged view (remote deletes go to the trash);
//! 6. send what step 4 produced; compact our own log into a snapshot when it is long.
//!
//! No object is ever written by two devices, so no compare-and-swap is needed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bpv_engine::fsio;
use bpv_engine::index::ListQuery;
use bpv_engine::item::companion_path;
use bpv_engine::library::Library;
use bpv_engine::store::content_hash;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{self, LinkConfig};
use crate::error::{Result, SyncError};
use crate::model::{self, CONFLICT_ID_PREFIX, Change, FORMAT, Known, LogBatch, PATH_ID_PREFIX, View};
use crate::remote::Limited;
use crate::remote::Remote;
use crate::state::{self, BaseEntry, SyncState};
use crate::validate::{self, Checked, Refused};

/// Changes per log object (keeps each object well under a few MiB).
const BATCH_LIMIT: usize = 2000;
/// Own log objects in the team library before they are folded into a snapshot.
const COMPACT_AFTER: usize = 32;

/// Progress of a long sync (initial push or pull, migration): phase, done, total.
pub type ProgressFn = dyn Fn(&str, usize, usize) + Send + Sync;

#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncReport {
    /// Local changes recorded by this sync.
    pub recorded: usize,
    /// Changes sent to the team library (log entries).
    pub sent: usize,
    /// Contents uploaded / downloaded.
    pub uploaded: usize,
    pub downloaded: usize,
    /// Changes read from other devices.
    pub received: usize,
    /// Local files written, moved or deleted to match the team library.
    pub applied: usize,
    /// Conflict copies made by this sync (paths).
    pub conflicts: Vec<String>,
    /// Local updates skipped because the file changed during the sync (next sync).
    pub deferred: Vec<String>,
    /// Entries of the team library this sync refused (unsafe or malformed: never written),
    /// each with the device it came from. Honest changes still synced.
    pub errors: Vec<Refused>,
    pub requests: u64,
    pub millis: u64,
}

/// One blueprint whose state is not simply "synced".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSync {
    pub path: String,
    /// `pending` (changed here, not yet in the team library) or `conflict` (a copy
    /// kept because two devices edited the same blueprint; delete it or edit it to settle).
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SyncStatus {
    pub linked: bool,
    pub endpoints: Vec<String>,
    pub bucket: String,
    pub prefix: String,
    pub device_id: String,
    pub device_name: String,
    pub last_sync: Option<String>,
    /// Why the last sync failed (cleared by a successful one).
    pub last_error: Option<String>,
    /// Overall: `synced`, `pending`, `conflict` or `error`.
    pub state: String,
    pub pending_changes: usize,
    pub synced: usize,
    pub items: Vec<ItemSync>,
    /// Entries of the team library refused (unsafe or malformed, never written), oldest
    /// first, with the device each came from.
    pub refused: Vec<Refused>,
    /// Seconds until the app's next periodic sync (backs off after failures).
    pub next_sync_in_secs: u64,
}

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) format: u32,
    pub(crate) device: String,
    pub(crate) time: i64,
    /// Every device's log up to this sequence is folded in.
    pub(crate) cursors: BTreeMap<String, u64>,
    pub(crate) known: Known,
}

/// A local blueprint file, by sync id.
#[derive(Clone, Debug)]
struct LocalFile {
    path: String,
    yaml: String,
    meta: Option<String>,
}

pub struct Syncer {
    dir: PathBuf,
    link: LinkConfig,
    remote: Remote,
    runtime: tokio::runtime::Runtime,
    progress: Option<Box<ProgressFn>>,
    /// Set by another thread to stop a sync at its next safe point (the app's Cancel).
    cancel: Option<Arc<AtomicBool>>,
}

impl Syncer {
    /// The syncer of a linked library (link and keys from its private area).
    pub fn open(lib: &Library) -> Result<Syncer> {
        let link = config::load_link(lib.area())?.ok_or(SyncError::NotLinked)?;
        let creds = config::credentials_for(lib, &link)?;
        let remote = Remote::open(&link, &creds)?;
        Syncer::with_remote(lib, link, remote)
    }

    /// A syncer over a given remote (tests: an in-memory store). Saves the link.
    pub fn with_remote(lib: &Library, link: LinkConfig, remote: Remote) -> Result<Syncer> {
        let dir = config::sync_dir(lib.area());
        fsio::ensure_dir(&dir)?;
        if config::load_link(lib.area())?.as_ref() != Some(&link) {
            config::save_link(lib.area(), &link)?;
        }
        Syncer::with_state_dir(dir, link, remote)
    }

    /// A syncer keeping its state in `dir` instead of the library's link (`bpv migrate
    /// --to s3://…`: a copy into another team library, resumable, the link untouched).
    pub fn with_state_dir(dir: PathBuf, link: LinkConfig, remote: Remote) -> Result<Syncer> {
        fsio::ensure_dir(&dir)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| bpv_engine::Error::Io { context: "starting the sync runtime".into(), source: e })?;
        Ok(Syncer { dir, link, remote, runtime, progress: None, cancel: None })
    }

    pub fn set_progress(&mut self, progress: Box<ProgressFn>) {
        self.progress = Some(progress);
    }

    /// Stop a running sync when `cancel` becomes true: it fails with `cancelled` between
    /// uploads or before reading others' changes; what was recorded stays queued.
    pub fn set_cancel(&mut self, cancel: Arc<AtomicBool>) {
        self.cancel = Some(cancel);
    }

    fn check_cancel(&self) -> Result<()> {
        match &self.cancel {
            Some(c) if c.load(Ordering::SeqCst) => Err(bpv_engine::Error::Cancelled.into()),
            _ => Ok(()),
        }
    }

    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    pub fn remote_mut(&mut self) -> &mut Remote {
        &mut self.remote
    }

    pub fn link(&self) -> &LinkConfig {
        &self.link
    }

    fn tick(&self, phase: &str, done: usize, total: usize) {
        if let Some(p) = &self.progress {
            p(phase, done, total);
        }
    }

    /// Check the team library answers and the keys may read and write it.
    pub fn probe(&self) -> Result<()> {
        self.runtime.block_on(async {
            let key = format!("devices/{}.json", self.link.device_id);
            let body = serde_json::json!({ "device": self.link.device_id, "name": self.link.device_name });
            self.remote.put(&key, Bytes::from(body.to_string())).await?;
            self.remote.list("logs").await.map(|_| ())
        })
    }

    /// One full sync. Errors leave recorded changes queued (sent next time).
    pub fn sync(&self, lib: &Library) -> Result<SyncReport> {
        let _lock = fsio::lock_exclusive(&self.dir.join("sync.lock"))?;
        let mut st = state::load(&self.dir, &self.link.device_id)?;
        let start = Instant::now();
        let requests = self.remote.requests();
        let mut report = SyncReport::default();
        // Refusals that may clear (content missing, a newer format) are found again if still there.
        st.refused.retain(|r| !r.retry);
        let result = self.sync_locked(lib, &mut st, &mut report);
        for r in &report.errors {
            st.note_refused(r);
        }
        match &result {
            Ok(()) => {
                st.last_sync = Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                st.last_error = None;
                st.failures = 0;
            }
            Err(e) => {
                st.last_error = Some(e.to_string());
                st.failures = st.failures.saturating_add(1);
            }
        }
        state::save(&self.dir, &st)?;
        report.requests = self.remote.requests() - requests;
        report.millis = start.elapsed().as_millis() as u64;
        result.map(|()| report)
    }

    fn sync_locked(&self, lib: &Library, st: &mut SyncState, report: &mut SyncReport) -> Result<()> {
        if !lib.kept_current_by_watcher() {
            lib.reconcile()?;
        }
        let local = scan_local(lib, &st.base)?;
        report.recorded = self.record_local(lib, st, &local)?;
        self.runtime.block_on(async {
            report.sent += self.push(st, report).await?;
            self.check_cancel()?;
            report.received = self.pull(st, &mut report.errors).await?;
            Ok::<(), SyncError>(())
        })?;
        // Settle conflicts and path clashes (several rounds: a copy can clash too).
        let mut fixes_added = false;
        for _ in 0..3 {
            let seq = st.next_seq;
            let mut n = 0;
            let device = self.link.device_id.clone();
            let fixes = model::resolution_changes(
                &st.known,
                &mut || {
                    n += 1;
                    format!("{device}/{seq}/{n}")
                },
                &self.link.device_id,
                &self.link.device_name,
                now_ms(),
            );
            if fixes.is_empty() {
                break;
            }
            for c in &fixes {
                if c.id.starts_with(CONFLICT_ID_PREFIX) {
                    report.conflicts.push(c.path.clone().unwrap_or_default());
                }
                st.known.add(c.clone());
            }
            st.next_seq += 1;
            st.pending.push(LogBatch {
                format: FORMAT,
                device: self.link.device_id.clone(),
                seq,
                time: now_ms(),
                changes: fixes,
            });
            fixes_added = true;
        }
        // The state is megabytes for a large library: written only when something changed
        // (an idle sync writes it once, in `sync`).
        if fixes_added {
            state::save(&self.dir, st)?;
        }
        self.apply(lib, st, &local, report)?;
        if fixes_added || report.received > 0 || report.applied > 0 {
            state::save(&self.dir, st)?;
        }
        self.runtime.block_on(async {
            report.sent += self.push(st, report).await?;
            self.compact(st).await
        })
    }

    /// Turn differences between the files and `st.base` into queued changes.
    fn record_local(&self, lib: &Library, st: &mut SyncState, local: &BTreeMap<String, LocalFile>) -> Result<usize> {
        let mut changes: Vec<(Change, Option<LocalFile>)> = Vec::new();
        let time = now_ms();
        let make = |id: &str, base: Option<&BaseEntry>, file: Option<&LocalFile>, edited: bool, moved: bool| Change {
            reference: String::new(),
            id: id.to_owned(),
            parents: base.map(|b| b.heads.clone()).unwrap_or_default(),
            path: file.map(|f| f.path.clone()),
            yaml: file.map(|f| f.yaml.clone()),
            meta: file.and_then(|f| f.meta.clone()),
            edited,
            moved,
            time,
            device: self.link.device_id.clone(),
            device_name: self.link.device_name.clone(),
            // A move or delete keeps the content's origin; an edit starts a new one and
            // replaces the content it was based on.
            origin: match base {
                Some(b) if !edited && file.is_some() => b.origin.clone(),
                _ => String::new(),
            },
            replaces: match base {
                Some(b) if edited && file.is_some() => vec![b.origin.clone()],
                _ => Vec::new(),
            },
        };
        for (id, file) in local {
            match st.base.get(id) {
                None => changes.push((make(id, None, Some(file), true, false), Some(file.clone()))),
                Some(b) => {
                    let edited = b.yaml != file.yaml || b.meta != file.meta;
                    let moved = b.path != file.path;
                    if edited || moved {
                        changes.push((make(id, Some(b), Some(file), edited, moved), Some(file.clone())));
                    }
                }
            }
        }
        for (id, b) in &st.base {
            if !local.contains_key(id) {
                changes.push((make(id, Some(b), None, false, false), None));
            }
        }
        let recorded = changes.len();
        for chunk in changes.chunks(BATCH_LIMIT) {
            let seq = st.next_seq;
            let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            let mut batch = Vec::with_capacity(chunk.len());
            for (n, (change, file)) in chunk.iter().enumerate() {
                let mut change = change.clone();
                change.reference = format!("{}/{seq}/{n}", self.link.device_id);
                if let (Some(file), false) = (file, change.edited) {
                    // A move sends its content again too: the team library may have
                    // collected it meanwhile (gc.rs) if this device was away long.
                    if let Ok(yaml) = fs::read(lib.root().join(&file.path))
                        && change.yaml.as_deref() == Some(content_hash(&yaml).as_str())
                    {
                        blobs.insert(content_hash(&yaml), yaml);
                    }
                    if let (Some(meta_hash), Some(cpath)) = (&change.meta, companion_path(&file.path))
                        && let Ok(meta) = fs::read(lib.root().join(&cpath))
                        && content_hash(&meta) == *meta_hash
                    {
                        blobs.insert(content_hash(&meta), meta);
                    }
                }
                if let (Some(file), true) = (file, change.edited) {
                    // Capture the bytes now: the hash recorded is the hash of what is sent.
                    let yaml = read_file(lib.root(), &file.path)?;
                    change.yaml = Some(content_hash(&yaml));
                    blobs.insert(content_hash(&yaml), yaml);
                    if file.meta.is_some()
                        && let Some(cpath) = companion_path(&file.path)
                        && let Ok(meta) = fs::read(lib.root().join(&cpath))
                    {
                        change.meta = Some(content_hash(&meta));
                        blobs.insert(content_hash(&meta), meta);
                    }
                }
                batch.push(change);
            }
            state::write_pack(&self.dir, seq, &blobs)?;
            for change in &batch {
                match &change.path {
                    Some(path) => {
                        st.base.insert(
                            change.id.clone(),
                            BaseEntry {
                                path: path.clone(),
                                yaml: change.yaml.clone().unwrap_or_default(),
                                meta: change.meta.clone(),
                                heads: vec![change.reference.clone()],
                                origin: change.origin().to_owned(),
                            },
                        );
                    }
                    None => {
                        st.base.remove(&change.id);
                    }
                }
                st.known.add(change.clone());
            }
            st.pending.push(LogBatch {
                format: FORMAT,
                device: self.link.device_id.clone(),
                seq,
                time,
                changes: batch,
            });
            st.next_seq += 1;
            state::save(&self.dir, st)?;
        }
        Ok(recorded)
    }

    /// Send queued batches in order: contents, then the log object. Returns changes sent.
    async fn push(&self, st: &mut SyncState, report: &mut SyncReport) -> Result<usize> {
        let mut sent = 0;
        let total_batches = st.pending.len();
        let mut done = 0;
        while let Some(batch) = st.pending.first().cloned() {
            let blobs = state::read_pack(&self.dir, batch.seq)?;
            let total = blobs.len();
            let mut uploaded = 0usize;
            let mut uploads = futures::stream::iter(blobs.into_iter().map(|(hash, bytes)| {
                let key = blob_key(&hash);
                async move { self.remote.put(&key, Bytes::from(bytes)).await }
            }))
            .buffer_unordered(self.remote.concurrency);
            while let Some(r) = uploads.next().await {
                r?;
                self.check_cancel()?;
                uploaded += 1;
                if uploaded.is_multiple_of(100) || uploaded == total {
                    self.tick("upload", uploaded, total);
                }
            }
            drop(uploads);
            let body = serde_json::to_vec(&batch).map_err(|e| SyncError::Remote(e.to_string()))?;
            self.remote.put(&log_key(&batch.device, batch.seq), Bytes::from(body)).await?;
            st.pending.remove(0);
            state::save(&self.dir, st)?;
            state::remove_pack(&self.dir, batch.seq);
            report.uploaded += uploaded;
            sent += batch.changes.len();
            done += 1;
            self.tick("send", done, total_batches);
        }
        Ok(sent)
    }

    /// Read other devices' new log objects. Returns the number of new changes. What fails
    /// validation (`validate`) goes to `refused`, never into what is known.
    async fn pull(&self, st: &mut SyncState, refused: &mut Vec<Refused>) -> Result<usize> {
        let me = self.link.device_id.clone();
        let mut logs = self.list_logs(&me, refused).await?;
        let gap = |st: &SyncState, d: &str, seqs: &[(u64, u64)]| {
            let cursor = st.cursors.get(d).copied().unwrap_or(0);
            seqs.iter().map(|(s, _)| *s).filter(|s| *s > cursor).min().is_some_and(|first| first != cursor + 1)
        };
        let has_gap =
            |st: &SyncState, logs: &BTreeMap<String, Vec<(u64, u64)>>| logs.iter().any(|(d, seqs)| gap(st, d, seqs));
        let mut received = 0;
        if !st.bootstrapped || has_gap(st, &logs) {
            received += self.load_snapshot(st, refused).await?;
            // Logs listed before the snapshot was read may have been compacted since.
            logs = self.list_logs(&me, &mut Vec::new()).await?;
            // A gap no snapshot covers (a compaction racing this read, or a log written
            // out of order): that device's log waits for the next sync; the others are read.
            let gapped: Vec<String> =
                logs.iter().filter(|(d, seqs)| gap(st, d, seqs)).map(|(d, _)| d.clone()).collect();
            for d in gapped {
                let cursor = st.cursors.get(&d).copied().unwrap_or(0);
                refused.push(
                    Refused::new(
                        &d,
                        &format!("logs/{d}/"),
                        None,
                        format!(
                            "its log goes on after {cursor} with a gap no snapshot covers: not read until one does"
                        ),
                    )
                    .retried(),
                );
                logs.remove(&d);
            }
        }
        let wanted: Vec<(String, u64, u64)> = logs
            .iter()
            .flat_map(|(d, seqs)| {
                let cursor = st.cursors.get(d).copied().unwrap_or(0);
                seqs.iter().filter(move |(s, _)| *s > cursor).map(move |(s, size)| (d.clone(), *s, *size))
            })
            .collect();
        let total = wanted.len();
        let fetched: Vec<(String, u64, Option<Limited>)> =
            futures::stream::iter(wanted.into_iter().map(|(d, s, size)| {
                let key = log_key(&d, s);
                async move {
                    if size > validate::MAX_LOG_BYTES {
                        // Not even fetched: the listing says it is too large.
                        return Ok((d, s, Some(Limited::TooLarge(size))));
                    }
                    self.remote.get_limited(&key, validate::MAX_LOG_BYTES).await.map(|b| (d, s, b))
                }
            }))
            .buffered(self.remote.concurrency)
            .try_collect()
            .await?;
        self.tick("receive", total, total);
        let mut stopped: BTreeSet<String> = BTreeSet::new();
        for (device, seq, body) in fetched {
            if stopped.contains(&device) {
                continue;
            }
            let key = log_key(&device, seq);
            let body = match body {
                // Compacted away between listing and reading: the next sync reads the snapshot.
                None => {
                    stopped.insert(device);
                    continue;
                }
                Some(Limited::TooLarge(size)) => {
                    // Written once, never changes: refused for good, the log read on past it.
                    refused.push(Refused::new(
                        &device,
                        &key,
                        None,
                        format!("{size} bytes, more than a log object may have ({})", validate::MAX_LOG_BYTES),
                    ));
                    st.cursors.insert(device, seq);
                    continue;
                }
                Some(Limited::Body(b)) => b,
            };
            match validate::log_batch(&device, seq, &key, &body) {
                Checked::Read { value, refused: dropped } => {
                    refused.extend(dropped);
                    for change in value {
                        if st.known.add(change) {
                            received += 1;
                        }
                    }
                }
                Checked::Refused(r) => refused.push(r),
                Checked::Newer(r) => {
                    // This device's log stops here until this app is updated; others go on.
                    refused.push(r);
                    stopped.insert(device);
                    continue;
                }
            }
            st.cursors.insert(device, seq);
        }
        st.bootstrapped = true;
        Ok(received)
    }

    /// Other devices' log objects: device → (sequence, size), sequences sorted. Keys that
    /// name no valid device or sequence go to `refused`.
    async fn list_logs(&self, me: &str, refused: &mut Vec<Refused>) -> Result<BTreeMap<String, Vec<(u64, u64)>>> {
        let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        for object in self.remote.list_meta("logs").await? {
            match validate::log_key(&object.key) {
                Some(Ok((device, seq))) if device != me => out.entry(device).or_default().push((seq, object.size)),
                Some(Err(r)) => refused.push(r),
                _ => {}
            }
        }
        out.values_mut().for_each(|v| v.sort_unstable());
        Ok(out)
    }

    /// Fold in the newest snapshot that knows more than we do. Snapshots that fail
    /// validation are reported and skipped (an older one is tried).
    async fn load_snapshot(&self, st: &mut SyncState, refused: &mut Vec<Refused>) -> Result<usize> {
        let snapshots = self.remote.list_meta("snapshots").await?;
        for object in snapshots.iter().rev() {
            let key = &object.key;
            let device = match validate::snapshot_key(key) {
                Ok(d) => d,
                Err(r) => {
                    refused.push(r);
                    continue;
                }
            };
            let too_large = |size: u64| {
                Refused::new(
                    &device,
                    key,
                    None,
                    format!("{size} bytes, more than a snapshot may have ({})", validate::MAX_SNAPSHOT_BYTES),
                )
            };
            if object.size > validate::MAX_SNAPSHOT_BYTES {
                refused.push(too_large(object.size));
                continue;
            }
            let body = match self.remote.get_limited(key, validate::MAX_SNAPSHOT_BYTES).await? {
                None => continue,
                Some(Limited::TooLarge(size)) => {
                    refused.push(too_large(size));
                    continue;
                }
                Some(Limited::Body(b)) => b,
            };
            let snap = match validate::snapshot(&device, key, &body) {
                Checked::Read { value, refused: dropped } => {
                    refused.extend(dropped);
                    value
                }
                Checked::Refused(r) | Checked::Newer(r) => {
                    refused.push(r);
                    continue;
                }
            };
            // A snapshot covers logs that exist: a device's newest log object is never
            // removed, so a cursor past it is a claim nothing backs (it would skip logs).
            let logs = self.list_logs(&self.link.device_id, &mut Vec::new()).await?;
            let newest = |d: &str| logs.get(d).and_then(|v| v.last()).map(|(s, _)| *s).unwrap_or(0);
            if let Some((d, s)) = snap.cursors.iter().find(|(d, s)| **d != self.link.device_id && **s > newest(d)) {
                refused.push(Refused::new(
                    &device,
                    key,
                    None,
                    format!("claims device {d}'s log up to {s}, which the team library does not hold"),
                ));
                continue;
            }
            let ahead = snap
                .cursors
                .iter()
                .any(|(d, s)| *d != self.link.device_id && st.cursors.get(d).copied().unwrap_or(0) < *s);
            if !ahead {
                // An older snapshot may still be ahead (a newer one may be another device's
                // that knows less).
                continue;
            }
            let before = st.known.clone();
            st.known.merge(&snap.known);
            for (d, s) in snap.cursors {
                if d != self.link.device_id {
                    let c = st.cursors.entry(d).or_insert(0);
                    *c = (*c).max(s);
                }
            }
            return Ok(usize::from(before != st.known));
        }
        Ok(0)
    }

    /// Fold our log into a snapshot once it is long, then remove the log objects it covers.
    async fn compact(&self, st: &mut SyncState) -> Result<()> {
        let me = &self.link.device_id;
        let sent_to = st.next_seq.saturating_sub(1) - st.pending.len() as u64;
        if !st.pending.is_empty() || sent_to.saturating_sub(st.compacted_to) < COMPACT_AFTER as u64 {
            return Ok(());
        }
        let mut cursors = st.cursors.clone();
        cursors.insert(me.clone(), sent_to);
        let time = now_ms();
        let snap = Snapshot { format: FORMAT, device: me.clone(), time, cursors, known: st.known.clone() };
        let body = serde_json::to_vec(&snap).map_err(|e| SyncError::Remote(e.to_string()))?;
        let key = format!("snapshots/{time:013}-{me}.json");
        self.remote.put(&key, Bytes::from(body)).await?;
        let old: Vec<String> = self
            .remote
            .list("snapshots")
            .await?
            .into_iter()
            .filter(|k| k.ends_with(&format!("-{me}.json")) && *k != key)
            .collect();
        // The newest log object stays: a device whose cursor is older sees a gap before it
        // (and reads the snapshot) even when this device writes nothing more.
        let covered: Vec<String> = (st.compacted_to + 1..sent_to).map(|s| log_key(me, s)).collect();
        futures::stream::iter(covered.iter().chain(old.iter()).map(|k| self.remote.delete(k)))
            .buffer_unordered(self.remote.concurrency)
            .try_collect::<Vec<()>>()
            .await?;
        st.compacted_to = sent_to.saturating_sub(1);
        Ok(())
    }

    /// Make the local files match the merged view.
    fn apply(
        &self,
        lib: &Library,
        st: &mut SyncState,
        local: &BTreeMap<String, LocalFile>,
        report: &mut SyncReport,
    ) -> Result<()> {
        let views = st.known.views();
        let ids: BTreeSet<String> = views.keys().chain(st.base.keys()).cloned().collect();
        let mut writes: Vec<(String, View, Option<BaseEntry>)> = Vec::new();
        let mut deletes: Vec<(String, BaseEntry)> = Vec::new();
        for id in &ids {
            let target = views.get(id).and_then(|m| m.view.clone());
            let current = st.base.get(id).cloned();
            let heads = st.known.heads_of(id);
            match (&target, &current) {
                (None, None) => {}
                (Some(t), Some(c)) if t.path == c.path && t.yaml == c.yaml && t.meta == c.meta => {
                    if let Some(b) = st.base.get_mut(id) {
                        b.heads = heads;
                        b.origin = t.origin.clone();
                    }
                }
                (None, Some(c)) => deletes.push((id.clone(), c.clone())),
                (Some(t), _) => {
                    // Checked when read; again here for what a state from before the checks holds.
                    if let Err(reason) = validate::blueprint_path(&t.path) {
                        report.errors.push(Refused::new(origin_device(&t.origin), "", Some(&t.path), reason));
                        continue;
                    }
                    writes.push((id.clone(), t.clone(), current.clone()));
                }
            }
        }
        if writes.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        // Contents: from local files when we have them, else from the team library.
        let mut have: HashMap<String, PathBuf> = HashMap::new();
        for file in local.values() {
            have.insert(file.yaml.clone(), lib.root().join(&file.path));
            if let (Some(meta), Some(cpath)) = (&file.meta, companion_path(&file.path)) {
                have.insert(meta.clone(), lib.root().join(cpath));
            }
        }
        let mut pending_blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for batch in &st.pending {
            pending_blobs.extend(state::read_pack(&self.dir, batch.seq)?);
        }
        let needed: BTreeSet<String> = writes
            .iter()
            .flat_map(|(_, v, _)| std::iter::once(v.yaml.clone()).chain(v.meta.clone()))
            .filter(|h| !pending_blobs.contains_key(h))
            .collect();
        let mut contents: HashMap<String, Vec<u8>> = HashMap::new();
        let mut to_fetch = Vec::new();
        for hash in needed {
            match have.get(&hash).and_then(|p| fs::read(p).ok()).filter(|b| content_hash(b) == hash) {
                Some(bytes) => {
                    contents.insert(hash, bytes);
                }
                None => to_fetch.push(hash),
            }
        }
        let total = to_fetch.len();
        let mut unavailable: Vec<(String, String)> = Vec::new();
        let fetched: Vec<(String, Vec<u8>)> = self.runtime.block_on(async {
            let mut done = 0usize;
            let mut out = Vec::with_capacity(total);
            let mut stream = futures::stream::iter(to_fetch.into_iter().map(|hash| async move {
                // Every hash was validated when read (64 hex digits), so the key is one of ours.
                let problem = match self.remote.get_limited(&blob_key(&hash), validate::MAX_BLOB_BYTES).await? {
                    None => "is missing from the team library".to_owned(),
                    Some(Limited::TooLarge(size)) => {
                        format!("is {size} bytes, more than a blueprint may have ({})", validate::MAX_BLOB_BYTES)
                    }
                    Some(Limited::Body(bytes)) if content_hash(&bytes) == hash => {
                        return Ok::<_, SyncError>(Ok((hash, bytes.to_vec())));
                    }
                    Some(Limited::Body(_)) => "does not match its hash (damaged or forged)".to_owned(),
                };
                Ok(Err((hash, problem)))
            }))
            .buffer_unordered(self.remote.concurrency);
            while let Some(r) = stream.next().await {
                match r? {
                    Ok(found) => out.push(found),
                    Err(bad) => unavailable.push(bad),
                }
                done += 1;
                if done.is_multiple_of(100) || done == total {
                    self.tick("download", done, total);
                }
            }
            Ok::<_, SyncError>(out)
        })?;
        report.downloaded += fetched.len();
        contents.extend(fetched);
        contents.extend(pending_blobs);
        // A blueprint whose content cannot be had is not written (the rest are); it is
        // tried again at the next sync.
        let writes: Vec<(String, View, Option<BaseEntry>)> = writes
            .into_iter()
            .filter(|(_, target, _)| {
                let missing = std::iter::once(&target.yaml)
                    .chain(target.meta.as_ref())
                    .find_map(|h| unavailable.iter().find(|(u, _)| u == h));
                if let Some((hash, problem)) = missing {
                    report.errors.push(
                        Refused::new(
                            origin_device(&target.origin),
                            &blob_key(hash),
                            Some(&target.path),
                            format!("content {hash} {problem}"),
                        )
                        .retried(),
                    );
                }
                missing.is_none()
            })
            .collect();

        let root = lib.root().to_path_buf();
        let mut touched: Vec<String> = Vec::new();
        // Deletes from other devices go to the trash (recoverable), if the file is unchanged.
        for (id, current) in deletes {
            if disk_hash(&root, &current.path).as_deref() != Some(current.yaml.as_str()) {
                report.deferred.push(current.path.clone());
                continue;
            }
            // The trash move must not reach through a linked folder either.
            if let Err(e) = fsio::check_beneath(&root, &current.path) {
                let by = st.known.ids.get(&id).and_then(|h| h.heads.values().max_by_key(|c| c.time));
                let device = by.map(|c| c.device.as_str()).unwrap_or_default();
                report.errors.push(Refused::new(device, "", Some(&current.path), e.to_string()).retried());
                continue;
            }
            match lib.delete(&current.path) {
                Ok(_) | Err(bpv_engine::Error::NotFound(_)) => {
                    st.base.remove(&id);
                    report.applied += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Paths being vacated by moves in this round may be reused by another write.
        let vacated: BTreeSet<String> = writes
            .iter()
            .filter_map(|(_, t, c)| c.as_ref().filter(|c| c.path != t.path).map(|c| model::fold_path(&c.path)))
            .collect();
        // Writes, in parallel (each durable; many fsyncs overlap).
        let outcomes: Vec<(String, View, Option<BaseEntry>, Result<bool>)> = writes
            .into_par_iter()
            .map(|(id, target, current)| {
                let r = write_one(&root, &target, current.as_ref(), &contents, &vacated);
                (id, target, current, r)
            })
            .collect();
        // Moves: remove the old files once every new one is written.
        for (id, target, current, outcome) in outcomes {
            match outcome {
                Ok(true) => {
                    if let Some(c) = &current
                        && c.path != target.path
                    {
                        match remove_if_same(&root, &c.path, &c.yaml, c.meta.is_some()) {
                            Err(SyncError::Engine(e)) if e.code() == "invalid_key" => {
                                report.errors.push(
                                    Refused::new(origin_device(&target.origin), "", Some(&c.path), e.to_string())
                                        .retried(),
                                );
                            }
                            other => other?,
                        }
                        touched.push(c.path.clone());
                    }
                    touched.push(target.path.clone());
                    let heads = st.known.heads_of(&id);
                    st.base.insert(
                        id,
                        BaseEntry {
                            path: target.path.clone(),
                            yaml: target.yaml,
                            meta: target.meta,
                            heads,
                            origin: target.origin,
                        },
                    );
                    report.applied += 1;
                }
                Ok(false) => report.deferred.push(target.path.clone()),
                // A linked folder along the path (`fsio::write_atomic_beneath`): not written.
                Err(SyncError::Engine(e)) if e.code() == "invalid_key" => report
                    .errors
                    .push(Refused::new(origin_device(&target.origin), "", Some(&target.path), e.to_string()).retried()),
                Err(e) => return Err(e),
            }
        }
        if !touched.is_empty() {
            lib.refresh(&touched)?;
        }
        Ok(())
    }

    /// State of the link and of every blueprint that is not simply synced.
    pub fn status(&self, lib: &Library) -> Result<SyncStatus> {
        let st = state::load(&self.dir, &self.link.device_id)?;
        let local = scan_local(lib, &st.base)?;
        let pending_refs: BTreeSet<&str> =
            st.pending.iter().flat_map(|b| b.changes.iter().map(|c| c.reference.as_str())).collect();
        let mut items = Vec::new();
        let mut pending_changes = st.pending.iter().map(|b| b.changes.len()).sum::<usize>();
        for (id, file) in &local {
            let base = st.base.get(id);
            let changed = base.is_none_or(|b| b.path != file.path || b.yaml != file.yaml || b.meta != file.meta);
            if changed {
                pending_changes += 1;
                items.push(ItemSync { path: file.path.clone(), state: "pending".into(), reason: None });
            } else if base.is_some_and(|b| b.heads.iter().any(|h| pending_refs.contains(h.as_str()))) {
                items.push(ItemSync { path: file.path.clone(), state: "pending".into(), reason: None });
            } else if id.starts_with(CONFLICT_ID_PREFIX)
                && st.known.ids.get(id).is_some_and(|h| h.heads.values().all(|c| c.parents.is_empty()))
            {
                let from = id.trim_start_matches(CONFLICT_ID_PREFIX);
                items.push(ItemSync {
                    path: file.path.clone(),
                    state: "conflict".into(),
                    reason: Some(format!(
                        "kept from a concurrent edit ({from}); compare, then delete or edit this copy"
                    )),
                });
            }
        }
        for (id, b) in &st.base {
            if !local.contains_key(id) {
                pending_changes += 1;
                items.push(ItemSync { path: b.path.clone(), state: "pending".into(), reason: Some("deleted".into()) });
            }
        }
        let synced =
            local.len().saturating_sub(items.iter().filter(|i| i.reason.as_deref() != Some("deleted")).count());
        let state = if st.last_error.is_some() {
            "error"
        } else if items.iter().any(|i| i.state == "conflict") {
            "conflict"
        } else if pending_changes > 0 {
            "pending"
        } else {
            "synced"
        };
        Ok(SyncStatus {
            linked: true,
            endpoints: self.link.endpoints.clone(),
            bucket: self.link.bucket.clone(),
            prefix: self.link.prefix.clone(),
            device_id: self.link.device_id.clone(),
            device_name: self.link.device_name.clone(),
            last_sync: st.last_sync.clone(),
            last_error: st.last_error.clone(),
            state: state.into(),
            pending_changes,
            synced,
            items,
            refused: st.refused.clone(),
            next_sync_in_secs: next_interval(self.link.interval_secs, st.failures),
        })
    }

    /// Every blueprint of the merged view is in the team library and on disk, byte for
    /// byte (each content read back from the store), and every local file is in the
    /// view. Returns how many blueprints were checked.
    pub fn verify(&self, lib: &Library) -> Result<usize> {
        let st = state::load(&self.dir, &self.link.device_id)?;
        if !st.pending.is_empty() {
            return Err(SyncError::Verify(format!("{} batches are not sent yet: sync first", st.pending.len())));
        }
        let views: Vec<View> = st.known.views().into_values().filter_map(|m| m.view).collect();
        let local = scan_local(lib, &st.base)?;
        if local.len() != views.len() {
            return Err(SyncError::Verify(format!(
                "{} blueprints here, {} in the team library",
                local.len(),
                views.len()
            )));
        }
        let root = lib.root().to_path_buf();
        let total = views.len();
        self.runtime.block_on(async {
            let mut done = 0usize;
            let mut checks = futures::stream::iter(views.iter().map(|v| {
                let root = root.clone();
                async move {
                    validate::blueprint_path(&v.path).map_err(|e| SyncError::Verify(format!("{}: {e}", v.path)))?;
                    for (hash, rel) in std::iter::once((&v.yaml, Some(v.path.clone())))
                        .chain(v.meta.iter().map(|m| (m, companion_path(&v.path))))
                    {
                        validate::hash(hash).map_err(SyncError::Verify)?;
                        let remote = match self.remote.get_limited(&blob_key(hash), validate::MAX_BLOB_BYTES).await? {
                            Some(Limited::Body(b)) => b,
                            Some(Limited::TooLarge(n)) => {
                                return Err(SyncError::Verify(format!("{}: content {hash} is {n} bytes", v.path)));
                            }
                            None => {
                                return Err(SyncError::Verify(format!(
                                    "{}: content {hash} is not in the team library",
                                    v.path
                                )));
                            }
                        };
                        let rel = rel.unwrap_or_default();
                        let disk = fs::read(root.join(&rel))
                            .map_err(|e| SyncError::Verify(format!("{rel}: cannot read the local file: {e}")))?;
                        if remote.as_ref() != disk.as_slice() {
                            return Err(SyncError::Verify(format!("{rel}: local and team copies differ")));
                        }
                    }
                    Ok::<(), SyncError>(())
                }
            }))
            .buffer_unordered(self.remote.concurrency);
            while let Some(r) = checks.next().await {
                r?;
                done += 1;
                if done.is_multiple_of(100) || done == total {
                    self.tick("verify", done, total);
                }
            }
            Ok::<(), SyncError>(())
        })?;
        Ok(total)
    }
}

/// The periodic sync's interval, doubled per failure in a row (at most 16×), so an
/// unreachable store is not hammered; the app adds its own jitter.
pub fn next_interval(interval_secs: u64, failures: u32) -> u64 {
    interval_secs.saturating_mul(1u64 << failures.min(4))
}

/// Is this library linked? (Without loading keys.)
pub fn is_linked(area: &Path) -> Result<bool> {
    Ok(config::load_link(area)?.is_some())
}

/// Forget the link and the sync state (the files and the team library stay).
pub fn unlink(area: &Path) -> Result<()> {
    let dir = config::sync_dir(area);
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(bpv_engine::Error::io("cannot remove", &dir, e).into()),
    }
}

fn blob_key(hash: &str) -> String {
    format!("blobs/{}/{hash}", &hash[..2.min(hash.len())])
}

fn log_key(device: &str, seq: u64) -> String {
    format!("logs/{device}/{seq:012}.json")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn read_file(root: &Path, rel: &str) -> Result<Vec<u8>> {
    let abs = root.join(rel);
    fs::read(&abs).map_err(|e| bpv_engine::Error::io("cannot read", &abs, e).into())
}

fn disk_hash(root: &Path, rel: &str) -> Option<String> {
    fs::read(root.join(rel)).ok().map(|b| content_hash(&b))
}

/// Every blueprint file, by sync id. A file keeps the sync id it had at its path
/// (when its blueprint id still matches); otherwise its blueprint id (a rename keeps
/// it); otherwise `path:<path>`.
fn scan_local(lib: &Library, base: &BTreeMap<String, BaseEntry>) -> Result<BTreeMap<String, LocalFile>> {
    let items = lib.list(&ListQuery { limit: usize::MAX / 4, ..ListQuery::default() })?.items;
    let by_path: HashMap<&str, &str> = base.iter().map(|(id, b)| (b.path.as_str(), id.as_str())).collect();
    let mut out: BTreeMap<String, LocalFile> = BTreeMap::new();
    let mut rest = Vec::new();
    let root = lib.root();
    for item in items {
        let meta = companion_path(&item.path).and_then(|c| fs::read(root.join(c)).ok()).map(|b| content_hash(&b));
        let file = LocalFile { path: item.path.clone(), yaml: item.hash.clone(), meta };
        match by_path.get(item.path.as_str()) {
            Some(id)
                if id.starts_with(PATH_ID_PREFIX)
                    || id.starts_with(CONFLICT_ID_PREFIX)
                    || item.id.as_deref() == Some(*id) =>
            {
                out.insert((*id).to_owned(), file);
            }
            _ => rest.push((item.id.clone(), file)),
        }
    }
    for (bid, file) in rest {
        let id = match bid.filter(|b| !b.trim().is_empty() && !out.contains_key(b)) {
            Some(b) if !b.starts_with(PATH_ID_PREFIX) && !b.starts_with(CONFLICT_ID_PREFIX) => b,
            _ => format!("{PATH_ID_PREFIX}{}", file.path),
        };
        out.insert(id, file);
    }
    Ok(out)
}

/// Write one blueprint (and its companion) as the team library has it. `Ok(false)`:
/// not now (the path holds a file this sync does not know about yet).
fn write_one(
    root: &Path,
    target: &View,
    current: Option<&BaseEntry>,
    contents: &HashMap<String, Vec<u8>>,
    vacated: &BTreeSet<String>,
) -> Result<bool> {
    let ours = current.is_some_and(|c| c.path == target.path);
    if !ours {
        if let Some(existing) = disk_hash(root, &target.path) {
            let folded = model::fold_path(&target.path);
            if existing != target.yaml && !vacated.contains(&folded) {
                return Ok(false);
            }
        }
    } else if let Some(c) = current
        && disk_hash(root, &c.path).as_deref() != Some(c.yaml.as_str())
    {
        // Edited here since the scan: leave it; the next sync records the edit.
        return Ok(false);
    }
    let yaml = contents
        .get(&target.yaml)
        .ok_or_else(|| SyncError::Remote(format!("content {} for {} was not fetched", target.yaml, target.path)))?;
    // Never through a linked folder: the path is checked, then written beneath the root.
    fsio::check_beneath(root, &target.path)?;
    if disk_hash(root, &target.path).as_deref() != Some(target.yaml.as_str()) {
        fsio::write_atomic_beneath(root, &target.path, yaml)?;
    }
    if let Some(cpath) = companion_path(&target.path) {
        let cabs = root.join(&cpath);
        match &target.meta {
            Some(hash) => {
                let bytes = contents
                    .get(hash)
                    .ok_or_else(|| SyncError::Remote(format!("content {hash} for {cpath} was not fetched")))?;
                if fs::read(&cabs).ok().map(|b| content_hash(&b)).as_deref() != Some(hash.as_str()) {
                    fsio::write_atomic_beneath(root, &cpath, bytes)?;
                }
            }
            None => {
                if fs::symlink_metadata(&cabs).is_ok() {
                    fsio::remove_beneath(root, &cpath)?;
                }
            }
        }
    }
    Ok(true)
}

/// Remove a moved blueprint's old file (and companion) if it is still what we synced.
fn remove_if_same(root: &Path, rel: &str, yaml: &str, had_meta: bool) -> Result<()> {
    fsio::check_beneath(root, rel)?;
    if disk_hash(root, rel).as_deref() == Some(yaml) {
        fsio::remove_beneath(root, rel)?;
        if had_meta
            && let Some(c) = companion_path(rel)
            && fs::symlink_metadata(root.join(&c)).is_ok()
        {
            fsio::remove_beneath(root, &c)?;
        }
    }
    Ok(())
}

/// The device of a change reference (`<device>/<seq>/<n>`): who introduced a content.
fn origin_device(origin: &str) -> &str {
    origin.split('/').next().unwrap_or_default()
}
