//! Export: blueprints (YAML + companion) to a folder, or to a `.zip` bundle with a
//! manifest. The caller resolves selections (a folder, a tag, search results) to a list
//! of library paths. A secret scan runs first and refuses unless allowed.

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::bundle::{BundleItem, write_bundle};
use super::secrets::{self, SecretWarning};
use super::{CancelToken, Progress, check_cancel, report};
use crate::blueprint;
use crate::error::{Error, Result};
use crate::fsio;
use crate::item::companion_path;
use crate::library::Library;

/// How the refusal of an export because of the secret scan starts (an `InvalidArgument`).
pub const SECRETS_REFUSED: &str = "export refused";

#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Export even when the secret scan finds something (the warnings are still reported).
    pub allow_secrets: bool,
    /// Replace an existing bundle file / existing files in the destination folder.
    pub overwrite: bool,
    pub cancel: Option<CancelToken>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportReport {
    /// Library paths exported.
    pub exported: Vec<String>,
    /// The bundle file or the folder written.
    pub to: String,
    /// `bundle` or `folder`.
    pub kind: String,
    pub warnings: Vec<SecretWarning>,
    /// Files written (blueprints, companions, and the manifest).
    pub files: usize,
    pub bytes: u64,
    pub millis: u64,
}

struct Loaded {
    path: String,
    yaml: Vec<u8>,
    companion: Option<(String, Vec<u8>)>,
    id: Option<String>,
    name: Option<String>,
}

impl Library {
    /// Scan blueprints for credentials (what [`Library::export`] checks first).
    pub fn secret_scan(&self, paths: &[String]) -> Result<Vec<SecretWarning>> {
        let mut out = Vec::new();
        for p in paths {
            let rel = self.item(p)?.path;
            let yaml = self.read(&rel)?;
            out.extend(scan_bytes(&rel, &yaml));
        }
        Ok(out)
    }

    /// Export `paths` to `dest`: a path ending in `.zip` is written as a bundle (atomically:
    /// a temp file renamed into place), anything else is a folder that receives the files at
    /// their paths relative to the deepest folder the exported blueprints share. Refuses
    /// (`InvalidArgument`, nothing written) when the secret scan finds something and
    /// `allow_secrets` is off.
    pub fn export(
        &self,
        paths: &[String],
        dest: &Path,
        opts: &ExportOptions,
        progress: Option<Progress<'_>>,
    ) -> Result<ExportReport> {
        let start = std::time::Instant::now();
        if paths.is_empty() {
            return Err(Error::InvalidArgument("nothing to export: name at least one blueprint".into()));
        }
        // Resolve and de-duplicate first, then read and scan in parallel (order kept).
        let mut items = Vec::with_capacity(paths.len());
        let mut seen = std::collections::HashSet::new();
        for p in paths {
            let item = self.item(p)?;
            if seen.insert(item.path.clone()) {
                items.push(item);
            }
        }
        let done = std::sync::atomic::AtomicUsize::new(0);
        let total = items.len();
        let results: Vec<Result<(Loaded, Vec<SecretWarning>)>> = items
            .into_par_iter()
            .map(|item| {
                check_cancel(&opts.cancel)?;
                let yaml = self.read(&item.path)?;
                let found = scan_bytes(&item.path, &yaml);
                let companion = match companion_path(&item.path) {
                    Some(c) => match fs::read(self.root().join(&c)) {
                        Ok(bytes) => Some((c, bytes)),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                        Err(e) => return Err(Error::io("cannot read", &self.root().join(&c), e)),
                    },
                    None => None,
                };
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n.is_multiple_of(64) {
                    report(progress, "reading", n, total);
                }
                Ok((Loaded { path: item.path, yaml, companion, id: item.id, name: Some(item.name) }, found))
            })
            .collect();
        let mut loaded: Vec<Loaded> = Vec::with_capacity(results.len());
        let mut warnings = Vec::new();
        for r in results {
            let (l, w) = r?;
            loaded.push(l);
            warnings.extend(w);
        }
        if !warnings.is_empty() && !opts.allow_secrets {
            let listed: Vec<String> =
                warnings.iter().take(5).map(|w| format!("{} line {} ({})", w.path, w.line, w.kind)).collect();
            return Err(Error::InvalidArgument(format!(
                "{SECRETS_REFUSED}: {} possible credential(s) found, nothing exported: {}{}; move secrets to the keychain \
                 (reference them as ${{secret:NAME}}) or export anyway with --allow-secrets",
                warnings.len(),
                listed.join(", "),
                if warnings.len() > 5 { ", …" } else { "" }
            )));
        }
        let is_bundle = dest.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        let mut rep = ExportReport {
            exported: loaded.iter().map(|l| l.path.clone()).collect(),
            to: dest.display().to_string(),
            kind: if is_bundle { "bundle" } else { "folder" }.into(),
            warnings,
            ..Default::default()
        };
        if is_bundle {
            self.export_bundle(&loaded, dest, opts, progress, &mut rep)?;
        } else {
            export_folder(&loaded, dest, opts, progress, &mut rep)?;
        }
        rep.millis = start.elapsed().as_millis() as u64;
        Ok(rep)
    }

