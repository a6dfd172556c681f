//! `bpv sync` and `bpv migrate` through the real binary against a real 3-node Garage
//! cluster (scripts/garage-cluster.sh; scripts/setup.sh installs garage).

use std::path::Path;
use std::process::Output;

mod common;
use common::{Garage, run_bpv};

fn bpv(lib: &Path, data: &Path, args: &[&str], stdin: &[u8]) -> Output {
    run_bpv(lib, data, args, stdin, &[])
}

fn bpv_env(lib: &Path, data: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    run_bpv(lib, data, args, stdin, env)
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn two_libraries_sync_through_the_cli() {
    let c = Garage::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let endpoints = c.endpoints.clone();
    let secret = format!("{}\n", c.creds.secret_access_key);
    // `b` links with VISION.md's `remote set`, `a` with `sync link`: the same link.
    for (lib, link) in [(&a, ["sync", "link"]), (&b, ["remote", "set"])] {
        ok(bpv(lib, &data, &["init"], b""));
        let mut args = vec!["--json", link[0], link[1], "--bucket", "team", "--prefix", "cli", "--region", "garage"];
        for e in &endpoints {
            args.extend(["--endpoint", e.as_str()]);
        }
        args.extend(["--access-key-id", c.creds.access_key_id.as_str()]);
        let linked: serde_json::Value = serde_json::from_str(&ok(bpv(lib, &data, &args, secret.as_bytes()))).unwrap();
        assert_eq!(linked["linked"], true);
    }
    let yaml = b"id: cli-1\nname: From the CLI\nnodes: []\n";
    ok(bpv(&a, &data, &["save", "Blueprints/shared/cli.blueprint.yaml"], yaml));
    let status: serde_json::Value =
        serde_json::from_str(&ok(bpv(&a, &data, &["--json", "sync", "--status"], b""))).unwrap();
    assert_eq!(status["state"], "pending");
    let sent: serde_json::Value = serde_json::from_str(&ok(bpv(&a, &data, &["--json", "sync"], b""))).unwrap();
    assert_eq!(sent["sent"], 1);
    ok(bpv(&b, &data, &["sync"], b""));
    assert_eq!(ok(bpv(&b, &data, &["show", "Blueprints/shared/cli.blueprint.yaml"], b"")).as_bytes(), yaml);
    let status: serde_json::Value =
        serde_json::from_str(&ok(bpv(&b, &data, &["--json", "sync", "--status"], b""))).unwrap();
    assert_eq!(status["state"], "synced");
    let migrated: serde_json::Value = serde_json::from_str(&ok(bpv(&a, &data, &["--json", "migrate"], b""))).unwrap();
    assert_eq!(migrated["verified"], 1);

    // A link that cannot reach its store fails with its own code and exit status, and is not kept.
    let c_lib = tmp.path().join("c");
    ok(bpv(&c_lib, &data, &["init"], b""));
    let args =
        ["--json", "sync", "link", "--endpoint", "http://127.0.0.1:9", "--bucket", "team", "--access-key-id", "k"];
    let out = bpv(&c_lib, &data, &args, b"secret\n");
    assert_eq!(out.status.code(), Some(6));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], "remote_unreachable");
    let out = bpv(&c_lib, &data, &["--json", "sync"], b"");
    assert_eq!(out.status.code(), Some(3));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["code"], "not_linked");
}

#[test]
fn keys_can_come_from_a_keychain_credential() {
    let c = Garage::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let lib = tmp.path().join("lib");
    // The sealed-file credential store (works on any machine, no desktop keyring needed).
    let env = [("BPV_CREDENTIAL_STORE", "file"), ("BPV_CREDENTIALS_PASSPHRASE", "a long test passphrase")];
    ok(bpv_env(&lib, &data, &["init"], b"", &env));
    let value = format!("{}:{}", c.creds.access_key_id, c.creds.secret_access_key);
    ok(bpv_env(&lib, &data, &["creds", "set", "team-sync"], value.as_bytes(), &env));
    let endpoint = c.endpoints[0].clone();
    let args = [
        "sync",
        "link",
        "--endpoint",
        &endpoint,
        "--bucket",
        "team",
        "--region",
        "garage",
        "--credential",
        "team-sync",
    ];
    ok(bpv_env(&lib, &data, &args, b"", &env));
    let area = std::fs::read_dir(data.join("libraries")).unwrap().next().unwrap().unwrap().path();
    assert!(!area.join("sync/credentials.json").exists(), "no key file when the keychain holds them");
    ok(bpv_env(&lib, &data, &["save", "Blueprints/shared/k.blueprint.yaml"], b"name: K\nnodes: []\n", &env));
    let sent: serde_json::Value =
        serde_json::from_str(&ok(bpv_env(&lib, &data, &["--json", "sync"], b"", &env))).unwrap();
    assert_eq!(sent["sent"], 1);
}
