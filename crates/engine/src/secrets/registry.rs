//! Credential names and metadata (created, updated, last used) and the audit log, in the
//! library's private area. Values never come here: they live only in the store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::Secrets;
use crate::error::{Error, Result};
use crate::fsio;
use crate::library::Library;

const REGISTRY_FILE: &str = "credentials.json";
const AUDIT_FILE: &str = "audit.log";
/// Keychain entry names of credentials: `cred/NAME` (keys use other prefixes).
pub(super) const CRED_PREFIX: &str = "cred/";
/// Longest secret value accepted (keychains have limits; API keys are short).
const MAX_VALUE_BYTES: usize = 64 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    created: String,
    updated: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct Registry {
    credentials: BTreeMap<String, Meta>,
}

/// One credential as the CLI and the app show it: never its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CredentialInfo {
    pub name: String,
    pub created: String,
    pub updated: String,
    pub last_used: Option<String>,
    /// Blueprints that reference it as `${secret:NAME}` (encrypted ones only when the key is at hand).
    pub used_by: Vec<String>,
    /// Whether the store still holds a value (it can be removed behind our back).
    pub present: bool,
}

/// A `${secret:NAME}` reference to a credential that does not exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MissingReference {
    pub name: String,
    pub used_by: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CredentialList {
    pub store: super::StoreChoice,
    pub credentials: Vec<CredentialInfo>,
    pub missing: Vec<MissingReference>,
}

/// A credential one blueprint references, and whether it exists (the app flags missing ones).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CredentialUse {
    pub name: String,
    pub exists: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditEntry {
    /// RFC 3339, UTC.
    pub time: String,
    /// `credential-set`, `credential-reveal`, `credential-delete`, `key-created`,
    /// `recovery-kit-exported`, `key-recovered`, `key-rotated`, `rotation-finished`, `rotation-abandoned`,
    /// `blueprint-decrypted` (its path in `name`).
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub store: String,
    pub pid: u32,
}

/// The audit log's entries, oldest first. A line that cannot be read (a write cut short by
/// a crash or a full disk, or a damaged file) becomes an `unreadable-line` entry in its
/// place — shown, never silently dropped, and never hiding the entries after it.
pub fn parse_audit(text: &str) -> Vec<AuditEntry> {
    let mut out: Vec<AuditEntry> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(entry) => out.push(entry),
            Err(_) => {
                let time = out.last().map(|e| e.time.clone()).unwrap_or_default();
                out.push(AuditEntry {
                    time,
                    action: "unreadable-line".into(),
                    name: None,
                    detail: Some(format!(
                        "a line of the audit log could not be read ({} bytes): a write cut short by a crash or a full disk, or damage",
                        line.len()
                    )),
                    store: String::new(),
                    pid: 0,
                });
            }
        }
    }
    out
}

/// Whether the file at `path` is non-empty and does not end with a newline.
fn ends_torn(path: &Path) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("cannot open the audit log", path, e)),
    };
    let len = f.metadata().map_err(|e| Error::io("cannot read", path, e))?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::End(-1)).and_then(|_| f.read_exact(&mut last)).map_err(|e| Error::io("cannot read", path, e))?;
    Ok(last[0] != b'\n')
}

/// Names: letters, digits, `_`, `-`, `.`; 1–64 long, starting with a letter or digit —
/// the same names `${secret:NAME}` can reference.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{name:?} is not a credential name: use 1-64 letters, digits, `_`, `-` or `.`, starting with a letter or digit"
        )))
    }
}

