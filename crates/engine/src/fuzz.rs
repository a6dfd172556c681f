//! The checks behind the cargo-fuzz targets `key_new`, `blueprint_parse`,
//! `companion_parse` and `backup_manifest` (`fuzz/`, nightly), kept here so the same
//! checks run on stable as property tests (`tests/fuzz_props.rs`). Each takes arbitrary
//! bytes and panics only when an invariant breaks.

use unicode_normalization::is_nfc;

use crate::blueprint;
use crate::key::{Key, MAX_DEPTH, MAX_KEY_BYTES, MAX_SEGMENT_BYTES};

/// Key validation: whatever `Key::new` accepts stays inside the library on every OS
/// (relative, no `.`/`..`, no separators or control characters, within the limits),
/// is NFC, and is accepted again unchanged.
pub fn key_new(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let Ok(key) = Key::new(&raw) else { return };
    let k = key.as_str();
    assert!(!k.is_empty() && k.len() <= MAX_KEY_BYTES, "{k:?}");
    assert!(is_nfc(k), "not NFC: {k:?}");
    assert!(!k.starts_with('/') && !k.contains('\\') && !k.contains('\0'), "{k:?}");
    assert!(k.split('/').count() <= MAX_DEPTH, "{k:?}");
    for seg in k.split('/') {
        assert!(!seg.is_empty() && seg != "." && seg != ".." && !seg.starts_with('.'), "{k:?}");
        assert!(seg.len() <= MAX_SEGMENT_BYTES, "{k:?}");
        assert!(!seg.chars().any(char::is_control), "{k:?}");
    }
    let again = Key::new(k).unwrap_or_else(|e| panic!("{k:?} accepted once, then refused: {e}"));
    assert_eq!(again.as_str(), k);
    // The path it names is below any root.
    let joined = std::path::Path::new("/lib").join(k);
    assert!(joined.starts_with("/lib") && joined.components().count() == k.split('/').count() + 2, "{k:?}");
}

/// Blueprint parsing: `analyse` never panics or reports an internal error, and agrees
/// with `validate`; a valid blueprint has a name and re-analyses identically.
pub fn blueprint_parse(data: &[u8]) {
    let analysis = blueprint::analyse(data);
    if let Some(e) = &analysis.error {
        // The reader's own failure (a panic caught), not a message quoting the input (which
        // may well say "internal error": a fuzzer found that one).
        assert_ne!(e.message, blueprint::INTERNAL_ERROR, "internal error on {:?}", String::from_utf8_lossy(data));
    }
    let valid = blueprint::validate(data);
    assert_eq!(valid.is_ok(), analysis.error.is_none());
    if let Ok(a) = valid {
        assert!(a.fields.name.as_deref().is_some_and(|n| !n.trim().is_empty()), "valid without a name");
        let node_ids: Vec<&str> = a.nodes.iter().map(|n| n.id.as_str()).collect();
        let mut unique = node_ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), node_ids.len(), "duplicate node ids accepted");
        for e in &a.edges {
            assert!(node_ids.contains(&e.from.as_str()) && node_ids.contains(&e.to.as_str()), "dangling edge");
        }
    }
}

/// Companion metadata parsing: never panics; what parses is written back and parsed
/// again to the same value (unknown fields kept).
pub fn companion_parse(data: &[u8]) {
    let Ok(c) = blueprint::parse_companion(data) else { return };
    let json = blueprint::companion_to_json(&c);
    let again = blueprint::parse_companion(&json).unwrap_or_else(|e| panic!("written companion refused: {e:?}"));
    assert_eq!(again, c);
}

/// The backup manifest reader: never panics on any bytes; a manifest it accepts with a
/// good checksum names the snapshot it was read as.
pub fn backup_manifest(data: &[u8]) {
    let id = "20261123T151526263Z-0f4089"; // the seed manifest's snapshot
    if let Ok((m, checksum_ok)) = crate::backup::parse_manifest(id, data) {
        if checksum_ok {
            assert_eq!(m.id, id);
        }
        // Paths are untrusted (a repository can be edited): restore goes through
        // `safe_rel`, which must only ever yield plain relative paths.
        for e in &m.entries {
            if let Ok(p) = crate::backup::restore::safe_rel(&e.path) {
                let plain = p.components().all(|c| matches!(c, std::path::Component::Normal(_)));
                assert!(plain && p.components().count() > 0, "unsafe path let through: {:?}", e.path);
            }
        }
    }
}
