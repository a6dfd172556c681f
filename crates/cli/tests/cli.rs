//! End-to-end tests of the `bpv` binary: real processes, real files, real SQLite.
//! They check the public contract scripts rely on: JSON shapes, exit codes, bytes on disk.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Env {
    _tmp: tempfile::TempDir,
    library: PathBuf,
    data: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let library = tmp.path().join("My Library");
        let data = tmp.path().join("data");
        let env = Env { _tmp: tmp, library, data };
        let out = env.run(&["init"]);
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        env
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bpv"));
        c.arg("--library").arg(&self.library).arg("--data-dir").arg(&self.data).args(args);
        c.env_remove("BPV_LIBRARY").env_remove("BPV_DATA_DIR");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child =
            self.cmd(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.run(&full);
        assert!(out.status.success(), "bpv {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bpv {args:?}: not JSON ({e}): {:?}", out.stdout))
    }

    fn write(&self, rel: &str, body: &str) {
        let p = self.library.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
}

fn paths(v: &Value) -> Vec<String> {
    let mut p: Vec<String> = v.as_array().unwrap().iter().map(|i| i["path"].as_str().unwrap().to_owned()).collect();
    p.sort();
    p
}

const DIGEST: &str = "name: Daily sales digest\ndescription: Summarise yesterday's deals and post them\ntags: [crm, slack]\nauthor: Ana\nnodes:\n  - id: fetch\n    type: http.request\n    parameters:\n      url: https://crm.example.com/deals\n  - id: post\n    type: slack.post\n    parameters:\n      channel: '#sales'\n      text: {template: 'Morning team: {{summary}} pineapple'}\nedges:\n  - {from: fetch, to: post}\n";

#[test]
fn init_creates_the_layout_idempotently() {
    let env = Env::new();
    for f in ["Blueprints/personal", "Blueprints/shared", "Templates", "Exports"] {
        assert!(env.library.join(f).is_dir(), "{f} missing");
    }
    assert!(env.run(&["init"]).status.success());
    // The index lives in the data dir, never in the library.
    let in_library: Vec<_> = walk(&env.library).into_iter().filter(|p| p.is_file()).collect();
    assert!(in_library.is_empty(), "init wrote files into the library: {in_library:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn save_show_round_trips_bytes_and_items_have_the_contract_shape() {
    let env = Env::new();
    let out = env.run_stdin(&["--json", "save", "Blueprints/personal/sales/digest.blueprint.yaml"], DIGEST.as_bytes());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let saved: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(saved["path"], "Blueprints/personal/sales/digest.blueprint.yaml");
    let on_disk = fs::read(env.library.join("Blueprints/personal/sales/digest.blueprint.yaml")).unwrap();
    assert_eq!(on_disk, DIGEST.as_bytes());
    let shown = env.run(&["show", "Blueprints/personal/sales/digest.blueprint.yaml"]);
    assert_eq!(shown.stdout, DIGEST.as_bytes());

    let items = env.json(&["list"]);
    let item = &items[0];
    for field in
        ["path", "id", "name", "description", "tags", "author", "modified", "size", "hash", "encrypted", "valid"]
    {
        assert!(item.get(field).is_some(), "item lacks {field}: {item}");
    }
    assert_eq!(item["name"], "Daily sales digest");
    assert_eq!(item["tags"], serde_json::json!(["crm", "slack"]));
    assert_eq!(item["size"], DIGEST.len());
    assert_eq!(item["valid"], true);
    assert!(item.get("error").is_none());
    assert!(chrono::DateTime::parse_from_rfc3339(item["modified"].as_str().unwrap()).is_ok());
    use sha2::Digest;
    assert_eq!(item["hash"], hex::encode(sha2::Sha256::digest(DIGEST.as_bytes())));
}

#[test]
fn refused_keys_exit_non_zero_with_a_json_error_and_write_nothing() {
    let env = Env::new();
    for bad in [
        "../escape.blueprint.yaml",
        "/etc/x.blueprint.yaml",
        "Blueprints/con.blueprint.yaml",
        "a//b.blueprint.yaml",
        "Blueprints/x\u{1}.blueprint.yaml",
    ] {
        let out = env.run_stdin(&["--json", "save", bad], DIGEST.as_bytes());
        assert_eq!(out.status.code(), Some(4), "{bad}");
        let err: Value = serde_json::from_slice(&out.stderr).unwrap();
        assert_eq!(err["code"], "invalid_key", "{bad}");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    assert!(!env.library.parent().unwrap().join("escape.blueprint.yaml").exists());
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 0);
}

#[test]
fn invalid_blueprints_are_refused_by_save_but_listed_when_found_on_disk() {
    let env = Env::new();
    let out = env.run_stdin(&["--json", "save", "Blueprints/personal/bad"], b"description: no name\n");
    assert_eq!(out.status.code(), Some(4));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], "invalid_blueprint");
    assert!(!env.library.join("Blueprints/personal/bad.blueprint.yaml").exists());

    env.write(
        "Blueprints/personal/broken.blueprint.yaml",
        "name: Broken\nnodes:\n  - id: a\n    type: x\n  - id: a\n    type: y\n",
    );
    env.write("Blueprints/personal/syntax.blueprint.yaml", "name: [unclosed\n");
    env.write("Blueprints/personal/ok.blueprint.yaml", DIGEST);
    let report = env.json(&["reindex"]);
    assert_eq!(report["indexed"], 3);
    let invalid = report["invalid"].as_array().unwrap();
    let bad_paths: Vec<&str> = invalid.iter().map(|i| i["path"].as_str().unwrap()).collect();
    assert_eq!(bad_paths, ["Blueprints/personal/broken.blueprint.yaml", "Blueprints/personal/syntax.blueprint.yaml"]);
    assert!(invalid[0]["error"].as_str().unwrap().contains("line"), "{}", invalid[0]["error"]);
    let listed = env.json(&["list"]);
    let broken =
        listed.as_array().unwrap().iter().find(|i| i["path"] == "Blueprints/personal/broken.blueprint.yaml").unwrap();
    assert_eq!(broken["valid"], false);
    assert_eq!(broken["name"], "Broken");
    assert!(broken["error"].as_str().is_some());
}

