//! `bpv import` and `bpv export`: argument handling and output only; the work is the
//! engine's (`bpv_engine::transfer`).
//!
//! Exit codes: `import` exits 0 when at least one item was imported, was already
//! identical or was skipped by choice — or when there was nothing to do; it exits 4
//! (with the report still printed) only when there were items or sources and every one
//! of them failed (invalid, refused or unreadable). Fatal errors (no library, a cancel,
//! a disk error) use the usual codes. `export` exits 4 when the secret scan refuses.

use std::io::Write;
use std::path::PathBuf;

use bpv_engine::index::{ListQuery, Sort};
use bpv_engine::library::Library;
use bpv_engine::transfer::export::SECRETS_REFUSED;
use bpv_engine::transfer::{ExportOptions, ImportOptions, ImportReport, OnConflict, ProgressEvent, SecretWarning};
use bpv_engine::{Error, Result};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use serde::Serialize;

use crate::output::{Out, progress_bar};

#[derive(Clone, Copy, ValueEnum)]
pub enum OnConflictArg {
    Skip,
    Rename,
    Overwrite,
}

#[derive(Args)]
pub struct ImportArgs {
    /// Blueprint files (.blueprint.yaml, .yaml, .yml, .json), folders and .zip bundles.
    #[arg(required = true, value_name = "SRC")]
    sources: Vec<PathBuf>,
    /// Library folder to import into (default Blueprints/personal; our bundles keep their paths).
    #[arg(long, value_name = "FOLDER")]
    into: Option<String>,
    /// What to do when a blueprint with the same path or id but other content exists.
    #[arg(long, value_enum, default_value = "skip")]
    on_conflict: OnConflictArg,
    /// Classify everything and print what would happen; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not record where blueprints came from in their companion metadata
    /// (companions from bundles are then imported byte for byte).
    #[arg(long)]
    no_provenance: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Library paths of blueprints to export.
    #[arg(value_name = "PATH")]
    paths: Vec<String>,
    /// Destination: ending in .zip writes a bundle, otherwise a folder
    /// (default: <library>/Exports/export-<time>.zip).
    #[arg(long, value_name = "DEST")]
    to: Option<PathBuf>,
    /// Also export every blueprint in this library folder (and below).
    #[arg(long, value_name = "FOLDER")]
    folder: Option<String>,
    /// Also export every blueprint with this tag (with --folder: in that folder).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Export even if some blueprints look like they contain credentials.
    #[arg(long)]
    allow_secrets: bool,
    /// Replace an existing bundle or existing files in the destination folder.
    #[arg(long)]
    force: bool,
}

fn emit<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, v)
        .map_err(|e| Error::Io { context: "cannot write output".into(), source: e.into() })?;
    writeln!(stdout).map_err(|e| Error::Io { context: "cannot write output".into(), source: e })
}

fn say(text: &str) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{text}")
        .map_err(|e| Error::Io { context: "cannot write output".into(), source: e })
}

fn tick(bar: &Option<ProgressBar>) -> impl Fn(ProgressEvent) + Sync + '_ {
    move |e: ProgressEvent| {
        if let Some(b) = bar {
            b.set_message(e.phase);
            b.set_length(e.total as u64);
            b.set_position(e.done as u64);
        }
    }
}

pub fn import(lib: &Library, args: &ImportArgs, json: bool, out: &Out) -> Result<()> {
    let opts = ImportOptions {
        into: args.into.clone(),
        on_conflict: match args.on_conflict {
            OnConflictArg::Skip => OnConflict::Skip,
            OnConflictArg::Rename => OnConflict::Rename,
            OnConflictArg::Overwrite => OnConflict::Overwrite,
        },
        record_provenance: !args.no_provenance,
        ..ImportOptions::new()
    };
    let start = std::time::Instant::now();
    let bar = progress_bar(out, "reading");
    let progress = tick(&bar);
    let plan = lib.import_plan(&args.sources, &opts, Some(&progress))?;
    let mut report = if args.dry_run { plan.preview(&opts) } else { lib.import_apply(&plan, &opts, Some(&progress))? };
    // The whole command, dry run included.
    report.millis = start.elapsed().as_millis() as u64;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if json {
        emit(&report)?;
    } else {
        print_import(&report)?;
    }
    let done = report.imported.len() + report.identical.len() + report.skipped.len();
    if done == 0 && !report.errors.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "nothing could be imported: {} item(s) or source(s) failed",
            report.errors.len()
        )));
    }
    Ok(())
}

