//! Turning files into index documents: the full parallel scan (reindex) and the
//! incremental reconcile that finds what changed while nothing was running.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::blueprint::{self, Companion, MAX_BLUEPRINT_BYTES};
use crate::error::{Error, Result};
use crate::fsio;
use crate::index::{FileState, IndexDoc};
use crate::item::{BLUEPRINT_SUFFIX, COMPANION_SUFFIX, Item, companion_path, stem_of};
use crate::store::content_hash;

/// Progress callback: (done, total).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InvalidFile {
    pub path: String,
    pub error: String,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReindexReport {
    pub indexed: usize,
    pub invalid: Vec<InvalidFile>,
    pub millis: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReconcileReport {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub millis: u64,
}

/// A blueprint file found on disk, with what a stat told us.
pub(crate) struct Found {
    pub rel: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub meta_mtime_ns: Option<i64>,
}

/// Folders deeper than this are not scanned (keys allow at most 32 segments).
const MAX_WALK_DEPTH: usize = 64;

/// Walk the library: every `*.blueprint.yaml` regular file outside hidden folders,
/// folders read in parallel. Symlinks are never followed (they could lead out of the
/// library). Stale temp files from crashed writers are removed on the way.
pub(crate) fn walk(root: &Path, batch_temp_is_orphan: &(dyn Fn(&str) -> bool + Sync)) -> Result<Vec<Found>> {
    // Reading the root must work; an unreadable subfolder must not hide the rest.
    fs::read_dir(root).map_err(|e| Error::io("cannot read library folder", root, e))?;
    let files = walk_dir(root, "", 0, batch_temp_is_orphan);
    let mut companions: HashMap<&str, i64> = HashMap::new();
    for f in files.iter().filter(|f| !f.is_blueprint) {
        companions.insert(f.rel.as_str(), f.mtime_ns);
    }
    Ok(files
        .iter()
        .filter(|f| f.is_blueprint)
        .map(|f| {
            let meta_mtime_ns = companion_path(&f.rel).and_then(|c| companions.get(c.as_str()).copied());
            Found { rel: f.rel.clone(), size: f.size, mtime_ns: f.mtime_ns, meta_mtime_ns }
        })
        .collect())
}

struct WalkedFile {
    rel: String,
    size: u64,
    mtime_ns: i64,
    is_blueprint: bool,
}

fn walk_dir(
    abs: &Path,
    rel: &str,
    depth: usize,
    batch_temp_is_orphan: &(dyn Fn(&str) -> bool + Sync),
) -> Vec<WalkedFile> {
    let Ok(entries) = fs::read_dir(abs) else { return Vec::new() };
    let mut files = Vec::new();
    let mut subdirs: Vec<(std::path::PathBuf, String)> = Vec::new();
    for entry in entries.flatten() {
        let Ok(file_type) = entry.file_type() else { continue };
        let name_os = entry.file_name();
        let Some(name) = name_os.to_str() else { continue };
        let child_rel = if rel.is_empty() { name.to_owned() } else { format!("{rel}/{name}") };
        if file_type.is_dir() {
            if !name.starts_with('.') && depth < MAX_WALK_DEPTH {
                subdirs.push((entry.path(), child_rel));
            }
            continue;
        }
        if !file_type.is_file() {
            continue; // symlinks, sockets, devices: never followed or read
        }
        if fsio::is_temp_name(name) {
            // Temps of a committed batch belong to its journal until it is rolled forward.
            if !name.contains(super::batch::BATCH_MARKER) || batch_temp_is_orphan(name) {
                fsio::remove_if_stale_temp(&entry.path());
            }
            continue;
        }
        let is_blueprint = name.ends_with(BLUEPRINT_SUFFIX);
        if !is_blueprint && !name.ends_with(COMPANION_SUFFIX) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        files.push(WalkedFile { rel: child_rel, size: meta.len(), mtime_ns: fsio::mtime_ns(&meta), is_blueprint });
    }
    let nested: Vec<Vec<WalkedFile>> =
        subdirs.par_iter().map(|(abs, rel)| walk_dir(abs, rel, depth + 1, batch_temp_is_orphan)).collect();
    files.extend(nested.into_iter().flatten());
    files
}

/// Read one blueprint (and its companion) and describe it for the index. Never
/// fails for bad content: such files become invalid items with their error.
pub(crate) fn build_doc(root: &Path, rel: &str) -> Result<IndexDoc> {
    let path = root.join(rel);
    let meta = fs::symlink_metadata(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    if !meta.is_file() {
        return Err(Error::NotFound(rel.to_owned()));
    }
    let bytes = if meta.len() as usize > MAX_BLUEPRINT_BYTES {
        None
    } else {
        Some(fs::read(&path).map_err(|e| Error::io("cannot read", &path, e))?)
    };
    let companion_rel = companion_path(rel);
    let companion_path_abs = companion_rel.as_ref().map(|c| root.join(c));
    let (companion, companion_error, meta_mtime_ns) = match &companion_path_abs {
        Some(cp) => match fs::symlink_metadata(cp) {
            Ok(m) if m.is_file() => match fs::read(cp) {
                Ok(b) => match blueprint::parse_companion(&b) {
                    Ok(c) => (Some(c), None, Some(fsio::mtime_ns(&m))),
                    Err(e) => (None, Some(e), Some(fsio::mtime_ns(&m))),
                },
                Err(e) => return Err(Error::io("cannot read", cp, e)),
            },
            _ => (None, None, None),
        },
        None => (None, None, None),
    };
    Ok(doc_from(rel, &meta, bytes.as_deref(), companion.as_ref(), companion_error, meta_mtime_ns))
}

pub(crate) fn doc_from(
    rel: &str,
    meta: &fs::Metadata,
    bytes: Option<&[u8]>,
    companion: Option<&Companion>,
    companion_error: Option<blueprint::ParseError>,
    meta_mtime_ns: Option<i64>,
) -> IndexDoc {
    let mtime_ns = fsio::mtime_ns(meta);
    // An encrypted blueprint is indexed by its companion's metadata only: its content is
    // never decrypted here, so no plaintext can reach the index.
    let sealed = bytes.is_some_and(crate::secrets::crypto::is_sealed);
    // Marked encrypted in its companion: its content is never indexed, sealed or not.
    let marked = companion.is_some_and(|c| c.encrypted);
    let (analysis, hash) = match bytes {
        Some(b) if sealed || marked => {
            let mut a = blueprint::Analysis::default();
            a.fields.name = companion.and_then(|c| c.extra.get("name")).and_then(|n| n.as_str()).map(str::to_owned);
            if !sealed {
                a.error = Some(blueprint::ParseError {
                    message: "marked encrypted, but the file is not sealed: it was damaged or replaced outside \
                              Blueprint Vault (restore an earlier version with `bpv undo`, or save it again)"
                        .into(),
                    line: None,
                    column: None,
                });
            }
            (a, content_hash(b))
        }
        Some(b) => (blueprint::analyse(b), content_hash(b)),
        None => {
            let a = blueprint::Analysis {
                error: Some(blueprint::ParseError {
                    message: format!("the file is larger than {} MiB", MAX_BLUEPRINT_BYTES >> 20),
                    line: None,
                    column: None,
                }),
                ..Default::default()
            };
            (a, String::new())
        }
    };
    let fields = blueprint::merged_fields(&analysis.fields, companion);
    let mut error = analysis.error.as_ref().map(|e| e.to_string());
    let mut error_line = analysis.error.as_ref().and_then(|e| e.line);
    if error.is_none()
        && let Some(ce) = &companion_error
    {
        let file = companion_path(rel).unwrap_or_default();
        let file = file.rsplit('/').next().unwrap_or_default().to_owned();
        error = Some(format!("{file}: {ce}"));
        error_line = None;
    }
    let modified_ns = meta_mtime_ns.map_or(mtime_ns, |m| m.max(mtime_ns));
    let name = fields.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| stem_of(rel).to_owned());
    let item = Item {
        path: rel.to_owned(),
        id: fields.id.clone(),
        name,
        description: fields.description.clone(),
        tags: fields.tags.clone(),
        author: fields.author.clone(),
        version: fields.version.clone(),
        modified: rfc3339_from_ns(modified_ns),
        size: meta.len(),
        hash,
        encrypted: sealed || marked,
        valid: error.is_none(),
        error,
        error_line,
    };
    // Raw bytes, as `secrets` reads them: a reference counts wherever it is written.
    let secret_refs = match bytes {
        Some(b) if !(sealed || marked) => crate::secrets::secret_references(b),
        _ => Vec::new(),
    };
    let mut content = if sealed || marked {
        String::new()
    } else if analysis.error.is_some() && analysis.content_text.is_empty() {
        // A file we could not parse is still findable by what it says.
        bytes.map(|b| String::from_utf8_lossy(&b[..b.len().min(64 * 1024)]).into_owned()).unwrap_or_default()
    } else {
        analysis.content_text
    };
    // What the YAML says stays findable when the companion overrides it (a
    // description edited in the app must not hide the one the author wrote).
    for (yaml_value, shown) in
        [(&analysis.fields.description, &fields.description), (&analysis.fields.author, &fields.author)]
    {
        if let Some(v) = yaml_value.as_ref().filter(|v| Some(*v) != shown.as_ref()) {
            content.push('\n');
            content.push_str(v);
        }
    }
    // Extra companion fields a user added (a title, a note) are searchable too.
    if let Some(c) = companion {
        collect_strings(&serde_json::Value::Object(c.extra.clone()), &mut content);
    }
    IndexDoc {
        item,
        mtime_ns,
        meta_mtime_ns,
        created: companion.and_then(|c| c.created.clone()),
        node_count: u32::try_from(analysis.nodes.len()).unwrap_or(u32::MAX),
        content,
        secret_refs,
    }
}

pub fn rfc3339_from_ns(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = u32::try_from(ns.rem_euclid(1_000_000_000)).unwrap_or(0);
    chrono::DateTime::from_timestamp(secs, nanos)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Build documents for `rels` in parallel, reporting progress.
pub(crate) fn build_docs(root: &Path, rels: &[String], progress: Option<Progress<'_>>) -> Vec<IndexDoc> {
    let done = std::sync::atomic::AtomicUsize::new(0);
    let total = rels.len();
    rels.par_iter()
        .filter_map(|rel| {
            let doc = build_doc(root, rel).ok();
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if let Some(p) = progress
                && (n.is_multiple_of(256) || n == total)
            {
                p(n, total);
            }
            doc
        })
        .collect()
}

/// Blueprints read and parsed per chunk of a full scan. A chunk in flight is a few MB
/// of documents; [`SCAN_CHUNKS_IN_FLIGHT`] of them wait for the index writer at most.
const SCAN_CHUNK: usize = 2048;
const SCAN_CHUNKS_IN_FLIGHT: usize = 2;

/// The full scan, streamed: walk the library, then read and parse the blueprints in
/// path order, a chunk at a time on the rayon pool (in a thread of its own), while
/// `consume` takes the chunks (the index writer). Parsing and writing overlap, and
/// memory is bounded by the chunks in flight instead of the library's size. When
/// `consume` stops early, the parsing stops too.
pub(crate) fn stream_full_scan<R>(
    root: &Path,
    batch_temp_is_orphan: &(dyn Fn(&str) -> bool + Sync),
    progress: Option<Progress<'_>>,
    consume: impl FnOnce(&mut dyn Iterator<Item = Result<Vec<IndexDoc>>>) -> Result<R>,
) -> Result<R> {
    let mut rels: Vec<String> = walk(root, batch_temp_is_orphan)?.into_iter().map(|f| f.rel).collect();
    rels.sort_unstable();
    let total = rels.len();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<IndexDoc>>(SCAN_CHUNKS_IN_FLIGHT);
    std::thread::scope(|scope| {
        let rels = &rels;
        scope.spawn(move || {
            let mut done = 0;
            for chunk in rels.chunks(SCAN_CHUNK) {
                // A file that vanished since the walk is simply not indexed.
                let docs: Vec<IndexDoc> = chunk.par_iter().filter_map(|rel| build_doc(root, rel).ok()).collect();
                done += chunk.len();
                if let Some(p) = progress {
                    p(done, total);
                }
                if tx.send(docs).is_err() {
                    break; // the consumer stopped (an error): no use parsing the rest
                }
            }
        });
        let mut chunks = rx.iter().map(Ok);
        let result = consume(&mut chunks);
        // Unblock the producer if the consumer returned before draining the channel.
        drop(chunks);
        result
    })
}

/// Compare the files with what the index remembers; return documents to upsert and
/// paths to remove. Unchanged files (same size, mtime and companion mtime) are not read.
pub(crate) fn diff(
    root: &Path,
    known: &HashMap<String, FileState>,
    batch_temp_is_orphan: &(dyn Fn(&str) -> bool + Sync),
    report: &mut ReconcileReport,
) -> Result<(Vec<IndexDoc>, Vec<String>)> {
    let found = walk(root, batch_temp_is_orphan)?;
    diff_found(root, known, &found, report)
}

/// [`diff`] for a walk already made.
pub(crate) fn diff_found(
    root: &Path,
    known: &HashMap<String, FileState>,
    found: &[Found],
    report: &mut ReconcileReport,
) -> Result<(Vec<IndexDoc>, Vec<String>)> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(found.len());
    let mut to_read: Vec<String> = Vec::new();
    for f in found {
        seen.insert(f.rel.as_str());
        match known.get(&f.rel) {
            Some(k) if k.size == f.size && k.mtime_ns == f.mtime_ns && k.meta_mtime_ns == f.meta_mtime_ns => {
                report.unchanged += 1;
            }
            Some(_) => {
                report.changed += 1;
                to_read.push(f.rel.clone());
            }
            None => {
                report.added += 1;
                to_read.push(f.rel.clone());
            }
        }
    }
    let removals: Vec<String> = known.keys().filter(|k| !seen.contains(k.as_str())).cloned().collect();
    report.removed = removals.len();
    let docs = build_docs(root, &to_read, None);
    Ok((docs, removals))
}

fn collect_strings(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::String(s) => {
            out.push('\n');
            out.push_str(s);
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}
