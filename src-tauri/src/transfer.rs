//! The shell side of import/export and backup/restore: the pending import plan (the
//! dry run the report dialog shows, applied later by its id), the cancel tokens of
//! running operations, progress as window events, the backup settings file, and the
//! automatic backup timer. The work itself is the engine's (`transfer`, `backup`);
//! everything here runs on blocking threads, called from `commands.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bpv_engine::backup::{self, BackupOptions, Repo};
use bpv_engine::index::{ListQuery, SearchQuery, Sort};
use bpv_engine::library::Library;
use bpv_engine::transfer::{self, ImportPlan};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager};

use crate::dto::IpcError;
use crate::dto_transfer::*;
use crate::state::AppState;

/// Most blueprints one export takes (a bundle of more is better made with `bpv export`).
pub const MAX_EXPORT: usize = 5000;
const SETTINGS_FILE: &str = "backup-settings.json";
/// How often the automatic-backup timer looks at the clock.
const SCHEDULE_TICK: Duration = Duration::from_secs(60);
/// Progress events at most this often (the engine reports per item).
const PROGRESS_EVERY: Duration = Duration::from_millis(80);
/// After a failed automatic backup, wait this long before trying again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(15 * 60);

/// A dry run kept for `import_apply` (one at a time: a new dry run replaces it).
struct PendingPlan {
    id: u64,
    library: PathBuf,
    into: Option<String>,
    plan: ImportPlan,
}

/// A running operation's cancel switch (the engine has two token types).
#[derive(Clone)]
enum Cancel {
    Transfer(transfer::CancelToken),
    Backup(backup::CancelToken),
}

#[derive(Default)]
pub struct TransferState {
    plan: Mutex<Option<PendingPlan>>,
    next_plan: AtomicU64,
    running: Mutex<HashMap<Operation, Cancel>>,
    /// Serialises writes of the settings file.
    settings: Mutex<()>,
}

/// Marks an operation as running until dropped; refuses a second one of the same kind.
pub struct Running<'a> {
    state: &'a TransferState,
    op: Operation,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut r) = self.state.running.lock() {
            r.remove(&self.op);
        }
    }
}

impl TransferState {
    fn start(&self, op: Operation, cancel: Cancel) -> Result<Running<'_>, IpcError> {
        let mut running = self.running.lock().map_err(IpcError::internal)?;
        if running.contains_key(&op) {
            return Err(IpcError::new(
                "busy",
                format!("{} is already running: wait for it to finish, or cancel it", op_name(op)),
            ));
        }
        running.insert(op, cancel);
        Ok(Running { state: self, op })
    }

    /// Ask a running operation to stop; false when none of that kind runs.
    pub fn cancel(&self, op: Operation) -> bool {
        let running = match self.running.lock() {
            Ok(r) => r,
            Err(_) => return false,
        };
        match running.get(&op) {
            Some(Cancel::Transfer(t)) => {
                t.store(true, Ordering::SeqCst);
                true
            }
            Some(Cancel::Backup(t)) => {
                t.cancel();
                true
            }
            None => false,
        }
    }
}

fn op_name(op: Operation) -> &'static str {
    match op {
        Operation::Import => "an import",
        Operation::Export => "an export",
        Operation::Backup => "a backup",
        Operation::Verify => "a verification",
        Operation::Restore => "a restore",
        Operation::Prune => "a prune",
    }
}

/// A progress sink that emits `operation-progress`, throttled (the last report of a
/// phase may be dropped; the UI treats the command's answer as the end).
pub struct Progress {
    app: AppHandle,
    op: Operation,
    start: Instant,
    last_millis: AtomicU64,
}

impl Progress {
    pub fn new(app: &AppHandle, op: Operation) -> Self {
        let p = Progress { app: app.clone(), op, start: Instant::now(), last_millis: AtomicU64::new(0) };
        p.send("starting", 0, 0, true);
        p
    }

    pub fn send(&self, phase: &str, done: u64, total: u64, force: bool) {
        let now = self.start.elapsed().as_millis() as u64;
        let last = self.last_millis.load(Ordering::Relaxed);
        if !force && now.saturating_sub(last) < PROGRESS_EVERY.as_millis() as u64 && done < total {
            return;
        }
        self.last_millis.store(now, Ordering::Relaxed);
        let event = OperationProgress { op: self.op, phase: phase.to_owned(), done, total };
        if let Err(e) = self.app.emit(OPERATION_PROGRESS, event) {
            tracing::warn!("cannot emit {OPERATION_PROGRESS}: {e}");
        }
    }

    pub fn transfer(&self, e: transfer::ProgressEvent) {
        self.send(e.phase, e.done as u64, e.total as u64, false)
    }

    pub fn backup(&self, p: backup::Progress) {
        self.send(p.phase, p.done, p.total, false)
    }
}

fn state(app: &AppHandle) -> tauri::State<'_, TransferState> {
    app.state::<TransferState>()
}

// ---- import ----

/// The dry run: classify every item of `sources` (nothing is written) and keep the plan.
pub fn import_plan(
    app: &AppHandle,
    lib: &Library,
    sources: Vec<String>,
    into: Option<String>,
) -> Result<ImportPlanView, IpcError> {
    let sources: Vec<String> = sources.into_iter().filter(|s| !s.trim().is_empty()).collect();
    if sources.is_empty() {
        return Err(IpcError::new(
            "invalid_argument",
            "nothing to import: drop or choose files, folders or .zip bundles",
        ));
    }
    let into = into.map(|f| f.trim().trim_matches('/').to_owned()).filter(|f| !f.is_empty());
    let st = state(app);
    let cancel: transfer::CancelToken = Default::default();
    let _running = st.start(Operation::Import, Cancel::Transfer(cancel.clone()))?;
    let progress = Progress::new(app, Operation::Import);
    let tick = |e: transfer::ProgressEvent| progress.transfer(e);
    let opts = transfer::ImportOptions { into: into.clone(), cancel: Some(cancel), ..transfer::ImportOptions::new() };
    let paths: Vec<PathBuf> = sources.iter().map(PathBuf::from).collect();
    let plan = lib.import_plan(&paths, &opts, Some(&tick))?;
    let id = st.next_plan.fetch_add(1, Ordering::SeqCst) + 1;
    let view = ImportPlanView::of(id, into.clone(), sources, &plan);
    *st.plan.lock().map_err(IpcError::internal)? =
        Some(PendingPlan { id, library: lib.root().to_path_buf(), into, plan });
    Ok(view)
}

