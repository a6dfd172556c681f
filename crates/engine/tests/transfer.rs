//! Import and export against real folders, real zip archives (generated here, hostile
//! ones included) and a real library: every classification, every refusal, the
//! round trip, idempotent re-import, cancel and failure leaving the library as it was.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use bpv_engine::blueprint;
use bpv_engine::library::{BlueprintSave, Library, OpenOptions};
use bpv_engine::transfer::bundle::{self, Manifest};
use bpv_engine::transfer::{Class, Decision, ExportOptions, ImportOptions, ImportPlan, Limits, OnConflict, PlanItem};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

struct Env {
    tmp: tempfile::TempDir,
    lib: Library,
}

impl Env {
    fn new() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let lib = open(&tmp.path().join("lib"), &tmp.path().join("data"));
        Env { tmp, lib }
    }

    fn root(&self) -> &Path {
        self.lib.root()
    }

    /// A scratch folder outside the library for sources and exports.
    fn outside(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join("outside").join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        p
    }

    fn save(&self, path: &str, yaml: &str) {
        self.lib.save_blueprint(path, yaml.as_bytes(), &BlueprintSave::default()).unwrap();
    }

    fn plan(&self, sources: &[PathBuf], opts: &ImportOptions) -> ImportPlan {
        self.lib.import_plan(sources, opts, None).unwrap()
    }

    fn import(&self, sources: &[PathBuf], opts: &ImportOptions) -> bpv_engine::transfer::ImportReport {
        let plan = self.plan(sources, opts);
        self.lib.import_apply(&plan, opts, None).unwrap()
    }
}

fn open(root: &Path, data: &Path) -> Library {
    let mut o = OpenOptions::new(root);
    o.data_dir = Some(data.to_path_buf());
    o.create = true;
    Library::open(o).unwrap()
}

fn bp(name: &str) -> String {
    format!("name: {name}\nnodes:\n  - id: a\n    type: http\n")
}

fn bp_id(name: &str, id: &str) -> String {
    format!("name: {name}\nid: {id}\nnodes:\n  - id: a\n    type: http\n")
}

/// Every file under `dir` (relative path → bytes), hidden files included.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    for e in walkdir(dir) {
        let rel = e.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        out.insert(rel, fs::read(&e).unwrap_or_default());
    }
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn classes(plan: &ImportPlan) -> Vec<(Class, Option<String>)> {
    plan.items.iter().map(|i| (i.class, i.target.clone())).collect()
}

fn item<'a>(plan: &'a ImportPlan, source_ends: &str) -> &'a PlanItem {
    plan.items
        .iter()
        .find(|i| i.source.ends_with(source_ends))
        .unwrap_or_else(|| panic!("no item from {source_ends}: {:#?}", plan.items))
}

/// A zip written byte by byte, so tests can make archives no well-behaved writer would:
/// any name bytes, any unix mode, sizes that lie, duplicate names.
#[derive(Default)]
struct RawZip {
    body: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

struct RawEntry<'a> {
    name: &'a [u8],
    data: &'a [u8],
    mode: Option<u32>,
    /// Declared uncompressed size (None: the real size).
    declared: Option<u32>,
}

impl RawZip {
    fn add(&mut self, e: RawEntry<'_>) -> &mut Self {
        let crc = crc32(e.data);
        let size = e.data.len() as u32;
        let declared = e.declared.unwrap_or(size);
        let offset = self.body.len() as u32;
        let utf8 = std::str::from_utf8(e.name).is_ok();
        let flags: u16 = if utf8 { 0x800 } else { 0 };
        let b = &mut self.body;
        b.extend(0x04034b50u32.to_le_bytes());
        b.extend(20u16.to_le_bytes());
        b.extend(flags.to_le_bytes());
        b.extend(0u16.to_le_bytes()); // stored
        b.extend(0u16.to_le_bytes());
        b.extend(0x21u16.to_le_bytes());
        b.extend(crc.to_le_bytes());
        b.extend(size.to_le_bytes());
        b.extend(declared.to_le_bytes());
        b.extend((e.name.len() as u16).to_le_bytes());
        b.extend(0u16.to_le_bytes());
        b.extend(e.name);
        b.extend(e.data);
        let c = &mut self.central;
        c.extend(0x02014b50u32.to_le_bytes());
        let made_by: u16 = if e.mode.is_some() { (3 << 8) | 20 } else { 20 };
        c.extend(made_by.to_le_bytes());
        c.extend(20u16.to_le_bytes());
        c.extend(flags.to_le_bytes());
        c.extend(0u16.to_le_bytes());
        c.extend(0u16.to_le_bytes());
        c.extend(0x21u16.to_le_bytes());
        c.extend(crc.to_le_bytes());
        c.extend(size.to_le_bytes());
        c.extend(declared.to_le_bytes());
        c.extend((e.name.len() as u16).to_le_bytes());
        c.extend(0u16.to_le_bytes());
        c.extend(0u16.to_le_bytes());
        c.extend(0u16.to_le_bytes());
        c.extend(0u16.to_le_bytes());
        c.extend((e.mode.unwrap_or(0) << 16).to_le_bytes());
        c.extend(offset.to_le_bytes());
        c.extend(e.name);
        self.count += 1;
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.add(RawEntry { name: name.as_bytes(), data, mode: Some(0o100644), declared: None })
    }

