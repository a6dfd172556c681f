//! The app's "Copy this library to another backend" (issue 9): the shell side of
//! `bpv_sync::migrate`. One migration at a time, on the calling blocking thread; progress as
//! `sync-progress` events (phases `copy`/`verify` for a folder, the sync's for a bucket);
//! an optional backup first (the Backups view's own, with its progress). The keys given
//! for a bucket are used for this call only: nothing stores them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bpv_engine::library::Library;
use bpv_sync::config::Credentials;
use bpv_sync::migrate::{self, BucketAccess, MigrateToReport, Target};
use bpv_sync::sync::ProgressFn;
use tauri::{AppHandle, Emitter, Manager};

use crate::dto::IpcError;
use crate::dto_sync::{MigrateArgs, MigrateDone, SYNC_PROGRESS, SyncProgress};
use crate::state::AppState;

/// Set while a migration runs (a second one is refused, not queued).
static RUNNING: AtomicBool = AtomicBool::new(false);

struct Running;

impl Running {
    fn begin() -> Result<Running, IpcError> {
        if RUNNING.swap(true, Ordering::SeqCst) {
            return Err(IpcError::new("busy", "a copy to another backend is already running: wait for it to finish"));
        }
        Ok(Running)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::SeqCst);
    }
}

/// Check (`dry_run`) or copy the open library to `args.target`. Blocking.
pub fn migrate_library(app: &AppHandle, lib: &Library, args: &MigrateArgs) -> Result<MigrateDone, IpcError> {
    let _running = Running::begin()?;
    let target = Target::parse(&args.target)?;
    let access = match &target {
        Target::Folder(_) => None,
        Target::Bucket { .. } => Some(bucket_access(lib, args)?),
    };
    let data_dir = app.state::<AppState>().data_dir.clone();
    let run = |dry: bool| -> Result<MigrateToReport, IpcError> {
        let report = match (&target, &access) {
            (Target::Folder(dir), _) => {
                let tick = progress(app);
                migrate::migrate_to_folder(lib, dir, &data_dir, dry, (!dry).then_some(&*tick))?
            }
            (Target::Bucket { bucket, prefix }, Some(access)) => {
                migrate::migrate_to_bucket(lib, bucket, prefix, access, dry, (!dry).then(|| progress(app)))?
            }
            (Target::Bucket { .. }, None) => return Err(IpcError::new("invalid_argument", "no access to the bucket")),
        };
        Ok(report)
    };
    // Always check first: a refusal (target not empty, overlapping, unreachable) comes
    // before the backup and before anything is written.
    let checked = run(true)?;
    if args.dry_run {
        return Ok(MigrateDone::of(checked, None));
    }
    let backup = if args.backup_first { Some(crate::transfer::backup_now(app, lib)?.id) } else { None };
    let report = run(false)?;
    tracing::info!(target = %report.target, verified = report.verified, copied = report.copied, millis = report.millis, "library copied to another backend");
    Ok(MigrateDone::of(report, backup))
}

fn bucket_access(lib: &Library, args: &MigrateArgs) -> Result<BucketAccess, IpcError> {
    let endpoints: Vec<String> =
        args.endpoints.iter().map(|e| e.trim().trim_end_matches('/').to_owned()).filter(|e| !e.is_empty()).collect();
    if endpoints.is_empty() {
        return Err(IpcError::new("invalid_argument", "give the store's endpoint, as http(s)://host:port"));
    }
    let key_id = args.access_key_id.trim();
    // No keys in the form: the environment's (as `bpv migrate`), never the link's own.
    let credentials = if key_id.is_empty() && args.secret_access_key.is_empty() {
        migrate::bucket_credentials(lib, None)?
    } else {
        Credentials { access_key_id: key_id.to_owned(), secret_access_key: args.secret_access_key.trim().to_owned() }
    };
    let region = args.region.trim();
    Ok(BucketAccess {
        endpoints,
        region: if region.is_empty() { "us-east-1".to_owned() } else { region.to_owned() },
        path_style: args.path_style,
        credentials,
    })
}

fn progress(app: &AppHandle) -> Box<ProgressFn> {
    let app = app.clone();
    let last = Mutex::new(None::<Instant>);
    Box::new(move |phase, done, total| {
        if let Ok(mut last) = last.lock() {
            if done < total && last.is_some_and(|l| l.elapsed() < std::time::Duration::from_millis(80)) {
                return;
            }
            *last = Some(Instant::now());
        }
        let event = SyncProgress { phase: phase.to_owned(), done: done as u64, total: total as u64 };
        if let Err(e) = app.emit(SYNC_PROGRESS, event) {
            tracing::warn!("cannot emit {SYNC_PROGRESS}: {e}");
        }
    })
}
