//! Backups while the watcher runs: the change journal names what changed, and a
//! snapshot taken from it must be exactly the snapshot a full walk would take. Real
//! folders, a real inotify watcher, a real repository.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bpv_engine::backup::{self, BackupOptions, BackupReport, Repo, RestoreOptions, Source};
use bpv_engine::library::{Library, OpenOptions};
use bpv_engine::watch::{WatchMode, WatchOptions, Watcher};

mod common;
use common::{bytes_tree as library_tree, files_under, folders_under};

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    root: PathBuf,
    lib: Arc<Library>,
}

impl Fixture {
    /// A library of `n` blueprints in nested folders, all an hour old.
    fn new(n: usize) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let root = dir.join("lib");
        for i in 0..n {
            let rel = format!("Blueprints/personal/g{}/b{i:04}.blueprint.yaml", i % 7);
            write(&root, &rel, &yaml(&format!("Blueprint {i}")));
        }
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for p in files_under(&root) {
            fs::File::options().write(true).open(&p).unwrap().set_modified(hour_ago).unwrap();
        }
        let mut o = OpenOptions::new(&root);
        o.data_dir = Some(dir.join("data"));
        o.create = true;
        let lib = Arc::new(Library::open(o).unwrap());
        Fixture { _tmp: tmp, dir, root, lib }
    }

    fn watch(&self) -> Watcher {
        let opts = WatchOptions { state_file: false, ..WatchOptions::default() };
        let watcher = Watcher::start(Arc::clone(&self.lib), opts, |_| {}).unwrap();
        // The journal is only trusted on kernel notifications: these tests need them.
        assert_eq!(watcher.state().mode, WatchMode::Watching, "not on kernel notifications: {:?}", watcher.state());
        watcher
    }

    fn backup(&self) -> BackupReport {
        backup::backup(&self.lib, &BackupOptions { repo: Some(self.dir.join("repo")), ..Default::default() }).unwrap()
    }

    fn repo(&self) -> Repo {
        Repo::open(&self.dir.join("repo")).unwrap()
    }

    fn write(&self, rel: &str, body: &[u8]) {
        write(&self.root, rel, body);
    }
}

