//! [`RemoteStore`]: the storage contract (`bpv_engine::store::Store`) over an
//! S3-compatible bucket, so the engine's contract suite runs against Garage too.
//!
//! One object per value, `kv/<hex of the key>` (hex keeps byte order, so a listing is
//! in key order and a literal prefix is a prefix of the name), holding the entry as a
//! JSON line then the bytes. Preconditions (`if_match`, `create_only`) are checked
//! under a lock in this process; the bucket offers no compare-and-swap (Garage ignores
//! conditional PUTs), so two processes writing one key are not serialised — the team
//! sync protocol (`crate::sync`) is what is safe across devices. No batches, expiry or
//! compression (capabilities say so).

use std::sync::Mutex;

use bpv_engine::error::{Error, Result};
use bpv_engine::key::{Key, normalise_prefix};
use bpv_engine::store::{
    BatchOp, Capabilities, Entry, Format, ListPage, Loaded, Page, SaveOptions, SearchHit, Store, StoreInfo, StoreQuery,
    content_hash, entry_matches,
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::error::SyncError;
use crate::remote::Remote;

pub struct RemoteStore {
    remote: Remote,
    runtime: tokio::runtime::Runtime,
    writers: Mutex<()>,
}

fn engine_error(e: SyncError) -> Error {
    match e {
        SyncError::Engine(e) => e,
        other => Error::Io { context: other.to_string(), source: std::io::Error::other(other.code()) },
    }
}

fn object_name(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("kv/{hex}")
}

fn key_of(name: &str) -> Option<String> {
    let hex = name.strip_prefix("kv/")?;
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
}

fn decode(key: &str, body: &[u8]) -> Result<Loaded> {
    let corrupt = || Error::Corrupt(format!("{key}: the stored object cannot be read"));
    let nl = body.iter().position(|b| *b == b'\n').ok_or_else(corrupt)?;
    let entry: Entry = serde_json::from_slice(&body[..nl]).map_err(|_| corrupt())?;
    Ok(Loaded { entry, data: body[nl + 1..].to_vec() })
}

impl RemoteStore {
    pub fn new(remote: Remote) -> Result<RemoteStore> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Io { context: "starting the store runtime".into(), source: e })?;
        Ok(RemoteStore { remote, runtime, writers: Mutex::new(()) })
    }

    fn get(&self, key: &str) -> Result<Option<Loaded>> {
        let body = self.runtime.block_on(self.remote.get(&object_name(key))).map_err(engine_error)?;
        body.map(|b| decode(key, &b)).transpose()
    }

    /// Keys starting with the (validated) literal prefix, in key order.
    fn keys(&self, prefix: &str) -> Result<Vec<String>> {
        let names = self.runtime.block_on(self.remote.list("kv")).map_err(engine_error)?;
        let mut keys: Vec<String> = names.iter().filter_map(|n| key_of(n)).filter(|k| k.starts_with(prefix)).collect();
        keys.sort();
        Ok(keys)
    }

    fn entries(&self, keys: &[String]) -> Result<Vec<Entry>> {
        let loaded: Vec<Option<Loaded>> = self.runtime.block_on(
            futures::stream::iter(keys.iter().map(|k| async move {
                match self.remote.get(&object_name(k)).await {
                    Ok(Some(b)) => decode(k, &b).map(Some),
                    Ok(None) => Ok(None),
                    Err(e) => Err(engine_error(e)),
                }
            }))
            .buffered(self.remote.concurrency)
            .try_collect(),
        )?;
        Ok(loaded.into_iter().flatten().map(|l| l.entry).collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for RemoteStore {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> Result<Entry> {
        if options.compress {
            return Err(Error::Unsupported("the remote store keeps values uncompressed".into()));
        }
        if options.expiration.is_some() {
            return Err(Error::Unsupported("values in the remote store do not expire".into()));
        }
        let _guard = self.lock();
        if options.create_only || options.if_match.is_some() {
            let current = self.get(key.as_str())?;
            if options.create_only && current.is_some() {
                return Err(Error::AlreadyExists(key.to_string()));
            }
            if let Some(expected) = &options.if_match {
                match &current {
                    None => return Err(Error::Conflict(format!("{key} was deleted since it was read"))),
                    Some(c) if !c.entry.hash.eq_ignore_ascii_case(expected) => {
                        return Err(Error::Conflict(format!("{key} was changed since it was read")));
                    }
                    Some(_) => {}
                }
            }
        }
        let now = chrono::Utc::now();
        let entry = Entry {
            key: key.as_str().to_owned(),
            size: data.len() as u64,
            hash: content_hash(data),
            modified: chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now),
            tags: options.tags.clone(),
            metadata: options.metadata.clone(),
            expires: None,
            format: options.format,
            compressed: false,
        };
        let mut body = serde_json::to_vec(&entry).map_err(|e| Error::Corrupt(e.to_string()))?;
        body.push(b'\n');
        body.extend_from_slice(data);
        self.runtime.block_on(self.remote.put(&object_name(key.as_str()), Bytes::from(body))).map_err(engine_error)?;
        Ok(entry)
    }

    fn load(&self, key: &Key) -> Result<Loaded> {
        self.get(key.as_str())?.ok_or_else(|| Error::NotFound(key.to_string()))
    }

    fn delete(&self, key: &Key) -> Result<()> {
        let _guard = self.lock();
        if self.get(key.as_str())?.is_none() {
            return Err(Error::NotFound(key.to_string()));
        }
        self.runtime.block_on(self.remote.delete(&object_name(key.as_str()))).map_err(engine_error)
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.get(key.as_str())?.is_some())
    }

    fn list(&self, prefix: &str, page: Page) -> Result<ListPage> {
        let prefix = normalise_prefix(prefix)?;
        let keys = self.keys(&prefix)?;
        let total = keys.len();
        let wanted: Vec<String> = keys.into_iter().skip(page.offset).take(page.limit.unwrap_or(usize::MAX)).collect();
        Ok(ListPage { entries: self.entries(&wanted)?, total })
    }

    fn search(&self, query: &StoreQuery) -> Result<Vec<SearchHit>> {
        let prefix = normalise_prefix(&query.prefix)?;
        let entries = self.entries(&self.keys(&prefix)?)?;
        Ok(entries
            .into_iter()
            .filter(|e| entry_matches(e, query))
            .skip(query.offset)
            .take(query.limit.unwrap_or(usize::MAX))
            .map(|entry| SearchHit { entry, score: 1.0, snippet: None })
            .collect())
    }

    fn info(&self) -> Result<StoreInfo> {
        let entries = self.entries(&self.keys("")?)?;
        Ok(StoreInfo {
            backend: "s3".into(),
            location: None,
            entries: entries.len() as u64,
            bytes: entries.iter().map(|e| e.size).sum(),
        })
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            batch: false,
            compress: false,
            expiration: false,
            full_text_search: false,
            metadata: true,
            tags: true,
            durable: true,
            watch: false,
            encrypt: false,
            formats: vec![Format::Yaml, Format::Json, Format::Binary],
        }
    }

    fn batch(&self, _ops: &[BatchOp]) -> Result<()> {
        Err(Error::Unsupported("the remote store has no all-or-nothing batches (S3 has no transactions)".into()))
    }
}
