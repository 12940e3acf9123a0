//! Retrievers over a database's SIDs: a user's recent items in, the next
//! item out.
//!
//! The autoregressive retriever (TIGER-style) writes the next item's SID
//! token by token, kept to existing SIDs by the index through
//! [`crate::decode::BeamSearch`]: its encoder sees one vector per history
//! item (the sum of its SID tokens' embeddings, plus a recency position);
//! its decoder is a small causal transformer over the SID written so far
//! that cross-attends to it, with one output head per SID position.
//!
//! The [`parallel`] retriever (RPG-style) predicts every semantic position
//! at once, so the exact top k comes from the index's per-position
//! postings; as a hybrid it predicts item ids from items given as ids plus
//! SID tokens. [`Recommender`] serves whichever a database stores.

mod config;
mod corpus;
mod decoding;
mod evaluate;
mod layers;
mod net;
pub mod parallel;
mod recommender;
mod retriever;
mod stored;

pub use config::GenConfig;
pub use corpus::{Corpus, Excluded};
pub use evaluate::{GEN_CUTOFFS, GenReport};
pub use net::{GenNet, GenShape};
pub use parallel::{ParallelConfig, ParallelEpoch, ParallelRetriever, Schedule};
pub use recommender::{Recommender, RetrieverKind};
pub use retriever::{GenEpoch, GenRetriever, blobs};
