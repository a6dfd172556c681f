//! `bpv sync` (link, status, one sync or periodic syncs) and `bpv migrate`: thin
//! wrappers over `bpv_sync`. Team-library errors keep their own codes
//! (`remote_unreachable`, `remote_denied`, `not_linked`, `verify_failed`, …).

use std::io::{Read, Write};
use std::time::Duration;

use bpv_engine::backup::{self, BackupOptions};
use bpv_engine::library::Library;
use bpv_sync::config::Credentials;
use bpv_sync::link::{self, LinkKeys, LinkRequest};
use bpv_sync::{SyncError, Syncer};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;

use crate::output::{self, Out};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SyncArgs {
    #[command(subcommand)]
    action: Option<SyncAction>,
    /// Show the link and every blueprint that is pending or in conflict (no network).
    #[arg(long)]
    status: bool,
    /// Keep syncing every interval (longer after failures, with jitter) until interrupted.
    #[arg(long)]
    repeat: bool,
}

#[derive(Subcommand)]
enum SyncAction {
    /// Link this library to a team library in an S3-compatible bucket.
    Link(LinkArgs),
    /// Forget the link (local files and the team library are left as they are).
    Unlink,
    /// Check every blueprint is in the team library and here, byte for byte.
    Verify,
    /// Delete contents and log objects no device's state names any more (after a grace period).
    Gc(crate::team::GcArgs),
}

/// Where the team library is, and how to reach it (`bpv sync link`, `bpv remote set`).
#[derive(Args, Clone)]
pub struct LinkArgs {
    /// S3 endpoint (repeat for several nodes of one cluster: tried in turn).
    #[arg(long = "endpoint", value_name = "URL", required = true)]
    endpoints: Vec<String>,
    #[arg(long)]
    bucket: String,
    /// Key prefix in the bucket (one bucket can hold several team libraries).
    #[arg(long, default_value = "")]
    prefix: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Virtual-hosted-style requests (AWS S3); default path-style (Garage, MinIO).
    #[arg(long)]
    virtual_hosted: bool,
    /// Name shown in conflict copies (default: the host name).
    #[arg(long)]
    device_name: Option<String>,
    /// Access key id (the secret is read from stdin); else BPV_SYNC_ACCESS_KEY_ID /
    /// BPV_SYNC_SECRET_ACCESS_KEY are used at every sync.
    #[arg(long, conflicts_with = "credential")]
    access_key_id: Option<String>,
    /// Take the keys from this OS-keychain credential (`bpv creds set NAME`, value
    /// `ACCESS_KEY_ID:SECRET`) instead.
    #[arg(long)]
    credential: Option<String>,
    /// Seconds between periodic syncs.
    #[arg(long, default_value_t = 30)]
    interval: u64,
}

/// `bpv remote set …`: VISION.md's name for linking the library to a team library; the
/// same as `bpv sync link …`.
#[derive(Args)]
pub struct RemoteArgs {
    #[command(subcommand)]
    action: RemoteAction,
}

#[derive(Subcommand)]
enum RemoteAction {
    /// Link this library to a team library in an S3-compatible bucket.
    Set(LinkArgs),
    /// Forget the link (local files and the team library are left as they are).
    Unset,
}

#[derive(Args)]
pub struct MigrateArgs {
    /// Take a backup of the library first.
    #[arg(long)]
    backup: bool,
    /// Only validate: the link works, and what would be sent.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    to: crate::team::MigrateToArgs,
}

/// Exit codes beyond the engine's: 6 unreachable, 7 denied, 8 verification failed.
fn exit_code(e: &SyncError) -> u8 {
    match e.code() {
        "remote_unreachable" => 6,
        "remote_denied" => 7,
        "verify_failed" => 8,
        "not_found" | "not_linked" => 3,
        "invalid_key" | "invalid_argument" | "invalid_blueprint" => 4,
        "conflict" | "already_exists" => 5,
        _ => 1,
    }
}

fn fail(e: &SyncError, json: bool) -> u8 {
    let mut stderr = std::io::stderr().lock();
    let _ = if json {
        writeln!(stderr, "{}", json!({ "code": e.code(), "message": e.to_string() }))
    } else {
        writeln!(stderr, "bpv: {e}")
    };
    exit_code(e)
}

pub(crate) fn emit<T: Serialize>(v: &T) {
    println!("{}", serde_json::to_string(v).unwrap_or_default());
}

/// Runs `bpv sync`; returns the process exit code (errors already printed).
pub fn run_sync(lib: &Library, args: &SyncArgs, out: &Out, json: bool) -> u8 {
    match sync_inner(lib, args, out, json) {
        Ok(()) => 0,
        Err(e) => fail(&e, json),
    }
}

