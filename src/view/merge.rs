//! Answers of a [`super::State`] with changes: the base snapshot's, less
//! its hidden items, merged with the in-memory index of changes. Each
//! query first asks whether the changes touch what it reads (counts kept
//! by [`Base`]) and returns the snapshot's own answer, borrowed, if not.

use std::borrow::Cow;
use std::sync::Arc;

use super::base::Base;
use crate::index::{Index, ItemId, Postings, SidIndex};
use crate::sid::Token;

/// `old` (a base list, sorted) with the `new` items (sorted the same way,
/// `goes_before(o, n)`: base item `o` sorts before new item `n`) put in
/// their places, and `old`'s items for which `keep` is false left out.
/// When the new items are few, each one's place is found by binary search
/// and the base list copied in runs, not compared item by item (most
/// changes touch few of the items under a prefix); when they are many
/// (a bulk load publishing), the two lists are walked side by side.
fn insert_sorted(
    old: &[ItemId],
    new: &[ItemId],
    goes_before: impl Fn(ItemId, ItemId) -> bool,
    keep: Option<&dyn Fn(ItemId) -> bool>,
) -> Vec<ItemId> {
    let copy = |out: &mut Vec<ItemId>, run: &[ItemId]| match keep {
        None => out.extend_from_slice(run),
        Some(keep) => out.extend(run.iter().copied().filter(|&i| keep(i))),
    };
    let mut out = Vec::with_capacity(old.len() + new.len());
    let log_old = (usize::BITS - old.len().leading_zeros()) as usize;
    if new.len().saturating_mul(log_old) > old.len() {
        let mut from = 0;
        for &n in new {
            let run = old[from..]
                .iter()
                .take_while(|&&o| goes_before(o, n))
                .count();
            copy(&mut out, &old[from..from + run]);
            out.push(n);
            from += run;
        }
        copy(&mut out, &old[from..]);
        return out;
    }
    let mut from = 0;
    for &n in new {
        let at = from + old[from..].partition_point(|&o| goes_before(o, n));
        copy(&mut out, &old[from..at]);
        out.push(n);
        from = at;
    }
    copy(&mut out, &old[from..]);
    out
}

/// Whether no change lies under `prefix`: no hidden snapshot item and no
/// changed one, so the snapshot's answer is the answer.
fn untouched(base: &Base, index: &Index, prefix: &[Token]) -> bool {
    base.hidden_under(prefix) == 0 && !index.is_valid(prefix)
}

fn sid_of_index(index: &Index, item: ItemId) -> &[Token] {
    index.sid(item).map_or(&[], |(s, _)| s)
}

/// Changed items under `prefix`, sorted by full SID.
fn changed_by_sid(index: &Index, prefix: &[Token]) -> Vec<ItemId> {
    if prefix.is_empty() {
        return index.items_by_sid();
    }
    let mut ids = index
        .items(prefix)
        .map_or(Vec::new(), |p| p.to_sorted_vec());
    ids.sort_unstable_by(|&a, &b| sid_of_index(index, a).cmp(sid_of_index(index, b)));
    ids
}

pub(super) fn by_sid(base: &Base, index: &Index) -> Vec<ItemId> {
    items_list(base, index, &[])
}

/// Live items under `prefix` in SID order (as a snapshot lists them).
fn items_list(base: &Base, index: &Index, prefix: &[Token]) -> Vec<ItemId> {
    let one;
    let old: &[ItemId] = match base.snap.items(prefix) {
        Some(Postings::Slice(s)) => s,
        Some(Postings::One(i)) => {
            one = [i];
            &one
        }
        _ => &[],
    };
    let new = changed_by_sid(index, prefix);
    let unhidden = |i: ItemId| !base.hidden.contains(i);
    let keep: Option<&dyn Fn(ItemId) -> bool> = match base.hidden_under(prefix) {
        0 => None,
        _ => Some(&unhidden),
    };
    // `o` is a base item, `n` a changed one.
    let base_sid = |o: ItemId| base.snap.sid(o).map_or(&[][..], |(s, _)| s);
    insert_sorted(old, &new, |o, n| base_sid(o) < sid_of_index(index, n), keep)
}

pub(super) fn items<'a>(
    base: &'a Base,
    index: &'a Index,
    prefix: &[Token],
) -> Option<Postings<'a>> {
    if untouched(base, index, prefix) {
        return base.snap.items(prefix);
    }
    let all = items_list(base, index, prefix);
    match all.len() {
        // The root is valid even with no items, as in an index.
        0 if prefix.is_empty() => Some(Postings::Owned(Arc::from(all))),
        0 => None,
        1 => Some(Postings::One(all[0])),
        _ => Some(Postings::Owned(Arc::from(all))),
    }
}

