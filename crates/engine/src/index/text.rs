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

use unicode_normalization::{IsNormalized, UnicodeNormalization};

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
    // Most text is NFC already (the quick check settles it without composing), and
    // most of it has no unspaced script: then it goes to the tokenizer as it is.
    let nfc: Cow<'_, str> = if unicode_normalization::is_nfc_quick(text.chars()) == IsNormalized::Yes {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfc().collect())
    };
    if !nfc.chars().any(|c| c == ZWSP || is_unspaced(c)) {
        return nfc;
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

/// A user's query, ready to run: the FTS5 MATCH expression and the phrases the
/// highlighter looks for.
#[derive(Debug)]
pub(crate) struct ParsedQuery {
    pub(crate) expr: String,
    /// The phrase (by its position in `expr`) matched as a prefix, if any.
    pub(crate) prefix_phrase: Option<usize>,
    phrases: Vec<QueryPhrase>,
}

#[derive(Debug)]
struct QueryPhrase {
    /// Folded tokens, as [`tokenize`] produces them.
    tokens: Vec<String>,
    /// The last token also matches as a prefix.
    prefix: bool,
}

/// Parse a user's query, or `None` when it has no searchable token.
///
/// Every term becomes one double-quoted FTS5 string (embedded quotes doubled), so no
/// FTS5 syntax in the input (`AND`, `OR`, `NOT`, `NEAR`, `*`, `^`, `:`, parentheses,
/// quotes) is ever interpreted: the tokenizer splits each string into tokens that must
/// appear consecutively (a phrase). Terms are ANDed. The last term, when it is a bare
/// word (or a phrase still being typed) and the query does not end with whitespace, is
/// also matched as a prefix — except when it ends in an unspaced-script character,
/// which is a whole token already.
pub(crate) fn parse_query(query: &str) -> Option<ParsedQuery> {
    let ends_with_space = query.ends_with(char::is_whitespace);
    let all = terms(query);
    let last = all.len().checked_sub(1);
    let mut parts = Vec::new();
    let mut phrases = Vec::new();
    let mut prefix_phrase = None;
    for (i, term) in all.iter().enumerate() {
        if !has_token_char(term.text) {
            continue;
        }
        let prepared = prepare(term.text);
        let prefix = Some(i) == last
            && !ends_with_space
            && (!term.quoted || !term.closed)
            && term.text.chars().rev().find(|c| is_token_char(*c)).is_some_and(|c| !is_unspaced(c));
        let mut part = String::with_capacity(prepared.len() + 4);
        part.push('"');
        part.push_str(&prepared.replace('"', "\"\""));
        part.push('"');
        if prefix {
            part.push_str(" *");
            prefix_phrase = Some(parts.len());
        }
        parts.push(part);
        let tokens: Vec<String> = tokenize(&prepared).into_iter().map(|t| t.text).collect();
        if !tokens.is_empty() {
            phrases.push(QueryPhrase { tokens, prefix });
        }
    }
    if parts.is_empty() { None } else { Some(ParsedQuery { expr: parts.join(" AND "), prefix_phrase, phrases }) }
}

#[cfg(test)]
pub(crate) fn match_expression(query: &str) -> Option<String> {
    parse_query(query).map(|q| q.expr)
}

/// A snippet as users see it: markers removed, adjacent highlights merged, on one line.
pub(crate) fn clean_snippet(raw: &str) -> String {
    let mut s: String =
        raw.chars().filter(|c| *c != ZWSP).map(|c| if c == '\n' || c == '\r' || c == '\t' { ' ' } else { c }).collect();
    while s.contains("</mark><mark>") {
        s = s.replace("</mark><mark>", "");
    }
    s.trim().to_owned()
}

// ---------------------------------------------------------------------------------------
// Snippets
// ---------------------------------------------------------------------------------------
//
// Snippets are made here rather than with FTS5's snippet(): that would need the MATCH
// expression evaluated again for every hit, which for a prefix of a common word (the
// first keystrokes of a search) means merging thousands of doclists each time. The
// tokenizer below mirrors unicode61 closely enough for highlighting (same token
// characters, case folding, diacritics removed, unspaced-script characters one token
// each); its folding is applied to the query and the text alike.

/// Tokens in a snippet excerpt.
pub(crate) const SNIPPET_TOKENS: usize = 12;

#[derive(Debug)]
struct Token {
    start: usize,
    end: usize,
    text: String,
}

fn push_folded(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    for l in c.to_lowercase() {
        for d in std::iter::once(l).nfd() {
            if !is_combining_mark(d) {
                out.push(d);
            }
        }
    }
}

fn tokenize(text: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut current: Option<Token> = None;
    for (i, c) in text.char_indices() {
        if is_token_char(c) && !is_unspaced(c) {
            let tok = current.get_or_insert_with(|| Token { start: i, end: i, text: String::new() });
            push_folded(&mut tok.text, c);
            tok.end = i + c.len_utf8();
            continue;
        }
        if let Some(tok) = current.take() {
            out.push(tok);
        }
        if is_token_char(c) {
            let mut t = String::new();
            push_folded(&mut t, c);
            out.push(Token { start: i, end: i + c.len_utf8(), text: t });
        }
    }
    if let Some(tok) = current.take() {
        out.push(tok);
    }
    out
}

/// Number of tokens in a text, as [`tokenize`] (and, closely, unicode61) counts them.
pub(crate) fn count_tokens(text: &str) -> usize {
    let mut n = 0;
    let mut in_token = false;
    for c in text.chars() {
        if is_token_char(c) {
            if !in_token || is_unspaced(c) {
                n += 1;
            }
            in_token = !is_unspaced(c);
        } else {
            in_token = false;
        }
    }
    n
}

/// A phrase found in a text: tokens `[start, end)`, phrase number.
#[derive(Clone, Copy, Debug)]
struct Hit {
    start: usize,
    end: usize,
    phrase: usize,
}

fn find_hits(tokens: &[Token], phrases: &[QueryPhrase]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (p, phrase) in phrases.iter().enumerate() {
        let len = phrase.tokens.len();
        if len == 0 || len > tokens.len() {
            continue;
        }
        for i in 0..=tokens.len() - len {
            let all = phrase.tokens.iter().enumerate().all(|(j, want)| {
                let have = &tokens[i + j].text;
                if phrase.prefix && j + 1 == len { have.starts_with(want.as_str()) } else { have == want }
            });
            if all {
                hits.push(Hit { start: i, end: i + len, phrase: p });
            }
        }
    }
    hits.sort_by_key(|h| (h.start, h.end));
    hits
}

/// The best window of [`SNIPPET_TOKENS`] tokens: (score, first token). The score counts
/// distinct phrases (most), then hits.
fn best_window(n_tokens: usize, hits: &[Hit]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    for first in hits {
        let limit = first.start + SNIPPET_TOKENS;
        let inside: Vec<&Hit> = hits.iter().filter(|h| h.start >= first.start && h.end <= limit).collect();
        let mut phrases: Vec<usize> = inside.iter().map(|h| h.phrase).collect();
        phrases.sort_unstable();
        phrases.dedup();
        let score = phrases.len() * 1000 + inside.len();
        // Centre the hits in the window.
        let last_end = inside.iter().map(|h| h.end).max().unwrap_or(first.end);
        let spare = SNIPPET_TOKENS.saturating_sub(last_end - first.start);
        let start = first.start.saturating_sub(spare / 2).min(n_tokens.saturating_sub(SNIPPET_TOKENS));
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, start));
        }
    }
    best
}

