//! Team libraries on a real 3-node Garage cluster on loopback (scripts/garage-cluster.sh):
//! several devices syncing, a node killed mid-sync, two nodes killed mid-push, and a
//! migration checked byte for byte. Needs `garage` (scripts/setup.sh installs it).

mod common;

use std::thread;
use std::time::Duration;

use bpv_sync::RetryPolicy;
use common::{Device, Garage, converge, yaml};

fn fill(d: &Device, n: usize, tag: &str) {
    for i in 0..n {
        d.save(&format!("Blueprints/shared/{tag}/bp{i:04}.blueprint.yaml"), &yaml(&format!("{tag}-{i}"), "B", tag));
    }
}

/// Many blueprints quickly: files written directly (as a copy from elsewhere would), then indexed.
fn fill_fast(d: &Device, n: usize, tag: &str) {
    let dir = d.root().join(format!("Blueprints/shared/{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let mut body = yaml(&format!("{tag}-{i}"), "B", tag);
        body.extend_from_slice(format!("# padding to a realistic size: {}\n", "x".repeat(i % 2000)).as_bytes());
        std::fs::write(dir.join(format!("bp{i:05}.blueprint.yaml")), body).unwrap();
    }
    d.lib.reindex(None).unwrap();
}

/// The baseline: `n` small PUTs one after another (what a sync that waits for each
/// request would cost per request).
fn sequential_put_ms(d: &Device, n: usize) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let start = std::time::Instant::now();
    for i in 0..n {
        rt.block_on(d.syncer.remote().put(&format!("baseline/{i}"), bytes::Bytes::from(vec![b'x'; 2048]))).unwrap();
    }
    start.elapsed().as_secs_f64() * 1000.0 / n as f64
}

#[test]
fn three_devices_edit_delete_rename_and_conflict_on_garage() {
    let garage = Garage::start();
    let one = garage.device("one", "teams/a");
    let two = garage.device("two", "teams/a");
    let three = garage.device("three", "teams/a");
    one.syncer.probe().unwrap();
    fill(&one, 20, "one");
    fill(&two, 5, "two");
    converge(&[&one, &two, &three]);
    assert_eq!(three.files().len(), 25);

    let a = "Blueprints/shared/one/bp0001.blueprint.yaml";
    let b = "Blueprints/shared/one/bp0002.blueprint.yaml";
    let c = "Blueprints/shared/one/bp0003.blueprint.yaml";
    // Concurrent edits of one blueprint on two devices; a delete and a rename elsewhere.
    one.save(a, &yaml("one-1", "B", "edited on one"));
    two.save(a, &yaml("one-1", "B", "edited on two"));
    std::fs::remove_file(three.root().join(b)).unwrap();
    std::fs::rename(two.root().join(c), two.root().join("Blueprints/personal/renamed.blueprint.yaml")).unwrap();
    three.save(c, &yaml("one-3", "B", "edited on three"));
    converge(&[&one, &two, &three]);
    let files = one.files();
    let values: Vec<&Vec<u8>> = files.values().collect();
    assert!(values.contains(&&yaml("one-1", "B", "edited on one")), "one's edit kept");
    assert!(values.contains(&&yaml("one-1", "B", "edited on two")), "two's edit kept");
    assert!(!files.contains_key(b), "the delete reached everyone");
    assert_eq!(files["Blueprints/personal/renamed.blueprint.yaml"], yaml("one-3", "B", "edited on three"));
    assert!(!files.contains_key(c));
    // 25 - 1 deleted + 1 conflict copy
    assert_eq!(files.len(), 25);
    assert_eq!(one.syncer.status(&one.lib).unwrap().state, "conflict");

    // Another prefix in the same bucket is another team library.
    let other = garage.device("other", "teams/b");
    other.sync();
    assert!(other.files().is_empty());
}

#[test]
fn one_node_killed_mid_sync_and_restarted() {
    let garage = Garage::start();
    let one = garage.device("one", "");
    let two = garage.device("two", "");
    fill(&one, 400, "bulk");
    // Node 1 is the first endpoint of every device: killing it forces the failover.
    let killer = {
        let dir = garage.dir.path().to_path_buf();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/garage-cluster.sh");
            let ok = std::process::Command::new("bash").args([script, "kill"]).arg(&dir).arg("1").status().unwrap();
            assert!(ok.success());
        })
    };
    let report = one.sync();
    killer.join().unwrap();
    assert_eq!(report.recorded, 400);
    two.sync();
    assert_eq!(two.files(), one.files(), "with one node down, sync goes on");
    // Edits while node 1 is down, then it comes back: everything converges.
    one.save("Blueprints/shared/bulk/bp0000.blueprint.yaml", &yaml("bulk-0", "B", "while down"));
    one.sync();
    garage.restart(1);
    two.sync();
    assert_eq!(two.read("Blueprints/shared/bulk/bp0000.blueprint.yaml").unwrap(), yaml("bulk-0", "B", "while down"));
    let three = garage.device("three", "");
    three.sync();
    assert_eq!(three.files(), one.files());
}

