//! `.zip` bundles: the safe reader (any zip of blueprints, ours or not) and the writer
//! of our bundles (`manifest.json` + blueprints + companions).
//!
//! The reader never extracts: it walks the central directory entry by entry and
//! * refuses names with `..`, `.` or empty segments, absolute paths, drive letters,
//!   backslashes, NUL and control characters, non-UTF-8 bytes, and nesting deeper than
//!   the limit;
//! * refuses symlinks, device files, FIFOs and sockets (unix mode), and encrypted entries;
//! * refuses the whole archive when it has more entries than allowed, duplicate names,
//!   or declares more uncompressed bytes in all than allowed;
//! * refuses an entry whose declared size is over the limit or whose declared or real
//!   compression ratio is suspicious, and reads every entry through a capped reader that
//!   stops at the declared size (+1 byte to catch liars) and at the entry limit.

use std::collections::HashSet;
use std::io::{Read, Seek, Write};

use serde::{Deserialize, Serialize};

use super::{Limits, RATIO_FLOOR_BYTES};
use crate::error::{Error, Result};

pub const MANIFEST_NAME: &str = "manifest.json";
pub const MANIFEST_FORMAT: &str = "blueprint-vault-bundle";
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// RFC 3339.
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    pub entries: Vec<ManifestEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Library path of the blueprint, which is also its path inside the bundle.
    pub path: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// SHA-256 of the blueprint bytes, lowercase hex.
    pub sha256: String,
    pub size: u64,
    /// Path of the companion metadata inside the bundle, when there is one.
    #[serde(default)]
    pub companion: Option<String>,
    #[serde(default)]
    pub companion_sha256: Option<String>,
}

/// An entry read from an archive: its checked name and its bytes.
#[derive(Clone, Debug)]
pub struct RawEntry {
    pub name: String,
    pub data: Vec<u8>,
}

/// An entry that was not read, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The entry's name as stored (lossy UTF-8, control characters escaped).
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct BundleContents {
    pub entries: Vec<RawEntry>,
    pub refused: Vec<Refusal>,
    /// Entries that are not blueprints, companions or the manifest (left unread).
    pub ignored: Vec<String>,
    pub manifest: Option<Manifest>,
}

