//! The sync protocol end to end over an in-memory object store: real libraries on
//! disk, real sync state files, the merge seen through the files each device ends with.

mod common;

use bpv_sync::Remote;
use common::{Device, converge, yaml};

const A: &str = "Blueprints/shared/alpha.blueprint.yaml";
const B: &str = "Blueprints/shared/beta.blueprint.yaml";

#[test]
fn two_devices_exchange_creates_edits_deletes_and_renames() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    let two = Device::new("two", remote.share());
    one.save(A, &yaml("a", "Alpha", "first"));
    one.save(B, &yaml("b", "Beta", "first"));
    one.sync();
    two.sync();
    assert_eq!(two.read(A).unwrap(), yaml("a", "Alpha", "first"));
    assert_eq!(two.files(), one.files());

    // Edit on two, rename on one (the id is kept, so both survive), delete on two.
    two.save(A, &yaml("a", "Alpha", "edited on two"));
    let renamed = "Blueprints/personal/alpha-moved.blueprint.yaml";
    std::fs::rename(one.root().join(A), one.root().join(renamed)).unwrap();
    std::fs::remove_file(two.root().join(B)).unwrap();
    converge(&[&one, &two]);
    assert_eq!(one.read(renamed).unwrap(), yaml("a", "Alpha", "edited on two"));
    assert!(one.read(A).is_none());
    assert!(one.read(B).is_none(), "the delete reached one");
    // The deleted blueprint is in one's trash, not gone.
    assert_eq!(one.lib.trash_list().unwrap().len(), 1);
}

#[test]
fn concurrent_edits_keep_both_versions() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    let two = Device::new("two", remote.share());
    one.save(A, &yaml("a", "Alpha", "base"));
    converge(&[&one, &two]);
    one.save(A, &yaml("a", "Alpha", "one's edit"));
    two.save(A, &yaml("a", "Alpha", "two's edit"));
    one.sync();
    let report = two.sync();
    assert_eq!(report.conflicts.len(), 1, "{report:?}");
    converge(&[&one, &two]);
    let files = one.files();
    let contents: Vec<&Vec<u8>> = files.values().collect();
    assert!(contents.contains(&&yaml("a", "Alpha", "one's edit")), "{files:?}");
    assert!(contents.contains(&&yaml("a", "Alpha", "two's edit")), "{files:?}");
    assert_eq!(files.len(), 2);
    // The later edit (two's) stays at the path; one's is the conflict copy.
    assert_eq!(one.read(A).unwrap(), yaml("a", "Alpha", "two's edit"));
    assert!(files.contains_key("Blueprints/shared/alpha (conflict one).blueprint.yaml"), "{files:?}");
    let status = one.syncer.status(&one.lib).unwrap();
    assert_eq!(status.state, "conflict");
    // Deleting the copy settles it everywhere.
    std::fs::remove_file(one.root().join("Blueprints/shared/alpha (conflict one).blueprint.yaml")).unwrap();
    converge(&[&one, &two]);
    assert_eq!(two.files().len(), 1);
    assert_eq!(two.syncer.status(&two.lib).unwrap().state, "synced");
}

#[test]
fn three_devices_converge() {
    let remote = Remote::in_memory();
    let devices: Vec<Device> = ["one", "two", "three"].iter().map(|n| Device::new(n, remote.share())).collect();
    for (i, d) in devices.iter().enumerate() {
        d.save(&format!("Blueprints/shared/d{i}.blueprint.yaml"), &yaml(&format!("d{i}"), "D", "v1"));
        d.save("Blueprints/shared/same.blueprint.yaml", &yaml("same", "Same", &format!("from {i}")));
    }
    let refs: Vec<&Device> = devices.iter().collect();
    converge(&refs);
    let files = devices[0].files();
    // 3 own blueprints + the shared one + 2 conflict copies: nothing lost.
    assert_eq!(files.len(), 6, "{:?}", files.keys().collect::<Vec<_>>());
    for i in 0..3 {
        assert!(files.values().any(|v| v == &yaml("same", "Same", &format!("from {i}"))));
    }
}