    fn export_bundle(
        &self,
        loaded: &[Loaded],
        dest: &Path,
        opts: &ExportOptions,
        progress: Option<Progress<'_>>,
        rep: &mut ExportReport,
    ) -> Result<()> {
        if dest.exists() && !opts.overwrite {
            return Err(Error::AlreadyExists(format!(
                "{} already exists; choose another name or delete it first",
                dest.display()
            )));
        }
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        fsio::ensure_dir(&dir)?;
        let file_name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = dir.join(format!(".{file_name}.bpv-tmp-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        let replaces = dest.exists();
        let result = (|| {
            let f = fsio::create_new(&temp).map_err(|e| Error::io("cannot create", &temp, e))?;
            let items: Vec<BundleItem<'_>> = loaded
                .iter()
                .map(|l| BundleItem {
                    path: &l.path,
                    id: l.id.clone(),
                    name: l.name.clone(),
                    yaml: &l.yaml,
                    companion: l.companion.as_ref().map(|(p, b)| (p.clone(), b.as_slice())),
                })
                .collect();
            let total = items.len();
            let cancel = opts.cancel.clone();
            let mut tick = |n: usize| {
                if n.is_multiple_of(64) {
                    report(progress, "exporting", n, total);
                }
                check_cancel(&cancel)
            };
            let (w, manifest) = write_bundle(std::io::BufWriter::new(f), &items, &mut tick)?;
            let f = w.into_inner().map_err(|e| Error::io("cannot write", &temp, e.into_error()))?;
            fsio::sync_file(&f, &temp).map_err(|e| Error::io("cannot flush to disk", &temp, e))?;
            drop(f);
            fsio::rename(&temp, dest).map_err(|e| Error::io("cannot write", dest, e))?;
            fsio::fsync_dir(&dir)?;
            rep.files = manifest.entries.len() + manifest.entries.iter().filter(|e| e.companion.is_some()).count() + 1;
            rep.bytes = fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
            Ok(())
        })();
        if result.is_err() {
            let _ = fsio::remove_file(&temp);
            // A failure after the rename (the folder's fsync): a new bundle is taken back,
            // so a failed export leaves nothing and can be retried.
            if !replaces {
                let _ = fsio::remove_file(dest);
            }
        }
        result
    }
}

fn scan_bytes(path: &str, yaml: &[u8]) -> Vec<SecretWarning> {
    let text = String::from_utf8_lossy(yaml);
    let params = blueprint::analyse(yaml).content_text;
    secrets::scan(path, &text, &params)
}

/// The deepest folder all paths share (`""` when none).
fn common_folder(paths: &[&str]) -> String {
    let mut common: Option<Vec<&str>> = None;
    for p in paths {
        let dir: Vec<&str> = p.rsplit_once('/').map(|(d, _)| d.split('/').collect()).unwrap_or_default();
        common = Some(match common {
            None => dir,
            Some(c) => c.iter().zip(&dir).take_while(|(a, b)| a == b).map(|(a, _)| *a).collect(),
        });
    }
    common.unwrap_or_default().join("/")
}

fn export_folder(
    loaded: &[Loaded],
    dest: &Path,
    opts: &ExportOptions,
    progress: Option<Progress<'_>>,
    rep: &mut ExportReport,
) -> Result<()> {
    let paths: Vec<&str> = loaded.iter().map(|l| l.path.as_str()).collect();
    let base = common_folder(&paths);
    let relative = |p: &str| -> String { if base.is_empty() { p.to_owned() } else { p[base.len() + 1..].to_owned() } };
    let mut files: Vec<(PathBuf, &[u8])> = Vec::new();
    for l in loaded {
        files.push((dest.join(relative(&l.path)), &l.yaml));
        if let Some((c, bytes)) = &l.companion {
            files.push((dest.join(relative(c)), bytes));
        }
    }
    if !opts.overwrite
        && let Some((existing, _)) = files.iter().find(|(p, _)| fs::symlink_metadata(p).is_ok())
    {
        return Err(Error::AlreadyExists(format!(
            "{} already exists; export to an empty folder or delete it first",
            existing.display()
        )));
    }
    let mut written: Vec<&PathBuf> = Vec::new();
    let total = files.len();
    for (n, (path, bytes)) in files.iter().enumerate() {
        // A file this export replaces (overwrite) is kept, in its new version, after a
        // failure: removing it would lose the earlier export's copy too.
        let replaces = fs::symlink_metadata(path).is_ok();
        let step = check_cancel(&opts.cancel).and_then(|_| fsio::write_atomic(path, bytes));
        if let Err(e) = step {
            // Leave the destination as it was: remove the files this export created
            // (this one too: the failure may come after its rename, in the fsync).
            if !replaces {
                let _ = fsio::remove_file(path);
            }
            written.iter().for_each(|p| drop(fsio::remove_file(p)));
            return Err(e);
        }
        if !replaces {
            written.push(path);
        }
        rep.bytes += bytes.len() as u64;
        if n.is_multiple_of(64) {
            report(progress, "exporting", n, total);
        }
    }
    rep.files = files.len();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_folders() {
        assert_eq!(common_folder(&["a/b/x.y", "a/b/c/z.y"]), "a/b");
        assert_eq!(common_folder(&["a/b/x.y"]), "a/b");
        assert_eq!(common_folder(&["a/x.y", "b/z.y"]), "");
        assert_eq!(common_folder(&["x.y"]), "");
    }
}
