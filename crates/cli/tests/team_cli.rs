//! VISION.md's team-library contract through the real binary against a real 3-node
//! Garage cluster (scripts/garage-cluster.sh): `remote set` with the standard AWS key
//! variables, `sync --json` {pushed, pulled, conflicts, pending}, `sync gc`, and
//! `migrate --to` a folder and a bucket (validation, refusal, resume, verification).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Garage, bpv_command as command, run_bpv};

fn bpv(lib: &Path, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    run_bpv(lib, data, args, b"", env)
}

fn ok(o: Output) -> Value {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8(o.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or(Value::Null)
}

fn refused(o: Output, code: i32, error: &str) -> Value {
    assert_eq!(o.status.code(), Some(code), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let err: Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["code"], error, "{err}");
    err
}

fn yaml(id: &str, body: &str) -> String {
    format!("id: {id}\nname: {id}\ndescription: {body}\nnodes: []\n")
}

/// `n` blueprints written as files (as a copy from elsewhere would), then indexed.
fn fill(lib: &Path, data: &Path, n: usize) {
    let dir = lib.join("Blueprints/shared/bulk");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("bp{i:05}.blueprint.yaml")), yaml(&format!("bulk-{i}"), &"x".repeat(i % 300)))
            .unwrap();
    }
    ok(bpv(lib, data, &["reindex"], &[]));
}

fn blueprint_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if rel.ends_with(".blueprint.yaml") || rel.ends_with(".blueprint.meta.json") {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    out
}

#[test]
fn remote_set_with_aws_keys_sync_contract_and_gc() {
    let c = Garage::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let endpoints = c.endpoint_args();
    for lib in [&a, &b] {
        ok(bpv(lib, &data, &["init"], &[]));
        let mut args =
            vec!["--json", "remote", "set", "--bucket", "team", "--prefix", "contract", "--region", "garage"];
        args.extend(endpoints.iter().map(String::as_str));
        // No keys given: without the AWS variables the link is refused, with them it works.
        if lib == &a {
            refused(bpv(lib, &data, &args, &[]), 4, "invalid_argument");
        }
        assert_eq!(ok(bpv(lib, &data, &args, &c.aws()))["linked"], true);
    }
    let path = "Blueprints/shared/contract.blueprint.yaml";
    let save = |lib: &Path, body: &str| {
        let mut child = command(lib, &data, &["save", path], &[]).spawn().unwrap();
        child.stdin.take().unwrap().write_all(yaml("contract", body).as_bytes()).unwrap();
        assert!(child.wait_with_output().unwrap().status.success());
    };
    save(&a, "first");
    let status = ok(bpv(&a, &data, &["--json", "sync", "--status"], &[]));
    assert_eq!((status["pending"].as_u64(), status["conflicts"].as_array().map(Vec::len)), (Some(1), Some(0)));
    let pushed = ok(bpv(&a, &data, &["--json", "sync"], &c.aws()));
    assert_eq!(
        (pushed["pushed"].as_u64(), pushed["pulled"].as_u64(), pushed["pending"].as_u64()),
        (Some(1), Some(0), Some(0))
    );
    assert_eq!(pushed["conflicts"], serde_json::json!([]));
    let pulled = ok(bpv(&b, &data, &["--json", "sync"], &c.aws()));
    assert_eq!((pulled["pushed"].as_u64(), pulled["pulled"].as_u64()), (Some(0), Some(1)));

    // A conflict: both edit, both sync; the copy's path is in `conflicts`.
    save(&a, "a's edit");
    save(&b, "b's edit");
    ok(bpv(&a, &data, &["--json", "sync"], &c.aws()));
    let second = ok(bpv(&b, &data, &["--json", "sync"], &c.aws()));
    let conflicts = second["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{second}");
    assert!(conflicts[0].as_str().unwrap().contains("(conflict"), "{second}");
    let status = ok(bpv(&b, &data, &["--json", "sync", "--status"], &[]));
    assert_eq!(status["conflicts"].as_array().unwrap().len(), 1, "{status}");

    // Many edits make old contents garbage; gc deletes them (dry run first), and both
    // libraries still converge afterwards.
    for i in 0..36 {
        save(&a, &format!("version {i}"));
        ok(bpv(&a, &data, &["--json", "sync"], &c.aws()));
    }
    let dry = ok(bpv(&a, &data, &["--json", "sync", "gc", "--dry-run", "--grace", "0s"], &c.aws()));
    assert_eq!(dry["dry_run"], true);
    assert!(dry["deleted_blobs"].as_u64().unwrap() > 20, "{dry}");
    let kept = ok(bpv(&a, &data, &["--json", "sync", "gc"], &c.aws()));
    assert_eq!(kept["deleted_blobs"], 0, "the default grace period keeps everything new: {kept}");
    assert!(kept["waiting"].as_u64().unwrap() > 20, "{kept}");
    let done = ok(bpv(&a, &data, &["--json", "sync", "gc", "--grace", "0s"], &c.aws()));
    assert_eq!(done["deleted_blobs"], dry["deleted_blobs"], "{done}");
    let again = ok(bpv(&a, &data, &["--json", "sync", "gc", "--dry-run", "--grace", "0s"], &c.aws()));
    assert_eq!(again["deleted_blobs"], 0, "{again}");
    ok(bpv(&b, &data, &["--json", "sync"], &c.aws()));
    assert_eq!(std::fs::read_to_string(b.join(path)).unwrap(), yaml("contract", "version 35"));
    assert_eq!(bpv(&a, &data, &["sync", "gc", "--grace", "7w"], &c.aws()).status.code(), Some(2));

    // `migrate --to s3://…` with the keys in a keychain credential (the sealed-file store).
    let store = [("BPV_CREDENTIAL_STORE", "file"), ("BPV_CREDENTIALS_PASSPHRASE", "a long test passphrase")];
    let value = format!("{}:{}", c.creds.access_key_id, c.creds.secret_access_key);
    let mut child = command(&a, &data, &["creds", "set", "migration-keys"], &store).spawn().unwrap();
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let mut args = vec!["--json", "migrate", "--to", "s3://team/from-keychain", "--region", "garage"];
    args.extend(endpoints.iter().map(String::as_str));
    args.extend(["--credential", "migration-keys"]);
    let migrated = ok(bpv(&a, &data, &args, &store));
    assert_eq!(
        migrated["verified"].as_u64(),
        Some(blueprint_files(&a).keys().filter(|k| k.ends_with(".yaml")).count() as u64)
    );
}

