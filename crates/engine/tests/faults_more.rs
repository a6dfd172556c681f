//! Fault injection for the operations `faults.rs` does not cover: emptying the trash,
//! export (bundle and folder), backup prune, restore over the library (in place), and
//! the secrets files (the credential registry and the passphrase-file store). Each
//! operation is failed at every file operation it makes, with EIO and with ENOSPC.
//! Run: `cargo test -p bpv-engine --features fault-injection --test faults_more`.
//!
//! Contract checked, per operation:
//! - the error is `disk_full` for ENOSPC, `io` for EIO;
//! - what users see afterwards (after a reopen) is as before, or what the whole
//!   operation makes of it (for the steps that are all-or-nothing per item: each item
//!   whole or gone), never a torn file, never a temp file left;
//! - the operation then succeeds when retried.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bpv_engine::Result;
use bpv_engine::backup::{self, BackupOptions, CancelToken, Repo, RestoreOptions, Retention};
use bpv_engine::fault::{self, Fault, Plan};
use bpv_engine::library::{BlueprintSave, Library, OpenOptions};
use bpv_engine::secrets::crypto::KdfParams;
use bpv_engine::secrets::{FileStore, Secrets};
use bpv_engine::transfer::ExportOptions;

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    root: PathBuf,
    data: PathBuf,
}

impl Fixture {
    /// A library with three blueprints, one with a companion.
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fs::canonicalize(tmp.path()).unwrap();
        let f = Fixture { root: dir.join("lib"), data: dir.join("data"), dir, _tmp: tmp };
        let lib = f.open();
        let tagged = BlueprintSave { tags: Some(vec!["t".into()]), ..Default::default() };
        lib.save_blueprint("Blueprints/a.blueprint.yaml", &yaml("a", 1), &BlueprintSave::default()).unwrap();
        lib.save_blueprint("Blueprints/b.blueprint.yaml", &yaml("b", 1), &tagged).unwrap();
        lib.save_blueprint("Blueprints/sub/c.blueprint.yaml", &yaml("c", 1), &BlueprintSave::default()).unwrap();
        f
    }

    fn open(&self) -> Library {
        let mut o = OpenOptions::new(&self.root);
        o.data_dir = Some(self.data.clone());
        o.create = true;
        Library::open(o).unwrap()
    }

    fn repo(&self) -> PathBuf {
        self.dir.join("repo")
    }

    fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    fn secrets(&self, lib: &Library) -> Secrets {
        let kdf = KdfParams { memory_kib: 8 * 1024, iterations: 1, ..KdfParams::fresh() };
        let store = FileStore::new(Secrets::credential_file(lib), b"fault test passphrase").unwrap().with_kdf(kdf);
        Secrets::with_store(lib, Box::new(store), "test")
    }
}

fn yaml(name: &str, version: u32) -> Vec<u8> {
    format!("name: {name}\ndescription: version {version}\nnodes:\n  - id: n{version}\n    type: t\n").into_bytes()
}

/// Every file under `dir` and its bytes, but SQLite's and lock files.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).into_iter().flatten().filter(|e| e.file_type().is_file()) {
        let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        let name = e.file_name().to_string_lossy();
        if name.starts_with("index.sqlite") || name.ends_with(".lock") {
            continue;
        }
        out.insert(rel, fs::read(e.path()).unwrap());
    }
    out
}

fn temps(dir: &Path) -> Vec<String> {
    tree(dir).into_keys().filter(|k| k.contains(".bpv-tmp-")).collect()
}

fn blueprints(f: &Fixture) -> BTreeMap<String, Vec<u8>> {
    tree(&f.root).into_iter().filter(|(k, _)| k.ends_with(".blueprint.yaml")).collect()
}

fn backup_now(f: &Fixture, lib: &Library) -> Result<()> {
    backup::backup(lib, &BackupOptions { repo: Some(f.repo()), ..Default::default() }).map(drop)
}

fn export_all(lib: &Library, dest: &Path, overwrite: bool) -> Result<()> {
    let paths: Vec<String> =
        ["Blueprints/a.blueprint.yaml", "Blueprints/b.blueprint.yaml", "Blueprints/sub/c.blueprint.yaml"]
            .map(String::from)
            .to_vec();
    lib.export(&paths, dest, &ExportOptions { overwrite, ..Default::default() }, None).map(drop)
}

/// What a case looks at, taken before the operation and after its failure.
type Snapshot = BTreeMap<String, Vec<u8>>;

