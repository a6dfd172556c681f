//! [`Cached`]: a write-through LRU cache of loaded values in front of any store
//! (airssys' `CachedStorage`).
//!
//! * Caps: `max_entries` and `max_bytes` (value bytes); a value bigger than
//!   `max_bytes` is never cached. Optional TTL since the value was cached.
//! * Write-through: `save` writes the inner store first and caches the new value
//!   only when that succeeded; on failure the key is dropped from the cache.
//!   `delete` and `batch` invalidate the keys they touch.
//! * Outside changes (the file watcher): [`Cached::invalidate`] and
//!   [`Cached::invalidate_all`].
//! * Races: every mutation bumps a generation counter before and after it touches
//!   the inner store, and a value read from (or written to) the inner store is
//!   cached only if no other mutation ran meanwhile, so a slow reader can never
//!   put an older value over a newer one.
//! * `list`, `search` and `info` always go to the inner store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::{
    BatchOp, Capabilities, Entry, ListPage, Loaded, Page, SaveOptions, SearchHit, Store, StoreInfo, StoreQuery,
};
use crate::error::{Error, Result};
use crate::key::Key;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most values kept; 0 disables caching.
    pub max_entries: usize,
    /// Most value bytes kept; larger single values are not cached.
    pub max_bytes: usize,
    /// Forget a cached value this long after caching it.
    pub ttl: Option<Duration>,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig { max_entries: 1024, max_bytes: 64 * 1024 * 1024, ttl: None }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Values currently cached.
    pub entries: usize,
    /// Value bytes currently cached.
    pub bytes: usize,
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    data: Vec<u8>,
    cached_at: Instant,
    tick: u64,
}

/// The LRU map: slots by key plus recency order (`tick` → key).
#[derive(Debug, Default)]
struct Lru {
    slots: HashMap<String, Slot>,
    order: BTreeMap<u64, String>,
    next_tick: u64,
    bytes: usize,
    generation: u64,
    hits: u64,
    misses: u64,
}

impl Lru {
    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.slots.remove(key) {
            self.order.remove(&slot.tick);
            self.bytes -= slot.data.len();
        }
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.order.clear();
        self.bytes = 0;
    }

    fn bump(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    fn insert(&mut self, config: &CacheConfig, entry: Entry, data: Vec<u8>) {
        let key = entry.key.clone();
        self.remove(&key);
        if config.max_entries == 0 || data.len() > config.max_bytes {
            return;
        }
        while self.slots.len() >= config.max_entries || self.bytes + data.len() > config.max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(slot) = self.slots.remove(&oldest) {
                self.bytes -= slot.data.len();
            }
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        self.bytes += data.len();
        self.order.insert(tick, key.clone());
        self.slots.insert(key, Slot { entry, data, cached_at: Instant::now(), tick });
    }

    /// The fresh slot for `key`, marked most recently used; stale slots are dropped.
    fn get_fresh(&mut self, config: &CacheConfig, key: &str) -> Option<&Slot> {
        let stale = {
            let slot = self.slots.get(key)?;
            config.ttl.is_some_and(|ttl| slot.cached_at.elapsed() >= ttl)
                || slot.entry.expires.is_some_and(|e| e <= Utc::now())
        };
        if stale {
            self.remove(key);
            return None;
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        let slot = self.slots.get_mut(key)?;
        self.order.remove(&slot.tick);
        slot.tick = tick;
        self.order.insert(tick, key.to_owned());
        Some(slot)
    }
}

/// A [`Store`] with an LRU/TTL cache of loaded values in front of `S`.
#[derive(Debug)]
pub struct Cached<S: Store> {
    inner: S,
    config: CacheConfig,
    lru: Mutex<Lru>,
}

impl<S: Store> Cached<S> {
    pub fn new(inner: S, config: CacheConfig) -> Cached<S> {
        Cached { inner, config, lru: Mutex::new(Lru::default()) }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn config(&self) -> CacheConfig {
        self.config
    }

    /// Forget `key` (it changed outside this cache).
    pub fn invalidate(&self, key: &Key) {
        let mut lru = self.lock();
        lru.bump();
        lru.remove(key.as_str());
    }

    /// Forget everything (many things changed outside this cache).
    pub fn invalidate_all(&self) {
        let mut lru = self.lock();
        lru.bump();
        lru.clear();
    }

    pub fn stats(&self) -> CacheStats {
        let lru = self.lock();
        CacheStats { hits: lru.hits, misses: lru.misses, entries: lru.slots.len(), bytes: lru.bytes }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // The map is only a cache: after a panic elsewhere, start it afresh.
        match self.lru.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                let mut g = poisoned.into_inner();
                g.clear();
                g.bump();
                g
            }
        }
    }

    /// Start a mutation of `keys`: drop them and return the generation it runs under.
    fn begin_write<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> u64 {
        let mut lru = self.lock();
        for k in keys {
            lru.remove(k);
        }
        lru.bump()
    }

    /// Finish a mutation of `keys` begun at generation `started`.
    fn end_write<'a>(&self, started: u64, keys: impl IntoIterator<Item = &'a str>, new: Option<(Entry, &[u8])>) {
        let mut lru = self.lock();
        let undisturbed = lru.generation == started;
        for k in keys {
            lru.remove(k);
        }
        if let (true, Some((entry, data))) = (undisturbed, new) {
            lru.insert(&self.config, entry, data.to_vec());
        }
        lru.bump();
    }
}

