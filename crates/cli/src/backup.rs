//! `bpv backup | backups | verify | restore | prune`: thin wrappers over
//! `bpv_engine::backup`.

use std::path::{Path, PathBuf};

use bpv_engine::backup::{
    self, BackupOptions, CancelToken, Progress, Repo, RestoreOptions, Retention, restore_file_into_library,
    restore_in_place,
};
use bpv_engine::secrets::Secrets;
use bpv_engine::{Error, Result};
use clap::Subcommand;
use serde::Serialize;

use crate::output::{self, Out};
use crate::{Cli, open, open_unindexed};

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Take a snapshot of the library (files, trash, history) into a backup repository.
    Backup {
        /// Repository folder (default: the library's backup location in the data dir).
        #[arg(long, value_name = "REPO")]
        to: Option<PathBuf>,
        /// Also store the credential values, sealed with a backup passphrase
        /// ($BPV_BACKUP_PASSPHRASE, else the first line of stdin).
        #[arg(long)]
        with_secrets: bool,
    },
    /// List the snapshots of a repository, newest first.
    Backups {
        #[arg(long, value_name = "REPO")]
        from: Option<PathBuf>,
        /// List the files of snapshot ID instead.
        #[arg(long, value_name = "ID")]
        contents: Option<String>,
    },
    /// Re-read and re-hash everything a snapshot references.
    Verify {
        id: String,
        #[arg(long, value_name = "REPO")]
        from: Option<PathBuf>,
    },
    /// Restore a snapshot: to a new folder (--to), over the library (--in-place), or one file (--path).
    Restore {
        id: String,
        #[arg(long, value_name = "REPO")]
        from: Option<PathBuf>,
        /// A new or empty folder (with --path: the folder to write that one file under).
        #[arg(long, value_name = "DIR", conflicts_with = "in_place")]
        to: Option<PathBuf>,
        /// Replace the library with the snapshot (the current library is snapshotted first).
        #[arg(long)]
        in_place: bool,
        /// Restore only this file (library-relative path); into the library unless --to.
        #[arg(long, value_name = "P", conflicts_with = "in_place")]
        path: Option<String>,
        /// Restore what is intact even if the snapshot fails verification.
        #[arg(long)]
        partial: bool,
        /// Also put the snapshot's sealed credential values back into the keychain (the
        /// backup passphrase from $BPV_BACKUP_PASSPHRASE, else the first line of stdin).
        #[arg(long, conflicts_with = "path")]
        with_secrets: bool,
    },
    /// Forget snapshots outside the retention policy and remove unreferenced objects.
    Prune {
        #[arg(long, value_name = "REPO")]
        from: Option<PathBuf>,
        #[arg(long, value_name = "N")]
        keep_last: Option<usize>,
        #[arg(long, value_name = "N")]
        keep_daily: Option<usize>,
        #[arg(long, value_name = "N")]
        keep_weekly: Option<usize>,
        /// Only say which snapshots would be kept and forgotten.
        #[arg(long)]
        dry_run: bool,
    },
}

