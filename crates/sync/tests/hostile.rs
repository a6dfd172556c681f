//! A team bucket is untrusted input (issue 21): a device with the bucket's keys writes
//! hostile log objects and contents. For each hostile input, on a real 3-node Garage
//! cluster (and the same cases in memory): the entry is refused and reported with the
//! device it came from, nothing outside the library changes, the library stays byte for
//! byte what it was, and the next honest change still arrives.
//!
//! `cargo test -p bpv-sync --test hostile` (Garage: `scripts/garage-cluster.sh`; without
//! `garage` the Garage test fails, as every Garage test does).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bpv_engine::store::content_hash;
use bpv_sync::Remote;
use bytes::Bytes;
use common::{Device, Garage, converge, yaml};
use serde_json::{Value, json};

const EVIL: &str = "e0e0e0e0e0e0e0e0";
const A: &str = "Blueprints/shared/alpha.blueprint.yaml";
const B: &str = "Blueprints/shared/beta.blueprint.yaml";

/// Log object bodies (seq from 1) and blobs (key, bytes) a hostile device writes.
type Planted = (Vec<Vec<u8>>, Vec<(String, Vec<u8>)>);

/// One hostile input: what the evil device writes (log body, extra blobs) given the
/// victim's folder (for paths aimed outside it).
struct Case {
    name: &'static str,
    /// Log object bodies (written as `logs/EVIL/<seq>.json`, seq from 1) and blobs.
    write: fn(&Path) -> Planted,
    /// Set up the victim's library before (e.g. a linked folder).
    prepare: fn(&Path),
}

fn change(n: usize, path: Option<&str>, yaml_hash: Option<&str>, device_name: &str) -> Value {
    change_in(1, n, path, yaml_hash, device_name)
}

fn change_in(seq: u64, n: usize, path: Option<&str>, yaml_hash: Option<&str>, device_name: &str) -> Value {
    json!({
        "ref": format!("{EVIL}/{seq}/{n}"), "id": format!("evil-{n}"), "parents": [],
        "path": path, "yaml": yaml_hash, "meta": null, "edited": true, "moved": false,
        "time": 4_000_000_000_000i64, "device": EVIL, "device_name": device_name
    })
}

fn batch(changes: Vec<Value>) -> Vec<u8> {
    batch_at(1, changes)
}

fn batch_at(seq: u64, changes: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({ "format": 1, "device": EVIL, "seq": seq, "time": 0, "changes": changes })).unwrap()
}

fn blob(content: &[u8]) -> (String, Vec<u8>) {
    let h = content_hash(content);
    (format!("blobs/{}/{h}", &h[..2]), content.to_vec())
}

/// Changes naming `paths`, each with a real blob (so only the path is wrong).
fn paths_case(paths: &[String]) -> Planted {
    let body = yaml("evil", "Evil", "planted");
    let (key, bytes) = blob(&body);
    let h = content_hash(&body);
    let changes = paths.iter().enumerate().map(|(n, p)| change(n, Some(p), Some(&h), "evil")).collect();
    (vec![batch(changes)], vec![(key, bytes)])
}

fn no_prepare(_: &Path) {}

fn outside(victim_dir: &Path) -> PathBuf {
    victim_dir.join("outside")
}

/// Every case, or those whose name contains `BPV_HOSTILE_CASE` (to reproduce one).
fn cases() -> Vec<Case> {
    let only = std::env::var("BPV_HOSTILE_CASE").unwrap_or_default();
    all_cases().into_iter().filter(|c| c.name.contains(only.as_str())).collect()
}