impl<S: Store> Store for Cached<S> {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> Result<Entry> {
        let started = self.begin_write([key.as_str()]);
        let result = self.inner.save(key, data, options);
        let cacheable = match &result {
            Ok(entry) if entry.key == key.as_str() && data.len() <= self.config.max_bytes => {
                Some((entry.clone(), data))
            }
            _ => None,
        };
        self.end_write(started, [key.as_str()], cacheable);
        result
    }

    fn load(&self, key: &Key) -> Result<Loaded> {
        let started = {
            let mut lru = self.lock();
            if let Some(slot) = lru.get_fresh(&self.config, key.as_str()) {
                let loaded = Loaded { entry: slot.entry.clone(), data: slot.data.clone() };
                lru.hits += 1;
                return Ok(loaded);
            }
            lru.misses += 1;
            lru.generation
        };
        let result = self.inner.load(key);
        let mut lru = self.lock();
        if lru.generation == started {
            match &result {
                Ok(loaded) if loaded.entry.key == key.as_str() => {
                    lru.insert(&self.config, loaded.entry.clone(), loaded.data.clone());
                }
                Ok(_) => {}
                Err(Error::NotFound(_)) => lru.remove(key.as_str()),
                Err(_) => {}
            }
        }
        result
    }

    fn delete(&self, key: &Key) -> Result<()> {
        let started = self.begin_write([key.as_str()]);
        let result = self.inner.delete(key);
        self.end_write(started, [key.as_str()], None);
        result
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        {
            let mut lru = self.lock();
            if lru.get_fresh(&self.config, key.as_str()).is_some() {
                lru.hits += 1;
                return Ok(true);
            }
        }
        self.inner.exists(key)
    }

    fn list(&self, prefix: &str, page: Page) -> Result<ListPage> {
        self.inner.list(prefix, page)
    }

    fn search(&self, query: &StoreQuery) -> Result<Vec<SearchHit>> {
        self.inner.search(query)
    }

