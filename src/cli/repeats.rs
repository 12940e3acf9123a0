//! A key given twice anywhere in a token file, found before anything is
//! written (the parser refuses a key given twice within one batch; this is
//! for keys in two batches). The check pass keeps one 64-bit hash per line (a file of 50M
//! lines: 400 MB, for the length of the check), sorts them in parallel, and
//! only when some hash repeats reads the file again for the lines with those
//! hashes, to tell a repeated key from two keys that share a hash (the
//! parser's own check, `tokens::refuse_repeats`, over just those lines).

use std::hash::BuildHasher;

use adasid::ValidItem;
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
        // Runs of a sorted list, collected in order: ascending.
        let repeated = (self.0.par_chunk_by(|a, b| a == b))
            .filter(|run| run.len() > 1)
            .map(|run| run[0])
            .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // Many hashes, several repeated: each found (the list must be ascending).
        let mut many = KeyHashes::default();
        let keys: Vec<_> = (0..2000).map(|i| item(&format!("k{i}"))).collect();
        many.add(&keys);
        many.add(&[item("k5"), item("k777"), item("k1999"), item("k0")]);
        let r = many.repeated();
        for k in ["k5", "k777", "k1999", "k0"] {
            assert!(r.holds(k), "{k}");
        }
        assert!(!r.holds("k6") && !r.holds("k1998"));
        let mut none = KeyHashes::default();
        none.add(&[item("a"), item("b")]);
        assert!(none.repeated().is_empty());
    }
}