#[test]
fn search_finds_by_name_prefix_tag_and_deep_parameter_text() {
    let env = Env::new();
    env.write("Blueprints/personal/sales/digest.blueprint.yaml", DIGEST);
    env.write("Blueprints/shared/tokyo.blueprint.yaml", "name: 東京タワー監視\ntags: [ops]\n");
    env.write("Templates/other.blueprint.yaml", "name: Lead router\ndescription: routes leads\n");
    let q = |args: &[&str]| paths(&env.json(args));
    assert_eq!(q(&["search", "digest"]), ["Blueprints/personal/sales/digest.blueprint.yaml"]);
    assert_eq!(q(&["search", "DIG"]), ["Blueprints/personal/sales/digest.blueprint.yaml"]);
    assert_eq!(q(&["search", "pineapple"]), ["Blueprints/personal/sales/digest.blueprint.yaml"]);
    assert_eq!(q(&["search", "タワー"]), ["Blueprints/shared/tokyo.blueprint.yaml"]);
    assert!(q(&["search", "digest router"]).is_empty(), "all terms must match");
    assert_eq!(q(&["search", "lead", "--folder", "Templates"]), ["Templates/other.blueprint.yaml"]);
    assert!(q(&["search", "lead", "--folder", "Blueprints"]).is_empty());
    assert_eq!(q(&["list", "--tag", "crm"]), ["Blueprints/personal/sales/digest.blueprint.yaml"]);
    let hit = &env.json(&["search", "pineapple"])[0];
    assert!(hit["score"].as_f64().unwrap() > 0.0);
    assert!(hit["snippet"].as_str().unwrap().contains("<mark>"), "{hit}");
}

#[test]
fn deleting_the_index_and_reindexing_gives_the_same_answers() {
    let env = Env::new();
    env.write("Blueprints/personal/sales/digest.blueprint.yaml", DIGEST);
    env.write("Blueprints/shared/b.blueprint.yaml", "name: Bravo\ntags: [crm]\n");
    env.write("Blueprints/shared/c.blueprint.yaml", "name: [broken\n");
    let before = (env.json(&["list"]), env.json(&["search", "crm"]), env.json(&["tags"]));
    fs::remove_dir_all(&env.data).unwrap();
    let after = (env.json(&["list"]), env.json(&["search", "crm"]), env.json(&["tags"]));
    assert_eq!(before, after);
    // A corrupted index is rebuilt, not fatal.
    let index = find_index(&env.data);
    fs::write(&index, b"this is not a database").unwrap();
    let _ = fs::remove_file(format!("{}-wal", index.display()));
    let _ = fs::remove_file(format!("{}-shm", index.display()));
    assert_eq!(env.json(&["list"]), before.0);
}

