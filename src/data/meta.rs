//! Item metadata from JSON lines (`meta.jsonl`): one object per line, with
//! the item's key in a `key` or `asin` field.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// One item's metadata: a JSON object.
pub type Meta = serde_json::Map<String, serde_json::Value>;

/// Fields tried, in order, for an item's key when none is named.
pub const KEY_FIELDS: [&str; 4] = ["key", "asin", "item_id", "id"];

/// Parses JSON lines of metadata. `key_field` names the key field; without
/// it the first of [`KEY_FIELDS`] present on a line is used. Blank lines are
/// skipped; a key may appear once.
pub fn parse(file: &str, text: &str, key_field: Option<&str>) -> Result<Vec<(String, Meta)>> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let err = |message: String| Error::Input {
            file: file.to_string(),
            line: i + 1,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let meta: Meta =
            serde_json::from_str(line).map_err(|e| err(format!("not a JSON object: {e}")))?;
        let key = match key_field {
            Some(f) => meta.get(f),
            None => KEY_FIELDS.iter().find_map(|f| meta.get(*f)),
        };
        let key = match key {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => {
                let wanted = key_field.map_or(KEY_FIELDS.join(", "), str::to_string);
                return Err(err(format!("no item key (a string field: {wanted})")));
            }
        };
        if let Some(first) = seen.insert(key.clone(), i + 1) {
            return Err(err(format!("item '{key}' already appears on line {first}")));
        }
        out.push((key, meta));
    }
    Ok(out)
}

/// Reads a metadata file (see [`parse`]).
pub fn read(path: &Path, key_field: Option<&str>) -> Result<Vec<(String, Meta)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse(&path.display().to_string(), &text, key_field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_the_named_or_first_known_field() {
        let text = "{\"asin\": \"A1\", \"brand\": \"OPI\"}\n\n{\"key\": \"k\", \"asin\": \"A2\"}\n";
        let got = parse("m.jsonl", text, None).unwrap();
        assert_eq!(got[0].0, "A1");
        assert_eq!(got[1].0, "k");
        let got = parse("m.jsonl", text, Some("asin")).unwrap();
        assert_eq!(got[1].0, "A2");
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "{\"asin\": \"A\"}\nnot json\n",
                "m.jsonl:2: not a JSON object",
            ),
            (
                "{\"asin\": \"A\"}\n{\"brand\": \"x\"}\n",
                "m.jsonl:2: no item key",
            ),
            (
                "{\"asin\": \"A\"}\n{\"asin\": \"A\"}\n",
                "m.jsonl:2: item 'A' already appears on line 1",
            ),
            ("[1, 2]\n", "m.jsonl:1: not a JSON object"),
        ];
        for (text, want) in cases {
            let e = parse("m.jsonl", text, None).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }
}