struct Case {
    name: &'static str,
    setup: fn(&Fixture, &Library),
    op: fn(&Fixture, &Library) -> Result<()>,
    /// What users see of the operation's subject.
    snapshot: fn(&Fixture, &Library) -> Snapshot,
    /// Whether `after` (following a failure) is acceptable given `before` and `done`
    /// (the result of the operation run without a fault on a twin fixture).
    acceptable: fn(before: &Snapshot, after: &Snapshot, done: &Snapshot) -> bool,
}

fn as_before_or_done(before: &Snapshot, after: &Snapshot, done: &Snapshot) -> bool {
    after == before || after == done
}

fn as_before(before: &Snapshot, after: &Snapshot, _: &Snapshot) -> bool {
    after == before
}

/// Each entry of `after` is one of `before` unchanged: some were removed, none damaged.
fn subset_of_before(before: &Snapshot, after: &Snapshot, _: &Snapshot) -> bool {
    after.iter().all(|(k, v)| before.get(k) == Some(v))
}

fn trash_and_library(f: &Fixture, lib: &Library) -> Snapshot {
    let mut s: Snapshot = blueprints(f).into_iter().map(|(k, v)| (format!("lib/{k}"), v)).collect();
    for e in lib.trash_list().unwrap() {
        s.insert(format!("trash/{}", e.id), format!("{}:{}", e.path, e.hash).into_bytes());
    }
    s
}

fn export_dest(f: &Fixture, _: &Library) -> Snapshot {
    tree(&f.out())
}

/// Snapshot ids with whether each verifies; the newest is marked so a prune that
/// dropped it shows.
fn repo_state(f: &Fixture, _: &Library) -> Snapshot {
    let repo = Repo::open(&f.repo()).unwrap();
    let ids = repo.snapshot_ids().unwrap();
    let mut s = Snapshot::new();
    for (i, id) in ids.iter().enumerate() {
        let ok = matches!(repo.verify(id, None, &CancelToken::new()), Ok(r) if r.ok);
        s.insert(format!("{i}:{id}"), vec![u8::from(ok)]);
    }
    s
}

/// Before a prune, three snapshots; after it, fewer. Acceptable after a failure: a
/// subset of the snapshots, every one verifying, the newest one kept.
fn prune_acceptable(before: &Snapshot, after: &Snapshot, _: &Snapshot) -> bool {
    let ids = |s: &Snapshot| s.keys().map(|k| k.split_once(':').unwrap().1.to_owned()).collect::<Vec<_>>();
    let (b, a) = (ids(before), ids(after));
    a.iter().all(|id| b.contains(id)) && b.last() == a.last() && after.values().all(|v| v == &[1])
}

fn library_files(f: &Fixture, _: &Library) -> Snapshot {
    blueprints(f)
}

fn credential_values(f: &Fixture, lib: &Library) -> Snapshot {
    let s = f.secrets(lib);
    let mut out = Snapshot::new();
    for name in ["ONE", "TWO"] {
        match s.credential_value(name, true) {
            Ok(v) => out.insert(name.into(), v.to_vec()),
            Err(e) if e.code() == "not_found" => None,
            Err(e) => out.insert(name.into(), format!("error {}", e.code()).into_bytes()),
        };
    }
    out
}

fn no_setup(_: &Fixture, _: &Library) {}

