//! The live library: a real inotify watcher over real folders, a real SQLite index.
//! Each test edits files the way people and tools do and checks the events delivered
//! and what the index says afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use bpv_engine::index::ListQuery;
use bpv_engine::library::{BlueprintSave, Library, MetaUpdate, OpenOptions};
use bpv_engine::watch::{
    ChangeEvent, ChangeKind, Origin, WatchMode, WatchNotice, WatchOptions, Watcher, fallback_reason, fs_kind,
    read_status,
};

struct Env {
    tmp: tempfile::TempDir,
    lib: Arc<Library>,
    rx: Receiver<WatchNotice>,
    watcher: Option<Watcher>,
}

fn yaml(name: &str) -> String {
    format!("name: {name}\ntags: [t]\nnodes:\n  - id: a\n    type: http.request\n")
}

fn open(root: &Path, data: &Path) -> Library {
    let mut o = OpenOptions::new(root);
    o.data_dir = Some(data.to_path_buf());
    o.create = true;
    Library::open(o).unwrap()
}

impl Env {
    fn new() -> Env {
        Env::with(WatchOptions::default(), |_| {})
    }

    fn with(opts: WatchOptions, before: impl FnOnce(&Path)) -> Env {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lib");
        fs::create_dir_all(&root).unwrap();
        before(&root);
        let lib = Arc::new(open(&root, &tmp.path().join("data")));
        let (tx, rx) = channel();
        let polling_asked = opts.force_polling.is_some();
        let watcher = Watcher::start(Arc::clone(&lib), opts, move |n| {
            let _ = tx.send(n);
        })
        .unwrap();
        // These tests are about kernel notifications: a watcher that fell back to polling
        // would pass most of them slowly and prove nothing about inotify.
        if !polling_asked {
            let state = watcher.state();
            assert_eq!(state.mode, WatchMode::Watching, "the watcher is not on kernel notifications: {state:?}");
        }
        Env { tmp, lib, rx, watcher: Some(watcher) }
    }

    fn root(&self) -> PathBuf {
        self.lib.root().to_path_buf()
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    fn write(&self, rel: &str, body: &str) {
        let p = self.p(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }

    /// Change events until `done` says the list is complete (or 10 s pass).
    fn events_until(&self, done: impl Fn(&[ChangeEvent]) -> bool) -> Vec<ChangeEvent> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while !done(&got) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out; events so far: {got:#?}");
            if let Ok(WatchNotice::Change(e)) = self.rx.recv_timeout(left) {
                got.push(e);
            }
        }
        got
    }

    /// Whatever else arrives within `d`.
    fn quiet(&self, d: Duration) -> Vec<ChangeEvent> {
        let deadline = Instant::now() + d;
        let mut got = Vec::new();
        while let Ok(n) = self.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if let WatchNotice::Change(e) = n {
                got.push(e);
            }
        }
        got
    }

    fn indexed(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .lib
            .list(&ListQuery { limit: 1_000_000, ..Default::default() })
            .unwrap()
            .items
            .into_iter()
            .map(|i| i.path)
            .collect();
        v.sort();
        v
    }

    fn name_of(&self, rel: &str) -> Option<String> {
        self.lib.index().get(rel).unwrap().map(|i| i.name)
    }
}

fn has(kind: ChangeKind, path: &str) -> impl Fn(&[ChangeEvent]) -> bool {
    let path = path.to_owned();
    move |evs: &[ChangeEvent]| evs.iter().any(|e| e.kind == kind && e.path == path)
}

const A: &str = "Blueprints/personal/a.blueprint.yaml";

#[test]
fn create_modify_delete_give_events_after_the_index_has_them() {
    let env = Env::new();
    env.write(A, &yaml("First"));
    let evs = env.events_until(has(ChangeKind::Created, A));
    let ev = evs.iter().find(|e| e.path == A).unwrap();
    assert_eq!(ev.origin, Origin::Outside);
    assert_eq!(ev.hash.as_deref().map(str::len), Some(64));
    // Delivered after the index was updated.
    assert_eq!(env.name_of(A).as_deref(), Some("First"));

    env.write(A, &yaml("Second"));
    env.events_until(has(ChangeKind::Modified, A));
    assert_eq!(env.name_of(A).as_deref(), Some("Second"));

    fs::remove_file(env.p(A)).unwrap();
    let evs = env.events_until(has(ChangeKind::Removed, A));
    assert!(evs.iter().all(|e| e.hash.is_none()));
    assert_eq!(env.name_of(A), None);
    // Nothing else trails in.
    assert!(env.quiet(Duration::from_millis(300)).is_empty());
}

