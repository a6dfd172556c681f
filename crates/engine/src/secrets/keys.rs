//! The library's master key: created on the first encrypted save, kept in the credential
//! store, proved right by a sealed canary before use, exported as a recovery kit, and
//! rotated with every encrypted blueprint re-sealed in one journalled batch.
//!
//! Keychain entries (service `blueprint-vault/<private area name>`): `master-key`,
//! `master-key.next` (only during a rotation), `master-key.retired.<id>` (earlier keys,
//! kept so earlier versions and trashed copies stay readable).
//!
//! Rotation and crashes: the new key is stored as `master-key.next` first; the batch's
//! journal is the commit point; then the new key is promoted. Whoever next unlocks the
//! library and finds a `next` key decides by the files: if any encrypted blueprint (or the
//! canary) is sealed with it, the batch committed (and `Library::open` rolled it forward)
//! so the promotion is finished; otherwise the rotation never happened and `next` is dropped.

use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Secrets;
use super::crypto::{self, KdfParams, MasterKey, PassphraseSealed, Purpose};
use crate::blueprint;
use crate::error::{Error, Result};
use crate::fsio;
use crate::item::Item;
use crate::library::{BlueprintSave, Library};
use crate::store::content_hash;
use crate::transfer::{Expect, RawPut};

const MASTER: &str = "master-key";
const NEXT: &str = "master-key.next";
const RETIRED_PREFIX: &str = "master-key.retired.";
const CANARY_FILE: &str = "canary.sealed";
const CANARY_TEXT: &[u8] = b"blueprint-vault canary v1";
const KIT_CONTEXT: &[u8] = b"blueprint-vault recovery kit v1";
const KIT_BEGIN: &str = "-----BEGIN BLUEPRINT VAULT RECOVERY KIT-----";
const KIT_END: &str = "-----END BLUEPRINT VAULT RECOVERY KIT-----";
/// Recovery passphrases protect every encrypted blueprint: not too short.
const MIN_KIT_PASSPHRASE: usize = 12;

