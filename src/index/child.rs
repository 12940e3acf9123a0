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

/// Whether `token` has a slot of its own in a dense table of `bits` slots:
/// codebook tokens and [`crate::EMPTY`] do; disambiguation counters of K or
/// more do not (they share the mask's overflow bit), so a node holding one
/// stays sparse.
#[inline]
pub(crate) fn has_slot(bits: usize, token: crate::sid::Token) -> bool {
    token == crate::sid::EMPTY || (token as usize) < bits - 1
}

/// The one rule for when a node with child `tokens` (ascending, so
/// [`crate::EMPTY`] last) keeps a dense table, shared by the in-memory index
/// and the snapshot writer. O(1): only the largest token below EMPTY can
/// lack a slot.
pub(crate) fn goes_dense(bits: usize, tokens: &[crate::sid::Token]) -> bool {
    let below_empty = match tokens {
        [rest @ .., crate::sid::EMPTY] => rest.last(),
        _ => tokens.last(),
    };
    tokens.len() >= dense_at(bits) && below_empty.is_none_or(|&t| has_slot(bits, t))
}
