//! Where secret values live: the `CredentialStore` trait and its three backends, in the
//! order of the visible fallback chain — Secret Service (the desktop keychain), the
//! kernel's keyutils (headless Linux; gone at reboot), and a file sealed under a
//! passphrase (Argon2id → XChaCha20-Poly1305). Never plain text.
//!
//! The first two go through `keyring-core` and its store crates
//! (`dbus-secret-service-keyring-store`, `linux-keyutils-keyring-store`), built directly
//! rather than through a process-wide default store, so one process can hold several.
//!
//! On macOS the chain is the login Keychain (`apple-native-keyring-store`) → the file; on
//! Windows the Credential Manager (`windows-native-keyring-store`) → the file. Those two
//! are compiled only for their platform and were type-checked (`cargo check --target`)
//! but never run: no test here exercises them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyring_core::{CredentialStore as KeyringBackend, Entry};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::crypto::{KdfParams, PassphraseSealed};
use crate::error::{Error, Result};
use crate::fsio;

/// The environment variable holding the passphrase of the file store.
pub const FILE_PASSPHRASE_ENV: &str = "BPV_CREDENTIALS_PASSPHRASE";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    SecretService,
    Keyutils,
    File,
    MacosKeychain,
    WindowsCredentialManager,
}

/// The OS stores tried before the passphrase file, in order, on this platform. Only
/// stores that keep their values across a reboot: keyutils forgets everything at logout
/// or reboot, so it never holds a library's secrets (a library that used it before is
/// moved to the passphrase file: see `Secrets::open`).
#[cfg(target_os = "linux")]
const OS_CHAIN: &[StoreKind] = &[StoreKind::SecretService];
/// The OS stores this platform can connect to (the chain's, and keyutils on Linux, read
/// only to move an earlier library's secrets out of it).
#[cfg(target_os = "linux")]
const OS_STORES: &[StoreKind] = &[StoreKind::SecretService, StoreKind::Keyutils];
#[cfg(not(target_os = "linux"))]
const OS_STORES: &[StoreKind] = OS_CHAIN;
#[cfg(target_os = "macos")]
const OS_CHAIN: &[StoreKind] = &[StoreKind::MacosKeychain];
#[cfg(windows)]
const OS_CHAIN: &[StoreKind] = &[StoreKind::WindowsCredentialManager];
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
const OS_CHAIN: &[StoreKind] = &[];

impl StoreKind {
    pub const ALL: [StoreKind; 5] = [
        StoreKind::SecretService,
        StoreKind::Keyutils,
        StoreKind::File,
        StoreKind::MacosKeychain,
        StoreKind::WindowsCredentialManager,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StoreKind::SecretService => "secret-service",
            StoreKind::Keyutils => "keyutils",
            StoreKind::File => "file",
            StoreKind::MacosKeychain => "macos-keychain",
            StoreKind::WindowsCredentialManager => "windows-credential-manager",
        }
    }

    /// The stores of this platform's chain, in order (the passphrase file last).
    pub fn chain() -> Vec<StoreKind> {
        OS_CHAIN.iter().copied().chain([StoreKind::File]).collect()
    }

    /// Whether the store keeps what it holds across logout and reboot. A long-lived
    /// secret (a master key, a credential) is never kept only in a store that does not.
    pub fn survives_reboot(self) -> bool {
        self != StoreKind::Keyutils
    }

    pub fn parse(s: &str) -> Result<StoreKind> {
        StoreKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = StoreKind::chain().into_iter().map(StoreKind::name).collect();
            Error::InvalidArgument(format!("unknown credential store {s:?}: use {}", names.join(", ")))
        })
    }

    /// What a person should know about where their secrets are.
    pub fn description(self) -> &'static str {
        match self {
            StoreKind::SecretService => "the desktop keychain (Secret Service)",
            StoreKind::Keyutils => {
                "the kernel key store (keyutils), which forgets everything at logout or reboot: \
                 it no longer holds secrets; they move to the passphrase file"
            }
            StoreKind::File => "a file sealed with your passphrase (Argon2id, XChaCha20-Poly1305)",
            StoreKind::MacosKeychain => "the macOS Keychain (your login keychain)",
            StoreKind::WindowsCredentialManager => "the Windows Credential Manager",
        }
    }
}

