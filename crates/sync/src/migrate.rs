//! `bpv migrate --to URL`: copy a library to another backend, with progress, a final
//! byte-for-byte check, and resume after an interruption.
//!
//! - `s3://BUCKET[/PREFIX]`: the copy is a team library (the sync protocol's layout),
//!   written by a device of its own whose state lives in the source library's private
//!   area (`<area>/migrations/<target>/sync/`), so a second run resumes where the first
//!   stopped; the library's own link (if any) is untouched. Anyone can then link to it.
//! - `file:///DIR` or a plain path: a new library in DIR (blueprints and companions
//!   copied durably, files already there with the right bytes skipped on resume),
//!   indexed, and checked byte for byte against the source.
//!
//! A target must be empty, or hold only a previous attempt of the same migration:
//! for a folder, `.bpv-migration.json` naming this library (removed once verified);
//! for a bucket, nothing but objects of this migration's device and contents.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bpv_engine::fsio;
use bpv_engine::index::ListQuery;
use bpv_engine::item::companion_path;
use bpv_engine::library::{Library, OpenOptions};
use bpv_engine::store::content_hash;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{self, Credentials, LinkConfig};
use crate::error::{Result, SyncError};
use crate::remote::Remote;
use crate::sync::{ProgressFn, Syncer};

/// Where a migration goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Folder(PathBuf),
    Bucket { bucket: String, prefix: String },
}

impl Target {
    /// `s3://BUCKET[/PREFIX]`, `file:///DIR`, or a plain path.
    pub fn parse(url: &str) -> Result<Target> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(SyncError::Config(format!("{url:?}: give a bucket, as s3://BUCKET[/PREFIX]")));
            }
            return Ok(Target::Bucket { bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned() });
        }
        let path = match url.strip_prefix("file://") {
            Some(p) if p.starts_with('/') => p,
            Some(_) => {
                return Err(SyncError::Config(format!("{url:?}: a file URL needs an absolute path (file:///DIR)")));
            }
            None if url.contains("://") => {
                return Err(SyncError::Config(format!(
                    "{url:?}: migrate to s3://BUCKET[/PREFIX], file:///DIR or a folder path"
                )));
            }
            None => url,
        };
        if path.is_empty() {
            return Err(SyncError::Config("give the folder to migrate to".into()));
        }
        Ok(Target::Folder(PathBuf::from(path)))
    }
}

