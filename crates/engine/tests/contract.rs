//! The storage contract: one suite, run against every backend and decorator.
//!
//! Another crate runs the suite on its own store by including this file as a module
//! (`#[path = "…/engine/tests/contract.rs"] #[macro_use] mod contract;`, then `use
//! contract::*;` and its own `contract_suite!`): the `contract_*` checks are `pub(crate)`
//! for that (crates/sync/tests/contract_garage.rs does it for Garage).
//!
//! Adding a store = one line in the `contract_suite!` invocation at the bottom:
//! `name => Harness::new(|| make_the_store());` (wrap it with [`in_tempdir`] when it
//! lives in a folder). A store whose keys or values are constrained (the blueprint
//! Library wants `*.blueprint.yaml` keys and valid YAML) sets
//! [`Harness::with_keys`] / [`Harness::with_payload`]. Tests that need an optional
//! feature check `capabilities()` and skip what the store does not offer.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bpv_engine::store::cached::{CacheConfig, Cached};
use bpv_engine::store::memory::MemoryStore;
use bpv_engine::store::namespaced::Namespaced;
use bpv_engine::store::sqlite_kv::SqliteKvStore;
use bpv_engine::store::{
    BatchOp, Capabilities, Entry, Format, ListPage, Loaded, Page, SaveOptions, SearchHit, Store, StoreInfo, StoreQuery,
    content_hash,
};
use bpv_engine::{Key, Namespace};
use chrono::Utc;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

// ---- harness -----------------------------------------------------------------------

/// How to make a fresh, empty store, and how to name keys and values for it.
pub struct Harness<S> {
    make: Box<dyn Fn() -> S>,
    /// The backend's key for a logical test name (identity for generic stores).
    key: fn(&str) -> String,
    /// A value the backend accepts, distinct for each seed.
    payload: fn(&str) -> Vec<u8>,
}

impl<S: Store> Harness<S> {
    pub fn new(make: impl Fn() -> S + 'static) -> Harness<S> {
        Harness { make: Box::new(make), key: |n| n.to_owned(), payload: |s| format!("value: {s}\n").into_bytes() }
    }

    #[allow(dead_code)]
    pub fn with_keys(mut self, key: fn(&str) -> String) -> Harness<S> {
        self.key = key;
        self
    }

    #[allow(dead_code)]
    pub fn with_payload(mut self, payload: fn(&str) -> Vec<u8>) -> Harness<S> {
        self.payload = payload;
        self
    }

    fn make(&self) -> S {
        (self.make)()
    }

    fn k(&self, name: &str) -> Key {
        Key::new(&(self.key)(name)).unwrap()
    }

    fn name(&self, name: &str) -> String {
        self.k(name).into_string()
    }

    fn v(&self, seed: &str) -> Vec<u8> {
        (self.payload)(seed)
    }
}

/// A store that owns the temporary folder it lives in (removed when dropped,
/// after the store: fields drop in order).
pub struct InDir<S> {
    store: S,
    _dir: TempDir,
}

pub fn in_tempdir<S: Store>(build: impl FnOnce(&Path) -> S) -> InDir<S> {
    let dir = tempfile::tempdir().unwrap();
    InDir { store: build(dir.path()), _dir: dir }
}

impl<S: Store> Store for InDir<S> {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> bpv_engine::Result<Entry> {
        self.store.save(key, data, options)
    }
    fn load(&self, key: &Key) -> bpv_engine::Result<Loaded> {
        self.store.load(key)
    }
    fn delete(&self, key: &Key) -> bpv_engine::Result<()> {
        self.store.delete(key)
    }
    fn exists(&self, key: &Key) -> bpv_engine::Result<bool> {
        self.store.exists(key)
    }
    fn list(&self, prefix: &str, page: Page) -> bpv_engine::Result<ListPage> {
        self.store.list(prefix, page)
    }
    fn search(&self, query: &StoreQuery) -> bpv_engine::Result<Vec<SearchHit>> {
        self.store.search(query)
    }
    fn info(&self) -> bpv_engine::Result<StoreInfo> {
        self.store.info()
    }
    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }
    fn batch(&self, ops: &[BatchOp]) -> bpv_engine::Result<()> {
        self.store.batch(ops)
    }
}

fn sqlite_in(dir: &Path) -> SqliteKvStore {
    SqliteKvStore::open(dir.join("app-data.sqlite3")).unwrap()
}

/// Small enough that the 1 MiB values are not cached (exercises that path) while
/// the small ones are.
fn cache_config() -> CacheConfig {
    CacheConfig { max_entries: 64, max_bytes: 512 * 1024, ttl: Some(Duration::from_secs(60)) }
}

fn ns() -> Namespace {
    Namespace::prefix("APP_").unwrap()
}

fn opts() -> SaveOptions {
    SaveOptions::default()
}

fn code<T: std::fmt::Debug>(r: bpv_engine::Result<T>) -> &'static str {
    r.expect_err("expected an error").code()
}

