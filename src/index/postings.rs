//! A borrowed view of the items under one prefix.

use std::sync::Arc;

use roaring::RoaringBitmap;

/// Items under a prefix, borrowed without copying.
///
/// In an [`crate::Index`] a prefix shared by several items owns a roaring
/// bitmap; a prefix that only one item reaches owns no bitmap at all (the trie
/// points straight at the item), so it is reported as [`Postings::One`]. A
/// [`crate::snapshot::Snapshot`] lists its items sorted by SID, so a prefix's
/// items are one contiguous run of that list: [`Postings::Slice`]. A
/// database whose items changed since its last publication answers from
/// that snapshot and the changes: a list of its own, [`Postings::Owned`].
#[derive(Clone, Debug)]
pub enum Postings<'a> {
    /// Two or more items (or the root, which may hold any number).
    Many(&'a RoaringBitmap),
    /// Exactly one item.
    One(u32),
    /// Items in SID order (not id order), read in place from a snapshot.
    Slice(&'a [u32]),
    /// Items in the order a snapshot lists them for the same query (SID
    /// order under a prefix, ascending ids at a position), merged from a
    /// snapshot and the changes made since it was written.
    Owned(Arc<[u32]>),
}

impl<'a> Postings<'a> {
    /// Number of items.
    pub fn len(&self) -> u64 {
        match self {
            Postings::Many(b) => b.len(),
            Postings::One(_) => 1,
            Postings::Slice(s) => s.len() as u64,
            Postings::Owned(s) => s.len() as u64,
        }
    }

    /// Whether there are no items (only the root of an empty index).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `item` is under the prefix (a linear scan for
    /// [`Postings::Slice`] and [`Postings::Owned`]).
    pub fn contains(&self, item: u32) -> bool {
        match self {
            Postings::Many(b) => b.contains(item),
            Postings::One(i) => *i == item,
            Postings::Slice(s) => s.contains(&item),
            Postings::Owned(s) => s.contains(&item),
        }
    }

    /// Item ids: ascending, except for [`Postings::Slice`] and
    /// [`Postings::Owned`] (a snapshot's order).
    pub fn iter(&self) -> Box<dyn Iterator<Item = u32> + 'a> {
        match self {
            Postings::Many(b) => Box::new(b.iter()),
            Postings::One(i) => Box::new(std::iter::once(*i)),
            Postings::Slice(s) => Box::new(s.iter().copied()),
            Postings::Owned(s) => {
                let s = Arc::clone(s);
                Box::new((0..s.len()).map(move |i| s[i]))
            }
        }
    }

    /// Calls `f` with every item id, in [`Postings::iter`]'s order. One
    /// dispatch for the whole list, and roaring's own `fold` runs the loop:
    /// a scan of every item through the boxed iterator costs about twice
    /// as much (a virtual `next` per item).
    #[inline]
    pub fn for_each(&self, f: impl FnMut(u32)) {
        match self {
            Postings::Many(b) => b.iter().for_each(f),
            Postings::One(i) => std::iter::once(*i).for_each(f),
            Postings::Slice(s) => s.iter().copied().for_each(f),
            Postings::Owned(s) => s.iter().copied().for_each(f),
        }
    }

    /// Item ids, ascending, in a new vector.
    pub fn to_sorted_vec(&self) -> Vec<u32> {
        let mut v = match self {
            Postings::Many(b) => return b.iter().collect(),
            Postings::One(i) => return vec![*i],
            Postings::Slice(s) => s.to_vec(),
            Postings::Owned(s) => s.to_vec(),
        };
        v.sort_unstable();
        v
    }

    /// An owned bitmap, for set algebra with other postings.
    pub fn to_bitmap(&self) -> RoaringBitmap {
        match self {
            Postings::Many(b) => (*b).clone(),
            Postings::One(i) => std::iter::once(*i).collect(),
            Postings::Slice(_) | Postings::Owned(_) => {
                RoaringBitmap::from_sorted_iter(self.to_sorted_vec()).expect("sorted")
            }
        }
    }
}
