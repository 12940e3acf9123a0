//! Token files: one item per line, `key<TAB>t1,t2,...[<TAB>w1,w2,...]`.
//!
//! Tokens are semantic tokens (no disambiguation token: the database assigns
//! it); `-` is the empty token of a masked behavior SID. The optional third
//! field holds one routing weight per behavior position. Blank lines are
//! skipped, and so are comments: lines that start with `#` and hold no tab (a
//! key may start with `#`: its line has tabs).

use std::io::BufRead;

use rayon::prelude::*;

use crate::error::{Error, Result, first_error};
use crate::item::{NewItem, ValidItem};
use crate::keymap::first_repeat;
use crate::sid::{SidLayout, parse_tokens};

/// One parsed line, before it is checked against a layout.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLine {
    /// 1-based line number.
    pub line: usize,
    /// The item.
    pub item: NewItem,
}

/// A byte-order mark, which may open a file (and is then not part of its first line).
const BOM: char = '\u{feff}';

/// Parses the whole text of a token file; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<TokenLine>> {
    let lines: Vec<(usize, &str)> = text.lines().enumerate().map(|(i, l)| (i + 1, l)).collect();
    let out = parse_lines(file, &lines)?;
    if out.is_empty() {
        return Err(empty_file(file));
    }
    Ok(out)
}

/// The error for a token file without a single item.
pub fn empty_file(file: &str) -> Error {
    input(file, 1, "no items: the file is empty".into())
}

fn input(file: &str, line: usize, message: String) -> Error {
    Error::Input {
        file: file.to_string(),
        line,
        message,
    }
}

/// Parses numbered lines (in parallel; the first error in line order) and
/// refuses a key given twice among them.
fn parse_lines(file: &str, lines: &[(usize, &str)]) -> Result<Vec<TokenLine>> {
    let parsed: Vec<Result<Option<TokenLine>>> = lines
        .par_iter()
        .map(|&(line, raw)| {
            // A byte-order mark opens the file, not its first key.
            let raw = if line == 1 {
                raw.trim_start_matches(BOM)
            } else {
                raw
            };
            let item = parse_line(raw).map_err(|m| input(file, line, m))?;
            Ok(item.map(|item| TokenLine { line, item }))
        })
        .collect();
    // The first error in line order; blank and comment lines left out.
    let mut out = Vec::with_capacity(parsed.len());
    for line in parsed {
        out.extend(line?);
    }
    refuse_repeats(file, &out)?;
    Ok(out)
}

/// The error for the first key given twice among `lines` (in file order):
/// at the earliest line that repeats the key of a line before it.
pub fn refuse_repeats(file: &str, lines: &[TokenLine]) -> Result<()> {
    match first_repeat(lines.len(), |i| &lines[i].item.key) {
        Some((first, again)) => Err(input(
            file,
            lines[again].line,
            format!(
                "item '{}' already appears on line {}",
                lines[again].item.key, lines[first].line
            ),
        )),
        None => Ok(()),
    }
}

/// One line of a token file: `None` for a blank or comment line.
fn parse_line(raw: &str) -> std::result::Result<Option<NewItem>, String> {
    let trimmed = raw.trim_end_matches(['\r', '\n']);
    if trimmed.trim().is_empty() || (trimmed.starts_with('#') && !trimmed.contains('\t')) {
        return Ok(None);
    }
    let mut fields = trimmed.split('\t');
    let (key, tokens, weights) = (fields.next(), fields.next(), fields.next());
    let (Some(key), Some(tokens)) = (key, tokens) else {
        return Err(wrong_field_count(1));
    };
    let rest = fields.count();
    if rest > 0 {
        return Err(wrong_field_count(3 + rest));
    }
    if key.is_empty() {
        return Err("empty item key".into());
    }
    let tokens = parse_tokens(tokens)?;
    if tokens.is_empty() {
        return Err(format!("item '{key}' has no tokens"));
    }
    let weights = match weights {
        Some(w) => parse_weights(w)?,
        None => Vec::new(),
    };
    Ok(Some(NewItem {
        key: key.to_string(),
        tokens,
        weights,
    }))
}

fn wrong_field_count(found: usize) -> String {
    format!("expected 'key<TAB>tokens[<TAB>weights]', found {found} tab-separated fields")
}

/// Reads a token file a batch of lines at a time, so memory stays bounded
/// by the batch, not the file.
pub struct TokenReader<R> {
    file: String,
    reader: R,
    line: usize,
    bytes: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> TokenReader<R> {
    /// Reads from `reader`; `file` names it in errors.
    pub fn new(file: &str, reader: R) -> Self {
        TokenReader {
            file: file.to_string(),
            reader,
            line: 0,
            bytes: 0,
            buf: Vec::new(),
        }
    }

    /// The next up to `max_lines` lines, parsed (blank and comment lines
    /// skipped, so a batch may hold fewer items); `None` at the end.
    pub fn next_batch(&mut self, max_lines: usize) -> Result<Option<Vec<TokenLine>>> {
        self.buf.clear();
        let first = self.line + 1;
        for _ in 0..max_lines.max(1) {
            let read = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| Error::io(std::path::Path::new(&self.file), e))?;
            if read == 0 {
                break;
            }
            self.bytes += read as u64;
            self.line += 1;
        }
        if self.line < first {
            return Ok(None);
        }
        let text = utf8(&self.file, first, &self.buf)?;
        let lines: Vec<(usize, &str)> = text.lines().zip(first..).map(|(l, n)| (n, l)).collect();
        parse_lines(&self.file, &lines).map(Some)
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Lines consumed so far.
    pub fn lines_read(&self) -> usize {
        self.line
    }
}

/// `bytes` as text, or the error naming the line of the first invalid byte
/// (`first`: the line `bytes` start on).
pub(crate) fn utf8<'a>(file: &str, first: usize, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let newlines = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n');
        input(file, first + newlines.count(), "not valid UTF-8".into())
    })
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

