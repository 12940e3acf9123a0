//! How a trie node refers to a child, shared by the in-memory index and the
//! snapshot file (whose format it is part of: changing it changes the
//! snapshot's `VERSION`).
//!
//! A child reference is a `u32`: either a node id, or (top bit set) an item
//! id. A prefix shared by a single item has no node of its own; its parent
//! points straight at the item, whose stored SID spells the rest of the path.

const ITEM_TAG: u32 = 1 << 31;

/// An empty dense slot: no child under that token.
pub(crate) const NO_CHILD: u32 = u32::MAX;

/// Largest item id an index can hold (the top bit tags item references).
pub const MAX_ITEM_ID: u32 = ITEM_TAG - 1;

/// Where a child reference leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Child {
    Node(u32),
    Item(u32),
}

impl Child {
    /// The reference as stored.
    pub(crate) fn pack(self) -> u32 {
        match self {
            Child::Node(n) => n,
            Child::Item(i) => i | ITEM_TAG,
        }
    }

    /// A stored reference (not [`NO_CHILD`]).
    pub(crate) fn unpack(raw: u32) -> Child {
        if raw & ITEM_TAG != 0 {
            Child::Item(raw & !ITEM_TAG)
        } else {
            Child::Node(raw)
        }
    }
}

/// Children count from which a node keeps a dense slot table and a ready
/// next-token mask (`bits` = mask bits, K + 1): lookup is then one array
/// read and a beam's mask a copy.
pub(crate) fn dense_at(bits: usize) -> usize {
    (bits / 16).max(8)
}
