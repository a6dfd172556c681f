//! A real 3-node Garage cluster on loopback (`scripts/garage-cluster.sh`), stopped when
//! dropped. Shared by bpv-sync's tests and the CLI's (`crates/cli/tests/common`, by path).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bpv_sync::Credentials;
use tempfile::TempDir;

/// A running 3-node Garage cluster (stopped when dropped).
pub struct Garage {
    pub dir: TempDir,
    pub endpoints: Vec<String>,
    pub bucket: String,
    pub creds: Credentials,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/garage-cluster.sh")
}

impl Garage {
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .env("GARAGE_WATCH_PID", std::process::id().to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "garage-cluster.sh start failed (is garage installed? scripts/setup.sh installs it):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env: BTreeMap<String, String> = std::fs::read_to_string(dir.path().join("cluster.env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        Garage {
            endpoints: env["ENDPOINTS"].split(',').map(str::to_owned).collect(),
            bucket: env["BUCKET"].clone(),
            creds: Credentials {
                access_key_id: env["ACCESS_KEY_ID"].clone(),
                secret_access_key: env["SECRET_ACCESS_KEY"].clone(),
            },
            dir,
        }
    }

    fn node(&self, action: &str, n: usize) {
        let out =
            Command::new("bash").arg(script()).arg(action).arg(self.dir.path()).arg(n.to_string()).output().unwrap();
        assert!(out.status.success(), "{action} node {n}: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn kill(&self, n: usize) {
        self.node("kill", n);
    }

    pub fn restart(&self, n: usize) {
        self.node("restart", n);
    }

    /// The standard AWS variables holding the cluster's key.
    pub fn aws(&self) -> Vec<(&str, &str)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.creds.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.creds.secret_access_key.as_str()),
        ]
    }

    /// `--endpoint URL` for every node (the CLI's link arguments).
    pub fn endpoint_args(&self) -> Vec<String> {
        self.endpoints.iter().flat_map(|e| ["--endpoint".to_owned(), e.clone()]).collect()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(self.dir.path()).output();
    }
}
