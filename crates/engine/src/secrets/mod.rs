//! Credentials in the OS keychain and blueprints encrypted at rest.
//!
//! - `stores`: where values live (Secret Service → keyutils → passphrase file; never plain text).
//! - `crypto`: the sealed envelope, HKDF subkeys, Argon2id.
//! - `registry`: credential names and metadata, the audit log (the library's private area).
//! - `keys`: the master key, its canary, the recovery kit, rotation, encrypted blueprints.
//!
//! [`Secrets`] ties them together for one library; the CLI and the app call only it.
//! Invariant: no secret value and no plaintext of an encrypted blueprint is ever written
//! to disk outside the credential store — not to the library, the index, the private
//! area (versions, trash, journal), temp files, logs or exports.

pub mod crypto;
mod keys;
mod plain;
mod registry;
pub mod stores;

use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::fsio;
use crate::library::Library;

pub use keys::{KeyStatus, RecoverReport, RecoveryKit, RotateOptions, RotateReport, refuse_plain_overwrite};
pub use registry::{AuditEntry, CredentialInfo, CredentialList, CredentialUse, MissingReference, secret_references};
pub use stores::{CredentialStore, FILE_PASSPHRASE_ENV, FileStore, KeyringStore, StoreChoice, StoreKind};

/// Overrides the store choice, like `--store` (`secret-service`, `keyutils`, `file`).
pub const STORE_ENV: &str = "BPV_CREDENTIAL_STORE";

const SECRETS_DIR: &str = "secrets";
const STORE_FILE: &str = "store.json";
const CREDENTIAL_FILE: &str = "credentials.sealed";

#[derive(Clone, Debug, Default)]
pub struct SecretsOptions {
    /// Use this store (else `$BPV_CREDENTIAL_STORE`, else the one this library used
    /// before, else the first of the chain that works here).
    pub store: Option<StoreKind>,
}

/// The secrets of one library: its credential store, and its keys.
pub struct Secrets {
    store: Box<dyn CredentialStore>,
    choice: StoreChoice,
    dir: PathBuf,
    /// Keychain service name: one per library (its private area's name).
    service: String,
}

#[derive(Serialize, serde::Deserialize)]
struct RememberedStore {
    store: StoreKind,
}

impl Secrets {
    /// Choose and connect the credential store for `lib`. Nothing is written until a
    /// secret or a key is stored.
    pub fn open(lib: &Library, opts: &SecretsOptions) -> Result<Secrets> {
        let dir = lib.area().join(SECRETS_DIR);
        let area_name = lib.area().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let service = format!("blueprint-vault/{area_name}");
        let file_path = dir.join(CREDENTIAL_FILE);
        let from_env = std::env::var(STORE_ENV).ok().filter(|s| !s.is_empty());
        let remembered = read_remembered(&dir)?;
        let (store, reason) = if let Some(kind) = opts.store {
            (stores::open_store(kind, &file_path)?, "asked for (--store)".to_owned())
        } else if let Some(name) = from_env {
            let kind = StoreKind::parse(&name)?;
            (stores::open_store(kind, &file_path)?, format!("asked for (${STORE_ENV})"))
        } else if remembered == Some(StoreKind::Keyutils) {
            return Secrets::move_out_of_keyutils(lib, dir, service, file_path);
        } else if let Some(kind) = remembered {
            let store = stores::open_store(kind, &file_path).map_err(|e| {
                Error::Keychain(format!(
                    "this library keeps its secrets in {} ({}), which is not available now: {e}. \
                     Make it available, or restore the master key elsewhere with `bpv keys recover KIT --store STORE`",
                    kind.name(),
                    kind.description()
                ))
            })?;
            (store, "this library's secrets are kept there (chosen when the first one was stored)".to_owned())
        } else {
            stores::first_working(&file_path)?
        };
        let kind = store.kind();
        let choice =
            StoreChoice { store: kind, description: kind.description().to_owned(), reason, holds: String::new() };
        Ok(Secrets { store, choice, dir, service })
    }

