//! `bpv sync gc` and `bpv migrate --to URL`: thin wrappers over `bpv_sync::gc` and
//! `bpv_sync::migrate` (the rules are documented there).

use std::path::PathBuf;
use std::time::Duration;

use bpv_engine::backup::{self, BackupOptions};
use bpv_engine::library::Library;
use bpv_sync::gc::{self, GcOptions};
use bpv_sync::migrate::{self, BucketAccess, Target};
use bpv_sync::sync::ProgressFn;
use bpv_sync::{SyncError, Syncer};
use clap::Args;
use serde_json::json;

use crate::output::{self, Out};
use crate::sync::emit;

#[derive(Args)]
pub struct GcArgs {
    /// Only report what would be deleted.
    #[arg(long)]
    dry_run: bool,
    /// How long an object must have been unreferenced before it is deleted (`7d`, `12h`,
    /// `30m`, `90s`; `0s` deletes at once: only when no device is away).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    grace: Duration,
}

/// Where `bpv migrate --to s3://…` finds the store (the URL names only bucket and prefix).
#[derive(Args, Clone, Default)]
pub struct MigrateToArgs {
    /// Copy the library to another backend: `s3://BUCKET[/PREFIX]` (a new team library),
    /// `file:///DIR` or a folder path (a new library). Without it: into the linked team library.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// S3 endpoint for `--to s3://…` (repeat for several nodes of one cluster).
    #[arg(long = "endpoint", value_name = "URL", requires = "to")]
    pub endpoints: Vec<String>,
    /// Region for `--to s3://…` (Garage: the cluster's `s3_region`).
    #[arg(long, default_value = "us-east-1", requires = "to")]
    pub region: String,
    /// Virtual-hosted-style requests (AWS S3); default path-style (Garage, MinIO).
    #[arg(long, requires = "to")]
    pub virtual_hosted: bool,
    /// Keys from this OS-keychain credential (`ACCESS_KEY_ID:SECRET`) when
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not set.
    #[arg(long, requires = "to")]
    pub credential: Option<String>,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text:?}: give a number and a unit, like 7d, 12h, 30m or 90s"))?;
    let secs = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{text:?}: the unit is one of s, m, h, d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

pub fn gc(lib: &Library, args: &GcArgs, json: bool) -> bpv_sync::Result<()> {
    let syncer = Syncer::open(lib)?;
    let report = gc::collect_garbage(&syncer, lib, &GcOptions { grace: args.grace, dry_run: args.dry_run })?;
    if json {
        emit(&report);
    } else {
        let verb = if report.dry_run { "would delete" } else { "deleted" };
        println!(
            "{verb} {} content(s), {} log object(s), {} snapshot(s) ({} bytes); {} more unreferenced, \
             kept until their grace period ends; {} ms",
            report.deleted_blobs,
            report.deleted_logs,
            report.deleted_snapshots,
            report.freed_bytes,
            report.waiting,
            report.millis
        );
    }
    Ok(())
}

fn progress(out: &Out) -> Option<Box<ProgressFn>> {
    let bar = output::progress_bar(out, "migrating")?;
    Some(Box::new(move |phase: &str, done: usize, total: usize| {
        bar.set_message(phase.to_owned());
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }))
}

/// `bpv migrate --to URL [--backup] [--dry-run]`.
pub fn migrate_to(
    lib: &Library,
    url: &str,
    to: &MigrateToArgs,
    backup_first: bool,
    dry_run: bool,
    out: &Out,
    json: bool,
) -> bpv_sync::Result<()> {
    let target = Target::parse(url)?;
    // Validate before anything is written (the backup included).
    let access = match &target {
        Target::Folder(_) => None,
        Target::Bucket { .. } => {
            let credentials = migrate::bucket_credentials(lib, to.credential.as_deref())?;
            let endpoints = if to.endpoints.is_empty() {
                vec![format!("https://s3.{}.amazonaws.com", to.region)]
            } else {
                to.endpoints.clone()
            };
            Some(BucketAccess {
                endpoints,
                region: to.region.clone(),
                path_style: !to.virtual_hosted && !to.endpoints.is_empty(),
                credentials,
            })
        }
    };
    let run = |dry: bool| match (&target, &access) {
        (Target::Folder(dir), _) => {
            let data_dir = lib
                .area()
                .parent()
                .and_then(|p| p.parent())
                .map(PathBuf::from)
                .ok_or_else(|| SyncError::Config("cannot tell the data folder".into()))?;
            let bar = if dry { None } else { progress(out) };
            migrate::migrate_to_folder(lib, dir, &data_dir, dry, bar.as_deref())
        }
        (Target::Bucket { bucket, prefix }, Some(access)) => {
            migrate::migrate_to_bucket(lib, bucket, prefix, access, dry, if dry { None } else { progress(out) })
        }
        (Target::Bucket { .. }, None) => Err(SyncError::Config("no access to the bucket".into())),
    };
    let checked = run(true)?;
    if dry_run {
        if json {
            emit(&checked);
        } else {
            println!(
                "{}: {} blueprints ({} invalid, copied as they are){}",
                checked.target,
                checked.blueprints,
                checked.invalid,
                if checked.resumed { "; an earlier attempt will be resumed" } else { "; the target is empty" }
            );
        }
        return Ok(());
    }
    let backup_id = if backup_first {
        let report = backup::backup(lib, &BackupOptions::default())?;
        Some(report.id)
    } else {
        None
    };
    let report = run(false)?;
    if json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("backup".into(), json!(backup_id));
        }
        emit(&value);
    } else {
        println!(
            "migrated to {}: {} blueprints verified byte for byte ({} written{}{}) in {} ms",
            report.target,
            report.verified,
            report.copied,
            if report.resumed { format!(", {} already there", report.skipped) } else { String::new() },
            backup_id.map(|b| format!(", backup {b}")).unwrap_or_default(),
            report.millis
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
