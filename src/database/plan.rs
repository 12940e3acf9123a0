//! Planning a batch before anything is written: every item validated, given
//! its id and its full SID (with a disambiguation token unique among the
//! items that share its semantic tokens).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::State;
use crate::error::{Error, Result};
use crate::index::{Index, ItemId, MAX_ITEM_ID};
use crate::item::ItemInput;
use crate::sid::{Token, format_tokens};

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
    let layout = *state.index.layout();
    let mut seen = HashSet::with_capacity(items.len());
    let mut planned = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = item.key();
        let bad = |m: String| Error::InvalidArgument(format!("item '{key}' (#{}): {m}", i + 1));
        let (semantic, weights, requested) =
            item.valid(&layout).map_err(bad)?.into_owned().into_parts();
        if !seen.insert(key) {
            return Err(Error::InvalidArgument(format!(
                "item '{key}' appears twice in one batch"
            )));
        }
        let existing = state.keys.id(key);
        let id = match existing {
            Some(id) => id,
            None => {
                if next_id > MAX_ITEM_ID {
                    return Err(Error::InvalidArgument(
                        "the database is full (2^31 item ids)".into(),
                    ));
                }
                next_id += 1;
                next_id - 1
            }
        };
        planned.push(Planned {
            id,
            full: semantic,
            requested,
            weights,
            key: key.to_string(),
            existing: existing.is_some(),
        });
    }
    assign_disambiguators(&state.index, &mut planned)?;
    Ok(planned)
}

/// Gives each planned item its full SID. Items whose semantic tokens are
/// unchanged keep their token; the others take the smallest free one.
fn assign_disambiguators(index: &Index, planned: &mut [Planned]) -> Result<()> {
    let k = index.layout().k();
    let current = |p: &Planned| index.sid(p.id).map(|(old, _)| old.to_vec());
    let keeps = |p: &Planned| {
        p.existing
            && current(p).is_some_and(|old| {
                old[..p.full.len()] == p.full[..]
                    && p.requested.is_none_or(|d| d == old[p.full.len()])
            })
    };
    let moving: HashSet<ItemId> = planned
        .iter()
        .filter(|p| p.existing && !keeps(p))
        .map(|p| p.id)
        .collect();
    for p in planned
        .iter_mut()
        .filter(|p| p.existing && !moving.contains(&p.id))
    {
        let old = current(p).expect("existing item is indexed");
        p.full.push(old[p.full.len()]);
    }
    let mut used: HashMap<Vec<Token>, BTreeSet<Token>> = HashMap::new();
    let taken_for = |semantic: &[Token]| -> BTreeSet<Token> {
        index
            .disambiguators(semantic)
            .into_iter()
            .filter(|(_, item)| !moving.contains(item))
            .map(|(t, _)| t)
            .collect()
    };
    // Requested tokens first, so automatic ones never take them.
    for p in planned
        .iter_mut()
        .filter(|p| p.full.len() < index.layout().full_len() && p.requested.is_some())
    {
        let d = p.requested.expect("filtered");
        let taken = used
            .entry(p.full.clone())
            .or_insert_with(|| taken_for(&p.full));
        if !taken.insert(d) {
            return Err(Error::InvalidArgument(format!(
                "item '{}': the full SID {},{d} belongs to another item",
                p.key,
                format_tokens(&p.full)
            )));
        }
        p.full.push(d);
    }
    for p in planned
        .iter_mut()
        .filter(|p| p.full.len() < index.layout().full_len())
    {
        let taken = used
            .entry(p.full.clone())
            .or_insert_with(|| taken_for(&p.full));
        let d = (0usize..)
            .zip(taken.iter())
            .find(|(want, have)| *want != **have as usize)
            .map_or(taken.len(), |(want, _)| want);
        if d >= k as usize {
            return Err(Error::TooManyCollisions {
                sid: format_tokens(&p.full),
                count: taken.len() + 1,
                k,
            });
        }
        taken.insert(d as Token);
        p.full.push(d as Token);
    }
    Ok(())
}