const CASES: &[Case] = &[
    Case {
        name: "empty the trash",
        setup: |_, lib| {
            lib.delete("Blueprints/a.blueprint.yaml").unwrap();
            lib.delete("Blueprints/b.blueprint.yaml").unwrap();
        },
        op: |_, lib| lib.trash_empty().map(drop),
        snapshot: trash_and_library,
        acceptable: subset_of_before,
    },
    Case {
        name: "export a bundle",
        setup: no_setup,
        op: |f, lib| export_all(lib, &f.out().join("all.zip"), false),
        snapshot: export_dest,
        acceptable: as_before,
    },
    Case {
        name: "export to a new folder",
        setup: no_setup,
        op: |f, lib| export_all(lib, &f.out().join("folder"), false),
        snapshot: export_dest,
        acceptable: as_before,
    },
    Case {
        name: "export over an earlier export (overwrite)",
        setup: |f, lib| {
            export_all(lib, &f.out().join("folder"), false).unwrap();
            lib.save_blueprint("Blueprints/b.blueprint.yaml", &yaml("b", 2), &BlueprintSave::default()).unwrap();
        },
        op: |f, lib| export_all(lib, &f.out().join("folder"), true),
        snapshot: export_dest,
        // Per file: the earlier export's or the new one; none removed.
        acceptable: |before, after, done| {
            after.keys().eq(before.keys())
                && after.iter().all(|(k, v)| before.get(k) == Some(v) || done.get(k) == Some(v))
        },
    },
    Case {
        name: "backup prune",
        setup: |f, lib| {
            for v in 2..=4 {
                lib.save_blueprint("Blueprints/a.blueprint.yaml", &yaml("a", v), &BlueprintSave::default()).unwrap();
                backup_now(f, lib).unwrap();
            }
        },
        op: |f, _| Repo::open(&f.repo())?.prune(&Retention { keep_last: Some(1), ..Default::default() }).map(drop),
        snapshot: repo_state,
        acceptable: prune_acceptable,
    },
    Case {
        name: "restore a snapshot over the library",
        setup: |f, lib| {
            backup_now(f, lib).unwrap();
            lib.save_blueprint("Blueprints/b.blueprint.yaml", &yaml("b", 2), &BlueprintSave::default()).unwrap();
            lib.save_blueprint("Blueprints/d.blueprint.yaml", &yaml("d", 1), &BlueprintSave::default()).unwrap();
            lib.delete("Blueprints/sub/c.blueprint.yaml").unwrap();
        },
        op: |f, lib| {
            let repo = Repo::open(&f.repo())?;
            let first = repo.snapshot_ids()?.first().cloned().unwrap();
            backup::restore_in_place(lib, &f.repo(), &first, &RestoreOptions::default()).map(drop)
        },
        snapshot: library_files,
        acceptable: as_before_or_done,
    },
    Case {
        name: "store a credential (passphrase file store)",
        setup: |f, lib| f.secrets(lib).set_credential("ONE", b"first value").unwrap(),
        op: |f, lib| {
            let s = f.secrets(lib);
            s.set_credential("ONE", b"second value")?;
            s.set_credential("TWO", b"another")
        },
        snapshot: credential_values,
        // Each credential holds its old or its new value (two separate operations).
        acceptable: |before, after, done| {
            after.keys().all(|k| before.contains_key(k) || done.contains_key(k))
                && after.iter().all(|(k, v)| before.get(k) == Some(v) || done.get(k) == Some(v))
                && before.keys().all(|k| after.contains_key(k))
        },
    },
    Case {
        name: "delete a credential (passphrase file store)",
        setup: |f, lib| {
            let s = f.secrets(lib);
            s.set_credential("ONE", b"first value").unwrap();
            s.set_credential("TWO", b"second value").unwrap();
        },
        op: |f, lib| f.secrets(lib).delete_credential("ONE"),
        snapshot: credential_values,
        acceptable: as_before_or_done,
    },
];

fn run_case(case: &Case, kind: Fault, problems: &mut Vec<String>) -> u64 {
    let done = {
        let f = Fixture::new();
        let lib = f.open();
        (case.setup)(&f, &lib);
        (case.op)(&f, &lib).unwrap();
        (case.snapshot)(&f, &lib)
    };
    for n in 1.. {
        let f = Fixture::new();
        let lib = f.open();
        (case.setup)(&f, &lib);
        let before = (case.snapshot)(&f, &lib);
        let injector =
            fault::install(Plan { roots: vec![f.dir.clone()], fail_at: Some((n, kind)), ..Default::default() });
        let result = (case.op)(&f, &lib);
        let fired = injector.fired();
        drop(injector);
        let Some((_, op, path)) = fired else {
            if let Err(e) = result {
                problems.push(format!("{}: fails with no fault injected: {e}", case.name));
            }
            return n - 1;
        };
        let at = format!("{}, {kind:?} at op {n} ({op:?} {})", case.name, path.display());
        if let Err(e) = &result {
            let want = if kind == Fault::DiskFull { "disk_full" } else { "io" };
            if e.code() != want {
                problems.push(format!("{at}: error code {} (want {want}): {e}", e.code()));
            }
        }
        drop(lib);
        let lib = f.open();
        let after = (case.snapshot)(&f, &lib);
        let fine = if result.is_ok() { after == done } else { (case.acceptable)(&before, &after, &done) };
        if !fine {
            problems.push(format!(
                "{at}: {} left {:?}\n  before {:?}\n  done {:?}",
                if result.is_ok() { "succeeded but" } else { "failed and" },
                keys(&after),
                keys(&before),
                keys(&done)
            ));
        }
        let left = temps(&f.dir);
        if !left.is_empty() {
            problems.push(format!("{at}: temp files left: {left:?}"));
        }
        // A failure that came after the change itself (a folder fsync) leaves it done:
        // retrying that is not the point (a delete would find nothing to delete).
        if result.is_err()
            && after == before
            && let Err(e) = (case.op)(&f, &lib)
        {
            problems.push(format!("{at}: the retry fails: {e}"));
        }
    }
    0
}

