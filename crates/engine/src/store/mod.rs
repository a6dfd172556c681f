//! The storage contract: one trait every backend and decorator implements, so the
//! same contract test suite (`tests/contract.rs`) runs against all of them.
//!
//! Backends: [`memory::MemoryStore`] (tests, dev), [`sqlite_kv::SqliteKvStore`]
//! (app data and preferences) and the filesystem blueprint library
//! ([`crate::library::Library`]). Decorators: [`namespaced::Namespaced`] and
//! [`cached::Cached`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Result;
use crate::key::Key;

pub mod cached;
pub mod memory;
pub mod namespaced;
pub mod sqlite_kv;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Yaml,
    Json,
    Binary,
}

/// Options for [`Store::save`] (the seeds' `StorageOptions`).
#[derive(Clone, Debug, Default)]
pub struct SaveOptions {
    /// Declared format; backends that care validate the bytes against it.
    pub format: Option<Format>,
    /// Store compressed (zstd) where the backend supports it; loads are transparent.
    pub compress: bool,
    /// Free-form metadata kept with the value.
    pub metadata: Map<String, Value>,
    /// After this instant the value behaves as deleted.
    pub expiration: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
    /// Optimistic concurrency: the hash the caller last read. The save fails with
    /// `Conflict` if the stored value's hash differs (or it is gone).
    pub if_match: Option<String>,
    /// Fail with `AlreadyExists` instead of overwriting.
    pub create_only: bool,
}

/// What a store knows about one stored value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    /// Logical size (uncompressed bytes as saved).
    pub size: u64,
    /// SHA-256 of the logical bytes, lowercase hex.
    pub hash: String,
    pub modified: DateTime<Utc>,
    pub tags: Vec<String>,
    pub metadata: Map<String, Value>,
    pub expires: Option<DateTime<Utc>>,
    pub format: Option<Format>,
    pub compressed: bool,
}

#[derive(Clone, Debug)]
pub struct Loaded {
    pub entry: Entry,
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub offset: usize,
    /// `None`: no limit.
    pub limit: Option<usize>,
}

impl Page {
    pub const ALL: Page = Page { offset: 0, limit: None };
    pub fn new(offset: usize, limit: usize) -> Page {
        Page { offset, limit: Some(limit) }
    }
}

/// One page of a listing, in key order.
#[derive(Clone, Debug)]
pub struct ListPage {
    pub entries: Vec<Entry>,
    /// How many entries match in all (across pages).
    pub total: usize,
}

/// A search over a generic store: every whitespace-separated term must occur
/// (case-insensitively) in the key, a tag or a string metadata value.
#[derive(Clone, Debug, Default)]
pub struct StoreQuery {
    pub text: String,
    /// Every tag listed must be present (case-insensitive).
    pub tags: Vec<String>,
    /// Literal key prefix (validated like list prefixes).
    pub prefix: String,
    pub offset: usize,
    pub limit: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct SearchHit {
    pub entry: Entry,
    pub score: f64,
    pub snippet: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StoreInfo {
    pub backend: String,
    pub location: Option<String>,
    pub entries: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Capabilities {
    pub batch: bool,
    pub compress: bool,
    pub expiration: bool,
    pub full_text_search: bool,
    pub metadata: bool,
    pub tags: bool,
    /// Acknowledged writes survive a crash or power loss.
    pub durable: bool,
    pub watch: bool,
    pub encrypt: bool,
    pub formats: Vec<Format>,
}

#[derive(Clone, Debug)]
pub enum BatchOp {
    Put { key: Key, data: Vec<u8>, options: SaveOptions },
    Delete { key: Key },
}

impl BatchOp {
    pub fn key(&self) -> &Key {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
        }
    }
}

/// The storage contract (Atomiton's `IStorageEngine`, Adamantine's `WalletStorage` +
/// `WalletBatch`, airssys' `ComponentStorage`, made one). Synchronous on purpose:
/// async callers run it on a blocking thread.
pub trait Store: Send + Sync {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> Result<Entry>;
    /// `NotFound` when absent or expired.
    fn load(&self, key: &Key) -> Result<Loaded>;
    /// `NotFound` when absent.
    fn delete(&self, key: &Key) -> Result<()>;
    fn exists(&self, key: &Key) -> Result<bool>;
    /// Entries whose key starts with `prefix` (literally), in key order.
    fn list(&self, prefix: &str, page: Page) -> Result<ListPage>;
    fn search(&self, query: &StoreQuery) -> Result<Vec<SearchHit>>;
    fn info(&self) -> Result<StoreInfo>;
    fn capabilities(&self) -> Capabilities;
    /// All-or-nothing: either every operation is applied or none is, also across a
    /// crash. Deleting an absent key inside a batch is `NotFound` and aborts the batch.
    fn batch(&self, ops: &[BatchOp]) -> Result<()>;
}

/// A shared store is a store: one backend can sit under several views (for
/// example one [`sqlite_kv::SqliteKvStore`] under `WALLET_` and `ACCOUNT_`
/// [`namespaced::Namespaced`] views).
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> Result<Entry> {
        (**self).save(key, data, options)
    }
    fn load(&self, key: &Key) -> Result<Loaded> {
        (**self).load(key)
    }
    fn delete(&self, key: &Key) -> Result<()> {
        (**self).delete(key)
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        (**self).exists(key)
    }
    fn list(&self, prefix: &str, page: Page) -> Result<ListPage> {
        (**self).list(prefix, page)
    }
    fn search(&self, query: &StoreQuery) -> Result<Vec<SearchHit>> {
        (**self).search(query)
    }
    fn info(&self) -> Result<StoreInfo> {
        (**self).info()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn batch(&self, ops: &[BatchOp]) -> Result<()> {
        (**self).batch(ops)
    }
}

/// A boxed store (`Box<dyn Store>`: a backend chosen at run time) is a store.
impl<S: Store + ?Sized> Store for Box<S> {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> Result<Entry> {
        (**self).save(key, data, options)
    }
    fn load(&self, key: &Key) -> Result<Loaded> {
        (**self).load(key)
    }
    fn delete(&self, key: &Key) -> Result<()> {
        (**self).delete(key)
    }
    fn exists(&self, key: &Key) -> Result<bool> {
        (**self).exists(key)
    }
    fn list(&self, prefix: &str, page: Page) -> Result<ListPage> {
        (**self).list(prefix, page)
    }
    fn search(&self, query: &StoreQuery) -> Result<Vec<SearchHit>> {
        (**self).search(query)
    }
    fn info(&self) -> Result<StoreInfo> {
        (**self).info()
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn batch(&self, ops: &[BatchOp]) -> Result<()> {
        (**self).batch(ops)
    }
}

/// SHA-256 of `data`, lowercase hex: the content hash used everywhere.
pub fn content_hash(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))
}

/// Shared term matching for stores without a full-text index.
pub fn entry_matches(entry: &Entry, query: &StoreQuery) -> bool {
    let has_tags = query
        .tags
        .iter()
        .all(|t| entry.tags.iter().any(|et| et.eq_ignore_ascii_case(t) || et.to_lowercase() == t.to_lowercase()));
    if !has_tags {
        return false;
    }
    let mut haystack = entry.key.to_lowercase();
    for t in &entry.tags {
        haystack.push('\n');
        haystack.push_str(&t.to_lowercase());
    }
    collect_strings(&Value::Object(entry.metadata.clone()), &mut haystack);
    query.text.split_whitespace().all(|term| haystack.contains(&term.to_lowercase()))
}

fn collect_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push('\n');
            out.push_str(&s.to_lowercase());
        }
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}