fn find_index(data: &Path) -> PathBuf {
    walk(data).into_iter().find(|p| p.file_name().is_some_and(|n| n == "index.sqlite")).expect("index file")
}

#[test]
fn outside_edits_are_picked_up_at_the_next_command() {
    let env = Env::new();
    env.write("Blueprints/personal/a.blueprint.yaml", "name: Alpha\n");
    assert_eq!(env.json(&["list"])[0]["name"], "Alpha");
    env.write("Blueprints/personal/a.blueprint.yaml", "name: Alpha two, longer\n");
    assert_eq!(env.json(&["list"])[0]["name"], "Alpha two, longer");
    fs::remove_file(env.library.join("Blueprints/personal/a.blueprint.yaml")).unwrap();
    assert!(env.json(&["list"]).as_array().unwrap().is_empty());
}

#[test]
fn delete_goes_to_the_trash_and_restores() {
    let env = Env::new();
    env.write("Blueprints/personal/a.blueprint.yaml", DIGEST);
    env.write("Blueprints/personal/a.blueprint.meta.json", "{\"tags\": [\"kept\"]}\n");
    let entry = env.json(&["delete", "Blueprints/personal/a.blueprint.yaml"]);
    assert!(!env.library.join("Blueprints/personal/a.blueprint.yaml").exists());
    assert!(!env.library.join("Blueprints/personal/a.blueprint.meta.json").exists());
    assert!(env.json(&["list"]).as_array().unwrap().is_empty());
    let trash = env.json(&["trash", "list"]);
    assert_eq!(trash[0]["path"], "Blueprints/personal/a.blueprint.yaml");
    let restored = env.json(&["trash", "restore", entry["id"].as_str().unwrap()]);
    assert_eq!(restored["tags"], serde_json::json!(["crm", "slack", "kept"]));
    assert_eq!(fs::read(env.library.join("Blueprints/personal/a.blueprint.yaml")).unwrap(), DIGEST.as_bytes());
    assert!(env.json(&["trash", "list"]).as_array().unwrap().is_empty());
    let missing = env.run(&["--json", "delete", "Blueprints/personal/nope.blueprint.yaml"]);
    assert_eq!(missing.status.code(), Some(3));
    env.json(&["delete", "Blueprints/personal/a.blueprint.yaml"]);
    assert_eq!(env.json(&["trash", "empty"])["removed"], 1);
}

#[test]
fn mv_moves_a_blueprint_with_its_metadata_and_refuses_a_taken_name() {
    let env = Env::new();
    env.write("Blueprints/personal/a.blueprint.yaml", DIGEST);
    env.write("Blueprints/personal/a.blueprint.meta.json", "{\"tags\": [\"kept\"], \"owner\": \"ops\"}\n");
    env.write("Blueprints/shared/taken.blueprint.yaml", DIGEST);
    let moved = env.json(&["mv", "Blueprints/personal/a.blueprint.yaml", "Blueprints/shared/team/b.blueprint.yaml"]);
    assert_eq!(moved["path"], "Blueprints/shared/team/b.blueprint.yaml");
    assert_eq!(moved["tags"], serde_json::json!(["crm", "slack", "kept"]));
    assert_eq!(fs::read(env.library.join("Blueprints/shared/team/b.blueprint.yaml")).unwrap(), DIGEST.as_bytes());
    let companion = fs::read_to_string(env.library.join("Blueprints/shared/team/b.blueprint.meta.json")).unwrap();
    assert!(companion.contains("\"owner\""), "companion fields survive: {companion}");
    assert!(!env.library.join("Blueprints/personal/a.blueprint.yaml").exists());
    assert!(env.json(&["trash", "list"]).as_array().unwrap().is_empty());
    let taken =
        env.run(&["--json", "mv", "Blueprints/shared/team/b.blueprint.yaml", "Blueprints/shared/taken.blueprint.yaml"]);
    assert_eq!(taken.status.code(), Some(5), "{}", String::from_utf8_lossy(&taken.stderr));
    assert!(env.library.join("Blueprints/shared/team/b.blueprint.yaml").is_file());
}