/// The layout a new database gets from its first lines, where `levels` and
/// `behavior` are not given: the fewest tokens a line has is the level count
/// (a line with one more carries its disambiguation counter), the first
/// line's weight count the behavior positions.
pub fn infer_layout(
    lines: &[TokenLine],
    k: u32,
    levels: Option<u32>,
    behavior: Option<u32>,
) -> Result<SidLayout> {
    let fewest = lines.iter().map(|l| l.item.tokens.len()).min().unwrap_or(0);
    let levels = levels.unwrap_or(fewest as u32);
    let behavior = behavior.unwrap_or(lines.first().map_or(0, |l| l.item.weights.len() as u32));
    SidLayout::new(levels, k, behavior)
}

/// Checks every line against `layout` (semantic tokens, or a full SID with
/// its disambiguation token); the error names file and line of the first
/// bad line. The items it returns are written without being checked again.
pub fn validate(file: &str, lines: Vec<TokenLine>, layout: &SidLayout) -> Result<Vec<ValidItem>> {
    let checked = lines
        .into_par_iter()
        .map(|l| {
            let line = l.line;
            (l.item.into_valid_or_key(layout))
                .map_err(|(m, key)| input(file, line, format!("{m} (item '{key}')")))
        })
        .collect();
    first_error(checked)
}

/// The layout named by an export header line `# adasid levels=L k=K behavior=B`.
pub fn header_layout(text: &str) -> Option<Result<SidLayout>> {
    let first = text
        .lines()
        .next()?
        .trim_start_matches(BOM)
        .strip_prefix("# adasid ")?;
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
        let layout = infer_layout(&lines, 8, None, None).unwrap();
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

    #[test]
    fn the_first_bad_line_is_the_one_reported_whichever_thread_meets_one_first() {
        // Bad lines near both ends of a file parsed and checked in parallel.
        let mut text: String = (0..20_000).map(|i| format!("k{i}\t1,2\n")).collect();
        text = text.replacen("\nk1\t1,2\n", "\nk1\t1,x\n", 1);
        text = text.replacen("\nk19998\t1,2\n", "\nk19998\t1,y\n", 1);
        for _ in 0..20 {
            let e = parse("t.tsv", &text).unwrap_err().to_string();
            assert!(e.starts_with("t.tsv:2:"), "{e}");
        }
        let text = text.replace(",x\n", ",9\n").replace(",y\n", ",9\n");
        let layout = SidLayout::new(2, 8, 0).unwrap();
        for _ in 0..20 {
            let lines = parse("t.tsv", &text).unwrap();
            let e = validate("t.tsv", lines, &layout).unwrap_err().to_string();
            assert!(e.starts_with("t.tsv:2:"), "{e}");
        }
    }

    #[test]
    fn a_header_after_a_byte_order_mark_names_the_layout() {
        let layout = header_layout("\u{feff}# adasid levels=3 k=16 behavior=1\n").unwrap();
        assert_eq!(layout.unwrap(), SidLayout::new(3, 16, 1).unwrap());
    }

    #[test]
    fn a_key_may_start_with_a_hash() {
        let lines = parse("f", "# comment\n#tag\t1,2\n").unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!((lines[0].line, lines[0].item.key.as_str()), (2, "#tag"));
    }

    #[test]
    fn a_reader_gives_the_whole_file_a_batch_at_a_time() {
        let text = "# header\na\t1,2\n\nb\t3,4\r\nc\t5,6\nd\t7,-\t0\n";
        let mut reader = TokenReader::new("f", text.as_bytes());
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        while let Some(batch) = reader.next_batch(2).unwrap() {
            sizes.push(batch.len());
            all.extend(batch);
        }
        assert_eq!(sizes, vec![1, 1, 2]);
        assert_eq!(all, parse("f", text).unwrap());
        assert_eq!(
            (reader.lines_read(), reader.bytes_read()),
            (6, text.len() as u64)
        );

        let mut reader = TokenReader::new("g", "a\t1\nb\t2\nc\tx\n".as_bytes());
        assert_eq!(reader.next_batch(2).unwrap().unwrap().len(), 2);
        let e = reader.next_batch(2).unwrap_err().to_string();
        assert!(e.starts_with("g:3:"), "{e}");
        let mut bytes = b"a\t1\nb\t2\n\xffc\t3\n".to_vec();
        let e = TokenReader::new("u", &bytes[..])
            .next_batch(9)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("u:3:") && e.contains("UTF-8"), "{e}");
        bytes.splice(0..0, "\u{feff}".bytes());
        let mut bom = TokenReader::new("b", &bytes[..7]);
        assert_eq!(
            bom.next_batch(9).unwrap().unwrap()[0].item.key,
            "a",
            "a BOM is not part of a key"
        );
        let e = TokenReader::new("h", "a\t1\na\t2\n".as_bytes())
            .next_batch(5)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("h:2:") && e.contains("line 1"), "{e}");
    }
}
