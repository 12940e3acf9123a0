//! Input data: embeddings, token files made elsewhere, item metadata and synthetic SIDs.
//!
//! Invariant: every validation error names the file and the 1-based line.

pub mod catalog;
pub mod embeddings;
pub mod meta;
pub mod synthetic;
pub mod tokens;
