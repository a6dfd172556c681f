// Generated from the Rust types by src-tauri/src/bindings.rs (ts-rs). Do not edit:
// change the Rust types, then run `UPDATE_BINDINGS=1 cargo test -p blueprint-vault bindings`.

export type Item = { 
/**
 * Relative to the library root, `/`-separated.
 */
path: string, 
/**
 * The blueprint's id (the companion's when it has one, else the YAML's), if any.
 */
id: string | null, 
/**
 * The blueprint's name; for a file whose YAML has no usable name, its file stem.
 */
name: string, description: string | null, 
/**
 * Tags from the YAML and the companion metadata, deduplicated, in order.
 */
tags: Array<string>, author: string | null, version: string | null, 
/**
 * RFC 3339, UTC: the later of the blueprint file's and its companion's mtimes.
 */
modified: string, 
/**
 * Size of the blueprint file in bytes.
 */
size: number, 
/**
 * SHA-256 of the blueprint file's bytes, lowercase hex.
 */
hash: string, encrypted: boolean, valid: boolean, 
/**
 * Why the file is invalid, with its line when known.
 */
error: string | null, 
/**
 * 1-based line of the error, when known.
 */
error_line: number | null, };

export type SearchHit = { 
/**
 * Higher is better; 0 when the query had no searchable words.
 */
score: number, 
/**
 * A short excerpt with the matched words as `<mark>…</mark>`.
 */
snippet: string | null, 
/**
 * Relative to the library root, `/`-separated.
 */
path: string, 
/**
 * The blueprint's id (the companion's when it has one, else the YAML's), if any.
 */
id: string | null, 
/**
 * The blueprint's name; for a file whose YAML has no usable name, its file stem.
 */
name: string, description: string | null, 
/**
 * Tags from the YAML and the companion metadata, deduplicated, in order.
 */
tags: Array<string>, author: string | null, version: string | null, 
/**
 * RFC 3339, UTC: the later of the blueprint file's and its companion's mtimes.
 */
modified: string, 
/**
 * Size of the blueprint file in bytes.
 */
size: number, 
/**
 * SHA-256 of the blueprint file's bytes, lowercase hex.
 */
hash: string, encrypted: boolean, valid: boolean, 
/**
 * Why the file is invalid, with its line when known.
 */
error: string | null, 
/**
 * 1-based line of the error, when known.
 */
error_line: number | null, };

export type TagCount = { tag: string, count: number, };

export type FolderCount = { path: string, count: number, };

export type IndexStats = { items: number, invalid: number, encrypted: number, bytes: number, };

export type TrashEntry = { 
/**
 * Pass to `trash_restore`.
 */
id: string, 
/**
 * Where it was, relative to the library root.
 */
path: string, name: string, 
/**
 * RFC 3339.
 */
deleted: string, size: number, hash: string, };

export type Version = { 
/**
 * Pass to `restore_version`.
 */
id: string, 
/**
 * RFC 3339: when this content was replaced.
 */
saved: string, hash: string, size: number, };

export type InvalidFile = { path: string, error: string, };

export type ReindexReport = { indexed: number, invalid: Array<InvalidFile>, millis: number, };

export type ReconcileReport = { added: number, changed: number, removed: number, unchanged: number, millis: number, };

export type IpcError = { code: string, message: string, };

export type SortBy = "name" | "modified";

export type ListArgs = { 
/**
 * A folder (any depth below it), e.g. `Blueprints/personal`; null for everything.
 */
folder: string | null, 
/**
 * All must match, case-insensitive.
 */
tags: Array<string>, sort: SortBy, 
/**
 * Only invalid blueprints.
 */
invalid_only: boolean, offset: number, limit: number, };

export type SearchArgs = { text: string, tags: Array<string>, folder: string | null, offset: number, limit: number, };

export type ItemPage = { items: Array<Item>, 
/**
 * Every item matching the filters, whatever the page.
 */
total: number, };

export type SearchPage = { hits: Array<SearchHit>, total: number, };

export type Sidebar = { folders: Array<FolderCount>, tags: Array<TagCount>, };

