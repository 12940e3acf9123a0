//! A borrowed view of the items under one prefix.

use roaring::RoaringBitmap;

/// Items under a prefix, borrowed from the index without copying.
///
/// A prefix shared by several items owns a roaring bitmap; a prefix that only
/// one item reaches owns no bitmap at all (the trie points straight at the
/// item), so it is reported as [`Postings::One`].
#[derive(Clone, Copy, Debug)]
pub enum Postings<'a> {
    /// Two or more items (or the root, which may hold any number).
    Many(&'a RoaringBitmap),
    /// Exactly one item.
    One(u32),
}

impl<'a> Postings<'a> {
    /// Number of items.
    pub fn len(&self) -> u64 {
        match self {
            Postings::Many(b) => b.len(),
            Postings::One(_) => 1,
        }
    }

    /// Whether there are no items (only the root of an empty index).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `item` is under the prefix.
    pub fn contains(&self, item: u32) -> bool {
        match self {
            Postings::Many(b) => b.contains(item),
            Postings::One(i) => *i == item,
        }
    }

    /// Item ids in ascending order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = u32> + 'a> {
        match *self {
            Postings::Many(b) => Box::new(b.iter()),
            Postings::One(i) => Box::new(std::iter::once(i)),
        }
    }

    /// An owned bitmap, for set algebra with other postings.
    pub fn to_bitmap(&self) -> RoaringBitmap {
        match self {
            Postings::Many(b) => (*b).clone(),
            Postings::One(i) => std::iter::once(*i).collect(),
        }
    }
}