pub fn run(cmd: &BackupCommand, cli: &Cli, out: &Out) -> Result<()> {
    let json = cli.json;
    match cmd {
        BackupCommand::Backup { to, with_secrets } => {
            let lib = open_unindexed(cli)?;
            let sealed = if *with_secrets {
                let secrets = Secrets::open(&lib, &crate::creds::store_kind(cli.store.as_deref())?)?;
                Some(backup::seal_secrets(&lib, &secrets, &backup_passphrase()?, None)?)
            } else {
                None
            };
            let bar = output::progress_bar(out, "backing up");
            let tick = |p: Progress| tick(bar.as_ref(), p);
            // The snapshot is read back whole from disk after it is written (so the
            // in-memory frame check is skipped); one that fails is discarded and an error.
            let opts =
                BackupOptions { repo: to.clone(), progress: Some(&tick), verified_after: true, ..Default::default() };
            let (report, _verify) = backup::backup_verified(&lib, &opts, sealed.as_ref())?;
            finish(bar);
            if json {
                return emit(&report);
            }
            say(&format!(
                "Snapshot {}: {} files, {} ({} new) in {} ms, verified",
                report.id,
                report.files,
                human(report.bytes),
                human(report.new_bytes),
                report.millis
            ))?;
            for why in &report.skipped {
                say(&format!("  not in this snapshot: {why}"))?;
            }
            Ok(())
        }
        BackupCommand::Backups { from, contents } => {
            let repo = Repo::open(&repo_path(cli, from.as_deref())?)?;
            if let Some(id) = contents {
                let entries = repo.contents(id)?;
                if json {
                    return emit(&entries);
                }
                for e in entries {
                    let prefix = if e.source == backup::Source::Data { "(data) " } else { "" };
                    say(&format!("{:>10}  {prefix}{}", e.size, e.path))?;
                }
                return Ok(());
            }
            let list = repo.snapshots()?;
            if json {
                return emit(&list);
            }
            if list.is_empty() {
                return say("No snapshots yet (take one with `bpv backup`)");
            }
            for s in list {
                say(&format!(
                    "{}  {}  {} files  {}  (+{})",
                    s.id,
                    s.created,
                    s.files,
                    human(s.bytes),
                    human(s.new_bytes)
                ))?;
            }
            Ok(())
        }
        BackupCommand::Verify { id, from } => {
            let repo = Repo::open(&repo_path(cli, from.as_deref())?)?;
            let bar = output::progress_bar(out, "verifying");
            let tick = |p: Progress| tick(bar.as_ref(), p);
            let report = repo.verify(id, Some(&tick), &CancelToken::new())?;
            finish(bar);
            if json {
                emit(&report)?;
            } else if report.ok {
                say(&format!(
                    "Snapshot {id} is intact: {} files, {} objects, {} re-hashed in {} ms",
                    report.files,
                    report.objects,
                    human(report.bytes),
                    report.millis
                ))?;
            } else {
                for p in &report.problems {
                    let hash = p.hash.as_deref().map(|h| format!(" {}", &h[..12.min(h.len())])).unwrap_or_default();
                    say(&format!("{}{hash}: {}", p.kind, p.message))?;
                    for path in &p.paths {
                        say(&format!("    affects {path}"))?;
                    }
                }
            }
            if report.ok {
                Ok(())
            } else {
                Err(Error::Corrupt(format!("snapshot {id} failed verification ({} problem(s))", report.problems.len())))
            }
        }
        BackupCommand::Restore { id, from, to, in_place, path, partial, with_secrets } => {
            // The passphrase is checked (the values opened) before anything is restored.
            let unsealed = if *with_secrets {
                let repo = match (from, *in_place) {
                    (Some(r), _) => r.clone(),
                    (None, true) => Repo::default_location(&open_unindexed(cli)?),
                    (None, false) => repo_path(cli, None)?,
                };
                Some(backup::unseal_secrets(&Repo::open(&repo)?, id, &backup_passphrase()?)?)
            } else {
                None
            };
            if let Some(dir) = to {
                check_target(cli, dir)?;
            }
            let bar = output::progress_bar(out, "restoring");
            let tick = |p: Progress| tick(bar.as_ref(), p);
            let opts = RestoreOptions { partial: *partial, progress: Some(&tick), cancel: CancelToken::new() };
            if let Some(p) = path {
                let repo = Repo::open(&repo_path(cli, from.as_deref())?)?;
                let entry = match to {
                    Some(dir) => repo.restore_file(id, p, &dir.join(p))?,
                    None => {
                        let lib = open(cli, false)?;
                        restore_file_into_library(&lib, &repo, id, p)?
                    }
                };
                finish(bar);
                if json {
                    return emit(&entry);
                }
                return say(&format!("Restored {} ({} bytes) from {id}", entry.path, entry.size));
            }
            let mut restored_credentials = Vec::new();
            let report = if *in_place {
                let lib = open(cli, false)?;
                let repo = match from {
                    Some(r) => r.clone(),
                    None => Repo::default_location(&lib),
                };
                let report = restore_in_place(&lib, &repo, id, &opts)?;
                if let Some(unsealed) = &unsealed {
                    let secrets = Secrets::open(&lib, &crate::creds::store_kind(cli.store.as_deref())?)?;
                    restored_credentials = unsealed.store_into(&secrets)?;
                }
                report
            } else {
                let Some(dir) = to else {
                    return Err(Error::InvalidArgument(
                        "say where to restore: --to DIR, --in-place or --path P".into(),
                    ));
                };
                let repo = Repo::open(&repo_path(cli, from.as_deref())?)?;
                // Trash and history go to the restored library's own private area.
                let existed = dir.exists();
                let area = data_area_for(cli, dir)?;
                let report = match repo.restore_to(id, dir, area.as_deref(), &opts) {
                    Ok(r) => r,
                    Err(e) => {
                        if !existed {
                            let _ = std::fs::remove_dir(dir);
                        }
                        return Err(e);
                    }
                };
                if let Some(unsealed) = &unsealed {
                    let mut lib_opts = bpv_engine::library::OpenOptions::new(dir.clone());
                    lib_opts.data_dir = cli.data_dir.clone();
                    let lib = bpv_engine::library::Library::open(lib_opts)?;
                    let secrets = Secrets::open(&lib, &crate::creds::store_kind(cli.store.as_deref())?)?;
                    restored_credentials = unsealed.store_into(&secrets)?;
                }
                report
            };
            finish(bar);
            if json {
                let mut v = serde_json::to_value(&report).map_err(|e| Error::Corrupt(e.to_string()))?;
                if let (Some(obj), true) = (v.as_object_mut(), *with_secrets) {
                    obj.insert("credentials".into(), serde_json::json!(restored_credentials));
                }
                return emit(&v);
            }
            say(&format!("Restored {} files ({}) from {id} to {}", report.files, human(report.bytes), report.to))?;
            if *with_secrets {
                say(&format!(
                    "Restored {} credential value(s): {}",
                    restored_credentials.len(),
                    restored_credentials.join(", ")
                ))?;
            }
            for p in &report.not_restored {
                say(&format!("not restored: {}", p.message))?;
                for path in &p.paths {
                    say(&format!("    {path}"))?;
                }
            }
            Ok(())
        }
        BackupCommand::Prune { from, keep_last, keep_daily, keep_weekly, dry_run } => {
            let repo = Repo::open(&repo_path(cli, from.as_deref())?)?;
            let policy = Retention { keep_last: *keep_last, keep_daily: *keep_daily, keep_weekly: *keep_weekly };
            if *dry_run {
                let preview = repo.prune_preview(&policy)?;
                if json {
                    return emit(&preview);
                }
                for w in &preview.warnings {
                    say(&format!("warning: {w}"))?;
                }
                for id in &preview.removed {
                    say(&format!("would forget {id}"))?;
                }
                return say(&format!(
                    "Would keep {} snapshots and forget {} (nothing was changed)",
                    preview.kept.len(),
                    preview.removed.len()
                ));
            }
            let report = repo.prune(&policy)?;
            if json {
                return emit(&report);
            }
            for w in &report.warnings {
                say(&format!("warning: {w}"))?;
            }
            say(&format!(
                "Kept {} snapshots, removed {}; freed {} ({} objects)",
                report.kept.len(),
                report.removed.len(),
                human(report.bytes_freed),
                report.objects_removed
            ))
        }
    }
}

