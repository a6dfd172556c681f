//! Credential *names* in snapshots: the registry (names and metadata) and the audit log
//! of the library's private area travel with every snapshot; values never do (the
//! sealed file store, the key canary and the store choice stay out, see `DATA_FILES`).
//!
//! An in-place restore does not put an older registry and log over the current ones:
//! the current store still holds the current values, and the audit log only grows. So
//! the registry is merged (current entries kept, names only the snapshot knew added, so
//! the Credentials view lists them as missing a value) and the snapshot's log lines the
//! current log lacks are appended, followed by one line recording the restore.

use std::collections::HashSet;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsio;

/// Files of the private area a snapshot carries besides `DATA_FOLDERS`.
pub const DATA_FILES: &[&str] = &[REGISTRY, AUDIT];
const REGISTRY: &str = "secrets/credentials.json";
const AUDIT: &str = "secrets/audit.log";

/// Merge the registry and audit log restored into `staged_area` into `area`.
pub(crate) fn merge_restored(area: &Path, staged_area: &Path, snapshot: &str) -> Result<()> {
    let restored_registry = read_optional(&staged_area.join(REGISTRY))?;
    let restored_audit = read_optional(&staged_area.join(AUDIT))?;
    if restored_registry.is_none() && restored_audit.is_none() {
        return Ok(());
    }
    fsio::ensure_dir(&area.join("secrets"))?;
    if let Some(restored) = restored_registry {
        merge_registry(&area.join(REGISTRY), &restored)?;
    }
    let audit_path = area.join(AUDIT);
    let current = read_optional(&audit_path)?.unwrap_or_default();
    let known: HashSet<&[u8]> = current.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut append = Vec::new();
    for line in restored_audit.as_deref().unwrap_or_default().split(|b| *b == b'\n') {
        if !line.is_empty() && !known.contains(line) {
            append.extend_from_slice(line);
            append.push(b'\n');
        }
    }
    let note = serde_json::json!({
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "action": "backup-restored",
        "detail": format!("snapshot {snapshot} restored in place; credential values were kept as they were"),
        "store": "-",
        "pid": std::process::id(),
    });
    append.extend_from_slice(note.to_string().as_bytes());
    append.push(b'\n');
    if !current.is_empty() && !current.ends_with(b"\n") {
        append.insert(0, b'\n');
    }
    fsio::append_durable(&audit_path, &append)
}

/// `{"credentials": {NAME: meta}}`: the current entries win, the snapshot's other names join.
fn merge_registry(path: &Path, restored: &[u8]) -> Result<()> {
    let parse = |bytes: &[u8], what: &Path| -> Result<serde_json::Value> {
        serde_json::from_slice(bytes).map_err(|e| Error::Corrupt(format!("{}: {e}", what.display())))
    };
    let restored = parse(restored, Path::new("the snapshot's credentials.json"))?;
    let mut merged = match read_optional(path)? {
        Some(current) => parse(&current, path)?,
        None => serde_json::json!({ "credentials": {} }),
    };
    let (Some(from), Some(into)) = (
        restored.get("credentials").and_then(|c| c.as_object()),
        merged.get_mut("credentials").and_then(|c| c.as_object_mut()),
    ) else {
        return Err(Error::Corrupt(format!("{}: no credentials map", path.display())));
    };
    let mut added = false;
    for (name, meta) in from {
        if !into.contains_key(name) {
            into.insert(name.clone(), meta.clone());
            added = true;
        }
    }
    if !added {
        return Ok(());
    }
    let body = serde_json::to_vec_pretty(&merged).map_err(|e| Error::Corrupt(e.to_string()))?;
    fsio::write_atomic(path, &body)
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("cannot read", path, e)),
    }
}

/// Where a snapshot taken with secrets keeps them (private area, sealed).
pub const SEALED_SECRETS: &str = "secrets/backup-secrets.sealed";
/// Bound as associated data: this blob is a backup's credentials and nothing else.
const SEALED_CONTEXT: &[u8] = b"blueprint-vault backup credentials v1";
const MIN_PASSPHRASE: usize = 8;

/// Credential values sealed under a backup passphrase (Argon2id, XChaCha20-Poly1305),
/// ready to go into one snapshot with [`super::backup_with_secrets`].
pub struct SealedSecrets {
    pub(crate) bytes: Vec<u8>,
    /// How many credentials it holds.
    pub count: usize,
}