fn render(text: &str, tokens: &[Token], start: usize, hits: &[Hit]) -> String {
    let end = (start + SNIPPET_TOKENS).min(tokens.len());
    let (from, to) = match (tokens.get(start), tokens.get(end.wrapping_sub(1))) {
        (Some(a), Some(b)) if end > start => {
            (if start == 0 { 0 } else { a.start }, if end == tokens.len() { text.len() } else { b.end })
        }
        _ => (0, text.len()),
    };
    // Byte ranges to mark, clipped to the window, merged.
    let mut ranges: Vec<(usize, usize)> = hits
        .iter()
        .filter(|h| h.end > start && h.start < end)
        .filter_map(|h| {
            let a = tokens.get(h.start.max(start))?;
            let b = tokens.get(h.end.min(end) - 1)?;
            Some((a.start, b.end))
        })
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.0 <= last.1 => last.1 = last.1.max(r.1),
            _ => merged.push(r),
        }
    }
    let mut out = String::with_capacity(to - from + 40);
    if from > 0 {
        out.push('…');
    }
    let mut at = from;
    for (a, b) in merged {
        if let (Some(before), Some(marked)) = (text.get(at..a), text.get(a..b)) {
            out.push_str(before);
            out.push_str("<mark>");
            out.push_str(marked);
            out.push_str("</mark>");
            at = b;
        }
    }
    out.push_str(text.get(at..to).unwrap_or(""));
    if to < text.len() {
        out.push('…');
    }
    clean_snippet(&out)
}