fn keys(s: &Snapshot) -> Vec<String> {
    s.iter().map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(&v[..v.len().min(24)]))).collect()
}

#[test]
fn every_failed_file_operation_of_the_remaining_operations_is_clean() {
    let mut problems = Vec::new();
    for case in CASES {
        for kind in [Fault::Eio, Fault::DiskFull] {
            let points = run_case(case, kind, &mut problems);
            eprintln!("faults_more: {}: {points} file operations, each failed with {kind:?}", case.name);
            assert!(points >= 2, "{}: only {points} file operations seen: is it routed through the seam?", case.name);
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// A power cut at every file operation of the operations above that replace or remove
/// things (restore over the library, empty the trash, prune): after the cut and a
/// reopen, the library is before or after, never a mix, and nothing is empty.
#[test]
fn a_power_loss_during_restore_trash_or_prune_leaves_before_or_after() {
    let names = ["restore a snapshot over the library", "empty the trash", "backup prune"];
    let mut problems = Vec::new();
    for case in CASES.iter().filter(|c| names.contains(&c.name)) {
        let done = {
            let f = Fixture::new();
            let lib = f.open();
            (case.setup)(&f, &lib);
            (case.op)(&f, &lib).unwrap();
            (case.snapshot)(&f, &lib)
        };
        let mut cuts = 0;
        for n in 1.. {
            let f = Fixture::new();
            let lib = f.open();
            (case.setup)(&f, &lib);
            let before = (case.snapshot)(&f, &lib);
            let injector = fault::install(Plan {
                roots: vec![f.dir.clone()],
                fail_at: Some((n, Fault::PowerLoss)),
                record: true,
                ..Default::default()
            });
            let result = (case.op)(&f, &lib);
            let fired = injector.fired();
            injector.power_loss().unwrap();
            drop(injector);
            drop(lib);
            let Some((_, op, path)) = fired else { break };
            cuts += 1;
            let at = format!("{}, power loss at op {n} ({op:?} {})", case.name, path.display());
            let lib = f.open();
            let after = (case.snapshot)(&f, &lib);
            let fine = if result.is_ok() { after == done } else { (case.acceptable)(&before, &after, &done) };
            if !fine {
                problems.push(format!(
                    "{at}: left {:?}\n  before {:?}\n  done {:?}",
                    keys(&after),
                    keys(&before),
                    keys(&done)
                ));
            }
            for (k, v) in tree(&f.root) {
                if v.is_empty() {
                    problems.push(format!("{at}: {k} is empty"));
                }
            }
        }
        eprintln!("faults_more: {}: power cut at each of {cuts} file operations", case.name);
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn an_audit_entry_written_after_a_torn_line_stays_readable() {
    let f = Fixture::new();
    let lib = f.open();
    let secrets = f.secrets(&lib);
    secrets.set_credential("one", b"first value").unwrap();
    let log = walkdir::WalkDir::new(&f.dir)
        .into_iter()
        .flatten()
        .find(|e| e.file_name() == "audit.log")
        .map(|e| e.into_path())
        .unwrap();
    // What a crash or a full disk in the middle of an append leaves behind.
    let mut torn = fs::read(&log).unwrap();
    torn.extend_from_slice(br#"{"time":"2026-11-23T1"#);
    fs::write(&log, &torn).unwrap();
    secrets.set_credential("two", b"second value").unwrap();
    let entries = secrets.audit_log().unwrap();
    let seen: Vec<(&str, Option<&str>)> = entries.iter().map(|e| (e.action.as_str(), e.name.as_deref())).collect();
    assert_eq!(
        seen,
        [("credential-set", Some("one")), ("unreadable-line", None), ("credential-set", Some("two"))],
        "{entries:#?}"
    );
}

/// The library's files and its trash and history (the private area's data folders), by
/// path under `lib/`, `trash/`, `versions/`.
fn whole_library(root: &Path, area: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    for (k, v) in tree(root) {
        out.insert(format!("lib/{k}"), v);
    }
    for folder in backup::DATA_FOLDERS {
        for (k, v) in tree(&area.join(folder)) {
            out.insert(format!("{folder}/{k}"), v);
        }
    }
    out
}

/// What is left of in-place restores in the library's parent and private area.
fn restore_leftovers(f: &Fixture, area: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in [f.dir.as_path(), area] {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".bpv-restore-") || name.starts_with(".restore-") || name.starts_with("restore-journal") {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

/// Where a restore-in-place test cuts the power.
#[derive(Clone)]
enum Cut {
    /// At the Nth file operation.
    At(u64),
    /// At the swap of the folder whose path contains this.
    Swap(&'static str),
}

/// One restore over the library, cut: `None` when the cut never came (the restore
/// ran to the end), else the operation cut.
fn restore_cut(cut: Cut, problems: &mut Vec<String>, seen: &mut [u32; 2]) -> Option<fault::Op> {
    let f = Fixture::new();
    let lib = f.open();
    let area = lib.area().to_path_buf();
    lib.save_blueprint("Blueprints/sub/c.blueprint.yaml", &yaml("c", 2), &BlueprintSave::default()).unwrap();
    backup_now(&f, &lib).unwrap();
    lib.save_blueprint("Blueprints/b.blueprint.yaml", &yaml("b", 2), &BlueprintSave::default()).unwrap();
    lib.save_blueprint("Blueprints/d.blueprint.yaml", &yaml("d", 1), &BlueprintSave::default()).unwrap();
    lib.delete("Blueprints/sub/c.blueprint.yaml").unwrap();
    let repo = Repo::open(&f.repo()).unwrap();
    let first = repo.snapshot_ids().unwrap().first().cloned().unwrap();
    // The restored library, as a restore into a new folder makes it.
    let restored = {
        let (out, out_area) = (f.dir.join("expected"), f.dir.join("expected-area"));
        repo.restore_to(&first, &out, Some(&out_area), &RestoreOptions::default()).unwrap();
        let t = whole_library(&out, &out_area);
        fs::remove_dir_all(&out).unwrap();
        fs::remove_dir_all(&out_area).unwrap();
        t
    };
    let old = whole_library(&f.root, &area);
    assert_ne!(old, restored);
    let mut plan = Plan { roots: vec![f.dir.clone()], record: true, ..Default::default() };
    match &cut {
        Cut::At(n) => plan.fail_at = Some((*n, Fault::PowerLoss)),
        Cut::Swap(needle) => plan.fail_matching = Some((fault::Op::Exchange, (*needle).to_owned(), Fault::PowerLoss)),
    }
    let injector = fault::install(plan);
    let result = backup::restore_in_place(&lib, &f.repo(), &first, &RestoreOptions::default());
    let fired = injector.fired();
    injector.power_loss().unwrap();
    drop(injector);
    drop(lib);
    let Some((n, op, path)) = fired else {
        assert!(result.is_ok(), "fails with no fault injected: {:?}", result.err());
        return None;
    };
    let at = format!("power loss at op {n} ({op:?} {})", path.display());
    let lib = f.open();
    let after = whole_library(&f.root, &area);
    if after == old {
        seen[0] += 1;
    } else if after == restored {
        seen[1] += 1;
    } else {
        problems.push(format!(
            "{at}: neither the old nor the restored library:\n  left {:?}\n  old {:?}\n  restored {:?}",
            keys(&after),
            keys(&old),
            keys(&restored)
        ));
    }
    let left = restore_leftovers(&f, &area);
    if !left.is_empty() {
        problems.push(format!("{at}: left behind {left:?}"));
    }
    let listed = lib.list(&bpv_engine::index::ListQuery { limit: 1000, ..Default::default() }).unwrap();
    let on_disk = after.keys().filter(|k| k.starts_with("lib/") && k.ends_with(".blueprint.yaml")).count();
    if listed.items.len() != on_disk {
        problems.push(format!("{at}: the index lists {} blueprints, the folder holds {on_disk}", listed.items.len()));
    }
    Some(op)
}

/// A power cut at every file operation of a restore over the library (the snapshot of
/// the current library, the staging, the journal, each swap, the clean-up), and at each
/// swap by name: after the cut and a reopen (which finishes a journalled restore), the
/// library with its trash and history is byte for byte the old one or the restored one,
/// its index lists what it holds, and nothing of the restore is left behind.
#[test]
fn a_power_loss_at_any_point_of_a_restore_in_place_leaves_the_old_or_the_restored_library_whole() {
    let mut problems = Vec::new();
    let mut seen = [0u32; 2];
    let mut cuts = 0;
    for n in 1.. {
        if restore_cut(Cut::At(n), &mut problems, &mut seen).is_none() {
            break;
        }
        cuts += 1;
    }
    for needle in [".lib.bpv-restore-", "/trash", "/versions"] {
        let op = restore_cut(Cut::Swap(needle), &mut problems, &mut seen);
        assert_eq!(op, Some(fault::Op::Exchange), "the swap of {needle} is not cut: is it routed through the seam?");
    }
    eprintln!(
        "faults_more: restore in place: power cut at each of {cuts} file operations and at each of the 3 swaps: {} left the old library, {} the restored one",
        seen[0], seen[1]
    );
    assert!(seen[0] > 0 && seen[1] > 0);
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}