export type LibraryState = { 
/**
 * Absolute path of the library folder.
 */
path: string, 
/**
 * Its folder name.
 */
name: string, 
/**
 * The library's private area (index, trash, versions).
 */
data_dir: string, 
/**
 * Where the app writes its logs.
 */
log_dir: string, stats: IndexStats, trash: number, 
/**
 * Milliseconds the open (and reconcile with the files) took.
 */
open_millis: number, 
/**
 * The folder watcher: `watching`, `polling` (network drives, or the watch limit was
 * reached), `degraded` (retrying), `stopped`, or `off` (could not start).
 */
watch: string, };

export type Problem = { message: string, line: number | null, column: number | null, };

export type GraphNode = { id: string, node_type: string, label: string | null, 
/**
 * The node's `position`, when the YAML gives one.
 */
x: number | null, y: number | null, };

export type GraphEdge = { from: string, to: string, };

export type YamlCheck = { problem: Problem | null, nodes: Array<GraphNode>, edges: Array<GraphEdge>, 
/**
 * Tags written in the YAML itself (the rest of an item's tags live in its companion file).
 */
yaml_tags: Array<string>, yaml_description: string | null, };

export type BlueprintDetail = { item: Item, 
/**
 * The file's text (invalid UTF-8 replaced; then `editable` is false).
 */
yaml: string, editable: boolean, 
/**
 * Absolute path of the file.
 */
file: string, check: YamlCheck, 
/**
 * Credentials the YAML references as `${secret:NAME}`, and whether each exists.
 */
secrets: Array<CredentialUse>, 
/**
 * Why an encrypted blueprint cannot be shown (its key is missing or wrong); null when
 * it is plain or was decrypted.
 */
locked: string | null, };

export type MetaEdit = { 
/**
 * Replace the companion's tags (tags written in the YAML stay).
 */
tags: Array<string> | null, description: string | null, 
/**
 * The `hash` of the item as loaded: `conflict` if the file changed since.
 */
if_match: string | null, };

export type LibraryEventKind = "opened" | "changed" | "reindexed" | "watch";

export type LibraryEvent = { kind: LibraryEventKind, 
/**
 * The blueprints concerned, when known (empty: anything may have changed).
 */
paths: Array<string>, };

export type Operation = "import" | "export" | "backup" | "verify" | "restore" | "prune";

export type OperationProgress = { op: Operation, 
/**
 * What it is doing now: `reading`, `checking`, `writing`, `exporting`, `scan`,
 * `backup`, `verify`, `restore`.
 */
phase: string, done: number, 
/**
 * May grow while sources are read; 0 when not known yet.
 */
total: number, };

export type BackupFinished = { ok: boolean, 
/**
 * Started by the automatic schedule rather than by the user.
 */
scheduled: boolean, id: string | null, 
/**
 * Why it failed (`ok` false).
 */
message: string | null, };

export type ImportClass = "new" | "identical" | "conflict" | "invalid" | "refused";

export type ImportItem = { 
/**
 * The item's number in this plan (per-item decisions refer to it).
 */
n: number, 
/**
 * The file, or `bundle.zip!path/in/bundle`.
 */
source: string, 
/**
 * Library path it would be written to.
 */
target: string | null, class: ImportClass, 
/**
 * Why it is invalid, refused or in conflict.
 */
reason: string | null, line: number | null, 
/**
 * The library blueprint it is identical to or conflicts with.
 */
existing: string | null, name: string | null, converted_from_json: boolean, size: number, };

export type ImportError = { source: string, error: string, };

export type ImportCounts = { new: number, identical: number, conflict: number, invalid: number, refused: number, };

export type ImportPlanView = { plan_id: number, 
/**
 * The folder the items go to (our bundles keep their own paths when none was chosen).
 */
into: string | null, sources: Array<string>, items: Array<ImportItem>, errors: Array<ImportError>, 
/**
 * Files that are not blueprints and were left alone.
 */
ignored: Array<string>, counts: ImportCounts, };

export type ConflictChoice = "skip" | "rename" | "overwrite";

export type ItemDecision = { n: number, choice: ConflictChoice, };

export type RenamedItem = { from: string, to: string, };

export type ImportSummary = { 
/**
 * Library paths written (new, renamed or overwritten).
 */
imported: Array<string>, 
/**
 * Already in the library with the same content.
 */
identical: Array<string>, 
/**
 * Left alone (a conflict, or an item the user chose to skip).
 */
skipped: Array<string>, 
/**
 * Invalid and refused items and unreadable sources, with reasons.
 */
errors: Array<ImportError>, renamed: Array<RenamedItem>, overwritten: Array<string>, millis: number, };

