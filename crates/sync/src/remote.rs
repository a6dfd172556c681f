//! The team library's object store: any S3-compatible service through `object_store`
//! (or an in-memory store in tests), under a key prefix, with our own retries
//! (exponential backoff with jitter, moving to the next endpoint after a failure)
//! and a request counter (for the idle-traffic figure).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use crate::config::{Credentials, LinkConfig};
use crate::error::{Result, SyncError};

/// How hard to try one request before giving up (the change stays queued).
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 7, base: Duration::from_millis(100), max: Duration::from_secs(4) }
    }
}

impl RetryPolicy {
    /// The pause before retry `n` (0-based): half the exponential step, plus a random
    /// part of the other half, so devices that failed together do not retry together.
    pub fn delay(&self, n: u32) -> Duration {
        let step = self.base.saturating_mul(1u32 << n.min(16)).min(self.max);
        let half = step / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// One listed object: key (relative to the prefix), last modification (ms since the
/// epoch, the store's clock) and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub modified_ms: i64,
    pub size: u64,
}

/// An object read by [`Remote::get_limited`].
#[derive(Clone, Debug)]
pub enum Limited {
    Body(Bytes),
    /// Larger than the cap (the size seen): not read.
    TooLarge(u64),
}

pub struct Remote {
    stores: Vec<Arc<dyn ObjectStore>>,
    prefix: String,
    preferred: AtomicUsize,
    requests: AtomicU64,
    pub policy: RetryPolicy,
    /// Requests in flight at once (Garage answers each after ~44 ms: never go one by one).
    pub concurrency: usize,
}

impl Remote {
    /// An S3 client per endpoint.
    pub fn open(link: &LinkConfig, creds: &Credentials) -> Result<Remote> {
        let mut stores: Vec<Arc<dyn ObjectStore>> = Vec::new();
        for endpoint in &link.endpoints {
            let options = ClientOptions::new()
                .with_allow_http(endpoint.starts_with("http://"))
                .with_connect_timeout(Duration::from_secs(3))
                .with_timeout(Duration::from_secs(30));
            let s3 = AmazonS3Builder::new()
                .with_endpoint(endpoint)
                .with_bucket_name(&link.bucket)
                .with_region(&link.region)
                .with_access_key_id(&creds.access_key_id)
                .with_secret_access_key(&creds.secret_access_key)
                .with_virtual_hosted_style_request(!link.path_style)
                .with_client_options(options)
                // Retries are ours (they also move to another endpoint).
                .with_retry(RetryConfig { max_retries: 0, ..RetryConfig::default() })
                .build()
                .map_err(|e| SyncError::Config(format!("endpoint {endpoint}: {e}")))?;
            stores.push(Arc::new(s3));
        }
        Ok(Remote::from_stores(stores, &link.prefix))
    }

    /// A fresh in-memory team library (tests, development).
    pub fn in_memory() -> Remote {
        Remote::from_stores(vec![Arc::new(InMemory::new())], "")
    }

    pub fn from_stores(stores: Vec<Arc<dyn ObjectStore>>, prefix: &str) -> Remote {
        Remote {
            stores,
            prefix: prefix.trim_matches('/').to_owned(),
            preferred: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            policy: RetryPolicy::default(),
            concurrency: 64,
        }
    }

    /// Another view of the same stores (same prefix), e.g. for a second device in tests.
    pub fn share(&self) -> Remote {
        let mut r = Remote::from_stores(self.stores.clone(), &self.prefix);
        r.policy = self.policy;
        r.concurrency = self.concurrency;
        r
    }

    /// Requests sent so far (every attempt counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn location(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() { ObjectPath::from(key) } else { ObjectPath::from(format!("{}/{key}", self.prefix)) }
    }

