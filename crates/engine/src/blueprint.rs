//! Blueprint format v1 (VISION.md, "Blueprint format v1"): parsing and validation of
//! blueprint YAML files and of their companion metadata (`NAME.blueprint.meta.json`).
//!
//! The YAML is read with the `saphyr-parser` event API into a small tree of our own
//! rather than with `saphyr`'s loaders, because we need, on arbitrary (fuzzed) input:
//! - a 1-based line for every value, so errors can point at it;
//! - duplicate keys reported with the line of the duplicate, without aborting, so that
//!   the rest of the file can still be read;
//! - bounded work: aliases share the anchored subtree (`Rc`) instead of cloning it, and
//!   the *expanded* size (nodes and text bytes) and nesting depth are capped, so an
//!   alias bomb ("billion laughs") is refused before any walk can blow up.
//!
//! Nothing here panics on any input; the parser call itself is additionally wrapped in
//! `catch_unwind` as a last line of defence against a bug in the YAML library.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use saphyr::{ScalarOwned, ScalarStyle, Tag};
use saphyr_parser::{Event, Parser, ScanError, Span};

/// Largest blueprint (and companion) file we read.
pub const MAX_BLUEPRINT_BYTES: usize = 16 * 1024 * 1024;
/// Most YAML nodes a file may hold, counting every node an alias expands to.
pub const MAX_YAML_NODES: usize = 1_000_000;
/// Deepest nesting of sequences and mappings, counting what aliases expand to.
pub const MAX_YAML_DEPTH: usize = 128;
/// Most scalar text (bytes) a file may expand to through aliases.
pub const MAX_EXPANDED_BYTES: usize = 4 * MAX_BLUEPRINT_BYTES;

const UTF8_BOM: &str = "\u{feff}";
pub(crate) const INTERNAL_ERROR: &str = "the YAML reader failed on this file (internal error); please report it";

// ---------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------

/// Why a blueprint or companion file is invalid, with the 1-based line (and column) of
/// the offending value when known.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub message: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

impl ParseError {
    fn new(message: impl Into<String>) -> Self {
        ParseError { message: message.into(), line: None, column: None }
    }

    fn at(message: impl Into<String>, pos: Pos) -> Self {
        ParseError { message: message.into(), line: Some(pos.line), column: Some(pos.col) }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// Best-effort top-level fields, also filled for invalid files.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields {
    pub name: Option<String>,
    pub id: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub tags: Vec<String>,
    pub author: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: String,
    pub node_type: String,
    pub position: Option<(f64, f64)>,
    /// The node's `label` (else `name`) string, if it has one.
    pub label: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub fields: Fields,
    /// The well-formed nodes (string `id` and `type`, id not already used), in order.
    pub nodes: Vec<Node>,
    /// The well-formed edges (both ends strings naming existing nodes), in order.
    pub edges: Vec<Edge>,
    /// Every string a user could remember besides the top-level fields: node ids and
    /// types, node labels, and every string value inside each node's `parameters` at any
    /// depth (values only, not keys), joined with '\n'. Used for full-text search.
    pub content_text: String,
    /// None when the file is a valid v1 blueprint.
    pub error: Option<ParseError>,
}

/// Reads a blueprint. Never fails: invalid input yields an `Analysis` with `error` set
/// (the first problem in file order) and whatever fields could be read.
pub fn analyse(bytes: &[u8]) -> Analysis {
    let mut analysis = Analysis::default();
    let text = match decode(bytes) {
        Ok(text) => text,
        Err(e) => {
            analysis.error = Some(e);
            return analysis;
        }
    };
    let built = match std::panic::catch_unwind(|| build_tree(text)) {
        Ok(built) => built,
        Err(_) => {
            analysis.error = Some(ParseError::new(INTERNAL_ERROR));
            return analysis;
        }
    };
    let mut errors = built.soft_errors;
    match &built.root {
        Some(root) => check_root(root, &mut analysis, &mut errors),
        None if built.fatal.is_none() => errors.push(empty_error()),
        None => {}
    }
    // A fatal error (syntax, limits, a second document) wins: it explains why the rest
    // may be missing. Otherwise report the first problem in file order.
    analysis.error = built.fatal.or_else(|| first_error(errors));
    analysis
}

/// Strict form of [`analyse`]: Ok only for a valid blueprint.
pub fn validate(bytes: &[u8]) -> Result<Analysis, ParseError> {
    let mut analysis = analyse(bytes);
    match analysis.error.take() {
        Some(e) => Err(e),
        None => Ok(analysis),
    }
}

/// Companion metadata (`NAME.blueprint.meta.json`). Unknown fields are kept in `extra`
/// and written back.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Companion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<serde_json::Value>,
    /// Unknown fields, kept as they were.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Parses companion metadata. Errors carry the line (and column) serde_json reports.
pub fn parse_companion(bytes: &[u8]) -> Result<Companion, ParseError> {
    if bytes.len() > MAX_BLUEPRINT_BYTES {
        return Err(too_large(bytes.len()));
    }
    let bytes = bytes.strip_prefix(UTF8_BOM.as_bytes()).unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::new("the companion metadata file is empty (expected a JSON object)"));
    }
    let companion: Companion = serde_json::from_slice(bytes).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let message = full.strip_suffix(&suffix).unwrap_or(&full);
        let message = format!("invalid companion metadata JSON: {message}");
        match (e.line(), e.column()) {
            (0, _) => ParseError::new(message),
            (line, column) => ParseError {
                message,
                line: Some(u32::try_from(line).unwrap_or(u32::MAX)),
                column: u32::try_from(column).ok().filter(|c| *c > 0),
            },
        }
    })?;
    for (field, value) in [("created", &companion.created), ("modified", &companion.modified)] {
        if let Some(value) = value
            && chrono::DateTime::parse_from_rfc3339(value).is_err()
        {
            let mut err = ParseError::new(format!(
                "companion metadata `{field}` must be an RFC 3339 date-time like \
                 \"2024-05-01T12:00:00Z\", found {:?}",
                truncate(value)
            ));
            err.line = json_key_line(bytes, field);
            return Err(err);
        }
    }
    Ok(companion)
}

/// Companion metadata as pretty JSON with a trailing newline.
pub fn companion_to_json(c: &Companion) -> Vec<u8> {
    // Serializing this type cannot fail (all map keys are strings); fall back to an
    // empty object rather than panic if it ever did.
    let mut out = serde_json::to_vec_pretty(c).unwrap_or_else(|_| b"{}".to_vec());
    out.push(b'\n');
    out
}

