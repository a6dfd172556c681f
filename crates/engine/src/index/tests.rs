use super::*;
use tempfile::TempDir;

pub(super) fn doc(path: &str, name: &str) -> IndexDoc {
    IndexDoc {
        item: Item {
            path: path.to_owned(),
            id: None,
            name: name.to_owned(),
            description: None,
            tags: vec![],
            author: None,
            version: None,
            modified: "2024-01-01T00:00:00.000Z".to_owned(),
            size: 10,
            hash: format!("h-{path}"),
            encrypted: false,
            valid: true,
            error: None,
            error_line: None,
        },
        mtime_ns: 1_704_067_200_000_000_000,
        meta_mtime_ns: None,
        created: None,
        node_count: 0,
        content: String::new(),
        secret_refs: Vec::new(),
    }
}

fn with(mut d: IndexDoc, f: impl FnOnce(&mut IndexDoc)) -> IndexDoc {
    f(&mut d);
    d
}

fn open_temp() -> (TempDir, Index) {
    let dir = TempDir::new().unwrap();
    let ix = Index::open(&dir.path().join("index.sqlite")).unwrap();
    (dir, ix)
}

fn lq() -> ListQuery {
    ListQuery { limit: 100, ..Default::default() }
}

fn sq(text: &str) -> SearchQuery {
    SearchQuery { text: text.to_owned(), limit: 100, ..Default::default() }
}

fn paths(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.path.as_str()).collect()
}

