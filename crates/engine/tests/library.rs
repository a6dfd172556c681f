//! The filesystem library against real folders and a real SQLite index: batches,
//! reopen/reindex equivalence, and a property-based model test.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use bpv_engine::Key;
use bpv_engine::index::{ListQuery, SearchQuery, Sort};
use bpv_engine::library::{BlueprintSave, Library, OpenOptions};
use bpv_engine::store::{BatchOp, SaveOptions, Store};
use proptest::prelude::*;

fn open(root: &Path, data: &Path) -> Library {
    let mut o = OpenOptions::new(root);
    o.data_dir = Some(data.to_path_buf());
    o.create = true;
    Library::open(o).unwrap()
}

fn all(lib: &Library) -> Vec<(String, String)> {
    let page = lib
        .list(&ListQuery {
            folder: None,
            tags: vec![],
            author: None,
            modified_from: None,
            modified_to: None,
            valid: None,
            sort: Sort::Name,
            offset: 0,
            limit: 100_000,
        })
        .unwrap();
    let mut v: Vec<(String, String)> = page.items.into_iter().map(|i| (i.path, i.hash)).collect();
    v.sort();
    v
}

fn yaml(name: &str) -> Vec<u8> {
    format!("name: {name}\nnodes:\n  - id: a\n    type: t\n").into_bytes()
}

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

#[test]
fn a_failing_batch_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = open(&tmp.path().join("lib"), &tmp.path().join("data"));
    lib.save_blueprint("Blueprints/personal/keep.blueprint.yaml", &yaml("Keep"), &BlueprintSave::default()).unwrap();
    let before = all(&lib);
    let ops = vec![
        BatchOp::Put {
            key: key("Blueprints/personal/new.blueprint.yaml"),
            data: yaml("New"),
            options: SaveOptions::default(),
        },
        BatchOp::Delete { key: key("Blueprints/personal/keep.blueprint.yaml") },
        BatchOp::Delete { key: key("Blueprints/personal/absent.blueprint.yaml") },
    ];
    assert_eq!(lib.batch(&ops).unwrap_err().code(), "not_found");
    assert_eq!(all(&lib), before);
    assert!(!tmp.path().join("lib/Blueprints/personal/new.blueprint.yaml").exists());
    // No debris: nothing but the blueprint in its folder.
    let names: Vec<String> = fs::read_dir(tmp.path().join("lib/Blueprints/personal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["keep.blueprint.yaml"]);
    // An invalid blueprint in a batch is refused before anything is written, too.
    let ops = vec![
        BatchOp::Put {
            key: key("Blueprints/personal/n2.blueprint.yaml"),
            data: yaml("N2"),
            options: SaveOptions::default(),
        },
        BatchOp::Put {
            key: key("Blueprints/personal/bad.blueprint.yaml"),
            data: b"nodes: []\n".to_vec(),
            options: SaveOptions::default(),
        },
    ];
    assert_eq!(lib.batch(&ops).unwrap_err().code(), "invalid_blueprint");
    assert_eq!(all(&lib), before);
}

#[test]
fn a_good_batch_applies_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = open(&tmp.path().join("lib"), &tmp.path().join("data"));
    lib.save_blueprint("Blueprints/personal/old.blueprint.yaml", &yaml("Old"), &BlueprintSave::default()).unwrap();
    let ops = vec![
        BatchOp::Put {
            key: key("Blueprints/shared/a.blueprint.yaml"),
            data: yaml("A"),
            options: SaveOptions { tags: vec!["t1".into()], ..Default::default() },
        },
        BatchOp::Put {
            key: key("Blueprints/shared/b.blueprint.yaml"),
            data: yaml("B"),
            options: SaveOptions::default(),
        },
        BatchOp::Delete { key: key("Blueprints/personal/old.blueprint.yaml") },
    ];
    lib.batch(&ops).unwrap();
    let paths: Vec<String> = all(&lib).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, ["Blueprints/shared/a.blueprint.yaml", "Blueprints/shared/b.blueprint.yaml"]);
    assert_eq!(lib.item("Blueprints/shared/a.blueprint.yaml").unwrap().tags, ["t1"]);
    assert_eq!(lib.trash_list().unwrap()[0].path, "Blueprints/personal/old.blueprint.yaml");
}

