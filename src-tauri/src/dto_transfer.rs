//! What crosses IPC for import/export (issue 5) and backup/restore (issue 6): the
//! engine's reports mirrored as plain serialisable shapes (the engine's own types carry
//! in-memory payloads and `&'static str`s, and stay free of ts-rs), the arguments of the
//! transfer commands, and the two window events of long operations.

use bpv_engine::backup::{self, SnapshotInfo};
use bpv_engine::transfer::{Class, ImportPlan, ImportReport, PlanItem, SecretWarning, SourceError};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A long operation that reports progress and can be cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Import,
    Export,
    Backup,
    Verify,
    Restore,
    Prune,
}

/// Emitted as the `operation-progress` window event while an operation runs.
#[derive(Clone, Debug, Serialize, TS)]
pub struct OperationProgress {
    pub op: Operation,
    /// What it is doing now: `reading`, `checking`, `writing`, `exporting`, `scan`,
    /// `backup`, `verify`, `restore`.
    pub phase: String,
    pub done: u64,
    /// May grow while sources are read; 0 when not known yet.
    pub total: u64,
}

/// The name of the progress event.
pub const OPERATION_PROGRESS: &str = "operation-progress";

/// Emitted as the `backup-finished` window event after every backup (the button's or
/// the schedule's), so an open Backups view refreshes.
#[derive(Clone, Debug, Serialize, TS)]
pub struct BackupFinished {
    pub ok: bool,
    /// Started by the automatic schedule rather than by the user.
    pub scheduled: bool,
    pub id: Option<String>,
    /// Why it failed (`ok` false).
    pub message: Option<String>,
}

/// The name of the backup event.
pub const BACKUP_FINISHED: &str = "backup-finished";

/// The dry-run class of an import item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ImportClass {
    New,
    Identical,
    Conflict,
    Invalid,
    Refused,
}

impl From<Class> for ImportClass {
    fn from(c: Class) -> Self {
        match c {
            Class::New => ImportClass::New,
            Class::Identical => ImportClass::Identical,
            Class::Conflict => ImportClass::Conflict,
            Class::Invalid => ImportClass::Invalid,
            Class::Refused => ImportClass::Refused,
        }
    }
}

/// One item of the dry-run report.
#[derive(Clone, Debug, Serialize, TS)]
pub struct ImportItem {
    /// The item's number in this plan (per-item decisions refer to it).
    pub n: u64,
    /// The file, or `bundle.zip!path/in/bundle`.
    pub source: String,
    /// Library path it would be written to.
    pub target: Option<String>,
    pub class: ImportClass,
    /// Why it is invalid, refused or in conflict.
    pub reason: Option<String>,
    pub line: Option<u32>,
    /// The library blueprint it is identical to or conflicts with.
    pub existing: Option<String>,
    pub name: Option<String>,
    pub converted_from_json: bool,
    pub size: u64,
}

impl From<&PlanItem> for ImportItem {
    fn from(p: &PlanItem) -> Self {
        ImportItem {
            n: p.n as u64,
            source: p.source.clone(),
            target: p.target.clone(),
            class: p.class.into(),
            reason: p.reason.clone(),
            line: p.line,
            existing: p.existing.clone(),
            name: p.name.clone(),
            converted_from_json: p.converted_from_json,
            size: p.size,
        }
    }
}

/// A source that could not be read at all, or an item that failed, with why.
#[derive(Clone, Debug, Serialize, TS)]
pub struct ImportError {
    pub source: String,
    pub error: String,
}

impl From<&SourceError> for ImportError {
    fn from(e: &SourceError) -> Self {
        ImportError { source: e.source.clone(), error: e.error.clone() }
    }
}

#[derive(Clone, Debug, Default, Serialize, TS)]
pub struct ImportCounts {
    pub new: u64,
    pub identical: u64,
    pub conflict: u64,
    pub invalid: u64,
    pub refused: u64,
}