/// Fields used for indexing: tags from the YAML then the companion, deduplicated (exact
/// string match after trim), order kept; description, author and id: the companion's
/// value overrides the YAML's only when the companion has one (description edits are
/// written to the companion so the user's YAML formatting is never rewritten). A
/// companion value that is blank clears the field.
pub fn merged_fields(analysis: &Fields, companion: Option<&Companion>) -> Fields {
    let mut fields = analysis.clone();
    let mut tags = Vec::new();
    let mut seen = HashSet::new();
    let companion_tags = companion.map(|c| c.tags.as_slice()).unwrap_or_default();
    for tag in analysis.tags.iter().chain(companion_tags) {
        let tag = tag.trim();
        if !tag.is_empty() && seen.insert(tag) {
            tags.push(tag.to_owned());
        }
    }
    fields.tags = tags;
    if let Some(c) = companion {
        let over = |yaml: &mut Option<String>, comp: &Option<String>| {
            if let Some(v) = comp {
                *yaml = non_blank(v);
            }
        };
        over(&mut fields.id, &c.id);
        over(&mut fields.description, &c.description);
        over(&mut fields.author, &c.author);
    }
    fields
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

fn too_large(len: usize) -> ParseError {
    ParseError::new(format!("the file is too large ({len} bytes; the limit is {} MiB)", MAX_BLUEPRINT_BYTES >> 20))
}

fn decode(bytes: &[u8]) -> Result<&str, ParseError> {
    if bytes.len() > MAX_BLUEPRINT_BYTES {
        return Err(too_large(bytes.len()));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix(UTF8_BOM).unwrap_or(text)),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            Err(ParseError {
                message: "not UTF-8 text".to_owned(),
                line: Some(to_u32(line)),
                column: Some(to_u32(good.len() - line_start + 1)),
            })
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------
// The YAML tree
// ---------------------------------------------------------------------------------------

/// 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Pos {
    line: u32,
    col: u32,
}

impl Pos {
    fn of(span: &Span) -> Self {
        Pos { line: to_u32(span.start.line()), col: to_u32(span.start.col().saturating_add(1)) }
    }
}

#[derive(Debug)]
enum Kind {
    /// `raw` is the text as written, kept for non-string scalars (e.g. `version: 1.10`).
    Scalar {
        value: ScalarOwned,
        raw: Option<String>,
    },
    Seq(Vec<Rc<YNode>>),
    Map(Vec<(Rc<YNode>, Rc<YNode>)>),
}

#[derive(Debug)]
struct YNode {
    kind: Kind,
    pos: Pos,
    /// Nodes in this subtree, aliases expanded.
    size: usize,
    /// Scalar text bytes in this subtree, aliases expanded.
    bytes: usize,
    /// Nesting height: 1 for a scalar or an empty container.
    height: usize,
}

impl YNode {
    fn str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value: ScalarOwned::String(s), .. } => Some(s),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Scalar { value: ScalarOwned::Null, .. })
    }

    fn get(&self, key: &str) -> Option<&YNode> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k.str() == Some(key)).map(|(_, v)| &**v),
            _ => None,
        }
    }

    /// `get`, with `null` meaning absent.
    fn get_present(&self, key: &str) -> Option<&YNode> {
        self.get(key).filter(|v| !v.is_null())
    }

    /// What the value is, for messages: "a number", "a list", ...
    fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Scalar { value, .. } => match value {
                ScalarOwned::Null => "nothing (null)",
                ScalarOwned::Boolean(_) => "a boolean (true/false)",
                ScalarOwned::Integer(_) | ScalarOwned::FloatingPoint(_) => "a number",
                ScalarOwned::String(_) => "a string",
            },
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The text of a scalar as written (strings: their value).
    fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value: ScalarOwned::String(s), .. } => Some(s),
            Kind::Scalar { raw: Some(raw), .. } => Some(raw),
            _ => None,
        }
    }
}

fn truncate(s: &str) -> Cow<'_, str> {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => Cow::Owned(format!("{}…", &s[..i])),
        None => Cow::Borrowed(s),
    }
}

/// The result of reading the YAML events.
struct Built {
    /// The first document's root, when it was read completely.
    root: Option<Rc<YNode>>,
    /// An error that stopped reading.
    fatal: Option<ParseError>,
    /// Errors that did not stop reading (duplicate keys, badly tagged scalars).
    soft_errors: Vec<ParseError>,
}

enum Body {
    Seq(Vec<Rc<YNode>>),
    Map {
        entries: Vec<(Rc<YNode>, Rc<YNode>)>,
        /// The key waiting for its value.
        key: Option<Rc<YNode>>,
        /// The pending key duplicates an earlier one: drop its value.
        discard: bool,
        /// Key fingerprint → line of its first occurrence.
        seen: HashMap<String, u32>,
    },
}

struct Frame {
    body: Body,
    pos: Pos,
    anchor: usize,
    /// Field path for messages, like `nodes[2].parameters`.
    path: String,
    size: usize,
    bytes: usize,
    height: usize,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Rc<YNode>>,
    total_nodes: usize,
    total_bytes: usize,
    root: Option<Rc<YNode>>,
    soft_errors: Vec<ParseError>,
}

fn bomb_error(pos: Pos) -> ParseError {
    ParseError::at(
        format!(
            "the YAML expands to too much data (more than {MAX_YAML_NODES} values or {} MiB of \
             text, counting what aliases like `*name` repeat); this looks like an alias bomb \
             (\"billion laughs\") and is refused",
            MAX_EXPANDED_BYTES >> 20
        ),
        pos,
    )
}

fn depth_error(pos: Pos) -> ParseError {
    ParseError::at(
        format!("the YAML is nested too deeply (more than {MAX_YAML_DEPTH} levels of lists and mappings)"),
        pos,
    )
}

fn scan_error(e: &ScanError) -> ParseError {
    let m = e.marker();
    let pos = Pos { line: to_u32(m.line()), col: to_u32(m.col().saturating_add(1)) };
    if e.info() == "recursion limit exceeded" {
        // The scanner's own cap on `[`/`{` nesting (255), hit while it looks ahead.
        return depth_error(pos);
    }
    ParseError::at(format!("YAML syntax error: {}", e.info()), pos)
}

fn join_path(path: &str, segment: &str) -> String {
    if path.is_empty() { segment.to_owned() } else { format!("{path}.{segment}") }
}

fn key_label(key: &YNode) -> String {
    match (&key.kind, key.scalar_text()) {
        (_, Some(text)) => truncate(text).into_owned(),
        (Kind::Seq(_), None) => "[...]".to_owned(),
        _ => "{...}".to_owned(),
    }
}

/// A key's identity for duplicate detection: type and value, structurally for complex
/// keys. Bounded by the expanded-size limits already charged for the key.
fn fingerprint(node: &YNode, out: &mut String) {
    match &node.kind {
        Kind::Scalar { value, .. } => match value {
            ScalarOwned::Null => out.push('~'),
            ScalarOwned::Boolean(b) => out.push_str(if *b { "T" } else { "F" }),
            ScalarOwned::Integer(i) => {
                out.push('i');
                out.push_str(&i.to_string());
            }
            ScalarOwned::FloatingPoint(f) => {
                out.push('f');
                out.push_str(&f.into_inner().to_bits().to_string());
            }
            ScalarOwned::String(s) => {
                out.push('s');
                out.push_str(&s.len().to_string());
                out.push(':');
                out.push_str(s);
            }
        },
        Kind::Seq(items) => {
            out.push('[');
            for item in items {
                fingerprint(item, out);
                out.push(',');
            }
            out.push(']');
        }
        Kind::Map(entries) => {
            out.push('{');
            for (k, v) in entries {
                fingerprint(k, out);
                out.push(':');
                fingerprint(v, out);
                out.push(',');
            }
            out.push('}');
        }
    }
}

