//! Input data: token files made elsewhere, item metadata, synthetic SIDs and
//! (with `train`) embeddings and a synthetic catalogue.
//!
//! Invariant: every validation error names the file and the 1-based line
//! (in a JSON token index, the entry).

#[cfg(feature = "train")]
pub mod catalog;
#[cfg(feature = "train")]
pub mod embeddings;
pub mod meta;
pub mod synthetic;
#[cfg(feature = "store")]
pub mod token_index;
pub mod tokens;