fn keys(page: &ListPage) -> Vec<String> {
    page.entries.iter().map(|e| e.key.clone()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn put<S: Store>(h: &Harness<S>, s: &S, name: &str, seed: &str) -> Entry {
    s.save(&h.k(name), &h.v(seed), &opts()).unwrap()
}

// ---- the contract ------------------------------------------------------------------

pub(crate) fn contract_round_trip_bytes<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let mut values: Vec<(&str, Vec<u8>)> = vec![("text", h.v("text"))];
    if s.capabilities().formats.contains(&Format::Binary) {
        values.push(("empty", Vec::new()));
        values.push(("binary", (0..=255u8).chain((0..=255u8).rev()).collect()));
        values.push(("large", (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()));
    }
    for (name, data) in &values {
        let key = h.k(name);
        let saved = s.save(&key, data, &opts()).unwrap();
        assert_eq!(saved.key, key.as_str());
        assert_eq!(saved.size, data.len() as u64, "{name}: size");
        assert_eq!(saved.hash, content_hash(data), "{name}: hash");
        for _ in 0..2 {
            // Twice: a cache answers the second time.
            let loaded = s.load(&key).unwrap();
            assert_eq!(&loaded.data, data, "{name}: bytes");
            assert_eq!(loaded.entry.key, key.as_str());
            assert_eq!(loaded.entry.size, data.len() as u64);
            assert_eq!(loaded.entry.hash, content_hash(data));
        }
    }
    let listed = s.list("", Page::ALL).unwrap();
    assert_eq!(listed.total, values.len());
    for e in &listed.entries {
        let data = &values.iter().find(|(n, _)| h.name(n) == e.key).unwrap().1;
        assert_eq!((e.size, e.hash.as_str()), (data.len() as u64, content_hash(data).as_str()));
    }
}

pub(crate) fn contract_overwrite<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let k = h.k("doc");
    s.save(&k, &h.v("one"), &SaveOptions { tags: vec!["old".into()], ..opts() }).unwrap();
    assert_eq!(s.load(&k).unwrap().data, h.v("one"));
    let e = s.save(&k, &h.v("two"), &opts()).unwrap();
    assert_eq!(e.hash, content_hash(&h.v("two")));
    let loaded = s.load(&k).unwrap();
    assert_eq!(loaded.data, h.v("two"));
    assert!(loaded.entry.tags.is_empty(), "an overwrite replaces the tags");
    assert_eq!(s.list("", Page::ALL).unwrap().total, 1);
}

pub(crate) fn contract_exists_and_delete<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let k = h.k("doc");
    assert!(!s.exists(&k).unwrap());
    assert_eq!(code(s.load(&k)), "not_found");
    assert_eq!(code(s.delete(&k)), "not_found", "deleting an absent key");
    put(h, &s, "doc", "1");
    assert!(s.exists(&k).unwrap());
    s.load(&k).unwrap();
    assert!(s.exists(&k).unwrap());
    s.delete(&k).unwrap();
    assert!(!s.exists(&k).unwrap());
    assert_eq!(code(s.load(&k)), "not_found");
    assert_eq!(code(s.delete(&k)), "not_found", "deleting twice");
    assert_eq!(s.list("", Page::ALL).unwrap().total, 0);
}

pub(crate) fn contract_list_order_paging_total<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let names = ["m", "b/2", "a/y", "c", "a/x", "aa", "b/1", "z", "a0"];
    for n in names {
        put(h, &s, n, n);
    }
    let all = sorted(names.iter().map(|n| h.name(n)).collect());
    let listed = s.list("", Page::ALL).unwrap();
    assert_eq!(keys(&listed), all, "key order");
    assert_eq!(listed.total, names.len());
    // Pages tile the listing.
    let mut paged = Vec::new();
    for offset in (0..names.len()).step_by(2) {
        let p = s.list("", Page::new(offset, 2)).unwrap();
        assert_eq!(p.total, names.len());
        assert!(p.entries.len() <= 2);
        paged.extend(keys(&p));
    }
    assert_eq!(paged, all);
    let past = s.list("", Page::new(100, 5)).unwrap();
    assert!(past.entries.is_empty());
    assert_eq!(past.total, names.len());
    assert!(s.list("", Page::new(0, 0)).unwrap().entries.is_empty());
    // Folder and partial prefixes.
    let a_folder = s.list(&format!("{}/", h.name("a/x").split('/').next().unwrap()), Page::ALL).unwrap();
    assert_eq!(keys(&a_folder), sorted(vec![h.name("a/x"), h.name("a/y")]));
    assert_eq!(a_folder.total, 2);
    let a = s.list("a", Page::ALL).unwrap();
    assert_eq!(keys(&a), sorted(vec![h.name("a/x"), h.name("a/y"), h.name("aa"), h.name("a0")]));
    let a_page = s.list("a", Page::new(1, 2)).unwrap();
    assert_eq!(a_page.total, 4);
    assert_eq!(keys(&a_page), keys(&a)[1..3].to_vec());
    assert!(s.list("q", Page::ALL).unwrap().entries.is_empty());
}

pub(crate) fn contract_list_prefix_is_literal<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let names = ["%x", "_y", "ab%", "a_b", "axb", "a%c", "abc", "zz"];
    for n in names {
        put(h, &s, n, n);
    }
    let at = |p: &str| keys(&s.list(p, Page::ALL).unwrap());
    assert_eq!(at("%"), vec![h.name("%x")]);
    assert_eq!(at("_"), vec![h.name("_y")]);
    assert_eq!(at("a_"), vec![h.name("a_b")], "`_` is not a wildcard");
    assert_eq!(at("a%"), vec![h.name("a%c")], "`%` is not a wildcard");
    assert_eq!(at("ab%"), vec![h.name("ab%")]);
    assert_eq!(s.list("%", Page::ALL).unwrap().total, 1);
    // `*` cannot occur in a key, so a `*` prefix matches nothing (or is refused).
    match s.list("*", Page::ALL) {
        Ok(p) => assert!(p.entries.is_empty() && p.total == 0),
        Err(e) => assert_eq!(e.code(), "invalid_key"),
    }
    match s.list("a*", Page::ALL) {
        Ok(p) => assert!(p.entries.is_empty()),
        Err(e) => assert_eq!(e.code(), "invalid_key"),
    }
    // Hostile prefixes are refused, not interpreted.
    for p in ["../", "/", "/etc", "a//", "a/../", "C:/", "."] {
        assert_eq!(code(s.list(p, Page::ALL)), "invalid_key", "prefix {p:?}");
    }
}

