//! The app's door to the engine's secrets (`bpv_engine::secrets`): credentials in the OS
//! keychain and blueprints encrypted at rest. Only translation here — which store to use,
//! every check and every write is the engine's.

use bpv_engine::Item;
use bpv_engine::library::{BlueprintSave, Library};
use bpv_engine::secrets::{Secrets, SecretsOptions, crypto};

use crate::dto::IpcError;

/// The library's secrets, in the store the engine chooses (the one it used before, else
/// the first of Secret Service → keyutils → passphrase file that works).
pub fn open(lib: &Library) -> Result<Secrets, IpcError> {
    Ok(Secrets::open(lib, &SecretsOptions::default())?)
}

/// A blueprint's text for showing: decrypted in memory when it is encrypted.
pub fn plain_text(lib: &Library, path: &str, bytes: Vec<u8>) -> Result<Vec<u8>, IpcError> {
    if !crypto::is_sealed(&bytes) {
        return Ok(bytes);
    }
    Ok(open(lib)?.read_plain(lib, path)?.to_vec())
}

/// Save YAML the way the blueprint is stored now: sealed again when it is encrypted (a
/// plain save must never replace an encrypted file).
pub fn save_yaml(lib: &Library, path: &str, yaml: &[u8], save: &BlueprintSave) -> Result<Item, IpcError> {
    match bpv_engine::secrets::refuse_plain_overwrite(lib, path) {
        Ok(()) => Ok(lib.save_blueprint(path, yaml, save)?),
        // The refusal for an encrypted blueprint; any other error (a file that cannot be
        // read) is reported, never taken as a reason to encrypt.
        Err(bpv_engine::Error::InvalidArgument(_)) => Ok(open(lib)?.save_encrypted(lib, path, yaml, save)?),
        Err(e) => Err(e.into()),
    }
}

/// Encrypt a plain blueprint in place (the engine drops its earlier plain versions).
/// Already encrypted: returned as it is.
pub fn encrypt(lib: &Library, path: &str, if_match: Option<String>) -> Result<Item, IpcError> {
    let item = lib.item(path)?;
    let bytes = lib.read(&item.path)?;
    if crypto::is_sealed(&bytes) {
        return Ok(item);
    }
    let save = BlueprintSave { allow_invalid: true, if_match, ..Default::default() };
    Ok(open(lib)?.save_encrypted(lib, &item.path, &bytes, &save)?)
}

/// Turn encryption off: the file becomes the plain YAML that was sealed, the companion
/// keeps its metadata, the sealed history stays sealed (all the engine's; audited there).
pub fn decrypt(lib: &Library, path: &str, if_match: Option<String>) -> Result<Item, IpcError> {
    Ok(open(lib)?.decrypt(lib, path, if_match.as_deref())?)
}
