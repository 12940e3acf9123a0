//! User interaction sequences and the leave-one-out split.
//!
//! `sequences.tsv`: `user<TAB>i1 i2 … in`, chronological item row numbers
//! (the line of `items.txt`). For a sequence `s`: training is `s[..n-2]`, the
//! validation target `s[n-2]`, the test target `s[n-1]`.

use std::path::Path;

use crate::error::{Error, Result};

/// Which held-out item is the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The last item; the history is everything before it.
    Test,
    /// The second-to-last item; the history stops before it.
    Validation,
}

impl Split {
    /// `test` or `valid`, as the command line spells them.
    pub fn from_name(name: &str) -> Option<Split> {
        match name {
            "test" => Some(Split::Test),
            "valid" => Some(Split::Validation),
            _ => None,
        }
    }

    /// `(history, target)` of a sequence, when it is long enough (≥ 3 items,
    /// so that training keeps at least one).
    pub fn cut<'a>(&self, s: &'a [u32]) -> Option<(&'a [u32], u32)> {
        let n = s.len();
        if n < 3 {
            return None;
        }
        let t = match self {
            Split::Test => n - 1,
            Split::Validation => n - 2,
        };
        Some((&s[..t], s[t]))
    }
}

/// Parses sequence lines; every item must be below `items`.
pub fn parse(file: &str, text: &str, items: usize) -> Result<Vec<Vec<u32>>> {
    let err = |line: usize, message: String| Error::Input {
        file: file.to_string(),
        line,
        message,
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (_, seq) = line
            .split_once('\t')
            .ok_or_else(|| err(i + 1, "expected `user<TAB>item item …`".into()))?;
        let seq = seq
            .split_whitespace()
            .map(|t| match t.parse::<u32>() {
                Ok(v) if (v as usize) < items => Ok(v),
                Ok(v) => Err(err(
                    i + 1,
                    format!("item {v} is out of range: the catalogue has {items} items"),
                )),
                Err(_) => Err(err(i + 1, format!("'{t}' is not an item number"))),
            })
            .collect::<Result<Vec<u32>>>()?;
        out.push(seq);
    }
    if out.is_empty() {
        return Err(err(1, "no sequences".into()));
    }
    Ok(out)
}

/// Reads `file` in `dir`.
pub fn read(dir: &Path, file: &str, items: usize) -> Result<Vec<Vec<u32>>> {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    parse(&path.display().to_string(), &text, items)
}

/// Interactions per item in the training part of every sequence (all but
/// the last two items).
pub fn training_counts(sequences: &[Vec<u32>], items: usize) -> Vec<u32> {
    let mut counts = vec![0u32; items];
    for s in sequences {
        for &i in &s[..s.len().saturating_sub(2)] {
            counts[i as usize] += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_splits() {
        let s = parse("s.tsv", "0\t1 2 3 4\n\n1\t0 2 1\n", 5).unwrap();
        assert_eq!(s, vec![vec![1, 2, 3, 4], vec![0, 2, 1]]);
        assert_eq!(Split::Test.cut(&s[0]), Some((&[1u32, 2, 3][..], 4)));
        assert_eq!(Split::Validation.cut(&s[0]), Some((&[1u32, 2][..], 3)));
        assert_eq!(Split::Test.cut(&[1, 2]), None);
        assert_eq!(Split::from_name("valid"), Some(Split::Validation));
        assert_eq!(Split::from_name("test"), Some(Split::Test));
        assert_eq!(Split::from_name("train"), None);
        assert_eq!(training_counts(&s, 5), vec![1, 1, 1, 0, 0]);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let e = parse("s.tsv", "0\t1 2\n1\t1 9\n", 5)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.tsv:2:") && e.contains("out of range"),
            "{e}"
        );
        let e = parse("s.tsv", "0 1 2\n", 5).unwrap_err().to_string();
        assert!(e.starts_with("s.tsv:1:"), "{e}");
        let e = parse("s.tsv", "0\t1 x\n", 5).unwrap_err().to_string();
        assert!(e.contains("'x'"), "{e}");
        assert!(parse("s.tsv", "\n", 5).is_err());
    }
}