pub(crate) fn contract_search<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let caps = s.capabilities();
    let meta = |title: &str| {
        let mut m = Map::new();
        if caps.metadata {
            m.insert("title".into(), json!(title));
        }
        m
    };
    let tags = |t: &[&str]| if caps.tags { t.iter().map(|x| x.to_string()).collect() } else { Vec::new() };
    let save = |name: &str, t: &[&str], title: &str| {
        s.save(&h.k(name), &h.v(name), &SaveOptions { tags: tags(t), metadata: meta(title), ..opts() }).unwrap();
    };
    save("reports/daily-sales", &["crm", "Finance"], "Quarterly Digest");
    save("reports/weekly-leads", &["crm"], "Lead Router");
    save("notes/todo", &[], "Personal");
    let hits = |q: StoreQuery| sorted(s.search(&q).unwrap().into_iter().map(|h| h.entry.key).collect());
    let text = |t: &str| StoreQuery { text: t.into(), ..Default::default() };

    assert_eq!(hits(text("DAILY")), vec![h.name("reports/daily-sales")], "case-insensitive");
    assert_eq!(hits(text("reports sales")), vec![h.name("reports/daily-sales")], "terms AND");
    assert!(hits(text("daily weekly")).is_empty(), "every term must match");
    assert_eq!(hits(text("reports")).len(), 2);
    assert_eq!(hits(StoreQuery { prefix: "notes/".into(), ..Default::default() }), vec![h.name("notes/todo")]);
    assert_eq!(hits(StoreQuery { text: "reports".into(), prefix: "notes/".into(), ..Default::default() }).len(), 0);
    if caps.metadata {
        assert_eq!(hits(text("digest quarterly")), vec![h.name("reports/daily-sales")], "metadata strings match");
    }
    if caps.tags {
        let by_tags = |t: &[&str]| StoreQuery { tags: t.iter().map(|x| x.to_string()).collect(), ..Default::default() };
        assert_eq!(
            hits(by_tags(&["CRM"])),
            sorted(vec![h.name("reports/daily-sales"), h.name("reports/weekly-leads")])
        );
        assert_eq!(hits(by_tags(&["crm", "finance"])), vec![h.name("reports/daily-sales")], "all tags required");
        assert!(hits(by_tags(&["nope"])).is_empty());
        assert_eq!(hits(StoreQuery { text: "leads".into(), tags: vec!["crm".into()], ..Default::default() }).len(), 1);
        assert_eq!(hits(text("finance")), vec![h.name("reports/daily-sales")], "tags are searched as text");
        let limited = s.search(&StoreQuery { tags: vec!["crm".into()], limit: Some(1), ..Default::default() }).unwrap();
        assert_eq!(limited.len(), 1);
        let rest = s.search(&StoreQuery { tags: vec!["crm".into()], offset: 1, ..Default::default() }).unwrap();
        assert_eq!(rest.len(), 1);
        assert_ne!(limited[0].entry.key, rest[0].entry.key);
    }
    assert_eq!(code(s.search(&StoreQuery { prefix: "../".into(), ..Default::default() })), "invalid_key");
}

pub(crate) fn contract_if_match<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let k = h.k("doc");
    let e1 = put(h, &s, "doc", "1");
    s.load(&k).unwrap();
    let e2 = s.save(&k, &h.v("2"), &SaveOptions { if_match: Some(e1.hash.clone()), ..opts() }).unwrap();
    assert_eq!(e2.hash, content_hash(&h.v("2")));
    let stale = SaveOptions { if_match: Some(e1.hash.clone()), ..opts() };
    assert_eq!(code(s.save(&k, &h.v("3"), &stale)), "conflict");
    assert_eq!(s.load(&k).unwrap().data, h.v("2"), "a conflicting save changes nothing");
    let absent = SaveOptions { if_match: Some(e1.hash), ..opts() };
    assert_eq!(code(s.save(&h.k("absent"), &h.v("x"), &absent)), "conflict", "if_match on an absent key");
    assert!(!s.exists(&h.k("absent")).unwrap());
}

pub(crate) fn contract_if_match_is_race_free<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let k = h.k("counter");
    const THREADS: u32 = 3;
    const EACH: u32 = 8;
    let values: Vec<Vec<u8>> = (0..=THREADS * EACH).map(|n| h.v(&format!("count {n}"))).collect();
    let value = |n: u32| values[n as usize].clone();
    s.save(&k, &value(0), &opts()).unwrap();
    // Compare-and-swap increments: lost updates would show as a short count.
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let mut done = 0;
                while done < EACH {
                    let cur = s.load(&k).unwrap();
                    let n = values.iter().position(|v| *v == cur.data).unwrap() as u32;
                    let o = SaveOptions { if_match: Some(cur.entry.hash.clone()), ..opts() };
                    match s.save(&k, &value(n + 1), &o) {
                        Ok(_) => done += 1,
                        Err(e) => assert_eq!(e.code(), "conflict"),
                    }
                }
            });
        }
    });
    assert_eq!(s.load(&k).unwrap().data, value(THREADS * EACH));
}

pub(crate) fn contract_create_only<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let k = h.k("doc");
    let create = SaveOptions { create_only: true, ..opts() };
    s.save(&k, &h.v("1"), &create).unwrap();
    assert_eq!(code(s.save(&k, &h.v("2"), &create)), "already_exists");
    assert_eq!(s.load(&k).unwrap().data, h.v("1"));
    s.delete(&k).unwrap();
    s.save(&k, &h.v("3"), &create).unwrap();
    assert_eq!(s.load(&k).unwrap().data, h.v("3"));
}

/// A store without a capability refuses the option that asks for it (`unsupported`) and
/// writes nothing: it never accepts a save it cannot honour.
fn refuses_option<S: Store>(h: &Harness<S>, s: &S, what: &str, options: SaveOptions) {
    let k = h.k(&format!("refused-{what}"));
    assert_eq!(code(s.save(&k, &h.v(what), &options)), "unsupported", "{what} without the capability");
    assert!(!s.exists(&k).unwrap(), "{what}: a refused save wrote something");
}

pub(crate) fn contract_batch_all_or_nothing<S: Store>(h: &Harness<S>) {
    let s = h.make();
    if s.capabilities().batch {
        batch_honoured(h, &s);
    } else {
        // A store without batches refuses one whole: nothing of it is written.
        let op = BatchOp::Put { key: h.k("in-a-batch"), data: h.v("b"), options: opts() };
        assert_eq!(code(s.batch(&[op])), "unsupported");
        assert!(!s.exists(&h.k("in-a-batch")).unwrap(), "a refused batch wrote something");
    }
}