pub(super) fn next_tokens<'a>(
    base: &'a Base,
    index: &'a Index,
    prefix: &[Token],
) -> Option<Cow<'a, [Token]>> {
    let changed = index.is_valid(prefix);
    if untouched(base, index, prefix) {
        return base.snap.next_tokens(prefix);
    }
    if base.live_under(prefix) == 0 {
        return SidIndex::next_tokens(index, prefix);
    }
    let emptied = base.emptied_after(prefix);
    let mut out: Vec<Token> = base.snap.next_tokens(prefix).unwrap_or_default().to_vec();
    out.retain(|t| emptied.binary_search(t).is_err());
    if changed {
        out.extend(index.next_tokens(prefix).unwrap_or(&[]));
        // Ascending: EMPTY is the largest token, so it stays last.
        out.sort_unstable();
        out.dedup();
    }
    Some(Cow::Owned(out))
}

pub(super) fn write_mask(base: &Base, index: &Index, prefix: &[Token], row: &mut [u64]) {
    let changed = index.is_valid(prefix);
    if untouched(base, index, prefix) {
        return base.snap.write_mask(prefix, row);
    }
    // The snapshot's mask less the tokens whose items are all hidden, and
    // the changes' mask over it.
    let layout = index.layout();
    if base.live_under(prefix) > 0 {
        base.snap.write_mask(prefix, row);
        let emptied = base.emptied_after(prefix);
        let k = layout.k() as usize;
        // Column K stands for EMPTY or for every counter of K or more: it
        // goes only when none of the snapshot's tokens there is left.
        let k_left = || {
            let next = base.snap.next_tokens(prefix).unwrap_or_default();
            next.iter()
                .any(|&t| layout.mask_bit(t) == k && emptied.binary_search(&t).is_err())
        };
        for &t in emptied {
            let b = layout.mask_bit(t);
            if b == k && k_left() {
                continue;
            }
            if let Some(w) = row.get_mut(b / 64) {
                *w &= !(1 << (b % 64));
            }
        }
    } else {
        row.fill(0);
    }
    if changed {
        let mut extra = vec![0u64; row.len()];
        SidIndex::write_mask(index, prefix, &mut extra);
        row.iter_mut().zip(&extra).for_each(|(w, e)| *w |= e);
    }
}

pub(super) fn position<'a>(
    base: &'a Base,
    index: &'a Index,
    position: usize,
    token: Token,
) -> Postings<'a> {
    // As an index and a snapshot read it: K itself lists nothing, a token
    // above K stands for EMPTY (the column it shares).
    let k = index.layout().k() as usize;
    if token as usize == k {
        return base.snap.position_postings(position, token);
    }
    let token = if token as usize > k {
        crate::sid::EMPTY
    } else {
        token
    };
    let old = base.snap.position_postings(position, token);
    let new = index
        .position_items(position, token)
        .filter(|b| !b.is_empty());
    if base.hidden_at(position, token) == 0 && new.is_none() {
        return old;
    }
    let listed;
    let old: &[ItemId] = match &old {
        Postings::Slice(s) => s,
        other => {
            listed = other.to_sorted_vec();
            &listed
        }
    };
    let new: Vec<ItemId> = new.map_or(Vec::new(), |b| b.iter().collect());
    let unhidden = |i: ItemId| !base.hidden.contains(i);
    let keep: Option<&dyn Fn(ItemId) -> bool> = match base.hidden_at(position, token) {
        0 => None,
        _ => Some(&unhidden),
    };
    Postings::Owned(Arc::from(insert_sorted(old, &new, |o, n| o < n, keep)))
}

/// Prefix counts and trie nodes from the items in SID order.
pub(super) fn shape(view: &super::State) -> (Vec<u64>, usize) {
    let order = view.by_sid();
    let sids = order.iter().filter_map(|&i| view.sid(i).map(|(s, _)| s));
    crate::snapshot::shape_of_sorted(sids, view.layout().full_len())
}

/// Every item by ascending id: the snapshot's (less the hidden) and the
/// changed ones, interleaved.
pub(super) fn for_each_sid(base: &Base, index: &Index, f: &mut dyn FnMut(ItemId, &[Token])) {
    let mut changed = index.items(&[]).map_or(Vec::new(), |p| p.to_sorted_vec());
    changed.reverse();
    let mut changed_below = |bound: ItemId, f: &mut dyn FnMut(ItemId, &[Token])| {
        while let Some(&i) = changed.last().filter(|&&i| i < bound) {
            changed.pop();
            f(i, sid_of_index(index, i));
        }
    };
    base.snap.for_each_sid(&mut |item, sid| {
        changed_below(item, f);
        if !base.hidden.contains(item) {
            f(item, sid);
        }
    });
    changed_below(ItemId::MAX, f);
}