/// A place for secret values, addressed by (service, name).
pub trait CredentialStore: Send + Sync {
    fn kind(&self) -> StoreKind;
    fn get(&self, service: &str, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>>;
    fn set(&self, service: &str, name: &str, value: &[u8]) -> Result<()>;
    /// Returns whether something was deleted.
    fn delete(&self, service: &str, name: &str) -> Result<bool>;
}

/// Secret Service or keyutils, through keyring-core.
pub struct KeyringStore {
    kind: StoreKind,
    backend: Arc<KeyringBackend>,
}

fn keychain_error(kind: StoreKind, what: &str, e: keyring_core::Error) -> Error {
    let advice = match kind {
        StoreKind::SecretService => {
            "is a keyring daemon (gnome-keyring, KWallet) running and unlocked in this session?"
        }
        StoreKind::Keyutils => "is there a session keyring (run inside `keyctl session -`)?",
        StoreKind::MacosKeychain => "is the login keychain unlocked?",
        StoreKind::WindowsCredentialManager => "is this a normal (not a service) Windows session?",
        StoreKind::File => "",
    };
    Error::Keychain(format!("{} {what}: {e} ({advice})", kind.name()))
}

impl KeyringStore {
    pub fn connect(kind: StoreKind) -> Result<KeyringStore> {
        if kind == StoreKind::File {
            return Err(Error::InvalidArgument("the file store is not a keyring store".into()));
        }
        if !OS_STORES.contains(&kind) {
            return Err(Error::Keychain(format!(
                "{} is not available on this system ({})",
                kind.name(),
                std::env::consts::OS
            )));
        }
        let backend = os_store(kind)?;
        Ok(KeyringStore { kind, backend })
    }

    fn entry(&self, service: &str, name: &str) -> Result<Entry> {
        self.backend.build(service, name, None).map_err(|e| keychain_error(self.kind, "refused an entry", e))
    }
}

impl CredentialStore for KeyringStore {
    fn kind(&self) -> StoreKind {
        self.kind
    }