/// The state of the library's key, for `bpv info`, `bpv keys status` and the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct KeyStatus {
    /// `none` (nothing encrypted yet), `ok`, `missing`, `wrong`, `damaged`, `unavailable`.
    pub state: String,
    /// The id (public fingerprint) of the key in use, when known.
    pub key_id: Option<String>,
    pub encrypted_blueprints: u64,
    /// What is wrong and the way out; empty when all is well.
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoveryKit {
    pub format: String,
    pub version: u32,
    /// The library folder it was made for (informative: a kit works for a moved library).
    pub library: String,
    pub key_id: String,
    pub created: String,
    #[serde(flatten)]
    pub sealed: PassphraseSealed,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RecoverReport {
    pub key_id: String,
    /// Encrypted blueprints that open with the recovered key.
    pub readable: usize,
    /// Encrypted blueprints sealed with another key (paths).
    pub unreadable: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct RotateOptions {
    /// Test hook: fail after staging this many files, before the batch commits.
    #[doc(hidden)]
    pub fail_after: Option<usize>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RotateReport {
    pub old_key_id: String,
    pub new_key_id: String,
    pub reencrypted: usize,
    pub millis: u64,
}

fn key_missing_message(store: &str, id: Option<&str>) -> String {
    let which = id.map(|i| format!(" (key id {i})")).unwrap_or_default();
    format!(
        "this library has encrypted blueprints, but its master key{which} is not in {store}. \
         Restore it with `bpv keys recover KIT` (the recovery kit you saved), or run with the store that holds it (--store)"
    )
}

impl Secrets {
    fn canary_path(&self) -> std::path::PathBuf {
        self.dir.join(CANARY_FILE)
    }

    fn write_canary(&self, key: &MasterKey) -> Result<()> {
        fsio::ensure_dir(&self.dir)?;
        fsio::write_atomic_private(&self.canary_path(), &crypto::seal(key, Purpose::Canary, CANARY_TEXT)?)
    }

    fn read_canary(&self) -> Result<Option<Vec<u8>>> {
        crate::library::read_if_exists(&self.canary_path())
    }

    fn stored_key(&self, name: &str) -> Result<Option<MasterKey>> {
        self.store_get(name)?.map(|b| MasterKey::from_bytes(&b)).transpose()
    }

    /// The library's master key, proved right by the canary; `None` when the library has
    /// none yet (nothing was ever encrypted). A missing or wrong key is an error that
    /// says the way out.
    pub fn unlock(&self, lib: &Library) -> Result<Option<MasterKey>> {
        let _lock = self.lock()?;
        self.unlock_locked(lib)
    }

    fn unlock_locked(&self, lib: &Library) -> Result<Option<MasterKey>> {
        self.settle_rotation(lib)?;
        let current = self.stored_key(MASTER)?;
        let canary = self.read_canary()?;
        let store = self.choice.store.name();
        match (current, canary) {
            (None, None) => {
                if let Some(id) = first_sealed_key_id(lib)? {
                    return Err(Error::KeyMissing(key_missing_message(store, Some(&id))));
                }
                Ok(None)
            }
            (None, Some(c)) => Err(Error::KeyMissing(key_missing_message(store, crypto::sealed_key_id(&c).as_deref()))),
            (Some(k), None) => {
                self.write_canary(&k)?;
                Ok(Some(k))
            }
            (Some(k), Some(c)) => match crypto::open(&k, Purpose::Canary, &c) {
                Ok(_) => Ok(Some(k)),
                Err(Error::WrongKey(_)) => Err(Error::WrongKey(format!(
                    "the master key in {store} (id {}) is not the one this library's data is sealed with (id {}). \
                     Restore the right key with `bpv keys recover KIT`",
                    k.id(),
                    crypto::sealed_key_id(&c).unwrap_or_default()
                ))),
                Err(e) => Err(Error::Corrupt(format!(
                    "the key check file {} is damaged ({e}); remove it and run `bpv keys status` to write it again",
                    self.canary_path().display()
                ))),
            },
        }
    }

    /// The master key, created (and stored, and its canary written) if the library has none.
    fn unlock_or_create(&self, lib: &Library) -> Result<MasterKey> {
        let _lock = self.lock()?;
        if let Some(k) = self.unlock_locked(lib)? {
            return Ok(k);
        }
        let key = MasterKey::generate();
        self.store_set(MASTER, key.as_bytes())?;
        // Read it back: a store that drops what it is given must fail here, not later.
        if self.stored_key(MASTER)?.map(|k| k.id()) != Some(key.id()) {
            return Err(Error::Keychain(format!("{} did not keep the master key", self.choice.store.name())));
        }
        self.write_canary(&key)?;
        self.audit("key-created", None, Some(format!("key id {}", key.id())))?;
        Ok(key)
    }

    /// The key state without failing: for `bpv info` and the app's status.
    pub fn key_status(&self, lib: &Library) -> KeyStatus {
        let encrypted_blueprints = lib.index().stats().map(|s| s.encrypted).unwrap_or(0);
        let (state, key_id, message) = match self.unlock(lib) {
            Ok(None) => ("none", None, String::new()),
            Ok(Some(k)) => ("ok", Some(k.id()), String::new()),
            Err(e @ Error::KeyMissing(_)) => ("missing", None, e.to_string()),
            Err(e @ Error::WrongKey(_)) => ("wrong", None, e.to_string()),
            Err(e @ Error::Corrupt(_)) => ("damaged", None, e.to_string()),
            Err(e) => ("unavailable", None, e.to_string()),
        };
        KeyStatus { state: state.into(), key_id, encrypted_blueprints, message }
    }

    /// The key that sealed an envelope: the current one, or a retired one.
    fn key_for(&self, current: &MasterKey, sealed: &[u8]) -> Result<MasterKey> {
        let id = crypto::sealed_key_id(sealed).ok_or_else(|| Error::Corrupt("not a sealed envelope".into()))?;
        if id == current.id() {
            return Ok(current.clone());
        }
        self.stored_key(&format!("{RETIRED_PREFIX}{id}"))?.ok_or_else(|| {
            Error::WrongKey(format!(
                "sealed with key {id}, which is neither this library's key ({}) nor one it retired; \
                 if it comes from another library, recover that library's key",
                current.id()
            ))
        })
    }

    pub(super) fn open_blueprint(&self, current: &MasterKey, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        crypto::open(&self.key_for(current, sealed)?, Purpose::Blueprint, sealed)
    }

    /// Validate and save a blueprint encrypted: the file holds only the sealed envelope;
    /// its name (and the tags and description given in `opts`) go to the companion so it
    /// stays listed and findable. Earlier plain-text versions of it are removed from the
    /// history, which would otherwise keep what is now meant to be secret.
    pub fn save_encrypted(&self, lib: &Library, path: &str, yaml: &[u8], opts: &BlueprintSave) -> Result<Item> {
        let analysis = if opts.allow_invalid {
            blueprint::analyse(yaml)
        } else {
            blueprint::validate(yaml).map_err(|e| Error::InvalidBlueprint(e.to_string()))?
        };
        let key = self.unlock_or_create(lib)?;
        let sealed = crypto::seal(&key, Purpose::Blueprint, yaml)?;
        let rel = crate::library::blueprint_key(path)?.into_string();
        let was_plain = crate::library::read_if_exists(&lib.root().join(&rel))?.is_some_and(|b| !crypto::is_sealed(&b));
        let mut save = opts.clone();
        save.allow_invalid = true;
        if let Some(name) = analysis.fields.name.filter(|n| !n.trim().is_empty()) {
            save.metadata.insert("name".into(), serde_json::Value::String(name));
        }
        if !companion_marked(lib, &rel)? {
            // The companion's `encrypted` flag: a file that loses its envelope is then
            // reported as damaged instead of being read as plain text.
            save.metadata.insert("encrypted".into(), serde_json::Value::Bool(true));
        }
        let item = lib.save_blueprint(&rel, &sealed, &save)?;
        if was_plain {
            purge_plain_versions(lib, &item.path)?;
            lib.index().scrub()?;
        }
        Ok(item)
    }

    /// A blueprint's YAML: decrypted in memory when it is encrypted, else as stored.
    pub fn read_plain(&self, lib: &Library, path: &str) -> Result<Zeroizing<Vec<u8>>> {
        let bytes = lib.read(path)?;
        self.read_plain_bytes(lib, path, &bytes)
    }

    /// [`Secrets::read_plain`] of bytes already read from `path`.
    pub(super) fn read_plain_bytes(&self, lib: &Library, path: &str, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if !crypto::is_sealed(bytes) {
            let rel = lib.item(path).map(|i| i.path).unwrap_or_else(|_| path.to_owned());
            if companion_marked(lib, &rel)? {
                return Err(Error::Corrupt(format!(
                    "{path} is marked encrypted, but its file is not sealed: it was damaged or replaced outside \
                     Blueprint Vault; restore an earlier version with `bpv undo {path}`"
                )));
            }
            return Ok(Zeroizing::new(bytes.to_vec()));
        }
        let key = self.unlock(lib)?.ok_or_else(|| {
            Error::KeyMissing(key_missing_message(self.choice.store.name(), crypto::sealed_key_id(bytes).as_deref()))
        })?;
        self.open_blueprint(&key, bytes).map_err(|e| match e {
            Error::Corrupt(m) => Error::Corrupt(format!("{path}: {m}")),
            other => other,
        })
    }

    /// The master key wrapped under a recovery passphrase (Argon2id). Recorded in the audit log.
    pub fn recovery_kit(&self, lib: &Library, passphrase: &[u8]) -> Result<RecoveryKit> {
        check_kit_passphrase(passphrase)?;
        let key = self.unlock_or_create(lib)?;
        let sealed = PassphraseSealed::seal(passphrase, KIT_CONTEXT, key.as_bytes(), KdfParams::fresh())?;
        let kit = RecoveryKit {
            format: "bpv-recovery-kit".into(),
            version: 1,
            library: lib.root().to_string_lossy().into_owned(),
            key_id: key.id(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            sealed,
        };
        self.audit("recovery-kit-exported", None, Some(format!("key id {}", kit.key_id)))?;
        Ok(kit)
    }

    /// Restore the master key from a kit (its JSON, or the printable page). Never destroys
    /// a key: one already in the store under another id is kept as retired.
    pub fn recover(&self, lib: &Library, kit_text: &str, passphrase: &[u8]) -> Result<RecoverReport> {
        let kit = RecoveryKit::parse(kit_text)?;
        let bytes = kit.sealed.open(passphrase, KIT_CONTEXT).map_err(|_| {
            Error::WrongKey("the recovery passphrase is wrong, or the kit was changed or damaged".into())
        })?;
        let key = MasterKey::from_bytes(&bytes)?;
        if key.id() != kit.key_id {
            return Err(Error::Corrupt(format!("the kit says key {} but holds key {}", kit.key_id, key.id())));
        }
        let _lock = self.lock()?;
        let sealed = sealed_files(lib)?;
        let (readable, unreadable): (Vec<_>, Vec<_>) = sealed.iter().partition(|(_, id)| {
            *id == key.id() || self.stored_key(&format!("{RETIRED_PREFIX}{id}")).ok().flatten().is_some()
        });
        if readable.is_empty() && !unreadable.is_empty() {
            return Err(Error::WrongKey(format!(
                "this kit holds key {}, but this library's encrypted blueprints are sealed with key {}: use that library's kit",
                key.id(),
                unreadable[0].1
            )));
        }
        if let Some(old) = self.stored_key(MASTER)?.filter(|k| k.id() != key.id()) {
            self.store_set(&format!("{RETIRED_PREFIX}{}", old.id()), old.as_bytes())?;
        }
        self.store_set(MASTER, key.as_bytes())?;
        self.write_canary(&key)?;
        self.audit("key-recovered", None, Some(format!("key id {}", key.id())))?;
        Ok(RecoverReport {
            key_id: key.id(),
            readable: readable.len(),
            unreadable: unreadable.into_iter().map(|(p, _)| p.clone()).collect(),
        })
    }

    /// Re-seal every encrypted blueprint under a new master key, as one all-or-nothing
    /// batch. The old key is kept as retired (earlier versions and the trash use it).
    /// Make a new recovery kit afterwards: the old kit holds the old key.
    pub fn rotate(&self, lib: &Library, opts: &RotateOptions) -> Result<RotateReport> {
        let start = std::time::Instant::now();
        let _lock = self.lock()?;
        let old = self.unlock_locked(lib)?.ok_or_else(|| {
            Error::InvalidArgument("this library has no master key yet: nothing is encrypted, nothing to rotate".into())
        })?;
        let new = MasterKey::generate();
        let mut puts = Vec::new();
        for (rel, _) in sealed_files(lib)? {
            let bytes = lib.read(&rel)?;
            let plain = self.open_blueprint(&old, &bytes).map_err(|e| match e {
                Error::Corrupt(m) => Error::Corrupt(format!("{rel}: {m}; nothing was rotated")),
                other => other,
            })?;
            let data = crypto::seal(&new, Purpose::Blueprint, &plain)?;
            puts.push(RawPut { rel, data, expect: Expect::Hash(content_hash(&bytes)) });
        }
        self.store_set(NEXT, new.as_bytes())?;
        let mut staged = 0usize;
        let fail_after = opts.fail_after;
        let applied = lib.apply_raw(&puts, &mut |_| {
            staged += 1;
            match fail_after {
                Some(n) if staged > n => Err(Error::Io {
                    context: "injected failure during rotation".into(),
                    source: std::io::Error::other("injected"),
                }),
                _ => Ok(()),
            }
        });
        if let Err(e) = applied {
            // Nothing committed: every file is still sealed with the old key.
            self.store_delete(NEXT)?;
            return Err(e);
        }
        self.promote(&old, &new)?;
        self.audit(
            "key-rotated",
            None,
            Some(format!("key id {} → {}; {} blueprints re-encrypted", old.id(), new.id(), puts.len())),
        )?;
        Ok(RotateReport {
            old_key_id: old.id(),
            new_key_id: new.id(),
            reencrypted: puts.len(),
            millis: start.elapsed().as_millis() as u64,
        })
    }

    fn promote(&self, old: &MasterKey, new: &MasterKey) -> Result<()> {
        self.store_set(&format!("{RETIRED_PREFIX}{}", old.id()), old.as_bytes())?;
        self.store_set(MASTER, new.as_bytes())?;
        self.write_canary(new)?;
        self.store_delete(NEXT)?;
        Ok(())
    }

    /// Finish or drop a rotation a crash interrupted (see the module docs).
    fn settle_rotation(&self, lib: &Library) -> Result<()> {
        let Some(next) = self.stored_key(NEXT)? else { return Ok(()) };
        let canary_id = self.read_canary()?.and_then(|c| crypto::sealed_key_id(&c));
        let committed = canary_id.as_deref() == Some(next.id().as_str())
            || sealed_files(lib)?.iter().any(|(_, id)| *id == next.id());
        if committed {
            match self.stored_key(MASTER)? {
                Some(old) if old.id() != next.id() => self.promote(&old, &next)?,
                _ => {
                    self.store_set(MASTER, next.as_bytes())?;
                    self.write_canary(&next)?;
                    self.store_delete(NEXT)?;
                }
            }
            self.audit("rotation-finished", None, Some(format!("key id {}", next.id())))
        } else {
            self.store_delete(NEXT)?;
            self.audit("rotation-abandoned", None, Some(format!("key id {} was never used", next.id())))
        }
    }
}

impl Secrets {
    /// The names this library may have kept in its store: the master key (and a pending
    /// rotation's), every retired key a sealed file or the audit log names, and every
    /// registered credential. Used to move an earlier library's secrets between stores
    /// (a keychain cannot be listed portably).
    pub(super) fn entry_names(&self, lib: &Library) -> Result<Vec<String>> {
        let mut ids = std::collections::BTreeSet::new();
        // Sealed blueprints in the library: the index knows which (no walk of the library,
        // which a credentials listing would otherwise pay at every call).
        for rel in lib.index().encrypted_paths()? {
            if let Some(id) = read_header_key_id(&lib.root().join(rel)) {
                ids.insert(id);
            }
        }
        // Sealed copies in the private area: history, trash, the secrets folder. Only files
        // that can be sealed; never SQLite's: opening and closing another descriptor of the
        // index drops this process's POSIX locks on it, and the index's own connections then
        // fail with "disk I/O error".
        for sub in ["versions", "trash", super::SECRETS_DIR] {
            for entry in walkdir::WalkDir::new(lib.area().join(sub)).into_iter().filter_map(std::result::Result::ok) {
                let name = entry.file_name().to_string_lossy();
                let sealable = name.ends_with(".yaml") || name.ends_with(".sealed");
                if entry.file_type().is_file()
                    && sealable
                    && let Some(id) = read_header_key_id(entry.path())
                {
                    ids.insert(id);
                }
            }
        }
        for entry in self.audit_log()? {
            for word in entry.detail.unwrap_or_default().split(|c: char| !c.is_ascii_alphanumeric()) {
                if !word.is_empty() {
                    ids.insert(word.to_owned());
                }
            }
        }
        let mut names = vec![MASTER.to_owned(), NEXT.to_owned()];
        names.extend(ids.into_iter().map(|id| format!("{RETIRED_PREFIX}{id}")));
        names.extend(self.credential_entry_names()?);
        Ok(names)
    }
}

impl RecoveryKit {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Corrupt(e.to_string()))
    }

    /// A page to print and keep somewhere safe; `bpv keys recover` reads it back.
    pub fn printable_page(&self) -> Result<String> {
        Ok(format!(
            "BLUEPRINT VAULT — RECOVERY KIT\n\n\
             Library: {}\nKey id:  {}\nMade:    {}\n\n\
             This page holds the key that opens your encrypted blueprints, locked with your\n\
             recovery passphrase. Keep it apart from the passphrase. To restore the key (on this\n\
             or a new machine): save the page as a file and run\n\n    bpv keys recover FILE\n\n\
             (the passphrase is asked on standard input, or taken from $BPV_RECOVERY_PASSPHRASE).\n\
             After a key rotation, make a new kit: this one holds the key it names.\n\n\
             {KIT_BEGIN}\n{}\n{KIT_END}\n",
            self.library,
            self.key_id,
            self.created,
            self.to_json()?
        ))
    }

    /// A kit's JSON, or a printable page around it.
    pub fn parse(text: &str) -> Result<RecoveryKit> {
        let body = match (text.find(KIT_BEGIN), text.find(KIT_END)) {
            (Some(b), Some(e)) if b < e => &text[b + KIT_BEGIN.len()..e],
            _ => text,
        };
        let kit: RecoveryKit = serde_json::from_str(body.trim())
            .map_err(|e| Error::InvalidArgument(format!("not a Blueprint Vault recovery kit: {e}")))?;
        if kit.format != "bpv-recovery-kit" || kit.version != 1 {
            return Err(Error::Unsupported(format!("recovery kit format {} v{}", kit.format, kit.version)));
        }
        Ok(kit)
    }
}

fn check_kit_passphrase(p: &[u8]) -> Result<()> {
    if p.len() < MIN_KIT_PASSPHRASE {
        return Err(Error::InvalidArgument(format!(
            "the recovery passphrase must have at least {MIN_KIT_PASSPHRASE} characters"
        )));
    }
    Ok(())
}

/// Every encrypted blueprint file in the library, with the id of the key that sealed it.
fn sealed_files(lib: &Library) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for f in crate::library::scan::walk(lib.root(), &|_| false)? {
        if let Some(id) = read_header_key_id(&lib.root().join(&f.rel)) {
            out.push((f.rel, id));
        }
    }
    Ok(out)
}

fn first_sealed_key_id(lib: &Library) -> Result<Option<String>> {
    if lib.index().stats()?.encrypted == 0 {
        return Ok(None);
    }
    Ok(sealed_files(lib)?.into_iter().next().map(|(_, id)| id))
}

fn read_header_key_id(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut header = [0u8; crypto::HEADER_LEN];
    let mut f = std::fs::File::open(path).ok()?;
    f.read_exact(&mut header).ok()?;
    crypto::sealed_key_id(&header)
}

/// Remove the plain-text earlier versions of a blueprint that is now encrypted. The
/// history folder is `<area>/versions/<first 20 hex of SHA-256(path)>` (library/history.rs).
fn purge_plain_versions(lib: &Library, rel: &str) -> Result<()> {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(rel.as_bytes()));
    let dir = lib.area().join("versions").join(&digest[..20]);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
    let mut removed = false;
    for entry in entries.flatten() {
        let p = entry.path();
        let is_version = p.extension().is_some_and(|e| e == "yaml");
        if is_version && std::fs::read(&p).is_ok_and(|b| !crypto::is_sealed(&b)) {
            std::fs::remove_file(&p).map_err(|e| Error::io("cannot remove a plain-text version", &p, e))?;
            removed = true;
        }
    }
    if removed {
        fsio::fsync_dir(&dir)?;
    }
    Ok(())
}

/// Whether a blueprint's companion marks it encrypted.
pub(super) fn companion_marked(lib: &Library, rel: &str) -> Result<bool> {
    let Some(crel) = crate::item::companion_path(rel) else { return Ok(false) };
    Ok(crate::library::read_if_exists(&lib.root().join(crel))?
        .and_then(|b| blueprint::parse_companion(&b).ok())
        .is_some_and(|c| c.encrypted))
}

/// A plain save must not replace an encrypted blueprint (its content would reach the disk
/// in plain text): callers check with this first. To store it in plain text again, delete
/// it and save it anew.
pub fn refuse_plain_overwrite(lib: &Library, path: &str) -> Result<()> {
    let Ok(key) = crate::library::blueprint_key(path) else { return Ok(()) };
    let rel = key.into_string();
    let sealed = crate::library::read_if_exists(&lib.root().join(&rel))?.is_some_and(|b| crypto::is_sealed(&b));
    if sealed || companion_marked(lib, &rel)? {
        return Err(Error::InvalidArgument(format!(
            "{rel} is encrypted: save it with --encrypt, or store it in plain text again with --decrypt (or `bpv decrypt {rel}`)"
        )));
    }
    Ok(())
}
