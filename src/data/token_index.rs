//! Token indexes as Python generative-retrieval code reads and writes them
//! (LETTER, LC-Rec and MiniOneRec's `*.index.json`): one JSON object from
//! item key to the names of its tokens,
//! `{"0": ["<a_12>", "<b_7>", "<c_3>", "<d_200>"], "1": ...}`.
//!
//! Position `p` names its tokens with the `p`-th letter; the number is the
//! token in the column spelling (`K` is the masked behavior token, see
//! [`SidLayout::from_spelling`]; at the disambiguation position it is the
//! counter). Entries keep their order both ways, and [`write`] produces
//! exactly the bytes of Python's `json.dump` with its default settings, so a
//! file these repositories wrote reads back into the same bytes.
//!
//! [`SidLayout::from_spelling`]: crate::sid::SidLayout::from_spelling

use std::fmt::{self, Write as _};

use serde::de::{Deserializer, MapAccess, Visitor};

use super::tokens::{TokenLine, refuse_repeats};
use crate::error::{Error, Result};
use crate::item::NewItem;
use crate::sid::Token;

/// The letters that name positions, in order.
const LETTERS: &[u8; 26] = b"abcdefghijklmnopqrstuvwxyz";

/// Whether `text` holds a token index rather than a tab-separated token
/// file: after a byte-order mark and white space it opens a JSON object
/// whose first key (`"`) or end (`}`) follows (a token line whose key starts
/// with `{` goes on with more of its key or a tab).
pub fn is_token_index(text: &[u8]) -> bool {
    let text = text.strip_prefix("\u{feff}".as_bytes()).unwrap_or(text);
    let mut rest = text.iter().skip_while(|b| b.is_ascii_whitespace());
    rest.next() == Some(&b'{')
        && matches!(
            rest.find(|b| !b.is_ascii_whitespace()),
            Some(b'"') | Some(b'}')
        )
}

/// [`parse`] of a file's bytes, which must be UTF-8.
pub fn parse_bytes(file: &str, bytes: &[u8]) -> Result<Vec<TokenLine>> {
    parse(file, super::tokens::utf8(file, 1, bytes)?)
}

