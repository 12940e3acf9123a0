//! Planning a batch before anything is written: every item validated, given
//! its id and its full SID (with a disambiguation token unique among the
//! items that share its semantic tokens).

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

use super::State;
use crate::error::{Error, Result};
use crate::index::{ItemId, MAX_ITEM_ID, SidIndex};
use crate::item::{ItemInput, MAX_KEY_BYTES};
use crate::sid::{MAX_DISAMBIGUATION, Token, format_tokens};

/// One item of a planned batch.
pub(super) struct Planned {
    pub id: ItemId,
    pub full: Vec<Token>,
    /// A disambiguation token the caller asked for (a full SID was given).
    pub requested: Option<Token>,
    pub weights: Vec<f32>,
    pub key: String,
    pub existing: bool,
}

/// Validates a batch against `state` and gives every item its id and full SID.
pub(super) fn plan(
    state: &State,
    items: &[impl ItemInput],
    mut next_id: u32,
) -> Result<Vec<Planned>> {
    let layout = *state.layout();
    // Validation and key lookups are per item and the costly part: in
    // parallel, the first error in batch order.
    let mut planned: Vec<Planned> = items
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
            let (full, weights, requested) = sid.into_owned().into_parts();
            let existing = state.find(key);
            Ok(Planned {
                id: existing.unwrap_or(ItemId::MAX),
                full,
                requested,
                weights,
                key: key.to_string(),
                existing: existing.is_some(),
            })
        })
        .collect::<Result<_>>()?;
    let mut seen = FxHashSet::with_capacity_and_hasher(items.len(), Default::default());
    for p in planned.iter_mut() {
        if !seen.insert(p.key.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "item '{}' appears twice in one batch",
                p.key
            )));
        }
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
/// their semantic tokens.
fn assign_disambiguators(index: &State, planned: &mut [Planned]) -> Result<()> {
    let levels = index.layout().levels();
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
    // The items still without a token, by semantic tokens; requested tokens
    // go first, so automatic ones never take them.
    let open: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].full.len() == levels)
        .collect();
    let (requested, automatic): (Vec<usize>, Vec<usize>) =
        open.iter().partition(|&&i| planned[i].requested.is_some());
    let mut groups: FxHashMap<&[Token], Group> =
        FxHashMap::with_capacity_and_hasher(open.len(), Default::default());
    let group = |semantic: &[Token]| Group::new(index, semantic, &moving);
    let mut given = Vec::with_capacity(open.len());
    for i in requested {
        let p = &planned[i];
        let d = p.requested.expect("partitioned");
        let g = groups.entry(&p.full).or_insert_with(|| group(&p.full));
        if !g.take(d) {
            return Err(Error::InvalidArgument(format!(
                "item '{}': the full SID {},{d} belongs to another item",
                p.key,
                format_tokens(&p.full)
            )));
        }
        given.push((i, d));
    }
    for i in automatic {
        let p = &planned[i];
        let g = groups.entry(&p.full).or_insert_with(|| group(&p.full));
        match g.smallest_free(MAX_DISAMBIGUATION) {
            Some(d) => given.push((i, d)),
            None => {
                return Err(Error::TooManyCollisions {
                    sid: format_tokens(&p.full),
                    count: g.taken.len() + g.given + 1,
                    limit: MAX_DISAMBIGUATION,
                });
            }
        }
    }
    drop(groups);
    for (i, d) in given {
        planned[i].full.push(d);
    }
    Ok(())
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
        let mut taken: Vec<Token> = index
            .disambiguators(semantic)
            .into_iter()
            .filter(|(_, item)| !moving.contains(item))
            .map(|(t, _)| t)
            .collect();
        taken.sort_unstable();
        Group {
            taken,
            next: 0,
            passed: 0,
            given: 0,
        }
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
