//! Writes to a [`State`]: what a database applies after a commit.
//!
//! An item lives on one side only: a base item that is re-encoded or
//! removed is hidden in the base, and a re-encoded one goes to the
//! in-memory index with its key (so `id`/`key` find it there first).

use super::{ReadView, State};
use crate::error::{Error, Result};
use crate::index::{ItemId, SidIndex};
use crate::sid::Token;

/// What an item held when it was taken out: its full SID and routing weights.
pub type Taken = (Vec<Token>, Vec<f32>);

impl State {
    /// Takes `id`'s SID out (its key stays bound): the item is invisible
    /// until [`State::insert_with_keys`] puts a SID back or
    /// [`State::remove_key`] forgets it.
    pub(crate) fn take(&mut self, id: ItemId) -> Result<Taken> {
        if let Some((s, w)) = self.index.sid(id) {
            let taken = (s.to_vec(), w.to_vec());
            self.index.remove(id)?;
            return Ok(taken);
        }
        let missing = || Error::corruption("index", format!("item {id} has no SID"));
        let base = self.base.as_mut().ok_or_else(missing)?;
        let (s, w) = base
            .snap
            .sid(id)
            .filter(|_| base.holds(id))
            .ok_or_else(missing)?;
        let taken = (s.to_vec(), w.to_vec());
        let key = base.snap.key(id).ok_or_else(missing)?.to_string();
        base.hide(id, &taken.0);
        self.keys.insert(&key, id);
        Ok(taken)
    }

    /// Inserts items whose ids hold no SID now (new, or taken out) and
    /// binds the keys of the new ones (or of taken ones that gave theirs
    /// up) among them, side by side (index and key map share nothing).
    pub(crate) fn insert_with_keys(
        &mut self,
        items: &[(ItemId, &[Token], &[f32])],
        new_keys: &[(&str, ItemId)],
    ) -> Result<()> {
        let State { index, keys, .. } = self;
        let (inserted, ()) = rayon::join(
            || index.insert_many(items),
            || {
                keys.reserve(new_keys.len(), 0);
                for &(key, id) in new_keys {
                    keys.insert(key, id);
                }
            },
        );
        inserted
    }

    /// Forgets a taken item's key; returns it.
    pub(crate) fn remove_key(&mut self, id: ItemId) -> Option<String> {
        self.keys.remove(id).map(String::from)
    }

    /// The disambiguation tokens in use under `semantic` (the first
    /// `levels` tokens of a full SID), with the item holding each.
    pub(crate) fn disambiguators(&self, semantic: &[Token]) -> Vec<(Token, ItemId)> {
        let mut out = self.index.disambiguators(semantic);
        if let Some(b) = self.base.as_ref().filter(|b| b.live_under(semantic) > 0) {
            let old = b
                .snap
                .items(semantic)
                .map_or(Vec::new(), |p| p.to_sorted_vec());
            for id in old.into_iter().filter(|&i| !b.hidden.contains(i)) {
                if let Some(&t) = b.snap.sid(id).and_then(|(s, _)| s.get(semantic.len())) {
                    out.push((t, id));
                }
            }
            out.sort_unstable();
        }
        out
    }
}
