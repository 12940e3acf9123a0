//! [`Recommender`]: whichever retriever a database stores, behind one
//! `recommend` call, for a serving process and the CLI.

use candle_core::Device;

use super::parallel::{self, ParallelRetriever};
use super::retriever::{self, GenRetriever};
use crate::blobs::BlobSource;
use crate::decode::Scored;
use crate::error::{Error, Result};
use crate::index::{ItemId, SidIndex};
use crate::sid::SidLayout;

/// The stored retrievers, by what `gen-train --retriever` calls them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetrieverKind {
    /// Token by token, trie-constrained beam search ([`GenRetriever`]).
    Autoregressive,
    /// Every position at once, exact top-k ([`ParallelRetriever`], a hybrid included).
    Parallel,
}

/// A trained retriever, ready to recommend.
pub enum Recommender {
    /// The autoregressive retriever.
    Autoregressive(Box<GenRetriever>),
    /// The parallel retriever (or a hybrid).
    Parallel(Box<ParallelRetriever>),
}

impl Recommender {
    /// Loads the retriever of `kind` stored in `db`; without a kind, the
    /// parallel one when stored (its top-k is exact), else the
    /// autoregressive one, else an error naming the command that trains one.
    pub fn from_blobs(
        db: &(impl BlobSource + ?Sized),
        layout: SidLayout,
        device: Device,
        kind: Option<RetrieverKind>,
    ) -> Result<Recommender> {
        let kind = match kind {
            Some(k) => k,
            None if db.blob(parallel::blobs::CONFIG)?.is_some() => RetrieverKind::Parallel,
            None if db.blob(retriever::blobs::CONFIG)?.is_some() => RetrieverKind::Autoregressive,
            None => {
                return Err(Error::InvalidArgument(format!(
                    "{} holds no trained retriever; run `adasid gen-train --retriever parallel` \
                     (or autoregressive, or hybrid) first",
                    db.describe()
                )));
            }
        };
        Ok(match kind {
            RetrieverKind::Parallel => {
                Recommender::Parallel(Box::new(ParallelRetriever::from_blobs(db, layout, device)?))
            }
            RetrieverKind::Autoregressive => {
                Recommender::Autoregressive(Box::new(GenRetriever::from_blobs(db, layout, device)?))
            }
        })
    }

    /// What it is, for reports: "autoregressive", "parallel" or "hybrid".
    pub fn name(&self) -> &'static str {
        match self {
            Recommender::Autoregressive(_) => "autoregressive",
            Recommender::Parallel(p) if p.is_hybrid() => "hybrid",
            Recommender::Parallel(_) => "parallel",
        }
    }

    /// The `k` best items after `history` (ids of `view`, oldest first),
    /// those `keep` accepts when given, best first; see
    /// [`ParallelRetriever::recommend`] and [`GenRetriever::recommend`].
    pub fn recommend(
        &self,
        view: &dyn SidIndex,
        history: &[ItemId],
        k: usize,
        keep: Option<&dyn Fn(ItemId) -> bool>,
    ) -> Result<Vec<Scored>> {
        if k == 0 {
            return Err(Error::InvalidArgument("k must be at least 1".into()));
        }
        match self {
            Recommender::Autoregressive(m) => m.recommend(view, history, k, keep),
            Recommender::Parallel(m) => m.recommend(view, history, k, keep),
        }
    }
}
