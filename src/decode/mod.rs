//! Decoding for generative retrieval: a model writes an item's SID token by
//! token and the index keeps it to prefixes that exist.

mod beam;

pub use beam::{BeamSearch, Hit, Precomputed, StepScorer};
