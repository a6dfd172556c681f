//! Retention and prune. Order matters for crash safety: manifests of forgotten
//! snapshots are removed first; then the live set is computed from ALL remaining
//! manifests; only then are unreferenced objects removed. A crash at any point leaves
//! every kept snapshot whole (at worst some orphan objects remain for the next prune).

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::time::Instant;

use chrono::{DateTime, Datelike};
use serde::Serialize;

use super::{Repo, pack};
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
        self.prune_with_hook(policy, &mut |_| Ok(()))
    }

    /// `prune` with a hook called after each step (`manifest`, `object`); tests use it
    /// to simulate a crash part-way.
    pub fn prune_with_hook(&self, policy: &Retention, hook: &mut dyn FnMut(&str) -> Result<()>) -> Result<PruneReport> {
        let result = self.prune_inner(policy, hook);
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
            match self.load_manifest(&id) {
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

    fn prune_inner(&self, policy: &Retention, hook: &mut dyn FnMut(&str) -> Result<()>) -> Result<PruneReport> {
        check_policy(policy)?;
        let start = Instant::now();
        let _lock = self.lock()?;
        let Selection { kept, removed, mut warnings } = self.select(policy)?;

        // 1. Forget snapshots (manifests first).
        for id in &removed {
            match fsio::remove_durable(&self.manifest_path(id)) {
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            hook("manifest")?;
        }
        // 2. The live set, from every manifest that remains.
        let mut live: HashSet<String> = HashSet::new();
        let mut complete = true;
        for id in self.snapshot_ids()? {
            match self.load_manifest(&id) {
                Ok((m, _)) => live.extend(m.entries.into_iter().map(|e| e.hash)),
                Err(_) => complete = false,
            }
        }
        // 3. Unreferenced objects (and stale temp files).
        let (mut objects_removed, mut bytes_freed) = (0u64, 0u64);
        if !complete {
            warnings.push("a snapshot cannot be read, so no object was removed (nothing it may need is lost)".into());
        } else {
            let objects = self.root.join("objects");
            let dirs = match fs::read_dir(&objects) {
                Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect(),
                Err(_) => Vec::new(),
            };
            for dir in dirs {
                let prefix = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let Ok(rd) = fs::read_dir(&dir) else { continue };
                let mut touched = false;
                for e in rd.filter_map(|e| e.ok()) {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let path = e.path();
                    if fsio::is_temp_name(&name) {
                        fsio::remove_if_stale_temp(&path);
                        continue;
                    }
                    let Some(rest) = name.strip_suffix(".zst") else { continue };
                    if live.contains(&format!("{prefix}{rest}")) {
                        continue;
                    }
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    fsio::remove_file(&path).map_err(|err| Error::io("cannot remove", &path, err))?;
                    objects_removed += 1;
                    bytes_freed += size;
                    touched = true;
                    hook("object")?;
                }
                if touched {
                    fsio::fsync_dir(&dir)?;
                }
            }
        }
        if complete {
            let (n, b) = self.prune_packs(&live, &mut warnings, hook)?;
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
}

impl Repo {
    /// Packs: keep whole-live ones, delete dead ones, rewrite mixed ones (the new pack
    /// is flushed to disk before the old one is removed). Returns (objects, bytes) freed.
    fn prune_packs(
        &self,
        live: &HashSet<String>,
        warnings: &mut Vec<String>,
        hook: &mut dyn FnMut(&str) -> Result<()>,
    ) -> Result<(u64, u64)> {
        let dir = self.packs_dir();
        let names: Vec<String> = match fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect(),
            Err(_) => return Ok((0, 0)),
        };
        let (mut objects, mut bytes) = (0u64, 0u64);
        for name in names {
            let path = dir.join(&name);
            if fsio::is_temp_name(&name) {
                fsio::remove_if_stale_temp(&path);
                continue;
            }
            if !name.ends_with(".pack") {
                continue;
            }
            let entries = match pack::read_index(&path) {
                Ok(e) => e,
                Err(why) => {
                    warnings.push(format!("pack {name} is kept: {why}"));
                    continue;
                }
            };
            let alive: Vec<&(String, u64, u64)> = entries.iter().filter(|(h, _, _)| live.contains(h)).collect();
            if alive.len() == entries.len() {
                continue;
            }
            let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            let mut copied = 0u64;
            if !alive.is_empty() {
                let mut w = pack::PackWriter::create(&dir)?;
                for (hash, offset, len) in &alive {
                    let loc = pack::Loc { pack: std::sync::Arc::from(name.as_str()), offset: *offset, len: *len };
                    match pack::read_frame(&dir, &loc) {
                        Ok(frame) => {
                            if let Err(e) = w.add(hash, &frame) {
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
            fsio::fsync_dir(&dir)?;
            objects += (entries.len() - alive.len()) as u64;
            bytes += size.saturating_sub(copied);
            hook("object")?;
        }
        Ok((objects, bytes))
    }
}

fn check_policy(policy: &Retention) -> Result<()> {
    if policy.keep_last.is_none() && policy.keep_daily.is_none() && policy.keep_weekly.is_none() {
        return Err(Error::InvalidArgument(
            "say what to keep: --keep-last N, --keep-daily N and/or --keep-weekly N".into(),
        ));
    }
    Ok(())
}
