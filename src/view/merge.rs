//! Answers of a [`super::State`] with changes: the base snapshot's, less
//! its hidden items, merged with the in-memory index of changes. Each
//! query first asks whether the changes touch what it reads (counts kept
//! by [`Base`]) and returns the snapshot's own answer, borrowed, if not.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use super::base::Base;
use crate::index::{Index, ItemId, Postings, SidIndex};
use crate::sid::Token;

/// Merges two lists each sorted by `cmp`, `a`'s items first on ties (none
/// occur: an item is on one side only, and full SIDs are unique).
fn merge_by(a: &[ItemId], b: &[ItemId], cmp: impl Fn(ItemId, ItemId) -> Ordering) -> Vec<ItemId> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if cmp(a[i], b[j]) == Ordering::Less {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

fn sid_of_index(index: &Index, item: ItemId) -> &[Token] {
    index.sid(item).map_or(&[], |(s, _)| s)
}

/// Base items listed by `list` that are not hidden.
fn unhidden(base: &Base, list: &Postings<'_>) -> Vec<ItemId> {
    let mut out = Vec::with_capacity(list.len() as usize);
    list.for_each(|i| {
        if !base.hidden.contains(i) {
            out.push(i)
        }
    });
    out
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
    let old = match base.snap.items(prefix) {
        Some(p) if base.hidden_under(prefix) == 0 => p.iter().collect(),
        Some(p) => unhidden(base, &p),
        None => Vec::new(),
    };
    let new = changed_by_sid(index, prefix);
    // `a` is a base item, `b` a changed one.
    merge_by(&old, &new, |a, b| {
        let old_sid = base.snap.sid(a).map_or(&[][..], |(s, _)| s);
        old_sid.cmp(sid_of_index(index, b))
    })
}

pub(super) fn items<'a>(
    base: &'a Base,
    index: &'a Index,
    prefix: &[Token],
) -> Option<Postings<'a>> {
    if base.hidden_under(prefix) == 0 && !index.is_valid(prefix) {
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
    if base.hidden_under(prefix) == 0 && !changed {
        return base.snap.next_tokens(prefix);
    }
    if base.live_under(prefix) == 0 {
        return SidIndex::next_tokens(index, prefix);
    }
    let mut longer = prefix.to_vec();
    longer.push(0);
    let mut out: Vec<Token> = Vec::new();
    for &t in base.snap.next_tokens(prefix).unwrap_or_default().iter() {
        *longer.last_mut().expect("pushed") = t;
        if base.live_under(&longer) > 0 {
            out.push(t);
        }
    }
    if changed {
        out.extend(index.next_tokens(prefix).unwrap_or(&[]));
        // Ascending: EMPTY is the largest token, so it stays last.
        out.sort_unstable();
        out.dedup();
    }
    Some(Cow::Owned(out))
}

pub(super) fn write_mask(base: &Base, index: &Index, prefix: &[Token], row: &mut [u64]) {
    if base.hidden_under(prefix) == 0 && !index.is_valid(prefix) {
        return base.snap.write_mask(prefix, row);
    }
    row.fill(0);
    let layout = index.layout();
    for &t in next_tokens(base, index, prefix).unwrap_or_default().iter() {
        let b = layout.mask_bit(t);
        if let Some(w) = row.get_mut(b / 64) {
            *w |= 1 << (b % 64);
        }
    }
}

pub(super) fn position<'a>(
    base: &'a Base,
    index: &'a Index,
    position: usize,
    token: Token,
) -> Postings<'a> {
    let old = base.snap.position_postings(position, token);
    let new = index
        .position_items(position, token)
        .filter(|b| !b.is_empty());
    if base.hidden_at(position, token) == 0 && new.is_none() {
        return old;
    }
    let old = unhidden(base, &old);
    let new: Vec<ItemId> = new.map_or(Vec::new(), |b| b.iter().collect());
    Postings::Owned(Arc::from(merge_by(&old, &new, |a, b| a.cmp(&b))))
}

/// Distinct prefixes per length and trie nodes (the root and every prefix
/// two or more items share), from the items in SID order: an item starts a
/// new prefix at every length past what it shares with the one before.
pub(super) fn shape(view: &super::State) -> (Vec<u64>, usize) {
    let full = view.layout().full_len();
    let mut counts = vec![0u64; full];
    let mut nodes = 1;
    let (mut previous, mut shared_before): (Option<&[Token]>, usize) = (None, 0);
    for item in view.by_sid() {
        let Some((sid, _)) = view.sid(item) else {
            continue;
        };
        let shared = previous.map_or(0, |p| p.iter().zip(sid).take_while(|(a, b)| a == b).count());
        counts[shared.min(full)..].iter_mut().for_each(|c| *c += 1);
        nodes += shared.saturating_sub(shared_before);
        (previous, shared_before) = (Some(sid), shared);
    }
    (counts, nodes)
}
