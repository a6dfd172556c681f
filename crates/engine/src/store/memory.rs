//! [`MemoryStore`]: an in-memory backend for tests and development. It supports
//! every option of the contract (compression, expiration, metadata, tags,
//! optimistic concurrency, atomic batches) and is the model the other backends
//! are checked against in the contract suite.
//!
//! The `pub(crate)` helpers at the bottom (timestamps, compression, preconditions)
//! are shared with [`super::sqlite_kv`] so both backends behave identically.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};

use super::{
    BatchOp, Capabilities, Entry, Format, ListPage, Loaded, Page, SaveOptions, SearchHit, Store, StoreInfo, StoreQuery,
    content_hash, entry_matches,
};
use crate::error::{Error, Result};
use crate::key::{Key, normalise_prefix};

/// zstd level used when a save asks for compression.
const ZSTD_LEVEL: i32 = 3;

#[derive(Clone, Debug)]
struct Record {
    entry: Entry,
    /// The bytes as stored: zstd frames when `entry.compressed`.
    stored: Vec<u8>,
}

/// An in-memory [`Store`]: a sorted map behind a read-write lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: RwLock<BTreeMap<String, Record>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Record>> {
        // A panic while holding the lock cannot leave a half-applied write (every
        // mutation is a single insert/remove or a prepared batch), so a poisoned
        // lock is safe to keep using.
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Record>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Live (unexpired) records whose key starts with the validated `prefix`, in key order.
    fn live_in_prefix<'a>(
        map: &'a BTreeMap<String, Record>,
        prefix: &'a str,
        now: DateTime<Utc>,
    ) -> impl Iterator<Item = &'a Record> + 'a {
        map.range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(_, r)| r)
            .filter(move |r| !is_expired(&r.entry, now))
    }
}

impl Store for MemoryStore {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> Result<Entry> {
        let stored = encode(data, options.compress)?;
        let mut map = self.write();
        let now = now_ms();
        let current = map.get(key.as_str()).map(|r| &r.entry).filter(|e| !is_expired(e, now));
        check_preconditions(key, current, options)?;
        let entry = build_entry(key, data, options, now);
        map.insert(key.as_str().to_owned(), Record { entry: entry.clone(), stored });
        Ok(entry)
    }

    fn load(&self, key: &Key) -> Result<Loaded> {
        let map = self.read();
        let now = now_ms();
        match map.get(key.as_str()) {
            Some(r) if !is_expired(&r.entry, now) => {
                let data = decode(&r.stored, r.entry.compressed, key.as_str())?;
                Ok(Loaded { entry: r.entry.clone(), data })
            }
            _ => Err(Error::NotFound(key.to_string())),
        }
    }

    fn delete(&self, key: &Key) -> Result<()> {
        let mut map = self.write();
        let now = now_ms();
        match map.remove(key.as_str()) {
            Some(r) if !is_expired(&r.entry, now) => Ok(()),
            // An expired record is gone as far as callers can tell: purge it and
            // report it absent.
            _ => Err(Error::NotFound(key.to_string())),
        }
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let now = now_ms();
        Ok(self.read().get(key.as_str()).is_some_and(|r| !is_expired(&r.entry, now)))
    }

    fn list(&self, prefix: &str, page: Page) -> Result<ListPage> {
        let prefix = normalise_prefix(prefix)?;
        let map = self.read();
        let now = now_ms();
        let total = Self::live_in_prefix(&map, &prefix, now).count();
        let entries = Self::live_in_prefix(&map, &prefix, now)
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .map(|r| r.entry.clone())
            .collect();
        Ok(ListPage { entries, total })
    }

    fn search(&self, query: &StoreQuery) -> Result<Vec<SearchHit>> {
        let prefix = normalise_prefix(&query.prefix)?;
        let map = self.read();
        let now = now_ms();
        Ok(Self::live_in_prefix(&map, &prefix, now)
            .filter(|r| entry_matches(&r.entry, query))
            .skip(query.offset)
            .take(query.limit.unwrap_or(usize::MAX))
            .map(|r| SearchHit { entry: r.entry.clone(), score: 1.0, snippet: None })
            .collect())
    }

    fn info(&self) -> Result<StoreInfo> {
        let map = self.read();
        let now = now_ms();
        let (entries, bytes) =
            Self::live_in_prefix(&map, "", now).fold((0u64, 0u64), |(n, b), r| (n + 1, b.saturating_add(r.entry.size)));
        Ok(StoreInfo { backend: "memory".into(), location: None, entries, bytes })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch: true,
            compress: true,
            expiration: true,
            full_text_search: false,
            metadata: true,
            tags: true,
            durable: false,
            watch: false,
            encrypt: false,
            formats: vec![Format::Yaml, Format::Json, Format::Binary],
        }
    }

    fn batch(&self, ops: &[BatchOp]) -> Result<()> {
        // Compress outside the lock; nothing is visible until every op validated.
        let mut prepared = Vec::with_capacity(ops.len());
        for op in ops {
            prepared.push(match op {
                BatchOp::Put { data, options, .. } => Some(encode(data, options.compress)?),
                BatchOp::Delete { .. } => None,
            });
        }
        let mut map = self.write();
        let now = now_ms();
        // Apply in order to an overlay (`None` = deleted in this batch), checking
        // each op against the state the previous ops produced.
        let mut overlay: HashMap<&str, Option<Record>> = HashMap::new();
        for (op, stored) in ops.iter().zip(prepared) {
            let key = op.key();
            let current = match overlay.get(key.as_str()) {
                Some(staged) => staged.as_ref().map(|r| &r.entry).filter(|e| !is_expired(e, now)),
                None => map.get(key.as_str()).map(|r| &r.entry).filter(|e| !is_expired(e, now)),
            };
            match op {
                BatchOp::Put { key, data, options } => {
                    check_preconditions(key, current, options)?;
                    let entry = build_entry(key, data, options, now);
                    overlay.insert(key.as_str(), Some(Record { entry, stored: stored.unwrap_or_default() }));
                }
                BatchOp::Delete { key } => {
                    if current.is_none() {
                        return Err(Error::NotFound(key.to_string()));
                    }
                    overlay.insert(key.as_str(), None);
                }
            }
        }
        for (key, staged) in overlay {
            match staged {
                Some(record) => {
                    map.insert(key.to_owned(), record);
                }
                None => {
                    map.remove(key);
                }
            }
        }
        Ok(())
    }
}