#[test]
fn reopening_and_reindexing_give_identical_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("lib");
    let lib = open(&root, &tmp.path().join("data"));
    for (i, name) in ["Alpha report", "Beta digest", "東京タワー監視", "Café résumé"].iter().enumerate() {
        let path = format!("Blueprints/personal/f{}/n{i}.blueprint.yaml", i % 2);
        lib.save_blueprint(
            &path,
            &yaml(name),
            &BlueprintSave { tags: Some(vec![format!("t{}", i % 2)]), ..Default::default() },
        )
        .unwrap();
    }
    fs::write(root.join("Templates/broken.blueprint.yaml"), "name: [oops\n").unwrap();
    let q = |lib: &Library, text: &str| {
        lib.search(&SearchQuery {
            text: text.into(),
            tags: vec![],
            folder: None,
            author: None,
            modified_from: None,
            modified_to: None,
            offset: 0,
            limit: 50,
        })
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.item.path)
        .collect::<Vec<_>>()
    };
    let lib = open(&root, &tmp.path().join("data"));
    let before =
        (all(&lib), q(&lib, "digest"), q(&lib, "東京"), q(&lib, "cafe"), lib.index().tag_counts(None).unwrap().len());
    assert_eq!(before.1.len(), 1);
    assert_eq!(before.2.len(), 1);
    assert_eq!(before.3.len(), 1);
    drop(lib);
    let fresh = open(&root, &tmp.path().join("data2"));
    let after = (
        all(&fresh),
        q(&fresh, "digest"),
        q(&fresh, "東京"),
        q(&fresh, "cafe"),
        fresh.index().tag_counts(None).unwrap().len(),
    );
    assert_eq!(before, after);
    assert_eq!(fresh.reindex(None).unwrap().invalid.len(), 1);
}

#[derive(Clone, Debug)]
enum Op {
    Save(usize, u8),
    Delete(usize),
    Batch(Vec<(usize, Option<u8>)>),
    Reopen,
}

const NAMES: &[&str] = &[
    "Blueprints/personal/a.blueprint.yaml",
    "Blueprints/personal/sub/b.blueprint.yaml",
    "Blueprints/shared/c.blueprint.yaml",
    "Templates/日本/d.blueprint.yaml",
    "Exports/e e.blueprint.yaml",
];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..NAMES.len(), any::<u8>()).prop_map(|(k, v)| Op::Save(k, v)),
        2 => (0..NAMES.len()).prop_map(Op::Delete),
        2 => prop::collection::vec((0..NAMES.len(), prop::option::of(any::<u8>())), 1..4).prop_map(Op::Batch),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// Random operation sequences against the real library vs a BTreeMap model:
    /// after every step, the files, the index and the model agree.
    #[test]
    fn library_behaves_like_a_map(ops in prop::collection::vec(op(), 1..25)) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lib");
        let data = tmp.path().join("data");
        let mut lib = open(&root, &data);
        let mut model: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Save(k, v) => {
                    let body = yaml(&format!("v{v}"));
                    lib.save_blueprint(NAMES[k], &body, &BlueprintSave::default()).unwrap();
                    model.insert(NAMES[k].to_owned(), body);
                }
                Op::Delete(k) => {
                    let r = lib.delete(NAMES[k]);
                    if model.remove(NAMES[k]).is_some() { prop_assert!(r.is_ok()); } else { prop_assert_eq!(r.unwrap_err().code(), "not_found"); }
                }
                Op::Batch(items) => {
                    let mut seen = std::collections::HashSet::new();
                    let items: Vec<_> = items.into_iter().filter(|(k, _)| seen.insert(*k)).collect();
                    let ops: Vec<BatchOp> = items.iter().map(|(k, v)| match v {
                        Some(v) => BatchOp::Put { key: key(NAMES[*k]), data: yaml(&format!("b{v}")), options: SaveOptions::default() },
                        None => BatchOp::Delete { key: key(NAMES[*k]) },
                    }).collect();
                    let ok = items.iter().all(|(k, v)| v.is_some() || model.contains_key(NAMES[*k]));
                    let r = lib.batch(&ops);
                    prop_assert_eq!(r.is_ok(), ok, "{:?}", r);
                    if ok {
                        for (k, v) in &items {
                            match v { Some(v) => { model.insert(NAMES[*k].to_owned(), yaml(&format!("b{v}"))); } None => { model.remove(NAMES[*k]); } }
                        }
                    }
                }
                Op::Reopen => { drop(lib); lib = open(&root, &data); }
            }
            let listed: Vec<String> = all(&lib).into_iter().map(|(p, _)| p).collect();
            let expected: Vec<String> = model.keys().cloned().collect();
            prop_assert_eq!(&listed, &expected);
            for (p, body) in &model {
                prop_assert_eq!(&lib.read(p).unwrap(), body);
                prop_assert_eq!(fs::read(root.join(p)).unwrap(), body.clone());
            }
        }
    }
}