fn batch_honoured<S: Store>(h: &Harness<S>, s: &S) {
    let keep = put(h, s, "keep", "v1");
    put(h, s, "gone", "v1");
    let p = |name: &str, seed: &str, o: SaveOptions| BatchOp::Put { key: h.k(name), data: h.v(seed), options: o };
    let d = |name: &str| BatchOp::Delete { key: h.k(name) };
    let snapshot = |s: &S| {
        let l = s.list("", Page::ALL).unwrap();
        l.entries.iter().map(|e| (e.key.clone(), e.hash.clone())).collect::<Vec<_>>()
    };
    s.load(&h.k("keep")).unwrap();
    let before = snapshot(s);

    let wrong = SaveOptions { if_match: Some(content_hash(b"something else")), ..opts() };
    let failing: Vec<Vec<BatchOp>> = vec![
        // a conflict in the middle
        vec![p("new1", "n", opts()), d("gone"), p("keep", "v2", wrong), p("new2", "n", opts())],
        // deleting an absent key
        vec![p("new1", "n", opts()), d("keep"), d("absent")],
        // create_only over an existing key
        vec![d("gone"), p("keep", "v3", SaveOptions { create_only: true, ..opts() })],
        // a delete that an earlier op in the same batch already did
        vec![d("gone"), d("gone")],
    ];
    let expected_codes = ["conflict", "not_found", "already_exists", "not_found"];
    for (ops, want) in failing.iter().zip(expected_codes) {
        assert_eq!(code(s.batch(ops)), want);
        assert_eq!(snapshot(s), before, "a failed batch changes nothing");
        assert_eq!(s.load(&h.k("keep")).unwrap().data, h.v("v1"));
        assert!(s.exists(&h.k("gone")).unwrap());
        assert!(!s.exists(&h.k("new1")).unwrap());
    }

    s.batch(&[]).unwrap();
    let right = SaveOptions { if_match: Some(keep.hash), ..opts() };
    s.batch(&[p("new1", "a", opts()), p("new2", "b", opts()), d("gone"), p("keep", "v2", right)]).unwrap();
    assert_eq!(s.load(&h.k("new1")).unwrap().data, h.v("a"));
    assert_eq!(s.load(&h.k("new2")).unwrap().data, h.v("b"));
    assert_eq!(s.load(&h.k("keep")).unwrap().data, h.v("v2"));
    assert!(!s.exists(&h.k("gone")).unwrap());
    // Ops see the ones before them: put then delete, put then create_only-free overwrite.
    s.batch(&[p("tmp", "t", opts()), d("tmp"), p("new1", "c", opts()), p("new1", "d", opts())]).unwrap();
    assert!(!s.exists(&h.k("tmp")).unwrap());
    assert_eq!(s.load(&h.k("new1")).unwrap().data, h.v("d"));
    assert_eq!(s.list("", Page::ALL).unwrap().total, 3);
}

pub(crate) fn contract_metadata_and_tags<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let caps = s.capabilities();
    if !caps.metadata {
        let mut m = Map::new();
        m.insert("title".into(), json!("x"));
        refuses_option(h, &s, "metadata", SaveOptions { metadata: m, ..opts() });
    }
    if !caps.tags {
        refuses_option(h, &s, "tags", SaveOptions { tags: vec!["crm".into()], ..opts() });
    }
    let mut metadata = Map::new();
    if caps.metadata {
        metadata.insert("title".into(), json!("Daily digest"));
        metadata.insert("nested".into(), json!({"n": 3, "list": [1, "two", null], "ok": true}));
        metadata.insert("unicode".into(), json!("東京 café"));
    }
    let tags: Vec<String> = if caps.tags { vec!["crm".into(), "Slack".into(), "日本".into()] } else { Vec::new() };
    let o = SaveOptions { metadata: metadata.clone(), tags: tags.clone(), ..opts() };
    let saved = s.save(&h.k("doc"), &h.v("doc"), &o).unwrap();
    assert_eq!(saved.metadata, metadata);
    assert_eq!(saved.tags, tags);
    for _ in 0..2 {
        let loaded = s.load(&h.k("doc")).unwrap();
        assert_eq!(loaded.entry.metadata, metadata);
        assert_eq!(loaded.entry.tags, tags);
    }
    let listed = s.list("", Page::ALL).unwrap();
    assert_eq!(listed.entries[0].metadata, metadata);
    assert_eq!(listed.entries[0].tags, tags);
}

pub(crate) fn contract_formats<S: Store>(h: &Harness<S>) {
    let s = h.make();
    for f in s.capabilities().formats {
        let data = match f {
            Format::Yaml => h.v("yaml"),
            Format::Json => br#"{"name": "x", "n": [1, 2]}"#.to_vec(),
            Format::Binary => vec![0, 159, 146, 150, 255],
        };
        let name = format!("fmt-{f:?}").to_lowercase();
        let e = s.save(&h.k(&name), &data, &SaveOptions { format: Some(f), ..opts() }).unwrap();
        assert_eq!(e.format, Some(f));
        let loaded = s.load(&h.k(&name)).unwrap();
        assert_eq!(loaded.entry.format, Some(f));
        assert_eq!(loaded.data, data);
    }
}

pub(crate) fn contract_expiration<S: Store>(h: &Harness<S>) {
    let s = h.make();
    if s.capabilities().expiration {
        expiration_honoured(h, &s);
    } else {
        let past = Utc::now() - chrono::Duration::seconds(10);
        refuses_option(h, &s, "expiration", SaveOptions { expiration: Some(past), ..opts() });
    }
}

fn expiration_honoured<S: Store>(h: &Harness<S>, s: &S) {
    let past = SaveOptions { expiration: Some(Utc::now() - chrono::Duration::seconds(10)), ..opts() };
    let later = Utc::now() + chrono::Duration::hours(1);
    let future = SaveOptions { expiration: Some(later), ..opts() };
    let k = h.k("old");
    s.save(&k, &h.v("old"), &past).unwrap();
    assert_eq!(code(s.load(&k)), "not_found");
    assert!(!s.exists(&k).unwrap());
    assert_eq!(s.list("", Page::ALL).unwrap().total, 0);
    assert!(s.search(&StoreQuery::default()).unwrap().is_empty());
    assert_eq!(s.info().unwrap().entries, 0);
    let stale = SaveOptions { if_match: Some(content_hash(&h.v("old"))), ..opts() };
    assert_eq!(code(s.save(&k, &h.v("x"), &stale)), "conflict", "an expired value cannot be matched");
    assert_eq!(code(s.delete(&k)), "not_found");
    // An expired key is free again.
    s.save(&k, &h.v("old"), &past).unwrap();
    s.save(&k, &h.v("new"), &SaveOptions { create_only: true, ..opts() }).unwrap();
    assert_eq!(s.load(&k).unwrap().data, h.v("new"));

    let e = s.save(&h.k("fresh"), &h.v("fresh"), &future).unwrap();
    let kept = s.load(&h.k("fresh")).unwrap();
    assert_eq!(kept.data, h.v("fresh"));
    let drift = |t: Option<chrono::DateTime<Utc>>| (t.unwrap() - later).num_milliseconds().abs();
    assert!(drift(e.expires) < 1000 && drift(kept.entry.expires) < 1000);
    assert!(s.exists(&h.k("fresh")).unwrap());
    assert_eq!(s.list("", Page::ALL).unwrap().total, 2);
}