export type ExportScope = { paths: Array<string>, 
/**
 * A folder (any depth below it); `""` for the whole library.
 */
folder: string | null, tags: Array<string>, search: string | null, };

export type SecretFinding = { path: string, line: number, kind: string, hint: string, };

export type ExportPreview = { 
/**
 * The blueprints the scope resolves to (at most 5000).
 */
paths: Array<string>, warnings: Array<SecretFinding>, 
/**
 * Where a bundle would go by default (`<library>/Exports/export-….zip`).
 */
default_bundle: string, };

export type ExportDone = { exported: Array<string>, 
/**
 * The bundle file or the folder written.
 */
to: string, 
/**
 * `bundle` or `folder`.
 */
kind: string, warnings: Array<SecretFinding>, files: number, bytes: number, millis: number, };

export type BackupSchedule = "off" | "hourly" | "daily";

export type BackupFailure = { 
/**
 * Unix seconds.
 */
at: number, 
/**
 * Why, as the error said it.
 */
message: string, 
/**
 * Started by the automatic schedule rather than by the user.
 */
scheduled: boolean, };

export type BackupSettingsView = { 
/**
 * The chosen repository folder; null for the default.
 */
location: string | null, 
/**
 * The repository backups go to now.
 */
effective_location: string, default_location: string, schedule: BackupSchedule, 
/**
 * Unix seconds of the last successful backup the app made (any trigger).
 */
last_backup: number | null, 
/**
 * The last backup failed (after `last_backup`): shown until a backup succeeds.
 */
last_failure: BackupFailure | null, 
/**
 * What Prune keeps.
 */
retention: RetentionSettings, };

export type SnapshotRow = { id: string, 
/**
 * RFC 3339.
 */
created: string, library: string, files: number, bytes: number, 
/**
 * Compressed bytes this snapshot added to the repository.
 */
new_bytes: number, };

export type SnapshotFile = { path: string, 
/**
 * `library` (the library folder) or `data` (trash and version history).
 */
source: string, size: number, 
/**
 * Nanoseconds since the epoch.
 */
mtime: number, hash: string, };

export type SnapshotProblem = { kind: string, message: string, paths: Array<string>, };

export type VerifyResult = { id: string, ok: boolean, files: number, objects: number, bytes: number, problems: Array<SnapshotProblem>, millis: number, };

export type BackupDone = { id: string, files: number, bytes: number, new_bytes: number, millis: number, repository: string, 
/**
 * Files that could not be backed up, with why.
 */
skipped: Array<string>, verify: VerifyResult, };

export type RestoreDone = { id: string, to: string, files: number, bytes: number, 
/**
 * What could not be restored (only for a partial restore).
 */
not_restored: Array<SnapshotProblem>, millis: number, 
/**
 * For a restore over the library: the snapshot taken of it just before (restore that
 * one to undo).
 */
before: string | null, 
/**
 * The credentials whose values were restored (when asked for, with the passphrase).
 */
credentials: Array<string>, };

export type RetentionSettings = { 
/**
 * The newest N snapshots.
 */
keep_last: number | null, 
/**
 * The newest snapshot of each of the last N days that have one.
 */
keep_daily: number | null, 
/**
 * The newest snapshot of each of the last N ISO weeks that have one.
 */
keep_weekly: number | null, };

export type PrunePreviewView = { 
/**
 * Newest first.
 */
kept: Array<SnapshotRow>, 
/**
 * Newest first: the snapshots Prune now would forget.
 */
removed: Array<SnapshotRow>, warnings: Array<string>, };

export type PruneDone = { kept: number, 
/**
 * The snapshots forgotten.
 */
removed: Array<string>, objects_removed: number, bytes_freed: number, warnings: Array<string>, millis: number, };

export type StoreKind = "secret-service" | "keyutils" | "file" | "macos-keychain" | "windows-credential-manager";

export type StoreChoice = { store: StoreKind, 
/**
 * What the store is, for people.
 */
description: string, 
/**
 * Why this store: asked for, remembered for this library, or the first that worked.
 */
reason: string, 
/**
 * What it holds for this library (the master key, retired keys, credentials) and
 * whether that survives a reboot; empty where not looked up.
 */
holds: string, };

