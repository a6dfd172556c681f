//! Prune's progress and cancel against a real repository: the phases' counts are
//! monotonic and end at their totals; a cancel after every possible report leaves
//! every kept snapshot verifiable and restorable byte for byte; a cancel before the
//! first manifest goes changes no byte of the repository.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bpv_engine::backup::{self, BackupOptions, CancelToken, Progress, Repo, RestoreOptions, Retention};
use bpv_engine::library::{Library, OpenOptions};

mod common;
use common::{bytes_tree, files_under, random_bytes};

fn copy_dir(from: &Path, to: &Path) {
    for p in files_under(from) {
        let dest = to.join(p.strip_prefix(from).unwrap());
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(&p, &dest).unwrap();
    }
    // Empty folders too (objects/, packs/ may be empty).
    for sub in ["objects", "snapshots", "packs"] {
        fs::create_dir_all(to.join(sub)).unwrap();
    }
}

/// Four snapshots of a library: each round changes a large file (a loose object) and
/// adds a small one (packed), so prune forgets, rewrites packs and removes loose objects.
fn four_snapshots(dir: &Path) -> (PathBuf, Vec<String>) {
    let root = dir.join("My Library");
    let mut o = OpenOptions::new(&root);
    o.data_dir = Some(dir.join("data"));
    o.create = true;
    let lib = Library::open(o).unwrap();
    let repo = dir.join("repo");
    let mut ids = Vec::new();
    for round in 0..4u64 {
        let write = |rel: &str, body: &[u8]| {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, body).unwrap();
        };
        write("Blueprints/personal/big.blueprint.yaml", &random_bytes(1_300_000, round + 1));
        write(
            &format!("Blueprints/personal/r{round}.blueprint.yaml"),
            format!("name: R{round}\nnodes:\n  - id: a\n    type: t\n").as_bytes(),
        );
        write("Blueprints/personal/changing.blueprint.yaml", &random_bytes(5_000, round + 100));
        let opts = BackupOptions { repo: Some(repo.clone()), ..Default::default() };
        ids.push(backup::backup(&lib, &opts).unwrap().id);
    }
    (repo, ids)
}

fn restore(repo: &Repo, id: &str, to: &Path) -> BTreeMap<String, Vec<u8>> {
    let opts = RestoreOptions { partial: false, progress: None, cancel: CancelToken::new() };
    repo.restore_to(id, &to.join("files"), Some(&to.join("data")), &opts).unwrap();
    bytes_tree(&to.join("files"))
}

fn keep_two() -> Retention {
    Retention { keep_last: Some(2), ..Default::default() }
}

