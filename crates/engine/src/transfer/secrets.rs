//! The secret scan that runs before an export: text that looks like a credential is
//! flagged so it is not shared by accident. Patterns: OpenAI-style `sk-…`, AWS access
//! key ids `AKIA…`, GitHub tokens `ghp_…`/`github_pat_…`, Slack tokens `xox[abpsr]-…`,
//! PEM private keys, JWTs, and high-entropy strings of 20+ characters in node
//! parameter values. `${secret:NAME}` references (the keychain) are fine.

use serde::{Deserialize, Serialize};

/// One suspicious finding. The value itself is never reported, only a masked hint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretWarning {
    /// Library path of the blueprint.
    pub path: String,
    /// 1-based line of the finding in the YAML.
    pub line: u32,
    /// What it looks like: `openai_key`, `aws_access_key`, `github_token`, `slack_token`,
    /// `private_key`, `jwt`, `high_entropy`.
    pub kind: String,
    /// The first characters, then `…` (never the whole value).
    pub hint: String,
}

const MIN_ENTROPY_LEN: usize = 20;
/// Bits per character above which a token counts as random-looking.
const ENTROPY_BITS: f64 = 3.5;

/// Scan one blueprint's text. `parameter_text` is the blueprint's parameter strings
/// (see `blueprint::Analysis::content_text`), where high-entropy strings are looked for.
pub fn scan(path: &str, text: &str, parameter_text: &str) -> Vec<SecretWarning> {
    let mut found: Vec<SecretWarning> = Vec::new();
    let cleaned = strip_references(text);
    let mut push = |pos: usize, kind: &str, token: &str| {
        let line = line_of(text, pos);
        if !found.iter().any(|w| w.line == line && w.kind == kind) {
            found.push(SecretWarning { path: path.to_owned(), line, kind: kind.to_owned(), hint: mask(token) });
        }
    };
    for (pos, token) in tokens(&cleaned) {
        if let Some(kind) = pattern_kind(token) {
            push(pos, kind, token);
        }
    }
    if let Some(pos) = cleaned.find("-----BEGIN ") {
        let rest = &cleaned[pos..];
        if let Some(end) = rest.find("-----\n").or_else(|| rest.find("-----\r")).or_else(|| rest.find("-----"))
            && rest[..end].contains("PRIVATE KEY")
        {
            push(pos, "private_key", "-----BEGIN");
        }
    }
    let params = strip_references(parameter_text);
    for (_, token) in tokens(&params) {
        if token.len() >= MIN_ENTROPY_LEN && pattern_kind(token).is_none() && looks_random(token) {
            let pos = text.find(token).unwrap_or(0);
            push(pos, "high_entropy", token);
        }
    }
    found.sort_by(|a, b| a.line.cmp(&b.line).then(a.kind.cmp(&b.kind)));
    found
}