#[test]
fn if_match_detects_outside_changes_and_tags_go_to_the_companion() {
    let env = Env::new();
    let saved = env.json(&["save", "Blueprints/personal/a.blueprint.yaml", "--file", &write_tmp(&env, DIGEST)]);
    let hash = saved["hash"].as_str().unwrap().to_owned();
    env.write("Blueprints/personal/a.blueprint.yaml", "name: changed by an editor\n");
    let out = env
        .run_stdin(&["--json", "save", "Blueprints/personal/a.blueprint.yaml", "--if-match", &hash], DIGEST.as_bytes());
    assert_eq!(out.status.code(), Some(5));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], "conflict");
    assert_eq!(
        fs::read_to_string(env.library.join("Blueprints/personal/a.blueprint.yaml")).unwrap(),
        "name: changed by an editor\n"
    );

    let yaml_before = fs::read(env.library.join("Blueprints/personal/a.blueprint.yaml")).unwrap();
    let out = env.run_stdin(
        &["--json", "save", "Blueprints/personal/a.blueprint.yaml", "--tag", "ops", "--tag", "daily"],
        &yaml_before,
    );
    assert!(out.status.success());
    let companion: Value =
        serde_json::from_slice(&fs::read(env.library.join("Blueprints/personal/a.blueprint.meta.json")).unwrap())
            .unwrap();
    assert_eq!(companion["tags"], serde_json::json!(["ops", "daily"]));
    // A tags-only save keeps no version (the content did not change) ...
    assert!(env.json(&["history", "Blueprints/personal/a.blueprint.yaml"]).as_array().unwrap().is_empty());
    // ... a content change does, and undo brings it back.
    let out = env.run_stdin(&["--json", "save", "Blueprints/personal/a.blueprint.yaml"], DIGEST.as_bytes());
    assert!(out.status.success());
    let history = env.json(&["history", "Blueprints/personal/a.blueprint.yaml"]);
    assert_eq!(history.as_array().unwrap().len(), 1);
    env.json(&["undo", "Blueprints/personal/a.blueprint.yaml"]);
    assert_eq!(fs::read(env.library.join("Blueprints/personal/a.blueprint.yaml")).unwrap(), yaml_before);
}

fn write_tmp(env: &Env, body: &str) -> String {
    let p = env.data.parent().unwrap().join("input.yaml");
    fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn a_missing_named_library_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bpv"))
        .args(["--json", "--library"])
        .arg(tmp.path().join("nope"))
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(err["message"].as_str().unwrap().contains("bpv init"));
}

#[test]
fn several_processes_share_one_library_without_lost_updates() {
    let env = Env::new();
    // Eight writers at once, each saving its own blueprints, while readers list.
    let mut children = Vec::new();
    for w in 0..8 {
        let mut c = env.cmd(&["--json", "save", &format!("Blueprints/shared/w{w}.blueprint.yaml")]);
        c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(format!("name: Writer {w}\n").as_bytes()).unwrap();
        children.push(child);
        children.push(env.cmd(&["--json", "list"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(env.json(&["list"]).as_array().unwrap().len(), 8);

    // Six editors that all read the same version and save with --if-match: exactly one wins.
    let hash =
        env.json(&["show", "--meta", "Blueprints/shared/w0.blueprint.yaml"])["hash"].as_str().unwrap().to_owned();
    let editors: Vec<_> = (0..6)
        .map(|e| {
            let mut c = env.cmd(&["--json", "save", "Blueprints/shared/w0.blueprint.yaml", "--if-match", &hash]);
            c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            child.stdin.take().unwrap().write_all(format!("name: Edit {e}\n").as_bytes()).unwrap();
            child
        })
        .collect();
    let codes: Vec<Option<i32>> = editors.into_iter().map(|c| c.wait_with_output().unwrap().status.code()).collect();
    assert_eq!(codes.iter().filter(|c| **c == Some(0)).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == Some(5)).count(), 5, "{codes:?}");
    let name =
        env.json(&["show", "--meta", "Blueprints/shared/w0.blueprint.yaml"])["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("Edit "));
}
