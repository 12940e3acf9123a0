//! A key given twice anywhere in a token file, found before anything is
//! written (the parser refuses a key given twice within one batch; this is
//! for keys in two batches). The check pass keeps one 64-bit hash per line (a file of 50M
//! lines: 400 MB, for the length of the check), sorts them in parallel, and
//! only when some hash repeats reads the file again for the lines with those
//! hashes, to tell a repeated key from two keys that share a hash.

use std::hash::BuildHasher;

use adasid::ValidItem;
use adasid::error::{Error, Result};
use rayon::prelude::*;
use rustc_hash::FxBuildHasher;

/// The key hashes of the lines checked so far.
#[derive(Default)]
pub struct KeyHashes(Vec<u64>);

fn hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl KeyHashes {
    /// Adds the keys of a checked batch.
    pub fn add(&mut self, items: &[ValidItem]) {
        self.0.par_extend(items.par_iter().map(|it| hash(&it.key)));
    }

    /// The hashes more than one line has, ascending.
    pub fn repeated(mut self) -> Repeated {
        self.0.par_sort_unstable();
        let mut repeated: Vec<u64> = self
            .0
            .par_chunk_by(|a, b| a == b)
            .filter(|run| run.len() > 1)
            .map(|run| run[0])
            .collect();
        repeated.sort_unstable();
        Repeated(repeated)
    }
}

/// Hashes that more than one line has.
pub struct Repeated(Vec<u64>);

impl Repeated {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `key` has one of these hashes.
    pub fn holds(&self, key: &str) -> bool {
        self.0.binary_search(&hash(key)).is_ok()
    }
}

/// The error for the first repeated key among `(key, line)` pairs, as the
/// parser words it within a batch: at the earliest line that repeats a key
/// of a line before it.
pub fn first_repeat(file: &str, mut lines: Vec<(String, usize)>) -> Result<()> {
    lines.sort_unstable();
    let first = lines
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .min_by_key(|w| w[1].1);
    match first {
        Some(w) => Err(Error::Input {
            file: file.to_string(),
            line: w[1].1,
            message: format!("item '{}' already appears on line {}", w[0].0, w[0].1),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_repeat_is_the_one_whose_second_line_comes_first() {
        let pairs = |v: &[(&str, usize)]| v.iter().map(|&(k, l)| (k.to_string(), l)).collect();
        let err = first_repeat(
            "f",
            pairs(&[("b", 2), ("a", 1), ("b", 9), ("a", 5), ("a", 7)]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("f:5: item 'a' already appears on line 1"),
            "{err}"
        );
        assert!(first_repeat("f", pairs(&[("a", 1), ("b", 2)])).is_ok());
    }

    #[test]
    fn only_hashes_given_twice_are_repeated() {
        let layout = adasid::SidLayout::new(1, 2, 0).unwrap();
        let item = |k: &str| {
            let new = adasid::NewItem {
                key: k.into(),
                tokens: vec![0],
                weights: vec![],
            };
            new.into_valid(&layout).unwrap()
        };
        let mut h = KeyHashes::default();
        h.add(&[item("a"), item("b")]);
        h.add(&[item("c"), item("a")]);
        let r = h.repeated();
        assert!(r.holds("a") && !r.holds("b") && !r.holds("c") && !r.is_empty());
        let mut none = KeyHashes::default();
        none.add(&[item("a"), item("b")]);
        assert!(none.repeated().is_empty());
    }
}
