//! The logic of the cargo-fuzz targets in `fuzz/` (a separate cargo project), kept here
//! so the same checks also run on stable as property tests (`tests/transfer.rs`).
//! Each function takes arbitrary bytes and panics only when an invariant breaks.

use std::io::Cursor;

use super::Limits;
use super::bundle::{self, check_entry_name};

/// Limits small enough that fuzzed archives reach them.
pub fn small_limits() -> Limits {
    Limits {
        max_entry_bytes: 64 * 1024,
        max_total_bytes: 256 * 1024,
        max_entries: 64,
        max_ratio: 50,
        max_depth: 8,
        max_archive_bytes: 1 << 20,
    }
}

/// The bundle reader on arbitrary bytes: never panics, and whatever it accepts is safe
/// (checked names, no `..`, nothing absolute, within the limits).
pub fn bundle_reader(data: &[u8]) {
    let limits = small_limits();
    let mut budget = limits.max_total_bytes;
    let Ok(contents) = bundle::read_bundle(Cursor::new(data), &limits, &mut budget, &None) else { return };
    let mut total = 0u64;
    for e in &contents.entries {
        assert!(check_entry_name(e.name.as_bytes(), limits.max_depth).is_ok(), "unsafe name accepted: {:?}", e.name);
        assert!(!e.name.starts_with('/') && !e.name.contains('\\'), "{:?}", e.name);
        assert!(e.name.split('/').all(|s| s != ".." && s != "." && !s.is_empty()), "{:?}", e.name);
        assert!(e.data.len() as u64 <= limits.max_entry_bytes);
        total += e.data.len() as u64;
    }
    assert!(total <= limits.max_total_bytes);
    assert!(budget + total <= limits.max_total_bytes);
    // Pairing and manifest handling never panic either.
    let found = super::source::candidates_from_bundle("fuzz.zip", contents);
    for c in &found.candidates {
        assert!(check_entry_name(c.rel.as_bytes(), limits.max_depth).is_ok());
    }
}

/// Import parsing on arbitrary bytes: JSON conversion, blueprint validation, companion
/// parsing, entry-name checks and the secret scan never panic; converted JSON is valid
/// YAML that the blueprint reader accepts whenever the JSON had a usable `name` only.
pub fn import_parse(data: &[u8]) {
    let _ = crate::blueprint::analyse(data);
    let _ = crate::blueprint::parse_companion(data);
    let _ = check_entry_name(data, 8);
    let text = String::from_utf8_lossy(data);
    let _ = super::secrets::scan("fuzz", &text, &text);
    if let Ok(yaml) = super::jsonyaml::json_to_yaml(data) {
        let analysis = crate::blueprint::analyse(&yaml);
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(data)
            && map.len() == 1
            && let Some(serde_json::Value::String(name)) = map.get("name")
            && !name.trim().is_empty()
        {
            assert!(analysis.error.is_none(), "{:?} from {:?}", analysis.error, String::from_utf8_lossy(&yaml));
            assert_eq!(
                analysis.fields.name.as_deref().map(str::trim),
                Some(name.trim()),
                "{}",
                String::from_utf8_lossy(&yaml)
            );
        }
    }
}