/// Seal every credential value of `lib` under `passphrase`. `kdf`: the Argon2id
/// parameters (default: fresh, 64 MiB, 3 passes).
pub fn seal_secrets(
    lib: &crate::library::Library,
    secrets: &crate::secrets::Secrets,
    passphrase: &[u8],
    kdf: Option<crate::secrets::crypto::KdfParams>,
) -> Result<SealedSecrets> {
    if passphrase.len() < MIN_PASSPHRASE {
        return Err(Error::InvalidArgument(format!(
            "the backup passphrase must be at least {MIN_PASSPHRASE} characters"
        )));
    }
    // `name<TAB>hex value` lines: names cannot hold a tab, and every buffer is zeroized.
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    let mut count = 0;
    for c in secrets.list_credentials(lib)?.credentials.into_iter().filter(|c| c.present) {
        let value = secrets.credential_value(&c.name, false)?;
        plain.extend_from_slice(c.name.as_bytes());
        plain.push(b'\t');
        plain.extend_from_slice(zeroize::Zeroizing::new(hex::encode(&*value)).as_bytes());
        plain.push(b'\n');
        count += 1;
    }
    let kdf = kdf.unwrap_or_else(crate::secrets::crypto::KdfParams::fresh);
    let sealed = crate::secrets::crypto::PassphraseSealed::seal(passphrase, SEALED_CONTEXT, &plain, kdf)?;
    let bytes = serde_json::to_vec(&sealed).map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok(SealedSecrets { bytes, count })
}

/// Put the credential values a snapshot holds back into `secrets`' store, after the
/// passphrase opens them (a wrong one is refused and changes nothing). Returns the names.
pub fn restore_secrets(
    repo: &super::Repo,
    id: &str,
    secrets: &crate::secrets::Secrets,
    passphrase: &[u8],
) -> Result<Vec<String>> {
    unseal_secrets(repo, id, passphrase)?.store_into(secrets)
}

/// Credential values opened from a snapshot, not stored anywhere yet (check the
/// passphrase before restoring files, store them after).
pub struct UnsealedSecrets(Vec<(String, zeroize::Zeroizing<Vec<u8>>)>);

impl UnsealedSecrets {
    /// The credential names.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Put every value into `secrets`' store. Returns the names.
    pub fn store_into(&self, secrets: &crate::secrets::Secrets) -> Result<Vec<String>> {
        for (name, value) in &self.0 {
            secrets.set_credential(name, value)?;
        }
        Ok(self.names())
    }
}

/// Open the credential values of snapshot `id` with the backup passphrase (a wrong one
/// is `wrong_key`).
pub fn unseal_secrets(repo: &super::Repo, id: &str, passphrase: &[u8]) -> Result<UnsealedSecrets> {
    let manifest = repo.manifest(id)?;
    let entry = manifest
        .entries
        .iter()
        .find(|e| e.source == super::Source::Data && e.path == SEALED_SECRETS)
        .ok_or_else(|| {
            Error::NotFound(format!("snapshot {id} holds no credential values (it was taken without --with-secrets)"))
        })?;
    let bytes = repo
        .read_object(&entry.hash)
        .map_err(|why| Error::Corrupt(format!("snapshot {id}: its sealed credentials cannot be read ({why})")))?;
    let sealed: crate::secrets::crypto::PassphraseSealed = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Corrupt(format!("snapshot {id}: its sealed credentials are damaged ({e})")))?;
    let plain = sealed.open(passphrase, SEALED_CONTEXT)?;
    let damaged = || Error::Corrupt(format!("snapshot {id}: its sealed credentials are damaged"));
    // Decode everything before storing anything: a damaged blob changes nothing.
    let mut values = Vec::new();
    for line in plain.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let tab = line.iter().position(|b| *b == b'\t').ok_or_else(damaged)?;
        let name = std::str::from_utf8(&line[..tab]).map_err(|_| damaged())?;
        let value = zeroize::Zeroizing::new(hex::decode(&line[tab + 1..]).map_err(|_| damaged())?);
        values.push((name.to_owned(), value));
    }
    Ok(UnsealedSecrets(values))
}