/// The names a blueprint references as `${secret:NAME}`, in order, without repeats.
pub fn secret_references(text: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let needle = b"${secret:";
    let mut i = 0;
    // Every file is scanned at index time: jump from `$` to `$` (memchr-fast) instead of
    // comparing a window at every byte.
    while let Some(pos) = text[i..].iter().position(|b| *b == b'$') {
        if !text[i + pos..].starts_with(needle) {
            i += pos + 1;
            continue;
        }
        let start = i + pos + needle.len();
        let Some(len) = text[start..].iter().take(65).position(|b| *b == b'}') else {
            i = start;
            continue;
        };
        if let Ok(name) = std::str::from_utf8(&text[start..start + len])
            && check_name(name).is_ok()
            && !out.iter().any(|n| n == name)
        {
            out.push(name.to_owned());
        }
        i = start + len;
    }
    out
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Secrets {
    /// The keychain entry names of every registered credential.
    pub(super) fn credential_entry_names(&self) -> Result<Vec<String>> {
        Ok(self.load_registry()?.credentials.keys().map(|n| format!("{CRED_PREFIX}{n}")).collect())
    }

    fn load_registry(&self) -> Result<Registry> {
        let path = self.dir.join(REGISTRY_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
            Err(e) => Err(Error::io("cannot read", &path, e)),
        }
    }

    fn save_registry(&self, reg: &Registry) -> Result<()> {
        fsio::ensure_dir(&self.dir)?;
        let body = serde_json::to_vec_pretty(reg).map_err(|e| Error::Corrupt(e.to_string()))?;
        fsio::write_atomic_private(&self.dir.join(REGISTRY_FILE), &body)
    }

    /// Append one line to the audit log, durably. The log only grows.
    pub(super) fn audit(&self, action: &str, name: Option<&str>, detail: Option<String>) -> Result<()> {
        fsio::ensure_dir(&self.dir)?;
        let entry = AuditEntry {
            time: now(),
            action: action.to_owned(),
            name: name.map(str::to_owned),
            detail,
            store: self.choice.store.name().to_owned(),
            pid: std::process::id(),
        };
        let path = self.dir.join(AUDIT_FILE);
        // After a torn last line (a crash or a full disk mid-append) start on a new line,
        // so this entry is not glued to the fragment and stays readable.
        let mut line = if ends_torn(&path)? { vec![b'\n'] } else { Vec::new() };
        line.extend(serde_json::to_vec(&entry).map_err(|e| Error::Corrupt(e.to_string()))?);
        line.push(b'\n');
        fsio::append_durable(&path, &line)
    }

    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        let path = self.dir.join(AUDIT_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("cannot read", &path, e)),
        };
        Ok(parse_audit(&text))
    }

    /// Store (or replace) a credential's value.
    pub fn set_credential(&self, name: &str, value: &[u8]) -> Result<()> {
        check_name(name)?;
        if value.is_empty() {
            return Err(Error::InvalidArgument(format!("the value for {name} is empty: nothing was stored")));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(Error::InvalidArgument(format!("the value for {name} is longer than 64 KiB")));
        }
        let _lock = self.lock()?;
        self.store_set(&format!("{CRED_PREFIX}{name}"), value)?;
        let mut reg = self.load_registry()?;
        let t = now();
        let meta = reg.credentials.entry(name.to_owned()).or_insert_with(|| Meta {
            created: t.clone(),
            updated: t.clone(),
            last_used: None,
        });
        meta.updated = t;
        self.save_registry(&reg)?;
        self.audit("credential-set", Some(name), None)
    }

    /// A credential's value, for use (e.g. running a workflow) or, with `reveal`, to show a
    /// person — which the audit log records. Updates "last used".
    pub fn credential_value(&self, name: &str, reveal: bool) -> Result<Zeroizing<Vec<u8>>> {
        check_name(name)?;
        let _lock = self.lock()?;
        let value = self.store_get(&format!("{CRED_PREFIX}{name}"))?.ok_or_else(|| {
            Error::NotFound(format!(
                "credential {name} (not in {}); set it with `bpv creds set {name}`",
                self.choice.store.name()
            ))
        })?;
        let mut reg = self.load_registry()?;
        let t = now();
        let meta = reg.credentials.entry(name.to_owned()).or_insert_with(|| Meta {
            created: t.clone(),
            updated: t.clone(),
            last_used: None,
        });
        meta.last_used = Some(t);
        self.save_registry(&reg)?;
        if reveal {
            self.audit("credential-reveal", Some(name), None)?;
        }
        Ok(value)
    }

    /// One credential's metadata (no value, nothing recorded as used).
    pub fn credential(&self, lib: &Library, name: &str) -> Result<CredentialInfo> {
        check_name(name)?;
        self.list_credentials(lib)?
            .credentials
            .into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::NotFound(format!("credential {name}")))
    }

    pub fn delete_credential(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let _lock = self.lock()?;
        let mut reg = self.load_registry()?;
        let known = reg.credentials.remove(name).is_some();
        let deleted = self.store_delete(&format!("{CRED_PREFIX}{name}"))?;
        if !known && !deleted {
            return Err(Error::NotFound(format!("credential {name}")));
        }
        self.save_registry(&reg)?;
        self.audit("credential-delete", Some(name), None)
    }

    /// The credentials one blueprint references: from the index for a plain blueprint (the
    /// same source as [`Secrets::list_credentials`]), decrypted in memory when it is encrypted.
    pub fn credentials_used_by(&self, lib: &Library, path: &str) -> Result<Vec<CredentialUse>> {
        let item = lib.item(path)?;
        let names = if item.encrypted {
            secret_references(&self.read_plain(lib, &item.path)?)
        } else {
            lib.index().secret_references_of(&item.path)?
        };
        let reg = self.load_registry()?;
        Ok(names.into_iter().map(|name| CredentialUse { exists: reg.credentials.contains_key(&name), name }).collect())
    }

    /// Every credential with its metadata and the blueprints using it, and references
    /// to credentials that do not exist.
    pub fn list_credentials(&self, lib: &Library) -> Result<CredentialList> {
        let reg = self.load_registry()?;
        let refs = self.references(lib)?;
        let mut credentials = Vec::new();
        for (name, meta) in &reg.credentials {
            credentials.push(CredentialInfo {
                name: name.clone(),
                created: meta.created.clone(),
                updated: meta.updated.clone(),
                last_used: meta.last_used.clone(),
                used_by: refs.get(name).map(|s| s.iter().cloned().collect()).unwrap_or_default(),
                present: self.store_get(&format!("{CRED_PREFIX}{name}"))?.is_some(),
            });
        }
        let missing = refs
            .iter()
            .filter(|(name, _)| !reg.credentials.contains_key(*name))
            .map(|(name, paths)| MissingReference { name: name.clone(), used_by: paths.iter().cloned().collect() })
            .collect();
        Ok(CredentialList { store: self.choice_with_holdings(lib), credentials, missing })
    }

    /// name → blueprints referencing it: plain blueprints' references from the index (no
    /// file is read); encrypted blueprints are read and opened in memory when the library's
    /// key is at hand, else skipped (their references are never in the index).
    fn references(&self, lib: &Library) -> Result<BTreeMap<String, BTreeSet<String>>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (path, name) in lib.index().secret_references()? {
            out.entry(name).or_default().insert(path);
        }
        let encrypted = lib.index().encrypted_paths()?;
        if encrypted.is_empty() {
            return Ok(out);
        }
        let Ok(Some(key)) = self.unlock(lib) else { return Ok(out) };
        for path in encrypted {
            let Ok(bytes) = std::fs::read(lib.root().join(&path)) else { continue };
            let Ok(plain) = self.open_blueprint(&key, &bytes) else { continue };
            for n in secret_references(&plain) {
                out.entry(n).or_default().insert(path.clone());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_in_order_without_repeats_and_bad_names_are_ignored() {
        let text =
            b"a: ${secret:openai}\nb: \"${secret:slack.token} ${secret:openai}\"\nc: ${secret:bad name}\nd: ${secret:";
        assert_eq!(secret_references(text), vec!["openai".to_owned(), "slack.token".to_owned()]);
    }

    #[test]
    fn a_torn_audit_line_is_shown_in_its_place_and_hides_nothing_after_it() {
        let good =
            |action: &str| format!(r#"{{"time":"2026-01-01T00:00:00Z","action":"{action}","store":"file","pid":1}}"#);
        let text = format!("{}\n{{\"time\":\"2026-01\n{}\n", good("credential-set"), good("credential-reveal"));
        let entries = parse_audit(&text);
        let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["credential-set", "unreadable-line", "credential-reveal"]);
        assert!(parse_audit("").is_empty());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("openai").is_ok());
        assert!(check_name("A_b-c.1").is_ok());
        for bad in ["", "-x", "a b", "a/b", "ü", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