fn write(root: &Path, rel: &str, body: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

fn yaml(name: &str) -> Vec<u8> {
    format!("name: {name}\nnodes:\n  - id: a\n    type: t\n").into_bytes()
}

/// A snapshot's library entries: path → (size, mtime, mode, hash).
fn listing(repo: &Repo, id: &str) -> BTreeMap<String, (u64, i64, u32, String)> {
    repo.contents(id)
        .unwrap()
        .into_iter()
        .filter(|e| e.source == Source::Library)
        .map(|e| (e.path, (e.size, e.mtime, e.mode, e.hash)))
        .collect()
}

fn restored_tree(repo: &Repo, id: &str, out: &Path) -> BTreeMap<String, Vec<u8>> {
    repo.restore_to(id, out, None, &RestoreOptions::default()).unwrap();
    library_tree(out)
}

/// A journal snapshot's empty folders are the ones a full walk finds: a folder made now,
/// one emptied of its last files, one left empty by moving its only folder out; a
/// removed one is gone, a filled one is no longer empty.
#[test]
fn empty_folders_in_a_journal_snapshot_are_those_a_full_walk_finds() {
    let f = Fixture::new(21);
    fs::create_dir_all(f.root.join("Templates/stays empty")).unwrap();
    fs::create_dir_all(f.root.join("Templates/to remove")).unwrap();
    fs::create_dir_all(f.root.join("Templates/to fill")).unwrap();
    let watcher = f.watch();
    let check = |r: &BackupReport, name: &str| {
        let out = f.dir.join(name);
        f.repo().restore_to(&r.id, &out, None, &RestoreOptions::default()).unwrap();
        assert_eq!(folders_under(&out), folders_under(&f.root), "{name}: folders");
        assert_eq!(library_tree(&out), library_tree(&f.root), "{name}: files");
    };
    let first = f.backup();
    assert!(!first.journal);
    check(&first, "r1");

    fs::create_dir_all(f.root.join("Exports/made now/and nested")).unwrap();
    fs::remove_dir(f.root.join("Templates/to remove")).unwrap();
    for e in fs::read_dir(f.root.join("Blueprints/personal/g6")).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    fs::create_dir_all(f.root.join("Blueprints/shared/box/inner")).unwrap();
    fs::rename(f.root.join("Blueprints/shared/box/inner"), f.root.join("Blueprints/shared/inner moved")).unwrap();
    let second = f.backup();
    assert!(second.journal, "the watcher's journal is used");
    check(&second, "r2");

    f.write("Templates/to fill/now.blueprint.yaml", &yaml("filled"));
    fs::remove_dir(f.root.join("Exports/made now/and nested")).unwrap();
    let third = f.backup();
    assert!(third.journal);
    check(&third, "r3");

    drop(watcher);
    let walked = f.backup();
    assert!(!walked.journal, "no watcher: a full walk");
    check(&walked, "r4");
}

#[test]
fn a_backup_while_watching_reads_only_what_changed_and_equals_a_full_walk() {
    let f = Fixture::new(900);
    let watcher = f.watch();
    let first = f.backup();
    assert!(!first.journal, "the first snapshot has no parent to splice into");
    assert_eq!(first.files, 900);

    let second = f.backup();
    assert!(second.journal, "an unchanged library while watching uses the journal");
    assert_eq!((second.read_files, second.new_bytes, second.files), (0, 0, 900));

    // Every kind of change: edit, add (also in a folder made now, and in a folder made
    // and filled at once), delete, rename a file, rename a folder, delete a folder.
    f.write("Blueprints/personal/g0/b0000.blueprint.yaml", &yaml("edited"));
    f.write("Blueprints/personal/g1/new.blueprint.yaml", &yaml("new"));
    f.write("Templates/fresh/deep/er/t.blueprint.yaml", &yaml("deep new"));
    fs::remove_file(f.root.join("Blueprints/personal/g2/b0002.blueprint.yaml")).unwrap();
    fs::rename(
        f.root.join("Blueprints/personal/g3/b0003.blueprint.yaml"),
        f.root.join("Blueprints/personal/g3/renamed.blueprint.yaml"),
    )
    .unwrap();
    fs::rename(f.root.join("Blueprints/personal/g4"), f.root.join("Blueprints/shared/g4-moved")).unwrap();
    fs::remove_dir_all(f.root.join("Blueprints/personal/g5")).unwrap();
    let moved = fs::read_dir(f.root.join("Blueprints/shared/g4-moved")).unwrap().count() as u64;
    let third = f.backup();
    assert!(third.journal);
    let expected_files = library_tree(&f.root).len() as u64;
    assert_eq!(third.files, expected_files);
    // Read: the edit, two new files, the renamed file and the moved folder's files (new
    // paths); stored: only the three new contents. Nothing else is looked at.
    assert_eq!(third.read_files, 4 + moved);
    assert_eq!(third.new_objects, 3);

    // The same library walked in full gives the same snapshot.
    drop(watcher);
    let walked = f.backup();
    assert!(!walked.journal);
    let repo = f.repo();
    assert_eq!(listing(&repo, &third.id), listing(&repo, &walked.id));
    assert_eq!(restored_tree(&repo, &third.id, &f.dir.join("out")), library_tree(&f.root));
    assert!(repo.verify(&third.id, None, &backup::CancelToken::new()).unwrap().ok);
}

#[test]
fn a_change_just_before_the_backup_is_in_it() {
    let f = Fixture::new(300);
    let _watcher = f.watch();
    f.backup();
    for round in 0..5 {
        // No pause: the barrier makes the backup wait for the watcher to see this.
        let rel = format!("Blueprints/personal/g1/late{round}.blueprint.yaml");
        f.write(&rel, &yaml(&format!("late {round}")));
        f.write("Blueprints/personal/g2/b0002.blueprint.yaml", &yaml(&format!("rewritten {round}")));
        let r = f.backup();
        assert!(r.journal);
        let got = listing(&f.repo(), &r.id);
        assert!(got.contains_key(&rel), "round {round}: {rel} missing");
        let restored = restored_tree(&f.repo(), &r.id, &f.dir.join(format!("out{round}")));
        assert_eq!(restored, library_tree(&f.root), "round {round}");
    }
}

#[test]
fn without_kernel_notifications_the_backup_walks() {
    let f = Fixture::new(50);
    let opts = WatchOptions {
        state_file: false,
        force_polling: Some("test".into()),
        poll_interval: Duration::from_millis(100),
        ..WatchOptions::default()
    };
    let _watcher = Watcher::start(Arc::clone(&f.lib), opts, |_| {}).unwrap();
    f.backup();
    f.write("Blueprints/personal/g0/new.blueprint.yaml", &yaml("new"));
    let r = f.backup();
    assert!(!r.journal, "a polling watcher can lag: the journal is not trusted");
    assert!(listing(&f.repo(), &r.id).contains_key("Blueprints/personal/g0/new.blueprint.yaml"));
}

#[test]
fn another_process_writing_the_repository_makes_the_next_backup_walk() {
    let f = Fixture::new(50);
    let _watcher = f.watch();
    f.backup();
    assert!(f.backup().journal);
    // Another Blueprint Vault (the CLI) takes a snapshot: the journal is relative to an
    // older parent now, so it cannot be used.
    let mut o = OpenOptions::new(&f.root);
    o.data_dir = Some(f.dir.join("data"));
    let other = Library::open(o).unwrap();
    f.write("Blueprints/personal/g0/by-cli.blueprint.yaml", &yaml("cli"));
    backup::backup(&other, &BackupOptions { repo: Some(f.dir.join("repo")), ..Default::default() }).unwrap();
    let r = f.backup();
    assert!(!r.journal);
    assert_eq!(r.files, 51);
    assert!(f.backup().journal, "and the one after uses it again");
}

#[test]
fn an_event_on_the_library_folder_itself_stops_the_journal_until_the_watcher_restarts() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(30);
    let watcher = f.watch();
    f.backup();
    assert!(f.backup().journal);
    // (A chmod stands in for the folder being moved or replaced: both are events on it.)
    fs::set_permissions(&f.root, fs::Permissions::from_mode(0o700)).unwrap();
    f.write("Blueprints/personal/g0/after.blueprint.yaml", &yaml("after"));
    let r = f.backup();
    assert!(!r.journal);
    assert!(listing(&f.repo(), &r.id).contains_key("Blueprints/personal/g0/after.blueprint.yaml"));
    assert!(!f.backup().journal, "still walking: the watch may no longer cover the folder");
    drop(watcher);
    let _again = f.watch();
    f.backup();
    assert!(f.backup().journal, "a new watcher trusts the journal again");
}