#[test]
fn prune_progress_is_monotonic_and_a_cancel_at_any_step_keeps_the_kept_snapshots_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (template, ids) = four_snapshots(tmp.path());
    let kept_ids = ids[2..].to_vec();
    let before = bytes_tree(&template);
    assert!(before.keys().any(|k| k.starts_with("objects/")), "the fixture has loose objects");
    assert!(before.keys().any(|k| k.starts_with("packs/")), "the fixture has packs");
    // What the kept snapshots restore to before any prune.
    let reference: Vec<BTreeMap<String, Vec<u8>>> = {
        let repo = Repo::open(&template).unwrap();
        kept_ids.iter().enumerate().map(|(i, id)| restore(&repo, id, &tmp.path().join(format!("ref{i}")))).collect()
    };

    // A full run: the reports, phase by phase.
    let full = tmp.path().join("full");
    copy_dir(&template, &full);
    let seen: Mutex<Vec<Progress>> = Mutex::new(Vec::new());
    let record = |p: Progress| seen.lock().unwrap().push(p);
    let report =
        Repo::open(&full).unwrap().prune_with_progress(&keep_two(), Some(&record), &CancelToken::new()).unwrap();
    assert_eq!(report.removed.len(), 2);
    assert!(report.objects_removed >= 2, "{report:?}");
    let seen = seen.into_inner().unwrap();
    let phases: Vec<&str> = seen.iter().map(|p| p.phase).fold(Vec::new(), |mut v, ph| {
        if v.last() != Some(&ph) {
            v.push(ph);
        }
        v
    });
    assert_eq!(phases, ["forget", "scan", "objects", "packs"], "each phase once, in order");
    for phase in &phases {
        let of: Vec<&Progress> = seen.iter().filter(|p| p.phase == *phase).collect();
        let total = of[0].total;
        assert!(of.iter().all(|p| p.total == total), "{phase}: the total is known from the start");
        assert_eq!(of[0].done, 0, "{phase} starts at 0");
        assert!(of.windows(2).all(|w| w[1].done == w[0].done + 1), "{phase}: one step at a time");
        assert_eq!(of.last().unwrap().done, total, "{phase} ends at its total");
    }
    let forget_total = seen.iter().find(|p| p.phase == "forget").unwrap().total;
    assert_eq!(forget_total, 2);
    assert_eq!(seen.iter().find(|p| p.phase == "scan").unwrap().total, 2);
    let n = seen.len();

    // Cancelled before it starts: nothing changes.
    let early = tmp.path().join("early");
    copy_dir(&template, &early);
    let cancel = CancelToken::new();
    cancel.cancel();
    let err = Repo::open(&early).unwrap().prune_with_progress(&keep_two(), None, &cancel).unwrap_err();
    assert_eq!(err.code(), "cancelled");
    assert_eq!(bytes_tree(&early), before, "a cancel before the first manifest goes changes nothing");

    // Cancelled after the k-th report, for every k.
    for k in 1..=n {
        let dir = tmp.path().join(format!("k{k}"));
        copy_dir(&template, &dir);
        let cancel = CancelToken::new();
        let count = AtomicUsize::new(0);
        let forgot = AtomicUsize::new(0);
        let tick = |p: Progress| {
            if p.phase == "forget" && p.done > 0 {
                forgot.fetch_add(1, Ordering::SeqCst);
            }
            if count.fetch_add(1, Ordering::SeqCst) + 1 == k {
                cancel.cancel();
            }
        };
        let repo = Repo::open(&dir).unwrap();
        let result = repo.prune_with_progress(&keep_two(), Some(&tick), &cancel);
        if k < n {
            assert_eq!(result.unwrap_err().code(), "cancelled", "k = {k}");
        } else {
            result.unwrap(); // the last report is the end: nothing left to stop
        }
        assert_eq!(count.load(Ordering::SeqCst), k, "no report after the cancel (k = {k})");
        if forgot.load(Ordering::SeqCst) == 0 {
            assert_eq!(bytes_tree(&dir), before, "k = {k}: cancelled before a manifest went, nothing changed");
        }
        // Every kept snapshot is whole, also for a fresh reader of the repository.
        let left = repo.snapshot_ids().unwrap();
        for id in &kept_ids {
            assert!(left.contains(id), "k = {k}: {id} is kept");
        }
        let fresh = Repo::open(&dir).unwrap();
        for (i, id) in kept_ids.iter().enumerate() {
            assert!(fresh.verify(id, None, &CancelToken::new()).unwrap().ok, "k = {k}: {id} verifies");
            let got = restore(&fresh, id, &tmp.path().join(format!("k{k}-restore{i}")));
            assert!(got == reference[i], "k = {k}: {id} restores byte for byte");
        }
        // And a prune run to the end afterwards leaves exactly the live objects.
        let done = fresh.prune(&keep_two()).unwrap();
        assert!(done.warnings.is_empty(), "{done:?}");
        let live: std::collections::HashSet<String> =
            kept_ids.iter().flat_map(|id| fresh.referenced_objects(id).unwrap()).collect();
        assert_eq!(Repo::open(&dir).unwrap().object_hashes().len(), live.len(), "k = {k}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