/// Apply the kept dry run `plan_id`: conflicts by `on_conflict` unless an item has its
/// own decision. All or nothing; a cancel leaves the library as it was.
pub fn import_apply(
    app: &AppHandle,
    lib: &Library,
    plan_id: u64,
    on_conflict: ConflictChoice,
    decisions: Vec<ItemDecision>,
) -> Result<ImportSummary, IpcError> {
    let st = state(app);
    let pending = st.plan.lock().map_err(IpcError::internal)?.take();
    let Some(pending) = pending.filter(|p| p.id == plan_id && p.library == lib.root()) else {
        return Err(IpcError::new(
            "not_found",
            "this import report is out of date (another import was checked since): check the files again",
        ));
    };
    let cancel: transfer::CancelToken = Default::default();
    let _running = st.start(Operation::Import, Cancel::Transfer(cancel.clone()))?;
    let progress = Progress::new(app, Operation::Import);
    let tick = |e: transfer::ProgressEvent| progress.transfer(e);
    let opts = transfer::ImportOptions {
        into: pending.into.clone(),
        on_conflict: match on_conflict {
            ConflictChoice::Skip => transfer::OnConflict::Skip,
            ConflictChoice::Rename => transfer::OnConflict::Rename,
            ConflictChoice::Overwrite => transfer::OnConflict::Overwrite,
        },
        decisions: decisions
            .iter()
            .map(|d| {
                let choice = match d.choice {
                    ConflictChoice::Skip => transfer::Decision::Skip,
                    ConflictChoice::Rename => transfer::Decision::Rename,
                    ConflictChoice::Overwrite => transfer::Decision::Overwrite,
                };
                (d.n as usize, choice)
            })
            .collect(),
        cancel: Some(cancel),
        ..transfer::ImportOptions::new()
    };
    match lib.import_apply(&pending.plan, &opts, Some(&tick)) {
        Ok(report) => Ok(ImportSummary::from(&report)),
        Err(e) => {
            // Nothing was written: keep the plan so the user can try again.
            if let Ok(mut slot) = st.plan.lock()
                && slot.is_none()
            {
                *slot = Some(pending);
            }
            Err(e.into())
        }
    }
}

// ---- export ----

/// The blueprints a scope names, de-duplicated, in a stable order.
pub fn resolve_scope(lib: &Library, scope: &ExportScope) -> Result<Vec<String>, IpcError> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut push = |p: String, out: &mut Vec<String>| {
        if seen.insert(p.clone()) {
            out.push(p);
        }
    };
    for p in &scope.paths {
        push(lib.item(p)?.path, &mut out);
    }
    let folder = scope.folder.as_deref().map(|f| f.trim_matches('/').to_owned()).filter(|f| !f.is_empty());
    let text = scope.search.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if let Some(text) = text {
        let page = lib.search(&SearchQuery {
            text: text.to_owned(),
            tags: scope.tags.clone(),
            folder: folder.clone(),
            limit: MAX_EXPORT + 1,
            ..Default::default()
        })?;
        for h in page.hits {
            push(h.item.path, &mut out);
        }
    } else if scope.folder.is_some() || !scope.tags.is_empty() {
        let mut offset = 0;
        loop {
            let page = lib.list(&ListQuery {
                folder: folder.clone(),
                tags: scope.tags.clone(),
                sort: Sort::Name,
                offset,
                limit: 1000,
                ..Default::default()
            })?;
            let n = page.items.len();
            for i in page.items {
                push(i.path, &mut out);
            }
            offset += n;
            if n == 0 || offset >= page.total || out.len() > MAX_EXPORT {
                break;
            }
        }
    }
    if out.len() > MAX_EXPORT {
        return Err(IpcError::new(
            "invalid_argument",
            format!("more than {MAX_EXPORT} blueprints: export a smaller selection, or use `bpv export`"),
        ));
    }
    Ok(out)
}

/// `<library>/Exports/export-<unix seconds>.zip` (a new name each second).
pub fn default_bundle(lib: &Library) -> PathBuf {
    lib.root().join("Exports").join(format!("export-{}.zip", unix_now()))
}

pub fn export_preview(lib: &Library, scope: &ExportScope) -> Result<ExportPreview, IpcError> {
    let paths = resolve_scope(lib, scope)?;
    let warnings = lib.secret_scan(&paths)?.iter().map(SecretFinding::from).collect();
    Ok(ExportPreview { paths, warnings, default_bundle: default_bundle(lib).to_string_lossy().into_owned() })
}

/// Export the scope: to `folder` (files, for one blueprint or more), else to a new
/// bundle in `Exports/`. Refused (`invalid_argument`, nothing written) when the secret
/// scan finds something and `allow_secrets` is off.
pub fn export(
    app: &AppHandle,
    lib: &Library,
    scope: &ExportScope,
    folder: Option<String>,
    allow_secrets: bool,
) -> Result<ExportDone, IpcError> {
    let paths = resolve_scope(lib, scope)?;
    if paths.is_empty() {
        return Err(IpcError::new(
            "invalid_argument",
            "nothing to export: select blueprints, a folder, a tag or a search",
        ));
    }
    let dest = match folder.filter(|f| !f.trim().is_empty()) {
        Some(f) => PathBuf::from(f),
        None => default_bundle(lib),
    };
    let st = state(app);
    let cancel: transfer::CancelToken = Default::default();
    let _running = st.start(Operation::Export, Cancel::Transfer(cancel.clone()))?;
    let progress = Progress::new(app, Operation::Export);
    let tick = |e: transfer::ProgressEvent| progress.transfer(e);
    let opts = transfer::ExportOptions { allow_secrets, overwrite: false, cancel: Some(cancel) };
    let r = lib.export(&paths, &dest, &opts, Some(&tick))?;
    Ok(ExportDone {
        exported: r.exported.clone(),
        to: r.to.clone(),
        kind: r.kind.clone(),
        warnings: r.warnings.iter().map(SecretFinding::from).collect(),
        files: r.files as u64,
        bytes: r.bytes,
        millis: r.millis,
    })
}

