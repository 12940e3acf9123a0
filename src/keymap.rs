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

#[cfg(test)]
mod tests {
    use super::*;

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
