//! A team library is untrusted input: anyone with the bucket's keys (a teammate's
//! compromised laptop, a leaked key) can write objects there. Every reader of the bucket
//! (pull, snapshots, garbage collection, verify, a migration's sync) turns raw objects into
//! checked ones here, so one set of rules decides what may name a path, a size or a key:
//!
//! - paths through the engine's key rules (`Key::new`: library-relative, NFC, no `..`, no
//!   absolute path or drive letter, no control or direction-changing characters, no hidden
//!   segment, length and depth limits), and only `NAME.blueprint.yaml` files whose companion
//!   name is valid too;
//! - device ids (`[A-Za-z0-9_-]{1,64}`), device names (shown in conflict copies' names: no
//!   `/`, `\`, `..`, control characters, at most 64 characters), content hashes (64 lowercase
//!   hex digits), references (`<device>/<seq>/<n>`), sequence numbers (1 to 12 digits, as log
//!   keys have them);
//! - a log object must be its key's device's batch at its key's sequence, and each of its
//!   changes that device's own;
//! - sizes are capped before an object is read whole ([`MAX_LOG_BYTES`], …).
//!
//! What fails is a [`Refused`] entry (reported with the device it came from, never written);
//! the rest of the object and every other device's changes go on syncing.

use std::collections::BTreeMap;

use bpv_engine::item::{BLUEPRINT_SUFFIX, companion_path};
use bpv_engine::key::Key;
use serde::{Deserialize, Serialize};

use crate::model::{Change, FORMAT, History, Known, LogBatch};
use crate::sync::Snapshot;

/// Largest log object read (an honest batch holds at most 2000 changes: a few MiB).
pub const MAX_LOG_BYTES: u64 = 64 << 20;
/// Largest snapshot read (all known history of a large library).
pub const MAX_SNAPSHOT_BYTES: u64 = 512 << 20;
/// Largest content (YAML or companion) read: the engine's largest blueprint.
pub const MAX_BLOB_BYTES: u64 = bpv_engine::blueprint::MAX_BLUEPRINT_BYTES as u64;
/// Largest log sequence: log keys have 12 digits.
pub const MAX_SEQ: u64 = 999_999_999_999;
pub const MAX_DEVICE_ID_BYTES: usize = 64;
pub const MAX_DEVICE_NAME_CHARS: usize = 64;
const MAX_SYNC_ID_BYTES: usize = 2048;
const MAX_REFS: usize = 100_000;
/// Longest text of a refused entry kept for a report.
const SHOWN_CHARS: usize = 160;

/// An entry of the team library that was not used: reported (the sync's `errors`, the
/// app's Team view), never written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The device it came from (as the object's key names it; escaped when not an id).
    pub device: String,
    /// The object in the team library (its key under the prefix).
    pub object: String,
    /// The path it named, escaped (control characters shown as `\u{…}`), when it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub reason: String,
    /// Checked again at every sync (content missing or damaged, a newer format): it may
    /// clear itself. Otherwise the object never changes and the refusal stands.
    #[serde(default)]
    pub retry: bool,
}

impl Refused {
    pub fn new(device: &str, object: &str, path: Option<&str>, reason: impl Into<String>) -> Refused {
        Refused {
            device: shown(device),
            object: shown(object),
            path: path.map(shown),
            reason: reason.into(),
            retry: false,
        }
    }

    pub fn retried(mut self) -> Refused {
        self.retry = true;
        self
    }
}

/// A hostile string made safe to show: control and direction-changing characters escaped,
/// cut to a readable length.
pub fn shown(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == SHOWN_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() || is_bidi(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

pub fn device_id(s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.len() > MAX_DEVICE_ID_BYTES
        || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!("{:?} is not a device id (1 to 64 letters, digits, `-` or `_`)", shown(s)));
    }
    Ok(())
}

/// A device name as conflict copies show it. Empty is allowed (older logs have none).
pub fn device_name(s: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("device name {:?} {why}", shown(s)));
    if s.chars().count() > MAX_DEVICE_NAME_CHARS {
        return bad("is longer than 64 characters");
    }
    if let Some(c) = s.chars().find(|c| c.is_control() || is_bidi(*c)) {
        return bad(&format!("holds the control character U+{:04X}", c as u32));
    }
    if s.contains('/') || s.contains('\\') {
        return bad("holds a path separator (`/` or `\\`)");
    }
    if s.contains("..") {
        return bad("holds `..`");
    }
    Ok(())
}