export type CredentialInfo = { name: string, created: string, updated: string, last_used: string | null, 
/**
 * Blueprints that reference it as `${secret:NAME}` (encrypted ones only when the key is at hand).
 */
used_by: Array<string>, 
/**
 * Whether the store still holds a value (it can be removed behind our back).
 */
present: boolean, };

export type MissingReference = { name: string, used_by: Array<string>, };

export type CredentialList = { store: StoreChoice, credentials: Array<CredentialInfo>, missing: Array<MissingReference>, };

export type KeyStatus = { 
/**
 * `none` (nothing encrypted yet), `ok`, `missing`, `wrong`, `damaged`, `unavailable`.
 */
state: string, 
/**
 * The id (public fingerprint) of the key in use, when known.
 */
key_id: string | null, encrypted_blueprints: number, 
/**
 * What is wrong and the way out; empty when all is well.
 */
message: string, };

export type RecoverReport = { key_id: string, 
/**
 * Encrypted blueprints that open with the recovered key.
 */
readable: number, 
/**
 * Encrypted blueprints sealed with another key (paths).
 */
unreadable: Array<string>, };

export type RotateReport = { old_key_id: string, new_key_id: string, reencrypted: number, millis: number, };

export type AuditEntry = { 
/**
 * RFC 3339, UTC.
 */
time: string, 
/**
 * `credential-set`, `credential-reveal`, `credential-delete`, `key-created`,
 * `recovery-kit-exported`, `key-recovered`, `key-rotated`, `rotation-finished`, `rotation-abandoned`,
 * `blueprint-decrypted` (its path in `name`).
 */
action: string, name?: string | null, detail?: string | null, store: string, pid: number, };

export type CredentialUse = { name: string, exists: boolean, };

export type SyncLinkArgs = { 
/**
 * S3 endpoints, http(s)://host:port; several nodes of one cluster are tried in turn.
 */
endpoints: Array<string>, bucket: string, prefix: string, 
/**
 * The store's region (Garage: its `s3_region`); empty for `us-east-1`.
 */
region: string, 
/**
 * Path-style requests (Garage, MinIO, Ceph); false for AWS S3's virtual-hosted style.
 */
path_style: boolean, 
/**
 * Shown in conflict copies' names; null for the host name.
 */
device_name: string | null, access_key_id: string, secret_access_key: string, 
/**
 * Seconds between periodic syncs while the app runs; null for 30.
 */
interval_secs: number | null, };

export type SyncItemState = { path: string, 
/**
 * `pending` (changed here, not sent yet), `conflict` (a copy kept from a concurrent
 * edit) or `error` (pending, and the last sync failed: `reason` says why).
 */
state: string, reason: string | null, 
/**
 * For a conflict copy: the blueprint it was split from (open both to compare).
 */
original: string | null, };

export type SyncRefused = { 
/**
 * The device id it came from.
 */
device: string, 
/**
 * The object in the team library (empty when refused while writing a file).
 */
object: string, 
/**
 * The path it named, with control characters escaped.
 */
path: string | null, reason: string, 
/**
 * Checked again at every sync (it may clear itself).
 */
retry: boolean, };

export type SyncStatusView = { linked: boolean, endpoints: Array<string>, bucket: string, prefix: string, region: string, path_style: boolean, device_name: string, 
/**
 * The keys are in the OS keychain (else the library's owner-only file, or the
 * environment).
 */
keys_in_keychain: boolean, last_sync: string | null, 
/**
 * Why the last sync failed (cleared by a successful one).
 */
last_error: string | null, 
/**
 * `unlinked`, `synced`, `pending`, `conflict`, `error` or `offline` (the store could
 * not be reached).
 */
state: string, pending_changes: number, synced: number, items: Array<SyncItemState>, 
/**
 * Entries of the team library refused (never written), oldest first.
 */
refused: Array<SyncRefused>, 
/**
 * Seconds between periodic syncs now (longer after failures).
 */
next_sync_in_secs: number, 
/**
 * A sync is running now.
 */
running: boolean, };

