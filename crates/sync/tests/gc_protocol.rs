//! Garbage collection of a team library over an in-memory store, with real libraries:
//! what goes, what must stay (newest logs and snapshots, content a device that was away
//! still names), and the grace period.

mod common;

use std::time::Duration;

use bpv_sync::Remote;
use bpv_sync::gc::{GcOptions, GcReport, collect_garbage};
use common::{Device, converge, yaml};

const A: &str = "Blueprints/shared/alpha.blueprint.yaml";
const B: &str = "Blueprints/shared/beta.blueprint.yaml";

fn gc(d: &Device, grace: Duration, dry_run: bool) -> GcReport {
    collect_garbage(&d.syncer, &d.lib, &GcOptions { grace, dry_run }).unwrap()
}

fn keys(remote: &Remote, folder: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(remote.list(folder)).unwrap()
}

/// Enough edits, each synced, for `d` to compact its log into a snapshot.
fn churn(d: &Device, path: &str, id: &str, rounds: usize) {
    for i in 0..rounds {
        d.save(path, &yaml(id, "Churn", &format!("version {i}")));
        d.sync();
    }
}

fn blob_key(bytes: &[u8]) -> String {
    let hash = bpv_engine::store::content_hash(bytes);
    format!("blobs/{}/{hash}", &hash[..2])
}

#[test]
fn old_contents_go_after_the_grace_period_and_current_ones_stay() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    let two = Device::new("two", remote.share());
    one.save(A, &yaml("a", "Alpha", "stays"));
    two.save("Blueprints/shared/two.blueprint.yaml", &yaml("t", "Two", "from two"));
    converge(&[&one, &two]);
    churn(&one, B, "b", 40);
    converge(&[&one, &two]);
    let blobs_before = keys(&remote, "blobs").len();
    assert!(blobs_before > 40, "{blobs_before}");
    assert!(!keys(&remote, "snapshots").is_empty(), "one compacted its log");

    // A dry run and a run inside the grace period delete nothing.
    let dry = gc(&one, Duration::ZERO, true);
    assert!(dry.deleted_blobs > 0, "{dry:?}");
    assert_eq!(keys(&remote, "blobs").len(), blobs_before);
    let first = gc(&one, Duration::from_millis(700), false);
    assert_eq!(first.deleted_blobs + first.deleted_logs + first.deleted_snapshots, 0, "{first:?}");
    assert!(first.waiting > 0);
    assert_eq!(keys(&remote, "blobs").len(), blobs_before);
    assert_eq!(keys(&remote, "gc"), vec![format!("gc/{}.json", one.syncer.link().device_id)]);

    std::thread::sleep(Duration::from_millis(800));
    let second = gc(&one, Duration::from_millis(700), false);
    assert!(second.deleted_blobs > 0, "{second:?}");
    assert!(second.freed_bytes > 0);
    let remaining = keys(&remote, "blobs");
    assert!(remaining.len() < blobs_before);
    // The current contents stay; old versions of B no longer named anywhere went.
    assert!(remaining.contains(&blob_key(&yaml("a", "Alpha", "stays"))));
    assert!(remaining.contains(&blob_key(&yaml("b", "Churn", "version 39"))));
    assert!(!remaining.contains(&blob_key(&yaml("b", "Churn", "version 0"))));
    // Leftovers of a compaction that was cut short (a covered log object, an older
    // snapshot) go; the newest log object and the newest snapshot stay.
    let one_id = one.syncer.link().device_id.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let logs = keys(&remote, &format!("logs/{one_id}"));
    let snaps = keys(&remote, "snapshots");
    let newest_log = rt.block_on(remote.get(logs.last().unwrap())).unwrap().unwrap();
    let newest_snap = rt.block_on(remote.get(snaps.last().unwrap())).unwrap().unwrap();
    rt.block_on(remote.put(&format!("logs/{one_id}/000000000001.json"), newest_log)).unwrap();
    rt.block_on(remote.put(&format!("snapshots/0000000000001-{one_id}.json"), newest_snap)).unwrap();
    let third = gc(&one, Duration::ZERO, false);
    assert_eq!((third.deleted_logs, third.deleted_snapshots), (1, 1), "{third:?}");
    assert_eq!(keys(&remote, &format!("logs/{one_id}")), logs);
    assert_eq!(keys(&remote, "snapshots"), snaps);
    let two_id = &two.syncer.link().device_id;
    assert!(!keys(&remote, &format!("logs/{two_id}")).is_empty(), "two's log (no snapshot) stays");

    // Everyone still converges, and a new device gets everything from what is left.
    one.save(A, &yaml("a", "Alpha", "after gc"));
    let three = Device::new("three", remote.share());
    converge(&[&one, &two, &three]);
    assert_eq!(three.read(A).unwrap(), yaml("a", "Alpha", "after gc"));
    assert_eq!(three.read(B).unwrap(), yaml("b", "Churn", "version 39"));
    assert!(gc(&two, Duration::ZERO, false).deleted_blobs <= 1);
    converge(&[&one, &two, &three]);
}