// ---- backup settings ----

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct BackupSettings {
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    schedule: BackupSchedule,
    #[serde(default)]
    last_backup: Option<u64>,
    /// The last backup failed (after `last_backup`); cleared by the next success.
    #[serde(default)]
    last_failure: Option<BackupFailure>,
    #[serde(default)]
    retention: RetentionSettings,
}

/// The settings file and the lock serialising its writes: the app's (`settings_store`),
/// or a test's, so the backup logic runs without an `AppHandle`.
struct SettingsStore<'a> {
    file: PathBuf,
    lock: &'a Mutex<()>,
}

impl SettingsStore<'_> {
    fn load(&self) -> BackupSettings {
        match std::fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("ignoring unreadable {}: {e}", self.file.display());
                BackupSettings::default()
            }),
            Err(_) => BackupSettings::default(),
        }
    }

    fn change(&self, f: impl FnOnce(&mut BackupSettings)) -> Result<BackupSettings, IpcError> {
        let _guard = self.lock.lock().map_err(IpcError::internal)?;
        let mut s = self.load();
        f(&mut s);
        let body = serde_json::to_vec_pretty(&s).map_err(IpcError::internal)?;
        if let Some(dir) = self.file.parent() {
            bpv_engine::fsio::ensure_dir(dir)?;
        }
        bpv_engine::fsio::write_atomic(&self.file, &body)?;
        Ok(s)
    }
}

fn settings_store(app: &AppHandle) -> SettingsStore<'_> {
    SettingsStore {
        file: app.state::<AppState>().data_dir.join(SETTINGS_FILE),
        lock: &app.state::<TransferState>().inner().settings,
    }
}

fn load_settings(app: &AppHandle) -> BackupSettings {
    settings_store(app).load()
}

fn change_settings(app: &AppHandle, f: impl FnOnce(&mut BackupSettings)) -> Result<BackupSettings, IpcError> {
    settings_store(app).change(f)
}

fn repo_location(lib: &Library, s: &BackupSettings) -> PathBuf {
    match &s.location {
        Some(l) => PathBuf::from(l),
        None => Repo::default_location(lib),
    }
}

pub fn backup_settings(app: &AppHandle, lib: &Library) -> BackupSettingsView {
    view_of(lib, &load_settings(app))
}

fn view_of(lib: &Library, s: &BackupSettings) -> BackupSettingsView {
    BackupSettingsView {
        location: s.location.clone(),
        effective_location: repo_location(lib, s).to_string_lossy().into_owned(),
        default_location: Repo::default_location(lib).to_string_lossy().into_owned(),
        schedule: s.schedule,
        last_backup: s.last_backup,
        last_failure: s.last_failure.clone(),
        retention: s.retention,
    }
}

/// Change the repository folder (null: the default) and the schedule.
pub fn set_backup_settings(
    app: &AppHandle,
    lib: &Library,
    location: Option<String>,
    schedule: BackupSchedule,
) -> Result<BackupSettingsView, IpcError> {
    let location = location.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
    if let Some(l) = &location {
        let p = Path::new(l);
        if !p.is_absolute() {
            return Err(IpcError::new("invalid_argument", format!("choose a full folder path for backups, not {l}")));
        }
        if std::fs::canonicalize(p).is_ok_and(|c| c.starts_with(lib.root())) {
            return Err(IpcError::new(
                "invalid_argument",
                "backups cannot live inside the library they back up: choose a folder outside it (an external drive is best)",
            ));
        }
    }
    let s = change_settings(app, |s| {
        s.location = location;
        s.schedule = schedule;
    })?;
    Ok(view_of(lib, &s))
}

fn open_repo(app: &AppHandle, lib: &Library) -> Result<Option<Repo>, IpcError> {
    let path = repo_location(lib, &load_settings(app));
    if !path.join("config.json").exists() {
        if let Some(l) = load_settings(app).location
            && !Path::new(&l).exists()
        {
            return Err(IpcError::new(
                "not_found",
                format!("the backup folder {l} is not there: connect its drive, or choose another location"),
            ));
        }
        return Ok(None);
    }
    Ok(Some(Repo::open(&path)?))
}

// ---- backup, verify, restore ----

/// Back up the library, then verify the new snapshot.
pub fn backup_now(app: &AppHandle, lib: &Library) -> Result<BackupDone, IpcError> {
    run_backup(app, lib, None, false)
}

/// [`backup_now`]; with `passphrase`, the credential values go into the snapshot sealed
/// under it (checked, ≥ 8 characters, before anything is written).
pub fn backup_now_sealing(app: &AppHandle, lib: &Library, passphrase: Option<&str>) -> Result<BackupDone, IpcError> {
    run_backup(app, lib, passphrase, false)
}

fn run_backup(
    app: &AppHandle,
    lib: &Library,
    passphrase: Option<&str>,
    scheduled: bool,
) -> Result<BackupDone, IpcError> {
    let sealed = match passphrase {
        Some(p) => Some(backup::seal_secrets(lib, &crate::creds::open(lib)?, p.as_bytes(), None)?),
        None => None,
    };
    let st = state(app);
    let cancel = backup::CancelToken::new();
    let _running = st.start(Operation::Backup, Cancel::Backup(cancel.clone()))?;
    let progress = Progress::new(app, Operation::Backup);
    let tick = |p: backup::Progress| progress.backup(p);
    backup_recorded(&settings_store(app), lib, Some(&tick), cancel, sealed.as_ref(), scheduled)
}

/// Back up and verify into the settings' repository, and record the outcome in the
/// settings: a success as the last backup (clearing a failure); a failure (a snapshot
/// failing its verification included, which the engine discards) as the last failure,
/// the last backup left as it was, so the schedule stays due and retries. A cancel is
/// neither.
fn backup_recorded(
    store: &SettingsStore<'_>,
    lib: &Library,
    progress: Option<backup::ProgressFn<'_>>,
    cancel: backup::CancelToken,
    sealed: Option<&backup::SealedSecrets>,
    scheduled: bool,
) -> Result<BackupDone, IpcError> {
    let repo = repo_location(lib, &store.load());
    // The whole snapshot is verified from disk below: the backup need not also decode
    // each frame in memory as it writes it.
    let opts = BackupOptions { repo: Some(repo), progress, cancel, verified_after: true };
    let (report, verify) = match backup::backup_verified(lib, &opts, sealed) {
        Ok(done) => done,
        Err(e) => {
            let e = IpcError::from(e);
            if e.code != "cancelled" {
                let failure = BackupFailure { at: unix_now(), message: e.message.clone(), scheduled };
                if let Err(w) = store.change(|s| s.last_failure = Some(failure)) {
                    tracing::warn!("cannot record the failed backup: {}", w.message);
                }
            }
            return Err(e);
        }
    };
    store.change(|s| {
        s.last_backup = Some(unix_now());
        s.last_failure = None;
    })?;
    Ok(BackupDone {
        id: report.id,
        files: report.files,
        bytes: report.bytes,
        new_bytes: report.new_bytes,
        millis: report.millis,
        repository: report.repository,
        skipped: report.skipped,
        verify: VerifyResult::from(&verify),
    })
}

