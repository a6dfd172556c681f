//! Reading import sources into candidates: single files, folders (recursive, links and
//! special files refused, never followed) and `.zip` archives (through `bundle`).

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use super::bundle::{self, Manifest, Refusal};
use super::import::SourceError;
use super::{CancelToken, Limits};
use crate::error::{Error, Result};
use crate::item::{BLUEPRINT_SUFFIX, COMPANION_SUFFIX};

/// One file to import, before classification.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// Shown to people: the file path, or `bundle.zip!entry/path`.
    pub source: String,
    /// For provenance: the source file or bundle, and the entry inside a bundle.
    pub origin: String,
    pub entry: Option<String>,
    /// Path relative to the source (`/`-separated), used to place it in the library.
    pub rel: String,
    /// `rel` is already a library path (from one of our bundles).
    pub library_rooted: bool,
    pub data: Vec<u8>,
    pub json: bool,
    pub companion: Option<Vec<u8>>,
    /// The manifest's hash for this entry, checked against the bytes.
    pub expected_sha256: Option<String>,
}

/// A file or entry that was refused before being read.
#[derive(Clone, Debug)]
pub(crate) struct Refused {
    pub source: String,
    pub rel: Option<String>,
    pub reason: String,
}

#[derive(Default)]
pub(crate) struct Collected {
    pub candidates: Vec<Candidate>,
    pub refused: Vec<Refused>,
    pub errors: Vec<SourceError>,
    pub ignored: Vec<String>,
}

pub(crate) fn collect(
    sources: &[std::path::PathBuf],
    limits: &Limits,
    cancel: &Option<CancelToken>,
    progress: &mut dyn FnMut(usize),
) -> Result<Collected> {
    let mut out = Collected::default();
    let mut budget = limits.max_total_bytes;
    for src in sources {
        super::check_cancel(cancel)?;
        let shown = src.display().to_string();
        let meta = match fs::symlink_metadata(src) {
            Ok(m) => m,
            Err(e) => {
                out.errors.push(SourceError { source: shown, error: Error::io("cannot read", src, e).to_string() });
                continue;
            }
        };
        // A source named by the user may itself be a link: follow that one, never links inside.
        let meta = if meta.file_type().is_symlink() { fs::metadata(src).unwrap_or(meta) } else { meta };
        let before = out.candidates.len();
        if meta.is_dir() {
            if let Err(e) = collect_folder(src, limits, &mut budget, cancel, &mut out, progress) {
                if matches!(e, Error::Cancelled) {
                    return Err(e);
                }
                out.candidates.truncate(before);
                out.errors.push(SourceError { source: shown, error: e.to_string() });
            }
        } else if meta.is_file() && is_zip_name(src) {
            match collect_zip(src, limits, &mut budget, cancel) {
                Ok(found) => {
                    out.candidates.extend(found.candidates);
                    out.refused.extend(found.refused);
                    out.ignored.extend(found.ignored);
                }
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e) => out.errors.push(SourceError { source: shown, error: e.to_string() }),
            }
        } else if meta.is_file() {
            let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !bundle::is_wanted(&name) {
                out.errors.push(SourceError {
                    source: shown,
                    error:
                        "not a blueprint: import .blueprint.yaml, .yaml, .yml or .json files, folders or .zip bundles"
                            .into(),
                });
                continue;
            }
            if name.ends_with(COMPANION_SUFFIX) {
                out.errors.push(SourceError {
                    source: shown,
                    error: "a companion metadata file: import its blueprint (or the folder holding both) instead"
                        .into(),
                });
                continue;
            }
            match read_capped(src, meta.len(), limits, &mut budget) {
                Ok(data) => {
                    let companion = companion_file_for(src).and_then(|c| read_capped(&c, 0, limits, &mut budget).ok());
                    out.candidates.push(Candidate {
                        source: shown.clone(),
                        origin: shown,
                        entry: None,
                        json: is_json_name(&name),
                        rel: name,
                        library_rooted: false,
                        data,
                        companion,
                        expected_sha256: None,
                    });
                }
                Err(e) => out.errors.push(SourceError { source: shown, error: e.to_string() }),
            }
        } else {
            out.refused.push(Refused {
                source: shown,
                rel: None,
                reason: "not a regular file or folder (a device, pipe or socket)".into(),
            });
        }
        progress(out.candidates.len());
    }
    Ok(out)
}

fn is_zip_name(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

fn is_json_name(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".json")
}