impl Builder {
    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(frame) => match &frame.body {
                Body::Seq(items) => format!("{}[{}]", frame.path, items.len()),
                Body::Map { key: Some(key), .. } => join_path(&frame.path, &key_label(key)),
                Body::Map { key: None, .. } => join_path(&frame.path, "(key)"),
            },
        }
    }

    fn charge(&mut self, nodes: usize, bytes: usize, pos: Pos) -> Result<(), ParseError> {
        self.total_nodes = self.total_nodes.saturating_add(nodes);
        self.total_bytes = self.total_bytes.saturating_add(bytes);
        if self.total_nodes > MAX_YAML_NODES || self.total_bytes > MAX_EXPANDED_BYTES {
            return Err(bomb_error(pos));
        }
        Ok(())
    }

    fn open(&mut self, body: Body, anchor: usize, pos: Pos) -> Result<(), ParseError> {
        if self.stack.len() >= MAX_YAML_DEPTH {
            return Err(depth_error(pos));
        }
        self.charge(1, 0, pos)?;
        let path = self.child_path();
        self.stack.push(Frame { body, pos, anchor, path, size: 1, bytes: 0, height: 0 });
        Ok(())
    }

    fn close(&mut self) -> Result<(), ParseError> {
        let Some(frame) = self.stack.pop() else {
            return Err(ParseError::new("YAML syntax error: unbalanced end of a list or mapping"));
        };
        let kind = match frame.body {
            Body::Seq(items) => Kind::Seq(items),
            Body::Map { entries, .. } => Kind::Map(entries),
        };
        let node = YNode { kind, pos: frame.pos, size: frame.size, bytes: frame.bytes, height: frame.height + 1 };
        self.insert(Rc::new(node), frame.anchor)
    }

    fn scalar(
        &mut self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<Cow<'_, Tag>>,
        pos: Pos,
    ) -> Result<(), ParseError> {
        self.charge(1, text.len(), pos)?;
        let raw: String = text.into_owned();
        let value = match ScalarOwned::parse_from_cow_and_metadata(Cow::Borrowed(&raw), style, tag.as_ref()) {
            Some(ScalarOwned::String(_)) => None,
            Some(value) => Some(value),
            None => {
                let tag = match tag.as_deref() {
                    Some(t) if t.is_yaml_core_schema() => format!("!!{}", t.suffix),
                    Some(t) => format!("{}{}", t.handle, t.suffix),
                    None => String::new(),
                };
                let path = self.child_path();
                let what = if path.is_empty() { String::new() } else { format!("{path}: ") };
                self.soft_errors
                    .push(ParseError::at(format!("{what}{:?} is not a valid {tag} value", truncate(&raw)), pos));
                None
            }
        };
        let kind = match value {
            Some(value) => Kind::Scalar { value, raw: Some(raw) },
            None => Kind::Scalar { value: ScalarOwned::String(raw), raw: None },
        };
        let bytes = match &kind {
            Kind::Scalar { value: ScalarOwned::String(s), .. } | Kind::Scalar { raw: Some(s), .. } => s.len(),
            _ => 0,
        };
        self.insert(Rc::new(YNode { kind, pos, size: 1, bytes, height: 1 }), anchor)
    }

    fn alias(&mut self, id: usize, pos: Pos) -> Result<(), ParseError> {
        let Some(node) = self.anchors.get(&id).cloned() else {
            return Err(ParseError::at(
                "this alias (`*name`) refers to an anchor (`&name`) that is not defined before it \
                 or that contains the alias itself",
                pos,
            ));
        };
        self.charge(node.size, node.bytes, pos)?;
        if self.stack.len().saturating_add(node.height) > MAX_YAML_DEPTH {
            return Err(depth_error(pos));
        }
        self.insert(node, 0)
    }

    fn insert(&mut self, node: Rc<YNode>, anchor: usize) -> Result<(), ParseError> {
        if anchor > 0 {
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        let Some(frame) = self.stack.last_mut() else {
            if self.root.is_some() {
                return Err(ParseError::at("YAML syntax error: unexpected second top-level value", node.pos));
            }
            self.root = Some(node);
            return Ok(());
        };
        frame.size = frame.size.saturating_add(node.size);
        frame.bytes = frame.bytes.saturating_add(node.bytes);
        frame.height = frame.height.max(node.height);
        match &mut frame.body {
            Body::Seq(items) => items.push(node),
            Body::Map { entries, key, discard, seen } => match key.take() {
                Some(k) => {
                    if !*discard {
                        entries.push((k, node));
                    }
                    *discard = false;
                }
                None => {
                    let mut fp = String::new();
                    fingerprint(&node, &mut fp);
                    if let Some(first) = seen.get(&fp) {
                        let what = if frame.path.is_empty() { String::new() } else { format!("{}: ", frame.path) };
                        self.soft_errors.push(ParseError::at(
                            format!(
                                "{what}duplicate key `{}` (already defined on line {first}); \
                                 each key may appear only once in a mapping",
                                key_label(&node)
                            ),
                            node.pos,
                        ));
                        *discard = true;
                    } else {
                        seen.insert(fp, node.pos.line);
                    }
                    *key = Some(node);
                }
            },
        }
        Ok(())
    }
}

/// Reads the event stream of `text` into a tree, up to the end of the first document.
fn build_tree(text: &str) -> Built {
    let mut b = Builder::default();
    let fatal = read_events(text, &mut b).err();
    let Builder { root, soft_errors, .. } = b;
    Built { root, fatal, soft_errors }
}

fn read_events(text: &str, b: &mut Builder) -> Result<(), ParseError> {
    let mut parser = Parser::new_from_str(text);
    let mut documents = 0usize;
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| scan_error(&e))?;
        let pos = Pos::of(&span);
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(ParseError::at(
                        "the file contains more than one YAML document (a second one starts here \
                         with `---`); a blueprint must be a single document",
                        pos,
                    ));
                }
            }
            Event::SequenceStart(anchor, _) => b.open(Body::Seq(Vec::new()), anchor, pos)?,
            Event::MappingStart(anchor, _) => {
                b.open(Body::Map { entries: Vec::new(), key: None, discard: false, seen: HashMap::new() }, anchor, pos)?
            }
            Event::SequenceEnd | Event::MappingEnd => b.close()?,
            Event::Scalar(text, style, anchor, tag) => b.scalar(text, style, anchor, tag, pos)?,
            Event::Alias(id) => b.alias(id, pos)?,
        }
    }
    if !b.stack.is_empty() {
        return Err(ParseError::new("YAML syntax error: the file ends inside a list or mapping"));
    }
    Ok(())
}

fn first_error(mut errors: Vec<ParseError>) -> Option<ParseError> {
    // Stable sort: errors on the same spot keep the order they were found in.
    errors.sort_by_key(|e| (e.line.unwrap_or(u32::MAX), e.column.unwrap_or(u32::MAX)));
    errors.into_iter().next()
}

// ---------------------------------------------------------------------------------------
// Format v1 rules
// ---------------------------------------------------------------------------------------

fn non_blank(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() { None } else { Some(t.to_owned()) }
}

