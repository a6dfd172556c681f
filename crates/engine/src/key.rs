//! Validated, normalised storage keys and namespaces.
//!
//! A key is a library-relative path with `/` separators. Every key that reaches a
//! backend went through [`Key::new`], so backends never see `..`, absolute paths,
//! control characters or names that would mean something else on another OS.

use std::fmt;

use unicode_normalization::{UnicodeNormalization, is_nfc};

use crate::error::{Error, Result};

/// Longest key, in bytes (UTF-8, after NFC). Keeps paths well under PATH_MAX
/// once joined to a library root.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest single segment, in bytes: the common file-name limit (ext4, APFS, NTFS).
pub const MAX_SEGMENT_BYTES: usize = 255;
/// Deepest nesting a key may have.
pub const MAX_DEPTH: usize = 32;

const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹",
    "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²",
    "LPT³", "CONIN$", "CONOUT$",
];

/// Characters Windows refuses in file names (plus `\`, which would be a separator there).
const FORBIDDEN_CHARS: &[char] = &['<', '>', ':', '"', '|', '?', '*', '\\'];

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// Validate and normalise (NFC) a key. Refusals say why.
    pub fn new(raw: &str) -> Result<Key> {
        let normalised: String = if is_nfc(raw) { raw.to_owned() } else { raw.nfc().collect() };
        validate_path(&normalised, raw, false)?;
        Ok(Key(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Last segment (the file name).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Everything before the last `/`, or `""` at the top level.
    pub fn parent(&self) -> &str {
        self.0.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
    }

    /// Whether this key lies inside folder `dir` (`dir` itself excluded).
    pub fn is_inside(&self, dir: &str) -> bool {
        let dir = dir.trim_end_matches('/');
        dir.is_empty() || (self.0.len() > dir.len() && self.0.starts_with(dir) && self.0.as_bytes()[dir.len()] == b'/')
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", self.0)
    }
}

impl AsRef<str> for Key {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Validate a list prefix: the empty string (everything), a folder (`a/b/`), or a
/// partial key (`a/b/da`). The same character rules as keys apply, and the result is
/// NFC. Prefixes are always matched literally: `%`, `_` and `*` are plain characters.
pub fn normalise_prefix(raw: &str) -> Result<String> {
    if raw.is_empty() {
        return Ok(String::new());
    }
    let normalised: String = raw.nfc().collect();
    // A trailing '/' means "this folder": validate the folder part as a key.
    let body = normalised.strip_suffix('/').unwrap_or(&normalised);
    validate_path(body, raw, true)?;
    Ok(normalised)
}

fn validate_path(key: &str, raw: &str, partial: bool) -> Result<()> {
    let refuse = |reason: String| Err(Error::invalid_key(raw, reason));
    if key.is_empty() {
        return refuse("a key must not be empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return refuse(format!("longer than {MAX_KEY_BYTES} bytes"));
    }
    if key.starts_with('/') {
        return refuse("absolute paths are not allowed; use a path relative to the library".into());
    }
    let bytes = key.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return refuse("drive letters are not allowed; use a path relative to the library".into());
    }
    let depth = key.split('/').count();
    if depth > MAX_DEPTH {
        return refuse(format!("nested deeper than {MAX_DEPTH} folders"));
    }
    for segment in key.split('/') {
        validate_segment(segment).or_else(&refuse)?;
    }
    let _ = partial;
    Ok(())
}

fn validate_segment(seg: &str) -> std::result::Result<(), String> {
    if seg.is_empty() {
        return Err("empty path segment (`//` or a trailing `/`)".into());
    }
    if seg == "." || seg == ".." {
        return Err(format!("`{seg}` segments are not allowed"));
    }
    if seg.len() > MAX_SEGMENT_BYTES {
        return Err(format!("the name `{}…` is longer than {MAX_SEGMENT_BYTES} bytes", truncate(seg, 24)));
    }
    if seg.starts_with('.') {
        return Err(format!("`{seg}` starts with a dot; hidden names are reserved"));
    }
    for c in seg.chars() {
        if c.is_control() {
            return Err(format!("control character U+{:04X} in `{}`", c as u32, seg.escape_debug()));
        }
        if FORBIDDEN_CHARS.contains(&c) {
            return Err(format!("character `{c}` is not allowed in names (it is reserved on Windows)"));
        }
        if is_bidi_control(c) {
            return Err(format!("invisible direction-changing character U+{:04X} in a name", c as u32));
        }
    }
    if seg.ends_with('.') || seg.ends_with(' ') {
        return Err(format!("`{seg}` ends with a dot or a space, which Windows drops"));
    }
    if seg.starts_with(' ') {
        return Err(format!("`{seg}` starts with a space"));
    }
    let stem = seg.split('.').next().unwrap_or(seg).trim_end();
    if WINDOWS_RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        return Err(format!("`{seg}` is a reserved device name on Windows"));
    }
    Ok(())
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// A namespace: a fixed prefix every key of a view lives under, which the view's
/// callers can neither see nor escape.
///
/// * `Namespace::folder("Blueprints/shared")` → keys `Blueprints/shared/<key>`
/// * `Namespace::prefix("WALLET_")` → keys `WALLET_<key>` (the seeds' app-data style)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    pub fn folder(dir: &str) -> Result<Namespace> {
        let dir = Key::new(dir.trim_end_matches('/'))?;
        Ok(Namespace { prefix: format!("{}/", dir.as_str()) })
    }

    /// A literal key prefix. It must itself be a valid (partial) key.
    pub fn prefix(prefix: &str) -> Result<Namespace> {
        if prefix.is_empty() {
            return Err(Error::invalid_key(prefix, "a namespace prefix must not be empty"));
        }
        let prefix = normalise_prefix(prefix)?;
        Ok(Namespace { prefix })
    }

    pub fn as_str(&self) -> &str {
        &self.prefix
    }

    /// The full key for a key given inside the namespace.
    pub fn wrap(&self, inner: &Key) -> Result<Key> {
        let full = Key::new(&format!("{}{}", self.prefix, inner.as_str()))?;
        // Defence in depth: NFC of the concatenation must keep the prefix intact
        // (a combining mark at the start of `inner` could otherwise merge into it).
        if !full.as_str().starts_with(&self.prefix) {
            return Err(Error::invalid_key(inner.as_str(), "the key would leave its namespace"));
        }
        Ok(full)
    }

    /// The full list prefix for a prefix given inside the namespace.
    pub fn wrap_prefix(&self, inner: &str) -> Result<String> {
        if inner.is_empty() {
            return Ok(self.prefix.clone());
        }
        let inner = normalise_prefix(inner)?;
        let full = format!("{}{}", self.prefix, inner);
        let full = normalise_prefix(&full)?;
        if !full.starts_with(&self.prefix) {
            return Err(Error::invalid_key(inner, "the prefix would leave its namespace"));
        }
        Ok(full)
    }

    /// The key as seen inside the namespace, or `None` if `full` is not in it.
    pub fn strip(&self, full: &Key) -> Option<Key> {
        let rest = full.as_str().strip_prefix(&self.prefix)?;
        Key::new(rest).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_keys() {
        for k in [
            "Blueprints/personal/sales/digest.blueprint.yaml",
            "a",
            "WALLET_main",
            "東京/レポート.blueprint.yaml",
            "with space/x y.blueprint.yaml",
            "100%_done*".trim_end_matches('*'),
        ] {
            assert!(Key::new(k).is_ok(), "{k} should be accepted");
        }
    }

    #[test]
    fn refuses_hostile_keys() {
        let long = "a".repeat(300);
        let deep = vec!["d"; 40].join("/");
        for k in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            "C:/x",
            "c:x",
            "a\\..\\b",
            "a\0b",
            "a\nb",
            "a\u{7f}",
            "a\u{85}b",
            "con",
            "CON.blueprint.yaml",
            "Blueprints/Nul.txt",
            "lpt1",
            "COM¹.yaml",
            "trailing.",
            "trailing ",
            " leading",
            ".hidden",
            "a/.bpv-tmp",
            "what?",
            "a*b",
            "a:b",
            "a|b",
            "a\"b",
            "a<b>",
            "evil\u{202E}gpj.exe",
            long.as_str(),
            deep.as_str(),
        ] {
            let err = Key::new(k).expect_err(&format!("{k:?} should be refused"));
            assert_eq!(err.code(), "invalid_key", "{k:?}");
        }
    }

    #[test]
    fn normalises_to_nfc() {
        let decomposed = "Cafe\u{301}.blueprint.yaml";
        let composed = "Caf\u{e9}.blueprint.yaml";
        assert_eq!(Key::new(decomposed).unwrap(), Key::new(composed).unwrap());
        assert_eq!(Key::new(decomposed).unwrap().as_str(), composed);
    }

    #[test]
    fn namespaces_cannot_be_escaped() {
        let ns = Namespace::folder("Blueprints/shared").unwrap();
        let k = ns.wrap(&Key::new("team/x.blueprint.yaml").unwrap()).unwrap();
        assert_eq!(k.as_str(), "Blueprints/shared/team/x.blueprint.yaml");
        assert!(Key::new("../personal/x").is_err());
        assert_eq!(ns.strip(&k).unwrap().as_str(), "team/x.blueprint.yaml");
        assert!(ns.strip(&Key::new("Blueprints/personal/x").unwrap()).is_none());
        // A sibling folder sharing the textual prefix is not inside.
        assert!(ns.strip(&Key::new("Blueprints/sharedX/y").unwrap()).is_none());
        assert_eq!(ns.wrap_prefix("").unwrap(), "Blueprints/shared/");
        assert_eq!(ns.wrap_prefix("%").unwrap(), "Blueprints/shared/%");
        assert!(ns.wrap_prefix("../").is_err());

        let wallet = Namespace::prefix("WALLET_").unwrap();
        let k = wallet.wrap(&Key::new("main").unwrap()).unwrap();
        assert_eq!(k.as_str(), "WALLET_main");
        assert!(wallet.strip(&Key::new("ACCOUNT_main").unwrap()).is_none());
        // A combining mark cannot glue itself onto the namespace prefix.
        let cafe = Namespace::prefix("cafe").unwrap();
        assert!(cafe.wrap(&Key::new("\u{301}x").unwrap()).is_err());
    }

    #[test]
    fn is_inside_respects_segment_boundaries() {
        let k = Key::new("Blueprints/shared/a.blueprint.yaml").unwrap();
        assert!(k.is_inside("Blueprints"));
        assert!(k.is_inside("Blueprints/shared/"));
        assert!(!k.is_inside("Blue"));
        assert!(k.is_inside(""));
    }
}
