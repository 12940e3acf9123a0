//! Planning a batch before anything is written: every item validated, given
//! its id and its full SID (with a disambiguation token unique among the
//! items that share its semantic tokens).

use std::borrow::Cow;

use rayon::prelude::*;
use rustc_hash::FxHashSet;

use super::State;
use crate::error::{Error, Result, first_error};
use crate::index::{ItemId, MAX_ITEM_ID, SidIndex, sort_rows_by_head};
use crate::item::{ItemInput, MAX_KEY_BYTES};
use crate::keymap::first_repeat;
use crate::sid::{MAX_DISAMBIGUATION, SidLayout, Token, format_tokens};

/// One item of a planned batch (key and weights borrowed from the batch
/// where it holds them).
#[derive(Debug)]
pub(super) struct Planned<'a> {
    pub id: ItemId,
    /// Semantic tokens, then (once planned) the disambiguation token.
    pub full: Vec<Token>,
    /// A disambiguation token the caller asked for (a full SID was given).
    pub requested: Option<Token>,
    pub weights: Cow<'a, [f32]>,
    pub key: &'a str,
    pub existing: bool,
}

/// Validates a batch against `state` and gives every item its id and full SID.
pub(super) fn plan<'a>(
    state: &State,
    items: &'a [impl ItemInput],
    mut next_id: u32,
) -> Result<Vec<Planned<'a>>> {
    let layout = *state.layout();
    // Validation and key lookups are per item and the costly part: in
    // parallel, the first error in batch order.
    let planned: Vec<Result<Planned<'a>>> = items
        .par_iter()
        .enumerate()
        .map(|(i, item)| {
            let key = item.key();
            if key.len() > MAX_KEY_BYTES {
                let head: String = key.chars().take(40).collect();
                return Err(Error::InvalidArgument(format!(
                    "item '{head}…' (#{}): its key has {} bytes, more than {MAX_KEY_BYTES}",
                    i + 1,
                    key.len()
                )));
            }
            let sid = item
                .valid(&layout)
                .map_err(|m| Error::InvalidArgument(format!("item '{key}' (#{}): {m}", i + 1)))?;
            // Room for the disambiguation token from the start.
            let (full, weights, requested) = match sid {
                Cow::Borrowed(sid) => {
                    let mut full = Vec::with_capacity(layout.full_len());
                    full.extend_from_slice(sid.tokens());
                    (full, Cow::Borrowed(sid.weights()), sid.requested())
                }
                Cow::Owned(sid) => {
                    let (mut full, weights, requested) = sid.into_parts();
                    full.reserve_exact(1);
                    (full, Cow::Owned(weights), requested)
                }
            };
            let existing = state.find(key);
            Ok(Planned {
                id: existing.unwrap_or(ItemId::MAX),
                full,
                requested,
                weights,
                key,
                existing: existing.is_some(),
            })
        })
        .collect();
    let mut planned = first_error(planned)?;
    if let Some((_, later)) = first_repeat(planned.len(), |i| planned[i].key) {
        return Err(Error::InvalidArgument(format!(
            "item '{}' appears twice in one batch",
            planned[later].key
        )));
    }
    for p in planned.iter_mut() {
        if !p.existing {
            if next_id > MAX_ITEM_ID {
                return Err(Error::InvalidArgument(
                    "the database is full (2^31 item ids)".into(),
                ));
            }
            p.id = next_id;
            next_id += 1;
        }
    }
    assign_disambiguators(state, &mut planned)?;
    Ok(planned)
}

/// Gives each planned item its full SID. Items whose semantic tokens are
/// unchanged keep their token; the others take the one they asked for or
/// else the smallest free one, in batch order, among the items sharing
/// their semantic tokens. On conflict the error names the first requested
/// token that is taken, else the first item left without a token.
fn assign_disambiguators(index: &State, planned: &mut [Planned]) -> Result<()> {
    let layout = *index.layout();
    let levels = layout.levels();
    let keeps = |p: &Planned| {
        p.existing
            && index.sid(p.id).is_some_and(|(old, _)| {
                old[..levels] == p.full[..] && p.requested.is_none_or(|d| d == old[levels])
            })
    };
    let moving: FxHashSet<ItemId> = planned
        .iter()
        .filter(|p| p.existing && !keeps(p))
        .map(|p| p.id)
        .collect();
    for p in planned
        .iter_mut()
        .filter(|p| p.existing && !moving.contains(&p.id))
    {
        let (old, _) = index.sid(p.id).expect("existing item is indexed");
        p.full.push(old[levels]);
    }
    let mut open = open_order(planned, &layout);
    {
        // Groups of equal semantic tokens share nothing: assigned in parallel.
        let planned = &*planned;
        let same = |a: &Open, b: &Open| {
            a.head == b.head && planned[a.item as usize].full == planned[b.item as usize].full
        };
        let first = open
            .par_chunk_by_mut(same)
            .filter_map(|group| {
                let semantic = &planned[group[0].item as usize].full[..];
                Group::new(index, semantic, &moving).assign(group).err()
            })
            .min_by_key(|&(c, i)| (matches!(c, Conflict::Full { .. }), i));
        if let Some((conflict, i)) = first {
            return Err(conflict.error(&planned[i]));
        }
    }
    let mut by_item = vec![0 as Token; planned.len()];
    for o in &open {
        by_item[o.item as usize] = o.token;
    }
    planned.par_iter_mut().zip(by_item).for_each(|(p, d)| {
        if p.full.len() == levels {
            p.full.push(d);
        }
    });
    Ok(())
}