pub(crate) fn contract_compress<S: Store>(h: &Harness<S>) {
    let s = h.make();
    if s.capabilities().compress {
        compression_honoured(h, &s);
    } else {
        refuses_option(h, &s, "compression", SaveOptions { compress: true, ..opts() });
    }
}

fn compression_honoured<S: Store>(h: &Harness<S>, s: &S) {
    let mut values = vec![("text", h.v("compressible ").repeat(2000))];
    if s.capabilities().formats.contains(&Format::Binary) {
        values.push(("empty", Vec::new()));
        values.push(("binary", (0..700_000u32).map(|i| (i % 251) as u8).collect()));
    }
    for (name, data) in values {
        let o = SaveOptions { compress: true, ..opts() };
        let e = s.save(&h.k(name), &data, &o).unwrap();
        assert_eq!(e.size, data.len() as u64, "size is the logical size");
        assert_eq!(e.hash, content_hash(&data), "hash is of the logical bytes");
        for _ in 0..2 {
            let loaded = s.load(&h.k(name)).unwrap();
            assert_eq!(loaded.data, data, "{name}: decompressed transparently");
            assert_eq!(loaded.entry.size, data.len() as u64);
        }
        let listed = s.list(&h.name(name), Page::ALL).unwrap();
        assert_eq!(listed.entries[0].size, data.len() as u64);
    }
}

pub(crate) fn contract_invalid_keys_refused<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let long = "a".repeat(2000);
    for raw in [
        "",
        "/abs",
        "../x",
        "a/../b",
        "a/./b",
        "a//b",
        "a/",
        "C:/x",
        "a\\b",
        "a\0b",
        "a\nb",
        "con",
        "nul.txt",
        ".hidden",
        "a*b",
        "a?b",
        "a:b",
        "trail.",
        "evil\u{202E}txt",
        long.as_str(),
    ] {
        assert_eq!(code(Key::new(raw)), "invalid_key", "{raw:?}");
    }
    // Nothing hostile ever reached the store.
    assert_eq!(s.list("", Page::ALL).unwrap().total, 0);
}

pub(crate) fn contract_info_counts<S: Store>(h: &Harness<S>) {
    let s = h.make();
    let info = s.info().unwrap();
    assert_eq!((info.entries, info.bytes), (0, 0));
    assert!(!info.backend.is_empty());
    let sizes: Vec<u64> = ["a", "b/c", "d"].iter().map(|n| put(h, &s, n, &n.repeat(7)).size).collect();
    let info = s.info().unwrap();
    assert_eq!(info.entries, 3);
    assert_eq!(info.bytes, sizes.iter().sum::<u64>());
    s.delete(&h.k("a")).unwrap();
    let info = s.info().unwrap();
    assert_eq!(info.entries, 2);
    assert_eq!(info.bytes, sizes[1] + sizes[2]);
}

macro_rules! contract_suite {
    ($($backend:ident => $harness:expr;)*) => {$(
        mod $backend {
            use super::*;

            fn harness() -> Harness<impl Store> {
                $harness
            }

            #[test] fn round_trip_bytes() { contract_round_trip_bytes(&harness()) }
            #[test] fn overwrite() { contract_overwrite(&harness()) }
            #[test] fn exists_and_delete() { contract_exists_and_delete(&harness()) }
            #[test] fn list_order_paging_total() { contract_list_order_paging_total(&harness()) }
            #[test] fn list_prefix_is_literal() { contract_list_prefix_is_literal(&harness()) }
            #[test] fn search() { contract_search(&harness()) }
            #[test] fn if_match() { contract_if_match(&harness()) }
            #[test] fn if_match_is_race_free() { contract_if_match_is_race_free(&harness()) }
            #[test] fn create_only() { contract_create_only(&harness()) }
            #[test] fn batch_all_or_nothing() { contract_batch_all_or_nothing(&harness()) }
            #[test] fn metadata_and_tags() { contract_metadata_and_tags(&harness()) }
            #[test] fn formats() { contract_formats(&harness()) }
            #[test] fn expiration() { contract_expiration(&harness()) }
            #[test] fn compress() { contract_compress(&harness()) }
            #[test] fn invalid_keys_refused() { contract_invalid_keys_refused(&harness()) }
            #[test] fn info_counts() { contract_info_counts(&harness()) }
        }
    )*};
}

contract_suite! {
    memory => Harness::new(MemoryStore::new);
    sqlite => Harness::new(|| in_tempdir(sqlite_in));
    namespaced_memory => Harness::new(|| Namespaced::new(ns(), MemoryStore::new()));
    namespaced_folder_memory => Harness::new(|| Namespaced::new(Namespace::folder("Blueprints/shared").unwrap(), MemoryStore::new()));
    namespaced_sqlite => Harness::new(|| in_tempdir(|d| Namespaced::new(ns(), sqlite_in(d))));
    cached_memory => Harness::new(|| Cached::new(MemoryStore::new(), cache_config()));
    cached_sqlite => Harness::new(|| in_tempdir(|d| Cached::new(sqlite_in(d), cache_config())));
    cached_namespaced_sqlite => Harness::new(|| in_tempdir(|d| Cached::new(Namespaced::new(ns(), sqlite_in(d)), cache_config())));
    library => Harness::new(|| in_tempdir(library_in)).with_keys(blueprint_key).with_payload(blueprint_payload);
    namespaced_library => Harness::new(|| in_tempdir(|d| Namespaced::new(Namespace::folder("Blueprints/shared").unwrap(), library_in(d))))
        .with_keys(blueprint_key)
        .with_payload(blueprint_payload);
    cached_library => Harness::new(|| in_tempdir(|d| Cached::new(library_in(d), cache_config())))
        .with_keys(blueprint_key)
        .with_payload(blueprint_payload);
}