pub fn snapshots(app: &AppHandle, lib: &Library) -> Result<Vec<SnapshotRow>, IpcError> {
    let Some(repo) = open_repo(app, lib)? else { return Ok(Vec::new()) };
    Ok(repo.snapshots()?.iter().map(SnapshotRow::from).collect())
}

fn existing_repo(app: &AppHandle, lib: &Library) -> Result<Repo, IpcError> {
    open_repo(app, lib)?.ok_or_else(|| IpcError::new("not_found", "no backups yet: back up first"))
}

pub fn contents(app: &AppHandle, lib: &Library, id: &str) -> Result<Vec<SnapshotFile>, IpcError> {
    Ok(existing_repo(app, lib)?.contents(id)?.iter().map(SnapshotFile::from).collect())
}

pub fn verify(app: &AppHandle, lib: &Library, id: &str) -> Result<VerifyResult, IpcError> {
    let repo = existing_repo(app, lib)?;
    let st = state(app);
    let cancel = backup::CancelToken::new();
    let _running = st.start(Operation::Verify, Cancel::Backup(cancel.clone()))?;
    let progress = Progress::new(app, Operation::Verify);
    let tick = |p: backup::Progress| progress.backup(p);
    Ok(VerifyResult::from(&repo.verify(id, Some(&tick), &cancel)?))
}

/// Put one file of a snapshot back into the library at its own path (a blueprint's
/// current content, if any, is kept in its history). Returns the library path.
pub fn restore_file(app: &AppHandle, lib: &Library, id: &str, path: &str) -> Result<String, IpcError> {
    let repo = existing_repo(app, lib)?;
    let entry = backup::restore_file_into_library(lib, &repo, id, path)?;
    Ok(entry.path)
}

/// Restore a whole snapshot into `to` (a new or empty folder): the library files, and
/// its trash and history into that folder's private area, so it opens as a library.
pub fn restore_to(
    app: &AppHandle,
    lib: &Library,
    id: &str,
    to: &str,
    partial: bool,
    passphrase: Option<&str>,
) -> Result<RestoreDone, IpcError> {
    let repo = existing_repo(app, lib)?;
    let data_dir = app.state::<AppState>().data_dir.clone();
    let dir = restore_target(lib, &data_dir, to)?;
    let st = state(app);
    let cancel = backup::CancelToken::new();
    let _running = st.start(Operation::Restore, Cancel::Backup(cancel.clone()))?;
    let progress = Progress::new(app, Operation::Restore);
    let tick = |p: backup::Progress| progress.backup(p);
    let opts = backup::RestoreOptions { partial, progress: Some(&tick), cancel };
    restore_snapshot_with_credentials(&repo, &data_dir, id, &dir, &opts, passphrase, &crate::creds::open)
}

/// The store a library's credential values go to (the app's chooses; tests use a file).
type SecretsOf<'a> = &'a dyn Fn(&Library) -> Result<bpv_engine::secrets::Secrets, IpcError>;

/// [`restore_snapshot`], and with `passphrase` the snapshot's credential values into the
/// restored library's store. The passphrase is checked (the values opened) before
/// anything is restored: a wrong one leaves no folder and stores nothing.
fn restore_snapshot_with_credentials(
    repo: &Repo,
    data_dir: &Path,
    id: &str,
    dir: &Path,
    opts: &backup::RestoreOptions<'_>,
    passphrase: Option<&str>,
    secrets_of: SecretsOf<'_>,
) -> Result<RestoreDone, IpcError> {
    let unsealed = match passphrase {
        Some(p) => Some(backup::unseal_secrets(repo, id, p.as_bytes())?),
        None => None,
    };
    let mut done = restore_snapshot(repo, data_dir, id, dir, opts)?;
    if let Some(unsealed) = unsealed {
        let restored = Library::open(bpv_engine::library::OpenOptions {
            root: dir.to_path_buf(),
            data_dir: Some(data_dir.to_path_buf()),
            create: false,
            reconcile: false,
        })?;
        done.credentials = unsealed.store_into(&secrets_of(&restored)?)?;
    }
    Ok(done)
}

/// Restore snapshot `id` over the open library: the engine snapshots the library as it is
/// first (so this restore can itself be undone), stages the restore beside it and swaps it
/// in. The library is closed for the swap — its watcher would follow the folder being
/// moved aside — and opened again afterwards, whether the restore worked or not.
pub fn restore_in_place(
    app: &AppHandle,
    id: &str,
    partial: bool,
    passphrase: Option<&str>,
) -> Result<RestoreDone, IpcError> {
    let app_state = app.state::<AppState>();
    let opened = app_state.current()?;
    let root = opened.lib.root().to_path_buf();
    let repo = existing_repo(app, &opened.lib)?;
    let repo_path = repo.root().to_path_buf();
    // A wrong passphrase is refused here, before the library is touched.
    let unsealed = match passphrase {
        Some(p) => Some(backup::unseal_secrets(&repo, id, p.as_bytes())?),
        None => None,
    };
    drop(repo);
    drop(opened);
    let st = state(app);
    let cancel = backup::CancelToken::new();
    let _running = st.start(Operation::Restore, Cancel::Backup(cancel.clone()))?;
    let progress = Progress::new(app, Operation::Restore);
    let tick = |p: backup::Progress| progress.backup(p);
    let opts = backup::RestoreOptions { partial, progress: Some(&tick), cancel };
    app_state.close()?;
    let restored = bpv_engine::library::Library::open(bpv_engine::library::OpenOptions {
        root: root.clone(),
        data_dir: Some(app_state.data_dir.clone()),
        create: false,
        reconcile: false,
    })
    .and_then(|lib| backup::restore_in_place(&lib, &repo_path, id, &opts));
    let reopened = reopen(app, &root);
    let report = restored?;
    reopened?;
    let mut done = RestoreDone::from(&report);
    if let Some(unsealed) = unsealed {
        let lib = &app_state.current()?.lib;
        done.credentials = unsealed.store_into(&crate::creds::open(lib)?)?;
    }
    Ok(done)
}