fn repo_path(cli: &Cli, given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p.to_path_buf()),
        None => Ok(Repo::default_location(&open_unindexed(cli)?)),
    }
}

/// The backup passphrase: `$BPV_BACKUP_PASSPHRASE`, else the first line of stdin.
fn backup_passphrase() -> Result<Vec<u8>> {
    if let Some(p) = std::env::var_os("BPV_BACKUP_PASSPHRASE").filter(|p| !p.is_empty()) {
        return Ok(p.as_encoded_bytes().to_vec());
    }
    let mut all = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut all)
        .map_err(|e| Error::Io { context: "cannot read the backup passphrase from stdin".into(), source: e })?;
    let line = all.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(Error::InvalidArgument(
            "--with-secrets needs a backup passphrase: set BPV_BACKUP_PASSPHRASE or pipe it on stdin".into(),
        ));
    }
    Ok(line.to_vec())
}

/// The private area a library at `dir` will have (for its trash and history).
/// `--to DIR` must lie outside the library and the data dir (the engine's check, which
/// the app shares), whether DIR exists yet or not.
fn check_target(cli: &Cli, dir: &Path) -> Result<()> {
    let library = match &cli.library {
        Some(l) => l.clone(),
        None => bpv_engine::paths::default_library_dir()
            .ok_or_else(|| Error::InvalidArgument("no home folder: pass --library".into()))?,
    };
    let data_dir = match &cli.data_dir {
        Some(d) => d.clone(),
        None => bpv_engine::paths::default_data_dir()
            .ok_or_else(|| Error::InvalidArgument("no data dir: set BPV_DATA_DIR".into()))?,
    };
    backup::check_restore_target(dir, &library, &data_dir).map(drop)
}

fn data_area_for(cli: &Cli, dir: &Path) -> Result<Option<PathBuf>> {
    let data_dir = match &cli.data_dir {
        Some(d) => std::path::absolute(d).map_err(|e| Error::io("cannot resolve", d, e))?,
        None => match bpv_engine::paths::default_data_dir() {
            Some(d) => d,
            None => return Ok(None),
        },
    };
    // The area is keyed by the canonical library path, which exists only once created.
    std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    let canon = std::fs::canonicalize(dir).map_err(|e| Error::io("cannot resolve", dir, e))?;
    Ok(Some(bpv_engine::paths::library_area(&data_dir, &canon)))
}

fn tick(bar: Option<&indicatif::ProgressBar>, p: Progress) {
    if let Some(b) = bar {
        b.set_message(p.phase);
        b.set_length(p.total);
        b.set_position(p.done);
    }
}

fn finish(bar: Option<indicatif::ProgressBar>) {
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

fn emit<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    let s =
        serde_json::to_string(v).map_err(|e| Error::Io { context: "cannot write output".into(), source: e.into() })?;
    say(&s)
}

fn say(line: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").map_err(|e| Error::Io { context: "cannot write output".into(), source: e })
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}