fn library_in(dir: &Path) -> bpv_engine::library::Library {
    let mut o = bpv_engine::library::OpenOptions::new(dir.join("library"));
    o.data_dir = Some(dir.join("data"));
    o.create = true;
    bpv_engine::library::Library::open(o).unwrap()
}

fn blueprint_key(name: &str) -> String {
    format!("{name}.blueprint.yaml")
}

fn blueprint_payload(seed: &str) -> Vec<u8> {
    format!("name: {seed:?}\nnodes:\n  - id: n1\n    type: note\n").into_bytes()
}

// ---- namespaced views cannot be escaped ----------------------------------------------

fn isolation<S: Store>(inner: Arc<S>) {
    let k = |s: &str| Key::new(s).unwrap();
    let view = |n: Namespace| Namespaced::new(n, Arc::clone(&inner));
    let wallet = view(Namespace::prefix("WALLET_").unwrap());
    let walletx = view(Namespace::prefix("WALLETX_").unwrap());
    let ab = view(Namespace::folder("a/b").unwrap());
    let abc = view(Namespace::folder("a/bc").unwrap());
    let cafe = view(Namespace::prefix("cafe").unwrap());

    for (v, name) in [(&wallet, "wallet"), (&walletx, "walletx"), (&ab, "ab"), (&abc, "abc"), (&cafe, "cafe")] {
        v.save(&k("main"), name.as_bytes(), &opts()).unwrap();
    }
    for raw in ["outside", "WALLET", "WALLET_", "a/b", "a/bc/x", "café", "caféx", "%", "_", "a/%b"] {
        inner.save(&k(raw), b"raw", &opts()).unwrap();
    }

    // Each view sees only its own keys, un-namespaced.
    let listed = |v: &Namespaced<Arc<S>>, p: &str| keys(&v.list(p, Page::ALL).unwrap());
    assert_eq!(listed(&wallet, ""), ["main"]);
    assert_eq!(listed(&walletx, ""), ["main"]);
    assert_eq!(listed(&ab, ""), ["main"], "a/b does not see a/bc or a/b itself");
    assert_eq!(listed(&abc, ""), ["main", "x"]);
    assert_eq!(listed(&cafe, ""), ["main"], "café is not inside cafe");
    assert_eq!(wallet.load(&k("main")).unwrap().data, b"wallet");
    assert_eq!(walletx.load(&k("main")).unwrap().data, b"walletx");
    assert_eq!(ab.load(&k("main")).unwrap().entry.key, "main");

    // Literal wildcard prefixes stay inside.
    for v in [&wallet, &ab, &cafe] {
        for p in ["%", "_", "X", "x", "c/"] {
            assert!(listed(v, p).is_empty(), "prefix {p:?}");
        }
        match v.list("*", Page::ALL) {
            Ok(p) => assert!(p.entries.is_empty()),
            Err(e) => assert_eq!(e.code(), "invalid_key"),
        }
        for p in ["../", "/", "/a", "..", "a//"] {
            assert_eq!(code(v.list(p, Page::ALL)), "invalid_key", "prefix {p:?}");
        }
    }
    // Keys that look like a sibling stay inside their own view.
    assert!(!wallet.exists(&k("X_main")).unwrap());
    assert!(!ab.exists(&k("c/x")).unwrap());
    ab.save(&k("c/x"), b"inside", &opts()).unwrap();
    assert_eq!(inner.load(&k("a/bc/x")).unwrap().data, b"raw");
    assert_eq!(inner.load(&k("a/b/c/x")).unwrap().data, b"inside");
    ab.delete(&k("c/x")).unwrap();

    // NFC: a combining mark at the start of a key cannot merge into the namespace.
    assert_eq!(code(cafe.save(&k("\u{301}x"), b"evil", &opts())), "invalid_key");
    assert_eq!(code(cafe.load(&k("\u{301}x"))), "invalid_key");
    assert_eq!(code(cafe.delete(&k("\u{301}x"))), "invalid_key");
    assert_eq!(code(cafe.exists(&k("\u{301}"))), "invalid_key");
    assert_eq!(code(cafe.list("\u{301}", Page::ALL)), "invalid_key");
    assert_eq!(inner.load(&k("caféx")).unwrap().data, b"raw", "café untouched");
    assert_eq!(code(cafe.batch(&[BatchOp::Delete { key: k("\u{301}x") }])), "invalid_key", "batches are checked too");

    // Deletes, batches and searches stay inside.
    assert_eq!(code(wallet.delete(&k("outside"))), "not_found");
    wallet
        .batch(&[
            BatchOp::Put { key: k("b1"), data: b"1".to_vec(), options: opts() },
            BatchOp::Delete { key: k("main") },
        ])
        .unwrap();
    assert!(inner.exists(&k("WALLET_b1")).unwrap());
    assert!(!inner.exists(&k("WALLET_main")).unwrap());
    assert_eq!(walletx.load(&k("main")).unwrap().data, b"walletx");
    let found = |v: &Namespaced<Arc<S>>, q: StoreQuery| {
        sorted(v.search(&q).unwrap().into_iter().map(|h| h.entry.key).collect())
    };
    assert_eq!(found(&walletx, StoreQuery::default()), ["main"]);
    assert_eq!(found(&abc, StoreQuery { text: "x".into(), ..Default::default() }), ["x"]);
    assert!(found(&wallet, StoreQuery { text: "wallet".into(), ..Default::default() }).is_empty());
    assert!(found(&ab, StoreQuery { text: "outside".into(), ..Default::default() }).is_empty());
    assert_eq!(code(wallet.search(&StoreQuery { prefix: "../".into(), ..Default::default() })), "invalid_key");
    assert_eq!(wallet.info().unwrap().entries, 1);
    assert_eq!(abc.info().unwrap().entries, 2);
}

