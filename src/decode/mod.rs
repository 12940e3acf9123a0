//! Decoding for generative retrieval: a model writes an item's SID token by
//! token and the index keeps it to prefixes that exist ([`BeamSearch`]), or
//! scores every position at once and the index finds the best items exactly
//! ([`top_k`]).

mod beam;
pub mod parallel;

pub use beam::{BeamSearch, Hit, Precomputed, StepScorer};
pub use parallel::{PositionScores, Ranked, Scored, best_of, top_k};
