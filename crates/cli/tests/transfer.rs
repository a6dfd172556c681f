//! End-to-end tests of `bpv import` and `bpv export`: the real binary, real folders and
//! real zip files. They check the public contract: the JSON report shapes of VISION.md,
//! exit codes, and bytes on disk.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

struct Env {
    tmp: tempfile::TempDir,
    library: PathBuf,
    data: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let library = tmp.path().join("My Library");
        let data = tmp.path().join("data");
        let env = Env { tmp, library, data };
        let out = env.run(&["init"]);
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        env
    }

    fn other(&self, name: &str) -> Env {
        let library = self.tmp.path().join(name);
        let data = self.tmp.path().join(format!("{name}-data"));
        let env = Env { tmp: tempfile::tempdir().unwrap(), library, data };
        assert!(env.run(&["init"]).status.success());
        env
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bpv"));
        c.arg("--library").arg(&self.library).arg("--data-dir").arg(&self.data).args(args);
        c.env_remove("BPV_LIBRARY").env_remove("BPV_DATA_DIR");
        c.current_dir(self.tmp.path());
        c.output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut full = vec!["--json"];
        full.extend_from_slice(args);
        let out = self.run(&full);
        assert!(out.status.success(), "bpv {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bpv {args:?}: not JSON ({e}): {:?}", out.stdout))
    }

    fn outside(&self, rel: &str, body: &str) -> String {
        let p = self.tmp.path().join("src").join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_owned()
    }

    fn file(&self, rel: &str) -> Vec<u8> {
        fs::read(self.library.join(rel)).unwrap()
    }
}

fn bp(name: &str) -> String {
    format!("name: {name}\nnodes:\n  - id: a\n    type: http\n")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect()
}