#[test]
fn two_nodes_killed_mid_push_lose_nothing() {
    let garage = Garage::start();
    let mut one = garage.device("one", "");
    one.syncer.remote_mut().policy =
        RetryPolicy { attempts: 3, base: Duration::from_millis(100), max: Duration::from_millis(400) };
    fill(&one, 600, "bulk");
    // Kill two of the three nodes once the push is under way.
    let dir = garage.dir.path().to_path_buf();
    let killed = std::sync::atomic::AtomicBool::new(false);
    one.syncer.set_progress(Box::new(move |phase, done, _| {
        if phase == "upload" && done >= 200 && !killed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/garage-cluster.sh");
            for n in ["2", "3"] {
                let ok = std::process::Command::new("bash").args([script, "kill"]).arg(&dir).arg(n).status().unwrap();
                assert!(ok.success());
            }
        }
    }));
    // Without a quorum, writes fail: the sync reports it and keeps everything queued.
    let result = one.syncer.sync(&one.lib);
    let err = result.expect_err("the push cannot complete with two nodes down");
    assert_eq!(err.code(), "remote_unreachable", "{err}");
    let status = one.syncer.status(&one.lib).unwrap();
    assert_eq!(status.state, "error");
    assert!(status.pending_changes > 0, "{status:?}");
    // Edits go on offline.
    one.save("Blueprints/shared/bulk/bp0007.blueprint.yaml", &yaml("bulk-7", "B", "edited while broken"));
    garage.restart(2);
    garage.restart(3);
    one.syncer.remote_mut().policy = RetryPolicy::default();
    one.sync();
    one.sync();
    let two = garage.device("two", "");
    two.sync();
    assert_eq!(two.files(), one.files());
    assert_eq!(two.files().len(), 600);
    assert_eq!(
        two.read("Blueprints/shared/bulk/bp0007.blueprint.yaml").unwrap(),
        yaml("bulk-7", "B", "edited while broken")
    );
    assert_eq!(one.syncer.status(&one.lib).unwrap().state, "synced");
}

#[test]
fn migration_of_a_library_is_verified_byte_for_byte() {
    migrate(1000);
}

/// The 10k migration (minutes in a debug build): `cargo test -p bpv-sync --release
/// --test garage -- --ignored` (scripts/bench-sync.sh runs it and records figures).
#[test]
#[ignore]
fn migration_of_10k_blueprints_is_verified_byte_for_byte() {
    migrate(10_000);
}

fn migrate(n: usize) {
    let garage = Garage::start();
    let one = garage.device("one", "migrated");
    fill_fast(&one, n, "m");
    let per_request = sequential_put_ms(&one, 50);
    one.lib
        .update_meta(
            "Blueprints/shared/m/bp00001.blueprint.yaml",
            &bpv_engine::library::MetaUpdate { tags: Some(vec!["tagged".into()]), ..Default::default() },
        )
        .unwrap();
    let push = one.sync();
    assert_eq!(push.recorded, n);
    assert_eq!(one.syncer.verify(&one.lib).unwrap(), n);
    let two = garage.device("two", "migrated");
    let pull = two.sync();
    assert_eq!(pull.applied, n);
    assert_eq!(two.syncer.verify(&two.lib).unwrap(), n);
    assert_eq!(two.files(), one.files());
    // One change end to end (the sender's sync, then the receiver's), in this library.
    let edited = "Blueprints/shared/m/bp00002.blueprint.yaml";
    let start = std::time::Instant::now();
    one.save(edited, &yaml("m-2", "B", "one change"));
    let send = one.sync();
    let receive = two.sync();
    let latency = start.elapsed();
    assert_eq!(two.read(edited).unwrap(), yaml("m-2", "B", "one change"));
    // An idle linked library: what one periodic sync costs.
    let idle = two.sync();
    assert_eq!(idle.requests, 1, "an idle sync is one listing");
    eprintln!(
        "{n} blueprints: one change end to end {} ms (send {} ms / {} requests, receive {} ms / {} requests); idle sync {} ms, {} request(s)",
        latency.as_millis(),
        send.millis,
        send.requests,
        receive.millis,
        receive.requests,
        idle.millis,
        idle.requests
    );
    let sequential = per_request * n as f64;
    eprintln!(
        "{n} blueprints: push {} ms ({} requests), pull {} ms ({} requests); baseline: one PUT at a time {per_request:.1} ms each, {n} of them ≈ {sequential:.0} ms: push {:.1}x, pull {:.1}x faster",
        push.millis,
        push.requests,
        pull.millis,
        pull.requests,
        sequential / push.millis as f64,
        sequential / pull.millis as f64
    );
}
