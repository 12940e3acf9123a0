//! Token files: one item per line, `key<TAB>t1,t2,...[<TAB>w1,w2,...]`.
//!
//! Tokens are semantic tokens (no disambiguation token: the database assigns
//! it); `-` is the empty token of a masked behavior SID. The optional third
//! field holds one routing weight per behavior position. Blank lines and lines
//! starting with `#` are skipped.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::item::{NewItem, ValidItem};
use crate::sid::{SidLayout, parse_tokens};

/// One parsed line, before it is checked against a layout.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLine {
    /// 1-based line number.
    pub line: usize,
    /// The item.
    pub item: NewItem,
}

/// Parses the whole text of a token file; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<TokenLine>> {
    let err = |line: usize, message: String| Error::Input {
        file: file.to_string(),
        line,
        message,
    };
    let mut out = Vec::new();
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim_end_matches('\r');
        if trimmed.trim().is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split('\t').collect();
        if !(2..=3).contains(&fields.len()) {
            return Err(err(
                line,
                format!(
                    "expected 'key<TAB>tokens[<TAB>weights]', found {} tab-separated fields",
                    fields.len()
                ),
            ));
        }
        let key = fields[0];
        if key.is_empty() {
            return Err(err(line, "empty item key".into()));
        }
        if let Some(first) = first_line.insert(key, line) {
            return Err(err(
                line,
                format!("item '{key}' already appears on line {first}"),
            ));
        }
        let tokens = parse_tokens(fields[1]).map_err(|m| err(line, m))?;
        if tokens.is_empty() {
            return Err(err(line, format!("item '{key}' has no tokens")));
        }
        let weights = match fields.get(2) {
            Some(w) => parse_weights(w).map_err(|m| err(line, m))?,
            None => Vec::new(),
        };
        out.push(TokenLine {
            line,
            item: NewItem {
                key: key.to_string(),
                tokens,
                weights,
            },
        });
    }
    if out.is_empty() {
        return Err(err(1, "no items: the file is empty".into()));
    }
    Ok(out)
}

fn parse_weights(text: &str) -> std::result::Result<Vec<f32>, String> {
    text.split(',')
        .map(|f| {
            f.trim()
                .parse::<f32>()
                .map_err(|_| format!("'{}' is not a routing weight", f.trim()))
        })
        .collect()
}

/// The layout a new database gets from the first line: its token count is
/// the level count, its weight count (or `behavior`) the behavior positions.
pub fn infer_layout(lines: &[TokenLine], k: u32, behavior: Option<u32>) -> Result<SidLayout> {
    let first = &lines[0].item;
    let behavior = behavior.unwrap_or(first.weights.len() as u32);
    SidLayout::new(first.tokens.len() as u32, k, behavior)
}

/// Checks every line against `layout` (semantic tokens, or a full SID with
/// its disambiguation token); the error names file and line. The items it
/// returns are written without being checked again.
pub fn validate(file: &str, lines: Vec<TokenLine>, layout: &SidLayout) -> Result<Vec<ValidItem>> {
    lines
        .into_iter()
        .map(|l| {
            let line = l.line;
            l.item.into_valid(layout).map_err(|message| Error::Input {
                file: file.to_string(),
                line,
                message,
            })
        })
        .collect()
}

/// The layout named by an export header line `# adasid levels=L k=K behavior=B`.
pub fn header_layout(text: &str) -> Option<Result<SidLayout>> {
    let first = text.lines().next()?.strip_prefix("# adasid ")?;
    let get = |name: &str| -> Option<u32> {
        first
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    };
    let (levels, k, behavior) = (get("levels")?, get("k")?, get("behavior")?);
    Some(SidLayout::new(levels, k, behavior))
}

/// The header line [`header_layout`] reads.
pub fn header(layout: &SidLayout) -> String {
    format!(
        "# adasid levels={} k={} behavior={}",
        layout.levels, layout.codebook_size, layout.behavior
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tokens_weights_comments() {
        let lines = parse("f", "# header\na\t1,2,3\t0.5\n\nb\t4,5,-\t0\n").unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].line, 4);
        assert_eq!(lines[1].item.tokens, vec![4, 5, crate::sid::EMPTY]);
        let layout = infer_layout(&lines, 8, None).unwrap();
        assert_eq!((layout.levels, layout.behavior), (3, 1));
        let valid = validate("f", lines, &layout).unwrap();
        assert_eq!(valid[1].key, "b");
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("t.tsv", "a\t1,2\nb\t1,x\n").unwrap_err().to_string();
        assert!(e.starts_with("t.tsv:2:"), "{e}");
        let e = parse("t.tsv", "a\t1,2\na\t3,4\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        assert!(parse("t.tsv", "").is_err());
        assert!(parse("t.tsv", "a 1,2\n").is_err());
        let lines = parse("t.tsv", "a\t1,2\nb\t1,9\n").unwrap();
        let layout = SidLayout::new(2, 8, 0).unwrap();
        let e = validate("t.tsv", lines, &layout).unwrap_err().to_string();
        assert!(
            e.starts_with("t.tsv:2:") && e.contains("not below K"),
            "{e}"
        );
    }
}
