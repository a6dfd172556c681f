//! Three writers on the same blueprints at once, as in real use: the app's engine
//! in-process (a `Library` with a live `Watcher`), `bpv save --if-match` child processes,
//! and an outside editor writing the files directly. Every engine save is a
//! read-modify-write that appends a unique marker and passes the hash it read.
//!
//! Checked: no lost update (every marker of a save that succeeded is in the final file,
//! and every save that failed failed as a `conflict`); no index corruption (`PRAGMA
//! integrity_check`, and the index equals a fresh reindex once the watcher settles); no
//! deadlock (a watchdog fails the test if the writers do not finish in time).
//!
//! The outside editor re-reads a file just before replacing it and gives up if it
//! changed (as editors warn "file changed on disk"), and edits only the description
//! line. It cannot lock against the engine, so a save can still land between its check
//! and its replace: it swaps atomically (`RENAME_EXCHANGE`) to see what it replaced, and
//! markers lost that way are counted as the editor's, not as the engine's lost updates.
//! Run: `cargo test -p bpv --test concurrency`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bpv_engine::index::ListQuery;
use bpv_engine::library::{BlueprintSave, Library, OpenOptions};
use bpv_engine::store::content_hash;
use bpv_engine::watch::{WatchMode, WatchOptions, Watcher};

const FILES: usize = 4;
const APP_SAVES: usize = 150;
const CLI_SAVES: usize = 40;
const EDITOR_EDITS: usize = 150;
const WATCHDOG: Duration = Duration::from_secs(120);

fn rel(n: usize) -> String {
    format!("Blueprints/shared/flow-{n}.blueprint.yaml")
}

/// The YAML with one more marker (a node) appended.
fn with_marker(current: &[u8], marker: &str) -> Vec<u8> {
    let mut s = String::from_utf8_lossy(current).into_owned();
    s.push_str(&format!("  - id: {marker}\n    type: mark\n"));
    s.into_bytes()
}

/// Outside edits touch only the `description:` line (the second line).
fn with_editor_line(current: &[u8], n: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(current);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.len() > 1 {
        lines[1] = format!("description: outside edit {n}");
    }
    (lines.join("\n") + "\n").into_bytes()
}

struct Outcome {
    /// Markers whose save returned Ok, per file.
    saved: Mutex<BTreeMap<String, Vec<String>>>,
    conflicts: AtomicUsize,
    other_failures: Mutex<Vec<String>>,
}

impl Outcome {
    fn record(&self, file: &str, marker: String, result: Result<(), (String, String)>) {
        match result {
            Ok(()) => self.saved.lock().unwrap().entry(file.to_owned()).or_default().push(marker),
            Err((code, _)) if code == "conflict" => {
                self.conflicts.fetch_add(1, Ordering::Relaxed);
            }
            Err((code, msg)) => self.other_failures.lock().unwrap().push(format!("{marker}: {code}: {msg}")),
        }
    }
}

/// The markers a YAML holds.
fn markers(yaml: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(yaml)
        .lines()
        .filter_map(|l| l.strip_prefix("  - id: "))
        .filter(|id| id.starts_with("app-") || id.starts_with("cli-"))
        .map(str::to_owned)
        .collect()
}

/// Atomically swap two files (Linux `renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let (ca, cb) = (CString::new(a.as_os_str().as_bytes()).unwrap(), CString::new(b.as_os_str().as_bytes()).unwrap());
    // SAFETY: both are valid NUL-terminated paths that live across the call.
    let rc =
        unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
    assert_eq!(rc, 0, "renameat2: {}", std::io::Error::last_os_error());
}

fn bpv(library: &Path, data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpv"));
    c.arg("--json").arg("--library").arg(library).arg("--data-dir").arg(data);
    c.env_remove("BPV_LIBRARY").env_remove("BPV_DATA_DIR");
    c
}

