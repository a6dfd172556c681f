//! Fault injection (feature `fault-injection`): every engine write path is failed at
//! every file operation it makes, with EIO and with ENOSPC, and cut by a power loss at
//! every operation. Run: `cargo test -p bpv-engine --features fault-injection --test faults`.
//!
//! Contract checked:
//! - a failed operation returns an error (`disk_full` for ENOSPC, `io` for EIO) and the
//!   library folder is byte-for-byte as it was, the private area too (but for the kept
//!   history copy of the current version, which is harmless), with no temp file left;
//! - after a power loss (only what was fsynced survives) every acknowledged write is
//!   there and whole, the operation in flight is all-or-nothing, nothing is empty or
//!   torn, and the reopened index equals a fresh reindex.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bpv_engine::backup::{self, BackupOptions, CancelToken, Repo};
use bpv_engine::fault::{self, Fault, Op, Plan};
use bpv_engine::index::ListQuery;
use bpv_engine::library::{BlueprintSave, Library, MetaUpdate, OpenOptions};
use bpv_engine::store::{BatchOp, SaveOptions};
use bpv_engine::transfer::ImportOptions;
use bpv_engine::{Key, Result};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    root: PathBuf,
    data: PathBuf,
}

impl Fixture {
    /// A library with two blueprints (one with a companion) and an import source.
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fs::canonicalize(tmp.path()).unwrap();
        let f = Fixture { root: dir.join("lib"), data: dir.join("data"), dir, _tmp: tmp };
        let lib = f.open();
        let tagged = BlueprintSave { tags: Some(vec!["old".into()]), ..Default::default() };
        lib.save_blueprint("Blueprints/a.blueprint.yaml", &yaml("a", 1), &tagged).unwrap();
        lib.save_blueprint("Blueprints/b.blueprint.yaml", &yaml("b", 1), &BlueprintSave::default()).unwrap();
        let src = f.dir.join("incoming");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("x.blueprint.yaml"), yaml("x", 1)).unwrap();
        fs::write(src.join("sub/y.blueprint.yaml"), yaml("y", 1)).unwrap();
        f
    }

    fn open(&self) -> Library {
        let mut o = OpenOptions::new(&self.root);
        o.data_dir = Some(self.data.clone());
        o.create = true;
        Library::open(o).unwrap()
    }

    fn roots(&self) -> Vec<PathBuf> {
        vec![self.root.clone(), self.data.clone(), self.dir.join("repo")]
    }
}

fn yaml(name: &str, version: u32) -> Vec<u8> {
    format!("name: {name}\ndescription: version {version}\nnodes:\n  - id: n{version}\n    type: t\n").into_bytes()
}

/// Every file under `dir` (hidden ones too) and its bytes, but SQLite's and lock files.
fn tree(dir: &Path, skip_history: bool) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).into_iter().flatten().filter(|e| e.file_type().is_file()) {
        let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        let name = e.file_name().to_string_lossy();
        if name.starts_with("index.sqlite") || name.ends_with(".lock") {
            continue;
        }
        if skip_history && rel.split('/').any(|c| c == "versions") {
            continue;
        }
        out.insert(rel, fs::read(e.path()).unwrap());
    }
    out
}

type Operation = fn(&Fixture, &Library) -> Result<()>;

fn save_new(_: &Fixture, lib: &Library) -> Result<()> {
    lib.save_blueprint("Blueprints/deep/new.blueprint.yaml", &yaml("new", 1), &BlueprintSave::default()).map(drop)
}

fn save_over(_: &Fixture, lib: &Library) -> Result<()> {
    lib.save_blueprint("Blueprints/b.blueprint.yaml", &yaml("b", 2), &BlueprintSave::default()).map(drop)
}

fn save_with_companion(_: &Fixture, lib: &Library) -> Result<()> {
    let opts = BlueprintSave { tags: Some(vec!["new".into()]), description: Some("d".into()), ..Default::default() };
    lib.save_blueprint("Blueprints/a.blueprint.yaml", &yaml("a", 2), &opts).map(drop)
}

fn update_meta(_: &Fixture, lib: &Library) -> Result<()> {
    let up = MetaUpdate { tags: Some(vec!["t1".into(), "t2".into()]), ..Default::default() };
    lib.update_meta("Blueprints/a.blueprint.yaml", &up).map(drop)
}

