//! A compact generative retriever (TIGER-style) that proves the pipeline end
//! to end: it reads the SIDs of a user's recent items and writes the next
//! item's SID token by token, kept to existing SIDs by the index through
//! [`crate::decode::BeamSearch`].
//!
//! The encoder sees one vector per history item (the sum of its SID tokens'
//! embeddings, plus a recency position); the decoder is a small causal
//! transformer over the SID written so far that cross-attends to it, with one
//! output head per SID position.

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
pub use corpus::Corpus;
pub use evaluate::{GEN_CUTOFFS, GenReport};
pub use net::{GenNet, GenShape};
pub use parallel::{ParallelConfig, ParallelEpoch, ParallelRetriever};
pub use recommender::{Recommender, RetrieverKind};
pub use retriever::{GenEpoch, GenRetriever, blobs};
