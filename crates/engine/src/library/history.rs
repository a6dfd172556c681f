//! Version history: the previous content of a blueprint is kept before every
//! overwrite, so a save can be undone. Lives in the library's private area.

use std::fs;
use std::path::PathBuf;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{BlueprintSave, Library};
use crate::error::{Error, Result};
use crate::fsio;
use crate::item::Item;
use crate::store::content_hash;

/// Versions kept per blueprint.
const KEEP_VERSIONS: usize = 20;

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Version {
    /// Pass to `restore_version`.
    pub id: String,
    /// RFC 3339: when this content was replaced.
    pub saved: String,
    pub hash: String,
    pub size: u64,
}

impl Library {
    pub(super) fn versions_dir(&self, rel: &str) -> PathBuf {
        let digest = hex::encode(Sha256::digest(rel.as_bytes()));
        self.area.join("versions").join(&digest[..20])
    }

    pub(super) fn keep_version(&self, rel: &str, old: &[u8]) -> Result<()> {
        let dir = self.versions_dir(rel);
        fsio::ensure_dir(&dir)?;
        let path_file = dir.join("path");
        if !path_file.exists() {
            fsio::write_atomic(&path_file, rel.as_bytes())?;
        }
        let now = chrono::Utc::now().timestamp_millis();
        let hash = content_hash(old);
        fsio::write_atomic(&dir.join(format!("{now:013}-{}.yaml", &hash[..16])), old)?;
        let mut all = self.version_files(&dir)?;
        while all.len() > KEEP_VERSIONS {
            let oldest = all.remove(0);
            let _ = fsio::remove_file(&dir.join(oldest));
        }
        Ok(())
    }

    fn version_files(&self, dir: &std::path::Path) -> Result<Vec<String>> {
        let mut names: Vec<String> = match fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".yaml") && !fsio::is_temp_name(n))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io("cannot read version history", dir, e)),
        };
        names.sort();
        Ok(names)
    }

    /// Earlier contents of a blueprint, newest first.
    pub fn versions(&self, path: &str) -> Result<Vec<Version>> {
        let rel = self.existing_rel(path)?;
        let dir = self.versions_dir(&rel);
        let mut out = Vec::new();
        for name in self.version_files(&dir)?.into_iter().rev() {
            let p = dir.join(&name);
            let Ok(bytes) = fs::read(&p) else { continue };
            let millis: i64 = name.split('-').next().and_then(|m| m.parse().ok()).unwrap_or(0);
            let saved = chrono::DateTime::from_timestamp_millis(millis)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            out.push(Version {
                id: name.trim_end_matches(".yaml").to_owned(),
                saved,
                hash: content_hash(&bytes),
                size: bytes.len() as u64,
            });
        }
        Ok(out)
    }

    /// Put an earlier version back (the current content becomes a version itself).
    /// `None` restores the most recent earlier version: an undo of the last save.
    pub fn restore_version(&self, path: &str, id: Option<&str>) -> Result<Item> {
        let rel = self.existing_rel(path)?;
        let versions = self.versions(&rel)?;
        let chosen = match id {
            Some(id) => versions.iter().find(|v| v.id == id),
            None => versions.first(),
        }
        .ok_or_else(|| Error::NotFound(format!("no earlier version of {rel}")))?;
        let bytes = self.version_content(&rel, &chosen.id)?;
        self.save_blueprint(&rel, &bytes, &BlueprintSave { allow_invalid: true, ..Default::default() })
    }

    /// The content of one earlier version (an id from `versions`).
    pub fn version_content(&self, path: &str, id: &str) -> Result<Vec<u8>> {
        let rel = self.existing_rel(path)?;
        // Ids are file stems this module wrote: digits, a dash and hex. Anything else
        // could name a file outside the history folder.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::InvalidArgument(format!("{id:?} is not a version id")));
        }
        let file = self.versions_dir(&rel).join(format!("{id}.yaml"));
        match fs::read(&file) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound(format!("version {id} of {rel} (it may have been pruned)")))
            }
            Err(e) => Err(Error::io("cannot read version of", &self.root.join(&rel), e)),
        }
    }
}