/// Runs `bpv remote set|unset` as `bpv sync link|unlink`; returns the process exit code.
pub fn run_remote(lib: &Library, args: &RemoteArgs, out: &Out, json: bool) -> u8 {
    let action = match &args.action {
        RemoteAction::Set(link) => SyncAction::Link(link.clone()),
        RemoteAction::Unset => SyncAction::Unlink,
    };
    run_sync(lib, &SyncArgs { action: Some(action), status: false, repeat: false }, out, json)
}

/// Runs `bpv migrate`; returns the process exit code (errors already printed).
pub fn run_migrate(lib: &Library, args: &MigrateArgs, out: &Out, json: bool) -> u8 {
    match migrate_inner(lib, args, out, json) {
        Ok(()) => 0,
        Err(e) => fail(&e, json),
    }
}

fn with_bar(syncer: &mut Syncer, out: &Out) {
    if let Some(bar) = output::progress_bar(out, "syncing") {
        syncer.set_progress(Box::new(move |phase, done, total| {
            bar.set_message(phase.to_owned());
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }));
    }
}

fn sync_inner(lib: &Library, args: &SyncArgs, out: &Out, json: bool) -> bpv_sync::Result<()> {
    match &args.action {
        Some(SyncAction::Link(LinkArgs {
            endpoints,
            bucket,
            prefix,
            region,
            virtual_hosted,
            device_name,
            access_key_id,
            credential,
            interval,
        })) => {
            let keys = match (access_key_id, credential) {
                (Some(id), _) => {
                    let mut secret = String::new();
                    std::io::stdin()
                        .read_to_string(&mut secret)
                        .map_err(|e| SyncError::Config(format!("cannot read the secret key from stdin: {e}")))?;
                    let secret = secret.trim().to_owned();
                    if secret.is_empty() {
                        return Err(SyncError::Config("give the secret access key on stdin".into()));
                    }
                    LinkKeys::File(Credentials { access_key_id: id.clone(), secret_access_key: secret })
                }
                (None, Some(name)) => LinkKeys::Credential(name.clone()),
                (None, None) => LinkKeys::Environment,
            };
            let request = LinkRequest {
                endpoints: endpoints.clone(),
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                region: region.clone(),
                path_style: !virtual_hosted,
                device_name: device_name.clone(),
                interval_secs: *interval,
            };
            let link = link::link_library(lib, &request, keys)?;
            if json {
                emit(
                    &json!({ "linked": true, "endpoints": link.endpoints, "bucket": link.bucket, "prefix": link.prefix, "device_id": link.device_id, "device_name": link.device_name }),
                );
            } else {
                println!(
                    "linked to {}/{} as {:?} (run `bpv sync` to send and receive)",
                    link.bucket, link.prefix, link.device_name
                );
            }
            Ok(())
        }
        Some(SyncAction::Unlink) => {
            link::unlink_library(lib)?;
            if json {
                emit(&json!({ "linked": false }));
            } else {
                println!("unlinked (local files and the team library are unchanged)");
            }
            Ok(())
        }
        Some(SyncAction::Gc(gc)) => crate::team::gc(lib, gc, json),
        Some(SyncAction::Verify) => {
            let mut syncer = Syncer::open(lib)?;
            with_bar(&mut syncer, out);
            let n = syncer.verify(lib)?;
            if json {
                emit(&json!({ "verified": n }));
            } else {
                println!("{n} blueprints identical here and in the team library");
            }
            Ok(())
        }
        None if args.status => {
            // Status needs no keys and no network.
            let status = link::status_of(lib)?;
            if !status.linked {
                if json {
                    emit(&json!({ "linked": false }));
                } else {
                    println!("not linked (see `bpv sync link --help`)");
                }
                return Ok(());
            }
            if json {
                // The contract's `pending` and `conflicts: [path]` beside the full status.
                let mut value = serde_json::to_value(&status).unwrap_or_default();
                if let Some(map) = value.as_object_mut() {
                    let conflicts: Vec<&str> =
                        status.items.iter().filter(|i| i.state == "conflict").map(|i| i.path.as_str()).collect();
                    map.insert("pending".into(), json!(status.pending_changes));
                    map.insert("conflicts".into(), json!(conflicts));
                }
                emit(&value);
            } else {
                println!(
                    "{} — {}/{} as {:?}: {} synced, {} pending change(s); last sync {}",
                    status.state,
                    status.bucket,
                    status.prefix,
                    status.device_name,
                    status.synced,
                    status.pending_changes,
                    status.last_sync.as_deref().unwrap_or("never")
                );
                if let Some(e) = &status.last_error {
                    println!("  last error: {e}");
                }
                for e in &status.refused {
                    println!("  refused  from device {}: {}", e.device, refused_line(e));
                }
                for item in &status.items {
                    println!(
                        "  {:<8} {}{}",
                        item.state,
                        item.path,
                        item.reason.as_ref().map(|r| format!("  ({r})")).unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        None => {
            let mut syncer = Syncer::open(lib)?;
            with_bar(&mut syncer, out);
            loop {
                let result = syncer.sync(lib);
                match &result {
                    // VISION.md's contract: {pushed, pulled, conflicts: [path], pending}, plus the report.
                    Ok(report) if json => {
                        let pending = syncer.status(lib).map(|s| s.pending_changes).unwrap_or_default();
                        let mut value = serde_json::to_value(report).unwrap_or_default();
                        if let Some(map) = value.as_object_mut() {
                            map.insert("pushed".into(), json!(report.sent));
                            map.insert("pulled".into(), json!(report.received));
                            map.insert("pending".into(), json!(pending));
                        }
                        emit(&value)
                    }
                    Ok(r) => {
                        println!(
                            "sent {} change(s), received {}, updated {} file(s), {} conflict(s){} in {} ms",
                            r.sent,
                            r.received,
                            r.applied,
                            r.conflicts.len(),
                            if r.deferred.is_empty() {
                                String::new()
                            } else {
                                format!(", {} deferred", r.deferred.len())
                            },
                            r.millis
                        );
                        for e in &r.errors {
                            println!("  refused from device {}: {}", e.device, refused_line(e));
                        }
                    }
                    Err(e) if args.repeat => {
                        fail(e, json);
                    }
                    Err(_) => {}
                }
                if !args.repeat {
                    return result.map(|_| ());
                }
                let status = syncer.status(lib)?;
                let wait = status.next_sync_in_secs as f64 * (0.8 + 0.4 * rand_unit());
                std::thread::sleep(Duration::from_secs_f64(wait));
            }
        }
    }
}

/// One refused entry of the team library, for a person: what, where, why.
fn refused_line(e: &bpv_sync::Refused) -> String {
    let mut out = String::new();
    if let Some(p) = &e.path {
        out.push_str(&format!("{p:?} "));
    }
    if !e.object.is_empty() {
        out.push_str(&format!("(in {}) ", e.object));
    }
    out.push_str(&e.reason);
    out
}

fn rand_unit() -> f64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[derive(Serialize)]
struct MigrateReport {
    blueprints: usize,
    invalid: usize,
    backup: Option<String>,
    sent: usize,
    received: usize,
    verified: usize,
    millis: u64,
}

/// Move a library into its team library (or fill an empty one from it): validate,
/// optional backup, sync with progress (resumable: run again after an interruption),
/// then the byte-for-byte check.
fn migrate_inner(lib: &Library, args: &MigrateArgs, out: &Out, json: bool) -> bpv_sync::Result<()> {
    if let Some(url) = &args.to.to {
        return crate::team::migrate_to(lib, url, &args.to, args.backup, args.dry_run, out, json);
    }
    let start = std::time::Instant::now();
    let mut syncer = Syncer::open(lib)?;
    syncer.probe()?;
    let all = lib.list(&bpv_engine::index::ListQuery { limit: usize::MAX / 4, ..Default::default() })?;
    let invalid = all.items.iter().filter(|i| !i.valid).count();
    if args.dry_run {
        let status = syncer.status(lib)?;
        if json {
            emit(&json!({ "blueprints": all.total, "invalid": invalid, "to_send": status.pending_changes }));
        } else {
            println!(
                "the team library answers; {} blueprints ({} invalid, sent as they are), {} change(s) to send",
                all.total, invalid, status.pending_changes
            );
        }
        return Ok(());
    }
    let backup_id = if args.backup {
        let report = backup::backup(lib, &BackupOptions::default())?;
        Some(report.id)
    } else {
        None
    };
    with_bar(&mut syncer, out);
    let report = syncer.sync(lib)?;
    let verified = syncer.verify(lib)?;
    let result = MigrateReport {
        blueprints: all.total,
        invalid,
        backup: backup_id,
        sent: report.sent,
        received: report.received,
        verified,
        millis: start.elapsed().as_millis() as u64,
    };
    if json {
        emit(&result);
    } else {
        println!(
            "migrated: {} blueprints verified byte for byte ({} sent, {} received{}) in {} ms",
            result.verified,
            result.sent,
            result.received,
            result.backup.as_ref().map(|b| format!(", backup {b}")).unwrap_or_default(),
            result.millis
        );
    }
    Ok(())
}
