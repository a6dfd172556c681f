//! JSON blueprints become equivalent YAML documents on import (the library stores
//! YAML). Block style, keys in their JSON order; strings are written plain when that
//! cannot change their meaning, otherwise double-quoted with JSON escapes (which are
//! valid YAML escapes).

use serde_json::Value;

use crate::blueprint::MAX_YAML_DEPTH;

/// Parse a JSON blueprint and write it as YAML. Errors name the line and column.
pub fn json_to_yaml(bytes: &[u8]) -> Result<Vec<u8>, crate::blueprint::ParseError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let value: Value = serde_json::from_slice(bytes).map_err(|e| crate::blueprint::ParseError {
        message: format!("invalid JSON: {e}"),
        line: u32::try_from(e.line()).ok().filter(|l| *l > 0),
        column: u32::try_from(e.column()).ok().filter(|c| *c > 0),
    })?;
    if !value.is_object() {
        return Err(crate::blueprint::ParseError {
            message: "a JSON blueprint must be an object with at least a `name`".into(),
            line: Some(1),
            column: None,
        });
    }
    if depth(&value) > MAX_YAML_DEPTH {
        return Err(crate::blueprint::ParseError {
            message: format!("the JSON is nested deeper than {MAX_YAML_DEPTH} levels"),
            line: None,
            column: None,
        });
    }
    let mut out = String::new();
    emit_block(&value, 0, &mut out);
    Ok(out.into_bytes())
}

fn depth(v: &Value) -> usize {
    // Iterative, so hostile nesting cannot overflow the stack.
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes a mapping or sequence as block lines at `indent`; scalars on their own line.
fn emit_block(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, val) in map {
                pad(out, indent);
                out.push_str(&scalar_str(k));
                out.push(':');
                emit_after_key(val, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                pad(out, indent);
                out.push('-');
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // First key on the dash line, the rest aligned under it.
                        let mut first = true;
                        for (k, val) in m {
                            if first {
                                out.push(' ');
                                first = false;
                            } else {
                                pad(out, indent + 2);
                            }
                            out.push_str(&scalar_str(k));
                            out.push(':');
                            emit_after_key(val, indent + 2, out);
                        }
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        emit_block(item, indent + 2, out);
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&inline(other));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            pad(out, indent);
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn emit_after_key(val: &Value, indent: usize, out: &mut String) {
    match val {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_block(val, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_block(val, indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_str(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string as a YAML scalar that reads back as exactly this string.
fn scalar_str(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_owned()
    } else {
        // JSON string escapes are valid in YAML double-quoted scalars.
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
    }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else { return false };
    if !(first.is_ascii_alphabetic() || first == '_') {
        return false;
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' ' | '.' | '/')) {
        return false;
    }
    if s.ends_with(' ') {
        return false;
    }
    // Words YAML would read as something other than a string.
    let lower = s.to_ascii_lowercase();
    !matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | ".nan" | "inf" | ".inf"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_a_json_blueprint_to_equivalent_valid_yaml() {
        let json = br#"{"name": "Daily: digest", "id": "bp-1", "tags": ["crm", "true", "1.5"], "empty": [], "o": {},
            "nodes": [{"id": "a", "type": "http", "parameters": {"url": "https://x.test/a?b=1", "n": 3, "nested": [[1, 2], {"k": null}],
            "text": "line1\nline2 \"q\" #no"}}, {"id": "b", "type": "post"}],
            "edges": [{"from": "a", "to": "b"}]}"#;
        let yaml = json_to_yaml(json).unwrap();
        let analysis =
            crate::blueprint::validate(&yaml).unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&yaml)));
        assert_eq!(analysis.fields.name.as_deref(), Some("Daily: digest"));
        assert_eq!(analysis.fields.tags, vec!["crm", "true", "1.5"]);
        assert_eq!(analysis.nodes.len(), 2);
        assert_eq!(analysis.edges.len(), 1);
        assert!(analysis.content_text.contains("line1\nline2 \"q\" #no"));
        assert!(analysis.content_text.contains("https://x.test/a?b=1"));
    }

    #[test]
    fn refuses_non_objects_and_bad_json_with_a_line() {
        assert!(json_to_yaml(b"[1,2]").is_err());
        let e = json_to_yaml(b"{\n\"name\": \n}").unwrap_err();
        assert_eq!(e.line, Some(3));
        let deep = format!("{{\"name\":\"x\",\"a\":{}1{}}}", "[".repeat(300), "]".repeat(300));
        assert!(json_to_yaml(deep.as_bytes()).is_err());
    }
}