#[test]
fn migrate_to_a_folder_validates_resumes_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lib = tmp.path().join("lib");
    ok(bpv(&lib, &data, &["init"], &[]));
    fill(&lib, &data, 300);
    let meta = "Blueprints/shared/bulk/bp00001.blueprint.meta.json";
    std::fs::write(lib.join(meta), br#"{"tags":["kept"]}"#).unwrap();
    std::fs::write(lib.join("Blueprints/shared/broken.blueprint.yaml"), b"id: [unclosed\n").unwrap();
    ok(bpv(&lib, &data, &["reindex"], &[]));

    // Refused: a non-empty folder that is no earlier attempt (left as it was), the library itself.
    let busy = tmp.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let busy_url = busy.to_string_lossy().into_owned();
    refused(bpv(&lib, &data, &["--json", "migrate", "--to", &busy_url], &[]), 4, "invalid_argument");
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    let inside = lib.join("Blueprints/copy").to_string_lossy().into_owned();
    refused(bpv(&lib, &data, &["--json", "migrate", "--to", &inside], &[]), 4, "invalid_argument");
    refused(bpv(&lib, &data, &["--json", "migrate", "--to", "gs://bucket"], &[]), 4, "invalid_argument");

    let target = tmp.path().join("copy");
    let url = format!("file://{}", target.display());
    let dry = ok(bpv(&lib, &data, &["--json", "migrate", "--to", &url, "--dry-run"], &[]));
    assert_eq!((dry["blueprints"].as_u64(), dry["invalid"].as_u64()), (Some(301), Some(1)), "{dry}");
    assert!(!target.exists(), "a dry run writes nothing");

    // An interrupted attempt: the marker and part of the files, one of them cut short.
    std::fs::create_dir_all(target.join("Blueprints/shared/bulk")).unwrap();
    let marker = serde_json::json!({ "source": std::fs::canonicalize(&lib).unwrap() });
    std::fs::write(target.join(".bpv-migration.json"), marker.to_string()).unwrap();
    for i in 0..100 {
        let rel = format!("Blueprints/shared/bulk/bp{i:05}.blueprint.yaml");
        std::fs::copy(lib.join(&rel), target.join(&rel)).unwrap();
    }
    std::fs::write(target.join("Blueprints/shared/bulk/bp00050.blueprint.yaml"), b"id: bulk-50\nna").unwrap();
    // Copied by that attempt, deleted from the library since.
    std::fs::write(target.join("Blueprints/shared/bulk/gone.blueprint.yaml"), yaml("gone", "")).unwrap();
    let done = ok(bpv(&lib, &data, &["--json", "migrate", "--to", &url, "--backup"], &[]));
    assert_eq!(done["resumed"], true, "{done}");
    assert_eq!(done["skipped"], 99, "{done}");
    assert_eq!(done["verified"], 301, "{done}");
    assert!(done["backup"].is_string(), "{done}");
    assert_eq!(blueprint_files(&target), blueprint_files(&lib));
    assert!(!target.join(".bpv-migration.json").exists());
    // The copy is a library of its own.
    let listed = ok(bpv(&target, &data, &["--json", "list", "--limit", "1000"], &[]));
    assert_eq!(listed.as_array().map(Vec::len), Some(301));
    // A finished copy is a library now, not a migration to resume.
    refused(bpv(&lib, &data, &["--json", "migrate", "--to", &url], &[]), 4, "invalid_argument");
}

