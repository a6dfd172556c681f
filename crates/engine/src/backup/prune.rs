//! Retention and prune. Order matters for crash safety: manifests of forgotten
//! snapshots are removed first; then the live set is computed from ALL remaining
//! manifests; only then are unreferenced objects removed. A crash at any point leaves
//! every kept snapshot whole (at worst some orphan objects remain for the next prune).
//! A cancel is checked only between those steps, so it leaves the same guarantee (and,
//! before the first manifest is removed, an unchanged repository).

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Datelike};
use serde::Serialize;

use super::{CancelToken, ProgressFn, Repo, pack, report};
use crate::error::{Error, Result};
use crate::fsio;

/// Which snapshots to keep (the union of the rules). At least one rule is required.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Retention {
    pub keep_last: Option<usize>,
    /// The newest snapshot of each of the last N days that have one.
    pub keep_daily: Option<usize>,
    /// The newest snapshot of each of the last N ISO weeks that have one.
    pub keep_weekly: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PruneReport {
    pub kept: Vec<String>,
    pub removed: Vec<String>,
    pub objects_removed: u64,
    pub bytes_freed: u64,
    /// Things that made prune more careful (e.g. an unreadable manifest: no object removed).
    pub warnings: Vec<String>,
    pub millis: u64,
}

/// What a retention policy keeps and forgets, without changing anything.
#[derive(Clone, Debug, Serialize)]
pub struct PrunePreview {
    /// Newest first.
    pub kept: Vec<String>,
    /// Newest first: the snapshots a prune with this policy would forget.
    pub removed: Vec<String>,
    pub warnings: Vec<String>,
}

struct Selection {
    kept: BTreeSet<String>,
    removed: Vec<String>,
    warnings: Vec<String>,
}

impl Repo {
    /// Which snapshots a prune with `policy` would keep and forget (the app's preview,
    /// `bpv prune --dry-run`). Reads manifests only; takes no lock, writes nothing.
    pub fn prune_preview(&self, policy: &Retention) -> Result<PrunePreview> {
        check_policy(policy)?;
        let Selection { kept, removed, warnings } = self.select(policy)?;
        let mut kept: Vec<String> = kept.into_iter().collect();
        kept.reverse();
        Ok(PrunePreview { kept, removed, warnings })
    }

    /// Forget snapshots outside `policy`, then remove objects no snapshot references.
    pub fn prune(&self, policy: &Retention) -> Result<PruneReport> {
        self.prune_with_progress(policy, None, &CancelToken::new())
    }

    /// [`Repo::prune`] with progress and a cancel switch (the arguments of
    /// [`Repo::verify`]). Phases, each with its total known before it starts: `forget`
    /// (per manifest removed), `scan` (per remaining manifest read for the live set),
    /// `objects` (per loose object examined), `packs` (per pack examined). `cancel` is
    /// checked between steps; a cancelled prune fails with `cancelled` and leaves the
    /// repository as a crash at that point would (every kept snapshot whole, maybe some
    /// orphans for the next prune); cancelled before the first manifest goes, nothing
    /// has changed.
    pub fn prune_with_progress(
        &self,
        policy: &Retention,
        progress: Option<ProgressFn<'_>>,
        cancel: &CancelToken,
    ) -> Result<PruneReport> {
        self.prune_run(policy, &mut Steps { progress, cancel, hook: &mut |_| Ok(()) })
    }

    /// `prune` with a hook called after each step (`manifest`, `object`); tests use it
    /// to simulate a crash part-way.
    pub fn prune_with_hook(&self, policy: &Retention, hook: &mut dyn FnMut(&str) -> Result<()>) -> Result<PruneReport> {
        self.prune_run(policy, &mut Steps { progress: None, cancel: &CancelToken::new(), hook })
    }

    fn prune_run(&self, policy: &Retention, steps: &mut Steps<'_, '_>) -> Result<PruneReport> {
        let result = self.prune_inner(policy, steps);
        // Packs may have been rewritten, even by a prune that stopped part-way.
        self.reload_packs();
        result
    }

