//! `bpv backup` with an object damaged between its write and the verify that follows
//! (the engine's fault injection, through `BPV_FAULT_DAMAGE_COMPRESSED`; this file needs
//! the `fault-injection` feature): a failed backup, by its exit code, and no snapshot.

use std::fs;
use std::process::{Command, Output};

use serde_json::Value;

fn bpv(dir: &std::path::Path, args: &[&str], damage: Option<&std::path::Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpv"));
    c.arg("--library").arg(dir.join("lib")).arg("--data-dir").arg(dir.join("data")).args(args);
    c.env_remove("BPV_LIBRARY").env_remove("BPV_DATA_DIR").env_remove("BPV_FAULT_DAMAGE_COMPRESSED");
    if let Some(repo) = damage {
        c.env("BPV_FAULT_DAMAGE_COMPRESSED", repo);
    }
    c.output().unwrap()
}

#[test]
fn a_backup_that_fails_its_verification_exits_non_zero_and_leaves_no_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let repo = dir.join("repo");
    let repo_s = repo.to_str().unwrap();
    assert!(bpv(dir, &["init"], None).status.success());
    fs::create_dir_all(dir.join("lib/Blueprints")).unwrap();
    fs::write(dir.join("lib/Blueprints/a.blueprint.yaml"), b"name: A\nnodes: []\n").unwrap();

    let failed = bpv(dir, &["--json", "backup", "--to", repo_s], Some(&repo));
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "a backup whose verify fails must fail: {err}");
    assert!(err.contains("failed its verification"), "{err}");
    let list: Value = serde_json::from_slice(&bpv(dir, &["--json", "backups", "--from", repo_s], None).stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "no snapshot stands for the failed backup: {list}");

    // The retry, with the disk good again, is a verified backup.
    let ok = bpv(dir, &["--json", "backup", "--to", repo_s], None);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let list: Value = serde_json::from_slice(&bpv(dir, &["--json", "backups", "--from", repo_s], None).stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
}
