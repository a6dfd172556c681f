//! Shared by the CLI tests that talk to a team library: a real 3-node Garage cluster on
//! loopback (bpv-sync's test support) and the real `bpv` binary run with no sync keys
//! inherited from the environment.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

// The Garage cluster of bpv-sync's tests, shared by path rather than copied.
#[path = "../../../sync/tests/common/garage.rs"]
mod garage;
pub use garage::Garage;

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