    /// The snapshots `policy` keeps (damaged ones always) and the ones it forgets.
    fn select(&self, policy: &Retention) -> Result<Selection> {
        let mut warnings = Vec::new();
        // Newest first; damaged manifests are always kept.
        let mut dated = Vec::new();
        let mut kept: BTreeSet<String> = BTreeSet::new();
        for id in self.snapshot_ids()?.into_iter().rev() {
            match self.load_root(&id) {
                Ok((m, _)) => match DateTime::parse_from_rfc3339(&m.created) {
                    Ok(t) => dated.push((id, t.with_timezone(&chrono::Utc))),
                    Err(_) => {
                        kept.insert(id);
                    }
                },
                Err(_) => {
                    warnings.push(format!("snapshot {id} cannot be read; it is kept"));
                    kept.insert(id);
                }
            }
        }
        if let Some(n) = policy.keep_last {
            kept.extend(dated.iter().take(n).map(|(id, _)| id.clone()));
        }
        let mut by_bucket = |n: usize, bucket: &dyn Fn(&DateTime<chrono::Utc>) -> (i32, u32)| {
            let mut seen = Vec::new();
            for (id, t) in &dated {
                let b = bucket(t);
                if seen.contains(&b) {
                    continue;
                }
                if seen.len() >= n {
                    break;
                }
                seen.push(b);
                kept.insert(id.clone());
            }
        };
        if let Some(n) = policy.keep_daily {
            by_bucket(n, &|t| (t.year(), t.ordinal()));
        }
        if let Some(n) = policy.keep_weekly {
            by_bucket(n, &|t| (t.iso_week().year(), t.iso_week().week()));
        }
        let removed: Vec<String> = dated.iter().map(|(id, _)| id.clone()).filter(|id| !kept.contains(id)).collect();
        Ok(Selection { kept, removed, warnings })
    }

    fn prune_inner(&self, policy: &Retention, steps: &mut Steps<'_, '_>) -> Result<PruneReport> {
        check_policy(policy)?;
        let start = Instant::now();
        let _lock = self.lock()?;
        let Selection { kept, removed, mut warnings } = self.select(policy)?;

        // 1. Forget snapshots (manifests first). A cancel before the first removal
        // leaves the repository untouched.
        // Each phase checks the switch before its first report, so nothing is reported
        // after a cancel.
        steps.cancel.check()?;
        let total = removed.len() as u64;
        report(steps.progress, "forget", 0, total);
        for (i, id) in removed.iter().enumerate() {
            steps.cancel.check()?;
            match fsio::remove_durable(&self.manifest_path(id)) {
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            (steps.hook)("manifest")?;
            report(steps.progress, "forget", i as u64 + 1, total);
        }
        // 2. The live set, from every manifest that remains.
        let (live, complete) = self.live_objects(steps.progress, steps.cancel)?;
        // 3. Unreferenced objects (and stale temp files), loose then packed.
        let (mut objects_removed, mut bytes_freed) = (0u64, 0u64);
        if !complete {
            warnings.push("a snapshot cannot be read, so no object was removed (nothing it may need is lost)".into());
        } else {
            let (n, b) = self.prune_loose(&live, steps)?;
            objects_removed += n;
            bytes_freed += b;
            let (n, b) = self.prune_packs(&live, &mut warnings, steps)?;
            objects_removed += n;
            bytes_freed += b;
        }
        let mut kept: Vec<String> = kept.into_iter().collect();
        kept.sort();
        Ok(PruneReport {
            kept,
            removed,
            objects_removed,
            bytes_freed,
            warnings,
            millis: start.elapsed().as_millis() as u64,
        })
    }

    /// The objects every remaining manifest references, and whether every manifest
    /// could be read (when one cannot, nothing may be removed: it may need anything).
    /// The one place that decides what is live.
    fn live_objects(&self, progress: Option<ProgressFn<'_>>, cancel: &CancelToken) -> Result<(HashSet<String>, bool)> {
        cancel.check()?;
        let ids = self.snapshot_ids()?;
        let total = ids.len() as u64;
        report(progress, "scan", 0, total);
        let mut live: HashSet<String> = HashSet::new();
        let mut complete = true;
        for (i, id) in ids.iter().enumerate() {
            cancel.check()?;
            match self.load_manifest(id) {
                Ok((m, _)) => {
                    // A chunk that cannot be read hides what its files need: keep everything.
                    complete &= m.damaged_chunks.is_empty();
                    live.extend(m.chunks.into_iter().map(|c| c.hash));
                    live.extend(m.entries.into_iter().map(|e| e.hash));
                }
                Err(_) => complete = false,
            }
            report(progress, "scan", i as u64 + 1, total);
        }
        Ok((live, complete))
    }

    /// Loose objects no manifest references (and stale temp files). Returns (objects,
    /// bytes) freed.
    fn prune_loose(&self, live: &HashSet<String>, steps: &mut Steps<'_, '_>) -> Result<(u64, u64)> {
        steps.cancel.check()?;
        // Listed first so the phase's total is known before it starts.
        let mut files: Vec<(PathBuf, String, String)> = Vec::new();
        for dir in fs::read_dir(self.root.join("objects")).into_iter().flatten().flatten() {
            let dir = dir.path();
            if !dir.is_dir() {
                continue;
            }
            let prefix = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                files.push((dir.clone(), prefix.clone(), e.file_name().to_string_lossy().into_owned()));
            }
        }
        let total = files.len() as u64;
        report(steps.progress, "objects", 0, total);
        let (mut objects, mut bytes) = (0u64, 0u64);
        let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
        let mut result = Ok(());
        for (i, (dir, prefix, name)) in files.iter().enumerate() {
            if let Err(e) = steps.cancel.check() {
                result = Err(e);
                break;
            }
            let path = dir.join(name);
            if fsio::is_temp_name(name) {
                fsio::remove_if_stale_temp(&path);
            } else if let Some(rest) = name.strip_suffix(".zst")
                && !live.contains(&format!("{prefix}{rest}"))
            {
                let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
                if let Err(err) = fsio::remove_file(&path) {
                    result = Err(Error::io("cannot remove", &path, err));
                    break;
                }
                objects += 1;
                bytes += size;
                touched.insert(dir.clone());
                if let Err(e) = (steps.hook)("object") {
                    result = Err(e);
                    break;
                }
            }
            report(steps.progress, "objects", i as u64 + 1, total);
        }
        // The removals made so far reach the disk even when stopped part-way (a
        // cancel is not a crash: what it reports as done is done).
        for dir in &touched {
            let synced = fsio::fsync_dir(dir);
            if result.is_ok() {
                result = synced;
            }
        }
        result.map(|()| (objects, bytes))
    }

