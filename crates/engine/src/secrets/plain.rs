//! Turning encryption off for one blueprint: its file becomes plain YAML again.
//!
//! The companion keeps its metadata (tags, description, the name kept for listing) and
//! loses only its `encrypted` flag, in the same all-or-nothing save as the file. The
//! history is left as it is: the sealed version that is replaced goes into it sealed, and
//! earlier sealed versions are never opened, so no plain copy of them appears. The audit
//! log records every decryption.

use super::Secrets;
use super::crypto;
use super::keys::companion_marked;
use crate::error::{Error, Result};
use crate::item::Item;
use crate::library::{BlueprintSave, Library};
use crate::store::content_hash;

impl Secrets {
    /// Store `yaml` in plain text at `path`, also over an encrypted blueprint (which the
    /// plain save path refuses): the explicit "no longer encrypted" save. Needs no key —
    /// nothing sealed is opened. Recorded in the audit log when the blueprint was encrypted.
    pub fn save_decrypted(&self, lib: &Library, path: &str, yaml: &[u8], opts: &BlueprintSave) -> Result<Item> {
        let rel = crate::library::blueprint_key(path)?.into_string();
        let current = crate::library::read_if_exists(&lib.root().join(&rel))?;
        let was_encrypted = current.as_deref().is_some_and(crypto::is_sealed) || companion_marked(lib, &rel)?;
        let mut save = opts.clone();
        if was_encrypted {
            save.encrypted = Some(false);
        }
        let item = lib.save_blueprint(&rel, yaml, &save)?;
        if was_encrypted {
            self.audit("blueprint-decrypted", Some(&item.path), Some("stored in plain text again".into()))?;
        }
        Ok(item)
    }

    /// Decrypt a blueprint in place: the file gets back exactly the bytes that were sealed.
    /// A plain blueprint is returned as it is. `if_match` guards against a change made
    /// since the caller last read it; the bytes decrypted here are guarded the same way.
    pub fn decrypt(&self, lib: &Library, path: &str, if_match: Option<&str>) -> Result<Item> {
        let item = lib.item(path)?;
        let sealed = lib.read(&item.path)?;
        let hash = content_hash(&sealed);
        if let Some(expected) = if_match
            && !expected.eq_ignore_ascii_case(&hash)
        {
            return Err(Error::Conflict(format!(
                "{} changed on disk since you loaded it; reload it and decrypt again",
                item.path
            )));
        }
        if !crypto::is_sealed(&sealed) && !companion_marked(lib, &item.path)? {
            return Ok(item);
        }
        // Marked but not sealed, a missing or wrong key, a damaged envelope: read_plain's
        // errors, each with its way out; nothing is written.
        let plain = self.read_plain_bytes(lib, &item.path, &sealed)?;
        let save = BlueprintSave { allow_invalid: true, if_match: Some(hash), ..Default::default() };
        self.save_decrypted(lib, &item.path, &plain, &save)
    }
}