    fn info(&self) -> Result<StoreInfo> {
        let inner = self.inner.info()?;
        Ok(StoreInfo { backend: format!("{} (cached)", inner.backend), ..inner })
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn batch(&self, ops: &[BatchOp]) -> Result<()> {
        let keys = || ops.iter().map(|op| op.key().as_str());
        let started = self.begin_write(keys());
        let result = self.inner.batch(ops);
        self.end_write(started, keys(), None);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use std::sync::Arc;

    fn k(s: &str) -> Key {
        Key::new(s).unwrap()
    }

    fn cfg(max_entries: usize, max_bytes: usize, ttl: Option<Duration>) -> CacheConfig {
        CacheConfig { max_entries, max_bytes, ttl }
    }

    #[test]
    fn hits_misses_and_lru_eviction() {
        let c = Cached::new(MemoryStore::new(), cfg(2, 1000, None));
        for n in ["a", "b", "c"] {
            c.save(&k(n), n.as_bytes(), &SaveOptions::default()).unwrap();
        }
        // "a" was evicted by "c".
        assert_eq!(c.stats().entries, 2);
        c.load(&k("b")).unwrap();
        assert_eq!(c.stats().hits, 1);
        c.load(&k("a")).unwrap(); // miss, evicts "c" (b was used more recently)
        assert_eq!(c.stats().misses, 1);
        c.load(&k("b")).unwrap();
        assert_eq!(c.stats().hits, 2);
        c.load(&k("c")).unwrap();
        assert_eq!(c.stats().misses, 2);
    }

    #[test]
    fn byte_cap_and_oversized_values() {
        let c = Cached::new(MemoryStore::new(), cfg(100, 10, None));
        c.save(&k("big"), &[0u8; 11], &SaveOptions::default()).unwrap();
        assert_eq!(c.stats().entries, 0);
        c.save(&k("a"), &[0u8; 6], &SaveOptions::default()).unwrap();
        c.save(&k("b"), &[0u8; 6], &SaveOptions::default()).unwrap();
        let s = c.stats();
        assert_eq!((s.entries, s.bytes), (1, 6));
        assert_eq!(c.load(&k("big")).unwrap().data.len(), 11);
    }

    #[test]
    fn ttl_expires_cached_values() {
        let c = Cached::new(MemoryStore::new(), cfg(10, 1000, Some(Duration::from_millis(20))));
        c.save(&k("a"), b"1", &SaveOptions::default()).unwrap();
        c.load(&k("a")).unwrap();
        assert_eq!(c.stats().hits, 1);
        std::thread::sleep(Duration::from_millis(30));
        c.load(&k("a")).unwrap();
        assert_eq!(c.stats().misses, 1);
    }

    #[test]
    fn outside_changes_need_invalidate() {
        let inner = Arc::new(MemoryStore::new());
        let c = Cached::new(Arc::clone(&inner), cfg(10, 1000, None));
        c.save(&k("a"), b"old", &SaveOptions::default()).unwrap();
        inner.save(&k("a"), b"new", &SaveOptions::default()).unwrap();
        assert_eq!(c.load(&k("a")).unwrap().data, b"old");
        c.invalidate(&k("a"));
        assert_eq!(c.load(&k("a")).unwrap().data, b"new");
        inner.delete(&k("a")).unwrap();
        assert!(c.exists(&k("a")).unwrap());
        c.invalidate_all();
        assert!(!c.exists(&k("a")).unwrap());
        assert_eq!(c.stats().entries, 0);
    }

    #[test]
    fn failed_save_drops_the_stale_value() {
        let inner = Arc::new(MemoryStore::new());
        let c = Cached::new(Arc::clone(&inner), cfg(10, 1000, None));
        c.save(&k("a"), b"v1", &SaveOptions::default()).unwrap();
        let opts = SaveOptions { if_match: Some("0".repeat(64)), ..Default::default() };
        assert_eq!(c.save(&k("a"), b"v2", &opts).unwrap_err().code(), "conflict");
        assert_eq!(c.stats().entries, 0);
        assert_eq!(c.load(&k("a")).unwrap().data, b"v1");
    }

    #[test]
    fn entry_expiration_is_honoured_in_cache() {
        let c = Cached::new(MemoryStore::new(), cfg(10, 1000, None));
        let soon =
            SaveOptions { expiration: Some(Utc::now() + chrono::Duration::milliseconds(30)), ..Default::default() };
        c.save(&k("a"), b"1", &soon).unwrap();
        assert!(c.exists(&k("a")).unwrap());
        std::thread::sleep(Duration::from_millis(40));
        assert!(!c.exists(&k("a")).unwrap());
        assert_eq!(c.load(&k("a")).unwrap_err().code(), "not_found");
    }

    #[test]
    fn concurrent_readers_and_writers_converge() {
        let c = Arc::new(Cached::new(MemoryStore::new(), cfg(10, 1000, None)));
        c.save(&k("a"), b"0", &SaveOptions::default()).unwrap();
        let mut handles = Vec::new();
        for t in 0..4u8 {
            let c = Arc::clone(&c);
            handles.push(std::thread::spawn(move || {
                for i in 0..200u32 {
                    if t % 2 == 0 {
                        c.save(&k("a"), format!("{t}-{i}").as_bytes(), &SaveOptions::default()).unwrap();
                    } else {
                        let _ = c.load(&k("a"));
                    }
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        let cached = c.load(&k("a")).unwrap().data;
        assert_eq!(cached, c.inner().load(&k("a")).unwrap().data);
    }
}