    fn finish(&self) -> Vec<u8> {
        let mut out = self.body.clone();
        let cd_offset = out.len() as u32;
        out.extend(&self.central);
        out.extend(0x06054b50u32.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(self.count.to_le_bytes());
        out.extend(self.count.to_le_bytes());
        out.extend((self.central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn write_zip(env: &Env, name: &str, z: &RawZip) -> PathBuf {
    let p = env.outside(name);
    fs::write(&p, z.finish()).unwrap();
    p
}

/// Imports `zip`, checks nothing outside the library changed and only allowed files
/// were written, and returns the plan.
fn import_hostile(env: &Env, zip: &Path) -> (ImportPlan, bpv_engine::transfer::ImportReport) {
    let outside_before = snapshot(&env.tmp.path().join("outside"));
    let opts = ImportOptions::new();
    let plan = env.plan(&[zip.to_path_buf()], &opts);
    let rep = env.lib.import_apply(&plan, &opts, None).unwrap();
    assert_eq!(snapshot(&env.tmp.path().join("outside")), outside_before, "something outside the library changed");
    // Nothing escaped to the temp dir's top either.
    let tops: Vec<String> =
        fs::read_dir(env.tmp.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let mut tops_sorted = tops.clone();
    tops_sorted.sort();
    assert_eq!(tops_sorted, ["data", "lib", "outside"]);
    (plan, rep)
}

// ---------------------------------------------------------------------------------------
// Classification
// ---------------------------------------------------------------------------------------

#[test]
fn every_classification_in_one_dry_run_and_nothing_written() {
    let env = Env::new();
    env.save("Blueprints/personal/same.blueprint.yaml", &bp("Same"));
    env.save("Blueprints/personal/taken.blueprint.yaml", &bp("Taken"));
    env.save("Blueprints/shared/elsewhere.blueprint.yaml", &bp_id("Elsewhere", "bp-1"));
    env.save("Blueprints/shared/other-id.blueprint.yaml", &bp_id("Other", "bp-2"));
    let src = env.outside("src");
    fs::create_dir_all(&src).unwrap();
    let files = [
        ("new.yaml", bp("New")),
        ("same.blueprint.yaml", bp("Same")),
        ("taken.yml", bp("Different")),
        ("copy-of-elsewhere.yaml", bp_id("Elsewhere", "bp-1")),
        ("id-clash.yaml", bp_id("Changed", "bp-2")),
        ("broken.yaml", "name: Broken\nnodes:\n  - id: a\n    type: t\n  - id: a\n    type: t\n".into()),
        ("con.yaml", bp("Reserved name")),
    ];
    for (name, body) in &files {
        fs::write(src.join(name), body).unwrap();
    }
    let sources: Vec<PathBuf> = files.iter().map(|(n, _)| src.join(n)).collect();
    let before = snapshot(env.root());
    let plan = env.plan(&sources, &ImportOptions::new());
    assert_eq!(snapshot(env.root()), before, "a dry run wrote something");

    assert_eq!(item(&plan, "new.yaml").class, Class::New);
    assert_eq!(item(&plan, "new.yaml").target.as_deref(), Some("Blueprints/personal/new.blueprint.yaml"));
    assert_eq!(item(&plan, "/same.blueprint.yaml").class, Class::Identical);
    let taken = item(&plan, "taken.yml");
    assert_eq!(taken.class, Class::Conflict);
    assert_eq!(taken.existing.as_deref(), Some("Blueprints/personal/taken.blueprint.yaml"));
    let copy = item(&plan, "copy-of-elsewhere.yaml");
    assert_eq!(copy.class, Class::Identical, "same id, same content: a no-op");
    assert_eq!(copy.existing.as_deref(), Some("Blueprints/shared/elsewhere.blueprint.yaml"));
    let clash = item(&plan, "id-clash.yaml");
    assert_eq!(clash.class, Class::Conflict);
    assert!(clash.reason.as_deref().unwrap().contains("bp-2"));
    let broken = item(&plan, "broken.yaml");
    assert_eq!(broken.class, Class::Invalid);
    assert_eq!(broken.line, Some(5), "{:?}", broken.reason);
    assert_eq!(item(&plan, "con.yaml").class, Class::Refused);
    assert_eq!(
        (plan.counts.new, plan.counts.identical, plan.counts.conflict, plan.counts.invalid, plan.counts.refused),
        (1, 2, 2, 1, 1)
    );
    // The report view gets JSON.
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["items"].as_array().unwrap().len(), 7);
    assert!(json["items"][0]["class"].is_string());
}

#[test]
fn conflicts_skip_rename_and_overwrite_and_per_item_decisions() {
    let env = Env::new();
    env.save("Blueprints/personal/a.blueprint.yaml", &bp("Old A"));
    env.save("Blueprints/personal/b.blueprint.yaml", &bp("Old B"));
    env.save("Blueprints/personal/b (2).blueprint.yaml", &bp("Old B2"));
    let src = env.outside("files");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.yaml"), bp("New A")).unwrap();
    fs::write(src.join("b.yaml"), bp("New B")).unwrap();
    let sources = vec![src.join("a.yaml"), src.join("b.yaml")];

    // Skip (the default): nothing changes.
    let before = snapshot(env.root());
    let rep = env.import(&sources, &ImportOptions::new());
    assert_eq!(rep.skipped, ["Blueprints/personal/a.blueprint.yaml", "Blueprints/personal/b.blueprint.yaml"]);
    assert!(rep.imported.is_empty());
    assert_eq!(snapshot(env.root()), before);

    // Per item: overwrite a, rename b.
    let mut opts = ImportOptions::new();
    let plan = env.plan(&sources, &opts);
    let na = item(&plan, "a.yaml").n;
    let nb = item(&plan, "b.yaml").n;
    opts.decisions.insert(na, Decision::Overwrite);
    opts.decisions.insert(nb, Decision::Rename);
    let preview = plan.preview(&opts);
    let rep = env.lib.import_apply(&plan, &opts, None).unwrap();
    assert_eq!(preview.imported, rep.imported, "the dry run predicts the result");
    assert_eq!(rep.overwritten, ["Blueprints/personal/a.blueprint.yaml"]);
    assert_eq!(rep.renamed.len(), 1);
    assert_eq!(rep.renamed[0].to, "Blueprints/personal/b (3).blueprint.yaml");
    assert_eq!(fs::read_to_string(env.root().join("Blueprints/personal/a.blueprint.yaml")).unwrap(), bp("New A"));
    assert_eq!(fs::read_to_string(env.root().join("Blueprints/personal/b.blueprint.yaml")).unwrap(), bp("Old B"));
    assert_eq!(fs::read_to_string(env.root().join("Blueprints/personal/b (3).blueprint.yaml")).unwrap(), bp("New B"));
    // The overwritten content is kept in the history.
    assert_eq!(env.lib.versions("Blueprints/personal/a.blueprint.yaml").unwrap().len(), 1);
    // The index knows the new files.
    assert_eq!(env.lib.item("Blueprints/personal/b (3).blueprint.yaml").unwrap().name, "New B");

    // For all: --on-conflict rename.
    let opts = ImportOptions { on_conflict: OnConflict::Rename, ..ImportOptions::new() };
    let rep = env.import(&[src.join("a.yaml")], &opts);
    assert!(rep.identical.contains(&"Blueprints/personal/a.blueprint.yaml".to_owned()), "{rep:?}");
}

#[test]
fn an_id_conflict_overwrites_the_blueprint_where_it_is() {
    let env = Env::new();
    env.save("Blueprints/shared/team/x.blueprint.yaml", &bp_id("X v1", "bp-x"));
    let src = env.outside("x.yaml");
    fs::write(&src, bp_id("X v2", "bp-x")).unwrap();
    let opts = ImportOptions { on_conflict: OnConflict::Overwrite, ..ImportOptions::new() };
    let rep = env.import(std::slice::from_ref(&src), &opts);
    assert_eq!(rep.overwritten, ["Blueprints/shared/team/x.blueprint.yaml"]);
    assert!(!env.root().join("Blueprints/personal/x.blueprint.yaml").exists());
    // And now it is identical.
    let rep = env.import(&[src], &opts);
    assert_eq!(rep.identical, ["Blueprints/shared/team/x.blueprint.yaml"]);
}

#[test]
fn json_blueprints_become_yaml_and_the_report_says_so() {
    let env = Env::new();
    let src = env.outside("flow.json");
    fs::write(&src, r#"{"name": "From JSON", "tags": ["t"], "nodes": [{"id": "a", "type": "http", "parameters": {"url": "https://x.test"}}]}"#).unwrap();
    let bad = env.outside("bad.json");
    fs::write(&bad, "{\n  \"name\": \"x\",\n  oops\n}").unwrap();
    let plan = env.plan(&[src.clone(), bad.clone()], &ImportOptions::new());
    assert!(item(&plan, "flow.json").converted_from_json);
    assert_eq!(item(&plan, "bad.json").class, Class::Invalid);
    assert_eq!(item(&plan, "bad.json").line, Some(3));
    let rep = env.lib.import_apply(&plan, &ImportOptions::new(), None).unwrap();
    assert_eq!(rep.converted, ["Blueprints/personal/flow.blueprint.yaml"]);
    let it = env.lib.item("Blueprints/personal/flow.blueprint.yaml").unwrap();
    assert!(it.valid);
    assert_eq!(it.name, "From JSON");
    assert_eq!(it.tags, ["t"]);
    assert_eq!(rep.errors.len(), 1);
    assert!(rep.errors[0].error.contains("line 3"), "{:?}", rep.errors);
}

#[test]
fn yaml_bytes_are_kept_exactly_and_provenance_is_recorded() {
    let env = Env::new();
    let odd = "# a comment\nname:   Spaced   # trailing\r\nnodes: []\n\n\n";
    let src = env.outside("odd.yaml");
    fs::write(&src, odd).unwrap();
    let rep = env.import(std::slice::from_ref(&src), &ImportOptions::new());
    assert_eq!(rep.imported, ["Blueprints/personal/odd.blueprint.yaml"]);
    assert_eq!(fs::read_to_string(env.root().join("Blueprints/personal/odd.blueprint.yaml")).unwrap(), odd);
    let comp =
        blueprint::parse_companion(&fs::read(env.root().join("Blueprints/personal/odd.blueprint.meta.json")).unwrap())
            .unwrap();
    let prov = comp.provenance.unwrap();
    assert_eq!(prov["source"], src.display().to_string());
    assert!(chrono::DateTime::parse_from_rfc3339(prov["imported"].as_str().unwrap()).is_ok());
}

#[test]
fn folders_keep_their_structure_and_refuse_links_and_special_files() {
    let env = Env::new();
    let src = env.outside("flows");
    fs::create_dir_all(src.join("sales/eu")).unwrap();
    fs::create_dir_all(src.join(".git")).unwrap();
    fs::write(src.join("top.yaml"), bp("Top")).unwrap();
    fs::write(src.join("sales/eu/digest.blueprint.yaml"), bp("Digest")).unwrap();
    fs::write(
        src.join("sales/eu/digest.blueprint.meta.json"),
        r#"{"tags": ["crm"], "description": "From the companion"}"#,
    )
    .unwrap();
    fs::write(src.join("README.md"), "not a blueprint").unwrap();
    fs::write(src.join(".git/config.yaml"), bp("Hidden")).unwrap();
    let secret = env.outside("secret.yaml");
    fs::write(&secret, bp("Secret outside")).unwrap();
    std::os::unix::fs::symlink(&secret, src.join("link.yaml")).unwrap();
    std::os::unix::fs::symlink(env.outside(""), src.join("linked-dir")).unwrap();
    fs::write(env.outside("hard-src.yaml"), bp("Hard")).unwrap();
    fs::hard_link(env.outside("hard-src.yaml"), src.join("hard.yaml")).unwrap();
    let fifo = src.join("pipe.yaml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o644) }, 0);

    let plan = env.plan(std::slice::from_ref(&src), &ImportOptions::new());
    let mut got = classes(&plan);
    got.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(item(&plan, "top.yaml").target.as_deref(), Some("Blueprints/personal/flows/top.blueprint.yaml"));
    assert_eq!(
        item(&plan, "digest.blueprint.yaml").target.as_deref(),
        Some("Blueprints/personal/flows/sales/eu/digest.blueprint.yaml")
    );
    assert!(item(&plan, "digest.blueprint.yaml").has_companion);
    assert_eq!(item(&plan, "link.yaml").class, Class::Refused);
    assert_eq!(item(&plan, "linked-dir").class, Class::Refused);
    assert_eq!(item(&plan, "hard.yaml").class, Class::Refused);
    assert_eq!(item(&plan, "pipe.yaml").class, Class::Refused);
    assert!(plan.items.iter().all(|i| !i.source.contains(".git")), "hidden folders are skipped");
    assert!(plan.ignored.iter().any(|i| i.ends_with("README.md")));
    let rep = env.lib.import_apply(&plan, &ImportOptions::new(), None).unwrap();
    assert_eq!(rep.imported.len(), 2);
    assert_eq!(rep.errors.len(), 4, "{:?}", rep.errors);
    let digest = env.lib.item("Blueprints/personal/flows/sales/eu/digest.blueprint.yaml").unwrap();
    assert_eq!(digest.tags, ["crm"]);
    assert_eq!(digest.description.as_deref(), Some("From the companion"));
    assert!(!env.root().join("Blueprints/personal/flows/link.blueprint.yaml").exists());
}

unsafe extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}

#[test]
fn a_missing_source_is_an_error_and_the_rest_still_imports() {
    let env = Env::new();
    let good = env.outside("good.yaml");
    fs::write(&good, bp("Good")).unwrap();
    let notes = env.outside("notes.txt");
    fs::write(&notes, "hello").unwrap();
    let rep = env.import(&[env.outside("missing.yaml"), good, notes], &ImportOptions::new());
    assert_eq!(rep.imported, ["Blueprints/personal/good.blueprint.yaml"]);
    assert_eq!(rep.errors.len(), 2);
    assert!(rep.errors[0].source.ends_with("missing.yaml"));
}

#[test]
fn into_places_items_in_the_chosen_folder_and_refuses_bad_folders() {
    let env = Env::new();
    let src = env.outside("x.yaml");
    fs::write(&src, bp("X")).unwrap();
    let opts = ImportOptions { into: Some("Blueprints/shared/team".into()), ..ImportOptions::new() };
    let rep = env.import(std::slice::from_ref(&src), &opts);
    assert_eq!(rep.imported, ["Blueprints/shared/team/x.blueprint.yaml"]);
    let bad = ImportOptions { into: Some("../escape".into()), ..ImportOptions::new() };
    assert_eq!(env.lib.import_plan(&[src], &bad, None).unwrap_err().code(), "invalid_key");
}

// ---------------------------------------------------------------------------------------
// Hostile archives
// ---------------------------------------------------------------------------------------

#[test]
fn hostile_entry_names_and_types_are_refused_one_by_one() {
    let env = Env::new();
    let good = bp("Good");
    let mut z = RawZip::default();
    z.file("good.yaml", good.as_bytes())
        .file("../escape.yaml", bp("Escape").as_bytes())
        .file("a/../../escape2.yaml", bp("Escape").as_bytes())
        .file("/etc/x.yaml", bp("Abs").as_bytes())
        .file("C:\\x.yaml", bp("Drive").as_bytes())
        .file("C:x.yaml", bp("Drive").as_bytes())
        .file("dir\\sub.yaml", bp("Backslash").as_bytes())
        .file("a//b.yaml", bp("Empty").as_bytes())
        .file("con.yaml", bp("Device name").as_bytes())
        .add(RawEntry { name: b"link.yaml", data: b"/etc/passwd", mode: Some(0o120777), declared: None })
        .add(RawEntry { name: b"dev.yaml", data: b"", mode: Some(0o020644), declared: None })
        .add(RawEntry { name: b"fifo.yaml", data: b"", mode: Some(0o010644), declared: None })
        .add(RawEntry {
            name: b"bad-\xff\xfe.yaml",
            data: bp("Latin1").as_bytes(),
            mode: Some(0o100644),
            declared: None,
        })
        .file("ctl\u{1}.yaml", bp("Control").as_bytes())
        .file(&(vec!["d"; 40].join("/") + "/deep.yaml"), bp("Deep").as_bytes());
    let zip = write_zip(&env, "hostile.zip", &z);
    let (plan, rep) = import_hostile(&env, &zip);
    assert_eq!(rep.imported, ["Blueprints/personal/good.blueprint.yaml"]);
    let refused: Vec<&PlanItem> = plan.items.iter().filter(|i| i.class == Class::Refused).collect();
    assert_eq!(refused.len(), 14, "{:#?}", plan.items);
    for r in &refused {
        assert!(r.reason.as_deref().is_some_and(|s| !s.is_empty()));
    }
    assert!(item(&plan, "link.yaml").reason.as_deref().unwrap().contains("symbolic link"));
    assert!(item(&plan, "dev.yaml").reason.as_deref().unwrap().contains("not a regular file"));
    assert!(item(&plan, "escape.yaml").reason.as_deref().unwrap().contains(".."));
    assert_eq!(snapshot(&env.root().join("Blueprints")).keys().filter(|k| k.ends_with(".yaml")).count(), 1);
}

#[test]
fn a_zip_bomb_is_refused_by_ratio_and_by_its_real_size() {
    let env = Env::new();
    // An honest high-ratio entry: 8 MiB of one byte deflates to a few KiB.
    let p = env.outside("bomb.zip");
    {
        let f = fs::File::create(&p).unwrap();
        let mut zw = zip::ZipWriter::new(f);
        let o = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zw.start_file("ok.yaml", o).unwrap();
        zw.write_all(bp("Fine").as_bytes()).unwrap();
        zw.start_file("bomb.yaml", o).unwrap();
        let mut chunk = b"name: x\n".to_vec();
        chunk.resize(1 << 20, b' ');
        for _ in 0..8 {
            zw.write_all(&chunk).unwrap();
        }
        zw.finish().unwrap();
    }
    let (plan, rep) = import_hostile(&env, &p);
    assert_eq!(rep.imported, ["Blueprints/personal/ok.blueprint.yaml"]);
    assert!(item(&plan, "bomb.yaml").reason.as_deref().unwrap().contains("zip bomb"), "{:?}", plan.items);

    // A liar: declares 10 bytes, holds 100 KiB.
    let mut z = RawZip::default();
    let big = format!("name: liar\n{}", "#".repeat(100 * 1024));
    z.add(RawEntry { name: b"liar.yaml", data: big.as_bytes(), mode: None, declared: Some(10) });
    let zip = write_zip(&env, "liar.zip", &z);
    let (plan, _) = import_hostile(&env, &zip);
    assert_eq!(item(&plan, "liar.yaml").class, Class::Refused);
    let why = item(&plan, "liar.yaml").reason.clone().unwrap();
    assert!(why.contains("more bytes than") || why.contains("damaged"), "{why}");

    // Too large in all: the whole archive is refused before anything is decompressed.
    let mut z = RawZip::default();
    for i in 0..4 {
        z.file(&format!("f{i}.yaml"), bp(&format!("F{i}")).as_bytes());
    }
    let zip = write_zip(&env, "total.zip", &z);
    let opts = ImportOptions { limits: Limits { max_total_bytes: 100, ..Limits::default() }, ..ImportOptions::new() };
    let plan = env.lib.import_plan(&[zip], &opts, None).unwrap();
    assert!(plan.items.is_empty());
    assert_eq!(plan.errors.len(), 1);
    assert!(plan.errors[0].error.contains("expand"), "{:?}", plan.errors);
}

#[test]
fn thousands_of_tiny_entries_import_and_too_many_are_refused() {
    let env = Env::new();
    let mut z = RawZip::default();
    for i in 0..3000 {
        z.file(&format!("many/n{i:04}.yaml"), format!("name: N{i}\n").as_bytes());
    }
    let zip = write_zip(&env, "many.zip", &z);
    let (plan, rep) = import_hostile(&env, &zip);
    assert_eq!(plan.counts.new, 3000);
    assert_eq!(rep.imported.len(), 3000);
    assert_eq!(env.lib.info().unwrap().stats.items, 3000);
    let opts = ImportOptions { limits: Limits { max_entries: 1000, ..Limits::default() }, ..ImportOptions::new() };
    let plan = env.lib.import_plan(&[zip], &opts, None).unwrap();
    assert!(plan.items.is_empty());
    assert!(plan.errors[0].error.contains("entries"));
}

#[test]
fn duplicate_and_lookalike_entries_are_refused() {
    let env = Env::new();
    let mut z = RawZip::default();
    z.file("dup.yaml", bp("One").as_bytes()).file("dup.yaml", bp("Two").as_bytes());
    let zip = write_zip(&env, "dup.zip", &z);
    let (plan, rep) = import_hostile(&env, &zip);
    assert!(rep.imported.is_empty());
    assert!(plan.errors[0].error.contains("same name"), "{:?}", plan.errors);

    let mut z = RawZip::default();
    z.file("Case.yaml", bp("One").as_bytes()).file("case.yaml", bp("Two").as_bytes());
    z.file("Caf\u{e9}.yaml", bp("NFC").as_bytes()).file("Cafe\u{301}.yaml", bp("NFD").as_bytes());
    let zip = write_zip(&env, "lookalike.zip", &z);
    let (plan, rep) = import_hostile(&env, &zip);
    assert_eq!(rep.imported.len(), 2, "{:#?}", plan.items);
    assert_eq!(plan.counts.refused, 2);
}

#[test]
fn a_non_zip_and_a_truncated_zip_are_clear_errors() {
    let env = Env::new();
    let fake = env.outside("fake.zip");
    fs::write(&fake, "this is not a zip").unwrap();
    let mut z = RawZip::default();
    z.file("a.yaml", bp("A").as_bytes());
    let bytes = z.finish();
    let cut = env.outside("cut.zip");
    fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    let plan = env.plan(&[fake, cut], &ImportOptions::new());
    assert_eq!(plan.errors.len(), 2);
    assert!(plan.errors.iter().all(|e| e.error.contains("zip")), "{:?}", plan.errors);
}

// ---------------------------------------------------------------------------------------
// Round trip, idempotence, cancel, failure
// ---------------------------------------------------------------------------------------

fn populate(env: &Env) {
    env.save("Blueprints/personal/sales/digest.blueprint.yaml", "# keep me\nname: Digest\nid: d-1\nnodes: []\n");
    env.lib
        .save_blueprint(
            "Blueprints/shared/team/router.blueprint.yaml",
            bp_id("Router", "r-1").as_bytes(),
            &BlueprintSave {
                tags: Some(vec!["crm".into(), "slack".into()]),
                description: Some("Routes leads".into()),
                ..Default::default()
            },
        )
        .unwrap();
    env.save("Templates/東京 report.blueprint.yaml", "name: 東京\r\nnodes: []\r\n");
    // A companion with unknown fields, written by hand.
    fs::write(
        env.root().join("Blueprints/personal/sales/digest.blueprint.meta.json"),
        "{\n  \"tags\": [\"daily\"],\n  \"color\": \"blue\"\n}\n",
    )
    .unwrap();
    env.lib.reconcile().unwrap();
}

fn blueprint_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    snapshot(root).into_iter().filter(|(k, _)| k.ends_with(".blueprint.yaml") || k.ends_with(".meta.json")).collect()
}

#[test]
fn export_then_import_into_an_empty_library_gives_identical_bytes() {
    let a = Env::new();
    populate(&a);
    let paths: Vec<String> =
        blueprint_files(a.root()).keys().filter(|k| k.ends_with(".blueprint.yaml")).cloned().collect();
    let zip = a.outside("bundle.zip");
    let rep = a.lib.export(&paths, &zip, &ExportOptions::default(), None).unwrap();
    assert_eq!(rep.exported.len(), 3);
    assert_eq!(rep.kind, "bundle");

    // The manifest: format, version, every entry with its hash and companion.
    let mut archive = zip::ZipArchive::new(fs::File::open(&zip).unwrap()).unwrap();
    let manifest: Manifest = serde_json::from_reader(archive.by_name("manifest.json").unwrap()).unwrap();
    assert_eq!(manifest.format, bundle::MANIFEST_FORMAT);
    assert_eq!(manifest.version, 1);
    assert_eq!(manifest.entries.len(), 3);
    let router = manifest.entries.iter().find(|e| e.path.contains("router")).unwrap();
    assert_eq!(router.id.as_deref(), Some("r-1"));
    assert_eq!(router.sha256, bpv_engine::store::content_hash(bp_id("Router", "r-1").as_bytes()));
    assert_eq!(router.companion.as_deref(), Some("Blueprints/shared/team/router.blueprint.meta.json"));

    // Byte for byte, companions included (provenance off)…
    let b = Env::new();
    let opts = ImportOptions { record_provenance: false, ..ImportOptions::new() };
    let rep = b.import(std::slice::from_ref(&zip), &opts);
    assert_eq!(rep.imported.len(), 3, "{rep:?}");
    assert_eq!(blueprint_files(b.root()), blueprint_files(a.root()));
    let item_b = b.lib.item("Blueprints/shared/team/router.blueprint.yaml").unwrap();
    let item_a = a.lib.item("Blueprints/shared/team/router.blueprint.yaml").unwrap();
    assert_eq!((item_b.tags, item_b.description), (item_a.tags, item_a.description));

    // …and with provenance on, the YAML is identical and the companions differ only by it.
    let c = Env::new();
    c.import(std::slice::from_ref(&zip), &ImportOptions::new());
    let (fa, fc) = (blueprint_files(a.root()), blueprint_files(c.root()));
    for (path, bytes) in &fa {
        if path.ends_with(".blueprint.yaml") {
            assert_eq!(fc.get(path), Some(bytes), "{path}");
        } else {
            let mut ca = blueprint::parse_companion(bytes).unwrap();
            let mut cc = blueprint::parse_companion(&fc[path]).unwrap();
            let prov = cc.provenance.take().unwrap();
            assert_eq!(prov["source"], "bundle.zip");
            assert_eq!(prov["entry"], path.replace(".meta.json", ".yaml"));
            ca.provenance = None;
            assert_eq!(ca, cc, "{path}");
        }
    }
    // Idempotent: the second import finds everything identical and writes nothing.
    let before = snapshot(c.root());
    let rep = c.import(&[zip], &ImportOptions::new());
    assert!(rep.imported.is_empty());
    assert_eq!(rep.identical.len(), 3);
    assert_eq!(snapshot(c.root()), before);
}

#[test]
fn a_tampered_bundle_entry_is_caught_by_the_manifest_hash() {
    let a = Env::new();
    a.save("Blueprints/personal/x.blueprint.yaml", &bp("X"));
    let zip = a.outside("b.zip");
    a.lib.export(&["Blueprints/personal/x.blueprint.yaml".into()], &zip, &ExportOptions::default(), None).unwrap();
    // Rebuild the bundle with altered content but the original manifest.
    let mut archive = zip::ZipArchive::new(fs::File::open(&zip).unwrap()).unwrap();
    let mut manifest = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("manifest.json").unwrap(), &mut manifest).unwrap();
    let mut z = RawZip::default();
    z.file("Blueprints/personal/x.blueprint.yaml", bp("Evil").as_bytes())
        .file("Blueprints/personal/extra.blueprint.yaml", bp("Extra").as_bytes())
        .file("manifest.json", &manifest);
    let tampered = write_zip(&a, "tampered.zip", &z);
    let b = Env::new();
    let plan = b.plan(&[tampered], &ImportOptions::new());
    assert_eq!(item(&plan, "x.blueprint.yaml").class, Class::Invalid);
    assert!(item(&plan, "x.blueprint.yaml").reason.as_deref().unwrap().contains("manifest"));
    assert_eq!(item(&plan, "extra.blueprint.yaml").class, Class::Refused);
}

#[test]
fn a_cancel_or_a_change_since_the_dry_run_leaves_the_library_as_it_was() {
    let env = Env::new();
    env.save("Blueprints/personal/a.blueprint.yaml", &bp("A"));
    let src = env.outside("many");
    fs::create_dir_all(&src).unwrap();
    for i in 0..200 {
        fs::write(src.join(format!("n{i}.yaml")), bp(&format!("N{i}"))).unwrap();
    }
    fs::write(src.join("a.yaml"), bp("A changed")).unwrap();
    let before = snapshot(env.root());

    // Cancel while writing: nothing lands, no debris.
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = ImportOptions {
        cancel: Some(cancel.clone()),
        on_conflict: OnConflict::Overwrite,
        into: Some("Blueprints/personal".into()),
        ..ImportOptions::new()
    };
    let plan = env.lib.import_plan(std::slice::from_ref(&src), &opts, None).unwrap();
    let flag = cancel.clone();
    let progress = move |e: bpv_engine::transfer::ProgressEvent| {
        if e.phase == "writing" && e.done >= 64 {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let err = env.lib.import_apply(&plan, &opts, Some(&progress)).unwrap_err();
    assert_eq!(err.code(), "cancelled");
    assert_eq!(snapshot(env.root()), before);

    // A file changed between the dry run and the import: refused, nothing written.
    cancel.store(false, std::sync::atomic::Ordering::SeqCst);
    let plan = env.lib.import_plan(std::slice::from_ref(&src), &opts, None).unwrap();
    fs::write(env.root().join("Blueprints/personal/many/n5.blueprint.yaml"), bp("Sneaked in")).unwrap();
    let before = snapshot(env.root());
    let err = env.lib.import_apply(&plan, &opts, None).unwrap_err();
    assert_eq!(err.code(), "conflict", "{err}");
    assert_eq!(snapshot(env.root()), before);
}

// ---------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------

#[test]
fn export_to_a_folder_writes_yaml_and_companions_and_refuses_to_clobber() {
    let env = Env::new();
    populate(&env);
    let dest = env.outside("out");
    let one = vec!["Blueprints/shared/team/router.blueprint.yaml".to_owned()];
    let rep = env.lib.export(&one, &dest, &ExportOptions::default(), None).unwrap();
    assert_eq!(rep.kind, "folder");
    assert_eq!(rep.files, 2);
    assert_eq!(fs::read_to_string(dest.join("router.blueprint.yaml")).unwrap(), bp_id("Router", "r-1"));
    assert!(dest.join("router.blueprint.meta.json").exists());
    let err = env.lib.export(&one, &dest, &ExportOptions::default(), None).unwrap_err();
    assert_eq!(err.code(), "already_exists");
    // Many: structure below the shared folder.
    let dest2 = env.outside("out2");
    let many = vec![
        "Blueprints/shared/team/router.blueprint.yaml".to_owned(),
        "Blueprints/personal/sales/digest.blueprint.yaml".to_owned(),
    ];
    env.lib.export(&many, &dest2, &ExportOptions::default(), None).unwrap();
    assert!(dest2.join("shared/team/router.blueprint.yaml").exists());
    assert!(dest2.join("personal/sales/digest.blueprint.meta.json").exists());
    // And the folder imports back.
    let b = Env::new();
    let rep = b.import(std::slice::from_ref(&dest2), &ImportOptions::new());
    assert_eq!(rep.imported.len(), 2);
    assert!(b.root().join("Blueprints/personal/out2/shared/team/router.blueprint.yaml").exists());
    // Missing path: a clear not_found.
    assert_eq!(
        env.lib
            .export(&["Blueprints/nope.blueprint.yaml".into()], &env.outside("x.zip"), &ExportOptions::default(), None)
            .unwrap_err()
            .code(),
        "not_found"
    );
}

#[test]
fn secrets_are_flagged_and_refused_unless_allowed() {
    let env = Env::new();
    env.save(
        "Blueprints/personal/leaky.blueprint.yaml",
        "name: Leaky\nnodes:\n  - id: a\n    type: http\n    parameters:\n      auth: Bearer sk-proj-abcdefghijklmnopqrstuvwx12\n",
    );
    env.save(
        "Blueprints/personal/clean.blueprint.yaml",
        "name: Clean\nnodes:\n  - id: a\n    type: http\n    parameters:\n      auth: ${secret:OPENAI}\n",
    );
    let paths = vec![
        "Blueprints/personal/leaky.blueprint.yaml".to_owned(),
        "Blueprints/personal/clean.blueprint.yaml".to_owned(),
    ];
    let zip = env.outside("s.zip");
    let err = env.lib.export(&paths, &zip, &ExportOptions::default(), None).unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    assert!(err.to_string().contains("leaky.blueprint.yaml line 6"), "{err}");
    assert!(!zip.exists());
    assert!(fs::read_dir(zip.parent().unwrap()).unwrap().next().is_none(), "no temp left");
    let rep = env.lib.export(&paths, &zip, &ExportOptions { allow_secrets: true, ..Default::default() }, None).unwrap();
    assert_eq!(rep.warnings.len(), 1);
    assert_eq!(rep.warnings[0].kind, "openai_key");
    assert!(!serde_json::to_string(&rep).unwrap().contains("abcdefghijklmnop"), "the secret itself is never reported");
    assert!(zip.exists());
    // Only the clean one: no warnings.
    let rep = env.lib.export(&paths[1..], &env.outside("c.zip"), &ExportOptions::default(), None).unwrap();
    assert!(rep.warnings.is_empty());
}

// ---------------------------------------------------------------------------------------
// The fuzz targets' logic, as property tests on stable
// ---------------------------------------------------------------------------------------

mod fuzz_logic {
    use proptest::prelude::*;

    use super::{RawEntry, RawZip};
    use bpv_engine::transfer::fuzz;

    fn hostile_name() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                Just(b"../".to_vec()),
                Just(b"/".to_vec()),
                Just(b"\\".to_vec()),
                Just(b"C:".to_vec()),
                Just(b".".to_vec()),
                Just(b"a".to_vec()),
                Just(b"x.yaml".to_vec()),
                Just(b"x.blueprint.yaml".to_vec()),
                Just(b"x.blueprint.meta.json".to_vec()),
                Just(b"manifest.json".to_vec()),
                Just(vec![0xff]),
                Just(vec![0]),
                Just("é".as_bytes().to_vec()),
            ],
            1..6,
        )
        .prop_map(|parts| parts.concat())
    }

    fn entry() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, Option<u32>, Option<u32>)> {
        (
            hostile_name(),
            prop_oneof![
                Just(b"name: x\n".to_vec()),
                Just(b"{\"name\": \"j\"}".to_vec()),
                Just(
                    b"{\"format\":\"blueprint-vault-bundle\",\"version\":1,\"created\":\"x\",\"entries\":[]}".to_vec()
                ),
                prop::collection::vec(any::<u8>(), 0..200),
            ],
            prop::option::of(prop_oneof![
                Just(0o100644u32),
                Just(0o120777),
                Just(0o040755),
                Just(0o020644),
                any::<u32>()
            ]),
            prop::option::of(0u32..100_000),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        #[test]
        fn the_bundle_reader_accepts_only_safe_entries(entries in prop::collection::vec(entry(), 0..12)) {
            let mut z = RawZip::default();
            for (name, data, mode, declared) in &entries {
                z.add(RawEntry { name, data, mode: *mode, declared: *declared });
            }
            fuzz::bundle_reader(&z.finish());
        }

        #[test]
        fn the_bundle_reader_survives_damaged_archives(
            entries in prop::collection::vec(entry(), 1..6),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut z = RawZip::default();
            for (name, data, mode, declared) in &entries {
                z.add(RawEntry { name, data, mode: *mode, declared: *declared });
            }
            let mut bytes = z.finish();
            for (at, val) in flips {
                let i = at.index(bytes.len());
                bytes[i] = val;
            }
            fuzz::bundle_reader(&bytes);
        }

        #[test]
        fn import_parsing_never_panics(data in prop::collection::vec(any::<u8>(), 0..400)) {
            fuzz::import_parse(&data);
        }

        #[test]
        fn json_names_survive_conversion(name in "[^\u{0}]{1,40}") {
            let json = serde_json::json!({ "name": name }).to_string();
            fuzz::import_parse(json.as_bytes());
        }
    }
}

/// The committed fuzz seed corpora run through the same checks on every `cargo test`.
#[test]
fn the_fuzz_seed_corpora_pass_the_fuzz_checks() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut n = 0;
    for (target, check) in [
        ("bundle_reader", bpv_engine::transfer::fuzz::bundle_reader as fn(&[u8])),
        ("import_parse", bpv_engine::transfer::fuzz::import_parse),
    ] {
        for e in fs::read_dir(corpus.join(target)).unwrap() {
            check(&fs::read(e.unwrap().path()).unwrap());
            n += 1;
        }
    }
    assert!(n >= 6);
}

#[test]
fn a_very_deep_folder_is_refused_below_the_limit_and_new_items_can_be_left_out() {
    let env = Env::new();
    let src = env.outside("deep");
    let mut p = src.clone();
    for i in 0..30 {
        p = p.join(format!("d{i}"));
    }
    fs::create_dir_all(&p).unwrap();
    fs::write(p.join("bottom.yaml"), bp("Bottom")).unwrap();
    fs::write(src.join("top.yaml"), bp("Top")).unwrap();
    let mut opts = ImportOptions::new();
    let plan = env.plan(std::slice::from_ref(&src), &opts);
    assert!(plan.items.iter().any(|i| i.class == Class::Refused && i.reason.as_deref().unwrap().contains("deeper")));
    assert_eq!(plan.counts.new, 1);
    // A per-item Skip leaves a new item out.
    opts.decisions.insert(item(&plan, "top.yaml").n, Decision::Skip);
    let rep = env.lib.import_apply(&plan, &opts, None).unwrap();
    assert!(rep.imported.is_empty());
    assert_eq!(rep.skipped, ["Blueprints/personal/deep/top.blueprint.yaml"]);
    assert!(!env.root().join("Blueprints/personal/deep").exists());
}