export type SyncDone = { 
/**
 * Local changes recorded and sent.
 */
recorded: number, sent: number, 
/**
 * Changes received from other devices, and local files updated to match.
 */
received: number, applied: number, 
/**
 * Conflict copies this sync made (paths).
 */
conflicts: Array<string>, 
/**
 * Local files not updated because they changed during the sync (next sync).
 */
deferred: Array<string>, 
/**
 * Entries of the team library this sync refused (never written).
 */
errors: Array<SyncRefused>, requests: number, millis: number, };

export type SyncProgress = { 
/**
 * `upload`, `send`, `receive`, `download`, `verify`, …
 */
phase: string, done: number, total: number, };

export type MigrateArgs = { target: string, 
/**
 * For a bucket: S3 endpoints, http(s)://host:port (several nodes of one cluster).
 */
endpoints: Array<string>, 
/**
 * Empty for `us-east-1`.
 */
region: string, path_style: boolean, access_key_id: string, secret_access_key: string, 
/**
 * Back the library up (to its backup folder) before copying.
 */
backup_first: boolean, 
/**
 * Only check: what would be copied, or why the target is refused; writes nothing.
 */
dry_run: boolean, };

export type MigrateDone = { 
/**
 * `file:///DIR` or `s3://BUCKET[/PREFIX]`.
 */
target: string, blueprints: number, 
/**
 * Blueprints that do not parse (copied as they are).
 */
invalid: number, 
/**
 * An earlier, interrupted attempt of this migration was found and continued.
 */
resumed: boolean, 
/**
 * Files (folder) or changes (bucket) written by this run.
 */
copied: number, 
/**
 * Files already in place from an earlier attempt (folder).
 */
skipped: number, bytes: number, 
/**
 * Blueprints checked byte for byte at the end (0 for a check).
 */
verified: number, dry_run: boolean, 
/**
 * The snapshot taken first, when asked.
 */
backup: string | null, millis: number, };