/// " (write it in quotes: "42")" for scalars that should have been strings.
fn quote_hint(value: &YNode) -> String {
    match value.scalar_text() {
        Some(raw) if !value.is_null() => format!(" (write it in quotes: \"{}\")", truncate(raw)),
        _ => String::new(),
    }
}

fn not_a_string(path: &str, value: &YNode) -> ParseError {
    ParseError::at(format!("{path} must be a string, found {}{}", value.describe(), quote_hint(value)), value.pos)
}

/// An optional top-level string field. Non-string scalars are an error but their text
/// is still returned, so invalid files list something sensible.
fn optional_string(key: &str, value: &YNode, errors: &mut Vec<ParseError>) -> Option<String> {
    if value.is_null() {
        return None;
    }
    if let Some(s) = value.str() {
        return non_blank(s);
    }
    errors.push(not_a_string(key, value));
    value.scalar_text().and_then(non_blank)
}

fn empty_error() -> ParseError {
    ParseError::new("the file is empty; a blueprint is a YAML mapping with at least `name: ...`")
}

fn check_root(root: &YNode, a: &mut Analysis, errors: &mut Vec<ParseError>) {
    let entries = match &root.kind {
        Kind::Map(entries) => entries,
        _ if root.is_null() => {
            errors.push(empty_error());
            return;
        }
        _ => {
            errors.push(ParseError::at(
                format!(
                    "the top level must be a mapping of fields like `name: My blueprint`, found {}",
                    root.describe()
                ),
                root.pos,
            ));
            return;
        }
    };
    let mut name_seen = false;
    let mut nodes = None;
    let mut edges = None;
    for (key, value) in entries {
        let Some(key) = key.str() else { continue };
        match key {
            "name" => {
                name_seen = true;
                check_name(value, &mut a.fields, errors);
            }
            "id" => {
                a.fields.id = match &value.kind {
                    _ if value.is_null() => None,
                    Kind::Scalar { value: ScalarOwned::String(s), .. } => non_blank(s),
                    Kind::Scalar { value: ScalarOwned::Integer(i), .. } => Some(i.to_string()),
                    _ => {
                        errors.push(ParseError::at(
                            format!(
                                "id must be a string or an integer, found {}{}",
                                value.describe(),
                                quote_hint(value)
                            ),
                            value.pos,
                        ));
                        value.scalar_text().and_then(non_blank)
                    }
                }
            }
            "description" => a.fields.description = optional_string("description", value, errors),
            "author" => a.fields.author = optional_string("author", value, errors),
            "version" => {
                a.fields.version = match &value.kind {
                    _ if value.is_null() => None,
                    Kind::Scalar { value: ScalarOwned::String(s), .. } => non_blank(s),
                    Kind::Scalar { value: ScalarOwned::Integer(_) | ScalarOwned::FloatingPoint(_), raw: Some(raw) } => {
                        non_blank(raw)
                    }
                    _ => {
                        errors.push(ParseError::at(
                            format!(
                                "version must be a string or a number, found {}{}",
                                value.describe(),
                                quote_hint(value)
                            ),
                            value.pos,
                        ));
                        value.scalar_text().and_then(non_blank)
                    }
                }
            }
            "tags" => a.fields.tags = check_tags(value, errors),
            "nodes" => nodes = Some(value),
            "edges" => edges = Some(value),
            _ => {} // unknown fields are allowed and kept in the file
        }
    }
    if !name_seen {
        errors
            .push(ParseError::at("name is required: add a line like `name: My blueprint` at the top level", root.pos));
    }
    let mut content = Vec::new();
    let ids = match nodes {
        Some(nodes) => check_nodes(nodes, a, &mut content, errors),
        None => HashSet::new(),
    };
    if let Some(edges) = edges {
        check_edges(edges, &ids, a, errors);
    }
    a.content_text = content.join("\n");
}

fn check_name(value: &YNode, fields: &mut Fields, errors: &mut Vec<ParseError>) {
    match value.str() {
        Some(s) => match non_blank(s) {
            Some(name) => fields.name = Some(name),
            None => errors.push(ParseError::at("name must not be empty", value.pos)),
        },
        None if value.is_null() => {
            errors.push(ParseError::at("name must not be empty: write it after `name:`", value.pos));
        }
        None => {
            errors.push(not_a_string("name", value));
            fields.name = value.scalar_text().and_then(non_blank);
        }
    }
}

fn check_tags(value: &YNode, errors: &mut Vec<ParseError>) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    let mut add = |tag: &str| {
        if let Some(tag) = non_blank(tag)
            && !tags.contains(&tag)
        {
            tags.push(tag);
        }
    };
    match &value.kind {
        _ if value.is_null() => {}
        Kind::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                match item.str() {
                    Some(tag) => add(tag),
                    None => {
                        errors.push(not_a_string(&format!("tags[{i}]"), item));
                        if let Some(text) = item.scalar_text() {
                            add(text);
                        }
                    }
                }
            }
        }
        _ => {
            errors.push(ParseError::at(
                format!("tags must be a list of strings like `tags: [web, daily]`, found {}", value.describe()),
                value.pos,
            ));
            if let Some(text) = value.scalar_text() {
                add(text);
            }
        }
    }
    tags
}

/// Checks `nodes`, fills `a.nodes` and `content`, and returns every node id that is a
/// string (also of otherwise broken nodes, so edges to them are not reported twice).
fn check_nodes<'a>(
    nodes: &'a YNode,
    a: &mut Analysis,
    content: &mut Vec<String>,
    errors: &mut Vec<ParseError>,
) -> HashSet<&'a str> {
    let mut ids: HashMap<&'a str, (usize, u32)> = HashMap::new();
    let items = match &nodes.kind {
        _ if nodes.is_null() => return HashSet::new(),
        Kind::Seq(items) => items,
        _ => {
            errors.push(ParseError::at(
                format!("nodes must be a list of mappings (`- id: ...`), found {}", nodes.describe()),
                nodes.pos,
            ));
            return HashSet::new();
        }
    };
    for (i, node) in items.iter().enumerate() {
        let path = format!("nodes[{i}]");
        if !matches!(node.kind, Kind::Map(_)) {
            errors.push(ParseError::at(
                format!("{path} must be a mapping with `id` and `type`, found {}", node.describe()),
                node.pos,
            ));
            continue;
        }
        let mut ok = true;
        let id = match node.get_present("id") {
            None => {
                errors
                    .push(ParseError::at(format!("{path} has no `id`: every node needs a unique string id"), node.pos));
                None
            }
            Some(v) => match v.str() {
                Some(s) if s.trim().is_empty() => {
                    errors.push(ParseError::at(format!("{path}.id must not be empty"), v.pos));
                    None
                }
                Some(s) => {
                    content.push(s.to_owned());
                    match ids.get(s) {
                        Some((first, line)) => {
                            errors.push(ParseError::at(
                                format!(
                                    "{path}.id {:?} is already used by nodes[{first}] (line {line}); \
                                     node ids must be unique",
                                    truncate(s)
                                ),
                                v.pos,
                            ));
                            ok = false;
                        }
                        None => {
                            ids.insert(s, (i, v.pos.line));
                        }
                    }
                    Some(s)
                }
                None => {
                    errors.push(not_a_string(&format!("{path}.id"), v));
                    None
                }
            },
        };
        let node_type = match node.get_present("type") {
            None => {
                errors.push(ParseError::at(format!("{path} has no `type`: every node needs a string type"), node.pos));
                None
            }
            Some(v) => match v.str() {
                Some(s) if s.trim().is_empty() => {
                    errors.push(ParseError::at(format!("{path}.type must not be empty"), v.pos));
                    None
                }
                Some(s) => {
                    content.push(s.to_owned());
                    Some(s)
                }
                None => {
                    errors.push(not_a_string(&format!("{path}.type"), v));
                    None
                }
            },
        };
        let label = ["label", "name"].iter().find_map(|k| node.get_present(k).and_then(YNode::str)).and_then(non_blank);
        if let Some(label) = &label {
            content.push(label.clone());
        }
        let position = node.get_present("position").and_then(|p| check_position(&path, p, errors));
        if let Some(params) = node.get_present("parameters") {
            if matches!(params.kind, Kind::Map(_)) {
                collect_strings(params, content);
            } else {
                errors.push(ParseError::at(
                    format!("{path}.parameters must be a mapping of names to values, found {}", params.describe()),
                    params.pos,
                ));
            }
        }
        if let (true, Some(id), Some(node_type)) = (ok, id, node_type) {
            a.nodes.push(Node { id: id.to_owned(), node_type: node_type.to_owned(), position, label });
        }
    }
    ids.into_keys().collect()
}