fn companion_file_for(p: &Path) -> Option<std::path::PathBuf> {
    let name = p.file_name()?.to_str()?;
    let stem = name.strip_suffix(BLUEPRINT_SUFFIX)?;
    let c = p.with_file_name(format!("{stem}{COMPANION_SUFFIX}"));
    fs::symlink_metadata(&c).ok().filter(|m| m.is_file()).map(|_| c)
}

fn read_capped(p: &Path, declared: u64, limits: &Limits, budget: &mut u64) -> Result<Vec<u8>> {
    if declared > limits.max_entry_bytes {
        return Err(Error::QuotaExceeded(format!(
            "{} is {declared} bytes, more than the {} allowed per blueprint",
            p.display(),
            limits.max_entry_bytes
        )));
    }
    let f = fs::File::open(p).map_err(|e| Error::io("cannot read", p, e))?;
    let cap = limits.max_entry_bytes.min(*budget);
    let mut data = Vec::new();
    f.take(cap + 1).read_to_end(&mut data).map_err(|e| Error::io("cannot read", p, e))?;
    if data.len() as u64 > cap {
        return Err(Error::QuotaExceeded(format!(
            "{} is larger than the {cap} bytes allowed (per blueprint, or left for this import)",
            p.display()
        )));
    }
    *budget -= data.len() as u64;
    Ok(data)
}

