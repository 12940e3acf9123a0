//! External item key ↔ internal id, in memory.
//!
//! Each key is stored once (in `names`, indexed by id); the hash table holds
//! only ids and finds keys through `names`, so the map costs about
//! 21 bytes plus the key per item. (A database's map of changes keeps
//! `names` in a hash map instead: its ids are few and far apart.)

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::index::ItemId;

/// Bidirectional map between external keys and item ids.
#[derive(Default, Debug, Clone)]
pub struct KeyMap {
    names: Names,
    table: HashTable<ItemId>,
}

/// Each bound id's key: by id (a whole catalogue), or in a hash map (the
/// few items a database changed since its snapshot, whatever their ids).
#[derive(Debug, Clone)]
enum Names {
    Dense(Vec<Option<Box<str>>>),
    Sparse(FxHashMap<ItemId, Box<str>>),
}

impl Default for Names {
    fn default() -> Self {
        Names::Dense(Vec::new())
    }
}

impl Names {
    #[inline]
    fn get(&self, id: ItemId) -> Option<&str> {
        match self {
            Names::Dense(v) => v.get(id as usize)?.as_deref(),
            Names::Sparse(m) => m.get(&id).map(|k| &**k),
        }
    }

    fn set(&mut self, id: ItemId, key: &str) {
        match self {
            Names::Dense(v) => {
                if v.len() <= id as usize {
                    v.resize(id as usize + 1, None);
                }
                v[id as usize] = Some(key.into());
            }
            Names::Sparse(m) => {
                m.insert(id, key.into());
            }
        }
    }

    fn take(&mut self, id: ItemId) -> Option<Box<str>> {
        match self {
            Names::Dense(v) => v.get_mut(id as usize)?.take(),
            Names::Sparse(m) => m.remove(&id),
        }
    }
}

fn hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl KeyMap {
    /// A map whose memory grows with the keys it holds, not with their ids.
    pub(crate) fn sparse() -> KeyMap {
        KeyMap {
            names: Names::Sparse(FxHashMap::default()),
            table: HashTable::new(),
        }
    }

    /// Id of `key`, if present.
    pub fn id(&self, key: &str) -> Option<ItemId> {
        self.table
            .find(hash(key), |&id| self.names.get(id) == Some(key))
            .copied()
    }

    /// Key of `id`, if present.
    pub fn key(&self, id: ItemId) -> Option<&str> {
        self.names.get(id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Binds `key` to `id`; returns false (and changes nothing) if either is taken.
    pub fn insert(&mut self, key: &str, id: ItemId) -> bool {
        if self.key(id).is_some() {
            return false;
        }
        let names = &self.names;
        let entry = self.table.entry(
            hash(key),
            |&i| names.get(i) == Some(key),
            |&i| hash(names.get(i).expect("bound id")),
        );
        let hashbrown::hash_table::Entry::Vacant(slot) = entry else {
            return false;
        };
        slot.insert(id);
        self.names.set(id, key);
        true
    }

    /// Makes room for `additional` more keys and for ids below `ids`, so a
    /// bulk load does not rehash (each rehash reads every key again).
    pub fn reserve(&mut self, additional: usize, ids: u32) {
        let names = &self.names;
        self.table
            .reserve(additional, |&i| hash(names.get(i).expect("bound id")));
        if let Names::Dense(v) = &mut self.names
            && v.len() < ids as usize
        {
            v.resize(ids as usize, None);
        }
    }

    /// Unbinds `id`; returns its key.
    pub fn remove(&mut self, id: ItemId) -> Option<Box<str>> {
        let key = self.names.take(id)?;
        if let Ok(entry) = self.table.find_entry(hash(&key), |&i| i == id) {
            entry.remove();
        }
        Some(key)
    }
}

/// The first key of `n` (the `i`-th is `key(i)`) that repeats an earlier
/// one, as `(earlier, later)`: `later` the smallest such index, `earlier`
/// the first index with its key. Keys are hashed and sorted by hash in
/// parallel rather than put in one hash set, one at a time.
#[cfg(feature = "store")]
pub(crate) fn first_repeat<'a>(
    n: usize,
    key: impl Fn(usize) -> &'a str + Sync,
) -> Option<(usize, usize)> {
    use rayon::prelude::*;
    debug_assert!(u32::try_from(n).is_ok(), "indices fit in u32");
    let mut hashed: Vec<(u64, u32)> = (0..n)
        .into_par_iter()
        .map(|i| (hash(key(i)), i as u32))
        .collect();
    hashed.par_sort_unstable();
    hashed
        .par_chunk_by(|a, b| a.0 == b.0)
        .filter(|run| run.len() > 1)
        .filter_map(|run| {
            // Keys of equal hash, by key then index: each key's first two.
            let mut same: Vec<(&str, u32)> =
                run.iter().map(|&(_, i)| (key(i as usize), i)).collect();
            same.sort_unstable();
            same.windows(2)
                .filter(|w| w[0].0 == w[1].0)
                .map(|w| (w[0].1 as usize, w[1].1 as usize))
                .min_by_key(|&(_, later)| later)
        })
        .min_by_key(|&(_, later)| later)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_repeat_is_the_earliest_second_occurrence() {
        let keys = ["a", "b", "c", "b", "a", "b", "d"];
        assert_eq!(first_repeat(keys.len(), |i| keys[i]), Some((1, 3)));
        assert_eq!(first_repeat(3, |i| keys[i]), None);
        assert_eq!(first_repeat(0, |i| keys[i]), None);
        // Against a hash set, one key at a time, over many keys and repeats.
        let many: Vec<String> = (0..50_000u64)
            .map(|i| format!("k{}", i.wrapping_mul(2_654_435_761) % 40_000))
            .collect();
        let mut seen = std::collections::HashMap::new();
        let expected = many
            .iter()
            .enumerate()
            .find_map(|(i, k)| seen.insert(k.as_str(), i).map(|earlier| (earlier, i)));
        assert_eq!(first_repeat(many.len(), |i| &many[i]), expected);
        assert!(expected.is_some());
    }

    #[test]
    fn bind_find_unbind() {
        for m in [KeyMap::default(), KeyMap::sparse()] {
            bind_find_unbind_in(m);
        }
    }

    /// A sparse map binds ids far apart without memory for the ids between
    /// (a dense one would take 32 GB for these).
    #[test]
    fn sparse_ids_far_apart() {
        let mut m = KeyMap::sparse();
        assert!(m.insert("far", 2_000_000_000));
        assert!(m.insert("near", 1));
        assert_eq!(m.id("far"), Some(2_000_000_000));
        assert_eq!(m.key(1), Some("near"));
        assert_eq!(m.remove(2_000_000_000).as_deref(), Some("far"));
        assert_eq!(m.id("far"), None);
    }

    fn bind_find_unbind_in(mut m: KeyMap) {
        assert!(m.insert("a", 3));
        assert!(m.insert("b", 0));
        assert!(!m.insert("a", 5));
        assert!(!m.insert("c", 3));
        assert_eq!(m.id("a"), Some(3));
        assert_eq!(m.key(0), Some("b"));
        assert_eq!(m.remove(3).as_deref(), Some("a"));
        assert_eq!(m.id("a"), None);
        assert!(m.insert("a", 7));
        assert_eq!(m.len(), 2);
    }
}
