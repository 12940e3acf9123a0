//! A database's read view: the [`State`] of one commit behind the read
//! lock. It derefs to the state, which is a [`crate::ReadView`]: pass
//! `&*db.read()` where a view is wanted.

use std::sync::RwLockReadGuard;

pub use crate::view::State;

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
