//! Test support: devices (a library + its syncer) sharing one team library, and a
//! real 3-node Garage cluster on loopback (`scripts/garage-cluster.sh`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bpv_engine::library::{BlueprintSave, Library, OpenOptions};
use bpv_sync::{Credentials, LinkConfig, Remote, Syncer};
use tempfile::TempDir;

pub struct Device {
    pub lib: Library,
    pub syncer: Syncer,
    pub name: String,
    _dir: TempDir,
}

pub fn open_lib(root: &Path, data: &Path) -> Library {
    let mut o = OpenOptions::new(root);
    o.data_dir = Some(data.to_path_buf());
    o.create = true;
    Library::open(o).unwrap()
}

impl Device {
    /// A fresh library on `remote` (a shared view of the same store).
    pub fn new(name: &str, remote: Remote) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let lib = open_lib(&dir.path().join("lib"), &dir.path().join("data"));
        let link = LinkConfig::new(vec!["http://unused.invalid".into()], "team", "", Some(name.into())).unwrap();
        let syncer = Syncer::with_remote(&lib, link, remote).unwrap();
        Device { lib, syncer, name: name.into(), _dir: dir }
    }

    /// A library linked the real way (link.json + 0600 credentials) to an S3 endpoint list.
    pub fn linked(name: &str, endpoints: Vec<String>, bucket: &str, prefix: &str, creds: &Credentials) -> Device {
        let dir = tempfile::tempdir().unwrap();
        let lib = open_lib(&dir.path().join("lib"), &dir.path().join("data"));
        let mut link = LinkConfig::new(endpoints, bucket, prefix, Some(name.into())).unwrap();
        link.region = "garage".into();
        bpv_sync::config::save_link(lib.area(), &link).unwrap();
        bpv_sync::config::save_credentials(lib.area(), creds).unwrap();
        let syncer = Syncer::open(&lib).unwrap();
        Device { lib, syncer, name: name.into(), _dir: dir }
    }

    pub fn root(&self) -> PathBuf {
        self.lib.root().to_path_buf()
    }

    pub fn save(&self, path: &str, yaml: &[u8]) {
        self.lib.save_blueprint(path, yaml, &BlueprintSave { allow_invalid: true, ..Default::default() }).unwrap();
    }

    pub fn sync(&self) -> bpv_sync::SyncReport {
        self.syncer.sync(&self.lib).unwrap_or_else(|e| panic!("{}: sync failed: {e}", self.name))
    }

    /// Every blueprint file (and companion) under the library, path → bytes.
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        files_under(&self.root())
    }

    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.root().join(path)).ok()
    }
}

pub fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in walkdir(root) {
        let rel = entry.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        if rel.ends_with(".blueprint.yaml") || rel.ends_with(".blueprint.meta.json") {
            out.insert(rel, std::fs::read(&entry).unwrap());
        }
    }
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub fn yaml(id: &str, name: &str, body: &str) -> Vec<u8> {
    format!("id: {id}\nname: {name}\ndescription: {body}\nnodes:\n  - id: a\n    type: t\n").into_bytes()
}

/// Sync every device twice round-robin (enough for everyone to see everything).
pub fn converge(devices: &[&Device]) {
    for _ in 0..2 {
        for d in devices {
            d.sync();
        }
    }
    let first = devices[0].files();
    for d in &devices[1..] {
        assert_eq!(d.files(), first, "{} and {} differ after syncing", devices[0].name, d.name);
    }
}

// ---- Garage ----------------------------------------------------------------------

mod garage;
pub use garage::Garage;

impl Garage {
    pub fn device(&self, name: &str, prefix: &str) -> Device {
        Device::linked(name, self.endpoints.clone(), &self.bucket, prefix, &self.creds)
    }
}