/// An item still without a disambiguation token.
struct Open {
    /// [`SidLayout::sort_key`] of its semantic tokens.
    head: u64,
    /// Its index in the batch.
    item: u32,
    /// The token it asked for, if any.
    requested: Option<Token>,
    /// The token it is given.
    token: Token,
}

/// The items still without a disambiguation token, by semantic tokens;
/// among equal ones, requested tokens first (so automatic ones never take
/// them), each kind in batch order. Sorted rather than hashed: the groups
/// of a large batch are then read in order.
fn open_order(planned: &[Planned], layout: &SidLayout) -> Vec<Open> {
    let levels = layout.levels();
    let mut open: Vec<Open> = (planned.iter().enumerate())
        .filter(|(_, p)| p.full.len() == levels)
        .map(|(i, p)| Open {
            head: layout.sort_key(&p.full),
            item: i as u32,
            requested: p.requested,
            token: 0,
        })
        .collect();
    let rank = |o: &Open| {
        (
            &planned[o.item as usize].full[..],
            o.requested.is_none(),
            o.item,
        )
    };
    sort_rows_by_head(&mut open, |o| o.head, |a, b| rank(a).cmp(&rank(b)));
    open
}

/// Why an item could not be given a disambiguation token.
#[derive(Clone, Copy, Debug)]
enum Conflict {
    /// The token it asked for is held by another item.
    Taken,
    /// Every token of its semantic SID is held (`count` items want one).
    Full { count: usize },
}

impl Conflict {
    fn error(self, p: &Planned) -> Error {
        match self {
            Conflict::Taken => Error::InvalidArgument(format!(
                "item '{}': the full SID {},{} belongs to another item",
                p.key,
                format_tokens(&p.full),
                p.requested.expect("only a requested token is taken")
            )),
            Conflict::Full { count } => Error::TooManyCollisions {
                sid: format_tokens(&p.full),
                count,
                limit: MAX_DISAMBIGUATION,
            },
        }
    }
}

/// The disambiguation tokens of one semantic SID while a batch is planned.
struct Group {
    /// Tokens held by stored items that keep them, and requested ones; ascending.
    taken: Vec<Token>,
    /// Smallest token not yet ruled out for automatic assignment.
    next: u32,
    /// How many of `taken` lie below `next`.
    passed: usize,
    /// Automatic tokens handed out so far.
    given: usize,
}

impl Group {
    fn new(index: &State, semantic: &[Token], moving: &FxHashSet<ItemId>) -> Group {
        // Nothing to look up in an empty database; the lookups cost about
        // 0.3 s of CPU per 1M groups (docs/RESULTS.md, "Ingest end to end").
        if SidIndex::len(index) == 0 {
            return Group::empty();
        }
        let mut taken: Vec<Token> = index
            .disambiguators(semantic)
            .into_iter()
            .filter(|(_, item)| !moving.contains(item))
            .map(|(t, _)| t)
            .collect();
        taken.sort_unstable();
        Group {
            taken,
            ..Group::empty()
        }
    }

    fn empty() -> Group {
        Group {
            taken: Vec::new(),
            next: 0,
            passed: 0,
            given: 0,
        }
    }

    /// Gives the members of a group (requested tokens first) their
    /// tokens; or the first conflict and the batch index of its item.
    fn assign(mut self, members: &mut [Open]) -> std::result::Result<(), (Conflict, usize)> {
        for o in members {
            let i = o.item as usize;
            o.token = match o.requested {
                Some(d) if self.take(d) => d,
                Some(_) => return Err((Conflict::Taken, i)),
                None => self.smallest_free(MAX_DISAMBIGUATION).ok_or_else(|| {
                    let count = self.taken.len() + self.given + 1;
                    (Conflict::Full { count }, i)
                })?,
            };
        }
        Ok(())
    }

    /// Reserves a requested token; false when another item holds it.
    fn take(&mut self, d: Token) -> bool {
        match self.taken.binary_search(&d) {
            Ok(_) => false,
            Err(at) => {
                self.taken.insert(at, d);
                true
            }
        }
    }

