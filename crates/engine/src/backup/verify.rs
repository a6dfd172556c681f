//! Verify: check a snapshot's manifest checksum, then re-read, decompress and re-hash
//! every object it references. Every problem is reported with the paths it affects.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::{CancelToken, Entry, ProgressFn, Repo, report};
use crate::error::{Error, Result};

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// `manifest` (the snapshot's list of files is damaged) or `object` (a content is).
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    pub message: String,
    /// The files this problem affects (all of them for a damaged manifest: none listed).
    pub paths: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub id: String,
    pub ok: bool,
    pub files: u64,
    pub objects: u64,
    /// Uncompressed bytes re-read and re-hashed.
    pub bytes: u64,
    pub problems: Vec<Problem>,
    pub millis: u64,
}

impl Repo {
    /// Verify snapshot `id`. A damaged snapshot is a report with `ok: false`, not an
    /// error; errors are for a missing snapshot or an unreadable repository.
    pub fn verify(&self, id: &str, progress: Option<ProgressFn<'_>>, cancel: &CancelToken) -> Result<VerifyReport> {
        let start = Instant::now();
        let (manifest, checksum_ok) = match self.load_manifest(id) {
            Ok(x) => x,
            Err(Error::Corrupt(msg)) => {
                return Ok(VerifyReport {
                    id: id.to_owned(),
                    ok: false,
                    files: 0,
                    objects: 0,
                    bytes: 0,
                    problems: vec![Problem {
                        kind: "manifest",
                        hash: None,
                        message: format!(
                            "{msg}: the snapshot's file list cannot be read, so nothing in it can be restored"
                        ),
                        paths: Vec::new(),
                    }],
                    millis: start.elapsed().as_millis() as u64,
                });
            }
            Err(e) => return Err(e),
        };
        let mut problems = manifest_problems(&manifest, checksum_ok);
        let (bad, objects, bytes) = self.check_objects(&manifest.entries, progress, cancel)?;
        problems.extend(problems_for(&manifest.entries, &bad));
        Ok(VerifyReport {
            id: id.to_owned(),
            ok: problems.is_empty(),
            files: manifest.files,
            // The file list's chunks were re-read and re-hashed as the manifest loaded.
            objects: objects + manifest.chunks.len() as u64,
            bytes,
            problems,
            millis: start.elapsed().as_millis() as u64,
        })
    }

    /// Re-hash every distinct object of `entries`. Returns the damaged ones (hash →
    /// why), the number of objects and the bytes checked.
    pub(crate) fn check_objects(
        &self,
        entries: &[Entry],
        progress: Option<ProgressFn<'_>>,
        cancel: &CancelToken,
    ) -> Result<(HashMap<String, String>, u64, u64)> {
        let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
        for e in entries {
            sizes.insert(e.hash.as_str(), e.size);
        }
        let mut list: Vec<(&str, u64)> = sizes.into_iter().collect();
        self.read_order(&mut list, |(h, _)| h);
        let total = list.len() as u64;
        let done = AtomicU64::new(0);
        let bytes = AtomicU64::new(0);
        let results: Vec<Result<Option<(String, String)>>> = list
            .par_iter()
            .map_init(super::BlockCache::default, |cache, (hash, size)| {
                cancel.check()?;
                let r = match self.read_object_with(hash, cache) {
                    Ok(data) if data.len() as u64 == *size => {
                        bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                        None
                    }
                    Ok(data) => Some((
                        hash.to_string(),
                        format!("object holds {} bytes where the manifest says {size}", data.len()),
                    )),
                    Err(why) => Some((hash.to_string(), why)),
                };
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(64) || n == total {
                    report(progress, "verify", n, total);
                }
                Ok(r)
            })
            .collect();
        let mut bad = HashMap::new();
        for r in results {
            if let Some((h, why)) = r? {
                bad.insert(h, why);
            }
        }
        Ok((bad, total, bytes.load(Ordering::Relaxed)))
    }
}

pub(crate) fn problems_for(entries: &[Entry], bad: &HashMap<String, String>) -> Vec<Problem> {
    let mut by_hash: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for e in entries {
        if bad.contains_key(&e.hash) {
            let shown = match e.source {
                super::Source::Library => e.path.clone(),
                super::Source::Data => format!("(data) {}", e.path),
            };
            by_hash.entry(e.hash.as_str()).or_default().push(shown);
        }
    }
    by_hash
        .into_iter()
        .map(|(hash, paths)| Problem {
            kind: "object",
            hash: Some(hash.to_owned()),
            message: bad.get(hash).cloned().unwrap_or_default(),
            paths,
        })
        .collect()
}

/// What is wrong with a snapshot's manifest itself: its checksum, and each chunk of its
/// file list that cannot be read (those files cannot be restored: their names are lost).
pub(crate) fn manifest_problems(m: &super::Manifest, checksum_ok: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    if m.damaged_chunks.is_empty() && !checksum_ok {
        out.push(Problem {
            kind: "manifest",
            hash: None,
            message: format!(
                "snapshot {}: the manifest's checksum does not match (it was changed or damaged); paths, dates or modes in it may be wrong",
                m.id
            ),
            paths: Vec::new(),
        });
    }
    for (chunk, why) in &m.damaged_chunks {
        out.push(Problem {
            kind: "manifest",
            hash: Some(chunk.hash.clone()),
            message: format!(
                "snapshot {}: part of its file list ({} files, from {} on) cannot be read: {why}; those files cannot be restored",
                m.id, chunk.files, chunk.first
            ),
            paths: Vec::new(),
        });
    }
    out
}

/// A backup that counts only once verified: take the snapshot (the whole of it is read
/// back from disk right after, so `opts.verified_after` may skip the in-memory frame
/// check), then verify it. A snapshot that fails its verification is no backup: its
/// manifest is removed (so it is never listed, restored from or used as the next
/// backup's parent; its objects stay until a prune) and the result is an error that
/// names the problems.
pub fn backup_verified(
    lib: &crate::library::Library,
    opts: &super::BackupOptions<'_>,
    sealed: Option<&super::credentials::SealedSecrets>,
) -> Result<(super::BackupReport, VerifyReport)> {
    let report = match sealed {
        Some(s) => super::backup_with_secrets(lib, opts, s)?,
        None => super::backup(lib, opts)?,
    };
    let repo = Repo::open(Path::new(&report.repository))?;
    let verify = repo.verify(&report.id, opts.progress, &opts.cancel)?;
    if verify.ok {
        return Ok((report, verify));
    }
    {
        let _lock = repo.lock()?;
        let manifest = repo.manifest_path(&report.id);
        crate::fsio::remove_file(&manifest)
            .map_err(|e| Error::io("cannot remove the failed snapshot", &manifest, e))?;
        if let Some(dir) = manifest.parent() {
            crate::fsio::fsync_dir(dir)?;
        }
    }
    let first = verify.problems.first().map(|p| p.message.clone()).unwrap_or_default();
    Err(Error::Corrupt(format!(
        "the backup failed its verification ({} problem(s); first: {first}): snapshot {} was discarded and is not a \
         backup; check the backup drive, then back up again (or `bpv verify` an earlier snapshot)",
        verify.problems.len(),
        report.id
    )))
}