#[test]
fn names_that_look_the_same_cannot_become_two_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("lib");
    let lib = open(&root, &tmp.path().join("data"));
    // Another tool wrote a decomposed (NFD) name; the library lists and reads it.
    let nfd = "Blueprints/personal/Cafe\u{301}.blueprint.yaml";
    fs::write(root.join(nfd), yaml("Café")).unwrap();
    lib.reconcile().unwrap();
    assert_eq!(lib.read(nfd).unwrap(), yaml("Café"));
    // Saving the composed (NFC) spelling, or another letter case, is refused.
    let nfc = "Blueprints/personal/Caf\u{e9}.blueprint.yaml";
    assert_eq!(lib.save_blueprint(nfc, &yaml("x"), &BlueprintSave::default()).unwrap_err().code(), "already_exists");
    lib.save_blueprint("Blueprints/personal/Report.blueprint.yaml", &yaml("R"), &BlueprintSave::default()).unwrap();
    let err = lib.save_blueprint("Blueprints/personal/report.blueprint.yaml", &yaml("r"), &BlueprintSave::default());
    assert_eq!(err.unwrap_err().code(), "already_exists");
    let names: Vec<_> = fs::read_dir(root.join("Blueprints/personal")).unwrap().collect();
    assert_eq!(names.len(), 2);
}

#[test]
fn the_yaml_description_stays_findable_when_the_companion_overrides_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("lib");
    let lib = open(&root, &tmp.path().join("data"));
    fs::write(root.join("Blueprints/personal/x.blueprint.yaml"), "name: X\ndescription: pomegranate workflow\n")
        .unwrap();
    fs::write(root.join("Blueprints/personal/x.blueprint.meta.json"), "{\"description\": \"edited in the app\"}")
        .unwrap();
    lib.reconcile().unwrap();
    let found = |text: &str| {
        lib.search(&SearchQuery { text: text.into(), limit: 10, ..Default::default() }).unwrap().hits.len()
    };
    assert_eq!(found("pomegranate"), 1);
    assert_eq!(found("edited"), 1);
    assert_eq!(
        lib.item("Blueprints/personal/x.blueprint.yaml").unwrap().description.as_deref(),
        Some("edited in the app")
    );
}

#[test]
fn an_open_trusts_a_live_watcher_and_reconciles_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, data) = (tmp.path().join("lib"), tmp.path().join("data"));
    let lib = open(&root, &data);
    let area = lib.area().to_path_buf();
    drop(lib);
    let heartbeat = chrono::Utc::now().to_rfc3339();
    let status = serde_json::json!({ "state": "watching", "pid": std::process::id(), "heartbeat": heartbeat });
    fs::write(area.join("watcher.json"), status.to_string()).unwrap();
    fs::write(root.join("Blueprints/personal/new.blueprint.yaml"), "name: New\n").unwrap();
    // A live watcher keeps the index current: no walk at open (it would apply this edit itself).
    let lib = open(&root, &data);
    assert!(lib.kept_current_by_watcher());
    assert!(lib.item("Blueprints/personal/new.blueprint.yaml").is_err());
    drop(lib);
    // No watcher: the open reconciles and finds the file.
    fs::remove_file(area.join("watcher.json")).unwrap();
    let lib = open(&root, &data);
    assert!(!lib.kept_current_by_watcher());
    assert_eq!(lib.item("Blueprints/personal/new.blueprint.yaml").unwrap().name, "New");
}

