//! Text handling around FTS5: preparing text for the `unicode61` tokenizer (scripts
//! written without spaces), turning a user's query into a safe MATCH expression, and
//! cleaning snippets.
//!
//! ## Scripts without spaces
//! `unicode61` splits on non-letters only, so "東京タワー監視" would be one token and
//! "東京" would not find it. Before indexing (and the same way in queries) every
//! character of those scripts is surrounded by U+200B ZERO WIDTH SPACE, which the
//! tokenizer treats as a separator: each such character becomes a token of its own and
//! a query "京タ" becomes the phrase "京" "タ", i.e. a substring match. Pre-existing
//! U+200B are replaced by spaces first so that the marker is unambiguous; snippets drop
//! it again.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

pub(crate) const ZWSP: char = '\u{200B}';

/// Characters of scripts that are written without spaces between words: CJK
/// ideographs (and their symbols and punctuation), Hiragana, Katakana (incl. halfwidth),
/// Hangul, Bopomofo, Thai, Lao, Khmer and Myanmar. Separators in these ranges may be
/// included: surrounding a separator with separators changes nothing.
pub(crate) fn is_unspaced(c: char) -> bool {
    matches!(c as u32,
        0x0E00..=0x0EFF        // Thai, Lao
        | 0x1000..=0x109F      // Myanmar
        | 0x1100..=0x11FF      // Hangul Jamo
        | 0x1780..=0x17FF      // Khmer
        | 0x19E0..=0x19FF      // Khmer symbols
        | 0x2E80..=0x2FDF      // CJK radicals, Kangxi radicals
        | 0x3000..=0x30FF      // CJK symbols and punctuation, Hiragana, Katakana
        | 0x3100..=0x31FF      // Bopomofo, Hangul compatibility Jamo, Kanbun, Katakana ext.
        | 0x3200..=0x33FF      // enclosed CJK, CJK compatibility
        | 0x3400..=0x4DBF      // CJK ext. A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xA960..=0xA97F      // Hangul Jamo ext. A
        | 0xA9E0..=0xA9FF      // Myanmar ext. B
        | 0xAA60..=0xAA7F      // Myanmar ext. A
        | 0xAC00..=0xD7FF      // Hangul syllables, Jamo ext. B
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0xFF65..=0xFFDC      // halfwidth Katakana and Hangul
        | 0x1B000..=0x1B16F    // Kana supplement and extensions
        | 0x20000..=0x3134F    // CJK ext. B..G, compatibility supplement
    )
}

/// Text as it is given to the tokenizer (documents and query terms alike): NFC, U+200B
/// replaced by a space, every character of an unspaced script wrapped in U+200B.
pub(crate) fn prepare(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    let nfc: String = text.nfc().collect();
    if !nfc.chars().any(|c| c == ZWSP || is_unspaced(c)) {
        return Cow::Owned(nfc);
    }
    let mut out = String::with_capacity(nfc.len() * 2);
    let mut last_was_marker = true;
    for c in nfc.chars() {
        if c == ZWSP {
            out.push(' ');
            last_was_marker = false;
        } else if is_unspaced(c) {
            if !last_was_marker {
                out.push(ZWSP);
            }
            out.push(c);
            out.push(ZWSP);
            last_was_marker = true;
        } else {
            out.push(c);
            last_was_marker = false;
        }
    }
    Cow::Owned(out)
}

/// Does this text hold anything the tokenizer keeps as (part of) a token? An
/// approximation of `unicode61`'s "L* N* Co" categories, conservative on combining
/// marks (which the tokenizer treats as separators).
fn has_token_char(text: &str) -> bool {
    text.chars().any(is_token_char)
}

fn is_token_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    if is_combining_mark(c) {
        return false;
    }
    c.is_alphanumeric() || matches!(c as u32, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD)
}

/// Combining marks Rust counts as alphabetic but `unicode61` does not keep (the common
/// blocks; a miss only means a term that matches nothing).
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05C7 | 0x0610..=0x061A | 0x064B..=0x065F
        | 0x0670 | 0x06D6..=0x06ED | 0x0900..=0x0903 | 0x093A..=0x094F | 0x0951..=0x0957
        | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E | 0x0EB1 | 0x0EB4..=0x0EBC | 0x0EC8..=0x0ECE
        | 0x102B..=0x103E | 0x1056..=0x1059 | 0x105E..=0x1060 | 0x1062..=0x1064 | 0x1067..=0x106D
        | 0x1071..=0x1074 | 0x1082..=0x108D | 0x108F | 0x109A..=0x109D
        | 0x17B4..=0x17D3 | 0x17DD | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF
        | 0x302A..=0x302F | 0x3099..=0x309A | 0xFE20..=0xFE2F
    )
}

/// One term of a user's query.
#[derive(Debug, PartialEq)]
struct Term<'a> {
    text: &'a str,
    /// Written in double quotes (a phrase).
    quoted: bool,
    /// For a quoted term: its closing quote was there.
    closed: bool,
}