#[test]
fn editor_saves_update_the_blueprint_once_and_ignore_temp_files() {
    let env = Env::new();
    env.write(A, &yaml("v1"));
    env.events_until(has(ChangeKind::Created, A));

    // Write a temp file, then rename it over the blueprint (most editors, atomic writers).
    env.write("Blueprints/personal/.a.blueprint.yaml.tmp", &yaml("v2"));
    env.write("Blueprints/personal/a.blueprint.yaml.swp", "swap");
    fs::rename(env.p("Blueprints/personal/.a.blueprint.yaml.tmp"), env.p(A)).unwrap();
    let evs = env.events_until(has(ChangeKind::Modified, A));
    assert_eq!(env.name_of(A).as_deref(), Some("v2"));

    // vim's backup dance: rename away to `~`, probe with `4913`, write anew, drop the backup.
    fs::rename(env.p(A), env.p("Blueprints/personal/a.blueprint.yaml~")).unwrap();
    fs::write(env.p("Blueprints/personal/4913"), "").unwrap();
    fs::remove_file(env.p("Blueprints/personal/4913")).unwrap();
    fs::write(env.p(A), yaml("v3")).unwrap();
    fs::remove_file(env.p("Blueprints/personal/a.blueprint.yaml~")).unwrap();
    // emacs' lock file is a dangling symlink named `.#…`
    std::os::unix::fs::symlink("user@host.1234", env.p("Blueprints/personal/.#a.blueprint.yaml")).unwrap();
    let mut all = evs;
    all.extend(env.events_until(|e| e.iter().any(|e| e.path == A)));
    all.extend(env.quiet(Duration::from_millis(400)));
    assert_eq!(env.name_of(A).as_deref(), Some("v3"));
    for e in &all {
        assert_eq!(e.path, A, "an event for a temp file: {e:?}");
        assert_eq!(e.kind, ChangeKind::Modified, "{all:#?}");
    }
    assert_eq!(env.indexed(), vec![A.to_string()]);
}

#[test]
fn renames_and_folder_moves_in_and_out() {
    let env = Env::new();
    env.write(A, &yaml("a"));
    env.events_until(has(ChangeKind::Created, A));

    // A rename inside the library is one `renamed` event.
    let b = "Blueprints/personal/b.blueprint.yaml";
    fs::rename(env.p(A), env.p(b)).unwrap();
    let evs = env.events_until(has(ChangeKind::Renamed, b));
    let ev = evs.iter().find(|e| e.kind == ChangeKind::Renamed).unwrap();
    assert_eq!(ev.old_path.as_deref(), Some(A));
    assert!(evs.iter().all(|e| e.kind == ChangeKind::Renamed), "{evs:#?}");
    assert_eq!(env.indexed(), vec![b.to_string()]);

    // A whole folder moved in from outside: every blueprint in it appears.
    let outside = env.tmp.path().join("outside/crm");
    fs::create_dir_all(outside.join("deep")).unwrap();
    for i in 0..5 {
        fs::write(outside.join(format!("f{i}.blueprint.yaml")), yaml(&format!("f{i}"))).unwrap();
    }
    fs::write(outside.join("deep/g.blueprint.yaml"), yaml("g")).unwrap();
    fs::write(outside.join("notes.txt"), "not a blueprint").unwrap();
    fs::rename(&outside, env.p("Blueprints/shared/crm")).unwrap();
    let evs = env.events_until(|e| e.iter().filter(|e| e.kind == ChangeKind::Created).count() == 6);
    assert!(evs.iter().any(|e| e.path == "Blueprints/shared/crm/deep/g.blueprint.yaml"));
    assert_eq!(env.indexed().len(), 7);

    // Renamed inside the library: `renamed` events with old paths.
    fs::rename(env.p("Blueprints/shared/crm"), env.p("Blueprints/shared/sales")).unwrap();
    let evs = env.events_until(|e| e.iter().filter(|e| e.kind == ChangeKind::Renamed).count() == 6);
    let g = evs.iter().find(|e| e.path == "Blueprints/shared/sales/deep/g.blueprint.yaml").unwrap();
    assert_eq!(g.old_path.as_deref(), Some("Blueprints/shared/crm/deep/g.blueprint.yaml"));
    assert!(env.indexed().iter().all(|p| !p.contains("/crm/")));

    // Moved out of the library: all gone.
    fs::rename(env.p("Blueprints/shared/sales"), env.tmp.path().join("gone")).unwrap();
    env.events_until(|e| e.iter().filter(|e| e.kind == ChangeKind::Removed).count() == 6);
    assert_eq!(env.indexed(), vec![b.to_string()]);

    // A folder deleted with its contents.
    env.write("Templates/x/y.blueprint.yaml", &yaml("y"));
    env.events_until(has(ChangeKind::Created, "Templates/x/y.blueprint.yaml"));
    fs::remove_dir_all(env.p("Templates/x")).unwrap();
    env.events_until(has(ChangeKind::Removed, "Templates/x/y.blueprint.yaml"));
    assert_eq!(env.indexed(), vec![b.to_string()]);
}