/// The dry-run report: nothing has been written. `plan_id` names it for `import_apply`.
#[derive(Clone, Debug, Serialize, TS)]
pub struct ImportPlanView {
    pub plan_id: u64,
    /// The folder the items go to (our bundles keep their own paths when none was chosen).
    pub into: Option<String>,
    pub sources: Vec<String>,
    pub items: Vec<ImportItem>,
    pub errors: Vec<ImportError>,
    /// Files that are not blueprints and were left alone.
    pub ignored: Vec<String>,
    pub counts: ImportCounts,
}

impl ImportPlanView {
    pub fn of(plan_id: u64, into: Option<String>, sources: Vec<String>, plan: &ImportPlan) -> Self {
        let c = &plan.counts;
        ImportPlanView {
            plan_id,
            into,
            sources,
            items: plan.items.iter().map(ImportItem::from).collect(),
            errors: plan.errors.iter().map(ImportError::from).collect(),
            ignored: plan.ignored.clone(),
            counts: ImportCounts {
                new: c.new as u64,
                identical: c.identical as u64,
                conflict: c.conflict as u64,
                invalid: c.invalid as u64,
                refused: c.refused as u64,
            },
        }
    }
}

/// What to do with a conflict (or, per item, `skip` also leaves out a new item).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ConflictChoice {
    Skip,
    Rename,
    Overwrite,
}

/// A per-item choice made in the report dialog.
#[derive(Clone, Debug, Deserialize, TS)]
pub struct ItemDecision {
    pub n: u64,
    pub choice: ConflictChoice,
}

#[derive(Clone, Debug, Serialize, TS)]
pub struct RenamedItem {
    pub from: String,
    pub to: String,
}

/// The final summary of an import.
#[derive(Clone, Debug, Serialize, TS)]
pub struct ImportSummary {
    /// Library paths written (new, renamed or overwritten).
    pub imported: Vec<String>,
    /// Already in the library with the same content.
    pub identical: Vec<String>,
    /// Left alone (a conflict, or an item the user chose to skip).
    pub skipped: Vec<String>,
    /// Invalid and refused items and unreadable sources, with reasons.
    pub errors: Vec<ImportError>,
    pub renamed: Vec<RenamedItem>,
    pub overwritten: Vec<String>,
    pub millis: u64,
}

impl From<&ImportReport> for ImportSummary {
    fn from(r: &ImportReport) -> Self {
        ImportSummary {
            imported: r.imported.clone(),
            identical: r.identical.clone(),
            skipped: r.skipped.clone(),
            errors: r.errors.iter().map(ImportError::from).collect(),
            renamed: r.renamed.iter().map(|x| RenamedItem { from: x.from.clone(), to: x.to.clone() }).collect(),
            overwritten: r.overwritten.clone(),
            millis: r.millis,
        }
    }
}

/// Which blueprints to export: the union of the named paths, a folder, blueprints with
/// all the tags, and the results of a search (within the folder/tags when given).
#[derive(Clone, Debug, Default, Deserialize, TS)]
pub struct ExportScope {
    pub paths: Vec<String>,
    /// A folder (any depth below it); `""` for the whole library.
    pub folder: Option<String>,
    pub tags: Vec<String>,
    pub search: Option<String>,
}

/// A blueprint line that looks like it holds a credential.
#[derive(Clone, Debug, Serialize, TS)]
pub struct SecretFinding {
    pub path: String,
    pub line: u32,
    pub kind: String,
    pub hint: String,
}

impl From<&SecretWarning> for SecretFinding {
    fn from(w: &SecretWarning) -> Self {
        SecretFinding { path: w.path.clone(), line: w.line, kind: w.kind.clone(), hint: w.hint.clone() }
    }
}

/// What an export would take, checked before anything is written.
#[derive(Clone, Debug, Serialize, TS)]
pub struct ExportPreview {
    /// The blueprints the scope resolves to (at most 5000).
    pub paths: Vec<String>,
    pub warnings: Vec<SecretFinding>,
    /// Where a bundle would go by default (`<library>/Exports/export-….zip`).
    pub default_bundle: String,
}