fn blueprint_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if rel.ends_with(".blueprint.yaml") || rel.ends_with(".blueprint.meta.json") {
                    out.push((rel, fs::read(e.path()).unwrap()));
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn import_prints_the_report_of_the_vision_and_re_import_is_identical() {
    let env = Env::new();
    let a = env.outside("flows/a.yaml", &bp("A"));
    env.outside("flows/sub/b.blueprint.yaml", &bp("B"));
    let bad = env.outside("bad.yaml", "name: [unclosed\n");
    let folder = env.tmp.path().join("src/flows");
    let folder = folder.to_str().unwrap();

    let dry = env.json(&["import", folder, &bad, "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(strings(&dry["imported"]).len(), 2);
    assert!(!env.library.join("Blueprints/personal/flows/a.blueprint.yaml").exists(), "a dry run writes nothing");

    let r = env.json(&["import", folder, &bad]);
    for key in ["imported", "identical", "skipped", "errors"] {
        assert!(r[key].is_array(), "{key} missing: {r}");
    }
    assert_eq!(
        strings(&r["imported"]),
        ["Blueprints/personal/flows/a.blueprint.yaml", "Blueprints/personal/flows/sub/b.blueprint.yaml"]
    );
    assert_eq!(r["errors"][0]["source"], bad.as_str());
    assert!(r["errors"][0]["error"].as_str().unwrap().contains("line 2"), "{r}");
    assert_eq!(env.file("Blueprints/personal/flows/a.blueprint.yaml"), bp("A").as_bytes());
    // The library lists them.
    let list = env.json(&["list", "Blueprints/personal/flows"]);
    assert_eq!(
        list["items"].as_array().map(|a| a.len()).unwrap_or(0) + list.as_array().map(|a| a.len()).unwrap_or(0),
        2,
        "{list}"
    );

    let again = env.json(&["import", folder]);
    assert!(strings(&again["imported"]).is_empty());
    assert_eq!(strings(&again["identical"]).len(), 2);

    // A conflict: skipped by default, renamed or overwritten on request.
    fs::write(&a, bp("A2")).unwrap();
    let skip = env.json(&["import", &a, "--into", "Blueprints/personal/flows"]);
    assert_eq!(strings(&skip["skipped"]), ["Blueprints/personal/flows/a.blueprint.yaml"]);
    let ren = env.json(&["import", &a, "--into", "Blueprints/personal/flows", "--on-conflict", "rename"]);
    assert_eq!(strings(&ren["imported"]), ["Blueprints/personal/flows/a (2).blueprint.yaml"]);
    let over = env.json(&["import", &a, "--into", "Blueprints/personal/flows", "--on-conflict", "overwrite"]);
    assert_eq!(strings(&over["imported"]), ["Blueprints/personal/flows/a.blueprint.yaml"]);
    assert_eq!(env.file("Blueprints/personal/flows/a.blueprint.yaml"), bp("A2").as_bytes());
}

#[test]
fn import_exits_non_zero_only_when_nothing_could_be_done() {
    let env = Env::new();
    let bad = env.outside("bad.yaml", "nodes: []\n");
    let out = env.run(&["--json", "import", &bad]);
    assert_eq!(out.status.code(), Some(4));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"].as_array().unwrap().len(), 1);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], "invalid_argument");

    let good = env.outside("good.yaml", &bp("Good"));
    let out = env.run(&["--json", "import", &bad, &good]);
    assert_eq!(out.status.code(), Some(0), "partial success is success");

    let out = env.run(&["import", "/definitely/not/here.yaml"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not/here.yaml"));
}

#[test]
fn a_hostile_zip_writes_nothing_outside_the_library() {
    let env = Env::new();
    let zip_path = env.tmp.path().join("evil.zip");
    {
        let f = fs::File::create(&zip_path).unwrap();
        let mut zw = zip::ZipWriter::new(f);
        let o = zip::write::SimpleFileOptions::default();
        zw.start_file("../../evil.yaml", o).unwrap();
        zw.write_all(bp("Evil").as_bytes()).unwrap();
        zw.start_file("ok.yaml", o).unwrap();
        zw.write_all(bp("Ok").as_bytes()).unwrap();
        zw.add_symlink("link.yaml", "/etc/passwd", o).unwrap();
        zw.finish().unwrap();
    }
    let r = env.json(&["import", zip_path.to_str().unwrap()]);
    assert_eq!(strings(&r["imported"]), ["Blueprints/personal/ok.blueprint.yaml"]);
    assert_eq!(r["errors"].as_array().unwrap().len(), 2, "{r}");
    assert!(!env.tmp.path().join("evil.yaml").exists());
    assert!(!env.library.join("evil.yaml").exists());
}

#[test]
fn export_bundle_round_trips_byte_for_byte_and_folder_export_works() {
    let env = Env::new();
    let a = env.outside("a.yaml", "# comment kept\nname: A\nid: a-1\nnodes: []\n");
    let b = env.outside("b.yaml", &bp("B"));
    env.json(&["import", &a, &b, "--into", "Blueprints/shared/team"]);
    let save = env.run(&["save", "Blueprints/personal/tagged.blueprint.yaml", "--file", &b, "--tag", "crm"]);
    assert!(save.status.success(), "{}", String::from_utf8_lossy(&save.stderr));

    // Selectors: everything under a folder.
    let sel = env.tmp.path().join("out/shared.zip");
    let r = env.json(&["export", "--folder", "Blueprints/shared", "--to", sel.to_str().unwrap()]);
    assert_eq!(strings(&r["exported"]).len(), 2);
    let r = env.json(&["export", "--tag", "crm", "--to", env.tmp.path().join("out/crm").to_str().unwrap()]);
    assert_eq!(strings(&r["exported"]), ["Blueprints/personal/tagged.blueprint.yaml"]);
    let r = env.json(&[
        "export",
        "Blueprints/shared/team/a.blueprint.yaml",
        "Blueprints/shared/team/b.blueprint.yaml",
        "Blueprints/personal/tagged.blueprint.yaml",
        "--to",
        env.tmp.path().join("out/three.zip").to_str().unwrap(),
    ]);
    assert_eq!(strings(&r["exported"]).len(), 3);
    assert!(r["warnings"].as_array().unwrap().is_empty());
    assert!(r["to"].as_str().unwrap().ends_with("three.zip"));

    let other = env.other("Second");
    let three = env.tmp.path().join("out/three.zip");
    let rr = other.json(&["import", three.to_str().unwrap(), "--no-provenance"]);
    assert_eq!(strings(&rr["imported"]).len(), 3);
    // Byte for byte, companions included.
    assert_eq!(blueprint_files(&other.library), blueprint_files(&env.library));
    for (p, bytes) in blueprint_files(&env.library).into_iter().filter(|(p, _)| p.ends_with(".blueprint.yaml")) {
        assert_eq!(fs::read(other.library.join(&p)).unwrap(), bytes, "{p}");
    }
    let tagged = other.json(&["show", "Blueprints/personal/tagged.blueprint.yaml", "--meta"]);
    assert_eq!(tagged["tags"], serde_json::json!(["crm"]));

    // Folder export of one blueprint: YAML + companion.
    let dir = env.tmp.path().join("out/folder");
    let r = env.json(&["export", "Blueprints/personal/tagged.blueprint.yaml", "--to", dir.to_str().unwrap()]);
    assert_eq!(strings(&r["exported"]), ["Blueprints/personal/tagged.blueprint.yaml"]);
    assert!(dir.join("tagged.blueprint.yaml").exists());
    assert!(dir.join("tagged.blueprint.meta.json").exists());

    // Default destination: the library's Exports folder.
    let r = env.json(&["export", "Blueprints/personal/tagged.blueprint.yaml"]);
    let to = r["to"].as_str().unwrap();
    assert!(to.contains("Exports/export-") && to.ends_with(".zip"), "{to}");
    assert!(Path::new(to).exists());
}

#[test]
fn export_refuses_secrets_unless_allowed_and_warns_on_stderr() {
    let env = Env::new();
    let leaky = env.outside(
        "leaky.yaml",
        "name: Leaky\nnodes:\n  - id: a\n    type: aws\n    parameters:\n      key: AKIAIOSFODNN7EXAMPLE\n",
    );
    env.json(&["import", &leaky]);
    let dest = env.tmp.path().join("leak.zip");
    let out =
        env.run(&["--json", "export", "Blueprints/personal/leaky.blueprint.yaml", "--to", dest.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("leaky.blueprint.yaml line 6"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["warnings"][0]["kind"], "aws_access_key");
    assert!(report["exported"].as_array().unwrap().is_empty());
    assert!(!dest.exists());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("IOSFODNN7EXAMPLE"));

    let r = env.json(&[
        "export",
        "Blueprints/personal/leaky.blueprint.yaml",
        "--to",
        dest.to_str().unwrap(),
        "--allow-secrets",
    ]);
    assert_eq!(r["warnings"].as_array().unwrap().len(), 1);
    assert!(dest.exists());
    // An existing bundle is not clobbered without --force.
    let out = env.run(&[
        "export",
        "Blueprints/personal/leaky.blueprint.yaml",
        "--to",
        dest.to_str().unwrap(),
        "--allow-secrets",
    ]);
    assert_eq!(out.status.code(), Some(5));
}