fn check_position(path: &str, p: &YNode, errors: &mut Vec<ParseError>) -> Option<(f64, f64)> {
    if !matches!(p.kind, Kind::Map(_)) {
        errors.push(ParseError::at(
            format!("{path}.position must be a mapping like `{{x: 100, y: 200}}`, found {}", p.describe()),
            p.pos,
        ));
        return None;
    }
    let mut coord = |axis: &str| -> Option<f64> {
        let Some(v) = p.get_present(axis) else {
            errors.push(ParseError::at(format!("{path}.position has no `{axis}` number"), p.pos));
            return None;
        };
        let n = match &v.kind {
            Kind::Scalar { value: ScalarOwned::Integer(i), .. } => *i as f64,
            Kind::Scalar { value: ScalarOwned::FloatingPoint(f), .. } => f.into_inner(),
            _ => {
                errors.push(ParseError::at(
                    format!("{path}.position.{axis} must be a number, found {}", v.describe()),
                    v.pos,
                ));
                return None;
            }
        };
        if n.is_finite() {
            Some(n)
        } else {
            errors.push(ParseError::at(format!("{path}.position.{axis} must be a finite number"), v.pos));
            None
        }
    };
    let x = coord("x");
    let y = coord("y");
    Some((x?, y?))
}

/// Every non-blank string value (not key) at any depth. Depth is bounded by
/// `MAX_YAML_DEPTH` and total work by the expanded-size limits.
fn collect_strings(node: &YNode, out: &mut Vec<String>) {
    match &node.kind {
        Kind::Scalar { value: ScalarOwned::String(s), .. } => {
            if !s.trim().is_empty() {
                out.push(s.clone());
            }
        }
        Kind::Scalar { .. } => {}
        Kind::Seq(items) => items.iter().for_each(|item| collect_strings(item, out)),
        Kind::Map(entries) => entries.iter().for_each(|(_, v)| collect_strings(v, out)),
    }
}

fn check_edges(edges: &YNode, ids: &HashSet<&str>, a: &mut Analysis, errors: &mut Vec<ParseError>) {
    let items = match &edges.kind {
        _ if edges.is_null() => return,
        Kind::Seq(items) => items,
        _ => {
            errors.push(ParseError::at(
                format!("edges must be a list of mappings like `- {{from: a, to: b}}`, found {}", edges.describe()),
                edges.pos,
            ));
            return;
        }
    };
    for (i, edge) in items.iter().enumerate() {
        let path = format!("edges[{i}]");
        if !matches!(edge.kind, Kind::Map(_)) {
            errors.push(ParseError::at(
                format!("{path} must be a mapping like `{{from: a, to: b}}`, found {}", edge.describe()),
                edge.pos,
            ));
            continue;
        }
        let mut end = |field: &str| -> Option<String> {
            let Some(v) = edge.get_present(field) else {
                errors.push(ParseError::at(format!("{path} has no `{field}` node id"), edge.pos));
                return None;
            };
            let Some(s) = v.str() else {
                errors.push(not_a_string(&format!("{path}.{field}"), v));
                return None;
            };
            if !ids.contains(s) {
                errors.push(ParseError::at(
                    format!("{path}.{field} names node {:?}, which is not defined in `nodes`", truncate(s)),
                    v.pos,
                ));
                return None;
            }
            Some(s.to_owned())
        };
        let from = end("from");
        let to = end("to");
        if let (Some(from), Some(to)) = (from, to) {
            a.edges.push(Edge { from, to });
        }
    }
}

