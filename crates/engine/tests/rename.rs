//! `Library::rename` against real folders: the blueprint moves with its companion and
//! history, keeps its id and metadata, and refuses what would lose or shadow a file.

use std::fs;
use std::path::Path;

use bpv_engine::index::SearchQuery;
use bpv_engine::library::{BlueprintSave, Library, OpenOptions};

const A: &str = "Blueprints/personal/sales digest.blueprint.yaml";
const B: &str = "Blueprints/shared/team/weekly digest.blueprint.yaml";

fn open(root: &Path, data: &Path) -> Library {
    let mut o = OpenOptions::new(root);
    o.data_dir = Some(data.to_path_buf());
    o.create = true;
    Library::open(o).unwrap()
}

fn setup() -> (tempfile::TempDir, Library) {
    let tmp = tempfile::tempdir().unwrap();
    let lib = open(&tmp.path().join("lib"), &tmp.path().join("data"));
    let mut save = BlueprintSave {
        tags: Some(vec!["sales".into(), "weekly".into()]),
        description: Some("Mails the numbers".into()),
        ..Default::default()
    };
    save.metadata.insert("owner".into(), serde_json::json!("ops-team"));
    lib.save_blueprint(A, b"id: bp-7\nname: Sales digest\nnodes: []\n", &save).unwrap();
    // One earlier version in the history.
    lib.save_blueprint(A, b"id: bp-7\nname: Sales digest\nnodes:\n  - id: a\n    type: t\n", &BlueprintSave::default())
        .unwrap();
    (tmp, lib)
}

#[test]
fn a_rename_moves_the_file_companion_and_history_without_rewriting_them() {
    let (tmp, lib) = setup();
    let root = tmp.path().join("lib");
    let yaml_before = fs::read(root.join(A)).unwrap();
    let companion_before = fs::read(root.join(A.replace(".yaml", ".meta.json"))).unwrap();
    let versions_before = lib.versions(A).unwrap();
    assert_eq!(versions_before.len(), 1);
    let hash = lib.item(A).unwrap().hash;

    let item = lib.rename(A, B, Some(&hash)).unwrap();

    assert_eq!(item.path, B);
    assert_eq!(item.id.as_deref(), Some("bp-7"));
    assert_eq!(item.tags, vec!["sales".to_string(), "weekly".to_string()]);
    assert_eq!(item.description.as_deref(), Some("Mails the numbers"));
    assert_eq!(fs::read(root.join(B)).unwrap(), yaml_before, "the YAML bytes are not rewritten");
    assert_eq!(fs::read(root.join(B.replace(".yaml", ".meta.json"))).unwrap(), companion_before);
    assert!(!root.join(A).exists() && !root.join(A.replace(".yaml", ".meta.json")).exists());
    assert!(lib.item(A).is_err());
    assert!(lib.trash_list().unwrap().is_empty(), "a rename is not a delete");
    let versions_after = lib.versions(B).unwrap();
    assert_eq!(versions_after.len(), 1);
    assert_eq!(versions_after[0].hash, versions_before[0].hash);
    assert_eq!(
        lib.version_content(B, &versions_after[0].id).unwrap(),
        b"id: bp-7\nname: Sales digest\nnodes: []\n",
        "the earlier content is readable under the new name"
    );
    let err = lib.version_content(B, "../../index").unwrap_err();
    assert_eq!(err.code(), "invalid_argument", "{err}");
    let hits = lib.search(&SearchQuery { text: "digest".into(), limit: 10, ..Default::default() }).unwrap();
    assert_eq!(hits.hits.iter().map(|h| h.item.path.as_str()).collect::<Vec<_>>(), vec![B]);
}

#[test]
fn a_rename_refuses_a_taken_or_look_alike_name_and_changes_nothing() {
    let (tmp, lib) = setup();
    let root = tmp.path().join("lib");
    lib.save_blueprint(B, b"name: Other\n", &BlueprintSave::default()).unwrap();
    let before = fs::read(root.join(A)).unwrap();

    let err = lib.rename(A, B, None).unwrap_err();
    assert_eq!(err.code(), "already_exists", "{err}");
    let err = lib.rename(A, &B.replace("weekly", "WEEKLY"), None).unwrap_err();
    assert_eq!(err.code(), "already_exists", "{err}");
    // A stray companion at the target would be adopted by the wrong blueprint.
    let stray = "Blueprints/shared/stray.blueprint.meta.json";
    fs::write(root.join(stray), b"{\"tags\":[\"x\"]}").unwrap();
    let err = lib.rename(A, "Blueprints/shared/stray.blueprint.yaml", None).unwrap_err();
    assert_eq!(err.code(), "already_exists", "{err}");
    let err = lib.rename(A, "../outside.blueprint.yaml", None).unwrap_err();
    assert_eq!(err.code(), "invalid_key", "{err}");

    assert_eq!(fs::read(root.join(A)).unwrap(), before);
    assert!(lib.item(A).is_ok());
    assert!(!tmp.path().join("outside.blueprint.yaml").exists());
}

#[test]
fn a_rename_of_a_changed_file_is_a_conflict() {
    let (tmp, lib) = setup();
    let stale = lib.item(A).unwrap().hash;
    fs::write(tmp.path().join("lib").join(A), b"name: Edited elsewhere\n").unwrap();
    let err = lib.rename(A, B, Some(&stale)).unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert!(tmp.path().join("lib").join(A).is_file());
    assert!(!tmp.path().join("lib").join(B).exists());
}

#[test]
fn a_case_only_rename_works() {
    let (tmp, lib) = setup();
    let upper = A.replace("sales digest", "Sales Digest");
    let item = lib.rename(A, &upper, None).unwrap();
    assert_eq!(item.path, upper);
    let names: Vec<String> = fs::read_dir(tmp.path().join("lib/Blueprints/personal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".blueprint.yaml"))
        .collect();
    assert_eq!(names, vec!["Sales Digest.blueprint.yaml".to_string()]);
}