    /// The smallest token below `k` that is neither taken nor given yet.
    fn smallest_free(&mut self, limit: u32) -> Option<Token> {
        while let Some(&t) = self.taken.get(self.passed)
            && t as u32 <= self.next
        {
            self.next = self.next.max(t as u32 + 1);
            self.passed += 1;
        }
        if self.next >= limit {
            return None;
        }
        self.given += 1;
        self.next += 1;
        Some((self.next - 1) as Token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;
    use crate::item::NewItem;
    use crate::keymap::KeyMap;

    fn item(key: String, tokens: Vec<Token>) -> NewItem {
        NewItem {
            key,
            tokens,
            weights: vec![],
        }
    }

    fn empty(layout: SidLayout) -> State {
        State::new(Index::new(layout), KeyMap::default())
    }

    fn full_sids<'a>(planned: &'a [Planned<'a>]) -> Vec<(&'a str, &'a [Token])> {
        planned.iter().map(|p| (p.key, &p.full[..])).collect()
    }

    #[test]
    fn requested_tokens_go_first_then_the_smallest_free_in_batch_order() {
        let layout = SidLayout::new(2, 4, 0).unwrap();
        let items = [
            item("x".into(), vec![1, 1]),
            item("y".into(), vec![1, 1, 0]),
            item("z".into(), vec![1, 1]),
            item("w".into(), vec![0, 3, 2]),
            item("v".into(), vec![0, 3]),
        ];
        let planned = plan(&empty(layout), &items, 0).unwrap();
        let expected: [(&str, &[Token]); 5] = [
            ("x", &[1, 1, 1]),
            ("y", &[1, 1, 0]),
            ("z", &[1, 1, 2]),
            ("w", &[0, 3, 2]),
            ("v", &[0, 3, 0]),
        ];
        assert_eq!(full_sids(&planned), expected);
        assert_eq!(
            planned.iter().map(|p| p.id).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
    }

    /// The tokens one item at a time, as the rule says: requested ones in
    /// batch order, then the smallest free one in batch order, per SID.
    fn reference(items: &[NewItem], levels: usize) -> Vec<Vec<Token>> {
        use std::collections::{BTreeSet, HashMap};
        let mut taken: HashMap<&[Token], BTreeSet<Token>> = HashMap::new();
        for it in items.iter().filter(|it| it.tokens.len() > levels) {
            assert!(
                taken
                    .entry(&it.tokens[..levels])
                    .or_default()
                    .insert(it.tokens[levels])
            );
        }
        (items.iter())
            .map(|it| match it.tokens.len() > levels {
                true => it.tokens.clone(),
                false => {
                    let held = taken.entry(&it.tokens[..]).or_default();
                    let d = (0..).find(|d| !held.contains(d)).unwrap();
                    held.insert(d);
                    [&it.tokens[..], &[d]].concat()
                }
            })
            .collect()
    }

    /// With K = 65,535 a sort key holds 4 of 6 tokens: SIDs that differ in
    /// the last two only tie on it and are told apart in full.
    #[test]
    fn sids_equal_in_their_sort_key_are_grouped_apart() {
        let layout = SidLayout::new(6, 65_535, 0).unwrap();
        let mut state = 7u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) % n) as Token
        };
        let items: Vec<NewItem> = (0..3_000)
            .map(|i| {
                let mut tokens = vec![1, 2, 3, next(2), next(3), next(4)];
                if i % 7 == 0 {
                    tokens.push(1_000 + i as Token);
                }
                item(format!("k{i}"), tokens)
            })
            .collect();
        let planned = plan(&empty(layout), &items, 0).unwrap();
        let got: Vec<Vec<Token>> = planned.iter().map(|p| p.full.clone()).collect();
        assert_eq!(got, reference(&items, 6));
    }

    #[test]
    fn the_first_bad_item_is_the_one_reported() {
        let layout = SidLayout::new(2, 8, 0).unwrap();
        let mut items: Vec<NewItem> = (0..20_000)
            .map(|i| item(format!("k{i}"), vec![1, 2]))
            .collect();
        items[1].tokens = vec![1, 9];
        items[19_998].tokens = vec![9, 1];
        for _ in 0..20 {
            let e = plan(&empty(layout), &items, 0).unwrap_err().to_string();
            assert!(e.contains("'k1' (#2)"), "{e}");
        }
    }

    #[test]
    fn a_taken_token_is_reported_before_a_full_semantic_sid() {
        let layout = SidLayout::new(1, 4, 0).unwrap();
        let mut items: Vec<NewItem> = (0..=MAX_DISAMBIGUATION)
            .map(|i| item(format!("a{i}"), vec![1]))
            .collect();
        items.push(item("b".into(), vec![2, 5]));
        items.push(item("c".into(), vec![2, 5]));
        let e = plan(&empty(layout), &items, 0).unwrap_err().to_string();
        assert!(
            e.contains("item 'c'") && e.contains("belongs to another item"),
            "{e}"
        );
        items.pop();
        match plan(&empty(layout), &items, 0).unwrap_err() {
            Error::TooManyCollisions { count, limit, .. } => {
                assert_eq!(
                    (count, limit),
                    (MAX_DISAMBIGUATION as usize + 1, MAX_DISAMBIGUATION)
                );
            }
            other => panic!("expected TooManyCollisions, got {other}"),
        }
    }
}
