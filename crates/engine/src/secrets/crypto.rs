//! The cryptography, in one place: the sealed envelope (XChaCha20-Poly1305 with a random
//! 192-bit nonce behind a small versioned header), HKDF-SHA256 subkeys of the master key,
//! and Argon2id for everything protected by a passphrase.
//!
//! Envelope v1 (bytes): `BPVSEAL` · version `1` · key id (8) · nonce (24) · ciphertext+tag.
//! The whole header is the AEAD's associated data, so changing any byte of the file —
//! header or body — fails authentication instead of producing garbage.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

pub const SEAL_MAGIC: &[u8; 7] = b"BPVSEAL";
pub const SEAL_VERSION: u8 = 1;
pub const KEY_ID_LEN: usize = 8;
pub const NONCE_LEN: usize = 24;
pub const HEADER_LEN: usize = SEAL_MAGIC.len() + 1 + KEY_ID_LEN + NONCE_LEN;

/// What a subkey is for: each purpose gets its own HKDF-SHA256 subkey, so a key used for
/// one thing can never open another's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Blueprint,
    Canary,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Purpose::Blueprint => b"blueprint-vault/v1/blueprint",
            Purpose::Canary => b"blueprint-vault/v1/canary",
        }
    }
}

/// The 256-bit master key. Zeroed when dropped; never printed.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id())
    }
}

impl MasterKey {
    pub fn generate() -> MasterKey {
        let mut k = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(k.as_mut());
        MasterKey(k)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Corrupt(format!("a master key has 32 bytes, this one {}", bytes.len())))?;
        Ok(MasterKey(Zeroizing::new(arr)))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A public fingerprint (HKDF output, so it reveals nothing of the key): tells which
    /// key sealed an envelope, so a wrong key is named as such, not reported as damage.
    pub fn id_bytes(&self) -> [u8; KEY_ID_LEN] {
        let mut out = [0u8; KEY_ID_LEN];
        let hk = Hkdf::<Sha256>::new(None, self.0.as_ref());
        // Cannot fail: 8 bytes is far below HKDF-SHA256's 255 × 32 limit.
        let _ = hk.expand(b"blueprint-vault/v1/key-id", &mut out);
        out
    }

    pub fn id(&self) -> String {
        hex::encode(self.id_bytes())
    }

    fn subkey(&self, purpose: Purpose) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        let hk = Hkdf::<Sha256>::new(None, self.0.as_ref());
        let _ = hk.expand(purpose.info(), out.as_mut());
        out
    }
}

/// Whether bytes are a sealed envelope (of any version).
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(SEAL_MAGIC)
}

/// The key id an envelope names, if the bytes are an envelope.
pub fn sealed_key_id(bytes: &[u8]) -> Option<String> {
    (is_sealed(bytes) && bytes.len() >= HEADER_LEN)
        .then(|| hex::encode(&bytes[SEAL_MAGIC.len() + 1..SEAL_MAGIC.len() + 1 + KEY_ID_LEN]))
}

/// The nonce of an envelope (for tests and checks that nonces never repeat).
pub fn sealed_nonce(bytes: &[u8]) -> Option<&[u8]> {
    (is_sealed(bytes) && bytes.len() >= HEADER_LEN).then(|| &bytes[HEADER_LEN - NONCE_LEN..HEADER_LEN])
}

/// Seal `plain` under the master key's subkey for `purpose`, with a fresh random nonce.
pub fn seal(key: &MasterKey, purpose: Purpose, plain: &[u8]) -> Result<Vec<u8>> {
    let sub = key.subkey(purpose);
    let cipher = XChaCha20Poly1305::new(sub.as_ref().into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + 16);
    out.extend_from_slice(SEAL_MAGIC);
    out.push(SEAL_VERSION);
    out.extend_from_slice(&key.id_bytes());
    out.extend_from_slice(&nonce);
    let body = cipher
        .encrypt(&nonce, Payload { msg: plain, aad: &out })
        .map_err(|_| Error::Corrupt("encryption failed".into()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Open an envelope. A different key is `WrongKey` (named by its id); any changed byte
/// is `Corrupt`. Never returns unauthenticated bytes.
pub fn open(key: &MasterKey, purpose: Purpose, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if !is_sealed(sealed) || sealed.len() < HEADER_LEN + 16 {
        return Err(Error::Corrupt("not a sealed envelope, or a truncated one".into()));
    }
    let version = sealed[SEAL_MAGIC.len()];
    if version != SEAL_VERSION {
        return Err(Error::Unsupported(format!(
            "sealed with format version {version}; this version of Blueprint Vault reads version {SEAL_VERSION}"
        )));
    }
    let (header, body) = sealed.split_at(HEADER_LEN);
    let key_id = &header[SEAL_MAGIC.len() + 1..SEAL_MAGIC.len() + 1 + KEY_ID_LEN];
    if key_id != key.id_bytes() {
        return Err(Error::WrongKey(format!(
            "sealed with key {}, but the key at hand is {}",
            hex::encode(key_id),
            key.id()
        )));
    }
    let nonce = XNonce::from_slice(&header[HEADER_LEN - NONCE_LEN..]);
    let sub = key.subkey(purpose);
    let cipher = XChaCha20Poly1305::new(sub.as_ref().into());
    cipher
        .decrypt(nonce, Payload { msg: body, aad: header })
        .map(Zeroizing::new)
        .map_err(|_| Error::Corrupt("sealed content failed authentication: it was changed or damaged".into()))
}

/// Argon2id parameters, stored beside what they protect so they can be raised later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub algorithm: String,
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hex.
    pub salt: String,
}

impl KdfParams {
    /// Fresh parameters with a random salt: 64 MiB, 3 passes (RFC 9106's second
    /// recommendation), a fraction of a second here.
    pub fn fresh() -> KdfParams {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        KdfParams {
            algorithm: "argon2id".into(),
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
            salt: hex::encode(salt),
        }
    }

    /// Derive a 256-bit key from a passphrase.
    pub fn derive(&self, passphrase: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        if self.algorithm != "argon2id" {
            return Err(Error::Unsupported(format!("key derivation {:?}", self.algorithm)));
        }
        // Refuse parameters a tampered file could use to make us do nothing (or everything).
        if !(8 * 1024..=4 * 1024 * 1024).contains(&self.memory_kib)
            || !(1..=64).contains(&self.iterations)
            || !(1..=16).contains(&self.parallelism)
        {
            return Err(Error::Corrupt("key derivation parameters out of range".into()));
        }
        let salt = hex::decode(&self.salt).map_err(|_| Error::Corrupt("key derivation salt is not hex".into()))?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| Error::Corrupt(format!("key derivation parameters: {e}")))?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase, &salt, out.as_mut())
            .map_err(|e| Error::Corrupt(format!("key derivation: {e}")))?;
        Ok(out)
    }
}