#[test]
fn app_engine_bpv_and_an_outside_editor_lose_no_update_and_never_deadlock() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = fs::canonicalize(tmp.path()).unwrap();
    let (library, data) = (dir.join("lib"), dir.join("data"));
    let mut o = OpenOptions::new(&library);
    o.data_dir = Some(data.clone());
    o.create = true;
    let lib = Arc::new(Library::open(o).unwrap());
    for n in 0..FILES {
        let yaml = format!("name: Flow {n}\ndescription: start\nnodes:\n  - id: start\n    type: t\n");
        lib.save_blueprint(&rel(n), yaml.as_bytes(), &BlueprintSave::default()).unwrap();
    }
    let notices = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&notices);
    let watcher =
        Watcher::start(Arc::clone(&lib), WatchOptions { state_file: true, ..Default::default() }, move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    assert_eq!(watcher.state().mode, WatchMode::Watching, "not on kernel notifications: {:?}", watcher.state());

    let outcome = Arc::new(Outcome {
        saved: Mutex::new(BTreeMap::new()),
        conflicts: AtomicUsize::new(0),
        other_failures: Mutex::new(Vec::new()),
    });
    let finished = Arc::new(AtomicUsize::new(0));
    let editor_writes = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clobbered: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();

    // The app: in-process saves with if_match.
    {
        let (lib, outcome, finished) = (Arc::clone(&lib), Arc::clone(&outcome), Arc::clone(&finished));
        threads.push(std::thread::spawn(move || {
            for i in 0..APP_SAVES {
                let file = rel(i % FILES);
                let current = lib.read(&file).unwrap();
                let marker = format!("app-{i}");
                let opts = BlueprintSave { if_match: Some(content_hash(&current)), ..Default::default() };
                let result = lib
                    .save_blueprint(&file, &with_marker(&current, &marker), &opts)
                    .map(drop)
                    .map_err(|e| (e.code().to_owned(), e.to_string()));
                outcome.record(&file, marker, result);
            }
            finished.fetch_add(1, Ordering::Relaxed);
        }));
    }
    // `bpv save --if-match` processes.
    {
        let (outcome, finished) = (Arc::clone(&outcome), Arc::clone(&finished));
        let (library, data, scratch) = (library.clone(), data.clone(), dir.join("cli-input.yaml"));
        threads.push(std::thread::spawn(move || {
            for i in 0..CLI_SAVES {
                let file = rel((i + 1) % FILES);
                let current = fs::read(library.join(&file)).unwrap();
                let marker = format!("cli-{i}");
                fs::write(&scratch, with_marker(&current, &marker)).unwrap();
                let out = bpv(&library, &data)
                    .args(["save", &file, "--file"])
                    .arg(&scratch)
                    .args(["--if-match", &content_hash(&current)])
                    .output()
                    .unwrap();
                let result = if out.status.success() {
                    Ok(())
                } else {
                    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap_or_else(
                        |_| serde_json::json!({"code": "?", "message": String::from_utf8_lossy(&out.stderr)}),
                    );
                    Err((err["code"].as_str().unwrap_or("?").to_owned(), err["message"].to_string()))
                };
                outcome.record(&file, marker, result);
            }
            finished.fetch_add(1, Ordering::Relaxed);
        }));
    }
    // The outside editor: replaces files directly (temp + rename, as editors save).
    {
        let (library, finished, editor_writes) = (library.clone(), Arc::clone(&finished), Arc::clone(&editor_writes));
        let clobbered = Arc::clone(&clobbered);
        threads.push(std::thread::spawn(move || {
            for i in 0..EDITOR_EDITS {
                let path = library.join(rel(i % FILES));
                let current = fs::read(&path).unwrap();
                let edited = with_editor_line(&current, i);
                let temp = path.with_file_name(format!(".editor-swap-{i}"));
                fs::write(&temp, &edited).unwrap();
                std::thread::sleep(Duration::from_millis(3));
                // "The file changed on disk since you opened it": do not overwrite.
                if fs::read(&path).unwrap() == current {
                    // An editor cannot lock against the engine, so a save can still land
                    // between that check and the replace. Swap atomically to see what was
                    // replaced: markers lost that way are the editor's doing, not the engine's.
                    exchange(&temp, &path);
                    let replaced = fs::read(&temp).unwrap();
                    if replaced != current {
                        let mut c = clobbered.lock().unwrap();
                        c.extend(markers(&replaced).into_iter().filter(|m| !markers(&edited).contains(m)));
                    }
                    fs::remove_file(&temp).unwrap();
                    editor_writes.fetch_add(1, Ordering::Relaxed);
                } else {
                    fs::remove_file(&temp).unwrap();
                }
                // Files of its own come and go too.
                let own = library.join(format!("Blueprints/shared/editor-{}.blueprint.yaml", i % 3));
                if i % 4 == 3 {
                    let _ = fs::remove_file(&own);
                } else {
                    fs::write(&own, format!("name: Editor {i}\nnodes:\n  - id: e\n    type: t\n")).unwrap();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            finished.fetch_add(1, Ordering::Relaxed);
        }));
    }
    // Readers through the index while all this happens.
    {
        let (lib, stop) = (Arc::clone(&lib), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                lib.list(&ListQuery { limit: 100, ..Default::default() }).unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        }));
    }

    let start = Instant::now();
    while finished.load(Ordering::Relaxed) < 3 {
        assert!(start.elapsed() < WATCHDOG, "deadlock: writers still running after {WATCHDOG:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = start.elapsed();

    // No lost update: every saved marker survived every later write.
    let failures = outcome.other_failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "saves failed other than by conflict: {failures:#?}");
    let saved = outcome.saved.lock().unwrap().clone();
    let mut lost = Vec::new();
    for (file, markers) in &saved {
        let text = String::from_utf8(fs::read(library.join(file)).unwrap()).unwrap();
        for m in markers {
            if !text.contains(&format!("id: {m}\n")) && !clobbered.lock().unwrap().contains(m) {
                lost.push(format!("{file}: {m}"));
            }
        }
    }
    assert!(lost.is_empty(), "lost updates: {lost:#?}");
    let saves: usize = saved.values().map(Vec::len).sum();
    assert!(saves > 0, "no save succeeded");

    // The watcher catches up; then the index equals a fresh reindex and is intact.
    let listed = |lib: &Library| {
        let mut v: Vec<(String, String)> = lib
            .list(&ListQuery { limit: 1000, ..Default::default() })
            .unwrap()
            .items
            .into_iter()
            .map(|i| (i.path, i.hash))
            .collect();
        v.sort();
        v
    };
    let on_disk = |lib: &Library| {
        let mut v: Vec<(String, String)> = Vec::new();
        for e in fs::read_dir(lib.root().join("Blueprints/shared")).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".blueprint.yaml") && !name.starts_with('.') {
                v.push((format!("Blueprints/shared/{name}"), content_hash(&fs::read(e.path()).unwrap())));
            }
        }
        v.sort();
        v
    };
    let settle = Instant::now();
    while listed(&lib) != on_disk(&lib) {
        assert!(settle.elapsed() < Duration::from_secs(20), "the watcher never brought the index up to date");
        std::thread::sleep(Duration::from_millis(50));
    }
    watcher.stop();
    let live = listed(&lib);
    lib.reindex(None).unwrap();
    assert_eq!(live, listed(&lib), "the live index differs from a fresh reindex");
    assert_eq!(lib.index().integrity_check().unwrap(), "ok", "index integrity_check");
    let out = bpv(&library, &data).arg("info").output().unwrap();
    assert!(out.status.success(), "bpv info after the run: {}", String::from_utf8_lossy(&out.stderr));
    eprintln!(
        "concurrency: {saves} saves kept, {} conflicts detected, {} outside edits ({} raced a save and replaced it), \
         {} watcher notices, {:.1} s",
        outcome.conflicts.load(Ordering::Relaxed),
        editor_writes.load(Ordering::Relaxed),
        clobbered.lock().unwrap().len(),
        notices.load(Ordering::Relaxed),
        elapsed.as_secs_f64()
    );
}