    /// A library that kept its secrets in keyutils (before keyutils stopped being a
    /// holder: it forgets everything at logout or reboot). With the passphrase file's
    /// passphrase, everything keyutils still holds is copied into the file (each value
    /// read back), the file becomes the library's store, and the audit log and the reason
    /// say so; the keyutils entries are left as they were (the session ends them). Without
    /// the passphrase the library still reads from keyutils, but stores nothing new there
    /// ([`Secrets::store_set`] refuses with the way out).
    fn move_out_of_keyutils(lib: &Library, dir: PathBuf, service: String, file_path: PathBuf) -> Result<Secrets> {
        let keyutils = KeyringStore::connect(StoreKind::Keyutils);
        let file = match FileStore::from_env(file_path) {
            Ok(f) => f,
            Err(_) => {
                let store = keyutils.map_err(|e| {
                    Error::Keychain(format!(
                        "this library kept its secrets in keyutils, which forgets them at logout or reboot, and it is \
                         not reachable: {e}. Set {FILE_PASSPHRASE_ENV} to move to the passphrase file, then restore \
                         the master key with `bpv keys recover KIT`"
                    ))
                })?;
                let choice = StoreChoice {
                    store: StoreKind::Keyutils,
                    description: StoreKind::Keyutils.description().to_owned(),
                    reason: format!(
                        "this library's secrets are still only in keyutils, which forgets them at logout or reboot: \
                         set {FILE_PASSPHRASE_ENV} (8+ characters) and run again to move them into the passphrase file"
                    ),
                    holds: String::new(),
                };
                return Ok(Secrets { store: Box::new(store), choice, dir, service });
            }
        };
        let choice = StoreChoice {
            store: StoreKind::File,
            description: StoreKind::File.description().to_owned(),
            reason: String::new(),
            holds: String::new(),
        };
        let secrets = Secrets { store: Box::new(file), choice, dir, service };
        let lock = secrets.lock()?;
        let (mut moved, mut unreachable) = (0usize, None);
        match keyutils {
            Ok(old) => {
                for name in secrets.entry_names(lib)? {
                    if let Some(value) = old.get(&secrets.service, &name)? {
                        secrets.store.set(&secrets.service, &name, &value)?;
                        if secrets.store.get(&secrets.service, &name)?.as_deref() != Some(&value) {
                            return Err(Error::Keychain(format!(
                                "the passphrase file did not keep {name}: nothing was moved out of keyutils"
                            )));
                        }
                        moved += 1;
                    }
                }
            }
            Err(e) => unreachable = Some(e.to_string()),
        }
        fsio::ensure_dir(&secrets.dir)?;
        let body = serde_json::to_vec_pretty(&RememberedStore { store: StoreKind::File })
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        fsio::write_atomic(&secrets.dir.join(STORE_FILE), &body)?;
        let what = match unreachable {
            Some(e) => format!("keyutils was not reachable ({e}), so nothing was moved"),
            None => format!("{moved} secret(s) moved from keyutils"),
        };
        let reason = format!(
            "{what} into the passphrase file, which is this library's store from now on: keyutils forgets \
             everything at logout or reboot"
        );
        secrets.audit("store-moved", None, Some(reason.clone()))?;
        drop(lock);
        let mut secrets = secrets;
        secrets.choice.reason = reason;
        Ok(secrets)
    }

    /// Use a given store (tests, and callers that built their own).
    pub fn with_store(lib: &Library, store: Box<dyn CredentialStore>, reason: &str) -> Secrets {
        let dir = lib.area().join(SECRETS_DIR);
        let area_name = lib.area().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let kind = store.kind();
        Secrets {
            store,
            choice: StoreChoice {
                store: kind,
                description: kind.description().to_owned(),
                reason: reason.to_owned(),
                holds: String::new(),
            },
            dir,
            service: format!("blueprint-vault/{area_name}"),
        }
    }

    /// Which store is in use, and why.
    pub fn choice(&self) -> &StoreChoice {
        &self.choice
    }

    /// [`Secrets::choice`] with what the store holds for `lib` filled in (`holds`).
    pub fn choice_with_holdings(&self, lib: &Library) -> StoreChoice {
        let mut choice = self.choice.clone();
        choice.holds = self.holdings(lib).unwrap_or_else(|e| format!("cannot tell: {e}"));
        choice
    }

    /// What the store holds for this library, for people: `bpv keys status` and the app.
    fn holdings(&self, lib: &Library) -> Result<String> {
        let (mut master, mut retired, mut creds) = (false, 0usize, 0usize);
        for name in self.entry_names(lib)? {
            if self.store_get(&name)?.is_none() {
                continue;
            }
            if name == "master-key" {
                master = true;
            } else if name.starts_with("master-key.retired.") {
                retired += 1;
            } else if name.starts_with(registry::CRED_PREFIX) {
                creds += 1;
            }
        }
        let key = if master { "the master key" } else { "no master key" };
        let lasts = if self.choice.store.survives_reboot() {
            "kept across logout and reboot"
        } else {
            "ALL LOST at logout or reboot"
        };
        Ok(format!("{key}, {retired} retired key(s), {creds} credential(s); {lasts}"))
    }

    /// The folder holding this library's secret metadata (never values).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file store keeps its sealed file for this library.
    pub fn credential_file(lib: &Library) -> PathBuf {
        lib.area().join(SECRETS_DIR).join(CREDENTIAL_FILE)
    }

    /// Remember the store once something is kept in it, so a later run does not
    /// silently look elsewhere (and report the library's keys missing).
    fn remember_store(&self) -> Result<()> {
        if read_remembered(&self.dir)?.is_none() {
            fsio::ensure_dir(&self.dir)?;
            let body = serde_json::to_vec_pretty(&RememberedStore { store: self.choice.store })
                .map_err(|e| Error::Corrupt(e.to_string()))?;
            fsio::write_atomic(&self.dir.join(STORE_FILE), &body)?;
        }
        Ok(())
    }

    fn lock(&self) -> Result<std::fs::File> {
        fsio::ensure_dir(&self.dir)?;
        fsio::lock_exclusive(&self.dir.join("secrets.lock"))
    }

    fn store_get(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        self.store.get(&self.service, name)
    }

    fn store_set(&self, name: &str, value: &[u8]) -> Result<()> {
        // A long-lived secret is never kept only in a store that forgets it at reboot.
        if !self.choice.store.survives_reboot() {
            return Err(Error::Keychain(format!(
                "{} forgets everything at logout or reboot, so nothing new is stored there: set \
                 {FILE_PASSPHRASE_ENV} (8+ characters) and run again; this library's secrets then move into \
                 the passphrase file",
                self.choice.store.name()
            )));
        }
        self.remember_store()?;
        self.store.set(&self.service, name, value)
    }

    fn store_delete(&self, name: &str) -> Result<bool> {
        self.store.delete(&self.service, name)
    }
}

fn read_remembered(dir: &Path) -> Result<Option<StoreKind>> {
    let path = dir.join(STORE_FILE);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice::<RememberedStore>(&b)
            .map(|r| Some(r.store))
            .map_err(|e| Error::Corrupt(format!("{}: {e} (remove it to choose the store again)", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("cannot read", &path, e)),
    }
}