/// Which entries the importer wants the bytes of.
pub fn is_wanted(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

/// Read an archive safely. `budget` is the number of uncompressed bytes this import may
/// still read; it is decreased by what is read. Whole-archive refusals are errors.
pub fn read_bundle<R: Read + Seek>(
    reader: R,
    limits: &Limits,
    budget: &mut u64,
    cancel: &Option<super::CancelToken>,
) -> Result<BundleContents> {
    let mut archive = zip::ZipArchive::new(reader)
        .map_err(|e| Error::InvalidArgument(format!("not a readable zip archive ({e})")))?;
    if archive.len() > limits.max_entries {
        return Err(Error::QuotaExceeded(format!(
            "the archive has {} entries, more than the {} allowed; refusing it",
            archive.len(),
            limits.max_entries
        )));
    }
    if archive.has_duplicate_names() {
        return Err(Error::InvalidArgument(
            "the archive has two entries with the same name, so its content is ambiguous; refusing it".into(),
        ));
    }
    let mut out = BundleContents::default();
    // First pass: names, types and declared sizes, before any byte is decompressed.
    let mut to_read: Vec<(usize, String, u64)> = Vec::new();
    let mut declared_total: u64 = 0;
    let mut seen: HashSet<String> = HashSet::new();
    for i in 0..archive.len() {
        super::check_cancel(cancel)?;
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| Error::InvalidArgument(format!("the archive is damaged at entry {i} ({e})")))?;
        let raw = entry.name_raw().to_vec();
        let shown = show_name(&raw);
        let refuse =
            |out: &mut BundleContents, reason: String| out.refused.push(Refusal { name: shown.clone(), reason });
        let name = match check_entry_name(&raw, limits.max_depth) {
            Ok(n) => n,
            Err(reason) => {
                refuse(&mut out, reason);
                continue;
            }
        };
        let mode = entry.unix_mode().unwrap_or(0);
        let ftype = mode & S_IFMT;
        if entry.is_symlink() || ftype == S_IFLNK {
            refuse(&mut out, "a symbolic link; links are never followed or created".into());
            continue;
        }
        if entry.is_dir() || ftype == S_IFDIR {
            continue;
        }
        if ftype != 0 && ftype != S_IFREG {
            refuse(&mut out, format!("not a regular file (a device, pipe, socket or link; mode {mode:o})"));
            continue;
        }
        if entry.encrypted() {
            refuse(&mut out, "encrypted archive entries are not supported".into());
            continue;
        }
        if !is_wanted(&name) {
            out.ignored.push(name);
            continue;
        }
        // Names that differ only by normalisation or case would be one file on macOS/Windows.
        let folded = fold(&name);
        if !seen.insert(folded) {
            refuse(&mut out, "another entry has the same name (up to letter case or Unicode normalisation)".into());
            continue;
        }
        let size = entry.size();
        let packed = entry.compressed_size();
        if size > limits.max_entry_bytes {
            refuse(
                &mut out,
                format!("declares {size} bytes, more than the {} allowed per file", limits.max_entry_bytes),
            );
            continue;
        }
        if size > RATIO_FLOOR_BYTES && size / packed.max(1) > limits.max_ratio {
            refuse(
                &mut out,
                format!(
                    "compressed {}:1, more than the {}:1 allowed (a zip bomb?)",
                    size / packed.max(1),
                    limits.max_ratio
                ),
            );
            continue;
        }
        declared_total = declared_total.saturating_add(size);
        to_read.push((i, name, packed));
    }
    if declared_total > *budget {
        return Err(Error::QuotaExceeded(format!(
            "the archive would expand to {declared_total} bytes, more than the {} allowed for one import; refusing it",
            limits.max_total_bytes
        )));
    }
    // Second pass: the bytes, one entry at a time, each through a capped reader.
    for (i, name, packed) in to_read {
        super::check_cancel(cancel)?;
        let entry = archive
            .by_index(i)
            .map_err(|e| Error::InvalidArgument(format!("the archive is damaged at {name} ({e})")))?;
        let declared = entry.size();
        let cap = declared.min(limits.max_entry_bytes).min(*budget);
        let mut data = Vec::with_capacity(usize::try_from(cap.min(1 << 20)).unwrap_or(0));
        let read = entry.take(cap + 1).read_to_end(&mut data);
        if let Err(e) = read {
            out.refused.push(Refusal { name, reason: format!("the entry is damaged and cannot be read ({e})") });
            continue;
        }
        let real = data.len() as u64;
        if real > cap {
            out.refused.push(Refusal {
                name,
                reason: format!("holds more bytes than the {declared} it declares (a zip bomb?)"),
            });
            continue;
        }
        if real > RATIO_FLOOR_BYTES && real / packed.max(1) > limits.max_ratio {
            out.refused
                .push(Refusal { name, reason: format!("compressed more than {}:1 (a zip bomb?)", limits.max_ratio) });
            continue;
        }
        *budget -= real;
        if name == MANIFEST_NAME {
            match serde_json::from_slice::<Manifest>(&data) {
                Ok(m) if m.format == MANIFEST_FORMAT && m.version <= MANIFEST_VERSION => out.manifest = Some(m),
                Ok(m) if m.format == MANIFEST_FORMAT => {
                    return Err(Error::Unsupported(format!(
                        "the bundle was made by a newer version (format version {}); update Blueprint Vault",
                        m.version
                    )));
                }
                // Someone else's manifest.json: just a file we do not import.
                _ => out.ignored.push(name),
            }
            continue;
        }
        out.entries.push(RawEntry { name, data });
    }
    Ok(out)
}

