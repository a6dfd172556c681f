//! Garbage collection and `migrate --to` on a real 3-node Garage cluster
//! (scripts/garage-cluster.sh): a device away across a collection loses nothing; and the
//! 10k figures for docs/BENCHMARKS.md (ignored; scripts/bench-team-ops.sh runs them).

mod common;

use std::time::{Duration, Instant};

use bpv_sync::gc::{GcOptions, collect_garbage};
use bpv_sync::migrate::{BucketAccess, migrate_to_bucket, migrate_to_folder};
use bytes::Bytes;
use common::{Device, Garage, converge, files_under, yaml};
use futures::StreamExt;

fn churn(d: &Device, path: &str, rounds: usize) {
    for i in 0..rounds {
        d.save(path, &yaml("churn", "Churn", &format!("version {i}")));
        d.sync();
    }
}

#[test]
fn a_device_away_across_a_collection_loses_nothing_on_garage() {
    let garage = Garage::start();
    let one = garage.device("one", "gc");
    let two = garage.device("two", "gc");
    let a = "Blueprints/shared/a.blueprint.yaml";
    let b = "Blueprints/shared/b.blueprint.yaml";
    one.save(a, &yaml("a", "A", "original"));
    converge(&[&one, &two]);
    // two is away: it moves A; one deletes A and edits B until its log is compacted.
    let moved = "Blueprints/personal/a.blueprint.yaml";
    std::fs::rename(two.root().join(a), two.root().join(moved)).unwrap();
    std::fs::remove_file(one.root().join(a)).unwrap();
    one.sync();
    churn(&one, b, 34);
    let report = collect_garbage(&one.syncer, &one.lib, &GcOptions { grace: Duration::ZERO, dry_run: false }).unwrap();
    assert!(report.deleted_blobs >= 30, "{report:?}");
    converge(&[&two, &one]);
    assert_eq!(one.read(moved).unwrap(), yaml("a", "A", "original"));
    assert_eq!(two.read(b).unwrap(), yaml("churn", "Churn", "version 33"));
    // A collection right after finds nothing more that is old enough to go.
    let again = collect_garbage(&two.syncer, &two.lib, &GcOptions { grace: Duration::ZERO, dry_run: true }).unwrap();
    assert!(again.deleted_blobs <= 1, "{again:?}");
}

fn fill_fast(d: &Device, n: usize) {
    let dir = d.root().join("Blueprints/shared/m");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let mut body = yaml(&format!("m-{i}"), "B", "bench");
        body.extend_from_slice(format!("# padding to a realistic size: {}\n", "x".repeat(i % 2000)).as_bytes());
        std::fs::write(dir.join(format!("bp{i:05}.blueprint.yaml")), body).unwrap();
    }
    d.lib.reindex(None).unwrap();
}

/// Baseline: `n` requests one after another, ms each.
fn sequential_ms(d: &Device, n: usize, delete: bool) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let start = Instant::now();
    for i in 0..n {
        let key = format!("baseline/{i}");
        if delete {
            rt.block_on(d.syncer.remote().delete(&key)).unwrap();
        } else {
            rt.block_on(d.syncer.remote().put(&key, Bytes::from(vec![b'x'; 2048]))).unwrap();
        }
    }
    start.elapsed().as_secs_f64() * 1000.0 / n as f64
}

/// 10k unreferenced contents among 10k referenced ones: one collection deletes them.
#[test]
#[ignore]
fn bench_gc_of_10k_objects() {
    let n = 10_000;
    let garage = Garage::start();
    let one = garage.device("one", "bench-gc");
    fill_fast(&one, n);
    one.sync();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let remote = one.syncer.remote();
    rt.block_on(async {
        futures::stream::iter((0..n).map(|i| {
            let body = format!("garbage {i}");
            let hash = bpv_engine::store::content_hash(body.as_bytes());
            async move { remote.put(&format!("blobs/{}/{hash}", &hash[..2]), Bytes::from(body)).await }
        }))
        .buffer_unordered(64)
        .for_each(|r| async move { r.unwrap() })
        .await;
    });
    let put_ms = sequential_ms(&one, 50, false);
    let delete_ms = sequential_ms(&one, 50, true);
    let dry = collect_garbage(&one.syncer, &one.lib, &GcOptions { grace: Duration::ZERO, dry_run: true }).unwrap();
    let report = collect_garbage(&one.syncer, &one.lib, &GcOptions { grace: Duration::ZERO, dry_run: false }).unwrap();
    assert_eq!(report.deleted_blobs, n, "{report:?}");
    assert_eq!(one.syncer.verify(&one.lib).unwrap(), n, "the referenced contents all stayed");
    let sequential = delete_ms * n as f64;
    eprintln!(
        "gc: {} objects listed, {n} deleted in {} ms ({} requests); dry run {} ms ({} requests); \
         baseline one DELETE at a time {delete_ms:.1} ms (PUT {put_ms:.1} ms), {n} ≈ {sequential:.0} ms: {:.1}x faster",
        report.blobs + report.logs + report.snapshots,
        report.millis,
        report.requests,
        dry.millis,
        dry.requests,
        sequential / report.millis as f64
    );
}

/// 10k blueprints copied to a folder (baseline: `cp -r` of the same files) and to the cluster.
#[test]
#[ignore]
fn bench_migrate_10k_to_a_folder_and_to_the_cluster() {
    let n = 10_000;
    let garage = Garage::start();
    let one = garage.device("one", "unused");
    fill_fast(&one, n);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    let cp_target = tmp.path().join("cp");
    let start = Instant::now();
    let status = std::process::Command::new("cp").arg("-r").arg(one.root()).arg(&cp_target).status().unwrap();
    assert!(status.success());
    let cp_sync = std::process::Command::new("sync").status().unwrap();
    assert!(cp_sync.success());
    let cp_ms = start.elapsed().as_millis();

    let folder = tmp.path().join("copy");
    let report = migrate_to_folder(&one.lib, &folder, &data, false, None).unwrap();
    assert_eq!(report.verified, n);
    assert_eq!(files_under(&folder), one.files());
    eprintln!(
        "migrate {n} to a folder: {} ms (copy durable + verify + index the new library); baseline `cp -r` + `sync` {cp_ms} ms: {:.2}x of cp",
        report.millis,
        report.millis as f64 / cp_ms as f64
    );

    let put_ms = sequential_ms(&one, 50, false);
    let access = BucketAccess {
        endpoints: garage.endpoints.clone(),
        region: "garage".into(),
        path_style: true,
        credentials: garage.creds.clone(),
    };
    let report = migrate_to_bucket(&one.lib, &garage.bucket, "bench-migrated", &access, false, None).unwrap();
    assert_eq!(report.verified, n);
    let sequential = put_ms * n as f64;
    eprintln!(
        "migrate {n} to the cluster: {} ms (push + read every content back); baseline one PUT at a time {put_ms:.1} ms, {n} ≈ {sequential:.0} ms: {:.1}x faster",
        report.millis,
        sequential / report.millis as f64
    );
}