/// Open `root` again after a restore; a command still finishing with the old handle holds
/// its app lock for a moment, so a refusal is retried briefly.
fn reopen(app: &AppHandle, root: &Path) -> Result<(), IpcError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = app.clone();
        match app.state::<AppState>().open(root, move |n| crate::commands::forward(&events, n)) {
            Ok(_) => return Ok(()),
            Err(e) if e.code == "library_in_use" && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => return Err(e),
        }
    }
}

/// The folder a whole snapshot may be restored into: a full path, outside the open
/// library and the data dir (the engine's check, shared with `bpv restore --to`).
fn restore_target(lib: &Library, data_dir: &Path, to: &str) -> Result<PathBuf, IpcError> {
    let dir = PathBuf::from(to);
    if !dir.is_absolute() {
        return Err(IpcError::new("invalid_argument", format!("choose a full folder path to restore into, not {to}")));
    }
    backup::check_restore_target(&dir, lib.root(), data_dir)?;
    Ok(dir)
}

/// Restore snapshot `id` into `dir` (new or empty), its trash and history into that
/// folder's private area under `data_dir`; a folder this created is removed on failure.
fn restore_snapshot(
    repo: &Repo,
    data_dir: &Path,
    id: &str,
    dir: &Path,
    opts: &backup::RestoreOptions<'_>,
) -> Result<RestoreDone, IpcError> {
    let existed = dir.exists();
    let result = (|| -> Result<RestoreDone, IpcError> {
        std::fs::create_dir_all(dir).map_err(|e| bpv_engine::Error::io("cannot create", dir, e))?;
        let canon = std::fs::canonicalize(dir).map_err(|e| bpv_engine::Error::io("cannot resolve", dir, e))?;
        let area = bpv_engine::paths::library_area(data_dir, &canon);
        Ok(RestoreDone::from(&repo.restore_to(id, dir, Some(area.as_path()), opts)?))
    })();
    if result.is_err() && !existed {
        let _ = std::fs::remove_dir(dir);
    }
    result
}

// ---- prune ----

/// Keep `retention` with the other backup settings (what Preview and Prune now use).
pub fn set_backup_retention(
    app: &AppHandle,
    lib: &Library,
    retention: RetentionSettings,
) -> Result<BackupSettingsView, IpcError> {
    let s = change_settings(app, |s| s.retention = retention)?;
    Ok(view_of(lib, &s))
}

/// What a prune with `retention` would keep and forget, with dates and sizes; nothing changes.
pub fn prune_preview(
    app: &AppHandle,
    lib: &Library,
    retention: RetentionSettings,
) -> Result<PrunePreviewView, IpcError> {
    let policy = policy_of(retention)?;
    let repo = existing_repo(app, lib)?;
    let preview = repo.prune_preview(&policy)?;
    let rows: HashMap<String, SnapshotRow> =
        repo.snapshots()?.iter().map(|s| (s.id.clone(), SnapshotRow::from(s))).collect();
    Ok(preview_view(&preview, &rows))
}

/// The engine's policy, refused in the app's words when no rule is set (the engine's
/// refusal names CLI flags).
fn policy_of(retention: RetentionSettings) -> Result<backup::Retention, IpcError> {
    let policy = retention.policy();
    if policy.keep_last.is_none() && policy.keep_daily.is_none() && policy.keep_weekly.is_none() {
        return Err(IpcError::new(
            "invalid_argument",
            "say what to keep: the last N backups, one a day for N days and/or one a week for N weeks",
        ));
    }
    Ok(policy)
}

/// The preview's ids as snapshot rows (an id the list lacks gets an empty row).
fn preview_view(preview: &backup::PrunePreview, rows: &HashMap<String, SnapshotRow>) -> PrunePreviewView {
    let row = |id: &String| {
        rows.get(id).cloned().unwrap_or_else(|| SnapshotRow {
            id: id.clone(),
            created: String::new(),
            library: String::new(),
            files: 0,
            bytes: 0,
            new_bytes: 0,
        })
    };
    PrunePreviewView {
        kept: preview.kept.iter().map(row).collect(),
        removed: preview.removed.iter().map(row).collect(),
        warnings: preview.warnings.clone(),
    }
}

/// Forget the snapshots `retention` does not keep, then free what no snapshot uses. The
/// policy is saved first (the one the user confirmed is the one in the settings).
pub fn prune_now(app: &AppHandle, lib: &Library, retention: RetentionSettings) -> Result<PruneDone, IpcError> {
    let policy = policy_of(retention)?;
    let repo = existing_repo(app, lib)?;
    let st = state(app);
    // `cancel_operation` stops it between steps; a cancelled prune keeps every kept
    // snapshot whole (the engine's guarantee) and answers `cancelled`.
    let cancel = backup::CancelToken::new();
    let _running = st.start(Operation::Prune, Cancel::Backup(cancel.clone()))?;
    change_settings(app, |s| s.retention = retention)?;
    let progress = Progress::new(app, Operation::Prune);
    let tick = |p: backup::Progress| progress.backup(p);
    let report = repo.prune_with_progress(&policy, Some(&tick), &cancel)?;
    Ok(PruneDone::from(&report))
}

// ---- the automatic schedule ----

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn finished_event(result: &Result<BackupDone, IpcError>, scheduled: bool) -> BackupFinished {
    match result {
        Ok(d) => BackupFinished { ok: true, scheduled, id: Some(d.id.clone()), message: None },
        Err(e) => BackupFinished { ok: false, scheduled, id: None, message: Some(e.message.clone()) },
    }
}

pub fn emit_backup_finished(app: &AppHandle, result: &Result<BackupDone, IpcError>, scheduled: bool) {
    AppOutlet(app).finished(&finished_event(result, scheduled));
}