#[derive(Clone, Debug, Serialize, TS)]
pub struct ExportDone {
    pub exported: Vec<String>,
    /// The bundle file or the folder written.
    pub to: String,
    /// `bundle` or `folder`.
    pub kind: String,
    pub warnings: Vec<SecretFinding>,
    pub files: u64,
    pub bytes: u64,
    pub millis: u64,
}

/// How often the app backs up by itself while it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum BackupSchedule {
    #[default]
    Off,
    Hourly,
    Daily,
}

impl BackupSchedule {
    pub fn interval_secs(self) -> Option<u64> {
        match self {
            BackupSchedule::Off => None,
            BackupSchedule::Hourly => Some(3600),
            BackupSchedule::Daily => Some(86_400),
        }
    }
}

/// A backup that failed (its verification included): kept with the settings until the
/// next successful backup, so the status bar shows it after a restart too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct BackupFailure {
    /// Unix seconds.
    pub at: u64,
    /// Why, as the error said it.
    pub message: String,
    /// Started by the automatic schedule rather than by the user.
    pub scheduled: bool,
}

/// The backup settings (kept in `<data dir>/backup-settings.json`).
#[derive(Clone, Debug, Serialize, TS)]
pub struct BackupSettingsView {
    /// The chosen repository folder; null for the default.
    pub location: Option<String>,
    /// The repository backups go to now.
    pub effective_location: String,
    pub default_location: String,
    pub schedule: BackupSchedule,
    /// Unix seconds of the last successful backup the app made (any trigger).
    pub last_backup: Option<u64>,
    /// The last backup failed (after `last_backup`): shown until a backup succeeds.
    pub last_failure: Option<BackupFailure>,
    /// What Prune keeps.
    pub retention: RetentionSettings,
}

/// One line of the snapshot list.
#[derive(Clone, Debug, Serialize, TS)]
pub struct SnapshotRow {
    pub id: String,
    /// RFC 3339.
    pub created: String,
    pub library: String,
    pub files: u64,
    pub bytes: u64,
    /// Compressed bytes this snapshot added to the repository.
    pub new_bytes: u64,
}

impl From<&SnapshotInfo> for SnapshotRow {
    fn from(s: &SnapshotInfo) -> Self {
        SnapshotRow {
            id: s.id.clone(),
            created: s.created.clone(),
            library: s.library.clone(),
            files: s.files,
            bytes: s.bytes,
            new_bytes: s.new_bytes,
        }
    }
}

/// One file of a snapshot.
#[derive(Clone, Debug, Serialize, TS)]
pub struct SnapshotFile {
    pub path: String,
    /// `library` (the library folder) or `data` (trash and version history).
    pub source: String,
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
    pub hash: String,
}

impl From<&backup::Entry> for SnapshotFile {
    fn from(e: &backup::Entry) -> Self {
        SnapshotFile {
            path: e.path.clone(),
            source: match e.source {
                backup::Source::Library => "library",
                backup::Source::Data => "data",
            }
            .into(),
            size: e.size,
            mtime: e.mtime,
            hash: e.hash.clone(),
        }
    }
}

/// Something wrong in a snapshot, and the files it affects.
#[derive(Clone, Debug, Serialize, TS)]
pub struct SnapshotProblem {
    pub kind: String,
    pub message: String,
    pub paths: Vec<String>,
}

impl From<&backup::Problem> for SnapshotProblem {
    fn from(p: &backup::Problem) -> Self {
        SnapshotProblem { kind: p.kind.to_owned(), message: p.message.clone(), paths: p.paths.clone() }
    }
}

#[derive(Clone, Debug, Serialize, TS)]
pub struct VerifyResult {
    pub id: String,
    pub ok: bool,
    pub files: u64,
    pub objects: u64,
    pub bytes: u64,
    pub problems: Vec<SnapshotProblem>,
    pub millis: u64,
}