fn delete(_: &Fixture, lib: &Library) -> Result<()> {
    lib.delete("Blueprints/a.blueprint.yaml").map(drop)
}

fn rename(_: &Fixture, lib: &Library) -> Result<()> {
    lib.rename("Blueprints/a.blueprint.yaml", "Blueprints/moved/a2.blueprint.yaml", None).map(drop)
}

fn batch(_: &Fixture, lib: &Library) -> Result<()> {
    let key = |k: &str| Key::new(k).unwrap();
    let tagged = SaveOptions { tags: vec!["batch".into()], ..Default::default() };
    lib.apply_batch(&[
        BatchOp::Put { key: key("Blueprints/b.blueprint.yaml"), data: yaml("b", 3), options: tagged },
        BatchOp::Put { key: key("Blueprints/n/c.blueprint.yaml"), data: yaml("c", 1), options: SaveOptions::default() },
        BatchOp::Delete { key: key("Blueprints/a.blueprint.yaml") },
    ])
}

fn import(f: &Fixture, lib: &Library) -> Result<()> {
    let opts = ImportOptions::new();
    let plan = lib.import_plan(&[f.dir.join("incoming")], &opts, None)?;
    lib.import_apply(&plan, &opts, None).map(drop)
}

fn run_backup(f: &Fixture, lib: &Library) -> Result<()> {
    backup::backup(lib, &BackupOptions { repo: Some(f.dir.join("repo")), ..Default::default() }).map(drop)
}

fn no_setup(_: &Fixture, _: &Library) -> Result<()> {
    Ok(())
}

fn trash_restore(_: &Fixture, lib: &Library) -> Result<()> {
    lib.trash_restore("Blueprints/a.blueprint.yaml").map(drop)
}

/// (name, setup, operation, journalled): a journalled operation has a commit point after
/// which a failure leaves it to be completed by the next open. The setup runs unfaulted.
const OPERATIONS: &[(&str, Operation, Operation, bool)] = &[
    ("save (new file, new folder)", no_setup, save_new, false),
    ("save (replace)", no_setup, save_over, false),
    ("save with companion", no_setup, save_with_companion, false),
    ("update_meta", no_setup, update_meta, false),
    ("delete to trash", no_setup, delete, false),
    ("trash restore", delete, trash_restore, false),
    ("rename (with companion and history)", no_setup, rename, true),
    ("batch", no_setup, batch, true),
    ("import apply", no_setup, import, true),
];

/// The library as users see it: the files of the library folder (companions without
/// their timestamps), what the trash holds, pending journals and stray temp files.
fn visible(f: &Fixture) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (rel, bytes) in tree(&f.root, false) {
        let bytes = if rel.ends_with(".meta.json") { strip_times(&bytes) } else { bytes };
        out.insert(format!("lib/{rel}"), bytes);
    }
    let mut trash: Vec<Vec<u8>> = Vec::new();
    for (rel, bytes) in tree(&f.data, true) {
        let name = rel.rsplit('/').next().unwrap_or_default().to_owned();
        if rel.contains("/trash/") && name != "entry.json" {
            trash.push([name.as_bytes(), b":", &strip_times(&bytes)].concat());
        } else if rel.contains("/journal/") || name.contains(".bpv-tmp-") {
            out.insert(format!("data/{rel}"), bytes);
        }
    }
    trash.sort();
    out.insert("trash".into(), trash.concat());
    out
}

fn strip_times(bytes: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(mut m)) => {
            // Timestamps (and the import's provenance, which holds one) differ run to run.
            m.remove("created");
            m.remove("modified");
            m.remove("provenance");
            serde_json::to_vec(&m).unwrap()
        }
        _ => bytes.to_vec(),
    }
}

fn diff(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let changed = b.iter().filter(|(k, v)| a.get(*k) != Some(v)).map(|(k, _)| format!("+{k}"));
    changed.chain(a.keys().filter(|k| !b.contains_key(*k)).map(|k| format!("-{k}"))).collect()
}

