//! [`ReadView`]: what a reader asks of a set of items, the [`crate::SidIndex`]
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
#[cfg(feature = "store")]
mod changes;
mod merge;
mod state;
#[cfg(test)]
mod tests;

/// Defined beside [`crate::SidIndex`], so the snapshot implements it
/// without depending on this module.
pub use crate::index::ReadView;
pub use base::BaseBytes;
pub use state::State;