/// Data sealed under a passphrase (the recovery kit's wrapped key, the credential file).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PassphraseSealed {
    pub kdf: KdfParams,
    /// Hex, 24 bytes.
    pub nonce: String,
    /// Hex: ciphertext and tag.
    pub ciphertext: String,
}

impl PassphraseSealed {
    /// `context` is bound as associated data (what the blob is), so a blob cannot be
    /// passed off as another kind.
    pub fn seal(passphrase: &[u8], context: &[u8], plain: &[u8], kdf: KdfParams) -> Result<PassphraseSealed> {
        let key = kdf.derive(passphrase)?;
        PassphraseSealed::seal_with_key(&key, context, plain, kdf)
    }

    /// Seal with a key already derived from `kdf` (a fresh random nonce every time, so one
    /// derived key can seal many times).
    pub fn seal_with_key(key: &[u8; 32], context: &[u8], plain: &[u8], kdf: KdfParams) -> Result<PassphraseSealed> {
        let cipher = XChaCha20Poly1305::new(key.into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = cipher
            .encrypt(&nonce, Payload { msg: plain, aad: context })
            .map_err(|_| Error::Corrupt("encryption failed".into()))?;
        Ok(PassphraseSealed { kdf, nonce: hex::encode(nonce), ciphertext: hex::encode(ct) })
    }

    /// Open; a wrong passphrase and a damaged blob are indistinguishable by design,
    /// and both are `WrongKey` with that said.
    pub fn open(&self, passphrase: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let key = self.kdf.derive(passphrase)?;
        self.open_with_key(&key, context)
    }

    /// Open with a key already derived from `self.kdf`.
    pub fn open_with_key(&self, key: &[u8; 32], context: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let nonce = hex::decode(&self.nonce).map_err(|_| Error::Corrupt("nonce is not hex".into()))?;
        if nonce.len() != NONCE_LEN {
            return Err(Error::Corrupt("nonce has the wrong length".into()));
        }
        let ct = hex::decode(&self.ciphertext).map_err(|_| Error::Corrupt("ciphertext is not hex".into()))?;
        let cipher = XChaCha20Poly1305::new(key.into());
        cipher
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ct, aad: context })
            .map(Zeroizing::new)
            .map_err(|_| Error::WrongKey("the passphrase is wrong, or the data was changed or damaged".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn seal_open_round_trip_and_every_flipped_bit_is_caught() {
        let key = MasterKey::generate();
        let sealed = seal(&key, Purpose::Blueprint, b"name: Secret\n").unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(sealed_key_id(&sealed).unwrap(), key.id());
        assert_eq!(open(&key, Purpose::Blueprint, &sealed).unwrap().as_slice(), b"name: Secret\n");
        for i in 0..sealed.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = sealed.clone();
                bad[i] ^= bit;
                assert!(open(&key, Purpose::Blueprint, &bad).is_err(), "flip at byte {i} not caught");
            }
        }
        assert!(open(&key, Purpose::Blueprint, &sealed[..sealed.len() - 1]).is_err());
        assert!(matches!(open(&key, Purpose::Canary, &sealed), Err(Error::Corrupt(_))));
    }

    #[test]
    fn a_wrong_key_is_named_not_mistaken_for_damage() {
        let sealed = seal(&MasterKey::generate(), Purpose::Blueprint, b"x").unwrap();
        assert!(matches!(open(&MasterKey::generate(), Purpose::Blueprint, &sealed), Err(Error::WrongKey(_))));
    }

    #[test]
    fn nonces_never_repeat() {
        let key = MasterKey::generate();
        let mut seen = HashSet::new();
        for _ in 0..20_000 {
            let s = seal(&key, Purpose::Blueprint, b"same plaintext").unwrap();
            assert!(seen.insert(sealed_nonce(&s).unwrap().to_vec()), "a nonce repeated");
        }
    }

    #[test]
    fn passphrase_sealing_binds_its_context_and_refuses_a_wrong_passphrase() {
        let kdf = KdfParams { memory_kib: 8 * 1024, iterations: 1, ..KdfParams::fresh() };
        let s = PassphraseSealed::seal(b"correct horse", b"ctx", b"payload", kdf).unwrap();
        assert_eq!(s.open(b"correct horse", b"ctx").unwrap().as_slice(), b"payload");
        assert!(matches!(s.open(b"wrong horse", b"ctx"), Err(Error::WrongKey(_))));
        assert!(s.open(b"correct horse", b"other").is_err());
    }
}
