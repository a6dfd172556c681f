//! The checks of the cargo-fuzz targets `key_new`, `blueprint_parse`, `companion_parse`
//! and `backup_manifest` (`bpv_engine::fuzz`) as stable property tests, so a machine
//! without nightly still exercises them, plus every committed seed and every crash the
//! fuzzer found (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) replayed.
//! Run: `cargo test -p bpv-engine --test fuzz_props`.

use std::path::Path;

use bpv_engine::fuzz;
use proptest::prelude::*;

/// Replay every file of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut n = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(rd) = std::fs::read_dir(base.join(kind).join(target)) else { continue };
        for e in rd.flatten() {
            check(&std::fs::read(e.path()).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn seeds_and_regressions_replay() {
    for (target, check) in [
        ("key_new", fuzz::key_new as fn(&[u8])),
        ("blueprint_parse", fuzz::blueprint_parse),
        ("companion_parse", fuzz::companion_parse),
        ("backup_manifest", fuzz::backup_manifest),
    ] {
        assert!(replay(target, check) >= 2, "{target}: no seed corpus");
    }
}

/// Path-like strings: segments from a small alphabet rich in the characters keys refuse.
fn pathish() -> impl Strategy<Value = String> {
    let seg = prop::string::string_regex("[a-zA-Z0-9 ._:<>|?*\\\\\u{0}\u{7f}\u{202e}é\u{301}-]{0,12}").unwrap();
    (prop::collection::vec(seg, 1..6), any::<bool>()).prop_map(|(segs, abs)| {
        let joined = segs.join("/");
        if abs { format!("/{joined}") } else { joined }
    })
}

fn yamlish() -> impl Strategy<Value = String> {
    let line = prop::sample::select(vec![
        "name: Flow",
        "name: ",
        "nodes:",
        "  - id: a",
        "    type: t",
        "  - id: b",
        "    type: u",
        "edges:",
        "  - from: a",
        "    to: b",
        "    to: zz",
        "description: [x",
        "tags: [a, b]",
        "---",
        "  - id: a",
        "\t",
        "&x a",
        "*x",
        "name: !!binary aGk=",
        "version: 2",
        "key: 'unterminated",
    ]);
    prop::collection::vec(line, 0..14).prop_map(|l| l.join("\n"))
}

fn companionish() -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        r#""tags": ["a", "b"]"#,
        r#""tags": "x""#,
        r#""description": "d""#,
        r#""created": "2024-05-01T12:00:00Z""#,
        r#""modified": "yesterday""#,
        r#""public": true"#,
        r#""encrypted": true"#,
        r#""extra": {"k": [1, 2]}"#,
        r#""id": null"#,
        r#""author": 5"#,
        r#""provenance": {"from": "x"}"#,
    ]);
    prop::collection::vec(field, 0..6).prop_map(|f| format!("{{{}}}", f.join(", ")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn key_new_on_paths(s in pathish()) { fuzz::key_new(s.as_bytes()) }

    #[test]
    fn key_new_on_bytes(b in prop::collection::vec(any::<u8>(), 0..64)) { fuzz::key_new(&b) }

    #[test]
    fn blueprint_parse_on_yaml(s in yamlish()) { fuzz::blueprint_parse(s.as_bytes()) }

    #[test]
    fn blueprint_parse_on_bytes(b in prop::collection::vec(any::<u8>(), 0..256)) { fuzz::blueprint_parse(&b) }

    #[test]
    fn companion_parse_on_json(s in companionish()) { fuzz::companion_parse(s.as_bytes()) }

    #[test]
    fn companion_parse_on_bytes(b in prop::collection::vec(any::<u8>(), 0..128)) { fuzz::companion_parse(&b) }

    #[test]
    fn backup_manifest_on_json(paths in prop::collection::vec(pathish(), 0..4), good_id in any::<bool>()) {
        let id = if good_id { "20261123T151526263Z-0f4089" } else { "other" };
        let entries: Vec<String> = paths
            .iter()
            .map(|p| format!(r#"{{"path": {}, "size": 1, "mtime": 0, "mode": 420, "hash": "00"}}"#, serde_json::to_string(p).unwrap()))
            .collect();
        let body = format!(r#"{{"snapshot": {{"format": 1, "id": "{id}", "created": "2026-11-23T15:15:26.263Z", "library": "/l", "started": 1, "files": 1, "bytes": 1, "new_bytes": 1, "entries": [{}]}}, "checksum": "x"}}"#, entries.join(","));
        fuzz::backup_manifest(body.as_bytes())
    }

    #[test]
    fn backup_manifest_on_bytes(b in prop::collection::vec(any::<u8>(), 0..128)) { fuzz::backup_manifest(&b) }
}