    async fn attempt<T, F, Fut>(&self, what: &str, op: F) -> Result<Option<T>>
    where
        F: Fn(Arc<dyn ObjectStore>) -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let mut last = String::new();
        for n in 0..self.policy.attempts.max(1) {
            let index = self.preferred.load(Ordering::Relaxed) % self.stores.len().max(1);
            let Some(store) = self.stores.get(index) else {
                return Err(SyncError::Config("no endpoint configured".into()));
            };
            self.requests.fetch_add(1, Ordering::Relaxed);
            match op(store.clone()).await {
                Ok(v) => return Ok(Some(v)),
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(
                    e @ (object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }),
                ) => {
                    return Err(SyncError::Denied(format!("{what}: {e}")));
                }
                Err(e) => {
                    last = e.to_string();
                    if last.contains("403 Forbidden") || last.contains("AccessDenied") || last.contains("NoSuchBucket")
                    {
                        return Err(SyncError::Denied(format!("{what}: {last}")));
                    }
                    // Try the next endpoint: one node down must not stop a team.
                    let _ = self.preferred.compare_exchange(
                        index,
                        (index + 1) % self.stores.len(),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    if n + 1 < self.policy.attempts {
                        tokio::time::sleep(self.policy.delay(n)).await;
                    }
                }
            }
        }
        Err(SyncError::Unreachable(format!("{what}: {last}")))
    }

    pub async fn put(&self, key: &str, body: Bytes) -> Result<()> {
        let location = self.location(key);
        self.attempt(&format!("writing {key}"), |s| {
            let location = location.clone();
            let payload = PutPayload::from_bytes(body.clone());
            async move { s.put(&location, payload).await }
        })
        .await?
        .ok_or_else(|| SyncError::Remote(format!("writing {key}: the bucket is missing")))?;
        Ok(())
    }

    /// `None` when the object does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let location = self.location(key);
        self.attempt(&format!("reading {key}"), |s| {
            let location = location.clone();
            async move { s.get(&location).await?.bytes().await }
        })
        .await
    }

    /// `get` with a size cap, checked before the body is read (the store's size) and while
    /// reading it: an object from another device is never read whole past `limit` bytes.
    pub async fn get_limited(&self, key: &str, limit: u64) -> Result<Option<Limited>> {
        let location = self.location(key);
        self.attempt(&format!("reading {key}"), |s| {
            let location = location.clone();
            async move {
                let found = s.get(&location).await?;
                let size = found.meta.size;
                if size > limit {
                    return Ok(Limited::TooLarge(size));
                }
                let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                let mut stream = found.into_stream();
                while let Some(chunk) = stream.try_next().await? {
                    if (body.len() + chunk.len()) as u64 > limit {
                        return Ok(Limited::TooLarge((body.len() + chunk.len()) as u64));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(Limited::Body(Bytes::from(body)))
            }
        })
        .await
    }

    /// Keys under `folder` (relative to the prefix), sorted.
    pub async fn list(&self, folder: &str) -> Result<Vec<String>> {
        Ok(self.list_meta(folder).await?.into_iter().map(|o| o.key).collect())
    }

    /// Objects under `folder` with their store-side modification time and size, sorted by
    /// key (garbage collection: an object rewritten recently is never old garbage).
    pub async fn list_meta(&self, folder: &str) -> Result<Vec<ObjectInfo>> {
        let location = self.location(folder);
        let strip = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let metas = self
            .attempt(&format!("listing {folder}"), |s| {
                let location = location.clone();
                async move { s.list(Some(&location)).try_collect::<Vec<_>>().await }
            })
            .await?
            .unwrap_or_default();
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.as_ref().strip_prefix(strip.as_str())?.to_owned();
                Some(ObjectInfo { key, modified_ms: m.last_modified.timestamp_millis(), size: m.size })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// The store's modification time of `key` (ms since the epoch); `None` when absent.
    pub async fn modified_ms(&self, key: &str) -> Result<Option<i64>> {
        let location = self.location(key);
        self.attempt(&format!("checking {key}"), |s| {
            let location = location.clone();
            async move { s.head(&location).await.map(|m| m.last_modified.timestamp_millis()) }
        })
        .await
    }

    /// Deleting an absent object is fine.
    pub async fn delete(&self, key: &str) -> Result<()> {
        let location = self.location(key);
        self.attempt(&format!("deleting {key}"), |s| {
            let location = location.clone();
            async move { s.delete(&location).await }
        })
        .await?;
        Ok(())
    }
}