fn all_cases() -> Vec<Case> {
    vec![
        Case {
            name: "dot-dot paths",
            write: |_| {
                paths_case(&[
                    "../outside/dotdot.blueprint.yaml".into(),
                    format!("../../escaped-{}.blueprint.yaml", std::process::id()),
                    "Blueprints/shared/../../../outside/mid.blueprint.yaml".into(),
                    "Blueprints\\..\\..\\outside\\win.blueprint.yaml".into(),
                ])
            },
            prepare: no_prepare,
        },
        Case {
            name: "absolute paths",
            write: |dir| {
                paths_case(&[
                    format!("{}/abs.blueprint.yaml", outside(dir).display()),
                    "C:/Windows/abs.blueprint.yaml".into(),
                ])
            },
            prepare: no_prepare,
        },
        Case {
            name: "NUL and control characters",
            write: |_| {
                paths_case(&[
                    "Blueprints/shared/nul\0.blueprint.yaml".into(),
                    "Blueprints/shared/line\nbreak.blueprint.yaml".into(),
                    "Blueprints/shared/evil\u{202E}lmay.blueprint.yaml".into(),
                ])
            },
            prepare: no_prepare,
        },
        Case {
            name: "overlong paths, hidden folders, not a blueprint",
            write: |_| {
                paths_case(&[
                    format!("Blueprints/shared/{}.blueprint.yaml", "a".repeat(300)),
                    format!("{}x.blueprint.yaml", "deep/".repeat(40)),
                    format!("Blueprints/{}/x.blueprint.yaml", "b".repeat(1100)),
                    "Blueprints/.git/hooks/x.blueprint.yaml".into(),
                    "Blueprints/shared/run.sh".into(),
                ])
            },
            prepare: no_prepare,
        },
        Case {
            name: "a symlinked folder along the path",
            write: |_| paths_case(&["Blueprints/shared/linked/evil.blueprint.yaml".into()]),
            prepare: |dir| {
                std::os::unix::fs::symlink(outside(dir), dir.join("lib/Blueprints/shared/linked")).unwrap();
            },
        },
        Case {
            name: "device names with / and ..",
            write: |_| {
                let body = yaml("evil", "Evil", "planted");
                let (key, bytes) = blob(&body);
                let h = content_hash(&body);
                let changes = vec![
                    change(0, Some("Blueprints/shared/named.blueprint.yaml"), Some(&h), "../../outside"),
                    change(1, Some("Blueprints/shared/named2.blueprint.yaml"), Some(&h), "a/b"),
                    change(2, Some("Blueprints/shared/named3.blueprint.yaml"), Some(&h), ".."),
                ];
                (vec![batch(changes)], vec![(key, bytes)])
            },
            prepare: no_prepare,
        },
        Case {
            name: "malformed batches and fields",
            write: |_| {
                let body = yaml("evil", "Evil", "planted");
                let h = content_hash(&body);
                let mut wrong_seq: Value = serde_json::from_slice(&batch(vec![change(
                    0,
                    Some("Blueprints/shared/m1.blueprint.yaml"),
                    Some(&h),
                    "evil",
                )]))
                .unwrap();
                wrong_seq["seq"] = json!(7);
                // Another device's change in this log, a hash that is a path, a reference
                // out of the log, a parent with a NUL.
                let mut forged = change_in(3, 0, Some("Blueprints/shared/m2.blueprint.yaml"), Some(&h), "evil");
                forged["device"] = json!("0123456789abcdef");
                let mut bad_hash = change_in(3, 1, Some("Blueprints/shared/m3.blueprint.yaml"), None, "evil");
                bad_hash["yaml"] = json!("../../../etc/passwd");
                let mut bad_ref = change_in(3, 2, Some("Blueprints/shared/m4.blueprint.yaml"), Some(&h), "evil");
                bad_ref["ref"] = json!("../1/2");
                let mut bad_parent = change_in(3, 3, Some("Blueprints/shared/m5.blueprint.yaml"), Some(&h), "evil");
                bad_parent["parents"] = json!(["x\u{0}y"]);
                (
                    vec![
                        b"{\"format\": 1, \"device\": \"".to_vec(),
                        serde_json::to_vec(&wrong_seq).unwrap(),
                        batch_at(3, vec![forged, bad_hash, bad_ref, bad_parent]),
                        serde_json::to_vec(&json!({ "format": 1, "device": EVIL, "seq": 4, "time": 0, "changes": 5 }))
                            .unwrap(),
                    ],
                    vec![blob(&body)],
                )
            },
            prepare: no_prepare,
        },
        Case {
            name: "a log with a gap",
            // Sequence 3 with no 1 or 2 and no snapshot: that log waits, the others are read.
            write: |_| {
                let body = yaml("evil", "Evil", "after a gap");
                let h = content_hash(&body);
                let changes = vec![change_in(3, 0, Some("Blueprints/shared/gap.blueprint.yaml"), Some(&h), "evil")];
                (vec![Vec::new(), Vec::new(), batch_at(3, changes)], vec![blob(&body)])
            },
            prepare: no_prepare,
        },
        Case {
            name: "an oversized log",
            // Over the cap (64 MiB): refused from the listing's size, never read whole.
            write: |_| (vec![vec![b' '; (bpv_sync::validate::MAX_LOG_BYTES + 1) as usize]], Vec::new()),
            prepare: no_prepare,
        },
        Case {
            name: "an oversized blob",
            write: |_| {
                let mut body = yaml("evil", "Evil", "huge");
                body.resize((bpv_sync::validate::MAX_BLOB_BYTES + 1) as usize, b'#');
                let h = content_hash(&body);
                let changes = vec![change(0, Some("Blueprints/shared/huge.blueprint.yaml"), Some(&h), "evil")];
                (vec![batch(changes)], vec![blob(&body)])
            },
            prepare: no_prepare,
        },
        Case {
            name: "a blob whose bytes do not match its hash",
            write: |_| {
                let claimed = yaml("evil", "Evil", "what the hash says");
                let h = content_hash(&claimed);
                let forged = yaml("evil", "Evil", "something else entirely");
                let changes = vec![change(0, Some("Blueprints/shared/forged.blueprint.yaml"), Some(&h), "evil")];
                (vec![batch(changes)], vec![(format!("blobs/{}/{h}", &h[..2]), forged)])
            },
            prepare: no_prepare,
        },
    ]
}