#[test]
fn namespaces_cannot_be_escaped_memory() {
    isolation(Arc::new(MemoryStore::new()));
}

#[test]
fn namespaces_cannot_be_escaped_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    isolation(Arc::new(sqlite_in(dir.path())));
}

#[test]
fn namespaces_cannot_be_escaped_through_a_cache() {
    isolation(Arc::new(Cached::new(MemoryStore::new(), cache_config())));
}

/// An inner store that ignores list prefixes and search prefixes: the view must
/// still show only its own entries (defence in depth).
struct Leaky(MemoryStore);

impl Store for Leaky {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> bpv_engine::Result<Entry> {
        self.0.save(key, data, options)
    }
    fn load(&self, key: &Key) -> bpv_engine::Result<Loaded> {
        self.0.load(key)
    }
    fn delete(&self, key: &Key) -> bpv_engine::Result<()> {
        self.0.delete(key)
    }
    fn exists(&self, key: &Key) -> bpv_engine::Result<bool> {
        self.0.exists(key)
    }
    fn list(&self, _prefix: &str, page: Page) -> bpv_engine::Result<ListPage> {
        self.0.list("", page)
    }
    fn search(&self, query: &StoreQuery) -> bpv_engine::Result<Vec<SearchHit>> {
        self.0.search(&StoreQuery { prefix: String::new(), ..query.clone() })
    }
    fn info(&self) -> bpv_engine::Result<StoreInfo> {
        self.0.info()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    fn batch(&self, ops: &[BatchOp]) -> bpv_engine::Result<()> {
        self.0.batch(ops)
    }
}

#[test]
fn namespaced_drops_entries_a_leaky_store_returns() {
    let leaky = Leaky(MemoryStore::new());
    for raw in ["ACCOUNT_a", "WALLET_a", "WALLETX_b", "zzz"] {
        leaky.save(&Key::new(raw).unwrap(), b"v", &opts()).unwrap();
    }
    let view = Namespaced::new(Namespace::prefix("WALLET_").unwrap(), leaky);
    let listed = view.list("", Page::ALL).unwrap();
    assert_eq!(keys(&listed), ["a"]);
    assert_eq!(listed.total, 1);
    let hits = view.search(&StoreQuery::default()).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].entry.key, "a");
}

// ---- SQLite specifics -----------------------------------------------------------------

#[test]
fn sqlite_reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prefs.sqlite3");
    let mut md = Map::new();
    md.insert("theme".into(), Value::String("dark".into()));
    {
        let s = SqliteKvStore::open(&path).unwrap();
        s.save(
            &Key::new("ui/theme").unwrap(),
            b"dark",
            &SaveOptions { metadata: md.clone(), tags: vec!["ui".into()], ..opts() },
        )
        .unwrap();
        s.save(&Key::new("big").unwrap(), &vec![7u8; 100_000], &SaveOptions { compress: true, ..opts() }).unwrap();
        s.save(&Key::new("gone").unwrap(), b"x", &opts()).unwrap();
        s.delete(&Key::new("gone").unwrap()).unwrap();
    }
    let s = SqliteKvStore::open(&path).unwrap();
    let theme = s.load(&Key::new("ui/theme").unwrap()).unwrap();
    assert_eq!(theme.data, b"dark");
    assert_eq!(theme.entry.metadata, md);
    assert_eq!(theme.entry.tags, ["ui"]);
    assert_eq!(s.load(&Key::new("big").unwrap()).unwrap().data, vec![7u8; 100_000]);
    assert!(!s.exists(&Key::new("gone").unwrap()).unwrap());
    assert_eq!(s.info().unwrap().entries, 2);
}

#[test]
fn sqlite_two_handles_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prefs.sqlite3");
    let a = SqliteKvStore::open(&path).unwrap();
    let b = SqliteKvStore::open(&path).unwrap();
    let k = Key::new("shared").unwrap();
    let e = a.save(&k, b"from a", &opts()).unwrap();
    assert_eq!(b.load(&k).unwrap().data, b"from a");
    b.save(&k, b"from b", &SaveOptions { if_match: Some(e.hash.clone()), ..opts() }).unwrap();
    assert_eq!(a.load(&k).unwrap().data, b"from b");
    // a's view of the hash is stale now.
    assert_eq!(code(a.save(&k, b"late", &SaveOptions { if_match: Some(e.hash), ..opts() })), "conflict");
    b.batch(&[BatchOp::Delete { key: k.clone() }]).unwrap();
    assert!(!a.exists(&k).unwrap());
    assert_eq!(a.list("", Page::ALL).unwrap().total, 0);

    // Compare-and-swap across the two handles (two pools, like two processes).
    let counter = Key::new("counter").unwrap();
    a.save(&counter, b"0", &opts()).unwrap();
    std::thread::scope(|scope| {
        for s in [&a, &b, &a, &b] {
            let counter = &counter;
            scope.spawn(move || {
                let mut done = 0;
                while done < 10 {
                    let cur = s.load(counter).unwrap();
                    let n: u32 = std::str::from_utf8(&cur.data).unwrap().parse().unwrap();
                    let o = SaveOptions { if_match: Some(cur.entry.hash), ..opts() };
                    match s.save(counter, (n + 1).to_string().as_bytes(), &o) {
                        Ok(_) => done += 1,
                        Err(e) => assert_eq!(e.code(), "conflict"),
                    }
                }
            });
        }
    });
    assert_eq!(b.load(&counter).unwrap().data, b"40");
}

// ---- model test: SQLite (and the decorators) behave exactly like the memory model -------

mod model {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &["a", "a/b", "a/c", "ab", "b", "%", "_x", "a_", "a%"];
    const PREFIXES: &[&str] = &["", "a", "a/", "a_", "%", "_", "b", "z"];
    const VALUES: &[&[u8]] = &[b"", b"one", b"two", &[0, 255, 7]];
    const TAGS: &[&str] = &["red", "blue"];

    #[derive(Clone, Debug)]
    enum IfMatch {
        None,
        Wrong,
        HashOf(usize),
    }

    #[derive(Clone, Debug)]
    struct Put {
        key: usize,
        value: usize,
        create_only: bool,
        if_match: IfMatch,
        compress: bool,
        expired: bool,
        tag: Option<usize>,
    }