/// Where the bucket is and how to reach it (the URL names only bucket and prefix).
#[derive(Clone, Debug)]
pub struct BucketAccess {
    pub endpoints: Vec<String>,
    pub region: String,
    pub path_style: bool,
    pub credentials: Credentials,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct MigrateToReport {
    pub target: String,
    pub blueprints: usize,
    pub invalid: usize,
    /// An earlier attempt of this migration was found and continued.
    pub resumed: bool,
    /// Files (folder) or changes (bucket) written by this run.
    pub copied: usize,
    /// Files already in place from an earlier attempt (folder).
    pub skipped: usize,
    pub bytes: u64,
    /// Blueprints checked byte for byte at the end (0 for a dry run).
    pub verified: usize,
    pub dry_run: bool,
    pub millis: u64,
}

const FOLDER_MARKER: &str = ".bpv-migration.json";

#[derive(Serialize, Deserialize)]
struct FolderMarker {
    source: String,
}

fn all_items(lib: &Library) -> Result<(Vec<bpv_engine::item::Item>, usize)> {
    let page = lib.list(&ListQuery { limit: usize::MAX / 4, ..ListQuery::default() })?;
    let invalid = page.items.iter().filter(|i| !i.valid).count();
    Ok((page.items, invalid))
}

/// Library-relative files to copy: every blueprint and its companion if it has one.
fn files_of(lib: &Library, items: &[bpv_engine::item::Item]) -> Vec<String> {
    let mut out = Vec::with_capacity(items.len() * 2);
    for item in items {
        out.push(item.path.clone());
        if let Some(c) = companion_path(&item.path)
            && lib.root().join(&c).is_file()
        {
            out.push(c);
        }
    }
    out
}

fn tick(progress: Option<&ProgressFn>, phase: &str, done: usize, total: usize) {
    if let Some(p) = progress
        && (done.is_multiple_of(200) || done == total)
    {
        p(phase, done, total);
    }
}

/// Copy `lib` into a new library at `dir` (see the module doc). `data_dir` is where the
/// new library's index goes (the source's data dir).
pub fn migrate_to_folder(
    lib: &Library,
    dir: &Path,
    data_dir: &Path,
    dry_run: bool,
    progress: Option<&ProgressFn>,
) -> Result<MigrateToReport> {
    let start = Instant::now();
    let target = std::path::absolute(dir).map_err(|e| bpv_engine::Error::io("cannot resolve", dir, e))?;
    let source = lib.root().to_path_buf();
    let resolved = fs::canonicalize(&target).unwrap_or_else(|_| target.clone());
    if resolved.starts_with(&source) || source.starts_with(&resolved) {
        return Err(SyncError::Config(format!(
            "{} overlaps the library itself ({}): migrate to a folder outside it",
            target.display(),
            source.display()
        )));
    }
    let resumed = check_folder_target(&target, &source)?;
    let (items, invalid) = all_items(lib)?;
    let files = files_of(lib, &items);
    let mut report = MigrateToReport {
        target: format!("file://{}", target.display()),
        blueprints: items.len(),
        invalid,
        resumed,
        dry_run,
        ..MigrateToReport::default()
    };
    if dry_run {
        report.millis = start.elapsed().as_millis() as u64;
        return Ok(report);
    }
    fsio::ensure_dir(&target)?;
    // An earlier attempt's folders may have been replaced by links since: refused before
    // the layout is made (which would create folders through them).
    for folder in bpv_engine::paths::LIBRARY_FOLDERS {
        fsio::check_beneath(&target, &format!("{folder}/{FOLDER_MARKER}"))?;
    }
    if !resumed {
        let marker = FolderMarker { source: source.to_string_lossy().into_owned() };
        let body = serde_json::to_vec(&marker).map_err(|e| SyncError::Config(e.to_string()))?;
        fsio::write_atomic(&target.join(FOLDER_MARKER), &body)?;
    }
    bpv_engine::library::init_layout(&target)?;
    if resumed {
        // Blueprints an earlier attempt copied that this library no longer has.
        let wanted: BTreeSet<&str> = files.iter().map(String::as_str).collect();
        for rel in blueprint_files_under(&target)? {
            if !wanted.contains(rel.as_str()) {
                fsio::remove_beneath(&target, &rel)?;
            }
        }
    }

    // Copy (in parallel: each write is durable, and fsyncs overlap).
    let total = files.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let outcomes: Vec<Result<(bool, u64)>> = files
        .par_iter()
        .map(|rel| {
            let bytes =
                fs::read(source.join(rel)).map_err(|e| bpv_engine::Error::io("cannot read", &source.join(rel), e))?;
            let to = target.join(rel);
            // Never through a link out of the target (a folder left by an earlier attempt
            // could be one): every folder along the path is opened without following links.
            fsio::check_beneath(&target, rel)?;
            let already = fs::read(&to).is_ok_and(|b| b == bytes);
            if !already {
                // Plain writes, flushed all at once below (one fsync per file would make
                // a 10k copy ten times slower); until then the marker says "unfinished"
                // and a resumed run compares every file again.
                if let Some(parent) = to.parent() {
                    fs::create_dir_all(parent).map_err(|e| bpv_engine::Error::io("cannot create", parent, e))?;
                }
                fs::write(&to, &bytes).map_err(|e| bpv_engine::Error::io("cannot write", &to, e))?;
            }
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            tick(progress, "copy", n, total);
            Ok((!already, bytes.len() as u64))
        })
        .collect();
    for outcome in outcomes {
        let (copied, bytes) = outcome?;
        if copied {
            report.copied += 1;
            report.bytes += bytes;
        } else {
            report.skipped += 1;
        }
    }

    flush_folder(&target, &files)?;

    // Verify: every file byte for byte, no blueprint there that is not here, and the new
    // library opens and lists them all.
    let done = std::sync::atomic::AtomicUsize::new(0);
    files.par_iter().try_for_each(|rel| {
        let here = fs::read(source.join(rel))
            .map_err(|e| SyncError::Verify(format!("{rel}: cannot read the source again: {e}")))?;
        let there =
            fs::read(target.join(rel)).map_err(|e| SyncError::Verify(format!("{rel}: missing in the target: {e}")))?;
        if content_hash(&here) != content_hash(&there) {
            return Err(SyncError::Verify(format!(
                "{rel} differs (changed during the migration? run it again to resume)"
            )));
        }
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        tick(progress, "verify", n, total);
        Ok(())
    })?;
    let expected: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let mut opts = OpenOptions::new(&target);
    opts.data_dir = Some(data_dir.to_path_buf());
    // Opening indexes the new library (a fresh index is built from the files).
    let copy = Library::open(opts)?;
    let (copied_items, _) = all_items(&copy)?;
    if let Some(extra) = copied_items.iter().find(|i| !expected.contains(i.path.as_str())) {
        return Err(SyncError::Verify(format!("{} is in the target but not in this library", extra.path)));
    }
    if copied_items.len() != items.len() {
        return Err(SyncError::Verify(format!(
            "{} blueprints here, {} in the new library",
            items.len(),
            copied_items.len()
        )));
    }
    fsio::remove_durable(&target.join(FOLDER_MARKER))?;
    report.verified = items.len();
    report.millis = start.elapsed().as_millis() as u64;
    Ok(report)
}

/// Make every copied file and folder durable before the copy is declared done.
#[cfg(target_os = "linux")]
fn flush_folder(target: &Path, _files: &[String]) -> Result<()> {
    fsio::syncfs(target).map_err(|e| bpv_engine::Error::io("cannot flush", target, e))?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn flush_folder(target: &Path, files: &[String]) -> Result<()> {
    let mut dirs = BTreeSet::new();
    for rel in files {
        let path = target.join(rel);
        let f = fs::File::open(&path).map_err(|e| bpv_engine::Error::io("cannot open", &path, e))?;
        f.sync_all().map_err(|e| bpv_engine::Error::io("cannot flush", &path, e))?;
        dirs.extend(path.parent().map(Path::to_path_buf));
    }
    for dir in dirs {
        fsio::fsync_dir(&dir)?;
    }
    Ok(())
}

/// Library-relative paths of the blueprint and companion files under `root`.
fn blueprint_files_under(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| bpv_engine::Error::io("cannot read", &dir, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let rel = rel.to_string_lossy().replace('\\', "/");
                if rel.ends_with(".blueprint.yaml") || rel.ends_with(".blueprint.meta.json") {
                    out.push(rel);
                }
            }
        }
    }
    Ok(out)
}

