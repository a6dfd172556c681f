//! A tiny YAML emitter for the generator: block mappings and lists, plain scalars where
//! they are unambiguous, block literals for multi-line text, double quotes otherwise.

use std::fmt::Write;

#[derive(Clone, Debug)]
pub enum Y {
    Str(String),
    /// Multi-line text, written as a `|` block literal.
    Block(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Written verbatim (e.g. a flow mapping `{x: 1, y: 2}`).
    Raw(String),
    Map(Vec<(String, Y)>),
    List(Vec<Y>),
}

impl Y {
    pub fn s(v: impl Into<String>) -> Y {
        Y::Str(v.into())
    }
    pub fn map(entries: Vec<(&str, Y)>) -> Y {
        Y::Map(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

/// Emit a top-level mapping.
pub fn emit_doc(entries: &[(String, Y)]) -> String {
    let mut out = String::with_capacity(4096);
    emit_map(&mut out, entries, 0);
    out
}

fn emit_map(out: &mut String, entries: &[(String, Y)], indent: usize) {
    for (i, (k, v)) in entries.iter().enumerate() {
        // The first entry of a list item's mapping is written right after "- ".
        if !(i == 0 && out.ends_with("- ")) {
            pad(out, indent);
        }
        out.push_str(&key(k));
        out.push(':');
        emit_value_after_key(out, v, indent);
    }
}

fn emit_value_after_key(out: &mut String, v: &Y, indent: usize) {
    match v {
        Y::Map(m) if m.is_empty() => out.push_str(" {}\n"),
        Y::List(l) if l.is_empty() => out.push_str(" []\n"),
        Y::Map(m) => {
            out.push('\n');
            emit_map(out, m, indent + 2);
        }
        Y::List(l) => {
            out.push('\n');
            emit_list(out, l, indent + 2);
        }
        Y::Block(text) => emit_block(out, text, indent + 2),
        scalar => {
            out.push(' ');
            emit_scalar(out, scalar);
            out.push('\n');
        }
    }
}

fn emit_list(out: &mut String, items: &[Y], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push_str("- ");
        match item {
            Y::Map(m) if !m.is_empty() => emit_map(out, m, indent + 2),
            Y::List(l) if !l.is_empty() => {
                out.push('\n');
                emit_list(out, l, indent + 2);
            }
            Y::Block(text) => {
                // "- |" then the block.
                out.truncate(out.len() - 1);
                emit_block(out, text, indent + 2);
            }
            Y::Map(_) => out.push_str("{}\n"),
            Y::List(_) => out.push_str("[]\n"),
            scalar => {
                emit_scalar(out, scalar);
                out.push('\n');
            }
        }
    }
}

fn emit_block(out: &mut String, text: &str, indent: usize) {
    out.push_str(" |\n");
    for line in text.trim_end_matches('\n').split('\n') {
        if line.is_empty() {
            out.push('\n');
        } else {
            pad(out, indent);
            out.push_str(line);
            out.push('\n');
        }
    }
}

fn emit_scalar(out: &mut String, v: &Y) {
    match v {
        Y::Str(s) => out.push_str(&scalar_str(s)),
        Y::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Y::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        Y::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Y::Raw(r) => out.push_str(r),
        _ => unreachable!("not a scalar"),
    }
}

fn pad(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn key(k: &str) -> String {
    if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') && !k.starts_with('-') {
        k.to_owned()
    } else {
        quoted(k)
    }
}

/// A string as a YAML scalar: plain when that is unambiguous, else double-quoted.
pub fn scalar_str(s: &str) -> String {
    if plain_ok(s) { s.to_owned() } else { quoted(s) }
}

pub fn quoted(s: &str) -> String {
    // A JSON string literal is a valid YAML double-quoted scalar.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !first.is_alphabetic() {
        return false;
    }
    if s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") {
        return false;
    }
    if s.chars().any(|c| c.is_control() || c == '"' || c == '\\' || c == '\u{feff}') {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    !matches!(lower.as_str(), "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "nan" | "inf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emits_nested_structures() {
        let doc = vec![
            ("name".to_owned(), Y::s("Daily: digest")),
            ("tags".to_owned(), Y::List(vec![Y::s("a"), Y::s("b")])),
            (
                "nodes".to_owned(),
                Y::List(vec![Y::map(vec![
                    ("id", Y::s("n1")),
                    ("position", Y::Raw("{x: 1, y: 2}".into())),
                    ("parameters", Y::map(vec![("prompt", Y::Block("line one\nline two".into()))])),
                ])]),
            ),
        ];
        let text = emit_doc(&doc);
        assert_eq!(
            text,
            "name: \"Daily: digest\"\ntags:\n  - a\n  - b\nnodes:\n  - id: n1\n    position: {x: 1, y: 2}\n    parameters:\n      prompt: |\n        line one\n        line two\n"
        );
    }
}