    #[derive(Clone, Debug)]
    enum Op {
        Save(Put),
        Delete(usize),
        Batch(Vec<Result<Put, usize>>),
        Load(usize),
        Exists(usize),
        List(usize, usize, Option<usize>),
        Search(Option<usize>, Option<usize>),
        Info,
    }

    fn put_strategy() -> impl Strategy<Value = Put> {
        (
            0..KEYS.len(),
            0..VALUES.len(),
            prop::bool::weighted(0.2),
            prop_oneof![3 => Just(IfMatch::None), 1 => Just(IfMatch::Wrong), 2 => (0..VALUES.len()).prop_map(IfMatch::HashOf)],
            any::<bool>(),
            prop::bool::weighted(0.1),
            prop::option::of(0..TAGS.len()),
        )
            .prop_map(|(key, value, create_only, if_match, compress, expired, tag)| Put {
                key,
                value,
                create_only,
                if_match,
                compress,
                expired,
                tag,
            })
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => put_strategy().prop_map(Op::Save),
            2 => (0..KEYS.len()).prop_map(Op::Delete),
            2 => prop::collection::vec(
                prop_oneof![3 => put_strategy().prop_map(Ok), 1 => (0..KEYS.len()).prop_map(Err)],
                0..5
            )
            .prop_map(Op::Batch),
            2 => (0..KEYS.len()).prop_map(Op::Load),
            1 => (0..KEYS.len()).prop_map(Op::Exists),
            2 => (0..PREFIXES.len(), 0..4usize, prop::option::of(0..4usize)).prop_map(|(p, o, l)| Op::List(p, o, l)),
            1 => (prop::option::of(0..TAGS.len()), prop::option::of(0..KEYS.len())).prop_map(|(t, k)| Op::Search(t, k)),
            1 => Just(Op::Info),
        ]
    }

    fn options(p: &Put) -> SaveOptions {
        SaveOptions {
            create_only: p.create_only,
            if_match: match p.if_match {
                IfMatch::None => None,
                IfMatch::Wrong => Some(content_hash(b"never stored")),
                IfMatch::HashOf(v) => Some(content_hash(VALUES[v])),
            },
            compress: p.compress,
            expiration: p.expired.then(|| "2001-02-03T04:05:06Z".parse().unwrap()),
            tags: p.tag.map(|t| vec![TAGS[t].to_string()]).unwrap_or_default(),
            ..SaveOptions::default()
        }
    }

    fn key(i: usize) -> Key {
        Key::new(KEYS[i]).unwrap()
    }

    /// What a caller can observe about an entry (not its modification time).
    fn seen(e: &Entry) -> String {
        format!("{}|{}|{}|{:?}|{:?}|{}|{:?}", e.key, e.size, e.hash, e.tags, e.expires, e.compressed, e.metadata)
    }

    fn outcome<T>(r: bpv_engine::Result<T>, show: impl FnOnce(T) -> String) -> String {
        match r {
            Ok(v) => format!("ok {}", show(v)),
            Err(e) => format!("err {}", e.code()),
        }
    }

    fn apply<S: Store>(s: &S, op: &Op) -> String {
        match op {
            Op::Save(p) => outcome(s.save(&key(p.key), VALUES[p.value], &options(p)), |e| seen(&e)),
            Op::Delete(k) => outcome(s.delete(&key(*k)), |_| String::new()),
            Op::Batch(ops) => {
                let ops: Vec<BatchOp> = ops
                    .iter()
                    .map(|o| match o {
                        Ok(p) => BatchOp::Put { key: key(p.key), data: VALUES[p.value].to_vec(), options: options(p) },
                        Err(k) => BatchOp::Delete { key: key(*k) },
                    })
                    .collect();
                outcome(s.batch(&ops), |_| String::new())
            }
            Op::Load(k) => outcome(s.load(&key(*k)), |l| format!("{} {:?}", seen(&l.entry), l.data)),
            Op::Exists(k) => outcome(s.exists(&key(*k)), |b| b.to_string()),
            Op::List(p, offset, limit) => {
                let page = Page { offset: *offset, limit: *limit };
                outcome(s.list(PREFIXES[*p], page), |l| {
                    format!("{} {:?}", l.total, l.entries.iter().map(seen).collect::<Vec<_>>())
                })
            }
            Op::Search(tag, k) => {
                let q = StoreQuery {
                    text: k.map(|k| KEYS[k].to_string()).unwrap_or_default(),
                    tags: tag.map(|t| vec![TAGS[t].to_string()]).unwrap_or_default(),
                    ..Default::default()
                };
                outcome(s.search(&q), |hits| format!("{:?}", hits.iter().map(|h| seen(&h.entry)).collect::<Vec<_>>()))
            }
            Op::Info => outcome(s.info(), |i| format!("{} {}", i.entries, i.bytes)),
        }
    }

    /// The full observable state, checked after every step.
    fn state<S: Store>(s: &S) -> BTreeMap<String, String> {
        s.list("", Page::ALL)
            .unwrap()
            .entries
            .iter()
            .map(|e| (e.key.clone(), format!("{} {:?}", seen(e), s.load(&Key::new(&e.key).unwrap()).unwrap().data)))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn sqlite_and_decorators_match_the_memory_model(ops in prop::collection::vec(op_strategy(), 1..30)) {
            let dir = tempfile::tempdir().unwrap();
            let model = MemoryStore::new();
            let sqlite = sqlite_in(dir.path());
            let decorated = Cached::new(
                Namespaced::new(Namespace::folder("ns").unwrap(), MemoryStore::new()),
                CacheConfig { max_entries: 3, max_bytes: 8, ttl: None },
            );
            for (i, op) in ops.iter().enumerate() {
                let want = apply(&model, op);
                prop_assert_eq!(&apply(&sqlite, op), &want, "sqlite, step {} {:?}", i, op);
                prop_assert_eq!(&apply(&decorated, op), &want, "cached+namespaced, step {} {:?}", i, op);
                let expected = state(&model);
                prop_assert_eq!(state(&sqlite), expected.clone(), "sqlite state after step {}", i);
                prop_assert_eq!(state(&decorated), expected, "decorated state after step {}", i);
            }
        }
    }
}