/// 1-based line of the first `"key"` in a JSON text, for messages about a field.
fn json_key_line(bytes: &[u8], key: &str) -> Option<u32> {
    let needle = format!("\"{key}\"");
    let at = bytes.windows(needle.len()).position(|w| w == needle.as_bytes())?;
    Some(to_u32(bytes[..at].iter().filter(|b| **b == b'\n').count() + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn err(yaml: &str) -> ParseError {
        err_bytes(yaml.as_bytes())
    }

    fn err_bytes(bytes: &[u8]) -> ParseError {
        match analyse(bytes).error {
            Some(e) => e,
            None => panic!("expected an error for:\n{}", String::from_utf8_lossy(bytes)),
        }
    }

    #[track_caller]
    fn assert_err(yaml: &str, line: Option<u32>, needle: &str) -> Analysis {
        let a = analyse(yaml.as_bytes());
        let e = a.error.clone().unwrap_or_else(|| panic!("expected an error for:\n{yaml}"));
        assert!(e.message.contains(needle), "message {:?} should contain {needle:?}", e.message);
        assert_eq!(e.line, line, "wrong line for {e}");
        a
    }

    const REALISTIC: &str = r#"# A daily digest workflow
name: 日報ダイジェスト
id: digest-001
description: |
  Fetches feeds every morning
  and summarises them.
version: 1.10
tags: [daily, 要約, daily, " news "]
author: Aiko Tanaka
x-editor: {theme: dark, zoom: 1.5}
nodes:
  - id: fetch
    type: http.request
    label: Fetch feeds
    position: {x: 100, y: -20.5}
    parameters:
      url: https://example.com/feed.xml
      headers:
        accept: application/rss+xml
        auth:
          scheme: bearer-token-東京
      retries: 3
  - id: summarise
    type: llm.prompt
    name: Summarise
    parameters:
      prompt: "要約してください: {{items}}"
      stops: ["---", "END"]
      temperature: 0.2
      enabled: true
    notes: unknown node field
  - id: send
    type: email.send
    position: null
    parameters: null
edges:
  - {from: fetch, to: summarise}
  - from: summarise
    to: send
"#;

    #[test]
    fn realistic_blueprint_is_valid_and_fully_read() {
        let a = validate(REALISTIC.as_bytes()).expect("valid");
        assert_eq!(
            a.fields,
            Fields {
                name: Some("日報ダイジェスト".into()),
                id: Some("digest-001".into()),
                description: Some("Fetches feeds every morning\nand summarises them.".into()),
                version: Some("1.10".into()),
                tags: vec!["daily".into(), "要約".into(), "news".into()],
                author: Some("Aiko Tanaka".into()),
            }
        );
        assert_eq!(
            a.nodes,
            vec![
                Node {
                    id: "fetch".into(),
                    node_type: "http.request".into(),
                    position: Some((100.0, -20.5)),
                    label: Some("Fetch feeds".into()),
                },
                Node {
                    id: "summarise".into(),
                    node_type: "llm.prompt".into(),
                    position: None,
                    label: Some("Summarise".into()),
                },
                Node { id: "send".into(), node_type: "email.send".into(), position: None, label: None },
            ]
        );
        assert_eq!(
            a.edges,
            vec![
                Edge { from: "fetch".into(), to: "summarise".into() },
                Edge { from: "summarise".into(), to: "send".into() },
            ]
        );
        let lines: Vec<&str> = a.content_text.split('\n').collect();
        for expected in [
            "fetch",
            "http.request",
            "Fetch feeds",
            "https://example.com/feed.xml",
            "application/rss+xml",
            "bearer-token-東京", // depth 3 inside parameters
            "summarise",
            "llm.prompt",
            "Summarise",
            "要約してください: {{items}}",
            "---",
            "END",
            "send",
            "email.send",
        ] {
            assert!(lines.contains(&expected), "content_text lacks {expected:?}: {:?}", a.content_text);
        }
        // Values only: no keys, no numbers/booleans, no unknown node fields.
        for absent in ["url", "headers", "scheme", "3", "0.2", "true", "unknown node field"] {
            assert!(!lines.contains(&absent), "content_text has {absent:?}");
        }
        assert!(a.error.is_none());
    }

    #[test]
    fn minimal_blueprint_and_optional_nulls() {
        let a = validate(b"name: x\nid: ~\ndescription: null\ntags:\nauthor:\nnodes:\nedges: null\n").unwrap();
        assert_eq!(a.fields, Fields { name: Some("x".into()), ..Fields::default() });
        assert!(a.nodes.is_empty() && a.edges.is_empty() && a.content_text.is_empty());
    }

    #[test]
    fn bom_is_fine_and_explicit_document_markers_are_fine() {
        let a = validate("\u{feff}---\nname: x\n...\n".as_bytes()).unwrap();
        assert_eq!(a.fields.name.as_deref(), Some("x"));
    }

    #[test]
    fn unknown_fields_are_accepted() {
        let yaml = "name: x\nschema: 3\nmeta: {a: [1, 2]}\nnodes:\n  - id: a\n    type: t\n    color: red\n    extra: {deep: [1]}\n";
        let a = validate(yaml.as_bytes()).unwrap();
        assert_eq!(a.nodes.len(), 1);
    }

    #[test]
    fn version_and_id_numbers_keep_their_text() {
        let v = |yaml: &str| validate(yaml.as_bytes()).unwrap().fields;
        assert_eq!(v("name: x\nversion: 2\n").version.as_deref(), Some("2"));
        assert_eq!(v("name: x\nversion: 1.10\n").version.as_deref(), Some("1.10"));
        assert_eq!(v("name: x\nversion: 1.0.3\n").version.as_deref(), Some("1.0.3"));
        assert_eq!(v("name: x\nversion: '3'\n").version.as_deref(), Some("3"));
        assert_eq!(v("name: x\nid: 42\n").id.as_deref(), Some("42"));
        assert_eq!(v("name: x\nid: abc\n").id.as_deref(), Some("abc"));
        assert_err("name: x\nversion: true\n", Some(2), "version must be a string or a number");
        assert_err("name: x\nid: 1.5\n", Some(2), "id must be a string or an integer");
    }

    #[test]
    fn missing_name() {
        let a = assert_err("description: hello\ntags: [a]\n", Some(1), "name is required");
        assert_eq!(a.fields.description.as_deref(), Some("hello"));
        assert_eq!(a.fields.tags, vec!["a".to_owned()]);
        // With leading comments, the line is that of the mapping's first key.
        assert_err("# comment\n\nauthor: me\n", Some(3), "name is required");
    }

    #[test]
    fn name_not_a_string() {
        let a = assert_err("id: a\nname: 42\n", Some(2), "name must be a string, found a number");
        assert_eq!(
            a.error.unwrap().to_string(),
            "line 2: name must be a string, found a number (write it in quotes: \"42\")"
        );
        assert_eq!(a.fields.name.as_deref(), Some("42"), "best effort");
        assert_eq!(a.fields.id.as_deref(), Some("a"));
        let a = assert_err("name:\n  - a\n", Some(2), "name must be a string, found a list");
        assert_eq!(a.fields.name, None);
    }

    #[test]
    fn empty_name() {
        assert_err("name: '   '\n", Some(1), "name must not be empty");
        assert_err("tags: []\nname:\n", Some(2), "name must not be empty");
    }

    #[test]
    fn node_without_id_or_type() {
        let yaml = "name: x\nnodes:\n  - type: a\n  - id: b\n    type: c\n  - id: d\n";
        let a = assert_err(yaml, Some(3), "nodes[0] has no `id`");
        assert_eq!(a.nodes.len(), 1);
        assert_eq!(a.nodes[0].id, "b");
        assert_eq!(a.fields.name.as_deref(), Some("x"));
        assert_err("name: x\nnodes:\n  - id: d\n", Some(3), "nodes[0] has no `type`");
        assert_err("name: x\nnodes:\n  - id: d\n    type: 7\n", Some(4), "nodes[0].type must be a string");
        assert_err("name: x\nnodes:\n  - just-a-string\n", Some(3), "nodes[0] must be a mapping");
        assert_err("name: x\nnodes: {a: 1}\n", Some(2), "nodes must be a list");
    }

    #[test]
    fn node_id_must_be_a_string() {
        let a =
            assert_err("name: x\ntags: [a]\nnodes:\n  - id: 1\n    type: t\n", Some(4), "nodes[0].id must be a string");
        assert_eq!(
            a.error.unwrap().to_string(),
            "line 4: nodes[0].id must be a string, found a number (write it in quotes: \"1\")"
        );
        // Invalid but parseable: fields are still read.
        assert_eq!(a.fields.name.as_deref(), Some("x"));
        assert_eq!(a.fields.tags, vec!["a".to_owned()]);
    }

    #[test]
    fn duplicate_node_id() {
        let yaml = "name: x\nnodes:\n  - id: a\n    type: t\n  - id: b\n    type: t\n  - id: a\n    type: u\n";
        let a = assert_err(yaml, Some(7), "nodes[2].id \"a\" is already used by nodes[0] (line 3)");
        assert_eq!(a.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn edges() {
        let nodes = "name: x\nnodes:\n  - {id: a, type: t}\n  - {id: b, type: t}\n";
        let a = assert_err(
            &format!("{nodes}edges:\n  - {{from: a, to: b}}\n  - from: a\n    to: zz\n"),
            Some(8),
            "edges[1].to names node \"zz\", which is not defined",
        );
        assert_eq!(a.edges, vec![Edge { from: "a".into(), to: "b".into() }]);
        assert_err(&format!("{nodes}edges:\n  - {{to: b}}\n"), Some(6), "edges[0] has no `from`");
        assert_err(&format!("{nodes}edges:\n  - {{from: a, to: [b]}}\n"), Some(6), "edges[0].to must be a string");
        assert_err(&format!("{nodes}edges: a->b\n"), Some(5), "edges must be a list");
        assert_err("name: x\nedges:\n  - {from: a, to: b}\n", Some(3), "edges[0].from names node \"a\"");
    }

    #[test]
    fn position_and_parameters() {
        let base = "name: x\nnodes:\n  - id: a\n    type: t\n";
        assert_err(&format!("{base}    position: [1, 2]\n"), Some(5), "nodes[0].position must be a mapping");
        assert_err(&format!("{base}    position: {{x: 1}}\n"), Some(5), "nodes[0].position has no `y`");
        assert_err(&format!("{base}    position: {{x: 1, y: '2'}}\n"), Some(5), "nodes[0].position.y must be a number");
        assert_err(
            &format!("{base}    position: {{x: .inf, y: 2}}\n"),
            Some(5),
            "nodes[0].position.x must be a finite number",
        );
        assert_err(&format!("{base}    parameters: [a]\n"), Some(5), "nodes[0].parameters must be a mapping");
        let a = validate(format!("{base}    position: {{x: 1, y: 2e1}}\n").as_bytes()).unwrap();
        assert_eq!(a.nodes[0].position, Some((1.0, 20.0)));
    }

    #[test]
    fn tags() {
        assert_err("name: x\ntags: foo\n", Some(2), "tags must be a list of strings");
        let a =
            assert_err("name: x\ntags:\n  - a\n  - 3\n  - a\n", Some(4), "tags[1] must be a string, found a number");
        assert_eq!(a.fields.tags, vec!["a".to_owned(), "3".to_owned()]);
        assert_err("name: x\ntags: [a, {b: c}]\n", Some(2), "tags[1] must be a string, found a mapping");
        let a = validate(b"name: x\ntags: [b, a, b, ' a ', '']\n").unwrap();
        assert_eq!(a.fields.tags, vec!["b".to_owned(), "a".to_owned()]);
    }

    #[test]
    fn duplicate_keys() {
        let a = assert_err(
            "name: x\ndescription: a\nname: y\n",
            Some(3),
            "duplicate key `name` (already defined on line 1)",
        );
        assert_eq!(a.fields.name.as_deref(), Some("x"), "the first value is kept");
        assert_eq!(a.fields.description.as_deref(), Some("a"));
        let yaml = "name: x\nnodes:\n  - id: a\n    type: t\n    parameters:\n      k: 1\n      k: 2\n";
        assert_err(yaml, Some(7), "nodes[0].parameters: duplicate key `k`");
        // Same text, different types are different keys; same value, different quoting is the same.
        assert!(validate(b"name: x\nm: {1: a, '1': b}\n").is_ok());
        assert_err("name: x\n? [a, b]\n: 1\n? [a, b]\n: 2\n", Some(4), "duplicate key `[...]`");
        assert_err("name: x\nm: {a: 1, \"a\": 2}\n", Some(2), "m: duplicate key `a`");
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        let a = assert_err("- a\n- b\n", Some(1), "the top level must be a mapping");
        assert!(a.error.unwrap().message.contains("found a list"));
        assert_eq!(a.fields, Fields::default());
        assert_err("just text\n", Some(1), "found a string");
    }

    #[test]
    fn empty_files() {
        for yaml in ["", "   \n\n", "# only a comment\n", "---\n", "~\n", "\u{feff}"] {
            let e = err(yaml);
            assert!(e.message.contains("the file is empty"), "{yaml:?}: {e}");
        }
    }

    #[test]
    fn two_documents() {
        let a = assert_err("name: a\n---\nname: b\n", Some(2), "more than one YAML document");
        assert_eq!(a.fields.name.as_deref(), Some("a"));
        assert_err("---\nname: a\n...\n---\nname: b\n", Some(4), "more than one YAML document");
    }

    #[test]
    fn yaml_syntax_errors() {
        let a = assert_err("name: x\ntags: [a, b\n", Some(3), "YAML syntax error");
        assert_eq!(a.fields, Fields::default());
        assert_err("name: x\n  bad: indent\n", Some(2), "YAML syntax error");
        assert_err("name: \"unterminated\n", Some(1), "YAML syntax error");
        assert_err("a: *nope\n", Some(1), "YAML syntax error");
        assert_err("{---", Some(2), "YAML syntax error");
    }

    #[test]
    fn bad_core_tags() {
        assert_err("name: x\nn: !!int abc\n", Some(2), "n: \"abc\" is not a valid !!int value");
        let a = validate(b"name: !!str 12\nid: !custom 7\n").unwrap();
        assert_eq!(a.fields.name.as_deref(), Some("12"));
        assert_eq!(a.fields.id.as_deref(), Some("7"));
    }

    #[test]
    fn invalid_utf8() {
        let e = err_bytes(b"name: x\ndescription: caf\xe9\n");
        assert_eq!(e.message, "not UTF-8 text");
        assert_eq!(e.line, Some(2));
        assert_eq!(e.column, Some(17));
        assert_eq!(e.to_string(), "line 2: not UTF-8 text");
        let a = analyse(b"\xff\xfe\x00n");
        assert_eq!(a.fields, Fields::default());
    }

    #[test]
    fn too_large() {
        let mut big = b"name: x\nd: ".to_vec();
        big.resize(MAX_BLUEPRINT_BYTES + 1, b'a');
        let e = err_bytes(&big);
        assert!(e.message.contains("too large"), "{e}");
        assert_eq!(e.line, None);
    }

    #[test]
    fn billion_laughs_is_refused() {
        let yaml = r#"name: lol
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"#;
        let start = std::time::Instant::now();
        let e = err(yaml);
        assert!(e.message.contains("alias bomb"), "{e}");
        assert!(e.line.is_some_and(|l| (7..=10).contains(&l)), "{e}");
        assert!(start.elapsed().as_secs() < 5);

        // The same inside parameters, where content_text would expand it.
        let mut yaml = String::from("name: x\nnodes:\n  - id: a\n    type: t\n    parameters:\n      s: &s \"");
        yaml.push_str(&"x".repeat(1 << 20));
        yaml.push_str("\"\n      l1: &l1 [*s, *s, *s, *s, *s, *s, *s, *s]\n");
        for i in 2..=20 {
            let p = i - 1;
            yaml.push_str(&format!("      l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}]\n"));
        }
        assert!(err(&yaml).message.contains("alias bomb"));

        // Keys made of aliases are bounded too.
        let mut yaml = String::from("name: x\na0: &a0 [x, y]\n");
        for i in 1..40 {
            let p = i - 1;
            yaml.push_str(&format!("a{i}: &a{i} {{? *a{p} : 1, ? [*a{p}] : 2}}\n"));
        }
        assert!(err(&yaml).message.contains("alias bomb"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let yaml = format!("name: x\nd: {}{}\n", "[".repeat(200), "]".repeat(200));
        let e = err(&yaml);
        assert!(e.message.contains("nested too deeply"), "{e}");
        assert_eq!(e.line, Some(2));
        let yaml = format!("name: x\nd: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert!(validate(yaml.as_bytes()).is_ok());
        // Depth reached through aliases counts too.
        let yaml = format!(
            "name: x\na: &a {}{}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(err(&yaml).message.contains("nested too deeply"));
        let e = err(&"[".repeat(1_000_000));
        assert!(e.message.contains("nested too deeply"), "{e}");
    }

    #[test]
    fn legit_aliases_are_expanded() {
        let yaml = "name: x\ndefaults: &d {model: gpt-small, prompt: hello}\nnodes:\n  - id: a\n    type: t\n    parameters: *d\n";
        let a = validate(yaml.as_bytes()).unwrap();
        assert!(a.content_text.contains("gpt-small") && a.content_text.contains("hello"));
    }

    #[test]
    fn first_error_in_file_order_and_display() {
        let yaml = "name: x\nnodes:\n  - id: a\n    type: 5\n  - id: 7\n    type: t\ntags: 1\n";
        let e = err(yaml);
        assert_eq!(e.to_string(), "line 4: nodes[0].type must be a string, found a number (write it in quotes: \"5\")");
        let no_line = ParseError { message: "m".into(), line: None, column: None };
        assert_eq!(no_line.to_string(), "m");
    }

    #[test]
    fn validate_is_strict() {
        assert!(validate(b"name: x\n").is_ok());
        let e = validate(b"name: x\ntags: 3\n").unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn companion_round_trip_keeps_unknown_fields() {
        let json = br#"{
  "id": "bp-1",
  "tags": ["a", "b"],
  "created": "2024-05-01T12:00:00Z",
  "modified": "2024-05-02T08:30:00+02:00",
  "public": false,
  "encrypted": true,
  "provenance": {"source": "https://example.com/x.yaml", "imported": "2024-05-01T12:00:00Z"},
  "future_field": {"nested": [1, 2, 3]},
  "another": "kept"
}"#;
        let c = parse_companion(json).unwrap();
        assert_eq!(c.id.as_deref(), Some("bp-1"));
        assert_eq!(c.tags, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(c.public, Some(false));
        assert!(c.encrypted);
        assert_eq!(c.extra.len(), 2);
        assert_eq!(c.extra["future_field"]["nested"][2], 3);
        let out = companion_to_json(&c);
        assert!(out.ends_with(b"}\n"));
        let back = parse_companion(&out).unwrap();
        assert_eq!(back, c);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\"another\": \"kept\""));
        // Defaults are omitted.
        assert_eq!(companion_to_json(&Companion::default()), b"{}\n");
        let with_bom = [UTF8_BOM.as_bytes(), b"{\"author\": \"me\"}"].concat();
        assert_eq!(parse_companion(&with_bom).unwrap().author.as_deref(), Some("me"));
    }

    #[test]
    fn companion_errors_have_lines() {
        let e = parse_companion(b"{\n  \"id\": \"a\",\n  \"tags\": \"oops\"\n}").unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.message.starts_with("invalid companion metadata JSON: invalid type"), "{e}");
        assert!(!e.message.contains("at line"), "{e}");
        let e = parse_companion(b"{\n  \"id\": \"a\",\n").unwrap_err();
        assert!(e.line.is_some(), "{e}");
        assert!(parse_companion(b"  \n").unwrap_err().message.contains("empty"));
        assert!(parse_companion(b"[1]").is_err());
        assert!(parse_companion(b"\xff").is_err());
        let e = parse_companion(b"{\n\"created\": \"yesterday\"\n}").unwrap_err();
        assert!(e.message.contains("RFC 3339"), "{e}");
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn merged_fields_order_and_overrides() {
        let yaml = Fields {
            name: Some("n".into()),
            id: Some("yaml-id".into()),
            description: Some("yaml desc".into()),
            version: Some("1".into()),
            tags: vec!["b".into(), "a".into()],
            author: Some("yaml author".into()),
        };
        assert_eq!(merged_fields(&yaml, None), yaml);
        let c = Companion {
            tags: vec![" a".into(), "c".into(), "b ".into(), "c".into(), "  ".into()],
            description: Some("edited".into()),
            ..Companion::default()
        };
        let m = merged_fields(&yaml, Some(&c));
        assert_eq!(m.tags, vec!["b".to_owned(), "a".to_owned(), "c".to_owned()]);
        assert_eq!(m.description.as_deref(), Some("edited"));
        assert_eq!(m.author.as_deref(), Some("yaml author"));
        assert_eq!(m.id.as_deref(), Some("yaml-id"));
        assert_eq!(m.name.as_deref(), Some("n"));
        let c = Companion {
            id: Some("lib-id".into()),
            author: Some("me".into()),
            description: Some("".into()),
            ..Companion::default()
        };
        let m = merged_fields(&yaml, Some(&c));
        assert_eq!(m.id.as_deref(), Some("lib-id"));
        assert_eq!(m.author.as_deref(), Some("me"));
        assert_eq!(m.description, None, "a blank companion description clears it");
    }

    /// `analyse`, failing on a panic that `catch_unwind` turned into an error.
    fn analyse_no_internal_error(bytes: &[u8]) {
        let a = analyse(bytes);
        if let Some(e) = &a.error {
            assert_ne!(e.message, INTERNAL_ERROR, "the YAML library panicked on {:?}", String::from_utf8_lossy(bytes));
            let _ = e.to_string();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn analyse_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            analyse_no_internal_error(&bytes);
        }

        #[test]
        fn analyse_never_panics_on_strings(s in "\\PC{0,300}") {
            analyse_no_internal_error(s.as_bytes());
        }

        #[test]
        fn analyse_never_panics_on_yamlish(s in "([-:{}\\[\\],&*!|>?#'\"%@` \n\t.~]|name|id|nodes|edges|a|b|1|\\u{feff}){0,120}") {
            analyse_no_internal_error(s.as_bytes());
        }

        #[test]
        fn analyse_never_panics_on_mutated_blueprints(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, "([-:{}\\[\\],&*!|>?#'\" \n.~]|  |\n  - |&a |\\*a){1,3}"), 1..8)
        ) {
            let mut text = REALISTIC.to_owned();
            for (at, op, piece) in edits {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) { i -= 1; }
                match op {
                    0 => text.insert_str(i, &piece),
                    1 => {
                        let mut j = (i + piece.len()).min(text.len());
                        while !text.is_char_boundary(j) { j += 1; }
                        text.replace_range(i..j, "");
                    }
                    _ => {
                        let mut j = (i + piece.len()).min(text.len());
                        while !text.is_char_boundary(j) { j += 1; }
                        text.replace_range(i..j, &piece);
                    }
                }
            }
            analyse_no_internal_error(text.as_bytes());
        }

        #[test]
        fn parse_companion_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_companion(&bytes);
        }
    }
}