/// Parses a token index; `file` names it in errors, which give the JSON
/// line for syntax errors and the entry number (1-based, the `line` of each
/// [`TokenLine`]) for a bad entry.
pub fn parse(file: &str, text: &str) -> Result<Vec<TokenLine>> {
    let text = text.trim_start_matches('\u{feff}');
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = de
        .deserialize_map(Entries)
        .and_then(|e| de.end().map(|()| e))
        .map_err(|e| input(file, e.line(), format!("not a token index: {e}")))?;
    let lines = entries
        .into_iter()
        .enumerate()
        .map(|(i, (key, names))| {
            let entry = i + 1;
            let tokens = names
                .iter()
                .enumerate()
                .map(|(pos, name)| token_value(pos, name))
                .collect::<std::result::Result<Vec<Token>, String>>()
                .map_err(|m| input(file, entry, format!("entry '{key}': {m}")))?;
            if key.is_empty() || tokens.is_empty() {
                return Err(input(file, entry, "an empty key or token list".into()));
            }
            Ok(TokenLine {
                line: entry,
                item: NewItem {
                    key,
                    tokens,
                    weights: Vec::new(),
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if lines.is_empty() {
        return Err(input(file, 1, "no items: the token index is empty".into()));
    }
    refuse_repeats(file, &lines)?;
    Ok(lines)
}

fn input(file: &str, line: usize, message: String) -> Error {
    Error::Input {
        file: file.to_string(),
        line,
        message,
    }
}

/// The value of `<x_N>` at `pos`, whose letter `x` must be the position's.
fn token_value(pos: usize, name: &str) -> std::result::Result<Token, String> {
    let x = letter(pos).ok_or("more than 26 positions have no letters")?;
    let bad = || format!("token {pos} is '{name}', not '<{x}_N>'");
    let value = name
        .strip_prefix('<')
        .and_then(|n| n.strip_suffix('>'))
        .and_then(|n| n.strip_prefix(x))
        .and_then(|n| n.strip_prefix('_'))
        .ok_or_else(bad)?;
    value
        .parse::<Token>()
        .ok()
        .filter(|&v| v != crate::sid::EMPTY)
        .ok_or_else(|| format!("token {pos} is '{name}': its number is out of range"))
}

/// The letter of position `pos`, if there are letters enough.
fn letter(pos: usize) -> Option<char> {
    LETTERS.get(pos).map(|&b| b as char)
}

/// The name of column `value` at `pos`, `<x_N>`; `None` past 26 positions.
pub fn token_name(pos: usize, value: usize) -> Option<String> {
    letter(pos).map(|x| format!("<{x}_{value}>"))
}

/// Writes entries as Python's `json.dump(entries, f)` does by default:
/// `", "` and `": "` separators, non-ASCII escaped, no final newline
/// ([`open`], an [`entry`] each, [`close`], for writing a piece at a time).
pub fn write<'a>(out: &mut String, entries: impl Iterator<Item = (&'a str, &'a [String])>) {
    open(out);
    for (i, (key, names)) in entries.enumerate() {
        entry(out, i == 0, key, names);
    }
    close(out);
}

/// The start of a token index.
pub fn open(out: &mut String) {
    out.push('{');
}

/// One entry (`first`: the index's first, which no separator precedes).
pub fn entry(out: &mut String, first: bool, key: &str, names: &[String]) {
    if !first {
        out.push_str(", ");
    }
    python_string(out, key);
    out.push_str(": [");
    for (j, name) in names.iter().enumerate() {
        if j > 0 {
            out.push_str(", ");
        }
        python_string(out, name);
    }
    out.push(']');
}

/// The end of a token index.
pub fn close(out: &mut String) {
    out.push('}');
}

/// A JSON string as Python's `json.dumps(s)` (`ensure_ascii=True`) writes it.
fn python_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// The object's entries in file order.
struct Entries;

impl<'de> Visitor<'de> for Entries {
    type Value = Vec<(String, Vec<String>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object from item key to a list of token names")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(entry) = map.next_entry::<String, Vec<String>>()? {
            out.push(entry);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LETTER_STYLE: &str = r#"{"0": ["<a_12>", "<b_7>", "<c_3>", "<d_200>"], "1": ["<a_1>", "<b_0>", "<c_255>", "<d_9>"]}"#;

    #[test]
    fn reads_entries_in_file_order_and_writes_the_same_bytes() {
        let lines = parse("x.index.json", LETTER_STYLE).unwrap();
        assert_eq!(lines[0].item.tokens, vec![12, 7, 3, 200]);
        assert_eq!((lines[1].line, lines[1].item.key.as_str()), (2, "1"));
        let mut out = String::new();
        let names: Vec<Vec<String>> = lines
            .iter()
            .map(|l| {
                (l.item.tokens.iter().enumerate())
                    .map(|(p, &t)| token_name(p, t as usize).unwrap())
                    .collect()
            })
            .collect();
        let keys = lines.iter().map(|l| l.item.key.as_str());
        write(&mut out, keys.zip(names.iter().map(Vec::as_slice)));
        assert_eq!(out, LETTER_STYLE);
    }

    #[test]
    fn keys_are_escaped_as_python_does() {
        let mut out = String::new();
        let names = vec!["<a_1>".to_string()];
        write(&mut out, [("é\"\t\u{1F600}\u{1}", &names[..])].into_iter());
        assert_eq!(out, r#"{"\u00e9\"\t\ud83d\ude00\u0001": ["<a_1>"]}"#);
        let back = parse("f", &out).unwrap();
        assert_eq!(back[0].item.key, "é\"\t\u{1F600}\u{1}");
    }

    #[test]
    fn bad_entries_name_the_entry() {
        let e = parse("f", r#"{"a": ["<a_1>"], "b": ["<a_1>", "<c_2>"]}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("f:2: entry 'b': token 1 is '<c_2>'"),
            "{e}"
        );
        for bad in [
            r#"{"a": ["a_1"]}"#,
            r#"{"a": ["<a_x>"]}"#,
            r#"{"a": ["<a_65535>"]}"#,
        ] {
            assert!(parse("f", bad).is_err(), "{bad}");
        }
        let e = parse("f", "{\"a\": [\"<a_1>\"],\n \"a\": [\"<a_2>\"]}").unwrap_err();
        assert!(e.to_string().contains("already appears"), "{e}");
        let e = parse("f", "{\"a\": [\"<a_1>\"]\n\"b\"").unwrap_err();
        assert!(e.to_string().starts_with("f:2: not a token index"), "{e}");
        assert!(parse("f", "{}").is_err());
        let e = parse_bytes("f", b"{\"a\":\n [\"\xff\"]}").unwrap_err();
        assert!(e.to_string().starts_with("f:2: not valid UTF-8"), "{e}");
        assert!(parse("f", r#"{"a": []}"#).is_err());
    }

    #[test]
    fn a_token_index_is_told_from_a_token_file() {
        assert!(is_token_index(b"\xef\xbb\xbf  {\"0\": []}"));
        assert!(is_token_index(b"{}"));
        assert!(!is_token_index(b"{key\t1,2\n"));
        assert!(!is_token_index(b"a\t1,2\n"));
        assert!(!is_token_index(b"# adasid levels=2 k=8 behavior=0\n"));
    }
}