/// Fail the Nth operation for every N the operation reaches; check each outcome.
/// Returns how many file operations the operation makes.
fn fail_everywhere(
    name: &str,
    setup: Operation,
    op: Operation,
    journalled: bool,
    fault_kind: Fault,
    problems: &mut Vec<String>,
) -> u64 {
    let done = {
        let f = Fixture::new();
        let lib = f.open();
        setup(&f, &lib).unwrap();
        op(&f, &lib).unwrap();
        visible(&f)
    };
    for n in 1.. {
        let f = Fixture::new();
        let lib = f.open();
        setup(&f, &lib).unwrap();
        let before = visible(&f);
        let injector = fault::install(Plan { roots: f.roots(), fail_at: Some((n, fault_kind)), ..Default::default() });
        let result = op(&f, &lib);
        let fired = injector.fired();
        drop(injector);
        let Some((_, kind, path)) = fired else {
            if let Err(e) = result {
                problems.push(format!("{name}: fails with no fault injected: {e}"));
            }
            return n - 1;
        };
        let at = format!("{name}, {fault_kind:?} at op {n} ({kind:?} {})", path.display());
        match &result {
            // Absorbed in a best-effort step (a cleanup): the operation must then be whole.
            Ok(()) => {}
            Err(e) => {
                let want = if fault_kind == Fault::DiskFull { "disk_full" } else { "io" };
                if e.code() != want {
                    problems.push(format!("{at}: error code {} (want {want}): {e}", e.code()));
                }
            }
        }
        // After the failure and a reopen (which rolls a committed journal forward), the
        // library is as it was; for a journalled operation whose failure came after its
        // journal was written, as the whole operation leaves it. Never in between.
        drop(lib);
        let lib = f.open();
        let after = visible(&f);
        if result.is_ok() && after != done {
            problems.push(format!("{at}: succeeded but incomplete: {:?}", diff(&done, &after)));
        } else if result.is_err() && after != before && (!journalled || after != done) {
            problems.push(format!("{at}: half done: {:?} (vs done: {:?})", diff(&before, &after), diff(&done, &after)));
        }
        // The library still works: the operation (or, if it happened, a reindex) succeeds.
        if after == before
            && let Err(e) = op(&f, &lib)
        {
            problems.push(format!("{at}: the retry after the failure fails: {e}"));
        }
        if let Err(e) = lib.reindex(None) {
            problems.push(format!("{at}: the library no longer indexes: {e}"));
        }
    }
    0
}

