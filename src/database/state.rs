//! A database's read view: the [`State`] of one commit behind the read
//! lock, a [`ReadView`] like the state itself.

use std::sync::RwLockReadGuard;

use crate::error::Result;
use crate::index::{Candidate, CandidateQuery, ItemId, Postings, SidIndex};
use crate::sid::{SidLayout, Token};
pub use crate::view::State;
use crate::view::{ReadView, delegate_to_index};

delegate_to_index!(ReadGuard<'_>, |s| &s.0.index);

/// A consistent read view of a [`crate::Database`]: the state of one
/// commit, held under the read lock (writers wait while it lives).
pub struct ReadGuard<'a>(RwLockReadGuard<'a, State>);

impl<'a> ReadGuard<'a> {
    pub(crate) fn new(guard: RwLockReadGuard<'a, State>) -> Self {
        ReadGuard(guard)
    }
}

impl std::ops::Deref for ReadGuard<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
}

impl ReadView for ReadGuard<'_> {
    fn id(&self, key: &str) -> Result<ItemId> {
        State::id(self, key)
    }

    fn key(&self, id: ItemId) -> Option<&str> {
        State::key(self, id)
    }

    fn as_index(&self) -> &dyn SidIndex {
        &self.0.index
    }
}