/// Split a query into bare words and quoted phrases. A word ends at whitespace; quotes
/// inside a word are plain characters. An unclosed quote runs to the end of the query.
fn terms(query: &str) -> Vec<Term<'_>> {
    let mut out = Vec::new();
    let mut rest = query;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(after) = rest.strip_prefix('"') {
            match after.find('"') {
                Some(end) => {
                    out.push(Term { text: &after[..end], quoted: true, closed: true });
                    rest = &after[end + 1..];
                }
                None => {
                    out.push(Term { text: after, quoted: true, closed: false });
                    rest = "";
                }
            }
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(Term { text: &rest[..end], quoted: false, closed: true });
            rest = &rest[end..];
        }
    }
    out
}

/// Build the FTS5 MATCH expression for a user's query, or `None` when it has no
/// searchable token.
///
/// Every term becomes one double-quoted FTS5 string (embedded quotes doubled), so no
/// FTS5 syntax in the input (`AND`, `OR`, `NOT`, `NEAR`, `*`, `^`, `:`, parentheses,
/// quotes) is ever interpreted: the tokenizer splits each string into tokens that must
/// appear consecutively (a phrase). Terms are ANDed. The last term, when it is a bare
/// word (or a phrase still being typed) and the query does not end with whitespace, is
/// also matched as a prefix — except when it ends in an unspaced-script character,
/// which is a whole token already.
pub(crate) fn match_expression(query: &str) -> Option<String> {
    let ends_with_space = query.ends_with(char::is_whitespace);
    let all = terms(query);
    let last = all.len().checked_sub(1);
    let mut parts = Vec::new();
    for (i, term) in all.iter().enumerate() {
        if !has_token_char(term.text) {
            continue;
        }
        let prepared = prepare(term.text);
        let prefix = Some(i) == last
            && !ends_with_space
            && (!term.quoted || !term.closed)
            && term
                .text
                .chars()
                .rev()
                .find(|c| is_token_char(*c))
                .is_some_and(|c| !is_unspaced(c));
        let mut part = String::with_capacity(prepared.len() + 4);
        part.push('"');
        part.push_str(&prepared.replace('"', "\"\""));
        part.push('"');
        if prefix {
            part.push_str(" *");
        }
        parts.push(part);
    }
    if parts.is_empty() { None } else { Some(parts.join(" AND ")) }
}

/// A snippet as users see it: markers removed, adjacent highlights merged, on one line.
pub(crate) fn clean_snippet(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .filter(|c| *c != ZWSP)
        .map(|c| if c == '\n' || c == '\r' || c == '\t' { ' ' } else { c })
        .collect();
    while s.contains("</mark><mark>") {
        s = s.replace("</mark><mark>", "");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_wraps_unspaced_scripts_only() {
        assert_eq!(prepare("Daily sales"), "Daily sales");
        assert_eq!(prepare("Café"), "Café");
        assert_eq!(prepare("東京タワー"), "東\u{200B}京\u{200B}タ\u{200B}ワ\u{200B}ー\u{200B}");
        assert_eq!(prepare("a東京b"), "a\u{200B}東\u{200B}京\u{200B}b");
        assert_eq!(prepare("x\u{200B}y"), "x y");
        assert_eq!(prepare("서울"), "서\u{200B}울\u{200B}");
        // NFD Hangul and Latin are composed first.
        assert_eq!(prepare("e\u{301}"), "é");
    }

    #[test]
    fn query_terms() {
        assert_eq!(match_expression("daily sal").as_deref(), Some(r#""daily" AND "sal" *"#));
        assert_eq!(match_expression("daily sal ").as_deref(), Some(r#""daily" AND "sal""#));
        assert_eq!(match_expression(r#""daily sales""#).as_deref(), Some(r#""daily sales""#));
        assert_eq!(match_expression(r#""daily sa"#).as_deref(), Some(r#""daily sa" *"#));
        assert_eq!(match_expression(r#"a"b"#).as_deref(), Some(r#""a""b" *"#));
        assert_eq!(match_expression("NOT OR"), Some(r#""NOT" AND "OR" *"#.to_owned()));
        assert_eq!(match_expression("  * ^ : ( ) \" "), None);
        assert_eq!(match_expression(""), None);
        assert_eq!(match_expression("京タ").as_deref(), Some("\"京\u{200B}タ\u{200B}\""));
        assert_eq!(match_expression("東京tow").as_deref(), Some("\"東\u{200B}京\u{200B}tow\" *"));
    }

    #[test]
    fn snippets_are_cleaned() {
        assert_eq!(
            clean_snippet("<mark>東</mark>\u{200B}<mark>京</mark>\u{200B}タ\nx"),
            "<mark>東京</mark>タ x"
        );
    }
}
