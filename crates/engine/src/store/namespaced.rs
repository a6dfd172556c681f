//! [`Namespaced`]: a view of a store confined to one [`Namespace`] (airssys'
//! `NamespacedStorage`, Adamantine's `WALLET_`/`ACCOUNT_` key-prefix contract).
//!
//! Callers use keys relative to the namespace and see only keys inside it:
//! every key is wrapped with [`Namespace::wrap`] (which refuses anything that
//! would leave the namespace, including NFC tricks), every list or search prefix
//! with [`Namespace::wrap_prefix`], and every entry coming back is stripped with
//! [`Namespace::strip`]; an entry outside the namespace (a misbehaving inner
//! store) is dropped, never shown.

use super::{
    BatchOp, Capabilities, Entry, ListPage, Loaded, Page, SaveOptions, SearchHit, Store, StoreInfo, StoreQuery,
};
use crate::error::{Error, Result};
use crate::key::{Key, Namespace};

#[derive(Debug)]
pub struct Namespaced<S: Store> {
    namespace: Namespace,
    inner: S,
}

impl<S: Store> Namespaced<S> {
    pub fn new(namespace: Namespace, inner: S) -> Namespaced<S> {
        Namespaced { namespace, inner }
    }

    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn into_inner(self) -> S {
        self.inner
    }

    fn wrap(&self, key: &Key) -> Result<Key> {
        self.namespace.wrap(key)
    }

    /// The entry as seen inside the namespace, or `None` if it is not in it.
    fn strip(&self, mut entry: Entry) -> Option<Entry> {
        let full = Key::new(&entry.key).ok()?;
        let inner = self.namespace.strip(&full)?;
        entry.key = inner.into_string();
        Some(entry)
    }

    fn strip_required(&self, entry: Entry) -> Result<Entry> {
        let key = entry.key.clone();
        self.strip(entry).ok_or_else(|| {
            Error::Corrupt(format!("the store answered with {key:?}, outside namespace {:?}", self.namespace.as_str()))
        })
    }
}

impl<S: Store> Store for Namespaced<S> {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> Result<Entry> {
        let entry = self.inner.save(&self.wrap(key)?, data, options)?;
        self.strip_required(entry)
    }

    fn load(&self, key: &Key) -> Result<Loaded> {
        let loaded = self.inner.load(&self.wrap(key)?)?;
        Ok(Loaded { entry: self.strip_required(loaded.entry)?, data: loaded.data })
    }

    fn delete(&self, key: &Key) -> Result<()> {
        self.inner.delete(&self.wrap(key)?)
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        self.inner.exists(&self.wrap(key)?)
    }

    fn list(&self, prefix: &str, page: Page) -> Result<ListPage> {
        let full = self.namespace.wrap_prefix(prefix)?;
        let listed = self.inner.list(&full, page)?;
        let returned = listed.entries.len();
        let entries: Vec<Entry> = listed.entries.into_iter().filter_map(|e| self.strip(e)).collect();
        let dropped = returned - entries.len();
        Ok(ListPage { entries, total: listed.total.saturating_sub(dropped) })
    }

    fn search(&self, query: &StoreQuery) -> Result<Vec<SearchHit>> {
        let prefix = self.namespace.wrap_prefix(&query.prefix)?;
        if self.inner.capabilities().full_text_search {
            // The inner index decides relevance (it may match content too).
            let inner_query = StoreQuery { prefix, ..query.clone() };
            let hits = self.inner.search(&inner_query)?;
            return Ok(hits.into_iter().filter_map(|h| Some(SearchHit { entry: self.strip(h.entry)?, ..h })).collect());
        }
        // Term matching looks at keys: match against the keys as this view shows
        // them, so the namespace's own prefix never makes a term match. Page here.
        let inner_query = StoreQuery { prefix, offset: 0, limit: None, ..query.clone() };
        let hits = self.inner.search(&inner_query)?;
        Ok(hits
            .into_iter()
            .filter_map(|h| Some(SearchHit { entry: self.strip(h.entry)?, ..h }))
            .filter(|h| super::entry_matches(&h.entry, query))
            .skip(query.offset)
            .take(query.limit.unwrap_or(usize::MAX))
            .collect())
    }

    fn info(&self) -> Result<StoreInfo> {
        let inner = self.inner.info()?;
        let listed = self.list("", Page::ALL)?;
        Ok(StoreInfo {
            backend: format!("{} (namespace {})", inner.backend, self.namespace.as_str()),
            location: inner.location,
            entries: listed.entries.len() as u64,
            bytes: listed.entries.iter().map(|e| e.size).sum(),
        })
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn batch(&self, ops: &[BatchOp]) -> Result<()> {
        let wrapped = ops
            .iter()
            .map(|op| {
                Ok(match op {
                    BatchOp::Put { key, data, options } => {
                        BatchOp::Put { key: self.wrap(key)?, data: data.clone(), options: options.clone() }
                    }
                    BatchOp::Delete { key } => BatchOp::Delete { key: self.wrap(key)? },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.inner.batch(&wrapped)
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

    #[test]
    fn keys_are_wrapped_and_stripped() {
        let inner = Arc::new(MemoryStore::new());
        let ns = Namespaced::new(Namespace::prefix("WALLET_").unwrap(), Arc::clone(&inner));
        let e = ns.save(&k("main"), b"w", &SaveOptions::default()).unwrap();
        assert_eq!(e.key, "main");
        assert!(inner.exists(&k("WALLET_main")).unwrap());
        inner.save(&k("WALLETX_other"), b"x", &SaveOptions::default()).unwrap();
        let listed = ns.list("", Page::ALL).unwrap();
        assert_eq!(listed.total, 1);
        assert_eq!(listed.entries[0].key, "main");
    }

    #[test]
    fn search_ignores_the_namespace_prefix() {
        let inner = MemoryStore::new();
        let ns = Namespaced::new(Namespace::prefix("WALLET_").unwrap(), inner);
        ns.save(&k("main"), b"w", &SaveOptions::default()).unwrap();
        let q = StoreQuery { text: "wallet".into(), ..Default::default() };
        assert!(ns.search(&q).unwrap().is_empty());
        let q = StoreQuery { text: "MAIN".into(), ..Default::default() };
        assert_eq!(ns.search(&q).unwrap().len(), 1);
    }
}