    fn get(&self, service: &str, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        match self.entry(service, name)?.get_secret() {
            Ok(v) => Ok(Some(Zeroizing::new(v))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(keychain_error(self.kind, "could not be read", e)),
        }
    }

    fn set(&self, service: &str, name: &str, value: &[u8]) -> Result<()> {
        self.entry(service, name)?.set_secret(value).map_err(|e| keychain_error(self.kind, "could not be written", e))
    }

    fn delete(&self, service: &str, name: &str) -> Result<bool> {
        match self.entry(service, name)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(keychain_error(self.kind, "could not delete", e)),
        }
    }
}

/// Connect one of this platform's OS stores (`kind` is in `OS_CHAIN`).
#[cfg(target_os = "linux")]
fn os_store(kind: StoreKind) -> Result<Arc<KeyringBackend>> {
    let backend: Arc<KeyringBackend> = match kind {
        // Without a session bus libdbus would try to autolaunch one (a stray daemon).
        StoreKind::SecretService if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none_or(|a| a.is_empty()) => {
            return Err(Error::Keychain(
                "secret-service is not reachable: no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set)".into(),
            ));
        }
        StoreKind::SecretService => {
            dbus_secret_service_keyring_store::Store::new().map_err(|e| keychain_error(kind, "is not reachable", e))?
        }
        _ => linux_keyutils_keyring_store::Store::new().map_err(|e| keychain_error(kind, "is not reachable", e))?,
    };
    Ok(backend)
}

#[cfg(target_os = "macos")]
fn os_store(kind: StoreKind) -> Result<Arc<KeyringBackend>> {
    let backend: Arc<KeyringBackend> =
        apple_native_keyring_store::keychain::Store::new().map_err(|e| keychain_error(kind, "is not reachable", e))?;
    Ok(backend)
}

#[cfg(windows)]
fn os_store(kind: StoreKind) -> Result<Arc<KeyringBackend>> {
    let backend: Arc<KeyringBackend> =
        windows_native_keyring_store::Store::new().map_err(|e| keychain_error(kind, "is not reachable", e))?;
    Ok(backend)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn os_store(kind: StoreKind) -> Result<Arc<KeyringBackend>> {
    Err(Error::Keychain(format!("{} is not available on this system", kind.name())))
}

/// The last link of the chain: one file holding every value, sealed as a whole under a
/// key derived from a passphrase. Rewritten atomically (`fsio`) with a fresh nonce each time.
pub struct FileStore {
    path: PathBuf,
    passphrase: Zeroizing<Vec<u8>>,
    /// Test hook: cheaper Argon2 parameters for new files.
    kdf_override: Option<KdfParams>,
    /// The key derived for the file's parameters: Argon2id is slow on purpose, so it runs
    /// once per process (the salt stays with the file; every write has a fresh nonce).
    derived: std::sync::Mutex<Option<(KdfParams, Zeroizing<[u8; 32]>)>>,
}

const FILE_CONTEXT: &[u8] = b"blueprint-vault credential file v1";

#[derive(Serialize, Deserialize)]
struct FileEnvelope {
    format: String,
    version: u32,
    #[serde(flatten)]
    sealed: PassphraseSealed,
}

/// service → name → hex value.
type FileContents = BTreeMap<String, BTreeMap<String, String>>;

impl FileStore {
    pub fn new(path: PathBuf, passphrase: &[u8]) -> Result<FileStore> {
        if passphrase.len() < 8 {
            return Err(Error::InvalidArgument(
                "the credential file's passphrase must have at least 8 characters".into(),
            ));
        }
        Ok(FileStore {
            path,
            passphrase: Zeroizing::new(passphrase.to_vec()),
            kdf_override: None,
            derived: std::sync::Mutex::new(None),
        })
    }

    /// The passphrase from `$BPV_CREDENTIALS_PASSPHRASE`.
    pub fn from_env(path: PathBuf) -> Result<FileStore> {
        let pass = std::env::var_os(FILE_PASSPHRASE_ENV).filter(|p| !p.is_empty()).ok_or_else(|| {
            Error::Keychain(format!(
                "the passphrase-protected credential file needs its passphrase: set {FILE_PASSPHRASE_ENV}"
            ))
        })?;
        FileStore::new(path, pass.as_encoded_bytes())
    }

    #[doc(hidden)]
    pub fn with_kdf(mut self, kdf: KdfParams) -> FileStore {
        self.kdf_override = Some(kdf);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<(FileContents, Option<KdfParams>)> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((FileContents::new(), None)),
            Err(e) => return Err(Error::io("cannot read the credential file", &self.path, e)),
        };
        let env: FileEnvelope = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Corrupt(format!("credential file {}: {e}", self.path.display())))?;
        if env.format != "bpv-credential-file" || env.version != 1 {
            return Err(Error::Unsupported(format!(
                "credential file {} has format {} v{}",
                self.path.display(),
                env.format,
                env.version
            )));
        }
        let key = self.key_for(&env.sealed.kdf)?;
        let plain = env.sealed.open_with_key(&key, FILE_CONTEXT).map_err(|_| {
            Error::WrongKey(format!(
                "cannot open the credential file {}: the passphrase ({FILE_PASSPHRASE_ENV}) is wrong, or the file was changed",
                self.path.display()
            ))
        })?;
        let contents: FileContents =
            serde_json::from_slice(&plain).map_err(|e| Error::Corrupt(format!("credential file contents: {e}")))?;
        Ok((contents, Some(env.sealed.kdf)))
    }

    fn save(&self, contents: &FileContents, kdf: Option<KdfParams>) -> Result<()> {
        let plain = Zeroizing::new(serde_json::to_vec(contents).map_err(|e| Error::Corrupt(e.to_string()))?);
        // A new file gets a random salt; later writes keep it (and the derived key) and
        // differ by their random 192-bit nonce.
        let kdf =
            kdf.unwrap_or_else(|| self.kdf_override.clone().map(KdfParams::resalted).unwrap_or_else(KdfParams::fresh));
        let key = self.key_for(&kdf)?;
        let sealed = PassphraseSealed::seal_with_key(&key, FILE_CONTEXT, &plain, kdf)?;
        let env = FileEnvelope { format: "bpv-credential-file".into(), version: 1, sealed };
        let body = serde_json::to_vec_pretty(&env).map_err(|e| Error::Corrupt(e.to_string()))?;
        if let Some(dir) = self.path.parent() {
            fsio::ensure_dir(dir)?;
        }
        fsio::write_atomic_private(&self.path, &body)
    }
}

