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
file: string, check: YamlCheck, };

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
  /**Rename or move a blueprint (and its tags and description) to a new path; the old file goes to the Trash. `conflict` if it changed since `if_match`. */
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
};

/** Every window event and its payload. */
export type Events = { "library-changed": LibraryEvent };