/// `Ok(false)`: empty or absent (a new migration); `Ok(true)`: an earlier attempt of this one.
fn check_folder_target(target: &Path, source: &Path) -> Result<bool> {
    let mut entries = match fs::read_dir(target) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(bpv_engine::Error::io("cannot read", target, e).into()),
    };
    if entries.next().is_none() {
        return Ok(false);
    }
    let marker: Option<FolderMarker> =
        fs::read(target.join(FOLDER_MARKER)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    match marker {
        Some(m) if Path::new(&m.source) == source => Ok(true),
        Some(m) => Err(SyncError::Config(format!(
            "{} holds an unfinished migration of another library ({}): choose an empty folder",
            target.display(),
            m.source
        ))),
        None => Err(SyncError::Config(format!(
            "{} is not empty and is not an earlier attempt of this migration: choose an empty folder",
            target.display()
        ))),
    }
}

/// The private folder of a migration to `bucket/prefix` (its device's link and state).
fn migration_area(lib: &Library, bucket: &str, prefix: &str) -> PathBuf {
    let hash = content_hash(format!("{bucket}/{prefix}").as_bytes());
    lib.area().join("migrations").join(format!("s3-{}", &hash[..16]))
}

/// Copy `lib` into a new team library at `bucket/prefix` (see the module doc).
pub fn migrate_to_bucket(
    lib: &Library,
    bucket: &str,
    prefix: &str,
    access: &BucketAccess,
    dry_run: bool,
    progress: Option<Box<ProgressFn>>,
) -> Result<MigrateToReport> {
    let start = Instant::now();
    let area = migration_area(lib, bucket, prefix);
    let mut link = match config::load_link(&area)? {
        Some(previous) => previous,
        None => LinkConfig::new(access.endpoints.clone(), bucket, prefix, None)?,
    };
    link.endpoints.clone_from(&access.endpoints);
    link.region.clone_from(&access.region);
    link.path_style = access.path_style;
    if link.endpoints.iter().any(|e| !(e.starts_with("http://") || e.starts_with("https://"))) {
        return Err(SyncError::Config("give the store's endpoint, as --endpoint http(s)://host:port".into()));
    }
    let remote = Remote::open(&link, &access.credentials)?;
    let had_state = config::sync_dir(&area).join("link.json").exists();
    let resumed = check_bucket_target(&remote, &link.device_id, had_state)?;
    if had_state && !resumed && !dry_run {
        // Our earlier attempt left nothing in the bucket (emptied since): start afresh.
        fs::remove_dir_all(&area).map_err(|e| bpv_engine::Error::io("cannot remove", &area, e))?;
        link =
            LinkConfig { device_id: LinkConfig::new(link.endpoints.clone(), bucket, prefix, None)?.device_id, ..link };
    }
    let (items, invalid) = all_items(lib)?;
    let mut report = MigrateToReport {
        target: format!("s3://{bucket}{}{prefix}", if prefix.is_empty() { "" } else { "/" }),
        blueprints: items.len(),
        invalid,
        resumed,
        dry_run,
        ..MigrateToReport::default()
    };
    if dry_run {
        report.millis = start.elapsed().as_millis() as u64;
        return Ok(report);
    }
    config::save_link(&area, &link)?;
    let mut syncer = Syncer::with_state_dir(config::sync_dir(&area), link, remote)?;
    if let Some(p) = progress {
        syncer.set_progress(p);
    }
    syncer.probe()?;
    let sync = syncer.sync(lib)?;
    report.copied = sync.sent;
    report.verified = syncer.verify(lib)?;
    report.millis = start.elapsed().as_millis() as u64;
    Ok(report)
}