impl ParsedQuery {
    /// A short excerpt of the best-matching column with the matched words marked, or
    /// the start of the first non-empty column (by `fallback_order`) when nothing can be
    /// highlighted. `columns` are the texts as indexed (prepared).
    pub(crate) fn snippet(&self, columns: &[&str], fallback_order: &[usize]) -> Option<String> {
        struct Best {
            score: usize,
            column: usize,
            start: usize,
            tokens: Vec<Token>,
            hits: Vec<Hit>,
        }
        let mut best: Option<Best> = None;
        for (column, text) in columns.iter().enumerate() {
            if text.is_empty() {
                continue;
            }
            let tokens = tokenize(text);
            let hits = find_hits(&tokens, &self.phrases);
            if let Some((score, start)) = best_window(tokens.len(), &hits)
                && best.as_ref().is_none_or(|b| score > b.score)
            {
                best = Some(Best { score, column, start, tokens, hits });
            }
        }
        if let Some(b) = best {
            return Some(render(columns.get(b.column).copied().unwrap_or(""), &b.tokens, b.start, &b.hits));
        }
        let text = fallback_order.iter().filter_map(|&c| columns.get(c)).find(|t| !t.trim().is_empty())?;
        let tokens = tokenize(text);
        let s = render(text, &tokens, 0, &[]);
        if s.is_empty() { None } else { Some(s) }
    }
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

    fn snip(query: &str, columns: &[&str]) -> Option<String> {
        let prepared: Vec<String> = columns.iter().map(|c| prepare(c).into_owned()).collect();
        let refs: Vec<&str> = prepared.iter().map(String::as_str).collect();
        parse_query(query).unwrap().snippet(&refs, &[2, 0])
    }

    #[test]
    fn snippets_mark_matches_in_the_best_column() {
        let cols = ["Daily sales digest", "crm, slack", "Summarise the CRM deals of yesterday", "Ann", ""];
        assert_eq!(snip("dig", &cols).unwrap(), "Daily sales <mark>digest</mark>");
        assert_eq!(snip("\"daily sales\"", &cols).unwrap(), "<mark>Daily sales</mark> digest");
        assert_eq!(snip("daily sales", &cols).unwrap(), "<mark>Daily</mark> <mark>sales</mark> digest");
        // The column with most distinct phrases wins.
        assert_eq!(
            snip("crm yesterday", &cols).unwrap(),
            "Summarise the <mark>CRM</mark> deals of <mark>yesterday</mark>"
        );
        assert_eq!(snip("slack ", &cols).unwrap(), "crm, <mark>slack</mark>");
        // Diacritics and case fold both ways.
        assert_eq!(snip("cafe", &["Café menu", "", "", "", ""]).unwrap(), "<mark>Café</mark> menu");
        assert_eq!(snip("CAFÉ", &["cafe menu", "", "", "", ""]).unwrap(), "<mark>cafe</mark> menu");
        // Unspaced scripts: substrings, one highlight per run.
        assert_eq!(snip("京タ", &["東京タワー監視", "", "", "", ""]).unwrap(), "東<mark>京タ</mark>ワー監視");
        assert_eq!(
            snip("東京 監視", &["東京タワー監視", "", "", "", ""]).unwrap(),
            "<mark>東京</mark>タワー<mark>監視</mark>"
        );
        assert_eq!(snip("東京tow", &["東京tower の監視", "", "", "", ""]).unwrap(), "<mark>東京tower</mark> の監視");
        // Nothing to highlight: the start of the description, else the name.
        assert_eq!(snip("zzz", &cols).unwrap(), "Summarise the CRM deals of yesterday");
        assert_eq!(snip("zzz", &["Name only", "", "", "", ""]).unwrap(), "Name only");
        assert_eq!(snip("zzz", &["", "", "", "", ""]), None);
    }

    #[test]
    fn snippets_are_excerpts() {
        let long = format!("{} needle {}", "word ".repeat(50), "more ".repeat(50));
        let s = snip("needle", &["n", "", "", "", &long]).unwrap();
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("<mark>needle</mark>"), "{s}");
        assert_eq!(s.matches("word").count() + s.matches("more").count(), SNIPPET_TOKENS - 1, "{s}");
        // At the start of the text: no leading ellipsis.
        let s = snip("first", &["n", "", &format!("first {}", "x ".repeat(40)), "", ""]).unwrap();
        assert!(s.starts_with("<mark>first</mark>") && s.ends_with('…'), "{s}");
        // Newlines become spaces.
        assert_eq!(snip("b", &["n", "", "a\nb\nc", "", ""]).unwrap(), "a <mark>b</mark> c");
    }

    #[test]
    fn token_counts() {
        assert_eq!(count_tokens("Daily sales digest"), 3);
        assert_eq!(count_tokens("sales-digest (v2)"), 3);
        assert_eq!(count_tokens(&prepare("東京タワー監視 x")), 8);
        assert_eq!(count_tokens(" -- "), 0);
    }

    #[test]
    fn snippets_are_cleaned() {
        assert_eq!(clean_snippet("<mark>東</mark>\u{200B}<mark>京</mark>\u{200B}タ\nx"), "<mark>東京</mark>タ x");
    }
}