/// Replace `${secret:NAME}` references with spaces (same length, so positions hold).
fn strip_references(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${secret:") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        match after.find('}') {
            Some(end) => {
                out.extend(std::iter::repeat_n(' ', end + 1));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=')
}

/// Maximal runs of token characters with their byte offsets.
fn tokens(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in text.char_indices() {
        match (is_token_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out.into_iter().map(|(p, t)| {
        // Trailing sentence punctuation is not part of a token.
        let trimmed = t.trim_end_matches(['.', '/']);
        (p, trimmed)
    })
}

fn run_len(s: &str, ok: impl Fn(char) -> bool) -> usize {
    s.chars().take_while(|c| ok(*c)).count()
}

fn pattern_kind(token: &str) -> Option<&'static str> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    // The token may start with other text (`key=sk-…`, `Bearer.ghp_…`): look inside it.
    for (i, _) in token.char_indices() {
        let t = &token[i..];
        if i > 0 && token[..i].chars().last().is_some_and(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        if let Some(rest) = t.strip_prefix("sk-")
            && run_len(rest, word) >= 20
        {
            return Some("openai_key");
        }
        if let Some(rest) = t.strip_prefix("AKIA")
            && run_len(rest, |c| c.is_ascii_uppercase() || c.is_ascii_digit()) >= 16
        {
            return Some("aws_access_key");
        }
        for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"] {
            if let Some(rest) = t.strip_prefix(prefix)
                && run_len(rest, |c| c.is_ascii_alphanumeric() || c == '_') >= 20
            {
                return Some("github_token");
            }
        }
        if t.len() > 5
            && t.starts_with("xox")
            && matches!(t.as_bytes()[3], b'a' | b'b' | b'p' | b's' | b'r')
            && t.as_bytes()[4] == b'-'
            && run_len(&t[5..], word) >= 10
        {
            return Some("slack_token");
        }
        if t.starts_with("eyJ") && is_jwt(t) {
            return Some("jwt");
        }
    }
    None
}

fn is_jwt(t: &str) -> bool {
    let b64 = |s: &str| s.len() >= 10 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let parts: Vec<&str> = t.split('.').collect();
    parts.len() >= 3 && b64(parts[0]) && b64(parts[1]) && parts[2].len() >= 10 && parts[1].starts_with("eyJ")
}

fn looks_random(token: &str) -> bool {
    // URLs, paths and dotted names are made of words, not randomness.
    if token.contains("://") || token.matches('/').count() > 1 || token.matches('.').count() > 1 || is_uuid(token) {
        return false;
    }
    let has_digit = token.chars().any(|c| c.is_ascii_digit());
    let has_alpha = token.chars().any(|c| c.is_ascii_alphabetic());
    if !(has_digit && has_alpha) {
        return false;
    }
    shannon_bits(token) >= ENTROPY_BITS
}

/// UUIDs (node ids, record ids) are random by design, not secrets.
fn is_uuid(t: &str) -> bool {
    let parts: Vec<&str> = t.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn shannon_bits(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts.iter().filter(|c| **c > 0).map(|c| f64::from(*c) / n).map(|p| -p * p.log2()).sum()
}

fn line_of(text: &str, pos: usize) -> u32 {
    let pos = pos.min(text.len());
    let line = text.as_bytes()[..pos].iter().filter(|b| **b == b'\n').count() + 1;
    u32::try_from(line).unwrap_or(u32::MAX)
}

fn mask(token: &str) -> String {
    let head: String = token.chars().take(4).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str, params: &str) -> Vec<String> {
        scan("p", text, params).into_iter().map(|w| w.kind).collect()
    }

    #[test]
    fn flags_known_credential_patterns() {
        let cases = [
            ("api_key: sk-proj-abcdefghijklmnopqrstuvwx1234", "openai_key"),
            ("key: AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
            ("token: ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "github_token"),
            ("slack: xoxb-123456789012-abcdefghij", "slack_token"),
            ("k: |\n  -----BEGIN RSA PRIVATE KEY-----\n  MIIE\n  -----END RSA PRIVATE KEY-----\n", "private_key"),
            (
                "auth: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "jwt",
            ),
        ];
        for (text, kind) in cases {
            assert_eq!(kinds(text, ""), vec![kind.to_owned()], "{text}");
        }
        let w = &scan("p", "name: x\nnodes:\n  - key: sk-abcdefghijklmnopqrstuvwxyz\n", "")[0];
        assert_eq!(w.line, 3);
        assert_eq!(w.hint, "sk-a…");
    }

    #[test]
    fn flags_high_entropy_parameter_values_only() {
        let token = "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0L";
        let text = format!("name: x\nnodes:\n  - parameters:\n      password: {token}\n");
        assert_eq!(kinds(&text, token), vec!["high_entropy".to_owned()]);
        assert_eq!(scan("p", &text, token)[0].line, 4);
        // Not a parameter value: not judged by entropy.
        assert!(kinds(&text, "").is_empty());
    }

    #[test]
    fn ignores_ordinary_text_and_secret_references() {
        let params = "https://api.example.com/v1/chat/completions\nSummarize the sales report for yesterday\n\
                      ${secret:OPENAI_API_KEY}\nBearer ${secret:slack}\n2024-05-01T12:00:00Z\nsk-short\n\
                      550e8400-e29b-41d4-a716-446655440000";
        let text = format!("name: Daily digest\ndescription: skip-this-task-when-empty\n{params}");
        let found = scan("p", &text, params);
        assert!(found.is_empty(), "{found:?}");
        assert!(kinds("token: ${secret:ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789}", "").is_empty());
    }
}