    /// Packs: keep whole-live ones, delete dead ones, rewrite mixed ones (the new pack
    /// is flushed to disk before the old one is removed). Returns (objects, bytes) freed.
    fn prune_packs(
        &self,
        live: &HashSet<String>,
        warnings: &mut Vec<String>,
        steps: &mut Steps<'_, '_>,
    ) -> Result<(u64, u64)> {
        steps.cancel.check()?;
        let dir = self.packs_dir();
        let names: Vec<String> = match fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect(),
            Err(_) => Vec::new(),
        };
        let total = names.len() as u64;
        report(steps.progress, "packs", 0, total);
        let (mut objects, mut bytes) = (0u64, 0u64);
        for (i, name) in names.iter().enumerate() {
            // Between packs only: a pack is rewritten, flushed and its old copy
            // removed as one step.
            steps.cancel.check()?;
            if let Some((n, b)) = self.prune_pack(&dir, name, live, warnings)? {
                objects += n;
                bytes += b;
                (steps.hook)("object")?;
            }
            report(steps.progress, "packs", i as u64 + 1, total);
        }
        Ok((objects, bytes))
    }

    /// One pack; `Some((objects, bytes))` freed when it was removed or rewritten.
    fn prune_pack(
        &self,
        dir: &Path,
        name: &str,
        live: &HashSet<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<(u64, u64)>> {
        let path = dir.join(name);
        if fsio::is_temp_name(name) {
            fsio::remove_if_stale_temp(&path);
            return Ok(None);
        }
        if !name.ends_with(".pack") {
            return Ok(None);
        }
        let entries = match pack::read_index(&path) {
            Ok(e) => e,
            Err(why) => {
                warnings.push(format!("pack {name} is kept: {why}"));
                return Ok(None);
            }
        };
        let alive: Vec<&pack::IndexEntry> = entries.iter().filter(|e| live.contains(e.hash())).collect();
        if alive.len() == entries.len() {
            return Ok(None);
        }
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let mut copied = 0u64;
        if !alive.is_empty() {
            // Each frame with a live object is copied once, with only its live entries
            // (a block's dead objects stay in its bytes, but no index names them).
            let mut frames: std::collections::BTreeMap<(u64, u64), Vec<&pack::IndexEntry>> = Default::default();
            for e in &alive {
                frames.entry(e.frame()).or_default().push(e);
            }
            let mut w = pack::PackWriter::create(dir, Vec::new())?;
            let pack_name: std::sync::Arc<str> = std::sync::Arc::from(name);
            for ((offset, len), objects) in &frames {
                let loc = pack::Loc { pack: pack_name.clone(), offset: *offset, len: *len, slice: None };
                match pack::read_frame(dir, &loc) {
                    Ok(frame) => {
                        if let Err(e) = w.add_copied(&frame, objects) {
                            w.abandon();
                            return Err(e);
                        }
                        copied += *len;
                    }
                    Err(why) => {
                        w.abandon();
                        return Err(Error::Corrupt(format!(
                            "pack {name} cannot be read ({why}); nothing was removed from it"
                        )));
                    }
                }
            }
            w.finish()?; // fsynced and named before the old pack goes
        }
        fsio::remove_file(&path).map_err(|err| Error::io("cannot remove", &path, err))?;
        fsio::fsync_dir(dir)?;
        Ok(Some(((entries.len() - alive.len()) as u64, size.saturating_sub(copied))))
    }
}

/// What a running prune reports to and answers to.
struct Steps<'a, 'h> {
    progress: Option<ProgressFn<'a>>,
    cancel: &'a CancelToken,
    /// Called after each step (tests: a crash part-way).
    hook: &'h mut dyn FnMut(&str) -> Result<()>,
}

fn check_policy(policy: &Retention) -> Result<()> {
    if policy.keep_last.is_none() && policy.keep_daily.is_none() && policy.keep_weekly.is_none() {
        return Err(Error::InvalidArgument(
            "say what to keep: --keep-last N, --keep-daily N and/or --keep-weekly N".into(),
        ));
    }
    Ok(())
}
