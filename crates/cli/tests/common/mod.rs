//! Shared by the CLI tests that talk to a team library: a real 3-node Garage cluster on
//! loopback (scripts/garage-cluster.sh, stopped when dropped) and the real `bpv` binary
//! run with no sync keys inherited from the environment.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Cluster {
    dir: tempfile::TempDir,
    /// `cluster.env` as written by the script: ENDPOINTS, ACCESS_KEY_ID, SECRET_ACCESS_KEY, …
    pub env: BTreeMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/garage-cluster.sh")
}

impl Cluster {
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .env("GARAGE_WATCH_PID", std::process::id().to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "garage-cluster.sh: {}", String::from_utf8_lossy(&out.stderr));
        let env = std::fs::read_to_string(dir.path().join("cluster.env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        Cluster { dir, env }
    }

    /// The standard AWS variables holding the cluster's key.
    pub fn aws(&self) -> Vec<(&str, &str)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.env["ACCESS_KEY_ID"].as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.env["SECRET_ACCESS_KEY"].as_str()),
        ]
    }

    /// `--endpoint URL` for every node.
    pub fn endpoint_args(&self) -> Vec<String> {
        self.env["ENDPOINTS"].split(',').flat_map(|e| ["--endpoint".to_owned(), e.to_owned()]).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(self.dir.path()).output();
    }
}

/// `bpv --library LIB --data-dir DATA ARGS…` with `env` and piped stdio; keys for a team
/// library come only from `env`, never from the environment the tests run in.
pub fn bpv_command(lib: &Path, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpv"));
    c.env_remove("BPV_SYNC_ACCESS_KEY_ID")
        .env_remove("BPV_SYNC_SECRET_ACCESS_KEY")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .envs(env.iter().copied())
        .arg("--library")
        .arg(lib)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Run `bpv` to the end with `stdin` as its input.
pub fn run_bpv(lib: &Path, data: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = bpv_command(lib, data, args, env).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}
