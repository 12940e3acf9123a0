//! The shape of a SID set, read from its items in SID order.

use super::Snapshot;
use crate::sid::Token;

/// Distinct prefixes of each length (entry `l`: of `l + 1` tokens) and trie
/// nodes (the root and every prefix two or more items share) of full SIDs
/// listed in SID order: an item starts a new prefix at every length past
/// what it shares with the item before it, and a new shared prefix at every
/// length it shares beyond what the item before shared with its own
/// predecessor.
pub(crate) fn of_sorted<'a>(
    sids: impl Iterator<Item = &'a [Token]>,
    full: usize,
) -> (Vec<u64>, usize) {
    let mut counts = vec![0u64; full];
    let mut nodes = 1;
    let (mut previous, mut shared_before): (Option<&[Token]>, usize) = (None, 0);
    for sid in sids {
        let shared = previous.map_or(0, |p| p.iter().zip(sid).take_while(|(a, b)| a == b).count());
        counts[shared.min(full)..].iter_mut().for_each(|c| *c += 1);
        nodes += shared.saturating_sub(shared_before);
        (previous, shared_before) = (Some(sid), shared);
    }
    (counts, nodes)
}

/// A snapshot's prefix counts (a damaged file is counted as far as it reads).
pub(super) fn prefix_counts<D: AsRef<[u8]>>(snap: &Snapshot<D>) -> Vec<u64> {
    let sids = snap
        .order()
        .iter()
        .filter_map(|&item| snap.sid_tokens(item));
    of_sorted(sids, snap.layout.full_len()).0
}
