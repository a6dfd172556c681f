//! What crosses the IPC boundary besides the engine's own public types (`Item`,
//! `SearchHit`, `TagCount`, …): command arguments, page and detail shapes, events,
//! and the one error shape. TypeScript declarations for all of them are generated
//! (`bindings.rs`) into `ui/src/lib/bindings/`.

use bpv_engine::Item;
use bpv_engine::index::{FolderCount, IndexStats, SearchHit, TagCount};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Every failed command rejects with this. The UI branches on `code` only (the engine's
/// stable `Error::code()`, or one of the shell's own: `no_library`, `library_in_use`,
/// `internal`); `message` is for people.
#[derive(Clone, Debug, Serialize, TS)]
pub struct IpcError {
    pub code: String,
    pub message: String,
}

impl IpcError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        IpcError { code: code.to_owned(), message: message.into() }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        IpcError::new("internal", format!("internal error: {message}"))
    }
}

impl From<bpv_engine::Error> for IpcError {
    fn from(e: bpv_engine::Error) -> Self {
        IpcError { code: e.code().to_owned(), message: e.to_string() }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum SortBy {
    #[default]
    Name,
    Modified,
}

/// One page of the library listing.
#[derive(Clone, Debug, Deserialize, TS)]
pub struct ListArgs {
    /// A folder (any depth below it), e.g. `Blueprints/personal`; null for everything.
    pub folder: Option<String>,
    /// All must match, case-insensitive.
    pub tags: Vec<String>,
    pub sort: SortBy,
    /// Only invalid blueprints.
    pub invalid_only: bool,
    pub offset: u32,
    pub limit: u32,
}

/// One page of ranked search results.
#[derive(Clone, Debug, Deserialize, TS)]
pub struct SearchArgs {
    pub text: String,
    pub tags: Vec<String>,
    pub folder: Option<String>,
    pub offset: u32,
    pub limit: u32,
}

#[derive(Clone, Debug, Serialize, TS)]
pub struct ItemPage {
    pub items: Vec<Item>,
    /// Every item matching the filters, whatever the page.
    pub total: u64,
}

#[derive(Clone, Debug, Serialize, TS)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    pub total: u64,
}

/// Folders (with their item counts at any depth) and tags with counts.
#[derive(Clone, Debug, Serialize, TS)]
pub struct Sidebar {
    pub folders: Vec<FolderCount>,
    pub tags: Vec<TagCount>,
}

/// The open library, for the title and status bars.
#[derive(Clone, Debug, Serialize, TS)]
pub struct LibraryState {
    /// Absolute path of the library folder.
    pub path: String,
    /// Its folder name.
    pub name: String,
    /// The library's private area (index, trash, versions).
    pub data_dir: String,
    /// Where the app writes its logs.
    pub log_dir: String,
    pub stats: IndexStats,
    pub trash: u64,
    /// Milliseconds the open (and reconcile with the files) took.
    pub open_millis: u64,
    /// The folder watcher: `watching`, `polling` (network drives, or the watch limit was
    /// reached), `degraded` (retrying), `stopped`, or `off` (could not start).
    pub watch: String,
}

/// Where a blueprint is invalid.
#[derive(Clone, Debug, Serialize, TS)]
pub struct Problem {
    pub message: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

impl From<bpv_engine::blueprint::ParseError> for Problem {
    fn from(e: bpv_engine::blueprint::ParseError) -> Self {
        Problem { message: e.message, line: e.line, column: e.column }
    }
}

#[derive(Clone, Debug, Serialize, TS)]
pub struct GraphNode {
    pub id: String,
    pub node_type: String,
    pub label: Option<String>,
    /// The node's `position`, when the YAML gives one.
    pub x: Option<f64>,
    pub y: Option<f64>,
}

#[derive(Clone, Debug, Serialize, TS)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
}

/// What the YAML says, read by the engine: the workflow picture and the first problem.
#[derive(Clone, Debug, Serialize, TS)]
pub struct YamlCheck {
    pub problem: Option<Problem>,
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    /// Tags written in the YAML itself (the rest of an item's tags live in its companion file).
    pub yaml_tags: Vec<String>,
    pub yaml_description: Option<String>,
}

impl YamlCheck {
    pub fn of(bytes: &[u8]) -> Self {
        let a = bpv_engine::blueprint::analyse(bytes);
        YamlCheck {
            problem: a.error.map(Problem::from),
            nodes: a
                .nodes
                .into_iter()
                .map(|n| GraphNode {
                    id: n.id,
                    node_type: n.node_type,
                    label: n.label,
                    x: n.position.map(|p| p.0),
                    y: n.position.map(|p| p.1),
                })
                .collect(),
            edges: a.edges.into_iter().map(|e| GraphEdge { from: e.from, to: e.to }).collect(),
            yaml_tags: a.fields.tags,
            yaml_description: a.fields.description,
        }
    }
}

/// One blueprint, for the detail pane.
#[derive(Clone, Debug, Serialize, TS)]
pub struct BlueprintDetail {
    pub item: Item,
    /// The file's text (invalid UTF-8 replaced; then `editable` is false).
    pub yaml: String,
    pub editable: bool,
    /// Absolute path of the file.
    pub file: String,
    pub check: YamlCheck,
    /// Credentials the YAML references as `${secret:NAME}`, and whether each exists.
    pub secrets: Vec<bpv_engine::secrets::CredentialUse>,
    /// Why an encrypted blueprint cannot be shown (its key is missing or wrong); null when
    /// it is plain or was decrypted.
    pub locked: Option<String>,
}

/// A metadata edit, written to the companion file (never to the YAML).
#[derive(Clone, Debug, Deserialize, TS)]
pub struct MetaEdit {
    /// Replace the companion's tags (tags written in the YAML stay).
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
    /// The `hash` of the item as loaded: `conflict` if the file changed since.
    pub if_match: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum LibraryEventKind {
    /// Another library was opened.
    Opened,
    /// Blueprints were created, changed, moved or removed.
    Changed,
    /// The index was rebuilt.
    Reindexed,
    /// The folder watcher's state changed.
    Watch,
}

/// Emitted as the `library-changed` window event whenever the library changes.
#[derive(Clone, Debug, Serialize, TS)]
pub struct LibraryEvent {
    pub kind: LibraryEventKind,
    /// The blueprints concerned, when known (empty: anything may have changed).
    pub paths: Vec<String>,
}

/// The name of the one window event.
pub const LIBRARY_CHANGED: &str = "library-changed";
