//! [`ReadView`]: what a reader asks of a set of items, the [`SidIndex`]
//! queries plus external keys, over a [`State`] (what a database's
//! [`crate::database::ReadGuard`] derefs to) or a
//! [`crate::snapshot::Snapshot`] alike. Leave-one-out evaluation, the
//! generative retriever and the command line's `lookup` and `next` read
//! through it, so each is written once and runs over either. A `&dyn
//! ReadView` upcasts to `&dyn SidIndex` for the beam decoder.
//!
//! A [`State`] is a snapshot (the base: the database's last publication,
//! mapped) plus what changed since, held in an in-memory [`crate::Index`]:
//! items added or re-encoded since the base, and the base items they
//! replace or that were removed (hidden). Without changes every query is
//! the snapshot's own; with changes the answers are merged (`merge`).

mod base;
mod changes;
mod merge;
mod state;
#[cfg(test)]
mod tests;

use crate::error::Result;
use crate::index::{ItemId, SidIndex};

pub use base::BaseBytes;
pub use state::State;

/// A consistent view of items: their SIDs ([`SidIndex`]) and their keys.
pub trait ReadView: SidIndex {
    /// Id of an external key, or [`crate::Error::UnknownKey`].
    fn id(&self, key: &str) -> Result<ItemId>;

    /// External key of an item id.
    fn key(&self, id: ItemId) -> Option<&str>;
}