/// `Ok(false)`: empty; `Ok(true)`: holds only our device's earlier attempt.
fn check_bucket_target(remote: &Remote, device: &str, had_state: bool) -> Result<bool> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| bpv_engine::Error::Io { context: "starting the migration runtime".into(), source: e })?;
    let keys = runtime.block_on(remote.list(""))?;
    if keys.is_empty() {
        return Ok(false);
    }
    let ours = |k: &str| {
        k == format!("devices/{device}.json")
            || k.starts_with(&format!("logs/{device}/"))
            || k.ends_with(&format!("-{device}.json")) && k.starts_with("snapshots/")
            || k.starts_with("blobs/")
    };
    let mine = keys.iter().any(|k| k == &format!("devices/{device}.json"));
    match keys.iter().find(|k| !ours(k)) {
        None if had_state && mine => Ok(true),
        Some(other) if had_state && mine => Err(SyncError::Config(format!(
            "the target has changed since the earlier attempt of this migration ({other} is not from it): \
             migrate to an empty bucket or prefix"
        ))),
        _ => Err(SyncError::Config(format!(
            "the target holds {} object(s) and is not an earlier attempt of this migration: \
             migrate to an empty bucket or prefix",
            keys.len()
        ))),
    }
}

/// Keys for a migration's bucket: the environment (`BPV_SYNC_ACCESS_KEY_ID`/…, or the
/// standard `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`), else the OS-keychain credential
/// named (value `ACCESS_KEY_ID:SECRET`). Never the linked team library's own keys.
pub fn bucket_credentials(lib: &Library, credential: Option<&str>) -> Result<Credentials> {
    let env = |a: &str, b: &str| std::env::var(a).ok().or_else(|| std::env::var(b).ok()).filter(|v| !v.is_empty());
    if let (Some(id), Some(secret)) =
        (env("BPV_SYNC_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"), env("BPV_SYNC_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"))
    {
        return Ok(Credentials { access_key_id: id, secret_access_key: secret });
    }
    let Some(name) = credential else {
        return Err(SyncError::Config(
            "no access keys for the target: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --credential NAME \
             (a keychain credential ACCESS_KEY_ID:SECRET made with `bpv creds set NAME`)"
                .into(),
        ));
    };
    let mut link = LinkConfig::new(vec!["http://unused.invalid".into()], "unused", "", Some(String::new()))?;
    link.credential = Some(name.to_owned());
    config::credentials_for(lib, &link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            Target::parse("s3://team/a/b/").unwrap(),
            Target::Bucket { bucket: "team".into(), prefix: "a/b".into() }
        );
        assert_eq!(Target::parse("s3://team").unwrap(), Target::Bucket { bucket: "team".into(), prefix: "".into() });
        assert_eq!(Target::parse("file:///tmp/x").unwrap(), Target::Folder("/tmp/x".into()));
        assert_eq!(Target::parse("some/dir").unwrap(), Target::Folder("some/dir".into()));
        assert!(Target::parse("s3:///x").is_err());
        assert!(Target::parse("gs://bucket").is_err());
        assert!(Target::parse("file://relative").is_err());
    }
}
