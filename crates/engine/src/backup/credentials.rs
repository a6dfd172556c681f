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
use std::io::Write;
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
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&audit_path)
        .map_err(|e| Error::io("cannot open the audit log", &audit_path, e))?;
    f.write_all(&append).map_err(|e| Error::io("cannot write the audit log", &audit_path, e))?;
    f.sync_data().map_err(|e| Error::io("cannot flush the audit log", &audit_path, e))
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