#[test]
fn companion_changes_update_their_blueprint() {
    let env = Env::new();
    env.write(A, &yaml("a"));
    env.events_until(has(ChangeKind::Created, A));
    env.write("Blueprints/personal/a.blueprint.meta.json", r#"{"tags": ["from-companion"]}"#);
    let evs = env.events_until(has(ChangeKind::Modified, A));
    assert!(evs.iter().all(|e| e.path == A));
    let item = env.lib.index().get(A).unwrap().unwrap();
    assert!(item.tags.contains(&"from-companion".to_string()), "{item:?}");
}

#[test]
fn a_burst_settles_to_what_a_fresh_reindex_gives() {
    let env = Env::new();
    let n = 3000;
    for i in 0..n {
        let rel = format!("Blueprints/shared/burst/d{}/f{i}.blueprint.yaml", i % 30);
        env.write(&rel, &yaml(&format!("burst {i}")));
        if i % 7 == 0 {
            env.write(&format!("Blueprints/shared/burst/d{}/f{i}.blueprint.meta.json", i % 30), r#"{"tags":["x"]}"#);
        }
    }
    // Some of them change and some go away again while the burst is in flight.
    for i in (0..n).step_by(10) {
        fs::remove_file(env.p(&format!("Blueprints/shared/burst/d{}/f{i}.blueprint.yaml", i % 30))).unwrap();
    }
    let expected = n - n / 10;
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.indexed().len() != expected {
        assert!(Instant::now() < deadline, "index has {} of {expected}", env.indexed().len());
        env.quiet(Duration::from_millis(200));
    }
    env.quiet(Duration::from_millis(500));
    // A fresh index built from the same files in another data dir.
    let fresh = open(&env.root(), &env.tmp.path().join("fresh-data"));
    let q = ListQuery { limit: 1_000_000, ..Default::default() };
    let mine = env.lib.list(&q).unwrap().items;
    let theirs = fresh.list(&q).unwrap().items;
    assert_eq!(mine.len(), expected);
    assert!(mine == theirs, "the watched index differs from a fresh reindex");
}

#[test]
fn an_overflow_triggers_a_full_reconcile() {
    let env = Env::new();
    env.write(A, &yaml("a"));
    env.events_until(has(ChangeKind::Created, A));
    // Pretend the watcher missed a change: the index forgets a file that is on disk.
    let w = env.watcher.as_ref().unwrap();
    env.lib.index().apply(&[], &[A.to_string()]).unwrap();
    assert_eq!(env.name_of(A), None);
    let _ = env.quiet(Duration::from_millis(200));
    w.inject_overflow();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut resynced = None;
    let mut events = Vec::new();
    while resynced.is_none() {
        match env.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(WatchNotice::Resynced { reason, report }) => resynced = Some((reason, report)),
            Ok(WatchNotice::Change(e)) => events.push(e),
            Ok(_) => {}
            Err(_) => panic!("no reconcile after an overflow"),
        }
    }
    let (reason, report) = resynced.unwrap();
    assert!(reason.contains("overflow"), "{reason}");
    assert_eq!(report.added, 1);
    assert_eq!(env.name_of(A).as_deref(), Some("a"));
    assert!(events.iter().any(|e| e.path == A && e.kind == ChangeKind::Created));
}

#[test]
fn own_writes_are_reported_as_self_never_as_outside_edits() {
    let env = Env::new();
    let item = env
        .lib
        .save_blueprint(
            A,
            yaml("mine").as_bytes(),
            &BlueprintSave { tags: Some(vec!["k".into()]), ..Default::default() },
        )
        .unwrap();
    let evs = env.events_until(has(ChangeKind::Created, A));
    assert!(evs.iter().all(|e| e.origin == Origin::SelfWrite), "{evs:#?}");
    assert_eq!(evs.iter().find(|e| e.path == A).unwrap().hash.as_deref(), Some(item.hash.as_str()));

    env.lib
        .save_blueprint(
            A,
            yaml("mine 2").as_bytes(),
            &BlueprintSave { if_match: Some(item.hash.clone()), ..Default::default() },
        )
        .unwrap();
    let evs = env.events_until(has(ChangeKind::Modified, A));
    assert!(evs.iter().all(|e| e.origin == Origin::SelfWrite), "{evs:#?}");

    env.lib.update_meta(A, &MetaUpdate { tags: Some(vec!["z".into()]), ..Default::default() }).unwrap();
    let evs = env.events_until(has(ChangeKind::Modified, A));
    assert!(evs.iter().all(|e| e.origin == Origin::SelfWrite), "{evs:#?}");

    env.lib.delete(A).unwrap();
    let evs = env.events_until(has(ChangeKind::Removed, A));
    assert!(evs.iter().all(|e| e.origin == Origin::SelfWrite), "{evs:#?}");
    let rest = env.quiet(Duration::from_millis(400));
    assert!(rest.iter().all(|e| e.origin == Origin::SelfWrite), "{rest:#?}");

    // An outside edit right after is still an outside edit.
    env.write(A, &yaml("theirs"));
    let evs = env.events_until(has(ChangeKind::Created, A));
    assert!(evs.iter().all(|e| e.origin == Origin::Outside), "{evs:#?}");
}

#[test]
fn symlinks_are_never_followed_out_of_the_library() {
    let env = Env::new();
    let secret = env.tmp.path().join("secret");
    fs::create_dir_all(&secret).unwrap();
    fs::write(secret.join("s.blueprint.yaml"), yaml("secret")).unwrap();
    std::os::unix::fs::symlink(&secret, env.p("Blueprints/personal/link")).unwrap();
    std::os::unix::fs::symlink(secret.join("s.blueprint.yaml"), env.p("Blueprints/personal/l.blueprint.yaml")).unwrap();
    // Changes behind the link are not seen either.
    fs::write(secret.join("t.blueprint.yaml"), yaml("secret 2")).unwrap();
    env.write(A, &yaml("real"));
    let evs = env.events_until(has(ChangeKind::Created, A));
    let mut evs = evs;
    evs.extend(env.quiet(Duration::from_millis(400)));
    assert!(evs.iter().all(|e| e.path == A), "{evs:#?}");
    env.watcher.as_ref().unwrap().rescan("test");
    env.quiet(Duration::from_millis(500));
    assert_eq!(env.indexed(), vec![A.to_string()]);
}

#[test]
fn polling_fallback_keeps_working_and_says_why() {
    let opts = WatchOptions {
        force_polling: Some("testing the fallback".into()),
        poll_interval: Duration::from_millis(150),
        ..Default::default()
    };
    let mut env = Env::with(opts, |_| {});
    let w = env.watcher.as_ref().unwrap();
    assert_eq!(w.state().mode, WatchMode::Polling);
    let status = read_status(env.lib.area());
    assert_eq!(status.state, "polling");
    assert_eq!(status.pid, Some(std::process::id()));
    assert_eq!(status.reason.as_deref(), Some("testing the fallback"));
    assert_eq!(env.lib.info().unwrap().watcher.state, "polling");

    env.write(A, &yaml("polled"));
    env.events_until(has(ChangeKind::Created, A));
    assert_eq!(env.name_of(A).as_deref(), Some("polled"));

    env.watcher.take().unwrap().stop();
    assert_eq!(read_status(env.lib.area()).state, "not running");
    assert!(!env.lib.area().join("watcher.json").exists());
}

#[test]
fn watch_state_is_recorded_and_a_dead_watcher_is_not_running() {
    let env = Env::new();
    let status = read_status(env.lib.area());
    assert_eq!(status.state, "watching");
    // A state file left by a process that is gone (pid above pid_max) is not believed.
    let mut stale: serde_json::Value =
        serde_json::from_slice(&fs::read(env.lib.area().join("watcher.json")).unwrap()).unwrap();
    stale["pid"] = 2147483632u32.into();
    let other = env.tmp.path().join("other-area");
    fs::create_dir_all(&other).unwrap();
    fs::write(other.join("watcher.json"), stale.to_string()).unwrap();
    assert_eq!(read_status(&other).state, "not running");
}

#[test]
fn the_watch_limit_and_network_filesystems_fall_back_to_polling_with_advice() {
    let (reason, advice) = fallback_reason(&notify_limit_error());
    assert!(reason.contains("limit"), "{reason}");
    assert!(advice.contains("fs.inotify.max_user_watches"), "{advice}");
    assert_eq!(fs_kind(0x6969), Some("NFS"));
    assert_eq!(fs_kind(0x6573_5546), Some("FUSE"));
    assert_eq!(fs_kind(0xFF53_4D42), Some("CIFS/SMB"));
    assert_eq!(fs_kind(0xEF53), None); // ext4
}

fn notify_limit_error() -> notify::Error {
    notify::Error::new(notify::ErrorKind::MaxFilesWatch)
}

#[test]
fn changed_since_answers_for_an_open_editor() {
    let env = Env::new();
    let item = env.lib.save_blueprint(A, yaml("x").as_bytes(), &BlueprintSave::default()).unwrap();
    let c = env.lib.changed_since(A, &item.hash).unwrap();
    assert!(!c.changed);
    env.write(A, &yaml("y"));
    let c = env.lib.changed_since(A, &item.hash).unwrap();
    assert!(c.changed && !c.deleted);
    fs::remove_file(env.p(A)).unwrap();
    let c = env.lib.changed_since(A, &item.hash).unwrap();
    assert!(c.changed && c.deleted && c.current_hash.is_none());
}

#[test]
fn own_writes_during_a_full_reconcile_are_still_reported_as_self() {
    let env = Env::new();
    let w = env.watcher.as_ref().unwrap();
    for i in 0..5 {
        let rel = format!("Templates/r{i}.blueprint.yaml");
        w.rescan("test");
        env.lib.save_blueprint(&rel, yaml("mine").as_bytes(), &BlueprintSave::default()).unwrap();
        let evs = env.events_until(has(ChangeKind::Created, &rel));
        assert!(evs.iter().all(|e| e.origin == Origin::SelfWrite), "{evs:#?}");
    }
}

#[test]
fn events_invalidate_a_cache_in_front_of_the_library() {
    use bpv_engine::Key;
    use bpv_engine::store::Store;
    use bpv_engine::store::cached::{CacheConfig, Cached};
    let env = Env::new();
    env.write(A, &yaml("old"));
    env.events_until(has(ChangeKind::Created, A));
    let cache = Cached::new(Arc::clone(&env.lib), CacheConfig::default());
    let key = Key::new(A).unwrap();
    assert_eq!(cache.load(&key).unwrap().data, yaml("old").into_bytes());
    env.write(A, &yaml("new"));
    // Until the event arrives the cache may serve the old bytes; the event makes it fresh.
    for ev in env.events_until(has(ChangeKind::Modified, A)) {
        ev.invalidate(&cache);
    }
    assert_eq!(cache.load(&key).unwrap().data, yaml("new").into_bytes());
}

#[test]
fn hitting_the_watch_limit_while_running_switches_to_polling() {
    let opts = WatchOptions { poll_interval: Duration::from_millis(150), ..Default::default() };
    let env = Env::with(opts, |_| {});
    let w = env.watcher.as_ref().unwrap();
    assert_eq!(w.state().mode, WatchMode::Watching);
    w.inject_watch_limit();
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        match env.rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(WatchNotice::State(s)) => break s,
            Ok(_) => {}
            Err(_) => panic!("no state change"),
        }
    };
    assert_eq!(state.mode, WatchMode::Polling);
    assert!(state.reason.as_deref().unwrap().contains("limit"), "{state:?}");
    assert!(state.advice.as_deref().unwrap().contains("max_user_watches"), "{state:?}");
    assert_eq!(read_status(env.lib.area()).state, "polling");
    // Still live, now by polling.
    env.write(A, &yaml("after the limit"));
    env.events_until(has(ChangeKind::Created, A));
    assert_eq!(env.name_of(A).as_deref(), Some("after the limit"));
}