/// Check an archive entry name; Ok is a safe relative `/`-separated path (a trailing
/// `/` marks a folder entry and is kept).
pub fn check_entry_name(raw: &[u8], max_depth: usize) -> std::result::Result<String, String> {
    let name = std::str::from_utf8(raw).map_err(|_| "the name is not valid UTF-8".to_owned())?;
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.contains('\\') {
        return Err("the name contains a backslash (a Windows path separator)".into());
    }
    if name.starts_with('/') {
        return Err("absolute path".into());
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Err("the name starts with a drive letter".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!("the name contains the control character U+{:04X}", c as u32));
    }
    let body = name.strip_suffix('/').unwrap_or(name);
    let segments: Vec<&str> = body.split('/').collect();
    if segments.contains(&"..") {
        return Err("the path leads outside the archive (`..`)".into());
    }
    if segments.iter().any(|s| s.is_empty() || *s == ".") {
        return Err("the path has an empty or `.` segment".into());
    }
    if segments.len() > max_depth {
        return Err(format!("nested deeper than {max_depth} folders"));
    }
    Ok(name.to_owned())
}

fn show_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect()
}

pub(crate) fn fold(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().collect::<String>().to_lowercase()
}

/// One blueprint to write into a bundle.
pub struct BundleItem<'a> {
    pub path: &'a str,
    pub id: Option<String>,
    pub name: Option<String>,
    pub yaml: &'a [u8],
    pub companion: Option<(String, &'a [u8])>,
}

/// Write a bundle: every blueprint and companion at its library path, then the manifest.
pub fn write_bundle<W: Write + Seek>(
    writer: W,
    items: &[BundleItem<'_>],
    on_item: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<(W, Manifest)> {
    let zerr = |e: zip::result::ZipError| Error::Io { context: "cannot write the bundle".into(), source: e.into() };
    let ioerr = |e: std::io::Error| Error::Io { context: "cannot write the bundle".into(), source: e };
    let mut zw = zip::ZipWriter::new(writer);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o644);
    let mut entries = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        zw.start_file(item.path, opts).map_err(zerr)?;
        zw.write_all(item.yaml).map_err(ioerr)?;
        let mut entry = ManifestEntry {
            path: item.path.to_owned(),
            id: item.id.clone(),
            name: item.name.clone(),
            sha256: crate::store::content_hash(item.yaml),
            size: item.yaml.len() as u64,
            companion: None,
            companion_sha256: None,
        };
        if let Some((cpath, cbytes)) = &item.companion {
            zw.start_file(cpath.as_str(), opts).map_err(zerr)?;
            zw.write_all(cbytes).map_err(ioerr)?;
            entry.companion = Some(cpath.clone());
            entry.companion_sha256 = Some(crate::store::content_hash(cbytes));
        }
        entries.push(entry);
        on_item(n)?;
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        version: MANIFEST_VERSION,
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        generator: Some(format!("Blueprint Vault {}", env!("CARGO_PKG_VERSION"))),
        entries,
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Corrupt(e.to_string()))?;
    zw.start_file(MANIFEST_NAME, opts).map_err(zerr)?;
    zw.write_all(&body).map_err(ioerr)?;
    let w = zw.finish().map_err(zerr)?;
    Ok((w, manifest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_checked() {
        for ok in ["a.yaml", "Blueprints/personal/x.blueprint.yaml", "東京/レポート.yaml", "dir/"] {
            assert!(check_entry_name(ok.as_bytes(), 24).is_ok(), "{ok}");
        }
        for bad in [
            &b"../x.yaml"[..],
            b"a/../../x.yaml",
            b"/etc/x",
            b"C:\\x",
            b"C:x",
            b"a\\b.yaml",
            b"a//b.yaml",
            b"./a.yaml",
            b"a\0b",
            b"\xff\xfe.yaml",
            b"",
        ] {
            assert!(check_entry_name(bad, 24).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = vec!["d"; 30].join("/") + "/x.yaml";
        assert!(check_entry_name(deep.as_bytes(), 24).is_err());
    }
}