/// Every file and link under `dir` except the library and the data area (sync state).
fn outside_state(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if d == dir && (e.file_name() == "lib" || e.file_name() == "data") {
                continue;
            }
            let t = e.file_type().unwrap();
            if t.is_dir() {
                out.insert(p.clone(), None);
                stack.push(p);
            } else if t.is_symlink() {
                out.insert(p.clone(), Some(std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes()));
            } else {
                out.insert(p.clone(), Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn put(remote: &Remote, key: &str, body: Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(remote.put(key, Bytes::from(body))).unwrap();
}

/// One case: two honest devices, the evil device's objects, then an honest change.
fn run_case(case: &Case, one: &Device, two: &Device) {
    one.save(A, &yaml("a", "Alpha", "base"));
    one.save(B, &yaml("b", "Beta", "base"));
    converge(&[one, two]);
    let dir = two.root().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(outside(&dir)).unwrap();
    std::fs::write(outside(&dir).join("keep.txt"), b"untouched").unwrap();
    (case.prepare)(&dir);
    let escaped = dir.join(format!("../escaped-{}.blueprint.yaml", std::process::id()));
    let before_outside = outside_state(&dir);
    let before = two.files();

    let (logs, blobs) = (case.write)(&dir);
    for (key, bytes) in blobs {
        put(one.syncer.remote(), &key, bytes);
    }
    for (n, body) in logs.into_iter().enumerate() {
        // An empty body: no object at that sequence (a gap).
        if !body.is_empty() {
            put(one.syncer.remote(), &format!("logs/{EVIL}/{:012}.json", n + 1), body);
        }
    }

    // The victim syncs: everything hostile refused, with the evil device named.
    let report = two.sync();
    assert!(!escaped.exists(), "{}: {} was written", case.name, escaped.display());
    assert_eq!(outside_state(&dir), before_outside, "{}: something outside the library changed", case.name);
    assert_eq!(two.files(), before, "{}: the library changed", case.name);
    assert!(
        report.errors.iter().any(|e| e.device == EVIL),
        "{}: no refusal from the evil device reported: {:?}",
        case.name,
        report.errors
    );
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["errors"].as_array().is_some_and(|a| !a.is_empty()), "{}: {json}", case.name);
    let status = two.syncer.status(&two.lib).unwrap();
    assert!(status.refused.iter().any(|e| e.device == EVIL), "{}: status {:?}", case.name, status.refused);

    // The next honest change still arrives (and nothing hostile with it).
    one.save(B, &yaml("b", "Beta", &format!("after {}", case.name)));
    one.sync();
    two.sync();
    let mut expected = before.clone();
    expected.insert(B.into(), yaml("b", "Beta", &format!("after {}", case.name)));
    assert_eq!(two.files(), expected, "{}: the honest change did not arrive alone", case.name);
    assert_eq!(outside_state(&dir), before_outside, "{}: something outside the library changed", case.name);
    assert!(!escaped.exists());
    // Garbage collection reads the same objects through the same checks.
    // (A symlinked folder and a forged blob are refused when written: the change itself is valid.)
    let gc = bpv_sync::gc::collect_garbage(&one.syncer, &one.lib, &bpv_sync::gc::GcOptions::default()).unwrap();
    let refused_when_read =
        !(case.name.contains("symlinked") || case.name.contains("blob") || case.name.contains("gap"));
    assert_eq!(gc.errors.iter().any(|e| e.device == EVIL), refused_when_read, "{}: {:?}", case.name, gc.errors);
}

#[test]
fn hostile_logs_are_refused_in_memory() {
    for case in cases() {
        let remote = Remote::in_memory();
        let one = Device::new("one", remote.share());
        let two = Device::new("two", remote.share());
        run_case(&case, &one, &two);
    }
}

#[test]
fn hostile_logs_are_refused_on_garage() {
    let garage = Garage::start();
    for (n, case) in cases().iter().enumerate() {
        let prefix = format!("hostile/{n}");
        let one = garage.device("one", &prefix);
        let two = garage.device("two", &prefix);
        run_case(case, &one, &two);
    }
}

#[test]
fn conflict_copies_names_stay_one_name_whatever_the_device_name() {
    for name in ["../../x", "a/b\\c", "con:*?\"<>|", "\u{0}\u{202E}", "", ".."] {
        let p = bpv_sync::model::conflict_path("Blueprints/shared/a.blueprint.yaml", name, &|_| false);
        assert!(bpv_sync::validate::blueprint_path(&p).is_ok(), "{name:?} gave {p:?}");
        assert!(p.starts_with("Blueprints/shared/a (conflict "), "{p}");
    }
    let long = format!("Blueprints/shared/{}.blueprint.yaml", "n".repeat(230));
    let p = bpv_sync::model::conflict_path(&long, "a device", &|_| false);
    assert!(bpv_sync::validate::blueprint_path(&p).is_ok(), "{p}");
}

#[test]
fn a_folder_migration_never_writes_through_a_link() {
    let remote = Remote::in_memory();
    let one = Device::new("one", remote.share());
    one.save(A, &yaml("a", "Alpha", "base"));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("copy");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    // An earlier attempt of this migration, whose `Blueprints` folder is now a link out.
    std::fs::create_dir_all(&target).unwrap();
    let marker = json!({ "source": one.root().to_string_lossy() });
    std::fs::write(target.join(".bpv-migration.json"), serde_json::to_vec(&marker).unwrap()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, target.join("Blueprints")).unwrap();
    let err = bpv_sync::migrate::migrate_to_folder(&one.lib, &target, &dir.path().join("data"), false, None)
        .expect_err("a linked folder in the target must be refused");
    assert_eq!(err.code(), "invalid_key", "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "something was written through the link");
}