/// A content hash: SHA-256 as 64 lowercase hex digits.
pub fn hash(s: &str) -> Result<(), String> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("{:?} is not a content hash (64 lowercase hex digits)", shown(s)));
    }
    Ok(())
}

fn seq(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| (1..=MAX_SEQ).contains(n))
}

/// `<device>/<seq>/<n>` → (device, seq).
pub fn reference(s: &str) -> Result<(&str, u64), String> {
    let bad = || format!("{:?} is not a change reference (`DEVICE/SEQ/N`)", shown(s));
    let mut parts = s.split('/');
    let (Some(device), Some(sq), Some(n), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    device_id(device).map_err(|_| bad())?;
    let sq = seq(sq).ok_or_else(bad)?;
    if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok((device, sq))
}

/// A blueprint path from another device: the engine's key rules, exactly as written (NFC),
/// a `NAME.blueprint.yaml` file whose companion name is a valid key too.
pub fn blueprint_path(p: &str) -> Result<(), String> {
    let key = Key::new(p).map_err(|e| match e {
        bpv_engine::Error::InvalidKey { reason, .. } => reason,
        other => other.to_string(),
    })?;
    if key.as_str() != p {
        // Another normalisation of an allowed name would be a second name for one file
        // on macOS: the writer sends NFC (the engine's keys are).
        return Err("not in Unicode normal form C".into());
    }
    let name = key.file_name();
    if !name.ends_with(BLUEPRINT_SUFFIX) || name == BLUEPRINT_SUFFIX.trim_start_matches('.') {
        return Err("not a blueprint file (`NAME.blueprint.yaml`)".into());
    }
    match companion_path(p).map(|c| Key::new(&c)) {
        Some(Ok(_)) => Ok(()),
        _ => Err("its companion file's name would be too long".into()),
    }
}

fn sync_id(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_SYNC_ID_BYTES || s.chars().any(|c| c.is_control()) {
        return Err(format!("{:?} is not a blueprint's sync id", shown(s)));
    }
    Ok(())
}

/// One change, on its own (a log's own checks come on top: see [`log_batch`]).
pub fn change(c: &Change) -> Result<(), String> {
    let (dev, _) = reference(&c.reference)?;
    device_id(&c.device)?;
    if dev != c.device {
        return Err(format!("its reference names another device ({})", shown(dev)));
    }
    device_name(&c.device_name)?;
    sync_id(&c.id)?;
    if c.parents.len() > MAX_REFS || c.replaces.len() > MAX_REFS {
        return Err("too many references".into());
    }
    for r in c.parents.iter().chain(&c.replaces) {
        reference(r)?;
    }
    if !c.origin.is_empty() {
        reference(&c.origin)?;
    }
    match &c.path {
        Some(p) => {
            blueprint_path(p)?;
            hash(c.yaml.as_deref().ok_or("a blueprint without content")?)?;
            if let Some(m) = &c.meta {
                hash(m)?;
            }
        }
        None if c.yaml.is_some() || c.meta.is_some() => return Err("a delete that names content".into()),
        None => {}
    }
    Ok(())
}

/// `logs/<device>/<seq:012>.json`: `None` for a key of another shape (not a log object),
/// `Some(Err)` for a log object whose device or sequence is not one.
pub fn log_key(key: &str) -> Option<Result<(String, u64), Refused>> {
    let mut parts = key.split('/');
    let (Some("logs"), Some(device), Some(file), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let checked = device_id(device).and_then(|()| match file.strip_suffix(".json") {
        Some(digits) if digits.len() == 12 => seq(digits).ok_or_else(|| format!("{file:?} is not a sequence number")),
        _ => Err(format!("{:?} is not a log object's name (12 digits, `.json`)", shown(file))),
    });
    Some(checked.map(|s| (device.to_owned(), s)).map_err(|reason| Refused::new(device, key, None, reason)))
}

/// `snapshots/<millis>-<device>.json` → device; `Err` for another name under `snapshots/`.
pub fn snapshot_key(key: &str) -> Result<String, Refused> {
    let bad = |reason: String| Refused::new("", key, None, reason);
    let name = key
        .strip_prefix("snapshots/")
        .and_then(|n| n.strip_suffix(".json"))
        .ok_or_else(|| bad("not a snapshot's name".into()))?;
    let (time, device) = name.split_once('-').ok_or_else(|| bad("not a snapshot's name".into()))?;
    if time.is_empty() || time.len() > 19 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a snapshot's name (`MILLIS-DEVICE.json`)".into()));
    }
    device_id(device).map_err(|reason| Refused::new(device, key, None, reason))?;
    Ok(device.to_owned())
}

/// What reading one object gave.
#[derive(Debug)]
pub enum Checked<T> {
    /// Usable; `refused` lists what was dropped from it.
    Read { value: T, refused: Vec<Refused> },
    /// Written by a newer Blueprint Vault: not read now (read again after an update).
    Newer(Refused),
    /// Nothing in it is used.
    Refused(Refused),
}

#[derive(Deserialize)]
struct Head {
    format: u32,
}

fn head(device: &str, object: &str, body: &[u8]) -> Option<Checked<()>> {
    match serde_json::from_slice::<Head>(body) {
        Err(e) => Some(Checked::Refused(Refused::new(device, object, None, format!("not readable: {e}")))),
        Ok(h) if h.format > FORMAT => Some(Checked::Newer(
            Refused::new(device, object, None, "written by a newer Blueprint Vault: update this one to read it")
                .retried(),
        )),
        Ok(_) => None,
    }
}

/// A log object of `device` at `seq` (from its key): the batch's changes that pass, and the
/// refused ones. A body that is not that device's batch at that sequence is refused whole.
pub fn log_batch(device: &str, seq: u64, object: &str, body: &[u8]) -> Checked<Vec<Change>> {
    match head(device, object, body) {
        Some(Checked::Newer(r)) => return Checked::Newer(r),
        Some(Checked::Refused(r)) => return Checked::Refused(r),
        _ => {}
    }
    let batch: LogBatch = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => return Checked::Refused(Refused::new(device, object, None, format!("not a log batch: {e}"))),
    };
    if batch.device != device || batch.seq != seq {
        return Checked::Refused(Refused::new(
            device,
            object,
            None,
            format!("holds batch {} of device {:?}, not its own key's", batch.seq, shown(&batch.device)),
        ));
    }
    let mut value = Vec::with_capacity(batch.changes.len());
    let mut refused = Vec::new();
    for c in batch.changes {
        let own = c.device == device && reference(&c.reference).is_ok_and(|(d, s)| d == device && s == seq);
        let checked = change(&c)
            .and_then(|()| if own { Ok(()) } else { Err("a change another device made, in this device's log".into()) });
        match checked {
            Ok(()) => value.push(c),
            Err(reason) => refused.push(Refused::new(device, object, c.path.as_deref(), reason)),
        }
    }
    Checked::Read { value, refused }
}