fn hit_paths(page: &SearchPage) -> Vec<&str> {
    page.hits.iter().map(|h| h.item.path.as_str()).collect()
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn search_paths(ix: &Index, text: &str) -> Vec<String> {
    let mut v: Vec<String> = ix.search(&sq(text)).unwrap().hits.into_iter().map(|h| h.item.path).collect();
    v.sort();
    v
}

// ----------------------------------------------------------------------------- schema

#[test]
fn index_schema_is_created_and_versioned() {
    let (dir, ix) = open_temp();
    drop(ix);
    let conn = Connection::open(dir.path().join("index.sqlite")).unwrap();
    let (version, desc): (i64, String) = conn
        .query_row("SELECT version, description FROM schema_version ORDER BY version DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(version, schema::LATEST);
    assert_eq!(desc, schema::MIGRATIONS[schema::MIGRATIONS.len() - 1].0);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    for table in ["items", "item_tags", "items_fts", "state"] {
        let n: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_schema WHERE name = ?1", [table], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "{table}");
    }
    // Reopening does not re-apply migrations.
    Index::open(&dir.path().join("index.sqlite")).unwrap();
    let rows: i64 = conn.query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, schema::LATEST);
}

#[test]
fn index_rebuild_recreates_the_migrated_fts_schema() {
    let (dir, ix) = open_temp();
    let conn = Connection::open(dir.path().join("index.sqlite")).unwrap();
    let fts_sql = |c: &Connection| -> (String, String) {
        let sql: String =
            c.query_row("SELECT sql FROM sqlite_schema WHERE name = 'items_fts'", [], |r| r.get(0)).unwrap();
        let rank: String = c.query_row("SELECT v FROM items_fts_config WHERE k = 'rank'", [], |r| r.get(0)).unwrap();
        (sql.split_whitespace().collect::<Vec<_>>().join(" "), rank)
    };
    // Every table and index (a rebuild drops the secondary indexes and makes them again).
    let objects = |c: &Connection| -> Vec<(String, String)> {
        let mut stmt = c
            .prepare(
                "SELECT name, coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE 'sqlite_stat%' ORDER BY name",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .unwrap()
            .map(|row| row.map(|(n, sql)| (n, sql.split_whitespace().collect::<Vec<_>>().join(" "))))
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    let migrated = fts_sql(&conn);
    let migrated_objects = objects(&conn);
    ix.rebuild(&[doc("a.blueprint.yaml", "A")]).unwrap();
    let rebuilt = fts_sql(&conn);
    assert_eq!(migrated, rebuilt);
    assert_eq!(rebuilt.1, schema::RANK_FUNCTION);
    assert_eq!(migrated_objects, objects(&conn));
}

#[test]
fn index_reopen_keeps_data() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("sub/index.sqlite");
    {
        let ix = Index::open(&path).unwrap();
        ix.apply(&[doc("a/x.blueprint.yaml", "X")], &[]).unwrap();
        ix.set_state("last_scan", "now").unwrap();
    }
    let ix = Index::open(&path).unwrap();
    assert_eq!(ix.get("a/x.blueprint.yaml").unwrap().unwrap().name, "X");
    assert_eq!(ix.get_state("last_scan").unwrap().as_deref(), Some("now"));
    assert_eq!(ix.get_state("nope").unwrap(), None);
    ix.set_state("last_scan", "later").unwrap();
    assert_eq!(ix.get_state("last_scan").unwrap().as_deref(), Some("later"));
}

#[test]
fn index_garbage_file_is_corrupt() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("index.sqlite");
    std::fs::write(&path, b"this is not a sqlite database, just some text that is long enough ".repeat(100)).unwrap();
    match Index::open(&path) {
        Err(Error::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn index_damaged_database_is_corrupt() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("index.sqlite");
    {
        let ix = Index::open(&path).unwrap();
        let docs: Vec<IndexDoc> = (0..200)
            .map(|i| with(doc(&format!("f/{i}.blueprint.yaml"), "N"), |d| d.content = "x ".repeat(500)))
            .collect();
        ix.rebuild(&docs).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    }
    // Overwrite the middle of the file (b-tree pages), keep the header.
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[4096..len - 4096] {
        *b = 0x5A;
    }
    std::fs::write(&path, &bytes).unwrap();
    let r = Index::open(&path).and_then(|ix| ix.list(&lq()).map(|_| ()));
    assert!(matches!(r, Err(Error::Corrupt(_))), "{r:?}");
}

#[test]
fn index_newer_schema_is_refused() {
    let (dir, ix) = open_temp();
    drop(ix);
    let path = dir.path().join("index.sqlite");
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_version(version, applied_at, description) VALUES (?1, 'x', 'future')",
        [schema::LATEST + 5],
    )
    .unwrap();
    drop(conn);
    match Index::open(&path) {
        Err(Error::Index(msg)) => {
            assert!(msg.contains("newer Blueprint Vault"), "{msg}");
            assert!(msg.contains(&format!("schema {}", schema::LATEST + 5)), "{msg}");
        }
        other => panic!("expected Index error, got {other:?}"),
    }
}

// ----------------------------------------------------------------------------- writes, list

#[test]
fn index_apply_get_remove_and_file_states() {
    let (_d, ix) = open_temp();
    let a = with(doc("p/a.blueprint.yaml", "Alpha"), |d| {
        d.item.tags = vec!["crm".into(), "Slack".into()];
        d.item.id = Some("id-a".into());
        d.item.description = Some("desc".into());
        d.item.author = Some("Ann".into());
        d.item.version = Some("1.2".into());
        d.meta_mtime_ns = Some(5);
    });
    let b = with(doc("p/b.blueprint.yaml", "Beta"), |d| {
        d.item.valid = false;
        d.item.error = Some("line 3: bad".into());
        d.item.error_line = Some(3);
    });
    ix.apply(&[a.clone(), b.clone()], &[]).unwrap();
    assert_eq!(ix.get("p/a.blueprint.yaml").unwrap(), Some(a.item.clone()));
    assert_eq!(ix.get("p/b.blueprint.yaml").unwrap(), Some(b.item.clone()));
    assert_eq!(ix.get("p/c.blueprint.yaml").unwrap(), None);
    let states = ix.file_states().unwrap();
    assert_eq!(states.len(), 2);
    assert_eq!(
        states["p/a.blueprint.yaml"],
        FileState { size: 10, mtime_ns: a.mtime_ns, meta_mtime_ns: Some(5), hash: "h-p/a.blueprint.yaml".into() }
    );
    assert_eq!(ix.invalid().unwrap(), vec![b.item.clone()]);
    assert_eq!(ix.stats().unwrap(), IndexStats { items: 2, invalid: 1, encrypted: 0, bytes: 20 });

    // Update in place: new name, tags and content replace the old ones everywhere.
    let a2 = with(a.clone(), |d| {
        d.item.name = "Gamma".into();
        d.item.tags = vec!["ops".into()];
        d.content = "kettle".into();
    });
    ix.apply(std::slice::from_ref(&a2), &["p/b.blueprint.yaml".into(), "never/was.blueprint.yaml".into()]).unwrap();
    assert_eq!(ix.get("p/a.blueprint.yaml").unwrap(), Some(a2.item.clone()));
    assert_eq!(ix.get("p/b.blueprint.yaml").unwrap(), None);
    assert!(search_paths(&ix, "alpha").is_empty());
    assert_eq!(search_paths(&ix, "gamma"), sorted(&["p/a.blueprint.yaml"]));
    assert_eq!(search_paths(&ix, "kettle"), sorted(&["p/a.blueprint.yaml"]));
    assert_eq!(ix.tag_counts(None).unwrap(), vec![TagCount { tag: "ops".into(), count: 1 }]);
    assert!(ix.invalid().unwrap().is_empty());
    assert_eq!(ix.stats().unwrap().items, 1);

    // Rebuild replaces everything.
    ix.rebuild(&[doc("z.blueprint.yaml", "Zed"), doc("y.blueprint.yaml", "Why")]).unwrap();
    assert_eq!(ix.get("p/a.blueprint.yaml").unwrap(), None);
    assert_eq!(paths(&ix.list(&lq()).unwrap().items), vec!["y.blueprint.yaml", "z.blueprint.yaml"]);
    assert!(search_paths(&ix, "gamma").is_empty());
    assert_eq!(search_paths(&ix, "zed"), sorted(&["z.blueprint.yaml"]));
}

#[test]
fn index_rebuild_with_duplicate_paths_keeps_the_last() {
    let (_d, ix) = open_temp();
    ix.rebuild(&[doc("a.blueprint.yaml", "First"), doc("a.blueprint.yaml", "Second")]).unwrap();
    assert_eq!(ix.get("a.blueprint.yaml").unwrap().unwrap().name, "Second");
    assert_eq!(ix.stats().unwrap().items, 1);
}

fn folder_fixture() -> (TempDir, Index) {
    let (d, ix) = open_temp();
    let docs = vec![
        doc("top.blueprint.yaml", "Top"),
        doc("Blueprints/shared/a.blueprint.yaml", "a"),
        doc("Blueprints/shared/deep/b.blueprint.yaml", "B"),
        doc("Blueprints/sharedX/c.blueprint.yaml", "C"),
        doc("Blueprints/shared-d/d.blueprint.yaml", "D"),
        doc("Blueprints/100%_x/e.blueprint.yaml", "E"),
        doc("Blueprints/100ab_x/f.blueprint.yaml", "F"),
        doc("Blueprints/st*r/g.blueprint.yaml", "G"),
        doc("Blueprints/stAr/h.blueprint.yaml", "H"),
        doc("Blueprints/s_x/i.blueprint.yaml", "I"),
        doc("Blueprints/sax/j.blueprint.yaml", "J"),
    ];
    ix.rebuild(&docs).unwrap();
    (d, ix)
}

#[test]
fn index_list_folder_prefix_is_literal() {
    let (_d, ix) = folder_fixture();
    let list = |folder: &str| {
        let page = ix.list(&ListQuery { folder: Some(folder.into()), ..lq() }).unwrap();
        assert_eq!(page.total, page.items.len());
        let mut p: Vec<String> = page.items.into_iter().map(|i| i.path).collect();
        p.sort();
        p
    };
    assert_eq!(
        list("Blueprints/shared"),
        vec!["Blueprints/shared/a.blueprint.yaml", "Blueprints/shared/deep/b.blueprint.yaml"]
    );
    assert_eq!(list("Blueprints/shared/"), list("Blueprints/shared"));
    assert_eq!(list("Blueprints/shared/deep"), vec!["Blueprints/shared/deep/b.blueprint.yaml"]);
    assert_eq!(list("Blueprints/100%_x"), vec!["Blueprints/100%_x/e.blueprint.yaml"]);
    assert_eq!(list("Blueprints/st*r"), vec!["Blueprints/st*r/g.blueprint.yaml"]);
    assert_eq!(list("Blueprints/s_x"), vec!["Blueprints/s_x/i.blueprint.yaml"]);
    assert_eq!(list("Blueprints/100%"), Vec::<String>::new());
    assert_eq!(list("Blueprints/s"), Vec::<String>::new());
    assert_eq!(list("Blueprints").len(), 10);
    assert_eq!(list("").len(), 11);
    assert_eq!(ix.list(&lq()).unwrap().total, 11);
}

#[test]
fn index_list_sort_paging_and_filters() {
    let (_d, ix) = open_temp();
    let mk = |path: &str, name: &str, ms: &str, tags: &[&str], author: Option<&str>| {
        with(doc(path, name), |d| {
            d.item.modified = format!("2024-01-0{ms}T00:00:00.000Z");
            d.item.tags = tags.iter().map(|t| t.to_string()).collect();
            d.item.author = author.map(str::to_owned);
        })
    };
    let docs = vec![
        mk("f/1.blueprint.yaml", "banana", "3", &["crm", "slack"], Some("Ann")),
        mk("f/2.blueprint.yaml", "Apple", "1", &["CRM"], Some("bob")),
        mk("f/3.blueprint.yaml", "cherry", "5", &["slack"], None),
        mk("g/4.blueprint.yaml", "apple", "4", &["Crm", "Slack"], Some("ANN")),
        with(mk("g/5.blueprint.yaml", "Date", "2", &[], None), |d| {
            d.item.valid = false;
            d.item.error = Some("bad".into());
        }),
    ];
    ix.apply(&docs, &[]).unwrap();
    let l = |q: ListQuery| {
        let page = ix.list(&q).unwrap();
        (paths(&page.items).into_iter().map(str::to_owned).collect::<Vec<_>>(), page.total)
    };
    // Name: case-insensitive, then path.
    assert_eq!(
        l(lq()).0,
        vec![
            "f/2.blueprint.yaml",
            "g/4.blueprint.yaml",
            "f/1.blueprint.yaml",
            "f/3.blueprint.yaml",
            "g/5.blueprint.yaml"
        ]
    );
    // Modified: newest first.
    assert_eq!(
        l(ListQuery { sort: Sort::Modified, ..lq() }).0,
        vec![
            "f/3.blueprint.yaml",
            "g/4.blueprint.yaml",
            "f/1.blueprint.yaml",
            "g/5.blueprint.yaml",
            "f/2.blueprint.yaml"
        ]
    );
    // Paging.
    assert_eq!(
        l(ListQuery { offset: 1, limit: 2, ..lq() }),
        (vec!["g/4.blueprint.yaml".to_owned(), "f/1.blueprint.yaml".to_owned()], 5)
    );
    assert_eq!(l(ListQuery { offset: 10, limit: 2, ..lq() }), (vec![], 5));
    assert_eq!(l(ListQuery { limit: 0, ..lq() }), (vec![], 5));
    // Tags: all must match, case-insensitive.
    assert_eq!(l(ListQuery { tags: vec!["crm".into()], ..lq() }).1, 3);
    assert_eq!(
        l(ListQuery { tags: vec!["SLACK".into(), "crm".into()], ..lq() }).0,
        vec!["g/4.blueprint.yaml", "f/1.blueprint.yaml"]
    );
    assert_eq!(l(ListQuery { tags: vec!["slack".into(), "nope".into()], ..lq() }).1, 0);
    // Author, case-insensitive equality.
    assert_eq!(l(ListQuery { author: Some("ann".into()), ..lq() }).0, vec!["g/4.blueprint.yaml", "f/1.blueprint.yaml"]);
    // Modified range (ms, inclusive).
    let day =
        |d: u32| chrono::DateTime::parse_from_rfc3339(&format!("2024-01-0{d}T00:00:00Z")).unwrap().timestamp_millis();
    assert_eq!(
        l(ListQuery { modified_from: Some(day(2)), modified_to: Some(day(4)), sort: Sort::Modified, ..lq() }).0,
        vec!["g/4.blueprint.yaml", "f/1.blueprint.yaml", "g/5.blueprint.yaml"]
    );
    // Validity.
    assert_eq!(l(ListQuery { valid: Some(false), ..lq() }).0, vec!["g/5.blueprint.yaml"]);
    assert_eq!(l(ListQuery { valid: Some(true), ..lq() }).1, 4);
    // Combined with a folder.
    assert_eq!(
        l(ListQuery { folder: Some("f".into()), tags: vec!["slack".into()], ..lq() }).0,
        vec!["f/1.blueprint.yaml", "f/3.blueprint.yaml"]
    );
    // A huge limit (as callers pass for "everything") works.
    assert_eq!(l(ListQuery { limit: usize::MAX >> 1, ..lq() }).0.len(), 5);
    assert_eq!(l(ListQuery { limit: usize::MAX, offset: usize::MAX, ..lq() }).0.len(), 0);
}

#[test]
fn index_tag_counts_and_folders() {
    let (_d, ix) = open_temp();
    let t = |path: &str, tags: &[&str]| {
        with(doc(path, "n"), |d| d.item.tags = tags.iter().map(|t| t.to_string()).collect())
    };
    ix.apply(
        &[
            t("a/x/1.blueprint.yaml", &["crm", "slack"]),
            t("a/x/2.blueprint.yaml", &["crm"]),
            t("a/y/3.blueprint.yaml", &["CRM", "ops"]),
            t("b/4.blueprint.yaml", &["ops", "zeta"]),
            t("5.blueprint.yaml", &["alpha"]),
        ],
        &[],
    )
    .unwrap();
    let tc = |tag: &str, count: u64| TagCount { tag: tag.into(), count };
    assert_eq!(
        ix.tag_counts(None).unwrap(),
        vec![tc("crm", 3), tc("ops", 2), tc("alpha", 1), tc("slack", 1), tc("zeta", 1)]
    );
    assert_eq!(ix.tag_counts(Some("a/x")).unwrap(), vec![tc("crm", 2), tc("slack", 1)]);
    assert_eq!(ix.tag_counts(Some("a")).unwrap(), vec![tc("crm", 3), tc("ops", 1), tc("slack", 1)]);
    assert_eq!(ix.tag_counts(Some("nope")).unwrap(), vec![]);
    let fc = |path: &str, count: u64| FolderCount { path: path.into(), count };
    assert_eq!(ix.folders().unwrap(), vec![fc("a", 3), fc("a/x", 2), fc("a/y", 1), fc("b", 1)]);
}

#[test]
fn index_two_handles_see_each_others_writes() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("index.sqlite");
    let one = Index::open(&path).unwrap();
    let two = Index::open(&path).unwrap();
    one.apply(&[doc("a.blueprint.yaml", "From one")], &[]).unwrap();
    assert_eq!(two.get("a.blueprint.yaml").unwrap().unwrap().name, "From one");
    two.apply(&[doc("b.blueprint.yaml", "From two")], &["a.blueprint.yaml".into()]).unwrap();
    assert_eq!(one.list(&lq()).unwrap().total, 1);
    assert_eq!(search_paths(&one, "two"), sorted(&["b.blueprint.yaml"]));
    two.rebuild(&[doc("c.blueprint.yaml", "Rebuilt")]).unwrap();
    assert_eq!(search_paths(&one, "rebuilt"), sorted(&["c.blueprint.yaml"]));
    one.set_state("k", "v").unwrap();
    assert_eq!(two.get_state("k").unwrap().as_deref(), Some("v"));
}

#[test]
fn index_concurrent_writers_and_readers() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("index.sqlite");
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let ix = Index::open(&path).unwrap();
            std::thread::spawn(move || {
                for i in 0..25 {
                    ix.apply(&[doc(&format!("t{t}/{i}.blueprint.yaml"), "word")], &[]).unwrap();
                    ix.search(&sq("word")).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let ix = Index::open(&path).unwrap();
    assert_eq!(ix.search(&sq("word")).unwrap().total, 100);
}

// ----------------------------------------------------------------------------- search

fn search_fixture() -> (TempDir, Index) {
    let (d, ix) = open_temp();
    let docs = vec![
        with(doc("Blueprints/sales/digest.blueprint.yaml", "Daily sales digest"), |d| {
            d.item.description = Some("Summarise yesterday's CRM deals and post them to Slack".into());
            d.item.tags = vec!["crm".into(), "slack".into()];
            d.item.author = Some("Ann Lee".into());
            d.content = "fetch\nhttp.request\nsummarize\nllm.prompt\nWrite a short summary of the deals\npost".into();
        }),
        with(doc("Blueprints/sales/router.blueprint.yaml", "Lead router"), |d| {
            d.item.description = Some("Route new leads to the right owner".into());
            d.item.tags = vec!["crm".into()];
            d.item.author = Some("Bob".into());
            d.content = "webhook\nassign\nsales team round robin".into();
        }),
        with(doc("Blueprints/cafe/menu.blueprint.yaml", "Café menu sync"), |d| {
            d.item.description = Some("Crème brûlée prices".into());
            d.item.tags = vec!["Menü".into()];
        }),
        with(doc("Blueprints/jp/tower.blueprint.yaml", "東京タワー監視"), |d| {
            d.item.description = Some("東京tower の監視".into());
        }),
        with(doc("Blueprints/cn/report.blueprint.yaml", "北京销售日报"), |d| {
            d.content = "每天发送销售报告".into();
        }),
        with(doc("Blueprints/kr/report.blueprint.yaml", "서울 판매 보고서"), |d| {
            d.item.description = Some("매일 판매 데이터를 요약합니다".into());
        }),
        with(doc("Blueprints/misc/ops.blueprint.yaml", "Nightly backup (ops)"), |d| {
            d.item.description = Some("Copy AND verify: NOT optional; see NEAR(a b) * ^ col:x".into());
            d.content = "sales_digest helper\nsales-digest".into();
        }),
    ];
    ix.rebuild(&docs).unwrap();
    (d, ix)
}

const DIGEST: &str = "Blueprints/sales/digest.blueprint.yaml";
const ROUTER: &str = "Blueprints/sales/router.blueprint.yaml";
const CAFE: &str = "Blueprints/cafe/menu.blueprint.yaml";
const TOWER: &str = "Blueprints/jp/tower.blueprint.yaml";
const CN: &str = "Blueprints/cn/report.blueprint.yaml";
const KR: &str = "Blueprints/kr/report.blueprint.yaml";
const OPS: &str = "Blueprints/misc/ops.blueprint.yaml";

#[test]
fn index_search_case_and_and_semantics() {
    let (_d, ix) = search_fixture();
    assert_eq!(search_paths(&ix, "DAILY"), sorted(&[DIGEST]));
    assert_eq!(search_paths(&ix, "daily Slack"), sorted(&[DIGEST]));
    assert_eq!(search_paths(&ix, "daily router"), Vec::<String>::new());
    // Any column: tags, description, author, content.
    assert_eq!(search_paths(&ix, "crm "), sorted(&[DIGEST, ROUTER]));
    assert_eq!(search_paths(&ix, "owner "), sorted(&[ROUTER]));
    assert_eq!(search_paths(&ix, "bob "), sorted(&[ROUTER]));
    assert_eq!(search_paths(&ix, "robin "), sorted(&[ROUTER]));
    assert_eq!(search_paths(&ix, "summary "), sorted(&[DIGEST]));
}

#[test]
fn index_search_prefix_only_on_last_term() {
    let (_d, ix) = search_fixture();
    assert_eq!(search_paths(&ix, "dig"), sorted(&[DIGEST, OPS]));
    assert_eq!(search_paths(&ix, "dig "), Vec::<String>::new());
    assert_eq!(search_paths(&ix, "dai sales"), Vec::<String>::new());
    assert_eq!(search_paths(&ix, "daily sal"), sorted(&[DIGEST]));
    assert_eq!(search_paths(&ix, "rout"), sorted(&[ROUTER]));
    assert_eq!(search_paths(&ix, "r"), sorted(&[DIGEST, ROUTER]));
}

#[test]
fn index_search_phrases_and_split_terms() {
    let (_d, ix) = search_fixture();
    assert_eq!(search_paths(&ix, "\"daily sales\""), sorted(&[DIGEST]));
    assert_eq!(search_paths(&ix, "\"sales daily\""), Vec::<String>::new());
    assert_eq!(search_paths(&ix, "\"sales digest\" "), sorted(&[DIGEST, OPS]));
    // Split like the tokenizer, matched as a phrase.
    assert_eq!(search_paths(&ix, "sales-digest"), sorted(&[DIGEST, OPS]));
    assert_eq!(search_paths(&ix, "sales_digest "), sorted(&[DIGEST, OPS]));
    assert_eq!(search_paths(&ix, "yesterday's "), sorted(&[DIGEST]));
    assert_eq!(search_paths(&ix, "round-rob"), sorted(&[ROUTER]));
}

#[test]
fn index_search_hostile_syntax_never_errors() {
    let (_d, ix) = search_fixture();
    for q in [
        "AND",
        "OR",
        "NOT",
        "NEAR",
        "a AND",
        "NOT sales",
        "sales OR",
        "NEAR(sales digest)",
        "*",
        "sales*",
        "^sales",
        "name:sales",
        "col:x",
        "(",
        ")",
        "((sales",
        "\"",
        "\"\"",
        "\"sales",
        "sales\"",
        "sa\"les",
        "-sales",
        "+",
        "'",
        "{name}: x",
        "sales NOT",
        "\u{200B}",
        "\0",
        "\\",
        "%",
        "_",
        "ー",
        "ั",
        "a\u{301}",
        "🙂",
        "NEAR/2",
    ] {
        let r = ix.search(&sq(q));
        assert!(r.is_ok(), "{q:?}: {r:?}");
    }
    // Very long queries (pasted text) work too.
    let long: String = (0..600).map(|i| format!("w{i} ")).collect();
    assert_eq!(ix.search(&sq(&long)).unwrap().total, 0);
    let long: String = std::iter::repeat_n("daily ", 600).collect();
    assert_eq!(search_paths(&ix, &long), sorted(&[DIGEST]));
    // Operators are plain words: "NOT sales" needs the word "not".
    assert_eq!(search_paths(&ix, "NOT optional"), sorted(&[OPS]));
    assert_eq!(search_paths(&ix, "copy AND verify"), sorted(&[OPS]));
    assert_eq!(search_paths(&ix, "sales OR lead"), Vec::<String>::new());
    assert_eq!(search_paths(&ix, "NEAR(sales"), Vec::<String>::new());
    assert_eq!(search_paths(&ix, "col:x"), sorted(&[OPS]));
    assert_eq!(search_paths(&ix, "\"daily sales"), sorted(&[DIGEST]));
    // No searchable token: the filtered list, by name, score 0.
    let page = ix.search(&sq(" * ( \" ")).unwrap();
    assert_eq!(page.total, 7);
    assert!(page.hits.iter().all(|h| h.score == 0.0 && h.snippet.is_none()));
    assert_eq!(page.hits[0].item.name, "Café menu sync");
    let page = ix.search(&SearchQuery { folder: Some("Blueprints/sales".into()), ..sq("") }).unwrap();
    assert_eq!(hit_paths(&page), vec![DIGEST, ROUTER]);
}

#[test]
fn index_search_diacritics_fold() {
    let (_d, ix) = search_fixture();
    assert_eq!(search_paths(&ix, "cafe"), sorted(&[CAFE]));
    assert_eq!(search_paths(&ix, "CAFÉ"), sorted(&[CAFE]));
    assert_eq!(search_paths(&ix, "creme brulee"), sorted(&[CAFE]));
    assert_eq!(search_paths(&ix, "menu "), sorted(&[CAFE]));
    // Decomposed input composes to the same thing.
    assert_eq!(search_paths(&ix, "cafe\u{301}"), sorted(&[CAFE]));
}

#[test]
fn index_search_japanese_and_chinese_substrings() {
    let (_d, ix) = search_fixture();
    for q in ["東京", "タワー", "監視", "京タ", "東京タワー監視", "ワ", "視"] {
        assert_eq!(search_paths(&ix, q), sorted(&[TOWER]), "{q}");
    }
    assert_eq!(search_paths(&ix, "東京tower"), sorted(&[TOWER]));
    assert_eq!(search_paths(&ix, "東京tow"), sorted(&[TOWER]));
    assert_eq!(search_paths(&ix, "京tower の"), sorted(&[TOWER]));
    assert_eq!(search_paths(&ix, "タワー 監視"), sorted(&[TOWER]));
    assert_eq!(search_paths(&ix, "\"監視 東京\""), Vec::<String>::new());
    assert_eq!(search_paths(&ix, "京東"), Vec::<String>::new());
    for q in ["北京", "销售", "日报", "售日", "报告", "发送"] {
        assert_eq!(search_paths(&ix, q), sorted(&[CN]), "{q}");
    }
    // Halfwidth katakana is indexed character by character too.
    ix.apply(&[doc("hw.blueprint.yaml", "ﾃｽﾄ通知")], &[]).unwrap();
    assert_eq!(search_paths(&ix, "ｽﾄ"), sorted(&["hw.blueprint.yaml"]));
    assert_eq!(search_paths(&ix, "通知"), sorted(&["hw.blueprint.yaml"]));
}

#[test]
fn index_search_korean() {
    let (_d, ix) = search_fixture();
    for q in ["서울", "판매", "보고", "보고서", "고서", "요약", "데이터", "판매 보고서"] {
        assert_eq!(search_paths(&ix, q), sorted(&[KR]), "{q}");
    }
}

#[test]
fn index_search_thai() {
    let (_d, ix) = open_temp();
    ix.apply(&[doc("th.blueprint.yaml", "รายงานยอดขายประจำวัน")], &[]).unwrap();
    for q in ["ยอดขาย", "รายงาน", "ประจำวัน", "ขาย"] {
        assert_eq!(search_paths(&ix, q), sorted(&["th.blueprint.yaml"]), "{q}");
    }
}

#[test]
fn index_search_ranks_name_above_content() {
    let (_d, ix) = open_temp();
    let heavy = with(doc("content.blueprint.yaml", "Other thing"), |d| {
        d.content = std::iter::repeat_n("invoice", 200).collect::<Vec<_>>().join("\n");
        d.item.description = Some("processes things".into());
    });
    let light = with(doc("medium.blueprint.yaml", "Something"), |d| {
        d.content = "invoice invoice invoice and a few other words here".into();
    });
    let named = with(doc("name.blueprint.yaml", "Invoice reminder"), |d| {
        d.content = "fetch\nmail\nsend reminders to customers who have not paid on time".into();
        d.item.description = Some("Sends a friendly reminder every week to each customer".into());
    });
    let tagged = with(doc("tag.blueprint.yaml", "Billing"), |d| d.item.tags = vec!["invoice".into()]);
    let described =
        with(doc("desc.blueprint.yaml", "Billing 2"), |d| d.item.description = Some("an invoice helper".into()));
    ix.rebuild(&[heavy, light, named, tagged, described]).unwrap();
    let page = ix.search(&sq("invoice")).unwrap();
    assert_eq!(page.total, 5);
    let order = hit_paths(&page);
    assert_eq!(order[0], "name.blueprint.yaml", "{order:?}");
    assert_eq!(order[1], "tag.blueprint.yaml", "{order:?}");
    assert_eq!(order[2], "desc.blueprint.yaml", "{order:?}");
    for w in page.hits.windows(2) {
        assert!(w[0].score >= w[1].score && w[1].score > 0.0, "{:?}", page.hits);
    }
}

#[test]
fn index_search_snippets() {
    let (_d, ix) = search_fixture();
    let page = ix.search(&sq("yesterday")).unwrap();
    let snip = page.hits[0].snippet.clone().unwrap();
    assert!(snip.contains("<mark>yesterday</mark>"), "{snip}");
    let page = ix.search(&sq("\"daily sales\"")).unwrap();
    let snip = page.hits[0].snippet.clone().unwrap();
    assert!(snip.contains("<mark>Daily sales</mark>"), "{snip}");
    let page = ix.search(&sq("東京")).unwrap();
    let snip = page.hits[0].snippet.clone().unwrap();
    assert!(!snip.contains('\u{200B}'), "{snip}");
    assert!(snip.contains("<mark>東京</mark>"), "{snip}");
    let page = ix.search(&sq("cafe")).unwrap();
    assert!(page.hits[0].snippet.as_deref().unwrap().contains("<mark>Café</mark>"), "{:?}", page.hits[0]);
    let page = ix.search(&sq("round")).unwrap();
    let snip = page.hits[0].snippet.clone().unwrap();
    assert!(!snip.contains('\n') && snip.contains("<mark>round</mark>"), "{snip}");
    // A long text is cut to an excerpt.
    let long = with(doc("long.blueprint.yaml", "Long"), |d| {
        d.content = format!("{} needle {}", "word ".repeat(200), "word ".repeat(200));
    });
    ix.apply(&[long], &[]).unwrap();
    let page = ix.search(&sq("needle")).unwrap();
    let snip = page.hits[0].snippet.clone().unwrap();
    assert!(snip.contains("<mark>needle</mark>") && snip.len() < 120, "{snip}");
}

#[test]
fn index_search_filters_and_paging() {
    let (_d, ix) = search_fixture();
    let base = sq("crm ");
    let p = |q: SearchQuery| {
        let mut v: Vec<String> = ix.search(&q).unwrap().hits.into_iter().map(|h| h.item.path).collect();
        v.sort();
        v
    };
    assert_eq!(p(SearchQuery { tags: vec!["SLACK".into()], ..base.clone() }), vec![DIGEST]);
    assert_eq!(p(SearchQuery { author: Some("bob".into()), ..base.clone() }), vec![ROUTER]);
    assert_eq!(p(SearchQuery { folder: Some("Blueprints/sales".into()), ..base.clone() }), vec![DIGEST, ROUTER]);
    assert_eq!(p(SearchQuery { folder: Some("Blueprints/sal".into()), ..base.clone() }), Vec::<String>::new());
    let day = chrono::DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap().timestamp_millis();
    assert_eq!(p(SearchQuery { modified_from: Some(day + 1), ..base.clone() }), Vec::<String>::new());
    assert_eq!(p(SearchQuery { modified_from: Some(day), modified_to: Some(day), ..base.clone() }).len(), 2);
    // Paging: total counts all matches.
    assert_eq!(ix.search(&sq("blueprint OR r")).unwrap().total, 0);
    let all = ix.search(&sq("sales ")).unwrap();
    assert_eq!(all.total, 3);
    let mut paged = Vec::new();
    for offset in 0..3 {
        let page = ix.search(&SearchQuery { offset, limit: 1, ..sq("sales ") }).unwrap();
        assert_eq!(page.total, 3);
        assert_eq!(page.hits.len(), 1);
        paged.push(page.hits[0].item.path.clone());
    }
    assert_eq!(paged, hit_paths(&all));
    let page = ix.search(&SearchQuery { offset: 1, limit: 5, ..sq("sales ") }).unwrap();
    assert_eq!(hit_paths(&page), hit_paths(&all)[1..].to_vec());
    assert!(ix.search(&SearchQuery { offset: 3, limit: 1, ..sq("sales ") }).unwrap().hits.is_empty());
}

#[test]
fn index_search_hit_serializes_flat() {
    let (_d, ix) = search_fixture();
    let page = ix.search(&sq("router")).unwrap();
    let v = serde_json::to_value(&page.hits[0]).unwrap();
    assert_eq!(v["path"], ROUTER);
    assert!(v["score"].as_f64().unwrap() > 0.0);
    assert!(v["snippet"].as_str().unwrap().contains("<mark>"));
}

// ----------------------------------------------------------------------------- cross-checks

/// A few hundred varied docs: lists and filtered searches are compared with a
/// brute-force evaluation in Rust (this exercises both list plans: walking the sort
/// index, and collecting then sorting).
fn varied_docs() -> Vec<IndexDoc> {
    let folders = ["a", "a/b", "a/b/c", "a%", "a_b", "b", ""];
    let tags = ["crm", "CRM", "slack", "ops", "Ops", "x"];
    let words = ["alpha", "beta", "gamma", "delta", "sales", "report", "digest"];
    (0..300)
        .map(|i| {
            let folder = folders[i % folders.len()];
            let path =
                if folder.is_empty() { format!("{i}.blueprint.yaml") } else { format!("{folder}/{i}.blueprint.yaml") };
            with(doc(&path, &format!("{} {}", words[i % 7], words[(i / 7) % 7])), |d| {
                d.item.tags = (0..i % 3).map(|k| tags[(i + k) % tags.len()].to_owned()).collect();
                d.item.author = if i % 4 == 0 { None } else { Some(["Ann", "ann", "Bob"][i % 3].to_owned()) };
                d.item.modified = format!("2024-01-{:02}T00:00:00.000Z", 1 + i % 28);
                d.item.valid = i % 11 != 0;
                d.content = format!("{} node {}", words[(i / 3) % 7], words[(i / 5) % 7]);
            })
        })
        .collect()
}

fn brute_filter(d: &IndexDoc, folder: Option<&str>, tags: &[&str], author: Option<&str>, valid: Option<bool>) -> bool {
    folder.is_none_or(|f| d.item.path.starts_with(&format!("{f}/")))
        && tags.iter().all(|t| d.item.tags.iter().any(|x| x.to_lowercase() == t.to_lowercase()))
        && author.is_none_or(|a| d.item.author.as_deref().is_some_and(|x| x.to_lowercase() == a.to_lowercase()))
        && valid.is_none_or(|v| d.item.valid == v)
}

#[test]
fn index_list_and_search_match_brute_force() {
    let (_d, ix) = open_temp();
    let docs = varied_docs();
    ix.rebuild(&docs).unwrap();
    type Case<'a> = (Option<&'a str>, Vec<&'a str>, Option<&'a str>, Option<bool>);
    let cases: Vec<Case> = vec![
        (None, vec![], None, None),
        (Some("a"), vec![], None, None),
        (Some("a/b"), vec![], None, None),
        (Some("a%"), vec![], None, None),
        (Some("a_b"), vec![], None, None),
        (None, vec!["crm"], None, None),
        (None, vec!["crm", "slack"], None, None),
        (Some("a"), vec!["ops"], Some("ANN"), None),
        (None, vec![], Some("bob"), Some(true)),
        (None, vec![], None, Some(false)),
    ];
    for (folder, tags, author, valid) in cases {
        let expected: Vec<&IndexDoc> = docs.iter().filter(|d| brute_filter(d, folder, &tags, author, valid)).collect();
        for sort in [Sort::Name, Sort::Modified] {
            let mut want: Vec<&IndexDoc> = expected.clone();
            match sort {
                Sort::Name => want.sort_by(|a, b| {
                    (a.item.name.to_lowercase(), &a.item.path).cmp(&(b.item.name.to_lowercase(), &b.item.path))
                }),
                Sort::Modified => {
                    want.sort_by(|a, b| b.item.modified.cmp(&a.item.modified).then(a.item.path.cmp(&b.item.path)))
                }
            }
            let want: Vec<&str> = want.iter().map(|d| d.item.path.as_str()).collect();
            for (offset, limit) in [(0, 10), (5, 7), (0, 1000)] {
                let q = ListQuery {
                    folder: folder.map(str::to_owned),
                    tags: tags.iter().map(|t| t.to_string()).collect(),
                    author: author.map(str::to_owned),
                    valid,
                    sort,
                    offset,
                    limit,
                    ..Default::default()
                };
                let page = ix.list(&q).unwrap();
                assert_eq!(page.total, want.len(), "{q:?}");
                let end = (offset + limit).min(want.len());
                let want_page = if offset < end { &want[offset..end] } else { &[][..] };
                assert_eq!(paths(&page.items), want_page, "{q:?}");
            }
        }
        if valid.is_some() {
            continue;
        }
        // Search with the same filters: totals match a brute-force count, pages are
        // consistent with the full ranking.
        for text in ["sales", "alpha beta", "node", "dig", "\"sales report\""] {
            let words: Vec<String> = text.trim_matches('"').split(' ').map(str::to_owned).collect();
            let phrase = text.starts_with('"');
            let matches = |d: &IndexDoc| {
                let hay = format!("{} {} {}", d.item.name, d.item.tags.join(" "), d.content).to_lowercase();
                let toks: Vec<&str> = hay.split(' ').collect();
                if phrase {
                    hay.contains(&words.join(" "))
                } else {
                    words.iter().enumerate().all(|(k, w)| {
                        toks.iter().any(|t| if k + 1 == words.len() { t.starts_with(w.as_str()) } else { t == w })
                    })
                }
            };
            let want = expected.iter().filter(|d| matches(d)).count();
            let q = SearchQuery {
                text: text.to_owned(),
                folder: folder.map(str::to_owned),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                author: author.map(str::to_owned),
                limit: 1000,
                ..Default::default()
            };
            let all = ix.search(&q).unwrap();
            assert_eq!(all.total, want, "{q:?}");
            assert_eq!(all.hits.len(), want, "{q:?}");
            for h in &all.hits {
                assert!(h.score > 0.0);
                let d = docs.iter().find(|d| d.item.path == h.item.path).unwrap();
                assert!(brute_filter(d, folder, &tags, author, None), "{q:?} {}", h.item.path);
            }
            let page = ix.search(&SearchQuery { offset: 3, limit: 4, ..q.clone() }).unwrap();
            assert_eq!(page.total, want);
            let expect: Vec<&str> = hit_paths(&all).into_iter().skip(3).take(4).collect();
            assert_eq!(hit_paths(&page), expect, "{q:?}");
            let none = ix.search(&SearchQuery { limit: 0, ..q.clone() }).unwrap();
            assert_eq!((none.total, none.hits.len()), (want, 0));
        }
    }
}

#[test]
fn index_apply_keeps_rowids_consistent_when_names_change_length() {
    let (_d, ix) = open_temp();
    ix.rebuild(&[doc("a.blueprint.yaml", "one"), doc("b.blueprint.yaml", "two words")]).unwrap();
    // Renames that change the name's token count move the row to another rowid.
    for round in 0..5 {
        let name = vec!["word"; round + 1].join(" ");
        ix.apply(&[with(doc("a.blueprint.yaml", &name), |d| d.item.tags = vec![format!("t{round}")])], &[]).unwrap();
        assert_eq!(ix.get("a.blueprint.yaml").unwrap().unwrap().name, name);
        assert_eq!(search_paths(&ix, "word "), sorted(&["a.blueprint.yaml"]));
        assert_eq!(ix.tag_counts(None).unwrap(), vec![TagCount { tag: format!("t{round}"), count: 1 }]);
        assert_eq!(ix.list(&lq()).unwrap().total, 2);
    }
    // New items land in buckets that already hold rows.
    ix.apply(&[doc("c.blueprint.yaml", "two words"), doc("d.blueprint.yaml", "two words")], &[]).unwrap();
    assert_eq!(search_paths(&ix, "two "), sorted(&["b.blueprint.yaml", "c.blueprint.yaml", "d.blueprint.yaml"]));
    ix.apply(&[], &["c.blueprint.yaml".into()]).unwrap();
    assert_eq!(search_paths(&ix, "two "), sorted(&["b.blueprint.yaml", "d.blueprint.yaml"]));
    // The same path twice in one batch: the last wins.
    ix.apply(&[doc("e.blueprint.yaml", "first"), doc("e.blueprint.yaml", "second version")], &[]).unwrap();
    assert_eq!(ix.get("e.blueprint.yaml").unwrap().unwrap().name, "second version");
    assert!(search_paths(&ix, "first ").is_empty());
    assert_eq!(ix.stats().unwrap().items, 4);
}

#[test]
fn index_search_ranks_shorter_and_leading_names_first() {
    let (_d, ix) = open_temp();
    ix.rebuild(&[
        doc("long.blueprint.yaml", "Weekly digest of all the support tickets for the EMEA region"),
        doc("mid.blueprint.yaml", "Daily sales digest"),
        doc("short.blueprint.yaml", "Digest"),
        doc("lead.blueprint.yaml", "Digest of leads"),
    ])
    .unwrap();
    let page = ix.search(&sq("digest")).unwrap();
    assert_eq!(
        hit_paths(&page),
        vec!["short.blueprint.yaml", "lead.blueprint.yaml", "mid.blueprint.yaml", "long.blueprint.yaml"]
    );
}

#[test]
fn index_search_idf_prefers_the_rarer_word_in_the_name() {
    let (_d, ix) = open_temp();
    let mut docs: Vec<IndexDoc> = (0..50)
        .map(|i| with(doc(&format!("f{i}.blueprint.yaml"), "filler"), |d| d.content = "common".into()))
        .collect();
    docs.push(with(doc("rare-in-name.blueprint.yaml", "zebra thing"), |d| d.content = "common".into()));
    docs.push(with(doc("common-in-name.blueprint.yaml", "common thing"), |d| d.content = "zebra".into()));
    ix.rebuild(&docs).unwrap();
    let page = ix.search(&sq("common zebra ")).unwrap();
    assert_eq!(hit_paths(&page), vec!["rare-in-name.blueprint.yaml", "common-in-name.blueprint.yaml"]);
}