#[test]
fn every_failed_file_operation_leaves_the_library_as_it_was() {
    let mut problems = Vec::new();
    for (name, setup, op, journalled) in OPERATIONS {
        for kind in [Fault::Eio, Fault::DiskFull] {
            let points = fail_everywhere(name, *setup, *op, *journalled, kind, &mut problems);
            eprintln!("faults: {name}: {points} file operations, each failed with {kind:?}");
            assert!(points >= 3, "{name}: only {points} file operations seen: is it routed through the seam?");
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn a_failed_backup_keeps_earlier_snapshots_and_the_repository_verifies() {
    let mut problems = Vec::new();
    for n in 1.. {
        let f = Fixture::new();
        let lib = f.open();
        run_backup(&f, &lib).unwrap();
        lib.save_blueprint("Blueprints/b.blueprint.yaml", &yaml("b", 9), &BlueprintSave::default()).unwrap();
        let repo_before = tree(&f.dir.join("repo"), false);
        let injector =
            fault::install(Plan { roots: f.roots(), fail_at: Some((n, Fault::DiskFull)), ..Default::default() });
        let result = run_backup(&f, &lib);
        let fired = injector.fired();
        drop(injector);
        if fired.is_none() {
            assert!(n > 3, "backup made only {} file operations", n - 1);
            break;
        }
        let at = format!("backup, DiskFull at op {n} ({:?})", fired);
        if let Err(e) = &result
            && e.code() != "disk_full"
        {
            problems.push(format!("{at}: error code {}: {e}", e.code()));
        }
        let repo = Repo::open(&f.dir.join("repo")).unwrap();
        let ids = repo.snapshot_ids().unwrap();
        // A failure after the manifest's rename (its folder's fsync) may leave the new
        // snapshot, complete; never more, and never a broken one (checked below).
        if result.is_err() && ids.len() > 2 {
            problems.push(format!("{at}: failed but left {} snapshots", ids.len()));
        }
        for id in &ids {
            match repo.verify(id, None, &CancelToken::new()) {
                Ok(r) if r.ok => {}
                other => problems.push(format!("{at}: snapshot {id} does not verify: {other:?}")),
            }
        }
        // Earlier snapshots' files are untouched (only new files may remain as debris-free additions).
        let repo_after = tree(&f.dir.join("repo"), false);
        for (k, v) in &repo_before {
            if repo_after.get(k) != Some(v) {
                problems.push(format!("{at}: {k} changed or vanished"));
            }
        }
        if repo_after.keys().any(|k| k.contains(".bpv-tmp-")) {
            problems.push(format!("{at}: temp file left in the repository"));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// Incompressible bytes (xorshift), so that a few files fill several packs.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn a_pack_that_fails_while_finished_in_the_background_fails_the_backup_cleanly() {
    // 12 MB that does not compress: full packs (4 MB) go to the finisher thread, so a
    // failure there (fsync, rename, the folder's fsync) must still stop the backup with
    // the disk's error, leave no snapshot and no temp file, and keep the earlier one.
    // Only the first such operation fails: the first full pack's, on the finisher (the
    // last pack, finished by the backup's own thread, would fail the backup anyway).
    for (op, what) in [(Op::Fsync, ".new.pack"), (Op::Rename, ".new.pack"), (Op::DirFsync, "packs")] {
        let f = Fixture::new();
        let lib = f.open();
        run_backup(&f, &lib).unwrap();
        for i in 0..24 {
            fs::write(f.root.join(format!("Templates/blob{i}.bin")), noise(512 * 1024, i + 1)).unwrap();
        }
        let repo_before = tree(&f.dir.join("repo"), false);
        let injector = fault::install(Plan {
            roots: f.roots(),
            fail_matching: Some((op, what.into(), Fault::DiskFull)),
            matching_once: true,
            ..Default::default()
        });
        let result = run_backup(&f, &lib);
        let fired = injector.fired();
        drop(injector);
        let at = format!("{op:?} of {what}");
        assert!(fired.is_some(), "{at}: nothing failed");
        let err = result.expect_err(&at);
        assert_eq!(err.code(), "disk_full", "{at}: {err}");
        let repo = Repo::open(&f.dir.join("repo")).unwrap();
        let ids = repo.snapshot_ids().unwrap();
        assert_eq!(ids.len(), 1, "{at}: {ids:?}");
        assert!(repo.verify(&ids[0], None, &CancelToken::new()).unwrap().ok, "{at}");
        let repo_after = tree(&f.dir.join("repo"), false);
        for (k, v) in &repo_before {
            assert_eq!(repo_after.get(k), Some(v), "{at}: {k} changed or vanished");
        }
        assert!(!repo_after.keys().any(|k| k.contains(".bpv-tmp-")), "{at}: temp file left: {:?}", repo_after.keys());
        // And with the disk working again, the same backup goes through.
        run_backup(&f, &lib).unwrap();
    }
}

/// A compressed frame that does not decode to what was read (a compressor defect, memory
/// going bad) is never stored: the backup fails and the repository is as it was. A backup
/// whose caller verifies it whole right after (the app) skips that in-memory check, and
/// its verify names the damage; the next backup, checked again, stores good copies.
#[test]
fn a_frame_that_does_not_decode_is_never_stored_unless_a_verify_follows() {
    let f = Fixture::new();
    let lib = f.open();
    run_backup(&f, &lib).unwrap();
    fs::write(f.root.join("Blueprints/c.blueprint.yaml"), yaml("c", 1)).unwrap();
    let repo_dir = f.dir.join("repo");
    let repo_before = tree(&repo_dir, false);
    let injector = fault::install(Plan { roots: f.roots(), damage_compressed: true, ..Default::default() });

    let err = run_backup(&f, &lib).expect_err("a frame that does not decode is refused");
    assert_eq!(err.code(), "corrupt", "{err}");
    assert!(err.to_string().contains("does not decode to the content"), "{err}");
    assert_eq!(tree(&repo_dir, false), repo_before, "the repository is as it was");

    let opts = BackupOptions { repo: Some(repo_dir.clone()), verified_after: true, ..Default::default() };
    let unchecked = backup::backup(&lib, &opts).unwrap();
    drop(injector);
    let v = Repo::open(&repo_dir).unwrap().verify(&unchecked.id, None, &CancelToken::new()).unwrap();
    assert!(!v.ok && !v.problems.is_empty(), "the verify that follows finds the damaged frames");

    let again = backup::backup(&lib, &BackupOptions { repo: Some(repo_dir.clone()), ..Default::default() }).unwrap();
    let repo = Repo::open(&repo_dir).unwrap();
    let v = repo.verify(&again.id, None, &CancelToken::new()).unwrap();
    assert!(v.ok, "{:?}", v.problems);
    let (_, data) = repo.read_file(&again.id, "Blueprints/c.blueprint.yaml").unwrap();
    assert_eq!(data, yaml("c", 1));
}

/// A backup whose verification fails is a failed backup (issue 21 §3): objects damaged
/// between their write and the verify make `backup_verified` an error, the snapshot's
/// manifest is gone (not listed, not a parent, not restorable), and the next attempt,
/// with the disk good again, is a verified snapshot.
#[test]
fn a_backup_that_fails_its_verification_is_an_error_and_leaves_no_snapshot() {
    let f = Fixture::new();
    let lib = f.open();
    run_backup(&f, &lib).unwrap();
    fs::write(f.root.join("Blueprints/c.blueprint.yaml"), yaml("c", 2)).unwrap();
    let repo_dir = f.dir.join("repo");
    let before: Vec<String> = Repo::open(&repo_dir).unwrap().snapshots().unwrap().into_iter().map(|s| s.id).collect();
    let opts = BackupOptions { repo: Some(repo_dir.clone()), verified_after: true, ..Default::default() };

    let injector = fault::install(Plan { roots: f.roots(), damage_compressed: true, ..Default::default() });
    let err = backup::backup_verified(&lib, &opts, None).expect_err("a snapshot that fails its verify is no backup");
    drop(injector);
    assert_eq!(err.code(), "corrupt", "{err}");
    assert!(err.to_string().contains("failed its verification"), "{err}");
    let after: Vec<String> = Repo::open(&repo_dir).unwrap().snapshots().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(after, before, "the failed snapshot is not listed");

    let (report, verify) = backup::backup_verified(&lib, &opts, None).unwrap();
    assert!(verify.ok, "{:?}", verify.problems);
    let repo = Repo::open(&repo_dir).unwrap();
    assert_eq!(repo.snapshots().unwrap()[0].id, report.id);
    assert_eq!(repo.read_file(&report.id, "Blueprints/c.blueprint.yaml").unwrap().1, yaml("c", 2));
}

/// What a blueprint's file may hold after a power loss: acknowledged content, or
/// either side of the operation in flight.
type Expect = BTreeMap<String, Vec<Option<Vec<u8>>>>;

fn files_now(root: &Path) -> BTreeMap<String, Vec<u8>> {
    tree(root, false).into_iter().filter(|(k, _)| k.ends_with(".blueprint.yaml")).collect()
}

#[test]
fn after_a_power_loss_at_any_point_no_acknowledged_write_is_lost() {
    let steps: &[(&str, Operation)] = &[
        ("save new", save_new),
        ("save replace", save_over),
        ("save with companion", save_with_companion),
        ("update_meta", update_meta),
        ("batch", batch),
        ("import", import),
        ("delete", |_, lib| lib.delete("Blueprints/deep/new.blueprint.yaml").map(drop)),
        ("backup", run_backup),
    ];
    let mut problems = Vec::new();
    for n in 1.. {
        let f = Fixture::new();
        let lib = f.open();
        let injector = fault::install(Plan {
            roots: f.roots(),
            fail_at: Some((n, Fault::PowerLoss)),
            record: true,
            ..Default::default()
        });
        // Acknowledged state of each blueprint after each step, and the step in flight.
        let mut acked = files_now(&f.root);
        let mut in_flight: Option<(&str, BTreeMap<String, Vec<u8>>)> = None;
        for (name, step) in steps {
            // Run the step on a scratch copy? No: compute its effect from the live run.
            match step(&f, &lib) {
                Ok(()) => acked = files_now(&f.root),
                Err(_) => {
                    in_flight = Some((name, acked.clone()));
                    break;
                }
            }
        }
        let fired = injector.fired();
        injector.power_loss().unwrap();
        drop(injector);
        drop(lib);
        let Some((_, op, path)) = fired else {
            eprintln!("faults: power cut at each of {} operations of the save/batch/import/delete sequence", n - 1);
            break;
        };
        let at = format!("power loss at op {n} ({op:?} {})", path.display());
        let lib = f.open();
        let after = files_now(&f.root);
        // Every acknowledged file is there and whole; at most the step in flight differs.
        let flight = in_flight.as_ref().map(|(name, _)| *name).unwrap_or("none");
        let mut expect: Expect = BTreeMap::new();
        for (k, v) in &acked {
            expect.entry(k.clone()).or_default().push(Some(v.clone()));
        }
        for (k, v) in &after {
            let ok = expect.get(k).is_some_and(|vs| vs.contains(&Some(v.clone())));
            // A file of the step in flight: whole new content (a version the steps write).
            let whole_new =
                (2..=3).chain(1..=1).any(|ver| ["a", "b", "c", "new", "x", "y"].iter().any(|nm| *v == yaml(nm, ver)));
            if !ok && !whole_new {
                problems.push(format!("{at} (in flight: {flight}): {k} holds {:?}", String::from_utf8_lossy(v)));
            }
        }
        for k in acked.keys() {
            // A delete in flight may have removed an acknowledged file; nothing else may.
            if !after.contains_key(k) && !matches!(flight, "delete" | "batch") {
                problems.push(format!("{at} (in flight: {flight}): acknowledged {k} is gone"));
            }
        }
        let all = tree(&f.root, false);
        for (k, v) in &all {
            let name = k.rsplit('/').next().unwrap_or_default();
            if v.is_empty() {
                problems.push(format!("{at}: {k} is empty"));
            }
            if name.contains(".bpv-tmp-") && name.ends_with(".blueprint.yaml") {
                problems.push(format!("{at}: temp {k} looks like a blueprint"));
            }
        }
        let listed = |lib: &Library| {
            let q = ListQuery { limit: 1000, ..Default::default() };
            let mut v: Vec<(String, String)> =
                lib.list(&q).unwrap().items.into_iter().map(|i| (i.path, i.hash)).collect();
            v.sort();
            v
        };
        let reopened = listed(&lib);
        lib.reindex(None).unwrap();
        if reopened != listed(&lib) {
            problems.push(format!("{at}: the reopened index differs from a fresh reindex"));
        }
        // Backups still work (a cut during the repository's creation included), and
        // every snapshot that survived the power loss is whole.
        if let Err(e) = run_backup(&f, &lib) {
            problems.push(format!("{at}: a backup after the power loss fails: {e}"));
        }
        if let Ok(repo) = Repo::open(&f.dir.join("repo")) {
            for id in repo.snapshot_ids().unwrap_or_default() {
                match repo.verify(&id, None, &CancelToken::new()) {
                    Ok(r) if r.ok => {}
                    other => problems.push(format!("{at}: snapshot {id} does not verify: {other:?}")),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// A failed fsync is final: when every fsync (of files, or of folders) fails, every write
/// operation fails too, none reports success after retrying, and the library is as it was.
#[test]
fn a_failed_fsync_fails_the_operation_and_is_never_retried_into_success() {
    use bpv_engine::fault::Op;
    let mut problems = Vec::new();
    for kind in [Op::Fsync, Op::DirFsync] {
        for (name, setup, op, _) in OPERATIONS {
            let f = Fixture::new();
            let lib = f.open();
            setup(&f, &lib).unwrap();
            let before = visible(&f);
            let injector = fault::install(Plan {
                roots: f.roots(),
                fail_matching: Some((kind, String::new(), Fault::Eio)),
                ..Default::default()
            });
            let result = op(&f, &lib);
            let fired = injector.fired();
            drop(injector);
            if fired.is_none() {
                // Nothing of that kind to sync (a restore from the trash only renames).
                continue;
            }
            match result {
                Ok(()) => problems.push(format!("{name}: succeeded although every {kind:?} failed")),
                Err(e) if e.code() != "io" => {
                    problems.push(format!("{name}: {kind:?} failure reported as {}", e.code()))
                }
                Err(_) => {}
            }
            drop(lib);
            let _ = f.open();
            let after = visible(&f);
            if after != before {
                problems.push(format!(
                    "{name}: every {kind:?} failed but the library changed: {:?}",
                    diff(&before, &after)
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// A disk that fills up during a backup (3 MB of incompressible files and less room than
/// that): for each write of the backup in turn, the free space is set so that this write
/// does not fit, and every later write and file creation fails with ENOSPC, as on a full
/// disk. The backup fails with `disk_full` and a message a person can act on, leaves no
/// temp file, and the earlier snapshot is untouched, verifies and restores.
#[test]
fn a_disk_that_fills_at_any_write_of_a_backup_fails_it_cleanly() {
    let setup = || {
        let f = Fixture::new();
        let lib = f.open();
        run_backup(&f, &lib).unwrap();
        fs::create_dir_all(f.root.join("Templates")).unwrap();
        for i in 0..6 {
            fs::write(f.root.join(format!("Templates/rand{i}.bin")), noise(512 * 1024, 100 + 2 * i)).unwrap();
        }
        (f, lib)
    };
    // Where the second backup's writes end, one by one, with all the room it needs.
    let ends = {
        let (f, lib) = setup();
        let injector = fault::install(Plan { roots: vec![f.dir.join("repo")], ..Default::default() });
        run_backup(&f, &lib).unwrap();
        injector.write_ends()
    };
    assert!(ends.len() >= 3 && ends.last().is_some_and(|&n| n > 3 * 512 * 1024), "writes: {ends:?}");
    eprintln!(
        "faults: a backup of 3 MB makes {} writes ({} bytes); the disk fills inside each",
        ends.len(),
        ends.last().copied().unwrap_or(0)
    );
    let mut problems = Vec::new();
    let mut start = 0;
    for (k, &end) in ends.iter().enumerate() {
        let free = start + (end - start) / 2;
        start = end;
        let (f, lib) = setup();
        let repo_dir = f.dir.join("repo");
        let repo_before = tree(&repo_dir, false);
        let first = Repo::open(&repo_dir).unwrap().snapshot_ids().unwrap();
        let injector =
            fault::install(Plan { roots: vec![repo_dir.clone()], disk_free: Some(free), ..Default::default() });
        let result = run_backup(&f, &lib);
        let fired = injector.fired();
        drop(injector);
        let at = format!("disk full at write {} of {} ({free} bytes free, {fired:?})", k + 1, ends.len());
        match &result {
            Ok(()) => problems.push(format!("{at}: the backup reported success")),
            Err(e) if e.code() != "disk_full" || !e.to_string().contains("disk is full") => {
                problems.push(format!("{at}: error {}: {e}", e.code()))
            }
            Err(_) => {}
        }
        let repo = Repo::open(&repo_dir).unwrap();
        let ids = repo.snapshot_ids().unwrap();
        if ids != first {
            problems.push(format!("{at}: snapshots {ids:?}, expected only {first:?}"));
        }
        for id in &first {
            if !repo.verify(id, None, &CancelToken::new()).is_ok_and(|r| r.ok) {
                problems.push(format!("{at}: the earlier snapshot {id} no longer verifies"));
            }
            let out = f.dir.join(format!("out-{k}"));
            match repo.restore_to(id, &out, None, &Default::default()) {
                Ok(_) => {
                    if fs::read(out.join("Blueprints/b.blueprint.yaml")).ok() != Some(yaml("b", 1)) {
                        problems.push(format!("{at}: the earlier snapshot restores something else"));
                    }
                }
                Err(e) => problems.push(format!("{at}: the earlier snapshot does not restore: {e}")),
            }
        }
        let repo_after = tree(&repo_dir, false);
        for (name, bytes) in &repo_before {
            if repo_after.get(name) != Some(bytes) {
                problems.push(format!("{at}: {name} changed or vanished"));
            }
        }
        if repo_after.keys().any(|name| name.contains(".bpv-tmp-")) {
            problems.push(format!("{at}: a temp file is left in the repository"));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