/// Where a finished backup is reported outside the process: the window event and the
/// desktop notification. A seam: the app's window and desktop ([`AppOutlet`]), a
/// recorder in tests (no desktop needed).
trait BackupOutlet {
    fn finished(&self, event: &BackupFinished);
    fn notify(&self, title: &str, body: &str);
}

struct AppOutlet<'a>(&'a AppHandle);

impl BackupOutlet for AppOutlet<'_> {
    fn finished(&self, event: &BackupFinished) {
        if let Err(e) = self.0.emit(BACKUP_FINISHED, event) {
            tracing::warn!("cannot emit {BACKUP_FINISHED}: {e}");
        }
    }

    fn notify(&self, title: &str, body: &str) {
        use tauri_plugin_notification::NotificationExt;
        // Best effort: a desktop without a notification service still has the status bar.
        if let Err(e) = self.0.notification().builder().title(title).body(body).show() {
            tracing::warn!("cannot show the desktop notification: {e}");
        }
    }
}

/// Report a scheduled backup's outcome: the window event always; a desktop notification
/// when it failed (nobody clicked anything, the window may be hidden). Not for a backup
/// that did not start because another one runs. Returns whether it succeeded.
fn report_scheduled(result: &Result<BackupDone, IpcError>, out: &dyn BackupOutlet) -> bool {
    out.finished(&finished_event(result, true));
    if let Err(e) = result
        && e.code != "busy"
        && e.code != "cancelled"
    {
        out.notify("Automatic backup failed", &format!("{} Open Backups in Blueprint Vault for details.", e.message));
    }
    result.is_ok()
}

/// While the app runs: every minute, back up the open library when the schedule says
/// one is due (measured from the last backup the app made, whatever started it). A
/// failed attempt (a missing drive) is retried after `RETRY_AFTER_FAILURE`. Its own
/// thread: the work is blocking and the timer must not hold an async worker.
pub fn start_schedule(app: AppHandle) {
    // The engine's timer thread (it decides with `backup_due`; tested there with a real
    // timer and a fake clock); kept for the app's lifetime.
    static TIMER: std::sync::OnceLock<backup::ScheduleTimer> = std::sync::OnceLock::new();
    if TIMER.get().is_some() {
        return;
    }
    let state_app = app.clone();
    let state = move || {
        state_app.state::<AppState>().current_opt()?; // nothing to back up without a library
        let s = load_settings(&state_app);
        Some(backup::ScheduleState {
            interval: s.schedule.interval_secs(),
            last_success: s.last_backup,
            last_failure: None, // the timer tracks failures itself
            retry_after: RETRY_AFTER_FAILURE.as_secs(),
        })
    };
    match backup::ScheduleTimer::spawn(SCHEDULE_TICK, state, move || run_scheduled(&app)) {
        Ok(timer) => {
            let _ = TIMER.set(timer);
        }
        Err(e) => tracing::warn!("cannot start the automatic backup timer: {e}"),
    }
}

/// One automatic backup; whether it succeeded (a library closed meanwhile is not a failure).
fn run_scheduled(app: &AppHandle) -> bool {
    let Some(opened) = app.state::<AppState>().current_opt() else { return true };
    tracing::info!("automatic backup starting");
    let result = run_backup(app, &opened.lib, None, true);
    match &result {
        Ok(d) => tracing::info!(id = %d.id, files = d.files, "automatic backup done"),
        Err(e) => tracing::warn!(code = %e.code, "automatic backup failed: {}", e.message),
    }
    report_scheduled(&result, &AppOutlet(app))
}

#[cfg(test)]
mod tests {
    use bpv_engine::library::{BlueprintSave, OpenOptions};

    use super::*;

    fn library(dir: &Path) -> Library {
        let lib = Library::open(OpenOptions {
            root: dir.join("lib"),
            data_dir: Some(dir.join("data")),
            create: true,
            reconcile: true,
        })
        .unwrap();
        let save = |path: &str, name: &str, tags: &[&str], extra: &str| {
            let yaml = format!("name: {name}\nnodes:\n  - id: a\n    type: http\n{extra}");
            let tags = Some(tags.iter().map(|t| t.to_string()).collect());
            lib.save_blueprint(path, yaml.as_bytes(), &BlueprintSave { tags, ..Default::default() }).unwrap();
        };
        save("Blueprints/personal/sales/digest.blueprint.yaml", "Sales digest", &["crm"], "");
        save("Blueprints/personal/sales/leads.blueprint.yaml", "Lead router", &["crm", "slack"], "");
        save("Blueprints/shared/ops/pager.blueprint.yaml", "Pager digest", &["ops"], "");
        save(
            "Templates/leaky.blueprint.yaml",
            "Leaky",
            &[],
            "    parameters:\n      auth: Bearer sk-proj-abcdefghijklmnopqrstuvwx12\n",
        );
        lib
    }

    fn scope(paths: &[&str], folder: Option<&str>, tags: &[&str], search: Option<&str>) -> ExportScope {
        ExportScope {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            folder: folder.map(str::to_owned),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            search: search.map(str::to_owned),
        }
    }

