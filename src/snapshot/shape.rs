//! The shape of a snapshot's SID set, read from its items in SID order.

use super::Snapshot;

/// Distinct prefixes of each length (entry `l`: of `l + 1` tokens): items
/// are listed by full SID, so an item starts a new prefix at every length
/// past what it shares with the item before it.
pub(super) fn prefix_counts<D: AsRef<[u8]>>(snap: &Snapshot<D>) -> Vec<u64> {
    let full = snap.layout.full_len();
    let mut counts = vec![0u64; full];
    let mut previous: Option<&[u16]> = None;
    for &item in snap.order() {
        let Some(sid) = snap.sid_tokens(item) else {
            continue; // a damaged file: counted as far as it reads
        };
        let shared = previous.map_or(0, |p| p.iter().zip(sid).take_while(|(a, b)| a == b).count());
        counts[shared.min(full)..].iter_mut().for_each(|c| *c += 1);
        previous = Some(sid);
    }
    counts
}