#[test]
fn queued_changes_survive_a_restart_and_an_unreachable_store() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    one.save(A, &yaml("a", "Alpha", "offline edit"));
    // The same library, linked to a store that does not answer.
    let mut dead =
        bpv_sync::LinkConfig::new(vec!["http://127.0.0.1:9".into()], "team", "", Some("one".into())).unwrap();
    dead.device_id = one.syncer.link().device_id.clone();
    let creds = bpv_sync::Credentials { access_key_id: "x".into(), secret_access_key: "y".into() };
    let mut offline = Remote::open(&dead, &creds).unwrap();
    offline.policy = bpv_sync::RetryPolicy { attempts: 2, ..Default::default() };
    let syncer = bpv_sync::Syncer::with_remote(&one.lib, dead, offline).unwrap();
    let err = syncer.sync(&one.lib).unwrap_err();
    assert_eq!(err.code(), "remote_unreachable", "{err}");
    let status = syncer.status(&one.lib).unwrap();
    assert_eq!(status.state, "error");
    assert_eq!(status.pending_changes, 1);
    drop(syncer);
    // Edit the file again after the change was queued: the queued content is what was recorded.
    one.save(A, &yaml("a", "Alpha", "second offline edit"));
    // Back online (a new syncer: as after a restart).
    let link = one.syncer.link().clone();
    let back = bpv_sync::Syncer::with_remote(&one.lib, link, remote.share()).unwrap();
    back.sync(&one.lib).unwrap();
    let two = Device::new("two", remote.share());
    two.sync();
    assert_eq!(two.read(A).unwrap(), yaml("a", "Alpha", "second offline edit"));
    assert_eq!(back.status(&one.lib).unwrap().state, "synced");
}

#[test]
fn a_device_far_behind_follows_through_a_snapshot() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    let two = Device::new("two", remote.share());
    one.save(A, &yaml("a", "Alpha", "v0"));
    converge(&[&one, &two]);
    // Enough syncs with changes for one's log to be compacted (and its old objects removed).
    for i in 1..=40 {
        one.save(A, &yaml("a", "Alpha", &format!("v{i}")));
        one.save(&format!("Blueprints/shared/n{i}.blueprint.yaml"), &yaml(&format!("n{i}"), "N", "x"));
        one.sync();
    }
    let three = Device::new("three", remote.share());
    three.sync();
    two.sync();
    assert_eq!(two.files(), one.files());
    assert_eq!(three.files(), one.files());
    assert_eq!(two.read(A).unwrap(), yaml("a", "Alpha", "v40"));
}

#[test]
fn blueprints_without_ids_and_companions_sync() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    let two = Device::new("two", remote.share());
    let plain = "Templates/plain.blueprint.yaml";
    one.save(plain, b"name: Plain\nnodes: []\n");
    one.lib
        .update_meta(plain, &bpv_engine::library::MetaUpdate { tags: Some(vec!["team".into()]), ..Default::default() })
        .unwrap();
    one.save("Templates/broken.blueprint.yaml", b"name: [unclosed\n");
    converge(&[&one, &two]);
    assert!(two.files().contains_key("Templates/plain.blueprint.meta.json"));
    assert_eq!(two.lib.item(plain).unwrap().tags, vec!["team".to_string()]);
}

#[test]
fn a_device_behind_sees_a_compacted_log_even_when_its_writer_goes_quiet() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    let two = Device::new("two", remote.share());
    one.save(A, &yaml("a", "Alpha", "v0"));
    converge(&[&one, &two]);
    // one writes (and compacts) a long log while two is away, then stops writing.
    // Stop right after the sync that compacted one's log into a snapshot.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut last = 0;
    for i in 1..=100 {
        one.save(A, &yaml("a", "Alpha", &format!("v{i}")));
        one.sync();
        last = i;
        if !rt.block_on(remote.list("snapshots")).unwrap().is_empty() {
            break;
        }
    }
    assert!(last < 100, "no compaction happened");
    two.sync();
    assert_eq!(two.read(A).unwrap(), yaml("a", "Alpha", &format!("v{last}")));
}

#[test]
fn an_edit_beats_a_concurrent_delete_and_concurrent_renames_keep_one_file() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    let two = Device::new("two", remote.share());
    one.save(A, &yaml("a", "Alpha", "v1"));
    one.save(B, &yaml("b", "Beta", "v1"));
    converge(&[&one, &two]);
    // A: deleted on one, edited on two. B: renamed differently on both.
    std::fs::remove_file(one.root().join(A)).unwrap();
    two.save(A, &yaml("a", "Alpha", "edited while deleted elsewhere"));
    std::fs::rename(one.root().join(B), one.root().join("Blueprints/personal/beta-one.blueprint.yaml")).unwrap();
    std::fs::rename(two.root().join(B), two.root().join("Blueprints/personal/beta-two.blueprint.yaml")).unwrap();
    converge(&[&one, &two]);
    let files = one.files();
    assert_eq!(files[A], yaml("a", "Alpha", "edited while deleted elsewhere"), "the edit survives the delete");
    let betas: Vec<&String> = files.keys().filter(|k| k.contains("beta")).collect();
    assert_eq!(betas.len(), 1, "one blueprint, one file: {betas:?}");
    assert_eq!(files[betas[0]], yaml("b", "Beta", "v1"));
}