    #[test]
    fn export_scopes_resolve_to_the_blueprints_people_mean() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = library(tmp.path());
        let digest = "Blueprints/personal/sales/digest.blueprint.yaml";
        let leads = "Blueprints/personal/sales/leads.blueprint.yaml";
        let pager = "Blueprints/shared/ops/pager.blueprint.yaml";
        assert_eq!(resolve_scope(&lib, &scope(&[digest], None, &[], None)).unwrap(), vec![digest]);
        assert_eq!(
            resolve_scope(&lib, &scope(&[], Some("Blueprints/personal/"), &[], None)).unwrap(),
            vec![leads, digest],
            "by name: Lead router, Sales digest"
        );
        assert_eq!(resolve_scope(&lib, &scope(&[], None, &["slack"], None)).unwrap(), vec![leads]);
        let mut found = resolve_scope(&lib, &scope(&[], None, &[], Some("digest"))).unwrap();
        found.sort();
        assert_eq!(found, vec![digest, pager]);
        // Search within a folder; the named path and the results are not exported twice.
        assert_eq!(
            resolve_scope(&lib, &scope(&[digest], Some("Blueprints/personal"), &[], Some("digest"))).unwrap(),
            vec![digest]
        );
        // "" is the whole library; nothing named is nothing.
        assert_eq!(resolve_scope(&lib, &scope(&[], Some(""), &[], None)).unwrap().len(), 4);
        assert!(resolve_scope(&lib, &scope(&[], None, &[], None)).unwrap().is_empty());
        let missing = resolve_scope(&lib, &scope(&["Blueprints/personal/nope.blueprint.yaml"], None, &[], None));
        assert_eq!(missing.unwrap_err().code, "not_found");
    }

    #[test]
    fn the_export_preview_carries_the_secret_scan() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = library(tmp.path());
        let preview = export_preview(&lib, &scope(&[], Some(""), &[], None)).unwrap();
        assert_eq!(preview.paths.len(), 4);
        assert_eq!(preview.warnings.len(), 1, "{:?}", preview.warnings);
        assert_eq!(preview.warnings[0].path, "Templates/leaky.blueprint.yaml");
        assert!(preview.default_bundle.starts_with(&lib.root().join("Exports").to_string_lossy().into_owned()));
        assert!(preview.default_bundle.ends_with(".zip"));
        let clean = export_preview(&lib, &scope(&[], Some("Blueprints"), &[], None)).unwrap();
        assert!(clean.warnings.is_empty());
    }

    /// Every file under `root`, by relative path, with its bytes.
    fn files(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    #[test]
    fn a_whole_snapshot_restores_byte_for_byte_into_a_new_folder_only() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = library(tmp.path());
        let repo_dir = tmp.path().join("repo");
        let report =
            backup::backup(&lib, &BackupOptions { repo: Some(repo_dir.clone()), ..Default::default() }).unwrap();
        let repo = Repo::open(&repo_dir).unwrap();

        // Into the library, or a relative path: refused, nothing written.
        let data = tmp.path().join("data");
        let inside = lib.root().join("Blueprints");
        assert_eq!(restore_target(&lib, &data, &inside.to_string_lossy()).unwrap_err().code, "invalid_argument");
        // Also a folder that does not exist yet, in the library or in the data dir.
        let not_yet = lib.root().join("new/deeper");
        assert_eq!(restore_target(&lib, &data, &not_yet.to_string_lossy()).unwrap_err().code, "invalid_argument");
        let in_data = data.join("libraries/new");
        assert_eq!(restore_target(&lib, &data, &in_data.to_string_lossy()).unwrap_err().code, "invalid_argument");
        assert_eq!(restore_target(&lib, &data, "restored").unwrap_err().code, "invalid_argument");

        let to = tmp.path().join("restored");
        let dir = restore_target(&lib, &data, &to.to_string_lossy()).unwrap();
        let done = restore_snapshot(&repo, &tmp.path().join("data"), &report.id, &dir, &Default::default()).unwrap();
        assert_eq!(done.files, files(&to).len() as u64);
        assert_eq!(files(&to), files(lib.root()), "the restored folder is the library, byte for byte");

        // A snapshot that does not exist: an error, and no folder left behind.
        let gone = tmp.path().join("gone");
        let err = restore_snapshot(&repo, &tmp.path().join("data"), "nope", &gone, &Default::default()).unwrap_err();
        assert_eq!(err.code, "not_found", "{}", err.message);
        assert!(!gone.exists());
    }

    #[test]
    fn the_prune_preview_lists_snapshots_with_dates_and_sizes_and_settings_keep_retention() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = library(tmp.path());
        let repo_dir = tmp.path().join("repo");
        let opts = BackupOptions { repo: Some(repo_dir.clone()), ..Default::default() };
        let older = backup::backup(&lib, &opts).unwrap();
        // Snapshot ids and dates have one-second resolution.
        std::thread::sleep(Duration::from_millis(1100));
        let newer = backup::backup(&lib, &opts).unwrap();
        let repo = Repo::open(&repo_dir).unwrap();
        let rows: HashMap<String, SnapshotRow> =
            repo.snapshots().unwrap().iter().map(|s| (s.id.clone(), SnapshotRow::from(s))).collect();
        let keep_last_one = RetentionSettings { keep_last: Some(1), ..Default::default() };
        let view = preview_view(&repo.prune_preview(&keep_last_one.policy()).unwrap(), &rows);
        assert_eq!(view.kept.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec![newer.id.as_str()]);
        assert_eq!(view.removed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec![older.id.as_str()]);
        assert_eq!(view.removed[0].files, older.files);
        assert!(!view.removed[0].created.is_empty());
        assert_eq!(repo.snapshots().unwrap().len(), 2, "a preview changes nothing");

        // 0 is no rule; no rule at all is the engine's refusal.
        let none = RetentionSettings { keep_last: Some(0), ..Default::default() };
        assert!(none.policy().keep_last.is_none());
        let err = policy_of(none).unwrap_err();
        assert_eq!(err.code, "invalid_argument", "{}", err.message);
        assert!(repo.prune_preview(&none.policy()).is_err(), "the engine refuses it too");

        // Saved with the other settings; older files without it still load.
        let saved: BackupSettings =
            serde_json::from_str(r#"{"schedule":"off","retention":{"keep_last":3,"keep_weekly":4}}"#).unwrap();
        assert_eq!(saved.retention, RetentionSettings { keep_last: Some(3), keep_daily: None, keep_weekly: Some(4) });
        let old: BackupSettings = serde_json::from_str(r#"{"schedule":"daily"}"#).unwrap();
        assert_eq!(old.retention, RetentionSettings::default());
    }

    /// A wrong passphrase restores nothing (no folder); the right one restores the files
    /// and puts the values into the restored library's own store.
    #[test]
    fn a_snapshot_with_credentials_restores_them_only_with_its_passphrase() {
        use bpv_engine::secrets::crypto::KdfParams;
        use bpv_engine::secrets::{FileStore, Secrets};
        let kdf = || KdfParams { memory_kib: 8 * 1024, iterations: 1, ..KdfParams::fresh() };
        let secrets_of = |lib: &Library| -> Result<Secrets, IpcError> {
            let store = FileStore::new(Secrets::credential_file(lib), b"file store passphrase")?.with_kdf(kdf());
            Ok(Secrets::with_store(lib, Box::new(store), "test"))
        };
        let tmp = tempfile::tempdir().unwrap();
        let lib = library(tmp.path());
        secrets_of(&lib).unwrap().set_credential("crm-token", b"tok-123-very-secret").unwrap();
        let repo_dir = tmp.path().join("repo");
        let sealed = backup::seal_secrets(&lib, &secrets_of(&lib).unwrap(), b"correct horse", Some(kdf())).unwrap();
        let opts = BackupOptions { repo: Some(repo_dir.clone()), ..Default::default() };
        let report = backup::backup_with_secrets(&lib, &opts, &sealed).unwrap();
        let repo = Repo::open(&repo_dir).unwrap();
        let data = tmp.path().join("data");

        let to = tmp.path().join("restored");
        let wrong = restore_snapshot_with_credentials(
            &repo,
            &data,
            &report.id,
            &to,
            &Default::default(),
            Some("wrong horse"),
            &secrets_of,
        )
        .unwrap_err();
        assert_eq!(wrong.code, "wrong_key", "{}", wrong.message);
        assert!(!to.exists(), "a refused passphrase restored something");

        let done = restore_snapshot_with_credentials(
            &repo,
            &data,
            &report.id,
            &to,
            &Default::default(),
            Some("correct horse"),
            &secrets_of,
        )
        .unwrap();
        assert_eq!(done.credentials, vec!["crm-token".to_owned()]);
        assert_eq!(files(&to), files(lib.root()));
        let restored = Library::open(OpenOptions {
            root: to.clone(),
            data_dir: Some(data.clone()),
            create: false,
            reconcile: false,
        })
        .unwrap();
        let value = secrets_of(&restored).unwrap().credential_value("crm-token", true).unwrap();
        assert_eq!(&value[..], b"tok-123-very-secret");
    }

    #[test]
    fn schedules_have_their_intervals() {
        assert_eq!(BackupSchedule::Off.interval_secs(), None);
        assert_eq!(BackupSchedule::Hourly.interval_secs(), Some(3600));
        assert_eq!(BackupSchedule::Daily.interval_secs(), Some(86_400));
        let saved: BackupSettings = serde_json::from_str(r#"{"schedule":"daily"}"#).unwrap();
        assert_eq!(saved.schedule, BackupSchedule::Daily);
        assert_eq!(saved.location, None);
    }

    /// What a scheduled backup reported (the seam's test side).
    #[derive(Default)]
    struct Recorder {
        events: Mutex<Vec<BackupFinished>>,
        notes: Mutex<Vec<(String, String)>>,
    }

    impl BackupOutlet for Recorder {
        fn finished(&self, event: &BackupFinished) {
            self.events.lock().unwrap().push(event.clone());
        }
        fn notify(&self, title: &str, body: &str) {
            self.notes.lock().unwrap().push((title.to_owned(), body.to_owned()));
        }
    }

    #[test]
    fn a_scheduled_backup_failing_its_verification_is_a_reported_failure_and_retried() {
        use bpv_engine::fault::{self, Plan};
        let tmp = tempfile::tempdir().unwrap();
        let lib = library(tmp.path());
        let repo_dir = tmp.path().join("repo");
        let lock = Mutex::new(());
        let store = SettingsStore { file: tmp.path().join("app-data").join(SETTINGS_FILE), lock: &lock };
        store
            .change(|s| {
                s.location = Some(repo_dir.to_string_lossy().into_owned());
                s.schedule = BackupSchedule::Hourly;
            })
            .unwrap();
        let run = |out: &Recorder| {
            let result = backup_recorded(&store, &lib, None, backup::CancelToken::new(), None, true);
            report_scheduled(&result, out)
        };
        let due = |s: &BackupSettings, last_failure: Option<u64>, now: u64| {
            backup::backup_due(
                &backup::ScheduleState {
                    interval: s.schedule.interval_secs(),
                    last_success: s.last_backup,
                    last_failure,
                    retry_after: RETRY_AFTER_FAILURE.as_secs(),
                },
                now,
            )
        };

        // A good backup, made two hours ago as far as the hourly schedule knows: one is due.
        assert!(run(&Recorder::default()));
        let two_hours_ago = unix_now() - 2 * 3600;
        store.change(|s| s.last_backup = Some(two_hours_ago)).unwrap();
        let snapshots = || Repo::open(&repo_dir).unwrap().snapshots().unwrap().len();
        assert_eq!(snapshots(), 1);

        // New content (frames to compress), each frame damaged between write and verify.
        lib.save_blueprint(
            "Blueprints/personal/sales/new.blueprint.yaml",
            b"name: New\nnodes:\n  - id: b\n    type: slack\n",
            &Default::default(),
        )
        .unwrap();
        let out = Recorder::default();
        let injector =
            fault::install(Plan { roots: vec![repo_dir.clone()], damage_compressed: true, ..Default::default() });
        let ok = run(&out);
        drop(injector);
        assert!(!ok, "a backup failing its verification is a failed backup");

        let s = store.load();
        assert_eq!(s.last_backup, Some(two_hours_ago), "not recorded as the last backup");
        let failure = s.last_failure.clone().expect("the failure is recorded");
        assert!(failure.scheduled);
        assert!(failure.message.contains("failed its verification"), "{}", failure.message);
        assert_eq!(view_of(&lib, &s).last_failure.as_ref(), Some(&failure), "the status bar's data");
        assert_eq!(snapshots(), 1, "the failed snapshot is not listed");

        let events = out.events.lock().unwrap().clone();
        assert_eq!(events.len(), 1);
        assert!(!events[0].ok && events[0].scheduled && events[0].id.is_none());
        assert_eq!(events[0].message.as_deref(), Some(failure.message.as_str()));
        let notes = out.notes.lock().unwrap().clone();
        assert_eq!(notes.len(), 1, "one desktop notification: {notes:?}");
        assert!(notes[0].1.contains(&failure.message), "{notes:?}");

        // Retried: not hammered right away, due again after the retry delay.
        assert!(!due(&s, Some(failure.at), failure.at));
        assert!(due(&s, Some(failure.at), failure.at + RETRY_AFTER_FAILURE.as_secs()));

        // The retry succeeds: a new last backup, the failure cleared, nothing notified.
        let out = Recorder::default();
        assert!(run(&out));
        let s = store.load();
        assert!(s.last_backup.unwrap() > two_hours_ago);
        assert_eq!(s.last_failure, None);
        assert!(out.events.lock().unwrap()[0].ok);
        assert!(out.notes.lock().unwrap().is_empty());
        assert_eq!(snapshots(), 2);
    }
}