#[test]
fn a_device_away_across_a_collection_loses_nothing() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    let two = Device::new("two", remote.share());
    let three = Device::new("three", remote.share());
    one.save(A, &yaml("a", "Alpha", "the original"));
    one.save(B, &yaml("b", "Beta", "v0"));
    converge(&[&one, &two, &three]);

    // While two and three are away: one deletes A (its content is then named only by
    // old log entries) and edits B so often that its log is compacted away.
    std::fs::remove_file(one.root().join(A)).unwrap();
    one.sync();
    churn(&one, B, "b", 40);
    // two, offline, moved A; three, offline, edited A.
    let moved = "Blueprints/personal/alpha-kept.blueprint.yaml";
    std::fs::rename(two.root().join(A), two.root().join(moved)).unwrap();
    three.save(A, &yaml("a", "Alpha", "three's edit"));

    let report = gc(&one, Duration::ZERO, false);
    assert!(report.deleted_blobs > 0, "{report:?}");
    assert!(!keys(&remote, "blobs").contains(&blob_key(&yaml("a", "Alpha", "the original"))));

    // They come back: the move re-sends its content, the edit its own; nothing is lost.
    converge(&[&two, &three, &one]);
    let files = one.files();
    let contents: Vec<&Vec<u8>> = files.values().collect();
    assert!(contents.contains(&&yaml("a", "Alpha", "three's edit")), "{files:?}");
    assert_eq!(one.read(B).unwrap(), yaml("b", "Churn", "version 39"));
    // The moved blueprint: three's later edit wins the content, two's move the place.
    assert_eq!(one.read(moved).unwrap(), yaml("a", "Alpha", "three's edit"));
    // A device linked now reads the snapshot and what is left of the logs.
    let four = Device::new("four", remote.share());
    converge(&[&one, &two, &three, &four]);
}

#[test]
fn a_delete_here_and_a_move_away_keep_the_moved_content() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    let two = Device::new("two", remote.share());
    one.save(A, &yaml("a", "Alpha", "moved away"));
    converge(&[&one, &two]);
    std::fs::remove_file(one.root().join(A)).unwrap();
    one.sync();
    churn(&one, B, "b", 36);
    let moved = "Blueprints/personal/alpha.blueprint.yaml";
    std::fs::rename(two.root().join(A), two.root().join(moved)).unwrap();
    gc(&one, Duration::ZERO, false);
    assert!(!keys(&remote, "blobs").contains(&blob_key(&yaml("a", "Alpha", "moved away"))));
    // An edit beats a delete, and so does a move: the content comes back with it.
    converge(&[&two, &one]);
    assert_eq!(one.read(moved).unwrap(), yaml("a", "Alpha", "moved away"));
}

#[test]
fn a_recently_written_object_is_never_collected() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    one.save(A, &yaml("a", "Alpha", "x"));
    one.sync();
    // An unreferenced blob (a push whose log is not written yet) that this device's
    // record claims it saw long ago: the store's clock says it was just written.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let stray = blob_key(b"in flight");
    rt.block_on(remote.put(&stray, bytes::Bytes::from_static(b"in flight"))).unwrap();
    let record = serde_json::json!({
        "format": 1, "device": one.syncer.link().device_id, "time": 0, "candidates": { stray.clone(): 0 }
    });
    let record_key = format!("gc/{}.json", one.syncer.link().device_id);
    rt.block_on(remote.put(&record_key, bytes::Bytes::from(record.to_string()))).unwrap();
    let report = gc(&one, Duration::from_secs(3600), false);
    assert_eq!(report.deleted_blobs, 0, "{report:?}");
    assert_eq!(report.waiting, 1);
    assert!(keys(&remote, "blobs").contains(&stray));
    // Other objects under the prefix are not the collector's.
    rt.block_on(remote.put("kv/00", bytes::Bytes::from_static(b"x"))).unwrap();
    gc(&one, Duration::ZERO, false);
    assert!(!keys(&remote, "blobs").contains(&stray));
    assert_eq!(keys(&remote, "kv"), vec!["kv/00".to_string()]);
}