fn print_import(r: &ImportReport) -> Result<()> {
    let verb = if r.dry_run { "Would import" } else { "Imported" };
    say(&format!(
        "{verb} {} · identical {} · skipped {} · errors {}{}",
        r.imported.len(),
        r.identical.len(),
        r.skipped.len(),
        r.errors.len(),
        if r.dry_run { " (dry run: nothing written)" } else { "" }
    ))?;
    for p in &r.imported {
        say(&format!("  + {p}"))?;
    }
    for rn in &r.renamed {
        say(&format!("  renamed {} → {}", rn.from, rn.to))?;
    }
    for p in &r.overwritten {
        say(&format!("  overwritten {p} (previous version kept in its history)"))?;
    }
    for p in &r.converted {
        say(&format!("  converted from JSON to YAML: {p}"))?;
    }
    for p in &r.skipped {
        say(&format!("  skipped (conflict) {p}"))?;
    }
    for e in &r.errors {
        say(&format!("  ! {}: {}", e.source, e.error))?;
    }
    Ok(())
}

fn print_warnings(warnings: &[SecretWarning]) {
    for w in warnings {
        eprintln!("warning: {} line {}: looks like a credential ({}, {})", w.path, w.line, w.kind, w.hint);
    }
}

#[derive(Serialize)]
struct Refused<'a> {
    exported: [&'a str; 0],
    to: String,
    warnings: &'a [SecretWarning],
    refused: bool,
}

pub fn export(lib: &Library, args: &ExportArgs, json: bool, out: &Out) -> Result<()> {
    let mut paths: Vec<String> = args.paths.clone();
    if args.folder.is_some() || !args.tags.is_empty() {
        let mut offset = 0;
        loop {
            let page = lib.list(&ListQuery {
                folder: args.folder.as_deref().map(|f| f.trim_end_matches('/').to_owned()),
                tags: args.tags.clone(),
                author: None,
                modified_from: None,
                modified_to: None,
                valid: None,
                sort: Sort::Name,
                offset,
                limit: 5000,
            })?;
            let n = page.items.len();
            paths.extend(page.items.into_iter().map(|i| i.path));
            offset += n;
            if n == 0 || offset >= page.total {
                break;
            }
        }
    }
    if paths.is_empty() {
        return Err(Error::InvalidArgument(
            "nothing to export: name blueprints, or select them with --folder / --tag".into(),
        ));
    }
    let dest = match &args.to {
        Some(d) => d.clone(),
        None => lib.root().join("Exports").join(format!("export-{}.zip", chrono::Utc::now().format("%Y%m%d-%H%M%S"))),
    };
    let bar = progress_bar(out, "exporting");
    let progress = tick(&bar);
    let opts = ExportOptions { allow_secrets: args.allow_secrets, overwrite: args.force, cancel: None };
    let report = match lib.export(&paths, &dest, &opts, Some(&progress)) {
        Ok(r) => r,
        Err(Error::InvalidArgument(m)) if m.starts_with(SECRETS_REFUSED) => {
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            let warnings = lib.secret_scan(&paths)?;
            print_warnings(&warnings);
            if json {
                emit(&Refused { exported: [], to: dest.display().to_string(), warnings: &warnings, refused: true })?;
            }
            return Err(Error::InvalidArgument(format!(
                "{} possible credential(s) found, nothing exported; move them to the keychain \
                 (reference them as ${{secret:NAME}}) or pass --allow-secrets",
                warnings.len()
            )));
        }
        Err(e) => return Err(e),
    };
    print_warnings(&report.warnings);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if json {
        emit(&report)
    } else {
        say(&format!(
            "Exported {} blueprint(s) to {} ({} files, {} bytes)",
            report.exported.len(),
            report.to,
            report.files,
            report.bytes
        ))
    }
}