impl From<&backup::VerifyReport> for VerifyResult {
    fn from(r: &backup::VerifyReport) -> Self {
        VerifyResult {
            id: r.id.clone(),
            ok: r.ok,
            files: r.files,
            objects: r.objects,
            bytes: r.bytes,
            problems: r.problems.iter().map(SnapshotProblem::from).collect(),
            millis: r.millis,
        }
    }
}

/// A backup and the verification that followed it.
#[derive(Clone, Debug, Serialize, TS)]
pub struct BackupDone {
    pub id: String,
    pub files: u64,
    pub bytes: u64,
    pub new_bytes: u64,
    pub millis: u64,
    pub repository: String,
    /// Files that could not be backed up, with why.
    pub skipped: Vec<String>,
    pub verify: VerifyResult,
}

#[derive(Clone, Debug, Serialize, TS)]
pub struct RestoreDone {
    pub id: String,
    pub to: String,
    pub files: u64,
    pub bytes: u64,
    /// What could not be restored (only for a partial restore).
    pub not_restored: Vec<SnapshotProblem>,
    pub millis: u64,
    /// For a restore over the library: the snapshot taken of it just before (restore that
    /// one to undo).
    pub before: Option<String>,
    /// The credentials whose values were restored (when asked for, with the passphrase).
    pub credentials: Vec<String>,
}

impl From<&backup::RestoreReport> for RestoreDone {
    fn from(r: &backup::RestoreReport) -> Self {
        RestoreDone {
            id: r.id.clone(),
            to: r.to.clone(),
            files: r.files,
            bytes: r.bytes,
            not_restored: r.not_restored.iter().map(SnapshotProblem::from).collect(),
            millis: r.millis,
            before: r.before.clone(),
            credentials: Vec::new(),
        }
    }
}

/// Which snapshots a prune keeps: the union of the rules set (at least one is needed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RetentionSettings {
    /// The newest N snapshots.
    #[serde(default)]
    pub keep_last: Option<u32>,
    /// The newest snapshot of each of the last N days that have one.
    #[serde(default)]
    pub keep_daily: Option<u32>,
    /// The newest snapshot of each of the last N ISO weeks that have one.
    #[serde(default)]
    pub keep_weekly: Option<u32>,
}

impl RetentionSettings {
    /// The engine's policy; a 0 counts as not set (keeping none by a rule is no rule).
    pub fn policy(&self) -> backup::Retention {
        let n = |v: Option<u32>| v.filter(|n| *n > 0).map(|n| n as usize);
        backup::Retention {
            keep_last: n(self.keep_last),
            keep_daily: n(self.keep_daily),
            keep_weekly: n(self.keep_weekly),
        }
    }
}

/// What a prune with a retention policy would keep and forget (nothing changed yet).
#[derive(Clone, Debug, Serialize, TS)]
pub struct PrunePreviewView {
    /// Newest first.
    pub kept: Vec<SnapshotRow>,
    /// Newest first: the snapshots Prune now would forget.
    pub removed: Vec<SnapshotRow>,
    pub warnings: Vec<String>,
}

/// What a prune did.
#[derive(Clone, Debug, Serialize, TS)]
pub struct PruneDone {
    pub kept: u64,
    /// The snapshots forgotten.
    pub removed: Vec<String>,
    pub objects_removed: u64,
    pub bytes_freed: u64,
    pub warnings: Vec<String>,
    pub millis: u64,
}

impl From<&backup::PruneReport> for PruneDone {
    fn from(r: &backup::PruneReport) -> Self {
        PruneDone {
            kept: r.kept.len() as u64,
            removed: r.removed.clone(),
            objects_removed: r.objects_removed,
            bytes_freed: r.bytes_freed,
            warnings: r.warnings.clone(),
            millis: r.millis,
        }
    }
}