#[test]
fn edits_made_while_closed_are_in_the_next_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, data) = (tmp.path().join("lib"), tmp.path().join("data"));
    let lib = open(&root, &data);
    let p = |n: &str| format!("Blueprints/personal/{n}.blueprint.yaml");
    for n in ["keep", "edit", "same-size", "gone", "tagged"] {
        lib.save_blueprint(&p(n), &yaml(n), &BlueprintSave::default()).unwrap();
    }
    drop(lib);
    let abs = |rel: &str| root.join(rel);
    // While closed: an edit, an edit of the same size (only the mtime tells), a delete,
    // a new file in a new folder, a companion written by hand.
    fs::write(abs(&p("edit")), "name: Edited offline\ndescription: quince\n").unwrap();
    let same = abs(&p("same-size"));
    let before = fs::read(&same).unwrap();
    let mut after = before.clone();
    after[6] = b'Z'; // "name: same-size" -> "name: Zame-size"
    fs::write(&same, &after).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    fs::File::options().write(true).open(&same).unwrap().set_modified(later).unwrap();
    fs::remove_file(abs(&p("gone"))).unwrap();
    fs::create_dir_all(abs("Blueprints/new folder")).unwrap();
    fs::write(abs("Blueprints/new folder/added.blueprint.yaml"), "name: Added offline\n").unwrap();
    fs::write(abs("Blueprints/personal/tagged.blueprint.meta.json"), r#"{"tags": ["offline"]}"#).unwrap();

    let lib = open(&root, &data);
    let everything = ListQuery { limit: 100, ..Default::default() };
    let mut names: Vec<String> =
        lib.list(&everything).unwrap().items.into_iter().map(|i| format!("{}={}", i.path, i.name)).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Blueprints/new folder/added.blueprint.yaml=Added offline",
            "Blueprints/personal/edit.blueprint.yaml=Edited offline",
            "Blueprints/personal/keep.blueprint.yaml=keep",
            "Blueprints/personal/same-size.blueprint.yaml=Zame-size",
            "Blueprints/personal/tagged.blueprint.yaml=tagged",
        ]
    );
    let search = |text: &str| -> Vec<String> {
        let q = SearchQuery { text: text.into(), limit: 10, ..Default::default() };
        lib.search(&q).unwrap().hits.into_iter().map(|h| h.item.path).collect()
    };
    assert_eq!(search("quince"), [p("edit")]);
    let tagged = ListQuery { tags: vec!["offline".into()], limit: 10, ..Default::default() };
    assert_eq!(lib.list(&tagged).unwrap().items.len(), 1);
    assert!(lib.item(&p("gone")).is_err());
}

/// A reindex streams the files in chunks (2,048 at a time) into one transaction: every
/// chunk must land, whatever the name lengths (rowids are bucketed by them).
#[test]
fn a_reindex_of_several_chunks_indexes_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, data) = (tmp.path().join("lib"), tmp.path().join("data"));
    let lib = open(&root, &data);
    let n = 5_000;
    for i in 0..n {
        let dir = root.join(format!("Blueprints/f{}", i % 37));
        fs::create_dir_all(&dir).unwrap();
        let words = "alpha beta gamma delta".split(' ').take(1 + i % 4).collect::<Vec<_>>().join(" ");
        let body = format!("name: {words} n{i}\ndescription: common marker{i}\ntags: [t{}]\n", i % 3);
        fs::write(dir.join(format!("b{i}.blueprint.yaml")), body).unwrap();
    }
    let report = lib.reindex(None).unwrap();
    assert_eq!(report.indexed, n);
    assert!(report.invalid.is_empty());
    let total =
        |text: &str| lib.search(&SearchQuery { text: text.into(), limit: 1, ..Default::default() }).unwrap().total;
    assert_eq!(total("common"), n);
    for i in [0, 2047, 2048, 4095, 4999] {
        assert_eq!(total(&format!("marker{i}")), 1, "marker{i}");
    }
    assert_eq!(lib.list(&ListQuery { limit: 1, ..Default::default() }).unwrap().total, n);
    let tags = lib.index().tag_counts(None).unwrap();
    assert_eq!(tags.iter().map(|t| t.count).sum::<u64>(), n as u64);
    assert_eq!(lib.index().integrity_check().unwrap(), "ok");
}