impl FileStore {
    fn key_for(&self, kdf: &KdfParams) -> Result<Zeroizing<[u8; 32]>> {
        let mut cached = self.derived.lock().map_err(|_| Error::Keychain("file store lock poisoned".into()))?;
        if let Some((params, key)) = cached.as_ref()
            && params == kdf
        {
            return Ok(key.clone());
        }
        let key = kdf.derive(&self.passphrase)?;
        *cached = Some((kdf.clone(), key.clone()));
        Ok(key)
    }
}

impl KdfParams {
    /// The same cost with a new random salt.
    fn resalted(self) -> KdfParams {
        KdfParams { salt: KdfParams::fresh().salt, ..self }
    }
}

impl CredentialStore for FileStore {
    fn kind(&self) -> StoreKind {
        StoreKind::File
    }

    fn get(&self, service: &str, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let (contents, _) = self.load()?;
        contents
            .get(service)
            .and_then(|m| m.get(name))
            .map(|h| hex::decode(h).map(Zeroizing::new).map_err(|_| Error::Corrupt("credential file value".into())))
            .transpose()
    }

    fn set(&self, service: &str, name: &str, value: &[u8]) -> Result<()> {
        let (mut contents, kdf) = self.load()?;
        contents.entry(service.to_owned()).or_default().insert(name.to_owned(), hex::encode(value));
        self.save(&contents, kdf)
    }

    fn delete(&self, service: &str, name: &str) -> Result<bool> {
        let (mut contents, kdf) = self.load()?;
        let removed = contents.get_mut(service).and_then(|m| m.remove(name)).is_some();
        if removed {
            self.save(&contents, kdf)?;
        }
        Ok(removed)
    }
}

/// Which store is in use, and why: shown by `bpv info` and the app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StoreChoice {
    pub store: StoreKind,
    /// What the store is, for people.
    pub description: String,
    /// Why this store: asked for, remembered for this library, or the first that worked.
    pub reason: String,
    /// What it holds for this library (the master key, retired keys, credentials) and
    /// whether that survives a reboot; empty where not looked up.
    #[serde(default)]
    pub holds: String,
}

/// Check that a store works here by writing, reading and deleting a probe value.
pub fn probe(store: &dyn CredentialStore) -> Result<()> {
    let service = "blueprint-vault/probe";
    // Unique per probe, not per process: the app opens the library's secrets from several
    // threads at once, and probes sharing an entry delete each other's value.
    let name = format!("probe-{}-{:016x}", std::process::id(), rand::random::<u64>());
    store.set(service, &name, b"probe")?;
    let back = store.get(service, &name)?;
    store.delete(service, &name)?;
    if back.as_deref().map(Vec::as_slice) != Some(b"probe".as_slice()) {
        return Err(Error::Keychain(format!("{} did not return what was stored", store.kind().name())));
    }
    Ok(())
}

/// Why keyutils is refused as the place for a library's secrets, and the way out.
pub fn keyutils_refused() -> Error {
    Error::InvalidArgument(format!(
        "keyutils forgets every key at logout or reboot, so it cannot hold this library's secrets: \
         use the desktop keychain (--store secret-service) or the passphrase file (--store file, with \
         {FILE_PASSPHRASE_ENV} set)"
    ))
}

/// Open one store of a given kind (the file store at `file_path`) to keep secrets in.
/// keyutils is refused: it forgets what it holds at reboot.
pub fn open_store(kind: StoreKind, file_path: &Path) -> Result<Box<dyn CredentialStore>> {
    Ok(match kind {
        StoreKind::Keyutils => return Err(keyutils_refused()),
        StoreKind::File => Box::new(FileStore::from_env(file_path.to_path_buf())?),
        k => Box::new(KeyringStore::connect(k)?),
    })
}