/// A snapshot (`device` from its key): refused whole when it is not that device's or its
/// cursors are not sequence numbers; heads that fail the change rules are dropped.
pub(crate) fn snapshot(device: &str, object: &str, body: &[u8]) -> Checked<Snapshot> {
    match head(device, object, body) {
        Some(Checked::Newer(r)) => return Checked::Newer(r),
        Some(Checked::Refused(r)) => return Checked::Refused(r),
        _ => {}
    }
    let snap: Snapshot = match serde_json::from_slice(body) {
        Ok(s) => s,
        Err(e) => return Checked::Refused(Refused::new(device, object, None, format!("not a snapshot: {e}"))),
    };
    if snap.device != device {
        return Checked::Refused(Refused::new(device, object, None, "a snapshot of another device"));
    }
    if let Some((d, s)) = snap.cursors.iter().find(|(d, s)| device_id(d).is_err() || !(1..=MAX_SEQ).contains(*s)) {
        return Checked::Refused(Refused::new(
            device,
            object,
            None,
            format!("its cursor {:?} = {s} is not a device's log position", shown(d)),
        ));
    }
    let mut refused = Vec::new();
    let mut ids: BTreeMap<String, History> = BTreeMap::new();
    for (id, mut history) in snap.known.ids {
        if let Err(reason) = sync_id(&id) {
            refused.push(Refused::new(device, object, None, reason));
            continue;
        }
        history.heads.retain(|r, c| {
            let checked = change(c).and_then(|()| {
                if *r == c.reference && c.id == id { Ok(()) } else { Err("filed under another name".into()) }
            });
            match checked {
                Ok(()) => true,
                Err(reason) => {
                    refused.push(Refused::new(device, object, c.path.as_deref(), reason));
                    false
                }
            }
        });
        history.superseded.retain(|r| reference(r).is_ok());
        history.replaced.retain(|r| reference(r).is_ok());
        ids.insert(id, history);
    }
    Checked::Read { value: Snapshot { known: Known { ids }, ..snap }, refused }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_engine_key_rules() {
        for ok in ["Blueprints/shared/a.blueprint.yaml", "Templates/東京/x y.blueprint.yaml", "top.blueprint.yaml"] {
            assert!(blueprint_path(ok).is_ok(), "{ok}");
        }
        let long_segment = format!("Blueprints/{}.blueprint.yaml", "a".repeat(250));
        let long_path = format!("{}x.blueprint.yaml", "abcdefghij/".repeat(100));
        for bad in [
            "../../.bashrc",
            "Blueprints/../../x.blueprint.yaml",
            "/etc/x.blueprint.yaml",
            "C:/x.blueprint.yaml",
            "Blueprints/a\0b.blueprint.yaml",
            "Blueprints/a\nb.blueprint.yaml",
            "Blueprints/.hidden/x.blueprint.yaml",
            "Blueprints\\..\\x.blueprint.yaml",
            "Blueprints/x.txt",
            "Blueprints/x.blueprint.meta.json",
            "Blueprints/.blueprint.yaml",
            "Blueprints//x.blueprint.yaml",
            "Cafe\u{301}.blueprint.yaml",
            long_segment.as_str(),
            long_path.as_str(),
        ] {
            assert!(blueprint_path(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn ids_names_hashes_and_references() {
        assert!(device_id("0123456789abcdef").is_ok());
        for bad in ["", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(device_id(bad).is_err(), "{bad:?}");
        }
        assert!(device_name("Anna's laptop").is_ok());
        assert!(device_name("").is_ok());
        for bad in ["a/b", "..", "../../x", "a\\b", "a\u{0}b", "evil\u{202E}", &"n".repeat(65)] {
            assert!(device_name(bad).is_err(), "{bad:?}");
        }
        assert!(hash(&"ab".repeat(32)).is_ok());
        for bad in ["", "../x", &"AB".repeat(32), &"ab".repeat(33), &"zz".repeat(32)] {
            assert!(hash(bad).is_err(), "{bad:?}");
        }
        assert_eq!(reference("abc/12/0").unwrap(), ("abc", 12));
        for bad in ["abc/0/1", "abc/12", "abc/12/1/2", "../12/1", "abc/-1/1", "abc/1234567890123/1", "abc/1/x"] {
            assert!(reference(bad).is_err(), "{bad:?}");
        }
        assert_eq!(log_key("logs/abc/000000000012.json").unwrap().unwrap(), ("abc".into(), 12));
        assert!(log_key("logs/abc/12.json").unwrap().is_err());
        assert!(log_key("logs/a b/000000000012.json").unwrap().is_err());
        assert!(log_key("logs/abc/000000000000.json").unwrap().is_err());
        assert!(log_key("logs/abc").is_none());
        assert_eq!(snapshot_key("snapshots/0001700000000000-abc.json").unwrap(), "abc");
        assert!(snapshot_key("snapshots/readme.txt").is_err());
    }

    #[test]
    fn shown_escapes_what_a_terminal_or_view_would_interpret() {
        assert_eq!(shown("a\0b\n\u{202E}"), "a\\u{0}b\\u{a}\\u{202e}");
        assert_eq!(shown(&"x".repeat(500)).chars().count(), SHOWN_CHARS + 1);
    }
}