fn collect_folder(
    root: &Path,
    limits: &Limits,
    budget: &mut u64,
    cancel: &Option<CancelToken>,
    out: &mut Collected,
    progress: &mut dyn FnMut(usize),
) -> Result<()> {
    let top = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "imported".into());
    let mut files: Vec<(String, std::path::PathBuf, u64)> = Vec::new();
    let mut companions: HashMap<String, std::path::PathBuf> = HashMap::new();
    let walker = walkdir::WalkDir::new(root).follow_links(false).min_depth(1).sort_by_file_name();
    let mut it = walker.into_iter();
    let mut entries = 0usize;
    while let Some(next) = it.next() {
        super::check_cancel(cancel)?;
        let entry = match next {
            Ok(e) => e,
            Err(e) => {
                let p = e.path().map(|p| p.display().to_string()).unwrap_or_else(|| root.display().to_string());
                out.errors.push(SourceError { source: p, error: format!("cannot read: {e}") });
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let shown = entry.path().display().to_string();
        if name.starts_with('.') {
            // Hidden files and folders (.git, editor swap files, our temps) are not blueprints.
            if entry.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let rel_in = match entry.path().strip_prefix(root) {
            Ok(r) => r.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/"),
            Err(_) => continue,
        };
        if entry.depth() > limits.max_depth {
            out.refused.push(Refused {
                source: shown,
                rel: None,
                reason: format!("nested deeper than {} folders", limits.max_depth),
            });
            if entry.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let ft = entry.file_type();
        if ft.is_symlink() {
            if bundle::is_wanted(&name) || is_followable_dir(entry.path()) {
                out.refused.push(Refused {
                    source: shown,
                    rel: None,
                    reason: "a symbolic link; links are never followed".into(),
                });
            }
            continue;
        }
        if ft.is_dir() {
            continue;
        }
        if !ft.is_file() {
            out.refused.push(Refused {
                source: shown,
                rel: None,
                reason: "not a regular file (a device, pipe or socket)".into(),
            });
            continue;
        }
        entries += 1;
        if entries > limits.max_entries {
            return Err(Error::QuotaExceeded(format!(
                "the folder holds more than {} files; import it in parts",
                limits.max_entries
            )));
        }
        if !bundle::is_wanted(&name) {
            out.ignored.push(shown);
            continue;
        }
        let meta = entry.metadata().map_err(|e| Error::InvalidArgument(format!("cannot read {shown}: {e}")))?;
        if is_hard_link(&meta) {
            out.refused.push(Refused {
                source: shown,
                rel: None,
                reason: "a hard link (the same file has several names); copy it to a plain file to import it".into(),
            });
            continue;
        }
        let rel = format!("{top}/{rel_in}");
        if name.ends_with(COMPANION_SUFFIX) {
            companions.insert(rel, entry.path().to_path_buf());
        } else {
            files.push((rel, entry.path().to_path_buf(), meta.len()));
        }
        if files.len().is_multiple_of(256) {
            progress(out.candidates.len() + files.len());
        }
    }
    for (rel, path, len) in files {
        super::check_cancel(cancel)?;
        let shown = path.display().to_string();
        let data = match read_capped(&path, len, limits, budget) {
            Ok(d) => d,
            Err(e @ Error::QuotaExceeded(_)) => {
                out.refused.push(Refused { source: shown, rel: None, reason: e.to_string() });
                continue;
            }
            Err(e) => {
                out.errors.push(SourceError { source: shown, error: e.to_string() });
                continue;
            }
        };
        let companion = rel
            .strip_suffix(BLUEPRINT_SUFFIX)
            .and_then(|stem| companions.get(&format!("{stem}{COMPANION_SUFFIX}")))
            .and_then(|c| read_capped(c, 0, limits, budget).ok());
        out.candidates.push(Candidate {
            source: shown,
            origin: root.display().to_string(),
            entry: None,
            json: is_json_name(&rel),
            rel,
            library_rooted: false,
            data,
            companion,
            expected_sha256: None,
        });
    }
    Ok(())
}

fn is_followable_dir(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_dir())
}

#[cfg(unix)]
fn is_hard_link(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    meta.nlink() > 1
}

#[cfg(not(unix))]
fn is_hard_link(_meta: &fs::Metadata) -> bool {
    false
}

pub(crate) struct ZipFound {
    pub candidates: Vec<Candidate>,
    pub refused: Vec<Refused>,
    pub ignored: Vec<String>,
}

fn collect_zip(path: &Path, limits: &Limits, budget: &mut u64, cancel: &Option<CancelToken>) -> Result<ZipFound> {
    let shown = path.display().to_string();
    let f = fs::File::open(path).map_err(|e| Error::io("cannot read", path, e))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len > limits.max_archive_bytes {
        return Err(Error::QuotaExceeded(format!(
            "the archive is {len} bytes, more than the {} allowed",
            limits.max_archive_bytes
        )));
    }
    let mut local_budget = *budget;
    let contents = bundle::read_bundle(std::io::BufReader::new(f), limits, &mut local_budget, cancel)?;
    *budget = local_budget;
    Ok(candidates_from_bundle(&shown, contents))
}

/// Turn a read archive into candidates: companions are paired with their blueprints,
/// and a manifest (ours) makes entry paths library paths and supplies hashes to check.
pub(crate) fn candidates_from_bundle(shown: &str, contents: bundle::BundleContents) -> ZipFound {
    let bundle_name = Path::new(shown).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let manifest: Option<Manifest> = contents.manifest;
    let mut companions: HashMap<String, Vec<u8>> = HashMap::new();
    let mut blueprints = Vec::new();
    for e in contents.entries {
        if e.name.ends_with(COMPANION_SUFFIX) {
            companions.insert(e.name, e.data);
        } else {
            blueprints.push(e);
        }
    }
    let by_path: HashMap<&str, &bundle::ManifestEntry> =
        manifest.iter().flat_map(|m| m.entries.iter().map(|e| (e.path.as_str(), e))).collect();
    let mut refused: Vec<Refused> = contents
        .refused
        .into_iter()
        .map(|Refusal { name, reason }| Refused { source: format!("{shown}!{name}"), rel: Some(name), reason })
        .collect();
    let mut candidates = Vec::new();
    for e in blueprints {
        let m = by_path.get(e.name.as_str());
        if manifest.is_some() && m.is_none() {
            refused.push(Refused {
                source: format!("{shown}!{}", e.name),
                rel: Some(e.name.clone()),
                reason: "the entry is not listed in the bundle's manifest (was the bundle altered?)".into(),
            });
            continue;
        }
        let companion_name = m
            .and_then(|m| m.companion.clone())
            .or_else(|| e.name.strip_suffix(BLUEPRINT_SUFFIX).map(|s| format!("{s}{COMPANION_SUFFIX}")));
        let companion = companion_name.and_then(|c| companions.remove(&c));
        candidates.push(Candidate {
            source: format!("{shown}!{}", e.name),
            origin: bundle_name.clone(),
            entry: Some(e.name.clone()),
            json: is_json_name(&e.name),
            library_rooted: manifest.is_some(),
            expected_sha256: m.map(|m| m.sha256.clone()),
            rel: e.name,
            data: e.data,
            companion,
        });
    }
    if let Some(m) = &manifest {
        let present: std::collections::HashSet<&str> = candidates.iter().map(|c| c.rel.as_str()).collect();
        let refused_names: std::collections::HashSet<String> = refused.iter().filter_map(|r| r.rel.clone()).collect();
        for entry in &m.entries {
            if !present.contains(entry.path.as_str()) && !refused_names.contains(&entry.path) {
                refused.push(Refused {
                    source: format!("{shown}!{}", entry.path),
                    rel: Some(entry.path.clone()),
                    reason: "listed in the manifest but missing from the bundle".into(),
                });
            }
        }
    }
    ZipFound { candidates, refused, ignored: contents.ignored.into_iter().map(|n| format!("{shown}!{n}")).collect() }
}
