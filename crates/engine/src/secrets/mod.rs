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
        let choice = StoreChoice { store: kind, description: kind.description().to_owned(), reason };
        Ok(Secrets { store, choice, dir, service })
    }

    /// Use a given store (tests, and callers that built their own).
    pub fn with_store(lib: &Library, store: Box<dyn CredentialStore>, reason: &str) -> Secrets {
        let dir = lib.area().join(SECRETS_DIR);
        let area_name = lib.area().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let kind = store.kind();
        Secrets {
            store,
            choice: StoreChoice { store: kind, description: kind.description().to_owned(), reason: reason.to_owned() },
            dir,
            service: format!("blueprint-vault/{area_name}"),
        }
    }

    /// Which store is in use, and why.
    pub fn choice(&self) -> &StoreChoice {
        &self.choice
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
