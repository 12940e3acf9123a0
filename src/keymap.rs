//! External item key ↔ internal id, in memory.
//!
//! Each key is stored once (in `names`, indexed by id); the hash table holds
//! only ids and finds keys through `names`, so the map costs about
//! 21 bytes plus the key per item.

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::index::ItemId;

/// Bidirectional map between external keys and item ids.
#[derive(Default, Debug, Clone)]
pub struct KeyMap {
    names: Vec<Option<Box<str>>>,
    table: HashTable<ItemId>,
}

fn hash(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl KeyMap {
    /// Id of `key`, if present.
    pub fn id(&self, key: &str) -> Option<ItemId> {
        self.table
            .find(hash(key), |&id| {
                self.names[id as usize].as_deref() == Some(key)
            })
            .copied()
    }

    /// Key of `id`, if present.
    pub fn key(&self, id: ItemId) -> Option<&str> {
        self.names.get(id as usize)?.as_deref()
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
            |&i| names[i as usize].as_deref() == Some(key),
            |&i| hash(names[i as usize].as_deref().expect("bound id")),
        );
        let hashbrown::hash_table::Entry::Vacant(slot) = entry else {
            return false;
        };
        slot.insert(id);
        if self.names.len() <= id as usize {
            self.names.resize(id as usize + 1, None);
        }
        self.names[id as usize] = Some(key.into());
        true
    }

    /// Makes room for `additional` more keys and for ids below `ids`, so a
    /// bulk load does not rehash (each rehash reads every key again).
    pub fn reserve(&mut self, additional: usize, ids: u32) {
        let names = &self.names;
        self.table.reserve(additional, |&i| {
            hash(names[i as usize].as_deref().expect("bound id"))
        });
        if self.names.len() < ids as usize {
            self.names.resize(ids as usize, None);
        }
    }

    /// Unbinds `id`; returns its key.
    pub fn remove(&mut self, id: ItemId) -> Option<Box<str>> {
        let key = self.names.get_mut(id as usize)?.take()?;
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
        let mut m = KeyMap::default();
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