/** Every command: its arguments and what it resolves to. */
export type Commands = {
  /**The open library, or null before the first open. */
  library_state: { args: {  }; result: LibraryState | null };
  /**Open (creating it if needed) a library folder; null opens the startup library ($BPV_LIBRARY, else the last one, else <Documents>/Blueprint Vault). */
  open_library: { args: { path: string | null }; result: LibraryState };
  /**Ask the user for a folder (for another library); null when cancelled. */
  choose_folder: { args: { title: string }; result: string | null };
  /**One page of blueprints, sorted, filtered by folder and tags. */
  list_items: { args: { query: ListArgs }; result: ItemPage };
  /**Ranked full-text search, with snippets marking matches as <mark>…</mark>. */
  search_items: { args: { query: SearchArgs }; result: SearchPage };
  /**Folders and tags with their counts. */
  sidebar: { args: {  }; result: Sidebar };
  /**One blueprint: its item, YAML and workflow picture. */
  get_blueprint: { args: { path: string }; result: BlueprintDetail };
  /**Read YAML the way the engine does (problem, nodes and edges), without saving. */
  check_yaml: { args: { yaml: string }; result: YamlCheck };
  /**Validate and save a blueprint's YAML; `conflict` if it changed since `if_match`. */
  save_yaml: { args: { path: string; yaml: string; if_match: string | null }; result: Item };
  /**Edit tags and description (in the companion file; the YAML is never rewritten). */
  update_meta: { args: { path: string; edit: MetaEdit }; result: Item };
  /**Create a new blueprint (never overwrites: `already_exists`), with companion tags. */
  create_blueprint: { args: { path: string; yaml: string; tags: Array<string> }; result: Item };
  /**Rename or move a blueprint with its companion metadata and version history (the engine's `rename`). `conflict` if it changed since `if_match`. */
  move_blueprint: { args: { from: string; to: string; if_match: string | null }; result: Item };
  /**Move a blueprint (and its companion) to the Trash. */
  delete_blueprint: { args: { path: string }; result: TrashEntry };
  /**Everything in the Trash, most recently deleted first. */
  trash_list: { args: {  }; result: Array<TrashEntry> };
  /**Put a trashed blueprint back where it was. */
  trash_restore: { args: { id: string }; result: Item };
  /**Permanently remove everything in the Trash; resolves to how many were removed. */
  trash_empty: { args: {  }; result: number };
  /**Earlier contents of a blueprint, newest first. */
  versions: { args: { path: string }; result: Array<Version> };
  /**The text of one earlier version (for comparing before restoring it). */
  version_text: { args: { path: string; id: string }; result: string };
  /**Put an earlier version back (the current content becomes a version itself). */
  restore_version: { args: { path: string; id: string }; result: Item };
  /**Rebuild the index from the files. */
  reindex: { args: {  }; result: ReindexReport };
  /**Catch up with changes made by other programs (the UI calls it when the window gets focus and the folder is not being watched). */
  refresh: { args: {  }; result: ReconcileReport };
  /**Show the blueprint's file in the system file manager. */
  reveal: { args: { path: string }; result: null };
  /**Open the blueprint's file in the user's default editor for YAML. */
  open_in_editor: { args: { path: string }; result: null };
  /**Ask the user for files to import (blueprints, JSON blueprints, .zip bundles; several at once) or, with `folder`, one folder; empty when cancelled. */
  choose_import_sources: { args: { folder: boolean }; result: Array<string> };
  /**The import dry run (files, folders, .zip bundles; what a drop on the window or the Import… button gives): every item classified, nothing written. Progress as `operation-progress` events (op `import`); `cancel_operation` stops it. */
  import_plan: { args: { sources: Array<string>; into: string | null }; result: ImportPlanView };
  /**Apply the dry run `plan_id`: conflicts by `on_conflict` unless an item has its own decision (`skip` also leaves out a new item). All or nothing. */
  import_apply: { args: { plan_id: number; on_conflict: ConflictChoice; decisions: Array<ItemDecision> }; result: ImportSummary };
  /**Ask a running import, export, backup, verify or restore to stop (it then fails with `cancelled` and leaves everything as it was); false when none runs. */
  cancel_operation: { args: { op: Operation }; result: boolean };
  /**What an export of `scope` would take, with the secret scan's findings. */
  export_preview: { args: { scope: ExportScope }; result: ExportPreview };
  /**Export `scope` to `folder`, else to a new bundle in `Exports/`; `reveal` shows the result in the file manager. Refused when the secret scan finds something, unless `allow_secrets`. */
  export_blueprints: { args: { scope: ExportScope; folder: string | null; allow_secrets: boolean; reveal: boolean }; result: ExportDone };
  /**Where backups go and the automatic schedule. */
  backup_settings: { args: {  }; result: BackupSettingsView };
  /**Change the backup folder (null: the default, in the data dir) and the schedule. */
  set_backup_settings: { args: { location: string | null; schedule: BackupSchedule }; result: BackupSettingsView };
  /**Back up the library now, then verify the snapshot. Progress as `operation-progress` (op `backup`); then a `backup-finished` event. */
  backup_now: { args: {  }; result: BackupDone };
  /**The snapshots in the backup folder, newest first (empty before the first backup). */
  backup_snapshots: { args: {  }; result: Array<SnapshotRow> };
  /**The files of one snapshot, by path. */
  snapshot_contents: { args: { id: string }; result: Array<SnapshotFile> };
  /**Re-read and re-hash every object of a snapshot. */
  verify_snapshot: { args: { id: string }; result: VerifyResult };
  /**Put one file of a snapshot back into the library at its path (the current content, if any, is kept in the blueprint's history); resolves to that path. */
  restore_from_snapshot: { args: { id: string; path: string }; result: string };
  /**Restore a whole snapshot into `to`, a new or empty folder (it can then be opened as a library); `partial` restores what is intact of a damaged snapshot. */
  restore_snapshot_to: { args: { id: string; to: string; partial: boolean }; result: RestoreDone };
  /**Restore a whole snapshot over the open library (the library as it is now is backed up first: `before` names that snapshot, to undo the restore). */
  restore_snapshot_in_place: { args: { id: string; partial: boolean }; result: RestoreDone };
  /**Back up now with the credential values sealed under `passphrase` (≥ 8 characters; restoring them needs it). Otherwise as `backup_now`. */
  backup_now_with_credentials: { args: { passphrase: string }; result: BackupDone };
  /**`restore_snapshot_to`, and the snapshot's credential values into the restored library's store. A wrong passphrase is refused before anything is restored. */
  restore_snapshot_to_with_credentials: { args: { id: string; to: string; partial: boolean; passphrase: string }; result: RestoreDone };
  /**`restore_snapshot_in_place`, and the snapshot's credential values into the store. A wrong passphrase is refused before the library is touched. */
  restore_snapshot_in_place_with_credentials: { args: { id: string; partial: boolean; passphrase: string }; result: RestoreDone };
  /**Save what Prune keeps (with the other backup settings). */
  set_backup_retention: { args: { retention: RetentionSettings }; result: BackupSettingsView };
  /**What a prune with `retention` would keep and forget (dates, sizes); changes nothing. */
  prune_preview: { args: { retention: RetentionSettings }; result: PrunePreviewView };
  /**Save `retention`, forget the snapshots it does not keep and free the space only they used. Progress as `operation-progress` (op `prune`). */
  prune_backups: { args: { retention: RetentionSettings }; result: PruneDone };
  /**The library's credentials (names and metadata, never values), where they are kept and why, and references to credentials that do not exist. */
  credentials: { args: {  }; result: CredentialList };
  /**Store or replace a credential's value in the keychain. */
  credential_set: { args: { name: string; value: string }; result: CredentialInfo };
  /**A credential's value, to show a person (recorded in the audit log). */
  credential_reveal: { args: { name: string }; result: string };
  /**Remove a credential from the keychain and the list. */
  credential_delete: { args: { name: string }; result: null };
  /**The state of the master key of encrypted blueprints (checked with its canary). */
  key_status: { args: {  }; result: KeyStatus };
  /**Encrypt a blueprint at rest (its content sealed with the library's key). */
  encrypt_blueprint: { args: { path: string; if_match: string | null }; result: Item };
  /**Turn encryption off: the file becomes the plain YAML that was sealed (recorded in the audit log). */
  decrypt_blueprint: { args: { path: string; if_match: string | null }; result: Item };
  /**A recovery kit: the library's master key locked with `passphrase`, as a printable page (`bpv keys recover` and the app read it back). Recorded in the audit log. */
  recovery_kit: { args: { passphrase: string }; result: string };
  /**Put the master key back from a recovery kit (its page or JSON) and its passphrase. */
  recover_key: { args: { kit: string; passphrase: string }; result: RecoverReport };
  /**Re-seal every encrypted blueprint under a new master key, all or nothing (make a new recovery kit afterwards). */
  rotate_key: { args: {  }; result: RotateReport };
  /**The audit log of sensitive operations (reveals, kits, recovery, rotation), newest first. */
  audit_log: { args: {  }; result: Array<AuditEntry> };
  /**Save text the user asked to keep (a recovery kit) to a file they choose; null when they cancel. */
  save_text_as: { args: { title: string; file_name: string; text: string }; result: string | null };
  /**The open library's team-library link and each blueprint's sync state (no network). */
  sync_status: { args: {  }; result: SyncStatusView };
  /**Check a team library answers and accepts the keys, without linking anything. */
  sync_test: { args: { link: SyncLinkArgs }; result: null };
  /**Link the open library to a team library (the keys go to the OS keychain) and start syncing it periodically; refused (and nothing kept) when the store does not answer or refuses the keys. */
  sync_link: { args: { link: SyncLinkArgs }; result: SyncStatusView };
  /**Stop syncing and forget the link (the files and the team library are unchanged). */
  sync_unlink: { args: {  }; result: SyncStatusView };
  /**Sync now: send local changes, receive others'. Progress as `sync-progress` events, then a `sync-status` event; `sync_cancel` stops it (changes stay queued). */
  sync_now: { args: {  }; result: SyncDone };
  /**Ask a running sync to stop; false when none runs. */
  sync_cancel: { args: {  }; result: boolean };
  /**Check every blueprint is in the team library and here, byte for byte; resolves to how many were checked. */
  sync_verify: { args: {  }; result: number };
  /**Copy the open library to another backend (a folder: a new library; a bucket: a new team library), then check every file byte for byte. `dry_run`: only check what would be copied, or why the target is refused. Progress as `sync-progress` events. */
  migrate_library: { args: { args: MigrateArgs }; result: MigrateDone };
};

/** Every window event and its payload. */
export type Events = { "library-changed": LibraryEvent; "operation-progress": OperationProgress; "backup-finished": BackupFinished; "sync-progress": SyncProgress; "sync-status": SyncStatusView };