/// Walk the fallback chain: the first store that passes a probe. Returns the store
/// and why it was chosen (which earlier ones failed, and how).
pub fn first_working(file_path: &Path) -> Result<(Box<dyn CredentialStore>, String)> {
    let mut skipped: Vec<String> = Vec::new();
    for &kind in OS_CHAIN {
        match KeyringStore::connect(kind).and_then(|s| probe(&s).map(|()| s)) {
            Ok(s) => {
                let reason = if skipped.is_empty() {
                    format!("{} works here (first in the chain)", kind.name())
                } else {
                    format!("{}; {} works", skipped.join("; "), kind.name())
                };
                return Ok((Box::new(s), reason));
            }
            Err(e) => skipped.push(format!("{} unavailable: {}", kind.name(), short(&e.to_string()))),
        }
    }
    // keyutils is not a fallback: it would lose every secret at the next reboot.
    let file = FileStore::from_env(file_path.to_path_buf()).map_err(|e| {
        Error::Keychain(format!(
            "no credential store that survives a reboot works here: {}; and {e} \
             (keyutils is not used: it forgets everything at logout or reboot)",
            skipped.join("; ")
        ))
    })?;
    Ok((
        Box::new(file),
        format!(
            "{}; the passphrase file is the store (keyutils is not used: it forgets everything at logout or reboot)",
            skipped.join("; ")
        ),
    ))
}

fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 160 { format!("{}…", s.chars().take(160).collect::<String>()) } else { s.to_owned() }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// One shared keyspace, like a real keychain seen by every thread of a process.
    #[derive(Default)]
    struct SharedStore(Mutex<HashMap<(String, String), Vec<u8>>>);

    impl CredentialStore for SharedStore {
        fn kind(&self) -> StoreKind {
            StoreKind::Keyutils
        }
        fn get(&self, service: &str, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
            let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            Ok(map.get(&(service.to_owned(), name.to_owned())).cloned().map(Zeroizing::new))
        }
        fn set(&self, service: &str, name: &str, value: &[u8]) -> Result<()> {
            // Yield between the steps of concurrent probes, as a D-Bus round trip does.
            std::thread::yield_now();
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((service.to_owned(), name.to_owned()), value.to_vec());
            Ok(())
        }
        fn delete(&self, service: &str, name: &str) -> Result<bool> {
            Ok(self
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&(service.to_owned(), name.to_owned()))
                .is_some())
        }
    }

    #[test]
    fn the_chain_is_the_platforms_and_another_platforms_store_says_so() {
        #[cfg(target_os = "linux")]
        assert_eq!(StoreKind::chain(), [StoreKind::SecretService, StoreKind::File]);
        // Never a holder: it forgets at reboot (still connectable, to move secrets out).
        assert!(!StoreKind::chain().iter().any(|k| !k.survives_reboot()));
        assert!(matches!(open_store(StoreKind::Keyutils, Path::new("x")), Err(Error::InvalidArgument(_))));
        #[cfg(target_os = "macos")]
        assert_eq!(StoreKind::chain(), [StoreKind::MacosKeychain, StoreKind::File]);
        #[cfg(windows)]
        assert_eq!(StoreKind::chain(), [StoreKind::WindowsCredentialManager, StoreKind::File]);
        for kind in StoreKind::ALL {
            assert_eq!(StoreKind::parse(kind.name()).unwrap(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()), "store.json and the app use the same names");
            if !StoreKind::chain().contains(&kind) && !OS_STORES.contains(&kind) {
                let err = KeyringStore::connect(kind).err().unwrap();
                assert!(err.to_string().contains("not available on this system"), "{err}");
            }
        }
        let unknown = StoreKind::parse("gnome").unwrap_err().to_string();
        assert!(StoreKind::chain().iter().all(|k| unknown.contains(k.name())), "{unknown}");
    }

    #[test]
    fn concurrent_probes_in_one_process_do_not_disturb_each_other() {
        let store = SharedStore::default();
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..300 {
                        probe(&store).unwrap();
                    }
                });
            }
        });
        assert!(store.0.lock().unwrap().is_empty(), "every probe cleans up after itself");
    }
}