// ---- helpers shared with the SQLite backend ---------------------------------------

/// Now, truncated to whole milliseconds (the resolution every backend stores).
pub(crate) fn now_ms() -> DateTime<Utc> {
    trunc_ms(Utc::now())
}

/// `t` truncated to whole milliseconds.
pub(crate) fn trunc_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// Whether `entry` has expired at `now` (expiry instant included).
pub(crate) fn is_expired(entry: &Entry, now: DateTime<Utc>) -> bool {
    entry.expires.is_some_and(|e| e <= now)
}

/// The entry a save of `data` with `options` produces.
pub(crate) fn build_entry(key: &Key, data: &[u8], options: &SaveOptions, now: DateTime<Utc>) -> Entry {
    Entry {
        key: key.as_str().to_owned(),
        size: data.len() as u64,
        hash: content_hash(data),
        modified: now,
        tags: options.tags.clone(),
        metadata: options.metadata.clone(),
        expires: options.expiration.map(trunc_ms),
        format: options.format,
        compressed: options.compress,
    }
}

/// `create_only` and `if_match` against the live entry currently at `key` (if any).
pub(crate) fn check_preconditions(key: &Key, current: Option<&Entry>, options: &SaveOptions) -> Result<()> {
    if options.create_only && current.is_some() {
        return Err(Error::AlreadyExists(key.to_string()));
    }
    if let Some(expected) = &options.if_match {
        match current {
            None => return Err(Error::Conflict(format!("{key} was deleted since it was read"))),
            Some(e) if !e.hash.eq_ignore_ascii_case(expected) => {
                return Err(Error::Conflict(format!("{key} was changed since it was read")));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The bytes to store: zstd-compressed when `compress`.
pub(crate) fn encode(data: &[u8], compress: bool) -> Result<Vec<u8>> {
    if !compress {
        return Ok(data.to_vec());
    }
    zstd::bulk::compress(data, ZSTD_LEVEL).map_err(|source| Error::Io { context: "compressing a value".into(), source })
}

/// The logical bytes back from what was stored.
pub(crate) fn decode(stored: &[u8], compressed: bool, key: &str) -> Result<Vec<u8>> {
    if !compressed {
        return Ok(stored.to_vec());
    }
    zstd::stream::decode_all(io::Cursor::new(stored))
        .map_err(|e| Error::Corrupt(format!("{key}: compressed value cannot be read: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    #[test]
    fn round_trip_and_compress() {
        let s = MemoryStore::new();
        let data = b"hello hello hello hello hello".repeat(100);
        let opts = SaveOptions { compress: true, ..Default::default() };
        let e = s.save(&k("a"), &data, &opts).unwrap();
        assert!(e.compressed);
        assert_eq!(e.size, data.len() as u64);
        assert!(s.read().get("a").unwrap().stored.len() < data.len());
        assert_eq!(s.load(&k("a")).unwrap().data, data);
    }

    #[test]
    fn batch_is_all_or_nothing() {
        let s = MemoryStore::new();
        s.save(&k("x"), b"1", &SaveOptions::default()).unwrap();
        let ops = vec![
            BatchOp::Put { key: k("y"), data: b"2".to_vec(), options: SaveOptions::default() },
            BatchOp::Delete { key: k("absent") },
            BatchOp::Delete { key: k("x") },
        ];
        assert_eq!(s.batch(&ops).unwrap_err().code(), "not_found");
        assert!(!s.exists(&k("y")).unwrap());
        assert!(s.exists(&k("x")).unwrap());
        // Sequential semantics: put then delete of the same key inside one batch.
        let ops = vec![
            BatchOp::Put { key: k("z"), data: b"3".to_vec(), options: SaveOptions::default() },
            BatchOp::Delete { key: k("z") },
        ];
        s.batch(&ops).unwrap();
        assert!(!s.exists(&k("z")).unwrap());
        // A value put already expired is absent to the ops after it.
        let expired = SaveOptions { expiration: Some(Utc::now() - chrono::Duration::seconds(1)), ..Default::default() };
        let ops =
            vec![BatchOp::Put { key: k("e"), data: b"4".to_vec(), options: expired }, BatchOp::Delete { key: k("e") }];
        assert_eq!(s.batch(&ops).unwrap_err().code(), "not_found");
    }

    #[test]
    fn expired_is_absent() {
        let s = MemoryStore::new();
        let past = SaveOptions { expiration: Some(Utc::now() - chrono::Duration::seconds(1)), ..Default::default() };
        s.save(&k("old"), b"x", &past).unwrap();
        assert_eq!(s.load(&k("old")).unwrap_err().code(), "not_found");
        assert!(!s.exists(&k("old")).unwrap());
        assert_eq!(s.list("", Page::ALL).unwrap().total, 0);
        // create_only over an expired value succeeds.
        let create = SaveOptions { create_only: true, ..Default::default() };
        s.save(&k("old"), b"y", &create).unwrap();
        assert_eq!(s.load(&k("old")).unwrap().data, b"y");
    }
}