#[test]
fn migrate_to_a_bucket_resumes_after_a_kill_and_can_be_linked() {
    let c = Garage::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lib = tmp.path().join("lib");
    ok(bpv(&lib, &data, &["init"], &[]));
    fill(&lib, &data, 3000);
    let endpoints = c.endpoint_args();
    let mut args = vec!["--json", "migrate", "--to", "s3://team/moved", "--region", "garage"];
    args.extend(endpoints.iter().map(String::as_str));

    // No keys: refused before anything is written.
    refused(bpv(&lib, &data, &args, &[]), 4, "invalid_argument");
    let dry = ok(bpv(&lib, &data, &[args.as_slice(), &["--dry-run"]].concat(), &c.aws()));
    assert_eq!((dry["blueprints"].as_u64(), dry["resumed"].as_bool()), (Some(3000), Some(false)), "{dry}");

    // Killed mid-way (once its queued state exists), then run again: it resumes.
    let mut child = command(&lib, &data, &args, &c.aws()).spawn().unwrap();
    let started = Instant::now();
    let state_written = || {
        std::fs::read_dir(data.join("libraries")).unwrap().flatten().any(|area| {
            std::fs::read_dir(area.path().join("migrations"))
                .map(|m| m.flatten().any(|d| d.path().join("sync/state.json").exists()))
                .unwrap_or(false)
        })
    };
    while !state_written() && started.elapsed() < Duration::from_secs(60) && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let done = ok(bpv(&lib, &data, &args, &c.aws()));
    assert_eq!(done["resumed"], true, "{done}");
    assert_eq!(done["verified"], 3000, "{done}");
    let again = ok(bpv(&lib, &data, &args, &c.aws()));
    assert_eq!((again["copied"].as_u64(), again["verified"].as_u64()), (Some(0), Some(3000)), "{again}");

    // The bucket is a team library: another library linked to it gets every blueprint.
    let other = tmp.path().join("other");
    ok(bpv(&other, &data, &["init"], &[]));
    let mut link = vec!["--json", "remote", "set", "--bucket", "team", "--prefix", "moved", "--region", "garage"];
    link.extend(endpoints.iter().map(String::as_str));
    ok(bpv(&other, &data, &link, &c.aws()));
    let pulled = ok(bpv(&other, &data, &["--json", "sync"], &c.aws()));
    assert_eq!(pulled["pulled"], 3000, "{pulled}");
    assert_eq!(blueprint_files(&other), blueprint_files(&lib));

    // A prefix holding someone else's team library is refused, and left alone.
    let mut elsewhere = vec!["--json", "migrate", "--to", "s3://team/moved", "--region", "garage"];
    elsewhere.extend(endpoints.iter().map(String::as_str));
    let second = tmp.path().join("second");
    ok(bpv(&second, &data, &["init"], &[]));
    refused(bpv(&second, &data, &elsewhere, &c.aws()), 4, "invalid_argument");
}
